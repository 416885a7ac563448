//! How an agent's commands are confined when they run on the host (sandbox
//! off, or elevated): what they must not see, what environment they get,
//! and the one opt-out.
//!
//! OpenClaw's `sandbox.mode: "off"` means "runs on the host": chela keeps the
//! host filesystem visible but hides the gateway's state dir (sessions,
//! credentials, the generated token, plugins), the config file (and its
//! `.bak`/`.tmp`), every plugin dir, every agent's `agentDir` and session
//! store, channel accounts' `authDir`s and every other agent's workspace. The environment is
//! a small allowlist plus `tools.exec.env`. `tools.exec.host: "unconfined"`
//! (global or per agent) restores OpenClaw's exact behaviour for a
//! single-user machine. This module only decides; running is the plugin
//! runtime's `process` capability.
//!
//! Must not: run anything or touch the file system; it only decides what a command may see.

use std::path::{Path, PathBuf};

use crate::config::paths::{agent_dir, agent_store_dir, agent_workspace, plugin_dirs, Environment};
use crate::config::schema::Config;
use crate::ids::normalize_agent_id;
use crate::roster::Roster;

/// `tools.exec.host` value that turns confinement off.
pub const UNCONFINED: &str = "unconfined";

/// How one agent's host commands run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecConfinement {
    /// `tools.exec.host: "unconfined"`: no hiding, no namespaces (OpenClaw's behaviour).
    pub unconfined: bool,
    /// Paths hidden from the command (directories get an empty tmpfs, files `/dev/null`).
    pub hidden: Vec<PathBuf>,
    /// Which of `hidden` are files (the config and its copies); the rest are
    /// directories, hidden even before they exist.
    pub hidden_files: Vec<PathBuf>,
    /// Environment beyond `PATH`, `HOME` and `LANG`: `tools.exec.env`, the agent's over the global.
    pub env: Vec<(String, String)>,
}

fn exec_setting<'a>(cfg: &'a Config, agent: &str, key: &str) -> Option<&'a serde_json::Value> {
    let own = cfg.agent(agent).and_then(|(_, a)| a.tools.as_ref()?.exec.as_ref()?.get(key));
    own.or_else(|| cfg.tools.as_ref()?.exec.as_ref()?.get(key))
}

/// Whether `tools.exec.host` (the agent's, else the global) is `"unconfined"`.
pub fn exec_unconfined(cfg: &Config, agent_id: &str) -> bool {
    let id = normalize_agent_id(Some(agent_id));
    exec_setting(cfg, &id, "host").and_then(|v| v.as_str()) == Some(UNCONFINED)
}

/// What `agent_id`'s host commands may not see and the environment they get.
/// `config_path` is the file the gateway was started with.
pub fn exec_confinement(
    cfg: &Config,
    env: &Environment,
    agent_id: &str,
    config_path: Option<&Path>,
) -> ExecConfinement {
    let id = normalize_agent_id(Some(agent_id));
    let roster = Roster::from_config(cfg);
    let mut hidden = vec![env.state_dir()];
    // The config and the copies CLI edits leave beside it (they hold tokens too).
    let mut hidden_files = Vec::new();
    if let Some(path) = config_path {
        for suffix in ["", ".bak", ".tmp"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            hidden_files.push(PathBuf::from(p));
        }
    }
    hidden.extend(hidden_files.iter().cloned());
    // Plugin dirs: a command that could write a .wasm there would run code for every agent.
    hidden.extend(plugin_dirs(cfg, env));
    for other in roster.ids() {
        hidden.push(agent_dir(cfg, &other, env));
        hidden.push(agent_store_dir(cfg, env, &other)); // `session.store` may live outside the state dir
        if other != id {
            hidden.push(agent_workspace(cfg, &roster, &other, env));
        }
    }
    // Channel accounts' own state dirs (`authDir`, relative to the state dir or absolute).
    for ch in cfg.channels.iter().flat_map(|c| c.values()) {
        let dirs = ch.accounts.iter().flat_map(|a| a.values()).filter_map(|a| a.auth_dir.as_deref());
        for dir in dirs.chain(ch.top.auth_dir.as_deref()).filter(|d| !d.trim().is_empty()) {
            hidden.push(env.state_dir().join(crate::config::paths::expand_tilde(dir, &env.home)));
        }
    }
    hidden.sort();
    hidden.dedup();
    let mut vars: Vec<(String, String)> = Vec::new();
    let global = cfg.tools.as_ref().and_then(|t| t.exec.as_ref()?.get("env")?.as_object().cloned());
    let own = cfg.agent(&id).and_then(|(_, a)| a.tools.as_ref()?.exec.as_ref()?.get("env")?.as_object().cloned());
    for map in [global, own].into_iter().flatten() {
        for (k, v) in map {
            if let Some(v) = v.as_str() {
                vars.retain(|(name, _)| *name != k);
                vars.push((k, v.to_string()));
            }
        }
    }
    ExecConfinement { unconfined: exec_unconfined(cfg, &id), hidden, hidden_files, env: vars }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    #[test]
    fn hides_the_state_dir_config_agent_dirs_and_other_workspaces() {
        let cfg = load_str(
            "{tools: {exec: {env: {A: '1', B: '2'}}}, agents: {list: [
               {id: 'w', workspace: '/ws/w', tools: {exec: {env: {B: '3'}}}},
               {id: 'o', workspace: '/ws/o', agentDir: '/secret/o'}]}}",
            None,
        )
        .unwrap()
        .config;
        let env = Environment { home: "/home/u".into(), state_dir: Some("/state".into()), ..Default::default() };
        let c = exec_confinement(&cfg, &env, "w", Some(Path::new("/etc/chela.json")));
        for p in ["/state", "/etc/chela.json", "/etc/chela.json.bak", "/secret/o", "/ws/o", "/state/agents/w/agent"] {
            assert!(c.hidden.contains(&PathBuf::from(p)), "{p} hidden: {:?}", c.hidden);
        }
        assert!(!c.hidden.contains(&PathBuf::from("/ws/w")), "its own workspace stays");
        assert_eq!(c.env, [("A".to_string(), "1".to_string()), ("B".to_string(), "3".to_string())]);
        assert!(!c.unconfined);
        let u = load_str("{tools: {exec: {host: 'unconfined'}}}", None).unwrap().config;
        assert!(exec_unconfined(&u, "main"));
    }
}
