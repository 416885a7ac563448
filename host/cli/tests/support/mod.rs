//! What the black-box tests of the `chela` binary share: starting
//! `chela gateway` on a temp dir with components from `plugins/`, requests
//! to it, and waiting for a condition (never a fixed sleep).
#![allow(dead_code)] // each test binary uses a part

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chela_fakes::wire;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const WAIT: Duration = Duration::from_secs(30);
/// How long a gateway may take to listen: a first start compiles its plugins
/// (a JS adapter alone takes ~20 s in a debug build), and the tests of one
/// binary start theirs in parallel on two cores.
pub const START_WAIT: Duration = Duration::from_secs(120);

/// A built component: Rust ones under the wasm32 release dir, Python and JavaScript ones under `polyglot`.
pub fn component(name: &str) -> PathBuf {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let p = ["wasm32-wasip2/release", "polyglot"]
        .iter()
        .map(|d| target.join(d).join(format!("{name}.wasm")))
        .find(|p| p.exists());
    p.unwrap_or_else(|| panic!("component {name} is missing: run `cargo xtask build-plugins` first"))
}

pub struct Gateway {
    pub child: Child,
    pub addr: String,
    pub root: PathBuf,
    pub config: PathBuf,
    /// The last lines of its log, shown when the test fails.
    log_tail: Arc<Mutex<VecDeque<String>>>,
}

/// How many of the gateway's last log lines a failing test shows.
const LOG_TAIL_LINES: usize = 200;

impl Drop for Gateway {
    /// A failing test shows what the gateway logged last (on CI there is
    /// nothing else to read).
    fn drop(&mut self) {
        if std::thread::panicking() {
            let tail = self.log_tail.lock().unwrap_or_else(|p| p.into_inner());
            eprintln!("--- the gateway's last {} log lines ---", tail.len());
            for line in tail.iter() {
                eprintln!("[gateway] {line}");
            }
        }
    }
}

impl Gateway {
    /// Starts `chela gateway --port 0` with the four channel adapters and reads the address it prints.
    pub async fn start(root: &Path, config_text: &str) -> Gateway {
        Gateway::start_with(
            root,
            config_text,
            &["channel_telegram", "channel_slack", "channel_discord", "channel_whatsapp"],
        )
        .await
    }

    /// The same with these components (file stems under the release build) in the plugins dir.
    pub async fn start_with(root: &Path, config_text: &str, components: &[&str]) -> Gateway {
        Gateway::start_as(root, config_text, components, chela(root, &root.join("chela.json5"))).await
    }

    /// The same with the state dir on a disk of its own, `mib` MiB large
    /// (a tmpfs in a private mount namespace, seeded with what the state dir
    /// held): the gateway sees it at the usual path, and so does
    /// [`Gateway::state_path`]. Needs `unshare` (util-linux) and user
    /// namespaces.
    pub async fn start_on_small_disk(root: &Path, config_text: &str, components: &[&str], mib: u32) -> Gateway {
        let state = root.join("state");
        std::fs::create_dir_all(&state).unwrap();
        let mut c = Command::new("unshare");
        c.args(["--user", "--map-root-user", "--mount", "sh", "-euc"]);
        c.arg(
            r#"s="$1"; size="$2"; shift 2
               cp -a "$s" "$s.seed"
               mount -t tmpfs -o "size=${size}m" chela-small-disk "$s"
               cp -a "$s.seed/." "$s/"; rm -rf "$s.seed"
               exec "$@""#,
        );
        c.arg("sh").arg(&state).arg(mib.to_string()).arg(env!("CARGO_BIN_EXE_chela"));
        c.arg("--config").arg(root.join("chela.json5")).env("CHELA_STATE_DIR", &state).env("HOME", root);
        c.env_remove("CHELA_GATEWAY_TOKEN");
        Gateway::start_as(root, config_text, components, c).await
    }

    /// A path under the state dir as the gateway sees it (through its mount
    /// namespace, which [`Gateway::start_on_small_disk`] makes its own).
    pub fn state_path(&self, rel: &str) -> PathBuf {
        let pid = self.child.id().expect("running");
        let state = self.root.join("state").join(rel);
        PathBuf::from(format!("/proc/{pid}/root")).join(state.strip_prefix("/").unwrap_or(&state))
    }

    pub async fn start_as(root: &Path, config_text: &str, components: &[&str], mut command: Command) -> Gateway {
        let plugins = root.join("state/plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        for c in components {
            std::fs::copy(component(c), plugins.join(format!("{c}.wasm"))).unwrap();
        }
        let config = root.join("chela.json5");
        std::fs::write(&config, config_text).unwrap();
        command.args(["gateway", "--port", "0"]);
        Gateway::launch(root, command, true).await
    }

    /// `chela gateway` on what `root` already holds (`chela.json5`, the
    /// plugins in its state dir), on the config's own `gateway.port`: where
    /// `chela status`, `health` and `send` look for it. Returned once it
    /// listens, ready or not (`/readyz` is the test's to read).
    pub async fn start_as_installed(root: &Path) -> Gateway {
        let mut command = chela(root, &root.join("chela.json5"));
        command.arg("gateway");
        Gateway::launch(root, command, false).await
    }

    /// Spawns `command` and reads the address it listens on; with `ready`,
    /// also waits for `/readyz` to answer 200.
    async fn launch(root: &Path, mut command: Command, ready: bool) -> Gateway {
        let config = root.join("chela.json5");
        let mut child = command
            .env("OPENAI_API_KEY", "sk-fake-openai")
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("chela starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = tokio::time::timeout(START_WAIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                // `… listening on http://ADDR addr=ADDR config=…`: the first word after it.
                if let Some(a) = line.split("listening on http://").nth(1).and_then(|a| a.split_whitespace().next()) {
                    return a.to_string();
                }
            }
            panic!("the gateway exited before listening");
        })
        .await
        .expect("the gateway listens");
        // Keep draining its log so it never blocks on a full pipe (CHELA_TEST_LOG=1 shows it;
        // a failing test shows the tail).
        let show = std::env::var_os("CHELA_TEST_LOG").is_some();
        let log_tail = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_TAIL_LINES)));
        let tail = log_tail.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if show {
                    eprintln!("[gateway] {line}");
                }
                let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
                if tail.len() == LOG_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        let gw = Gateway { child, addr, root: root.into(), config, log_tail };
        let deadline = Instant::now() + WAIT;
        while ready && gw.get("/readyz", &[]).await.status != 200 {
            assert!(Instant::now() < deadline, "not ready: {}", gw.get("/readyz", &[]).await.body);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        gw
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> wire::Answer {
        wire::request("GET", &format!("http://{}{path}", self.addr), headers, b"").await.expect("answers")
    }

    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> wire::Answer {
        wire::request("POST", &format!("http://{}{path}", self.addr), headers, body).await.expect("answers")
    }

    /// Rewrites the config file (the gateway watches it) with a new mtime.
    pub fn edit(&self, text: &str) {
        let tmp = self.root.join("chela.json5.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.config).unwrap();
    }

    pub fn sigterm(&self) {
        let pid = self.child.id().expect("running");
        let ok = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        assert!(ok.success());
    }
}

/// The config keys (JSON5, without braces) of a scheduler with three jobs,
/// agent `main` on the OpenAI fake at `openai`: `once` (a one-shot already
/// due, asking "the one-shot job"), `hourly` (every hour), and `tick`
/// (agent `clock`'s system event every second).
pub fn three_jobs(openai: &str) -> String {
    format!(
        r#"models: {{ providers: {{ openai: {{ baseUrl: "{openai}" }} }} }},
      agents: {{ list: [ {{ id: "main", default: true, model: "openai/gpt-test" }}, {{ id: "clock" }} ] }},
      cron: {{ jobs: [
        {{ id: "once", schedule: {{ kind: "at", at: "2020-01-01T00:00:00Z" }},
           payload: {{ kind: "agentTurn", message: "the one-shot job" }} }},
        {{ id: "hourly", schedule: {{ kind: "every", every: "1h" }}, payload: {{ kind: "agentTurn", message: "hourly" }} }},
        {{ id: "tick", agentId: "clock", schedule: {{ kind: "every", everyMs: 1000 }},
           payload: {{ kind: "systemEvent", text: "tick" }} }} ] }}"#
    )
}

pub fn chela(root: &Path, config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_chela"));
    c.arg("--config").arg(config).env("CHELA_STATE_DIR", root.join("state")).env("HOME", root);
    c.env_remove("CHELA_GATEWAY_TOKEN");
    c
}

/// Waits until `check` holds, polling.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
