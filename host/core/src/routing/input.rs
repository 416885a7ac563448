//! What a channel adapter knows about an inbound message that routing uses.

use crate::config::schema::{DmScope, GroupScope};
use crate::ids::{normalize_binding_id, normalize_chat_type, ChatType};

/// A chat peer as the platform reports it (`kind` is kept raw: unknown kinds
/// still shape the session key, they just never match a peer binding).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct PeerRef {
    pub kind: String,
    pub id: String,
}

impl PeerRef {
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Self {
        PeerRef {
            kind: kind.into(),
            id: id.into(),
        }
    }
}

/// Routing input, in the vectors' field names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteInput {
    pub channel: String,
    pub account_id: Option<String>,
    pub peer: Option<PeerRef>,
    /// The parent chat of a thread (Discord/Slack threads inherit its binding).
    pub parent_peer: Option<PeerRef>,
    pub guild_id: Option<String>,
    pub team_id: Option<String>,
    pub member_role_ids: Vec<String>,
    /// Caller override of `session.dmScope` (a channel may demand stronger isolation).
    pub dm_scope: Option<DmScope>,
    pub group_scope: Option<GroupScope>,
    /// Caller-supplied owner when no binding matches.
    pub default_agent_id: Option<String>,
}

/// A peer after normalisation: `class` is `None` for kinds OpenClaw does not know.
#[derive(Debug, Clone)]
pub(crate) struct NormPeer {
    pub class: Option<ChatType>,
    /// The kind written into session keys: canonical when known, else as given.
    pub key_kind: String,
    pub id: String,
}

impl NormPeer {
    pub fn from(peer: &PeerRef) -> NormPeer {
        let class = normalize_chat_type(&peer.kind);
        NormPeer {
            class,
            key_kind: class
                .map(|c| c.as_str().to_string())
                .unwrap_or_else(|| peer.kind.clone()),
            id: normalize_binding_id(&peer.id),
        }
    }
}
