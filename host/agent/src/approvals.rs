//! What `/approve <id> allow-once|allow-always|deny` reaches: the gateway
//! holds the commands waiting for an approval (the plugin runtime's
//! `ExecApprovals`) and runs or drops the one a decision names; the
//! runtime only checks who answers and passes the decision on. Without a
//! gateway (`chela send`) nothing waits, and `/approve` says so.
//!
//! Must not: decide which commands need an approval (core's
//! `policy::exec_approval`) or run one.

use chela_core::policy::Decision;
pub use chela_plugin::capability::sessions::BoxFuture;

/// Who answered, as the message that carried the decision says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approver {
    pub channel: String,
    /// `None`: the local operator (the CLI).
    pub sender_id: Option<String>,
}

/// The gateway's side of `/approve`.
pub trait ApprovalDecisions: Send + Sync {
    /// Settles the approval `id` by `decision` (already checked: `approver`
    /// may approve); the reply for the approver's chat, or why not.
    fn decide<'a>(
        &'a self,
        approver: &'a Approver,
        id: &'a str,
        decision: Decision,
    ) -> BoxFuture<'a, Result<String, String>>;
}
