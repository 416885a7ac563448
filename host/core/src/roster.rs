//! The configured agents, and who owns a message when a binding or the
//! caller names no one.
//!
//! Two roster shapes exist: `agents.list[]` (OpenClaw ≤ E3, the seeds) and
//! `agents.entries.<id>` (E4). For the list shape chela follows the
//! documented default rule — the entry marked `default: true`, else the first
//! entry, else `main` — where OpenClaw 2026.9 raises `AGENT_SELECTION_REQUIRED`
//! (conformance README, "where chela deliberately differs" 1). The entries
//! shape keeps E4's explicit-ownership rules.
//!
//! Must not: route messages (routing asks the roster) or read files.

use crate::config::schema::Config;
use crate::ids::{js_trim, normalize_agent_id, DEFAULT_AGENT_ID};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RosterShape {
    /// No `agents.list` or `agents.entries` at all: single-agent mode, one
    /// implicit agent `main` (routing still names whatever a binding says).
    Unconfigured,
    List,
    Entries,
}

#[derive(Debug, Clone)]
pub struct RosterEntry {
    /// The id as configured (for messages).
    pub raw_id: String,
    /// The canonical id (`normalize_agent_id`).
    pub id: String,
    pub default: bool,
}

/// Why no single agent could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnerError {
    #[error("Multiple agents are configured, but route binding has no explicit owner. Update the binding agentId \"{0}\" to a configured agent.")]
    UnknownAgent(String),
    #[error("Multiple agents are configured, but agent lookup has no explicit owner. Pass an explicit agent id instead of relying on an implicit route.")]
    NoExplicitAgent,
    #[error("Multiple agents are configured, but {channel} account {account} routing has no explicit owner. Add a channel-wide binding for {channel}:{account}: {{\"agentId\":\"<agentId>\",\"match\":{{\"channel\":\"{channel}\",\"accountId\":\"{account}\"}}}}. Replace <agentId> with a configured agent, then restart the Gateway.")]
    NoAccountOwner { channel: String, account: String },
    #[error("No agents configured. Run `chela agents add` first.")]
    NoAgents,
}

impl OwnerError {
    /// OpenClaw's error name and code, for `--json` output and the vectors.
    pub fn name_and_code(&self) -> (&'static str, Option<&'static str>) {
        match self {
            OwnerError::NoAgents => ("Error", None),
            _ => ("AgentSelectionRequiredError", Some("AGENT_SELECTION_REQUIRED")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Roster {
    pub shape: RosterShape,
    pub entries: Vec<RosterEntry>,
    /// `agents.ownership: "explicit"`: no implicit default among several agents.
    pub explicit_ownership: bool,
    /// `agents.defaults.systemAgent.agentId`.
    pub system_agent: Option<String>,
    /// Single-agent mode's agent `main`, which exists without being listed.
    implicit: Option<RosterEntry>,
}

impl Roster {
    pub fn from_config(cfg: &Config) -> Roster {
        let agents = cfg.agents.as_ref();
        let explicit_ownership = agents.and_then(|a| a.ownership.as_deref()) == Some("explicit");
        let system_agent = agents
            .and_then(|a| a.defaults.as_ref())
            .and_then(|d| d.system_agent.as_ref())
            .and_then(|s| s.agent_id.clone());
        let (shape, entries) = match agents {
            Some(a) if a.entries.is_some() => {
                let entries = a.entries.iter().flatten().map(|(k, v)| entry(k, v.default.unwrap_or(false))).collect();
                (RosterShape::Entries, entries)
            }
            Some(a) if a.list.is_some() => {
                let entries = a
                    .list
                    .iter()
                    .flatten()
                    // An entry without an id is OpenClaw's agent `main` (validation warns).
                    .map(|v| entry(v.id.as_deref().or(v.agent_id.as_deref()).unwrap_or(""), v.default.unwrap_or(false)))
                    .collect();
                (RosterShape::List, entries)
            }
            _ => (RosterShape::Unconfigured, Vec::new()),
        };
        let implicit = (shape == RosterShape::Unconfigured).then(|| entry(DEFAULT_AGENT_ID, true));
        Roster { shape, entries, explicit_ownership, system_agent, implicit }
    }

    /// The agent `id`, if it exists: a configured one, or single-agent
    /// mode's implicit `main`. The one answer to "does agent X exist?".
    pub fn find(&self, id: &str) -> Option<&RosterEntry> {
        let norm = normalize_agent_id(Some(id));
        self.entries.iter().find(|e| e.id == norm).or(self.implicit.as_ref().filter(|e| e.id == norm))
    }

    /// The agent ids, canonical and without duplicates, in config order.
    pub fn ids(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in &self.entries {
            if !out.contains(&e.id) {
                out.push(e.id.clone());
            }
        }
        if out.is_empty() {
            out.push(DEFAULT_AGENT_ID.to_string());
        }
        out
    }

    /// The agent named by a binding or a caller. Unknown names are an error,
    /// never a silent fallback (OpenClaw issue #13423).
    pub fn pick(&self, agent_id: Option<&str>) -> Result<String, OwnerError> {
        let trimmed = js_trim(agent_id.unwrap_or(""));
        if trimmed.is_empty() {
            if let Some(system) = self.system_agent.as_deref().filter(|d| !js_trim(d).is_empty()) {
                return self.pick(Some(system));
            }
            return match self.shape {
                RosterShape::Unconfigured => Ok(DEFAULT_AGENT_ID.to_string()),
                RosterShape::List if !self.explicit_ownership => self.default_agent_for_list(),
                _ if self.entries.len() == 1 => Ok(self.entries[0].id.clone()),
                _ => Err(OwnerError::NoExplicitAgent),
            };
        }
        // OpenClaw's lookup knows only entries written with an id: with none, any name stands.
        if !self.entries.iter().any(RosterEntry::has_id) {
            return Ok(normalize_agent_id(Some(trimmed)));
        }
        if let Some(e) = self.find(trimmed) {
            return Ok(e.id.clone());
        }
        if normalize_agent_id(Some(trimmed)) == DEFAULT_AGENT_ID {
            return Ok(DEFAULT_AGENT_ID.to_string());
        }
        Err(OwnerError::UnknownAgent(trimmed.to_string()))
    }

    /// Who owns a message no binding matched, on `channel`/`account`: the
    /// caller's default, else `agents.defaults.systemAgent`, else the roster's
    /// implicit default where the shape has one.
    pub fn default_owner(
        &self,
        caller_default: Option<&str>,
        channel: &str,
        account: &str,
    ) -> Result<String, OwnerError> {
        if let Some(d) = caller_default.filter(|d| !js_trim(d).is_empty()) {
            return self.pick(Some(d));
        }
        if let Some(system) = self.system_agent.as_deref().filter(|d| !js_trim(d).is_empty()) {
            return self.pick(Some(system));
        }
        let ambiguous = || OwnerError::NoAccountOwner { channel: channel.to_string(), account: account.to_string() };
        match self.shape {
            RosterShape::Unconfigured => Ok(DEFAULT_AGENT_ID.to_string()),
            RosterShape::List if !self.explicit_ownership => self.default_agent_for_list(),
            RosterShape::List if self.entries.is_empty() => Err(OwnerError::NoAgents),
            _ if self.entries.len() == 1 => Ok(self.entries[0].id.clone()),
            RosterShape::List => Err(ambiguous()),
            RosterShape::Entries => {
                let mut marked = self.entries.iter().filter(|e| e.default);
                match (self.explicit_ownership, marked.next(), marked.next()) {
                    (false, Some(only), None) => Ok(only.id.clone()),
                    _ => Err(ambiguous()),
                }
            }
        }
    }

    /// The documented rule: `default: true`, else the first entry (`main` if none).
    pub fn default_agent(&self) -> String {
        self.entries
            .iter()
            .find(|e| e.default)
            .or(self.entries.first())
            .map(|e| e.id.clone())
            .unwrap_or_else(|| DEFAULT_AGENT_ID.to_string())
    }

    fn default_agent_for_list(&self) -> Result<String, OwnerError> {
        if self.entries.is_empty() {
            return Err(OwnerError::NoAgents);
        }
        Ok(self.default_agent())
    }
}

impl RosterEntry {
    /// Whether the entry was written with an id (one without is agent `main`).
    pub fn has_id(&self) -> bool {
        !js_trim(&self.raw_id).is_empty()
    }
}

fn entry(raw: &str, default: bool) -> RosterEntry {
    RosterEntry { raw_id: raw.to_string(), id: normalize_agent_id(Some(raw)), default }
}
