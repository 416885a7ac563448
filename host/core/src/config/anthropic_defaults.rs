//! The defaults OpenClaw 2026.9.6's bundled Anthropic plugin gives a config
//! that uses Anthropic (`docs/concepts/session-pruning.md`, "Smart
//! defaults"; `docs/gateway/heartbeat.md`): when `agents.defaults` exists
//! and Anthropic auth is configured, session pruning is `cache-ttl` with a
//! `1h` TTL unless `contextPruning.mode` is set, and the heartbeat runs every
//! `1h` with OAuth/token auth (`30m` with an API key) unless
//! `heartbeat.every` is set. The auth mode is read as OpenClaw reads it: the
//! config's `auth.order.anthropic` profiles first, then whether
//! `auth.profiles` hold only API keys or only tokens, then
//! `$ANTHROPIC_OAUTH_TOKEN`, then `$ANTHROPIC_API_KEY`.
//!
//! Must not: override a value the user set, read a file, or decide anything
//! but these defaults (where pruning happens is `pruning`'s).

use serde_json::Value;

use super::schema::{Config, ContextPruningConfig, HeartbeatConfig};
use super::EnvVars;

/// How the config authenticates to Anthropic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    ApiKey,
    /// An OAuth or setup token (Claude subscriptions, Claude CLI reuse).
    Token,
}

/// The TTL the Anthropic defaults give session pruning.
pub const PRUNING_TTL: &str = "1h";

/// The Anthropic auth mode `cfg` and `env` configure, if any.
pub fn auth_mode(cfg: &Config, env: &EnvVars) -> Option<AuthMode> {
    let auth = cfg.auth.as_ref();
    let profiles = auth.and_then(|a| a.get("profiles")).and_then(Value::as_object);
    let anthropic: Vec<&Value> = profiles
        .into_iter()
        .flatten()
        .map(|(_, p)| p)
        .filter(|p| matches!(provider(p), Some("anthropic" | "claude-cli")))
        .collect();
    let order = auth.and_then(|a| a.get("order"));
    let ordered = ["anthropic", "claude-cli"]
        .iter()
        .flat_map(|k| order.and_then(|o| o.get(k)).and_then(Value::as_array).into_iter().flatten())
        .filter_map(Value::as_str);
    for id in ordered {
        let Some(p) = profiles.and_then(|ps| ps.get(id)) else { continue };
        match (provider(p), mode(p)) {
            (Some("claude-cli"), _) => return Some(AuthMode::Token),
            (Some("anthropic"), Some("api_key")) => return Some(AuthMode::ApiKey),
            (Some("anthropic"), Some("oauth" | "token")) => return Some(AuthMode::Token),
            _ => {}
        }
    }
    let has_key = anthropic.iter().any(|p| provider(p) == Some("anthropic") && mode(p) == Some("api_key"));
    let has_token =
        anthropic.iter().any(|p| provider(p) == Some("claude-cli") || matches!(mode(p), Some("oauth" | "token")));
    match (has_key, has_token) {
        (true, false) => return Some(AuthMode::ApiKey),
        (false, true) => return Some(AuthMode::Token),
        _ => {}
    }
    let set = |k: &str| env(k).is_some_and(|v| !v.trim().is_empty());
    if set("ANTHROPIC_OAUTH_TOKEN") {
        Some(AuthMode::Token)
    } else if set("ANTHROPIC_API_KEY") {
        Some(AuthMode::ApiKey)
    } else {
        None
    }
}

fn provider(p: &Value) -> Option<&str> {
    p.get("provider").and_then(Value::as_str)
}

fn mode(p: &Value) -> Option<&str> {
    p.get("mode").and_then(Value::as_str)
}

/// `cfg` with the Anthropic defaults filled in where it leaves them unset,
/// and what was filled in (`agents.defaults.contextPruning.mode`, …); `None`
/// when nothing changes.
pub fn applied(cfg: &Config, env: &EnvVars) -> Option<(Config, Vec<&'static str>)> {
    let defaults = cfg.agent_defaults()?;
    let mode = auth_mode(cfg, env)?;
    let mut filled = Vec::new();
    let mut next = defaults.clone();
    if defaults.context_pruning.as_ref().and_then(|p| p.mode.as_ref()).is_none() {
        let pruning = next.context_pruning.get_or_insert_with(ContextPruningConfig::default);
        pruning.mode = Some("cache-ttl".into());
        pruning.ttl.get_or_insert_with(|| PRUNING_TTL.into());
        filled.push("agents.defaults.contextPruning.mode");
    }
    if defaults.heartbeat.as_ref().and_then(|h| h.every.as_ref()).is_none() {
        let every = match mode {
            AuthMode::Token => "1h",
            AuthMode::ApiKey => "30m",
        };
        next.heartbeat.get_or_insert_with(HeartbeatConfig::default).every = Some(every.into());
        filled.push("agents.defaults.heartbeat.every");
    }
    if filled.is_empty() {
        return None;
    }
    let mut cfg = cfg.clone();
    cfg.agents.get_or_insert_with(Default::default).defaults = Some(next);
    Some((cfg, filled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn cfg(text: &str) -> Config {
        load_str(text, None).expect("config").config
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_auth_mode_is_read_as_openclaw_reads_it() {
        let profiles =
            |p: &str, order: &str| cfg(&format!(r#"{{ auth: {{ profiles: {{ {p} }}, order: {{ {order} }} }} }}"#));
        let key = r#""anthropic:key": { provider: "anthropic", mode: "api_key" }"#;
        let token = r#""anthropic:sub": { provider: "anthropic", mode: "token" }"#;
        assert_eq!(auth_mode(&profiles(key, ""), &no_env), Some(AuthMode::ApiKey));
        assert_eq!(auth_mode(&profiles(token, ""), &no_env), Some(AuthMode::Token));
        let both = profiles(&format!("{key}, {token}"), "");
        assert_eq!(auth_mode(&both, &no_env), None, "both kinds and no order: undecided");
        let ordered = profiles(&format!("{key}, {token}"), r#"anthropic: ["anthropic:sub"]"#);
        assert_eq!(auth_mode(&ordered, &no_env), Some(AuthMode::Token), "the order decides");
        let oauth_env = |k: &str| (k == "ANTHROPIC_OAUTH_TOKEN").then(|| "sk-ant-oat-1".to_string());
        assert_eq!(auth_mode(&both, &oauth_env), Some(AuthMode::Token));
        let key_env = |k: &str| (k == "ANTHROPIC_API_KEY").then(|| "sk-ant-api-1".to_string());
        assert_eq!(auth_mode(&Config::default(), &key_env), Some(AuthMode::ApiKey));
        assert_eq!(auth_mode(&Config::default(), &no_env), None);
    }

    #[test]
    fn defaults_fill_only_what_is_unset_and_only_with_agents_defaults() {
        let key_env = |k: &str| (k == "ANTHROPIC_API_KEY").then(|| "sk-ant-api-1".to_string());
        let token_env = |k: &str| (k == "ANTHROPIC_OAUTH_TOKEN").then(|| "sk-ant-oat-1".to_string());
        assert!(applied(&cfg("{}"), &key_env).is_none(), "no agents.defaults: OpenClaw leaves the config alone");
        assert!(applied(&cfg("{ agents: { defaults: {} } }"), &no_env).is_none(), "no Anthropic auth");

        let (c, filled) = applied(&cfg("{ agents: { defaults: {} } }"), &token_env).expect("filled");
        assert_eq!(filled, ["agents.defaults.contextPruning.mode", "agents.defaults.heartbeat.every"]);
        let d = c.agent_defaults().expect("defaults");
        let pruning = d.context_pruning.as_ref().expect("pruning");
        assert_eq!((pruning.mode.as_deref(), pruning.ttl.as_deref()), (Some("cache-ttl"), Some("1h")));
        assert_eq!(d.heartbeat.as_ref().and_then(|h| h.every.as_deref()), Some("1h"), "OAuth/token: 1h");
        let (c, _) = applied(&cfg("{ agents: { defaults: {} } }"), &key_env).expect("filled");
        assert_eq!(c.agent_defaults().and_then(|d| d.heartbeat.as_ref()?.every.as_deref()), Some("30m"));

        let set = cfg(r#"{ agents: { defaults: { contextPruning: { mode: "off" }, heartbeat: { every: "2h" } } } }"#);
        assert!(applied(&set, &key_env).is_none(), "what the user set stays");
        let ttl_only =
            cfg(r#"{ agents: { defaults: { contextPruning: { ttl: "10m" }, heartbeat: { every: "2h" } } } }"#);
        let (c, filled) = applied(&ttl_only, &key_env).expect("mode filled");
        assert_eq!(filled, ["agents.defaults.contextPruning.mode"]);
        let pruning = c.agent_defaults().and_then(|d| d.context_pruning.clone()).expect("pruning");
        assert_eq!((pruning.mode.as_deref(), pruning.ttl.as_deref()), (Some("cache-ttl"), Some("10m")));
    }
}
