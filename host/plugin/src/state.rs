//! The data of one plugin instance's `Store`: the WASI context and resource
//! table, each capability's own instance state (built from the grants by
//! its module), the memory cap and the current call's deadline; and
//! [`linker_for`], the linker of exactly a grant's shape over that data.
//!
//! Must not: implement any capability (each lives in its `capability/`
//! module) or decide grants (that is `linking`).

use std::collections::BTreeSet;
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capability::automations::AutomationsState;
use crate::capability::http::Egress;
use crate::capability::kv::{KvScope, KvState};
use crate::capability::log::LogState;
use crate::capability::messaging::MessagingState;
use crate::capability::process::{ProcessState, ProcessView};
use crate::capability::secrets::{SecretStore, SecretsState};
use crate::capability::sessions::SessionsState;
use crate::capability::websocket::WsView;
use crate::capability::{
    automations, http, kv, log, messaging, process, secrets, sessions, websocket, workspace, Capability, GrantSet,
};

pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    egress: Egress,
    pub(crate) limits: MemoryCap,
    pub(crate) log: LogState,
    pub(crate) kv: KvState,
    pub(crate) secrets: SecretsState,
    pub(crate) sessions: SessionsState,
    pub(crate) messaging: MessagingState,
    pub(crate) automations: AutomationsState,
    pub(crate) process: ProcessState,
    /// WebSocket connections this instance holds.
    ws_open: usize,
    /// When the current call must end (`guarded.rs` sets it per call).
    pub(crate) deadline: Option<std::time::Instant>,
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
        let (plugin, agent): (Arc<str>, Arc<str>) = (plugin_id.into(), agent_id.into());
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
            log: LogState::new(plugin.clone(), agent.clone()),
            kv: KvState::default(),
            secrets: SecretsState { store: secrets, proved: Vec::new() },
            sessions: SessionsState {
                plugin: plugin.to_string(),
                agent: agent.to_string(),
                rights: grants.sessions,
                exec: grants.exec_tightening,
                ..SessionsState::default()
            },
            messaging: MessagingState { agent: agent.to_string(), ..MessagingState::default() },
            automations: AutomationsState { agent: agent.to_string(), ..AutomationsState::default() },
            process: ProcessState {
                grant: grants.process.clone().filter(|_| grants.holds(Capability::Process)),
                plugin: plugin.to_string(),
                agent: agent.to_string(),
                session_key: String::new(),
                approvals: None,
            },
            ws_open: 0,
            deadline: None,
        })
    }

    /// Points the instance's key-value state and secrets at one account
    /// (a channel instance serves all accounts of its channel, one call at a time).
    pub(crate) fn enter_scope(&mut self, kv: Option<KvScope>, secrets: Arc<SecretStore>) {
        self.kv.scope = kv;
        self.egress.secrets = secrets.clone();
        self.secrets = SecretsState { store: secrets, proved: Vec::new() };
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
    fn ws(&mut self) -> WsView<'_> {
        WsView { table: &mut self.table, egress: &self.egress, open: &mut self.ws_open }
    }

    fn process(&mut self) -> ProcessView<'_> {
        ProcessView { state: &self.process, deadline: self.deadline }
    }
}

/// Builds a linker holding WASI basics plus exactly the capabilities in `shape`.
pub fn linker_for(engine: &wasmtime::Engine, shape: &BTreeSet<Capability>) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::<PluginState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    crate::bindings::plugin::types::add_to_linker::<_, HasSelf<PluginState>>(&mut linker, |s| s)?;
    for c in shape {
        match c {
            Capability::Log => log::add_to_linker(&mut linker, |s| &mut s.log)?,
            Capability::Kv => kv::add_to_linker(&mut linker, |s| &mut s.kv)?,
            Capability::Secrets => secrets::add_to_linker(&mut linker, |s| &mut s.secrets)?,
            Capability::Http => http::add_to_linker(&mut linker)?,
            Capability::Sessions => sessions::add_to_linker(&mut linker, |s| &mut s.sessions)?,
            Capability::Messaging => messaging::add_to_linker(&mut linker, |s| &mut s.messaging)?,
            Capability::Automations => automations::add_to_linker(&mut linker, |s| &mut s.automations)?,
            Capability::Websocket => websocket::add_to_linker(&mut linker, PluginState::ws)?,
            Capability::Process => process::add_to_linker(&mut linker, PluginState::process)?,
        }
    }
    Ok(linker)
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

impl crate::bindings::plugin::types::Host for PluginState {}
