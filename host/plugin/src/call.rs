//! A tool call: `describe` or `invoke` in a fresh instance built from the
//! caller's grants, one guarded call (`guarded.rs`: deadline, memory,
//! failure accounting). A trap, timeout or out-of-memory fails only that call.
//!
//! Must not: decide grants (that is `linking`) or keep instances between calls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Store;

use crate::bindings::plugin::types::{InvokeContext, ToolError, ToolInfo};
use crate::bindings::ToolPluginAllPre;
use crate::capability::kv::KvScope;
use crate::capability::secrets::SecretStore;
use crate::capability::{Capability, GrantSet, HostServices};
use crate::engine::PluginEngine;
use crate::guarded::{guarded, new_store, CallError, Health};
use crate::state::PluginState;

/// A finished call: the value, the plugin's log lines, and how long it took.
#[derive(Debug, Clone)]
pub struct CallOutcome<T> {
    pub value: T,
    pub logs: Vec<String>,
    pub elapsed: Duration,
}

/// A tool's answer: text for the model, or the tool's own typed error.
pub type ToolResult = Result<String, ToolFailure>;

/// `tool-error` from the WIT, host side.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "message")]
pub enum ToolFailure {
    InvalidArguments(String),
    Denied(String),
    Failed(String),
}

impl From<ToolError> for ToolFailure {
    fn from(e: ToolError) -> Self {
        match e {
            ToolError::InvalidArguments(m) => ToolFailure::InvalidArguments(m),
            ToolError::Denied(m) => ToolFailure::Denied(m),
            ToolError::Failed(m) => ToolFailure::Failed(m),
        }
    }
}

/// Whom a call runs for and with what: the agent, its grants, and the
/// host services behind them.
pub(crate) struct CallScope<'a> {
    pub plugin_id: &'a str,
    pub agent_id: &'a str,
    pub grants: &'a GrantSet,
    pub secrets: Arc<SecretStore>,
    /// The agent's kv scope of this plugin, when `Kv` is granted.
    pub kv: Option<KvScope>,
    /// What the `sessions` and `messaging` capabilities answer from.
    pub services: HostServices,
    /// This plugin's memory cap, when the config sets one below the engine's.
    pub memory_bytes: Option<usize>,
}

/// A tool's `describe`, in a fresh instance (nothing granted beyond the scope).
pub(crate) async fn describe(
    engine: &PluginEngine,
    pre: &ToolPluginAllPre<PluginState>,
    health: &Health,
    scope: CallScope<'_>,
) -> Result<CallOutcome<ToolInfo>, CallError> {
    run(engine, pre, health, scope, None, async |tool, store| tool.call_describe(store).await).await
}

/// A tool's `invoke` for the context's session, in a fresh instance.
pub(crate) async fn invoke(
    engine: &PluginEngine,
    pre: &ToolPluginAllPre<PluginState>,
    health: &Health,
    scope: CallScope<'_>,
    cx: InvokeContext,
    arguments: &str,
) -> Result<CallOutcome<ToolResult>, CallError> {
    let session = cx.session_key.clone();
    let call = async |tool: &Guest, store: &mut Store<PluginState>| {
        Ok(tool.call_invoke(store, &cx, arguments).await?.map_err(ToolFailure::from))
    };
    run(engine, pre, health, scope, Some(session), call).await
}

type Guest = crate::bindings::exports::chela::plugin0_1_0::tool::Guest;

/// Instantiates `pre` for the scope's agent with its grants (one of at most
/// `MAX_CONCURRENT_INSTANCES`) and runs `work` on it as one guarded call.
async fn run<T>(
    engine: &PluginEngine,
    pre: &ToolPluginAllPre<PluginState>,
    health: &Health,
    scope: CallScope<'_>,
    session_key: Option<String>,
    work: impl AsyncFnOnce(&Guest, &mut Store<PluginState>) -> wasmtime::Result<T>,
) -> Result<CallOutcome<T>, CallError> {
    health.admit()?;
    let mut limits = *engine.limits();
    limits.memory_bytes = scope.memory_bytes.map_or(limits.memory_bytes, |m| m.min(limits.memory_bytes));
    let plugin_id = &scope.plugin_id;
    let setup = |message: String| CallError::Setup { plugin: plugin_id.to_string(), message };
    let grants = scope.grants;
    let mut state =
        PluginState::new(plugin_id, scope.agent_id, grants, scope.secrets, limits.memory_bytes).map_err(setup)?;
    let session_key = session_key.unwrap_or_default();
    state.kv.scope = scope.kv.filter(|_| grants.holds(Capability::Kv));
    if grants.holds(Capability::Sessions) {
        state.sessions.access = scope.services.sessions;
    }
    if grants.holds(Capability::Messaging) {
        state.messaging.access = scope.services.messaging;
    }
    if grants.holds(Capability::Automations) {
        state.automations.access = scope.services.automations;
    }
    if grants.holds(Capability::Process) {
        state.process.approvals = scope.services.exec_approvals;
    }
    state.process.session_key = session_key.clone();
    state.automations.session_key = session_key.clone();
    state.messaging.session_key = session_key.clone();
    state.sessions.session_key = session_key;
    let start = Instant::now();
    let Some(_slot) = engine.instance_slot((start + limits.call_timeout).into()).await else {
        return Err(setup(format!(
            "more than {} plugin calls at once; this one waited its whole deadline",
            crate::engine::MAX_CONCURRENT_INSTANCES
        )));
    };
    let mut store = new_store(engine, state);
    let value = guarded(&mut store, health, &limits, async |store: &mut Store<PluginState>| {
        let instance = pre.instantiate_async(&mut *store).await?;
        work(instance.chela_plugin0_1_0_tool(), store).await
    })
    .await?;
    Ok(CallOutcome { value, logs: std::mem::take(&mut store.data_mut().log.lines), elapsed: start.elapsed() })
}
