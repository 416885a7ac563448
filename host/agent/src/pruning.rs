//! Session pruning on a conversation's messages (OpenClaw's `cache-ttl`
//! pruning, `docs/concepts/session-pruning.md`), and the images of older
//! turns sent as a marker (its legacy image cleanup): projections of old tool
//! results — soft-trimmed to their head and tail, or hard-cleared to a
//! placeholder — that, once made, are sent the same on every later request
//! (so the provider's prompt cache keeps its prefix), and a new round that
//! makes more of them only once the cache's TTL has passed and the context
//! fills enough of the window. The transcript keeps every result whole; the
//! projections are listed in its `openclaw.cache-ttl` markers.
//!
//! Must not: decide whether or where pruning runs, or its thresholds
//! (core's `pruning`), touch the store or call a model.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chela_core::pruning::{
    without_media_references, Pruning, HARD_RATIO, IMAGE_CHARS, IMAGE_MARKER, IMAGE_PROCESSED, IMAGE_TURNS_KEPT,
    KEEP_LAST_ASSISTANTS, MIN_PRUNABLE_CHARS, SOFT_RATIO, SOFT_TRIM_KEEP_CHARS, SOFT_TRIM_OVER_CHARS,
};

use crate::store::transcript::{nth_last, PrunedMark};
use crate::store::{Content, History, Message};

/// The projections in force for one session, by projection key.
pub type Marks = BTreeMap<String, PrunedMark>;

/// One session's pruning as a turn goes (kept by its conversation).
#[derive(Debug, Clone, Default)]
pub struct PruneState {
    /// The projections in force.
    pub marks: Marks,
    /// The projections the transcript's markers list.
    pub written: Marks,
    /// When the model's prompt cache was last touched (a successful request's start).
    pub touched_at: Option<i64>,
    /// Read from the transcript's markers yet.
    pub loaded: bool,
}

/// A tool result's projection key, as OpenClaw writes it: `tool:<call id>:<timestamp>`.
pub fn key(m: &Message) -> Option<String> {
    match m {
        Message::ToolResult { tool_call_id, timestamp, .. } if !tool_call_id.is_empty() => {
            Some(format!("tool:{tool_call_id}:{timestamp}"))
        }
        Message::ToolResult { timestamp, .. } => Some(format!("timestamp:{timestamp}")),
        _ => None,
    }
}

/// The keys of `messages`, `None` where a key is not a tool result's or is
/// shared by two results (neither is pruned then: a projection must never
/// land on the wrong result).
fn keys(messages: &[Arc<Message>]) -> Vec<Option<String>> {
    let all: Vec<Option<String>> = messages.iter().map(|m| key(m)).collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for k in all.iter().flatten() {
        *counts.entry(k.as_str()).or_default() += 1;
    }
    let shared: Vec<bool> = all.iter().map(|k| k.as_deref().is_some_and(|k| counts[k] > 1)).collect();
    all.into_iter().zip(shared).map(|(k, s)| k.filter(|_| !s)).collect()
}

/// Characters a message counts for in the ratios (OpenClaw's estimate:
/// text, thinking and tool-call arguments; an image as [`IMAGE_CHARS`]).
pub fn message_chars(m: &Message) -> usize {
    m.content()
        .iter()
        .map(|c| match c {
            Content::Text { text } => text.chars().count(),
            Content::Thinking { thinking, thinking_signature, .. } => {
                thinking.chars().count() + thinking_signature.as_ref().map_or(0, |s| s.len())
            }
            Content::ToolCall { arguments, .. } => arguments.to_string().len(),
            Content::Image { .. } => IMAGE_CHARS,
            Content::Other => 0,
        })
        .sum()
}

fn with_text(m: &Message, text: String) -> Option<Message> {
    match m {
        Message::ToolResult { tool_call_id, tool_name, is_error, timestamp, .. } => Some(Message::ToolResult {
            tool_call_id: tool_call_id.clone(),
            tool_name: tool_name.clone(),
            content: vec![Content::Text { text }],
            is_error: *is_error,
            timestamp: *timestamp,
        }),
        _ => None,
    }
}

/// A result soft-trimmed: its text (images as [`IMAGE_MARKER`]) cut to the
/// first and last [`SOFT_TRIM_KEEP_CHARS`] characters when over
/// [`SOFT_TRIM_OVER_CHARS`]; `None` when there is nothing to trim.
pub fn soft_trimmed(m: &Message) -> Option<Message> {
    let content = m.content();
    let has_image = content.iter().any(|c| matches!(c, Content::Image { .. }));
    let text = content
        .iter()
        .filter_map(|c| match c {
            Content::Text { text } => Some(text.as_str()),
            Content::Image { .. } => Some(IMAGE_MARKER),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let n = text.chars().count();
    if !has_image && n <= SOFT_TRIM_OVER_CHARS {
        return None;
    }
    let projected = if n <= SOFT_TRIM_OVER_CHARS {
        text
    } else {
        let head: String = text.chars().take(SOFT_TRIM_KEEP_CHARS).collect();
        let tail: String = text.chars().skip(n - SOFT_TRIM_KEEP_CHARS).collect();
        format!(
            "{head}\n...\n{tail}\n\n[Tool result trimmed: kept first {SOFT_TRIM_KEEP_CHARS} chars and last {SOFT_TRIM_KEEP_CHARS} chars of {n} chars.]"
        )
    };
    with_text(m, projected)
}

/// `messages` as the model is sent them: every result with a mark in its projection.
pub fn replay(messages: &History, marks: &Marks) -> History {
    if marks.is_empty() {
        return messages.clone();
    }
    keys(messages)
        .into_iter()
        .zip(messages)
        .map(|(k, m)| {
            let projected = match k.as_ref().and_then(|k| marks.get(k)) {
                Some(PrunedMark::Soft) => soft_trimmed(m),
                Some(PrunedMark::Hard(placeholder)) => with_text(m, placeholder.clone()),
                None => None,
            };
            projected.map_or_else(|| m.clone(), Arc::new)
        })
        .collect()
}

/// `messages` with the images of turns before the last [`IMAGE_TURNS_KEPT`]
/// completed ones (and the one in progress) sent as [`IMAGE_PROCESSED`],
/// and OpenClaw's textual media references in them (`[media attached: …]`,
/// `media://inbound/…`) as `MEDIA_REFERENCE_PROCESSED`:
/// the model saw them when they came. A turn is a user message and what
/// follows it, so the window moves only when a new user message begins;
/// the transcript keeps every image.
pub fn without_old_images(messages: &History) -> History {
    let Some(keep_from) = nth_last(messages, IMAGE_TURNS_KEPT + 1, |m| matches!(m, Message::User { .. })) else {
        return messages.clone();
    };
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if i >= keep_from || matches!(m.as_ref(), Message::Assistant { .. }) {
                return m.clone();
            }
            let seen = |c: &Content| match c {
                Content::Image { .. } => Some(Content::Text { text: IMAGE_PROCESSED.to_string() }),
                Content::Text { text } => without_media_references(text).map(|text| Content::Text { text }),
                _ => None,
            };
            if !m.content().iter().any(|c| seen(c).is_some()) {
                return m.clone();
            }
            let swap = |content: &[Content]| -> Vec<Content> {
                content.iter().map(|c| seen(c).unwrap_or_else(|| c.clone())).collect()
            };
            Arc::new(match m.as_ref() {
                Message::User { content, timestamp } => Message::User { content: swap(content), timestamp: *timestamp },
                Message::ToolResult { tool_call_id, tool_name, content, is_error, timestamp } => Message::ToolResult {
                    tool_call_id: tool_call_id.clone(),
                    tool_name: tool_name.clone(),
                    content: swap(content),
                    is_error: *is_error,
                    timestamp: *timestamp,
                },
                other => other.clone(),
            })
        })
        .collect()
}

/// A new pruning round on `messages` (the originals) with `marks` in force:
/// skipped below [`SOFT_RATIO`] of the window; old prunable results
/// soft-trimmed, then, at or above [`HARD_RATIO`] with at least
/// [`MIN_PRUNABLE_CHARS`] of them, hard-cleared oldest first until the
/// context is back under it. Never the last [`KEEP_LAST_ASSISTANTS`]
/// assistant messages and what follows them, never before the first user
/// message. Adds to `marks`; whether it added any.
pub fn round(messages: &History, marks: &mut Marks, plan: &Pruning) -> bool {
    let Some(cutoff) = nth_last(messages, KEEP_LAST_ASSISTANTS, |m| matches!(m, Message::Assistant { .. })) else {
        return false;
    };
    let Some(start) = messages.iter().position(|m| matches!(m.as_ref(), Message::User { .. })) else {
        return false;
    };
    let window = plan.window_chars().max(1) as f64;
    let projected = replay(messages, marks);
    let mut chars: Vec<usize> = projected.iter().map(|m| message_chars(m)).collect();
    let mut total: usize = chars.iter().sum();
    if (total as f64) / window < SOFT_RATIO {
        return false;
    }
    let keys = keys(messages);
    let mut changed = false;
    let mut eligible = Vec::new();
    for i in start..cutoff {
        let (Message::ToolResult { tool_name, .. }, Some(k)) = (messages[i].as_ref(), &keys[i]) else { continue };
        if !plan.prunable(tool_name) {
            continue;
        }
        match marks.get(k) {
            Some(PrunedMark::Hard(_)) => continue,
            Some(PrunedMark::Soft) => {}
            None => {
                if let Some(trimmed) = soft_trimmed(&messages[i]) {
                    let n = message_chars(&trimmed);
                    total = total + n - chars[i];
                    chars[i] = n;
                    marks.insert(k.clone(), PrunedMark::Soft);
                    changed = true;
                }
            }
        }
        eligible.push(i);
    }
    let prunable: usize = eligible.iter().map(|&i| chars[i]).sum();
    if plan.hard_clear && (total as f64) / window >= HARD_RATIO && prunable >= MIN_PRUNABLE_CHARS {
        for i in eligible {
            if (total as f64) / window < HARD_RATIO {
                break;
            }
            let Some(k) = &keys[i] else { continue };
            total = total + plan.placeholder.chars().count() - chars[i];
            marks.insert(k.clone(), PrunedMark::Hard(plan.placeholder.clone()));
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Usage;
    use chela_core::config::load_str;
    use serde_json::json;

    fn plan(extra: &str, window: u64) -> Pruning {
        let text = format!(
            r#"{{ models: {{ providers: {{ openai: {{ models: [{{ id: "m", name: "m", contextWindow: {window} }}] }} }} }},
                 agents: {{ defaults: {{ contextPruning: {{ mode: "cache-ttl" {extra} }} }} }} }}"#
        );
        chela_core::pruning::plan(&load_str(&text, None).unwrap().config, "openai/m", None).unwrap()
    }
    fn user(t: &str) -> Arc<Message> {
        Arc::new(Message::user(t, 0))
    }
    fn assistant(content: Vec<Content>) -> Arc<Message> {
        Arc::new(Message::Assistant {
            content,
            timestamp: 0,
            provider: "openai".into(),
            model: "m".into(),
            usage: Usage::default(),
            stop_reason: "stop".into(),
        })
    }
    fn call(id: &str, tool: &str) -> Arc<Message> {
        assistant(vec![Content::ToolCall { id: id.into(), name: tool.into(), arguments: json!({}) }])
    }
    fn answer() -> Arc<Message> {
        assistant(vec![Content::Text { text: "ok".into() }])
    }
    fn result(id: &str, tool: &str, text: &str) -> Arc<Message> {
        Arc::new(Message::ToolResult {
            tool_call_id: id.into(),
            tool_name: tool.into(),
            content: vec![Content::Text { text: text.into() }],
            is_error: false,
            timestamp: 7,
        })
    }
    /// A result per `(tool, size)`, each followed by an answer, then three more answers.
    fn session(results: &[(&str, usize)]) -> History {
        let mut m = vec![user("hi")];
        for (i, (tool, size)) in results.iter().enumerate() {
            let id = format!("c{i}");
            m.push(call(&id, tool));
            let letter = char::from(b'a' + (i % 26) as u8);
            m.push(result(&id, tool, &letter.to_string().repeat(*size)));
            m.push(answer());
        }
        for _ in 0..KEEP_LAST_ASSISTANTS {
            m.push(user("more"));
            m.push(answer());
        }
        m
    }

    #[test]
    fn a_large_old_result_is_soft_trimmed_and_replayed_the_same() {
        let m = session(&[("read", 30_000)]);
        let p = plan("", 20_000); // 80,000 characters: 30,000 is over 30%
        let mut marks = Marks::new();
        assert!(round(&m, &mut marks, &p));
        assert_eq!(marks.get("tool:c0:7"), Some(&PrunedMark::Soft));
        let sent = replay(&m, &marks);
        let text = sent[2].text();
        assert!(text.starts_with(&"a".repeat(SOFT_TRIM_KEEP_CHARS)) && text.contains("\n...\n"), "{text}");
        assert!(text.ends_with("[Tool result trimmed: kept first 1500 chars and last 1500 chars of 30000 chars.]"));
        assert_eq!(m[2].text().len(), 30_000, "the originals are untouched");
        assert!(!round(&m, &mut marks, &p), "nothing more to do");
        assert_eq!(replay(&m, &marks)[2].text(), text, "byte for byte on every request");
    }

    #[test]
    fn a_small_context_the_recent_answers_and_denied_tools_are_left_alone() {
        let mut marks = Marks::new();
        assert!(!round(&session(&[("read", 30_000)]), &mut marks, &plan("", 200_000)), "under 30% of the window");
        let mut recent = session(&[("read", 30_000)]);
        recent.truncate(recent.len() - 4); // the call is now the third answer from the end
        assert!(!round(&recent, &mut marks, &plan("", 20_000)));
        let denied = plan(r#", tools: { deny: ["read"] }"#, 20_000);
        assert!(!round(&session(&[("read", 30_000)]), &mut marks, &denied));
        let allow = plan(r#", tools: { allow: ["exec"] }"#, 20_000);
        assert!(!round(&session(&[("read", 30_000)]), &mut marks, &allow), "outside the allowlist");
        assert!(marks.is_empty());
    }

    #[test]
    fn past_half_the_window_old_results_are_cleared_oldest_first() {
        // Fifteen results of 3,900 characters (too small to trim): 58,500
        // prunable of a 100,000-character window; clearing stops below 50%.
        let m = session(&vec![("exec", 3_900); 15]);
        let p = plan(r#", hardClear: { placeholder: "[cleared]" }"#, 25_000);
        let mut marks = Marks::new();
        assert!(round(&m, &mut marks, &p));
        let hard: Vec<&String> =
            marks.iter().filter(|(_, v)| matches!(v, PrunedMark::Hard(_))).map(|(k, _)| k).collect();
        assert!(!hard.is_empty() && hard.len() < 15, "{hard:?}");
        assert_eq!(marks.get("tool:c0:7"), Some(&PrunedMark::Hard("[cleared]".into())), "the oldest first");
        let sent = replay(&m, &marks);
        let total: usize = sent.iter().map(|x| message_chars(x)).sum();
        assert!((total as f64) / 100_000.0 < HARD_RATIO, "{total}");
        let off = plan(r#", hardClear: { enabled: false }"#, 25_000);
        assert!(!round(&m, &mut Marks::new(), &off), "no trim applies and clearing is off");
    }

    #[test]
    fn images_of_turns_before_the_last_three_completed_ones_are_sent_as_a_marker() {
        let photo = || Content::Image { data: "AAAA".into(), mime_type: "image/jpeg".into() };
        let with_photo = Arc::new(Message::User {
            content: vec![Content::Text { text: "what is this?".into() }, photo()],
            timestamp: 1,
        });
        let mut m: History = vec![with_photo, answer()];
        for turn in 2..=4 {
            m.push(user(&format!("turn {turn}")));
            m.push(answer());
            // The photo's turn is among the last three completed: sent again.
            assert_eq!(without_old_images(&m)[0].images().count(), 1, "turn {turn}");
        }
        m.push(user("turn 5"));
        let sent = without_old_images(&m);
        assert_eq!(sent[0].images().count(), 0);
        assert_eq!(
            sent[0].text(),
            format!("what is this?\n{IMAGE_PROCESSED}"),
            "the text stays, the image is a marker"
        );
        assert_eq!(m[0].images().count(), 1, "the transcript's message keeps it");
        assert!(Arc::ptr_eq(&sent[1], &m[1]), "messages without images are shared, not copied");
    }

    #[test]
    fn openclaws_media_references_of_older_turns_are_sent_as_a_marker() {
        let referenced = "[media attached: /home/u/.openclaw/media/inbound/a.jpg] what is this?";
        let mut m: History = vec![user(referenced), answer()];
        for turn in 2..=4 {
            m.push(user(&format!("turn {turn} media://inbound/xyz")));
            m.push(answer());
        }
        m.push(user("turn 5"));
        let sent = without_old_images(&m);
        let marker = chela_core::pruning::MEDIA_REFERENCE_PROCESSED;
        assert_eq!(sent[0].text(), format!("{marker} what is this?"));
        assert_eq!(sent[2].text(), "turn 2 media://inbound/xyz", "a recent turn keeps its reference");
        assert_eq!(m[0].text(), referenced, "the transcript's message keeps it");
    }

    #[test]
    fn results_sharing_a_key_are_never_pruned() {
        let mut m = session(&[("read", 30_000), ("read", 30_000)]);
        // Both results now claim call id c0 at the same timestamp.
        m[5] = result("c0", "read", &"b".repeat(30_000));
        let mut marks = Marks::new();
        round(&m, &mut marks, &plan("", 20_000));
        assert!(!marks.contains_key("tool:c0:7"), "{marks:?}");
    }
}
