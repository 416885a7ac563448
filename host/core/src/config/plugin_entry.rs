//! `plugins.entries.<id>`: what chela reads of one plugin's entry, read here
//! and nowhere else (the plugin runtime, the gateway and the CLI ask this
//! module), and `${VAR}` references, the one meaning they have everywhere.
//!
//! Must not: read the environment itself (callers pass the lookup), or
//! refuse keys it does not read (OpenClaw's other entry keys stay as written).

use serde_json::Value;

use crate::config::schema::Config;

/// One secret of a plugin: `secrets.NAME` as a string, or `{ value, hosts }`
/// (then it is substituted only in requests to those hosts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSecret {
    pub name: String,
    /// As written: a literal or a `${VAR}` reference ([`resolve_env_ref`]).
    pub value: String,
    pub hosts: Option<Vec<String>>,
}

/// The keys of `plugins.entries.<id>` chela acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginEntry {
    /// `enabled: false` keeps the plugin's tools from every agent.
    pub enabled: Option<bool>,
    /// The hosts the operator grants the plugin (its own declarations are only a request).
    pub allow_hosts: Option<Vec<String>>,
    /// Lowers the plugin's memory cap below the engine's (never raises it).
    pub max_memory_mb: Option<u64>,
    /// A channel plugin's instances per account for sends and webhooks
    /// (a chela extension; default: one per core, at most 4: `chela-plugin`).
    pub instances_per_account: Option<u64>,
    pub secrets: Vec<PluginSecret>,
}

impl PluginEntry {
    /// The entry of `plugin_id` (empty when the config has none).
    pub fn of(cfg: &Config, plugin_id: &str) -> PluginEntry {
        let Some(raw) = cfg.plugins.as_ref().and_then(|p| p.entries.as_ref()?.get(plugin_id)) else {
            return PluginEntry::default();
        };
        let strings = |v: &Value| serde_json::from_value::<Vec<String>>(v.clone()).ok();
        let secrets = raw
            .get("secrets")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(name, v)| {
                let (value, hosts) = match v {
                    Value::String(s) => (s.clone(), None),
                    Value::Object(o) => (o.get("value")?.as_str()?.to_string(), o.get("hosts").and_then(strings)),
                    _ => return None,
                };
                Some(PluginSecret { name: name.clone(), value, hosts })
            })
            .collect();
        PluginEntry {
            enabled: raw.get("enabled").and_then(Value::as_bool),
            allow_hosts: raw.get("allowHosts").and_then(strings),
            max_memory_mb: raw.get("maxMemoryMb").and_then(Value::as_u64),
            instances_per_account: raw.get("instancesPerAccount").and_then(Value::as_u64),
            secrets,
        }
    }

    /// `instancesPerAccount`, between 1 and 64 (`None`: not set; the plugin
    /// runtime picks its default).
    pub fn instances_per_account(&self) -> Option<usize> {
        self.instances_per_account.map(|n| usize::try_from(n).unwrap_or(usize::MAX).clamp(1, 64))
    }

    /// `maxMemoryMb` in bytes.
    pub fn memory_bytes(&self) -> Option<usize> {
        Some(usize::try_from(self.max_memory_mb?).ok()?.saturating_mul(1 << 20))
    }
}

/// How `${VAR}` references are read: the process environment in the
/// binary, a closure in tests (so they need no process env).
pub type EnvVars = dyn Fn(&str) -> Option<String> + Send + Sync;

/// A setting or secret value with a whole-value `${VAR}` reference read
/// through `lookup`: the literal itself when it is not a reference, `None`
/// when the variable is not set (the setting is then absent, not empty).
pub fn resolve_env_ref(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    match value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
        Some(var) => lookup(var),
        None => Some(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_keys_chela_acts_on_and_references() {
        let cfg = crate::config::load_str(
            r#"{plugins: {entries: {web: {enabled: false, allowHosts: ["api.example.com"], maxMemoryMb: 8,
                secrets: {KEY: "${WEB_KEY}", PIN: {value: "1234", hosts: ["api.example.com"]}, BAD: 5}, config: {x: 1}}}}}"#,
            None,
        )
        .unwrap()
        .config;
        let e = PluginEntry::of(&cfg, "web");
        assert_eq!(e.enabled, Some(false));
        assert_eq!(e.allow_hosts.as_deref(), Some(&["api.example.com".to_string()][..]));
        assert_eq!(e.memory_bytes(), Some(8 << 20));
        let names: Vec<&str> = e.secrets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["KEY", "PIN"], "a secret that is neither a string nor {{value}} is skipped");
        assert_eq!(PluginEntry::of(&cfg, "other"), PluginEntry::default());
        let env = |k: &str| (k == "WEB_KEY").then(|| "k-1".to_string());
        assert_eq!(resolve_env_ref("${WEB_KEY}", &env), Some("k-1".into()));
        assert_eq!(resolve_env_ref("${NOPE}", &env), None);
        assert_eq!(resolve_env_ref("plain", &env), Some("plain".into()));
    }
}
