//! The environment chela reads variables from (`${VAR}` references, a
//! provider's `<PROVIDER>_API_KEY`), layered as OpenClaw 2026.9.6 layers it
//! (`docs/help/environment.md`): the process environment, then the state
//! dir's `.env`, then the config's `env.vars`. A lower layer never overrides
//! a higher one, so a variable set in the shell always wins.
//!
//! Must not: read a file or the process environment itself (the caller
//! hands both in), or change the process environment.

use std::collections::HashMap;
use std::sync::Arc;

use super::plugin_entry::EnvVars;
use super::schema::Config;

/// `env.vars` of the config: name → value (non-string values are skipped;
/// the loader already reported them).
pub fn config_vars(cfg: &Config) -> HashMap<String, String> {
    cfg.env
        .as_ref()
        .and_then(|e| e.get("vars"))
        .and_then(|v| v.as_object())
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

/// `process`, then `dotenv` (the state dir's `.env`, in file order: a
/// later line wins over an earlier one of the same name), then `env.vars`.
pub fn layered(process: Arc<EnvVars>, dotenv: Vec<(String, String)>, cfg: &Config) -> Arc<EnvVars> {
    let mut lower: HashMap<String, String> = config_vars(cfg);
    lower.extend(dotenv);
    if lower.is_empty() {
        return process;
    }
    Arc::new(move |k: &str| process(k).or_else(|| lower.get(k).cloned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_wins_then_the_dotenv_then_the_config() {
        let cfg = crate::config::load_str(r#"{ env: { vars: { A: "config", B: "config", C: "config" } } }"#, None)
            .unwrap()
            .config;
        let process: Arc<EnvVars> = Arc::new(|k: &str| (k == "A").then(|| "shell".to_string()));
        let vars = layered(process, vec![("B".into(), "dotenv".into()), ("A".into(), "dotenv".into())], &cfg);
        assert_eq!(vars("A").as_deref(), Some("shell"));
        assert_eq!(vars("B").as_deref(), Some("dotenv"));
        assert_eq!(vars("C").as_deref(), Some("config"));
        assert_eq!(vars("D"), None);
    }
}
