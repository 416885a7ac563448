//! Webhook delivery (`delivery.mode: "webhook"`): a finished run POSTed as
//! OpenClaw's `finished` event to the job's `delivery.to`; and an
//! announcing job's `delivery.completionDestination`, the same event POSTed
//! beside its announcement.
//!
//! The receiver is reached the way OpenClaw's strict SSRF guard allows: a
//! host must resolve to public addresses only (checked where the
//! connection is made, so DNS rebinding cannot swap it), unless
//! `cron.webhookSsrfPolicy.allowedHostnames` names it exactly or
//! `dangerouslyAllowPrivateNetwork` is set; `blockedHostnames` refuses
//! first. Redirects are not followed. `cron.webhookToken` goes as a bearer
//! token, never over plain HTTP except to loopback.
//!
//! A successful run with nothing to say (an empty or silent reply, a
//! skipped run) posts nothing (`deliverySuppressionReason: "empty"`); a
//! failed run always posts its error.
//!
//! Must not: send through any other path than the plugin runtime's
//! egress-checked [`host_post`], or change a run's status because its
//! delivery failed (the turn happened; only the delivery is recorded failed).

use std::sync::Arc;
use std::time::Duration;

use chela_core::config::schema::{Config, WebhookSsrfPolicy};
use chela_plugin::capability::egress::{is_public, Egress};
use chela_plugin::capability::http::{host_post, HostRequestError};
use serde_json::{json, Value as Json};

use super::run::{Outcome, Status};
use super::store::Claim;
use super::Job;
use crate::Gateway;

/// OpenClaw's `CRON_WEBHOOK_TIMEOUT_MS`.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What a run has to report: its reply, unless empty or silent.
fn summary_of(out: &Outcome) -> Option<String> {
    out.reply
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty() && !chela_core::heartbeat::is_silent(r))
        .map(str::to_string)
}

/// `delivery.completionDestination`: the finished run of an announcing job
/// POSTed to `url` as well, when it has something to report or failed. The
/// run's outcome is its announcement's, whatever this POST does (OpenClaw
/// sends it detached): a failure is logged.
pub(super) async fn complete(gw: &Arc<Gateway>, job: &Job, url: &str, claim: &Claim, out: &Outcome) {
    let cfg = gw.snapshot().config.clone();
    let summary = summary_of(out);
    if out.status != Status::Error && summary.is_none() {
        return;
    }
    let payload = finished_event(&cfg, job, claim, out, summary);
    match post(gw, &cfg, url, &payload).await {
        Ok(()) => tracing::info!(job = %job.id, url = %redacted(url), "cron completion webhook delivered"),
        Err(why) => tracing::warn!(job = %job.id, %why, "cron completion webhook not delivered"),
    }
}

/// Posts the finished run of `job` to `url` and records on the outcome
/// whether it was delivered.
pub(super) async fn deliver(gw: &Arc<Gateway>, job: &Job, url: &str, claim: &Claim, mut out: Outcome) -> Outcome {
    let cfg = gw.snapshot().config.clone();
    let summary = summary_of(&out);
    if out.status != Status::Error && summary.is_none() {
        out.reason = Some("webhook not posted: nothing to report (deliverySuppressionReason: empty)".into());
        return out;
    }
    let payload = finished_event(&cfg, job, claim, &out, summary);
    match post(gw, &cfg, url, &payload).await {
        Ok(()) => {
            tracing::info!(job = %job.id, url = %redacted(url), "cron webhook delivered");
            out.delivered = true;
            if out.status != Status::Error {
                out.reason = None;
            }
        }
        Err(why) => {
            tracing::warn!(job = %job.id, %why, "cron webhook not delivered");
            note(&mut out, why);
        }
    }
    out
}

/// POSTs `payload` to `url` under `cron.webhookSsrfPolicy`, with
/// `cron.webhookToken`; an error says why it did not arrive (URL redacted).
pub(super) async fn post(gw: &Gateway, cfg: &Config, url: &str, payload: &Json) -> Result<(), String> {
    let token = cfg
        .cron
        .as_ref()
        .and_then(|c| c.webhook_token.as_ref())
        .and_then(|t| chela_agent::auth::configured_key(t, &*gw.vars));
    let mut headers = vec![("content-type", "application/json".to_string())];
    if let Some(t) = &token {
        headers.push(("authorization", format!("Bearer {t}")));
    }
    let shown = redacted(url);
    let policy = cfg.cron.as_ref().and_then(|c| c.webhook_ssrf_policy.as_ref());
    let egress = grant(policy, url).map_err(|why| format!("webhook {shown} not delivered: {why}"))?;
    let body = serde_json::to_vec(payload).unwrap_or_default();
    match host_post(&egress, url, &headers, body, token.is_some(), TIMEOUT).await {
        Ok(status) if (200..300).contains(&status) => Ok(()),
        Ok(status) => Err(format!("webhook {shown} answered HTTP {status}")),
        Err(e) => Err(format!("webhook {shown} not delivered: {}", explain(e, url))),
    }
}

/// Adds a delivery failure to the run's reason (after its own error, if any).
fn note(out: &mut Outcome, what: String) {
    out.reason = Some(match out.reason.take().filter(|_| out.status == Status::Error) {
        Some(error) => format!("{error}; {what}"),
        None => what,
    });
}

/// OpenClaw's `finished` event: the run, its summary (a success) or its
/// error (a failure, without the summary), and the job it belongs to.
fn finished_event(cfg: &Config, job: &Job, claim: &Claim, out: &Outcome, summary: Option<String>) -> Json {
    let now = chela_agent::clock::now_ms();
    let mut event = json!({
        "jobId": job.id,
        "action": "finished",
        "status": out.status.as_str(),
        "runId": claim.run_id,
        "runAtMs": claim.started_at_ms,
        "durationMs": (now - claim.started_at_ms).max(0),
        "job": { "id": job.id, "name": job.name(), "agentId": job.agent(cfg) },
    });
    if out.status == Status::Error {
        event["error"] = json!(out.reason.clone().unwrap_or_else(|| "failed".into()));
    } else if let Some(s) = summary {
        event["summary"] = json!(s);
    }
    if let Some(k) = &out.session_key {
        event["sessionKey"] = json!(k);
    }
    event
}

/// The egress grant for one webhook URL under `cron.webhookSsrfPolicy`.
fn grant(policy: Option<&WebhookSsrfPolicy>, url: &str) -> Result<Egress, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("`{}` is not a valid URL: {e}", redacted(url)))?;
    let host = match parsed.host() {
        Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
        Some(url::Host::Ipv4(a)) => a.to_string(),
        Some(url::Host::Ipv6(a)) => a.to_string(),
        None => return Err("the URL names no host".into()),
    };
    let list = |l: Option<&Vec<String>>| -> Vec<String> {
        l.into_iter().flatten().map(|h| h.trim().trim_matches(['[', ']']).to_ascii_lowercase()).collect()
    };
    let blocked = list(policy.and_then(|p| p.blocked_hostnames.as_ref()));
    if blocked.iter().any(|b| match b.strip_prefix("*.") {
        Some(domain) => host.len() > domain.len() + 1 && host.ends_with(&format!(".{domain}")),
        None => *b == host,
    }) {
        return Err(format!("{host} is in cron.webhookSsrfPolicy.blockedHostnames"));
    }
    let allowed = list(policy.and_then(|p| p.allowed_hostnames.as_ref())).contains(&host);
    let private_ok = policy.and_then(|p| p.dangerously_allow_private_network) == Some(true);
    let ip = host.parse::<std::net::IpAddr>().ok();
    let rule = match parsed.port() {
        Some(port) if host.contains(':') => format!("[{host}]:{port}"),
        Some(port) => format!("{host}:{port}"),
        None if host.contains(':') => format!("[{host}]"),
        None => host.clone(),
    };
    let secrets = Arc::default();
    if allowed || private_ok || ip.is_some_and(is_public) {
        // Named by the operator (or a public address): any address it resolves to.
        Ok(Egress::new(&[rule], &[], secrets))
    } else if ip.is_some() {
        Err(format!("{host} is not a public address; {UNLOCK}"))
    } else {
        // A DNS name: every address it resolves to must be public.
        Ok(Egress::new(&[], &[rule], secrets))
    }
}

const UNLOCK: &str = "a webhook reaches a private or loopback address only when \
    `cron.webhookSsrfPolicy.allowedHostnames` lists its host";

fn explain(e: HostRequestError, url: &str) -> String {
    match e {
        HostRequestError::Refused(why) if why.contains("non-public") => format!("{why} ({UNLOCK})"),
        HostRequestError::Refused(why) => format!("refused: {why}"),
        other => format!("{other} ({})", redacted(url)),
    }
}

/// The URL without its query or userinfo (tokens often ride there), for logs.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!("{}{}", u.origin().ascii_serialization(), u.path()),
        Err(_) => "<invalid webhook URL>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> WebhookSsrfPolicy {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn the_grant_refuses_private_literals_and_blocked_hosts_unless_named() {
        let none = None;
        assert!(grant(none, "http://127.0.0.1:9/x").unwrap_err().contains("allowedHostnames"));
        assert!(grant(none, "http://[::1]:9/x").is_err());
        assert!(grant(none, "http://169.254.169.254/latest").is_err());
        assert!(grant(none, "https://hooks.example.com/x").is_ok(), "names are checked when resolved");
        let allow = policy(r#"{ "allowedHostnames": ["127.0.0.1"] }"#);
        assert!(grant(Some(&allow), "http://127.0.0.1:9/x").is_ok());
        assert!(grant(Some(&allow), "http://10.0.0.1/x").is_err(), "only the named host");
        let block = policy(r#"{ "blockedHostnames": ["*.internal.example"], "dangerouslyAllowPrivateNetwork": true }"#);
        assert!(grant(Some(&block), "https://a.internal.example/x").unwrap_err().contains("blockedHostnames"));
        assert!(grant(Some(&block), "https://internal.example/x").is_ok(), "`*.` excludes the apex");
        assert!(grant(Some(&block), "http://10.0.0.1/x").is_ok());
    }

    #[test]
    fn logged_urls_lose_their_query() {
        assert_eq!(redacted("https://h.example/hook?token=s3cret"), "https://h.example/hook");
    }
}
