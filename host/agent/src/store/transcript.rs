//! The lines of a `<sessionId>.jsonl` transcript, in the pi session format
//! (version 3) that OpenClaw writes, so existing tooling can read ours.
//!
//! Line 1 is a `session` header; later lines are entries chained by
//! `id`/`parentId`. `message` entries feed the model; a `compaction` entry
//! (`summary`, `firstKeptEntryId`, `tokensBefore`) replaces what came before
//! its first kept entry with the summary, as pi and OpenClaw read it; other
//! entry types (`model_change`, `custom`, …) are kept on disk untouched.
//! The file keeps the whole history: compaction changes only what is read
//! back for the model.
//!
//! Must not: drop or rewrite entries it does not understand.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A conversation's messages, shared: handing the history to a model request
/// or a cache copies pointers, not the messages.
pub type History = Vec<Arc<Message>>;

/// One message of a conversation, as the transcript stores it and as the
/// run loop hands it to a model provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Message {
    User {
        content: Vec<Content>,
        timestamp: i64,
    },
    Assistant {
        content: Vec<Content>,
        timestamp: i64,
        provider: String,
        model: String,
        #[serde(default)]
        usage: Usage,
        #[serde(default)]
        stop_reason: String,
    },
    ToolResult {
        tool_call_id: String,
        tool_name: String,
        content: Vec<Content>,
        #[serde(default)]
        is_error: bool,
        timestamp: i64,
    },
}

/// A content block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Content {
    Text {
        text: String,
    },
    ToolCall {
        id: String,
        name: String,
        arguments: Value,
    },
    /// The model's reasoning (pi's shape): Anthropic's signature in
    /// `thinkingSignature` (a redacted block's data, with `redacted`), sent
    /// back to it as it asks; other providers never see it.
    #[serde(rename_all = "camelCase")]
    Thinking {
        thinking: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thinking_signature: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        redacted: bool,
    },
    /// An image the user sent (pi's shape: base64 `data`, `mimeType`), given
    /// to models that take images and described to the others.
    #[serde(rename_all = "camelCase")]
    Image {
        data: String,
        /// Empty when the block named none: such an image is kept, not sent.
        #[serde(default)]
        mime_type: String,
    },
    /// Blocks this runtime does not interpret: skipped for the model.
    #[serde(other)]
    Other,
}

/// Token counts as providers report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl Message {
    pub fn user(text: &str, timestamp: i64) -> Message {
        Message::User { content: vec![Content::Text { text: text.to_string() }], timestamp }
    }

    /// A user message with blocks after its text (the images that came with it).
    pub fn user_with(text: &str, media: &[Content], timestamp: i64) -> Message {
        let mut content = vec![Content::Text { text: text.to_string() }];
        content.extend(media.iter().cloned());
        Message::User { content, timestamp }
    }

    /// The images in this message: (MIME type, base64 data).
    pub fn images(&self) -> impl Iterator<Item = (&str, &str)> {
        self.content().iter().filter_map(|c| match c {
            Content::Image { data, mime_type } if !mime_type.is_empty() => Some((mime_type.as_str(), data.as_str())),
            _ => None,
        })
    }

    pub fn content(&self) -> &[Content] {
        match self {
            Message::User { content, .. }
            | Message::Assistant { content, .. }
            | Message::ToolResult { content, .. } => content,
        }
    }

    /// The text blocks joined (what a person would read).
    pub fn text(&self) -> String {
        text_of(self.content())
    }

    /// The length of [`text`](Self::text), without building it.
    pub fn text_len(&self) -> usize {
        let texts = self.content().iter().filter_map(|c| match c {
            Content::Text { text } => Some(text.len()),
            _ => None,
        });
        let (count, bytes) = texts.fold((0usize, 0usize), |(n, b), len| (n + 1, b + len));
        bytes + count.saturating_sub(1)
    }

    /// The tool calls an assistant message asks for.
    pub fn tool_calls(&self) -> Vec<(&str, &str, &Value)> {
        self.content()
            .iter()
            .filter_map(|c| match c {
                Content::ToolCall { id, name, arguments } => Some((id.as_str(), name.as_str(), arguments)),
                _ => None,
            })
            .collect()
    }
}

/// The index of the `n`-th last message of `messages` that `is` holds for
/// (`n` = 1: the last one); `None` when there are fewer.
pub fn nth_last(messages: &[Arc<Message>], n: usize, is: impl Fn(&Message) -> bool) -> Option<usize> {
    let found: Vec<usize> = messages.iter().enumerate().filter(|(_, m)| is(m)).map(|(i, _)| i).collect();
    found.len().checked_sub(n).map(|k| found[k])
}

/// The text blocks of `content`, one per line (no thinking, no tool calls, no images).
pub fn text_of(content: &[Content]) -> String {
    let parts: Vec<&str> = content
        .iter()
        .filter_map(|c| match c {
            Content::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    parts.join("\n")
}

/// The header line (`{"type":"session","version":3,…}`).
pub fn header(session_id: &str, cwd: &str, timestamp: &str) -> Value {
    serde_json::json!({"type": "session", "version": 3, "id": session_id, "timestamp": timestamp, "cwd": cwd})
}

/// A `message` entry line.
pub fn message_entry(id: &str, parent_id: Option<&str>, timestamp: &str, message: &Message) -> Value {
    serde_json::json!({
        "type": "message",
        "id": id,
        "parentId": parent_id,
        "timestamp": timestamp,
        "message": message,
    })
}

/// What the model reads of a compacted history: the summary as a user
/// message between these (pi's `compactionSummary` rendering).
pub const SUMMARY_PREFIX: &str =
    "The conversation history before this point was compacted into the following summary:\n\n<summary>\n";
pub const SUMMARY_SUFFIX: &str = "\n</summary>";

/// A `compaction` entry line: `summary` stands for everything before `first_kept`.
pub fn compaction_entry(
    id: &str,
    parent_id: Option<&str>,
    timestamp: &str,
    summary: &str,
    first_kept: &str,
    tokens_before: u64,
    tokens_after: u64,
) -> Value {
    serde_json::json!({
        "type": "compaction",
        "id": id,
        "parentId": parent_id,
        "timestamp": timestamp,
        "summary": summary,
        "firstKeptEntryId": first_kept,
        "tokensBefore": tokens_before,
        "tokensAfter": tokens_after,
    })
}

/// The `customType` of OpenClaw's session-pruning marker: when a model's
/// prompt cache was last touched, and which old tool results the model is
/// sent pruned (`docs/concepts/session-pruning.md`).
pub const CACHE_TTL_TYPE: &str = "openclaw.cache-ttl";

/// How one old tool result is sent, by its projection key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrunedMark {
    /// Cut to its first and last characters (re-derived from the result).
    Soft,
    /// Replaced by this text.
    Hard(String),
}

/// What the pruning markers of a transcript say.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CacheTtl {
    /// The last touch per `(provider, model)`, epoch ms.
    pub touched: Vec<(String, String, i64)>,
    /// The projections of the last marker that lists them.
    pub pruned: Option<Vec<(String, PrunedMark)>>,
}

impl CacheTtl {
    /// When `provider/model`'s cache was last touched.
    pub fn touched(&self, provider: &str, model: &str) -> Option<i64> {
        self.touched.iter().find(|(p, m, _)| p == provider && m == model).map(|(_, _, t)| *t)
    }

    fn read(&mut self, data: &Value) {
        let text = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        if let Some(ts) = data.get("timestamp").and_then(Value::as_i64) {
            let (provider, model) = (text("provider"), text("modelId"));
            self.touched.retain(|(p, m, _)| *p != provider || *m != model);
            self.touched.push((provider, model, ts));
        }
        let Some(list) = data.get("prunedToolResults").and_then(Value::as_array) else { return };
        let marks = list
            .iter()
            .filter_map(|e| {
                let key = e.get("key")?.as_str()?.to_string();
                match e.get("mode")?.as_str()? {
                    "soft" => Some((key, PrunedMark::Soft)),
                    "hard" => Some((key, PrunedMark::Hard(e.get("placeholder")?.as_str()?.to_string()))),
                    _ => None,
                }
            })
            .collect();
        self.pruned = Some(marks);
    }
}

/// A pruning marker line (`{"type":"custom","customType":"openclaw.cache-ttl",…}`):
/// `provider/model`'s cache touched at `touched_ms`, and, when they changed,
/// the projections now in force.
pub fn cache_ttl_entry(
    id: &str,
    parent_id: Option<&str>,
    timestamp: &str,
    touched: (&str, &str, i64),
    pruned: Option<&[(String, PrunedMark)]>,
) -> Value {
    let (provider, model, ms) = touched;
    let mut data = serde_json::json!({"timestamp": ms, "provider": provider, "modelId": model});
    if let Some(marks) = pruned {
        data["prunedToolResults"] = marks
            .iter()
            .map(|(key, mark)| match mark {
                PrunedMark::Soft => serde_json::json!({"key": key, "mode": "soft"}),
                PrunedMark::Hard(p) => serde_json::json!({"key": key, "mode": "hard", "placeholder": p}),
            })
            .collect();
    }
    serde_json::json!({
        "type": "custom",
        "customType": CACHE_TTL_TYPE,
        "id": id,
        "parentId": parent_id,
        "timestamp": timestamp,
        "data": data,
    })
}

/// What a transcript file holds, as read back.
#[derive(Debug, Default, Clone)]
pub struct Transcript {
    /// The conversation as the model sees it: since the last compaction, its
    /// summary (a user message) and the messages it kept, then what came after.
    pub messages: History,
    /// Per message of `messages`: its entry id (`None`: the compaction summary).
    pub ids: Vec<Option<Arc<str>>>,
    /// The summary of the last compaction, if the session was compacted.
    pub summary: Option<Arc<str>>,
    /// How many compaction entries the file holds.
    pub compactions: u64,
    /// The id of the last entry (the parent of the next one).
    pub last_id: Option<String>,
    /// Per message of `messages`: the inbound message it records
    /// (`inboundRef` of a user message entry, chela's own field).
    pub inbound_refs: Vec<Option<Arc<str>>>,
    /// Lines that could not be read (a torn last line after a crash), by 1-based number.
    pub skipped: Vec<usize>,
    /// Session pruning's markers.
    pub cache_ttl: CacheTtl,
}

impl Transcript {
    /// Parses a transcript; unreadable lines are skipped, never fatal.
    pub fn parse(text: &str) -> Transcript {
        let mut t = Transcript::default();
        for (i, raw) in text.split('\n').enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(raw) {
                Ok(line) if t.push_line(&line) => {}
                _ => t.skipped.push(i + 1),
            }
        }
        t
    }

    /// Takes in one more well-formed line (as appended after the ones read);
    /// `false` if it is a `message` entry whose message cannot be read.
    pub fn push_line(&mut self, line: &Value) -> bool {
        let kind = line.get("type").and_then(Value::as_str);
        if let (Some(id), false) = (line.get("id").and_then(Value::as_str), kind == Some("session")) {
            self.last_id = Some(id.to_string());
        }
        if kind == Some("compaction") {
            return self.compact(line);
        }
        if kind == Some("custom") && line.get("customType").and_then(Value::as_str) == Some(CACHE_TTL_TYPE) {
            if let Some(data) = line.get("data") {
                self.cache_ttl.read(data);
            }
            return true;
        }
        if kind != Some("message") {
            return true;
        }
        let inbound_ref = line.get("inboundRef").and_then(Value::as_str).map(Arc::from);
        let Some(Ok(m)) = line.get("message").map(Message::deserialize) else { return false };
        let id = line.get("id").and_then(Value::as_str).map(Arc::from);
        self.push_read(id, Arc::new(m), inbound_ref);
        true
    }

    /// Takes in a message entry appended after the ones read, already parsed
    /// (the run loop's own appends: no round trip through JSON).
    pub fn push_message(&mut self, id: &str, m: Arc<Message>, inbound_ref: Option<Arc<str>>) {
        self.last_id = Some(id.to_string());
        self.push_read(Some(Arc::from(id)), m, inbound_ref);
    }

    fn push_read(&mut self, id: Option<Arc<str>>, m: Arc<Message>, inbound_ref: Option<Arc<str>>) {
        self.messages.push(m);
        self.ids.push(id);
        self.inbound_refs.push(inbound_ref);
    }

    /// Whether `messages[0]` is the last compaction's summary.
    pub fn starts_with_summary(&self) -> bool {
        self.summary.is_some() && self.ids.first().is_some_and(Option::is_none)
    }

    /// Applies a `compaction` entry: the summary, then the messages from
    /// `firstKeptEntryId` on. An entry whose first kept message is not among
    /// those read keeps them all (nothing is lost to a broken reference).
    fn compact(&mut self, line: &Value) -> bool {
        let (Some(summary), Some(first_kept)) =
            (line.get("summary").and_then(Value::as_str), line.get("firstKeptEntryId").and_then(Value::as_str))
        else {
            return false;
        };
        self.compactions += 1;
        let Some(at) = self.ids.iter().position(|id| id.as_deref() == Some(first_kept)) else {
            self.summary = Some(Arc::from(summary));
            return true;
        };
        let timestamp = line
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(0, |t| t.timestamp_millis());
        let rendered = Message::user(&format!("{SUMMARY_PREFIX}{summary}{SUMMARY_SUFFIX}"), timestamp);
        let kept = self.messages.split_off(at);
        self.messages = std::iter::once(Arc::new(rendered)).chain(kept).collect();
        let kept_ids = self.ids.split_off(at);
        self.ids = std::iter::once(None).chain(kept_ids).collect();
        let kept_refs = self.inbound_refs.split_off(at);
        self.inbound_refs = std::iter::once(None).chain(kept_refs).collect();
        self.summary = Some(Arc::from(summary));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_in_pi_shape() {
        let m = Message::Assistant {
            content: vec![
                Content::Text { text: "hi".into() },
                Content::ToolCall { id: "c1".into(), name: "read".into(), arguments: serde_json::json!({"path": "a"}) },
            ],
            timestamp: 5,
            provider: "offline".into(),
            model: "persona".into(),
            usage: Usage { input: 3, output: 4, ..Usage::default() },
            stop_reason: "toolUse".into(),
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["role"], "assistant");
        assert_eq!(v["stopReason"], "toolUse");
        assert_eq!(v["content"][1]["type"], "toolCall");
        assert_eq!(serde_json::from_value::<Message>(v).unwrap(), m);
        let r = Message::ToolResult {
            tool_call_id: "c1".into(),
            tool_name: "read".into(),
            content: vec![Content::Text { text: "x".into() }],
            is_error: false,
            timestamp: 6,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!((v["role"].as_str(), v["toolCallId"].as_str()), (Some("toolResult"), Some("c1")));
    }

    #[test]
    fn torn_last_line_is_skipped_and_unknown_blocks_kept() {
        let text = concat!(
            r#"{"type":"session","version":3,"id":"s","timestamp":"t","cwd":"/w"}"#,
            "\n",
            r#"{"type":"message","id":"a1","parentId":null,"timestamp":"t","message":{"role":"user","content":[{"type":"image","data":"…"},{"type":"audio","data":"…"},{"type":"text","text":"hi"}],"timestamp":1}}"#,
            "\n",
            r#"{"type":"custom","id":"a2","parentId":"a1","timestamp":"t","data":{}}"#,
            "\n",
            r#"{"type":"message","id":"a3","parentId":"a2","timest"#
        );
        let t = Transcript::parse(text);
        assert_eq!(t.messages.len(), 1);
        assert_eq!(t.messages[0].text(), "hi");
        assert_eq!(t.messages[0].images().count(), 0, "an image without its MIME type is kept, not sent");
        assert_eq!(t.last_id.as_deref(), Some("a2"));
        assert_eq!(t.skipped, vec![4]);
    }

    #[test]
    fn pruning_markers_give_the_last_touch_per_model_and_the_last_projections() {
        let mut t = Transcript::default();
        let marks =
            vec![("tool:c1:5".to_string(), PrunedMark::Soft), ("tool:c2:6".into(), PrunedMark::Hard("[x]".into()))];
        let first = cache_ttl_entry("p1", None, "t", ("openai", "gpt", 100), Some(&marks));
        assert_eq!(first["customType"], CACHE_TTL_TYPE);
        assert_eq!(
            first["data"]["prunedToolResults"][1],
            serde_json::json!({"key": "tool:c2:6", "mode": "hard", "placeholder": "[x]"})
        );
        assert!(t.push_line(&first));
        // A later touch without projections keeps the listed ones; another model's touch is its own.
        assert!(t.push_line(&cache_ttl_entry("p2", Some("p1"), "t", ("openai", "gpt", 200), None)));
        assert!(t.push_line(&cache_ttl_entry("p3", Some("p2"), "t", ("anthropic", "claude", 300), None)));
        assert_eq!(t.cache_ttl.touched("openai", "gpt"), Some(200));
        assert_eq!(t.cache_ttl.touched("anthropic", "claude"), Some(300));
        assert_eq!(t.cache_ttl.touched("openai", "other"), None);
        assert_eq!(t.cache_ttl.pruned.as_deref(), Some(marks.as_slice()));
        assert_eq!((t.messages.len(), t.last_id.as_deref()), (0, Some("p3")), "markers are not messages");
    }

    #[test]
    fn a_compaction_entry_replaces_what_precedes_its_first_kept_message() {
        let mut t = Transcript::default();
        for (i, text) in ["one", "two", "three"].iter().enumerate() {
            let id = format!("m{i}");
            assert!(t.push_line(&message_entry(&id, None, "2026-12-03T00:00:00Z", &Message::user(text, 1))));
        }
        assert!(t.push_line(&compaction_entry("c1", Some("m2"), "2026-12-03T00:00:01Z", "S1", "m1", 90, 30)));
        assert_eq!(t.messages.len(), 3, "summary + two kept");
        assert!(t.messages[0].text().contains("<summary>\nS1\n</summary>"));
        assert_eq!(t.messages[1].text(), "two");
        assert_eq!((t.ids[0].clone(), t.compactions, t.last_id.as_deref()), (None, 1, Some("c1")));
        // A second compaction re-summarises: the earlier summary goes too.
        assert!(t.push_line(&message_entry("m3", Some("c1"), "t", &Message::user("four", 2))));
        assert!(t.push_line(&compaction_entry("c2", Some("m3"), "t", "S2", "m3", 60, 20)));
        assert_eq!(t.messages.iter().map(|m| m.text()).filter(|x| !x.contains("S2")).collect::<Vec<_>>(), ["four"]);
        assert_eq!((t.compactions, t.summary.as_deref()), (2, Some("S2")));
        // A reference to nothing read keeps every message.
        assert!(t.push_line(&compaction_entry("c3", Some("c2"), "t", "S3", "gone", 1, 1)));
        assert_eq!(t.messages.len(), 2);
        assert!(
            !t.push_line(&serde_json::json!({"type": "compaction", "id": "c4"})),
            "a compaction without summary is unreadable"
        );
    }
}
