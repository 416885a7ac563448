//! Model providers: one request/response shape for every provider, so the
//! run loop does not care which model answers. Providers are host-native
//! (not plugins): they hold the agent's credentials, which never enter wasm.
//!
//! Must not: know sessions, tools' implementations or routing.

pub mod anthropic;
pub mod offline;
pub mod openai;
mod sse;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use crate::persona::Identity;
use crate::store::{Content, History, Usage};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a listener hears while a turn runs: the answer's text as it
/// streams in, and the turn's stages (for status reactions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEvent<'a> {
    /// More of the answer's text.
    Delta(&'a str),
    /// One assistant message of the turn is complete (more may follow
    /// after its tool calls).
    MessageEnd,
    /// The model is asked (each round of the turn).
    Thinking,
    /// A tool call starts (the tool's name).
    Tool(&'a str),
    /// The session is being compacted.
    Compacting,
    /// A finished tool call as `/verbose` shows it, for a caller that shows
    /// them as they happen ([`crate::Inbound::live_tool_summaries`]).
    ToolSummary(&'a str),
}

/// Receives the answer's text as the model produces it (for streaming it
/// on: SSE to an API client, previews and block replies in chats). The
/// finished reply is still returned whole.
pub type TextSink = Arc<dyn Fn(TextEvent<'_>) + Send + Sync>;

/// A tool as the model is shown it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: Value,
}

pub struct ModelRequest {
    /// What the answer is for (providers send every request alike; the
    /// offline model answers a summary request with a summary).
    pub purpose: Purpose,
    /// Sampling and length settings, when the caller asked for any.
    pub sampling: Sampling,
    /// The model id after `provider/`.
    pub model: String,
    pub system: String,
    pub messages: History,
    pub tools: Vec<ToolSpec>,
    pub identity: Identity,
    /// The agent's state dir (credentials, the offline provider's script).
    pub agent_dir: PathBuf,
    /// Where text deltas go while the answer streams in (`None`: nobody listens).
    pub on_text: Option<TextSink>,
    /// The thinking level to ask for (`/think`, `thinkingDefault`); `None`:
    /// the provider's default, nothing sent.
    pub thinking: Option<chela_core::thinking::ThinkLevel>,
    /// Old tool results the provider is asked to clear on its side
    /// (Anthropic's context editing); `None`: nothing asked.
    pub tool_clearing: Option<ToolClearing>,
}

/// Server-side clearing of old tool results (Anthropic's
/// `clear_tool_uses_20250919` edit), as session pruning derives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolClearing {
    /// Clear once the input holds this many tokens…
    pub trigger_tokens: u64,
    /// …keeping this many of the latest tool uses…
    pub keep_tool_uses: u64,
    /// …and only when at least this many tokens go.
    pub clear_at_least_tokens: u64,
    /// Tools whose results are never cleared.
    pub exclude_tools: Vec<String>,
}

/// Why the run loop asks the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Purpose {
    /// A turn of the conversation (or a housekeeping turn such as the memory flush).
    #[default]
    Turn,
    /// A compaction summary: the one user message holds what to summarise
    /// (`compaction::summary_input`).
    Summary,
}

/// What a caller may ask of the model beside the messages (OpenAI's
/// Chat Completions fields, validated by the caller): each provider sends
/// what its API has (`max_completion_tokens` or `max_tokens`, `stop` or
/// `stop_sequences`) and leaves the rest out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sampling {
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub presence_penalty: Option<f64>,
    pub seed: Option<i64>,
    pub stop: Vec<String>,
}

impl ModelRequest {
    /// Passes a piece of the answer's text on to whoever listens.
    pub fn emit(&self, text: &str) {
        if let (Some(sink), false) = (&self.on_text, text.is_empty()) {
            sink(TextEvent::Delta(text));
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelReply {
    pub content: Vec<Content>,
    pub usage: Usage,
    /// `stop`, `toolUse`, `length` (pi's names).
    pub stop_reason: String,
}

impl ModelReply {
    /// Its text blocks, one per line (no thinking, no tool calls).
    pub fn text(&self) -> String {
        crate::store::transcript::text_of(&self.content)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("model provider `{provider}` is not available: {why}")]
    Unavailable { provider: String, why: String },
    #[error("model provider `{provider}` is rate limited")]
    RateLimited { provider: String, retry_after_ms: Option<u64> },
    #[error("model provider `{provider}` failed: {message}")]
    Failed { provider: String, message: String },
    #[error("{path}: {message}")]
    Script { path: String, message: String },
}

/// An audio file to turn into text (a voice note, with the agent's credentials).
pub struct TranscribeRequest<'a> {
    pub model: &'a str,
    pub file_name: &'a str,
    pub mime_type: &'a str,
    pub data: &'a [u8],
    pub language: Option<&'a str>,
    /// The agent's state dir (its credentials).
    pub agent_dir: &'a std::path::Path,
}

/// A model provider.
pub trait Provider: Send + Sync {
    fn id(&self) -> &str;
    fn complete<'a>(&'a self, request: &'a ModelRequest) -> BoxFuture<'a, Result<ModelReply, ProviderError>>;
    /// How the agent whose state dir is `agent_dir` would authenticate now,
    /// where that changes what a request may ask (Anthropic: server-side
    /// pruning for API keys only); `None` when it does not matter or is unknown.
    fn auth_mode(&self, agent_dir: &std::path::Path) -> Option<chela_core::config::anthropic_defaults::AuthMode> {
        let _ = agent_dir;
        None
    }
    /// The text of an audio file, where the provider has a transcription API.
    fn transcribe<'a>(&'a self, request: &'a TranscribeRequest<'a>) -> BoxFuture<'a, Result<String, ProviderError>> {
        let _ = request;
        Box::pin(async move {
            Err(ProviderError::Unavailable {
                provider: self.id().to_string(),
                why: "it has no transcription API".into(),
            })
        })
    }
}

/// `provider/model` → (`provider`, `model`).
pub fn split_model(name: &str) -> Result<(&str, &str), String> {
    match name.split_once('/') {
        Some((p, m)) if !p.is_empty() && !m.is_empty() => Ok((p, m)),
        _ => Err(format!("model `{name}` must be written `provider/model` (for example `offline/persona`)")),
    }
}

/// The providers this process can use, by id.
#[derive(Clone)]
pub struct Providers {
    by_id: HashMap<String, Arc<dyn Provider>>,
}

impl Providers {
    /// The built-in ones: `offline`.
    pub fn builtin() -> Providers {
        let mut p = Providers { by_id: HashMap::new() };
        p.insert(Arc::new(offline::Offline));
        p
    }

    /// The built-in ones, `anthropic` (api.anthropic.com, or its `baseUrl`),
    /// `openai` (api.openai.com, or `models.providers.openai.baseUrl`),
    /// and every `models.providers.<id>` with a `baseUrl` (OpenAI-compatible:
    /// Ollama, vLLM, llama.cpp…; a key is optional there).
    pub fn from_config(cfg: &chela_core::config::Config, env: Arc<chela_core::config::EnvVars>) -> Providers {
        let mut p = Providers::builtin();
        let configured = cfg
            .models
            .as_ref()
            .and_then(|m| m.get("providers"))
            .and_then(|v| v.as_object())
            .cloned()
            .unwrap_or_default();
        let base_of = |id: &str| configured.get(id).and_then(|c| c["baseUrl"].as_str()).map(str::to_string);
        let key_of = |id: &str| configured.get(id).and_then(|c| c.get("apiKey")).cloned();
        let openai_base = base_of("openai").unwrap_or_else(|| "https://api.openai.com/v1".into());
        p.insert(Arc::new(
            openai::OpenAiCompatible::new("openai", &openai_base, true, env.clone())
                .with_configured_key(key_of("openai")),
        ));
        let anthropic_base = base_of("anthropic").unwrap_or_else(|| "https://api.anthropic.com".into());
        p.insert(Arc::new(
            anthropic::Anthropic::new(&anthropic_base, env.clone()).with_configured_key(key_of("anthropic")),
        ));
        for (id, c) in &configured {
            if id == "openai" || id == "offline" || id == "anthropic" {
                continue;
            }
            if let Some(base) = c["baseUrl"].as_str() {
                p.insert(Arc::new(
                    openai::OpenAiCompatible::new(id, base, false, env.clone()).with_configured_key(key_of(id)),
                ));
            }
        }
        p
    }

    pub fn insert(&mut self, provider: Arc<dyn Provider>) {
        self.by_id.insert(provider.id().to_string(), provider);
    }

    pub fn get(&self, id: &str) -> Option<&Arc<dyn Provider>> {
        self.by_id.get(id)
    }

    /// Every provider's id, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.by_id.keys().cloned().collect();
        ids.sort();
        ids
    }
}
