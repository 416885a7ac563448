//! Turn throughput and latency of the host with the offline model: routing →
//! session queue → persona prompt from disk → provider → transcript appends
//! and index updates, for 1 and 100 concurrent sessions, with the store's
//! fsync policy on (the default) and off (OS-buffered). No network, no tools:
//! this is the host's own overhead per message.
//!
//! A second table follows one session for 5,000 turns (10,000 messages) in a
//! 16,000-token window, with compaction on and off (the peer): the median turn
//! at about 10, 1,000 and 10,000 messages of history, and how many compaction
//! entries the transcript gained, each row run three times (alternating, the
//! disk settled first) with the turns of a cell pooled over the rounds. With
//! compaction the turn cost stays flat; without it every turn re-reads and
//! re-sends the whole history.
//!
//! A third table runs the first one's turns with sessions in PostgreSQL (a
//! throwaway local server), through one, two and three runtimes that share
//! it with their own connections, as replicas do: the shared store's
//! overhead per turn, and the database transactions a turn costs.
//!
//! Run: `cargo bench -p chela-agent --bench turns` (`-- --quick`: a smoke run).
//! A bench binary rather than criterion: the figures are a distribution over
//! many concurrent turns (throughput, p50, p99), not one repeated call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chela_agent::runtime::RuntimeParts;
use chela_agent::store::Durability;
use chela_agent::{AgentRuntime, Inbound, Origin, Providers};
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
    /// One long session: its turn latencies at about 10, 1,000 and 10,000
    /// messages of history (turns 4–8, 476–525 and the last 50).
    at_history: Option<[Vec<Duration>; 3]>,
    /// `compaction` entries written into the transcripts.
    compactions: usize,
}

fn count_compactions(root: &std::path::Path) -> usize {
    let sessions = root.join("state/agents/work/sessions");
    let files = std::fs::read_dir(sessions).expect("sessions dir").flatten();
    files
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .map(|e| {
            let text = std::fs::read_to_string(e.path()).expect("transcript");
            text.lines().filter(|l| l.contains(r#""type":"compaction""#)).count()
        })
        .sum()
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

/// How the measured sessions' context is kept in bounds.
#[derive(Clone, Copy, PartialEq)]
enum Context {
    /// chela's defaults: a 200,000-token window, so these histories never
    /// reach it (the turn rows).
    Default,
    /// A 16,000-token window with compaction on (its default).
    Compacted,
    /// The same window with `compaction.enabled: false`: the whole history
    /// goes to the model every turn (the peer of `Compacted`).
    Uncompacted,
}

impl Context {
    fn config(self) -> &'static str {
        match self {
            Context::Default => "",
            Context::Compacted => {
                r#"models: { providers: { offline: { models: [{ id: "persona", name: "persona", contextWindow: 16000 }] } } },
                   defaults: { compaction: { keepRecentTokens: 2000 } },"#
            }
            Context::Uncompacted => {
                r#"models: { providers: { offline: { models: [{ id: "persona", name: "persona", contextWindow: 16000 }] } } },
                   defaults: { compaction: { enabled: false } },"#
            }
        }
    }
}

/// Where the measured runtimes keep their sessions.
#[derive(Clone)]
enum Backend {
    Files(Durability),
    /// One PostgreSQL server shared by `replicas` runtimes, each with its own
    /// connections (as replica processes would be); a session's messages
    /// go to the runtimes in turn.
    Postgres {
        url: String,
        replicas: usize,
    },
}

async fn measure(sessions: usize, per_session: usize, durability: Durability, context: Context) -> Figures {
    measure_on(sessions, per_session, Backend::Files(durability), context).await
}

async fn measure_on(sessions: usize, per_session: usize, backend: Backend, context: Context) -> Figures {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("ws")).expect("workspace");
    std::fs::write(root.join("ws/SOUL.md"), "Calm, brief, exact.\n").expect("SOUL.md");
    let (models, defaults) = match context.config().split_once("defaults:") {
        Some((models, defaults)) => (models.to_string(), format!("defaults:{defaults}")),
        None => (String::new(), String::new()),
    };
    let text = format!(
        r#"{{ {models}
            agents: {{ {defaults} list: [{{ id: "work", default: true, workspace: "{}/ws", identity: {{ name: "Atlas" }} }}] }},
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
    let runtimes: Vec<Arc<AgentRuntime>> = match &backend {
        Backend::Files(durability) => {
            let mut parts = RuntimeParts::new(cell.clone(), env, plugins, Providers::builtin(), secrets);
            parts.durability = *durability;
            vec![AgentRuntime::new(parts)]
        }
        Backend::Postgres { url, replicas } => (0..*replicas)
            .map(|_| {
                let mut parts = RuntimeParts::new(
                    cell.clone(),
                    env.clone(),
                    plugins.clone(),
                    Providers::builtin(),
                    secrets.clone(),
                );
                let url = url.clone();
                let db = std::thread::spawn(move || chela_database::Database::connect(&url)).join();
                parts.database = Some(db.expect("connect thread").expect("database"));
                AgentRuntime::new(parts)
            })
            .collect(),
    };

    let started = Instant::now();
    let mut lanes = tokio::task::JoinSet::new();
    for s in 0..sessions {
        let (runtimes, snap) = (runtimes.clone(), cell.load());
        lanes.spawn(async move {
            let mut latencies = Vec::with_capacity(per_session);
            for m in 0..per_session {
                let runtime = &runtimes[(s + m) % runtimes.len()];
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
                            text: if context == Context::Default {
                                format!("message {m}")
                            } else {
                                // ~60 tokens: a 16,000-token window fills in about 120 turns.
                                format!("message {m}: {}", "plan the trip, book the hotel, check trains. ".repeat(5))
                            },
                            sender_id: None,
                            origin: Origin { provider: Some("telegram".into()), ..Origin::default() },
                            extra_system: None,
                            message_ref: None,
                            model_override: None,
                            sampling: None,
                            scheduled: None,
                            media: Vec::new(),
                            delivery: None,
                            live_tool_summaries: false,
                            exec_tightening: Default::default(),
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
    let mut at_history = None;
    while let Some(lane) = lanes.join_next().await {
        let lane = lane.expect("lane");
        if sessions == 1 && lane.len() >= 100 {
            let n = lane.len();
            early_late = Some((median(lane[..50].to_vec()), median(lane[n - 50..].to_vec())));
        }
        if sessions == 1 && lane.len() >= 1000 {
            let n = lane.len();
            at_history = Some([lane[3..8].to_vec(), lane[475..525].to_vec(), lane[n - 50..].to_vec()]);
        }
        latencies.extend(lane);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let compactions = match (&backend, context) {
        (Backend::Files(_), Context::Compacted | Context::Uncompacted) => count_compactions(root),
        _ => 0,
    };
    Figures { messages: sessions * per_session, elapsed, latencies, early_late, at_history, compactions }
}

/// How many turns each session runs in the throughput tables.
fn turns_per_session(quick: bool, sessions: usize) -> usize {
    match (quick, sessions) {
        (true, 1) => 20,
        (true, _) => 2,
        (false, 1) => 1000,
        (false, _) => 20,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
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
            let per_session = turns_per_session(quick, sessions);
            let f = rt.block_on(measure(sessions, per_session, durability, Context::Default));
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

    // The same turns with sessions in PostgreSQL (a local server: the
    // figures are the store's overhead, not scaling), one to three
    // runtimes sharing it, against the embedded files (fsync) above.
    postgres_rows(&rt, quick);

    // One long session (5,000 turns: 10,000 messages in the transcript) in a
    // 16,000-token window, with compaction and without (the peer), store
    // writes OS-buffered so the fsyncs do not hide the CPU per turn. Each is
    // run `ROUNDS` times, alternating, after the tables above have settled
    // (their files written back): a cell is the median of its turns pooled
    // over the rounds, so one burst of background I/O cannot make a cell.
    let (turns, rounds) = if quick { (300, 1) } else { (5000, LONG_SESSION_ROUNDS) };
    println!();
    println!(
        "| one session, 16,000-token window | turns × rounds | compactions per round | ≈10 messages of history | ≈1,000 | ≈10,000 | slowest ÷ fastest | p99 |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let contexts = [Context::Compacted, Context::Uncompacted];
    let mut pooled: Vec<LongSession> = contexts.iter().map(|_| LongSession::default()).collect();
    for _ in 0..rounds {
        for (context, into) in contexts.iter().zip(pooled.iter_mut()) {
            settle();
            into.add(rt.block_on(measure(1, turns, Durability::OsBuffered, *context)));
        }
    }
    for (context, long) in contexts.iter().zip(pooled) {
        let cells = long.cells();
        let ratio = match (cells.iter().min(), cells.iter().max()) {
            (Some(lo), Some(hi)) if !lo.is_zero() => format!("{:.2}×", hi.as_secs_f64() / lo.as_secs_f64()),
            _ => "—".into(),
        };
        println!(
            "| {} | {turns} × {rounds} | {} | {} | {ratio} | {} |",
            if *context == Context::Compacted { "compaction on" } else { "compaction off (peer)" },
            long.compactions_per_round(),
            cells.map(ms).join(" | "),
            ms(long.percentile(0.99)),
        );
    }
}

/// How many times each long session runs (the figures pool them).
const LONG_SESSION_ROUNDS: usize = 3;

/// One long-session row's turns, pooled over its rounds.
#[derive(Default)]
struct LongSession {
    windows: [Vec<Duration>; 3],
    latencies: Vec<Duration>,
    compactions: Vec<usize>,
}

impl LongSession {
    fn add(&mut self, f: Figures) {
        if let Some(at) = f.at_history {
            for (into, from) in self.windows.iter_mut().zip(at) {
                into.extend(from);
            }
        }
        self.latencies.extend(f.latencies);
        self.compactions.push(f.compactions);
    }

    /// Median turn at about 10, 1,000 and 10,000 messages of history.
    fn cells(&self) -> [Duration; 3] {
        self.windows.clone().map(|w| if w.is_empty() { Duration::ZERO } else { median(w) })
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut all = self.latencies.clone();
        all.sort();
        let i = ((all.len() as f64 - 1.0) * p).round() as usize;
        all.get(i).copied().unwrap_or_default()
    }

    /// The rounds' compaction counts: one number when they agree.
    fn compactions_per_round(&self) -> String {
        let mut distinct = self.compactions.clone();
        distinct.dedup();
        distinct.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
    }
}

/// Lets the earlier tables' writes reach the disk before a long session is
/// timed: the PostgreSQL table's server shuts down with its buffers in the
/// page cache (`fsync=off`), and their write-back otherwise lands in the
/// next session's first turns (seen as 1.9–2.2 ms turns among 1.0 ms ones).
fn settle() {
    let _ = std::process::Command::new("sync").status();
    std::thread::sleep(Duration::from_millis(500));
}

/// Transactions the server committed so far on the `chela` database
/// (autocommit statements count one each).
fn transactions(db: &chela_fakes::postgres::Cluster) -> u64 {
    // Statistics reach the view within a second of a backend going idle.
    std::thread::sleep(Duration::from_millis(1500));
    let n = db.psql("select xact_commit + xact_rollback from pg_stat_database where datname = 'chela'");
    n.parse().unwrap_or(0)
}

fn postgres_rows(rt: &tokio::runtime::Runtime, quick: bool) {
    let db = chela_fakes::postgres::Cluster::start();
    println!();
    println!("| sessions | store | messages | messages/s | p50 | p99 | database transactions per turn |");
    println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: |");
    for replicas in [1usize, 2, 3] {
        for sessions in [1usize, 100] {
            let per_session = turns_per_session(quick, sessions);
            let before = transactions(&db);
            let backend = Backend::Postgres { url: db.url(), replicas };
            let f = rt.block_on(measure_on(sessions, per_session, backend, Context::Default));
            let per_turn = transactions(&db).saturating_sub(before) as f64 / f.messages as f64;
            println!(
                "| {sessions} | PostgreSQL, {replicas} runtime{} | {} | {:.0} | {} | {} | {per_turn:.1} |",
                if replicas == 1 { "" } else { "s" },
                f.messages,
                f.messages as f64 / f.elapsed.as_secs_f64(),
                ms(f.percentile(0.50)),
                ms(f.percentile(0.99)),
            );
        }
    }
}
