//! `/readyz`, `/metrics` and the health snapshot (`GET /api/v1/health`,
//! `GET /api/v1/channels`, what `chela health` and `chela channels status`
//! print): what is running and how it is doing.
//!
//! Must not: change any state; every answer is a read-only view.

use hyper::StatusCode;

use crate::metrics::Gauge;
use crate::reply::{json, Reply};
use crate::supervisor::AccountState;
use crate::Gateway;

/// `gateway.metrics.auth`; by default on when the listener is off loopback.
pub(crate) fn metrics_need_auth(gw: &Gateway) -> bool {
    let configured = gw.config().gateway.as_ref().and_then(|g| g.metrics.as_ref()?.auth);
    configured.unwrap_or(!gw.options.addr.ip().is_loopback())
}

/// `detailed`: the caller may see the per-account report (see `server.rs`);
/// otherwise only how many accounts are degraded.
pub(crate) fn readyz(gw: &Gateway, detailed: bool) -> Reply {
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
    // Accounts are reported apart: one degraded account never makes the
    // replica unready (it must keep receiving the other accounts' webhooks).
    let accounts = gw.supervision.report();
    let degraded: Vec<String> = accounts
        .iter()
        .filter(|a| a.state == AccountState::Degraded)
        .map(|a| format!("{}/{}", a.channel, a.account))
        .collect();
    let body = if detailed {
        let mut body = serde_json::json!({"ready": ready, "channelsMissing": missing, "pluginsNotReady": failed,
                           "accountsDegraded": degraded, "accounts": accounts});
        // Replicas: which singleton connections this one owns.
        if let Some(k) = &gw.leases {
            let database = k.database_error().unwrap_or_else(|| "ok".into());
            body["replica"] = serde_json::json!({"owner": k.owner(), "leases": k.held(), "database": database});
        }
        body
    } else {
        serde_json::json!({"ready": ready, "channelsMissing": missing, "pluginsNotReady": failed,
                           "accountsDegraded": degraded.len()})
    };
    json(status, &body)
}

/// Every account the config declares, with what the gateway makes of it:
/// `state` from supervision when it is served; else `disabled`, `refused`
/// (the adapter's reason) or `no-adapter` (no channel plugin for it loaded).
pub(crate) fn channel_accounts(gw: &Gateway) -> Vec<serde_json::Value> {
    let cfg = gw.config();
    let served: std::collections::BTreeMap<(String, String), crate::supervisor::AccountReport> =
        gw.supervision.report().into_iter().map(|r| ((r.channel.clone(), r.account.clone()), r)).collect();
    let missing: std::collections::BTreeMap<String, String> = gw.missing_channels().into_iter().collect();
    let mut out = Vec::new();
    for (channel, section) in cfg.channels.iter().flatten() {
        for declared in section.declared_accounts() {
            let mut row = serde_json::json!({
                "channel": channel,
                "account": declared.id,
                "name": declared.account.name,
                "enabled": declared.enabled,
            });
            let key = (channel.clone(), declared.id.clone());
            if let Some(report) = served.get(&key) {
                row["running"] = serde_json::json!(report.state != AccountState::Degraded);
                if let (Some(row), Ok(serde_json::Value::Object(r))) =
                    (row.as_object_mut(), serde_json::to_value(report))
                {
                    row.extend(r.into_iter().filter(|(k, _)| k != "channel" && k != "account"));
                }
            } else {
                let (state, why) = if !declared.enabled {
                    ("disabled", None)
                } else if let Some(why) = missing.get(&format!("{channel}/{}", declared.id)) {
                    ("refused", Some(why.clone()))
                } else {
                    ("no-adapter", missing.get(channel).cloned())
                };
                row["running"] = serde_json::json!(false);
                row["state"] = serde_json::json!(state);
                row["lastError"] = serde_json::json!(why);
            }
            out.push(row);
        }
    }
    out
}

/// Each agent of the roster with its identity and session store: how many
/// sessions, how long since the newest was active (`sessions` lists one
/// agent's store). What `chela health` and `chela status` show, from the
/// gateway or, without one, from the files.
pub fn agent_summaries(
    cfg: &chela_core::config::Config,
    roster: &chela_core::roster::Roster,
    sessions: impl Fn(&str) -> Result<Vec<(String, chela_agent::SessionEntry)>, String>,
) -> Vec<serde_json::Value> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    roster
        .ids()
        .into_iter()
        .map(|id| {
            let entry = cfg.agent(&id).map(|(_, a)| a);
            let mut row = serde_json::json!({
                "id": id,
                "default": roster.default_agent() == id,
                "name": entry.and_then(|a| a.name.clone()),
                "emoji": entry.and_then(|a| a.identity.as_ref()?.emoji.clone()),
            });
            match sessions(&id) {
                Ok(list) => {
                    let newest = list.iter().map(|(_, e)| e.updated_at).max();
                    row["sessions"] = serde_json::json!(list.len());
                    row["lastActivityAgeSeconds"] =
                        serde_json::json!(newest.map(|t| ((now_ms - t).max(0) as f64) / 1000.0));
                }
                Err(e) => row["sessionStoreError"] = serde_json::json!(e),
            }
            row
        })
        .collect()
}

/// The gateway's health snapshot (OpenClaw's `openclaw health --json`
/// analogue): readiness, agents with their session stores, every declared
/// channel account, plugins, and what the journal still holds.
pub(crate) fn snapshot(gw: &Gateway) -> serde_json::Value {
    let snap = gw.snapshot();
    let roster = snap.routes.roster();
    let agents = agent_summaries(&snap.config, roster, |id| {
        gw.runtime.store(id).map_err(|e| e.to_string()).and_then(|s| s.list().map_err(|e| e.to_string()))
    });
    let plugins: Vec<serde_json::Value> = gw
        .plugins
        .list()
        .into_iter()
        .map(|p| serde_json::json!({"id": p.id, "kind": p.kind, "status": p.status, "error": p.error}))
        .collect();
    let (unfinished, undelivered) = gw.journal.depth();
    serde_json::json!({
        "ok": true,
        "ready": gw.missing_channels().is_empty(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": gw.started.elapsed().as_secs_f64(),
        "defaultAgent": roster.default_agent(),
        "agents": agents,
        "channels": channel_accounts(gw),
        "plugins": plugins,
        "journal": {"unfinishedMessages": unfinished, "undeliveredReplies": undelivered},
        "chatsBusy": gw.chats.busy(),
    })
}

pub(crate) async fn metrics(gw: &Gateway) -> String {
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
        for (lane, bytes) in ch.memory_bytes() {
            gauges.push(Gauge {
                name: "chela_channel_instance_memory_bytes",
                help: "Linear memory of each live channel adapter instance (one per account and lane).",
                labels: vec![
                    ("channel", ch.channel_id().to_string()),
                    ("account", lane.account().to_string()),
                    ("lane", lane.role().to_string()),
                ],
                value: bytes as f64,
            });
        }
    }
    gauges.extend(gw.supervision.gauges());
    let (unfinished, undelivered) = gw.journal.depth();
    gauges.push(Gauge {
        name: "chela_journal_unfinished_messages",
        help: "Accepted inbound messages whose replies are not journaled yet.",
        labels: vec![],
        value: unfinished as f64,
    });
    gauges.push(Gauge {
        name: "chela_journal_undelivered_replies",
        help: "Journaled replies not yet delivered to the platform.",
        labels: vec![],
        value: undelivered as f64,
    });
    gauges.push(Gauge {
        name: "chela_chats_busy",
        help: "Chats with a message running or waiting.",
        labels: vec![],
        value: gw.chats.busy() as f64,
    });
    gauges.push(Gauge {
        name: "chela_plugins_loaded",
        help: "Plugins loaded.",
        labels: vec![],
        value: gw.plugins.all().len() as f64,
    });
    gw.metrics.render(&gauges)
}
