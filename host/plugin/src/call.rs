//! Running one call in a fresh instance under the limits: memory cap
//! (`StoreLimits`), wall-clock deadline (epoch ticks; the guest yields to
//! tokio every tick), and failure accounting that disables a plugin which
//! keeps trapping. A trap, timeout or out-of-memory fails only that call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, UpdateDeadline};

use crate::bindings::chela::plugin::types::{InvokeContext, ToolError, ToolInfo};
use crate::bindings::ToolPluginAllPre;
use crate::capability::secrets::SecretStore;
use crate::capability::sessions::SessionsAccess;
use crate::capability::GrantSet;
use crate::engine::{Limits, PluginEngine, TICK};
use crate::loader::LoadedPlugin;
use crate::state::PluginState;

/// Why a call produced no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("plugin `{plugin}` is disabled: {reason}")]
    Disabled { plugin: String, reason: String },
    #[error("plugin `{plugin}` did not finish within {limit:?}")]
    Timeout { plugin: String, limit: Duration },
    /// The deadline passed while the guest waited in a host call (a command, the network).
    #[error("plugin `{plugin}` did not finish within {limit:?} (waiting on a command or the network)")]
    WaitTimeout { plugin: String, limit: Duration },
    #[error("plugin `{plugin}` exceeded its memory limit of {limit} bytes")]
    OutOfMemory { plugin: String, limit: usize },
    #[error("plugin `{plugin}` trapped: {message}")]
    Trap { plugin: String, message: String },
    #[error("cannot start plugin `{plugin}`: {message}")]
    Setup { plugin: String, message: String },
}

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

/// What to run in the instance.
pub(crate) enum Op {
    Describe,
    Invoke(InvokeContext, String),
}

pub(crate) enum OpValue {
    Describe(ToolInfo),
    Invoke(ToolResult),
}

const DEADLINE: &str = "chela: call deadline exceeded";

/// Whom a call runs for and with what: the agent, its grants, and the
/// host services behind them.
pub(crate) struct CallScope<'a> {
    pub agent_id: &'a str,
    pub grants: &'a GrantSet,
    pub secrets: Arc<SecretStore>,
    pub sessions: Option<Arc<dyn SessionsAccess>>,
    /// This plugin's memory cap, when the config sets one below the engine's.
    pub memory_bytes: Option<usize>,
}

/// Instantiates `pre` for the scope's agent with its grants and runs `op` under the limits.
pub(crate) async fn run(
    engine: &PluginEngine,
    pre: &ToolPluginAllPre<PluginState>,
    plugin_id: &str,
    scope: CallScope<'_>,
    op: Op,
) -> Result<CallOutcome<OpValue>, CallError> {
    let mut limits = *engine.limits();
    limits.memory_bytes = scope.memory_bytes.map_or(limits.memory_bytes, |m| m.min(limits.memory_bytes));
    let setup = |message: String| CallError::Setup { plugin: plugin_id.to_string(), message };
    let grants = scope.grants;
    let mut state =
        PluginState::new(plugin_id, scope.agent_id, grants, scope.secrets, limits.memory_bytes).map_err(setup)?;
    if let Op::Invoke(cx, _) = &op {
        state.session_key = cx.session_key.clone();
    }
    if grants.holds(crate::capability::Capability::Sessions) {
        state.sessions = scope.sessions;
    }
    let start = Instant::now();
    let deadline = start + limits.call_timeout;
    // Host calls (exec) finish before the call's deadline, not after it.
    state.deadline = Some(deadline);
    let Some(_slot) = engine.instance_slot(deadline.into()).await else {
        return Err(setup(format!(
            "more than {} plugin calls at once; this one waited its whole deadline",
            crate::engine::MAX_CONCURRENT_INSTANCES
        )));
    };
    let mut store = Store::new(engine.engine(), state);
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Err(wasmtime::Error::msg(DEADLINE))
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    let work = async {
        let instance = pre.instantiate_async(&mut store).await?;
        let tool = instance.chela_plugin_tool();
        Ok::<_, wasmtime::Error>(match op {
            Op::Describe => OpValue::Describe(tool.call_describe(&mut store).await?),
            Op::Invoke(cx, args) => {
                OpValue::Invoke(tool.call_invoke(&mut store, &cx, &args).await?.map_err(Into::into))
            }
        })
    };
    // The epoch callback ends a running guest; the outer timeout also covers
    // a guest parked in a host call.
    let result = tokio::time::timeout(limits.call_timeout + 5 * TICK, work).await;
    let elapsed = start.elapsed();
    match result {
        // The epoch callback did not end it: the guest was parked in a host call.
        Err(_) => Err(CallError::WaitTimeout { plugin: plugin_id.to_string(), limit: limits.call_timeout }),
        Ok(Ok(value)) => Ok(CallOutcome { value, logs: std::mem::take(&mut store.data_mut().logs), elapsed }),
        Ok(Err(e)) => {
            let text = format!("{e:#}");
            Err(if text.contains(DEADLINE) {
                CallError::Timeout { plugin: plugin_id.to_string(), limit: limits.call_timeout }
            } else if store.data().limits.refused {
                CallError::OutOfMemory { plugin: plugin_id.to_string(), limit: limits.memory_bytes }
            } else {
                CallError::Trap { plugin: plugin_id.to_string(), message: first_line(&text) }
            })
        }
    }
}

/// The trap's cause without wasmtime's backtrace frame list, cut to 500 chars.
fn first_line(s: &str) -> String {
    let lines: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    // wasmtime puts "error while executing at wasm backtrace:" and frames first,
    // then the cause ("Caused by:" / the trap message) last.
    let cause = lines
        .iter()
        .rev()
        .find(|l| !l.starts_with(|c: char| c.is_ascii_digit()) && !l.starts_with("Caused by") && !l.starts_with("at "))
        .copied()
        .unwrap_or(s);
    let frames =
        lines.iter().filter(|l| l.starts_with(|c: char| c.is_ascii_digit())).take(3).copied().collect::<Vec<_>>();
    let mut out = cause.to_string();
    if !frames.is_empty() {
        out.push_str(&format!(" (in {})", frames.join("; ")));
    }
    out.chars().take(500).collect()
}

/// Counts a call against `plugin`: its own faults (trap, spin, memory)
/// disable it after too many in a row; waiting on the host (a command, the
/// network) past the deadline is not its fault.
pub(crate) fn record(plugin: &LoadedPlugin, outcome: &Result<CallOutcome<OpValue>, CallError>, limits: &Limits) {
    match outcome {
        Ok(_) => plugin.record(None, limits),
        Err(CallError::Disabled { .. } | CallError::Setup { .. } | CallError::WaitTimeout { .. }) => {}
        Err(e) => plugin.record(Some(e), limits),
    }
}
