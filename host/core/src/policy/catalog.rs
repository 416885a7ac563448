//! Tool names, aliases, groups and profiles (reference spec §10.1–§10.3).
//!
//! Must not: decide what an agent may use (the pipeline does); it only names tools and groups.

/// Built-in tools, in OpenClaw's order.
pub const CORE_TOOLS: &[&str] = &[
    "read",
    "write",
    "edit",
    "apply_patch",
    "exec",
    "process",
    "web_search",
    "web_fetch",
    "browser",
    "canvas",
    "nodes",
    "automations",
    "message",
    "gateway",
    "agents_list",
    "sessions_list",
    "sessions_history",
    "sessions_send",
    "sessions_spawn",
    "sessions_yield",
    "session_status",
    "subagents",
    "switch_model",
    "memory_search",
    "memory_get",
    "image",
    "tts",
];

/// `group:*` names and their members (the code's lists, not the older docs').
pub const GROUPS: &[(&str, &[&str])] = &[
    ("group:fs", &["read", "write", "edit", "apply_patch"]),
    ("group:runtime", &["exec", "process"]),
    ("group:sessions", &["sessions_list", "sessions_history", "sessions_send", "sessions_spawn", "session_status"]),
    ("group:memory", &["memory_search", "memory_get"]),
    ("group:web", &["web_search", "web_fetch"]),
    ("group:ui", &["browser", "canvas"]),
    ("group:automation", &["automations", "gateway"]),
    ("group:messaging", &["message"]),
    ("group:nodes", &["nodes"]),
];

/// Lowercased, trimmed, with aliases resolved (`bash` → `exec`; `cron` →
/// `automations`, OpenClaw's permanent alias of the scheduler tool).
pub fn normalize_tool_name(name: &str) -> String {
    let n = crate::ids::js_trim(name).to_lowercase();
    match n.as_str() {
        "bash" => "exec".into(),
        "cron" => "automations".into(),
        "apply-patch" => "apply_patch".into(),
        _ => n,
    }
}

/// The tools a session can be offered: built-ins plus what plugins provide.
#[derive(Debug, Clone)]
pub struct ToolCatalog {
    /// `(tool name, plugin id)`; built-ins have no plugin.
    tools: Vec<(String, Option<String>)>,
}

impl Default for ToolCatalog {
    fn default() -> Self {
        ToolCatalog::core()
    }
}

impl ToolCatalog {
    pub fn core() -> ToolCatalog {
        ToolCatalog { tools: CORE_TOOLS.iter().map(|t| (t.to_string(), None)).collect() }
    }

    /// Adds the tools of one plugin (its id also works as a group name).
    pub fn with_plugin(mut self, plugin_id: &str, tools: &[&str]) -> ToolCatalog {
        for t in tools {
            let name = normalize_tool_name(t);
            if !self.tools.iter().any(|(n, _)| *n == name) {
                self.tools.push((name, Some(plugin_id.to_string())));
            }
        }
        self
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tools.iter().map(|(n, _)| n.as_str())
    }

    pub fn is_core(&self, name: &str) -> bool {
        self.tools.iter().any(|(n, p)| n == name && p.is_none())
    }

    /// Expands one list entry into tool names or patterns.
    pub fn expand(&self, entry: &str) -> Vec<String> {
        let n = normalize_tool_name(entry);
        if let Some((_, members)) = GROUPS.iter().find(|(g, _)| *g == n) {
            return members.iter().map(|m| m.to_string()).collect();
        }
        match n.as_str() {
            "group:openclaw" | "group:chela" => {
                return self.tools.iter().filter(|(_, p)| p.is_none()).map(|(t, _)| t.clone()).collect()
            }
            "group:plugins" => return self.tools.iter().filter(|(_, p)| p.is_some()).map(|(t, _)| t.clone()).collect(),
            _ => {}
        }
        let by_plugin: Vec<String> =
            self.tools.iter().filter(|(_, p)| p.as_deref() == Some(n.as_str())).map(|(t, _)| t.clone()).collect();
        if by_plugin.is_empty() {
            vec![n]
        } else {
            by_plugin
        }
    }
}

/// A base allowlist by profile name; `None` means no restriction (`full`, unknown).
pub fn profile_allow(profile: &str) -> Option<&'static [&'static str]> {
    match crate::ids::js_trim(profile).to_lowercase().as_str() {
        "minimal" => Some(&["session_status"]),
        "coding" => Some(&["group:fs", "group:runtime", "group:sessions", "group:memory", "image"]),
        "messaging" => {
            Some(&["group:messaging", "sessions_list", "sessions_history", "sessions_send", "session_status"])
        }
        _ => None,
    }
}

/// Tools a sandboxed session may use when `tools.sandbox.tools` is not configured.
pub const SANDBOX_DEFAULT_ALLOW: &[&str] = &[
    "exec",
    "process",
    "read",
    "write",
    "edit",
    "apply_patch",
    "image",
    "sessions_list",
    "sessions_history",
    "sessions_send",
    "sessions_spawn",
    "sessions_yield",
    "subagents",
    "session_status",
    "switch_model",
];

/// Denied in sandboxed sessions by default (plus every channel's own tool).
pub const SANDBOX_DEFAULT_DENY: &[&str] = &["browser", "canvas", "nodes", "automations", "gateway"];

/// Channel ids whose tools a sandbox denies by default.
pub const CHANNEL_TOOLS: &[&str] = &["telegram", "slack", "discord", "whatsapp", "whatsapp_login", "signal", "matrix"];

/// Denied to sub-agents by default.
pub const SUBAGENT_DEFAULT_DENY: &[&str] = &[
    "sessions_list",
    "sessions_history",
    "sessions_send",
    "sessions_spawn",
    "gateway",
    "agents_list",
    "whatsapp_login",
    "session_status",
    "automations",
    "memory_search",
    "memory_get",
];
