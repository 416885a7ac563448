//! `/readyz` and `/metrics`: what is running and how it is doing.
//!
//! Must not: change any state; both answers are read-only views.

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
        serde_json::json!({"ready": ready, "channelsMissing": missing, "pluginsNotReady": failed,
                           "accountsDegraded": degraded, "accounts": accounts})
    } else {
        serde_json::json!({"ready": ready, "channelsMissing": missing, "pluginsNotReady": failed,
                           "accountsDegraded": degraded.len()})
    };
    json(status, &body)
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
