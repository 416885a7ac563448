//! Asking before a host command runs (OpenClaw's exec approvals): where the
//! host policy says a command needs an approval, the `process` capability
//! hands it to the [`ExecApprovals`] the embedding host provides (the
//! gateway posts a prompt in the session's chat) instead of running it.
//! The call returns at once — the model is told the command waits for an
//! approval — and an approved command is run later by the host through
//! [`run_approved`], with the grant it was asked under.
//!
//! Must not: decide who may approve or where the prompt goes (the host
//! does), or run a command the policy refused outright.

use super::{run_as, Command, HostConfiner, Output, ProcessGrant};
pub use crate::capability::sessions::BoxFuture;

/// A command waiting for an approval: who asked, in which session, what
/// it is, and the grant it will run under once approved.
#[derive(Debug, Clone)]
pub struct PendingExec {
    pub agent: String,
    pub session_key: String,
    pub plugin: String,
    /// Why it needs an approval (the policy's words).
    pub reason: String,
    pub command: Command,
    pub grant: ProcessGrant,
}

impl PendingExec {
    /// The command as a person reads it (`sh -c` shown as its text).
    pub fn command_text(&self) -> String {
        match (self.command.program.as_str(), self.command.args.as_slice()) {
            ("sh", [flag, text]) if flag == "-c" => text.clone(),
            (program, args) => {
                std::iter::once(program.to_string()).chain(args.iter().cloned()).collect::<Vec<_>>().join(" ")
            }
        }
    }
}

/// What the host did with a command that needs an approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// Approved before (`allow-always`): it runs now.
    Approved,
    /// A prompt went out under this id; the command runs when it is approved.
    Pending(String),
}

/// The embedding host's side of approvals.
pub trait ExecApprovals: Send + Sync {
    /// Asks for `pending` (or finds it approved for good); `Err`: no one
    /// can be asked (the command is refused).
    fn request(&self, pending: PendingExec) -> BoxFuture<'_, Result<Asked, String>>;
}

/// Runs a command an approval allowed, confined as any host command of its
/// grant is (the approval is for the policy, not the confinement).
pub async fn run_approved(grant: &ProcessGrant, cmd: Command) -> Result<Output, String> {
    run_as(grant, cmd, HostConfiner::Best).await
}
