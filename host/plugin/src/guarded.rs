//! One guarded call into a plugin instance, tool or channel adapter alike:
//! the deadline (epoch ticks end a running guest; an outer timeout ends one
//! parked in a host call), the memory cap (`StoreLimits`), what went wrong
//! (timeout, timeout while waiting on the host, out of memory, trap, a host
//! service that failed under it), and
//! the plugin's [`Health`]: its own faults disable it after too many in a
//! row, for a cool-down that doubles.
//!
//! Must not: know which export a call runs, build grants or capability
//! state, or decide which plugins exist (that is `loader`).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime};

use wasmtime::{Store, UpdateDeadline};

use crate::engine::{Limits, PluginEngine, TICK};
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
    /// A host service the guest needed failed under it (the shared database
    /// away): the call was ended, through no fault of the plugin.
    #[error("plugin `{plugin}`: the host could not serve its call: {message}")]
    HostUnavailable { plugin: String, message: String },
}

impl CallError {
    /// The plugin's own fault (it counts towards disabling it); a disabled
    /// plugin, a setup problem or a host call that outlived the deadline is not.
    pub fn is_plugin_fault(&self) -> bool {
        matches!(self, CallError::Timeout { .. } | CallError::OutOfMemory { .. } | CallError::Trap { .. })
    }

    /// The instance may be in any state after it: start a fresh one.
    pub fn spoils_instance(&self) -> bool {
        self.is_plugin_fault() || matches!(self, CallError::WaitTimeout { .. } | CallError::HostUnavailable { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "state", content = "reason")]
pub enum PluginStatus {
    Ready,
    /// Failed repeatedly at run time: tried again after a cool-down that
    /// doubles each time (30 s up to 1 h), or at once when the file is replaced.
    Disabled(String),
}

/// The longest a disabled plugin waits (`Limits::first_cool_down` doubles up to it).
pub const MAX_COOL_DOWN: Duration = Duration::from_secs(3600);

/// How a plugin has been doing: ready or disabled, and why.
#[derive(Debug)]
pub struct Health {
    plugin: String,
    failures: AtomicU32,
    status: RwLock<PluginStatus>,
    /// When a disabled plugin is tried again.
    retry_at: RwLock<Option<SystemTime>>,
    /// Times disabled without a success since: sets the cool-down.
    strikes: AtomicU32,
    /// Back from a cool-down: its next own fault disables it again at once.
    probation: AtomicBool,
}

impl Health {
    pub(crate) fn new(plugin: &str) -> Health {
        Health {
            plugin: plugin.to_string(),
            failures: AtomicU32::new(0),
            status: RwLock::new(PluginStatus::Ready),
            retry_at: RwLock::new(None),
            strikes: AtomicU32::new(0),
            probation: AtomicBool::new(false),
        }
    }

    /// Ready, or disabled; a disabled plugin whose cool-down is over is
    /// ready again on probation (its next failure disables it at once).
    pub fn status(&self) -> PluginStatus {
        let status = self.status.read().unwrap_or_else(|p| p.into_inner()).clone();
        if matches!(status, PluginStatus::Disabled(_)) && self.retry_in().is_some_and(|d| d.is_zero()) {
            *self.status.write().unwrap_or_else(|p| p.into_inner()) = PluginStatus::Ready;
            *self.retry_at.write().unwrap_or_else(|p| p.into_inner()) = None;
            self.probation.store(true, Ordering::Relaxed);
            tracing::info!(plugin = %self.plugin, "plugin cool-down over: trying it again");
            return PluginStatus::Ready;
        }
        status
    }

    /// How long until a disabled plugin is tried again (`None`: not waiting).
    pub fn retry_in(&self) -> Option<Duration> {
        let at = (*self.retry_at.read().unwrap_or_else(|p| p.into_inner()))?;
        Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
    }

    /// `Err(Disabled)` while the plugin is disabled.
    pub(crate) fn admit(&self) -> Result<(), CallError> {
        match self.status() {
            PluginStatus::Ready => Ok(()),
            PluginStatus::Disabled(reason) => Err(CallError::Disabled { plugin: self.plugin.clone(), reason }),
        }
    }

    /// Counts a finished call: a success clears the record; the plugin's own
    /// fault counts, and disables it after `max_consecutive_failures` in a row
    /// (or the first one on probation); anything else is not its fault.
    pub(crate) fn record<T>(&self, outcome: &Result<T, CallError>, limits: &Limits) {
        let e = match outcome {
            Ok(_) => {
                self.failures.store(0, Ordering::Relaxed);
                self.strikes.store(0, Ordering::Relaxed);
                self.probation.store(false, Ordering::Relaxed);
                return;
            }
            Err(e) if e.is_plugin_fault() => e,
            Err(_) => return,
        };
        let n = self.failures.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        let probation = self.probation.swap(false, Ordering::Relaxed);
        if n >= limits.max_consecutive_failures || probation {
            let strikes = self.strikes.fetch_add(1, Ordering::Relaxed).min(16);
            let cool = limits.first_cool_down.saturating_mul(1 << strikes).min(MAX_COOL_DOWN);
            let shown = if probation {
                "failed again after its cool-down".to_string()
            } else {
                format!("{n} failed calls in a row")
            };
            let reason = format!("{shown}; last: {e}; tried again in {cool:.0?}");
            tracing::error!(plugin = %self.plugin, %reason, "plugin disabled");
            self.failures.store(0, Ordering::Relaxed);
            *self.retry_at.write().unwrap_or_else(|p| p.into_inner()) = Some(SystemTime::now() + cool);
            *self.status.write().unwrap_or_else(|p| p.into_inner()) = PluginStatus::Disabled(reason);
        }
    }
}

const DEADLINE: &str = "chela: call deadline exceeded";

/// A store whose calls [`guarded`] can bound: the memory limiter, and an
/// epoch callback that ends the guest once `state.deadline` has passed
/// (yielding to tokio every tick until then).
pub(crate) fn new_store(engine: &PluginEngine, state: PluginState) -> Store<PluginState> {
    let mut store = Store::new(engine.engine(), state);
    store.limiter(|s| &mut s.limits);
    store.epoch_deadline_callback(|cx| match cx.data().deadline {
        Some(d) if Instant::now() >= d => Err(wasmtime::Error::msg(DEADLINE)),
        _ => Ok(UpdateDeadline::Yield(1)),
    });
    store.set_epoch_deadline(1);
    store
}

/// Runs `work` on `store` within `limits.call_timeout` from now, and says
/// what went wrong if it did; the outcome is recorded in `health`. The
/// store's deadline is set for the call (host calls such as exec read it to
/// finish in time) and cleared after.
pub(crate) async fn guarded<T>(
    store: &mut Store<PluginState>,
    health: &Health,
    limits: &Limits,
    work: impl AsyncFnOnce(&mut Store<PluginState>) -> wasmtime::Result<T>,
) -> Result<T, CallError> {
    let plugin = || health.plugin.clone();
    store.data_mut().deadline = Some(Instant::now() + limits.call_timeout);
    store.set_epoch_deadline(1);
    let out = tokio::time::timeout(limits.call_timeout + 5 * TICK, work(&mut *store)).await;
    store.data_mut().deadline = None;
    let result = match out {
        // The epoch callback did not end it: the guest was parked in a host call.
        Err(_) => Err(CallError::WaitTimeout { plugin: plugin(), limit: limits.call_timeout }),
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            let text = format!("{e:#}");
            let host_failure = store.data_mut().kv.failed.take();
            Err(if let Some(message) = host_failure {
                CallError::HostUnavailable { plugin: plugin(), message }
            } else if text.contains(DEADLINE) {
                CallError::Timeout { plugin: plugin(), limit: limits.call_timeout }
            } else if store.data().limits.refused {
                CallError::OutOfMemory { plugin: plugin(), limit: store.data().limits.limit }
            } else {
                CallError::Trap { plugin: plugin(), message: first_line(&text) }
            })
        }
    };
    health.record(&result, limits);
    result
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
