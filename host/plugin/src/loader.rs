//! The plugins dir: find `.wasm` files, validate and compile them, describe
//! them, and replace them when they change — without touching calls in flight
//! (a call holds the `Arc` of the version it started with).
//!
//! Must not: decide grants or cancel a call in flight when a plugin changes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt as _;
use wasmtime::component::Component;

use crate::bindings::plugin::types::{InvokeContext, ToolInfo};
use crate::bindings::ToolPluginAllPre;
use crate::cache::{digest, CacheOutcome, CompileCache};
use crate::capability::kv::KvHome;
use crate::capability::{Capability, GrantSet};
use crate::engine::PluginEngine;
use crate::guarded::Health;
use crate::inspect::{inspect, PluginKind, PluginManifest};
use crate::state::linker_for;
use crate::state::PluginState;

/// A tool's self-description (from its `describe` export).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolDescriptor {
    pub name: String,
    pub description: String,
    pub parameters_schema: String,
    pub http_hosts: Vec<String>,
}

impl From<ToolInfo> for ToolDescriptor {
    fn from(t: ToolInfo) -> Self {
        ToolDescriptor {
            name: chela_core::policy::normalize_tool_name(&t.name),
            description: t.description,
            parameters_schema: t.parameters_schema,
            http_hosts: t.http_hosts,
        }
    }
}

pub use crate::guarded::{PluginStatus, MAX_COOL_DOWN};

/// One loaded version of a plugin file.
pub struct LoadedPlugin {
    /// The file stem (`tool_echo` for `tool_echo.wasm`).
    pub id: String,
    pub path: PathBuf,
    pub digest: String,
    pub manifest: PluginManifest,
    pub tool: Option<ToolDescriptor>,
    pub cache: CacheOutcome,
    pub load_time: Duration,
    pub(crate) component: Component,
    /// Ready or disabled, by its calls' outcomes (`guarded.rs`).
    pub health: Health,
    modified: Option<SystemTime>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin").field("id", &self.id).field("digest", &self.digest).finish()
    }
}

impl LoadedPlugin {
    /// Ready, or disabled (see [`Health::status`]).
    pub fn status(&self) -> PluginStatus {
        self.health.status()
    }

    /// How long until a disabled plugin is tried again (`None`: not waiting).
    pub fn retry_in(&self) -> Option<Duration> {
        self.health.retry_in()
    }
}

/// A line of `chela plugins list`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginListing {
    pub id: String,
    pub path: PathBuf,
    pub kind: Option<PluginKind>,
    pub tool: Option<String>,
    pub needs: Vec<Capability>,
    pub status: String,
    pub error: Option<String>,
    /// A disabled plugin is tried again in this many seconds.
    pub retry_in_seconds: Option<u64>,
}

/// What a (re)scan did.
#[derive(Debug, Default)]
pub struct ScanReport {
    pub loaded: Vec<String>,
    pub replaced: Vec<String>,
    pub removed: Vec<String>,
    pub failed: Vec<(PathBuf, String)>,
}

impl ScanReport {
    /// A plugin was loaded, replaced or removed.
    pub fn changed(&self) -> bool {
        !(self.loaded.is_empty() && self.replaced.is_empty() && self.removed.is_empty())
    }
}

/// Pre-linked instances by `(component digest, linked capabilities)`.
type PreLinkCache = HashMap<(String, BTreeSet<Capability>), ToolPluginAllPre<PluginState>>;

/// All plugins of the process, by id, plus the pre-link cache.
pub struct Plugins {
    engine: Arc<PluginEngine>,
    cache: CompileCache,
    dirs: Vec<PathBuf>,
    loaded: RwLock<BTreeMap<String, Arc<LoadedPlugin>>>,
    failed: RwLock<BTreeMap<PathBuf, String>>,
    pre: Mutex<PreLinkCache>,
    /// `false` between a partial scan and the full scan after it.
    settled: tokio::sync::watch::Sender<bool>,
    /// Scans run one at a time (a file is never compiled twice at once).
    scanning: tokio::sync::Mutex<()>,
    /// Where plugins' kv state is kept (the state dir unless [`Plugins::keep_kv`] says otherwise).
    kv_home: RwLock<KvHome>,
}

/// Compiles at once: one per core (Cranelift uses one thread per component).
fn compile_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Whether a component's bytes name the channel-adapter export. Only an
/// ordering hint (channel adapters compile first); `inspect` decides.
fn looks_like_channel(bytes: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"chela:plugin/channel-adapter";
    bytes.windows(NEEDLE.len()).any(|w| w == NEEDLE)
}

impl Plugins {
    pub fn new(engine: Arc<PluginEngine>, dirs: Vec<PathBuf>, cache_dir: Option<PathBuf>) -> Plugins {
        Plugins {
            engine,
            cache: CompileCache::new(cache_dir),
            dirs,
            loaded: RwLock::default(),
            failed: RwLock::default(),
            pre: Mutex::default(),
            settled: tokio::sync::watch::Sender::new(true),
            scanning: tokio::sync::Mutex::new(()),
            kv_home: RwLock::default(),
        }
    }

    /// Keeps plugins' kv state in `home` from now on (the gateway, once it
    /// knows its storage: the replicas' database).
    pub fn keep_kv(&self, home: KvHome) {
        *self.kv_home.write().unwrap_or_else(|p| p.into_inner()) = home;
    }

    /// Where plugins' kv state is kept.
    pub fn kv_home(&self) -> KvHome {
        self.kv_home.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn engine(&self) -> &Arc<PluginEngine> {
        &self.engine
    }

    fn wasm_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for dir in &self.dirs {
            let Ok(entries) = std::fs::read_dir(dir) else { continue };
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "wasm") && p.is_file() {
                    files.push(p);
                }
            }
        }
        files.sort();
        files
    }

    /// Loads new and changed files, drops removed ones. A broken file is
    /// reported and skipped; it never affects the others. Files compile in
    /// parallel (one per core), channel adapters first. Afterwards the
    /// plugin set is [`settled`](Self::settled).
    pub async fn rescan(&self) -> ScanReport {
        let _one_at_a_time = self.scanning.lock().await;
        let files = self.wasm_files();
        let mut report = self.load_changed(&files, |_| true).await;
        let seen: BTreeSet<String> = files.iter().filter_map(|p| plugin_id(p)).collect();
        let mut loaded = self.loaded.write().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<String> = loaded.keys().filter(|id| !seen.contains(*id)).cloned().collect();
        for id in gone {
            loaded.remove(&id);
            report.removed.push(id);
        }
        drop(loaded);
        self.settled.send_replace(true);
        report
    }

    /// Loads only the new and changed files that look like channel adapters
    /// (what routing and delivery need first); the set is not settled until
    /// the next full [`rescan`](Self::rescan), which loads the rest.
    pub async fn rescan_channels(&self) -> ScanReport {
        let _one_at_a_time = self.scanning.lock().await;
        self.settled.send_replace(false);
        self.load_changed(&self.wasm_files(), |looks_like_channel| looks_like_channel).await
    }

    /// Resolves once a full scan has loaded every file (at once, unless a
    /// partial scan started and its full scan has not finished yet): a turn
    /// waits here so it never runs without a tool that is still compiling.
    pub async fn settled(&self) {
        let mut rx = self.settled.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Those of `files` that are new or changed and `wanted` (given whether
    /// the file looks like a channel adapter), compiled in parallel, channel
    /// adapters first.
    async fn load_changed(&self, files: &[PathBuf], wanted: impl Fn(bool) -> bool) -> ScanReport {
        let mut report = ScanReport::default();
        let mut todo = Vec::new();
        for path in files.iter().cloned() {
            let Some(id) = plugin_id(&path) else { continue };
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            let current = self.get(&id);
            if current.as_ref().is_some_and(|c| c.path == path && c.modified == modified && modified.is_some()) {
                continue;
            }
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    self.record_failure(&path, format!("cannot read: {e}"));
                    report.failed.push((path, format!("cannot read: {e}")));
                    continue;
                }
            };
            let channel = looks_like_channel(&bytes);
            if wanted(channel) {
                todo.push((channel, id, path, bytes, current));
            }
        }
        // Channel adapters first, then the biggest (slowest) files, so the
        // long compiles overlap the short ones.
        todo.sort_by_key(|(channel, _, _, bytes, _)| (!channel, std::cmp::Reverse(bytes.len())));
        let uncached: Vec<(&str, usize)> = todo
            .iter()
            .filter(|(_, _, path, bytes, _)| !self.cache.holds(&self.engine, &digest(bytes), path))
            .map(|(_, id, _, bytes, _)| (id.as_str(), bytes.len()))
            .collect();
        let workers = compile_workers();
        if !uncached.is_empty() {
            let mb = uncached.iter().map(|(_, n)| n).sum::<usize>() as f64 / 1e6;
            let ids: Vec<&str> = uncached.iter().map(|(id, _)| *id).collect();
            tracing::info!(plugins = ?ids, mb = format!("{mb:.1}"), workers, "compiling plugins (cached afterwards: `chela plugins precompile` does this ahead of time)");
        }
        let total = todo.len();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let loads = todo.into_iter().map(|(_, id, path, bytes, current)| {
            let done = &done;
            async move {
                let result = self.load_bytes(&path, bytes).await;
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if let Some(p) = result.as_ref().ok().filter(|p| p.cache != CacheOutcome::Hit) {
                    tracing::info!(plugin = %id, ms = p.load_time.as_millis() as u64, "compiled plugin {n} of {total}");
                }
                (id, path, result, current)
            }
        });
        let results: Vec<_> = futures_util::stream::iter(loads).buffer_unordered(workers).collect().await;
        for (id, path, result, current) in results {
            match result {
                Ok(p) if current.as_ref().is_some_and(|c| c.digest == p.digest) => {}
                Ok(_) if current.is_some() => report.replaced.push(id),
                Ok(_) => report.loaded.push(id),
                Err(e) => report.failed.push((path, e)),
            }
        }
        report
    }

    fn record_failure(&self, path: &Path, error: String) {
        tracing::warn!(path = %path.display(), %error, "plugin not loaded");
        self.failed.write().unwrap_or_else(|p| p.into_inner()).insert(path.to_path_buf(), error);
    }

    /// Rescans the plugin dirs every `every` (the one rescan loop, used by
    /// the gateway): after each rescan `after` gets the report, and the loop
    /// ends when it answers `false` (its owner is gone).
    pub fn watch<F, Fut>(self: &Arc<Self>, every: Duration, mut after: F) -> tokio::task::JoinHandle<()>
    where
        F: FnMut(ScanReport) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = bool> + Send,
    {
        let plugins = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let r = plugins.rescan().await;
                if r.changed() {
                    tracing::info!(loaded = ?r.loaded, replaced = ?r.replaced, removed = ?r.removed, "plugins changed");
                }
                if !after(r).await {
                    return;
                }
            }
        })
    }

    /// Loads (or replaces) one file.
    pub async fn load_file(&self, path: &Path) -> Result<Arc<LoadedPlugin>, String> {
        match std::fs::read(path) {
            Ok(bytes) => self.load_bytes(path, bytes).await,
            Err(e) => {
                self.record_failure(path, format!("cannot read: {e}"));
                Err(format!("cannot read: {e}"))
            }
        }
    }

    /// Loads (or replaces) the file at `path`, whose content is `bytes`.
    async fn load_bytes(&self, path: &Path, bytes: Vec<u8>) -> Result<Arc<LoadedPlugin>, String> {
        let result = self.load_inner(path, bytes).await;
        match &result {
            Ok(p) => {
                self.failed.write().unwrap_or_else(|p| p.into_inner()).remove(path);
                tracing::debug!(plugin = %p.id, digest = %&p.digest[..12], cache = ?p.cache, ms = p.load_time.as_millis() as u64, "plugin loaded");
                self.loaded.write().unwrap_or_else(|p| p.into_inner()).insert(p.id.clone(), p.clone());
            }
            Err(e) => self.record_failure(path, e.clone()),
        }
        result
    }

    async fn load_inner(&self, path: &Path, bytes: Vec<u8>) -> Result<Arc<LoadedPlugin>, String> {
        let start = Instant::now();
        let id = plugin_id(path).ok_or("the file name is not a valid plugin id")?;
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let digest = digest(&bytes);
        if let Some(cur) = self.get(&id).filter(|c| c.digest == digest) {
            return Ok(cur);
        }
        let engine = self.engine.clone();
        let cache = self.cache.clone();
        let (d, p) = (digest.clone(), path.to_path_buf());
        // Compiling can take seconds for big guests: keep it off the async threads.
        let (component, outcome) = tokio::task::spawn_blocking(move || cache.compile(&engine, &bytes, &d, &p))
            .await
            .map_err(|e| format!("compile task failed: {e}"))?
            .map_err(|e| e.to_string())?;
        let manifest = inspect(self.engine.engine(), &component)?;
        let health = Health::new(&id);
        let tool = match manifest.kind {
            PluginKind::Tool => Some(self.describe_tool(&id, &health, &component, &manifest).await?),
            PluginKind::Channel => None,
        };
        Ok(Arc::new(LoadedPlugin {
            id,
            path: path.to_path_buf(),
            digest,
            manifest,
            tool,
            cache: outcome,
            load_time: start.elapsed(),
            component,
            health,
            modified,
        }))
    }

    /// Writes each loaded plugin's compilation into `.cwasm/` beside its
    /// file (`chela plugins precompile --ship`): where a read-only image's
    /// gateway finds it. Returns the files written, or the first error.
    pub fn ship_compiled(&self) -> Result<Vec<PathBuf>, String> {
        self.all()
            .iter()
            .map(|p| {
                crate::cache::ship(&self.engine, &p.digest, &p.path, &p.component)
                    .map_err(|e| format!("{}: cannot write the compiled code beside it: {e}", p.path.display()))
            })
            .collect()
    }

    /// Calls `describe` with only the plugin's own needs linked and nothing
    /// granted (no workspace, no hosts, no secrets, no process or sessions
    /// access): describe must not need them.
    async fn describe_tool(
        &self,
        id: &str,
        health: &Health,
        component: &Component,
        manifest: &PluginManifest,
    ) -> Result<ToolDescriptor, String> {
        let shape: BTreeSet<Capability> = manifest.needs.clone();
        let linker = linker_for(self.engine.engine(), &shape).map_err(|e| format!("{e:#}"))?;
        let pre = linker.instantiate_pre(component).map_err(|e| format!("cannot link: {e:#}"))?;
        let pre = ToolPluginAllPre::new(pre).map_err(|e| format!("{e:#}"))?;
        let grants = GrantSet { capabilities: shape, ..GrantSet::minimal() };
        let secrets = Arc::new(crate::capability::secrets::SecretStore::default());
        let scope = crate::call::CallScope {
            plugin_id: id,
            agent_id: "-",
            grants: &grants,
            secrets,
            kv: None,
            services: crate::capability::HostServices::default(),
            memory_bytes: None,
        };
        let out = crate::call::describe(&self.engine, &pre, health, scope)
            .await
            .map_err(|e| format!("describe failed: {e}"))?;
        let info: ToolDescriptor = out.value.into();
        if info.name.is_empty() {
            return Err("describe returned an empty tool name".into());
        }
        Ok(info)
    }

    pub fn get(&self, id: &str) -> Option<Arc<LoadedPlugin>> {
        self.loaded.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<LoadedPlugin>> {
        self.loaded.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Every plugin file, loaded or not, with its status.
    pub fn list(&self) -> Vec<PluginListing> {
        let mut out: Vec<PluginListing> = self
            .all()
            .iter()
            .map(|p| {
                let status = p.status();
                PluginListing {
                    id: p.id.clone(),
                    path: p.path.clone(),
                    kind: Some(p.manifest.kind),
                    tool: p.tool.as_ref().map(|t| t.name.clone()),
                    needs: p.manifest.needs.iter().copied().collect(),
                    status: match &status {
                        PluginStatus::Ready => "ready".into(),
                        PluginStatus::Disabled(_) => "disabled".into(),
                    },
                    error: match status {
                        PluginStatus::Disabled(r) => Some(r),
                        PluginStatus::Ready => None,
                    },
                    retry_in_seconds: p.retry_in().map(|d| d.as_secs()),
                }
            })
            .collect();
        for (path, err) in self.failed.read().unwrap_or_else(|p| p.into_inner()).iter() {
            out.push(PluginListing {
                id: plugin_id(path).unwrap_or_default(),
                path: path.clone(),
                kind: None,
                tool: None,
                needs: Vec::new(),
                status: "failed".into(),
                error: Some(err.clone()),
                retry_in_seconds: None,
            });
        }
        out
    }

    /// The pre-linked instance of `plugin` for a grant shape (cached).
    pub(crate) fn pre_for(
        &self,
        plugin: &LoadedPlugin,
        shape: &BTreeSet<Capability>,
    ) -> Result<ToolPluginAllPre<PluginState>, String> {
        let key = (plugin.digest.clone(), shape.clone());
        if let Some(pre) = self.pre.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(pre.clone());
        }
        let linker = linker_for(self.engine.engine(), shape).map_err(|e| format!("{e:#}"))?;
        let pre = linker.instantiate_pre(&plugin.component).map_err(|e| format!("cannot link: {e:#}"))?;
        let pre = ToolPluginAllPre::new(pre).map_err(|e| format!("{e:#}"))?;
        self.pre.lock().unwrap_or_else(|p| p.into_inner()).insert(key, pre.clone());
        Ok(pre)
    }

    /// The invoke context for a call (used by callers that have no session yet).
    pub fn context(agent_id: &str, session_key: &str, call_id: &str) -> InvokeContext {
        InvokeContext { agent_id: agent_id.into(), session_key: session_key.into(), call_id: call_id.into() }
    }
}

/// `tool-echo.wasm` → `tool-echo`; ids are file stems made of `[A-Za-z0-9_-]`.
pub fn plugin_id(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    (!stem.is_empty() && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .then(|| stem.to_string())
}
