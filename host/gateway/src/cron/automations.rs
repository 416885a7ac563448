//! The `automations` tool's host side (the plugin runtime's
//! `AutomationsAccess`), over this gateway's cron store, for the calling
//! agent only: it shows that agent's jobs (`status`, `list`, `get`,
//! `runs`), stores a new or changed job only as that agent (checked as
//! `chela cron add` checks one, so a job naming another agent's session or
//! account is refused), removes and changes only jobs that agent stored,
//! starts only its jobs, and wakes only its heartbeat.
//!
//! Inside a job's own run (the scheduler marks the turn's session) the
//! calls narrow to that job, as OpenClaw's restricted automation-run
//! sessions: it may look at itself, remove itself and pace itself
//! (`next_check`), and nothing else.
//!
//! Must not: show, store, start or remove another agent's job, or change a
//! job the config declares.

use std::sync::{Arc, Weak};

use chela_agent::clock::now_ms;
use chela_core::config::schema::Config;
use chela_core::cron_job::JobSpec;
use chela_core::schedule::{parse_duration_ms, Unit};
use chela_plugin::capability::automations::{AutomationsAccess, BoxFuture, Caller};
use serde_json::{json, Value};

use super::in_session::RunInSession;
use super::scheduler::{RunNowError, Scheduler};
use super::store::PendingEvent;
use super::{add_stored, heartbeat_id, listing_json, scheduler, CronStore, Job, JobKind, JobState, Source};
use crate::Gateway;

/// The most runs `runs` returns, whatever the limit asked.
const RUNS_SHOWN_MAX: u32 = 200;

/// The gateway's side of the `automations` capability.
pub(crate) fn automations(gw: Weak<Gateway>) -> Arc<dyn AutomationsAccess> {
    Arc::new(Automations { gw })
}

struct Automations {
    gw: Weak<Gateway>,
}

/// Who is asking: an agent's turn, or a job's own run inside one.
struct Asker {
    agent: String,
    session_key: String,
    /// The job run this turn is, if it is one.
    run: Option<RunInSession>,
}

impl Asker {
    /// Whether `job` is one this asker may see: the agent's, and inside a run only the run's own.
    fn sees(&self, cfg: &Config, job: &Job) -> bool {
        job.agent(cfg).as_deref() == Some(self.agent.as_str()) && self.run.as_ref().is_none_or(|r| r.job_id == job.id)
    }

    /// Refuses `action` inside a job's run (an unattended run cannot make or start more work).
    fn outside_a_run(&self, action: &str) -> Result<(), String> {
        match &self.run {
            Some(r) => Err(format!(
                "this turn is the scheduled job `{}`: inside it the tool can only look at, remove or pace \
                 (`next_check`) that job, not `{action}`",
                r.job_id
            )),
            None => Ok(()),
        }
    }
}

/// The jobs `asker` sees, with their states.
fn seen(cfg: &Config, store: &CronStore, asker: &Asker) -> Result<Vec<(Job, JobState)>, String> {
    let jobs = scheduler::listing(store, cfg).map_err(|e| e.to_string())?;
    Ok(jobs.into_iter().filter(|(job, _)| asker.sees(cfg, job)).collect())
}

/// A listing row with the names OpenClaw's tool answers with beside chela's
/// (`effectiveAgentId`, `scheduleKind`, `lastRunStatus`, `pacing`).
fn tool_rows(cfg: &Config, jobs: &[(Job, JobState)]) -> Value {
    let mut rows = listing_json(cfg, jobs);
    for (row, (job, _)) in rows.as_array_mut().into_iter().flatten().zip(jobs) {
        let kind = serde_json::to_value(job.schedule()).ok().and_then(|s| s.get("kind").cloned());
        let pacing = match &job.kind {
            JobKind::Spec(spec) => serde_json::to_value(&spec.pacing).unwrap_or(Value::Null),
            JobKind::Heartbeat(_) => Value::Null,
        };
        if let Value::Object(o) = row {
            o.insert("effectiveAgentId".into(), o.get("agentId").cloned().unwrap_or(Value::Null));
            o.insert("scheduleKind".into(), kind.unwrap_or(Value::Null));
            o.insert("lastRunStatus".into(), o.get("lastStatus").cloned().unwrap_or(Value::Null));
            o.insert("pacing".into(), pacing);
        }
    }
    rows
}

impl Automations {
    fn gateway(&self) -> Result<Arc<Gateway>, String> {
        self.gw.upgrade().ok_or_else(|| "the gateway is stopping".to_string())
    }

    fn asker(&self, gw: &Gateway, caller: &Caller) -> Asker {
        Asker {
            agent: caller.agent_id.clone(),
            session_key: caller.session_key.clone(),
            run: gw.scheduler.in_session.get(&caller.session_key),
        }
    }

    /// Runs `work` on the store off the async workers, for `caller`, with the config in force.
    async fn on_store<R: Send + 'static>(
        &self,
        caller: &Caller,
        work: impl FnOnce(&Config, &CronStore, &Asker) -> Result<R, String> + Send + 'static,
    ) -> Result<R, String> {
        let gw = self.gateway()?;
        let (cfg, asker) = (gw.config(), self.asker(&gw, caller));
        gw.scheduler.store().off_thread(move |store| Ok(work(&cfg, store, &asker))).await.map_err(|e| e.to_string())?
    }
}

/// Why the tool leaves command jobs alone (OpenClaw's operator-admin surface).
const OPERATOR_ONLY: &str = "a command payload is the operator's (cron.jobs in the config, or `chela cron add \
--command`): an agent cannot add, change, run or remove one";

impl AutomationsAccess for Automations {
    fn list<'a>(&'a self, caller: &'a Caller) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(self.on_store(caller, |cfg, store, asker| Ok(tool_rows(cfg, &seen(cfg, store, asker)?).to_string())))
    }

    fn add<'a>(&'a self, caller: &'a Caller, job: String) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(self.on_store(caller, move |cfg, store, asker| {
            asker.outside_a_run("add")?;
            let mut spec: JobSpec = serde_json::from_str(&job).map_err(|e| format!("not a job: {e}"))?;
            if spec.operator_only() {
                return Err(OPERATOR_ONLY.into());
            }
            spec.bind_to_caller(&asker.agent, &asker.session_key).map_err(|p| format!("{}: {}", p.field, p.message))?;
            let id =
                spec.id.clone().unwrap_or_else(|| format!("job-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
            spec.id = Some(id.clone());
            add_stored(cfg, store, spec).map_err(|e| e.to_string())??;
            tracing::info!(agent = %asker.agent, job = %id, "automations tool: job added");
            Ok(id)
        }))
    }

    fn remove<'a>(&'a self, caller: &'a Caller, id: String) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(self.on_store(caller, move |cfg, store, asker| {
            let jobs = super::catalogue(cfg, &store.jobs().map_err(|e| e.to_string())?);
            // Only a stored job this asker sees: another agent's is as good as absent.
            let Some(job) = jobs.iter().find(|j| j.id == id && j.source == Source::Stored && asker.sees(cfg, j)) else {
                return Ok(false);
            };
            if matches!(&job.kind, JobKind::Spec(spec) if spec.operator_only()) {
                return Err(OPERATOR_ONLY.into());
            }
            store.remove(&id).map_err(|e| e.to_string())
        }))
    }

    fn status<'a>(&'a self, caller: &'a Caller) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let gw = self.gateway()?;
            let enabled = super::enabled(&gw.config(), &*gw.vars);
            let jobs = self.on_store(caller, seen).await?;
            let next = jobs.iter().filter(|(j, st)| j.enabled() && st.auto_disabled.is_none());
            let next_wake = next.filter_map(|(_, st)| st.next_run_at_ms).min();
            Ok(json!({ "enabled": enabled, "jobs": jobs.len(), "nextWakeAtMs": next_wake }).to_string())
        })
    }

    fn get<'a>(&'a self, caller: &'a Caller, id: String) -> BoxFuture<'a, Result<Option<String>, String>> {
        Box::pin(self.on_store(caller, move |cfg, store, asker| {
            let jobs = seen(cfg, store, asker)?;
            let Some(found) = jobs.iter().find(|(j, _)| j.id == id) else { return Ok(None) };
            let mut row = tool_rows(cfg, std::slice::from_ref(found))[0].clone();
            let definition = match &found.0.kind {
                JobKind::Spec(spec) => {
                    let mut v = serde_json::to_value(spec).unwrap_or(Value::Null);
                    // The operator's command may carry credentials: the agent sees that there are some.
                    if let Some(env) = v["payload"]["env"].as_object_mut() {
                        env.values_mut().for_each(|x| *x = json!("(hidden)"));
                    }
                    if v["payload"].get("input").is_some() {
                        v["payload"]["input"] = json!("(hidden)");
                    }
                    v
                }
                JobKind::Heartbeat(plan) => json!({ "heartbeat": plan.agent_id, "everyMs": plan.every_ms }),
            };
            row["job"] = definition;
            row["consecutiveErrors"] = json!(found.1.consecutive_errors);
            Ok(Some(row.to_string()))
        }))
    }

    fn update<'a>(&'a self, caller: &'a Caller, id: String, patch: String) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(self.on_store(caller, move |cfg, store, asker| {
            asker.outside_a_run("update")?;
            let patch: Value = serde_json::from_str(&patch).map_err(|e| format!("not a JSON patch: {e}"))?;
            let jobs = super::catalogue(cfg, &store.jobs().map_err(|e| e.to_string())?);
            let job = jobs.iter().find(|j| j.id == id && asker.sees(cfg, j)).ok_or_else(|| format!("no job `{id}`"))?;
            let JobKind::Spec(current) = (job.source == Source::Stored).then_some(&job.kind).ok_or_else(|| {
                format!("job `{id}` is {}: change it there, not with the tool", job.source.describe())
            })?
            else {
                return Err(format!("job `{id}` is not a stored job"));
            };
            let mut spec = current.patched(&patch).map_err(|p| format!("{}: {}", p.field, p.message))?;
            if current.operator_only() || spec.operator_only() {
                return Err(OPERATOR_ONLY.into());
            }
            spec.bind_to_caller(&asker.agent, &asker.session_key).map_err(|p| format!("{}: {}", p.field, p.message))?;
            let problems = spec.problems(cfg, now_ms());
            if !problems.is_empty() {
                let lines: Vec<String> = problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect();
                return Err(lines.join("\n"));
            }
            if !store.replace(&id, spec.clone()).map_err(|e| e.to_string())? {
                return Err(format!("no job `{id}`"));
            }
            // An explicit `enabled: true` turns a job the scheduler turned off back on (OpenClaw's rule).
            if patch.get("enabled") == Some(&Value::Bool(true)) {
                store.enable(&id).map_err(|e| e.to_string())?;
            }
            tracing::info!(agent = %asker.agent, job = %id, "automations tool: job updated");
            serde_json::to_string(&spec).map_err(|e| e.to_string())
        }))
    }

    fn run<'a>(&'a self, caller: &'a Caller, id: String, force: bool) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let gw = self.gateway()?;
            let wanted = id.clone();
            let found = self
                .on_store(caller, move |cfg, store, asker| {
                    asker.outside_a_run("run")?;
                    let jobs = seen(cfg, store, asker)?;
                    let (job, st) =
                        jobs.into_iter().find(|(j, _)| j.id == wanted).ok_or(format!("no job `{wanted}`"))?;
                    if matches!(&job.kind, JobKind::Spec(spec) if spec.operator_only()) {
                        return Err(OPERATOR_ONLY.to_string());
                    }
                    Ok((job.enabled() && st.auto_disabled.is_none(), st.next_run_at_ms))
                })
                .await?;
            if !force {
                // Due: the scheduler's next tick claims it (so it runs once, as scheduled).
                return Ok(match found {
                    (true, Some(next)) if next <= now_ms() => json!({ "ran": true, "reason": "due" }),
                    (_, next) => json!({ "ran": false, "reason": "not-due", "nextRunAtMs": next }),
                }
                .to_string());
            }
            match Scheduler::start_now(&gw, &id).await {
                Ok(run_id) => Ok(json!({ "ran": true, "runId": run_id }).to_string()),
                Err(RunNowError::Busy(_)) => Ok(json!({ "ran": false, "reason": "already-running" }).to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
    }

    fn runs<'a>(&'a self, caller: &'a Caller, id: String, limit: u32) -> BoxFuture<'a, Result<Option<String>, String>> {
        Box::pin(self.on_store(caller, move |cfg, store, asker| {
            if !seen(cfg, store, asker)?.iter().any(|(j, _)| j.id == id) {
                return Ok(None);
            }
            let mut runs = store.runs(&id).map_err(|e| e.to_string())?;
            runs.reverse();
            runs.truncate(limit.clamp(1, RUNS_SHOWN_MAX) as usize);
            Ok(Some(serde_json::to_string(&runs).map_err(|e| e.to_string())?))
        }))
    }

    fn next_check<'a>(&'a self, caller: &'a Caller, delay: String) -> BoxFuture<'a, Result<u64, String>> {
        Box::pin(async move {
            let delay_ms = parse_duration_ms(&delay, Unit::Millis).map_err(|e| format!("in: {e}"))?;
            let gw = self.gateway()?;
            let run = gw
                .scheduler
                .in_session
                .get(&caller.session_key)
                .ok_or("next_check paces a job from inside its own run, and this turn is not a scheduled run")?;
            let bounds = run.pacing.ok_or_else(|| {
                format!(
                    "job `{}` has no pacing: give it `pacing: {{ min, max }}` for its runs to choose their next check",
                    run.job_id
                )
            })?;
            let delay = bounds.clamp(delay_ms);
            if !gw.scheduler.in_session.propose(&caller.session_key, delay) {
                return Err(format!("job `{}`'s run has ended", run.job_id));
            }
            tracing::info!(job = %run.job_id, run = %run.run_id, delay_ms = delay, "automations tool: next check proposed");
            Ok(delay)
        })
    }

    fn wake<'a>(&'a self, caller: &'a Caller, text: String, now: bool) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let gw = self.gateway()?;
            let asker = self.asker(&gw, caller);
            asker.outside_a_run("wake")?;
            if text.trim().is_empty() {
                return Err("wake needs the event's `text`".into());
            }
            let beats = chela_core::heartbeat::plans(&gw.config())
                .plans
                .iter()
                .any(|p| p.agent_id == asker.agent && p.every_ms > 0);
            if !beats {
                return Err(format!(
                    "agent `{}` runs no heartbeat to wake (`agents.*.heartbeat`); add a job instead",
                    asker.agent
                ));
            }
            let event = PendingEvent { job_id: "wake".into(), text, at_ms: now_ms() };
            let agent = asker.agent.clone();
            gw.scheduler.store().off_thread(move |s| s.push_event(&agent, event)).await.map_err(|e| e.to_string())?;
            if now {
                match Scheduler::start_now(&gw, &heartbeat_id(&asker.agent)).await {
                    Ok(_) | Err(RunNowError::Busy(_)) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(())
        })
    }
}
