//! `/channels/<channel>/<account>/<rest>`: a platform's webhook delivery,
//! handed raw to the channel adapter that verifies and parses it; the events
//! it yields are accepted into the journal (`intake.rs`) before the platform is
//! answered, and run after. What cannot be handled or stored right now is
//! refused 503 with `Retry-After` (the platform delivers it again); a delivery
//! the adapter broke on (a trap, its memory cap) is 502.
//!
//! Must not: verify signatures or parse platform payloads itself (the adapter
//! does), or wait for turns before answering the platform.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use crate::reply::{error, full, read_body, refused, Reply};
use crate::Gateway;
use chela_plugin::channel::{ChannelError, HttpRequest};
use chela_plugin::CallError;

/// `/channels/<channel>/<account>/<rest>`: raw request to the adapter.
/// An address whose requests the adapter keeps refusing as unauthenticated
/// is answered 429 without reaching the adapter.
pub(crate) async fn handle(gw: Arc<Gateway>, req: Request<Incoming>, peer: std::net::SocketAddr) -> Reply {
    if let Some(left) = gw.webhook_failures.locked(peer.ip()) {
        gw.metrics.inc("chela_webhook_auth_lockouts_total", &[]);
        return refused(crate::guard::Refusal::too_many(left, "webhook authentications"));
    }
    let (path, query) = (req.uri().path().to_string(), req.uri().query().map(str::to_string));
    let mut parts = path.trim_start_matches("/channels/").splitn(3, '/');
    let (channel_id, account) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default().to_string());
    let mut tail = format!("/{}", parts.next().unwrap_or_default());
    if let Some(q) = query {
        tail.push('?');
        tail.push_str(&q);
    }
    let Some(channel) = gw.channel(channel_id) else {
        return error(StatusCode::NOT_FOUND, &format!("no channel adapter `{channel_id}` is running"));
    };
    if !channel.has_account(&account) {
        return error(StatusCode::NOT_FOUND, &format!("channel `{channel_id}` has no account `{account}`"));
    }
    let method = req.method().to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let body = match read_body(req.into_body(), gw.options.max_body_bytes).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let request = HttpRequest { method, path_with_query: tail, headers, body: body.to_vec() };
    let outcome = match channel.handle_webhook(&account, request).await {
        Ok(o) => o,
        Err(e) => {
            gw.metrics.inc("chela_errors_total", &[("stage", "webhook")]);
            tracing::warn!(channel = channel_id, account, error = %e, "webhook delivery not handled; refused");
            return match &e {
                // The adapter itself broke on this delivery.
                ChannelError::Call(CallError::Trap { .. } | CallError::OutOfMemory { .. }) => {
                    error(StatusCode::BAD_GATEWAY, &e.to_string())
                }
                // Anything else passes (a cool-down, a slow start, settings being fixed): retry later.
                _ => retry_later(&e.to_string()),
            };
        }
    };
    if matches!(outcome.response.status, 401 | 403) {
        gw.webhook_failures.failed(peer.ip());
    }
    if (200..300).contains(&outcome.response.status) {
        gw.supervision.contact(channel_id, &account, outcome.events.len());
    }
    // The platform hears "received" only once the messages are in the journal;
    // a journal that cannot write answers 503, so the platform retries.
    if let Err(e) = gw.intake(&channel, outcome.events).await {
        tracing::error!(channel = channel_id, account, error = %e, "cannot journal a webhook delivery; refused");
        gw.metrics.inc("chela_errors_total", &[("stage", "journal")]);
        return retry_later("the gateway cannot store messages right now; retry later");
    }
    let mut r = Response::new(full(outcome.response.body));
    *r.status_mut() = StatusCode::from_u16(outcome.response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in outcome.response.headers {
        if let (Ok(k), Ok(v)) =
            (hyper::header::HeaderName::from_bytes(k.as_bytes()), hyper::header::HeaderValue::from_str(&v))
        {
            r.headers_mut().append(k, v);
        }
    }
    r
}

/// 503 with `Retry-After`: not acknowledged, so the platform delivers it again.
fn retry_later(message: &str) -> Reply {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, message);
    r.headers_mut().insert("retry-after", hyper::header::HeaderValue::from_static("5"));
    r
}
