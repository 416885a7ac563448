//! The control page in a real browser: Debian's Chromium driven by
//! playwright-core (`tests/ui/browser.mjs`, installed by `cargo xtask
//! test`) against a gateway with three agents, the webhook channel and one
//! conversation. The script logs in (a wrong token first), reads the
//! overview, explains a route, opens the conversation's transcript, sees a
//! revoked token send it back to the login, and checks that a page on
//! another origin cannot read the API. Screenshots go to `docs/ui/`.

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
      bindings: [
        {{ agentId: "work", match: {{ channel: "webhook", accountId: "inbox" }} }},
        {{ agentId: "ops", match: {{ channel: "webhook", accountId: "inbox", peer: {{ kind: "group", id: "oncall" }} }} }} ],
      channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
        root = root.display()
    );
    let running = common::serve(root, &config, &["channel_webhook_js"]).await;
    let base = format!("http://{}", running.addr);
    let mut n = 0;
    common::say(&base, &mut n, "alice", "hello from alice <img src=x onerror=alert(1)>").await;
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
    for page in ["login", "overview", "route", "sessions", "transcript"] {
        assert!(shots.join(format!("{page}.png")).is_file(), "screenshot of {page}");
    }
}
