//! `compaction.recentTurnsPreserve` in safeguard mode, as OpenClaw 2026.9.6
//! does it (`splitPreservedRecentTurns`, `buildPreservedTurnsSection`): of
//! the messages a compaction summarises, the last N user turns (with the
//! assistant messages after them and the results of their tool calls) are
//! left out of the summary request and stored after the summary instead,
//! under `## Recent turns preserved verbatim`: one line per message
//! (`- User: …`, `- Assistant: …`, `- Tool result (name): …`), each cut to
//! 600 characters, the section to 8,000 (the oldest lines go first).
//!
//! Must not: choose the cut point, call a model or audit a summary.

use std::collections::HashSet;
use std::sync::Arc;

use crate::store::{Content, Message};

/// The heading the section starts with (after the summary).
pub const SECTION_HEADING: &str = "\n\n## Recent turns preserved verbatim";
/// The most characters of one message in the section.
const MAX_MESSAGE_CHARS: usize = 600;
/// The most characters of the whole section.
const MAX_SECTION_CHARS: usize = 8_000;
/// What replaces the oldest lines when the section is cut.
const TRUNCATED_MARKER: &str = "[Earlier preserved messages truncated]\n";

/// What a compaction summarises, split: the messages for the summary
/// request, and the recent turns kept verbatim beside it.
#[derive(Debug, Default)]
pub struct Split {
    pub summarised: Vec<Arc<Message>>,
    pub preserved: Vec<Arc<Message>>,
}

/// `messages` split so the last `turns` user turns are preserved (0: none).
pub fn split(messages: &[Arc<Message>], turns: usize) -> Split {
    let all = || Split { summarised: messages.to_vec(), preserved: Vec::new() };
    if turns == 0 {
        return all();
    }
    let conversation: Vec<usize> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| matches!(m.as_ref(), Message::User { .. } | Message::Assistant { .. }))
        .map(|(i, _)| i)
        .collect();
    if conversation.is_empty() {
        return all();
    }
    let users: Vec<usize> =
        conversation.iter().copied().filter(|&i| matches!(messages[i].as_ref(), Message::User { .. })).collect();
    let mut keep: HashSet<usize> = match users.len().checked_sub(turns).map(|k| users[k]) {
        Some(boundary) => conversation.iter().copied().filter(|&i| i >= boundary).collect(),
        // Fewer user turns than asked for: every user message, then the
        // latest messages until there are twice as many as turns.
        None => {
            let mut set: HashSet<usize> = users.iter().copied().collect();
            for &i in conversation.iter().rev() {
                if set.len() >= turns * 2 {
                    break;
                }
                set.insert(i);
            }
            set
        }
    };
    let calls: HashSet<&str> = keep
        .iter()
        .filter_map(|&i| match messages[i].as_ref() {
            Message::Assistant { content, .. } => Some(content),
            _ => None,
        })
        .flatten()
        .filter_map(|c| match c {
            Content::ToolCall { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    if let Some(&start) = conversation.iter().find(|i| keep.contains(i)) {
        for (i, m) in messages.iter().enumerate().skip(start) {
            if let Message::ToolResult { tool_call_id, .. } = m.as_ref() {
                if calls.contains(tool_call_id.as_str()) {
                    keep.insert(i);
                }
            }
        }
    }
    let mut out = Split::default();
    for (i, m) in messages.iter().enumerate() {
        if keep.contains(&i) { &mut out.preserved } else { &mut out.summarised }.push(m.clone());
    }
    out
}

/// The section stored after the summary (empty when nothing is preserved).
pub fn section(preserved: &[Arc<Message>]) -> String {
    let segments = segments(preserved);
    if segments.is_empty() {
        return String::new();
    }
    let complete = format!("{SECTION_HEADING}\n{}", segments.join("\n"));
    if complete.chars().count() <= MAX_SECTION_CHARS {
        return complete;
    }
    let prefix = format!("{SECTION_HEADING}\n{TRUNCATED_MARKER}");
    let mut used = prefix.chars().count();
    let mut kept: Vec<&str> = Vec::new();
    for segment in segments.iter().rev() {
        let chars = segment.chars().count() + usize::from(!kept.is_empty());
        if used + chars > MAX_SECTION_CHARS {
            break;
        }
        kept.insert(0, segment);
        used += chars;
    }
    format!("{prefix}{}", kept.join("\n"))
}

/// One segment per user or assistant message; an assistant's segment
/// carries the results of its tool calls.
fn segments(messages: &[Arc<Message>]) -> Vec<String> {
    let mut out = Vec::new();
    for m in messages {
        let lines: Vec<String> = match m.as_ref() {
            Message::ToolResult { .. } => continue,
            Message::User { .. } => line(m).into_iter().collect(),
            Message::Assistant { content, .. } => {
                let ids: HashSet<&str> = content
                    .iter()
                    .filter_map(|c| match c {
                        Content::ToolCall { id, .. } => Some(id.as_str()),
                        _ => None,
                    })
                    .collect();
                let results = messages.iter().filter(|r| {
                    matches!(r.as_ref(), Message::ToolResult { tool_call_id, .. } if ids.contains(tool_call_id.as_str()))
                });
                std::iter::once(m).chain(results).filter_map(line).collect()
            }
        };
        if !lines.is_empty() {
            out.push(lines.join("\n"));
        }
    }
    out
}

/// `- Role: text` with a placeholder for what is not text, cut to 600 characters.
fn line(m: &Arc<Message>) -> Option<String> {
    let (label, content) = match m.as_ref() {
        Message::User { content, .. } => ("User".to_string(), content),
        Message::Assistant { content, .. } => ("Assistant".to_string(), content),
        Message::ToolResult { tool_name, content, .. } => {
            let name = if tool_name.trim().is_empty() { "tool" } else { tool_name.as_str() };
            (format!("Tool result ({name})"), content)
        }
    };
    let text: Vec<&str> = content
        .iter()
        .filter_map(|c| match c {
            Content::Text { text } => Some(text.trim()).filter(|t| !t.is_empty()),
            _ => None,
        })
        .collect();
    let rendered: Vec<String> = [text.join("\n"), placeholder(content)].into_iter().filter(|s| !s.is_empty()).collect();
    let rendered = rendered.join("\n");
    if rendered.is_empty() {
        return None;
    }
    let cut = match rendered.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}...", &rendered[..at]),
        None => rendered,
    };
    Some(format!("- {label}: {cut}"))
}

/// `[non-text content: toolCall, image x2]`, or empty when all is text.
fn placeholder(content: &[Content]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for c in content {
        let kind = match c {
            Content::Text { .. } => continue,
            Content::ToolCall { .. } => "toolCall",
            Content::Thinking { .. } => "thinking",
            Content::Image { .. } => "image",
            Content::Other => "unknown",
        };
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    if counts.is_empty() {
        return String::new();
    }
    let parts: Vec<String> =
        counts.iter().map(|(k, n)| if *n > 1 { format!("{k} x{n}") } else { k.to_string() }).collect();
    format!("[non-text content: {}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(t: &str) -> Arc<Message> {
        Arc::new(Message::user(t, 0))
    }

    fn assistant(content: Vec<Content>) -> Arc<Message> {
        Arc::new(Message::Assistant {
            content,
            timestamp: 0,
            provider: "p".into(),
            model: "m".into(),
            usage: Default::default(),
            stop_reason: String::new(),
        })
    }

    fn said(t: &str) -> Arc<Message> {
        assistant(vec![Content::Text { text: t.into() }])
    }

    fn result(id: &str, text: &str) -> Arc<Message> {
        Arc::new(Message::ToolResult {
            tool_call_id: id.into(),
            tool_name: "read".into(),
            content: vec![Content::Text { text: text.into() }],
            is_error: false,
            timestamp: 0,
        })
    }

    fn texts(ms: &[Arc<Message>]) -> Vec<String> {
        ms.iter().map(|m| m.text()).collect()
    }

    #[test]
    fn the_last_turns_are_preserved_with_their_tool_results() {
        let call = assistant(vec![
            Content::Text { text: "Let me look.".into() },
            Content::ToolCall { id: "c1".into(), name: "read".into(), arguments: serde_json::json!({}) },
        ]);
        let m =
            vec![user("one"), said("1"), user("two"), said("2"), user("three"), call, result("c1", "notes"), said("3")];
        let s = split(&m, 2);
        assert_eq!(texts(&s.summarised), ["one", "1"]);
        assert_eq!(texts(&s.preserved), ["two", "2", "three", "Let me look.", "notes", "3"]);
        assert_eq!(
            section(&s.preserved),
            "\n\n## Recent turns preserved verbatim\n- User: two\n- Assistant: 2\n- User: three\n- Assistant: Let me \
             look.\n[non-text content: toolCall]\n- Tool result (read): notes\n- Assistant: 3"
        );
        assert!(split(&m, 0).preserved.is_empty(), "0 preserves nothing");
        let few = split(&m[..4], 3);
        assert!(few.summarised.is_empty() && few.preserved.len() == 4, "fewer turns than asked: all of them");
    }

    #[test]
    fn long_messages_and_sections_are_cut() {
        let long = "x".repeat(700);
        let line = section(&[user(&long)]);
        assert!(line.ends_with(&format!("- User: {}...", "x".repeat(600))), "{line}");
        let many: Vec<Arc<Message>> = (0..20).map(|i| user(&format!("{i}:{}", "y".repeat(600)))).collect();
        let s = section(&many);
        assert!(s.chars().count() <= 8_000, "{}", s.chars().count());
        assert!(s.starts_with("\n\n## Recent turns preserved verbatim\n[Earlier preserved messages truncated]\n"));
        assert!(s.contains("- User: 19:") && !s.contains("- User: 0:"), "the latest are kept");
    }
}
