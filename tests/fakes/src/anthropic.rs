//! An Anthropic Messages API fake: `POST /v1/messages` requiring
//! `x-api-key` (or a bearer) and `anthropic-version` (errors in Anthropic's
//! shape), scripted answers reused from the OpenAI fake's `Scripted`, SSE in
//! Anthropic's event sequence (`message_start`, `content_block_start`,
//! `content_block_delta` with `text_delta` / `input_json_delta` split across
//! events, `content_block_stop`, `message_delta` with `stop_reason` and
//! usage, `message_stop`), `context_management` accepted only with the
//! `context-management-2025-06-27` beta, and a recorder of requests and
//! their headers.
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

pub use crate::openai::Scripted;

/// A recorded request: the credential header it used and its body.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub api_key: Option<String>,
    pub bearer: Option<String>,
    pub version: Option<String>,
    /// The `anthropic-beta` header's features.
    pub betas: Vec<String>,
    pub body: Value,
}

#[derive(Default)]
struct State {
    key: String,
    script: VecDeque<Scripted>,
    requests: Vec<Recorded>,
}

pub struct AnthropicFake {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for AnthropicFake {
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

fn api_error(status: u16, kind: &str, message: &str) -> Response<Full<Bytes>> {
    respond(
        status,
        "application/json",
        json!({"type": "error", "error": {"type": kind, "message": message}}).to_string(),
    )
}

impl AnthropicFake {
    /// A fake that accepts `key` (as `x-api-key` or a bearer).
    pub async fn start(key: &str) -> AnthropicFake {
        let state = Arc::new(Mutex::new(State { key: key.to_string(), ..State::default() }));
        let st = state.clone();
        let (addr, server) = wire::serve(move |req| handle(st.clone(), req)).await;
        AnthropicFake { addr, state, server }
    }

    /// The `baseUrl` to configure (the API root, without `/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        lock(&self.state).script.extend(answers);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state).requests.clone()
    }
}

fn sse(event: &str, data: Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (api_key, version) = (header("x-api-key"), header("anthropic-version"));
    let betas: Vec<String> = header("anthropic-beta")
        .map(|v| v.split(',').map(|b| b.trim().to_string()).filter(|b| !b.is_empty()).collect())
        .unwrap_or_default();
    let bearer = header("authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::to_string));
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if path != "/v1/messages" {
        return api_error(404, "not_found_error", "Not found");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return api_error(400, "invalid_request_error", "invalid JSON body");
    };
    let mut st = lock(&state);
    st.requests.push(Recorded {
        api_key: api_key.clone(),
        bearer: bearer.clone(),
        version: version.clone(),
        betas: betas.clone(),
        body: body.clone(),
    });
    if api_key.as_deref() != Some(st.key.as_str()) && bearer.as_deref() != Some(st.key.as_str()) {
        return api_error(401, "authentication_error", "invalid x-api-key");
    }
    if version.is_none() {
        return api_error(400, "invalid_request_error", "anthropic-version: header is required");
    }
    // Context editing is a beta: the field is refused without its header.
    if body.get("context_management").is_some() && !betas.iter().any(|b| b == "context-management-2025-06-27") {
        return api_error(400, "invalid_request_error", "context_management: Extra inputs are not permitted");
    }
    if body["max_tokens"].as_u64().is_none() {
        return api_error(400, "invalid_request_error", "max_tokens: Field required");
    }
    let answer = st.script.pop_front().unwrap_or(Scripted::Text("(no scripted answer)".into()));
    drop(st);
    let model = body["model"].as_str().unwrap_or("claude").to_string();
    let start = sse(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
               "content": [], "stop_reason": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}),
    );
    let (blocks, stop) = match answer {
        Scripted::Status(s) => {
            let mut r = api_error(s, if s == 429 { "rate_limit_error" } else { "api_error" }, "scripted");
            if s == 429 {
                r.headers_mut().insert("retry-after", hyper::header::HeaderValue::from_static("1"));
            }
            return r;
        }
        Scripted::Text(t) => {
            let mid = t.char_indices().nth(t.chars().count() / 2).map(|(i, _)| i).unwrap_or(0);
            let (a, b) = t.split_at(mid);
            let mut out = sse(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            );
            for piece in [a, b] {
                out.push_str(&sse(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
                ));
            }
            out.push_str(&sse("content_block_stop", json!({"type": "content_block_stop", "index": 0})));
            (out, "end_turn")
        }
        Scripted::ToolCall { name, arguments } => {
            let args = arguments.to_string();
            let (a, b) = args.split_at(args.len() / 2);
            let mut out = sse(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            );
            out.push_str(&sse("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me check."}})));
            out.push_str(&sse("content_block_stop", json!({"type": "content_block_stop", "index": 0})));
            out.push_str(&sse("content_block_start", json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_fake1", "name": name, "input": {}}})));
            for piece in [a, b] {
                out.push_str(&sse("content_block_delta", json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": piece}})));
            }
            out.push_str(&sse("content_block_stop", json!({"type": "content_block_stop", "index": 1})));
            (out, "tool_use")
        }
    };
    let mut out = start + &blocks;
    out.push_str(&sse("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 9}})));
    out.push_str(&sse("message_stop", json!({"type": "message_stop"})));
    respond(200, "text/event-stream", out)
}
