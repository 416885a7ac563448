//! Session pruning through the gateway (OpenClaw's `contextPruning` in
//! `cache-ttl` mode), as a chat user lives it: the JavaScript webhook
//! channel, the real `read` tool component and the OpenAI fake (a model
//! marked `compat.supportsPromptCacheKey`, 20,000-token window). A large old
//! tool result is sent soft-trimmed once the cache's TTL has passed, the same
//! projection is sent again after a restart (read back from the
//! transcript's `openclaw.cache-ttl` marker), the transcript keeps the result
//! whole, and within the TTL nothing is pruned.

use chela_fakes::openai::{OpenAiFake, Scripted};
use serde_json::Value;

use crate::common;
use common::say;

/// The file the agent reads: 600 numbered rows, 30,000 characters.
fn big_file() -> String {
    (1..=600).map(|i| format!("row {i:05}: {}\n", "x".repeat(38))).collect()
}

fn config(fake: &OpenAiFake, root: &std::path::Path, ttl: &str) -> String {
    format!(
        r#"{{
      models: {{ providers: {{ openai: {{ baseUrl: "{openai}",
        models: [{{ id: "gpt-test", name: "gpt-test", contextWindow: 20000, compat: {{ supportsPromptCacheKey: true }} }}] }} }} }},
      agents: {{
        defaults: {{ contextPruning: {{ mode: "cache-ttl", ttl: "{ttl}" }} }},
        list: [ {{ id: "work", default: true, workspace: "{root}/ws", model: "openai/gpt-test", tools: {{ allow: ["read"] }} }} ] }},
      session: {{ dmScope: "per-peer" }},
      channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
        openai = fake.base_url(),
        root = root.display()
    )
}

/// The tool result the last request to the model carried.
fn last_tool_result(fake: &OpenAiFake) -> String {
    let requests = fake.requests();
    let (_, body) = requests.last().expect("a request");
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let tool = messages.iter().find(|m| m["role"] == "tool").unwrap_or_else(|| panic!("no tool result in {body}"));
    match &tool["content"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Four turns: one reads the file, three more make its answer older than the last three.
async fn read_then_talk(fake: &OpenAiFake, base: &str, n: &mut usize, who: &str) {
    fake.script([
        Scripted::ToolCall { name: "read".into(), arguments: serde_json::json!({"path": "big.txt"}) },
        Scripted::Text("read it".into()),
    ]);
    assert_eq!(say(base, n, who, "read big.txt").await, "read it");
    for word in ["two", "three"] {
        fake.script([Scripted::Text(word.into())]);
        assert_eq!(say(base, n, who, word).await, word);
        let sent = last_tool_result(fake);
        assert!(sent.contains("row 00300") && sent.len() >= 30_000, "recent results are sent whole: {}", sent.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_tool_result_is_trimmed_after_the_ttl_and_stays_trimmed_across_a_restart() {
    let fake = OpenAiFake::start("sk-test").await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("ws")).unwrap();
    std::fs::write(root.join("ws/big.txt"), big_file()).unwrap();
    let plugins = ["channel_webhook_js", "tool_read"];
    let running = common::serve_with_vars(root, &config(&fake, root, "1s"), &plugins, common::openai_test_key()).await;
    let base = format!("http://{}", running.addr);
    let mut n = 0;

    read_then_talk(&fake, &base, &mut n, "alice").await;
    // The cache's TTL (1s) passes; the result is now older than the last three answers.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    fake.script([Scripted::Text("four".into())]);
    assert_eq!(say(&base, &mut n, "alice", "four").await, "four");
    let trimmed = last_tool_result(&fake);
    assert!(trimmed.starts_with("row 00001") && !trimmed.contains("row 00300"), "{trimmed}");
    assert!(
        trimmed.contains("\n...\n")
            && trimmed.ends_with("[Tool result trimmed: kept first 1500 chars and last 1500 chars of 30000 chars.]"),
        "{trimmed}"
    );
    let text = common::transcripts_text(root, "work");
    assert!(text.contains("row 00300"), "the transcript keeps the result whole");
    let markers: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["type"] == "custom" && l["customType"] == "openclaw.cache-ttl")
        .collect();
    let listed = markers.iter().rev().find_map(|m| m["data"]["prunedToolResults"].as_array().cloned());
    let listed = listed.expect("a marker lists the projection");
    assert_eq!((listed.len(), listed[0]["mode"].as_str()), (1, Some("soft")), "{listed:?}");
    assert!(listed[0]["key"].as_str().is_some_and(|k| k.starts_with("tool:")), "{listed:?}");
    assert!(markers.iter().all(|m| m["data"]["provider"] == "openai" && m["data"]["modelId"] == "gpt-test"));
    assert!(running.shutdown().await);

    // A restart with a TTL of an hour: no new round can run, yet the
    // projection made before is sent again, byte for byte.
    let running = common::serve_with_vars(root, &config(&fake, root, "1h"), &plugins, common::openai_test_key()).await;
    let base = format!("http://{}", running.addr);
    fake.script([Scripted::Text("five".into())]);
    assert_eq!(say(&base, &mut n, "alice", "five").await, "five");
    assert_eq!(last_tool_result(&fake), trimmed, "the same projection after the restart");

    // Within the TTL, a new session's old result is sent whole.
    read_then_talk(&fake, &base, &mut n, "bob").await;
    fake.script([Scripted::Text("four".into())]);
    assert_eq!(say(&base, &mut n, "bob", "four").await, "four");
    assert!(last_tool_result(&fake).contains("row 00300"), "the cache is fresh: nothing pruned");
    assert!(running.shutdown().await);
}
