//! What a channel adapter knows about an inbound message that routing uses.
//!
//! Must not: decide anything; it only describes and normalises an inbound message.

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
        PeerRef { kind: kind.into(), id: id.into() }
    }

    /// A peer whose kind the caller already knows (a channel adapter's event).
    pub fn of(kind: ChatType, id: impl Into<String>) -> Self {
        PeerRef { kind: kind.as_str().to_string(), id: id.into() }
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
    /// The thread (Slack thread, Telegram topic, Discord thread) the message is in.
    pub thread_id: Option<String>,
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
            key_kind: class.map(|c| c.as_str().to_string()).unwrap_or_else(|| peer.kind.clone()),
            id: normalize_binding_id(&peer.id),
        }
    }
}

/// An id in a JSON input: string, number, or `{"$bigint": "…"}`.
fn json_id(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => o.get("$bigint").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn json_peer(v: Option<&serde_json::Value>, field: &str) -> Result<Option<PeerRef>, String> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Object(o)) => Ok(Some(PeerRef {
            kind: o.get("kind").and_then(|k| k.as_str()).unwrap_or("").to_string(),
            id: o.get("id").and_then(json_id).unwrap_or_default(),
        })),
        Some(other) => Err(format!("`{field}` must be an object {{kind, id}}, found {other}")),
    }
}

impl RouteInput {
    /// Reads an input object in the conformance vectors' shape (`chela route --input`).
    pub fn from_json(v: &serde_json::Value) -> Result<RouteInput, String> {
        let obj = v.as_object().ok_or("the route input must be a JSON object")?;
        const KNOWN: &[&str] = &[
            "channel",
            "accountId",
            "peer",
            "parentPeer",
            "guildId",
            "teamId",
            "memberRoleIds",
            "dmScope",
            "groupScope",
            "defaultAgentId",
            "threadId",
        ];
        if let Some(unknown) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(format!("unknown route input key `{unknown}` (known: {})", KNOWN.join(", ")));
        }
        let s = |k: &str| obj.get(k).and_then(json_id);
        let channel = s("channel").ok_or("the route input needs `channel`")?;
        let dm_scope = match obj.get("dmScope").and_then(|v| v.as_str()) {
            Some(d) => Some(DmScope::parse(d).ok_or_else(|| format!("unknown dmScope `{d}`"))?),
            None => None,
        };
        let group_scope = match obj.get("groupScope").and_then(|v| v.as_str()) {
            Some(g) => Some(GroupScope::parse(g).ok_or_else(|| format!("unknown groupScope `{g}`"))?),
            None => None,
        };
        Ok(RouteInput {
            channel,
            account_id: s("accountId"),
            peer: json_peer(obj.get("peer"), "peer")?,
            parent_peer: json_peer(obj.get("parentPeer"), "parentPeer")?,
            guild_id: s("guildId"),
            team_id: s("teamId"),
            member_role_ids: obj
                .get("memberRoleIds")
                .and_then(|r| r.as_array())
                .map(|a| a.iter().filter_map(json_id).collect())
                .unwrap_or_default(),
            dm_scope,
            group_scope,
            default_agent_id: s("defaultAgentId"),
            thread_id: s("threadId"),
        })
    }
}

impl super::Route {
    /// The route in the conformance vectors' field names.
    pub fn to_vector_json(&self) -> serde_json::Value {
        serde_json::json!({
            "agentId": self.agent_id, "channel": self.channel, "accountId": self.account_id,
            "dmScope": self.dm_scope, "groupScope": self.group_scope, "sessionKey": self.session_key,
            "mainSessionKey": self.main_session_key, "lastRoutePolicy": self.last_route_policy,
            "matchedBy": self.matched_by,
        })
    }
}

impl crate::roster::OwnerError {
    /// `{"error": {name, code, message}}`, as the vectors write errors.
    pub fn to_vector_json(&self) -> serde_json::Value {
        let (name, code) = self.name_and_code();
        serde_json::json!({"error": {"name": name, "code": code, "message": self.to_string()}})
    }
}
