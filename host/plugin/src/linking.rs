//! Capability linking: for one agent (and session kind), which tool plugins
//! it gets and with exactly which capabilities.
//!
//! The core's tool policy decides which tool *names* the agent may use; this
//! module maps that to grants (workspace access, process, sessions, HTTP
//! hosts) and pre-links each allowed tool against a linker that holds only
//! those grants. A denied tool is never instantiated and never listed; a tool
//! that imports a capability the agent lacks is unavailable, with a reason.
//!
//! Must not: decide which tool names are allowed (core's policy does) or run a call (that is
//! `call`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chela_core::config::paths::{agent_workspace, Environment};
use chela_core::config::plugin_entry::PluginEntry;
use chela_core::config::schema::Config;
use chela_core::policy::{
    effective_tools, exec_confinement, host_exec_policy, reach, EffectiveTools, SessionKind, ToolCatalog,
};
use chela_core::roster::Roster;

use crate::bindings::ToolPluginAllPre;
use crate::call::{self, CallOutcome, ToolResult};
use crate::capability::kv::KvPlace;
use crate::capability::process::ProcessGrant;
use crate::capability::secrets::SecretStore;
use crate::capability::{Capability, GrantSet, HostServices, WorkspaceAccess};
use crate::guarded::CallError;
use crate::loader::{LoadedPlugin, PluginStatus, Plugins, ToolDescriptor};
use crate::state::PluginState;

/// A tool an agent can call, pre-linked with that agent's grants.
pub struct LinkedTool {
    pub descriptor: ToolDescriptor,
    pub plugin: Arc<LoadedPlugin>,
    pub grants: GrantSet,
    agent_id: String,
    pre: ToolPluginAllPre<PluginState>,
    secrets: Arc<SecretStore>,
    /// `plugins.entries.<id>.maxMemoryMb`, when set.
    memory_bytes: Option<usize>,
    services: HostServices,
}

/// A tool plugin that is loaded but not available to this agent, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unavailable {
    pub tool: String,
    pub plugin: String,
    pub reason: String,
}

/// The tools of one agent's session.
pub struct AgentTools {
    pub agent_id: String,
    pub policy: EffectiveTools,
    pub tools: Vec<LinkedTool>,
    pub unavailable: Vec<Unavailable>,
}

impl AgentTools {
    pub fn get(&self, name: &str) -> Option<&LinkedTool> {
        let name = chela_core::policy::normalize_tool_name(name);
        self.tools.iter().find(|t| t.descriptor.name == name)
    }

    /// What the model is shown: only the tools it may call.
    pub fn descriptors(&self) -> Vec<&ToolDescriptor> {
        self.tools.iter().map(|t| &t.descriptor).collect()
    }
}

/// What one session's tools are linked for: the agent, the kind of session,
/// and what only the turn knows — the spawning session (a sub-agent gets the
/// intersection of its own tools and its parent's) and whether the sender
/// may run commands elevated (`tools.elevated`).
#[derive(Clone)]
pub struct LinkRequest<'a> {
    pub agent_id: &'a str,
    pub kind: SessionKind,
    pub parent: Option<(&'a str, SessionKind)>,
    pub elevated: bool,
    /// The message's own stricter host exec rules (`/exec security=… ask=…`).
    pub exec: chela_core::policy::Tightening,
    /// What the `sessions` (the agent runtime's stores) and `messaging`
    /// (the gateway's channels) capabilities of these tools answer from.
    pub services: HostServices,
}

impl<'a> LinkRequest<'a> {
    pub fn new(agent_id: &'a str, kind: SessionKind) -> LinkRequest<'a> {
        LinkRequest {
            agent_id,
            kind,
            parent: None,
            elevated: false,
            exec: Default::default(),
            services: HostServices::default(),
        }
    }
}

/// The grants an agent's session holds: the core's `reach` of its tool policy.
pub fn agent_grants(cfg: &Config, env: &Environment, policy: &EffectiveTools, kind: &SessionKind) -> GrantSet {
    let r = reach(cfg, policy, kind);
    let mut grants = GrantSet::minimal().with(Capability::Kv).with(Capability::Secrets).with(Capability::Http);
    if r.sessions.any() {
        grants = grants.with(Capability::Sessions);
        grants.sessions = r.sessions;
    }
    if r.messaging {
        grants = grants.with(Capability::Messaging);
    }
    if r.automations {
        grants = grants.with(Capability::Automations);
    }
    let roster = Roster::from_config(cfg);
    let workspace = agent_workspace(cfg, &roster, &policy.agent_id, env);
    if r.workspace != WorkspaceAccess::None {
        // Created once here, at link time, not on every call: an agent's
        // workspace exists from its first session on (as the agent runtime does).
        if let Err(e) = std::fs::create_dir_all(&workspace) {
            tracing::warn!(agent = %policy.agent_id, dir = %workspace.display(), error = %e, "cannot create workspace");
        }
        grants.workspace = Some((workspace.clone(), r.workspace));
    }
    if r.processes {
        grants = grants.with(Capability::Process);
        // Without workspace access, commands get a scratch dir of their own.
        let (root, writable) = match r.workspace {
            WorkspaceAccess::None => (env.state_dir().join("sandboxes").join(&policy.agent_id), true),
            access => (workspace, access == WorkspaceAccess::Rw),
        };
        let config_path = env.config_path(|p| p.exists());
        grants.process = Some(ProcessGrant {
            root,
            writable,
            sandboxed: r.sandboxed,
            network: r.network,
            elevated: false,
            confinement: exec_confinement(cfg, env, &policy.agent_id, Some(&config_path)),
            policy: host_exec_policy(cfg, &policy.agent_id),
        });
    }
    grants
}

impl Plugins {
    /// Links the tool plugins for `agent_id`'s sessions of `kind`.
    /// `secrets` gives each plugin its secret scope.
    pub fn link_agent(
        &self,
        cfg: &Config,
        env: &Environment,
        agent_id: &str,
        kind: &SessionKind,
        secrets: &dyn Fn(&str) -> Arc<SecretStore>,
    ) -> AgentTools {
        self.link_session(cfg, env, &LinkRequest::new(agent_id, kind.clone()), secrets)
    }

    /// Links the tool plugins for one session as `request` describes.
    pub fn link_session(
        &self,
        cfg: &Config,
        env: &Environment,
        request: &LinkRequest<'_>,
        secrets: &dyn Fn(&str) -> Arc<SecretStore>,
    ) -> AgentTools {
        let plugins: Vec<Arc<LoadedPlugin>> = self.all().into_iter().filter(|p| p.tool.is_some()).collect();
        let catalog = plugins.iter().fold(ToolCatalog::core(), |c, p| {
            let name = p.tool.as_ref().map(|t| t.name.as_str()).unwrap_or_default();
            c.with_plugin(&p.id, &[name])
        });
        let kind = &request.kind;
        let mut policy = effective_tools(cfg, request.agent_id, kind, &catalog);
        if let Some((parent, parent_kind)) = &request.parent {
            policy = policy.intersect_with_parent(&effective_tools(cfg, parent, parent_kind, &catalog));
        }
        let agent_id = policy.agent_id.clone();
        let mut base = agent_grants(cfg, env, &policy, kind);
        base.exec_tightening = request.exec;
        if let Some(p) = base.process.as_mut() {
            p.elevated = request.elevated;
            p.policy = std::mem::take(&mut p.policy).tightened(&request.exec);
        }
        if request.exec.security == Some(chela_core::policy::Security::Deny) {
            // `/exec security=deny`: no command runs in this turn, in the
            // sandbox or out: the capability is not linked at all.
            base.capabilities.remove(&Capability::Process);
            base.process = None;
        }
        let mut tools: Vec<LinkedTool> = Vec::new();
        let mut unavailable = Vec::new();
        let mut taken: BTreeMap<String, String> = BTreeMap::new();
        for p in plugins {
            let Some(desc) = p.tool.clone() else { continue };
            let no = |reason: String| Unavailable { tool: desc.name.clone(), plugin: p.id.clone(), reason };
            let entry = PluginEntry::of(cfg, &p.id);
            if entry.enabled == Some(false) {
                unavailable.push(no(format!("disabled in config (plugins.entries.{}.enabled)", p.id)));
                continue;
            }
            if let PluginStatus::Disabled(why) = p.status() {
                unavailable.push(no(format!("plugin disabled: {why}")));
                continue;
            }
            if let Some(decision) = policy.tools.iter().find(|t| t.name == desc.name).filter(|t| !t.allowed) {
                let stage = decision.removed_by.clone().unwrap_or_else(|| "tool policy".into());
                unavailable.push(no(format!("denied by {stage}")));
                continue;
            }
            if let Some(owner) = taken.get(&desc.name) {
                unavailable.push(no(format!("tool name `{}` is already provided by plugin `{owner}`", desc.name)));
                continue;
            }
            let missing: Vec<String> = p
                .manifest
                .imports
                .iter()
                .filter_map(|(import, cap)| cap.filter(|c| !base.holds(*c)).map(|c| (import, c)))
                .map(|(import, c)| {
                    format!("capability `{}` (import `{import}`): agent `{agent_id}` does not hold it", c.as_str())
                })
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if !missing.is_empty() {
                unavailable.push(no(format!("needs {}", missing.join("; "))));
                continue;
            }
            let mut grants = base.clone();
            // The operator's allowHosts is the grant; the hosts a tool declares are only a request.
            grants.http_hosts = entry.allow_hosts.clone().unwrap_or_default();
            grants.kv = Some(KvPlace {
                dir: env.state_dir().join("plugins").join("kv").join(&p.id).join(format!("agent-{agent_id}")),
                scope: format!("{}/agent-{agent_id}", p.id),
            });
            // Link only what this plugin imports: the linker never holds more than it needs.
            grants.capabilities.retain(|c| *c == Capability::Log || p.manifest.needs.contains(c));
            match self.pre_for(&p, &grants.link_shape()) {
                Ok(pre) => {
                    taken.insert(desc.name.clone(), p.id.clone());
                    tools.push(LinkedTool {
                        descriptor: desc,
                        plugin: p.clone(),
                        grants,
                        agent_id: agent_id.clone(),
                        pre,
                        secrets: secrets(&p.id),
                        memory_bytes: entry.memory_bytes(),
                        services: request.services.clone(),
                    })
                }
                Err(e) => unavailable.push(no(e)),
            }
        }
        AgentTools { agent_id, policy, tools, unavailable }
    }
}

impl LinkedTool {
    /// Calls the tool in a fresh instance with this agent's grants.
    pub async fn invoke(
        &self,
        plugins: &Plugins,
        session_key: &str,
        call_id: &str,
        arguments: &str,
    ) -> Result<CallOutcome<ToolResult>, CallError> {
        let engine = plugins.engine();
        let cx = Plugins::context(&self.agent_id, session_key, call_id);
        let scope = call::CallScope {
            plugin_id: &self.plugin.id,
            agent_id: &self.agent_id,
            grants: &self.grants,
            secrets: self.secrets.clone(),
            kv: self.grants.kv.as_ref().map(|place| plugins.kv_home().open(place)),
            services: self.services.clone(),
            memory_bytes: self.memory_bytes,
        };
        call::invoke(engine, &self.pre, &self.plugin.health, scope, cx, arguments).await
    }
}
