//! Failure alerts of scheduled jobs (OpenClaw's `cron.failureAlert` and a
//! job's own `failureAlert`, `docs/automation/cron-jobs/delivery.md`): who
//! is told when a job keeps failing, when, and when it has recovered.
//!
//! - A job is covered when it has a route to tell — its own `failureAlert`
//!   object, a `cron.failureAlert` object, or its primary announce target —
//!   and not switched off (`failureAlert: false`, or `cron.failureAlert.
//!   enabled: false` without a per-job object).
//! - After `after` (2) consecutive failures one alert goes out. Later
//!   failures with the same cause belong to the same incident and stay
//!   quiet, however long it lasts; a changed cause alerts again once
//!   `cooldownMs` (1 h) has passed since the last alert. The first success
//!   after an alert sends one recovery notice and closes the incident.
//!   Skipped runs count only under `includeSkipped`, on their own streak,
//!   and never recover an incident.
//! - Chats get a normalised cause; the raw error stays in the run history
//!   (and in a webhook alert's structured body).
//! - Whatever the policy, a recurring job that fails [`AUTO_DISABLE_AFTER`]
//!   (10) times in a row is turned off, and its agent's chat is told how to
//!   turn it back on (OpenClaw's safety backstop). So is a job whose
//!   schedule cannot be computed [`SCHEDULE_ERRORS_DISABLE_AFTER`] (3) times
//!   in a row (it does not compile, or a recurring one has no next time).
//!
//! Must not: send, persist or schedule anything (the gateway's scheduler
//! keeps the incident in the job's state and delivers the notice).

use serde::{Deserialize, Serialize};

use crate::config::schema::Config;
pub use crate::config::schema::{FailureAlertConfig, FailureDestination, JobFailureAlert};
use crate::cron_job::JobSpec;

/// OpenClaw's defaults: alert after two consecutive failures, then wait an hour.
pub const DEFAULT_AFTER: u32 = 2;
pub const DEFAULT_COOLDOWN_MS: u64 = 3_600_000;
/// OpenClaw's safety backstop: a recurring job that fails this many times
/// in a row is turned off until someone enables it again.
pub const AUTO_DISABLE_AFTER: u32 = 10;
/// The same backstop for schedules: this many failed computations of a
/// job's next run in a row turn it off (`schedule-errors`).
pub const SCHEDULE_ERRORS_DISABLE_AFTER: u32 = 3;

/// Where an alert goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A chat: each part unset (or channel `last`) is taken from where the job last spoke.
    Chat { channel: Option<String>, to: Option<String>, account_id: Option<String> },
    /// POSTed to this URL.
    Webhook(String),
}

/// The alert policy in force for one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertPolicy {
    pub after: u32,
    pub cooldown_ms: u64,
    pub include_skipped: bool,
    pub destination: Destination,
}

fn destination_of(c: &FailureDestination) -> Destination {
    let set = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    match c.mode.as_deref() {
        Some("webhook") => Destination::Webhook(set(&c.to).unwrap_or_default()),
        _ => Destination::Chat {
            channel: set(&c.channel).filter(|ch| ch != "last"),
            to: set(&c.to),
            account_id: set(&c.account_id),
        },
    }
}

/// The policy covering `job`, or `None` when it is not covered.
pub fn policy(cfg: &Config, job: &JobSpec) -> Option<AlertPolicy> {
    let global = cfg.cron.as_ref().and_then(|c| c.failure_alert.as_ref());
    let own = match &job.failure_alert {
        Some(JobFailureAlert::Switch(false)) => return None,
        Some(JobFailureAlert::Switch(true)) => Some(FailureAlertConfig::default()),
        Some(JobFailureAlert::Policy(p)) => Some((**p).clone()),
        None => None,
    };
    let best_effort = job.delivery.as_ref().and_then(|d| d.best_effort) == Some(true);
    if own.is_none() && (best_effort || global.is_some_and(|g| g.enabled == Some(false))) {
        return None;
    }
    // The first that names a destination: the job's object, its
    // `delivery.failureDestination` (field by field over the global one),
    // the global object.
    let global_route = global.map(FailureAlertConfig::route);
    let layered = job
        .delivery
        .as_ref()
        .and_then(|d| d.failure_destination.as_ref())
        .map(|fd| fd.over(&global_route.clone().unwrap_or_default()));
    let own_route = own.as_ref().map(FailureAlertConfig::route);
    let primary = announce_target(job);
    let named = [&own_route, &layered, &global_route].into_iter().flatten().find(|r| r.names());
    let destination = match (named, primary) {
        (Some(r), _) => destination_of(r),
        (None, Some(p)) => p,
        // No route of its own: covered only when a policy object asks for alerts.
        (None, None) if own.is_some() || global.is_some() || layered.is_some() => {
            Destination::Chat { channel: None, to: None, account_id: None }
        }
        (None, None) => return None,
    };
    let pick = |f: fn(&FailureAlertConfig) -> Option<u64>| own.as_ref().and_then(f).or_else(|| global.and_then(f));
    Some(AlertPolicy {
        after: pick(|c| c.after.map(u64::from)).map_or(DEFAULT_AFTER, |a| a.clamp(1, u64::from(u32::MAX)) as u32),
        cooldown_ms: pick(|c| c.cooldown_ms).unwrap_or(DEFAULT_COOLDOWN_MS),
        include_skipped: pick(|c| c.include_skipped.map(u64::from)) == Some(1),
        destination,
    })
}

/// An open incident: the failure an alert went out for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    /// The normalised cause ([`chat_cause`]) the last alert named.
    pub cause: String,
    pub alerted_at_ms: i64,
    /// Consecutive failures so far.
    pub failures: u32,
}

/// How a run ended, as far as alerts care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    Ok,
    Error,
    Skipped,
}

/// What to tell after a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Alert {
        cause: &'static str,
        failures: u32,
    },
    Recovered {
        failures: u32,
    },
    /// The job was turned off ([`AUTO_DISABLE_AFTER`]); sent even where
    /// alerts are off (`failureAlert: false`), in place of a regular alert.
    AutoDisabled {
        cause: &'static str,
        failures: u32,
    },
    /// The job was turned off because its schedule could not be computed
    /// ([`SCHEDULE_ERRORS_DISABLE_AFTER`] times in a row); `cause` is the
    /// schedule's own fault (a config problem, never a provider's error).
    ScheduleErrors {
        cause: String,
        errors: u32,
    },
}

/// Whether `errors` failed schedule computations in a row turn a job off now.
pub fn schedule_errors_disable(errors: u32) -> bool {
    errors >= SCHEDULE_ERRORS_DISABLE_AFTER
}

/// Whether a recurring job with `streak` consecutive failures is turned off now.
pub fn auto_disables(recurring: bool, streak: u32) -> bool {
    recurring && streak >= AUTO_DISABLE_AFTER
}

/// Where the turn-off notice goes when no alert policy covers the job: its
/// announce target, else where it last spoke.
pub fn safety_destination(job: &JobSpec) -> Destination {
    announce_target(job).unwrap_or(Destination::Chat { channel: None, to: None, account_id: None })
}

/// The chat a job announces its output to, if it does.
fn announce_target(job: &JobSpec) -> Option<Destination> {
    let d = job.delivery.as_ref().filter(|_| job.announces())?;
    Some(Destination::Chat { channel: d.channel.clone(), to: d.to.clone(), account_id: d.account_id.clone() })
}

/// Updates `incident` for one finished run and says what to send.
/// `streak` is the run's consecutive count of its kind (errors, or skips).
pub fn on_run(
    policy: &AlertPolicy,
    incident: &mut Option<Incident>,
    end: RunEnd,
    streak: u32,
    reason: &str,
    now_ms: i64,
) -> Option<Notice> {
    let cause = match end {
        RunEnd::Ok => return incident.take().map(|i| Notice::Recovered { failures: i.failures }),
        RunEnd::Skipped if !policy.include_skipped => return None,
        RunEnd::Skipped => "it was skipped",
        RunEnd::Error => chat_cause(reason),
    };
    if streak < policy.after {
        return None;
    }
    if let Some(open) = incident.as_mut() {
        open.failures = streak;
        let cooled = now_ms.saturating_sub(open.alerted_at_ms) >= policy.cooldown_ms as i64;
        if open.cause == cause || !cooled {
            return None;
        }
    }
    *incident = Some(Incident { cause: cause.to_string(), alerted_at_ms: now_ms, failures: streak });
    Some(Notice::Alert { cause, failures: streak })
}

/// The cause a chat is told: never the raw error (provider bodies, paths
/// and secrets stay in the run history).
pub fn chat_cause(reason: &str) -> &'static str {
    let r = reason.trim();
    if r.contains("timed out") {
        "the run timed out"
    } else if r.contains("speaks for") {
        "its delivery account belongs to another agent"
    } else if ["payload.", "agentId", "sessionTarget", "sessionKey", "delivery"].iter().any(|p| r.starts_with(p)) {
        "the job's settings are invalid"
    } else {
        "the agent turn failed"
    }
}

/// The chat text of a notice about job `id` (`name`), for a run started at `run_at`.
pub fn text(notice: &Notice, id: &str, name: &str, run_at: &str) -> String {
    match notice {
        Notice::Alert { cause, failures } => format!(
            "⚠️ Scheduled job “{name}” failed {failures} times in a row: {cause}.\nRun started: {run_at}\nDetails: `chela cron runs {id}`"
        ),
        Notice::Recovered { failures } => {
            format!("✅ Scheduled job “{name}” is working again (after {failures} failed runs).")
        }
        Notice::AutoDisabled { cause, failures } => format!(
            "⛔ Scheduled job “{name}” was turned off after {failures} failures in a row: {cause}.\nFix the cause, then turn it back on: `chela cron enable {id}`"
        ),
        Notice::ScheduleErrors { cause, errors } => format!(
            "⛔ Scheduled job “{name}” was turned off: its next run could not be computed {errors} times in a row ({cause}).\nFix its schedule, then turn it back on: `chela cron enable {id}`"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        crate::config::load_str(text, None).expect("config loads").config
    }

    fn job(text: &str) -> JobSpec {
        serde_json::from_str(text).expect("job parses")
    }

    const ANNOUNCES: &str = r#"{ "id": "j", "schedule": { "kind": "every", "everyMs": 60000 },
        "payload": { "kind": "agentTurn", "message": "hi" },
        "delivery": { "mode": "announce", "channel": "slack", "to": "C1", "accountId": "ops" } }"#;
    const QUIET: &str = r#"{ "id": "j", "schedule": { "kind": "every", "everyMs": 60000 },
        "payload": { "kind": "agentTurn", "message": "hi" }, "delivery": { "mode": "none" } }"#;

    #[test]
    fn a_job_is_covered_by_its_route_or_an_explicit_policy() {
        let none = cfg("{}");
        let p = policy(&none, &job(ANNOUNCES)).expect("a job that announces is covered by default");
        assert_eq!((p.after, p.cooldown_ms, p.include_skipped), (2, 3_600_000, false));
        assert_eq!(
            p.destination,
            Destination::Chat { channel: Some("slack".into()), to: Some("C1".into()), account_id: Some("ops".into()) }
        );
        assert_eq!(policy(&none, &job(QUIET)), None, "no route, no policy object: quiet");

        let global = cfg(r#"{ cron: { failureAlert: { after: 3, mode: "webhook", to: "https://h.example/alert" } } }"#);
        let p = policy(&global, &job(QUIET)).expect("a global object activates");
        assert_eq!((p.after, p.destination), (3, Destination::Webhook("https://h.example/alert".into())));

        let off = cfg(r#"{ cron: { failureAlert: { enabled: false } } }"#);
        assert_eq!(policy(&off, &job(ANNOUNCES)), None, "global off: inherited alerts off");
        let mut own = job(ANNOUNCES);
        own.failure_alert = Some(JobFailureAlert::Policy(Box::new(FailureAlertConfig {
            after: Some(1),
            channel: Some("telegram".into()),
            to: Some("42".into()),
            ..Default::default()
        })));
        let p = policy(&off, &own).expect("a per-job object re-enables");
        assert_eq!(p.after, 1);
        assert!(matches!(p.destination, Destination::Chat { channel: Some(ref c), .. } if c == "telegram"));
        own.failure_alert = Some(JobFailureAlert::Switch(false));
        assert_eq!(policy(&none, &own), None, "`failureAlert: false`");
    }

    #[test]
    fn a_failure_destination_layers_over_the_global_one_and_best_effort_quiets_inherited_alerts() {
        let global = cfg(r#"{ cron: { failureAlert: { channel: "slack", to: "C-ops", accountId: "ops" } } }"#);
        let with = |delivery: &str| {
            job(&format!(
                r#"{{ "id": "j", "schedule": {{ "kind": "every", "everyMs": 60000 }}, "sessionTarget": "isolated",
                "payload": {{ "kind": "agentTurn", "message": "hi" }}, "delivery": {delivery} }}"#
            ))
        };
        let j = with(r#"{ "mode": "none", "failureDestination": { "to": "C-oncall" } }"#);
        assert_eq!(
            policy(&global, &j).unwrap().destination,
            Destination::Chat {
                channel: Some("slack".into()),
                to: Some("C-oncall".into()),
                account_id: Some("ops".into())
            },
            "its `to` over the global channel and account"
        );
        assert!(j.problems(&global, 0).is_empty(), "{:?}", j.problems(&global, 0));
        let quiet = with(r#"{ "mode": "announce", "channel": "slack", "to": "C1", "bestEffort": true }"#);
        assert_eq!(policy(&cfg("{}"), &quiet), None, "bestEffort: no inherited alerts");
        let mut own = quiet.clone();
        own.failure_alert = Some(JobFailureAlert::Switch(true));
        assert!(policy(&cfg("{}"), &own).is_some(), "an explicit per-job policy stays");
        let main = job(r#"{ "id": "m", "schedule": { "kind": "every", "everyMs": 60000 }, "sessionTarget": "main",
            "payload": { "kind": "systemEvent", "text": "x" }, "delivery": { "failureDestination": { "to": "C1" } } }"#);
        assert!(main.problems(&global, 0).iter().any(|p| p.field == "delivery.failureDestination"));
    }

    fn two() -> AlertPolicy {
        AlertPolicy {
            after: 2,
            cooldown_ms: 1_000,
            include_skipped: false,
            destination: Destination::Chat { channel: None, to: None, account_id: None },
        }
    }

    #[test]
    fn one_alert_per_incident_a_new_cause_after_the_cooldown_and_one_recovery() {
        let p = two();
        let mut open = None;
        assert_eq!(on_run(&p, &mut open, RunEnd::Error, 1, "model said 500", 0), None, "below `after`");
        assert_eq!(
            on_run(&p, &mut open, RunEnd::Error, 2, "model said 500", 10),
            Some(Notice::Alert { cause: "the agent turn failed", failures: 2 })
        );
        assert_eq!(on_run(&p, &mut open, RunEnd::Error, 3, "model said 502", 5_000), None, "same cause: same incident");
        assert_eq!(on_run(&p, &mut open, RunEnd::Error, 4, "timed out after 30s", 500), None, "within the cooldown");
        assert_eq!(
            on_run(&p, &mut open, RunEnd::Error, 5, "timed out after 30s", 2_000),
            Some(Notice::Alert { cause: "the run timed out", failures: 5 })
        );
        assert_eq!(on_run(&p, &mut open, RunEnd::Skipped, 1, "busy", 9_000), None, "a skip is no recovery");
        assert!(open.is_some());
        assert_eq!(on_run(&p, &mut open, RunEnd::Ok, 0, "", 9_500), Some(Notice::Recovered { failures: 5 }));
        assert_eq!(open, None);
        assert_eq!(on_run(&p, &mut open, RunEnd::Ok, 0, "", 9_600), None, "one recovery notice");
    }

    #[test]
    fn ten_failures_turn_a_recurring_job_off_with_a_notice_naming_the_way_back() {
        assert!(!auto_disables(true, AUTO_DISABLE_AFTER - 1));
        assert!(auto_disables(true, AUTO_DISABLE_AFTER));
        assert!(!auto_disables(false, 50), "a one-shot runs once anyway");
        let t = text(&Notice::AutoDisabled { cause: "the run timed out", failures: 10 }, "j", "Nightly", "x");
        assert!(t.contains("turned off after 10 failures") && t.contains("chela cron enable j"), "{t}");
        let cause = "the cron expression `0 0 30 2 *` never matches".to_string();
        let t = text(&Notice::ScheduleErrors { cause, errors: 3 }, "j", "Nightly", "x");
        assert!(t.contains("could not be computed 3 times") && t.contains("never matches") && t.contains("enable j"));
        assert!(!schedule_errors_disable(2) && schedule_errors_disable(3));
        assert_eq!(
            safety_destination(&job(QUIET)),
            Destination::Chat { channel: None, to: None, account_id: None },
            "no route of its own: where it last spoke"
        );
    }

    #[test]
    fn skipped_runs_alert_only_when_included() {
        let mut p = two();
        let mut open = None;
        assert_eq!(on_run(&p, &mut open, RunEnd::Skipped, 5, "quiet-hours", 0), None);
        p.include_skipped = true;
        assert_eq!(
            on_run(&p, &mut open, RunEnd::Skipped, 2, "quiet-hours", 0),
            Some(Notice::Alert { cause: "it was skipped", failures: 2 })
        );
    }

    #[test]
    fn chats_are_told_a_normalised_cause_never_the_raw_error() {
        let raw = "model error: 400 {\"error\":{\"message\":\"key sk-live-123 invalid\"}}";
        let t = text(&Notice::Alert { cause: chat_cause(raw), failures: 2 }, "j", "Nightly", "2026-12-06T00:00:00Z");
        assert!(
            !t.contains("sk-live") && t.contains("the agent turn failed") && t.contains("chela cron runs j"),
            "{t}"
        );
        assert_eq!(chat_cause("payload.model: unknown model"), "the job's settings are invalid");
    }

    #[test]
    fn a_job_failure_alert_is_false_true_or_a_checked_object() {
        let j = |fa: &str| {
            serde_json::from_str::<JobSpec>(
                &ANNOUNCES.replace("\"id\": \"j\",", &format!("\"id\": \"j\", \"failureAlert\": {fa},")),
            )
        };
        assert_eq!(j("false").unwrap().failure_alert, Some(JobFailureAlert::Switch(false)));
        assert!(matches!(j(r#"{ "after": 3 }"#).unwrap().failure_alert, Some(JobFailureAlert::Policy(_))));
        let e = j(r#"{ "aftr": 3 }"#).unwrap_err().to_string();
        assert!(e.contains("aftr"), "{e}");
        let bad = FailureAlertConfig { mode: Some("pager".into()), after: Some(0), ..Default::default() };
        let fields: Vec<String> = bad.problems("failureAlert").into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["failureAlert.after", "failureAlert.mode"]);
    }
}
