//! Splitting a long reply into messages a platform accepts (reference
//! channels §6): at most `limit` UTF-16 code units each (Telegram counts
//! UTF-16; for the others it leaves margin), cut at a blank line, else a
//! newline, else after a sentence, else a space, else anywhere between two
//! characters — never inside a character. A cut inside a fenced code block
//! closes the fence and reopens it (with its language) in the next chunk.
//!
//! Must not: cut inside a character or leave a code fence open across parts.

fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// The largest byte index `<= max_units` UTF-16 units into `s`, on a char boundary.
fn prefix_end(s: &str, max_units: usize) -> usize {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        if used + c.len_utf16() > max_units {
            return i;
        }
        used += c.len_utf16();
    }
    s.len()
}

/// Where to cut `window` (byte index of the cut; the separator stays with the first part).
fn cut_point(window: &str) -> usize {
    let min = window.len() / 3; // do not make tiny first chunks
    let after = |pat: &str| window.rfind(pat).filter(|i| *i >= min).map(|i| i + pat.len());
    after("\n\n")
        .or_else(|| after("\n"))
        .or_else(|| [". ", "! ", "? ", "。"].iter().filter_map(|p| after(p)).max())
        .or_else(|| after(" "))
        .unwrap_or(window.len())
}

/// The fence (```lang) open at the end of `text`, if any.
fn open_fence(text: &str) -> Option<String> {
    let mut open: Option<String> = None;
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("```") {
            open = match open {
                Some(_) => None,
                None => Some(format!("```{}", rest.trim())),
            };
        }
    }
    open
}

/// Splits `text` into chunks of at most `limit` UTF-16 units (`limit` ≥ 16).
pub fn split(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(16);
    let mut out = Vec::new();
    let mut rest = text.trim_end().to_string();
    let mut carry: Option<String> = None; // a fence to reopen
    while !rest.is_empty() {
        let head = carry.take().map(|f| format!("{f}\n")).unwrap_or_default();
        let body = format!("{head}{rest}");
        if units(&body) <= limit {
            out.push(body);
            break;
        }
        // Room for closing a fence if we end inside one.
        let budget = limit - 4;
        let window = &body[..prefix_end(&body, budget)];
        let mut cut = cut_point(window);
        if cut <= head.len() {
            cut = window.len().max(head.len() + 1).min(body.len());
        }
        let (first, second) = body.split_at(cut);
        let mut chunk = first.trim_end().to_string();
        if let Some(fence) = open_fence(&chunk) {
            chunk.push_str("\n```");
            carry = Some(fence);
        }
        out.push(chunk);
        rest = second.trim_start_matches(['\n', ' ']).to_string();
    }
    out.retain(|c| !c.trim().is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_paragraphs_then_sentences_and_respects_the_limit() {
        let text = format!("{}\n\n{}", "a".repeat(30), "Second one. Third sentence here. ".repeat(3));
        let parts = split(&text, 50);
        assert_eq!(parts[0], "a".repeat(30));
        assert!(parts.iter().all(|p| units(p) <= 50), "{parts:?}");
        assert!(parts[1].ends_with('.'), "{parts:?}");
        assert_eq!(parts.concat().replace(' ', ""), text.replace(['\n', ' '], ""));
    }

    #[test]
    fn never_breaks_characters_and_counts_utf16() {
        let text = "😀".repeat(30); // 2 UTF-16 units each
        let parts = split(&text, 20);
        assert!(parts.iter().all(|p| units(p) <= 20 && p.chars().all(|c| c == '😀')), "{parts:?}");
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn code_fences_are_closed_and_reopened() {
        let code: String = (0..20).map(|i| format!("let x{i} = {i};\n")).collect();
        let text = format!("Here:\n```rust\n{code}```\nDone.");
        let parts = split(&text, 120);
        assert!(parts.len() > 1);
        for p in &parts {
            assert_eq!(p.matches("```").count() % 2, 0, "unbalanced fence in {p:?}");
            assert!(units(p) <= 120);
        }
        assert!(parts[1].starts_with("```rust\n"), "{parts:?}");
    }
}
