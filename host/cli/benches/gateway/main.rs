//! The gateway end to end, as a user runs it: the release `chela gateway`
//! process with three agents and four channels (the real adapter components)
//! against the platform fakes on loopback, with the offline model.
//!
//! Measured: time from start to `/readyz` (compile cache cold, then warm),
//! idle RSS, and message throughput and latency at 1, 10 and 100
//! concurrent sessions — from a WhatsApp webhook POST (signed, as Meta sends
//! it) until the fake has recorded the reply the adapter sent through the
//! Graph API. The same client then drives a bare hyper echo server over the
//! same loopback HTTP path: the ratio is how close the gateway gets to this
//! machine's HTTP limit. Then `completions.rs`: the same agent turn through
//! chela's and OpenClaw 2026.9.6's `/v1/chat/completions` against one fake
//! model server, with CPU per turn for each. Between them `replicas.rs`:
//! the loop through 1–3 replicas on PostgreSQL behind a round-robin
//! forwarder, beside the embedded gateway behind the same forwarder.
//!
//! Run: `cargo bench -p chela --bench gateway` (`-- --quick`: a smoke run
//! without OpenClaw; `-- --no-openclaw`: skip installing and running it;
//! `-- --completions-only`: that comparison alone).
//! A bench binary: the figures are distributions over concurrent sessions
//! and a process's memory, not one repeated call.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chela_fakes::platforms::{self, Platforms};
use chela_fakes::wire;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

mod completions;
mod replicas;

/// The business number all load goes to (account `biz`, bound to `work`).
const BIZ: &str = platforms::WHATSAPP_NUMBERS[0].1;

fn config(root: &Path, p: &Platforms) -> String {
    let [wa, tg, sl, dc] = p.base_urls();
    let (biz, personal) = (platforms::WHATSAPP_NUMBERS[0], platforms::WHATSAPP_NUMBERS[1]);
    let (pip, sage) = (platforms::TELEGRAM_BOTS[0], platforms::TELEGRAM_BOTS[1]);
    let app = platforms::SLACK_APP;
    format!(
        r#"{{
  agents: {{ defaults: {{ model: "offline/persona" }}, list: [
    {{ id: "personal", default: true, workspace: "{root}/ws/personal", identity: {{ name: "Pip" }} }},
    {{ id: "work", workspace: "{root}/ws/work", identity: {{ name: "Atlas" }} }},
    {{ id: "support", workspace: "{root}/ws/support", identity: {{ name: "Sage" }}, tools: {{ profile: "messaging" }} }},
  ] }},
  bindings: [
    {{ agentId: "work", match: {{ channel: "whatsapp", accountId: "biz" }} }},
    {{ agentId: "work", match: {{ channel: "slack", teamId: "{team}" }} }},
    {{ agentId: "support", match: {{ channel: "telegram", accountId: "helpdesk" }} }},
    {{ agentId: "support", match: {{ channel: "discord", guildId: "{guild}" }} }},
  ],
  session: {{ dmScope: "per-channel-peer" }},
  channels: {{
    whatsapp: {{ dmPolicy: "open", allowFrom: ["*"], graphApiBase: "{wa}", appSecret: "{secret}",
      verifyToken: "{verify}", accounts: {{
        biz: {{ phoneNumberId: "{biz_id}", accessToken: "{biz_token}" }},
        personal: {{ phoneNumberId: "{personal_id}", accessToken: "{personal_token}" }} }} }},
    telegram: {{ apiRoot: "{tg}", accounts: {{ default: {{ botToken: "{pip_token}" }},
      helpdesk: {{ botToken: "{sage_token}" }} }} }},
    slack: {{ apiBase: "{sl}", botToken: "{bot}", appToken: "{app_token}" }},
    discord: {{ apiBase: "{dc}", token: "{discord}" }},
  }},
}}"#,
        root = root.display(),
        team = app.team_id,
        guild = platforms::DISCORD_GUILD,
        secret = platforms::WHATSAPP_APP_SECRET,
        verify = platforms::WHATSAPP_VERIFY_TOKEN,
        biz_id = biz.1,
        biz_token = biz.3,
        personal_id = personal.1,
        personal_token = personal.3,
        pip_token = pip.1,
        sage_token = sage.1,
        bot = app.bot_token,
        app_token = app.app_token,
        discord = platforms::DISCORD_TOKEN,
    )
}

fn component(name: &str) -> PathBuf {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/wasm32-wasip2/release").join(format!("{name}.wasm"));
    assert!(p.exists(), "{} is missing: run `cargo xtask build-plugins` first", p.display());
    p
}

struct Gateway {
    child: Child,
    addr: String,
}

/// Starts `chela gateway`; returns it with the time until `/readyz` said 200.
async fn start(root: &Path, env: &[(&str, &str)]) -> (Gateway, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chela"))
        .envs(env.iter().copied())
        .arg("--config")
        .arg(root.join("chela.json5"))
        .args(["gateway", "--port", "0"])
        .env("CHELA_STATE_DIR", root.join("state"))
        .env("HOME", root)
        .env("RUST_LOG", "warn,chela=info")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("chela starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = loop {
        match lines.next_line().await {
            Ok(Some(line)) => {
                // `… listening on http://ADDR addr=ADDR config=…`: the first word after it.
                if let Some(a) = line.split("listening on http://").nth(1).and_then(|a| a.split_whitespace().next()) {
                    break a.to_string();
                }
            }
            _ => panic!("the gateway exited before listening"),
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let ready = format!("http://{addr}/readyz");
    loop {
        let answer = wire::request("GET", &ready, &[], b"").await;
        if answer.as_ref().is_some_and(|a| a.status == 200) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "never ready: {answer:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    (Gateway { child, addr }, started.elapsed())
}

async fn stop(mut gw: Gateway) {
    let pid = gw.child.id().expect("running");
    let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let _ = tokio::time::timeout(Duration::from_secs(30), gw.child.wait()).await;
}

/// Resident and peak memory of a process, in MiB (Linux `/proc`).
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

struct Figures {
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn ms(&self, p: f64) -> f64 {
        let mut l = self.latencies.clone();
        l.sort();
        let i = ((l.len() as f64 - 1.0) * p).round() as usize;
        l.get(i.min(l.len().saturating_sub(1))).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    }
}

/// Replies waited for, by the tag their message carried.
type Waiting = Arc<Mutex<HashMap<String, oneshot::Sender<Instant>>>>;

/// Closed loop: `sessions` WhatsApp users each send, wait for the reply, send again, for `run`.
async fn load(p: &Arc<Platforms>, waiting: &Waiting, level: &str, sessions: usize, run: Duration) -> Figures {
    let until = Instant::now() + run;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..sessions {
        let (p, waiting, level) = (p.clone(), waiting.clone(), level.to_string());
        tasks.push(tokio::spawn(async move {
            let from = format!("1666{:03}{:04}", sessions % 1000, s); // never the business numbers (1555…)
            let mut latencies = Vec::new();
            let mut seq = 0u64;
            while Instant::now() < until {
                let tag = format!("[{level}:{s}:{seq}]");
                seq += 1;
                let (tx, rx) = oneshot::channel();
                waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(tag.clone(), tx);
                let t0 = Instant::now();
                let (_, status) =
                    p.whatsapp.user_message(BIZ, (&from, "Bench"), &format!("bench {tag}"), None, None).await;
                assert_eq!(status, Some(200), "the webhook was refused");
                match tokio::time::timeout(Duration::from_secs(30), rx).await {
                    Ok(Ok(at)) => latencies.push(at - t0),
                    _ => panic!("no reply to {tag} within 30 s"),
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("a session task"));
    }
    Figures { elapsed: started.elapsed(), latencies }
}

/// The same closed loop against a bare hyper echo server (one POST of the
/// same size per message, a new connection each, as the fake delivers).
async fn echo(url: &str, sessions: usize, run: Duration, body: &[u8]) -> Figures {
    let until = Instant::now() + run;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..sessions {
        let (url, body) = (url.to_string(), body.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < until {
                let t0 = Instant::now();
                let a = wire::request("POST", &url, &[("Content-Type", "application/json")], &body).await;
                assert!(a.is_some_and(|a| a.status == 200), "echo failed");
                latencies.push(t0.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("an echo task"));
    }
    Figures { elapsed: started.elapsed(), latencies }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick" || a == "--test");
    let with_openclaw = !quick && !std::env::args().any(|a| a == "--no-openclaw");
    if std::env::args().any(|a| a == "--completions-only") {
        completions::compare(quick, with_openclaw).await;
        return;
    }
    let run = if quick { Duration::from_millis(1500) } else { Duration::from_secs(8) };
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    for agent in ["personal", "work", "support"] {
        std::fs::create_dir_all(root.join("ws").join(agent)).expect("workspace");
        std::fs::write(root.join("ws").join(agent).join("SOUL.md"), "Calm, brief, exact.\n").expect("SOUL.md");
    }
    let plugins = root.join("state/plugins");
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    for c in ["channel_whatsapp", "channel_telegram", "channel_slack", "channel_discord"] {
        std::fs::copy(component(c), plugins.join(format!("{c}.wasm"))).expect("copy a channel component");
    }
    let p = Arc::new(Platforms::start(0, "http://127.0.0.1:9").await.expect("platforms"));
    std::fs::write(root.join("chela.json5"), config(root, &p)).expect("config");

    // Start-up: the first start compiles the four components; later ones load them from the cache.
    let (gw, cold) = start(root, &[]).await;
    stop(gw).await;
    let mut warm = Vec::new();
    for _ in 0..if quick { 1 } else { 4 } {
        let (gw, t) = start(root, &[]).await;
        warm.push(t);
        stop(gw).await;
    }
    warm.sort();
    let warm_median = warm[warm.len() / 2];
    let (gw, _) = start(root, &[]).await;
    let pid = gw.child.id().expect("running");
    tokio::time::sleep(Duration::from_secs(if quick { 1 } else { 3 })).await;
    let (idle_rss, _) = rss_mib(pid);

    let hook = format!("http://{}/channels/whatsapp/biz/", gw.addr);
    p.whatsapp.subscribe(&hook, platforms::WHATSAPP_VERIFY_TOKEN).await.expect("the webhook handshake");
    let waiting: Waiting = Arc::default();
    let mut sends = p.whatsapp.watch_sends();
    let w = waiting.clone();
    tokio::spawn(async move {
        while let Ok((_, body)) = sends.recv().await {
            let at = Instant::now();
            let text = body["text"]["body"].as_str().unwrap_or_default();
            let Some(tag) = text.find("bench [").and_then(|i| {
                let rest = &text[i + 6..];
                rest.find(']').map(|j| rest[..=j].to_string())
            }) else {
                continue;
            };
            if let Some(tx) = w.lock().unwrap_or_else(|e| e.into_inner()).remove(&tag) {
                let _ = tx.send(at);
            }
        }
    });
    // First turns, outside the measurement.
    load(&p, &waiting, "w", 2, Duration::from_millis(500)).await;

    let (echo_addr, echo_server) = wire::serve(|req: hyper::Request<hyper::body::Incoming>| async move {
        use http_body_util::BodyExt;
        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let mut r = hyper::Response::new(http_body_util::Full::new(body));
        r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
        r
    })
    .await;
    let echo_url = format!("http://{echo_addr}/");
    // A body the size of one WhatsApp notification.
    let sample = chela_fakes::whatsapp::ascii_json(&serde_json::json!({"object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550100001", "phone_number_id": BIZ},
            "contacts": [{"profile": {"name": "Bench"}, "wa_id": "15550000000"}],
            "messages": [{"from": "15550000000", "id": "wamid.HBgL000000000001FAKE", "timestamp": "1767700000",
                          "type": "text", "text": {"body": "bench [100:99:9999]"}}]}}]}]}));

    println!("## chela gateway, end to end ({} run per level)\n", humantime(run));
    println!("| sessions | gateway msg/s | p50 ms | p99 ms | echo req/s | echo p50 ms | gateway / echo |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for sessions in [1usize, 10, 100] {
        let g = load(&p, &waiting, &sessions.to_string(), sessions, run).await;
        let e = echo(&echo_url, sessions, run, &sample).await;
        println!(
            "| {sessions} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.1} % |",
            g.rate(),
            g.ms(0.5),
            g.ms(0.99),
            e.rate(),
            e.ms(0.5),
            100.0 * g.rate() / e.rate()
        );
    }
    let (rss_after, peak) = rss_mib(pid);
    println!();
    println!("| start-up and memory | value |");
    println!("| --- | ---: |");
    println!("| start → `/readyz` 200, compile cache cold (4 channel components) | {} ms |", cold.as_millis());
    println!("| start → `/readyz` 200, cache warm (median of {}) | {} ms |", warm.len(), warm_median.as_millis());
    println!("| idle RSS, 3 agents + 4 channels connected | {idle_rss:.1} MiB |");
    println!("| RSS after the load (peak) | {rss_after:.1} MiB ({peak:.1} MiB) |");
    echo_server.abort();
    // Then the same loop through replicas on PostgreSQL (this gateway first, as their peer).
    replicas::compare(&p, &waiting, root, gw, run).await;
    completions::compare(quick, with_openclaw).await;
}

fn humantime(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
