//! Host capabilities: what a plugin may be linked with.
//!
//! Each capability is one module with the same shape (Spin's factors are
//! the model): it owns its per-instance state (`KvState`, `SecretsState`,
//! `SessionsState`, `MessagingState`, `ProcessState`, `LogState`; a view over shared parts
//! for `websocket` and `http`), builds it from the grant, implements its WIT
//! host trait on that state, and offers `add_to_linker` over any store data
//! given a projection to it. `crate::state` composes the states into one
//! store's data and builds linkers of exactly a grant's shape. Adding a
//! capability is one module, one enum variant and one field there.
//!
//! Must not: know the store's data type (`PluginState`) or one another's state.

pub mod automations;
pub mod egress;
pub mod http;
pub mod kv;
mod kv_files;
mod kv_log;
pub mod log;
pub mod messaging;
pub mod process;
pub mod secrets;
pub mod sessions;
pub mod websocket;
pub mod workspace;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

pub use chela_core::config::schema::WorkspaceAccess;
pub use chela_core::policy::SessionRights;

/// A capability a plugin can import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    Log,
    Kv,
    Secrets,
    Http,
    Process,
    Sessions,
    Websocket,
    Messaging,
    Automations,
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Kv => "kv",
            Capability::Secrets => "secrets",
            Capability::Http => "http",
            Capability::Process => "process",
            Capability::Sessions => "sessions",
            Capability::Websocket => "websocket",
            Capability::Messaging => "messaging",
            Capability::Automations => "automations",
        }
    }

    /// The capability a component import needs. `Ok(None)`: always linked
    /// (WASI basics, shared types). `Err`: an import this host does not know.
    pub fn for_import(name: &str) -> Result<Option<Capability>, String> {
        let bare = name.split('@').next().unwrap_or(name);
        Ok(Some(match bare {
            "chela:plugin/log" => Capability::Log,
            "chela:plugin/kv" => Capability::Kv,
            "chela:plugin/secrets" => Capability::Secrets,
            "chela:plugin/process" => Capability::Process,
            "chela:plugin/sessions" => Capability::Sessions,
            "chela:plugin/websocket" => Capability::Websocket,
            "chela:plugin/messaging" => Capability::Messaging,
            "chela:plugin/automations" => Capability::Automations,
            // Type-only interfaces: nothing to link.
            "chela:plugin/types" | "chela:plugin/channel-types" => return Ok(None),
            b if b.starts_with("wasi:http/") => Capability::Http,
            // The filesystem has no preopens unless the workspace is granted;
            // sockets are denied by the WASI context. Both may be imported.
            b if ["wasi:cli/", "wasi:io/", "wasi:clocks/", "wasi:random/", "wasi:filesystem/", "wasi:sockets/"]
                .iter()
                .any(|p| b.starts_with(p)) =>
            {
                return Ok(None)
            }
            _ => return Err(format!("unknown import `{name}`")),
        }))
    }
}

/// The host services behind the capabilities the embedding host answers
/// (the agent runtime its stores, the gateway its channels); `None`: calls
/// to that capability fail as unavailable.
#[derive(Clone, Default)]
pub struct HostServices {
    pub sessions: Option<Arc<dyn sessions::SessionsAccess>>,
    pub messaging: Option<Arc<dyn messaging::MessagingAccess>>,
    pub automations: Option<Arc<dyn automations::AutomationsAccess>>,
    /// Where host commands that need an approval are asked for.
    pub exec_approvals: Option<Arc<dyn process::ExecApprovals>>,
}

/// What one agent's plugin instances may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantSet {
    pub capabilities: BTreeSet<Capability>,
    pub workspace: Option<(PathBuf, WorkspaceAccess)>,
    /// Hosts the operator allowed (`allowHosts`, configured base URLs):
    /// `host`, `host:port`, `*.domain`, IP literals and loopback included.
    pub http_hosts: Vec<String>,
    /// Hosts granted from a first-party channel's own defaults: public DNS
    /// names only (see `egress.rs`).
    pub public_hosts: Vec<String>,
    /// Where this scope's key-value state is kept.
    pub kv: Option<kv::KvPlace>,
    /// How commands run, when `Process` is granted.
    pub process: Option<process::ProcessGrant>,
    /// Which `sessions` functions may be called, when `Sessions` is granted.
    pub sessions: SessionRights,
    /// The turn's own stricter exec rules (`/exec security=… ask=…`), which
    /// a sub-agent spawned in the turn inherits.
    pub exec_tightening: chela_core::policy::Tightening,
}

impl GrantSet {
    /// Log only: the least a plugin instance gets.
    pub fn minimal() -> GrantSet {
        GrantSet {
            capabilities: BTreeSet::from([Capability::Log]),
            workspace: None,
            http_hosts: Vec::new(),
            public_hosts: Vec::new(),
            kv: None,
            process: None,
            sessions: SessionRights::default(),
            exec_tightening: Default::default(),
        }
    }

    pub fn with(mut self, c: Capability) -> GrantSet {
        self.capabilities.insert(c);
        self
    }

    pub fn holds(&self, c: Capability) -> bool {
        self.capabilities.contains(&c)
    }

    /// The part of the grant that shapes the linker (the rest is per-store data).
    pub fn link_shape(&self) -> BTreeSet<Capability> {
        self.capabilities.clone()
    }
}
