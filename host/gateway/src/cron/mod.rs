//! The scheduler (OpenClaw's automations and heartbeats): one loop in the
//! gateway runs every job on time, as its own agent.
//!
//! The jobs come from three places, listed together ([`catalogue`]): jobs
//! declared in config (`cron.jobs`), jobs `chela cron add` stored in the
//! state dir, and one heartbeat monitor per heartbeat-enabled agent
//! (`heartbeat-<agent>`, from `agents.*.heartbeat`). Their next-run times and
//! run claims live in `<stateDir>/cron/state.json` (`store.rs`), so a restart
//! keeps the schedule and a crash never runs an occurrence twice.
//!
//! Must not: decide schedules, heartbeat settings or which session a job may
//! use (core's `schedule`, `heartbeat`, `cron_job`), or run a turn in any
//! agent but the job's own.

mod alert;
pub(crate) mod automations;
mod in_session;
pub(crate) mod loops;
mod run;
pub(crate) use run::{last_route, turn_and_deliver};
pub mod scheduler;
pub mod store;
mod webhook;

use chela_core::config::schema::Config;
use chela_core::cron_job::JobSpec;
use chela_core::heartbeat::HeartbeatPlan;
use chela_core::schedule::{format_duration, ScheduleSpec};

pub use scheduler::Scheduler;
pub use store::{AutoDisabled, CronStore, CronStoreError, JobState};

/// What a job runs.
#[derive(Debug, Clone, PartialEq)]
pub enum JobKind {
    Spec(Box<JobSpec>),
    Heartbeat(HeartbeatPlan),
}

/// Where a job is declared.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// `cron.jobs[<index>]` in the config file.
    Config(usize),
    /// `chela cron add` (the state dir's `cron/jobs.json`).
    Stored,
    /// `agents.*.heartbeat`.
    Heartbeat,
}

impl Source {
    /// Where the job is declared, as a person would look for it.
    pub fn describe(&self) -> String {
        match self {
            Source::Config(i) => format!("declared in config at `cron.jobs[{i}]`"),
            Source::Stored => "stored".into(),
            Source::Heartbeat => "a heartbeat, from `agents.*.heartbeat`".into(),
        }
    }
}

/// A job the scheduler knows.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: String,
    pub kind: JobKind,
    pub source: Source,
}

/// The id of an agent's heartbeat monitor.
pub fn heartbeat_id(agent_id: &str) -> String {
    format!("heartbeat-{agent_id}")
}

impl Job {
    pub fn name(&self) -> String {
        match &self.kind {
            JobKind::Spec(s) => s.name.clone().unwrap_or_else(|| self.id.clone()),
            JobKind::Heartbeat(p) => format!("Heartbeat ({})", p.agent_id),
        }
    }

    /// The schedule, as stored (`every` for a heartbeat).
    pub fn schedule(&self) -> ScheduleSpec {
        match &self.kind {
            JobKind::Spec(s) => s.schedule.clone(),
            JobKind::Heartbeat(p) => ScheduleSpec::Every { every_ms: Some(p.every_ms), every: None, anchor_ms: None },
        }
    }

    pub fn enabled(&self) -> bool {
        match &self.kind {
            JobKind::Spec(s) => s.is_enabled(),
            JobKind::Heartbeat(p) => p.every_ms > 0,
        }
    }

    /// The agent it runs as (`None`: its `agentId` names no agent).
    pub fn agent(&self, cfg: &Config) -> Option<String> {
        match &self.kind {
            JobKind::Spec(s) => s.agent(cfg).ok(),
            JobKind::Heartbeat(p) => Some(p.agent_id.clone()),
        }
    }

    /// A one-line description of the schedule for listings.
    pub fn describe_schedule(&self) -> String {
        match self.schedule() {
            ScheduleSpec::At { at } => format!("at {at}"),
            ScheduleSpec::Every { every_ms: Some(ms), .. } => format!("every {}", format_duration(ms)),
            ScheduleSpec::Every { every: Some(text), .. } => format!("every {text}"),
            ScheduleSpec::Every { .. } => "every ?".into(),
            ScheduleSpec::Cron { expr, tz } => match tz {
                Some(tz) => format!("cron {expr} ({tz})"),
                None => format!("cron {expr}"),
            },
        }
    }

    /// The session target, as written (`main`, `isolated`, …).
    pub fn session_label(&self) -> String {
        match &self.kind {
            JobKind::Spec(s) => s.session_target_name().to_string(),
            JobKind::Heartbeat(p) if p.isolated_session => "isolated".into(),
            JobKind::Heartbeat(p) => p.session.clone().unwrap_or_else(|| "main".into()),
        }
    }
}

/// Every job under `cfg`: config jobs, then stored ones, then heartbeats.
/// A stored job whose id a config job already has is left out (config wins).
pub fn catalogue(cfg: &Config, stored: &[JobSpec]) -> Vec<Job> {
    let mut out: Vec<Job> = Vec::new();
    for (i, spec) in cfg.cron.as_ref().and_then(|c| c.jobs.as_ref()).into_iter().flatten().enumerate() {
        if let Some(id) = spec.id.clone() {
            out.push(Job { id, kind: JobKind::Spec(Box::new(spec.clone())), source: Source::Config(i) });
        }
    }
    for spec in stored {
        let Some(id) = spec.id.clone() else { continue };
        if out.iter().any(|j| j.id == id) {
            tracing::warn!(job = %id, "a stored cron job has the id of a job in config; the config's runs");
            continue;
        }
        out.push(Job { id, kind: JobKind::Spec(Box::new(spec.clone())), source: Source::Stored });
    }
    for plan in chela_core::heartbeat::plans(cfg).plans {
        out.push(Job { id: heartbeat_id(&plan.agent_id), kind: JobKind::Heartbeat(plan), source: Source::Heartbeat });
    }
    out
}

/// Why `spec` cannot be stored: its problems (core's checks, one per
/// line, field first) or an id another job has; `Ok(Ok(()))`: stored. What
/// `chela cron add` and `/loop` both store through.
pub fn add_stored(cfg: &Config, store: &CronStore, spec: JobSpec) -> Result<Result<(), String>, CronStoreError> {
    let problems = spec.problems(cfg, chela_agent::clock::now_ms());
    if !problems.is_empty() {
        let lines: Vec<String> = problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect();
        return Ok(Err(lines.join("\n")));
    }
    let id = spec.id.clone().unwrap_or_default();
    let taken = catalogue(cfg, &[]);
    store.add(spec, |stored| {
        if let Some(j) = taken.iter().find(|j| j.id == id) {
            return Err(format!("a job `{id}` exists already ({})", j.source.describe()));
        }
        if stored.iter().any(|j| j.id.as_deref() == Some(id.as_str())) {
            return Err(format!("a job `{id}` exists already (stored; `chela cron rm {id}` first)"));
        }
        Ok(())
    })
}

/// Whether the scheduler runs at all (`cron.enabled`, `CHELA_SKIP_CRON` / `OPENCLAW_SKIP_CRON`).
pub fn enabled(cfg: &Config, env: &dyn Fn(&str) -> Option<String>) -> bool {
    let skip = |name: &str| env(name).is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    cfg.cron.as_ref().and_then(|c| c.enabled) != Some(false) && !skip("CHELA_SKIP_CRON") && !skip("OPENCLAW_SKIP_CRON")
}

/// The listing `chela cron list --json` and `GET /api/v1/cron` print.
pub fn listing_json(cfg: &Config, jobs: &[(Job, JobState)]) -> serde_json::Value {
    use chela_core::schedule::format_instant;
    let rows: Vec<serde_json::Value> = jobs
        .iter()
        .map(|(job, st)| {
            serde_json::json!({
                "id": job.id,
                "name": job.name(),
                "agentId": job.agent(cfg),
                "enabled": job.enabled() && st.auto_disabled.is_none(),
                "autoDisabled": st.auto_disabled,
                "source": job.source,
                "schedule": job.schedule(),
                "scheduleText": job.describe_schedule(),
                "sessionTarget": job.session_label(),
                "nextRunAt": st.next_run_at_ms.map(format_instant),
                "nextRunAtMs": st.next_run_at_ms,
                "lastRunAt": st.last_run_at_ms.map(format_instant),
                "lastStatus": st.last_status,
                "lastReason": st.last_reason,
                "running": st.running.is_some(),
                "runs": st.runs,
                "done": st.done,
            })
        })
        .collect();
    serde_json::Value::Array(rows)
}
