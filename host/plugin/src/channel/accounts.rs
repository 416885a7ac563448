//! A channel's accounts as the config writes them, turned into what its
//! adapter is given: settings merged over the channel's top level, credential
//! settings taken out into the account's secret store (`${VAR}` resolved),
//! the account's kv dir, and the hosts the adapter may reach.
//!
//! Must not: start, call or hold adapter instances (`channel.rs` does), or
//! read the process environment itself (the caller passes the lookup).

use std::collections::BTreeSet;
use std::sync::Arc;

use chela_core::config::paths::{expand_tilde, Environment};
use chela_core::config::plugin_entry::{resolve_env_ref, PluginEntry};
use chela_core::config::schema::Config;
use chela_core::config::EnvVars;
use serde_json::Value;

use super::ChannelInfo;
use crate::capability::kv::KvPlace;
use crate::capability::secrets::SecretStore;

/// One configured account of a channel, as the adapter is given it.
#[derive(Debug, Clone)]
pub struct AccountSetup {
    pub account_id: String,
    /// `channels.<ch>.accounts.<id>` (or the channel's top level) without
    /// the secrets, as JSON.
    pub settings: Value,
    /// The secrets taken out of the settings, by setting name.
    pub secrets: Arc<SecretStore>,
    /// Where the account's kv state is kept.
    pub kv: KvPlace,
    /// The account's config as written (settings, credential references,
    /// `authDir`): when it changes, the account is configured anew.
    pub fingerprint: String,
}

/// Setting names that hold credentials: they go to the secrets store and
/// never into the plugin (the adapter refers to them as `{{secret:NAME}}`).
pub fn is_secret_setting(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["token", "secret", "password", "apikey"].iter().any(|s| n.ends_with(s))
}

/// The accounts of `channel` in the config: `accounts.<id>` merged over the
/// channel's top-level settings, or the top level alone as account `default`.
/// Disabled accounts are left out. An account's kv lives in its `authDir`
/// (under a folder named after the plugin) when it has one.
pub fn account_setups(
    cfg: &Config,
    env: &Environment,
    channel: &str,
    plugin_id: &str,
    vars: &EnvVars,
) -> Vec<AccountSetup> {
    let Some(ch) = cfg.channels.as_ref().and_then(|c| c.get(channel)) else { return Vec::new() };
    let top: serde_json::Map<String, Value> = ch.top.settings.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let raw: Vec<(String, serde_json::Map<String, Value>, Option<String>)> = ch
        .declared_accounts()
        .into_iter()
        .filter(|a| a.enabled)
        .map(|a| {
            // An account's own settings over the channel's (a no-op for `default` at the top level).
            let mut merged = top.clone();
            merged.extend(a.account.settings.iter().map(|(k, v)| (k.clone(), v.clone())));
            // Not inherited: accounts sharing a state dir would share offsets and sessions.
            (a.id, merged, a.account.auth_dir.clone())
        })
        .collect();
    raw.into_iter()
        .map(|(account_id, mut settings, auth_dir)| {
            let fingerprint = format!("{}|{auth_dir:?}", Value::Object(settings.clone()));
            let mut secrets = Vec::new();
            settings.retain(|k, v| match (is_secret_setting(k), v.as_str()) {
                (true, Some(s)) => {
                    match resolve_env_ref(s, vars) {
                        Some(value) => secrets.push((k.clone(), value)),
                        // Absent rather than empty: the adapter says the credential is missing.
                        None => tracing::warn!(channel, account = %account_id, setting = %k, reference = %s,
                            "credential references an environment variable that is not set"),
                    }
                    false
                }
                _ => true,
            });
            // The account's durable state (offsets, sessions, dedupe sets): its
            // `authDir` when set (relative to the state dir), else under the state dir.
            // On a shared database it is the scope `<plugin>/account-<id>` there.
            let dir = match auth_dir.as_deref().filter(|d| !d.trim().is_empty()) {
                Some(dir) => env.state_dir().join(expand_tilde(dir, &env.home)).join(plugin_id),
                None => {
                    env.state_dir().join("plugins").join("kv").join(plugin_id).join(format!("account-{account_id}"))
                }
            };
            let kv = KvPlace { dir, scope: format!("{plugin_id}/account-{account_id}") };
            AccountSetup {
                account_id,
                settings: Value::Object(settings),
                secrets: SecretStore::from_pairs(secrets),
                kv,
                fingerprint,
            }
        })
        .collect()
}

/// Hosts the adapter may reach, as (operator-allowed, public-only):
/// `plugins.entries.<id>.allowHosts` when set; else the base URLs its
/// accounts are pointed at (the operator wrote them) and the adapter's own
/// platform defaults, which must be public DNS names (`egress.rs`).
pub(super) fn allowed_hosts(
    cfg: &Config,
    plugin_id: &str,
    info: &ChannelInfo,
    accounts: &[AccountSetup],
) -> (Vec<String>, Vec<String>) {
    match PluginEntry::of(cfg, plugin_id).allow_hosts {
        Some(hosts) => (hosts, Vec::new()),
        None => (configured_hosts(accounts), info.http_hosts.clone()),
    }
}

/// Hosts of URL settings the user configured (`apiRoot`, `baseUrl`,
/// `gatewayUrl`, …): an adapter may reach the base URL its account is pointed at.
fn configured_hosts(accounts: &[AccountSetup]) -> Vec<String> {
    let mut hosts = BTreeSet::new();
    for a in accounts {
        let Some(map) = a.settings.as_object() else { continue };
        for v in map.values().filter_map(Value::as_str) {
            let Ok(url) = url::Url::parse(v.trim()) else { continue };
            if !["http", "https", "ws", "wss"].contains(&url.scheme()) || !url.username().is_empty() {
                continue;
            }
            if let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) {
                hosts.insert(format!("{host}:{port}"));
            }
        }
    }
    hosts.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn accounts_merge_settings_take_out_secrets_and_keep_state_in_auth_dir() {
        let cfg = chela_core::config::load_str(
            r#"{channels: {slack: {apiBase: "http://127.0.0.1:9", botToken: "${SLACK_BOT}",
                accounts: {a: {appToken: "xapp-a"}, b: {authDir: "~/slack-b", botToken: "xoxb-b"}, c: {enabled: false}}}}}"#,
            None,
        )
        .expect("config loads")
        .config;
        let env = Environment { home: "/home/u".into(), state_dir: Some("/var/chela".into()), ..Default::default() };
        let vars = |k: &str| (k == "SLACK_BOT").then(|| "xoxb-from-env".to_string());
        let accounts = account_setups(&cfg, &env, "slack", "channel_slack", &vars);
        let ids: Vec<&str> = accounts.iter().map(|a| a.account_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"], "disabled accounts are left out");
        let (a, b) = (&accounts[0], &accounts[1]);
        assert_eq!(a.settings, serde_json::json!({"apiBase": "http://127.0.0.1:9"}), "no secret reaches the plugin");
        assert_eq!(a.secrets.value("botToken"), Some("xoxb-from-env"));
        assert_eq!(a.secrets.value("appToken"), Some("xapp-a"));
        assert_eq!(b.secrets.value("botToken"), Some("xoxb-b"), "the account's own value wins");
        assert_eq!(a.kv.dir, PathBuf::from("/var/chela/plugins/kv/channel_slack/account-a"));
        assert_eq!(b.kv.dir, PathBuf::from("/home/u/slack-b/channel_slack"));
        assert_eq!((a.kv.scope.as_str(), b.kv.scope.as_str()), ("channel_slack/account-a", "channel_slack/account-b"));
        assert_eq!(configured_hosts(&accounts), ["127.0.0.1:9"]);
    }
}
