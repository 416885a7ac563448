//! Where a turn runs: the agent, its session key, its main key, the kind of
//! session and the kind of chat. A routed message gets it from its [`Route`];
//! turns that no platform message starts (the CLI, the control and OpenAI
//! APIs, sub-agents, agent-to-agent messages) get it from a key built by
//! [`SessionKey`]'s constructors.
//!
//! Must not: parse a key to learn what routing already knew — a routed
//! message's target is copied from its route, never re-derived.

use super::Route;
use crate::config::schema::Config;
use crate::ids::{normalize_agent_id, ChatType};
use crate::policy::{session_kind_for_key, SessionKind};
use crate::session_key::SessionKey;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionTarget {
    pub agent_id: String,
    pub key: SessionKey,
    pub main_key: SessionKey,
    pub kind: SessionKind,
    pub chat_type: ChatType,
}

impl Route {
    /// The turn this route runs.
    pub fn target(&self) -> SessionTarget {
        SessionTarget {
            agent_id: self.agent_id.clone(),
            key: self.session_key.clone(),
            main_key: self.main_session_key.clone(),
            kind: self.session_kind.clone(),
            chat_type: self.chat_type,
        }
    }
}

impl SessionTarget {
    /// An agent's main session (`chela send`, the control API without a key).
    pub fn main(cfg: &Config, agent_id: &str) -> SessionTarget {
        let agent_id = normalize_agent_id(Some(agent_id));
        let main = SessionKey::main(&agent_id, main_key(cfg));
        SessionTarget {
            agent_id,
            key: main.clone(),
            main_key: main,
            kind: SessionKind::Main,
            chat_type: ChatType::Direct,
        }
    }

    /// A session named by its key (an API or sub-agent key, a key read back
    /// from a store): its agent is the key's, its kind the key's shape.
    pub fn of_key(cfg: &Config, key: SessionKey, chat_type: ChatType) -> SessionTarget {
        let agent_id = key.agent_id();
        let main = SessionKey::main(&agent_id, main_key(cfg));
        let kind = session_kind_for_key(cfg, &agent_id, key.as_str(), main.as_str());
        SessionTarget { agent_id, key, main_key: main, kind, chat_type }
    }
}

/// A caller named a session of another agent than the one it asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session `{key}` belongs to agent `{owner}`, not `{agent}`")]
pub struct ForeignSession {
    pub key: SessionKey,
    pub owner: String,
    pub agent: String,
}

impl SessionTarget {
    /// The session a control-API or CLI caller names for an agent: its main
    /// session, or the key given (short forms such as `main` allowed), which
    /// must belong to that agent.
    pub fn requested(cfg: &Config, agent_id: &str, session_key: Option<&str>) -> Result<SessionTarget, ForeignSession> {
        let agent = normalize_agent_id(Some(agent_id));
        let Some(raw) = session_key else { return Ok(SessionTarget::main(cfg, &agent)) };
        let key = SessionKey::requested(&agent, Some(raw), main_key(cfg));
        if key.agent_id() != agent {
            return Err(ForeignSession { owner: key.agent_id(), key, agent });
        }
        Ok(SessionTarget::of_key(cfg, key, ChatType::Direct))
    }
}

/// `session.mainKey`.
pub fn main_key(cfg: &Config) -> Option<&str> {
    cfg.session.as_ref().and_then(|s| s.main_key.as_deref())
}
