//! The Anthropic Messages API: `POST {baseUrl}/v1/messages` with
//! `anthropic-version: 2023-06-01`, `stream: true`, tools as `input_schema`;
//! the server-sent events (`message_start`, `content_block_start/delta/stop`,
//! `message_delta`, `error`) are folded into one reply. Tool results go back
//! as `tool_result` blocks in a user message. Credentials per agent
//! (`crate::auth`): an API key as `x-api-key`, a token as a bearer.
//!
//! Must not: choose the model or its credentials (the runtime and `auth` do), or touch the session
//! store.

use std::sync::Arc;
use std::time::Duration;

use chela_core::config::anthropic_defaults::AuthMode;
use chela_core::config::EnvVars;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::{BoxFuture, ModelReply, ModelRequest, Provider, ProviderError};
use crate::store::{Content, Message, Usage};

pub const API_VERSION: &str = "2023-06-01";
const MAX_TOKENS: u64 = 4096;

pub struct Anthropic {
    base_url: String,
    client: reqwest::Client,
    env: Arc<EnvVars>,
    /// `models.providers.anthropic.apiKey`, as written (`auth.rs` reads it).
    configured_key: Option<serde_json::Value>,
}

impl Anthropic {
    pub fn new(base_url: &str, env: Arc<EnvVars>) -> Anthropic {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(120))
            .build()
            .unwrap_or_default();
        Anthropic { base_url: base_url.trim_end_matches('/').to_string(), client, env, configured_key: None }
    }

    /// With the provider's configured `apiKey` (`models.providers.anthropic.apiKey`).
    pub fn with_configured_key(mut self, key: Option<serde_json::Value>) -> Anthropic {
        self.configured_key = key;
        self
    }

    fn fail(&self, message: String) -> ProviderError {
        ProviderError::Failed { provider: "anthropic".into(), message }
    }
}

/// Our transcript → Anthropic `messages` (roles alternate: adjacent
/// same-role messages, such as several tool results, are merged).
fn messages(req: &ModelRequest) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for m in &req.messages {
        let (role, blocks): (&str, Vec<Value>) = match m.as_ref() {
            Message::User { .. } => {
                let mut blocks = vec![json!({"type": "text", "text": m.text()})];
                blocks.extend(m.images().map(|(mime, data)| {
                    json!({"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}})
                }));
                ("user", blocks)
            }
            Message::Assistant { content, .. } => (
                "assistant",
                content
                    .iter()
                    .filter_map(|c| match c {
                        Content::Text { text } if !text.is_empty() => Some(json!({"type": "text", "text": text})),
                        Content::ToolCall { id, name, arguments } => {
                            Some(json!({"type": "tool_use", "id": id, "name": name, "input": arguments}))
                        }
                        // Its own reasoning goes back as it came (a tool round needs it), signed.
                        Content::Thinking { thinking_signature: Some(sig), redacted: true, .. } => {
                            Some(json!({"type": "redacted_thinking", "data": sig}))
                        }
                        Content::Thinking { thinking, thinking_signature: Some(sig), .. } => {
                            Some(json!({"type": "thinking", "thinking": thinking, "signature": sig}))
                        }
                        _ => None,
                    })
                    .collect(),
            ),
            Message::ToolResult { tool_call_id, is_error, .. } => (
                "user",
                vec![
                    json!({"type": "tool_result", "tool_use_id": tool_call_id, "content": m.text(), "is_error": is_error}),
                ],
            ),
        };
        if blocks.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some(last) if last["role"] == role => {
                if let Some(arr) = last["content"].as_array_mut() {
                    arr.extend(blocks);
                }
            }
            _ => out.push(json!({"role": role, "content": blocks})),
        }
    }
    out
}

#[derive(Default)]
struct Fold {
    on_text: Option<crate::model::TextSink>,
    /// Blocks by index: (kind, text or tool id, tool name, partial JSON).
    blocks: Vec<(String, String, String, String)>,
    stop: Option<String>,
    usage: Usage,
}

impl Fold {
    fn event(&mut self, v: &Value) -> Result<(), String> {
        match v["type"].as_str().unwrap_or_default() {
            "message_start" => self.usage.input = v["message"]["usage"]["input_tokens"].as_u64().unwrap_or(0),
            "content_block_start" => {
                let b = &v["content_block"];
                let i = v["index"].as_u64().unwrap_or(0) as usize;
                while self.blocks.len() <= i {
                    self.blocks.push(Default::default());
                }
                self.blocks[i] = match b["type"].as_str() {
                    Some("thinking") => (
                        "thinking".into(),
                        b["thinking"].as_str().unwrap_or_default().into(),
                        b["signature"].as_str().unwrap_or_default().into(),
                        String::new(),
                    ),
                    Some("redacted_thinking") => {
                        ("redacted".into(), String::new(), b["data"].as_str().unwrap_or_default().into(), String::new())
                    }
                    Some("tool_use") => (
                        "tool_use".into(),
                        b["id"].as_str().unwrap_or_default().into(),
                        b["name"].as_str().unwrap_or_default().into(),
                        String::new(),
                    ),
                    _ => ("text".into(), b["text"].as_str().unwrap_or_default().into(), String::new(), String::new()),
                };
            }
            "content_block_delta" => {
                let i = v["index"].as_u64().unwrap_or(0) as usize;
                let Some(block) = self.blocks.get_mut(i) else { return Err("delta for an unknown block".into()) };
                let d = &v["delta"];
                match d["type"].as_str() {
                    Some("text_delta") => {
                        let t = d["text"].as_str().unwrap_or_default();
                        block.1.push_str(t);
                        if let (Some(sink), false) = (&self.on_text, t.is_empty()) {
                            sink(crate::model::TextEvent::Delta(t));
                        }
                    }
                    Some("input_json_delta") => block.3.push_str(d["partial_json"].as_str().unwrap_or_default()),
                    Some("thinking_delta") => block.1.push_str(d["thinking"].as_str().unwrap_or_default()),
                    Some("signature_delta") => block.2.push_str(d["signature"].as_str().unwrap_or_default()),
                    _ => {}
                }
            }
            "message_delta" => {
                self.stop = v["delta"]["stop_reason"].as_str().map(str::to_string).or(self.stop.take());
                self.usage.output = v["usage"]["output_tokens"].as_u64().unwrap_or(self.usage.output);
            }
            "error" => {
                return Err(format!(
                    "{}: {}",
                    v["error"]["type"].as_str().unwrap_or("error"),
                    v["error"]["message"].as_str().unwrap_or("")
                ))
            }
            _ => {}
        }
        Ok(())
    }

    fn reply(self) -> Result<ModelReply, String> {
        let mut content = Vec::new();
        for (kind, a, name, json_text) in self.blocks {
            if kind == "tool_use" {
                let arguments = if json_text.trim().is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(&json_text).map_err(|e| format!("tool_use `{name}` input is not JSON: {e}"))?
                };
                content.push(Content::ToolCall { id: a, name, arguments });
            } else if kind == "thinking" || kind == "redacted" {
                let signature = (!name.is_empty()).then_some(name);
                content.push(Content::Thinking {
                    thinking: a,
                    thinking_signature: signature,
                    redacted: kind == "redacted",
                });
            } else if !a.is_empty() {
                content.push(Content::Text { text: a });
            }
        }
        let stop_reason = match self.stop.as_deref() {
            Some("tool_use") => "toolUse",
            Some("max_tokens") => "length",
            _ => "stop",
        };
        Ok(ModelReply { content, usage: self.usage, stop_reason: stop_reason.into() })
    }
}

/// The beta that server-side clearing of old tool results needs.
pub const CONTEXT_MANAGEMENT_BETA: &str = "context-management-2025-06-27";

/// Anthropic's `context_management` for session pruning on the direct API:
/// one `clear_tool_uses_20250919` edit, tool inputs kept.
fn context_management(c: &crate::model::ToolClearing) -> Value {
    json!({"edits": [{
        "type": "clear_tool_uses_20250919",
        "trigger": {"type": "input_tokens", "value": c.trigger_tokens},
        "keep": {"type": "tool_uses", "value": c.keep_tool_uses},
        "clear_at_least": {"type": "input_tokens", "value": c.clear_at_least_tokens},
        "exclude_tools": c.exclude_tools,
        "clear_tool_inputs": false,
    }]})
}

/// Extended thinking for a level: a token budget (`max_tokens` raised above
/// it, sampling left to the API, which requires its defaults with thinking),
/// or the adaptive mode; `off` and no level send nothing.
fn thinking_fields(body: &mut Value, level: Option<chela_core::thinking::ThinkLevel>) {
    use chela_core::thinking::ThinkLevel;
    let Some(level) = level else { return };
    if level == ThinkLevel::Adaptive {
        body["thinking"] = json!({"type": "adaptive"});
        return;
    }
    let Some(budget) = level.anthropic_budget() else { return };
    body["thinking"] = json!({"type": "enabled", "budget_tokens": budget});
    let max = body["max_tokens"].as_u64().unwrap_or(MAX_TOKENS);
    if max <= budget {
        body["max_tokens"] = json!(budget + MAX_TOKENS);
    }
    if let Some(b) = body.as_object_mut() {
        b.remove("temperature");
        b.remove("top_p");
    }
}

/// API keys (`sk-ant-api…`) go in `x-api-key`; OAuth and setup tokens (a
/// `token` or `oauth` profile, or an `sk-ant-oat…` value wherever it was
/// written) as a bearer.
fn auth_mode(cred: &crate::auth::Credential) -> AuthMode {
    if cred.kind == crate::auth::CredentialKind::Token || cred.secret.starts_with("sk-ant-oat") {
        AuthMode::Token
    } else {
        AuthMode::ApiKey
    }
}

impl Anthropic {
    fn credential(&self, agent_dir: &std::path::Path) -> Result<Option<crate::auth::Credential>, ProviderError> {
        let now = crate::clock::now_ms();
        crate::auth::credential_with(agent_dir, "anthropic", self.configured_key.as_ref(), &*self.env, now)
            .map_err(|e| self.fail(e.to_string()))
    }

    async fn answer(&self, req: &ModelRequest) -> Result<ModelReply, ProviderError> {
        let cred = self.credential(&req.agent_dir)?.ok_or_else(|| ProviderError::Unavailable {
                provider: "anthropic".into(),
                why: format!(
                    "agent `{}` has no credential (auth-profiles.json in its agentDir, models.providers.anthropic.apiKey, or $ANTHROPIC_API_KEY)",
                    req.identity.agent_id
                ),
            })?;
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let schema = if t.parameters.is_object() { t.parameters.clone() } else { json!({"type": "object"}) };
                json!({"name": t.name, "description": t.description, "input_schema": schema})
            })
            .collect();
        let mut body = json!({"model": req.model, "max_tokens": MAX_TOKENS, "system": req.system,
                              "messages": messages(req), "stream": true});
        if !tools.is_empty() {
            body["tools"] = json!(tools);
        }
        let sampling = &req.sampling;
        if let Some(n) = sampling.max_tokens {
            body["max_tokens"] = json!(n);
        }
        for (field, v) in [("temperature", sampling.temperature), ("top_p", sampling.top_p)] {
            if let Some(v) = v {
                body[field] = json!(v);
            }
        }
        if !sampling.stop.is_empty() {
            body["stop_sequences"] = json!(sampling.stop);
        }
        thinking_fields(&mut body, req.thinking);
        if let Some(c) = &req.tool_clearing {
            body["context_management"] = context_management(c);
        }
        let mut http = self
            .client
            .post(format!("{}/v1/messages", self.base_url))
            .header("content-type", "application/json")
            .header("anthropic-version", API_VERSION);
        if req.tool_clearing.is_some() {
            http = http.header("anthropic-beta", CONTEXT_MANAGEMENT_BETA);
        }
        let mut http = http.body(body.to_string());
        http = match auth_mode(&cred) {
            AuthMode::Token => http.bearer_auth(&cred.secret),
            AuthMode::ApiKey => http.header("x-api-key", &cred.secret),
        };
        let resp = http.send().await.map_err(|e| self.fail(format!("request failed: {e}")))?;
        let status = resp.status();
        if status.as_u16() == 429 || status.as_u16() == 529 {
            let retry =
                resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
            return Err(ProviderError::RateLimited {
                provider: "anthropic".into(),
                retry_after_ms: retry.map(|s| s * 1000),
            });
        }
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            let msg = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or(text);
            return Err(self.fail(format!("HTTP {status}: {msg}")));
        }
        let mut fold = Fold { on_text: req.on_text.clone(), ..Fold::default() };
        let mut events = super::sse::event_data(resp);
        while let Some(data) = events.next().await {
            let data = data.map_err(|e| self.fail(format!("stream broke: {e}")))?;
            if data.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&data).map_err(|e| self.fail(format!("bad stream event: {e}")))?;
            fold.event(&v).map_err(|e| self.fail(e))?;
        }
        fold.reply().map_err(|e| self.fail(e))
    }
}

impl Provider for Anthropic {
    fn id(&self) -> &str {
        "anthropic"
    }

    fn complete<'a>(&'a self, request: &'a ModelRequest) -> BoxFuture<'a, Result<ModelReply, ProviderError>> {
        Box::pin(self.answer(request))
    }

    fn auth_mode(&self, agent_dir: &std::path::Path) -> Option<AuthMode> {
        self.credential(agent_dir).ok().flatten().as_ref().map(auth_mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chela_core::thinking::ThinkLevel;

    #[test]
    fn server_side_clearing_is_one_edit_that_keeps_tool_inputs() {
        let c = crate::model::ToolClearing {
            trigger_tokens: 60_000,
            keep_tool_uses: 3,
            clear_at_least_tokens: 12_500,
            exclude_tools: vec!["memory_get".into()],
        };
        assert_eq!(
            context_management(&c),
            json!({"edits": [{"type": "clear_tool_uses_20250919",
                "trigger": {"type": "input_tokens", "value": 60_000}, "keep": {"type": "tool_uses", "value": 3},
                "clear_at_least": {"type": "input_tokens", "value": 12_500},
                "exclude_tools": ["memory_get"], "clear_tool_inputs": false}]})
        );
    }

    #[test]
    fn thinking_blocks_are_kept_signed_and_sent_back() {
        let mut fold = Fold::default();
        for e in [
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "the user wants "}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "a word count"}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig-1"}}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "opaque"}}),
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "t1", "name": "word_count"}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"text\":\"a b\"}"}}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
        ] {
            fold.event(&e).unwrap();
        }
        let reply = fold.reply().unwrap();
        assert_eq!(
            reply.content[0],
            Content::Thinking {
                thinking: "the user wants a word count".into(),
                thinking_signature: Some("sig-1".into()),
                redacted: false
            }
        );
        assert_eq!(
            reply.content[1],
            Content::Thinking { thinking: String::new(), thinking_signature: Some("opaque".into()), redacted: true }
        );
        assert_eq!(reply.stop_reason, "toolUse");
        // Stored as pi writes it, and read back the same.
        let stored = serde_json::to_value(&reply.content[0]).unwrap();
        assert_eq!(
            stored,
            json!({"type": "thinking", "thinking": "the user wants a word count", "thinkingSignature": "sig-1"})
        );
        assert_eq!(serde_json::from_value::<Content>(stored).unwrap(), reply.content[0]);

        let assistant = Message::Assistant {
            content: reply.content,
            timestamp: 0,
            provider: "anthropic".into(),
            model: "claude".into(),
            usage: Usage::default(),
            stop_reason: "toolUse".into(),
        };
        let req = ModelRequest {
            purpose: Default::default(),
            sampling: Default::default(),
            model: "claude".into(),
            system: String::new(),
            messages: vec![Arc::new(Message::user("count a b", 0)), Arc::new(assistant)],
            tools: Vec::new(),
            identity: Default::default(),
            agent_dir: Default::default(),
            on_text: None,
            thinking: Some(ThinkLevel::High),
            tool_clearing: None,
        };
        let sent = messages(&req);
        let blocks = sent[1]["content"].as_array().unwrap();
        assert_eq!(
            blocks[0],
            json!({"type": "thinking", "thinking": "the user wants a word count", "signature": "sig-1"})
        );
        assert_eq!(blocks[1], json!({"type": "redacted_thinking", "data": "opaque"}));
        assert_eq!(blocks[2]["type"], "tool_use");
    }

    #[test]
    fn a_level_asks_for_a_budget_above_max_tokens() {
        let mut body = json!({"max_tokens": MAX_TOKENS, "temperature": 0.2});
        thinking_fields(&mut body, Some(ThinkLevel::High));
        assert_eq!(body["thinking"], json!({"type": "enabled", "budget_tokens": 16384}));
        assert!(body["max_tokens"].as_u64().unwrap() > 16384);
        assert!(body.get("temperature").is_none(), "the API takes no temperature with thinking");
        let mut off = json!({"max_tokens": MAX_TOKENS});
        thinking_fields(&mut off, Some(ThinkLevel::Off));
        thinking_fields(&mut off, None);
        assert_eq!(off, json!({"max_tokens": MAX_TOKENS}));
        let mut adaptive = json!({});
        thinking_fields(&mut adaptive, Some(ThinkLevel::Adaptive));
        assert_eq!(adaptive["thinking"], json!({"type": "adaptive"}));
    }
}
