//! A config reload while a message is in flight: the message is decided on
//! one snapshot from its first step to its last turn, and the next message
//! sees the new config.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chela_core::config::load_str;
use chela_fakes::openai::{OpenAiFake, Scripted};
use serde_json::{json, Value};

use crate::common;

fn config(root: &std::path::Path, openai: &str, bee: &str) -> String {
    format!(
        r#"{{
      models: {{ providers: {{ openai: {{ baseUrl: "{openai}" }} }} }},
      agents: {{ list: [
        {{ id: "ant", default: true, workspace: "{root}/ws-ant", identity: {{ name: "Ant" }}, model: "openai/gpt-test" }},
        {{ id: "bee", workspace: "{root}/ws-bee", identity: {{ name: "{bee}" }} }},
      ] }},
      broadcast: {{ strategy: "sequential", "hive": ["ant", "bee"] }},
      channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], groupPolicy: "open",
        groups: {{ "*": {{ requireMention: false }} }}, accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
        root = root.display()
    )
}

async fn call(base: &str, method: &str, path: &str, body: &Value) -> (u16, Value) {
    common::inbox_call(base, method, path, body).await
}

async fn replies(base: &str, at_least: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, b) = call(base, "GET", "/channels/webhook/inbox/outbox?after=0", &Value::Null).await;
        let msgs = b["messages"].as_array().cloned().unwrap_or_default();
        if msgs.len() >= at_least {
            return msgs;
        }
        assert!(Instant::now() < deadline, "only {} of {at_least} replies: {b}", msgs.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A broadcast group answered one agent after another: while the first
/// agent's turn waits on its model, the config is reloaded (the second
/// agent renamed). The second agent's turn still runs on the snapshot the
/// message was routed on; the next message gets the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_in_flight_during_a_reload_sees_one_snapshot() {
    let fake = OpenAiFake::start("sk-test").await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let vars = common::openai_test_key();
    let running =
        common::serve_with_vars(root, &config(root, &fake.base_url(), "Bee-1"), &["channel_webhook_js"], vars).await;
    let base = format!("http://{}", running.addr);
    fake.script([Scripted::Text("Ant, first.".into()), Scripted::Text("Ant, second.".into())]);
    fake.hold();
    let msg = |id: &str| json!({"id": id, "chat": {"type": "group", "id": "hive"}, "from": {"id": "zed"}, "text": "who is here?"});
    let (s, b) = call(&base, "POST", "/channels/webhook/inbox/messages", &msg("h1")).await;
    assert_eq!(s, 202, "{b}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while fake.requests().is_empty() {
        assert!(Instant::now() < deadline, "ant's turn never reached its model");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let renamed = load_str(&config(root, &fake.base_url(), "Bee-2"), None).expect("config loads").config;
    running.gateway.apply_config(Arc::new(renamed)).await;
    fake.release();
    let first: Vec<String> =
        replies(&base, 2).await.iter().map(|m| m["text"].as_str().unwrap_or_default().to_string()).collect();
    assert!(first.iter().any(|t| t.starts_with("Bee-1")), "the turn ran on the routed snapshot: {first:?}");
    assert!(!first.iter().any(|t| t.contains("Bee-2")), "one message saw two configs: {first:?}");

    let (s, _) = call(&base, "POST", "/channels/webhook/inbox/messages", &msg("h2")).await;
    assert_eq!(s, 202);
    let all: Vec<String> =
        replies(&base, 4).await.iter().map(|m| m["text"].as_str().unwrap_or_default().to_string()).collect();
    assert!(all[2..].iter().any(|t| t.starts_with("Bee-2")), "the next message has the new config: {all:?}");
}
