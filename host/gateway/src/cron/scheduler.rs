//! When jobs run: every tick the scheduler reads the jobs (config, store,
//! heartbeats), brings each job's persisted state up to date (a changed
//! schedule starts over), claims the due ones and starts them.
//!
//! Claiming writes, in one synced replacement of `state.json`, the run's
//! claim and the job's next occurrence, before the run starts. So:
//! - a restart keeps every next-run time (nothing is re-anchored to "now");
//! - occurrences missed while the gateway was down run once on start
//!   (`cron.skipMissedJobs: true` skips them instead);
//! - a claim found on start belongs to a run a crash cut off: it is recorded
//!   as `interrupted` and never run again for that occurrence.
//!
//! Failed recurring runs back off (30 s, 1 min, 5 min, 15 min, 60 min, as
//! OpenClaw); a one-shot runs once, whatever its outcome. How a run ended
//! also moves the job's failure incident (core's `failure_alert`), in the
//! same state write; `alert.rs` sends what that calls for.
//!
//! Must not: run a turn itself (`run.rs` does, as the job's agent) or decide
//! what a schedule means (core's `schedule`).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chela_agent::clock::now_ms;
use chela_core::config::schema::Config;
use chela_core::failure_alert::{self, RunEnd};
use chela_core::schedule::Schedule;

use super::in_session::RunsInSession;
use super::store::{AutoDisabled, Claim, CronStore, CronStoreError, JobState, RunRecord};
use super::{catalogue, Job, JobKind, Source};
use crate::Gateway;

/// What one tick of the scheduler found: the runs it claimed, and the jobs
/// it turned off because their schedule cannot be computed.
pub(crate) struct Claimed {
    due: Vec<(Job, Claim)>,
    turned_off: Vec<(Job, failure_alert::Notice)>,
}

/// Counts a failed computation of `job`'s next run (recorded as its last
/// status; the count stops at the backstop's); at that count a job the
/// scheduler may turn off is turned off, and the notice to send returned.
/// `changed`: whether the state changed (and must be written).
fn schedule_error(
    job: &Job,
    st: &mut JobState,
    why: String,
    now: i64,
    changed: &mut bool,
) -> Option<failure_alert::Notice> {
    if st.last_reason.as_deref() != Some(why.as_str()) || st.last_status.as_deref() != Some("error") {
        st.last_status = Some("error".into());
        st.last_reason = Some(why.clone());
        *changed = true;
    }
    if failure_alert::schedule_errors_disable(st.schedule_errors) {
        return None;
    }
    st.schedule_errors += 1;
    *changed = true;
    let spec = matches!(job.kind, JobKind::Spec(_));
    if !spec || st.auto_disabled.is_some() || !failure_alert::schedule_errors_disable(st.schedule_errors) {
        return None;
    }
    st.auto_disabled = Some(AutoDisabled { reason: "schedule-errors".into(), at_ms: now });
    tracing::warn!(job = %job.id, errors = st.schedule_errors, "cron: job turned off: its schedule cannot be computed");
    Some(failure_alert::Notice::ScheduleErrors { cause: why, errors: st.schedule_errors })
}

/// Why a run found claimed at start is not run again.
const INTERRUPTED: &str = "the gateway stopped during this run; it is not run again";

/// How often the scheduler looks for due jobs.
const TICK: Duration = Duration::from_millis(250);
/// Back-off after consecutive failed runs of a recurring job.
const BACKOFF_MS: [i64; 5] = [30_000, 60_000, 300_000, 900_000, 3_600_000];

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub job_id: String,
    pub run_id: String,
    /// `ok` | `error` | `skipped`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The agent's reply (before acknowledgement suppression).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// Whether a message was delivered to a chat.
    pub delivered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_key: Option<String>,
    pub duration_ms: u64,
}

/// Why `chela cron run` could not start a job.
#[derive(Debug, thiserror::Error)]
pub enum RunNowError {
    #[error("no cron job `{0}` (see `chela cron list`)")]
    Unknown(String),
    #[error("cron job `{0}` is running already")]
    Busy(String),
    #[error("the scheduler is off (`cron.enabled: false` or CHELA_SKIP_CRON)")]
    Disabled,
    #[error(transparent)]
    Store(#[from] CronStoreError),
}

/// The scheduler's own state in this process.
pub struct Scheduler {
    store: CronStore,
    /// Jobs with a run in progress here.
    running: Mutex<HashSet<String>>,
    /// Runs in progress here, by the session key of their turn.
    pub(crate) in_session: RunsInSession,
}

impl Scheduler {
    pub fn new(store: CronStore) -> Scheduler {
        Scheduler { store, running: Mutex::default(), in_session: RunsInSession::default() }
    }

    pub fn store(&self) -> &CronStore {
        &self.store
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The jobs and their states, for listings.
    pub fn list(&self, cfg: &Config) -> Result<Vec<(Job, JobState)>, CronStoreError> {
        listing(&self.store, cfg)
    }

    /// The scheduler loop, until the gateway is gone or stopping.
    pub(crate) async fn run_loop(gw: Weak<Gateway>) {
        let mut first = true;
        let lease = gw.upgrade().and_then(|g| g.leases.as_ref().map(|k| k.want(crate::leases::SCHEDULER)));
        loop {
            let Some(g) = gw.upgrade() else { return };
            if g.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            // Replicas on one database: the lease's owner runs the schedule.
            let owns = lease.as_ref().is_none_or(|held| *held.borrow());
            if owns && super::enabled(&g.config(), &*g.vars) {
                // File reads and writes under a lock the CLI may hold: off the async workers.
                let (sched, cfg) = (g.clone(), g.config());
                let claimed = tokio::task::spawn_blocking(move || sched.scheduler.claim_due(&cfg, first)).await;
                let claimed = claimed.unwrap_or_else(|e| {
                    Err(CronStoreError::Io {
                        path: g.scheduler.store.dir().to_path_buf(),
                        source: std::io::Error::other(e.to_string()),
                    })
                });
                match claimed {
                    Ok(Claimed { due, turned_off }) => {
                        first = false;
                        for (job, claim) in due {
                            let gw = g.clone();
                            tokio::spawn(async move { Scheduler::execute(gw, job, claim).await });
                        }
                        for (job, notice) in turned_off {
                            let gw = g.clone();
                            tokio::spawn(async move { Scheduler::tell_turned_off(&gw, &job, &notice).await });
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "scheduler: cannot read or write its state; retrying"),
                }
            }
            drop(g);
            tokio::time::sleep(TICK).await;
        }
    }

    /// Brings every job's state up to date and claims the due jobs (synced before returning).
    fn claim_due(&self, cfg: &Config, first: bool) -> Result<Claimed, CronStoreError> {
        let jobs = catalogue(cfg, &self.store.jobs()?);
        let now = now_ms();
        let skip_missed = cfg.cron.as_ref().and_then(|c| c.skip_missed_jobs) == Some(true);
        let busy = self.running().clone();
        let (due, cut_off, turned_off) = self.store.update_states(|states| {
            let mut changed = false;
            let mut due = Vec::new();
            let mut turned_off = Vec::new();
            let mut cut_off: Vec<(String, Claim)> = Vec::new();
            let known: HashSet<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
            let before = states.len();
            states.retain(|id, s| known.contains(id.as_str()) || s.running.is_some());
            changed |= states.len() != before;
            for job in &jobs {
                let st = states.entry(job.id.clone()).or_insert_with(|| {
                    changed = true;
                    JobState { anchor_ms: now, ..JobState::default() }
                });
                let fingerprint = serde_json::to_value(job.schedule()).ok();
                if st.schedule != fingerprint {
                    st.schedule = fingerprint;
                    st.next_run_at_ms = None;
                    st.done = false;
                    changed = true;
                }
                if first && st.running.is_some() && !busy.contains(&job.id) {
                    // A run a crash (or kill) cut off: recorded, never run again.
                    let claim = st.running.take();
                    st.last_status = Some("interrupted".into());
                    st.last_reason = Some(INTERRUPTED.into());
                    st.last_run_at_ms = claim.as_ref().map(|c| c.started_at_ms);
                    cut_off.extend(claim.map(|c| (job.id.clone(), c)));
                    changed = true;
                    tracing::warn!(job = %job.id, "cron: a run was cut off by the last shutdown; recorded as interrupted");
                }
                if !job.enabled() || st.done || st.auto_disabled.is_some() {
                    continue;
                }
                let schedule = match Schedule::compile(&job.schedule(), st.anchor_ms) {
                    Ok(s) => s,
                    Err(e) => {
                        let why = format!("schedule.{}: {e}", e.field);
                        if st.last_reason.as_deref() != Some(why.as_str()) {
                            tracing::error!(job = %job.id, error = %why, "cron: the job's schedule does not compile");
                        }
                        turned_off.extend(schedule_error(job, st, why, now, &mut changed).map(|n| (job.clone(), n)));
                        continue;
                    }
                };
                if st.next_run_at_ms.is_none() {
                    st.next_run_at_ms = match schedule {
                        // A one-shot never run runs, even late (catch-up).
                        Schedule::At(at) => Some(at),
                        _ => schedule.next_after(now),
                    };
                    changed = true;
                    if st.next_run_at_ms.is_none() && !schedule.is_one_shot() {
                        let why = "the schedule has no next run time (a cron expression that never matches)";
                        if st.last_reason.as_deref() != Some(why) {
                            tracing::error!(job = %job.id, error = why, "cron: the job's next run cannot be computed");
                        }
                        let notice = schedule_error(job, st, why.to_string(), now, &mut changed);
                        turned_off.extend(notice.map(|n| (job.clone(), n)));
                        continue;
                    }
                }
                if st.schedule_errors > 0 {
                    st.schedule_errors = 0;
                    changed = true;
                }
                if first && skip_missed && !schedule.is_one_shot() && st.next_run_at_ms.is_some_and(|n| n < now) {
                    st.next_run_at_ms = schedule.next_after(now);
                    changed = true;
                }
                let Some(next) = st.next_run_at_ms else { continue };
                if next > now || st.running.is_some() || busy.contains(&job.id) {
                    continue;
                }
                let claim = Claim { run_id: run_id(), occurrence_ms: next, started_at_ms: now, forced: false };
                st.running = Some(claim.clone());
                // A one-shot is used up by its claim: cut off or not, it does not run again.
                st.done = schedule.is_one_shot();
                st.next_run_at_ms = if schedule.is_one_shot() { None } else { schedule.next_after(now.max(next)) };
                changed = true;
                due.push((job.clone(), claim));
            }
            (changed, (due, cut_off, turned_off))
        })?;
        for (id, claim) in cut_off {
            let run = RunRecord {
                run_id: claim.run_id,
                started_at_ms: claim.started_at_ms,
                duration_ms: None,
                status: "interrupted".into(),
                reason: Some(INTERRUPTED.into()),
                delivered: false,
                session_key: None,
                forced: claim.forced,
            };
            self.store.record_run(&id, run)?;
        }
        let mut running = self.running();
        for (job, _) in &due {
            running.insert(job.id.clone());
        }
        Ok(Claimed { due, turned_off })
    }

    /// Tells a job's chat (or its alert webhook) that the scheduler turned it off.
    async fn tell_turned_off(gw: &Arc<Gateway>, job: &Job, notice: &failure_alert::Notice) {
        let JobKind::Spec(spec) = &job.kind else { return };
        let destination = match failure_alert::policy(&gw.snapshot().config, spec) {
            Some(p) => p.destination,
            None => failure_alert::safety_destination(spec),
        };
        let run = super::alert::Run { id: "-", error: None, session_key: None, started_at_ms: now_ms() };
        super::alert::send(gw, job, &destination, notice, &run).await;
    }

    /// Runs a claimed job and records how it ended.
    async fn execute(gw: Arc<Gateway>, job: Job, claim: Claim) -> RunReport {
        let _turn = gw.inflight.enter();
        let started = std::time::Instant::now();
        let mut outcome = super::run::run(&gw, &job, &claim).await;
        let proposal_ms = gw.scheduler.in_session.leave(&claim.run_id);
        if let Some(url) = match &job.kind {
            JobKind::Spec(spec) => spec.webhook_url(),
            JobKind::Heartbeat(_) => None,
        } {
            outcome = super::webhook::deliver(&gw, &job, url, &claim, outcome).await;
        }
        if let JobKind::Spec(spec) = &job.kind {
            if let Some(url) = spec.completion_webhook_url() {
                super::webhook::complete(&gw, &job, url, &claim, &outcome).await;
            }
        }
        let report = RunReport {
            job_id: job.id.clone(),
            run_id: claim.run_id.clone(),
            status: outcome.status.as_str().into(),
            reason: outcome.reason,
            reply: outcome.reply,
            delivered: outcome.delivered,
            session_key: outcome.session_key,
            duration_ms: started.elapsed().as_millis() as u64,
        };
        match report.status.as_str() {
            "error" => tracing::warn!(job = %job.id, run = %claim.run_id, reason = ?report.reason, "cron run failed"),
            _ => {
                tracing::info!(job = %job.id, run = %claim.run_id, status = %report.status, reason = ?report.reason, delivered = report.delivered, "cron run finished")
            }
        }
        let policy = match &job.kind {
            JobKind::Spec(spec) => failure_alert::policy(&gw.snapshot().config, spec),
            JobKind::Heartbeat(_) => None,
        };
        let (g, j, c, r, p) = (gw.clone(), job.clone(), claim.clone(), report.clone(), policy.clone());
        let finish = move || g.scheduler.finish(&j, &c, &r, p.as_ref(), proposal_ms);
        let notice = match tokio::task::spawn_blocking(finish).await {
            Ok(Ok(notice)) => notice,
            Ok(Err(e)) => {
                tracing::error!(job = %job.id, error = %e, "cron: cannot record how a run ended");
                None
            }
            Err(e) => {
                tracing::error!(job = %job.id, error = %e, "cron: recording how a run ended failed");
                None
            }
        };
        // Counted once recorded: a run the metric shows is in `state.json` and its history.
        gw.metrics.inc("chela_cron_runs_total", &[("job", &job.id), ("status", &report.status)]);
        if let (JobKind::Spec(spec), Some(notice)) = (&job.kind, &notice) {
            let destination = match &policy {
                Some(p) => p.destination.clone(),
                None => failure_alert::safety_destination(spec),
            };
            let run = super::alert::Run {
                id: &report.run_id,
                error: report.reason.as_deref(),
                session_key: report.session_key.as_deref(),
                started_at_ms: claim.started_at_ms,
            };
            super::alert::send(&gw, &job, &destination, notice, &run).await;
        }
        gw.scheduler.running().remove(&job.id);
        report
    }

    /// Records a finished run (and retires a stored one-shot that ran);
    /// under an alert `policy`, the failure alert or recovery notice it calls for.
    fn finish(
        &self,
        job: &Job,
        claim: &Claim,
        report: &RunReport,
        policy: Option<&failure_alert::AlertPolicy>,
        proposal_ms: Option<u64>,
    ) -> Result<Option<failure_alert::Notice>, CronStoreError> {
        let one_shot = matches!(job.schedule(), chela_core::schedule::ScheduleSpec::At { .. });
        let now = now_ms();
        let notice = self.store.update_states(|states| {
            let st = states.entry(job.id.clone()).or_default();
            if st.running.as_ref().is_some_and(|c| c.run_id == claim.run_id) {
                st.running = None;
            }
            st.last_run_at_ms = Some(claim.started_at_ms);
            st.last_status = Some(report.status.clone());
            st.last_reason = report.reason.clone();
            st.last_duration_ms = Some(report.duration_ms);
            st.runs += 1;
            if report.status == "error" {
                st.consecutive_errors = st.consecutive_errors.saturating_add(1);
                if !one_shot && !claim.forced {
                    let wait = BACKOFF_MS[(st.consecutive_errors as usize - 1).min(BACKOFF_MS.len() - 1)];
                    st.next_run_at_ms = st.next_run_at_ms.map(|n| n.max(now + wait));
                }
            } else if report.status == "ok" {
                // A skipped run leaves the error streak (and its back-off) alone.
                st.consecutive_errors = 0;
                // A paced run's proposal (clamped already), measured from its end.
                if let Some(delay) = proposal_ms.filter(|_| !one_shot) {
                    st.next_run_at_ms = Some(now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX)));
                }
            }
            st.consecutive_skips = if report.status == "skipped" { st.consecutive_skips.saturating_add(1) } else { 0 };
            if one_shot && !claim.forced {
                st.done = true;
            }
            let end = match report.status.as_str() {
                "ok" => Some(RunEnd::Ok),
                "error" => Some(RunEnd::Error),
                "skipped" => Some(RunEnd::Skipped),
                _ => None,
            };
            let reason = report.reason.as_deref().unwrap_or_default();
            let spec = matches!(job.kind, JobKind::Spec(_));
            let notice = if spec
                && end == Some(RunEnd::Error)
                && st.auto_disabled.is_none()
                && failure_alert::auto_disables(!one_shot, st.consecutive_errors)
            {
                // The safety backstop replaces the regular alert, whatever the policy.
                st.auto_disabled = Some(AutoDisabled { reason: "consecutive-failures".into(), at_ms: now });
                tracing::warn!(job = %job.id, failures = st.consecutive_errors, "cron: job turned off after failing in a row");
                Some(failure_alert::Notice::AutoDisabled {
                    cause: failure_alert::chat_cause(reason),
                    failures: st.consecutive_errors,
                })
            } else {
                match (policy, end) {
                    (Some(p), Some(end)) => {
                        let streak = if end == RunEnd::Skipped { st.consecutive_skips } else { st.consecutive_errors };
                        failure_alert::on_run(p, &mut st.incident, end, streak, reason, now)
                    }
                    _ => None,
                }
            };
            (true, notice)
        })?;
        let run = RunRecord {
            run_id: claim.run_id.clone(),
            started_at_ms: claim.started_at_ms,
            duration_ms: Some(report.duration_ms),
            status: report.status.clone(),
            reason: report.reason.clone(),
            delivered: report.delivered,
            session_key: report.session_key.clone(),
            forced: claim.forced,
        };
        self.store.record_run(&job.id, run)?;
        let delete = match &job.kind {
            JobKind::Spec(s) => s.delete_after_run != Some(false),
            JobKind::Heartbeat(_) => false,
        };
        if one_shot && !claim.forced && delete && report.status == "ok" && job.source == Source::Stored {
            self.store.retire(&job.id)?;
        }
        Ok(notice)
    }

    /// `chela cron run <id>`: runs a job now, out of schedule (its next run
    /// stays), and waits for it.
    pub(crate) async fn run_now(gw: &Arc<Gateway>, id: &str) -> Result<RunReport, RunNowError> {
        let (job, claim) = Scheduler::claim_now(gw, id).await?;
        Ok(Scheduler::execute(gw.clone(), job, claim).await)
    }

    /// Starts `job` now, out of schedule, without waiting for it (the
    /// `automations` tool's `run`: the turn asking may hold the session the
    /// job runs in); the run's id.
    pub(crate) async fn start_now(gw: &Arc<Gateway>, id: &str) -> Result<String, RunNowError> {
        let (job, claim) = Scheduler::claim_now(gw, id).await?;
        let run_id = claim.run_id.clone();
        let gw = gw.clone();
        tokio::spawn(async move { Scheduler::execute(gw, job, claim).await });
        Ok(run_id)
    }

    /// Claims a forced run of job `id` (written before it starts, as a
    /// scheduled claim is).
    async fn claim_now(gw: &Arc<Gateway>, id: &str) -> Result<(Job, Claim), RunNowError> {
        let cfg = gw.config();
        if !super::enabled(&cfg, &*gw.vars) {
            return Err(RunNowError::Disabled);
        }
        let sched = &gw.scheduler;
        let job = catalogue(&cfg, &sched.store.off_thread(|s| s.jobs()).await?)
            .into_iter()
            .find(|j| j.id == id)
            .ok_or_else(|| RunNowError::Unknown(id.to_string()))?;
        if !sched.running().insert(job.id.clone()) {
            return Err(RunNowError::Busy(job.id));
        }
        let now = now_ms();
        let claim = Claim { run_id: run_id(), occurrence_ms: now, started_at_ms: now, forced: true };
        let (id, held) = (job.id.clone(), claim.clone());
        let claimed = sched
            .store
            .off_thread(move |s| {
                s.update_states(|states| {
                    let st = states.entry(id).or_insert_with(|| JobState { anchor_ms: now, ..JobState::default() });
                    if st.running.is_some() {
                        return (false, false);
                    }
                    st.running = Some(held);
                    (true, true)
                })
            })
            .await;
        match claimed {
            Ok(true) => Ok((job, claim)),
            Ok(false) => {
                sched.running().remove(&job.id);
                Err(RunNowError::Busy(job.id))
            }
            Err(e) => {
                sched.running().remove(&job.id);
                Err(e.into())
            }
        }
    }
}

/// The jobs of `cfg` and the store, each with its state.
pub fn listing(store: &CronStore, cfg: &Config) -> Result<Vec<(Job, JobState)>, CronStoreError> {
    let jobs = catalogue(cfg, &store.jobs()?);
    let states: BTreeMap<String, JobState> = store.states()?;
    Ok(jobs
        .into_iter()
        .map(|j| {
            let st = states.get(&j.id).cloned().unwrap_or_default();
            (j, st)
        })
        .collect())
}

fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}
