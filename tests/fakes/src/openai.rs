//! An OpenAI chat-completions fake: `POST /v1/chat/completions` with bearer
//! key check (401 in OpenAI's error shape), scripted answers (text, a tool
//! call, or an HTTP status), SSE streaming in OpenAI's chunk shape (content
//! and tool-call arguments split across chunks, usage last, `[DONE]`), and
//! a recorder of every request and the key it carried. `POST
//! /v1/audio/transcriptions` (multipart `file` + `model`, 25 MB at most, as
//! OpenAI takes it) answers `{"text"}` with the scripted transcript.
//!
//! Must not: accept what the real API refuses, or know chela's internals.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::wire;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub enum Scripted {
    Text(String),
    ToolCall {
        name: String,
        arguments: Value,
    },
    /// An HTTP error status (429 gets `retry-after: 1`).
    Status(u16),
}

#[derive(Default)]
struct State {
    key: String,
    script: VecDeque<Scripted>,
    requests: Vec<(Option<String>, Value)>,
    /// Off under load: a benchmark's requests would pile up in memory.
    unrecorded: bool,
    /// Requests estimated above this many tokens are refused as OpenAI
    /// refuses them (400 `context_length_exceeded`).
    context_limit: Option<u64>,
    /// What `/audio/transcriptions` answers, and what it was sent.
    transcript: String,
    transcriptions: Vec<Transcription>,
}

/// One transcription request: its form fields and the file.
#[derive(Debug, Clone)]
pub struct Transcription {
    pub key: Option<String>,
    pub fields: Value,
    pub file_name: String,
    pub mime_type: String,
    pub bytes: Vec<u8>,
}

pub struct OpenAiFake {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    /// While `true`, answers wait (recorded first, so a test sees a turn in its model call).
    gate: Arc<tokio::sync::watch::Sender<bool>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for OpenAiFake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(s: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

fn respond(status: u16, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static(content_type));
    r
}

impl OpenAiFake {
    /// A fake that accepts `key`.
    pub async fn start(key: &str) -> OpenAiFake {
        let state = Arc::new(Mutex::new(State { key: key.to_string(), ..State::default() }));
        let gate = Arc::new(tokio::sync::watch::channel(false).0);
        let (st, g) = (state.clone(), gate.clone());
        let (addr, server) = wire::serve(move |req| handle(st.clone(), g.subscribe(), req)).await;
        OpenAiFake { addr, state, gate, server }
    }

    /// A fake for load: it answers as [`OpenAiFake::start`]'s does but keeps
    /// no record of the requests (a benchmark makes too many to hold).
    pub async fn start_unrecorded(key: &str) -> OpenAiFake {
        let fake = OpenAiFake::start(key).await;
        lock(&fake.state).unrecorded = true;
        fake
    }

    /// What `/audio/transcriptions` answers from now on.
    pub fn set_transcript(&self, text: &str) {
        lock(&self.state).transcript = text.to_string();
    }

    pub fn transcriptions(&self) -> Vec<Transcription> {
        lock(&self.state).transcriptions.clone()
    }

    /// Holds every answer until [`OpenAiFake::release`]: a turn stays in its model call.
    pub fn hold(&self) {
        self.gate.send_replace(true);
    }

    pub fn release(&self) {
        self.gate.send_replace(false);
    }

    /// The `baseUrl` to configure (ends in `/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        lock(&self.state).script.extend(answers);
    }

    /// Refuses requests over `tokens` (estimated at four bytes of the JSON
    /// body a token) with OpenAI's `context_length_exceeded` error.
    pub fn limit_context(&self, tokens: u64) {
        lock(&self.state).context_limit = Some(tokens);
    }

    /// Every request: the bearer key it carried and its body.
    pub fn requests(&self) -> Vec<(Option<String>, Value)> {
        lock(&self.state).requests.clone()
    }
}

async fn handle(
    state: Arc<Mutex<State>>,
    mut gate: tokio::sync::watch::Receiver<bool>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let key = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if path == "/v1/audio/transcriptions" {
        let invalid = |message: &str| {
            respond(
                400,
                "application/json",
                json!({"error": {"message": message, "type": "invalid_request_error"}}).to_string(),
            )
        };
        let Ok((fields, file)) = wire::multipart(&content_type, body).await else {
            return invalid("Could not parse multipart form");
        };
        let mut st = lock(&state);
        if key.as_deref() != Some(st.key.as_str()) {
            return respond(401, "application/json", json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}}).to_string());
        }
        let Some((_, file_name, mime_type, bytes)) = file.filter(|f| f.0 == "file") else {
            return invalid("Missing required parameter: 'file'.");
        };
        if !fields["model"].is_string() {
            return invalid("Missing required parameter: 'model'.");
        }
        if bytes.len() > 25 * 1024 * 1024 {
            return respond(413, "application/json", json!({"error": {"message": "Maximum content size limit (26214400) exceeded", "type": "invalid_request_error"}}).to_string());
        }
        st.transcriptions.push(Transcription { key, fields, file_name, mime_type, bytes });
        return respond(200, "application/json", json!({"text": st.transcript}).to_string());
    }
    if path != "/v1/chat/completions" {
        return respond(
            404,
            "application/json",
            json!({"error": {"message": "Unknown request URL", "type": "invalid_request_error"}}).to_string(),
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return respond(400, "application/json", json!({"error": {"message": "We could not parse the JSON body of your request.", "type": "invalid_request_error"}}).to_string());
    };
    let answer = {
        let mut st = lock(&state);
        if !st.unrecorded {
            st.requests.push((key.clone(), body.clone()));
        }
        if key.as_deref() != Some(st.key.as_str()) {
            return respond(401, "application/json", json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}}).to_string());
        }
        let tokens = body["messages"].to_string().len() as u64 / 4;
        if let Some(limit) = st.context_limit.filter(|limit| tokens > *limit) {
            let message = format!("This model's maximum context length is {limit} tokens. However, your messages resulted in {tokens} tokens. Please reduce the length of the messages.");
            return respond(400, "application/json", json!({"error": {"message": message, "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}).to_string());
        }
        st.script.pop_front().unwrap_or(Scripted::Text("(no scripted answer)".into()))
    };
    let _ = gate.wait_for(|held| !held).await;
    let model = body["model"].as_str().unwrap_or("gpt").to_string();
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_767_700_000, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let (chunks, message, finish) = match answer {
        Scripted::Status(s) => {
            let mut r = respond(
                s,
                "application/json",
                json!({"error": {"message": format!("scripted {s}"), "type": "server_error"}}).to_string(),
            );
            if s == 429 {
                r.headers_mut().insert("retry-after", hyper::header::HeaderValue::from_static("1"));
            }
            return r;
        }
        Scripted::Text(t) => {
            let mid = t.char_indices().nth(t.chars().count() / 2).map(|(i, _)| i).unwrap_or(0);
            let (a, b) = t.split_at(mid);
            (
                vec![
                    chunk(json!({"role": "assistant", "content": a}), Value::Null),
                    chunk(json!({"content": b}), Value::Null),
                ],
                json!({"role": "assistant", "content": t}),
                "stop",
            )
        }
        Scripted::ToolCall { name, arguments } => {
            let args = arguments.to_string();
            let (a, b) = args.split_at(args.len() / 2);
            (
                vec![
                    chunk(
                        json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "call_fake1", "type": "function", "function": {"name": name, "arguments": a}}]}),
                        Value::Null,
                    ),
                    chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": b}}]}), Value::Null),
                ],
                json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_fake1", "type": "function", "function": {"name": name, "arguments": args}}]}),
                "tool_calls",
            )
        }
    };
    let usage = json!({"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18});
    if body["stream"] == true {
        let mut sse = String::new();
        for c in chunks.into_iter().chain([chunk(json!({}), json!(finish))]) {
            sse.push_str(&format!("data: {c}\n\n"));
        }
        if body["stream_options"]["include_usage"] == true {
            sse.push_str(&format!(
                "data: {}\n\n",
                json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [], "usage": usage})
            ));
        }
        sse.push_str("data: [DONE]\n\n");
        return respond(200, "text/event-stream", sse);
    }
    let full = json!({"id": "chatcmpl-fake", "object": "chat.completion", "created": 1_767_700_000, "model": model,
                      "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage});
    respond(200, "application/json", full.to_string())
}
