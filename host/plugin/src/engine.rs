//! One wasmtime `Engine` for the whole process, with the pooling allocator
//! and epoch interruption, and the ticker that drives the epochs.
//!
//! Must not: hold per-plugin or per-agent state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// One epoch tick. Deadlines are checked (and guests yield to tokio) per tick.
pub const TICK: Duration = Duration::from_millis(10);

/// Limits applied to every plugin instance.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Linear memory per instance. A guest that grows past it traps.
    pub memory_bytes: usize,
    /// Wall-clock time per call.
    pub call_timeout: Duration,
    /// Consecutive failed calls (traps, timeouts) after which a plugin is disabled.
    pub max_consecutive_failures: u32,
    /// How long a disabled plugin waits before it is tried again (doubling per repeat, at most 1 h).
    pub first_cool_down: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        // 64 MiB fits the Rust, Go and C guests with room; Python and JS
        // components need ~40 MiB at start, so keep this above that.
        Limits {
            memory_bytes: 64 << 20,
            call_timeout: Duration::from_secs(10),
            max_consecutive_failures: 5,
            first_cool_down: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot create the WebAssembly engine: {0}")]
pub struct EngineError(String);

/// Tool instances alive at once, whatever the number of agents and
/// sessions: with the per-instance memory cap this bounds their total
/// memory (64 × 64 MiB = 4 GiB by default). Calls beyond it wait their turn.
pub const MAX_CONCURRENT_INSTANCES: usize = 64;

/// The engine, the limits, and the epoch ticker (stopped on drop).
pub struct PluginEngine {
    engine: Engine,
    limits: Limits,
    pooling: bool,
    stop: Arc<AtomicBool>,
    instances: Arc<tokio::sync::Semaphore>,
}

fn base_config() -> Config {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true);
    // Deadlines are enforced by epochs rather than fuel: near-zero cost on
    // the hot path, at the price of a coarse (one tick) granularity.
    cfg.epoch_interruption(true);
    cfg
}

fn pooling_config(limits: &Limits) -> Config {
    let mut cfg = base_config();
    let mut pool = PoolingAllocationConfig::default();
    // Sized for a gateway: a few hundred concurrent instances. Each memory
    // slot reserves `max_memory_size` of *virtual* address space up front,
    // which is why small address spaces fall back to on-demand allocation.
    pool.total_component_instances(256)
        .total_core_instances(2048)
        .total_memories(512)
        .total_tables(1024)
        .max_memory_size(limits.memory_bytes)
        .max_memories_per_component(8)
        .max_tables_per_component(16)
        .max_core_instances_per_component(64)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(1 << 20);
    cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    cfg
}

impl PluginEngine {
    /// Creates the engine (pooling when the address space allows, else
    /// on-demand) and starts the epoch ticker thread.
    pub fn new(limits: Limits) -> Result<PluginEngine, EngineError> {
        let (engine, pooling) = match Engine::new(&pooling_config(&limits)) {
            Ok(e) => (e, true),
            Err(err) => {
                tracing::warn!(%err, "pooling allocator unavailable; using on-demand allocation");
                (Engine::new(&base_config()).map_err(|e| EngineError(e.to_string()))?, false)
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (ticker_engine, ticker_stop) = (engine.weak(), stop.clone());
        std::thread::Builder::new()
            .name("chela-epoch".into())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    match ticker_engine.upgrade() {
                        Some(e) => e.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| EngineError(format!("cannot start the epoch thread: {e}")))?;
        let instances = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_INSTANCES));
        Ok(PluginEngine { engine, limits, pooling, stop, instances })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A slot for one short-lived instance, waited for until `deadline`.
    pub(crate) async fn instance_slot(
        &self,
        deadline: tokio::time::Instant,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        tokio::time::timeout_at(deadline, self.instances.clone().acquire_owned()).await.ok()?.ok()
    }

    /// Whether the pooling allocator is in use (else on-demand).
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    /// Identifies the compiled-code format: cached artefacts from another
    /// engine configuration or wasmtime version are never reused.
    pub fn fingerprint(&self) -> String {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        format!("{:016x}", h.finish())
    }
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
