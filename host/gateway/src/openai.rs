//! The OpenAI-compatible surface (reference §14.2, OpenClaw's
//! `docs/gateway/openai-http-api.md`), off unless
//! `gateway.http.endpoints.chatCompletions.enabled`: `POST
//! /v1/chat/completions` runs a normal agent turn — routing's session rules,
//! tool policy and persona all apply — and `GET /v1/models[/{id}]` lists the
//! agents as OpenClaw's agent targets (`openclaw`, `openclaw/default`,
//! `openclaw/<agentId>`). `model` names the agent, never a provider model:
//! those, `openclaw:<id>`, `agent:<id>` and chela's own `chela…` spellings;
//! anything else is refused as OpenClaw refuses it. The headers
//! `x-openclaw-agent-id` (agent), `x-openclaw-model` (this turn's provider
//! model, checked against the agent's catalog), `x-openclaw-message-channel`
//! (the channel the turn speaks for) and `x-openclaw-session-key` (session;
//! OpenClaw's reserved namespaces refused) have `x-chela-*` twins. The
//! session is the header's, else the request's `user`, else the request
//! alone — always inside `agent:<id>:openai:…`, never a chat's, main or
//! sub-agent session. The agent keeps its own transcript, so only the last
//! user message is sent to it. With `stream: true` the answer's text goes
//! out as SSE chunks while the model produces it (every round's text, also
//! before a tool call), and a usage chunk before `[DONE]` with
//! `stream_options.include_usage`. Every error, the guard's included, is in
//! OpenAI's shape `{"error":{"message","type","code"}}`.
//!
//! Must not: authorize requests (the guard did) or run a turn unlike a channel's (the same runtime,
//! policy and persona apply).

use std::sync::Arc;

use chela_agent::{Inbound, Origin, RunError, TurnOutcome};
use chela_core::ids::{is_valid_agent_id, ChatType};
use chela_core::routing::SessionTarget;
use chela_core::session_key::{is_reserved_api_session, ApiCaller, SessionKey};
use chela_core::snapshot::Snapshot;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};

use crate::guard::Refusal;
use crate::reply::{json as json_reply, streaming, Reply};
use crate::Gateway;

pub(crate) fn enabled(gw: &Gateway) -> bool {
    gw.config()
        .gateway
        .as_ref()
        .and_then(|g| g.http.as_ref()?.get("endpoints")?.get("chatCompletions")?.get("enabled")?.as_bool())
        == Some(true)
}

/// The first of `names` the request carries, trimmed, when not empty.
fn header(req: &Request<Incoming>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| {
        let v = req.headers().get(*n)?.to_str().ok()?.trim();
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// OpenAI's error shape: `message`, `type`, and a machine-readable `code` (or `null`).
fn oai_error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Reply {
    json_reply(status, &json!({"error": {"message": message, "type": kind, "code": code}}))
}

fn invalid(message: &str, code: Option<&str>) -> Reply {
    oai_error(StatusCode::BAD_REQUEST, message, "invalid_request_error", code)
}

/// What the guard or the body reader turned away, in OpenAI's shape (with `Retry-After` for a lockout).
pub(crate) fn refused(r: Refusal) -> Reply {
    let (kind, code) = match r.status {
        StatusCode::UNAUTHORIZED => ("invalid_request_error", Some("invalid_api_key")),
        StatusCode::FORBIDDEN => ("invalid_request_error", Some("forbidden")),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limit_error", Some("rate_limit_exceeded")),
        StatusCode::PAYLOAD_TOO_LARGE => ("invalid_request_error", Some("request_too_large")),
        _ => ("invalid_request_error", None),
    };
    let mut reply = oai_error(r.status, &r.message, kind, code);
    if let Some(v) = r.retry_after.and_then(|d| hyper::header::HeaderValue::from_str(&d.as_secs().to_string()).ok()) {
        reply.headers_mut().insert("retry-after", v);
    }
    reply
}

/// The agent a request's `model` names (OpenClaw's agent-first contract).
#[derive(Debug, Clone, PartialEq, Eq)]
enum ModelTarget {
    /// `openclaw`, `openclaw/default`, `chela`, `chela/default`, or no model at all.
    DefaultAgent,
    /// `openclaw/<id>`, `openclaw:<id>`, `agent:<id>`, `chela/<id>`, `chela:<id>`.
    Agent(String),
}

const INVALID_MODEL: &str =
    "Invalid `model`. Use `openclaw`, `openclaw/default` or `openclaw/<agentId>` (see GET /v1/models).";

/// `model` read as an agent target; `None` when it is not one (a provider model such as `gpt-4o`).
fn model_target(model: &str) -> Option<ModelTarget> {
    let lowered = model.trim().to_ascii_lowercase();
    if lowered.is_empty() {
        return Some(ModelTarget::DefaultAgent);
    }
    let agent = |id: &str| is_valid_agent_id(id).then(|| ModelTarget::Agent(id.to_string()));
    for brand in ["openclaw", "chela"] {
        let Some(rest) = lowered.strip_prefix(brand) else { continue };
        return match rest {
            "" | "/default" => Some(ModelTarget::DefaultAgent),
            _ => rest.strip_prefix(['/', ':']).and_then(agent),
        };
    }
    lowered.strip_prefix("agent:").and_then(agent)
}

/// The agent targets `/v1/models` lists: the default's two aliases, then one per agent.
fn model_ids(snap: &Snapshot) -> Vec<String> {
    let mut ids = vec!["openclaw".to_string(), "openclaw/default".to_string()];
    ids.extend(snap.routes.roster().ids().into_iter().map(|id| format!("openclaw/{id}")));
    ids
}

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": "chela", "permission": []})
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
        return oai_error(
            StatusCode::NOT_FOUND,
            "the OpenAI-compatible API is off (gateway.http.endpoints.chatCompletions.enabled)",
            "invalid_request_error",
            Some("endpoint_disabled"),
        );
    }
    let path = req.uri().path().to_string();
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/v1/models") => {
            let data: Vec<Value> = model_ids(&gw.snapshot()).iter().map(|id| model_object(id)).collect();
            json_reply(StatusCode::OK, &json!({"object": "list", "data": data}))
        }
        (Method::GET, p) if p.starts_with("/v1/models/") => model(&gw, &p["/v1/models/".len()..]),
        (Method::POST, "/v1/chat/completions") => completions(gw, req).await,
        (m, "/v1/models" | "/v1/chat/completions") => oai_error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{m} is not allowed on {path}"),
            "invalid_request_error",
            Some("method_not_allowed"),
        ),
        (m, p) => oai_error(StatusCode::NOT_FOUND, &format!("no route {m} {p}"), "invalid_request_error", None),
    }
}

/// `GET /v1/models/{id}`: any agent target naming a known agent (the id
/// percent-decoded, so `openclaw%2Fwork` works).
fn model(gw: &Gateway, encoded: &str) -> Reply {
    let Ok(id) = percent_encoding::percent_decode_str(encoded).decode_utf8() else {
        return invalid("Invalid model id encoding.", Some("invalid_model"));
    };
    if id.trim().is_empty() {
        return invalid("Missing model id.", Some("invalid_model"));
    }
    let known = match model_target(&id) {
        None => return invalid(INVALID_MODEL, Some("invalid_model")),
        Some(ModelTarget::DefaultAgent) => true,
        Some(ModelTarget::Agent(a)) => gw.snapshot().routes.roster().find(&a).is_some(),
    };
    if !known {
        let message = format!("Model '{id}' not found.");
        return oai_error(StatusCode::NOT_FOUND, &message, "invalid_request_error", Some("model_not_found"));
    }
    json_reply(StatusCode::OK, &model_object(&id))
}

/// The largest integer a JSON number carries exactly (OpenClaw's "safe integer").
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// OpenClaw's sampling contract (`docs/gateway/openai-http-api.md`): each
/// field checked (a value out of range is a 400), forwarded best effort;
/// `max_completion_tokens` wins over the legacy `max_tokens` (both checked).
fn sampling(body: &Value) -> Result<Option<chela_agent::model::Sampling>, String> {
    let tokens = |field: &str| match &body[field] {
        Value::Null => Ok(None),
        v => match v.as_u64() {
            Some(n) if (1..=MAX_SAFE_INTEGER).contains(&n) => Ok(Some(n)),
            _ => Err(format!("`{field}` must be a positive integer")),
        },
    };
    let number = |field: &str, lo: f64, hi: f64| match &body[field] {
        Value::Null => Ok(None),
        v => match v.as_f64() {
            Some(x) if (lo..=hi).contains(&x) => Ok(Some(x)),
            _ => Err(format!("`{field}` must be a number from {lo} to {hi}")),
        },
    };
    let legacy = tokens("max_tokens")?;
    let max_tokens = tokens("max_completion_tokens")?.or(legacy);
    let seed = match &body["seed"] {
        Value::Null => None,
        v => Some(v.as_i64().ok_or("`seed` must be an integer")?),
    };
    let stop = match &body["stop"] {
        Value::Null => Vec::new(),
        Value::String(s) if !s.is_empty() => vec![s.clone()],
        Value::Array(items) if items.len() <= 4 => items
            .iter()
            .map(|i| i.as_str().filter(|s| !s.is_empty()).map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or("`stop` entries must be non-empty strings")?,
        Value::Array(_) => return Err("`stop` takes at most 4 sequences".into()),
        _ => return Err("`stop` must be a string or a list of up to 4 strings".into()),
    };
    let s = chela_agent::model::Sampling {
        max_tokens,
        temperature: number("temperature", 0.0, 2.0)?,
        top_p: number("top_p", 0.0, 1.0)?,
        frequency_penalty: number("frequency_penalty", -2.0, 2.0)?,
        presence_penalty: number("presence_penalty", -2.0, 2.0)?,
        seed,
        stop,
    };
    Ok((s != chela_agent::model::Sampling::default()).then_some(s))
}

/// What the request asked for besides its text, read from headers before the body.
struct Asked {
    agent: Option<String>,
    session: Option<String>,
    model: Option<String>,
    channel: Option<String>,
}

impl Asked {
    fn of(req: &Request<Incoming>) -> Asked {
        Asked {
            agent: header(req, &["x-chela-agent-id", "x-openclaw-agent-id", "x-openclaw-agent"]),
            session: header(req, &["x-chela-session-key", "x-openclaw-session-key"]),
            model: header(req, &["x-chela-model", "x-openclaw-model"]),
            channel: header(req, &["x-chela-message-channel", "x-openclaw-message-channel"]),
        }
    }
}

async fn completions(gw: Arc<Gateway>, req: Request<Incoming>) -> Reply {
    let asked = Asked::of(&req);
    let body = match crate::reply::read_body_or_refusal(req.into_body(), gw.options.max_body_bytes).await {
        Ok(b) => b,
        Err(r) => return refused(r),
    };
    let body = match serde_json::from_slice::<Value>(&body) {
        Ok(b @ Value::Object(_)) => b,
        Ok(_) => return invalid("the body must be a JSON object", None),
        Err(e) => return invalid(&format!("the body is not JSON: {e}"), None),
    };
    let requested_model = match &body["model"] {
        Value::String(s) => s.trim().to_string(),
        Value::Null => String::new(),
        _ => return invalid("`model` must be a string", Some("invalid_model")),
    };
    let Some(target) = model_target(&requested_model) else {
        return invalid(INVALID_MODEL, Some("invalid_model"));
    };
    // One snapshot for the request: the agent, its session and its turn.
    let snap = gw.snapshot();
    let agent = match (asked.agent, target) {
        (Some(a), _) | (None, ModelTarget::Agent(a)) => a.to_ascii_lowercase(),
        (None, ModelTarget::DefaultAgent) => snap.routes.roster().default_agent(),
    };
    if snap.routes.roster().find(&agent).is_none() {
        let message = format!("Unknown agent '{agent}' (see GET /v1/models).");
        return oai_error(StatusCode::NOT_FOUND, &message, "invalid_request_error", Some("model_not_found"));
    }
    let Some(messages) = body["messages"].as_array() else {
        return invalid("`messages` must be an array", None);
    };
    let Some(text) = messages.iter().rev().find(|m| m["role"] == "user").and_then(|m| content_text(&m["content"]))
    else {
        return invalid("`messages` has no user message with text", None);
    };
    if asked.session.as_deref().is_some_and(is_reserved_api_session) {
        return invalid("`x-openclaw-session-key` cannot use reserved internal session namespaces.", None);
    }
    let model_override = match asked.model {
        None => None,
        Some(m) => match gw.runtime.check_model_override(&snap.config, &agent, &m) {
            Ok(m) => Some(m),
            Err(why) => return invalid(&format!("Invalid `x-openclaw-model` `{m}`: {why}"), Some("invalid_model")),
        },
    };
    let channel = match asked.channel.map(|c| chela_core::ids::normalize_channel(&c)) {
        None => "openai-api".to_string(),
        Some(c) if is_valid_agent_id(&c) => c,
        Some(c) => return invalid(&format!("Invalid `x-openclaw-message-channel` `{c}`: not a channel id"), None),
    };
    let sampling = match sampling(&body) {
        Ok(s) => s,
        Err(why) => return invalid(&why, None),
    };
    let include_usage = match &body["stream_options"] {
        Value::Null => false,
        Value::Object(o) => o.get("include_usage").and_then(Value::as_bool).unwrap_or(false),
        _ => return invalid("`stream_options` must be an object", None),
    };
    // The caller owns only sessions in the endpoint's namespace (core: build_api_session_key).
    let user = body["user"].as_str().filter(|u| !u.trim().is_empty());
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let caller = match (&asked.session, user) {
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
        origin: Origin { provider: Some(channel), label: Some(user), ..Origin::default() },
        extra_system: None,
        delivery: None,
        message_ref: None,
        model_override,
        sampling,
        scheduled: None,
        media: Vec::new(),
        live_tool_summaries: false,
        exec_tightening: Default::default(),
    };
    let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    // The response names the model as asked (OpenAI echoes it), or the agent's target.
    let model = if requested_model.is_empty() { format!("openclaw/{agent}") } else { requested_model };
    let head = ChunkHead { id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()), created, model };
    if body["stream"] == true {
        return stream(gw, snap, inbound, head, include_usage);
    }
    let _turn = gw.inflight.enter();
    let turn = match gw.runtime.run(&snap, inbound).await {
        Ok(t) => t,
        Err(e) => {
            let (status, kind, code) = run_error(&e);
            return oai_error(status, &e.to_string(), kind, Some(code));
        }
    };
    json_reply(
        StatusCode::OK,
        &json!({
            "id": head.id, "object": "chat.completion", "created": head.created, "model": head.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": turn.reply}, "finish_reason": "stop"}],
            "usage": usage(&turn),
        }),
    )
}

fn usage(turn: &TurnOutcome) -> Value {
    json!({"prompt_tokens": turn.input_tokens, "completion_tokens": turn.output_tokens,
           "total_tokens": turn.input_tokens + turn.output_tokens})
}

/// A failed turn's status and OpenAI error `type` and `code`.
fn run_error(e: &RunError) -> (StatusCode, &'static str, &'static str) {
    match e {
        RunError::QueueFull(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", "rate_limit_exceeded"),
        RunError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "server_error", "timeout"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "server_error", "agent_run_failed"),
    }
}

/// What every chunk of one completion repeats.
struct ChunkHead {
    id: String,
    created: u64,
    model: String,
}

/// Server-sent events in OpenAI's chunk shape, each content delta as the
/// model produces it, then `stop`, then (asked for with
/// `stream_options.include_usage`) a usage chunk with no choices; the turn
/// runs on after a client goes away (its transcript is kept either way).
fn stream(gw: Arc<Gateway>, snap: Arc<Snapshot>, inbound: Inbound, head: ChunkHead, include_usage: bool) -> Reply {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<bytes::Bytes>();
    let head = Arc::new(head);
    let chunk = move |choices: Value, usage: Option<Value>| -> bytes::Bytes {
        let mut c = json!({"id": head.id, "object": "chat.completion.chunk", "created": head.created,
                           "model": head.model, "choices": choices});
        if let Some(u) = usage {
            c["usage"] = u;
        }
        event(&c)
    };
    let choice = |delta: Value, finish: Value| json!([{"index": 0, "delta": delta, "finish_reason": finish}]);
    let _ = tx.send(chunk(choice(json!({"role": "assistant"}), Value::Null), None));
    let (deltas, chunk_for_deltas) = (tx.clone(), chunk.clone());
    let sink: chela_agent::TextSink = Arc::new(move |ev: chela_agent::TextEvent<'_>| {
        if let chela_agent::TextEvent::Delta(text) = ev {
            let _ = deltas.send(chunk_for_deltas(choice(json!({"content": text}), Value::Null), None));
        }
    });
    tokio::spawn(async move {
        let _turn = gw.inflight.enter();
        match gw.runtime.run_streaming(&snap, inbound, Some(sink)).await {
            Ok(turn) => {
                let _ = tx.send(chunk(choice(json!({}), json!("stop")), None));
                if include_usage {
                    let _ = tx.send(chunk(json!([]), Some(usage(&turn))));
                }
            }
            Err(e) => {
                let (_, kind, code) = run_error(&e);
                let _ = tx.send(event(&json!({"error": {"message": e.to_string(), "type": kind, "code": code}})));
            }
        }
        let _ = tx.send(bytes::Bytes::from_static(b"data: [DONE]\n\n"));
    });
    streaming(StatusCode::OK, "text/event-stream", rx)
}

fn event(v: &Value) -> bytes::Bytes {
    format!("data: {v}\n\n").into()
}

#[cfg(test)]
mod tests {
    use super::{model_target, ModelTarget};

    #[test]
    fn model_names_an_agent_target_as_openclaw_reads_it() {
        let agent = |id: &str| Some(ModelTarget::Agent(id.to_string()));
        for m in ["", "openclaw", "OpenClaw/Default", " chela ", "chela/default"] {
            assert_eq!(model_target(m), Some(ModelTarget::DefaultAgent), "{m:?}");
        }
        assert_eq!(model_target("openclaw/work"), agent("work"));
        assert_eq!(model_target("openclaw:Work"), agent("work"));
        assert_eq!(model_target("agent:ops_2"), agent("ops_2"));
        assert_eq!(model_target("chela:work"), agent("work"));
        assert_eq!(model_target("chela/work"), agent("work"));
        for m in
            ["gpt-4o", "openai/gpt-5", "openclaw/", "openclaw/-x", "openclaw/a b", "agent:", "openclawx", "chela:a:b"]
        {
            assert_eq!(model_target(m), None, "{m:?}");
        }
        assert_eq!(model_target(&format!("agent:{}", "a".repeat(65))), None);
    }
}
