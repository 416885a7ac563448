//! Channel adapters: one long-lived instance per channel plugin, serving
//! all accounts of that channel one call at a time.
//!
//! Unlike tools (a fresh instance per call), an adapter keeps state between
//! calls (connections, caches), so its instance lives on. Each call is scoped
//! to one account: the instance sees that account's key-value state and
//! secrets only. Every call has a deadline; a trap or timeout drops the
//! instance, and the next call starts a fresh one and re-configures the
//! accounts (durable state, such as a polling offset, lives in kv).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chela_core::config::paths::{expand_tilde, Environment};
use chela_core::config::schema::Config;
use serde_json::Value;
use wasmtime::{Store, UpdateDeadline};

use crate::bindings::channel::{SocketChannelPlugin, SocketChannelPluginPre};
use crate::capability::kv::KvScope;
use crate::capability::secrets::SecretStore;
use crate::capability::{linker_for, Capability, GrantSet};
use crate::engine::{PluginEngine, TICK};
use crate::loader::{LoadedPlugin, PluginStatus, Plugins};
use crate::state::PluginState;

pub use crate::bindings::channel::exports::chela::plugin::channel_adapter::{ChannelInfo, WebhookOutcome};
pub use crate::bindings::chela::plugin::types::{
    Delivery, HttpRequest, HttpResponse, InboundEvent, OutboundMessage, Peer, PeerKind,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("channel plugin `{plugin}` is disabled: {reason}")]
    Disabled { plugin: String, reason: String },
    #[error("channel plugin `{plugin}` did not finish within {limit:?}")]
    Timeout { plugin: String, limit: Duration },
    /// The deadline passed while the adapter waited in a host call (the network): not its fault.
    #[error("channel plugin `{plugin}` did not finish within {limit:?} (waiting on the network)")]
    WaitTimeout { plugin: String, limit: Duration },
    #[error("channel plugin `{plugin}` trapped: {message}")]
    Trap { plugin: String, message: String },
    #[error("cannot start channel plugin `{plugin}`: {message}")]
    Setup { plugin: String, message: String },
    #[error("channel `{channel}` has no account `{account}` configured")]
    UnknownAccount { channel: String, account: String },
    #[error("channel `{channel}` rejected the settings of account `{account}`: {message}")]
    BadSettings { channel: String, account: String, message: String },
    #[error("channel plugin `{plugin}`: {message}")]
    Adapter { plugin: String, message: String },
}

/// Reads an environment variable (`${VAR}` in settings); a closure so tests need no process env.
pub type EnvVars = dyn Fn(&str) -> Option<String> + Send + Sync;

/// One configured account of a channel, as the adapter is given it.
#[derive(Debug, Clone)]
pub struct AccountSetup {
    pub account_id: String,
    /// `channels.<ch>.accounts.<id>` (or the channel's top level) without
    /// the secrets, as JSON.
    pub settings: Value,
    /// The secrets taken out of the settings, by setting name.
    pub secrets: Arc<SecretStore>,
    pub kv_dir: PathBuf,
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

/// A setting value, with `${VAR}` read from the environment.
fn resolve_env(value: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    match value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
        Some(var) => env(var).unwrap_or_default(),
        None => value.to_string(),
    }
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
    let mut raw: Vec<(String, serde_json::Map<String, Value>, Option<String>)> = Vec::new();
    let top: serde_json::Map<String, Value> = ch.top.settings.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    match &ch.accounts {
        Some(accounts) if !accounts.is_empty() => {
            for (id, a) in accounts {
                if a.enabled == Some(false) {
                    continue;
                }
                let mut merged = top.clone();
                merged.extend(a.settings.iter().map(|(k, v)| (k.clone(), v.clone())));
                // Not inherited: accounts sharing a state dir would share offsets and sessions.
                raw.push((id.clone(), merged, a.auth_dir.clone()));
            }
        }
        _ if ch.top.enabled != Some(false) => raw.push(("default".to_string(), top, ch.top.auth_dir.clone())),
        _ => {}
    }
    raw.into_iter()
        .map(|(account_id, mut settings, auth_dir)| {
            let fingerprint = format!("{}|{auth_dir:?}", Value::Object(settings.clone()));
            let mut secrets = Vec::new();
            settings.retain(|k, v| match (is_secret_setting(k), v.as_str()) {
                (true, Some(s)) => {
                    secrets.push((k.clone(), resolve_env(s, vars)));
                    false
                }
                _ => true,
            });
            // The account's durable state (offsets, sessions, dedupe sets): its
            // `authDir` when set (relative to the state dir), else under the state dir.
            let kv_dir = match auth_dir.as_deref().filter(|d| !d.trim().is_empty()) {
                Some(dir) => env.state_dir().join(expand_tilde(dir, &env.home)).join(plugin_id),
                None => {
                    env.state_dir().join("plugins").join("kv").join(plugin_id).join(format!("account-{account_id}"))
                }
            };
            AccountSetup {
                account_id,
                settings: Value::Object(settings),
                secrets: SecretStore::from_pairs(secrets),
                kv_dir,
                fingerprint,
            }
        })
        .collect()
}

/// Hosts the adapter may reach, as (operator-allowed, public-only):
/// `plugins.entries.<id>.allowHosts` when set; else the base URLs its
/// accounts are pointed at (the operator wrote them) and the adapter's own
/// platform defaults, which must be public DNS names (`egress.rs`).
fn allowed_hosts(
    cfg: &Config,
    plugin_id: &str,
    info: &ChannelInfo,
    accounts: &[AccountSetup],
) -> (Vec<String>, Vec<String>) {
    let configured = cfg
        .plugins
        .as_ref()
        .and_then(|p| p.entries.as_ref()?.get(plugin_id)?.get("allowHosts").cloned())
        .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok());
    match configured {
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

struct Live {
    store: Store<PluginState>,
    bindings: SocketChannelPlugin,
}

/// The channel's accounts in the config, and those the adapter refused.
#[derive(Default)]
struct Accounts {
    configured: BTreeMap<String, Arc<AccountSetup>>,
    /// Account → the adapter's reason; such an account is not served.
    refused: BTreeMap<String, String>,
    /// Bumped each time an account is configured anew: work started for an
    /// older generation (a poller) stops.
    generation: BTreeMap<String, u64>,
}

/// What [`ChannelRuntime::reconcile`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// New accounts and accounts whose settings changed, configured anew and served.
    pub started: Vec<String>,
    pub removed: Vec<String>,
    /// Accounts whose new settings the adapter refused, with its reason.
    pub refused: Vec<(String, String)>,
}

/// A running channel adapter.
pub struct ChannelRuntime {
    pub plugin: Arc<LoadedPlugin>,
    pub info: ChannelInfo,
    engine: Arc<PluginEngine>,
    pre: SocketChannelPluginPre<PluginState>,
    grants: GrantSet,
    accounts: std::sync::RwLock<Accounts>,
    live: tokio::sync::Mutex<Option<Live>>,
    /// The instance's memory cap (`plugins.entries.<id>.maxMemoryMb`, at most the engine's).
    memory_bytes: usize,
}

enum Op {
    Describe,
    Configure(String, String),
    Remove(String),
    Webhook(String, HttpRequest),
    Poll(String),
    Send(OutboundMessage),
}

enum OpValue {
    Describe(ChannelInfo),
    Configure(Result<(), String>),
    Removed,
    /// The outcome, and the secrets the delivery proved it knows.
    Webhook(WebhookOutcome, Vec<String>),
    Poll(Result<Vec<InboundEvent>, String>),
    Send(Delivery),
}

const DEADLINE: &str = "chela: call deadline exceeded";

impl ChannelRuntime {
    /// Links `plugin` (a channel component), describes it and configures
    /// every account of its channel from `cfg`.
    pub async fn start(
        plugins: &Plugins,
        plugin: Arc<LoadedPlugin>,
        cfg: &Config,
        env: &Environment,
        vars: &EnvVars,
    ) -> Result<ChannelRuntime, ChannelError> {
        let pid = plugin.id.clone();
        let setup = |message: String| ChannelError::Setup { plugin: pid.clone(), message };
        // A channel adapter may import log, kv, secrets, HTTP and websocket;
        // never the agent capabilities (process, sessions).
        if let Some(c) = plugin.manifest.needs.iter().find(|c| matches!(c, Capability::Process | Capability::Sessions))
        {
            return Err(setup(format!("imports capability `{}`, which channel plugins are not granted", c.as_str())));
        }
        let shape: BTreeSet<Capability> = plugin.manifest.needs.clone();
        let engine = plugins.engine().clone();
        let engine_memory = engine.limits().memory_bytes;
        let linker = linker_for(engine.engine(), &shape).map_err(|e| setup(format!("{e:#}")))?;
        let pre = linker.instantiate_pre(&plugin.component).map_err(|e| setup(format!("cannot link: {e:#}")))?;
        let pre = SocketChannelPluginPre::new(pre).map_err(|e| setup(format!("{e:#}")))?;
        let mut rt = ChannelRuntime {
            info: ChannelInfo {
                id: String::new(),
                version: String::new(),
                text_limit: 0,
                supports_threads: false,
                http_hosts: Vec::new(),
                needs_polling: false,
            },
            engine,
            pre,
            grants: GrantSet { capabilities: shape, ..GrantSet::minimal() },
            accounts: std::sync::RwLock::default(),
            live: tokio::sync::Mutex::new(None),
            memory_bytes: crate::linking::plugin_memory(cfg, &plugin.id)
                .map_or(engine_memory, |m| m.min(engine_memory)),
            plugin,
        };
        let OpValue::Describe(info) = rt.call(None, Op::Describe).await? else {
            return Err(setup("describe returned something else".into()));
        };
        if info.id.is_empty() {
            return Err(setup("describe returned an empty channel id".into()));
        }
        let accounts = account_setups(cfg, env, &info.id, &rt.plugin.id, vars);
        (rt.grants.http_hosts, rt.grants.public_hosts) = allowed_hosts(cfg, &rt.plugin.id, &info, &accounts);
        rt.info = info;
        {
            let mut acc = rt.accounts.write().unwrap_or_else(|p| p.into_inner());
            for a in accounts {
                acc.generation.insert(a.account_id.clone(), 1);
                acc.configured.insert(a.account_id.clone(), Arc::new(a));
            }
        }
        // A fresh instance for serving, configured with every account.
        *rt.live.lock().await = None;
        let mut live = rt.live.lock().await;
        rt.ensure(&mut live).await?;
        drop(live);
        Ok(rt)
    }

    pub fn channel_id(&self) -> &str {
        &self.info.id
    }

    /// The accounts being served (configured, not refused by the adapter).
    pub fn account_ids(&self) -> Vec<String> {
        let acc = self.accounts.read().unwrap_or_else(|p| p.into_inner());
        acc.configured.keys().filter(|a| !acc.refused.contains_key(*a)).cloned().collect()
    }

    pub fn has_account(&self, account: &str) -> bool {
        let acc = self.accounts.read().unwrap_or_else(|p| p.into_inner());
        acc.configured.contains_key(account) && !acc.refused.contains_key(account)
    }

    /// Accounts whose settings the adapter refused, with its reason.
    pub fn refused_accounts(&self) -> Vec<(String, String)> {
        let acc = self.accounts.read().unwrap_or_else(|p| p.into_inner());
        acc.refused.iter().map(|(a, why)| (a.clone(), why.clone())).collect()
    }

    /// The account's configuration generation (`None`: not configured).
    pub fn generation(&self, account: &str) -> Option<u64> {
        self.accounts.read().unwrap_or_else(|p| p.into_inner()).generation.get(account).copied()
    }

    /// Brings the accounts in line with `cfg` on the running instance: new
    /// and changed accounts are configured (the adapter starts them over),
    /// removed ones are removed; the others are not touched, so their
    /// connections and pollers carry on. An error (the allowed hosts changed,
    /// the instance trapped) means: restart the whole adapter instead.
    pub async fn reconcile(&self, cfg: &Config, env: &Environment, vars: &EnvVars) -> Result<Reconciled, ChannelError> {
        let wanted = account_setups(cfg, env, &self.info.id, &self.plugin.id, vars);
        let (operator, public) = allowed_hosts(cfg, &self.plugin.id, &self.info, &wanted);
        let newly = operator
            .iter()
            .find(|h| !self.grants.http_hosts.contains(h))
            .or_else(|| public.iter().find(|h| !self.grants.public_hosts.contains(h)));
        if let Some(h) = newly {
            return Err(ChannelError::Setup {
                plugin: self.plugin.id.clone(),
                message: format!("host `{h}` is newly allowed: the adapter restarts with it"),
            });
        }
        let mut wanted: BTreeMap<String, Arc<AccountSetup>> =
            wanted.into_iter().map(|a| (a.account_id.clone(), Arc::new(a))).collect();
        let (changed, removed) = {
            let acc = self.accounts.read().unwrap_or_else(|p| p.into_inner());
            let changed: Vec<Arc<AccountSetup>> = wanted
                .values()
                .filter(|w| acc.configured.get(&w.account_id).is_none_or(|c| c.fingerprint != w.fingerprint))
                .cloned()
                .collect();
            let removed: Vec<Arc<AccountSetup>> =
                acc.configured.values().filter(|c| !wanted.contains_key(&c.account_id)).cloned().collect();
            (changed, removed)
        };
        let mut out = Reconciled::default();
        let mut live = self.live.lock().await;
        let mut refused = Vec::new();
        if let Some(instance) = live.as_mut() {
            for a in &removed {
                if let Err(e) = self.run(instance, Some(a), Op::Remove(a.account_id.clone())).await {
                    *live = None;
                    return Err(e);
                }
            }
            for a in &changed {
                match self.run(instance, Some(a), Op::Configure(a.account_id.clone(), a.settings.to_string())).await {
                    Ok(OpValue::Configure(Ok(()))) => {}
                    Ok(OpValue::Configure(Err(why))) => {
                        // Whatever the account held under its old settings is let go.
                        if let Err(e) = self.run(instance, Some(a), Op::Remove(a.account_id.clone())).await {
                            *live = None;
                            return Err(e);
                        }
                        refused.push((a.account_id.clone(), why));
                    }
                    Ok(_) => return Err(self.adapter("configure-account returned something else")),
                    Err(e) => {
                        *live = None;
                        return Err(e);
                    }
                }
            }
        }
        {
            let mut acc = self.accounts.write().unwrap_or_else(|p| p.into_inner());
            for a in &removed {
                acc.configured.remove(&a.account_id);
                acc.refused.remove(&a.account_id);
                acc.generation.remove(&a.account_id);
                out.removed.push(a.account_id.clone());
            }
            for a in changed {
                let id = a.account_id.clone();
                acc.refused.remove(&id);
                *acc.generation.entry(id.clone()).or_default() += 1;
                acc.configured.insert(id.clone(), wanted.remove(&id).unwrap_or(a));
                out.started.push(id);
            }
            for (id, why) in refused {
                out.started.retain(|s| *s != id);
                acc.refused.insert(id.clone(), why.clone());
                out.refused.push((id, why));
            }
        }
        // Not running (never started or dropped after a trap): the next call configures every account.
        self.ensure(&mut live).await?;
        Ok(out)
    }

    /// Linear memory of the live instance, in bytes (0 when not running).
    pub async fn memory_bytes(&self) -> usize {
        self.live.lock().await.as_ref().map(|l| l.store.data().limits.size).unwrap_or(0)
    }

    /// A request to `/channels/<channel>/<account>/…`.
    pub async fn handle_webhook(&self, account: &str, request: HttpRequest) -> Result<WebhookOutcome, ChannelError> {
        self.known(account)?;
        match self.call(Some(account), Op::Webhook(account.to_string(), request)).await? {
            OpValue::Webhook(mut o, proved) => {
                o.events.retain(|ev| self.may_credit(account, &ev.account_id, &proved));
                Ok(o)
            }
            _ => Err(self.adapter("handle-webhook returned something else")),
        }
    }

    /// A delivery to `url_account`'s webhook may carry events for another
    /// account (one Meta app's callback serves all its numbers) only when it
    /// proved a secret that both accounts hold with the same value: knowing
    /// one account's app secret never lets anyone speak as another account.
    fn may_credit(&self, url_account: &str, target: &str, proved: &[String]) -> bool {
        if target == url_account {
            return true;
        }
        let (Some(from), Some(to)) = (self.setup(url_account), self.setup(target)) else { return false };
        let shared = !proved.is_empty() && proved.iter().all(|name| from.secrets.same_value(&to.secrets, name));
        if !shared {
            tracing::warn!(
                channel = %self.info.id, url_account, target,
                "webhook event for another account dropped: the delivery was not authenticated with that account's secret"
            );
        }
        shared
    }

    pub async fn poll(&self, account: &str) -> Result<Vec<InboundEvent>, ChannelError> {
        self.known(account)?;
        match self.call(Some(account), Op::Poll(account.to_string())).await? {
            OpValue::Poll(r) => r.map_err(|m| self.adapter(&m)),
            _ => Err(self.adapter("poll returned something else")),
        }
    }

    /// Delivers a reply through the account it names (never another one).
    pub async fn send(&self, message: OutboundMessage) -> Result<Delivery, ChannelError> {
        let account = message.account_id.clone();
        self.known(&account)?;
        match self.call(Some(&account), Op::Send(message)).await? {
            OpValue::Send(d) => Ok(d),
            _ => Err(self.adapter("send returned something else")),
        }
    }

    fn adapter(&self, message: &str) -> ChannelError {
        ChannelError::Adapter { plugin: self.plugin.id.clone(), message: message.to_string() }
    }

    fn known(&self, account: &str) -> Result<(), ChannelError> {
        let acc = self.accounts.read().unwrap_or_else(|p| p.into_inner());
        match (acc.configured.contains_key(account), acc.refused.get(account)) {
            (true, None) => Ok(()),
            (true, Some(why)) => Err(ChannelError::BadSettings {
                channel: self.info.id.clone(),
                account: account.to_string(),
                message: why.clone(),
            }),
            (false, _) => {
                Err(ChannelError::UnknownAccount { channel: self.info.id.clone(), account: account.to_string() })
            }
        }
    }

    fn setup(&self, account: &str) -> Option<Arc<AccountSetup>> {
        self.accounts.read().unwrap_or_else(|p| p.into_inner()).configured.get(account).cloned()
    }

    /// Starts the instance if needed and configures every account on it. An
    /// account whose settings the adapter refuses is not served (and says
    /// why); the others are.
    async fn ensure(&self, live: &mut Option<Live>) -> Result<(), ChannelError> {
        if live.is_some() {
            return Ok(());
        }
        let mut fresh = self.instantiate().await?;
        let accounts: Vec<Arc<AccountSetup>> =
            self.accounts.read().unwrap_or_else(|p| p.into_inner()).configured.values().cloned().collect();
        let mut refused = BTreeMap::new();
        for a in accounts {
            let op = Op::Configure(a.account_id.clone(), a.settings.to_string());
            match self.run(&mut fresh, Some(&a), op).await? {
                OpValue::Configure(Ok(())) => {}
                OpValue::Configure(Err(message)) => {
                    tracing::error!(channel = %self.info.id, account = %a.account_id, %message, "account settings refused");
                    refused.insert(a.account_id.clone(), message);
                }
                _ => return Err(self.adapter("configure-account returned something else")),
            }
        }
        self.accounts.write().unwrap_or_else(|p| p.into_inner()).refused = refused;
        *live = Some(fresh);
        Ok(())
    }

    async fn instantiate(&self) -> Result<Live, ChannelError> {
        let limits = *self.engine.limits();
        let setup = |message: String| ChannelError::Setup { plugin: self.plugin.id.clone(), message };
        let state =
            PluginState::new(&self.plugin.id, "-", &self.grants, Arc::new(SecretStore::default()), self.memory_bytes)
                .map_err(setup)?;
        let mut store = Store::new(self.engine.engine(), state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_callback(|cx| match cx.data().deadline {
            Some(d) if Instant::now() >= d => Err(wasmtime::Error::msg(DEADLINE)),
            _ => Ok(UpdateDeadline::Yield(1)),
        });
        store.data_mut().deadline = Some(Instant::now() + limits.call_timeout);
        store.set_epoch_deadline(1);
        let bindings = self.pre.instantiate_async(&mut store).await.map_err(|e| setup(format!("{e:#}")))?;
        Ok(Live { store, bindings })
    }

    /// One call on the live instance (started if needed), scoped to `account`.
    async fn call(&self, account: Option<&str>, op: Op) -> Result<OpValue, ChannelError> {
        if let PluginStatus::Disabled(reason) = self.plugin.status() {
            return Err(ChannelError::Disabled { plugin: self.plugin.id.clone(), reason });
        }
        let mut guard = self.live.lock().await;
        let setup = account.and_then(|a| self.setup(a));
        let setup = setup.as_deref();
        let result = match op {
            Op::Describe => {
                let mut live = self.instantiate().await?;
                self.run(&mut live, None, Op::Describe).await
            }
            op => {
                self.ensure(&mut guard).await?;
                match guard.as_mut() {
                    Some(live) => self.run(live, setup, op).await,
                    None => Err(self.adapter("instance not running")),
                }
            }
        };
        let limits = *self.engine.limits();
        match &result {
            Ok(_) => self.plugin.record(None, &limits),
            Err(e @ (ChannelError::Timeout { .. } | ChannelError::Trap { .. })) => {
                // The instance may be in any state now: start over next time.
                *guard = None;
                self.plugin.record(Some(e), &limits);
            }
            // Cut off inside a host call: start over, but it is not the adapter's fault.
            Err(ChannelError::WaitTimeout { .. }) => *guard = None,
            Err(_) => {}
        }
        result
    }

    async fn run(&self, live: &mut Live, account: Option<&AccountSetup>, op: Op) -> Result<OpValue, ChannelError> {
        let limits = *self.engine.limits();
        let plugin = self.plugin.id.clone();
        let Live { store, bindings } = live;
        match account {
            Some(a) => store.data_mut().enter_scope(Some(KvScope::open(&a.kv_dir)), a.secrets.clone()),
            None => store.data_mut().enter_scope(None, Arc::new(SecretStore::default())),
        }
        store.data_mut().deadline = Some(Instant::now() + limits.call_timeout);
        store.set_epoch_deadline(1);
        let adapter = bindings.chela_plugin_channel_adapter();
        let work = async {
            Ok::<_, wasmtime::Error>(match op {
                Op::Describe => OpValue::Describe(adapter.call_describe(&mut *store).await?),
                Op::Configure(a, s) => OpValue::Configure(adapter.call_configure_account(&mut *store, &a, &s).await?),
                Op::Remove(a) => {
                    adapter.call_remove_account(&mut *store, &a).await?;
                    OpValue::Removed
                }
                Op::Webhook(a, r) => {
                    let outcome = adapter.call_handle_webhook(&mut *store, &a, &r).await?;
                    OpValue::Webhook(outcome, std::mem::take(&mut store.data_mut().proved_secrets))
                }
                Op::Poll(a) => OpValue::Poll(adapter.call_poll(&mut *store, &a).await?),
                Op::Send(m) => OpValue::Send(adapter.call_send(&mut *store, &m).await?),
            })
        };
        let out = tokio::time::timeout(limits.call_timeout + 5 * TICK, work).await;
        store.data_mut().deadline = None;
        store.data_mut().logs.clear();
        match out {
            Err(_) => Err(ChannelError::WaitTimeout { plugin, limit: limits.call_timeout }),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                let text = format!("{e:#}");
                if text.contains(DEADLINE) {
                    Err(ChannelError::Timeout { plugin, limit: limits.call_timeout })
                } else {
                    Err(ChannelError::Trap {
                        plugin,
                        message: text.lines().last().unwrap_or_default().chars().take(500).collect(),
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(a.kv_dir, PathBuf::from("/var/chela/plugins/kv/channel_slack/account-a"));
        assert_eq!(b.kv_dir, PathBuf::from("/home/u/slack-b/channel_slack"));
        assert_eq!(configured_hosts(&accounts), ["127.0.0.1:9"]);
    }
}
