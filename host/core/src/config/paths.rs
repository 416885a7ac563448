//! Where things live on disk: state dir, config file, agent workspaces and
//! agent dirs (reference spec §2.3, §15, with chela's names).
//!
//! Pure functions over an [`Environment`] value, so the rules are testable
//! without touching the process environment or the file system.
//!
//! Must not: read the process environment or touch the file system.

use std::path::{Path, PathBuf};

use super::schema::Config;
use crate::ids::normalize_agent_id;
use crate::roster::Roster;

/// The parts of the process environment that decide paths.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub home: PathBuf,
    /// `CHELA_STATE_DIR`.
    pub state_dir: Option<String>,
    /// `CHELA_CONFIG_PATH`.
    pub config_path: Option<String>,
    /// `--profile NAME` (or `CHELA_PROFILE`).
    pub profile: Option<String>,
    /// `CHELA_WORKSPACE_DIR`: the default agent's default workspace.
    pub workspace_dir: Option<String>,
    /// `CHELA_DATABASE_URL`: sessions in PostgreSQL (wins over `storage.url`).
    pub database_url: Option<String>,
}

impl Environment {
    /// Reads `CHELA_*` variables through `var` (the binary passes `std::env::var`).
    pub fn from_vars(home: PathBuf, var: impl Fn(&str) -> Option<String>) -> Environment {
        let non_empty = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        Environment {
            home,
            state_dir: non_empty("CHELA_STATE_DIR"),
            config_path: non_empty("CHELA_CONFIG_PATH"),
            profile: non_empty("CHELA_PROFILE"),
            workspace_dir: non_empty("CHELA_WORKSPACE_DIR"),
            database_url: non_empty("CHELA_DATABASE_URL"),
        }
    }

    fn profile_suffix(&self) -> Option<&str> {
        self.profile.as_deref().filter(|p| *p != "default")
    }

    /// `CHELA_STATE_DIR`, else `~/.chela` (`~/.chela-<profile>` with a profile).
    pub fn state_dir(&self) -> PathBuf {
        if let Some(dir) = &self.state_dir {
            return expand_tilde(dir, &self.home);
        }
        match self.profile_suffix() {
            Some(p) => self.home.join(format!(".chela-{p}")),
            None => self.home.join(".chela"),
        }
    }

    /// `CHELA_CONFIG_PATH`, else `<stateDir>/chela.json`, else an existing
    /// `<stateDir>/openclaw.json` (accepted as it is).
    pub fn config_path(&self, exists: impl Fn(&Path) -> bool) -> PathBuf {
        if let Some(p) = &self.config_path {
            return expand_tilde(p, &self.home);
        }
        let state = self.state_dir();
        let chela = state.join("chela.json");
        let openclaw = state.join("openclaw.json");
        if !exists(&chela) && exists(&openclaw) {
            openclaw
        } else {
            chela
        }
    }

    /// Where the default agent works when nothing is configured.
    pub fn default_workspace(&self) -> PathBuf {
        if let Some(dir) = &self.workspace_dir {
            return expand_tilde(dir, &self.home);
        }
        if self.state_dir.is_some() {
            return self.state_dir().join("workspace");
        }
        match self.profile_suffix() {
            Some(p) => self.home.join(".chela").join(format!("workspace-{p}")),
            None => self.home.join(".chela").join("workspace"),
        }
    }
}

/// `~` and `~/x` → the home directory; NUL bytes are removed.
pub fn expand_tilde(path: &str, home: &Path) -> PathBuf {
    let clean: String = path.chars().filter(|c| *c != '\0').collect();
    let trimmed = clean.trim();
    if trimmed == "~" {
        home.to_path_buf()
    } else if let Some(rest) = trimmed.strip_prefix("~/") {
        home.join(rest)
    } else {
        PathBuf::from(trimmed)
    }
}

/// The agent's workspace: its own `workspace`, else (default agent)
/// `agents.defaults.workspace` or the default workspace, else `<stateDir>/workspace-<id>`.
pub fn agent_workspace(cfg: &Config, roster: &Roster, agent_id: &str, env: &Environment) -> PathBuf {
    let id = normalize_agent_id(Some(agent_id));
    if let Some(ws) = cfg.agent(&id).and_then(|(_, a)| a.workspace.as_deref()) {
        return expand_tilde(ws, &env.home);
    }
    if id == roster.default_agent() {
        if let Some(ws) = cfg.agent_defaults().and_then(|d| d.workspace.as_deref()) {
            return expand_tilde(ws, &env.home);
        }
        return env.default_workspace();
    }
    env.state_dir().join(format!("workspace-{id}"))
}

/// The agent's state dir: its own `agentDir`, else `<stateDir>/agents/<id>/agent`.
pub fn agent_dir(cfg: &Config, agent_id: &str, env: &Environment) -> PathBuf {
    let id = normalize_agent_id(Some(agent_id));
    match cfg.agent(&id).and_then(|(_, a)| a.agent_dir.as_deref()) {
        Some(dir) => expand_tilde(dir, &env.home),
        None => env.state_dir().join("agents").join(&id).join("agent"),
    }
}

/// `<stateDir>/agents/<id>/sessions`.
pub fn sessions_dir(agent_id: &str, env: &Environment) -> PathBuf {
    env.state_dir().join("agents").join(normalize_agent_id(Some(agent_id))).join("sessions")
}

/// Where an agent's sessions live: `session.store` with `{agentId}` (its
/// directory), else [`sessions_dir`].
pub fn agent_store_dir(cfg: &Config, env: &Environment, agent_id: &str) -> PathBuf {
    let id = normalize_agent_id(Some(agent_id));
    match cfg.session.as_ref().and_then(|s| s.store.as_deref()) {
        Some(t) => {
            let file = expand_tilde(&t.replace("{agentId}", &id), &env.home);
            file.parent().map(PathBuf::from).unwrap_or(file)
        }
        None => sessions_dir(&id, env),
    }
}

/// Where the files that came into one session are kept: `media/<session>`
/// beside the agent's sessions (the key with every character but letters,
/// digits, `-` and `_` as `_`).
pub fn session_media_dir(cfg: &Config, env: &Environment, agent_id: &str, session_key: &str) -> PathBuf {
    let name: String =
        session_key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    agent_store_dir(cfg, env, agent_id).join("media").join(name)
}

/// The plugin dirs: `<stateDir>/plugins`, then every `plugins.dirs` entry.
pub fn plugin_dirs(cfg: &Config, env: &Environment) -> Vec<PathBuf> {
    let mut dirs = vec![env.state_dir().join("plugins")];
    if let Some(extra) = cfg.plugins.as_ref().and_then(|p| p.dirs.as_ref()) {
        dirs.extend(extra.iter().map(|d| expand_tilde(d, &env.home)));
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn env() -> Environment {
        Environment { home: PathBuf::from("/home/u"), ..Default::default() }
    }

    #[test]
    fn state_dir_and_profiles() {
        assert_eq!(env().state_dir(), PathBuf::from("/home/u/.chela"));
        let e = Environment { profile: Some("work".into()), ..env() };
        assert_eq!(e.state_dir(), PathBuf::from("/home/u/.chela-work"));
        assert_eq!(e.default_workspace(), PathBuf::from("/home/u/.chela/workspace-work"));
        let e = Environment { state_dir: Some("~/s".into()), ..env() };
        assert_eq!(e.state_dir(), PathBuf::from("/home/u/s"));
        assert_eq!(e.config_path(|_| false), PathBuf::from("/home/u/s/chela.json"));
        assert_eq!(e.config_path(|p| p.ends_with("openclaw.json")), PathBuf::from("/home/u/s/openclaw.json"));
    }

    #[test]
    fn workspace_and_agent_dir_defaults() {
        let cfg = load_str(
            "{agents: {defaults: {workspace: '~/main-ws'}, list: [{id: 'home', default: true}, {id: 'work'}, {id: 'x', workspace: '~/x', agentDir: '/d/x'}]}}",
            None,
        )
        .unwrap()
        .config;
        let roster = Roster::from_config(&cfg);
        let e = env();
        assert_eq!(agent_workspace(&cfg, &roster, "home", &e), PathBuf::from("/home/u/main-ws"));
        assert_eq!(agent_workspace(&cfg, &roster, "work", &e), PathBuf::from("/home/u/.chela/workspace-work"));
        assert_eq!(agent_workspace(&cfg, &roster, "x", &e), PathBuf::from("/home/u/x"));
        assert_eq!(agent_dir(&cfg, "work", &e), PathBuf::from("/home/u/.chela/agents/work/agent"));
        assert_eq!(agent_dir(&cfg, "X", &e), PathBuf::from("/d/x"));
    }
}
