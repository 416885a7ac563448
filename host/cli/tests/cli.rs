//! Black-box tests of the `chela` binary: real files in a temp dir, the real
//! process, exit codes and output as a user sees them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox { dir: tempfile::tempdir().expect("temp dir") }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Runs chela with HOME and the state dir inside the sandbox, no stdin.
    fn chela(&self, config: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_chela"))
            .arg("--config")
            .arg(config)
            .args(args)
            .env("HOME", self.dir.path())
            .env("CHELA_STATE_DIR", self.path("state"))
            .env_remove("CHELA_CONFIG_PATH")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("chela runs")
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", text(o)))
}

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
}

#[test]
fn example_config_is_valid() {
    let s = Sandbox::new();
    let out = s.chela(&repo("examples/multi-agent.json5"), &["config", "validate"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("valid"));
}

#[test]
fn validate_reports_every_problem_with_location() {
    let s = Sandbox::new();
    let cfg = s.write(
        "c.json5",
        r#"{
  agents: {
    list: [
      { id: "work", worspace: "/w" },
      { id: "home", default: 3 },
    ],
  },
  bindings: [
    { agentId: "wrok", match: { channel: "slack" } },
  ],
}"#,
    );
    let out = s.chela(&cfg, &["config", "validate"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("c.json5:4:21: error at `agents.list[0].worspace`: unknown key `worspace`"), "{t}");
    assert!(t.contains("did you mean `workspace`?"), "{t}");
    assert!(t.contains("c.json5:5:30: error at `agents.list[1].default`"), "{t}");

    // Fix the schema errors: now the semantic one (unknown agent) shows.
    let cfg = s.write(
        "d.json5",
        "{agents: {list: [{id: 'work'}, {id: 'home'}]},\n bindings: [{agentId: 'wrok', match: {channel: 'slack'}}]}",
    );
    let out = s.chela(&cfg, &["config", "validate", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["valid"], false);
    assert_eq!(v["diagnostics"][0]["path"], "bindings[0].agentId");
    assert_eq!(v["diagnostics"][0]["help"], "did you mean `work`?");
}

#[test]
fn malformed_json5_is_a_positioned_error_not_a_panic() {
    let s = Sandbox::new();
    for (name, body) in [("a", "{ agents: { list: [ { id: 'x' } "), ("b", "{ a: 'x\n' }"), ("c", "\u{0}\u{1}garbage")] {
        let cfg = s.write(&format!("{name}.json5"), body);
        let out = s.chela(&cfg, &["config", "validate"]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out));
        assert!(text(&out).contains("invalid JSON5"), "{name}: {}", text(&out));
        assert!(!text(&out).contains("panicked"), "{name}: {}", text(&out));
    }
}

#[test]
fn route_explains_the_peer_binding_winning_over_an_earlier_account_binding() {
    let s = Sandbox::new();
    let out = s.chela(
        &repo("examples/multi-agent.json5"),
        &["route", "--channel", "whatsapp", "--account", "biz", "--peer", "direct:+15550001111"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("agent:   personal  (matched by binding.peer)"), "{t}");
    assert!(t.contains("bindings[2] MATCHED"), "{t}");
    // The account-wide rule listed first also matches, but is less specific.
    let shadow = t.split("also matching, but less specific").nth(1).expect("shadowed section");
    assert!(shadow.contains("binding.account") && shadow.contains("bindings[0]"), "{t}");

    let out = s.chela(
        &repo("examples/multi-agent.json5"),
        &["route", "--channel", "whatsapp", "--account", "biz", "--peer", "direct:+15550009999", "--json"],
    );
    let v = json(&out);
    assert_eq!(v["agentId"], "work");
    assert_eq!(v["matchedBy"], "binding.account");
    assert_eq!(v["binding"]["index"], 0);
}

/// Runs every `stride`th vector of a conformance file through `chela route
/// --input --json` (the suite runs them all in-process); `check` sees each
/// vector with the process output. Returns the failures.
fn route_cli_failures(file: &str, stride: usize, check: impl Fn(&Value, &Output) -> Option<String>) -> Vec<String> {
    let s = Sandbox::new();
    let path = repo(&format!("tests/conformance/{file}"));
    let vectors: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(!vectors.is_empty(), "{file} has no vectors");
    let mut failures = Vec::new();
    for (i, v) in vectors.iter().enumerate().step_by(stride) {
        let cfg = s.write(&format!("v{i}.json"), &v["config"].to_string());
        let out = s.chela(&cfg, &["route", "--input", &v["input"].to_string(), "--json"]);
        let got = json(&out);
        let expect = &v["expect"];
        let ok = match expect.get("error") {
            Some(e) => got["error"]["code"] == e["code"] && out.status.code() == Some(1),
            None => expect.as_object().unwrap().iter().all(|(k, want)| &got[k] == want) && out.status.success(),
        };
        if !ok {
            failures.push(format!("{}: expect {expect} got {got}", v["name"]));
        }
        failures.extend(check(v, &out).map(|why| format!("{}: {why}", v["name"])));
    }
    failures
}

#[test]
fn route_cli_agrees_with_the_conformance_vectors() {
    let failures = route_cli_failures("route-vectors.json", 1, |_, _| None);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Configs OpenClaw routes although they are broken (entries without `id`,
/// bindings without `agentId`, peers with an empty id): `route` answers as
/// OpenClaw's routing does and names each problem as a warning.
#[test]
fn route_cli_routes_broken_configs_as_openclaw_and_warns() {
    let failures = route_cli_failures("route-broken-configs.json", 4, |v, out| {
        let cfg = &v["config"];
        let blank = |x: &Value| x.as_str().is_none_or(|s| s.trim().is_empty());
        let entries = cfg["agents"]["list"].as_array().cloned().unwrap_or_default();
        let bindings = cfg["bindings"].as_array().cloned().unwrap_or_default();
        let expected = [
            (entries.iter().any(|e| blank(&e["id"])), "routing treats it as agent `main`"),
            (bindings.iter().any(|b| blank(&b["agentId"])), "to the default agent"),
            (
                bindings.iter().any(|b| b["match"]["peer"].is_object() && blank(&b["match"]["peer"]["id"])),
                "peer id is empty",
            ),
        ];
        let stderr = String::from_utf8_lossy(&out.stderr);
        let missing: Vec<&str> =
            expected.iter().filter(|(has, w)| *has && !stderr.contains(w)).map(|(_, w)| *w).collect();
        (!missing.is_empty()).then(|| format!("warnings missing {missing:?} in: {stderr}"))
    });
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn route_works_on_a_semantically_invalid_config() {
    let s = Sandbox::new();
    let cfg = s.write(
        "c.json5",
        "{agents: {list: [{id: 'a'}, {id: 'b'}]}, bindings: [{agentId: 'ghost', match: {channel: 'slack'}}]}",
    );
    let out = s.chela(&cfg, &["route", "--channel", "slack", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let t = String::from_utf8_lossy(&out.stderr);
    assert!(t.contains("warning") && t.contains("ghost"), "{t}");
    assert_eq!(json(&out)["error"]["code"], "AGENT_SELECTION_REQUIRED");
}

/// A binding to an agent the roster does not know: `config validate`
/// refuses it with the very words the runtime's routing answers a message
/// it matches with, and `chela send` cannot run that agent either.
#[test]
fn validate_refuses_an_unknown_binding_agent_as_the_runtime_would() {
    let s = Sandbox::new();
    let cfg = s.write(
        "c.json5",
        "{agents: {list: [{id: 'work', default: true}]}, bindings: [{agentId: 'ghost', match: {channel: 'telegram'}}]}",
    );
    let routed = s.chela(&cfg, &["route", "--channel", "telegram", "--peer", "direct:1", "--json"]);
    let runtime_says = json(&routed)["error"]["message"].as_str().expect("routing refuses").to_string();
    let validated = s.chela(&cfg, &["config", "validate"]);
    assert_eq!(validated.status.code(), Some(1), "{}", text(&validated));
    let line = text(&validated).lines().find(|l| l.contains("bindings[0].agentId")).unwrap_or_default().to_string();
    assert!(line.ends_with(&runtime_says), "validate: {line}\nruntime: {runtime_says}");
    let sent = s.chela(&cfg, &["send", "--agent", "ghost", "hi"]);
    assert!(!sent.status.success() && text(&sent).contains("unknown agent `ghost`"), "{}", text(&sent));
}

#[test]
fn agents_add_bind_unbind_delete_round_trip() {
    let s = Sandbox::new();
    let cfg = s.write("chela.json5", "// my gateway\n{\n  agents: {\n    list: [\n      { id: \"main\", default: true }, // keep me\n    ],\n  },\n}\n");
    let ws = s.path("ws-ops");
    let out = s.chela(
        &cfg,
        &["agents", "add", "Ops Team", "--workspace", ws.to_str().unwrap(), "--bind", "telegram", "--json"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json(&out)["agentId"], "ops-team");
    let body = std::fs::read_to_string(&cfg).unwrap();
    assert!(body.contains("// my gateway") && body.contains("// keep me"), "comments kept:\n{body}");
    assert!(ws.join("SOUL.md").exists() && ws.join("AGENTS.md").exists() && ws.join("USER.md").exists());
    assert!(s.path("chela.json5.bak").exists());

    // main is reserved; a duplicate is refused; neither touches the file.
    let before = std::fs::read_to_string(&cfg).unwrap();
    assert!(!s.chela(&cfg, &["agents", "add", "main"]).status.success());
    assert!(!s.chela(&cfg, &["agents", "add", "ops team"]).status.success());
    assert_eq!(before, std::fs::read_to_string(&cfg).unwrap());

    // Binding an account upgrades the channel-wide binding in place.
    let out = s.chela(&cfg, &["agents", "bind", "--agent", "ops-team", "--bind", "telegram:alerts"]);
    assert!(out.status.success(), "{}", text(&out));
    let list = json(&s.chela(&cfg, &["agents", "list", "--bindings", "--json"]));
    let ops = list["agents"].as_array().unwrap().iter().find(|a| a["id"] == "ops-team").unwrap().clone();
    assert_eq!(ops["bindingCount"], 1);
    assert!(ops["bindings"][0]["text"].as_str().unwrap().contains("alerts"));
    let routed = json(&s.chela(&cfg, &["route", "--channel", "telegram", "--account", "alerts", "--json"]));
    assert_eq!(routed["agentId"], "ops-team");

    // Delete needs --force without a terminal, and then moves dirs to the trash.
    let out = s.chela(&cfg, &["agents", "delete", "ops-team"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--force"));
    let out = s.chela(&cfg, &["agents", "delete", "ops-team", "--force", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v = json(&out);
    assert_eq!(v["removedBindings"], 1);
    assert!(!ws.exists(), "workspace moved to the trash");
    assert!(s.path("state/trash").read_dir().unwrap().next().is_some());
    let list = json(&s.chela(&cfg, &["agents", "list", "--json"]));
    assert_eq!(list["agents"].as_array().unwrap().len(), 1);
    assert!(std::fs::read_to_string(&cfg).unwrap().contains("// keep me"));
}

#[test]
fn tools_shows_the_stage_that_removed_a_tool() {
    let s = Sandbox::new();
    let cfg = s.write("c.json5", "{agents: {list: [{id: 'a'}, {id: 'b', tools: {deny: ['bash']}}]}}");
    let v = json(&s.chela(&cfg, &["tools", "--agent", "b", "--json"]));
    let exec = v["tools"].as_array().unwrap().iter().find(|t| t["name"] == "exec").unwrap().clone();
    assert_eq!(exec["allowed"], false);
    assert_eq!(exec["removedBy"], "agents.list[1].tools.allow/deny");
    let v = json(&s.chela(&cfg, &["tools", "--agent", "a", "--json"]));
    assert!(v["tools"].as_array().unwrap().iter().any(|t| t["name"] == "exec" && t["allowed"] == true));
    assert!(!s.chela(&cfg, &["tools", "--agent", "nobody"]).status.success());
}

#[test]
fn huge_configs_load_or_fail_clearly() {
    let s = Sandbox::new();
    // 100k bindings (about 9 MB): loads, validates and routes.
    let mut body = String::from("{agents: {list: [{id: 'main'}, {id: 'x'}]}, bindings: [\n");
    for i in 0..100_000 {
        body.push_str(&format!(
            "{{agentId: 'x', match: {{channel: 'telegram', peer: {{kind: 'direct', id: 'u{i}'}}}}}},\n"
        ));
    }
    body.push_str("]}");
    let cfg = s.write("big.json5", &body);
    let v = json(&s.chela(&cfg, &["route", "--channel", "telegram", "--peer", "direct:u99999", "--json"]));
    assert_eq!(v["agentId"], "x");
    assert_eq!(v["binding"]["index"], 99_999);

    // Over the size limit: a clear error, not an attempt to parse.
    let huge = s.path("huge.json5");
    let f = std::fs::File::create(&huge).unwrap();
    f.set_len(65 * 1024 * 1024).unwrap();
    let out = s.chela(&huge, &["config", "validate"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("limit"), "{}", text(&out));
}

fn guest(name: &str) -> PathBuf {
    let p = repo(&format!("target/wasm32-wasip2/release/{name}.wasm"));
    assert!(p.exists(), "{} is missing: run `cargo xtask build-plugins` first", p.display());
    p
}

#[test]
fn plugins_inspect_list_and_tools_explain_availability() {
    let s = Sandbox::new();
    let dir = s.path("state/plugins");
    std::fs::create_dir_all(&dir).unwrap();
    for n in ["tool_echo", "tool_write", "fixture_runner"] {
        std::fs::copy(guest(n), dir.join(format!("{n}.wasm"))).unwrap();
    }
    std::fs::write(dir.join("broken.wasm"), "not wasm").unwrap();
    let cfg = s.write(
        "c.json5",
        "{agents: {list: [{id: 'main'}, {id: 'locked', tools: {deny: ['group:fs', 'echo', 'exec']}}]}}",
    );

    let v = json(&s.chela(&cfg, &["plugins", "inspect", guest("fixture_runner").to_str().unwrap(), "--json"]));
    assert_eq!(v["tool"]["name"], "runner");
    assert!(v["manifest"]["imports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i[0] == "chela:plugin/process@0.1.0" && i[1] == "process"));

    let out = s.chela(&cfg, &["plugins", "list", "--json"]);
    assert_eq!(out.status.code(), Some(1), "a failed plugin makes list exit 1");
    let v = json(&out);
    let by_id = |id: &str| v["plugins"].as_array().unwrap().iter().find(|p| p["id"] == id).cloned().unwrap();
    assert_eq!(by_id("tool_echo")["status"], "ready");
    assert_eq!(by_id("broken")["status"], "failed");
    assert!(by_id("broken")["error"].as_str().unwrap().contains("not a WebAssembly component"));

    let v = json(&s.chela(&cfg, &["tools", "--agent", "main", "--json"]));
    let linked: Vec<&str> =
        v["plugins"]["linked"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(linked, ["runner", "echo", "write"], "main may exec, so the plugin importing `process` is linked");

    let v = json(&s.chela(&cfg, &["tools", "--agent", "locked", "--json"]));
    assert!(v["plugins"]["linked"].as_array().unwrap().is_empty(), "{v}");
    let reasons: Vec<String> = v["plugins"]["unavailable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| format!("{}: {}", u["tool"], u["reason"]))
        .collect();
    assert!(reasons.iter().any(|r| r.starts_with("\"echo\": \"denied by agents.list[1]")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.starts_with("\"write\": \"denied by agents.list[1]")), "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("\"runner\": \"needs capability `process`") && r.contains("does not hold it")),
        "{reasons:?}"
    );
}

#[test]
fn pairing_list_and_approve_work_on_the_gateways_files() {
    let s = Sandbox::new();
    let cfg = s.write("c.json5", "{}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    s.write(
        "state/credentials/telegram-pairing.json",
        &format!(
            r#"{{"version": 1, "requests": [
                {{"id": "111", "code": "ABCD2345", "accountId": "default", "createdAt": {now}, "lastSeenAt": {now}, "name": "Ada"}},
                {{"id": "222", "code": "WXYZ6789", "accountId": "alerts", "createdAt": {old}, "lastSeenAt": {old}}}]}}"#,
            old = now - 2 * 3600 * 1000
        ),
    );
    let v = json(&s.chela(&cfg, &["pairing", "list", "telegram", "--json"]));
    let codes: Vec<&str> = v["requests"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["ABCD2345"], "expired requests are not listed");
    let out = s.chela(&cfg, &["pairing", "approve", "telegram", "abcd2345", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json(&out)["approved"]["id"], "111");
    let allow = std::fs::read_to_string(s.path("state/credentials/telegram-allowFrom.json")).unwrap();
    assert!(allow.contains("\"111\""), "{allow}");
    let out = s.chela(&cfg, &["pairing", "approve", "telegram", "WXYZ6789"]);
    assert_eq!(out.status.code(), Some(1), "a runtime error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no pending pairing request with code `WXYZ6789`"));
}

#[test]
fn validate_warns_about_unconfined_exec_and_an_ignored_setup_command() {
    let s = Sandbox::new();
    let cfg = s.write(
        "c.json5",
        "{ tools: { exec: { host: 'unconfined' } }, agents: { defaults: { sandbox: { docker: { setupCommand: 'apt-get install x' } } } } }",
    );
    let out = s.chela(&cfg, &["config", "validate"]);
    let t = text(&out);
    assert!(out.status.success(), "warnings do not fail validation: {t}");
    assert!(t.contains("tools.exec.host") && t.contains("unconfined"), "{t}");
    assert!(t.contains("setupCommand") && t.contains("ignored"), "{t}");
}

/// `plugins precompile` fills the compile cache (a second run finds every
/// plugin there); with `--ship` the compilations go beside the plugins,
/// where a gateway with a fresh state dir (a container image) finds them.
#[test]
fn plugins_precompile_fills_the_cache_and_ships_compiled_code_beside_the_plugins() {
    let s = Sandbox::new();
    let dir = s.path("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    for n in ["tool_echo", "channel_telegram"] {
        std::fs::copy(guest(n), dir.join(format!("{n}.wasm"))).unwrap();
    }
    let cfg = s.write("c.json5", &format!("{{plugins: {{dirs: ['{}']}}}}", dir.display()));
    let outcomes = |o: &Output| -> Vec<(String, String)> {
        assert!(o.status.success(), "{}", text(o));
        let v = json(o);
        let mut all: Vec<(String, String)> = v["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["id"].as_str().unwrap().to_string(), p["cache"].as_str().unwrap().to_string()))
            .collect();
        all.sort();
        all
    };
    let pair = |id: &str, c: &str| (id.to_string(), c.to_string());
    let first = outcomes(&s.chela(&cfg, &["plugins", "precompile", "--json"]));
    assert_eq!(first, [pair("channel_telegram", "miss"), pair("tool_echo", "miss")]);
    let again = outcomes(&s.chela(&cfg, &["plugins", "precompile", "--ship", "--json"]));
    assert_eq!(again, [pair("channel_telegram", "hit"), pair("tool_echo", "hit")]);
    let shipped: Vec<_> = std::fs::read_dir(dir.join(".cwasm")).unwrap().flatten().collect();
    assert_eq!(shipped.len(), 2, "{shipped:?}");
    // A fresh state dir: nothing in its cache, the shipped code is used.
    std::fs::remove_dir_all(s.path("state")).unwrap();
    let fresh = outcomes(&s.chela(&cfg, &["plugins", "precompile", "--json"]));
    assert_eq!(fresh, [pair("channel_telegram", "hit"), pair("tool_echo", "hit")]);
    assert!(
        !s.path("state/cache/plugins").exists()
            || std::fs::read_dir(s.path("state/cache/plugins")).unwrap().next().is_none()
    );
}

/// An OpenClaw config with settings chela does not implement: it loads, each
/// setting is one warning under `config validate` (grouped on one line for
/// other commands), `--strict` refuses them, and a typo is still an error.
#[test]
fn openclaw_settings_chela_ignores_load_with_warnings_and_fail_strict() {
    let s = Sandbox::new();
    let cfg = s.write(
        "openclaw.json",
        "{ agents: { defaults: { compaction: { postIndexSync: 'async' }, verboseDefault: 'on' } }, telemetry: {} }",
    );
    let out = s.chela(&cfg, &["config", "validate", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = json(&out);
    let ignored: Vec<&str> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["unimplemented"] == true)
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        ignored,
        ["agents.defaults.compaction.postIndexSync", "agents.defaults.verboseDefault", "telemetry"],
        "{v}"
    );
    let strict = s.chela(&cfg, &["config", "validate", "--strict"]);
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict));
    assert!(text(&strict).contains("3 error(s)"), "{}", text(&strict));
    let listed = s.chela(&cfg, &["agents", "list"]);
    assert!(listed.status.success(), "{}", text(&listed));
    let grouped: Vec<String> =
        text(&listed).lines().filter(|l| l.contains("chela does not implement")).map(String::from).collect();
    assert_eq!(grouped.len(), 1, "one grouped warning: {grouped:?}");
    assert!(grouped[0].contains("agents.defaults.verboseDefault"), "{grouped:?}");
    let typo = s.write("typo.json", "{ agents: { defaults: { humanDelai: { mode: 'off' } } } }");
    let out = s.chela(&typo, &["config", "validate"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("did you mean `humanDelay`?"), "{}", text(&out));
}

/// `doctor` on a shared database it cannot reach: an error naming the URL
/// (password masked), and a warning with its fix that the URL would not
/// check the server's certificate.
#[test]
fn doctor_names_an_unreachable_database_and_an_unverified_connection() {
    let s = Sandbox::new();
    let cfg = s.write("chela.json5", r#"{ storage: { url: "postgres://chela:hunter2@db.invalid:5432/chela" } }"#);
    let out = s.chela(&cfg, &["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!text(&out).contains("hunter2"), "the password shown: {}", text(&out));
    let report = json(&out);
    let database: Vec<&serde_json::Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["check"] == "database").collect();
    let error = database.iter().find(|f| f["level"] == "error").expect("an error finding");
    assert!(error["message"].as_str().unwrap().contains("postgres://chela:***@db.invalid:5432/chela"), "{report}");
    let warn = database.iter().find(|f| f["level"] == "warn").expect("a warning");
    assert!(warn["message"].as_str().unwrap().contains("do not check the server's certificate"), "{report}");
    assert!(warn["fix"].as_str().unwrap().contains("sslmode=verify-full"), "{report}");
}

/// The seed article's config: `doctor` reports its legacy forms and writes
/// nothing; `doctor --fix` rewrites them in place with the comments kept,
/// and the result validates and routes every seed binding as it meant.
#[test]
fn doctor_fix_rewrites_the_seed_articles_config_keeping_comments_and_routing() {
    use std::os::unix::fs::PermissionsExt;
    let s = Sandbox::new();
    let seed = format!(
        "// The seed article's config\n{{\n  agents: {{\n    list: [\n      {{ agentId: \"family\", workspace: \"{ws}\" }}, // the family bot\n      {{ agentId: \"work\", default: true }},\n    ],\n    // which group goes where\n    bindings: [\n      {{ agentId: \"family\", channel: \"whatsapp\", groupId: \"120363@g.us\" }},\n      {{ agentId: \"work\", channel: \"slack\", accountId: \"acme\", peerId: \"U1\" }},\n    ],\n  }},\n}}\n",
        ws = s.path("ws-family").display()
    );
    let cfg = s.write("chela.json5", &seed);
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = s.chela(&cfg, &["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["ok"], false);
    let legacy =
        report["findings"].as_array().unwrap().iter().find(|f| f["message"].as_str().unwrap().contains("legacy form"));
    assert_eq!(legacy.map(|f| f["fix"].as_str().unwrap().contains("--fix")), Some(true), "{report}");
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), seed, "doctor without --fix writes nothing");

    let out = s.chela(&cfg, &["doctor", "--fix"]);
    assert!(out.status.success(), "{}", text(&out));
    let fixed = std::fs::read_to_string(&cfg).unwrap();
    for kept in ["// The seed article's config", "// the family bot", "// which group goes where"] {
        assert!(fixed.contains(kept), "comment {kept:?} lost:\n{fixed}");
    }
    assert_eq!(std::fs::read_to_string(s.path("chela.json5.bak")).unwrap(), seed);
    assert_eq!(std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777, 0o600, "the config holds secrets");
    let validated = s.chela(&cfg, &["config", "validate", "--json"]);
    assert_eq!(json(&validated)["valid"], true, "{}", text(&validated));
    assert_eq!(json(&validated)["warnings"], 0, "no legacy form left: {}", text(&validated));
    for (args, agent) in [
        (["--channel", "whatsapp", "--peer", "group:120363@g.us", "--account", "default"], "family"),
        (["--channel", "slack", "--peer", "direct:U1", "--account", "acme"], "work"),
    ] {
        let routed = json(&s.chela(&cfg, &[&["route", "--json"][..], &args[..]].concat()));
        assert_eq!(
            (routed["agentId"].as_str(), routed["matchedBy"].as_str()),
            (Some(agent), Some("binding.peer")),
            "{routed}"
        );
    }
    assert_eq!(json(&s.chela(&cfg, &["doctor", "--json"]))["ok"], true);
}

/// Where moving the seed bindings would decide their precedence among
/// existing ones, `doctor --fix` writes nothing and says why.
#[test]
fn doctor_fix_writes_nothing_when_the_fix_would_decide_routing() {
    let s = Sandbox::new();
    let text_before = "{\n  agents: { list: [{ id: \"a\" }], bindings: [{ agentId: \"a\", channel: \"slack\" }] },\n  bindings: [{ agentId: \"a\", match: { channel: \"telegram\" } }],\n}\n";
    let cfg = s.write("chela.json5", text_before);
    let out = s.chela(&cfg, &["doctor", "--fix"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not fixed: top-level `bindings` exist too"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), text_before);
    assert!(!s.path("chela.json5.bak").exists());
}

#[test]
fn usage_errors_exit_2_and_runtime_errors_exit_1() {
    let s = Sandbox::new();
    let cfg = s.write("c.json5", "{}");
    assert_eq!(s.chela(&cfg, &["route", "--no-such-flag"]).status.code(), Some(2));
    assert_eq!(s.chela(&cfg, &["pairing", "approve", "telegram", "ZZZZ2222"]).status.code(), Some(1));
}

/// Every file under `dir` with its bytes, sorted: a tree's fingerprint.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The state dir a real OpenClaw 2026.9.6 gateway left after two
/// conversations over its OpenAI endpoint (tests/fixtures/openclaw-state),
/// unpacked into `root/openclaw`, its workspaces under `root`; two approved
/// senders are added the way OpenClaw stores them.
fn openclaw_state(root: &Path) -> PathBuf {
    use std::io::Read;
    let src = repo("tests/fixtures/openclaw-state");
    let dst = root.join("openclaw");
    for rel in
        ["agents/main/agent/openclaw-agent.sqlite", "agents/work/agent/openclaw-agent.sqlite", "state/openclaw.sqlite"]
    {
        let gz = std::fs::File::open(src.join(format!("{rel}.gz"))).unwrap();
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(gz).read_to_end(&mut bytes).unwrap();
        std::fs::create_dir_all(dst.join(rel).parent().unwrap()).unwrap();
        std::fs::write(dst.join(rel), bytes).unwrap();
    }
    let config = std::fs::read_to_string(src.join("openclaw.json")).unwrap();
    std::fs::write(dst.join("openclaw.json"), config.replace("/tmp/ocrec/root", &root.display().to_string())).unwrap();
    for ws in ["ws-main", "ws-work"] {
        std::fs::create_dir_all(root.join(ws)).unwrap();
    }
    let db = rusqlite::Connection::open(dst.join("state/openclaw.sqlite")).unwrap();
    for (account, entry) in [("default", "111"), ("ops", "222")] {
        db.execute(
            "INSERT INTO channel_pairing_allow_entries (channel_key, account_id, entry, sort_order, updated_at) VALUES ('telegram', ?1, ?2, 0, 0)",
            [account, entry],
        )
        .unwrap();
    }
    db.execute(
        "INSERT INTO channel_pairing_requests (channel_key, account_id, request_id, code, created_at, last_seen_at) VALUES ('telegram', 'default', '333', 'ABCD2345', '2026-12-01T00:00:00Z', '2026-12-01T00:00:00Z')",
        [],
    )
    .unwrap();
    dst
}

/// `chela migrate openclaw` on a real OpenClaw state dir: config, both
/// agents' sessions (OpenAI-endpoint keys mapped to chela's) and approved
/// senders are carried, the source is untouched, a second run carries
/// nothing twice, an unreadable database is reported by path while the rest
/// is carried, and the migrated agent continues its conversation.
#[test]
fn migrate_openclaw_carries_a_real_state_dir_and_the_conversation_continues() {
    let s = Sandbox::new();
    let from = openclaw_state(s.dir.path());
    std::fs::create_dir_all(from.join("agents/broken/agent")).unwrap();
    std::fs::write(from.join("agents/broken/agent/openclaw-agent.sqlite"), "not a database").unwrap();
    // Rows a crafted database could hold: a transcript name that climbs out, another agent's key.
    let db = rusqlite::Connection::open(from.join("agents/work/agent/openclaw-agent.sqlite")).unwrap();
    for (key, id) in [("agent:work:direct:evil", "../../../escaped"), ("agent:main:main", "abc")] {
        db.execute(
            "INSERT INTO session_nodes (session_key, current_session_id, entry_json, updated_at) VALUES (?1, ?2, '{}', 0)",
            [key, id],
        )
        .unwrap();
    }
    drop(db);
    // OpenClaw's global .env (provider keys), as a user would have it.
    std::fs::write(from.join(".env"), "OPENROUTER_API_KEY=sk-or-test\nOPENCLAW_STATE_DIR=/srv/oc\n").unwrap();
    let before = tree(&from);
    let cfg = s.path("state/chela.json");
    let from_arg = from.display().to_string();
    let migrate =
        |extra: &[&str]| s.chela(&cfg, &[&["migrate", "openclaw", "--from", &from_arg, "--json"][..], extra].concat());

    let dry = migrate(&["--dry-run"]);
    assert_eq!(json(&dry)["dryRun"], true, "{}", text(&dry));
    assert!(!cfg.exists() && !s.path("state/agents").exists(), "a dry run writes nothing");

    let out = migrate(&[]);
    assert_eq!(out.status.code(), Some(1), "the broken database fails the run: {}", text(&out));
    let report = json(&out);
    let items = report["items"].as_array().unwrap();
    let outcome = |what: &str| {
        items
            .iter()
            .find(|i| i["what"].as_str().unwrap().contains(what))
            .map(|i| i["outcome"].as_str().unwrap().to_string())
    };
    assert_eq!(outcome("session agent:main:openai-user:alice").as_deref(), Some("carried"), "{report}");
    assert_eq!(outcome("session agent:work:openai-user:bob").as_deref(), Some("carried"), "{report}");
    assert_eq!(outcome("config").as_deref(), Some("carried"), "{report}");
    assert_eq!(outcome("approved senders of telegram/default").as_deref(), Some("carried"), "{report}");
    assert_eq!(outcome("session agent:work:direct:evil").as_deref(), Some("skipped"), "{report}");
    assert_eq!(outcome("session agent:main:main").as_deref(), Some("skipped"), "{report}");
    assert_eq!(outcome(".env (2 variable(s): OPENROUTER_API_KEY, OPENCLAW_STATE_DIR)").as_deref(), Some("carried"));
    assert_eq!(outcome(".env sets OPENCLAW_STATE_DIR").as_deref(), Some("skipped"), "{report}");
    assert_eq!(outcome("1 pending pairing request(s) of telegram/default").as_deref(), Some("skipped"), "{report}");
    assert!(!report.to_string().contains("sk-or-test"), "values are never reported");
    assert_eq!(
        std::fs::read_to_string(s.path("state/.env")).unwrap(),
        std::fs::read_to_string(from.join(".env")).unwrap()
    );
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(s.path("state/.env")).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert!(!s.path("escaped.jsonl").exists() && !s.dir.path().join("../escaped.jsonl").exists());
    let broken = items.iter().find(|i| i["outcome"] == "failed").expect("the broken database is reported");
    assert!(broken["what"].as_str().unwrap().contains("agents/broken/agent/openclaw-agent.sqlite"), "{broken}");
    assert_eq!(tree(&from), before, "the source dir is never modified");

    let again = json(&migrate(&[]));
    assert_eq!(again["carried"], 0, "nothing twice: {again}");
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("state/agents/work/sessions/sessions.json")).unwrap())
            .unwrap();
    assert_eq!(index.as_object().unwrap().keys().collect::<Vec<_>>(), ["agent:work:openai:direct:bob"]);
    assert!(std::fs::read_to_string(s.path("state/credentials/telegram-allowFrom.json")).unwrap().contains("\"111\""));
    assert!(std::fs::read_to_string(s.path("state/credentials/telegram-ops-allowFrom.json"))
        .unwrap()
        .contains("\"222\""));

    let shown = s.chela(&cfg, &["sessions", "show", "agent:work:openai:direct:bob"]);
    assert!(
        text(&shown).contains("user: hi work agent") && text(&shown).contains("user: second message to work"),
        "{}",
        text(&shown)
    );
    // The conversation goes on (on the offline model; the recorded fake is gone): its third message.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let migrated = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        migrated.replace("fake/gpt-rec", "offline/persona").replace("port: 18902", &format!("port: {port}")),
    )
    .unwrap();
    let sent = s.chela(&cfg, &["send", "--agent", "work", "--session", "agent:work:openai:direct:bob", "third"]);
    assert!(text(&sent).contains("(message 3 of this conversation)"), "{}", text(&sent));
}

/// `gateway --log-format json`: every line on stderr is a JSON object, the
/// start banner included (with the address as a field); no colour codes when
/// stderr is not a terminal.
#[test]
fn gateway_logs_are_pure_json_with_log_format_json() {
    use std::io::BufRead;
    let s = Sandbox::new();
    let cfg = s.write("c.json5", "{}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_chela"))
        .arg("--config")
        .arg(&cfg)
        .args(["--log-format", "json", "gateway", "--port", "0"])
        .env("HOME", s.dir.path())
        .env("CHELA_STATE_DIR", s.path("state"))
        .env_remove("CHELA_LOG")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("chela starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let banner = loop {
        let line =
            rx.recv_timeout(std::time::Duration::from_secs(60)).unwrap_or_else(|_| panic!("no banner in {seen:#?}"));
        assert!(!line.contains('\u{1b}'), "a colour code on a pipe: {line:?}");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        seen.push(line);
        if v["fields"]["message"].as_str().is_some_and(|m| m.contains("listening on http://")) {
            break v;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(banner["fields"]["addr"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")), "{banner}");
}

/// `config get|set|unset|file`: values by path, secrets never printed,
/// writes keep comments and refuse a change that breaks the config.
#[test]
fn config_get_set_unset_keep_comments_and_redact_secrets() {
    let s = Sandbox::new();
    let cfg = s.write("c.json5", "// mine\n{\n  channels: { telegram: { botToken: \"123:abc\" } }, // tg\n}\n");
    let got = s.chela(&cfg, &["config", "get", "channels.telegram", "--json"]);
    assert_eq!(json(&got), serde_json::json!({"botToken": "<redacted>"}), "{}", text(&got));
    assert!(!text(&got).contains("123:abc"));
    assert!(s.chela(&cfg, &["config", "set", "gateway.port", "19001"]).status.success());
    assert_eq!(json(&s.chela(&cfg, &["config", "get", "gateway.port", "--json"])), 19001);
    let written = std::fs::read_to_string(&cfg).unwrap();
    assert!(written.contains("// mine") && written.contains("} }, // tg\n"), "{written}");
    let refused = s.chela(&cfg, &["config", "set", "bindings", "[{agentId: 'ghost', match: {channel: 'x'}}]"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused).contains("not written") && !std::fs::read_to_string(&cfg).unwrap().contains("ghost"));
    assert!(s.chela(&cfg, &["config", "unset", "gateway.port"]).status.success());
    let unset = s.chela(&cfg, &["config", "get", "gateway.port"]);
    assert!(unset.status.code() == Some(1) && text(&unset).contains("the default applies"), "{}", text(&unset));
    assert!(text(&s.chela(&cfg, &["config", "get", "nope.x"])).contains("not a config path"));
    assert_eq!(json(&s.chela(&cfg, &["config", "file", "--json"]))["path"], cfg.display().to_string());
    assert_eq!(json(&s.chela(&cfg, &["config", "schema"]))["type"], "object");
}

/// Data commands answer in JSON with `--json`; `agent --message` runs on the
/// default agent without `--agent`; `completion` prints a script.
#[test]
fn bind_unbind_and_agent_turns_speak_json() {
    let s = Sandbox::new();
    let cfg = s.write("c.json5", "{ agents: { list: [{ id: 'main', default: true }, { id: 'ops' }] } }");
    let bound = json(&s.chela(&cfg, &["agents", "bind", "--agent", "ops", "--bind", "telegram:alerts", "--json"]));
    assert_eq!(bound, serde_json::json!({"agentId": "ops", "binds": [{"bind": "telegram:alerts", "result": "added"}]}));
    let again = json(&s.chela(&cfg, &["agents", "bind", "--agent", "ops", "--bind", "telegram:alerts", "--json"]));
    assert_eq!(again["binds"][0]["result"], "already");
    let unbound = json(&s.chela(&cfg, &["agents", "unbind", "--agent", "ops", "--all", "--json"]));
    assert_eq!((unbound["removed"].as_u64(), unbound["indexes"].clone()), (Some(1), serde_json::json!([0])));
    let turn = s.chela(&cfg, &["agent", "--message", "hello", "--json"]);
    assert_eq!(json(&turn)["agentId"], "main", "{}", text(&turn));
    let keyed = s.chela(&cfg, &["agent", "-m", "hi", "--session-key", "agent:ops:incident-42", "--json"]);
    assert_eq!(json(&keyed)["sessionKey"], "agent:ops:incident-42", "{}", text(&keyed));
    let clash = s.chela(&cfg, &["agent", "-m", "hi", "--agent", "main", "--session-key", "agent:ops:x"]);
    assert_eq!(clash.status.code(), Some(1), "{}", text(&clash));
    let script = s.chela(&cfg, &["completion", "bash"]);
    assert!(script.status.success() && text(&script).contains("_chela()"), "{}", text(&script));
}

/// `agents set-identity`: from the workspace's IDENTITY.md (placeholders
/// ignored, Creature as the theme), flags over the file, fields not given
/// kept, the config's comments kept; an avatar outside the workspace and a
/// workspace no agent has are refused with nothing written; the implicit
/// `main` of a config without agents gets an entry.
#[test]
fn agents_set_identity_reads_identity_md_and_writes_the_entry_keeping_comments() {
    let s = Sandbox::new();
    let ws = s.path("ws-ops");
    let cfg = s.write(
        "c.json5",
        &format!(
            "{{\n  // the roster\n  agents: {{ list: [\n    {{ id: \"work\", default: true, workspace: \"{}\" }},\n    \
             {{ id: \"ops\", workspace: \"{}\", identity: {{ avatar: \"https://example.com/ops.png\" }} }},\n  ] }},\n}}\n",
            s.path("ws-work").display(),
            ws.display()
        ),
    );
    s.write(
        "ws-ops/IDENTITY.md",
        "# IDENTITY.md - Who Am I?\n\n- **Name:** Ops Bot\n- **Creature:** a lobster\n- **Vibe:**\n  _(how do you come across? sharp? warm? chaotic? calm?)_\n- **Emoji:** _(your signature - pick one that feels right)_\n",
    );
    let out = s.chela(&cfg, &["agents", "set-identity", "--workspace", ws.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v = json(&out);
    assert_eq!(v["agentId"], "ops");
    assert_eq!(v["identity"]["name"], "Ops Bot");
    assert_eq!(v["identity"]["theme"], "a lobster", "Creature stands in for Theme");
    assert!(v["identity"].get("emoji").is_none(), "a placeholder is no emoji: {v}");
    assert_eq!(v["identity"]["avatar"], "https://example.com/ops.png", "fields not given stay");
    let written = std::fs::read_to_string(&cfg).unwrap();
    assert!(written.contains("// the roster"), "{written}");
    let got = s.chela(&cfg, &["config", "get", "agents.list[1].identity.name"]);
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "Ops Bot", "{}", text(&got));

    // Flags win over the file (with --from-identity the file is read too).
    let out =
        s.chela(&cfg, &["agents", "set-identity", "--agent", "ops", "--from-identity", "--emoji", "🦞", "--json"]);
    let v = json(&out);
    assert_eq!((v["identity"]["emoji"].as_str(), v["identity"]["name"].as_str()), (Some("🦞"), Some("Ops Bot")));

    // Refused, nothing written.
    let before = std::fs::read_to_string(&cfg).unwrap();
    let out = s.chela(&cfg, &["agents", "set-identity", "--agent", "ops", "--avatar", "../work/secret.png"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("inside the workspace"), "{}", text(&out));
    let out = s.chela(&cfg, &["agents", "set-identity", "--workspace", s.path("elsewhere").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("pass --agent"), "{}", text(&out));
    let out = s.chela(&cfg, &["agents", "set-identity", "--agent", "work"]);
    assert_eq!(out.status.code(), Some(1), "no IDENTITY.md in work's workspace: {}", text(&out));
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), before);

    // Single-agent mode: main gets an entry and stays the only agent.
    let solo = s.write("solo.json5", "{\n  // nothing yet\n}\n");
    let out = s.chela(&solo, &["agents", "set-identity", "--agent", "main", "--name", "Claw", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let list = json(&s.chela(&solo, &["agents", "list", "--json"]));
    assert_eq!(list["agents"].as_array().unwrap().len(), 1);
    assert_eq!(list["agents"][0]["id"], "main");
    assert_eq!(list["agents"][0]["name"], Value::Null);
    let got = s.chela(&solo, &["config", "get", "agents.entries.main.identity.name"]);
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "Claw");
}

/// On a terminal a config error shows its source line with the field
/// underlined (`script` gives chela a pseudo-terminal); piped, one plain
/// `file:line:column` line, as before.
#[test]
fn config_errors_on_a_terminal_show_the_source_line_with_a_caret() {
    let s = Sandbox::new();
    let cfg = s.write("c.json5", "{\n  agents: {\n    list: [{ id: \"a\", worspace: \"/w\" }],\n  },\n}\n");
    let cmd = format!("{} --config {} config validate", env!("CARGO_BIN_EXE_chela"), cfg.display());
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("HOME", s.dir.path())
        .env("CHELA_STATE_DIR", s.path("state"))
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("`script` (util-linux) runs");
    let shown = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(shown.contains(&format!("--> {}:3:23", cfg.display())), "{shown}");
    let source = shown.lines().find(|l| l.contains("list: [{ id: \"a\", worspace: \"/w\" }],")).expect(&shown);
    let caret = shown.lines().find(|l| l.contains("^^^^^^^^")).unwrap_or_else(|| panic!("no caret: {shown}"));
    assert_eq!(caret.find('^'), source.find("worspace"), "{shown}");
    assert!(shown.contains("help: did you mean `workspace`?"), "{shown}");
    assert!(!shown.contains('\u{1b}'), "no colour with NO_COLOR: {shown:?}");
    let piped = s.chela(&cfg, &["config", "validate"]);
    assert!(text(&piped).contains(&format!("{}:3:23: error at `agents.list[0].worspace`", cfg.display())));
    assert!(!text(&piped).contains("^^^"), "{}", text(&piped));
}

/// OpenClaw settings chela does not act on (`verboseDefault`,
/// `skipBootstrap`), and the parts of a section it reads only in part
/// (`cron.triggers`), warn like every other ignored setting, with what chela
/// does instead; the parts it reads (`messages.queue`, `ackReaction`,
/// `typingMode`, `heartbeat`) do not.
#[test]
fn ignored_openclaw_settings_say_what_chela_does_instead() {
    let s = Sandbox::new();
    let cfg = s.write(
        "c.json5",
        r#"{
  agents: { defaults: { typingMode: "instant", blockStreamingDefault: "on", heartbeat: { every: "30m" },
                        verboseDefault: "on", skipBootstrap: true } },
  messages: { queue: { mode: "steer" }, ackReaction: "👀", statusReactions: { enabled: true },
              responsePrefix: "auto", groupChat: { mentionPatterns: ["@bot"] } },
  cron: { enabled: true, triggers: { enabled: false } },
}"#,
    );
    let v = json(&s.chela(&cfg, &["config", "validate", "--json"]));
    assert_eq!(v["valid"], true, "{v:#}");
    let diagnostics = v["diagnostics"].as_array().unwrap().clone();
    let diag = |path: &str| {
        diagnostics.iter().find(|d| d["path"] == path).unwrap_or_else(|| panic!("no warning at {path}: {v:#}")).clone()
    };
    for (path, says) in [
        ("agents.defaults.verboseDefault", "/verbose off"),
        ("agents.defaults.skipBootstrap", "persona templates"),
        ("cron.triggers", "condition triggers"),
    ] {
        let d = diag(path);
        assert_eq!(d["severity"], "warning");
        assert_eq!(d["unimplemented"], true, "{d}");
        assert!(d["help"].as_str().is_some_and(|h| h.starts_with("instead: ") && h.contains(says)), "{d}");
    }
    for read in [
        "messages.groupChat",
        "messages.queue",
        "messages.ackReaction",
        "messages.statusReactions",
        "messages.responsePrefix",
        "agents.defaults.blockStreamingDefault",
        "agents.defaults.typingMode",
        "agents.defaults.heartbeat",
        "cron.enabled",
    ] {
        assert!(
            !diagnostics.iter().any(|d| d["path"].as_str().unwrap().starts_with(read)),
            "chela reads {read}: {v:#}"
        );
    }
    let strict = json(&s.chela(&cfg, &["config", "validate", "--strict", "--json"]));
    assert_eq!(strict["valid"], false);
    assert_eq!(strict["errors"], 3, "{strict:#}");
    // A wrong type is an error even in a setting chela ignores.
    let bad = s.write("bad.json5", r#"{ agents: { defaults: { typingMode: 5 } } }"#);
    assert_eq!(json(&s.chela(&bad, &["config", "validate", "--json"]))["valid"], false);
}

/// `$include` (OpenClaw's config splitting): one file replaces its object, a
/// list is deep-merged (arrays concatenated), siblings override; the split
/// config validates and routes; a problem in an included file names that
/// file and line; includes may not leave the config's directory; an edit
/// that would land under an include is refused with nothing written.
#[test]
fn a_config_split_with_include_loads_routes_and_refuses_edits_it_cannot_make() {
    let s = Sandbox::new();
    let cfg = s.write(
        "conf/openclaw.json",
        r#"{
  // the roster lives in its own file
  agents: { $include: "./agents.json5" },
  bindings: [
    { agentId: "work", match: { channel: "slack" } },
    { $include: "./more/ops-binding.json5" },
  ],
  broadcast: { $include: ["./b1.json5", "./b2.json5"], strategy: "sequential" },
}
"#,
    );
    s.write(
        "conf/agents.json5",
        &format!(
            "{{ list: [\n  {{ id: \"work\", default: true, workspace: \"{}\" }},\n  {{ id: \"ops\", workspace: \"{}\" }},\n] }}\n",
            s.path("w1").display(),
            s.path("w2").display()
        ),
    );
    s.write(
        "conf/more/ops-binding.json5",
        r#"{ agentId: "ops", match: { channel: "telegram", accountId: "alerts" } }"#,
    );
    s.write("conf/b1.json5", r#"{ "-1001": ["work"] }"#);
    s.write("conf/b2.json5", r#"{ "-1001": ["ops"], "-1002": ["ops"] }"#);
    let v = json(&s.chela(&cfg, &["config", "validate", "--json"]));
    assert_eq!(v["valid"], true, "{v:#}");
    let route = json(
        &s.chela(&cfg, &["route", "--channel", "telegram", "--account", "alerts", "--peer", "direct:42", "--json"]),
    );
    assert_eq!(route["agentId"], "ops", "{route:#}");
    let list = json(&s.chela(&cfg, &["agents", "list", "--bindings", "--json"]));
    assert_eq!(list["agents"].as_array().unwrap().len(), 2);
    let ops_binding = list["agents"][1]["bindings"][0]["text"].as_str().unwrap().to_string();
    assert!(ops_binding.contains("ops-binding.json5"), "{ops_binding}");
    let got = s.chela(&cfg, &["config", "get", "broadcast.strategy"]);
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "sequential", "{}", text(&got));

    // Refused edits leave every file as it was.
    let before = std::fs::read_to_string(&cfg).unwrap();
    let out = s.chela(&cfg, &["agents", "add", "Sales", "--workspace", s.path("w3").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("included file") && text(&out).contains("edit that file"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), before);

    // A problem inside an included file is reported there.
    let agents = std::fs::read_to_string(s.path("conf/agents.json5")).unwrap();
    s.write("conf/agents.json5", &agents.replace("{ id: \"ops\", workspace", "{ id: \"ops\", worspace"));
    let v = json(&s.chela(&cfg, &["config", "validate", "--json"]));
    assert_eq!(v["valid"], false, "{v:#}");
    let d = &v["diagnostics"][0];
    assert!(d["file"].as_str().unwrap().ends_with("agents.json5"), "{d}");
    assert_eq!((d["line"].as_u64(), d["path"].as_str()), (Some(3), Some("agents.list[1].worspace")), "{d}");
    s.write("conf/agents.json5", &agents);

    // Includes stay inside the config's directory.
    s.write("secret.json5", "{}");
    let escape = s.write("conf/escape.json5", r#"{ agents: { $include: "../secret.json5" } }"#);
    let out = s.chela(&escape, &["config", "validate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("outside the config's directory"), "{}", text(&out));
}

/// The variables chela reads come from the shell, then `<stateDir>/.env`,
/// then the config's `env.vars` (OpenClaw's layering): a token written as
/// `${CTL}` is found in either file; with neither, doctor names the variable.
#[test]
fn variables_come_from_the_state_dirs_dotenv_and_the_configs_env_vars() {
    let s = Sandbox::new();
    let cfg = s.write("c.json5", r#"{ gateway: { auth: { token: "${CHELA_TEST_CTL}" } } }"#);
    let token = |cfg: &Path| {
        let v = json(&s.chela(cfg, &["doctor", "--json"]));
        v["findings"].as_array().unwrap().iter().find(|f| f["check"] == "token").cloned().unwrap()
    };
    let none = token(&cfg);
    assert_eq!(none["level"], "error", "{none}");
    assert!(none["message"].as_str().unwrap().contains("CHELA_TEST_CTL is not set"), "{none}");
    s.write("state/.env", "# from OpenClaw\nCHELA_TEST_CTL=from-dotenv\n");
    assert_eq!(token(&cfg)["level"], "ok", "read from <stateDir>/.env");
    std::fs::remove_file(s.path("state/.env")).unwrap();
    let inline = s.write(
        "inline.json5",
        r#"{ env: { vars: { CHELA_TEST_CTL: "from-config" }, shellEnv: { enabled: true } }, gateway: { auth: { token: "${CHELA_TEST_CTL}" } } }"#,
    );
    assert_eq!(token(&inline)["level"], "ok", "read from env.vars");
    let v = json(&s.chela(&inline, &["config", "validate", "--json"]));
    let shell = v["diagnostics"].as_array().unwrap().iter().find(|d| d["path"] == "env.shellEnv").cloned();
    assert!(shell.is_some_and(|d| d["unimplemented"] == true), "shellEnv is ignored, with a warning: {v}");
}

/// Every command whose output is data takes `--json` (walked from `--help`,
/// so a new command without it fails here); `gateway` (a server) and
/// `completion` (a script) print no data. A few are run and parsed.
#[test]
fn every_data_command_takes_json_and_prints_json() {
    let s = Sandbox::new();
    let cfg = s.write("c.json5", r#"{ agents: { list: [{ id: "work", default: true }] } }"#);
    let help = |path: &[&str]| {
        let out = s.chela(&cfg, &[path, &["--help"]].concat());
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let subcommands = |text: &str| -> Vec<String> {
        let Some(list) = text.split("Commands:\n").nth(1) else { return Vec::new() };
        list.lines()
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .filter(|c| c != "help")
            .collect()
    };
    let mut leaves = Vec::new();
    let mut todo: Vec<Vec<String>> = subcommands(&help(&[])).into_iter().map(|c| vec![c]).collect();
    while let Some(path) = todo.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = help(&args);
        let children = subcommands(&text);
        if children.is_empty() {
            leaves.push((path.join(" "), text));
        } else {
            todo.extend(children.into_iter().map(|c| [path.clone(), vec![c]].concat()));
        }
    }
    assert!(leaves.len() >= 25, "walked {} commands", leaves.len());
    let without: Vec<&str> =
        leaves.iter().filter(|(_, h)| !h.contains("--json")).map(|(name, _)| name.as_str()).collect();
    let mut without = without;
    without.sort_unstable();
    assert_eq!(without, ["completion", "gateway"], "commands without --json");
    for args in [
        &["status", "--json"][..],
        &["channels", "status", "--json"],
        &["agents", "list", "--json"],
        &["config", "validate", "--json"],
        &["config", "file", "--json"],
        &["plugins", "list", "--json"],
        &["sessions", "list", "--json"],
        &["doctor", "--json"],
        &["route", "--channel", "telegram", "--peer", "direct:1", "--json"],
        &["tools", "--agent", "work", "--json"],
    ] {
        let out = s.chela(&cfg, args);
        json(&out);
    }
}

/// `chela cron add|list|rm` on the state dir's job store: a job is added
/// with OpenClaw's shape and listed beside the config's jobs and the
/// heartbeats; a job that names another agent's conversation is refused
/// (a job runs as its own agent only); a config job cannot be removed from
/// the CLI; `run` needs the gateway.
#[test]
fn cron_add_list_and_rm_keep_jobs_with_their_agent() {
    let s = Sandbox::new();
    let cfg = s.write(
        "c.json5",
        r#"{ agents: { list: [ { id: "home", default: true }, { id: "work" } ] },
             cron: { jobs: [ { id: "nightly", agentId: "home", schedule: { kind: "cron", expr: "0 3 * * *", tz: "UTC" },
                               payload: { kind: "systemEvent", text: "tidy up" } } ] } }"#,
    );
    let add =
        s.chela(&cfg, &["cron", "add", "--id", "brief", "--agent", "work", "--every", "1h", "--message", "the brief"]);
    assert!(add.status.success(), "{}", text(&add));
    let list = json(&s.chela(&cfg, &["cron", "list", "--json"]));
    let ids: Vec<&str> = list["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["nightly", "brief", "heartbeat-home"], "{list:#}");
    let brief = &list["jobs"][1];
    assert_eq!((brief["agentId"].as_str(), brief["sessionTarget"].as_str()), (Some("work"), Some("isolated")));
    assert_eq!(brief["schedule"]["everyMs"], 3_600_000);
    let human = text(&s.chela(&cfg, &["cron", "list"]));
    assert!(
        human.contains("cron 0 3 * * * (UTC)") && human.contains("every 1h") && human.contains("every 30m"),
        "{human}"
    );

    // Another agent's conversation: refused, naming the field and the owner.
    let foreign = s.chela(
        &cfg,
        &[
            "cron",
            "add",
            "--agent",
            "work",
            "--every",
            "1h",
            "--message",
            "peek",
            "--session",
            "current",
            "--session-key",
            "agent:home:webhook:direct:alice",
        ],
    );
    assert!(!foreign.status.success());
    let err = text(&foreign);
    assert!(err.contains("sessionKey") && err.contains("belongs to agent `home`"), "{err}");
    let bad = s.chela(&cfg, &["cron", "add", "--cron", "61 * * * *", "--message", "x"]);
    assert!(!bad.status.success() && text(&bad).contains("schedule.expr"), "{}", text(&bad));
    let unpaced =
        s.chela(&cfg, &["cron", "add", "--every", "1h", "--pacing-min", "2h", "--pacing-max", "1h", "--message", "x"]);
    assert!(!unpaced.status.success() && text(&unpaced).contains("pacing.min"), "{}", text(&unpaced));
    // A command job: a shell line as OpenClaw stores it; a cwd outside the workspace is refused.
    let probe = s.chela(
        &cfg,
        &[
            "cron",
            "add",
            "--id",
            "probe",
            "--every",
            "1h",
            "--command",
            "echo hi",
            "--command-env",
            "A=1",
            "--no-output-timeout-seconds",
            "30",
        ],
    );
    assert!(probe.status.success(), "{}", text(&probe));
    let stored = std::fs::read_to_string(s.path("state/cron/jobs.json")).unwrap();
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    let payload = stored["jobs"].as_array().unwrap().iter().find(|j| j["id"] == "probe").unwrap()["payload"].clone();
    assert_eq!(
        payload,
        serde_json::json!({"kind": "command", "argv": ["sh", "-lc", "echo hi"], "env": {"A": "1"}, "noOutputTimeoutSeconds": 30})
    );
    let silent_turn =
        s.chela(&cfg, &["cron", "add", "--every", "1h", "--message", "x", "--no-output-timeout-seconds", "5"]);
    assert!(
        !silent_turn.status.success() && text(&silent_turn).contains("is for a command job"),
        "{}",
        text(&silent_turn)
    );
    assert!(s.chela(&cfg, &["cron", "rm", "probe"]).status.success());
    let outside = s.chela(&cfg, &["cron", "add", "--every", "1h", "--command", "ls", "--command-cwd", "/etc"]);
    assert!(!outside.status.success() && text(&outside).contains("payload.cwd"), "{}", text(&outside));
    let taken = s.chela(&cfg, &["cron", "add", "--id", "nightly", "--every", "1h", "--message", "x"]);
    assert!(text(&taken).contains("declared in config at `cron.jobs[0]`"), "{}", text(&taken));

    let rm_config = s.chela(&cfg, &["cron", "rm", "nightly"]);
    assert!(!rm_config.status.success() && text(&rm_config).contains("change it there"), "{}", text(&rm_config));
    assert!(s.chela(&cfg, &["cron", "rm", "brief"]).status.success());
    let after = json(&s.chela(&cfg, &["cron", "list", "--json"]));
    assert_eq!(after["jobs"].as_array().unwrap().len(), 2, "{after:#}");
    let run = s.chela(&cfg, &["cron", "run", "nightly"]);
    assert!(!run.status.success() && text(&run).contains("no gateway is running"), "{}", text(&run));
}

/// Bad schedules, intervals and active hours are config errors with the
/// file, line and field, in OpenClaw's words where OpenClaw has them.
#[test]
fn bad_schedules_and_active_hours_are_errors_with_their_position() {
    let s = Sandbox::new();
    let cfg = s.write(
        "c.json5",
        r#"{
  agents: { defaults: { heartbeat: { every: "soon",
    activeHours: { start: "24:00", end: "25:00" } } } },
  cron: { jobs: [
    { id: "a", schedule: { kind: "cron", expr: "0 9 * *" }, payload: { kind: "agentTurn", message: "x" } },
    { id: "a", schedule: { kind: "every", every: "0s" }, payload: { kind: "agentTurn", message: "x" } },
  ] },
}"#,
    );
    let v = json(&s.chela(&cfg, &["config", "validate", "--json"]));
    assert_eq!(v["valid"], false, "{v:#}");
    let at = |path: &str| -> Value {
        v["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["path"] == path && d["severity"] == "error")
            .unwrap_or_else(|| panic!("no error at {path}: {v:#}"))
            .clone()
    };
    let every = at("agents.defaults.heartbeat.every");
    assert!(every["message"].as_str().unwrap().contains("invalid duration"), "{every}");
    assert_eq!(every["line"], 2, "{every}");
    assert!(at("agents.defaults.heartbeat.activeHours.start")["message"]
        .as_str()
        .unwrap()
        .contains("start cannot be 24:00"));
    assert_eq!(at("agents.defaults.heartbeat.activeHours.start")["line"], 3);
    let expr = at("cron.jobs[0].schedule.expr");
    assert!(expr["message"].as_str().unwrap().contains("4 fields"), "{expr}");
    assert_eq!(expr["line"], 5, "{expr}");
    assert!(at("cron.jobs[1].id")["message"].as_str().unwrap().contains("duplicate job id `a`"));
    assert!(at("cron.jobs[1].schedule.every")["message"].as_str().unwrap().contains("shorter than the 1 s minimum"));
    assert!(expr["file"].as_str().is_some_and(|f| f.ends_with("c.json5")), "{expr}");
}
