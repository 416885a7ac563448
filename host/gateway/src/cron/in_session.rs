//! The job runs in progress in this process, by the session key of their
//! turn: what the `automations` tool narrows to inside a run's turn, and
//! where a paced job's `next_check` proposal waits for the run's end.
//! `run.rs` marks a run's session before its turn; the scheduler's
//! `execute` ends it and takes the proposal.
//!
//! Must not: decide what a proposal may be (core's `pacing` clamps it) or
//! apply it (the scheduler does, when the run ended well).

use std::collections::HashMap;
use std::sync::Mutex;

use chela_core::pacing::Bounds;

/// A job's run in progress here, in one session.
#[derive(Debug, Clone)]
pub(crate) struct RunInSession {
    pub job_id: String,
    pub run_id: String,
    /// The job's pacing bounds (`None`: not paced, `next_check` is refused).
    pub pacing: Option<Bounds>,
    /// A forced run: its proposal is not used (it keeps the pending slot).
    pub forced: bool,
    /// The delay the run proposed (clamped), applied when it ends well.
    pub proposal_ms: Option<u64>,
}

/// The runs in progress, by session key.
#[derive(Default)]
pub(crate) struct RunsInSession(Mutex<HashMap<String, RunInSession>>);

impl RunsInSession {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, RunInSession>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks `session_key` as running `run` (until [`RunsInSession::leave`]).
    pub(crate) fn enter(&self, session_key: &str, run: RunInSession) {
        self.map().insert(session_key.to_string(), run);
    }

    /// The job run whose turn is in `session_key`, if one is.
    pub(crate) fn get(&self, session_key: &str) -> Option<RunInSession> {
        self.map().get(session_key).cloned()
    }

    /// Records a paced run's proposal (already clamped); `false` when no
    /// run is in `session_key` any more.
    pub(crate) fn propose(&self, session_key: &str, delay_ms: u64) -> bool {
        match self.map().get_mut(session_key) {
            Some(run) => {
                run.proposal_ms = Some(delay_ms);
                true
            }
            None => false,
        }
    }

    /// Ends `run_id`'s stay in its session; its proposal, if it made one
    /// (a forced run's is dropped).
    pub(crate) fn leave(&self, run_id: &str) -> Option<u64> {
        let mut map = self.map();
        let key = map.iter().find(|(_, r)| r.run_id == run_id).map(|(k, _)| k.clone())?;
        map.remove(&key).and_then(|r| if r.forced { None } else { r.proposal_ms })
    }
}
