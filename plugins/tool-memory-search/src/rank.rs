//! BM25 over paragraph chunks (plain Rust, unit-tested natively).
//!
//! Must not: touch files; it ranks text it is given.

use std::collections::HashMap;

/// Longest snippet returned, in characters.
const SNIPPET_CHARS: usize = 700;
/// Longest chunk, in lines (long paragraphs are cut).
const CHUNK_LINES: usize = 12;

pub struct Hit {
    pub path: String,
    pub start_line: usize,
    pub end_line: usize,
    pub score: f64,
    pub snippet: String,
}

/// Lowercased words of two or more letters or digits.
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().count() >= 2).map(str::to_lowercase).collect()
}

struct Chunk<'a> {
    path: &'a str,
    start: usize,
    end: usize,
    text: String,
    tf: HashMap<String, f64>,
    len: f64,
}

/// Paragraphs (blank-line separated, at most `CHUNK_LINES` lines) with 1-based line ranges.
fn chunks<'a>(path: &'a str, text: &str) -> Vec<Chunk<'a>> {
    let mut out = Vec::new();
    let mut cur: Vec<(usize, &str)> = Vec::new();
    let flush = |cur: &mut Vec<(usize, &str)>, out: &mut Vec<Chunk<'a>>| {
        if cur.is_empty() {
            return;
        }
        let text = cur.iter().map(|(_, l)| *l).collect::<Vec<_>>().join("\n");
        let words = terms(&text);
        let mut tf = HashMap::new();
        for w in &words {
            *tf.entry(w.clone()).or_insert(0.0) += 1.0;
        }
        out.push(Chunk { path, start: cur[0].0, end: cur[cur.len() - 1].0, text, tf, len: words.len() as f64 });
        cur.clear();
    };
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || cur.len() >= CHUNK_LINES {
            flush(&mut cur, &mut out);
        }
        if !line.trim().is_empty() {
            cur.push((i + 1, line));
        }
    }
    flush(&mut cur, &mut out);
    out
}

/// The best `max` chunks of `docs` (`(path, text)`) for `query`.
pub fn search(docs: &[(String, String)], query: &str, max: usize) -> Vec<Hit> {
    let all: Vec<Chunk> = docs.iter().flat_map(|(p, t)| chunks(p, t)).collect();
    if all.is_empty() {
        return vec![];
    }
    let n = all.len() as f64;
    let avg = all.iter().map(|c| c.len).sum::<f64>() / n;
    let mut q = terms(query);
    q.sort();
    q.dedup();
    let (k1, b) = (1.2, 0.75);
    let mut scored: Vec<(f64, &Chunk)> = all
        .iter()
        .map(|c| {
            let score = q
                .iter()
                .map(|t| {
                    let df = all.iter().filter(|d| d.tf.contains_key(t)).count() as f64;
                    let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                    let f = c.tf.get(t).copied().unwrap_or(0.0);
                    idf * f * (k1 + 1.0) / (f + k1 * (1.0 - b + b * c.len / avg.max(1.0)))
                })
                .sum();
            (score, c)
        })
        .filter(|(s, _)| *s > 0.0)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.path.cmp(b.1.path)).then(a.1.start.cmp(&b.1.start)));
    scored
        .into_iter()
        .take(max)
        .map(|(score, c)| Hit {
            path: c.path.to_string(),
            start_line: c.start,
            end_line: c.end,
            score,
            snippet: c.text.chars().take(SNIPPET_CHARS).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_the_paragraph_about_the_query_first_with_line_numbers() {
        let docs = vec![
            (
                "MEMORY.md".to_string(),
                "# Me\n\nLikes tea.\n\nThe dentist is on Friday at 10.\nBring the insurance card.\n".to_string(),
            ),
            ("memory/2026-11-20.md".to_string(), "Talked about the dentist bill.\n\nWeather was fine.\n".to_string()),
        ];
        let hits = search(&docs, "When is the dentist?", 5);
        assert_eq!(hits.len(), 2, "only passages that share a word");
        assert_eq!((hits[0].path.as_str(), hits[0].start_line, hits[0].end_line), ("MEMORY.md", 5, 6));
        assert!(hits[0].snippet.contains("Friday"));
        assert!(search(&docs, "volcano", 5).is_empty());
        assert!(terms("a I ?").is_empty());
    }
}
