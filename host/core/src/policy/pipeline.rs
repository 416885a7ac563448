//! The staged tool-policy pipeline (reference spec §10.5): profile →
//! provider profile → global → global provider → agent → agent provider →
//! group → sandbox → sub-agent. A tool is available only if every stage
//! allows it, so a later stage can remove but never re-grant. Each removed
//! tool records the first stage that removed it (`chela tools` prints it).
//!
//! Must not: re-grant a tool a later stage sees removed, or know which plugins exist (the catalog
//! is passed in).

use super::catalog::{
    normalize_tool_name, profile_allow, ToolCatalog, CHANNEL_TOOLS, SANDBOX_DEFAULT_ALLOW, SANDBOX_DEFAULT_DENY,
    SUBAGENT_DEFAULT_DENY,
};
use super::matcher::ToolMatcher;
use crate::config::schema::{
    AgentConfig, AgentToolsConfig, Config, ProviderToolPolicy, SandboxMode, ToolList, ToolsConfig, WorkspaceAccess,
};
use crate::ids::normalize_agent_id;
use crate::session_key::parse_agent_session_key;

/// The kind of session the tools are for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum SessionKind {
    /// The agent's main session (DMs under `dmScope: main`).
    Main,
    /// A group or channel chat; `groups.<id>.tools` of the channel apply.
    Group { channel: String, group_id: String },
    /// Any session that runs sandboxed (forces the sandbox stage).
    Sandboxed,
    /// A sub-agent spawned by this agent.
    Subagent,
}

impl SessionKind {
    pub fn label(&self) -> String {
        match self {
            SessionKind::Main => "main".into(),
            SessionKind::Group { channel, group_id } => format!("group {channel}:{group_id}"),
            SessionKind::Sandboxed => "sandboxed".into(),
            SessionKind::Subagent => "sub-agent".into(),
        }
    }
}

/// One tool's verdict.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolDecision {
    pub name: String,
    pub allowed: bool,
    /// The first stage that removed it, e.g. `agents.list[work].tools.deny`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_by: Option<String>,
}

/// The tools an agent's session may use, and why the others are missing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveTools {
    pub agent_id: String,
    pub session: String,
    pub sandboxed: bool,
    pub tools: Vec<ToolDecision>,
    /// Stages that were dropped or adjusted, with why.
    pub notes: Vec<String>,
}

impl EffectiveTools {
    pub fn allowed(&self) -> impl Iterator<Item = &str> {
        self.tools.iter().filter(|t| t.allowed).map(|t| t.name.as_str())
    }

    pub fn allows(&self, name: &str) -> bool {
        let name = normalize_tool_name(name);
        self.tools.iter().any(|t| t.allowed && t.name == name)
    }

    /// A sub-agent gets the intersection of its parent's tools and its own, never more.
    pub fn intersect_with_parent(mut self, parent: &EffectiveTools) -> EffectiveTools {
        for t in &mut self.tools {
            if t.allowed && !parent.allows(&t.name) {
                t.allowed = false;
                t.removed_by = Some(format!("parent agent `{}` does not have it", parent.agent_id));
            }
        }
        self
    }
}

struct Stage {
    label: String,
    matcher: ToolMatcher,
}

fn strings(v: &Option<Vec<String>>) -> Vec<String> {
    v.clone().unwrap_or_default()
}

/// The `provider` and `provider/model` of an agent's primary model.
fn model_keys(cfg: &Config, agent: Option<&AgentConfig>) -> Vec<String> {
    let model = agent
        .and_then(|a| a.model.as_ref())
        .or_else(|| cfg.agent_defaults()?.model.as_ref())
        .and_then(|m| m.primary())
        .map(str::to_lowercase);
    match model {
        Some(m) => match m.split_once('/') {
            Some((provider, _)) => vec![m.clone(), provider.to_string()],
            None => vec![m],
        },
        None => Vec::new(),
    }
}

/// `byProvider[provider/model]`, else `byProvider[provider]` (keys lowercased).
fn by_provider<'a>(
    map: Option<&'a indexmap::IndexMap<String, ProviderToolPolicy>>,
    keys: &[String],
) -> Option<(String, &'a ProviderToolPolicy)> {
    let map = map?;
    keys.iter().find_map(|k| map.iter().find(|(mk, _)| mk.to_lowercase() == *k).map(|(mk, v)| (mk.clone(), v)))
}

/// The agent's `sandbox.mode` (its own, else the defaults', else off).
pub fn sandbox_mode(cfg: &Config, agent_id: &str) -> SandboxMode {
    let id = normalize_agent_id(Some(agent_id));
    let agent = cfg.agent(&id).map(|(_, a)| a);
    agent
        .and_then(|a| a.sandbox.as_ref()?.mode)
        .or_else(|| cfg.agent_defaults()?.sandbox.as_ref()?.mode)
        .unwrap_or_default()
}

/// Whether an agent's session of this kind runs sandboxed (§11).
pub fn is_sandboxed(cfg: &Config, agent_id: &str, kind: &SessionKind) -> bool {
    match (sandbox_mode(cfg, agent_id), kind) {
        (_, SessionKind::Sandboxed) => true,
        (SandboxMode::Off, _) => false,
        (SandboxMode::All, _) => true,
        (SandboxMode::NonMain, SessionKind::Main) => false,
        (SandboxMode::NonMain, _) => true,
    }
}

/// The one rule for a session's kind: the main key is `Main`; a sub-agent's
/// key is `Subagent`; a group or channel chat is a `Group` of its channel;
/// any other (per-peer DM, thread, API) session is non-main, so it runs
/// sandboxed whenever the agent's sandbox mode is not `off`.
pub fn classify_session(
    is_main: bool,
    is_subagent: bool,
    group: Option<(&str, &str)>,
    mode: SandboxMode,
) -> SessionKind {
    if is_main {
        return SessionKind::Main;
    }
    if is_subagent {
        return SessionKind::Subagent;
    }
    if let Some((channel, group_id)) = group {
        return SessionKind::Group { channel: channel.to_string(), group_id: group_id.to_string() };
    }
    match mode {
        SandboxMode::Off => SessionKind::Main,
        _ => SessionKind::Sandboxed,
    }
}

/// The kind of a session known only by its stored key (sessions read back
/// from a store, keys named by tools and API callers): [`classify_session`]
/// on the key's shape, `…:<channel>:[<account>:]group|channel:<id>…` being a
/// group of that channel. Routed messages do not come here: routing
/// classifies them from the message itself (`Route::session_kind`).
pub fn session_kind_for_key(cfg: &Config, agent_id: &str, session_key: &str, main_session_key: &str) -> SessionKind {
    let rest = parse_agent_session_key(session_key).map(|p| p.rest).unwrap_or_else(|| session_key.to_string());
    let tokens: Vec<&str> = rest.split(':').collect();
    let group = tokens
        .iter()
        .position(|t| *t == "group" || *t == "channel")
        .filter(|i| *i >= 1)
        .and_then(|i| Some((tokens[0], *tokens.get(i + 1)?)));
    classify_session(session_key == main_session_key, rest.starts_with("subagent:"), group, sandbox_mode(cfg, agent_id))
}

/// Whether the `sessions_*` tools of `caller_key` (agent `caller_agent`) may
/// see `target_key` (reference §10.7): `tools.sessions.visibility` is `self`,
/// `tree` (default: itself and the sessions it spawned), `agent` (all of the
/// caller agent's) or `all` (also other agents', where agent-to-agent allows
/// both). A sandboxed session sees at most its tree unless
/// `sandbox.sessionToolsVisibility` is `all`.
pub fn session_visible(
    cfg: &Config,
    caller_agent: &str,
    caller_key: &str,
    sandboxed: bool,
    target_key: &str,
    target_spawned_by: Option<&str>,
) -> bool {
    let caller = normalize_agent_id(Some(caller_agent));
    let target_agent = parse_agent_session_key(target_key).map(|p| p.agent_id);
    let same_agent = target_agent.as_deref() == Some(caller.as_str());
    let in_tree = target_key == caller_key || target_spawned_by == Some(caller_key);
    let visibility =
        cfg.tools.as_ref().and_then(|t| t.sessions.as_ref()?.visibility.clone()).unwrap_or_else(|| "tree".to_string());
    let sandbox_all = cfg
        .agent(&caller)
        .and_then(|(_, a)| a.sandbox.as_ref()?.session_tools_visibility.clone())
        .or_else(|| cfg.agent_defaults()?.sandbox.as_ref()?.session_tools_visibility.clone())
        .is_some_and(|v| v == "all");
    if sandboxed && !sandbox_all && !in_tree {
        return false;
    }
    match visibility.as_str() {
        "self" => target_key == caller_key,
        "agent" => same_agent,
        "all" => same_agent || target_agent.is_some_and(|t| agent_to_agent_allowed(cfg, &caller, &t)),
        _ => in_tree,
    }
}

/// Whether a reply of `agent_id` in a session of `kind` may attach files
/// from its workspace (`MEDIA:` lines): only when its tool policy lets it
/// `read` them, as OpenClaw's file-read policy decides for attachments.
pub fn may_attach_files(cfg: &Config, agent_id: &str, kind: &SessionKind) -> bool {
    effective_tools(cfg, agent_id, kind, &ToolCatalog::core()).allows("read")
}

/// The workspace access of an agent's sandbox (`none` unless configured).
pub fn workspace_access(cfg: &Config, agent_id: &str) -> WorkspaceAccess {
    let id = normalize_agent_id(Some(agent_id));
    cfg.agent(&id)
        .and_then(|(_, a)| a.sandbox.as_ref()?.workspace_access)
        .or_else(|| cfg.agent_defaults()?.sandbox.as_ref()?.workspace_access)
        .unwrap_or_default()
}

/// `groups.<id>.tools` (or `groups["*"].tools`) of the channel, all accounts merged.
fn group_tools(cfg: &Config, channel: &str, group_id: &str) -> Option<(String, ToolList)> {
    let ch = cfg.channels.as_ref()?.get(channel)?;
    let accounts = ch.accounts.iter().flat_map(|a| a.values());
    for groups in std::iter::once(&ch.top).chain(accounts).filter_map(|a| a.groups.as_ref()) {
        for key in [group_id, "*"] {
            if let Some(tools) = groups.get(key).and_then(|g| g.get("tools")) {
                let list: Option<ToolList> = serde_json::from_value::<ToolList>(tools.clone()).ok();
                if let Some(list) = list {
                    return Some((format!("channels.{channel}.groups.{key}.tools"), list));
                }
            }
        }
    }
    None
}

/// Computes the effective tool set of `agent_id` for a session of `kind`:
/// the stages below in OpenClaw's order, a tool surviving only if every stage allows it.
pub fn effective_tools(cfg: &Config, agent_id: &str, kind: &SessionKind, catalog: &ToolCatalog) -> EffectiveTools {
    let id = normalize_agent_id(Some(agent_id));
    let entry = cfg.agent(&id);
    let agent = entry.as_ref().map(|(_, a)| *a);
    let mut p = Pipeline {
        catalog,
        agent_path: entry.as_ref().map(|(p, _)| p.clone()).unwrap_or_else(|| format!("agent `{id}`")),
        global: cfg.tools.clone().unwrap_or_default(),
        agent: agent.and_then(|a| a.tools.clone()).unwrap_or_default(),
        model_keys: model_keys(cfg, agent),
        stages: Vec::new(),
        notes: Vec::new(),
    };
    p.profile();
    p.provider_profile();
    p.allow_deny_lists();
    if let SessionKind::Group { channel, group_id } = kind {
        if let Some((label, list)) = group_tools(cfg, channel, group_id) {
            p.list(label, &list.allow, &list.deny);
        }
    }
    let sandboxed = is_sandboxed(cfg, &id, kind);
    if sandboxed {
        p.sandbox(workspace_access(cfg, &id));
    }
    if *kind == SessionKind::Subagent {
        p.subagent();
    }
    let tools = catalog
        .names()
        .map(|name| {
            let removed_by = p.stages.iter().find(|s| !s.matcher.allows(name)).map(|s| s.label.clone());
            ToolDecision { name: name.to_string(), allowed: removed_by.is_none(), removed_by }
        })
        .collect();
    EffectiveTools { agent_id: id, session: kind.label(), sandboxed, tools, notes: p.notes }
}

/// The stages of one agent's tool policy, as they are gathered.
struct Pipeline<'a> {
    catalog: &'a ToolCatalog,
    /// Where the agent is configured (`agents.list[2]`), for stage labels.
    agent_path: String,
    global: ToolsConfig,
    agent: AgentToolsConfig,
    /// `provider/model` and `provider` of the agent's primary model, for `byProvider`.
    model_keys: Vec<String>,
    stages: Vec<Stage>,
    notes: Vec<String>,
}

impl Pipeline<'_> {
    fn push(&mut self, label: String, allow: &[String], deny: &[String]) {
        self.stages.push(Stage { label, matcher: ToolMatcher::new(allow, deny, self.catalog) });
    }

    /// 1. Profile (the agent's replaces the global one), widened by `alsoAllow`.
    fn profile(&mut self) {
        let (profile, label) = match (&self.agent.profile, &self.global.profile) {
            (Some(p), _) => (p.clone(), format!("{}.tools.profile ({p})", self.agent_path)),
            (None, Some(p)) => (p.clone(), format!("tools.profile ({p})")),
            _ => return,
        };
        if let Some(base) = profile_allow(&profile) {
            let mut allow: Vec<String> = base.iter().map(|s| s.to_string()).collect();
            allow.extend(strings(&self.agent.also_allow));
            allow.extend(strings(&self.global.also_allow));
            self.push(label, &allow, &[]);
        }
    }

    /// 2. Provider profile (the agent's value wins).
    fn provider_profile(&mut self) {
        let keys = &self.model_keys;
        let agent_path = &self.agent_path;
        let chosen = by_provider(self.agent.by_provider.as_ref(), keys)
            .and_then(|(k, p)| {
                p.profile.clone().map(|pr| (format!("{agent_path}.tools.byProvider.{k}.profile ({pr})"), pr))
            })
            .or_else(|| {
                by_provider(self.global.by_provider.as_ref(), keys)
                    .and_then(|(k, p)| p.profile.clone().map(|pr| (format!("tools.byProvider.{k}.profile ({pr})"), pr)))
            });
        if let Some((label, base)) = chosen.and_then(|(label, pr)| Some((label, profile_allow(&pr)?))) {
            let allow: Vec<String> = base.iter().map(|s| s.to_string()).collect();
            self.push(label, &allow, &[]);
        }
    }

    /// 3–6. Global, global provider, agent, agent provider allow/deny.
    fn allow_deny_lists(&mut self) {
        let mut lists = vec![("tools.allow/deny".to_string(), self.global.allow.clone(), self.global.deny.clone())];
        if let Some((k, p)) = by_provider(self.global.by_provider.as_ref(), &self.model_keys) {
            lists.push((format!("tools.byProvider.{k}"), p.allow.clone(), p.deny.clone()));
        }
        lists.push((
            format!("{}.tools.allow/deny", self.agent_path),
            self.agent.allow.clone(),
            self.agent.deny.clone(),
        ));
        if let Some((k, p)) = by_provider(self.agent.by_provider.as_ref(), &self.model_keys) {
            lists.push((format!("{}.tools.byProvider.{k}", self.agent_path), p.allow.clone(), p.deny.clone()));
        }
        for (label, allow, deny) in lists {
            self.list(label, &allow, &deny);
        }
    }

    /// An allow/deny list stage (also 7, the group's). An allowlist naming no
    /// built-in tool is ignored so core tools stay available (OpenClaw's rule).
    fn list(&mut self, label: String, allow: &Option<Vec<String>>, deny: &Option<Vec<String>>) {
        let (allow, deny) = (strings(allow), strings(deny));
        if allow.is_empty() && deny.is_empty() {
            return;
        }
        let m = ToolMatcher::new(&allow, &deny, self.catalog);
        let matcher = if m.allowlist_names_no_core_tool(self.catalog) {
            self.notes.push(format!("{label}: allowlist names no built-in tool; ignored so core tools stay available"));
            m.without_allowlist()
        } else {
            m
        };
        self.stages.push(Stage { label, matcher });
    }

    /// 8. Sandbox policy, and the workspace mount's access.
    fn sandbox(&mut self, access: WorkspaceAccess) {
        let agent_sb = self.agent.sandbox.as_ref().and_then(|s| s.tools.clone());
        let global_sb = self.global.sandbox.as_ref().and_then(|s| s.tools.clone());
        let (label, allow, deny) = match (agent_sb, global_sb) {
            (Some(l), _) => (format!("{}.tools.sandbox.tools", self.agent_path), strings(&l.allow), strings(&l.deny)),
            (None, Some(l)) => ("tools.sandbox.tools".to_string(), strings(&l.allow), strings(&l.deny)),
            (None, None) => (
                "sandbox defaults".to_string(),
                SANDBOX_DEFAULT_ALLOW.iter().map(|s| s.to_string()).collect(),
                SANDBOX_DEFAULT_DENY.iter().chain(CHANNEL_TOOLS).map(|s| s.to_string()).collect(),
            ),
        };
        self.push(label, &allow, &deny);
        if access == WorkspaceAccess::Ro {
            let deny = ["write", "edit", "apply_patch"].map(String::from);
            self.push("sandbox.workspaceAccess ro".into(), &[], &deny);
        }
    }

    /// 9. Sub-agent policy.
    fn subagent(&mut self) {
        let sub = self.global.subagents.as_ref().and_then(|s| s.tools.clone()).unwrap_or_default();
        let mut deny: Vec<String> = SUBAGENT_DEFAULT_DENY.iter().map(|s| s.to_string()).collect();
        deny.extend(strings(&sub.deny));
        self.push("sub-agent policy".into(), &strings(&sub.allow), &deny);
    }
}

/// What an agent's session may reach beyond tool names: its workspace
/// (read-write if it may `write`/`edit`/`apply_patch`, read-only if only
/// `read`; a sandbox's `workspaceAccess` can only narrow it), running
/// processes (`exec`), its sessions (`sessions_*`, `session_status`), and
/// sending messages on its own (`message`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    pub workspace: WorkspaceAccess,
    pub processes: bool,
    pub sessions: SessionRights,
    /// The `message` tool: sending through the accounts that speak for the agent.
    pub messaging: bool,
    /// The `automations` tool: the agent's own scheduled jobs.
    pub automations: bool,
    /// Commands must run in the sandbox (reference §11).
    pub sandboxed: bool,
    /// The sandbox may use the network (`sandbox.docker.network` other than `none`).
    pub network: bool,
}

/// Which functions of the `sessions` capability a session's tools may
/// call: one right per tool, so allowing `sessions_list` never lets a
/// plugin send into or spawn sessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionRights {
    /// `sessions_list`.
    pub list: bool,
    /// `sessions_history`.
    pub history: bool,
    /// `sessions_send`.
    pub send: bool,
    /// `sessions_spawn`.
    pub spawn: bool,
    /// `session_status`.
    pub status: bool,
}

impl SessionRights {
    pub fn of(tools: &EffectiveTools) -> SessionRights {
        SessionRights {
            list: tools.allows("sessions_list"),
            history: tools.allows("sessions_history"),
            send: tools.allows("sessions_send"),
            spawn: tools.allows("sessions_spawn"),
            status: tools.allows("session_status"),
        }
    }

    pub fn all() -> SessionRights {
        SessionRights { list: true, history: true, send: true, spawn: true, status: true }
    }

    pub fn any(&self) -> bool {
        self.list || self.history || self.send || self.spawn || self.status
    }
}

pub fn reach(cfg: &Config, tools: &EffectiveTools, kind: &SessionKind) -> Reach {
    let mut workspace = if ["write", "edit", "apply_patch"].iter().any(|t| tools.allows(t)) {
        WorkspaceAccess::Rw
    } else if tools.allows("read") {
        WorkspaceAccess::Ro
    } else {
        WorkspaceAccess::None
    };
    let sandboxed = is_sandboxed(cfg, &tools.agent_id, kind);
    if sandboxed {
        workspace = workspace.min(workspace_access(cfg, &tools.agent_id));
    }
    let id = normalize_agent_id(Some(&tools.agent_id));
    let net = |s: Option<&crate::config::schema::SandboxConfig>| {
        s?.docker.as_ref()?.get("network")?.as_str().map(|n| n != "none")
    };
    let network = net(cfg.agent(&id).and_then(|(_, a)| a.sandbox.as_ref()))
        .or_else(|| net(cfg.agent_defaults().and_then(|d| d.sandbox.as_ref())))
        .unwrap_or(false);
    Reach {
        workspace,
        processes: tools.allows("exec"),
        sessions: SessionRights::of(tools),
        messaging: tools.allows("message"),
        automations: tools.allows("automations"),
        sandboxed,
        network,
    }
}

/// `tools.agentToAgent`: both requester and target must match `allow` (default off).
pub fn agent_to_agent_allowed(cfg: &Config, requester: &str, target: &str) -> bool {
    let Some(a2a) = cfg.tools.as_ref().and_then(|t| t.agent_to_agent.as_ref()) else {
        return false;
    };
    if a2a.enabled != Some(true) {
        return false;
    }
    let allow = strings(&a2a.allow);
    let matcher = ToolMatcher::new(&allow, &[], &ToolCatalog::core());
    let (r, t) = (normalize_agent_id(Some(requester)), normalize_agent_id(Some(target)));
    !allow.is_empty() && matcher.allows(&r) && matcher.allows(&t)
}

/// `agents.list[].subagents.allowAgents`: may `parent` spawn `target`?
pub fn may_spawn(cfg: &Config, parent: &str, target: &str) -> bool {
    let (p, t) = (normalize_agent_id(Some(parent)), normalize_agent_id(Some(target)));
    if p == t {
        return true;
    }
    cfg.agent(&p)
        .and_then(|(_, a)| a.subagents.as_ref()?.allow_agents.clone())
        .is_some_and(|allow| allow.iter().any(|a| a == "*" || normalize_agent_id(Some(a)) == t))
}

/// `tools.elevated`: the global baseline and the agent's setting must both allow `sender` on `provider`.
pub fn elevated_allowed(cfg: &Config, agent_id: &str, provider: &str, sender: &str) -> bool {
    let id = normalize_agent_id(Some(agent_id));
    let permits = |e: Option<&crate::config::schema::Elevated>, default_enabled: bool| -> bool {
        let Some(e) = e else { return default_enabled };
        if !e.enabled.unwrap_or(default_enabled) {
            return false;
        }
        match &e.allow_from {
            None => default_enabled,
            Some(map) => map
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(provider))
                .flat_map(|(_, ids)| ids)
                .any(|v| v.0 == "*" || v.0 == sender),
        }
    };
    let global = cfg.tools.as_ref().and_then(|t| t.elevated.as_ref());
    let agent = cfg.agent(&id).and_then(|(_, a)| a.tools.as_ref()?.elevated.as_ref());
    global.is_some() && permits(global, false) && permits(agent, true)
}

/// `/elevated` levels (OpenClaw's): `on`, `ask` (the same here: chela has
/// no approval prompts) and `full` let an allowed sender's exec leave the
/// sandbox; `off` keeps it in. Unknown values are `None`.
pub fn parse_elevated_level(raw: &str) -> Option<&'static str> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "on" | "true" => Some("on"),
        "ask" => Some("ask"),
        "full" => Some("full"),
        "off" | "false" => Some("off"),
        _ => None,
    }
}

/// Whether a turn's exec may leave the sandbox: the sender must be allowed
/// (`elevated_allowed`), and the session's `/elevated` level (else the
/// agent's, else `agents.defaults.elevatedDefault`, else `on`, as OpenClaw
/// resolves it) must not be `off`.
pub fn elevated_active(cfg: &Config, agent_id: &str, provider: &str, sender: &str, session: Option<&str>) -> bool {
    if !elevated_allowed(cfg, agent_id, provider, sender) {
        return false;
    }
    elevated_level(cfg, agent_id, session) != "off"
}

/// The `/elevated` level in force for an allowed sender (see [`elevated_active`]).
pub fn elevated_level(cfg: &Config, agent_id: &str, session: Option<&str>) -> &'static str {
    let agent = cfg.agent(agent_id).and_then(|(_, a)| a.elevated_default.as_deref());
    let defaults = cfg.agent_defaults().and_then(|d| d.elevated_default.as_deref());
    session.or(agent).or(defaults).and_then(parse_elevated_level).unwrap_or("on")
}

#[cfg(test)]
mod tests {

    #[test]
    fn attaching_files_needs_the_read_tool() {
        let c = crate::config::load::load_str(
            r#"{ agents: { list: [ { id: "main" }, { id: "blind", tools: { deny: ["read"] } }, { id: "fs", tools: { deny: ["group:fs"] } } ] } }"#,
            Some("t.json5"),
        )
        .expect("loads")
        .config;
        assert!(may_attach_files(&c, "main", &SessionKind::Main));
        assert!(!may_attach_files(&c, "blind", &SessionKind::Main));
        assert!(!may_attach_files(&c, "fs", &SessionKind::Main));
    }
    use super::*;
    use crate::config::load_str;

    #[test]
    fn the_session_level_turns_an_allowed_senders_elevation_off() {
        let c = cfg("{tools: {elevated: {enabled: true, allowFrom: {whatsapp: ['+1']}}}, agents: {defaults: {elevatedDefault: 'on'}, list: [{id: 'a'}, {id: 'b', elevatedDefault: 'off'}]}}");
        assert!(elevated_active(&c, "a", "whatsapp", "+1", None), "OpenClaw's default is on");
        assert!(!elevated_active(&c, "a", "whatsapp", "+1", Some("off")));
        assert!(!elevated_active(&c, "b", "whatsapp", "+1", None), "the agent's default");
        assert!(elevated_active(&c, "b", "whatsapp", "+1", Some("full")), "the session's pick wins");
        assert!(!elevated_active(&c, "a", "whatsapp", "+2", Some("on")), "a level never makes a sender allowed");
    }

    fn cfg(text: &str) -> Config {
        load_str(text, None).expect("config loads").config
    }

    fn tools(c: &Config, agent: &str, kind: SessionKind) -> EffectiveTools {
        effective_tools(c, agent, &kind, &ToolCatalog::core())
    }

    #[test]
    fn agent_deny_removes_with_provenance() {
        let c = cfg("{agents: {list: [{id: 'work', tools: {deny: ['bash']}}]}}");
        let t = tools(&c, "work", SessionKind::Main);
        assert!(!t.allows("exec"));
        let exec = t.tools.iter().find(|d| d.name == "exec").unwrap();
        assert_eq!(exec.removed_by.as_deref(), Some("agents.list[0].tools.allow/deny"));
        assert!(t.allows("read"));
    }

    #[test]
    fn later_stages_cannot_regrant() {
        let c = cfg(
            "{tools: {profile: 'minimal'}, agents: {list: [{id: 'a', tools: {allow: ['exec', 'session_status']}}]}}",
        );
        let t = tools(&c, "a", SessionKind::Main);
        assert!(!t.allows("exec"), "profile removed exec; the agent allowlist cannot bring it back");
        assert!(t.allows("session_status"));
        assert_eq!(t.allowed().count(), 1);
    }

    #[test]
    fn agent_profile_replaces_global_and_also_allow_widens() {
        let c = cfg("{tools: {profile: 'minimal'}, agents: {list: [{id: 'a', tools: {profile: 'coding', alsoAllow: ['web_fetch']}}]}}");
        let t = tools(&c, "a", SessionKind::Main);
        for name in ["read", "exec", "memory_get", "image", "web_fetch"] {
            assert!(t.allows(name), "{name}");
        }
        assert!(!t.allows("browser"));
    }

    #[test]
    fn sandbox_and_read_only_workspace() {
        let c = cfg("{agents: {defaults: {sandbox: {mode: 'non-main', workspaceAccess: 'ro'}}, list: [{id: 'a'}]}}");
        let main = tools(&c, "a", SessionKind::Main);
        assert!(!main.sandboxed && main.allows("write") && main.allows("browser"));
        let group = tools(&c, "a", SessionKind::Group { channel: "slack".into(), group_id: "c1".into() });
        assert!(group.sandboxed);
        assert!(!group.allows("browser") && !group.allows("slack"));
        assert!(!group.allows("write") && group.allows("read") && group.allows("exec"));
    }

    #[test]
    fn group_tools_apply_to_group_sessions() {
        let c = cfg("{channels: {slack: {groups: {'C1': {tools: {deny: ['exec']}}}}}}");
        let g = tools(&c, "main", SessionKind::Group { channel: "slack".into(), group_id: "C1".into() });
        assert!(!g.allows("exec"));
        assert!(tools(&c, "main", SessionKind::Main).allows("exec"));
    }

    #[test]
    fn subagents_get_the_intersection_with_their_parent() {
        let c = cfg("{agents: {list: [{id: 'p', tools: {deny: ['exec']}}, {id: 'c'}]}}");
        let parent = tools(&c, "p", SessionKind::Main);
        let child = tools(&c, "c", SessionKind::Subagent).intersect_with_parent(&parent);
        assert!(!child.allows("exec"), "denied to the parent, so never to its sub-agent");
        assert!(!child.allows("sessions_spawn"), "sub-agent default deny");
        assert!(child.allows("read"));
    }

    #[test]
    fn plugin_only_allowlist_is_dropped_with_a_note() {
        let c = cfg("{tools: {allow: ['weather']}}");
        let cat = ToolCatalog::core().with_plugin("wx", &["weather"]);
        let t = effective_tools(&c, "main", &SessionKind::Main, &cat);
        assert!(t.allows("read") && t.allows("weather"));
        assert_eq!(t.notes.len(), 1);
    }

    #[test]
    fn reach_follows_tools_and_the_sandbox_only_narrows() {
        let c = cfg("{agents: {list: [{id: 'w'}, {id: 'r', tools: {deny: ['write', 'edit', 'apply_patch', 'exec']}},
                     {id: 's', sandbox: {mode: 'all', workspaceAccess: 'ro'}}]}}");
        let r = |a: &str| reach(&c, &tools(&c, a, SessionKind::Main), &SessionKind::Main);
        assert_eq!(
            r("w"),
            Reach {
                workspace: WorkspaceAccess::Rw,
                processes: true,
                sessions: SessionRights::all(),
                messaging: true,
                automations: true,
                sandboxed: false,
                network: false
            }
        );
        assert_eq!(r("r").workspace, WorkspaceAccess::Ro);
        assert!(!r("r").processes);
        let l = cfg("{tools: {deny: ['sessions_send', 'sessions_spawn']}, agents: {list: [{id: 'l'}]}}");
        let rights = reach(&l, &tools(&l, "l", SessionKind::Main), &SessionKind::Main).sessions;
        assert!(rights.list && rights.history && rights.status && !rights.send && !rights.spawn);
        assert_eq!(r("s").workspace, WorkspaceAccess::Ro);
        assert!(r("s").sandboxed && !r("s").network);
        let n = cfg("{agents: {defaults: {sandbox: {mode: 'all', docker: {network: 'bridge'}}}, list: [{id: 'n'}]}}");
        assert!(reach(&n, &tools(&n, "n", SessionKind::Main), &SessionKind::Main).network);
    }

    #[test]
    fn agent_to_agent_needs_both_sides() {
        let c = cfg("{tools: {agentToAgent: {enabled: true, allow: ['work', 'home']}}}");
        assert!(agent_to_agent_allowed(&c, "work", "home"));
        assert!(!agent_to_agent_allowed(&c, "work", "ops"));
        assert!(!agent_to_agent_allowed(&cfg("{}"), "work", "home"), "off by default");
    }

    #[test]
    fn elevated_needs_global_and_agent() {
        let c = cfg("{tools: {elevated: {enabled: true, allowFrom: {whatsapp: ['+1']}}}, agents: {list: [{id: 'a'}, {id: 'b', tools: {elevated: {enabled: false}}}]}}");
        assert!(elevated_allowed(&c, "a", "whatsapp", "+1"));
        assert!(!elevated_allowed(&c, "a", "whatsapp", "+2"));
        assert!(!elevated_allowed(&c, "b", "whatsapp", "+1"));
    }

    #[test]
    fn spawn_needs_allow_agents() {
        let c = cfg("{agents: {list: [{id: 'a', subagents: {allowAgents: ['b']}}, {id: 'b'}, {id: 'c', subagents: {allowAgents: ['*']}}]}}");
        assert!(may_spawn(&c, "a", "b") && !may_spawn(&c, "b", "a") && may_spawn(&c, "c", "a"));
    }

    #[test]
    fn session_kind_follows_the_key_and_sandbox_mode() {
        let c = cfg("{agents: {list: [{id: 'a'}, {id: 'b', sandbox: {mode: 'non-main'}}]}}");
        let kind = |agent: &str, key: &str| session_kind_for_key(&c, agent, key, &format!("agent:{agent}:main"));
        assert_eq!(kind("a", "agent:a:main"), SessionKind::Main);
        assert_eq!(
            kind("a", "agent:a:telegram:group:-1001:topic:7"),
            SessionKind::Group { channel: "telegram".into(), group_id: "-1001".into() }
        );
        assert_eq!(
            kind("a", "agent:a:slack:work:channel:c0general"),
            SessionKind::Group { channel: "slack".into(), group_id: "c0general".into() }
        );
        assert_eq!(kind("a", "agent:a:whatsapp:direct:+1555"), SessionKind::Main);
        assert_eq!(kind("b", "agent:b:whatsapp:direct:+1555"), SessionKind::Sandboxed);
        assert_eq!(kind("b", "agent:b:main"), SessionKind::Main);
    }

    #[test]
    fn session_visibility_levels() {
        let tree = cfg("{agents: {list: [{id: 'a'}, {id: 'b'}]}}");
        let me = "agent:a:main";
        assert!(session_visible(&tree, "a", me, false, me, None));
        assert!(session_visible(&tree, "a", me, false, "agent:a:subagent:x", Some(me)));
        assert!(!session_visible(&tree, "a", me, false, "agent:a:telegram:direct:1", None));
        let agent = cfg("{tools: {sessions: {visibility: 'agent'}}, agents: {list: [{id: 'a'}, {id: 'b'}]}}");
        assert!(session_visible(&agent, "a", me, false, "agent:a:telegram:direct:1", None));
        assert!(!session_visible(&agent, "a", me, true, "agent:a:telegram:direct:1", None), "sandboxed: tree only");
        assert!(!session_visible(&agent, "a", me, false, "agent:b:main", None));
        let all = cfg("{tools: {sessions: {visibility: 'all'}, agentToAgent: {enabled: true, allow: ['a', 'b']}}, agents: {list: [{id: 'a'}, {id: 'b'}, {id: 'c'}]}}");
        assert!(session_visible(&all, "a", me, false, "agent:b:main", None));
        assert!(!session_visible(&all, "a", me, false, "agent:c:main", None), "c is not allowed agent-to-agent");
        let off = cfg("{tools: {sessions: {visibility: 'all'}}, agents: {list: [{id: 'a'}, {id: 'b'}]}}");
        assert!(!session_visible(&off, "a", me, false, "agent:b:main", None), "agentToAgent is off by default");
    }
}
