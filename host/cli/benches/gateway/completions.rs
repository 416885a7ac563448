//! The same work on chela and on OpenClaw 2026.9.6, in the same run: both
//! gateways' OpenAI-compatible `POST /v1/chat/completions` (one agent turn:
//! session, prompt, one model exchange, transcript) against one fake
//! OpenAI-compatible model server in this process, closed-loop clients on
//! keep-alive connections, each client one conversation (`user`) at a time,
//! of 20 turns each.
//!
//! Reported per level: turns/s, p50 and p99, and the CPU time each gateway's
//! process tree spent per turn (`/proc/<pid>/stat`, children included —
//! OpenClaw runs a broker process), with the load generator's own CPU per
//! turn beside it so the harness's share of the two cores is visible.
//!
//! OpenClaw comes from the npm registry (`xtask/openclaw/install.sh`, cached under
//! `target/openclaw-bench`); without npm the OpenClaw rows say why they are
//! missing. Must not: quote figures it did not measure in this run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chela_fakes::openai::OpenAiFake;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use serde_json::json;
use tokio::process::{Child, Command};

use crate::Figures;

const TOKEN: &str = "bench-token-0123456789abcdef0123";
const MODEL_KEY: &str = "sk-bench-model";
/// Turns per conversation (`user`) before a client starts a new one.
const TURNS_PER_CONVERSATION: u64 = 20;

/// One keep-alive HTTP/1.1 connection (reconnects when the server closed it).
struct Conn {
    authority: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    fn new(authority: &str) -> Conn {
        Conn { authority: authority.to_string(), sender: None }
    }

    async fn post(&mut self, path: &str, body: Bytes) -> Result<(u16, Bytes), String> {
        let mut last = String::new();
        for _ in 0..2 {
            let mut sender = match self.sender.take() {
                Some(s) => s,
                None => {
                    let tcp = tokio::net::TcpStream::connect(&self.authority).await.map_err(|e| e.to_string())?;
                    let _ = tcp.set_nodelay(true);
                    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                        .await
                        .map_err(|e| e.to_string())?;
                    tokio::spawn(conn);
                    sender
                }
            };
            if sender.ready().await.is_err() {
                continue;
            }
            let req = hyper::Request::post(path)
                .header("host", &self.authority)
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Full::new(body.clone()))
                .map_err(|e| e.to_string())?;
            match sender.send_request(req).await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
                    self.sender = Some(sender);
                    return Ok((status, bytes));
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }
}

/// CPU seconds (user + system) of `root` and every live descendant, and the
/// reaped children it waited for.
fn tree_cpu_seconds(root: u32) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut by_parent: HashMap<u32, Vec<(u32, f64)>> = HashMap::new();
    let mut own = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the command name's closing parenthesis: state, ppid, …,
        // utime (11), stime (12), cutime (13), cstime (14).
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let ppid = num(1) as u32;
        let cpu = (num(11) + num(12) + num(13) + num(14)) / ticks;
        by_parent.entry(ppid).or_default().push((pid, cpu));
        own.insert(pid, cpu);
    }
    let mut total = own.get(&root).copied().unwrap_or(0.0);
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        for (child, cpu) in by_parent.get(&p).into_iter().flatten() {
            total += cpu;
            stack.push(*child);
        }
    }
    total
}

/// Resident memory of `root` and its descendants, in MiB.
fn tree_rss_mib(root: u32) -> f64 {
    let mut pids = vec![root];
    let mut i = 0;
    while i < pids.len() {
        let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", pids[i])).unwrap_or_default();
        pids.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        i += 1;
    }
    pids.iter().map(|p| crate::rss_mib(*p).0).filter(|m| m.is_finite()).sum()
}

/// CPU seconds of this process alone (the gateway under test is its child).
fn self_cpu_seconds() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<f64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0.0)).collect();
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / ticks
}

/// One level's figures and the CPU the gateway and the harness spent.
struct Level {
    figures: Figures,
    gateway_cpu: f64,
    harness_cpu: f64,
}

/// `clients` closed-loop clients, each its own conversation, for `run`.
async fn level(authority: &str, model: &str, tag: &str, clients: usize, run: Duration, gateway_pid: u32) -> Level {
    let (cpu0, self0) = (tree_cpu_seconds(gateway_pid), self_cpu_seconds());
    let until = Instant::now() + run;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (authority, model, tag) = (authority.to_string(), model.to_string(), tag.to_string());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(&authority);
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while Instant::now() < until {
                // A conversation of TURNS_PER_CONVERSATION turns, then a new one: both
                // gateways send the history to the model, so its length is held equal.
                let user = format!("{tag}-{c}-{}", n / TURNS_PER_CONVERSATION);
                let body = json!({"model": model, "user": user,
                    "messages": [{"role": "user", "content": format!("turn {n} of client {c}: say hi")}]});
                n += 1;
                let t0 = Instant::now();
                match conn.post("/v1/chat/completions", Bytes::from(body.to_string())).await {
                    Ok((200, answer)) => {
                        let v: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
                        assert!(
                            v["choices"][0]["message"]["content"].is_string(),
                            "{tag}: an answer without text: {}",
                            String::from_utf8_lossy(&answer)
                        );
                        latencies.push(t0.elapsed());
                    }
                    Ok((status, answer)) => {
                        panic!("{tag}: status {status}: {}", String::from_utf8_lossy(&answer))
                    }
                    Err(e) => panic!("{tag}: the request failed: {e}"),
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("a client task"));
    }
    let figures = Figures { elapsed: started.elapsed(), latencies };
    Level { figures, gateway_cpu: tree_cpu_seconds(gateway_pid) - cpu0, harness_cpu: self_cpu_seconds() - self0 }
}

fn row(who: &str, model: &str, clients: usize, l: &Level) {
    let turns = l.figures.latencies.len().max(1) as f64;
    let wall = l.figures.elapsed.as_secs_f64();
    println!(
        "| {who} | {model} | {clients} | {} | {:.1} | {:.2} | {:.2} | {:.3} | {:.2} | {:.3} |",
        l.figures.latencies.len(),
        l.figures.rate(),
        l.figures.ms(0.5),
        l.figures.ms(0.99),
        1000.0 * l.gateway_cpu / turns,
        l.gateway_cpu / wall,
        1000.0 * l.harness_cpu / turns,
    );
}

fn chela_config(root: &Path, model_base: &str) -> String {
    format!(
        r#"{{
  gateway: {{ auth: {{ token: "{TOKEN}" }}, http: {{ endpoints: {{ chatCompletions: {{ enabled: true }} }} }} }},
  agents: {{ list: [
    {{ id: "main", default: true, workspace: "{root}/ws/main", model: "fake/gpt-bench" }},
    {{ id: "offline", workspace: "{root}/ws/offline", model: "offline/persona" }},
  ] }},
  models: {{ providers: {{ fake: {{ baseUrl: "{model_base}", api: "openai-completions" }} }} }},
}}"#,
        root = root.display()
    )
}

fn openclaw_config(root: &Path, model_base: &str, port: u16) -> String {
    format!(
        r#"{{
  gateway: {{ mode: "local", port: {port}, bind: "loopback", auth: {{ mode: "token", token: "{TOKEN}" }},
    http: {{ endpoints: {{ chatCompletions: {{ enabled: true }} }} }} }},
  agents: {{ defaults: {{ model: {{ primary: "fake/gpt-bench" }}, workspace: "{root}/ws/main" }} }},
  models: {{ mode: "merge", providers: {{ fake: {{ baseUrl: "{model_base}", apiKey: "{MODEL_KEY}",
    api: "openai-completions", models: [{{ id: "gpt-bench", name: "gpt-bench", contextWindow: 128000, maxTokens: 4096 }}] }} }} }},
}}"#,
        root = root.display()
    )
}

/// Node 24 and OpenClaw from the npm registry (cached); the two paths, or why not.
fn install_openclaw() -> Result<(PathBuf, PathBuf), String> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = here.join("../../xtask/openclaw/install.sh");
    let dir = here.join("../../target/openclaw-bench");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(&dir)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("{} failed ({})", script.display(), out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines().map(|l| PathBuf::from(l.trim()));
    match (lines.next(), lines.next()) {
        (Some(node), Some(cli)) => Ok((node, cli)),
        _ => Err(format!("{} printed no paths", script.display())),
    }
}

struct OpenClaw {
    child: Child,
    authority: String,
    /// From spawning the process to its first answered turn.
    first_turn: Duration,
}

async fn start_openclaw(root: &Path, node: &Path, cli: &Path, model_base: &str) -> Result<OpenClaw, String> {
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
    std::fs::create_dir_all(root.join("ws/main")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(root.join("state")).map_err(|e| e.to_string())?;
    std::fs::write(root.join("openclaw.json"), openclaw_config(root, model_base, port)).map_err(|e| e.to_string())?;
    let log = std::fs::File::create(root.join("openclaw.log")).map_err(|e| e.to_string())?;
    // In a PID namespace of its own: stopping OpenClaw 2026.9.6 as root here
    // took every process on the machine with it, this bench included.
    let child = Command::new("unshare")
        .args(["--user", "--map-root-user", "--pid", "--fork", "--kill-child"])
        .arg(node)
        .arg(cli)
        .args(["gateway", "run", "--port", &port.to_string()])
        .env("OPENCLAW_STATE_DIR", root.join("state"))
        .env("OPENCLAW_CONFIG_PATH", root.join("openclaw.json"))
        .env("HOME", root)
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start OpenClaw through `unshare`: {e}"))?;
    let authority = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let mut gw = OpenClaw { child, authority, first_turn: Duration::ZERO };
    // Ready when a turn is answered (its first one loads the agent runtime).
    loop {
        let body = json!({"model": "openclaw", "user": "warm-up", "messages": [{"role": "user", "content": "hi"}]});
        if let Ok((200, _)) = Conn::new(&gw.authority).post("/v1/chat/completions", Bytes::from(body.to_string())).await
        {
            gw.first_turn = started.elapsed();
            return Ok(gw);
        }
        if started.elapsed() > Duration::from_secs(180) || gw.child.try_wait().ok().flatten().is_some() {
            return Err(format!("OpenClaw never answered a turn; see {}", root.join("openclaw.log").display()));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Kills the whole namespace at once (no graceful shutdown: see above).
async fn stop_group(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill").args(["-KILL", &format!("-{pid}")]).status();
        let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    }
}

/// The comparison, printed as a Markdown table.
pub async fn compare(quick: bool, with_openclaw: bool) {
    let run = if quick { Duration::from_millis(1500) } else { Duration::from_secs(8) };
    let model = OpenAiFake::start_unrecorded(MODEL_KEY).await;
    let base = model.base_url();

    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    for agent in ["main", "offline"] {
        std::fs::create_dir_all(root.join("ws").join(agent)).expect("workspace");
        std::fs::write(root.join("ws").join(agent).join("SOUL.md"), "Calm, brief, exact.\n").expect("SOUL.md");
    }
    std::fs::create_dir_all(root.join("state/plugins")).expect("plugins dir");
    std::fs::write(root.join("chela.json5"), chela_config(root, &base)).expect("config");
    let spawned = Instant::now();
    let (gw, _) = crate::start(root, &[("FAKE_API_KEY", MODEL_KEY)]).await;
    let pid = gw.child.id().expect("running");
    let authority = gw.addr.clone();
    let first = json!({"model": "chela:main", "user": "warm-up", "messages": [{"role": "user", "content": "hi"}]});
    let answered = Conn::new(&authority).post("/v1/chat/completions", Bytes::from(first.to_string())).await;
    assert!(matches!(answered, Ok((200, _))), "chela's first turn: {answered:?}");
    let chela_first_turn = spawned.elapsed();

    println!("\n## `/v1/chat/completions`: chela and OpenClaw 2026.9.6, same fake model, same run\n");
    println!("{} per level; CPU is per turn, of the gateway's process tree and of this load generator (with the fake model).\n", crate::humantime(run));
    println!("| gateway | model | clients | turns | turns/s | p50 ms | p99 ms | gateway CPU ms/turn | gateway cores busy | harness CPU ms/turn |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    level(&authority, "chela:main", "warm", 4, Duration::from_millis(500), pid).await;
    for clients in [1usize, 10, 100] {
        let l = level(&authority, "chela:offline", &format!("off{clients}"), clients, run, pid).await;
        row("chela", "offline", clients, &l);
    }
    for clients in [1usize, 10, 50] {
        let l = level(&authority, "chela:main", &format!("fake{clients}"), clients, run, pid).await;
        row("chela", "fake OpenAI", clients, &l);
    }
    let chela_rss = tree_rss_mib(pid);
    crate::stop(gw).await;

    let footer = |who: &str, first: Duration, rss: f64| {
        println!(
            "\n{who}: spawn → first answered turn {:.0} ms, RSS after the load {rss:.1} MiB",
            first.as_secs_f64() * 1000.0
        );
    };
    if !with_openclaw {
        println!("| OpenClaw | fake OpenAI | — | not run (`--no-openclaw` or `--quick`) | | | | | | |");
        footer("chela", chela_first_turn, chela_rss);
        return;
    }
    let oc_dir = tempfile::tempdir().expect("temp dir");
    let started = match install_openclaw() {
        Ok((node, cli)) => start_openclaw(oc_dir.path(), &node, &cli, &base).await,
        Err(e) => Err(e),
    };
    match started {
        Err(e) => {
            println!("| OpenClaw | fake OpenAI | — | not measured: {e} | | | | | | |");
            footer("chela", chela_first_turn, chela_rss);
        }
        Ok(mut oc) => {
            let pid = oc.child.id().expect("running");
            let oc_run = run.max(Duration::from_secs(10));
            for clients in [1usize, 10, 50] {
                let l = level(&oc.authority, "openclaw", &format!("oc{clients}"), clients, oc_run, pid).await;
                row("OpenClaw", "fake OpenAI", clients, &l);
            }
            let oc_rss = tree_rss_mib(pid);
            stop_group(&mut oc.child).await;
            footer("chela", chela_first_turn, chela_rss);
            footer("OpenClaw", oc.first_turn, oc_rss);
        }
    }
}
