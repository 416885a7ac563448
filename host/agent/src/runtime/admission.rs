//! How a message takes its place in its session's line: the queue
//! settings that apply to it (the session's `/queue` override, then the
//! config's for its channel; an API caller always waits its turn), what the
//! session queue sees of it, and what its place comes to — the turn, or
//! absorbed (steered, collected, dropped, cleared) once what took its text
//! has stored it.
//!
//! Must not: run a turn or decide queue rules (core's `queue_mode` does).

use chela_core::config::schema::Config;
use chela_core::queue_mode::QueueSettings;

use super::{commands, sender_may_elevate, AgentRuntime, Inbound, RunError, TurnOutcome};
use crate::queue::{Absorbed, Admit, Arrival, Entered, TurnPermit};

impl AgentRuntime {
    /// The queue settings of the session `inbound` runs in (its `/queue`
    /// override, then the config's for its channel).
    ///
    /// Read at once (the index is in memory), not on the blocking pool:
    /// callers that start together take their places in the order they came.
    pub(super) fn queue_settings(&self, cfg: &Config, inbound: &Inbound, agent_id: &str) -> QueueSettings {
        let own = self
            .store_in(cfg, agent_id)
            .ok()
            .and_then(|s| s.get(inbound.target.key.as_str()).ok().flatten())
            .map(|e| e.queue_override())
            .unwrap_or_default();
        let channel = inbound.delivery.as_ref().map(|d| d.channel.as_str()).or(inbound.origin.provider.as_deref());
        chela_core::queue_mode::settings(cfg, channel, &own)
    }

    /// Waits for a place in line to become the turn, or for the message to
    /// be absorbed (taken by the running turn, collected, dropped).
    pub(super) async fn wait_turn(&self, entered: Entered) -> Result<Result<TurnPermit, Absorbed>, RunError> {
        let place = match entered {
            Entered::Now(p) => return Ok(Ok(p)),
            // Done once its batch's turn has stored it.
            Entered::Collected(stored) => {
                return stored.await.map(|()| Err(Absorbed::Collected)).map_err(|_| RunError::Closed)
            }
            Entered::Wait(place) => place,
            Entered::Offered { taken, mut place } => {
                // Taken by the running turn: answered there. If the turn
                // ends without it, the place in line comes up instead.
                if let Ok(()) = tokio::select! {
                    biased;
                    t = taken => t,
                    admit = &mut place => return admission(admit).await,
                } {
                    return Ok(Err(Absorbed::Steered));
                }
                place
            }
        };
        admission(place.await).await
    }
}

/// What a place in line came to.
async fn admission(
    admit: Result<Admit, tokio::sync::oneshot::error::RecvError>,
) -> Result<Result<TurnPermit, Absorbed>, RunError> {
    match admit.map_err(|_| RunError::Closed)? {
        Admit::Turn(p) => Ok(Ok(p)),
        Admit::Absorbed(a, None) => Ok(Err(a)),
        // Done once the turn that took its text has stored it.
        Admit::Absorbed(a, Some(stored)) => stored.await.map(|()| Err(a)).map_err(|_| RunError::Closed),
    }
}

/// Who runs a message: a chat (its session's queue mode applies) or an API
/// caller (in order, always its own turn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Caller {
    Chat,
    InOrder,
}

/// A message as the session queue sees it.
pub(super) fn arrival(cfg: &Config, agent_id: &str, inbound: &Inbound) -> Arrival {
    let chat = match &inbound.delivery {
        Some(d) => format!("{}/{}/{}/{}", d.channel, d.account_id, d.to, d.thread_id.as_deref().unwrap_or("")),
        None => format!(
            "{}/{}",
            inbound.origin.provider.as_deref().unwrap_or(""),
            inbound.origin.from.as_deref().unwrap_or("")
        ),
    };
    Arrival {
        text: inbound.text.clone(),
        sender: inbound.origin.label.clone().or_else(|| inbound.sender_id.clone()),
        chat,
        message_ref: inbound.message_ref.clone(),
        // The message-dependent part of linking (`turn.rs`'s `link_tools`).
        rights: crate::queue::ToolRights {
            elevated: sender_may_elevate(cfg, agent_id, inbound),
            exec: inbound.exec_tightening,
        },
    }
}

/// The outcome of a message that got no turn of its own.
pub(super) fn absorbed_outcome(agent_id: &str, inbound: &Inbound, absorbed: Absorbed) -> TurnOutcome {
    TurnOutcome {
        absorbed: Some(absorbed),
        model: String::new(),
        ..commands::outcome(agent_id, inbound, String::new())
    }
}
