//! The quality of a `safeguard` compaction summary (OpenClaw's quality
//! guard, `compaction.mode: "safeguard"`): the summariser's instructions
//! with the five required sections, the exact identifiers a strict summary
//! must keep (taken from what it was given), the latest ask it must
//! reflect, and the audit that says why a summary fails. Asking again and
//! giving up is `runtime/compact.rs`'s.
//!
//! Must not: call a model, touch the store, or decide whether the guard is on
//! (core's `compaction::plan`).

use std::sync::Arc;

use crate::store::Message;

/// The summariser's instructions in `safeguard` mode: OpenClaw's required
/// sections, and how strictly exact identifiers are kept.
pub fn safeguard_system(strict_identifiers: bool) -> String {
    let identifiers = if strict_identifiers {
        "For ## Exact identifiers, preserve literal values exactly as seen (IDs, URLs, file paths, ports, hashes, dates, times)."
    } else {
        "For ## Exact identifiers, include identifiers only when needed for continuity; do not enforce literal-preservation rules."
    };
    format!(
        "You compact a conversation between a user and an AI assistant so the assistant can continue it with only \
         your summary and the most recent messages.\nProduce a compact, factual summary with these exact section \
         headings:\n{}\n{identifiers}\nDo not omit unresolved asks from the user.\nRecord completed requests \
         outside ## Pending user asks; list only unresolved user requests there.\nWhen a previous summary is given, \
         re-distill it with the new messages and remove stale duplicate detail. Write only the summary.",
        chela_core::compaction::REQUIRED_SECTIONS.join("\n")
    )
}

/// Likely exact identifiers in `text` (URLs, paths, `host:port`, long hex
/// or digit ids), in order of first appearance, at most
/// [`chela_core::compaction::MAX_AUDITED_IDENTIFIERS`]: what a strict
/// summary of that text must keep literally.
pub fn identifiers(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    {
        for token in text.split_whitespace() {
            // Quotes, brackets and punctuation around it are not part of it.
            let t = token.trim_start_matches(|c: char| !(c.is_alphanumeric() || c == '/'));
            let t = t.trim_end_matches(|c: char| !(c.is_alphanumeric() || matches!(c, '/' | '_' | '-')));
            if t.chars().count() >= 4 && is_identifier(t) && !out.iter().any(|o| same_identifier(o, t)) {
                out.push(t.to_string());
                if out.len() == chela_core::compaction::MAX_AUDITED_IDENTIFIERS {
                    return out;
                }
            }
        }
    }
    out
}

fn is_identifier(t: &str) -> bool {
    let url = t.starts_with("http://") || t.starts_with("https://");
    let path = t.starts_with('/') && t[1..].contains('/') && t.split('/').skip(1).all(|p| !p.is_empty());
    let host_port = t.rsplit_once(':').is_some_and(|(host, port)| {
        host.contains('.')
            && !host.contains('/')
            && (1..=5).contains(&port.len())
            && port.bytes().all(|b| b.is_ascii_digit())
    });
    let id_like = t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && (longest_run(t, |c| c.is_ascii_hexdigit()) >= 8 || longest_run(t, |c| c.is_ascii_digit()) >= 6);
    url || path || host_port || id_like
}

fn longest_run(t: &str, f: impl Fn(char) -> bool) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in t.chars() {
        run = if f(c) { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// Pure hex compares without case (OpenClaw's rule); the rest exactly.
fn same_identifier(a: &str, b: &str) -> bool {
    let hex = |s: &str| s.len() >= 8 && s.bytes().all(|c| c.is_ascii_hexdigit());
    if hex(a) && hex(b) {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

fn summary_has(summary: &str, identifier: &str) -> bool {
    if identifier.len() >= 8 && identifier.bytes().all(|c| c.is_ascii_hexdigit()) {
        summary.to_ascii_uppercase().contains(&identifier.to_ascii_uppercase())
    } else {
        summary.contains(identifier)
    }
}

/// The last user message among `messages` that is not an earlier summary:
/// the ask a summary must still reflect.
pub fn latest_ask(messages: &[Arc<Message>]) -> Option<String> {
    messages
        .iter()
        .rev()
        .filter(|m| matches!(m.as_ref(), Message::User { .. }))
        .map(|m| m.text())
        .find(|t| !t.starts_with(crate::store::transcript::SUMMARY_PREFIX) && !t.trim().is_empty())
}

const STOP_WORDS: &[&str] = &[
    "the", "and", "for", "you", "your", "with", "that", "this", "are", "was", "can", "could", "would", "please",
    "what", "how", "have", "has", "not", "but", "from", "into", "about", "them", "they", "its", "our", "all", "any",
    "let", "me", "my", "to", "of", "in", "on", "at", "is", "it", "be", "do", "an", "or", "as", "by", "we", "so", "if",
    "up",
];

/// Whether `summary` reflects `ask`: of its first twelve meaningful words,
/// two appear (one when it has fewer than three).
fn reflects(summary: &str, ask: &str) -> bool {
    let words = |t: &str| -> Vec<String> {
        t.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() > 1 && !STOP_WORDS.contains(w))
            .map(str::to_string)
            .collect()
    };
    let mut wanted: Vec<String> = Vec::new();
    for w in words(ask) {
        if !wanted.contains(&w) && wanted.len() < 12 {
            wanted.push(w);
        }
    }
    if wanted.is_empty() {
        return true;
    }
    let have: std::collections::HashSet<String> = words(summary).into_iter().collect();
    let needed = if wanted.len() >= 3 { 2 } else { 1 };
    wanted.iter().filter(|w| have.contains(*w)).count() >= needed
}

/// Why a `safeguard` summary fails OpenClaw's quality audit (empty: it
/// passes): a required section missing, an identifier of the summarised
/// messages missing (strict policy), the latest ask not reflected.
pub fn audit(summary: &str, identifiers: &[String], latest_ask: Option<&str>) -> Vec<String> {
    let lines: std::collections::HashSet<&str> = summary.lines().map(str::trim).collect();
    let mut reasons: Vec<String> = chela_core::compaction::REQUIRED_SECTIONS
        .iter()
        .filter(|s| !lines.contains(**s))
        .map(|s| format!("missing_section:{s}"))
        .collect();
    let missing: Vec<&str> = identifiers.iter().map(String::as_str).filter(|i| !summary_has(summary, i)).collect();
    if !missing.is_empty() {
        reasons.push(format!("missing_identifiers:{}", missing.iter().take(3).copied().collect::<Vec<_>>().join(",")));
    }
    if latest_ask.is_some_and(|a| !reflects(summary, a)) {
        reasons.push("latest_user_ask_not_reflected".into());
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compaction::summary_input;
    use crate::store::{Content, History, Usage};

    fn user(t: &str) -> Arc<Message> {
        Arc::new(Message::user(t, 0))
    }
    fn answer(t: &str) -> Arc<Message> {
        Arc::new(Message::Assistant {
            content: vec![Content::Text { text: t.into() }],
            timestamp: 0,
            provider: "p".into(),
            model: "m".into(),
            usage: Usage::default(),
            stop_reason: "stop".into(),
        })
    }

    #[test]
    fn a_safeguard_summary_must_keep_its_sections_identifiers_and_the_latest_ask() {
        let m: History = vec![
            user("deploy build 4f9a2c1d to https://ci.example.com/run/77 from /srv/app/releases"),
            answer("on it: “/srv/app/releases”, (4F9A2C1D)."),
            user("and tell ops about the payments queue backlog"),
        ];
        let ids = identifiers(&summary_input(None, &m, None));
        assert_eq!(ids, ["4f9a2c1d", "https://ci.example.com/run/77", "/srv/app/releases"]);
        let good = "## Decisions\nDeploy build 4F9A2C1D.\n## Open TODOs\nTell ops about the payments queue backlog.\n\
                    ## Constraints/Rules\nNone.\n## Pending user asks\nTell ops about the payments backlog.\n\
                    ## Exact identifiers\nhttps://ci.example.com/run/77\n/srv/app/releases";
        let latest = latest_ask(&m);
        assert_eq!(latest.as_deref(), Some("and tell ops about the payments queue backlog"));
        assert!(audit(good, &ids, latest.as_deref()).is_empty(), "{:?}", audit(good, &ids, latest.as_deref()));
        let bad = "## Decisions\nDeploy it.\n## Open TODOs\nNothing.";
        assert_eq!(
            audit(bad, &ids, latest.as_deref()),
            [
                "missing_section:## Constraints/Rules",
                "missing_section:## Pending user asks",
                "missing_section:## Exact identifiers",
                "missing_identifiers:4f9a2c1d,https://ci.example.com/run/77,/srv/app/releases",
                "latest_user_ask_not_reflected"
            ]
        );
        assert!(safeguard_system(true)
            .contains("## Pending user asks\n## Exact identifiers\nFor ## Exact identifiers, preserve"));
    }
}
