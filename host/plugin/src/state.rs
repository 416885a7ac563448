//! The data of one plugin instance's `Store`: WASI context, the capability
//! state its grants allow, and its limits.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capability::http::Egress;
use crate::capability::kv::KvScope;
use crate::capability::process::ProcessGrant;
use crate::capability::secrets::SecretStore;
use crate::capability::sessions::SessionsAccess;
use crate::capability::{workspace, Capability, GrantSet};

pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    egress: Egress,
    pub(crate) limits: MemoryCap,
    pub(crate) plugin_id: Arc<str>,
    pub(crate) agent_id: Arc<str>,
    pub(crate) kv: Option<KvScope>,
    pub(crate) secrets: Arc<SecretStore>,
    pub(crate) logs: Vec<String>,
    /// When the current call must end (long-lived channel instances set it per call).
    pub(crate) deadline: Option<std::time::Instant>,
    /// The session a tool call runs for, and the host's answer to `sessions` calls.
    pub(crate) session_key: String,
    pub(crate) sessions: Option<Arc<dyn SessionsAccess>>,
    /// The `sessions` functions this session's policy allows.
    pub(crate) session_rights: crate::capability::SessionRights,
    /// WebSocket connections this instance holds.
    pub(crate) ws_open: usize,
    pub(crate) process: Option<ProcessGrant>,
    /// Secrets whose check (`verify-hmac-sha256`, `matches`) succeeded in
    /// the current call: what a webhook delivery proved it knows.
    pub(crate) proved_secrets: Vec<String>,
}

impl PluginState {
    pub fn new(
        plugin_id: &str,
        agent_id: &str,
        grants: &GrantSet,
        secrets: Arc<SecretStore>,
        memory_bytes: usize,
    ) -> Result<PluginState, String> {
        // No environment, no args, no sockets, no inherited stdio: only what grants add.
        let mut builder = WasiCtx::builder();
        if let Some((dir, access)) = &grants.workspace {
            workspace::preopen(&mut builder, dir, *access)?;
        }
        let secrets = if [Capability::Secrets, Capability::Http, Capability::Websocket].iter().any(|c| grants.holds(*c))
        {
            secrets
        } else {
            Arc::new(SecretStore::default())
        };
        Ok(PluginState {
            wasi: builder.build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            egress: if grants.holds(Capability::Http) || grants.holds(Capability::Websocket) {
                Egress::new(&grants.http_hosts, &grants.public_hosts, secrets.clone())
            } else {
                Egress::default()
            },
            limits: MemoryCap { limit: memory_bytes, refused: false, size: 0 },
            plugin_id: plugin_id.into(),
            agent_id: agent_id.into(),
            kv: grants.kv_dir.as_deref().filter(|_| grants.holds(Capability::Kv)).map(KvScope::open),
            secrets,
            logs: Vec::new(),
            deadline: None,
            session_key: String::new(),
            sessions: None,
            session_rights: grants.sessions,
            ws_open: 0,
            process: grants.process.clone().filter(|_| grants.holds(Capability::Process)),
            proved_secrets: Vec::new(),
        })
    }

    /// Points the instance's key-value state and secrets at one account
    /// (a channel instance serves all accounts of its channel, one call at a time).
    pub(crate) fn enter_scope(&mut self, kv: Option<KvScope>, secrets: Arc<SecretStore>) {
        self.kv = kv;
        self.proved_secrets.clear();
        self.egress.secrets = secrets.clone();
        self.secrets = secrets;
    }
}

/// The per-instance memory cap. Remembers a refused growth so a trap that
/// follows (a guest aborting on allocation failure) is reported as what it is.
pub(crate) struct MemoryCap {
    pub(crate) limit: usize,
    pub(crate) refused: bool,
    /// Linear memory the instance holds now (bytes).
    pub(crate) size: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.refused = true;
            return Ok(false);
        }
        self.size = self.size.saturating_sub(current) + desired;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl PluginState {
    pub(crate) fn egress(&self) -> &Egress {
        &self.egress
    }

    pub(crate) fn table_mut(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.egress }
    }
}

impl crate::bindings::chela::plugin::types::Host for PluginState {}
