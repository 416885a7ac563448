//! The control API (`/api/v1/…`, JSON, always behind the gateway token and
//! the browser checks of `guard.rs`): what `chela send`, `chela sessions` and
//! scripts use against a running gateway.
//!
//! Must not: authorize requests (the guard already did) or build session keys (core's constructors
//! do).

use std::net::SocketAddr;
use std::sync::Arc;

use chela_agent::store::SessionStore;
use chela_agent::{Inbound, Origin};
use chela_core::config::paths::agent_workspace;
use chela_core::routing::RouteInput;
use chela_core::routing::SessionTarget;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;

use crate::config_edit::Edit;
use crate::reply::{error, json, refused, Reply};
use crate::Gateway;

/// The control plane's checks (`guard.rs`): Host, Origin, content type, then the token.
pub(crate) fn authorize(gw: &Gateway, req: &Request<Incoming>, peer: SocketAddr) -> Result<(), Box<Reply>> {
    check(gw, req, peer).map_err(|r| Box::new(refused(r)))
}

/// [`authorize`], the refusal left for the caller to shape (the OpenAI API answers in OpenAI's error form).
pub(crate) fn check(gw: &Gateway, req: &Request<Incoming>, peer: SocketAddr) -> Result<(), crate::guard::Refusal> {
    crate::guard::browser_checks(req.method(), req.headers(), &gw.config())
        .and_then(|()| crate::guard::bearer(req.headers(), &gw.token, peer.ip(), &gw.auth_failures))
}

fn query(req: &Request<Incoming>, name: &str) -> Option<String> {
    form_urlencoded::parse(req.uri().query()?.as_bytes()).find_map(|(k, v)| (k == name).then(|| v.into_owned()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SendBody {
    agent_id: String,
    text: String,
    #[serde(default)]
    session_key: Option<String>,
}

pub(crate) async fn handle(gw: Arc<Gateway>, req: Request<Incoming>, peer: SocketAddr) -> Reply {
    if let Err(r) = authorize(&gw, &req, peer) {
        return *r;
    }
    let path = req.uri().path().to_string();
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/api/v1/agents") => agents(&gw),
        // Reads every agent's session index: off the async workers.
        (Method::GET, "/api/v1/health") => {
            let gw = gw.clone();
            match tokio::task::spawn_blocking(move || crate::health::snapshot(&gw)).await {
                Ok(snapshot) => json(StatusCode::OK, &snapshot),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("health snapshot: {e}")),
            }
        }
        (Method::GET, "/api/v1/channels") => {
            json(StatusCode::OK, &serde_json::json!({ "channels": crate::health::channel_accounts(&gw) }))
        }
        (Method::GET, "/api/v1/plugins") => json(StatusCode::OK, &serde_json::json!(gw.plugins.list())),
        (Method::GET, "/api/v1/sessions") => sessions(&gw, query(&req, "agentId")),
        (Method::GET, "/api/v1/sessions/history") => history(&gw, query(&req, "agentId"), query(&req, "key")),
        (Method::POST, "/api/v1/send") => send(gw, req).await,
        (Method::POST, "/api/v1/route") => route(gw, req).await,
        (Method::GET, "/api/v1/config") => config_report(&gw),
        (Method::GET, "/api/v1/bindings") => crate::config_edit::list(&gw),
        (Method::POST, "/api/v1/bindings/add") => match body_json::<AddBinding>(&gw, req).await {
            Ok(b) => crate::config_edit::apply(&gw, Edit::Add { agent_id: b.agent_id, matcher: b.matcher }).await,
            Err(r) => r,
        },
        (Method::POST, "/api/v1/bindings/remove") => match body_json::<RemoveBinding>(&gw, req).await {
            Ok(b) => crate::config_edit::apply(&gw, Edit::Remove { index: b.index }).await,
            Err(r) => r,
        },
        (Method::POST, "/api/v1/bindings/replace") => match body_json::<ReplaceBinding>(&gw, req).await {
            Ok(b) => {
                let edit = Edit::Replace { index: b.index, agent_id: b.agent_id, matcher: b.matcher };
                crate::config_edit::apply(&gw, edit).await
            }
            Err(r) => r,
        },
        (Method::GET, "/api/v1/traffic") => {
            json(StatusCode::OK, &serde_json::json!({ "minutes": gw.live.traffic(chela_agent::clock::now_ms(), 30) }))
        }
        (Method::GET, "/api/v1/events") => events(&gw, query(&req, "agentId"), query(&req, "channel")),
        (Method::GET, "/api/v1/pairing") => pairing_list(&gw).await,
        (Method::POST, "/api/v1/pairing/approve") => pairing_decide(gw, req, true).await,
        (Method::POST, "/api/v1/pairing/deny") => pairing_decide(gw, req, false).await,
        (Method::GET, "/api/v1/cron") => cron_list(&gw),
        (Method::POST, "/api/v1/cron/run") => cron_run(gw, req).await,
        (m, p) => error(StatusCode::NOT_FOUND, &format!("no control API route {m} {p}")),
    }
}

fn agents(gw: &Gateway) -> Reply {
    let snap = gw.snapshot();
    let (cfg, roster) = (&snap.config, snap.routes.roster());
    let list: Vec<serde_json::Value> = roster
        .ids()
        .into_iter()
        .map(|id| {
            let bindings = cfg
                .bindings
                .iter()
                .flatten()
                .filter(|b| {
                    b.agent_id.as_deref().map(|a| chela_core::ids::normalize_agent_id(Some(a))) == Some(id.clone())
                })
                .count();
            let own = cfg.agent(&id).map(|(_, a)| a);
            let profile = own
                .and_then(|a| a.tools.as_ref()?.profile.clone())
                .or_else(|| cfg.tools.as_ref().and_then(|t| t.profile.clone()));
            serde_json::json!({
                "id": id,
                "name": own.and_then(|a| a.name.clone()),
                "emoji": own.and_then(|a| a.identity.as_ref()?.emoji.clone()),
                "model": cfg.agent_model(&id),
                "sandbox": chela_core::policy::sandbox_mode(cfg, &id),
                "toolProfile": profile,
                "default": roster.default_agent() == id,
                "workspace": agent_workspace(cfg, roster, &id, &gw.env),
                "bindings": bindings,
            })
        })
        .collect();
    json(StatusCode::OK, &serde_json::json!({ "agents": list }))
}

fn sessions(gw: &Gateway, agent: Option<String>) -> Reply {
    let ids = match agent {
        Some(a) => vec![chela_core::ids::normalize_agent_id(Some(&a))],
        None => gw.snapshot().routes.roster().ids(),
    };
    let mut out = Vec::new();
    for id in ids {
        let store = match gw.runtime.store(&id) {
            Ok(s) => s,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        };
        match store.list() {
            Ok(list) => {
                out.extend(list.into_iter().map(|(key, e)| serde_json::json!({"agentId": id, "key": key, "entry": e})))
            }
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        }
    }
    json(StatusCode::OK, &serde_json::json!({ "sessions": out }))
}

fn history(gw: &Gateway, agent: Option<String>, key: Option<String>) -> Reply {
    let (Some(agent), Some(key)) = (agent, key) else {
        return error(StatusCode::BAD_REQUEST, "agentId and key are required");
    };
    let store: Arc<dyn SessionStore> = match gw.runtime.store(&agent) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    match store.get(&key) {
        Ok(Some(entry)) => match store.transcript(&entry) {
            Ok(t) => json(
                StatusCode::OK,
                &serde_json::json!({
                    "key": key,
                    "sessionId": entry.session_id,
                    "messages": t.messages,
                    // Per message: its entry id (`null`: the last compaction's summary).
                    "entryIds": t.ids,
                    "compactions": t.compactions,
                }),
            ),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        },
        Ok(None) => error(StatusCode::NOT_FOUND, &format!("agent `{agent}` has no session `{key}`")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn body_json<T: serde::de::DeserializeOwned>(gw: &Gateway, req: Request<Incoming>) -> Result<T, Reply> {
    let body = crate::reply::read_body(req.into_body(), gw.options.max_body_bytes).await?;
    serde_json::from_slice(&body).map_err(|e| error(StatusCode::BAD_REQUEST, &format!("request body: {e}")))
}

async fn send(gw: Arc<Gateway>, req: Request<Incoming>) -> Reply {
    let body: SendBody = match body_json(&gw, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let snap = gw.snapshot();
    let target = match SessionTarget::requested(&snap.config, &body.agent_id, body.session_key.as_deref()) {
        Ok(t) => t,
        Err(why) => return error(StatusCode::BAD_REQUEST, &why.to_string()),
    };
    let inbound = Inbound {
        target,
        text: body.text,
        sender_id: None,
        origin: Origin { provider: Some("api".into()), label: Some("control API".into()), ..Origin::default() },
        extra_system: None,
        message_ref: None,
        model_override: None,
        sampling: None,
        scheduled: None,
        media: Vec::new(),
        delivery: None,
        live_tool_summaries: false,
        exec_tightening: Default::default(),
    };
    let _turn = gw.inflight.enter();
    match gw.runtime.run(&snap, inbound).await {
        Ok(t) => json(StatusCode::OK, &serde_json::json!(t)),
        Err(chela_agent::RunError::UnknownAgent(a)) => error(StatusCode::NOT_FOUND, &format!("unknown agent `{a}`")),
        Err(e @ chela_agent::RunError::QueueFull(_)) => error(StatusCode::TOO_MANY_REQUESTS, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn cron_list(gw: &Gateway) -> Reply {
    match gw.scheduler.list(&gw.config()) {
        Ok(jobs) => {
            json(StatusCode::OK, &serde_json::json!({ "jobs": crate::cron::listing_json(&gw.config(), &jobs) }))
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `GET /api/v1/config`: the watched config file's last check, each problem
/// with the text of its line.
fn config_report(gw: &Gateway) -> Reply {
    let report = gw.config_report();
    json(
        StatusCode::OK,
        &serde_json::json!({
            "file": report.file,
            "checkedAtMs": report.checked_at_ms,
            "applied": report.applied,
            "problems": crate::config_edit::problems_json(&report.problems, None),
        }),
    )
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AddBinding {
    agent_id: String,
    #[serde(rename = "match")]
    matcher: serde_json::Value,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RemoveBinding {
    index: usize,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReplaceBinding {
    index: usize,
    agent_id: String,
    #[serde(rename = "match")]
    matcher: serde_json::Value,
}

/// Pieces of the live feed a client may fall behind by before it is cut off.
const LIVE_BACKLOG: usize = 256;

/// `GET /api/v1/events`: the live feed as server-sent events, optionally
/// only one agent's or one channel's. Ends when the client goes, reads too
/// slowly, or the gateway stops.
fn events(gw: &Arc<Gateway>, agent: Option<String>, channel: Option<String>) -> Reply {
    use tokio::sync::broadcast::error::RecvError;
    let mut feed = gw.live.subscribe();
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(LIVE_BACKLOG);
    let gw = Arc::downgrade(gw);
    tokio::spawn(async move {
        let mut quiet = 0u32;
        if tx.try_send(bytes::Bytes::from_static(b": chela live feed\n\n")).is_err() {
            return;
        }
        loop {
            let piece = match tokio::time::timeout(std::time::Duration::from_secs(1), feed.recv()).await {
                Ok(Ok(ev)) => {
                    let wanted = agent.as_ref().is_none_or(|a| ev.agent.as_ref() == Some(a))
                        && channel.as_ref().is_none_or(|c| &ev.channel == c);
                    if !wanted {
                        continue;
                    }
                    quiet = 0;
                    format!("data: {}\n\n", serde_json::to_string(&*ev).unwrap_or_default())
                }
                Ok(Err(RecvError::Lagged(n))) => format!("event: missed\ndata: {n}\n\n"),
                Ok(Err(RecvError::Closed)) => break,
                Err(_) => {
                    if gw.upgrade().is_none_or(|g| g.stopping.load(std::sync::atomic::Ordering::Relaxed)) {
                        break;
                    }
                    quiet += 1;
                    if quiet % 15 != 0 {
                        continue;
                    }
                    ": keep-alive\n\n".to_string()
                }
            };
            // A client that does not read is cut off rather than buffered for.
            if tx.try_send(bytes::Bytes::from(piece)).is_err() {
                break;
            }
        }
    });
    crate::reply::event_stream(rx)
}

/// `GET /api/v1/pairing`: pending pairing requests of every configured channel.
async fn pairing_list(gw: &Gateway) -> Reply {
    let channels: Vec<String> =
        gw.config().channels.iter().flat_map(|c| c.keys().cloned().collect::<Vec<_>>()).collect();
    let listed = gw
        .on_pairing(move |pairing| {
            let mut out = Vec::new();
            for channel in channels {
                out.extend(pairing.pending(&channel)?.into_iter().map(|r| {
                    let mut row = serde_json::json!(r);
                    row["channel"] = serde_json::json!(channel);
                    row
                }));
            }
            Ok(out)
        })
        .await;
    match listed {
        Ok(out) => json(StatusCode::OK, &serde_json::json!({ "pending": out })),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PairingBody {
    channel: String,
    code: String,
}

/// `POST /api/v1/pairing/approve|deny` `{channel, code}`, as `chela pairing approve`.
async fn pairing_decide(gw: Arc<Gateway>, req: Request<Incoming>, approve: bool) -> Reply {
    let body: PairingBody = match body_json(&gw, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    // Only a configured channel: its name becomes part of a file name.
    if !gw.config().channels.as_ref().is_some_and(|c| c.contains_key(&body.channel)) {
        return error(StatusCode::NOT_FOUND, &format!("no channel `{}` in the config", body.channel));
    }
    let (channel, code) = (body.channel.clone(), body.code.clone());
    let decided = gw
        .on_pairing(
            move |pairing| if approve { pairing.approve(&channel, &code) } else { pairing.deny(&channel, &code) },
        )
        .await;
    match decided {
        Ok(r) => {
            tracing::info!(channel = %body.channel, sender = %r.id, approve, "pairing request decided through the control API");
            let key = if approve { "approved" } else { "denied" };
            json(StatusCode::OK, &serde_json::json!({ key: r, "channel": body.channel }))
        }
        Err(e @ crate::pairing::PairingError::UnknownCode { .. }) => error(StatusCode::NOT_FOUND, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CronRunBody {
    id: String,
}

async fn cron_run(gw: Arc<Gateway>, req: Request<Incoming>) -> Reply {
    let body: CronRunBody = match body_json(&gw, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    use crate::cron::scheduler::RunNowError;
    match crate::cron::Scheduler::run_now(&gw, &body.id).await {
        Ok(report) => json(StatusCode::OK, &serde_json::json!(report)),
        Err(e @ RunNowError::Unknown(_)) => error(StatusCode::NOT_FOUND, &e.to_string()),
        Err(e @ (RunNowError::Busy(_) | RunNowError::Disabled)) => error(StatusCode::CONFLICT, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn route(gw: Arc<Gateway>, req: Request<Incoming>) -> Reply {
    let v: serde_json::Value = match body_json(&gw, req).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let input = match RouteInput::from_json(&v) {
        Ok(i) => i,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let snap = gw.snapshot();
    // The tier walk too, so a caller (the control page) can show why.
    let mut trace = snap.routes.explain(&snap.config, &input).trace_json();
    match snap.routes.dispatch(&input) {
        Ok(d) => {
            let mut out = serde_json::json!(d);
            out["tiers"] = trace["tiers"].take();
            out["shadowed"] = trace["shadowed"].take();
            json(StatusCode::OK, &out)
        }
        Err(e) => {
            let mut out = serde_json::json!({ "error": e.to_string() });
            out["tiers"] = trace["tiers"].take();
            json(StatusCode::UNPROCESSABLE_ENTITY, &out)
        }
    }
}
