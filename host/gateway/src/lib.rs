//! chela's gateway: one process, one port. It serves channel webhooks and
//! the control API, runs the channel adapters and the inbound pipeline, and
//! keeps plugins current (a dropped `.wasm` is picked up while running).
//!
//! Invariants: DM access runs before routing; a reply leaves through the
//! account, peer and thread its message came from; a non-loopback listener
//! never starts without an auth token.
//!
//! Must not: hold routing, session-key or tool-policy rules (core's), or read config and route
//! table from two places (one snapshot).

mod backoff;
mod blocks;
mod chat_queue;
mod config_edit;
mod control;
pub mod control_ui;
pub mod cron;
mod delivery;
mod exec_approvals;
mod group_history;
mod guard;
mod health;
mod inbound;
mod intake;
mod journal;
mod journal_codec;
mod leases;
mod live;
mod media_in;
mod media_out;
mod messenger;
pub mod metrics;
mod openai;
pub mod pairing;
mod presence;
mod preview;
mod reply;
mod reply_order;
mod server;
pub mod supervisor;
mod takeover;
pub mod token;
pub use health::agent_summaries;
mod tool_summaries;
mod webhook;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chela_agent::runtime::RuntimeParts;
use chela_agent::{AgentRuntime, Providers};
use chela_core::config::paths::Environment;
use chela_core::config::plugin_entry::{resolve_env_ref, PluginEntry};
use chela_core::config::schema::Config;
use chela_core::config::{Diagnostic, EnvVars};
use chela_core::snapshot::{Snapshot, SnapshotCell};
use chela_plugin::capability::secrets::SecretStore;
use chela_plugin::channel::ChannelRuntime;
use chela_plugin::{PluginKind, Plugins};
use tokio::sync::{watch, Notify};

pub use inbound::Outcome;
pub use metrics::Metrics;

/// Where and how to listen.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub addr: SocketAddr,
    /// The operator's control-plane token (required off loopback); without
    /// one the gateway generates one in the state dir (`token.rs`).
    pub auth_token: Option<String>,
    /// How often plugin dirs are rescanned.
    pub plugin_scan: Duration,
    /// Largest request body accepted (webhooks, control API).
    pub max_body_bytes: usize,
    /// How long shutdown waits for turns in flight.
    pub grace: Duration,
    /// How far journal writes go before a message is acknowledged (default: fsync).
    pub durability: chela_journal::Durability,
}

impl GatewayOptions {
    pub fn loopback(port: u16) -> GatewayOptions {
        GatewayOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            auth_token: None,
            plugin_scan: Duration::from_secs(2),
            max_body_bytes: 1 << 20,
            grace: Duration::from_secs(30),
            durability: chela_journal::Durability::Fsync,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("refusing to listen on {0} without an auth token: set gateway.auth.token or CHELA_GATEWAY_TOKEN")]
    NoAuthOffLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {error}")]
    Bind { addr: SocketAddr, error: std::io::Error },
    #[error(transparent)]
    Token(#[from] token::TokenError),
    #[error(transparent)]
    Journal(#[from] chela_journal::JournalError),

    /// The storage the config or environment names is wrong or unreachable.
    #[error("storage: {0}")]
    Storage(String),
}

/// The shared database core's `storage` selects, connected and migrated;
/// `None`: sessions in the embedded files. Blocking (the gateway calls it
/// through [`open_database`]; the CLI's offline commands directly).
pub fn connect_database(
    cfg: &Config,
    env: &Environment,
) -> Result<Option<Arc<chela_database::Database>>, GatewayError> {
    use chela_core::storage::{storage, Storage};
    let Storage::Postgres { url, set_by } = storage(cfg, env).map_err(GatewayError::Storage)? else { return Ok(None) };
    let db =
        chela_database::Database::connect(&url).map_err(|e| GatewayError::Storage(format!("{e} (set by {set_by})")))?;
    tracing::info!(database = %db.shown_url(), set_by, "sessions are kept in the shared database");
    Ok(Some(db))
}

/// [`connect_database`] off the async workers.
pub async fn open_database(
    cfg: &Config,
    env: &Environment,
) -> Result<Option<Arc<chela_database::Database>>, GatewayError> {
    let (cfg, env) = (cfg.clone(), env.clone());
    tokio::task::spawn_blocking(move || connect_database(&cfg, &env))
        .await
        .map_err(|e| GatewayError::Storage(e.to_string()))?
}

/// Counts work in flight so shutdown can wait for it.
#[derive(Default)]
pub(crate) struct Inflight {
    n: AtomicUsize,
    idle: Notify,
}

pub(crate) struct InflightGuard<'a>(&'a Inflight);

impl Inflight {
    pub(crate) fn enter(&self) -> InflightGuard<'_> {
        self.n.fetch_add(1, Ordering::SeqCst);
        InflightGuard(self)
    }

    async fn wait_idle(&self, grace: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let notified = self.idle.notified();
            if self.n.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        if self.0.n.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

pub struct Gateway {
    /// The config and its route table, as one value; shared with the agent
    /// runtime and the plugin-secrets closure, swapped once per reload.
    snapshot: Arc<SnapshotCell>,
    env: Environment,
    runtime: Arc<AgentRuntime>,
    plugins: Arc<Plugins>,
    channels: RwLock<HashMap<String, Arc<ChannelRuntime>>>,
    channel_errors: RwLock<HashMap<String, String>>,
    pub metrics: Metrics,
    inflight: Inflight,
    /// Set by shutdown: pollers stop, so a restarted gateway is the only poller.
    stopping: std::sync::atomic::AtomicBool,
    options: GatewayOptions,
    vars: Arc<EnvVars>,
    /// The control-plane token in force (configured or generated).
    token: String,
    /// Failed control-plane authentications (per address, and a global budget).
    auth_failures: guard::Lockout,
    /// Webhook requests the adapter refused as unauthenticated.
    webhook_failures: guard::Lockout,
    /// Accepted events and journaled replies (`<stateDir>/journal`, or the
    /// shared database's journal on replicas).
    journal: journal::Journal,
    /// One queue per chat: its messages run in order.
    chats: chat_queue::ChatQueues,
    /// Each chat's replies in the order its messages were admitted.
    reply_order: reply_order::ReplyOrder,
    /// Each served account's liveness (`supervisor.rs`).
    supervision: supervisor::Supervision,
    /// On a shared database: the singleton connections (and the cron
    /// scheduler) this replica owns (`leases.rs`); `None`: it owns all.
    leases: Option<Arc<leases::LeaseKeeper>>,
    /// What the journal held at start, resumed once the gateway serves.
    recovered: std::sync::Mutex<Option<chela_journal::Recovered>>,
    /// When this gateway was built (`uptimeSeconds` in the health snapshot).
    started: std::time::Instant,
    /// Unanswered group messages, for the next answered one (`group_history.rs`).
    group_history: group_history::GroupHistory,
    /// Bot pairs' recent exchanges (core's `bot_loop` decides), with the clock they are counted on.
    bot_loops: std::sync::Mutex<(std::time::Instant, chela_core::bot_loop::BotLoopLedger)>,
    /// Cron jobs and heartbeats (`cron/`).
    scheduler: cron::Scheduler,
    /// The replicas' database (`None`: the embedded files).
    database: Option<Arc<chela_database::Database>>,
    /// What happens to messages, for the control page's Live page (`live.rs`).
    live: live::Live,
    /// The watched config file's last check (`GET /api/v1/config`).
    config_report: std::sync::Mutex<ConfigReport>,
    /// The config file the watcher reads: where the control page's edits go.
    config_path: std::sync::Mutex<Option<PathBuf>>,
}

/// Secrets of tool plugins: `plugins.entries.<id>.secrets`, each a string
/// or `{ value, hosts }` (then it is substituted only for those hosts);
/// `"${VAR}"` reads the environment.
pub fn tool_secrets(cfg: &Config, vars: &EnvVars, plugin_id: &str) -> Arc<SecretStore> {
    let entries = PluginEntry::of(cfg, plugin_id).secrets.into_iter().filter_map(|s| {
        let value = resolve_env_ref(&s.value, vars);
        if value.is_none() {
            tracing::warn!(plugin = plugin_id, secret = %s.name, reference = %s.value, "secret references an environment variable that is not set");
        }
        Some((s.name, value?, s.hosts))
    });
    SecretStore::from_bound(entries)
}

/// What the agent runtime reaches the channels through, when a gateway
/// runs them (`chela send` without a gateway has neither).
#[derive(Default)]
pub struct RuntimeServices {
    /// Where announcements go.
    pub announcer: Option<Arc<chela_agent::runtime::Announcer>>,
    /// What the `message` tool sends through.
    pub messaging: Option<Arc<dyn chela_plugin::capability::messaging::MessagingAccess>>,
    /// The shared database sessions live in (`open_database`).
    pub database: Option<Arc<chela_database::Database>>,
    /// Where `/loop` keeps its jobs (the gateway's scheduler).
    pub loops: Option<Arc<dyn chela_agent::loops::ConversationLoops>>,
    /// What the `automations` tool manages its agent's jobs through.
    pub automations: Option<Arc<dyn chela_plugin::capability::automations::AutomationsAccess>>,
    /// Where host commands that need an approval are asked for.
    pub exec_approvals: Option<Arc<dyn chela_plugin::capability::process::ExecApprovals>>,
    /// Where `/approve` settles them.
    pub approvals: Option<Arc<dyn chela_agent::approvals::ApprovalDecisions>>,
}

/// The agent runtime of a host, assembled the one way the gateway and
/// `chela send` both use: the shared snapshot, the plugins, the providers,
/// tool secrets read from the snapshot in force (`plugins.entries.<id>.secrets`,
/// `${VAR}` from `vars`), and the channels' services. On a shared database
/// the plugins' kv state is kept there too (the same for every replica).
pub fn agent_runtime(
    snapshot: Arc<SnapshotCell>,
    env: Environment,
    plugins: Arc<Plugins>,
    providers: Providers,
    vars: Arc<EnvVars>,
    services: RuntimeServices,
) -> Arc<AgentRuntime> {
    let secrets_of = snapshot.clone();
    let secrets: Arc<chela_agent::runtime::SecretsFor> =
        Arc::new(move |plugin: &str| tool_secrets(&secrets_of.load().config, &*vars, plugin));
    let mut parts = RuntimeParts::new(snapshot, env, plugins, providers, secrets);
    parts.announcer = services.announcer;
    parts.messaging = services.messaging;
    if let Some(db) = &services.database {
        parts.plugins.keep_kv(chela_plugin::capability::kv::KvHome::Shared(db.clone()));
    }
    parts.database = services.database;
    parts.loops = services.loops;
    parts.automations = services.automations;
    parts.exec_approvals = services.exec_approvals;
    parts.approvals = services.approvals;
    AgentRuntime::new(parts)
}

/// A running gateway: its address, and the handle that stops it.
pub struct Running {
    pub addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    background: Vec<tokio::task::JoinHandle<()>>,
    /// The lease keeper, stopped last: this replica keeps its leases (and
    /// so what it accepted) until its turns in flight are done.
    keeper: Option<(watch::Sender<bool>, tokio::task::JoinHandle<()>)>,
}

impl Running {
    /// Graceful stop: no new connections, turns in flight finish (up to the
    /// grace period), then background loops end.
    pub async fn shutdown(self) -> bool {
        self.gateway.stopping.store(true, Ordering::SeqCst);
        // A turn waiting for a refusing store stops waiting: it stays in the journal.
        self.gateway.runtime.close();
        let _ = self.stop.send(true);
        let _ = self.server.await;
        // Accepted messages still queued in their chats are answered too (what
        // the grace period leaves stays in the journal for the next start).
        let deadline = tokio::time::Instant::now() + self.gateway.options.grace;
        while self.gateway.chats.busy() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let drained = self.gateway.inflight.wait_idle(left).await && self.gateway.chats.busy() == 0;
        // What is still unfinished stays in the journal for the next start;
        // the state dir is free for it now.
        self.gateway.journal.close();
        for t in self.background {
            t.abort();
        }
        if let Some((stop, keeper)) = self.keeper {
            let _ = stop.send(true);
            let _ = keeper.await;
        }
        drained
    }
}

impl Gateway {
    /// Loads plugins, starts channel adapters and returns the gateway (not yet listening).
    pub async fn new(
        config: Arc<Config>,
        env: Environment,
        plugins: Arc<Plugins>,
        providers: Providers,
        options: GatewayOptions,
        vars: Arc<EnvVars>,
    ) -> Result<Arc<Gateway>, GatewayError> {
        if !options.addr.ip().is_loopback() && options.auth_token.is_none() {
            return Err(GatewayError::NoAuthOffLoopback(options.addr));
        }
        let database = open_database(&config, &env).await?;
        // Replicas share one generated token (the database keeps it).
        let token = match (&options.auth_token, &database) {
            (Some(t), _) => t.clone(),
            (None, Some(db)) => token::shared(db, &env.state_dir()).await?,
            (None, None) => token::load_or_create(&env.state_dir())?,
        };
        let lease_keeper = database.clone().map(leases::LeaseKeeper::new);
        // On a shared database the replicas' journal is there, and what a
        // gone replica left is claimed once this one serves (`takeover.rs`);
        // it holds its replica lease before it accepts anything.
        let (journal, recovered) = match (&database, &lease_keeper) {
            (Some(db), Some(keeper)) => {
                keeper.begin().await;
                (journal::Journal::shared(db.clone(), keeper.owner()), chela_journal::Recovered::default())
            }
            _ => {
                let (files, recovered) =
                    chela_journal::Journal::open(&env.state_dir().join("journal"), options.durability)?;
                for skipped in &recovered.skipped {
                    tracing::warn!(line = skipped.line, why = %skipped.why, journal = %files.path().display(), "journal line skipped");
                }
                (journal::Journal::Files(files), recovered)
            }
        };
        // Channel adapters first: the gateway serves once they run. The
        // tools compile behind it (the scan spawned below), and a turn waits
        // for them (`Plugins::settled`).
        let report = plugins.rescan_channels().await;
        for (path, e) in &report.failed {
            tracing::warn!(path = %path.display(), error = %e, "plugin not loaded");
        }
        let cell = SnapshotCell::of(with_provider_defaults(config, &*vars));
        let state_dir = env.state_dir();
        let gw = Arc::new_cyclic(|me: &std::sync::Weak<Gateway>| {
            // Announcements and the `message` tool's sends go through the channels of this gateway.
            let me_too = me.clone();
            let for_loops = me.clone();
            let for_automations = me.clone();
            let approvals = exec_approvals::approvals(me.clone());
            let me = me.clone();
            let announcer: Arc<chela_agent::runtime::Announcer> = Arc::new(move |a| {
                if let Some(gw) = me.upgrade() {
                    tokio::spawn(async move {
                        gw.deliver_announcement(a).await;
                    });
                }
            });
            let services = RuntimeServices {
                announcer: Some(announcer),
                messaging: Some(messenger::messenger(me_too)),
                database: database.clone(),
                loops: Some(cron::loops::loops(for_loops)),
                automations: Some(cron::automations::automations(for_automations)),
                exec_approvals: Some(approvals.clone()),
                approvals: Some(approvals),
            };
            let runtime = agent_runtime(cell.clone(), env.clone(), plugins.clone(), providers, vars.clone(), services);
            Gateway {
                snapshot: cell,
                env,
                runtime,
                plugins,
                channels: RwLock::default(),
                channel_errors: RwLock::default(),
                metrics: Metrics::default(),
                inflight: Inflight::default(),
                stopping: std::sync::atomic::AtomicBool::new(false),
                options,
                vars,
                token,
                auth_failures: guard::Lockout::new(10, 60, Duration::from_secs(60)),
                webhook_failures: guard::Lockout::new(30, 600, Duration::from_secs(60)),
                journal,
                chats: chat_queue::ChatQueues::default(),
                reply_order: reply_order::ReplyOrder::default(),
                supervision: supervisor::Supervision::default(),
                leases: lease_keeper,
                recovered: std::sync::Mutex::new(Some(recovered)),
                started: std::time::Instant::now(),
                group_history: group_history::GroupHistory::default(),
                bot_loops: std::sync::Mutex::new((std::time::Instant::now(), Default::default())),
                scheduler: cron::Scheduler::new(cron::CronStore::at(&state_dir, database.as_ref())),
                database,
                live: live::Live::default(),
                config_report: std::sync::Mutex::default(),
                config_path: std::sync::Mutex::default(),
            }
        });
        gw.sync_channels().await;
        // The rest of the plugins (tools), compiled while the gateway serves.
        let rest = Arc::downgrade(&gw);
        let all = gw.plugins.clone();
        tokio::spawn(async move {
            let report = all.rescan().await;
            match rest.upgrade() {
                Some(gw) if report.changed() => gw.sync_channels().await,
                _ => {}
            }
            tracing::info!(plugins = all.all().len(), failed = report.failed.len(), "every plugin loaded");
        });
        Ok(gw)
    }

    /// The snapshot in force: a message takes it once and is decided on it.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load()
    }

    /// The config of the snapshot in force.
    pub fn config(&self) -> Arc<Config> {
        self.snapshot.load().config.clone()
    }

    /// Runs `work` on the pairing store (the replicas' database, or the
    /// state dir's files) off the async workers: a database round trip or
    /// a file's fsync never holds one up.
    pub(crate) async fn on_pairing<R: Send + 'static>(
        &self,
        work: impl FnOnce(&pairing::Pairing) -> Result<R, pairing::PairingError> + Send + 'static,
    ) -> Result<R, pairing::PairingError> {
        let store = pairing::Pairing::at(&self.env.state_dir(), self.database.as_ref());
        match tokio::task::spawn_blocking(move || work(&store)).await {
            Ok(out) => out,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(pairing::PairingError::Stopped(e.to_string())),
        }
    }

    /// The token control-plane requests must present.
    pub fn control_token(&self) -> &str {
        &self.token
    }

    pub fn runtime(&self) -> &Arc<AgentRuntime> {
        &self.runtime
    }

    pub fn plugins(&self) -> &Arc<Plugins> {
        &self.plugins
    }

    pub fn channel(&self, id: &str) -> Option<Arc<ChannelRuntime>> {
        self.channels.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// Applies a new config to everything that starts from now on: routing,
    /// agents, sessions, tools. Turns in flight finish on the config they
    /// started with. In a changed `channels.<id>` section only the accounts
    /// whose settings changed are started over (added, removed, edited); the
    /// others keep their connections and pollers.
    pub async fn apply_config(self: &Arc<Self>, config: Arc<Config>) {
        let config = with_provider_defaults(config, &*self.vars);
        let old = self.config();
        let changed = changed_channels(&old, &config);
        // One store: routing, turns and plugin secrets move to the new config together.
        self.snapshot.store(Snapshot::new(config.clone()));
        let mut restart = Vec::new();
        for id in &changed {
            let Some(rt) = self.channel(id) else {
                restart.push(id.clone()); // not running: maybe it starts now
                continue;
            };
            match rt.reconcile(&config, &self.env, &*self.vars).await {
                Ok(r) => {
                    tracing::info!(channel = %id, started = ?r.started, removed = ?r.removed, refused = ?r.refused, "channel accounts reconciled");
                    if rt.info.needs_polling {
                        for account in r.started {
                            tokio::spawn(supervisor::poll_loop(Arc::downgrade(self), rt.clone(), account));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(channel = %id, error = %e, "restarting the whole channel adapter");
                    restart.push(id.clone());
                }
            }
        }
        if !restart.is_empty() {
            self.channels.write().unwrap_or_else(|p| p.into_inner()).retain(|id, _| !restart.contains(id));
            self.sync_channels().await;
        }
        self.track_accounts();
        tracing::info!(channels_changed = ?changed, adapters_restarted = ?restart, "config applied");
    }

    /// Watches the config file and the files it `$include`s; a valid change is applied, an invalid one is
    /// logged with every problem and the last good config stays (the same
    /// checks as `chela config validate`).
    pub fn watch_config(self: &Arc<Self>, path: PathBuf, every: Duration) -> tokio::task::JoinHandle<()> {
        *self.config_path.lock().unwrap_or_else(|p| p.into_inner()) = Some(path.clone());
        let gw = Arc::downgrade(self);
        tokio::spawn(async move {
            // The config file and every file it `$include`s.
            let stamps = |files: &[PathBuf]| -> Vec<Option<std::time::SystemTime>> {
                files.iter().map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok()).collect()
            };
            let mut files = config_files(&path);
            let mut last = stamps(&files);
            // The config in force was read from this file: what it says now.
            if let Some(gw) = gw.upgrade() {
                let (checked, problems) = check_file(&path, &gw.env);
                gw.report_config(&path, checked.is_some(), problems);
            }
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let now = stamps(&files);
                if now == last {
                    continue;
                }
                // Still watching the files the last good load read: a broken
                // include is picked up again once it is fixed.
                for f in config_files(&path) {
                    if !files.contains(&f) {
                        files.push(f);
                    }
                }
                last = stamps(&files);
                let Some(gw) = gw.upgrade() else { return };
                let (checked, problems) = check_file(&path, &gw.env);
                let applied = checked.is_some();
                match checked {
                    Some(cfg) => gw.apply_config(Arc::new(cfg)).await,
                    None => {
                        for p in problems.iter().filter(|d| d.is_error()) {
                            tracing::error!(problem = %p, "config change not applied");
                        }
                        gw.metrics.inc("chela_errors_total", &[("stage", "config_reload")]);
                    }
                }
                gw.report_config(&path, applied, problems);
            }
        })
    }

    fn report_config(&self, path: &std::path::Path, applied: bool, problems: Vec<Diagnostic>) {
        let report = ConfigReport {
            file: Some(path.display().to_string()),
            checked_at_ms: Some(chela_agent::clock::now_ms()),
            applied,
            problems,
        };
        *self.config_report.lock().unwrap_or_else(|p| p.into_inner()) = report;
    }

    /// The config file the watcher reads, if one is watched.
    pub(crate) fn config_path(&self) -> Option<PathBuf> {
        self.config_path.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Applies a config the control API wrote to `path` (checked already),
    /// without waiting for the watcher.
    pub(crate) async fn apply_written(self: &Arc<Self>, path: &std::path::Path, written: chela_core::config::Loaded) {
        let problems = problems_of(&written, &self.env);
        self.apply_config(Arc::new(written.config)).await;
        self.report_config(path, true, problems);
    }

    /// What the config watcher last found (empty when nothing watches a file).
    pub fn config_report(&self) -> ConfigReport {
        self.config_report.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Channels in the config without a running adapter, and accounts
    /// (`channel/account`) whose settings the adapter refused, with the reason.
    pub fn missing_channels(&self) -> Vec<(String, String)> {
        let cfg = self.config();
        let running = self.channels.read().unwrap_or_else(|p| p.into_inner());
        let errors = self.channel_errors.read().unwrap_or_else(|p| p.into_inner());
        let mut missing: Vec<(String, String)> = cfg
            .channels
            .iter()
            .flat_map(|c| c.keys())
            .filter(|c| !running.contains_key(c.as_str()))
            .map(|c| {
                let why =
                    errors.get(c.as_str()).cloned().unwrap_or_else(|| "no channel plugin for it is loaded".into());
                (c.clone(), why)
            })
            .collect();
        for (id, rt) in running.iter() {
            missing.extend(rt.refused_accounts().into_iter().map(|(a, why)| (format!("{id}/{a}"), why)));
        }
        missing
    }

    /// Starts adapters for new or changed channel plugins, stops removed ones.
    async fn sync_channels(self: &Arc<Self>) {
        let cfg = self.config();
        let loaded: Vec<_> =
            self.plugins.all().into_iter().filter(|p| p.manifest.kind == PluginKind::Channel).collect();
        let current: HashMap<String, Arc<ChannelRuntime>> =
            self.channels.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut next: HashMap<String, Arc<ChannelRuntime>> = HashMap::new();
        let mut started = Vec::new();
        for plugin in loaded {
            if let Some(rt) = current.values().find(|rt| rt.plugin.digest == plugin.digest) {
                next.insert(rt.channel_id().to_string(), rt.clone());
                continue;
            }
            match ChannelRuntime::start(&self.plugins, plugin.clone(), &cfg, &self.env, &*self.vars).await {
                Ok(rt) => {
                    tracing::info!(channel = rt.channel_id(), plugin = %plugin.id, accounts = ?rt.account_ids(), "channel adapter started");
                    self.channel_errors.write().unwrap_or_else(|p| p.into_inner()).remove(rt.channel_id());
                    let rt = Arc::new(rt);
                    if rt.info.needs_polling {
                        started.push(rt.clone());
                    }
                    next.insert(rt.channel_id().to_string(), rt);
                }
                Err(e) => {
                    tracing::error!(plugin = %plugin.id, error = %e, "channel adapter not started");
                    self.channel_errors
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(plugin.id.clone(), e.to_string());
                }
            }
        }
        *self.channels.write().unwrap_or_else(|p| p.into_inner()) = next;
        // Pollers start once their adapter is the current one (they stop when it is replaced).
        for rt in started {
            for account in rt.account_ids() {
                tokio::spawn(supervisor::poll_loop(Arc::downgrade(self), rt.clone(), account));
            }
        }
        self.track_accounts();
    }

    /// The supervision reports exactly the accounts being served.
    fn track_accounts(&self) {
        let channels: Vec<Arc<ChannelRuntime>> =
            self.channels.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        let mut served = Vec::new();
        for rt in channels {
            for account in rt.account_ids() {
                self.supervision.serving(rt.channel_id(), &account, rt.info.needs_polling);
                served.push((rt.channel_id().to_string(), account));
            }
        }
        self.supervision.retain(&served);
    }

    /// Binds and serves until [`Running::shutdown`].
    pub async fn serve(self: &Arc<Self>) -> Result<Running, GatewayError> {
        let addr = self.options.addr;
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|error| GatewayError::Bind { addr, error })?;
        let local = listener.local_addr().map_err(|error| GatewayError::Bind { addr, error })?;
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(server::accept_loop(self.clone(), listener, stopped));
        // Rescans pick up changed files (scans run one at a time, so the
        // first waits for the one `new` started). New tools are linked on the
        // next turn; channel plugins are (re)started here.
        let gw = Arc::downgrade(self);
        let watcher = self.plugins.watch(self.options.plugin_scan, move |report| {
            let gw = gw.clone();
            async move {
                let Some(gw) = gw.upgrade() else { return false };
                if report.changed() {
                    gw.sync_channels().await;
                }
                true
            }
        });
        let recovered = self.recovered.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(recovered) = recovered {
            self.resume(recovered);
        }
        let scheduler = tokio::spawn(cron::Scheduler::run_loop(Arc::downgrade(self)));
        let mut background = vec![watcher, scheduler];
        let mut keeper = None;
        if let Some(k) = &self.leases {
            tracing::info!(owner = k.owner(), "polling and socket accounts and the scheduler run under leases");
            let (stop_keeper, stopped) = watch::channel(false);
            keeper = Some((stop_keeper, tokio::spawn(k.clone().run(stopped))));
        }
        if self.journal.as_shared().is_some() {
            background.push(tokio::spawn(takeover::run(Arc::downgrade(self), stop.subscribe())));
        }
        if let Some(why) = chela_core::heartbeat::plans(&self.config()).warning {
            tracing::warn!("{why}");
        }
        tracing::info!(%local, "gateway listening");
        Ok(Running { addr: local, gateway: self.clone(), stop, server, background, keeper })
    }

    pub fn plugin_dirs_hint(&self) -> PathBuf {
        self.env.state_dir().join("plugins")
    }
}

/// `config` with the defaults OpenClaw's bundled Anthropic plugin gives a
/// config with Anthropic auth, where it leaves them unset (core's
/// `anthropic_defaults`): what the gateway runs on.
fn with_provider_defaults(config: Arc<Config>, vars: &EnvVars) -> Arc<Config> {
    match chela_core::config::anthropic_defaults::applied(&config, vars) {
        Some((filled, what)) => {
            tracing::info!(defaults = ?what, "Anthropic auth configured: OpenClaw's Anthropic defaults apply");
            Arc::new(filled)
        }
        None => config,
    }
}

/// The config file, then the files it `$include`s (as far as it loads).
fn config_files(path: &std::path::Path) -> Vec<PathBuf> {
    match chela_core::config::load_file(path) {
        Ok(loaded) if !loaded.files.is_empty() => loaded.files.iter().map(PathBuf::from).collect(),
        _ => vec![path.to_path_buf()],
    }
}

/// Loads and validates a config file: the config, or every error found.
pub fn load_checked(path: &std::path::Path, env: &Environment) -> Result<Config, Vec<String>> {
    match check_file(path, env) {
        (Some(cfg), _) => Ok(cfg),
        (None, problems) => Err(problems.iter().filter(|d| d.is_error()).map(|d| d.to_string()).collect()),
    }
}

/// Loads and validates a config file: the config when it has no error, and
/// every problem found (warnings included), each naming its file.
pub fn check_file(path: &std::path::Path, env: &Environment) -> (Option<Config>, Vec<Diagnostic>) {
    let loaded = match chela_core::config::load_file(path) {
        Ok(l) => l,
        Err(e) => return (None, e.diagnostics()),
    };
    let problems = problems_of(&loaded, env);
    let ok = !problems.iter().any(Diagnostic::is_error);
    (ok.then_some(loaded.config), problems)
}

/// A loaded config's warnings and validation problems, each naming its file.
fn problems_of(loaded: &chela_core::config::Loaded, env: &Environment) -> Vec<Diagnostic> {
    let mut problems = loaded.warnings.clone();
    problems.extend(chela_core::config::validate::validate(loaded, env).into_iter().map(|d| loaded.attach_file(d)));
    problems
}

/// Writes an edited config file (the CLI's edits and the control page's),
/// keeping the text it replaces as `<file>.bak`; both synced.
pub fn write_config(path: &std::path::Path, old: Option<&str>, new: &str) -> Result<(), chela_durable::ReplaceError> {
    if let Some(old) = old {
        let mut backup = path.as_os_str().to_owned();
        backup.push(".bak");
        chela_durable::replace(std::path::Path::new(&backup), old.as_bytes(), chela_durable::Durability::Fsync)?;
    }
    chela_durable::replace(path, new.as_bytes(), chela_durable::Durability::Fsync)
}

/// What the config watcher last found (`GET /api/v1/config`).
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigReport {
    pub file: Option<String>,
    pub checked_at_ms: Option<i64>,
    /// Whether the file as checked is the config in force.
    pub applied: bool,
    pub problems: Vec<Diagnostic>,
}

/// The channels whose `channels.<id>` section differs between two configs
/// (added, removed or edited).
fn changed_channels(old: &Config, new: &Config) -> Vec<String> {
    let section = |c: &Config, id: &str| c.channels.as_ref().and_then(|m| m.get(id)).map(|v| format!("{v:?}"));
    let mut ids: Vec<String> = old.channels.iter().chain(new.channels.iter()).flat_map(|m| m.keys().cloned()).collect();
    ids.sort();
    ids.dedup();
    ids.into_iter().filter(|id| section(old, id) != section(new, id)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        chela_core::config::load_str(text, None).expect("config loads").config
    }

    #[test]
    fn only_edited_added_or_removed_channels_restart() {
        let old = cfg(
            r#"{ channels: { telegram: { dmPolicy: "open", allowFrom: ["*"] }, slack: { dmPolicy: "open", allowFrom: ["*"] } } }"#,
        );
        let new = cfg(
            r#"{ channels: { telegram: { dmPolicy: "pairing" }, slack: { dmPolicy: "open", allowFrom: ["*"] }, discord: {} },
                           bindings: [{ agentId: "main", match: { channel: "slack" } }] }"#,
        );
        assert_eq!(changed_channels(&old, &new), ["discord", "telegram"]);
        assert!(changed_channels(&new, &new).is_empty());
        assert_eq!(changed_channels(&new, &cfg("{}")), ["discord", "slack", "telegram"]);
    }
}
