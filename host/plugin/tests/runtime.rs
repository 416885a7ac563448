//! The plugin runtime with real components built from `plugins/` and
//! `tests/fixtures/plugins/` (`cargo xtask build-plugins`), real files and a
//! real HTTP server on 127.0.0.1. No mocks of wasmtime.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chela_core::config::load_str;
use chela_core::config::paths::Environment;
use chela_core::policy::SessionKind;
use chela_plugin::call::ToolFailure;
use chela_plugin::capability::secrets::SecretStore;
use chela_plugin::{CallError, Limits, PluginEngine, Plugins};

/// A built guest: Rust ones in target/wasm32-wasip2/release, others in target/polyglot.
fn wasm(name: &str) -> PathBuf {
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let rust = target.join("wasm32-wasip2/release").join(format!("{name}.wasm"));
    let other = target.join("polyglot").join(format!("{name}.wasm"));
    let p = if rust.exists() { rust } else { other };
    assert!(p.exists(), "{} is missing: run `cargo xtask build-plugins` first", p.display());
    p
}

struct World {
    dir: tempfile::TempDir,
    plugins: Plugins,
    env: Environment,
}

impl World {
    /// A plugins dir holding copies of `names`, a state dir, and an engine with `limits`.
    async fn new(names: &[&str], limits: Limits) -> World {
        let dir = tempfile::tempdir().unwrap();
        let pdir = dir.path().join("plugins");
        std::fs::create_dir_all(&pdir).unwrap();
        for n in names {
            std::fs::copy(wasm(n), pdir.join(format!("{n}.wasm"))).unwrap();
        }
        let engine = Arc::new(PluginEngine::new(limits).unwrap());
        let plugins = Plugins::new(engine, vec![pdir], Some(dir.path().join("cache")));
        let report = plugins.rescan().await;
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        let env = Environment {
            home: dir.path().into(),
            state_dir: Some(dir.path().join("state").display().to_string()),
            ..Default::default()
        };
        World { dir, plugins, env }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn config(&self, text: &str) -> chela_core::config::Config {
        let text = text.replace("$DIR", &self.dir.path().display().to_string());
        load_str(&text, None).expect("test config loads").config
    }
}

fn no_secrets(_: &str) -> Arc<SecretStore> {
    Arc::new(SecretStore::default())
}

fn quick() -> Limits {
    Limits {
        memory_bytes: 32 << 20,
        call_timeout: Duration::from_millis(700),
        max_consecutive_failures: 3,
        first_cool_down: Duration::from_millis(300),
    }
}

#[tokio::test]
async fn loads_describes_and_calls_a_rust_tool() {
    let w = World::new(&["tool_echo"], Limits::default()).await;
    let cfg = w.config("{}");
    let tools = w.plugins.link_agent(&cfg, &w.env, "main", &SessionKind::Main, &no_secrets);
    let echo = tools.get("echo").expect("echo linked for main");
    assert!(echo.descriptor.parameters_schema.contains("\"text\""));
    let out = echo.invoke(&w.plugins, "agent:main:main", "c1", r#"{"text":"hello"}"#).await.unwrap();
    assert_eq!(out.value, Ok("hello".to_string()));
    assert_eq!(out.logs, vec!["echo for agent main".to_string()]);
    // Bad arguments are the tool's typed error, not a trap.
    let out = echo.invoke(&w.plugins, "agent:main:main", "c2", "not json").await.unwrap();
    assert!(matches!(out.value, Err(ToolFailure::InvalidArguments(_))), "{:?}", out.value);
}

#[tokio::test]
async fn a_broken_file_is_reported_and_others_still_load() {
    let w = World::new(&["tool_echo"], Limits::default()).await;
    std::fs::write(w.path("plugins/garbage.wasm"), b"\0asm\x01\0\0\0not really").unwrap();
    std::fs::write(w.path("plugins/notwasm.wasm"), b"hello").unwrap();
    let report = w.plugins.rescan().await;
    assert_eq!(report.failed.len(), 2, "{report:?}");
    let list = w.plugins.list();
    let failed: Vec<_> = list.iter().filter(|l| l.status == "failed").collect();
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().all(|f| f.error.as_deref().is_some_and(|e| e.contains("component"))), "{failed:?}");
    assert!(list.iter().any(|l| l.id == "tool_echo" && l.status == "ready"));
}

#[tokio::test]
async fn denied_tools_are_never_listed_and_missing_capabilities_are_explained() {
    let w = World::new(&["tool_echo", "tool_exec", "fixture_runner"], Limits::default()).await;
    let cfg = w.config(
        "{agents: {list: [{id: 'safe', workspace: '$DIR/ws-safe', tools: {deny: ['exec']}},
                          {id: 'ops', workspace: '$DIR/ws-ops'}]}}",
    );
    let safe = w.plugins.link_agent(&cfg, &w.env, "safe", &SessionKind::Main, &no_secrets);
    assert!(safe.get("exec").is_none(), "denied tool linked");
    assert!(safe.descriptors().iter().all(|d| d.name != "exec"), "denied tool shown to the model");
    let why = safe.unavailable.iter().find(|u| u.tool == "exec").expect("reported");
    assert_eq!(why.reason, "denied by agents.list[0].tools.allow/deny");
    // Another plugin that imports `process` does not get it either: the agent does not hold it.
    assert!(safe.get("runner").is_none());
    let why = safe.unavailable.iter().find(|u| u.tool == "runner").expect("reported");
    assert!(
        why.reason
            .contains("capability `process` (import `chela:plugin/process@0.1.0`): agent `safe` does not hold it"),
        "{}",
        why.reason
    );

    let ops = w.plugins.link_agent(&cfg, &w.env, "ops", &SessionKind::Main, &no_secrets);
    let runner = ops.get("runner").expect("ops holds `process`");
    let out = runner.invoke(&w.plugins, "agent:ops:main", "c1", r#"{"program": "pwd"}"#).await.unwrap();
    let ws = std::fs::canonicalize(w.path("ws-ops")).unwrap();
    assert_eq!(out.value.unwrap().trim(), ws.display().to_string(), "runs in the agent's workspace");
    assert!(ops.get("echo").is_some() && safe.get("echo").is_some());
}

/// `exec` on the host (sandbox off): in the workspace, with limits.
#[tokio::test]
async fn exec_runs_in_the_workspace_with_a_deadline_and_an_output_cap() {
    let w = World::new(&["tool_exec"], Limits::default()).await;
    let cfg = w.config("{agents: {list: [{id: 'dev', workspace: '$DIR/ws-dev'}]}}");
    let dev = w.plugins.link_agent(&cfg, &w.env, "dev", &SessionKind::Main, &no_secrets);
    let exec = dev.get("exec").expect("exec linked");
    let plugins = &w.plugins;
    let run = |args: serde_json::Value| async move {
        let out = exec.invoke(plugins, "agent:dev:main", "c", &args.to_string()).await.unwrap();
        serde_json::from_str::<serde_json::Value>(&out.value.unwrap()).unwrap()
    };
    let r = run(serde_json::json!({"command": "echo hi > f.txt && cat f.txt && echo oops >&2; exit 3"})).await;
    assert_eq!(
        (r["exitCode"].as_i64(), r["stdout"].as_str(), r["stderr"].as_str()),
        (Some(3), Some("hi\n"), Some("oops\n"))
    );
    assert_eq!(std::fs::read_to_string(w.path("ws-dev/f.txt")).unwrap(), "hi\n");
    let r = run(serde_json::json!({"command": "sleep 5", "timeoutMs": 200})).await;
    assert_eq!((r["timedOut"].as_bool(), r["exitCode"].as_i64()), (Some(true), None));
    let r = run(serde_json::json!({"command": "head -c 3000000 /dev/zero"})).await;
    assert_eq!(r["truncated"], true);
    assert_eq!(r["stdout"].as_str().unwrap().len(), 1 << 20);
    let escape = exec.invoke(&w.plugins, "agent:dev:main", "c", r#"{"command": "pwd", "cwd": "../.."}"#).await.unwrap();
    assert!(
        matches!(escape.value, Err(ToolFailure::Denied(ref m)) if m.contains("inside the workspace")),
        "{:?}",
        escape.value
    );
}

/// `exec` in a sandboxed session: bubblewrap, only this agent's workspace,
/// read-only as configured, no network. Without bubblewrap: refused.
#[tokio::test]
async fn sandboxed_exec_sees_only_its_workspace_or_fails_closed() {
    let w = World::new(&["tool_exec"], Limits::default()).await;
    for (agent, file) in [("box", "note.txt"), ("other", "secret.txt")] {
        std::fs::create_dir_all(w.path(&format!("ws-{agent}"))).unwrap();
        std::fs::write(w.path(&format!("ws-{agent}/{file}")), format!("{agent} data")).unwrap();
    }
    let cfg = w.config(
        "{agents: {list: [{id: 'box', workspace: '$DIR/ws-box', sandbox: {mode: 'all', workspaceAccess: 'ro'}},
                          {id: 'other', workspace: '$DIR/ws-other'}]}}",
    );
    let tools = w.plugins.link_agent(&cfg, &w.env, "box", &SessionKind::Main, &no_secrets);
    let exec = tools.get("exec").expect("exec linked");
    let other = w.path("ws-other/secret.txt").display().to_string();
    let script = format!(
        "cat note.txt; echo; (echo x > new.txt) 2>/dev/null || echo read-only; cat {other} 2>/dev/null || echo no-other; ls /"
    );
    let out = exec
        .invoke(&w.plugins, "agent:box:main", "c", &serde_json::json!({"command": script}).to_string())
        .await
        .unwrap();
    if chela_plugin::capability::process::bubblewrap().is_none() {
        let err = out.value.expect_err("no sandbox, no command");
        assert!(matches!(&err, ToolFailure::Denied(m) if m.contains("bubblewrap")), "{err:?}");
        return;
    }
    let r: serde_json::Value = serde_json::from_str(&out.value.unwrap()).unwrap();
    let stdout = r["stdout"].as_str().unwrap();
    if r["stderr"].as_str().is_some_and(|e| e.starts_with("bwrap:")) {
        // bubblewrap is installed but this machine forbids namespaces: still closed.
        assert!(stdout.is_empty() && r["exitCode"] != 0, "{r}");
        return;
    }
    assert!(stdout.starts_with("box data\nread-only\nno-other\n"), "{r}");
    assert!(!w.path("ws-box/new.txt").exists());
    let root: Vec<&str> = stdout.lines().skip(3).collect();
    assert!(root.contains(&"workspace") && !root.contains(&"root") && !root.contains(&"home"), "{root:?}");
    // The seccomp filter is installed: denied calls (new namespaces, mounts, ptrace) fail with EPERM.
    let probe = "grep '^Seccomp:' /proc/self/status; unshare --user true 2>&1 || echo unshare-refused";
    let out = exec
        .invoke(&w.plugins, "agent:box:main", "c", &serde_json::json!({"command": probe}).to_string())
        .await
        .unwrap();
    let r: serde_json::Value = serde_json::from_str(&out.value.unwrap()).unwrap();
    let stdout = r["stdout"].as_str().unwrap();
    assert!(stdout.contains("Seccomp:\t2") && stdout.contains("unshare-refused"), "{r}");
}

#[tokio::test]
async fn workspace_is_the_only_directory_and_read_only_means_read_only() {
    let w = World::new(&["tool_read", "tool_write", "fixture_snoop"], Limits::default()).await;
    for (agent, file) in [("a", "mine.txt"), ("b", "secret.txt")] {
        std::fs::create_dir_all(w.path(&format!("ws-{agent}"))).unwrap();
        std::fs::write(w.path(&format!("ws-{agent}/{file}")), format!("{agent} data")).unwrap();
    }
    #[cfg(unix)]
    std::os::unix::fs::symlink(w.path("ws-b"), w.path("ws-a/link-to-b")).unwrap();
    let cfg = w.config(
        "{agents: {list: [
            {id: 'a', workspace: '$DIR/ws-a'},
            {id: 'b', workspace: '$DIR/ws-b'},
            {id: 'ro', workspace: '$DIR/ws-a', sandbox: {mode: 'all', workspaceAccess: 'ro'},
             tools: {sandbox: {tools: {allow: ['read', 'write', 'snoop']}}}},
        ]}}",
    );
    let a = w.plugins.link_agent(&cfg, &w.env, "a", &SessionKind::Main, &no_secrets);
    let read = a.get("read").unwrap();
    let plugins = &w.plugins;
    let call = |args: String| async move { read.invoke(plugins, "k", "c", &args).await.unwrap().value };
    assert_eq!(call(r#"{"path":"mine.txt"}"#.into()).await, Ok("a data".into()));
    let b_file = w.path("ws-b/secret.txt").display().to_string();
    for escape in [
        "../ws-b/secret.txt".to_string(),
        b_file,
        "link-to-b/secret.txt".into(),
        "/workspace/../ws-b/secret.txt".into(),
    ] {
        let got = call(serde_json::json!({ "path": escape }).to_string()).await;
        assert!(got.is_err(), "agent a read {escape}: {got:?}");
    }

    // Read-only: the write tool is removed by policy (even though the sandbox
    // list allows it), and a tool that writes through the mount is refused by WASI.
    let ro = w.plugins.link_agent(&cfg, &w.env, "ro", &SessionKind::Main, &no_secrets);
    assert!(ro.get("write").is_none());
    let why = ro.unavailable.iter().find(|u| u.tool == "write").unwrap();
    assert_eq!(why.reason, "denied by sandbox.workspaceAccess ro");
    let snoop = ro.get("snoop").expect("snoop linked");
    assert_eq!(snoop.grants.workspace.as_ref().map(|(_, a)| *a), Some(chela_plugin::WorkspaceAccess::Ro));
    let out = snoop.invoke(&w.plugins, "k", "c", r#"{"write":"/workspace/mine.txt"}"#).await.unwrap().value.unwrap();
    assert!(out.contains("\"write\":\"error"), "{out}");
    assert_eq!(std::fs::read_to_string(w.path("ws-a/mine.txt")).unwrap(), "a data");
    assert!(out.contains("\"etc\":\"error"), "host files are invisible: {out}");

    // Read-write works where granted.
    let write = a.get("write").unwrap();
    let out = write.invoke(&w.plugins, "k", "c", r#"{"path":"notes/new.md","content":"hi"}"#).await.unwrap();
    assert!(out.value.is_ok(), "{:?}", out.value);
    assert_eq!(std::fs::read_to_string(w.path("ws-a/notes/new.md")).unwrap(), "hi");
}

#[tokio::test]
async fn infinite_loop_hits_the_deadline_and_the_next_call_works() {
    let w = World::new(&["fixture_spin", "tool_echo"], quick()).await;
    let cfg = w.config("{}");
    let tools = w.plugins.link_agent(&cfg, &w.env, "main", &SessionKind::Main, &no_secrets);
    let spin = tools.get("spin").unwrap();
    let start = std::time::Instant::now();
    let err = spin.invoke(&w.plugins, "k", "c", "{}").await.unwrap_err();
    assert!(matches!(err, CallError::Timeout { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(3), "deadline took {:?}", start.elapsed());
    let ok = spin.invoke(&w.plugins, "k", "c", r#"{"ms": 10}"#).await.unwrap();
    assert!(ok.value.is_ok());
    let echo = tools.get("echo").unwrap();
    assert!(echo.invoke(&w.plugins, "k", "c", r#"{"text":"x"}"#).await.unwrap().value.is_ok());
}

#[tokio::test]
async fn memory_bomb_is_capped() {
    let w = World::new(&["fixture_hog"], quick()).await;
    let cfg = w.config("{}");
    let tools = w.plugins.link_agent(&cfg, &w.env, "main", &SessionKind::Main, &no_secrets);
    let hog = tools.get("hog").unwrap();
    let err = hog.invoke(&w.plugins, "k", "c", "{}").await.unwrap_err();
    assert!(matches!(err, CallError::OutOfMemory { limit, .. } if limit == 32 << 20), "{err}");
    let ok = hog.invoke(&w.plugins, "k", "c", r#"{"mb": 4}"#).await.unwrap();
    assert_eq!(ok.value, Ok("allocated 4 MiB in 4 blocks".to_string()));
    // A per-plugin cap lowers it; it cannot raise it past the engine's.
    let cfg = w.config("{plugins: {entries: {fixture_hog: {maxMemoryMb: 8}}}}");
    let tools = w.plugins.link_agent(&cfg, &w.env, "main", &SessionKind::Main, &no_secrets);
    let err = tools.get("hog").unwrap().invoke(&w.plugins, "k", "c", r#"{"mb": 12}"#).await.unwrap_err();
    assert!(matches!(err, CallError::OutOfMemory { limit, .. } if limit == 8 << 20), "{err}");
    let cfg = w.config("{plugins: {entries: {fixture_hog: {maxMemoryMb: 4096}}}}");
    let tools = w.plugins.link_agent(&cfg, &w.env, "main", &SessionKind::Main, &no_secrets);
    let err = tools.get("hog").unwrap().invoke(&w.plugins, "k", "c", "{}").await.unwrap_err();
    assert!(matches!(err, CallError::OutOfMemory { limit, .. } if limit == 32 << 20), "{err}");
}

#[tokio::test]
async fn a_plugin_that_always_traps_is_disabled_and_others_are_unaffected() {
    let w = World::new(&["fixture_crash", "tool_echo"], quick()).await;
    let cfg = w.config("{}");
    let tools = w.plugins.link_agent(&cfg, &w.env, "main", &SessionKind::Main, &no_secrets);
    let crash = tools.get("crash").unwrap();
    for _ in 0..3 {
        let err = crash.invoke(&w.plugins, "k", "c", "{}").await.unwrap_err();
        assert!(matches!(err, CallError::Trap { .. }), "{err}");
    }
    let err = crash.invoke(&w.plugins, "k", "c", r#"{"ok":1}"#).await.unwrap_err();
    assert!(matches!(err, CallError::Disabled { .. }), "{err}");
    let listing = w.plugins.list().into_iter().find(|l| l.id == "fixture_crash").unwrap();
    assert_eq!(listing.status, "disabled");
    assert!(listing.error.unwrap().contains("3 failed calls in a row"));
    assert!(listing.retry_in_seconds.is_some(), "the listing says when it is tried again");
    let relinked = w.plugins.link_agent(&cfg, &w.env, "main", &SessionKind::Main, &no_secrets);
    assert!(relinked.get("crash").is_none(), "a disabled plugin is not offered");
    assert!(relinked.get("echo").unwrap().invoke(&w.plugins, "k", "c", r#"{"text":"x"}"#).await.unwrap().value.is_ok());
    // After the cool-down it is tried again, on probation: one more failure disables it, for twice as long.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while w.plugins.list().into_iter().any(|l| l.id == "fixture_crash" && l.status == "disabled") {
        assert!(std::time::Instant::now() < deadline, "never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let back = w.plugins.link_agent(&cfg, &w.env, "main", &SessionKind::Main, &no_secrets);
    let err = back.get("crash").expect("offered again").invoke(&w.plugins, "k", "c", "{}").await.unwrap_err();
    assert!(matches!(err, CallError::Trap { .. }), "{err}");
    let listing = w.plugins.list().into_iter().find(|l| l.id == "fixture_crash").unwrap();
    assert_eq!(listing.status, "disabled");
    assert!(listing.error.as_deref().unwrap_or_default().contains("after its cool-down"), "{:?}", listing.error);
}

/// A one-route HTTP server on 127.0.0.1 that records request lines.
fn serve(seen: Arc<Mutex<Vec<String>>>) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        for stream in listener.incoming().take(2) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_string();
            seen.lock().unwrap().push(head);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello");
        }
    });
    (addr, handle)
}

#[tokio::test]
async fn http_reaches_only_allowed_hosts_and_secrets_are_substituted_by_the_host() {
    let w = World::new(&["tool_web_fetch", "fixture_snoop"], Limits::default()).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (addr, _server) = serve(seen.clone());
    let cfg = w.config(&format!("{{plugins: {{entries: {{tool_web_fetch: {{allowHosts: ['{addr}']}}}}}}}}"));
    let secrets = |_: &str| SecretStore::from_pairs([("TOKEN".to_string(), "s3cr3t".to_string())]);
    let tools = w.plugins.link_agent(&cfg, &w.env, "main", &SessionKind::Main, &secrets);
    let fetch = tools.get("web_fetch").unwrap();
    let url = format!("http://{addr}/bot{{{{secret:TOKEN}}}}/getMe");
    let out = fetch.invoke(&w.plugins, "k", "c", &serde_json::json!({ "url": url }).to_string()).await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&out.value.unwrap()).unwrap();
    assert_eq!(body["status"], 200);
    assert_eq!(body["text"], "hello");
    assert_eq!(seen.lock().unwrap().as_slice(), ["GET /bots3cr3t/getMe HTTP/1.1"]);

    // snoop is not allowed any host: the same server is unreachable for it.
    let snoop = tools.get("snoop").unwrap();
    let url = format!("http://{addr}/steal/{{{{secret:TOKEN}}}}");
    let out = snoop.invoke(&w.plugins, "k", "c", &serde_json::json!({ "url": url }).to_string()).await.unwrap();
    assert!(out.value.unwrap().contains("HttpRequestDenied"));
    let other = fetch.invoke(&w.plugins, "k", "c", r#"{"url":"http://127.0.0.1:9/x"}"#).await.unwrap();
    assert!(
        matches!(&other.value, Err(ToolFailure::Failed(m)) if m.contains("HttpRequestDenied")),
        "{:?}",
        other.value
    );
    assert_eq!(seen.lock().unwrap().len(), 1, "denied requests never connect");
}

#[tokio::test]
async fn replacing_a_file_keeps_calls_in_flight_and_new_calls_see_the_new_version() {
    let w = World::new(&[], quick()).await;
    let file = w.path("plugins/hot.wasm");
    std::fs::copy(wasm("fixture_spin"), &file).unwrap();
    w.plugins.rescan().await;
    let cfg = w.config("{}");
    let before = w.plugins.link_agent(&cfg, &w.env, "main", &SessionKind::Main, &no_secrets);
    let spin = before.get("spin").unwrap();
    let in_flight = spin.invoke(&w.plugins, "k", "c", r#"{"ms": 300}"#);
    let swap = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        std::fs::copy(wasm("tool_echo"), &file).unwrap();
        w.plugins.rescan().await
    };
    let (old, report) = tokio::join!(in_flight, swap);
    assert!(old.unwrap().value.is_ok(), "the call on the old version finished");
    assert_eq!(report.replaced, vec!["hot".to_string()]);
    let after = w.plugins.link_agent(&cfg, &w.env, "main", &SessionKind::Main, &no_secrets);
    assert!(after.get("spin").is_none() && after.get("echo").is_some());
    std::fs::remove_file(&file).unwrap();
    assert_eq!(w.plugins.rescan().await.removed, vec!["hot".to_string()]);
}

#[tokio::test]
async fn compiled_code_is_cached_on_disk() {
    let w = World::new(&["tool_echo"], Limits::default()).await;
    let first = w.plugins.get("tool_echo").unwrap();
    assert_eq!(first.cache, chela_plugin::cache::CacheOutcome::Miss);
    let engine = Arc::new(PluginEngine::new(Limits::default()).unwrap());
    let again = Plugins::new(engine, vec![w.path("plugins")], Some(w.path("cache")));
    again.rescan().await;
    assert_eq!(again.get("tool_echo").unwrap().cache, chela_plugin::cache::CacheOutcome::Hit);
    assert!(Path::new(&w.path("cache")).read_dir().unwrap().count() >= 1);
}

#[tokio::test]
async fn a_plugin_is_linked_only_with_what_it_imports() {
    let w = World::new(&["tool_echo"], Limits::default()).await;
    let cfg = w.config("{}");
    let tools = w.plugins.link_agent(&cfg, &w.env, "main", &SessionKind::Main, &no_secrets);
    let echo = tools.get("echo").unwrap();
    // echo does not import kv, so it is not linked with it.
    assert!(!echo.grants.holds(chela_plugin::Capability::Kv));
    assert!(echo.grants.holds(chela_plugin::Capability::Log));
}

#[tokio::test]
async fn a_python_tool_runs_through_the_same_host_path() {
    // componentize-py output: 18 MB with CPython inside; the same linking,
    // policy and limits apply as for Rust components.
    let limits = Limits {
        memory_bytes: 128 << 20,
        call_timeout: Duration::from_secs(20),
        max_consecutive_failures: 3,
        ..Limits::default()
    };
    let w = World::new(&["tool_word_count_py"], limits).await;
    let plugin = w.plugins.get("tool_word_count_py").unwrap();
    let needs: Vec<&str> = plugin.manifest.needs.iter().map(|c| c.as_str()).collect();
    assert_eq!(needs, ["log", "kv", "secrets"], "world tool-plugin imports only these");
    let cfg = w.config("{agents: {list: [{id: 'main'}, {id: 'quiet', tools: {deny: ['word_count']}}]}}");
    let tools = w.plugins.link_agent(&cfg, &w.env, "main", &SessionKind::Main, &no_secrets);
    let wc = tools.get("word_count").expect("python tool linked");
    let out = wc.invoke(&w.plugins, "k", "c", r#"{"text":"one two\nthree"}"#).await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&out.value.unwrap()).unwrap();
    assert_eq!(v, serde_json::json!({"words": 3, "lines": 2, "chars": 13}));
    assert_eq!(out.logs, vec!["word_count for agent main".to_string()]);
    let bad = wc.invoke(&w.plugins, "k", "c", r#"{"text": 5}"#).await.unwrap();
    assert!(matches!(bad.value, Err(ToolFailure::InvalidArguments(_))), "{:?}", bad.value);
    let quiet = w.plugins.link_agent(&cfg, &w.env, "quiet", &SessionKind::Main, &no_secrets);
    assert!(quiet.get("word_count").is_none());
    assert!(quiet.unavailable.iter().any(|u| u.tool == "word_count" && u.reason.starts_with("denied by")));
}

#[tokio::test]
async fn a_javascript_tool_runs_through_the_same_host_path() {
    let limits = Limits {
        memory_bytes: 128 << 20,
        call_timeout: Duration::from_secs(20),
        max_consecutive_failures: 3,
        ..Limits::default()
    };
    let w = World::new(&["tool_slugify_js"], limits).await;
    let cfg = w.config("{}");
    let tools = w.plugins.link_agent(&cfg, &w.env, "main", &SessionKind::Main, &no_secrets);
    let slugify = tools.get("slugify").expect("javascript tool linked");
    let out = slugify.invoke(&w.plugins, "k", "c", r#"{"text":"Héllo, Wörld: 2026!"}"#).await.unwrap();
    assert_eq!(out.value, Ok("hello-world-2026".to_string()));
    assert_eq!(out.logs, vec!["slugify for agent main".to_string()]);
    let bad = slugify.invoke(&w.plugins, "k", "c", "[]").await.unwrap();
    assert_eq!(bad.value, Err(ToolFailure::InvalidArguments("`text` (a string) is required".into())));
}

#[tokio::test]
async fn dropping_a_file_into_a_watched_dir_is_enough() {
    let w = World::new(&[], Limits::default()).await;
    let plugins = Arc::new(Plugins::new(
        Arc::new(PluginEngine::new(Limits::default()).unwrap()),
        vec![w.path("plugins")],
        Some(w.path("cache")),
    ));
    let watcher = plugins.watch(Duration::from_millis(50), |_| async { true });
    std::fs::copy(wasm("tool_echo"), w.path("plugins/dropped.wasm")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while plugins.get("dropped").is_none() {
        assert!(std::time::Instant::now() < deadline, "the watcher never picked the file up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tools = plugins.link_agent(&w.config("{}"), &w.env, "main", &SessionKind::Main, &no_secrets);
    let out = tools.get("echo").unwrap().invoke(&plugins, "k", "c", r#"{"text":"picked up"}"#).await.unwrap();
    assert_eq!(out.value, Ok("picked up".to_string()));
    watcher.abort();
}

#[tokio::test]
async fn edit_and_apply_patch_change_only_the_agents_workspace_all_or_nothing() {
    let w = World::new(&["tool_edit", "tool_apply_patch", "tool_read"], Limits::default()).await;
    std::fs::create_dir_all(w.path("ws-a/src")).unwrap();
    std::fs::create_dir_all(w.path("ws-b")).unwrap();
    std::fs::write(w.path("ws-a/src/app.py"), "def f():\n    return 1\n\ndef g():\n    return 1\n").unwrap();
    std::fs::write(w.path("ws-a/old.txt"), "bye\n").unwrap();
    std::fs::write(w.path("ws-b/theirs.txt"), "b's\n").unwrap();
    let cfg = w.config(
        "{agents: {list: [{id: 'a', workspace: '$DIR/ws-a'}, {id: 'b', workspace: '$DIR/ws-b'},
            {id: 'ro', workspace: '$DIR/ws-a', sandbox: {mode: 'all', workspaceAccess: 'ro'}}]}}",
    );
    let a = w.plugins.link_agent(&cfg, &w.env, "a", &SessionKind::Main, &no_secrets);
    let call = |tool: &str, args: serde_json::Value| {
        let t = a.get(tool).unwrap_or_else(|| panic!("{tool} linked"));
        let plugins = &w.plugins;
        async move { t.invoke(plugins, "k", "c", &args.to_string()).await.unwrap().value }
    };
    let app = || std::fs::read_to_string(w.path("ws-a/src/app.py")).unwrap();

    // edit: ambiguous and missing text are refused with the reason; a unique one applies.
    let err =
        call("edit", serde_json::json!({"path": "src/app.py", "oldText": "return 1", "newText": "return 2"})).await;
    assert!(format!("{err:?}").contains("occurs 2 times"), "{err:?}");
    let err = call("edit", serde_json::json!({"path": "src/app.py", "oldText": "return 9", "newText": "x"})).await;
    assert!(format!("{err:?}").contains("does not occur"), "{err:?}");
    let ok = call("edit", serde_json::json!({"path": "src/app.py", "oldText": "def g():\n    return 1", "newText": "def g():\n    return 2"})).await;
    assert!(ok.as_ref().is_ok_and(|m| m.contains("line 4")), "{ok:?}");
    assert_eq!(app(), "def f():\n    return 1\n\ndef g():\n    return 2\n");
    let outside = call("edit", serde_json::json!({"path": "../ws-b/theirs.txt", "oldText": "b", "newText": "a"})).await;
    assert!(outside.is_err(), "{outside:?}");
    assert_eq!(std::fs::read_to_string(w.path("ws-b/theirs.txt")).unwrap(), "b's\n");

    // apply_patch: a patch whose second hunk does not fit writes nothing.
    let bad = "*** Begin Patch\n*** Add File: notes/new.md\n+hello\n*** Update File: src/app.py\n@@ def f():\n-    return 7\n+    return 8\n*** End Patch";
    let err = call("apply_patch", serde_json::json!({ "input": bad })).await;
    assert!(format!("{err:?}").contains("src/app.py: hunk 1"), "{err:?}");
    assert!(!w.path("ws-a/notes/new.md").exists(), "all or nothing");
    // A good one: add, update with move, delete.
    let good = "*** Begin Patch\n*** Add File: notes/new.md\n+hello\n*** Update File: src/app.py\n*** Move to: src/main.py\n@@ def f():\n-    return 1\n+    return 10\n*** Delete File: old.txt\n*** End Patch";
    let ok = call("apply_patch", serde_json::json!({ "input": good })).await;
    assert!(ok.is_ok(), "{ok:?}");
    assert_eq!(std::fs::read_to_string(w.path("ws-a/notes/new.md")).unwrap(), "hello\n");
    assert_eq!(
        std::fs::read_to_string(w.path("ws-a/src/main.py")).unwrap(),
        "def f():\n    return 10\n\ndef g():\n    return 2\n"
    );
    assert!(!w.path("ws-a/src/app.py").exists() && !w.path("ws-a/old.txt").exists());
    let escape = "*** Begin Patch\n*** Add File: /etc/evil\n+x\n*** End Patch";
    assert!(call("apply_patch", serde_json::json!({ "input": escape })).await.is_err());

    // A read-only sandbox gets neither tool (policy), but still reads.
    let ro = w.plugins.link_agent(&cfg, &w.env, "ro", &SessionKind::Main, &no_secrets);
    assert!(ro.get("edit").is_none() && ro.get("apply_patch").is_none() && ro.get("read").is_some());
}

#[tokio::test]
async fn memory_search_and_get_read_only_the_agents_memory() {
    let w = World::new(&["tool_memory_search", "tool_memory_get"], Limits::default()).await;
    std::fs::create_dir_all(w.path("ws-a/memory/2026")).unwrap();
    std::fs::create_dir_all(w.path("ws-b/memory")).unwrap();
    std::fs::write(w.path("ws-a/MEMORY.md"), "# Ada\n\nPrefers tea.\n\nDentist on Friday at 10.\nBring the card.\n")
        .unwrap();
    std::fs::write(w.path("ws-a/memory/2026/11-20.md"), "Paid the dentist bill.\n").unwrap();
    std::fs::write(w.path("ws-a/notes.md"), "dentist dentist dentist\n").unwrap();
    std::fs::write(w.path("ws-b/MEMORY.md"), "B's dentist is on Monday.\n").unwrap();
    let cfg = w.config("{agents: {list: [{id: 'a', workspace: '$DIR/ws-a'}, {id: 'b', workspace: '$DIR/ws-b'}]}}");
    let a = w.plugins.link_agent(&cfg, &w.env, "a", &SessionKind::Main, &no_secrets);
    let call = |tool: &str, args: serde_json::Value| {
        let t = a.get(tool).unwrap_or_else(|| panic!("{tool} linked"));
        let plugins = &w.plugins;
        async move { t.invoke(plugins, "k", "c", &args.to_string()).await.unwrap().value }
    };
    let out: serde_json::Value =
        serde_json::from_str(&call("memory_search", serde_json::json!({"query": "dentist on friday"})).await.unwrap())
            .unwrap();
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "MEMORY.md and memory/…, not notes.md nor b's: {out}");
    assert_eq!((results[0]["path"].as_str(), results[0]["startLine"].as_u64()), (Some("MEMORY.md"), Some(5)));
    assert!(results.iter().all(|r| !r["snippet"].as_str().unwrap().contains("Monday")));

    let got: serde_json::Value = serde_json::from_str(
        &call("memory_get", serde_json::json!({"path": "MEMORY.md", "from": 5, "lines": 2})).await.unwrap(),
    )
    .unwrap();
    assert_eq!(got["text"], "Dentist on Friday at 10.\nBring the card.");
    for bad in ["notes.md", "memory/../notes.md", "../ws-b/MEMORY.md", "/etc/passwd"] {
        let r = call("memory_get", serde_json::json!({ "path": bad })).await;
        assert!(r.is_err(), "{bad}: {r:?}");
    }
}

/// Where bubblewrap cannot create namespaces, host commands are confined by
/// Landlock: the same paths are hidden, the workspace stays writable, the
/// rest of the host readable, and the parent's environment unreadable.
#[tokio::test]
async fn landlock_confines_host_commands_where_namespaces_are_missing() {
    use chela_plugin::capability::process::{run_landlocked, Command, ProcessGrant};
    // The state dir under /tmp (writable for commands under Landlock: it must stay hidden there too).
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (ws, other, state) = (dir.path().join("ws"), dir.path().join("ws-other"), tmp.path().join("state"));
    for d in [&ws, &other, &state] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(other.join("MEMORY.md"), "OTHER-SECRET").unwrap();
    std::fs::write(state.join("gateway.token"), "TOKEN-SECRET").unwrap();
    std::fs::write(dir.path().join("beside.txt"), "BESIDE-OK").unwrap();
    let grant = ProcessGrant {
        root: ws.clone(),
        writable: true,
        sandboxed: false,
        network: false,
        elevated: false,
        confinement: chela_core::policy::ExecConfinement {
            unconfined: false,
            hidden: vec![other.clone(), state.clone()],
            hidden_files: vec![],
            env: vec![],
        },
        policy: chela_core::policy::HostExecPolicy::default(),
    };
    let script = format!(
        "cat {o}/MEMORY.md {s}/gateway.token 2>&1; ls {o} 2>&1; cat {b}; echo mine > mine.txt && cat mine.txt; \
         cat /proc/$PPID/environ >/dev/null 2>&1 || echo parent-environ-denied; test -x /usr/bin/env && echo host-ok",
        o = other.display(),
        s = state.display(),
        b = dir.path().join("beside.txt").display()
    );
    let cmd = Command {
        program: "sh".into(),
        args: vec!["-c".into(), script],
        cwd: None,
        stdin: None,
        timeout_ms: 10_000,
        elevated: false,
    };
    let out = match run_landlocked(&grant, cmd).await {
        Ok(o) => o,
        Err(e) if e.contains("neither") => {
            eprintln!("skipped: this kernel has no Landlock ({e})");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("OTHER-SECRET") && !stdout.contains("TOKEN-SECRET"), "{stdout}");
    assert!(stdout.contains("Permission denied"), "{stdout}");
    assert!(stdout.contains("BESIDE-OK") && stdout.contains("mine\n") && stdout.contains("host-ok"), "{stdout}");
    assert!(stdout.contains("parent-environ-denied"), "{stdout}");
}

/// Both channel contracts load side by side: the JavaScript webhook adapter
/// is built against `chela:plugin@0.1.0` and is shown to the host as a
/// 0.2.0 adapter without features (a file, an edit or typing is refused
/// before the component is called, naming the missing feature); the Rust
/// Telegram adapter speaks 0.2.0 and declares what it can do.
#[tokio::test]
async fn a_0_1_0_channel_adapter_loads_beside_0_2_0_ones() {
    use chela_plugin::channel::{ChannelRuntime, ContractVersion, Features, Peer, PeerKind};
    let limits = Limits { memory_bytes: 128 << 20, call_timeout: Duration::from_secs(20), ..Limits::default() };
    let w = World::new(&["channel_webhook_js", "channel_telegram"], limits).await;
    let cfg = w.config(
        "{channels: {webhook: {accounts: {inbox: {webhookToken: 't'}}},
                     telegram: {accounts: {bot: {botToken: '1:A', apiRoot: 'http://127.0.0.1:9'}}}}}",
    );
    let vars = |_: &str| None;
    let start = |id: &str| {
        let plugin = w.plugins.get(id).unwrap();
        assert!(
            plugin.manifest.world_export.starts_with("chela:plugin/channel-adapter@"),
            "{}",
            plugin.manifest.world_export
        );
        ChannelRuntime::start(&w.plugins, plugin, &cfg, &w.env, &vars)
    };
    let old = start("channel_webhook_js").await.expect("the 0.1.0 adapter starts");
    assert_eq!(old.plugin.manifest.world_export, "chela:plugin/channel-adapter@0.1.0");
    assert_eq!((old.contract(), old.features()), (ContractVersion::V0_1, Features::empty()));
    assert_eq!(old.account_ids(), ["inbox"]);
    let peer = Peer { kind: PeerKind::Direct, id: "u1".into() };
    let refused = old.typing("inbox", &peer, None).await.unwrap_err().to_string();
    assert!(refused.contains("does not declare `typing`"), "{refused}");

    let new = start("channel_telegram").await.expect("the 0.2.0 adapter starts");
    assert_eq!(new.plugin.manifest.world_export, "chela:plugin/channel-adapter@0.2.0");
    assert_eq!(new.contract(), ContractVersion::V0_2);
    let f = new.features();
    assert!(f.contains(Features::EDIT | Features::TYPING | Features::REACT | Features::ATTACHMENTS_IN), "{f:?}");
    assert_eq!(new.info.upload_limit, 50 * 1024 * 1024);
}

/// A channel call whose caller gives up (its future dropped mid-call: a
/// timeout, a client that hung up) leaves no broken instance behind: the
/// next call on that lane gets a fresh one instead of wasmtime's "cannot
/// enter component instance".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_call_cut_off_midway_does_not_break_the_next_one() {
    use chela_plugin::channel::{ChannelRuntime, HttpRequest, Peer, PeerKind};
    // A platform that takes the request and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = silent.accept().await {
            held.push(sock);
        }
    });
    let limits = Limits { memory_bytes: 128 << 20, call_timeout: Duration::from_secs(20), ..Limits::default() };
    let w = World::new(&["channel_telegram"], limits).await;
    let cfg = w.config(&format!(
        "{{channels: {{telegram: {{accounts: {{bot: {{botToken: '1:A', apiRoot: 'http://127.0.0.1:{port}'}}}}}}}}}}"
    ));
    let vars = |_: &str| None;
    let plugin = w.plugins.get("channel_telegram").unwrap();
    let ch = ChannelRuntime::start(&w.plugins, plugin, &cfg, &w.env, &vars).await.expect("starts");
    let peer = Peer { kind: PeerKind::Direct, id: "42".into() };
    let cut = tokio::time::timeout(Duration::from_millis(300), ch.typing("bot", &peer, None)).await;
    assert!(cut.is_err(), "the typing call waits on the silent platform: {cut:?}");
    let request = HttpRequest { method: "POST".into(), path_with_query: "/".into(), headers: vec![], body: vec![] };
    let next = ch.handle_webhook("bot", request).await;
    assert!(next.is_ok(), "the lane answers with a fresh instance: {:?}", next.err());
}

/// On replicas an account's kv is in the shared database: the Telegram
/// adapter's offset is stored there (so a replica that takes the poller
/// over goes on from it). While the database is away a poll that cannot
/// read its offset fails as the host's failure, never as "no offset" (which
/// would start over from 0), and is not held against the plugin: however
/// many such polls fail, it stays enabled, and polls again once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_whose_shared_kv_is_away_fails_as_the_hosts_and_the_plugin_stays_enabled() {
    use chela_plugin::capability::kv::KvHome;
    use chela_plugin::channel::{ChannelError, ChannelRuntime};
    use chela_plugin::PluginStatus;
    const BOT: &str = "5:KV-bot";
    let mut db = chela_fakes::postgres::Cluster::start();
    let url = db.url();
    let database = tokio::task::spawn_blocking(move || chela_database::Database::connect(&url).unwrap()).await.unwrap();
    let telegram = chela_fakes::telegram::TelegramFake::start().await;
    telegram.add_bot(BOT, 5, "kv_bot");
    // Calls outlast the adapter's 1 s long poll; faults disable it after 3 in a row.
    let limits = Limits { call_timeout: Duration::from_secs(10), memory_bytes: 128 << 20, ..quick() };
    let w = World::new(&["channel_telegram"], limits).await;
    w.plugins.keep_kv(KvHome::Shared(database));
    let cfg = w.config(&format!(
        "{{channels: {{telegram: {{accounts: {{bot: {{botToken: '{BOT}', apiRoot: '{}'}}}}}}}}}}",
        telegram.api_root()
    ));
    let vars = |_: &str| None;
    let plugin = w.plugins.get("channel_telegram").unwrap();
    let ch = ChannelRuntime::start(&w.plugins, plugin, &cfg, &w.env, &vars).await.expect("starts");
    telegram.user_message(BOT, None, (7, "Ann"), "hello", serde_json::json!({}));
    let mut events = Vec::new();
    while events.is_empty() {
        events = ch.poll("bot").await.expect("polls");
    }
    // The next poll confirms the batch: the offset is in the database, not the state dir.
    ch.poll("bot").await.expect("polls");
    let offset = telegram.poll_offsets(BOT).last().copied().unwrap_or(0);
    assert!(offset > 0, "{:?}", telegram.poll_offsets(BOT));
    let stored = db.psql("select convert_from(value, 'UTF8') from chela_kv where scope = 'channel_telegram/account-bot' and key = 'offset'");
    assert_eq!(stored, offset.to_string());
    assert!(!w.path("state/plugins/kv").exists(), "kv state written to the state dir");

    db.stop();
    for _ in 0..=limits.max_consecutive_failures {
        let e = ch.poll("bot").await.expect_err("the offset cannot be read");
        assert!(matches!(&e, ChannelError::Call(CallError::HostUnavailable { .. })), "{e}");
        assert!(e.to_string().contains("key-value state cannot be read"), "{e}");
    }
    assert_eq!(ch.plugin.health.status(), PluginStatus::Ready, "the database's outage held against the plugin");
    let polls = telegram.polls(BOT);
    db.resume();
    ch.poll("bot").await.expect("polls again once the database is back");
    assert_eq!(telegram.poll_offsets(BOT)[polls..].first(), Some(&offset), "went on from the stored offset");
}
