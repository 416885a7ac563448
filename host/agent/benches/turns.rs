//! Turn throughput and latency of the host with the offline model: routing →
//! session queue → persona prompt from disk → provider → transcript appends
//! and index updates, for 1 and 100 concurrent sessions, with the store's
//! fsync policy on (the default) and off (OS-buffered). No network, no tools:
//! this is the host's own overhead per message.
//!
//! Run: `cargo bench -p chela-agent --bench turns` (`-- --quick`: a smoke run).
//! A bench binary rather than criterion: the figures are a distribution over
//! many concurrent turns (throughput, p50, p99), not one repeated call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chela_agent::runtime::RuntimeParts;
use chela_agent::store::Durability;
use chela_agent::{AgentRuntime, Inbound, Origin, Providers, RunLimits};
use chela_core::config::load_str;
use chela_core::config::paths::Environment;
use chela_core::routing::{PeerRef, RouteInput};
use chela_core::snapshot::SnapshotCell;
use chela_plugin::capability::secrets::SecretStore;
use chela_plugin::{Limits, PluginEngine, Plugins};

struct Figures {
    messages: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// One session: median latency of its first and of its last 50 turns.
    early_late: Option<(Duration, Duration)>,
}

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

impl Figures {
    fn percentile(&self, p: f64) -> Duration {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)]
    }
}

async fn measure(sessions: usize, per_session: usize, durability: Durability) -> Figures {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("ws")).expect("workspace");
    std::fs::write(root.join("ws/SOUL.md"), "Calm, brief, exact.\n").expect("SOUL.md");
    let text = format!(
        r#"{{ agents: {{ list: [{{ id: "work", default: true, workspace: "{}/ws", identity: {{ name: "Atlas" }} }}] }},
            session: {{ dmScope: "per-channel-peer" }},
            bindings: [{{ agentId: "work", match: {{ channel: "telegram", accountId: "*" }} }}] }}"#,
        root.display()
    );
    let cfg = Arc::new(load_str(&text, None).expect("config").config);
    let cell = SnapshotCell::of(cfg);
    let env = Environment {
        home: root.into(),
        state_dir: Some(root.join("state").display().to_string()),
        ..Default::default()
    };
    let engine = Arc::new(PluginEngine::new(Limits::default()).expect("engine"));
    let plugins = Arc::new(Plugins::new(engine, vec![root.join("no-plugins")], None));
    let secrets: Arc<chela_agent::runtime::SecretsFor> = Arc::new(|_: &str| Arc::new(SecretStore::default()));
    let limits = RunLimits { queue_limit: per_session + 1, ..RunLimits::default() };
    let mut parts = RuntimeParts::new(cell.clone(), env, plugins, Providers::builtin(), secrets);
    parts.limits = limits;
    parts.durability = durability;
    let runtime = AgentRuntime::new(parts);

    let started = Instant::now();
    let mut lanes = tokio::task::JoinSet::new();
    for s in 0..sessions {
        let (runtime, snap) = (runtime.clone(), cell.load());
        lanes.spawn(async move {
            let mut latencies = Vec::with_capacity(per_session);
            for m in 0..per_session {
                let t = Instant::now();
                let input = RouteInput {
                    channel: "telegram".into(),
                    account_id: Some("default".into()),
                    peer: Some(PeerRef::new("direct", format!("{}", 1000 + s))),
                    ..RouteInput::default()
                };
                let route = snap.routes.resolve(&input).expect("routes");
                runtime
                    .run(
                        &snap,
                        Inbound {
                            target: route.target(),
                            text: format!("message {m}"),
                            sender_id: None,
                            origin: Origin { provider: Some("telegram".into()), ..Origin::default() },
                            extra_system: None,
                            message_ref: None,
                            model_override: None,
                            sampling: None,
                            delivery: None,
                        },
                    )
                    .await
                    .expect("turn");
                latencies.push(t.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Vec::with_capacity(sessions * per_session);
    let mut early_late = None;
    while let Some(lane) = lanes.join_next().await {
        let lane = lane.expect("lane");
        if sessions == 1 && lane.len() >= 100 {
            let n = lane.len();
            early_late = Some((median(lane[..50].to_vec()), median(lane[n - 50..].to_vec())));
        }
        latencies.extend(lane);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Figures { messages: sessions * per_session, elapsed, latencies, early_late }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick" || a == "--test");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    println!(
        "| sessions | store writes | messages | messages/s | p50 | p99 | one session: turns 1–50 → last 50 (median) |"
    );
    println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: |");
    for durability in [Durability::Fsync, Durability::OsBuffered] {
        for sessions in [1usize, 100] {
            let per_session = match (quick, sessions) {
                (true, 1) => 20,
                (true, _) => 2,
                (false, 1) => 1000,
                (false, _) => 20,
            };
            let f = rt.block_on(measure(sessions, per_session, durability));
            let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
            let growth = match f.early_late {
                Some((a, b)) => format!("{} → {} ({:.2}×)", ms(a), ms(b), b.as_secs_f64() / a.as_secs_f64()),
                None => "—".into(),
            };
            println!(
                "| {sessions} | {} | {} | {:.0} | {} | {} | {growth} |",
                match durability {
                    Durability::Fsync => "fsync",
                    Durability::OsBuffered => "OS-buffered",
                },
                f.messages,
                f.messages as f64 / f.elapsed.as_secs_f64(),
                ms(f.percentile(0.50)),
                ms(f.percentile(0.99)),
            );
        }
    }
}
