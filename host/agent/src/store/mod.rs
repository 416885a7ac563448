//! Sessions: the index (`sessions.json`: session key → [`SessionEntry`]) and
//! the transcripts, behind [`SessionStore`]: the embedded [`file::FileStore`]
//! (the default) or the shared [`postgres::PgStore`] replicas use.
//!
//! Must not: know where a store lives (the runtime asks core's paths) or decide when a session
//! resets.

mod cache;
pub mod file;
mod index;
pub mod postgres;
pub mod transcript;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use file::{Durability, FileStore};
pub use postgres::PgStore;
pub use transcript::{Content, History, Message, Transcript, Usage};

/// One `sessions.json` entry. Fields chela does not use are kept as they
/// were (`extra`), so an OpenClaw store survives being written by chela.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionEntry {
    pub session_id: String,
    pub updated_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// Where replies for this session go (newer OpenClaw; `last*` below for older readers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_context: Option<DeliveryContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_thread_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_started_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_interaction_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
    /// The session's own model (`/model <name>`), OpenClaw's fields:
    /// `providerOverride` + `modelOverride`, `modelOverrideSource: "user"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_override: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_override: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_override_source: Option<String>,
    /// Compactions of this session (OpenClaw's `compactionCount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compaction_count: Option<u64>,
    /// When the last pre-compaction memory flush ran, and at which compaction count
    /// (one flush per compaction cycle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_flush_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_flush_compaction_count: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Who and where a session's messages come from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Origin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
}

/// `/verbose`: whether answers end with the tools they used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbose {
    #[default]
    Off,
    On,
    Full,
}

impl Verbose {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verbose::Off => "off",
            Verbose::On => "on",
            Verbose::Full => "full",
        }
    }
}

/// The route a reply takes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryContext {
    pub channel: String,
    pub to: String,
    pub account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
}

impl SessionEntry {
    /// The model the session's user picked (`provider/model`), when one is pinned.
    pub fn pinned_model(&self) -> Option<String> {
        match (&self.provider_override, &self.model_override) {
            (Some(p), Some(m)) if !p.is_empty() && !m.is_empty() => Some(format!("{p}/{m}")),
            _ => None,
        }
    }

    /// A text field OpenClaw keeps on the entry (`thinkingLevel`, `sendPolicy`…).
    pub fn text_field(&self, key: &str) -> Option<String> {
        self.extra.get(key).and_then(Value::as_str).map(str::to_string)
    }

    /// Sets (or, with `None`, removes) such a field.
    pub fn set_text_field(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(v) => {
                self.extra.insert(key.into(), Value::from(v));
            }
            None => {
                self.extra.remove(key);
            }
        }
    }

    /// The session's `/think` pick (`thinkingLevel`), when it has one.
    pub fn thinking_level(&self) -> Option<String> {
        self.text_field("thinkingLevel")
    }

    /// The session's `/elevated` pick (`elevatedLevel`), when it has one.
    pub fn elevated_level(&self) -> Option<String> {
        self.text_field("elevatedLevel")
    }

    /// The session's `/verbose` setting (`verboseLevel`; `off` when unset).
    pub fn verbose_level(&self) -> Verbose {
        match self.text_field("verboseLevel").as_deref() {
            Some("on") => Verbose::On,
            Some("full") => Verbose::Full,
            _ => Verbose::Off,
        }
    }

    pub fn set_verbose_level(&mut self, level: Verbose) {
        self.set_text_field("verboseLevel", (level != Verbose::Off).then_some(level.as_str()));
    }

    /// The session's `/queue` settings, as OpenClaw stores them
    /// (`queueMode`, `queueDebounceMs`, `queueCap`, `queueDrop`); a value
    /// that does not parse counts as unset.
    pub fn queue_override(&self) -> chela_core::queue_mode::QueueOverride {
        use chela_core::queue_mode::{DropPolicy, QueueMode, QueueOverride};
        let text = |k: &str| self.extra.get(k).and_then(Value::as_str);
        let number = |k: &str| self.extra.get(k).and_then(Value::as_u64);
        QueueOverride {
            mode: text("queueMode").and_then(QueueMode::parse_persisted),
            debounce: number("queueDebounceMs").map(std::time::Duration::from_millis),
            cap: number("queueCap").and_then(|n| usize::try_from(n).ok()).filter(|n| *n >= 1),
            drop: text("queueDrop").and_then(DropPolicy::parse),
        }
    }

    /// Stores `own` as the session's `/queue` settings (unset fields removed).
    pub fn set_queue_override(&mut self, own: &chela_core::queue_mode::QueueOverride) {
        let mut put = |k: &str, v: Option<Value>| match v {
            Some(v) => {
                self.extra.insert(k.to_string(), v);
            }
            None => {
                self.extra.remove(k);
            }
        };
        put("queueMode", own.mode.map(|m| Value::from(m.as_str())));
        put("queueDebounceMs", own.debounce.map(|d| Value::from(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))));
        put("queueCap", own.cap.map(|n| Value::from(n as u64)));
        put("queueDrop", own.drop.map(|d| Value::from(d.as_str())));
    }

    /// A new session for the same key (a reset): a new id and start, no
    /// transcript file named, the token counts cleared; the rest stays.
    pub fn restart(&mut self, now_ms: i64) {
        self.session_id = uuid::Uuid::new_v4().to_string();
        self.session_file = None;
        self.session_started_at = Some(now_ms);
        self.updated_at = now_ms;
        self.input_tokens = None;
        self.output_tokens = None;
        self.total_tokens = None;
    }

    pub fn new(now_ms: i64) -> SessionEntry {
        SessionEntry {
            session_id: uuid::Uuid::new_v4().to_string(),
            updated_at: now_ms,
            session_file: None,
            chat_type: None,
            origin: None,
            delivery_context: None,
            last_channel: None,
            last_to: None,
            last_account_id: None,
            last_thread_id: None,
            session_started_at: Some(now_ms),
            last_interaction_at: None,
            input_tokens: None,
            output_tokens: None,
            total_tokens: None,
            provider_override: None,
            model_override: None,
            model_override_source: None,
            compaction_count: None,
            memory_flush_at: None,
            memory_flush_compaction_count: None,
            extra: Map::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The index exists but is not a JSON object of entries; it is left as it is.
    #[error("{path}:{line}:{column}: session index is not valid JSON ({message}); fix or move it, chela will not overwrite it")]
    CorruptIndex { path: PathBuf, line: usize, column: usize, message: String },
    #[error("{path}: session `{key}` has an unreadable entry: {message}")]
    BadEntry { path: PathBuf, key: String, message: String },
    /// The blocking task a store call ran on was cancelled (the runtime is shutting down).
    #[error("a session store call did not complete: {0}")]
    Interrupted(String),
    /// The shared database refused or could not be reached; `transient`:
    /// the server is away or slow, not the request at fault.
    #[error("session store: {message}")]
    Database { transient: bool, message: String },
}

impl StoreError {
    /// A write that may succeed later (a full disk, a database away): the
    /// turn is run again, holding the session's place, instead of failing.
    pub fn passes(&self) -> bool {
        matches!(self, StoreError::Io { .. } | StoreError::Database { transient: true, .. })
    }
}

/// A session's turn held against other processes sharing the store; the
/// hold ends when this is dropped.
#[derive(Default)]
pub struct TurnHold(Option<Box<dyn Send + Sync>>);

impl TurnHold {
    pub fn new(held: impl Send + Sync + 'static) -> TurnHold {
        TurnHold(Some(Box::new(held)))
    }

    /// Whether anything is held (a shared store), for logs and tests.
    pub fn is_shared(&self) -> bool {
        self.0.is_some()
    }
}

pub type HoldFuture = Pin<Box<dyn Future<Output = Result<TurnHold, StoreError>> + Send>>;

/// A session store. Methods are synchronous and may wait for a disk sync; the
/// run loop calls them on the blocking pool, never on an async worker.
pub trait SessionStore: Send + Sync {
    /// The entry of `key`, if any.
    fn get(&self, key: &str) -> Result<Option<SessionEntry>, StoreError>;
    /// Every readable entry, most recently updated first.
    fn list(&self) -> Result<Vec<(String, SessionEntry)>, StoreError>;
    /// Creates the entry if missing (new session id), lets `edit` change it,
    /// stores it and returns it.
    fn upsert(&self, key: &str, edit: &mut dyn FnMut(&mut SessionEntry)) -> Result<SessionEntry, StoreError>;
    /// Starts a new session for `key` (new id); the old transcript is archived.
    fn reset(&self, key: &str) -> Result<SessionEntry, StoreError>;
    /// Appends whole lines to the entry's transcript (created with its header if new).
    fn append(&self, entry: &SessionEntry, cwd: &str, lines: &[Value]) -> Result<(), StoreError>;
    /// Reads the entry's transcript (a torn last line is skipped, with a warning).
    fn transcript(&self, entry: &SessionEntry) -> Result<Transcript, StoreError>;
    /// Holds `key`'s turns against every other process on this store until
    /// the hold is dropped, waiting while another holds them. A store one
    /// process owns (the embedded files, under the journal's lock) holds nothing.
    fn hold_turn(&self, _key: &str) -> HoldFuture {
        Box::pin(async { Ok(TurnHold::default()) })
    }
}
