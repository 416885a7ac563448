//! `chela:plugin/messaging` (0.2.0): messages an agent sends on its own,
//! for the `message` tool. The host side is a [`MessagingAccess`] the
//! embedding host provides (the gateway, which holds the channels); this
//! crate knows no channel and no route. The caller (agent and session) is
//! set by the host per call — a plugin cannot claim to be another agent —
//! and the capability is linked only into agents whose tool policy allows
//! `message`.
//!
//! Must not: decide which account an agent may use or which files it may
//! attach (the `MessagingAccess` does, from the core's routes and policy).

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::messaging;
pub use crate::bindings::messaging::{Outbound, Sent};
pub use crate::capability::sessions::{BoxFuture, Caller};

/// What the host answers `messaging` calls with.
pub trait MessagingAccess: Send + Sync {
    /// Sends `message` for `caller`, or says why it was not sent.
    fn send<'a>(&'a self, caller: &'a Caller, message: Outbound) -> BoxFuture<'a, Result<Sent, String>>;
}

/// An instance's messaging: who calls, and the host side that answers.
#[derive(Default)]
pub struct MessagingState {
    pub(crate) agent: String,
    pub(crate) session_key: String,
    pub(crate) access: Option<Arc<dyn MessagingAccess>>,
}

impl messaging::Host for MessagingState {
    async fn send(&mut self, message: Outbound) -> Result<Sent, String> {
        let access = self.access.clone().ok_or("messaging is not available here (no channels in this process)")?;
        if self.session_key.is_empty() {
            return Err("messages are sent from a session's turn".into());
        }
        let caller = Caller::new(&self.agent, &self.session_key);
        access.send(&caller, message).await
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut MessagingState,
) -> wasmtime::Result<()> {
    messaging::add_to_linker::<T, HasSelf<MessagingState>>(linker, get)
}
