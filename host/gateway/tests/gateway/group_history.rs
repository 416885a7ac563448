//! Group history through the gateway (the JavaScript webhook channel): group
//! messages that do not mention the agent under `requireMention` are kept,
//! up to `historyLimit`, and given to the next answered message in
//! OpenClaw's markers, once; `contextVisibility: "allowlist"` keeps the lines
//! of senders the account does not list away from the model.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common;

async fn post(base: &str, account: &str, n: &mut usize, from: &str, name: &str, text: &str) {
    *n += 1;
    let msg = json!({"id": format!("g{n}"), "chat": {"type": "group", "id": "team"},
                     "from": {"id": from, "name": name}, "text": text});
    let token = if account == "inbox" { "inbox-secret" } else { "quiet-secret" };
    let headers = [("authorization", format!("Bearer {token}")), ("content-type", "application/json".into())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = chela_fakes::wire::request(
        "POST",
        &format!("{base}/channels/webhook/{account}/messages"),
        &headers,
        msg.to_string().as_bytes(),
    )
    .await
    .expect("the gateway answers");
    assert_eq!(a.status, 202, "{}", a.body);
}

/// The user messages of every transcript of agent `work`, oldest first.
fn user_messages(root: &std::path::Path) -> Vec<String> {
    let dir = root.join("state/agents/work/sessions");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        if e.path().extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(e.path()).unwrap_or_default().lines() {
            let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
            if v["message"]["role"] == "user" {
                let c = &v["message"]["content"];
                out.push(
                    c.as_str().map(str::to_string).unwrap_or_else(|| c[0]["text"].as_str().unwrap_or("").to_string()),
                );
            }
        }
    }
    out
}

async fn wait_users(root: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let users = user_messages(root);
        if users.len() >= n {
            return users;
        }
        assert!(Instant::now() < deadline, "only {} user messages: {users:?}", users.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_group_messages_reach_the_next_answered_turn_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = format!(
        r#"{{
      agents: {{ list: [ {{ id: "work", default: true, workspace: "{root}/ws", identity: {{ name: "Atlas" }} }} ] }},
      channels: {{ webhook: {{ groupPolicy: "open", groups: {{ team: {{ requireMention: true }} }}, historyLimit: 2,
        accounts: {{ inbox: {{ webhookToken: "inbox-secret" }},
                    quiet: {{ webhookToken: "quiet-secret", contextVisibility: "allowlist", allowFrom: ["carol"] }} }} }} }},
    }}"#,
        root = root.display()
    );
    let running = common::serve(root, &config, &["channel_webhook_js"]).await;
    let base = format!("http://{}", running.addr);
    let mut n = 0;
    post(&base, "inbox", &mut n, "carol", "Carol", "lunch at noon?").await;
    post(&base, "inbox", &mut n, "dave", "Dave", "I'm in").await;
    post(&base, "inbox", &mut n, "erin", "", "me too").await;
    post(&base, "inbox", &mut n, "carol", "Carol", "Atlas, what did we decide?").await;
    let users = wait_users(root, 1).await;
    assert_eq!(
        users[0],
        "[Chat messages since your last reply - for context]\nDave: I'm in\nerin: me too\n\n\
         [Current message - respond to this]\nAtlas, what did we decide?",
        "the two newest (historyLimit 2), a sender without a name by id"
    );
    post(&base, "inbox", &mut n, "carol", "Carol", "Atlas, and now?").await;
    let users = wait_users(root, 2).await;
    assert_eq!(users[1], "Atlas, and now?", "given once");

    // `contextVisibility: "allowlist"`: dave may write in the group (open) but
    // this account's allowFrom does not list him, so the model never sees his line.
    post(&base, "quiet", &mut n, "dave", "Dave", "the secret plan").await;
    post(&base, "quiet", &mut n, "carol", "Carol", "ok").await;
    post(&base, "quiet", &mut n, "carol", "Carol", "Atlas?").await;
    let users = wait_users(root, 3).await;
    let quiet = users.iter().find(|u| u.ends_with("Atlas?")).expect("the quiet account's turn");
    assert!(quiet.contains("Carol: ok") && !quiet.contains("secret plan"), "{quiet}");
}
