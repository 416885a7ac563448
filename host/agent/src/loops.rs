//! What `/loop` reaches the scheduler through: the gateway stores, lists and
//! removes a conversation's loop jobs (its cron store); the runtime only
//! asks. Without a scheduler (`chela send`), `/loop` says it needs a
//! running gateway.
//!
//! Must not: decide what a loop is (core's `conversation_loop`) or who may
//! ask for one (the command path checks `access::is_owner`).

use chela_core::cron_job::JobSpec;

/// One loop as `/loop status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopListing {
    pub name: String,
    pub every_ms: Option<u64>,
    /// Its pacing bounds (`min`, `max`), when it paces itself.
    pub pacing: Option<(Option<String>, Option<String>)>,
    pub enabled: bool,
    pub next_run_at_ms: Option<i64>,
    pub last_status: Option<String>,
}

/// The scheduler's side of `/loop`. Calls block (a file lock, a database
/// round trip): the runtime makes them off its async workers.
pub trait ConversationLoops: Send + Sync {
    /// Stores `job` (checked as `chela cron add` checks one); `Err` says why not.
    fn start(&self, job: JobSpec) -> Result<(), String>;
    /// The loops of the conversation `session_key`.
    fn list(&self, session_key: &str) -> Result<Vec<LoopListing>, String>;
    /// Removes the conversation's loops (those whose name contains `wanted`,
    /// when given); the names removed.
    fn stop(&self, session_key: &str, wanted: Option<&str>) -> Result<Vec<String>, String>;
}
