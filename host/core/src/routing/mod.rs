//! Routing: which agent answers an inbound message, and in which session.
//!
//! [`RouteTable::build`] compiles a config snapshot once into per-(channel,
//! account) tier indexes; [`RouteTable::resolve`] then costs a few hash
//! lookups whatever the number of bindings. [`RouteTable::explain`] walks the
//! same tiers with a tracer to say why each tier did or did not match.
//! Routing never drops a message: "no route" is the default agent, or an
//! [`OwnerError`] when the config leaves ownership ambiguous.

mod explain;
mod input;
mod table;

pub use explain::{CandidateVerdict, Explanation, TierOutcome, TierTrace};
pub use input::{PeerRef, RouteInput};
pub use table::RouteTable;

use crate::config::schema::{DmScope, GroupScope};
use crate::roster::OwnerError;

/// Which tier chose the agent (OpenClaw's `matchedBy` strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum MatchedBy {
    #[serde(rename = "binding.peer")]
    Peer,
    #[serde(rename = "binding.peer.parent")]
    ParentPeer,
    #[serde(rename = "binding.peer.wildcard")]
    PeerWildcard,
    #[serde(rename = "binding.guild+roles")]
    GuildRoles,
    #[serde(rename = "binding.guild")]
    Guild,
    #[serde(rename = "binding.team")]
    Team,
    #[serde(rename = "binding.account")]
    Account,
    #[serde(rename = "binding.channel")]
    Channel,
    #[serde(rename = "default")]
    Default,
    /// A broadcast group (reference §8): chosen instead of bindings.
    #[serde(rename = "broadcast")]
    Broadcast,
}

impl MatchedBy {
    /// The binding tiers, most specific first.
    pub const TIERS: [MatchedBy; 8] = [
        MatchedBy::Peer,
        MatchedBy::ParentPeer,
        MatchedBy::PeerWildcard,
        MatchedBy::GuildRoles,
        MatchedBy::Guild,
        MatchedBy::Team,
        MatchedBy::Account,
        MatchedBy::Channel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MatchedBy::Peer => "binding.peer",
            MatchedBy::ParentPeer => "binding.peer.parent",
            MatchedBy::PeerWildcard => "binding.peer.wildcard",
            MatchedBy::GuildRoles => "binding.guild+roles",
            MatchedBy::Guild => "binding.guild",
            MatchedBy::Team => "binding.team",
            MatchedBy::Account => "binding.account",
            MatchedBy::Channel => "binding.channel",
            MatchedBy::Default => "default",
            MatchedBy::Broadcast => "broadcast",
        }
    }
}

/// Which session records the inbound "last route" (where replies go by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LastRoutePolicy {
    Main,
    Session,
}

impl LastRoutePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            LastRoutePolicy::Main => "main",
            LastRoutePolicy::Session => "session",
        }
    }
}

/// The outcome of routing one message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub agent_id: String,
    pub channel: String,
    pub account_id: String,
    pub dm_scope: DmScope,
    pub group_scope: GroupScope,
    pub session_key: String,
    pub main_session_key: String,
    pub last_route_policy: LastRoutePolicy,
    pub matched_by: MatchedBy,
    /// Index into the config's `bindings` of the binding that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding_index: Option<usize>,
}

pub type RouteResult = Result<Route, OwnerError>;
