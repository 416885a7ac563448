//! The plugins dir: find `.wasm` files, validate and compile them, describe
//! them, and replace them when they change — without touching calls in flight
//! (a call holds the `Arc` of the version it started with).
//!
//! Must not: decide grants or cancel a call in flight when a plugin changes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use wasmtime::component::Component;

use crate::bindings::chela::plugin::types::{InvokeContext, ToolInfo};
use crate::bindings::ToolPluginAllPre;
use crate::cache::{digest, CacheOutcome, CompileCache};
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
        }
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
    /// reported and skipped; it never affects the others.
    pub async fn rescan(&self) -> ScanReport {
        let mut report = ScanReport::default();
        let files = self.wasm_files();
        let seen: BTreeSet<String> = files.iter().filter_map(|p| plugin_id(p)).collect();
        for path in files {
            let Some(id) = plugin_id(&path) else { continue };
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            let current = self.get(&id);
            if current.as_ref().is_some_and(|c| c.path == path && c.modified == modified && modified.is_some()) {
                continue;
            }
            match self.load_file(&path).await {
                Ok(p) if current.as_ref().is_some_and(|c| c.digest == p.digest) => {}
                Ok(_) if current.is_some() => report.replaced.push(id),
                Ok(_) => report.loaded.push(id),
                Err(e) => report.failed.push((path, e)),
            }
        }
        let mut loaded = self.loaded.write().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<String> = loaded.keys().filter(|id| !seen.contains(*id)).cloned().collect();
        for id in gone {
            loaded.remove(&id);
            report.removed.push(id);
        }
        report
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
        let result = self.load_inner(path).await;
        let mut failed = self.failed.write().unwrap_or_else(|p| p.into_inner());
        match &result {
            Ok(p) => {
                failed.remove(path);
                tracing::info!(plugin = %p.id, digest = %&p.digest[..12], cache = ?p.cache, ms = p.load_time.as_millis() as u64, "plugin loaded");
                self.loaded.write().unwrap_or_else(|p| p.into_inner()).insert(p.id.clone(), p.clone());
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "plugin not loaded");
                failed.insert(path.to_path_buf(), e.clone());
            }
        }
        result
    }

    async fn load_inner(&self, path: &Path) -> Result<Arc<LoadedPlugin>, String> {
        let start = Instant::now();
        let id = plugin_id(path).ok_or("the file name is not a valid plugin id")?;
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
        let digest = digest(&bytes);
        if let Some(cur) = self.get(&id).filter(|c| c.digest == digest) {
            return Ok(cur);
        }
        let engine = self.engine.clone();
        let cache = self.cache.clone();
        let d = digest.clone();
        // Compiling can take seconds for big guests: keep it off the async threads.
        let (component, outcome) = tokio::task::spawn_blocking(move || cache.compile(&engine, &bytes, &d))
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
            sessions: None,
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
