//! The OpenAI-compatible surface (reference §14.2), off unless
//! `gateway.http.endpoints.chatCompletions.enabled`: `POST
//! /v1/chat/completions` runs a normal agent turn — routing's session rules,
//! tool policy and persona all apply — and `GET /v1/models` lists the agents
//! as `chela:<agentId>`. The agent comes from `model` (`chela:<id>`,
//! `openclaw:<id>` or `agent:<id>`) or the header `x-chela-agent-id`; the
//! session from `x-chela-session-key` / `x-openclaw-session-key`, else the
//! request's `user`, else the request alone — always inside
//! `agent:<id>:openai:…`, never a chat's, main or sub-agent session. The agent
//! keeps its own transcript, so only the last user message is sent to it.
//! With `stream: true` the answer's text goes out as SSE chunks while the
//! model produces it (every round's text, also before a tool call).
//!
//! Must not: authorize requests (the guard did) or run a turn unlike a channel's (the same runtime,
//! policy and persona apply).

use std::sync::Arc;

use chela_agent::{Inbound, Origin};
use chela_core::ids::normalize_agent_id;
use chela_core::ids::ChatType;
use chela_core::routing::SessionTarget;
use chela_core::session_key::{ApiCaller, SessionKey};
use chela_core::snapshot::Snapshot;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};

use crate::reply::{error, json as json_reply, streaming, Reply};
use crate::Gateway;

pub(crate) fn enabled(gw: &Gateway) -> bool {
    gw.config()
        .gateway
        .as_ref()
        .and_then(|g| g.http.as_ref()?.get("endpoints")?.get("chatCompletions")?.get("enabled")?.as_bool())
        == Some(true)
}

fn header(req: &Request<Incoming>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| req.headers().get(*n)?.to_str().ok().map(str::to_string))
}

/// OpenAI's error shape.
fn oai_error(status: StatusCode, message: &str, kind: &str) -> Reply {
    json_reply(status, &json!({"error": {"message": message, "type": kind}}))
}

/// The text of a message's `content` (a string, or parts of type `text`).
fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> =
                parts.iter().filter(|p| p["type"] == "text").filter_map(|p| p["text"].as_str()).collect();
            (!texts.is_empty()).then(|| texts.join("\n"))
        }
        _ => None,
    }
}

pub(crate) async fn handle(gw: Arc<Gateway>, req: Request<Incoming>) -> Reply {
    if !enabled(&gw) {
        return error(
            StatusCode::NOT_FOUND,
            "the OpenAI-compatible API is off (gateway.http.endpoints.chatCompletions.enabled)",
        );
    }
    match (req.method().clone(), req.uri().path()) {
        (Method::GET, "/v1/models") => models(&gw),
        (Method::POST, "/v1/chat/completions") => completions(gw, req).await,
        (m, p) => oai_error(StatusCode::NOT_FOUND, &format!("no route {m} {p}"), "invalid_request_error"),
    }
}

fn models(gw: &Gateway) -> Reply {
    let data: Vec<Value> = gw
        .snapshot()
        .routes
        .roster()
        .ids()
        .into_iter()
        .map(|id| json!({"id": format!("chela:{id}"), "object": "model", "created": 0, "owned_by": "chela"}))
        .collect();
    json_reply(StatusCode::OK, &json!({"object": "list", "data": data}))
}

async fn completions(gw: Arc<Gateway>, req: Request<Incoming>) -> Reply {
    let agent_header = header(&req, &["x-chela-agent-id", "x-openclaw-agent-id"]);
    let session_header = header(&req, &["x-chela-session-key", "x-openclaw-session-key"]);
    let body = match crate::reply::read_body(req.into_body(), gw.options.max_body_bytes).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return oai_error(StatusCode::BAD_REQUEST, "the body is not JSON", "invalid_request_error");
    };
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let from_model = ["chela:", "openclaw:", "agent:"].iter().find_map(|p| model.strip_prefix(p)).map(str::to_string);
    // One snapshot for the request: the agent, its session and its turn.
    let snap = gw.snapshot();
    let agent = match agent_header.or(from_model) {
        Some(a) => normalize_agent_id(Some(&a)),
        None => snap.routes.roster().default_agent(),
    };
    if snap.routes.roster().find(&agent).is_none() {
        return oai_error(
            StatusCode::NOT_FOUND,
            &format!("unknown agent `{agent}` (see GET /v1/models)"),
            "invalid_request_error",
        );
    }
    let Some(messages) = body["messages"].as_array() else {
        return oai_error(StatusCode::BAD_REQUEST, "`messages` must be an array", "invalid_request_error");
    };
    let Some(text) = messages.iter().rev().find(|m| m["role"] == "user").and_then(|m| content_text(&m["content"]))
    else {
        return oai_error(StatusCode::BAD_REQUEST, "`messages` has no user message with text", "invalid_request_error");
    };
    // The caller owns only sessions in the endpoint's namespace (core: build_api_session_key).
    let user = body["user"].as_str().filter(|u| !u.trim().is_empty());
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let caller = match (&session_header, user) {
        (Some(s), _) => ApiCaller::Session(s),
        (None, Some(u)) => ApiCaller::User(u),
        (None, None) => ApiCaller::Request(&request_id),
    };
    let target = SessionTarget::of_key(&snap.config, SessionKey::api(&agent, caller), ChatType::Direct);
    let user = user.unwrap_or("anonymous").chars().take(64).collect::<String>();
    let inbound = Inbound {
        target,
        text,
        sender_id: None,
        origin: Origin { provider: Some("openai-api".into()), label: Some(user), ..Origin::default() },
        extra_system: None,
        message_ref: None,
        delivery: None,
    };
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let model = format!("chela:{agent}");
    if body["stream"] == true {
        return stream(gw, snap, inbound, id, created, model);
    }
    let _turn = gw.inflight.enter();
    let turn = match gw.runtime.run(&snap, inbound).await {
        Ok(t) => t,
        Err(e @ chela_agent::RunError::QueueFull(_)) => {
            return oai_error(StatusCode::TOO_MANY_REQUESTS, &e.to_string(), "rate_limit_error")
        }
        Err(e) => return oai_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string(), "server_error"),
    };
    json_reply(
        StatusCode::OK,
        &json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": turn.reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": turn.input_tokens, "completion_tokens": turn.output_tokens,
                      "total_tokens": turn.input_tokens + turn.output_tokens},
        }),
    )
}

/// Server-sent events in OpenAI's chunk shape, each content delta as the
/// model produces it; the turn runs on after a client goes away (its
/// transcript is kept either way).
fn stream(gw: Arc<Gateway>, snap: Arc<Snapshot>, inbound: Inbound, id: String, created: u64, model: String) -> Reply {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<bytes::Bytes>();
    let chunk = move |delta: Value, finish: Value| -> bytes::Bytes {
        let c = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {c}\n\n").into()
    };
    let _ = tx.send(chunk(json!({"role": "assistant"}), Value::Null));
    let (deltas, chunk_for_deltas) = (tx.clone(), chunk.clone());
    let sink: chela_agent::TextSink = Arc::new(move |text: &str| {
        let _ = deltas.send(chunk_for_deltas(json!({"content": text}), Value::Null));
    });
    tokio::spawn(async move {
        let _turn = gw.inflight.enter();
        match gw.runtime.run_streaming(&snap, inbound, Some(sink)).await {
            Ok(_) => {
                let _ = tx.send(chunk(json!({}), json!("stop")));
            }
            Err(e) => {
                let kind =
                    if matches!(e, chela_agent::RunError::QueueFull(_)) { "rate_limit_error" } else { "server_error" };
                let _ =
                    tx.send(format!("data: {}\n\n", json!({"error": {"message": e.to_string(), "type": kind}})).into());
            }
        }
        let _ = tx.send(bytes::Bytes::from_static(b"data: [DONE]\n\n"));
    });
    streaming(StatusCode::OK, "text/event-stream", rx)
}
