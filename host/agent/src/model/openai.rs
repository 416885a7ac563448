//! OpenAI-compatible chat completions (OpenAI, and local servers that speak
//! it: Ollama, vLLM, llama.cpp): `POST {baseUrl}/chat/completions` with
//! `stream: true`, tools as `function`s; the server-sent events are folded
//! into one reply (text deltas, tool-call deltas by index, usage).
//! Credentials per agent (`crate::auth`), sent only to this provider's base URL.
//!
//! Must not: choose the model or its credentials (the runtime and `auth` do), or touch the session
//! store.

use std::sync::Arc;
use std::time::Duration;

use chela_core::config::EnvVars;

use futures_util::StreamExt;
use serde_json::{json, Value};

use super::{BoxFuture, ModelReply, ModelRequest, Provider, ProviderError, TranscribeRequest};
use crate::store::{Content, Message, Usage};

pub struct OpenAiCompatible {
    id: String,
    base_url: String,
    client: reqwest::Client,
    /// Reads environment variables (a closure so tests need no process env).
    env: Arc<EnvVars>,
    /// Local servers often need no key.
    key_required: bool,
    /// `models.providers.<id>.apiKey`, as written (`auth.rs` reads it).
    configured_key: Option<Value>,
}

impl OpenAiCompatible {
    pub fn new(id: &str, base_url: &str, key_required: bool, env: Arc<EnvVars>) -> OpenAiCompatible {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(120))
            .build()
            .unwrap_or_default();
        OpenAiCompatible {
            id: id.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            client,
            env,
            key_required,
            configured_key: None,
        }
    }

    /// With the provider's configured `apiKey` (`models.providers.<id>.apiKey`).
    pub fn with_configured_key(mut self, key: Option<Value>) -> OpenAiCompatible {
        self.configured_key = key;
        self
    }

    fn fail(&self, message: String) -> ProviderError {
        ProviderError::Failed { provider: self.id.clone(), message }
    }
}

/// Our transcript → OpenAI `messages`.
fn messages(req: &ModelRequest) -> Vec<Value> {
    let mut out = vec![json!({"role": "system", "content": req.system})];
    for m in &req.messages {
        match m.as_ref() {
            Message::User { .. } => {
                // Images as `image_url` parts with a data URL (vision models); text alone otherwise.
                let images: Vec<Value> = m
                    .images()
                    .map(|(mime, data)| json!({"type": "image_url", "image_url": {"url": format!("data:{mime};base64,{data}")}}))
                    .collect();
                let content = if images.is_empty() {
                    json!(m.text())
                } else {
                    let mut parts = vec![json!({"type": "text", "text": m.text()})];
                    parts.extend(images);
                    Value::Array(parts)
                };
                out.push(json!({"role": "user", "content": content}))
            }
            Message::Assistant { .. } => {
                let calls: Vec<Value> = m
                    .tool_calls()
                    .iter()
                    .map(|(id, name, args)| {
                        json!({"id": id, "type": "function", "function": {"name": name, "arguments": args.to_string()}})
                    })
                    .collect();
                let text = m.text();
                let mut msg =
                    json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
                if !calls.is_empty() {
                    msg["tool_calls"] = json!(calls);
                }
                out.push(msg);
            }
            Message::ToolResult { tool_call_id, .. } => {
                out.push(json!({"role": "tool", "tool_call_id": tool_call_id, "content": m.text()}))
            }
        }
    }
    out
}

/// Folds the stream's chunks into a reply.
#[derive(Default)]
struct Fold {
    on_text: Option<crate::model::TextSink>,
    text: String,
    calls: Vec<(String, String, String)>,
    finish: Option<String>,
    usage: Usage,
}

impl Fold {
    fn chunk(&mut self, v: &Value) {
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage.input = u["prompt_tokens"].as_u64().unwrap_or(0);
            self.usage.output = u["completion_tokens"].as_u64().unwrap_or(0);
        }
        let Some(choice) = v["choices"].get(0) else { return };
        if let Some(t) = choice["delta"]["content"].as_str() {
            self.text.push_str(t);
            if let (Some(sink), false) = (&self.on_text, t.is_empty()) {
                sink(crate::model::TextEvent::Delta(t));
            }
        }
        for tc in choice["delta"]["tool_calls"].as_array().into_iter().flatten() {
            let i = tc["index"].as_u64().unwrap_or(0) as usize;
            while self.calls.len() <= i {
                self.calls.push(Default::default());
            }
            let call = &mut self.calls[i];
            if let Some(id) = tc["id"].as_str() {
                call.0 = id.to_string();
            }
            if let Some(n) = tc["function"]["name"].as_str() {
                call.1.push_str(n);
            }
            if let Some(a) = tc["function"]["arguments"].as_str() {
                call.2.push_str(a);
            }
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            self.finish = Some(f.to_string());
        }
    }

    fn reply(self) -> Result<ModelReply, String> {
        let mut content = Vec::new();
        if !self.text.is_empty() {
            content.push(Content::Text { text: self.text });
        }
        for (id, name, args) in self.calls {
            let arguments: Value = if args.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(&args)
                    .map_err(|e| format!("tool call `{name}` has arguments that are not JSON: {e}"))?
            };
            content.push(Content::ToolCall { id, name, arguments });
        }
        let stop_reason = match self.finish.as_deref() {
            Some("tool_calls") => "toolUse",
            Some("length") => "length",
            _ => "stop",
        };
        Ok(ModelReply { content, usage: self.usage, stop_reason: stop_reason.into() })
    }
}

/// The caller's sampling settings as Chat Completions fields: the token cap
/// is `max_completion_tokens` on OpenAI itself and `max_tokens` on other
/// OpenAI-compatible servers (Ollama, vLLM, llama.cpp take the older name).
fn sampling_fields(body: &mut Value, s: &crate::model::Sampling, openai_itself: bool) {
    if let Some(n) = s.max_tokens {
        body[if openai_itself { "max_completion_tokens" } else { "max_tokens" }] = json!(n);
    }
    for (field, v) in [
        ("temperature", s.temperature),
        ("top_p", s.top_p),
        ("frequency_penalty", s.frequency_penalty),
        ("presence_penalty", s.presence_penalty),
    ] {
        if let Some(v) = v {
            body[field] = json!(v);
        }
    }
    if let Some(seed) = s.seed {
        body["seed"] = json!(seed);
    }
    if !s.stop.is_empty() {
        body["stop"] = json!(s.stop);
    }
}

impl OpenAiCompatible {
    async fn answer(&self, req: &ModelRequest) -> Result<ModelReply, ProviderError> {
        let now = crate::clock::now_ms();
        let cred =
            crate::auth::credential_with(&req.agent_dir, &self.id, self.configured_key.as_ref(), &*self.env, now)
                .map_err(|e| self.fail(e.to_string()))?;
        if cred.is_none() && self.key_required {
            return Err(ProviderError::Unavailable {
                provider: self.id.clone(),
                why: format!(
                    "agent `{}` has no credential (auth-profiles.json in its agentDir, models.providers.{}.apiKey, or ${}_API_KEY)",
                    req.identity.agent_id,
                    self.id,
                    self.id.to_ascii_uppercase()
                ),
            });
        }
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
            .collect();
        let mut body = json!({"model": req.model, "messages": messages(req), "stream": true,
                              "stream_options": {"include_usage": true}});
        if !tools.is_empty() {
            body["tools"] = json!(tools);
        }
        sampling_fields(&mut body, &req.sampling, self.id == "openai");
        if let Some(effort) = req.thinking.and_then(|l| l.openai_effort()) {
            body["reasoning_effort"] = json!(effort);
        }
        let mut http = self
            .client
            .post(format!("{}/chat/completions", self.base_url))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(c) = &cred {
            http = http.bearer_auth(&c.secret);
        }
        let resp = http.send().await.map_err(|e| self.fail(format!("request failed: {e}")))?;
        let status = resp.status();
        if status.as_u16() == 429 {
            let retry =
                resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
            return Err(ProviderError::RateLimited {
                provider: self.id.clone(),
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
            let data = data.trim();
            if data == "[DONE]" {
                break;
            }
            if data.is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(data).map_err(|e| self.fail(format!("bad stream event: {e}")))?;
            fold.chunk(&v);
        }
        fold.reply().map_err(|e| self.fail(e))
    }
}

impl OpenAiCompatible {
    /// `POST /audio/transcriptions` (multipart `file`, `model`, `language`),
    /// as OpenAI, whisper.cpp's server and vLLM take it; the `text` of the answer.
    async fn transcription(&self, req: &TranscribeRequest<'_>) -> Result<String, ProviderError> {
        let now = crate::clock::now_ms();
        let cred = crate::auth::credential_with(req.agent_dir, &self.id, self.configured_key.as_ref(), &*self.env, now)
            .map_err(|e| self.fail(e.to_string()))?;
        if cred.is_none() && self.key_required {
            return Err(ProviderError::Unavailable { provider: self.id.clone(), why: "no credential".into() });
        }
        let file = reqwest::multipart::Part::bytes(req.data.to_vec())
            .file_name(req.file_name.to_string())
            .mime_str(req.mime_type)
            .map_err(|e| self.fail(format!("bad MIME type `{}`: {e}", req.mime_type)))?;
        let mut form = reqwest::multipart::Form::new()
            .text("model", req.model.to_string())
            .text("response_format", "json")
            .part("file", file);
        if let Some(l) = req.language {
            form = form.text("language", l.to_string());
        }
        let mut http = self.client.post(format!("{}/audio/transcriptions", self.base_url)).multipart(form);
        if let Some(c) = &cred {
            http = http.bearer_auth(&c.secret);
        }
        let resp = http.send().await.map_err(|e| self.fail(format!("request failed: {e}")))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = v["error"]["message"].as_str().map(str::to_string).unwrap_or(text);
            return Err(self.fail(format!("transcription: HTTP {status}: {msg}")));
        }
        v["text"]
            .as_str()
            .map(|t| t.trim().to_string())
            .ok_or_else(|| self.fail("transcription: no `text` in the answer".into()))
    }
}

impl Provider for OpenAiCompatible {
    fn id(&self) -> &str {
        &self.id
    }

    fn complete<'a>(&'a self, request: &'a ModelRequest) -> BoxFuture<'a, Result<ModelReply, ProviderError>> {
        Box::pin(self.answer(request))
    }

    fn transcribe<'a>(&'a self, request: &'a TranscribeRequest<'a>) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(self.transcription(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_cap_takes_each_servers_name_and_unset_fields_stay_out() {
        let s = crate::model::Sampling { max_tokens: Some(64), temperature: Some(0.5), ..Default::default() };
        let mut openai = json!({});
        sampling_fields(&mut openai, &s, true);
        assert_eq!(openai, json!({"max_completion_tokens": 64, "temperature": 0.5}));
        let mut local = json!({});
        sampling_fields(&mut local, &s, false);
        assert_eq!(local, json!({"max_tokens": 64, "temperature": 0.5}), "Ollama, vLLM, llama.cpp");
        let mut none = json!({});
        sampling_fields(&mut none, &crate::model::Sampling::default(), true);
        assert_eq!(none, json!({}));
    }
}
