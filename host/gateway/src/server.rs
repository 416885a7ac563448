//! The HTTP side: one listener, routes for health, metrics, channel
//! webhooks and the control API. Before any auth: a cap on connections (in
//! all and per address), a deadline for a request's head and for its body,
//! and back-off on accept errors. Bodies are size-limited; a webhook is
//! answered as soon as the adapter has verified it, and its messages are
//! processed after (platforms such as Slack want an answer within 3 s).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::metrics::Gauge;
use crate::Gateway;
use chela_plugin::channel::HttpRequest;

/// A response body: whole (most answers) or streamed (SSE).
pub(crate) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::convert::Infallible>;
pub(crate) type Reply = Response<Body>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    use http_body_util::BodyExt;
    Full::new(bytes.into()).boxed_unsync()
}

/// A body that sends each piece given to the channel as it comes, and ends
/// when every sender is dropped.
struct ChannelBody(tokio::sync::mpsc::UnboundedReceiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|piece| piece.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

pub(crate) fn streaming(
    status: StatusCode,
    content_type: &'static str,
    pieces: tokio::sync::mpsc::UnboundedReceiver<Bytes>,
) -> Reply {
    use http_body_util::BodyExt;
    let mut r = Response::new(ChannelBody(pieces).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static(content_type));
    r.headers_mut().insert("cache-control", hyper::header::HeaderValue::from_static("no-cache"));
    r
}

pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Reply {
    let mut r = Response::new(full(value.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    r
}

pub(crate) fn error(status: StatusCode, message: &str) -> Reply {
    json(status, &serde_json::json!({ "error": message }))
}

/// A request the guard turned away, as a JSON error (with `Retry-After` for a lockout).
pub(crate) fn refused(r: crate::guard::Refusal) -> Reply {
    let mut reply = error(r.status, &r.message);
    if let Some(v) = r.retry_after.and_then(|d| hyper::header::HeaderValue::from_str(&d.as_secs().to_string()).ok()) {
        reply.headers_mut().insert("retry-after", v);
    }
    reply
}

pub(crate) fn text(status: StatusCode, body: String, content_type: &'static str) -> Reply {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static(content_type));
    r
}

/// Connections served at once; past it the listener waits for one to end.
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections from one address at once (a reverse proxy is one address: keep it generous).
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 256;
/// How long a client may take to send a request's head (slow-loris).
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a client may take to send a request's body.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Open connections per address, so one client cannot take them all.
#[derive(Default)]
struct PerAddress(std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>);

struct AddressSlot<'a>(&'a PerAddress, std::net::IpAddr);

impl PerAddress {
    fn enter(&self, ip: std::net::IpAddr) -> Option<AddressSlot<'_>> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= MAX_CONNECTIONS_PER_ADDRESS {
            return None;
        }
        *n += 1;
        Some(AddressSlot(self, ip))
    }
}

impl Drop for AddressSlot<'_> {
    fn drop(&mut self) {
        let mut m = self.0 .0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

pub(crate) async fn accept_loop(gw: Arc<Gateway>, listener: tokio::net::TcpListener, mut stop: watch::Receiver<bool>) {
    let mut connections = tokio::task::JoinSet::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let per_address = Arc::new(PerAddress::default());
    let mut backoff = std::time::Duration::from_millis(5);
    loop {
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = stop.changed() => break,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => { backoff = std::time::Duration::from_millis(5); a }
                    Err(e) => {
                        // EMFILE and friends: wait instead of spinning on the error.
                        tracing::warn!(error = %e, "accept failed");
                        gw.metrics.inc("chela_errors_total", &[("stage", "accept")]);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
                        continue;
                    }
                };
                let gw = gw.clone();
                let mut stop = stop.clone();
                let per_address = per_address.clone();
                connections.spawn(async move {
                    let _permit = permit;
                    let Some(_slot) = per_address.enter(peer.ip()) else {
                        gw.metrics.inc("chela_connections_refused_total", &[("reason", "per_address")]);
                        return; // dropped: the client sees the connection close
                    };
                    let _ = stream.set_nodelay(true);
                    let service_gw = gw.clone();
                    let service = service_fn(move |req| {
                        let gw = service_gw.clone();
                        async move { Ok::<_, Infallible>(dispatch(gw, req, peer).await) }
                    });
                    let conn = http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT)
                        .max_buf_size(64 * 1024)
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stop.changed() => {
                            // Finish the request in progress, then close.
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
            }
        }
    }
    while connections.join_next().await.is_some() {}
}

pub(crate) async fn read_body(gw: &Gateway, body: Incoming) -> Result<Bytes, Reply> {
    let read = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, gw.options.max_body_bytes).collect()).await;
    match read {
        Err(_) => {
            Err(error(StatusCode::REQUEST_TIMEOUT, &format!("request body not received within {BODY_TIMEOUT:?}")))
        }
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(_)) => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body larger than {} bytes", gw.options.max_body_bytes),
        )),
    }
}

async fn dispatch(gw: Arc<Gateway>, req: Request<Incoming>, peer: std::net::SocketAddr) -> Reply {
    let path = req.uri().path().to_string();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        (&Method::GET, "/readyz") => readyz(&gw),
        (&Method::GET, "/metrics") => {
            // Never to a rebinding or cross-origin page; the token too when configured so.
            let checked = if metrics_need_auth(&gw) {
                crate::control::authorize(&gw, &req, peer)
            } else {
                crate::guard::browser_checks(req.method(), req.headers(), &gw.config())
                    .map_err(|r| Box::new(refused(r)))
            };
            if let Err(r) = checked {
                return *r;
            }
            text(StatusCode::OK, metrics(&gw).await, "text/plain; version=0.0.4")
        }
        (_, p) if p.starts_with("/channels/") => webhook(gw, req, peer).await,
        (_, p) if p.starts_with("/api/") => crate::control::handle(gw, req, peer).await,
        (_, p) if p.starts_with("/v1/") => match crate::control::authorize(&gw, &req, peer) {
            Ok(()) => crate::openai::handle(gw, req).await,
            Err(r) => *r,
        },
        _ => error(StatusCode::NOT_FOUND, &format!("no route for {} {path}", req.method())),
    }
}

/// `gateway.metrics.auth`; by default on when the listener is off loopback.
fn metrics_need_auth(gw: &Gateway) -> bool {
    let configured = gw.config().gateway.as_ref().and_then(|g| g.metrics.as_ref()?.auth);
    configured.unwrap_or(!gw.options.addr.ip().is_loopback())
}

fn readyz(gw: &Gateway) -> Reply {
    let failed: Vec<serde_json::Value> = gw
        .plugins
        .list()
        .into_iter()
        .filter(|p| p.status != "ready")
        .map(|p| serde_json::json!({"id": p.id, "status": p.status, "error": p.error}))
        .collect();
    let missing: Vec<serde_json::Value> =
        gw.missing_channels().into_iter().map(|(c, why)| serde_json::json!({"channel": c, "reason": why})).collect();
    let ready = missing.is_empty();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    json(status, &serde_json::json!({"ready": ready, "channelsMissing": missing, "pluginsNotReady": failed}))
}

async fn metrics(gw: &Gateway) -> String {
    let mut gauges = Vec::new();
    let mut per_agent: std::collections::BTreeMap<String, usize> = Default::default();
    for (key, depth) in gw.runtime.queue_depths() {
        let agent = chela_core::session_key::parse_agent_session_key(&key).map(|p| p.agent_id).unwrap_or_default();
        *per_agent.entry(agent).or_default() += depth;
    }
    for (agent, depth) in per_agent {
        gauges.push(Gauge {
            name: "chela_session_queue_depth",
            help: "Turns running or waiting, per agent.",
            labels: vec![("agent", agent)],
            value: depth as f64,
        });
    }
    let channels: Vec<_> = gw.channels.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
    for ch in channels {
        let bytes = ch.memory_bytes().await;
        gauges.push(Gauge {
            name: "chela_channel_instance_memory_bytes",
            help: "Linear memory of each live channel adapter instance.",
            labels: vec![("channel", ch.channel_id().to_string())],
            value: bytes as f64,
        });
    }
    gauges.push(Gauge {
        name: "chela_plugins_loaded",
        help: "Plugins loaded.",
        labels: vec![],
        value: gw.plugins.all().len() as f64,
    });
    gw.metrics.render(&gauges)
}

/// `/channels/<channel>/<account>/<rest>`: raw request to the adapter.
/// An address whose requests the adapter keeps refusing as unauthenticated
/// is answered 429 without reaching the adapter.
async fn webhook(gw: Arc<Gateway>, req: Request<Incoming>, peer: std::net::SocketAddr) -> Reply {
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
    let body = match read_body(&gw, req.into_body()).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let request = HttpRequest { method, path_with_query: tail, headers, body: body.to_vec() };
    let outcome = match channel.handle_webhook(&account, request).await {
        Ok(o) => o,
        Err(e) => {
            gw.metrics.inc("chela_errors_total", &[("stage", "webhook")]);
            return error(StatusCode::BAD_GATEWAY, &e.to_string());
        }
    };
    if matches!(outcome.response.status, 401 | 403) {
        gw.webhook_failures.failed(peer.ip());
    }
    for ev in outcome.events {
        let (gw, ch) = (gw.clone(), channel.clone());
        tokio::spawn(async move {
            let out = gw.handle_event(ch, ev).await;
            tracing::debug!(?out, "inbound handled");
        });
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
