//! Delivering a job's failure alert, recovery notice or turn-off notice
//! (core's `failure_alert` decides whether there is one): to a chat through an
//! account that speaks for the job's agent, or POSTed to a webhook.
//!
//! A chat destination that names no channel or recipient (`channel:
//! "last"`) goes where the job's session, else its agent's main session,
//! last spoke.
//!
//! Must not: decide when to alert, or send through another agent's account.

use std::sync::Arc;

use chela_agent::DeliveryContext;
use chela_core::failure_alert::{self, Destination, Notice};
use chela_core::ids::ChatType;
use chela_core::routing::SessionTarget;
use chela_core::session_key::SessionKey;
use serde_json::json;

use super::Job;
use crate::Gateway;

/// The run a notice is about.
pub(super) struct Run<'a> {
    pub id: &'a str,
    /// Why it failed, as recorded.
    pub error: Option<&'a str>,
    pub session_key: Option<&'a str>,
    pub started_at_ms: i64,
}

/// Sends `notice` about `job` (after `run`) to `destination`.
pub(super) async fn send(gw: &Arc<Gateway>, job: &Job, destination: &Destination, notice: &Notice, run: &Run<'_>) {
    let run_at_ms = run.started_at_ms;
    let snap = gw.snapshot();
    let cfg = &snap.config;
    let Some(agent) = job.agent(cfg) else { return };
    let text = failure_alert::text(notice, &job.id, &job.name(), &chela_core::schedule::format_instant(run_at_ms));
    let kind = match notice {
        Notice::Alert { .. } => "failure alert",
        Notice::Recovered { .. } => "recovery notice",
        Notice::AutoDisabled { .. } | Notice::ScheduleErrors { .. } => "turn-off notice",
    };
    let sent = match destination {
        Destination::Webhook(url) => {
            let (action, failures) = match notice {
                Notice::Alert { failures, .. } => ("failureAlert", failures),
                Notice::Recovered { failures } => ("recovered", failures),
                Notice::AutoDisabled { failures, .. } => ("autoDisabled", failures),
                Notice::ScheduleErrors { errors, .. } => ("autoDisabled", errors),
            };
            let payload = json!({
                "jobId": job.id,
                "action": action,
                "agentId": agent,
                "text": text,
                // The raw error: a webhook is an integration, not a chat.
                "error": run.error,
                "consecutiveFailures": failures,
                "runId": run.id,
                "runAtMs": run_at_ms,
            });
            super::webhook::post(gw, cfg, url, &payload).await
        }
        Destination::Chat { channel, to, account_id } => {
            let route = match (channel, to) {
                (Some(channel), Some(to)) => Some((
                    DeliveryContext {
                        channel: channel.to_ascii_lowercase(),
                        to: to.clone(),
                        account_id: account_id.clone().unwrap_or_else(|| "default".into()),
                        thread_id: None,
                    },
                    ChatType::Direct,
                )),
                _ => {
                    let own = run.session_key.and_then(SessionKey::parse);
                    let own = own.map(|k| SessionTarget::of_key(cfg, k, ChatType::Direct));
                    own.and_then(|t| super::run::last_route(gw, &t))
                        .or_else(|| super::run::last_route(gw, &SessionTarget::main(cfg, &agent)))
                }
            };
            match route {
                None => {
                    Err("nowhere to send it: the job has no chat route (set `failureAlert.channel` and `to`)".into())
                }
                Some((delivery, chat_type)) => match super::run::foreign_account(&snap, &agent, &delivery) {
                    Some(why) => Err(why),
                    None => {
                        let session_key = SessionTarget::main(cfg, &agent).key;
                        let a = chela_agent::Announcement { session_key, delivery: Some(delivery), chat_type, text };
                        if gw.deliver_announcement(a).await {
                            Ok(())
                        } else {
                            Err("not delivered (see the log)".into())
                        }
                    }
                },
            }
        }
    };
    match sent {
        Ok(()) => tracing::info!(job = %job.id, "cron {kind} sent"),
        Err(why) => tracing::warn!(job = %job.id, %why, "cron {kind} not sent"),
    }
}
