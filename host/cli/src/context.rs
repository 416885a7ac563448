//! Where the config is and how to read it, for every command.
//!
//! Must not: interpret the config (core does); it only finds and reads it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use chela_core::config::paths::Environment;
use chela_core::config::{load_str, Config, ConfigError, EnvVars, Loaded};

use crate::output::{print_diagnostics_in, print_load_warnings};

pub struct Context {
    pub env: Environment,
    pub config_path: PathBuf,
}

impl Context {
    pub fn from_cli(config: Option<PathBuf>, profile: Option<String>) -> Context {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"));
        let mut env = Environment::from_vars(home, |k| std::env::var(k).ok());
        if profile.is_some() {
            env.profile = profile;
        }
        let config_path = config.unwrap_or_else(|| env.config_path(Path::exists));
        // The runtime hides this file from host commands (it may hold tokens).
        env.config_path = Some(config_path.display().to_string());
        Context { env, config_path }
    }

    /// Loads the config; a load failure prints every problem and is an error.
    /// A missing file is an empty config (everything has defaults).
    pub fn load(&self) -> Result<Loaded> {
        match self.read_text()? {
            None => load_str("{}", None).map_err(|e| anyhow::anyhow!("{e}")),
            Some(text) => self.parse(&text),
        }
    }

    pub fn parse(&self, text: &str) -> Result<Loaded> {
        let name = self.config_path.display().to_string();
        match load_str(text, Some(&name)) {
            Ok(loaded) => {
                print_load_warnings(&loaded.warnings);
                Ok(loaded)
            }
            Err(e) => {
                print_diagnostics_in(&e.diagnostics(), text);
                Err(anyhow::anyhow!("{e}"))
            }
        }
    }

    /// The config text, or `None` when the file does not exist yet.
    pub fn read_text(&self) -> Result<Option<String>> {
        match std::fs::metadata(&self.config_path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.config_path.display())),
            Ok(meta) if meta.len() > chela_core::config::load::MAX_CONFIG_BYTES => {
                Err(anyhow::anyhow!("{}", ConfigError::TooLarge { path: self.config_path.clone(), size: meta.len() }))
            }
            Ok(_) => std::fs::read_to_string(&self.config_path)
                .map(Some)
                .with_context(|| format!("cannot read {}", self.config_path.display())),
        }
    }

    /// The variables chela reads (`${VAR}`, `<PROVIDER>_API_KEY`): the process
    /// environment, then `<stateDir>/.env`, then the config's `env.vars`
    /// (core's `config::env`). A line of `.env` that does not parse is
    /// reported with the file and line and skipped.
    pub fn vars(&self, cfg: &Config) -> Arc<EnvVars> {
        let process: Arc<EnvVars> = Arc::new(|k: &str| std::env::var(k).ok());
        let path = self.env.state_dir().join(".env");
        let mut dotenv = Vec::new();
        if let Ok(iter) = dotenvy::from_path_iter(&path) {
            for (i, item) in iter.enumerate() {
                match item {
                    Ok(pair) => dotenv.push(pair),
                    Err(e) => eprintln!("warning: {}: entry {} skipped: {e}", path.display(), i + 1),
                }
            }
        }
        chela_core::config::env::layered(process, dotenv, cfg)
    }

    /// Replaces the config file atomically (`chela_durable::replace`); the
    /// previous version is kept as `<file>.bak`. A crash leaves either
    /// version, never half.
    pub fn write_config(&self, old: Option<&str>, new: &str) -> Result<()> {
        chela_gateway::write_config(&self.config_path, old, new)
            .with_context(|| format!("cannot write {}", self.config_path.display()))
    }
}

pub use chela_core::config::validate::new_errors;

/// The shared database the config or environment names (core's `storage`),
/// connected; `None`: sessions in the embedded files.
pub fn database(cfg: &Config, env: &Environment) -> Result<Option<Arc<chela_database::Database>>> {
    Ok(chela_gateway::connect_database(cfg, env)?)
}
