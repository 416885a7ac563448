//! What routing decides for one inbound message: the turns it produces.
//!
//! A broadcast group for the message's peer replaces bindings (reference §8)
//! and gives one route per listed agent, run in parallel or one after
//! another; any other message gets the one route the tier walk chose. The
//! gateway runs exactly this and `chela route` prints exactly this.
//!
//! Must not: look at access policy (DM pairing, group allowlists, mention
//! gating run in the gateway around it) or touch any session store.

use super::{Route, RouteInput, RouteTable};
use crate::roster::OwnerError;

/// How the turns of a broadcast group run (`broadcast.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BroadcastOrder {
    Parallel,
    Sequential,
}

/// The routes of one inbound message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dispatch {
    /// One route, or one per agent of a broadcast group (never empty
    /// unless every agent of the group is unknown).
    pub routes: Vec<Route>,
    /// Set for a broadcast group: how its turns run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<BroadcastOrder>,
}

impl RouteTable {
    /// Routes one message: a broadcast group's agents, else the tier walk.
    pub fn dispatch(&self, input: &RouteInput) -> Result<Dispatch, OwnerError> {
        if let Some((routes, sequential)) = self.broadcast(input) {
            let order = if sequential { BroadcastOrder::Sequential } else { BroadcastOrder::Parallel };
            return Ok(Dispatch { routes, broadcast: Some(order) });
        }
        Ok(Dispatch { routes: vec![self.resolve(input)?], broadcast: None })
    }
}
