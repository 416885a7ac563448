//! A scheduled job as OpenClaw writes one (`docs/automation/cron-jobs/*`):
//! its schedule, the agent it runs as, the session it runs in
//! (`main` | `isolated` | `current` | `session:<id>`), what it runs (a
//! system event or an agent turn) and where its output goes (`announce` |
//! `none`). One shape for jobs declared in config (`cron.jobs`) and jobs
//! `chela cron add` stores; [`JobSpec::problems`] is the one check of both.
//!
//! Isolation: a job runs as its own agent only. The session it names must be
//! that agent's ([`JobSpec::session`] refuses another agent's key), so a job
//! can never write into, or read from, another agent's conversations.
//!
//! Must not: schedule, persist or run anything (the gateway's scheduler does).

use serde::{Deserialize, Serialize};

use crate::config::schema::Config;
use crate::ids::normalize_agent_id;
use crate::roster::Roster;
use crate::schedule::{Schedule, ScheduleSpec};
use crate::session_key::SessionKey;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobSpec {
    /// Stable id (`chela cron rm <id>`); config jobs must set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The agent the job runs as; unset: the default agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    pub schedule: ScheduleSpec,
    /// `main` | `isolated` | `current` | `session:<id>`; unset: `main` for a
    /// system event, `isolated` for an agent turn (OpenClaw's defaults for a
    /// caller without a conversation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_target: Option<String>,
    /// The conversation a `current` job is bound to (a session key of its agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_key: Option<String>,
    pub payload: Payload,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// Remove a one-shot (`at`) job after it ran (default true for one-shots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_after_run: Option<bool>,
    /// A run's longest wall-clock time (default: the agent turn limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// A `main` system event: `now` (default) runs it at once, `next-heartbeat`
    /// hands it to the agent's next heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_mode: Option<String>,
    /// `false`: no failure alerts for this job; an object: its own policy
    /// (`crate::failure_alert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_alert: Option<crate::config::schema::JobFailureAlert>,
    /// Dynamic cadence: the job's own run may propose its next run
    /// (`next_check`), held to these bounds (`crate::pacing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pacing: Option<crate::pacing::Pacing>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum Payload {
    /// Text handed to the session as a system event (a turn in that session).
    SystemEvent { text: String },
    /// A model-backed agent turn with this message.
    #[serde(rename_all = "camelCase")]
    AgentTurn {
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        light_context: Option<bool>,
    },
    /// An operator's command run by the scheduler, no model turn (OpenClaw's
    /// command payload): written in the config or by `chela cron add`,
    /// never by an agent; run confined as its agent's host commands are.
    #[serde(rename_all = "camelCase")]
    Command {
        /// The program and its arguments (`["sh", "-lc", "<shell>"]` for a shell line).
        argv: Vec<String>,
        /// Where it runs, relative to the agent's workspace (default: the workspace).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cwd: Option<String>,
        /// Environment beside the confined default (`PATH`, `HOME`, `LANG`, `tools.exec.env`).
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        env: std::collections::BTreeMap<String, String>,
        /// Written to its stdin.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
        /// Its longest run (default [`COMMAND_TIMEOUT_SECONDS`], at most [`COMMAND_MAX_TIMEOUT_SECONDS`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_seconds: Option<u64>,
        /// Stop the command once it has written nothing for this many
        /// seconds (OpenClaw's silence limit; 0: none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        no_output_timeout_seconds: Option<u64>,
        /// The most of its output delivered (default and cap [`COMMAND_OUTPUT_MAX_BYTES`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output_max_bytes: Option<u64>,
    },
}

/// A command payload's longest run when it sets none (OpenClaw's 10 minutes).
pub const COMMAND_TIMEOUT_SECONDS: u64 = 600;
/// The longest a command payload may ask for.
pub const COMMAND_MAX_TIMEOUT_SECONDS: u64 = 3_600;
/// The most output of a command payload that is read and delivered.
pub const COMMAND_OUTPUT_MAX_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Delivery {
    /// `announce` | `webhook` (POST the finished run to `to`, a URL) | `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// Where failure alerts go (`mode`, `channel`, `to`, `accountId`),
    /// layered over `cron.failureAlert`'s (`crate::failure_alert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_destination: Option<crate::config::schema::FailureDestination>,
    /// A delivery failure is not the job's: no inherited failure alerts
    /// (a job's own `failureAlert` still applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_effort: Option<bool>,
    /// An announcing job's finished run POSTed to a webhook as well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_destination: Option<CompletionDestination>,
}

/// `delivery.completionDestination` (OpenClaw's): `{ mode: "webhook", to }`,
/// the finished event POSTed beside the announcement.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletionDestination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// Why `to` is not a URL a webhook may be posted to (http or https, a
/// host, no `user:pass@`); `None` when it is one. Where it may connect is
/// the gateway's egress check, at send time.
pub(crate) fn webhook_url_problem(to: Option<&str>) -> Option<String> {
    let Some(to) = to.map(str::trim).filter(|t| !t.is_empty()) else {
        return Some("webhook delivery needs `to`: the URL to POST the finished run to".into());
    };
    let Some((scheme, rest)) = to.split_once("://") else {
        return Some(format!("`{to}` is not an http(s) URL"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        Some(format!("`{to}` is not an http(s) URL"))
    } else if authority.contains('@') {
        Some(format!("`{to}`: a webhook URL cannot carry credentials (`user:pass@`); set `cron.webhookToken`"))
    } else if authority.is_empty() {
        Some(format!("`{to}` names no host"))
    } else {
        None
    }
}

/// Where a job's turn runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobSession {
    /// The agent's main session.
    Main,
    /// A fresh session per run under `agent:<id>:cron:<jobId>`.
    Isolated,
    /// The bound conversation (`sessionKey`).
    Current(SessionKey),
    /// A persistent named session `agent:<id>:session:<name>`.
    Custom(SessionKey),
}

/// A problem with a job: the field (relative to the job, e.g. `schedule.expr`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobProblem {
    pub field: String,
    pub message: String,
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> JobProblem {
    JobProblem { field: field.into(), message: message.into() }
}

/// Characters a job id may hold (it names a session and a file entry).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl JobSpec {
    /// The agent the job runs as (canonical id), or why it names none.
    pub fn agent(&self, cfg: &Config) -> Result<String, String> {
        Roster::from_config(cfg).pick(self.agent_id.as_deref()).map_err(|e| e.to_string())
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled != Some(false)
    }

    /// Whether only the operator may write, change, run or remove it (a
    /// command payload: an agent must never get a command of its own run
    /// outside its tool policy).
    pub fn operator_only(&self) -> bool {
        matches!(self.payload, Payload::Command { .. })
    }

    /// Whether its output is announced to a chat (`delivery.mode: announce`,
    /// the default for an agent turn that names a chat).
    pub fn announces(&self) -> bool {
        match self.delivery.as_ref().and_then(|d| d.mode.as_deref()) {
            Some("announce") => true,
            Some(_) => false,
            None => self.delivery.as_ref().is_some_and(|d| d.channel.is_some() || d.to.is_some()),
        }
    }

    /// The URL an announcing job also POSTs its finished run to
    /// (`delivery.completionDestination`, mode `webhook`).
    pub fn completion_webhook_url(&self) -> Option<&str> {
        let d = self.delivery.as_ref().filter(|d| matches!(d.mode.as_deref(), None | Some("announce")))?;
        let c = d.completion_destination.as_ref().filter(|c| c.mode.as_deref() == Some("webhook"))?;
        c.to.as_deref().map(str::trim).filter(|t| !t.is_empty())
    }

    /// The URL a `delivery.mode: "webhook"` job POSTs its finished run to.
    pub fn webhook_url(&self) -> Option<&str> {
        let d = self.delivery.as_ref().filter(|d| d.mode.as_deref() == Some("webhook"))?;
        d.to.as_deref().map(str::trim).filter(|t| !t.is_empty())
    }

    /// The session target as written, or its default: `main` for a system
    /// event, `isolated` for an agent turn (OpenClaw's for a caller without a
    /// conversation).
    pub fn session_target_name(&self) -> &str {
        let default = match self.payload {
            Payload::SystemEvent { .. } => "main",
            Payload::AgentTurn { .. } | Payload::Command { .. } => "isolated",
        };
        self.session_target.as_deref().map(str::trim).unwrap_or(default)
    }

    /// Where its turn runs, for `agent_id` (already resolved). A named
    /// session must be this agent's.
    pub fn session(&self, cfg: &Config, agent_id: &str) -> Result<JobSession, JobProblem> {
        let target = self.session_target_name();
        let own = |raw: &str, field: &str| -> Result<SessionKey, JobProblem> {
            let key = crate::routing::SessionTarget::requested(cfg, agent_id, Some(raw))
                .map_err(|e| problem(field, format!("{e}: a job runs as its own agent only")))?;
            Ok(key.key)
        };
        match target {
            "main" => Ok(JobSession::Main),
            "isolated" => Ok(JobSession::Isolated),
            "current" => {
                let raw = self.session_key.as_deref().filter(|k| !k.trim().is_empty()).ok_or_else(|| {
                    problem(
                        "sessionKey",
                        "a `current` job is bound to a conversation: set `sessionKey` (see `chela sessions list`)",
                    )
                })?;
                Ok(JobSession::Current(own(raw, "sessionKey")?))
            }
            other => match other.strip_prefix("session:") {
                Some(name) if !name.trim().is_empty() && !name.contains(':') => {
                    let key = own(&format!("session:{}", name.trim()), "sessionTarget")?;
                    Ok(JobSession::Custom(key))
                }
                Some(name) if name.contains(':') => Ok(JobSession::Custom(own(name, "sessionTarget")?)),
                _ => Err(problem(
                    "sessionTarget",
                    format!("`{other}` is not a session target: use `main`, `isolated`, `current` or `session:<id>`"),
                )),
            },
        }
    }

    /// Everything wrong with the job under `cfg`, each with its field.
    pub fn problems(&self, cfg: &Config, now_ms: i64) -> Vec<JobProblem> {
        let mut out = Vec::new();
        if let Some(id) = &self.id {
            if !valid_id(id) {
                out.push(problem("id", format!("`{id}` is not a job id (letters, digits, `-`, `_`; at most 64)")));
            }
        }
        if let Err(e) = Schedule::compile(&self.schedule, now_ms) {
            out.push(problem(format!("schedule.{}", e.field), e.message));
        }
        let agent = match self.agent(cfg) {
            Ok(a) => Some(a),
            Err(e) => {
                out.push(problem("agentId", e));
                None
            }
        };
        match &self.payload {
            Payload::SystemEvent { text } if text.trim().is_empty() => {
                out.push(problem("payload.text", "a system event needs its text"))
            }
            Payload::AgentTurn { message, .. } if message.trim().is_empty() => {
                out.push(problem("payload.message", "an agent turn needs its message"))
            }
            Payload::Command { argv, cwd, timeout_seconds, no_output_timeout_seconds, output_max_bytes, .. } => {
                if argv.first().is_none_or(|p| p.trim().is_empty()) {
                    out.push(problem("payload.argv", "a command needs its program: `argv: [\"program\", \"arg\", …]`"));
                }
                if let Some(c) = cwd.as_deref().filter(|c| c.starts_with('/') || c.split('/').any(|p| p == "..")) {
                    out.push(problem(
                        "payload.cwd",
                        format!("`{c}`: a command runs inside its agent's workspace; give a path relative to it"),
                    ));
                }
                if timeout_seconds.is_some_and(|t| t == 0 || t > COMMAND_MAX_TIMEOUT_SECONDS) {
                    out.push(problem(
                        "payload.timeoutSeconds",
                        format!(
                            "between 1 and {COMMAND_MAX_TIMEOUT_SECONDS} seconds (default {COMMAND_TIMEOUT_SECONDS})"
                        ),
                    ));
                }
                if no_output_timeout_seconds.is_some_and(|t| t > COMMAND_MAX_TIMEOUT_SECONDS) {
                    out.push(problem(
                        "payload.noOutputTimeoutSeconds",
                        format!("at most {COMMAND_MAX_TIMEOUT_SECONDS} seconds (0: no silence limit)"),
                    ));
                }
                if output_max_bytes.is_some_and(|b| b == 0 || b > COMMAND_OUTPUT_MAX_BYTES) {
                    out.push(problem(
                        "payload.outputMaxBytes",
                        format!("between 1 and {COMMAND_OUTPUT_MAX_BYTES} bytes"),
                    ));
                }
                if !matches!(self.session_target_name(), "isolated") {
                    out.push(problem(
                        "sessionTarget",
                        "a command runs outside any conversation: leave `sessionTarget` unset (`isolated`)",
                    ));
                }
                if self.pacing.is_some() {
                    out.push(problem("pacing", "a command cannot propose its next run; pacing is for agent turns"));
                }
            }
            _ => {}
        }
        if let Some(agent) = &agent {
            match self.session(cfg, agent) {
                Ok(JobSession::Main) if self.announces() => out.push(problem(
                    "delivery.mode",
                    "a `main` job answers in the main session's own chat; use an `isolated` job to announce elsewhere",
                )),
                Ok(_) => {}
                Err(p) => out.push(p),
            }
        }
        if let Some(pacing) = &self.pacing {
            if matches!(self.schedule, ScheduleSpec::At { .. }) {
                out.push(problem("pacing", "pacing is for recurring jobs; a one-shot (`at`) runs once"));
            }
            if let Err(problems) = pacing.bounds() {
                for (field, message) in problems {
                    let field = if field.is_empty() { "pacing".to_string() } else { format!("pacing.{field}") };
                    out.push(problem(field, message));
                }
            }
        }
        if let Some(crate::config::schema::JobFailureAlert::Policy(p)) = &self.failure_alert {
            out.extend(p.problems("failureAlert").into_iter().map(|(f, m)| problem(f, m)));
        }
        if let Some(fd) = self.delivery.as_ref().and_then(|d| d.failure_destination.as_ref()) {
            out.extend(fd.problems("delivery.failureDestination").into_iter().map(|(f, m)| problem(f, m)));
            // OpenClaw's rule: only an isolated job, or one whose primary delivery is a webhook.
            if self.session_target_name() != "isolated" && self.webhook_url().is_none() {
                out.push(problem(
                    "delivery.failureDestination",
                    "only an `isolated` job, or one delivering to a webhook, has a failure destination",
                ));
            }
        }
        match self.wake_mode.as_deref() {
            None | Some("now") | Some("next-heartbeat") => {}
            Some(w) => out.push(problem("wakeMode", format!("`{w}` is not a wake mode: `now` or `next-heartbeat`"))),
        }
        if let Some(d) = &self.delivery {
            match d.mode.as_deref() {
                None | Some("announce") | Some("none") => {}
                Some("webhook") => {
                    if let Some(why) = webhook_url_problem(d.to.as_deref()) {
                        out.push(problem("delivery.to", why));
                    }
                    for (field, set) in
                        [("channel", &d.channel), ("accountId", &d.account_id), ("threadId", &d.thread_id)]
                    {
                        if set.is_some() {
                            out.push(problem(
                                format!("delivery.{field}"),
                                "webhook delivery posts to `to` only; it cannot combine with chat delivery fields",
                            ));
                        }
                    }
                }
                Some(m) => out.push(problem(
                    "delivery.mode",
                    format!("`{m}` is not a delivery mode: `announce`, `webhook` or `none`"),
                )),
            }
            if let Some(c) = &d.completion_destination {
                match c.mode.as_deref() {
                    Some("webhook") => {}
                    Some(m) => out.push(problem(
                        "delivery.completionDestination.mode",
                        format!("`{m}` is not a completion destination: `webhook`"),
                    )),
                    None => out.push(problem("delivery.completionDestination.mode", "set `mode: \"webhook\"`")),
                }
                if let Some(why) = webhook_url_problem(c.to.as_deref()) {
                    out.push(problem("delivery.completionDestination.to", why));
                }
                if !matches!(d.mode.as_deref(), None | Some("announce")) {
                    out.push(problem(
                        "delivery.completionDestination",
                        "a completion webhook goes beside an announcement: it needs `delivery.mode: \"announce\"`",
                    ));
                }
            }
            if self.announces() && matches!(&self.payload, Payload::AgentTurn { .. }) {
                let to = d.to.as_deref().is_some_and(|t| !t.trim().is_empty());
                let channel = d.channel.as_deref().is_some_and(|t| !t.trim().is_empty());
                let bound = self.session_key.is_some();
                if !(bound || to && channel) {
                    out.push(problem(
                        "delivery",
                        "announcing needs `channel` and `to` (or a `current` job's conversation)",
                    ));
                }
            }
            if let (true, Some(agent), Some(ch)) =
                (self.announces(), &agent, d.channel.as_deref().filter(|c| !c.trim().is_empty()))
            {
                let account = d.account_id.as_deref().unwrap_or("default");
                let owners = crate::routing::RouteTable::build(cfg).agents_on_account(ch, account);
                if !owners.contains(agent) {
                    out.push(problem(
                        if d.account_id.is_some() { "delivery.accountId" } else { "delivery.channel" },
                        format!(
                            "account `{account}` of `{ch}` speaks for {}, not `{agent}`: a job sends only through its own agent's accounts",
                            owners.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
        }
        out
    }

    /// Makes this a job `agent` adds for itself (its `automations` tool):
    /// it runs as `agent`, and naming another agent is refused; a `current`
    /// job without a `sessionKey` is bound to `session_key`, the calling
    /// conversation. The rest is checked by [`JobSpec::problems`].
    pub fn bind_to_caller(&mut self, agent: &str, session_key: &str) -> Result<(), JobProblem> {
        if let Some(other) = self.agent_id.as_deref().map(|a| normalize_agent_id(Some(a))).filter(|a| a != agent) {
            return Err(problem("agentId", format!("a job runs as the agent that adds it (`{agent}`), not `{other}`")));
        }
        self.agent_id = Some(agent.to_string());
        if self.session_target.as_deref() == Some("current") && self.session_key.is_none() {
            self.session_key = Some(session_key.to_string());
        }
        Ok(())
    }

    /// This job changed by `patch`, a JSON merge patch (RFC 7396, as
    /// OpenClaw's `cron.update` reads one: supplied fields change, `null`
    /// clears, the rest stays), except that a `schedule` replaces the
    /// schedule, and a `payload` of another `kind` the payload (their
    /// fields belong to their kind). The id cannot change; the result is
    /// checked by the caller ([`JobSpec::bind_to_caller`], [`JobSpec::problems`]).
    pub fn patched(&self, patch: &serde_json::Value) -> Result<JobSpec, JobProblem> {
        if !patch.is_object() {
            return Err(problem("job", "an update is an object of the fields to change"));
        }
        if let Some(id) = patch.get("id").filter(|v| v.as_str() != self.id.as_deref()) {
            return Err(problem("id", format!("a job's id cannot change (asked for {id})")));
        }
        let mut doc = serde_json::to_value(self).map_err(|e| problem("job", e.to_string()))?;
        let replaces = |field: &str| match (patch.get(field), doc.get(field)) {
            (Some(new), _) if field == "schedule" => new.is_object(),
            (Some(new), Some(old)) => new.get("kind").is_some_and(|k| Some(k) != old.get("kind")),
            _ => false,
        };
        let replaced: Vec<&str> = ["schedule", "payload"].into_iter().filter(|f| replaces(f)).collect();
        for field in replaced {
            doc[field] = serde_json::Value::Null;
        }
        json_patch::merge(&mut doc, patch);
        serde_json::from_value(doc).map_err(|e| problem("job", format!("the updated job is not a job: {e}")))
    }

    /// The agent's id as stored on the job (canonical), for listings.
    pub fn agent_label(&self) -> String {
        self.agent_id.as_deref().map(|a| normalize_agent_id(Some(a))).unwrap_or_else(|| "(default)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        crate::config::load_str(text, None).expect("config loads").config
    }

    fn job(text: &str) -> JobSpec {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn a_command_payload_is_checked_and_only_the_operators() {
        let c = cfg(r#"{ agents: { list: [{ id: "work", default: true }] } }"#);
        let ok = job(r#"{"schedule": {"kind": "every", "everyMs": 60000}, "payload": {"kind": "command",
                "argv": ["sh", "-lc", "scripts/check.sh"], "cwd": "scripts", "env": {"A": "1"}, "timeoutSeconds": 30}}"#);
        assert!(ok.problems(&c, 0).is_empty(), "{:?}", ok.problems(&c, 0));
        assert!(ok.operator_only() && ok.session_target_name() == "isolated");
        let bad = job(
            r#"{"schedule": {"kind": "every", "everyMs": 60000}, "sessionTarget": "main", "payload": {"kind": "command",
                "argv": [], "cwd": "../other", "timeoutSeconds": 0, "noOutputTimeoutSeconds": 5000, "outputMaxBytes": 0}}"#,
        );
        let fields: Vec<String> = bad.problems(&c, 0).into_iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "payload.argv",
                "payload.cwd",
                "payload.timeoutSeconds",
                "payload.noOutputTimeoutSeconds",
                "payload.outputMaxBytes",
                "sessionTarget"
            ]
        );
        let turn = job(
            r#"{"schedule": {"kind": "every", "everyMs": 60000}, "payload": {"kind": "agentTurn", "message": "m"}}"#,
        );
        assert!(!turn.operator_only());
    }

    #[test]
    fn a_job_names_only_its_own_agents_sessions() {
        let c = cfg(r#"{ agents: { list: [ { id: "home", default: true }, { id: "work" } ] } }"#);
        let j = job(r#"{ "agentId": "work", "schedule": { "kind": "every", "everyMs": 60000 },
            "sessionTarget": "current", "sessionKey": "agent:home:telegram:direct:42",
            "payload": { "kind": "agentTurn", "message": "hi" } }"#);
        let p = j.problems(&c, 0);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].field, "sessionKey");
        assert!(p[0].message.contains("belongs to agent `home`"), "{}", p[0].message);
        let custom = JobSpec { session_target: Some("session:agent:home:main".into()), session_key: None, ..j.clone() };
        assert_eq!(custom.problems(&c, 0)[0].field, "sessionTarget");
        let fine = JobSpec { session_target: Some("session:standup".into()), session_key: None, ..j.clone() };
        assert!(fine.problems(&c, 0).is_empty());
        assert_eq!(
            fine.session(&c, "work").unwrap(),
            JobSession::Custom(SessionKey::parse("agent:work:session:standup").unwrap())
        );
    }

    #[test]
    fn a_job_announces_only_through_its_own_agents_accounts() {
        let c = cfg(r#"{ agents: { list: [ { id: "home", default: true }, { id: "work" } ] },
            bindings: [ { agentId: "work", match: { channel: "telegram", accountId: "work-bot" } } ] }"#);
        let j = |agent: &str, account: &str| {
            job(&format!(
                r#"{{ "agentId": "{agent}", "schedule": {{ "kind": "every", "everyMs": 60000 }},
                "payload": {{ "kind": "agentTurn", "message": "hi" }},
                "delivery": {{ "mode": "announce", "channel": "telegram", "to": "42", "accountId": "{account}" }} }}"#
            ))
        };
        assert!(j("work", "work-bot").problems(&c, 0).is_empty());
        let p = j("home", "work-bot").problems(&c, 0);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].field, "delivery.accountId");
        assert!(p[0].message.contains("speaks for `work`, not `home`"), "{}", p[0].message);
        assert!(!j("work", "default").problems(&c, 0).is_empty(), "the default account answers `home`");
    }

    /// An agent turn every minute with `delivery` (JSON).
    fn delivering(delivery: &str) -> JobSpec {
        job(&format!(
            r#"{{ "schedule": {{ "kind": "every", "everyMs": 60000 }},
            "payload": {{ "kind": "agentTurn", "message": "hi" }}, "delivery": {delivery} }}"#
        ))
    }

    #[test]
    fn a_job_an_agent_adds_runs_as_that_agent_in_the_calling_conversation() {
        let mut j = job(r#"{ "schedule": { "kind": "every", "everyMs": 60000 }, "sessionTarget": "current",
            "payload": { "kind": "agentTurn", "message": "hi" } }"#);
        j.bind_to_caller("work", "agent:work:main").unwrap();
        assert_eq!((j.agent_id.as_deref(), j.session_key.as_deref()), (Some("work"), Some("agent:work:main")));
        let mut other = JobSpec { agent_id: Some("Home".into()), ..j.clone() };
        let refused = other.bind_to_caller("work", "agent:work:main").unwrap_err();
        assert_eq!(refused.field, "agentId");
        assert!(refused.message.contains("not `home`"), "{}", refused.message);
        let mut isolated = JobSpec { session_target: Some("isolated".into()), session_key: None, ..j };
        isolated.bind_to_caller("work", "agent:work:main").unwrap();
        assert_eq!(isolated.session_key, None, "only a `current` job is bound to the caller's conversation");
    }

    #[test]
    fn an_update_changes_what_it_names_and_clears_what_it_nulls() {
        let j = job(r#"{ "id": "standup", "name": "Standup", "schedule": { "kind": "every", "everyMs": 60000 },
            "timeoutSeconds": 30, "payload": { "kind": "agentTurn", "message": "hi", "model": "openai/a" } }"#);
        let patch = serde_json::json!({ "name": "Daily", "timeoutSeconds": null,
            "payload": { "message": "hello" }, "pacing": { "max": "1h" } });
        let p = j.patched(&patch).unwrap();
        assert_eq!((p.name.as_deref(), p.timeout_seconds), (Some("Daily"), None));
        assert_eq!(
            p.payload,
            Payload::AgentTurn { message: "hello".into(), model: Some("openai/a".into()), light_context: None },
            "the payload's other fields stay"
        );
        assert_eq!(p.schedule, j.schedule);
        assert_eq!(p.pacing.and_then(|p| p.max).as_deref(), Some("1h"));
        assert_eq!(j.patched(&serde_json::json!({ "id": "other" })).unwrap_err().field, "id");
        let bad = j.patched(&serde_json::json!({ "payload": { "kind": "poem" } })).unwrap_err();
        assert!(bad.message.contains("not a job"), "{}", bad.message);
        let cron = j.patched(&serde_json::json!({ "schedule": { "kind": "cron", "expr": "0 9 * * *" } })).unwrap();
        assert_eq!(cron.schedule, ScheduleSpec::Cron { expr: "0 9 * * *".into(), tz: None }, "replaced, not merged");
        let event = j.patched(&serde_json::json!({ "payload": { "kind": "systemEvent", "text": "tick" } })).unwrap();
        assert_eq!(event.payload, Payload::SystemEvent { text: "tick".into() });
        let typo = j.patched(&serde_json::json!({ "nmae": "x" })).unwrap_err();
        assert!(typo.message.contains("nmae"), "{}", typo.message);
    }

    #[test]
    fn pacing_is_checked_and_only_for_recurring_jobs() {
        let c = cfg("{}");
        let fields = |text: &str| job(text).problems(&c, 0).into_iter().map(|p| p.field).collect::<Vec<_>>();
        let every =
            r#""schedule": { "kind": "every", "everyMs": 60000 }, "payload": { "kind": "agentTurn", "message": "hi" }"#;
        assert!(fields(&format!(r#"{{ {every}, "pacing": {{ "min": "1m", "max": "1h" }} }}"#)).is_empty());
        assert_eq!(fields(&format!(r#"{{ {every}, "pacing": {{}} }}"#)), ["pacing"]);
        assert_eq!(fields(&format!(r#"{{ {every}, "pacing": {{ "min": "2h", "max": "1h" }} }}"#)), ["pacing.min"]);
        let at = r#""schedule": { "kind": "at", "at": "2030-01-01T00:00:00Z" }, "payload": { "kind": "agentTurn", "message": "hi" }"#;
        assert_eq!(fields(&format!(r#"{{ {at}, "pacing": {{ "max": "1h" }} }}"#)), ["pacing"]);
    }

    #[test]
    fn a_completion_webhook_goes_only_beside_an_announcement() {
        let c = cfg("{}");
        let with = delivering;
        let fine = with(
            r#"{ "mode": "announce", "channel": "telegram", "to": "42",
                 "completionDestination": { "mode": "webhook", "to": "https://hooks.example.com/done" } }"#,
        );
        assert!(fine.problems(&c, 0).is_empty(), "{:?}", fine.problems(&c, 0));
        assert_eq!(fine.completion_webhook_url(), Some("https://hooks.example.com/done"));
        let fields = |j: &JobSpec| j.problems(&c, 0).into_iter().map(|p| p.field).collect::<Vec<_>>();
        let on_webhook = with(
            r#"{ "mode": "webhook", "to": "https://a.example.com/",
                 "completionDestination": { "mode": "webhook", "to": "https://b.example.com/" } }"#,
        );
        assert_eq!(fields(&on_webhook), ["delivery.completionDestination"]);
        assert_eq!(on_webhook.completion_webhook_url(), None);
        let bad = with(
            r#"{ "mode": "announce", "channel": "telegram", "to": "42",
                 "completionDestination": { "mode": "email", "to": "ftp://x" } }"#,
        );
        assert_eq!(fields(&bad), ["delivery.completionDestination.mode", "delivery.completionDestination.to"]);
    }

    #[test]
    fn problems_name_their_fields() {
        let c = cfg("{}");
        let j = job(r#"{ "agentId": "ghost", "schedule": { "kind": "cron", "expr": "99 * * * *" },
            "sessionTarget": "somewhere", "payload": { "kind": "systemEvent", "text": " " },
            "delivery": { "mode": "pigeon" } }"#);
        let fields: Vec<String> = j.problems(&c, 0).into_iter().map(|p| p.field).collect();
        assert!(fields.contains(&"schedule.expr".to_string()), "{fields:?}");
        assert!(fields.contains(&"payload.text".to_string()), "{fields:?}");
        assert!(fields.contains(&"delivery.mode".to_string()), "{fields:?}");
        // single-agent mode: any name stands for the one agent, so `agentId` is not a problem there.
        let two = cfg(r#"{ agents: { list: [ { id: "a" }, { id: "b" } ] } }"#);
        assert!(j.problems(&two, 0).iter().any(|p| p.field == "agentId"));
    }

    #[test]
    fn a_webhook_job_names_an_http_url_and_nothing_of_a_chat() {
        let c = cfg("{}");
        let j = delivering;
        let fine = j(r#"{ "mode": "webhook", "to": "https://hooks.example.com/cron?x=1" }"#);
        assert!(fine.problems(&c, 0).is_empty(), "{:?}", fine.problems(&c, 0));
        assert_eq!(fine.webhook_url(), Some("https://hooks.example.com/cron?x=1"));
        assert!(!fine.announces());
        for (delivery, field, says) in [
            (r#"{ "mode": "webhook" }"#, "delivery.to", "needs `to`"),
            (r#"{ "mode": "webhook", "to": "ftp://h/x" }"#, "delivery.to", "not an http(s) URL"),
            (r#"{ "mode": "webhook", "to": "hooks.example.com" }"#, "delivery.to", "not an http(s) URL"),
            (r#"{ "mode": "webhook", "to": "https://u:p@h/x" }"#, "delivery.to", "credentials"),
            (r#"{ "mode": "webhook", "to": "https:///x" }"#, "delivery.to", "names no host"),
            (r#"{ "mode": "webhook", "to": "https://h/x", "channel": "slack" }"#, "delivery.channel", "cannot combine"),
        ] {
            let p = j(delivery).problems(&c, 0);
            assert!(p.iter().any(|p| p.field == field && p.message.contains(says)), "{delivery}: {p:?}");
        }
    }
}
