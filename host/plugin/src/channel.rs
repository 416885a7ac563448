//! Channel adapters: long-lived instances of a channel plugin serving the
//! accounts of that channel, one instance per lane (`lanes.rs`: an
//! account's sends and webhooks on one, its polls on another).
//!
//! Unlike tools (a fresh instance per call), an adapter keeps state between
//! calls (connections, caches), so its instances live on. Every instance is
//! configured with every account (a webhook may carry events for another
//! account); each call is scoped to one account: the instance sees that
//! account's key-value state and secrets only. Every call is one guarded
//! call (`guarded.rs`, as a tool's); a trap, timeout or out-of-memory drops
//! that lane's instance, and its next call starts a fresh one and
//! re-configures the accounts (durable state, such as a polling offset,
//! lives in kv, which all instances share).
//!
//! Must not: route or interpret events (the gateway does), or let one
//! account's call see another account's kv or secrets.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use chela_core::config::paths::Environment;
use chela_core::config::plugin_entry::PluginEntry;
use chela_core::config::schema::Config;
use chela_core::config::EnvVars;
use wasmtime::Store;

use crate::capability::kv::KvHome;
use crate::capability::secrets::SecretStore;
use crate::capability::{Capability, GrantSet};
use crate::engine::PluginEngine;
use crate::guarded::{guarded, new_store, CallError};
use crate::loader::{LoadedPlugin, Plugins};
use crate::state::linker_for;
use crate::state::PluginState;

mod accounts;
mod compat;
mod lanes;

pub use crate::bindings::channel::chela::plugin0_2_0::channel_types::{
    AttachmentKind, Download, Identity, InboundAttachment, InboundEvent, MessageRef, OutboundAttachment,
    OutboundMessage,
};
pub use crate::bindings::channel::exports::chela::plugin0_2_0::channel_adapter::{
    ChannelInfo, Features, WebhookOutcome,
};
pub use crate::bindings::plugin::types::{Delivery, HttpRequest, HttpResponse, Peer, PeerKind};
use accounts::allowed_hosts;
pub use accounts::{account_setups, is_secret_setting, AccountSetup};
pub use compat::ContractVersion;
use compat::{Adapter, Bindings, Pre};
pub use lanes::Lane;
use lanes::{Lanes, Slot};

/// Why a channel operation failed: the guarded call itself (the same
/// [`CallError`] as a tool's), or the channel's own accounting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("channel `{channel}` has no account `{account}` configured")]
    UnknownAccount { channel: String, account: String },
    #[error("channel `{channel}` rejected the settings of account `{account}`: {message}")]
    BadSettings { channel: String, account: String, message: String },
    #[error("channel plugin `{plugin}`: {message}")]
    Adapter { plugin: String, message: String },
}

/// Why an attachment's bytes did not come.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownloadError {
    #[error("the file is larger than the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error("{0}")]
    Failed(String),
}

/// An instance in a call: dropped with it unless the call finished.
struct CutOff<'a> {
    live: &'a mut Option<Live>,
    finished: bool,
}

impl Drop for CutOff<'_> {
    fn drop(&mut self) {
        if !self.finished {
            tracing::debug!("a channel call was cut off; its instance is dropped");
            *self.live = None;
        }
    }
}

struct Live {
    store: Store<PluginState>,
    bindings: Bindings,
    /// `channel-probe.probe`, when the component exports it.
    probe: Option<ProbeFunc>,
    /// `channel-settings.settings`, when the component exports it.
    settings: Option<SettingsFunc>,
}

/// The optional `chela:plugin/channel-probe` export (`wit/channel.wit`).
const PROBE_INTERFACE: &str = "chela:plugin/channel-probe@0.1.0";
/// The optional `chela:plugin/channel-settings` export (`wit/channel.wit`).
const SETTINGS_INTERFACE: &str = "chela:plugin/channel-settings@0.1.0";
type SettingsFunc = wasmtime::component::TypedFunc<(), (Vec<String>,)>;
type ProbeFunc = wasmtime::component::TypedFunc<(String,), (Result<String, String>,)>;

/// What a call sees of an instance: the adapter's exports, and the probe when there is one.
struct Exports<'a> {
    adapter: Adapter<'a>,
    probe: Option<ProbeFunc>,
    settings: Option<SettingsFunc>,
}

impl<'a> std::ops::Deref for Exports<'a> {
    type Target = Adapter<'a>;
    fn deref(&self) -> &Adapter<'a> {
        &self.adapter
    }
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
    pre: Pre,
    version: ContractVersion,
    grants: GrantSet,
    /// Where the accounts' kv state is kept (the plugins' [`KvHome`]).
    kv_home: KvHome,
    accounts: std::sync::RwLock<Accounts>,
    lanes: Lanes,
    /// The instance's memory cap (`plugins.entries.<id>.maxMemoryMb`, at most the engine's).
    memory_bytes: usize,
    /// Where the component exports `channel-probe.probe` (`None`: it has no probe).
    probe_export: Option<wasmtime::component::ComponentExportIndex>,
    /// Where it exports `channel-settings.settings`.
    settings_export: Option<wasmtime::component::ComponentExportIndex>,
    /// The settings the adapter says it reads (`channel-settings`), when it says.
    declared_settings: Option<BTreeSet<String>>,
}

/// Serve instances per account unless `instancesPerAccount` says otherwise: one per core, at most 4.
fn default_instances() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(4)
}

fn setup_error(plugin: &str, message: String) -> ChannelError {
    ChannelError::Call(CallError::Setup { plugin: plugin.to_string(), message })
}

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
        let setup = |message: String| setup_error(&pid, message);
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
        let version = ContractVersion::of_export(&plugin.manifest.world_export).ok_or_else(|| {
            setup(format!("`{}`: not a channel contract this host speaks", plugin.manifest.world_export))
        })?;
        let pre = Pre::new(pre, version).map_err(|e| setup(format!("{e:#}")))?;
        let entry = PluginEntry::of(cfg, &plugin.id);
        let export = |interface: &str, func: &str| {
            plugin
                .component
                .get_export_index(None, interface)
                .and_then(|iface| plugin.component.get_export_index(Some(&iface), func))
        };
        let (probe_export, settings_export) =
            (export(PROBE_INTERFACE, "probe"), export(SETTINGS_INTERFACE, "settings"));
        let mut rt = ChannelRuntime {
            info: ChannelInfo {
                id: String::new(),
                version: String::new(),
                text_limit: 0,
                supports_threads: false,
                http_hosts: Vec::new(),
                needs_polling: false,
                features: Features::empty(),
                upload_limit: 0,
            },
            engine,
            pre,
            version,
            grants: GrantSet { capabilities: shape, ..GrantSet::minimal() },
            kv_home: plugins.kv_home(),
            accounts: std::sync::RwLock::default(),
            lanes: Lanes::new(entry.instances_per_account().unwrap_or_else(default_instances)),
            memory_bytes: entry.memory_bytes().map_or(engine_memory, |m| m.min(engine_memory)),
            probe_export,
            settings_export,
            declared_settings: None,
            plugin,
        };
        // Described by an instance of its own, which is then dropped.
        rt.plugin.health.admit()?;
        let mut fresh = rt.instantiate().await?;
        let info = rt
            .run(&mut fresh, None, async |a: &Exports<'_>, s: &mut Store<PluginState>| a.call_describe(s).await)
            .await?;
        let declared = rt
            .run(&mut fresh, None, async |e: &Exports<'_>, s: &mut Store<PluginState>| match e.settings {
                Some(f) => f.call_async(s, ()).await.map(|(names,)| Some(names)),
                None => Ok(None),
            })
            .await?;
        rt.declared_settings = declared.map(|names| names.into_iter().collect());
        drop(fresh);
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
        // Each account's serve lane, started now: settings the adapter
        // refuses are known (and reported) before the first message.
        for account in rt.account_ids() {
            if !rt.has_account(&account) {
                continue; // refused while the first lane was configured
            }
            let slot = rt.lanes.pick(&Lane::Serve(account));
            let mut live = slot.live.lock().await;
            rt.ensure(&slot, &mut live).await?;
        }
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

    /// Brings the accounts in line with `cfg` on the running instances: new
    /// and changed accounts are configured (the adapter starts them over),
    /// removed ones are removed along with their lanes; the others are not
    /// touched, so their connections and pollers carry on. An error (the
    /// allowed hosts changed) means: restart the whole adapter instead.
    pub async fn reconcile(&self, cfg: &Config, env: &Environment, vars: &EnvVars) -> Result<Reconciled, ChannelError> {
        let wanted = account_setups(cfg, env, &self.info.id, &self.plugin.id, vars);
        let (operator, public) = allowed_hosts(cfg, &self.plugin.id, &self.info, &wanted);
        let newly = operator
            .iter()
            .find(|h| !self.grants.http_hosts.contains(h))
            .or_else(|| public.iter().find(|h| !self.grants.public_hosts.contains(h)));
        if let Some(h) = newly {
            return Err(setup_error(
                &self.plugin.id,
                format!("host `{h}` is newly allowed: the adapter restarts with it"),
            ));
        }
        let wanted_ids: BTreeSet<String> = wanted.iter().map(|a| a.account_id.clone()).collect();
        let (changed, removed) = {
            let mut acc = self.accounts.write().unwrap_or_else(|p| p.into_inner());
            let changed: Vec<Arc<AccountSetup>> = wanted
                .into_iter()
                .filter(|w| acc.configured.get(&w.account_id).is_none_or(|c| c.fingerprint != w.fingerprint))
                .map(Arc::new)
                .collect();
            let removed: Vec<Arc<AccountSetup>> =
                acc.configured.values().filter(|c| !wanted_ids.contains(&c.account_id)).cloned().collect();
            // The new accounts first: an instance started from here on is configured with them.
            for a in &removed {
                acc.configured.remove(&a.account_id);
                acc.refused.remove(&a.account_id);
                acc.generation.remove(&a.account_id);
            }
            for a in &changed {
                acc.refused.remove(&a.account_id);
                *acc.generation.entry(a.account_id.clone()).or_default() += 1;
                acc.configured.insert(a.account_id.clone(), a.clone());
            }
            (changed, removed)
        };
        for a in &removed {
            self.lanes.drop_account(&a.account_id);
        }
        let mut refused = BTreeMap::new();
        for (_, slot) in self.lanes.all() {
            let mut live = slot.live.lock().await;
            let Some(instance) = live.as_mut() else { continue };
            let mut step = async |instance: &mut Live| -> Result<(), CallError> {
                for a in &removed {
                    self.remove(instance, a).await?;
                }
                for a in &changed {
                    if let Err(why) = self.configure(instance, a).await? {
                        // Whatever the account held under its old settings is let go.
                        self.remove(instance, a).await?;
                        refused.insert(a.account_id.clone(), why);
                    }
                }
                Ok(())
            };
            if let Err(e) = step(instance).await {
                tracing::warn!(channel = %self.info.id, error = %e, "instance dropped while reconfiguring; the next call starts it anew");
                *live = None;
            }
            slot.note_memory(&live);
        }
        // A new account gets its serve lane now (its settings are checked there).
        for a in &changed {
            let lane = Lane::Serve(a.account_id.clone());
            if !self.lanes.contains(&lane) && !refused.contains_key(&a.account_id) {
                let slot = self.lanes.pick(&lane);
                let mut live = slot.live.lock().await;
                if let Err(e) = self.ensure(&slot, &mut live).await {
                    tracing::warn!(channel = %self.info.id, account = %a.account_id, error = %e, "serve lane not started; the next call tries again");
                }
            }
        }
        let mut out =
            Reconciled { removed: removed.iter().map(|a| a.account_id.clone()).collect(), ..Reconciled::default() };
        let mut acc = self.accounts.write().unwrap_or_else(|p| p.into_inner());
        acc.refused.extend(refused);
        for a in changed {
            match acc.refused.get(&a.account_id) {
                Some(why) => {
                    out.refused.push((a.account_id.clone(), why.clone()));
                    self.lanes.drop_account(&a.account_id);
                }
                None => out.started.push(a.account_id.clone()),
            }
        }
        Ok(out)
    }

    /// Linear memory of each lane's instance, in bytes (0 when not running),
    /// as of its last call: never waits for a call in flight.
    pub fn memory_bytes(&self) -> Vec<(Lane, usize)> {
        self.lanes.memory()
    }

    /// A request to `/channels/<channel>/<account>/…`.
    pub async fn handle_webhook(&self, account: &str, request: HttpRequest) -> Result<WebhookOutcome, ChannelError> {
        self.known(account)?;
        let (mut outcome, proved) = self
            .call(&Lane::Serve(account.to_string()), async |a: &Exports<'_>, s: &mut Store<PluginState>| {
                let outcome = a.call_handle_webhook(&mut *s, account, &request).await?;
                Ok((outcome, std::mem::take(&mut s.data_mut().secrets.proved)))
            })
            .await?;
        outcome.events.retain(|ev| self.may_credit(account, &ev.account_id, &proved));
        Ok(outcome)
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
        self.call(&Lane::Poll(account.to_string()), async |a: &Exports<'_>, s: &mut Store<PluginState>| {
            a.call_poll(s, account).await
        })
        .await?
        .map_err(|m| self.adapter(&m))
    }

    /// Delivers a reply through the account it names (never another one).
    /// Files need `features.attachments-out`; without it the message is refused, not sent without them.
    pub async fn send(&self, message: OutboundMessage) -> Result<Delivery, ChannelError> {
        if !message.attachments.is_empty() {
            self.require(Features::ATTACHMENTS_OUT, "attachments-out")?;
        }
        let account = message.account_id.clone();
        self.known(&account)?;
        self.call(&Lane::Serve(account), async |a: &Exports<'_>, s: &mut Store<PluginState>| {
            a.call_send(s, &message).await
        })
        .await
    }

    /// Edits a message this account sent (`features.edit`).
    pub async fn edit(&self, message: MessageRef, text: &str) -> Result<Delivery, ChannelError> {
        self.require(Features::EDIT, "edit")?;
        let account = message.account_id.clone();
        self.known(&account)?;
        self.call(&Lane::Serve(account), async |a: &Exports<'_>, s: &mut Store<PluginState>| {
            a.call_edit(s, &message, text).await
        })
        .await
    }

    /// Shows the bot typing in a chat (`features.typing`).
    pub async fn typing(&self, account: &str, peer: &Peer, thread: Option<&str>) -> Result<(), ChannelError> {
        self.require(Features::TYPING, "typing")?;
        self.known(account)?;
        self.call(&Lane::Serve(account.to_string()), async |a: &Exports<'_>, s: &mut Store<PluginState>| {
            a.call_typing(s, account, peer, thread).await
        })
        .await?
        .map_err(|m| self.adapter(&m))
    }

    /// Adds a reaction to a message (`features.react`).
    pub async fn react(&self, message: MessageRef, emoji: &str) -> Result<(), ChannelError> {
        self.require(Features::REACT, "react")?;
        let account = message.account_id.clone();
        self.known(&account)?;
        self.call(&Lane::Serve(account), async |a: &Exports<'_>, s: &mut Store<PluginState>| {
            a.call_react(s, &message, emoji).await
        })
        .await?
        .map_err(|m| self.adapter(&m))
    }

    /// Where an inbound attachment's bytes are (`features.attachments-in`).
    pub async fn resolve_attachment(&self, account: &str, reference: &str) -> Result<Download, ChannelError> {
        self.require(Features::ATTACHMENTS_IN, "attachments-in")?;
        self.known(account)?;
        self.call(&Lane::Serve(account.to_string()), async |a: &Exports<'_>, s: &mut Store<PluginState>| {
            a.call_resolve_attachment(s, account, reference).await
        })
        .await?
        .map_err(|m| self.adapter(&m))
    }

    /// The bytes of an inbound attachment the adapter resolved: fetched by
    /// the host through this adapter's egress grant, with the account's
    /// secrets filled into the URL's path and the headers, at most `limit`
    /// bytes (a larger file stops the download and nothing is kept).
    pub async fn download(&self, account: &str, download: &Download, limit: u64) -> Result<Vec<u8>, DownloadError> {
        let setup = self.setup(account).ok_or_else(|| DownloadError::Failed(format!("no account `{account}`")))?;
        if download.size.is_some_and(|s| s > limit) {
            return Err(DownloadError::TooLarge { limit });
        }
        let egress = crate::capability::http::Egress::new(
            &self.grants.http_hosts,
            &self.grants.public_hosts,
            setup.secrets.clone(),
        );
        let timeout = self.engine.limits().call_timeout;
        use crate::capability::http::{host_get, HostRequestError};
        match host_get(&egress, &download.url, &download.headers, limit, timeout).await {
            Ok((200..=299, bytes)) => Ok(bytes),
            Ok((status, _)) => Err(DownloadError::Failed(format!("the file host answered HTTP {status}"))),
            Err(HostRequestError::TooLarge(_)) => Err(DownloadError::TooLarge { limit }),
            Err(e) => Err(DownloadError::Failed(e.to_string())),
        }
    }

    /// Which version of the channel contract the component speaks.
    pub fn contract(&self) -> ContractVersion {
        self.version
    }

    /// What the adapter declared it can do beyond text.
    pub fn features(&self) -> Features {
        self.info.features
    }

    fn require(&self, feature: Features, name: &str) -> Result<(), ChannelError> {
        if self.info.features.contains(feature) {
            Ok(())
        } else {
            Err(self.adapter(&format!("the adapter does not declare `{name}`")))
        }
    }

    /// Whether the component exports `channel-probe`.
    pub fn can_probe(&self) -> bool {
        self.probe_export.is_some()
    }

    /// Asks the platform, through the adapter, whether `account`'s
    /// credential works: `Ok(None)` when the adapter has no probe,
    /// `Ok(Some(Err(why)))` when the platform refused it.
    pub async fn probe(&self, account: &str) -> Result<Option<Result<String, String>>, ChannelError> {
        self.known(account)?;
        if self.probe_export.is_none() {
            return Ok(None);
        }
        let account = account.to_string();
        self.call(&Lane::Serve(account.clone()), async |e: &Exports<'_>, s: &mut Store<PluginState>| match e.probe {
            Some(f) => f.call_async(s, (account,)).await.map(|(r,)| Some(r)),
            None => Ok(None),
        })
        .await
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

    /// Starts the lane's instance if needed and configures every account on
    /// it. An account whose settings the adapter refuses is not served (and
    /// says why); the others are.
    async fn ensure(&self, slot: &Slot, live: &mut Option<Live>) -> Result<(), ChannelError> {
        if live.is_some() {
            return Ok(());
        }
        let mut fresh = self.instantiate().await?;
        let accounts: Vec<Arc<AccountSetup>> =
            self.accounts.read().unwrap_or_else(|p| p.into_inner()).configured.values().cloned().collect();
        let mut verdicts = Vec::with_capacity(accounts.len());
        for a in accounts {
            verdicts.push((a.account_id.clone(), self.configure(&mut fresh, &a).await?));
        }
        {
            let mut acc = self.accounts.write().unwrap_or_else(|p| p.into_inner());
            for (account, verdict) in verdicts {
                match verdict {
                    Ok(()) => {
                        acc.refused.remove(&account);
                    }
                    Err(message) => {
                        if acc.refused.get(&account) != Some(&message) {
                            tracing::error!(channel = %self.info.id, %account, %message, "account settings refused");
                        }
                        acc.refused.insert(account, message);
                    }
                }
            }
        }
        *live = Some(fresh);
        slot.note_memory(live);
        Ok(())
    }

    async fn instantiate(&self) -> Result<Live, ChannelError> {
        let setup = |message: String| setup_error(&self.plugin.id, message);
        let state =
            PluginState::new(&self.plugin.id, "-", &self.grants, Arc::new(SecretStore::default()), self.memory_bytes)
                .map_err(setup)?;
        let mut store = new_store(&self.engine, state);
        // Instantiating runs the guest's start-up code: bounded like a call.
        store.data_mut().deadline = Some(Instant::now() + self.engine.limits().call_timeout);
        let instance =
            self.pre.instance_pre().instantiate_async(&mut store).await.map_err(|e| setup(format!("{e:#}")))?;
        let bindings = self.pre.bindings(&mut store, &instance).map_err(|e| setup(format!("{e:#}")))?;
        let probe = match &self.probe_export {
            Some(index) => Some(
                instance
                    .get_typed_func(&mut store, index)
                    .map_err(|e| setup(format!("`{PROBE_INTERFACE}` export `probe` has the wrong type: {e:#}")))?,
            ),
            None => None,
        };
        let settings =
            match &self.settings_export {
                Some(index) => Some(instance.get_typed_func(&mut store, index).map_err(|e| {
                    setup(format!("`{SETTINGS_INTERFACE}` export `settings` has the wrong type: {e:#}"))
                })?),
                None => None,
            };
        store.data_mut().deadline = None;
        Ok(Live { store, bindings, probe, settings })
    }

    /// The settings handed to the adapter: all of them, except — when the
    /// adapter declared what it reads — a setting OpenClaw defines for this
    /// channel that the adapter does not read: held back (chela does not
    /// implement it), so an OpenClaw config never gets the account refused.
    /// Anything else unknown (a typo) goes through and the adapter refuses it.
    fn settings_for(&self, a: &AccountSetup) -> serde_json::Value {
        let (Some(declared), serde_json::Value::Object(all)) = (&self.declared_settings, &a.settings) else {
            return a.settings.clone();
        };
        let mut kept = serde_json::Map::new();
        for (k, v) in all {
            let known = |path: String| chela_core::config::openclaw_keys::is_known_path(&path);
            let openclaws = known(format!("channels.{}.{k}", self.info.id))
                || known(format!("channels.{}.accounts.{}.{k}", self.info.id, a.account_id));
            if declared.contains(k) || !openclaws {
                kept.insert(k.clone(), v.clone());
            } else {
                tracing::warn!(channel = %self.info.id, account = %a.account_id, setting = %k,
                    "OpenClaw channel setting the adapter does not implement; ignored");
            }
        }
        serde_json::Value::Object(kept)
    }

    /// `configure-account` for `a`: `Err` inside is the adapter refusing the settings.
    async fn configure(&self, live: &mut Live, a: &AccountSetup) -> Result<Result<(), String>, CallError> {
        let settings = self.settings_for(a).to_string();
        let work = async |ad: &Exports<'_>, s: &mut Store<PluginState>| {
            ad.call_configure_account(s, &a.account_id, &settings).await
        };
        self.run(live, Some(a), work).await
    }

    async fn remove(&self, live: &mut Live, a: &AccountSetup) -> Result<(), CallError> {
        self.run(live, Some(a), async |ad: &Exports<'_>, s: &mut Store<PluginState>| {
            ad.call_remove_account(s, &a.account_id).await
        })
        .await
    }

    /// One call on the lane's instance (started and configured if needed),
    /// scoped to the lane's account; an instance the call spoiled is started
    /// over next time.
    async fn call<T>(
        &self,
        lane: &Lane,
        work: impl AsyncFnOnce(&Exports<'_>, &mut Store<PluginState>) -> wasmtime::Result<T>,
    ) -> Result<T, ChannelError> {
        self.plugin.health.admit()?;
        let slot = self.lanes.pick(lane);
        let mut guard = slot.live.lock().await;
        self.ensure(&slot, &mut guard).await?;
        let setup = self.setup(lane.account());
        // Should this future be dropped mid-call (a caller gave up, a client
        // hung up), the instance is left inside the guest and wasmtime will
        // not enter it again: it is dropped with the call, started anew next time.
        let mut call = CutOff { live: &mut guard, finished: false };
        let Some(live) = call.live.as_mut() else { return Err(self.adapter("instance not running")) };
        let result = self.run(live, setup.as_deref(), work).await;
        call.finished = true;
        drop(call);
        if result.as_ref().is_err_and(CallError::spoils_instance) {
            *guard = None;
        }
        slot.note_memory(&guard);
        Ok(result?)
    }

    /// One guarded call (`guarded.rs`) on `live`, in `account`'s kv and secrets.
    async fn run<T>(
        &self,
        live: &mut Live,
        account: Option<&AccountSetup>,
        work: impl AsyncFnOnce(&Exports<'_>, &mut Store<PluginState>) -> wasmtime::Result<T>,
    ) -> Result<T, CallError> {
        let Live { store, bindings, probe, settings } = live;
        match account {
            Some(a) => store.data_mut().enter_scope(Some(self.kv_home.open(&a.kv)), a.secrets.clone()),
            None => store.data_mut().enter_scope(None, Arc::new(SecretStore::default())),
        }
        let mut limits = *self.engine.limits();
        limits.memory_bytes = self.memory_bytes;
        let exports = Exports { adapter: bindings.adapter(), probe: *probe, settings: *settings };
        let out =
            guarded(store, &self.plugin.health, &limits, async |s: &mut Store<PluginState>| work(&exports, s).await)
                .await;
        store.data_mut().log.lines.clear();
        out
    }
}
