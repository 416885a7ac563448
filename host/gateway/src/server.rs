//! The HTTP side: one listener and the table of routes (health, metrics,
//! channel webhooks, the control API, the OpenAI-compatible API). Before any
//! auth: a cap on connections (in all and per address), a deadline for a
//! request's head, and back-off on accept errors. A webhook is answered as
//! soon as the adapter has verified it, and its messages are processed after
//! (platforms such as Slack want an answer within 3 s).
//!
//! Must not: build response bodies by hand (that is `reply`), or decide who
//! may call the control API (that is `guard`, through `control::authorize`).

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::reply::{error, json, refused, text, Reply};
use crate::Gateway;

/// Connections served at once; past it the listener waits for one to end.
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections from one address at once (a reverse proxy is one address: keep it generous).
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 256;
/// How long a client may take to send a request's head (slow-loris).
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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

async fn dispatch(gw: Arc<Gateway>, req: Request<Incoming>, peer: std::net::SocketAddr) -> Reply {
    let path = req.uri().path().to_string();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        (&Method::GET, "/readyz") => {
            // Ready or not is public (probes carry no token); which accounts
            // exist and their errors only for whom `/metrics` would answer.
            let detailed = if crate::health::metrics_need_auth(&gw) {
                req.headers().contains_key(hyper::header::AUTHORIZATION)
                    && crate::control::authorize(&gw, &req, peer).is_ok()
            } else {
                crate::guard::browser_checks(req.method(), req.headers(), &gw.config()).is_ok()
            };
            crate::health::readyz(&gw, detailed)
        }
        (&Method::GET, "/metrics") => {
            // Never to a rebinding or cross-origin page; the token too when configured so.
            let checked = if crate::health::metrics_need_auth(&gw) {
                crate::control::authorize(&gw, &req, peer)
            } else {
                crate::guard::browser_checks(req.method(), req.headers(), &gw.config())
                    .map_err(|r| Box::new(refused(r)))
            };
            if let Err(r) = checked {
                return *r;
            }
            text(StatusCode::OK, crate::health::metrics(&gw).await, crate::metrics::CONTENT_TYPE)
        }
        (_, p) if p.starts_with("/channels/") => crate::webhook::handle(gw, req, peer).await,
        (_, p) if p.starts_with("/api/") => crate::control::handle(gw, req, peer).await,
        (_, p) if p.starts_with("/v1/") => match crate::control::check(&gw, &req, peer) {
            Ok(()) => crate::openai::handle(gw, req).await,
            Err(r) => crate::openai::refused(r),
        },
        _ => match crate::control_ui::serve(&gw.config(), req.method(), &path) {
            Some(page) => page,
            None => error(StatusCode::NOT_FOUND, &format!("no route for {} {path}", req.method())),
        },
    }
}
