//! The control page in a real browser: Debian's Chromium driven by
//! playwright-core (`tests/ui/browser.mjs`, installed by `cargo xtask
//! test`) against a gateway with three agents, the webhook channel and one
//! conversation. The script logs in (a wrong token first), reads the
//! overview, explains a route, opens the conversation's transcript, sees a
//! revoked token send it back to the login, watches a message arrive and
//! be answered on the Live page, approves a pairing request (the sender is
//! then answered), and checks that a page on another origin cannot read
//! the API. Screenshots go to `docs/ui/`.

use std::path::PathBuf;

use crate::common;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_page_works_in_a_real_browser() {
    let ui = repo().join("tests/ui");
    assert!(
        ui.join("node_modules/playwright-core").is_dir() && std::path::Path::new("/usr/bin/chromium").exists(),
        "the browser tests need Chromium and playwright-core: `cargo xtask test` installs both"
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for ws in ["home", "work", "ops"] {
        std::fs::create_dir_all(root.join(ws)).unwrap();
    }
    let config = format!(
        r#"{{
      gateway: {{ auth: {{ token: "ui-test-token" }} }},
      agents: {{ list: [
        {{ id: "home", default: true, workspace: "{root}/home", identity: {{ name: "Hestia" }} }},
        {{ id: "work", workspace: "{root}/work", identity: {{ name: "Atlas" }} }},
        {{ id: "ops", workspace: "{root}/ops" }} ] }},
      // Who answers what.
      bindings: [
        {{ agentId: "work", match: {{ channel: "webhook", accountId: "inbox" }} }},
        {{ agentId: "ops", match: {{ channel: "webhook", accountId: "inbox", peer: {{ kind: "group", id: "oncall" }} }} }} ],
      channels: {{ webhook: {{ accounts: {{
        inbox: {{ webhookToken: "inbox-secret", dmPolicy: "open", allowFrom: ["*"] }},
        door: {{ webhookToken: "door-secret", dmPolicy: "pairing" }} }} }} }},
    }}"#,
        root = root.display()
    );
    let running = common::serve(root, &config, &["channel_webhook_js"]).await;
    let base = format!("http://{}", running.addr);
    // The file the gateway watches: the Config page shows what it says.
    let file = root.join("chela.json5");
    std::fs::write(&file, &config).unwrap();
    let _watch = running.gateway.watch_config(file.clone(), std::time::Duration::from_millis(200));
    // An edit the page must show refused: a binding to an agent that does not exist, on its own line.
    let bad = config.replacen(
        "bindings: [",
        "bindings: [\n        { agentId: \"ghost\", match: { channel: \"webhook\" } },",
        1,
    );
    let bad_line = bad.lines().position(|l| l.contains("ghost")).unwrap() + 1;
    let mut n = 0;
    common::say(&base, &mut n, "alice", "hello from alice <img src=x onerror=alert(1)>").await;
    // Bob is unknown on the `door` account (dmPolicy: pairing): he gets a code.
    let code = door(&base, "d1", "bob", "let me in").await;
    let code =
        code.split("pairing code is ").nth(1).and_then(|r| r.split('.').next()).expect("a pairing code").to_string();
    let expect = serde_json::json!({
        "agents": ["home", "work", "ops"],
        "channel": "webhook",
        "route": {
            "input": { "channel": "webhook", "accountId": "inbox", "peerId": "alice" },
            "agent": "work",
            "tier": "binding.account",
        },
        "session": {
            "agent": "work",
            "key": "agent:work:main",
            "contains": ["hello from alice <img src=x onerror=alert(1)>", "Atlas"],
        },
        "pairing": { "channel": "webhook", "code": code, "sender": "bob" },
        "config": { "file": file, "bad": bad, "line": bad_line, "agent": "ghost" },
        "bindings": {
            "tiers": [[0, "binding.account"], [1, "binding.peer"]],
            "add": { "agent": "ops", "peer": "dave" },
            "comment": "// Who answers what.",
        },
        "live": {
            "webhook": format!("{base}/channels/webhook/inbox/messages"),
            "token": "inbox-secret",
            "message": { "id": "live-1", "chat": { "type": "direct", "id": "carol" }, "from": { "id": "carol" }, "text": "live ping" },
            "agent": "work",
        },
    });
    let shots = repo().join("docs/ui");
    std::fs::create_dir_all(&shots).unwrap();
    let out = tokio::process::Command::new("node")
        .arg(ui.join("browser.mjs"))
        .env("CHELA_URL", format!("{base}/"))
        .env("CHELA_TOKEN", running.gateway.control_token())
        .env("CHELA_EXPECT", expect.to_string())
        .env("CHELA_SHOTS", &shots)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the browser checks failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("\"passed\":true"), "{stdout}");
    for page in ["login", "overview", "route", "sessions", "transcript", "live", "pairing", "bindings", "config"] {
        assert!(shots.join(format!("{page}.png")).is_file(), "screenshot of {page}");
    }
    assert!(!running.gateway.config_report().applied, "the refused edit is reported as not applied");
    // The binding added on the page is in force: dave's message goes to `ops`.
    let answer = common::say(&base, &mut n, "dave", "who answers me?").await;
    assert!(answer.contains("agent `ops`"), "routed by the new binding: {answer}");
    // Approved on the page: bob's next message reaches the agent (under the last good config).
    let answer = door(&base, "d2", "bob", "thanks").await;
    assert!(answer.starts_with("Hestia"), "bob is let in after the approval: {answer}");
}

/// Sends `text` from `from` to the `door` account; returns the next
/// message sent to that chat (a pairing code is not a reply to anything).
async fn door(base: &str, id: &str, from: &str, text: &str) -> String {
    use serde_json::{json, Value};
    let headers = [("authorization", "Bearer door-secret"), ("content-type", "application/json")];
    let to_chat = || async {
        let url = format!("{base}/channels/webhook/door/outbox?after=0");
        let a = chela_fakes::wire::request("GET", &url, &headers, b"").await.expect("the gateway answers");
        let b: Value = serde_json::from_str(&a.body).unwrap_or(Value::Null);
        b["messages"].as_array().into_iter().flatten().filter(|m| m["chat"]["id"] == from).cloned().collect::<Vec<_>>()
    };
    let before = to_chat().await.len();
    let msg = json!({"id": id, "chat": {"type": "direct", "id": from}, "from": {"id": from}, "text": text}).to_string();
    let url = format!("{base}/channels/webhook/door/messages");
    let a = chela_fakes::wire::request("POST", &url, &headers, msg.as_bytes()).await.expect("the gateway answers");
    assert_eq!(a.status, 202, "{}", a.body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let sent = to_chat().await;
        if let Some(m) = sent.get(before) {
            return m["text"].as_str().unwrap_or_default().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "nothing sent to {from} after {id}: {sent:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
