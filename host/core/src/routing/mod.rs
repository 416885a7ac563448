//! Routing: which agent answers an inbound message, and in which session.
//!
//! [`RouteTable::build`] compiles a config snapshot once into per-(channel,
//! account) tier indexes; [`RouteTable::resolve`] then costs a few hash
//! lookups whatever the number of bindings. [`RouteTable::explain`] walks the
//! same tiers with a tracer to say why each tier did or did not match.
//! Routing never drops a message: "no route" is the default agent, or an
//! [`OwnerError`] when the config leaves ownership ambiguous.
//!
//! Must not: look at access policy or session stores, or drop a message silently.

mod audit;
mod dispatch;
mod explain;
mod input;
mod ownership;
mod table;
mod target;

pub use audit::{BindingAudit, Standing};
pub use dispatch::{BroadcastOrder, Dispatch};
pub use explain::{CandidateVerdict, Explanation, TierOutcome, TierTrace};
pub use input::{PeerRef, RouteInput};
pub use table::RouteTable;
pub use target::{main_key, ForeignSession, SessionTarget};

use crate::config::schema::{DmScope, GroupScope};
use crate::ids::ChatType;
use crate::policy::SessionKind;
use crate::roster::OwnerError;
use crate::session_key::SessionKey;

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

/// The outcome of routing one message: everything the gateway and the agent
/// need to run its turn, decided here and nowhere else.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub agent_id: String,
    pub channel: String,
    pub account_id: String,
    pub dm_scope: DmScope,
    pub group_scope: GroupScope,
    /// The session the turn runs in (the thread's own when the message is in one).
    pub session_key: SessionKey,
    pub main_session_key: SessionKey,
    pub last_route_policy: LastRoutePolicy,
    pub matched_by: MatchedBy,
    /// The kind of chat (an unknown peer kind, or no peer, is `direct`).
    pub chat_type: ChatType,
    /// The thread the message is in, when the platform has threads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// The kind of session, for tool policy and the sandbox.
    pub session_kind: SessionKind,
    /// Index into the config's `bindings` of the binding that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding_index: Option<usize>,
}

pub type RouteResult = Result<Route, OwnerError>;
