//! The scheduler's files under `<stateDir>/cron/`: `jobs.json` (the jobs
//! `chela cron add` made) and `state.json` (every job's next run, last run
//! and the claim of a run in progress), `events.json`, `runs/<id>.json`.
//! Each change is a read-modify-write under an exclusive lock on
//! `cron/lock`, so the gateway and the CLI never lose each other's writes,
//! and each file is replaced atomically. On replicas the same documents
//! are in the shared database (`chela_documents`, `cron/<file>`), each
//! change one transaction under one advisory lock for the store: the
//! replica that takes the scheduler over finds the claims and next-run
//! times the last one wrote.
//!
//! A run is *claimed* — its claim and the job's next run time written and
//! synced — before it starts. A gateway killed mid-run finds the claim on
//! its next start and records the run as interrupted instead of running it
//! again: a job never runs twice for one occurrence.
//!
//! Must not: decide when a job is due or run it (`scheduler.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chela_database::Database;

use chela_core::cron_job::JobSpec;
use serde::{Deserialize, Serialize};

/// A job `chela cron add` stored (an `every` schedule carries its `anchorMs`).
pub type StoredJob = JobSpec;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobsFile {
    #[serde(default)]
    jobs: Vec<StoredJob>,
}

/// What the scheduler keeps of one job between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobState {
    /// The schedule these times were computed for; another one starts over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<serde_json::Value>,
    /// When the job was first seen (the anchor of an `every` without one).
    #[serde(default)]
    pub anchor_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_at_ms: Option<i64>,
    /// `ok` | `error` | `skipped` | `interrupted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<String>,
    /// Why the last run failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_duration_ms: Option<u64>,
    /// A run in progress (or cut off by a crash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<Claim>,
    #[serde(default)]
    pub runs: u64,
    #[serde(default)]
    pub consecutive_errors: u32,
    /// Failed computations of the next run in a row (`schedule-errors`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub schedule_errors: u32,
    /// Skipped runs in a row (failure alerts under `includeSkipped`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consecutive_skips: u32,
    /// The failure an alert went out for, until a success closes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<chela_core::failure_alert::Incident>,
    /// Turned off by the scheduler after too many failures (or schedule
    /// errors) in a row (`chela cron enable` turns it back on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_disabled: Option<AutoDisabled>,
    /// A one-shot that ran: it does not run again.
    #[serde(default)]
    pub done: bool,
}

/// Why and when the scheduler turned a job off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoDisabled {
    /// `consecutive-failures` or `schedule-errors` (OpenClaw's reasons).
    pub reason: String,
    pub at_ms: i64,
}

/// A run that has started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    pub run_id: String,
    /// The occurrence it runs (its scheduled time), or when a forced run was asked for.
    pub occurrence_ms: i64,
    pub started_at_ms: i64,
    /// Asked for by `chela cron run`, not the schedule.
    #[serde(default)]
    pub forced: bool,
}

/// One run as `chela cron runs` lists it (finished, or cut off by a crash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub run_id: String,
    pub started_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// `ok` | `error` | `skipped` | `interrupted`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub delivered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_key: Option<String>,
    /// Asked for by `chela cron run`.
    #[serde(default)]
    pub forced: bool,
}

/// Runs kept per job (the oldest give way).
pub const RUNS_KEPT: usize = 200;

/// A system event waiting for its agent's next heartbeat (`wakeMode: "next-heartbeat"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingEvent {
    pub job_id: String,
    pub text: String,
    pub at_ms: i64,
}

/// The most events one agent keeps waiting; older ones give way.
const MAX_PENDING_EVENTS: usize = 50;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct EventsFile {
    #[serde(default)]
    agents: BTreeMap<String, Vec<PendingEvent>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct StateFile {
    #[serde(default)]
    jobs: BTreeMap<String, JobState>,
}

#[derive(Debug, thiserror::Error)]
pub enum CronStoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a scheduler file chela can read ({source}); fix or remove it", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Replace(#[from] chela_durable::ReplaceError),
    #[error("the scheduler's `{name}` in the database: not a document chela can read ({source}); fix or remove it")]
    CorruptDocument {
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the scheduler's state in the database: {0}")]
    Database(#[from] chela_database::DbError),
}

/// Where the scheduler's documents are.
#[derive(Clone)]
enum Place {
    /// `<stateDir>/cron/`, under the `cron/lock` file lock.
    Files(chela_durable::Durability),
    /// The replicas' database (`chela_documents`, names `cron/<file>`),
    /// under one advisory lock for the whole store.
    Shared(Arc<Database>),
}

/// The scheduler's files in a state dir, or its documents in the replicas' database.
#[derive(Clone)]
pub struct CronStore {
    dir: PathBuf,
    place: Place,
}

/// The held lock; the files are read and written while it lives.
struct Locked(#[allow(dead_code)] std::fs::File);

/// The documents one change reads and writes (`jobs.json`, `state.json`,
/// `events.json`, `runs/<id>.json`), as read under the store's lock.
struct Docs {
    names: Vec<String>,
    bodies: Vec<Option<String>>,
    /// Where a body came from, for errors ("<dir>/state.json" or "cron/state.json").
    shown: Vec<String>,
    shared: bool,
}

impl Docs {
    fn index(&self, name: &str) -> usize {
        self.names.iter().position(|n| n == name).unwrap_or_else(|| unreachable!("`{name}` not asked for"))
    }

    fn get<T: for<'de> Deserialize<'de> + Default>(&self, name: &str) -> Result<T, CronStoreError> {
        let i = self.index(name);
        match self.bodies[i].as_deref() {
            None => Ok(T::default()),
            Some(body) if body.bytes().all(|b| b.is_ascii_whitespace()) => Ok(T::default()),
            Some(body) => serde_json::from_str(body).map_err(|source| match self.shared {
                true => CronStoreError::CorruptDocument { name: self.shown[i].clone(), source },
                false => CronStoreError::Corrupt { path: PathBuf::from(&self.shown[i]), source },
            }),
        }
    }

    fn put<T: Serialize>(&mut self, name: &str, value: &T) {
        let i = self.index(name);
        let mut body = serde_json::to_string_pretty(value).unwrap_or_default();
        body.push('\n');
        self.bodies[i] = Some(body);
    }

    fn delete(&mut self, name: &str) {
        let i = self.index(name);
        self.bodies[i] = None;
    }
}

impl CronStore {
    pub fn new(state_dir: &Path) -> CronStore {
        CronStore { dir: state_dir.join("cron"), place: Place::Files(chela_durable::Durability::Fsync) }
    }

    /// The replicas' database when there is one, else the files of `state_dir`.
    pub fn at(state_dir: &Path, database: Option<&Arc<Database>>) -> CronStore {
        match database {
            Some(db) => CronStore { dir: state_dir.join("cron"), place: Place::Shared(db.clone()) },
            None => CronStore::new(state_dir),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `work` on this store off the async workers (a file's fsync, a
    /// database round trip), for callers on one.
    pub async fn off_thread<R: Send + 'static>(
        &self,
        work: impl FnOnce(&CronStore) -> Result<R, CronStoreError> + Send + 'static,
    ) -> Result<R, CronStoreError> {
        let store = self.clone();
        match tokio::task::spawn_blocking(move || work(&store)).await {
            Ok(out) => out,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(CronStoreError::Io { path: self.dir.clone(), source: std::io::Error::other(e.to_string()) }),
        }
    }

    fn io(&self, path: &Path) -> impl Fn(std::io::Error) -> CronStoreError + '_ {
        let path = path.to_path_buf();
        move |source| CronStoreError::Io { path: path.clone(), source }
    }

    fn lock(&self) -> Result<Locked, CronStoreError> {
        std::fs::create_dir_all(&self.dir).map_err(self.io(&self.dir))?;
        let path = self.dir.join("lock");
        let file =
            std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(self.io(&path))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive).map_err(|e| self.io(&path)(e.into()))?;
        Ok(Locked(file))
    }

    /// Reads the documents `names` under the store's lock, lets `edit`
    /// change them, and writes back what it changed (nothing on an error):
    /// the one way every operation below reads and writes.
    fn change<R>(
        &self,
        names: &[&str],
        edit: impl FnOnce(&mut Docs) -> Result<R, CronStoreError>,
    ) -> Result<R, CronStoreError> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        match &self.place {
            Place::Files(durability) => {
                let _lock = self.lock()?;
                let mut bodies = Vec::new();
                for name in &names {
                    let path = self.dir.join(name);
                    bodies.push(match std::fs::read_to_string(&path) {
                        Ok(text) => Some(text),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                        Err(e) => return Err(self.io(&path)(e)),
                    });
                }
                let shown = names.iter().map(|n| self.dir.join(n).display().to_string()).collect();
                let mut docs = Docs { names, bodies: bodies.clone(), shown, shared: false };
                let answer = edit(&mut docs)?;
                for ((name, old), new) in docs.names.iter().zip(&bodies).zip(&docs.bodies) {
                    let path = self.dir.join(name);
                    match new {
                        _ if new == old => {}
                        Some(body) => chela_durable::replace(&path, body.as_bytes(), *durability)?,
                        None => match std::fs::remove_file(&path) {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => return Err(self.io(&path)(e)),
                        },
                    }
                }
                Ok(answer)
            }
            Place::Shared(db) => {
                let keys: Vec<String> = names.iter().map(|n| format!("cron/{n}")).collect();
                db.edit_documents("cron", keys.clone(), |bodies| {
                    let mut docs = Docs { names, bodies: bodies.to_vec(), shown: keys, shared: true };
                    let answer = edit(&mut docs)?;
                    bodies.clone_from_slice(&docs.bodies);
                    Ok(answer)
                })?
            }
        }
    }

    /// The stored jobs, in the order they were added.
    pub fn jobs(&self) -> Result<Vec<StoredJob>, CronStoreError> {
        self.change(&["jobs.json"], |d| Ok(d.get::<JobsFile>("jobs.json")?.jobs))
    }

    /// Adds a job (its id already checked unique by the caller, under
    /// `unique`: it sees the stored jobs while the lock is held).
    pub fn add(
        &self,
        job: StoredJob,
        unique: impl FnOnce(&[StoredJob]) -> Result<(), String>,
    ) -> Result<Result<(), String>, CronStoreError> {
        self.change(&["jobs.json"], move |d| {
            let mut file: JobsFile = d.get("jobs.json")?;
            if let Err(why) = unique(&file.jobs) {
                return Ok(Err(why));
            }
            file.jobs.push(job);
            d.put("jobs.json", &file);
            Ok(Ok(()))
        })
    }

    /// Replaces the stored job `id` by `job` (the same id), in place;
    /// whether it was there. Its state stays: a changed schedule starts its
    /// next-run times over when the scheduler next looks.
    pub fn replace(&self, id: &str, job: StoredJob) -> Result<bool, CronStoreError> {
        let id = id.to_string();
        self.change(&["jobs.json"], move |d| {
            let mut file: JobsFile = d.get("jobs.json")?;
            let Some(slot) = file.jobs.iter_mut().find(|j| j.id.as_deref() == Some(id.as_str())) else {
                return Ok(false);
            };
            *slot = job;
            d.put("jobs.json", &file);
            Ok(true)
        })
    }

    /// Removes a stored job and its state; whether it was there.
    pub fn remove(&self, id: &str) -> Result<bool, CronStoreError> {
        let (id, runs) = (id.to_string(), Self::runs_file(id));
        self.change(&["jobs.json", "state.json", &runs.clone()], move |d| {
            let mut file: JobsFile = d.get("jobs.json")?;
            let before = file.jobs.len();
            file.jobs.retain(|j| j.id.as_deref() != Some(id.as_str()));
            let removed = file.jobs.len() != before;
            if removed {
                d.put("jobs.json", &file);
                let mut state: StateFile = d.get("state.json")?;
                if state.jobs.remove(&id).is_some() {
                    d.put("state.json", &state);
                }
                d.delete(&runs);
            }
            Ok(removed)
        })
    }

    /// Every job's state.
    pub fn states(&self) -> Result<BTreeMap<String, JobState>, CronStoreError> {
        self.change(&["state.json"], |d| Ok(d.get::<StateFile>("state.json")?.jobs))
    }

    /// Changes the states under the lock and writes them (synced) when `change` says so.
    pub fn update_states<R>(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, JobState>) -> (bool, R),
    ) -> Result<R, CronStoreError> {
        self.change(&["state.json"], move |d| {
            let mut state: StateFile = d.get("state.json")?;
            let (changed, out) = change(&mut state.jobs);
            if changed {
                d.put("state.json", &state);
            }
            Ok(out)
        })
    }

    fn runs_file(job_id: &str) -> String {
        let safe: String = job_id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
        format!("runs/{safe}.json")
    }

    /// Adds a run to the job's history (`runs/<id>.json`, the newest [`RUNS_KEPT`]).
    pub fn record_run(&self, job_id: &str, run: RunRecord) -> Result<(), CronStoreError> {
        let name = Self::runs_file(job_id);
        self.change(&[&name.clone()], move |d| {
            let mut runs: Vec<RunRecord> = d.get(&name)?;
            runs.push(run);
            let over = runs.len().saturating_sub(RUNS_KEPT);
            runs.drain(..over);
            d.put(&name, &runs);
            Ok(())
        })
    }

    /// The job's runs, oldest first.
    pub fn runs(&self, job_id: &str) -> Result<Vec<RunRecord>, CronStoreError> {
        let name = Self::runs_file(job_id);
        self.change(&[&name.clone()], move |d| d.get(&name))
    }

    /// Queues a system event for `agent`'s next heartbeat (`events.json`).
    pub fn push_event(&self, agent: &str, event: PendingEvent) -> Result<(), CronStoreError> {
        let agent = agent.to_string();
        self.change(&["events.json"], move |d| {
            let mut file: EventsFile = d.get("events.json")?;
            let queue = file.agents.entry(agent).or_default();
            queue.push(event);
            let over = queue.len().saturating_sub(MAX_PENDING_EVENTS);
            queue.drain(..over);
            d.put("events.json", &file);
            Ok(())
        })
    }

    /// Whether events wait for `agent`'s heartbeat.
    pub fn has_events(&self, agent: &str) -> Result<bool, CronStoreError> {
        let agent = agent.to_string();
        self.change(&["events.json"], move |d| {
            let file: EventsFile = d.get("events.json")?;
            Ok(file.agents.get(&agent).is_some_and(|q| !q.is_empty()))
        })
    }

    /// Takes (and removes) the events waiting for `agent`'s heartbeat.
    pub fn take_events(&self, agent: &str) -> Result<Vec<PendingEvent>, CronStoreError> {
        let agent = agent.to_string();
        self.change(&["events.json"], move |d| {
            let mut file: EventsFile = d.get("events.json")?;
            let taken = file.agents.remove(&agent).unwrap_or_default();
            if !taken.is_empty() {
                d.put("events.json", &file);
            }
            Ok(taken)
        })
    }

    /// Removes a stored job once its one-shot ran (its state stays, marked done).
    pub fn retire(&self, id: &str) -> Result<(), CronStoreError> {
        let id = id.to_string();
        self.change(&["jobs.json"], move |d| {
            let mut file: JobsFile = d.get("jobs.json")?;
            let before = file.jobs.len();
            file.jobs.retain(|j| j.id.as_deref() != Some(id.as_str()));
            if file.jobs.len() != before {
                d.put("jobs.json", &file);
            }
            Ok(())
        })
    }

    /// Turns a job the scheduler turned off back on, its failure streaks and
    /// incident cleared (`chela cron enable`); `false` when it was not off.
    pub fn enable(&self, id: &str) -> Result<bool, CronStoreError> {
        let id = id.to_string();
        self.update_states(move |states| match states.get_mut(&id) {
            Some(st) if st.auto_disabled.is_some() => {
                st.auto_disabled = None;
                st.consecutive_errors = 0;
                st.consecutive_skips = 0;
                st.schedule_errors = 0;
                st.incident = None;
                (true, true)
            }
            _ => (false, false),
        })
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str) -> StoredJob {
        serde_json::from_value(serde_json::json!({
            "id": id, "schedule": { "kind": "every", "everyMs": 60000 },
            "payload": { "kind": "agentTurn", "message": "hi" }
        }))
        .unwrap()
    }

    #[test]
    fn jobs_and_states_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = CronStore::new(dir.path());
        assert!(store.add(job("a"), |_| Ok(())).unwrap().is_ok());
        let refused = store.add(job("a"), |jobs| match jobs.iter().any(|j| j.id.as_deref() == Some("a")) {
            true => Err("taken".into()),
            false => Ok(()),
        });
        assert_eq!(refused.unwrap(), Err("taken".to_string()));
        store
            .update_states(|s| {
                s.entry("a".into()).or_default().next_run_at_ms = Some(42);
                (true, ())
            })
            .unwrap();
        let again = CronStore::new(dir.path());
        assert_eq!(again.jobs().unwrap(), vec![job("a")]);
        assert_eq!(again.states().unwrap()["a"].next_run_at_ms, Some(42));
        assert!(again.remove("a").unwrap());
        assert!(again.jobs().unwrap().is_empty() && again.states().unwrap().is_empty());
        assert!(!again.remove("a").unwrap());
    }

    #[test]
    fn run_history_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let store = CronStore::new(dir.path());
        for i in 0..RUNS_KEPT + 5 {
            let run = RunRecord {
                run_id: format!("r{i}"),
                started_at_ms: i as i64,
                duration_ms: Some(1),
                status: "ok".into(),
                reason: None,
                delivered: false,
                session_key: None,
                forced: false,
            };
            store.record_run("job-1", run).unwrap();
        }
        let runs = store.runs("job-1").unwrap();
        assert_eq!(runs.len(), RUNS_KEPT);
        assert_eq!(runs[0].run_id, "r5", "the oldest gave way");
        assert!(store.runs("other").unwrap().is_empty());
    }

    #[test]
    fn enabling_clears_the_reason_and_every_streak() {
        let dir = tempfile::tempdir().unwrap();
        let store = CronStore::new(dir.path());
        store
            .update_states(|s| {
                let st = s.entry("a".into()).or_default();
                st.auto_disabled = Some(AutoDisabled { reason: "schedule-errors".into(), at_ms: 1 });
                (st.schedule_errors, st.consecutive_errors) = (3, 10);
                (true, ())
            })
            .unwrap();
        assert!(store.enable("a").unwrap());
        let st = &store.states().unwrap()["a"];
        assert_eq!((st.auto_disabled.is_none(), st.schedule_errors, st.consecutive_errors), (true, 0, 0));
        assert!(!store.enable("a").unwrap(), "not off any more");
    }

    #[test]
    fn a_corrupt_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = CronStore::new(dir.path());
        std::fs::create_dir_all(store.dir()).unwrap();
        std::fs::write(store.dir().join("jobs.json"), "{ not json").unwrap();
        let e = store.jobs().unwrap_err().to_string();
        assert!(e.contains("jobs.json") && e.contains("fix or remove it"), "{e}");
    }
}
