//! `session.sendPolicy` through the gateway: a rule that denies group chats
//! holds back the agent's answers there (the turn still runs and is in the
//! transcript, as OpenClaw's does), while direct chats are answered. The
//! group is admitted by `channels.defaults.groupPolicy` (OpenClaw's shared
//! channel baseline, which is not a channel: the gateway runs with no
//! adapter missing). With block replies on, nothing of a held-back answer
//! goes out while it is written either.

use serde_json::{json, Value};

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_rule_holds_back_answers_into_matching_sessions_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = format!(
        r#"{{
      session: {{ sendPolicy: {{ rules: [{{ action: "deny", match: {{ channel: "webhook", chatType: "group" }} }}] }} }},
      agents: {{ defaults: {{ blockStreamingDefault: "on", blockStreamingChunk: {{ minChars: 10, maxChars: 400 }} }},
                list: [ {{ id: "work", default: true, workspace: "{root}/ws", identity: {{ name: "Atlas" }} }} ] }},
      channels: {{ defaults: {{ groupPolicy: "open" }},
        webhook: {{ dmPolicy: "open", allowFrom: ["*"],
        groups: {{ "*": {{ requireMention: false }} }}, accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
        root = root.display()
    );
    let running = common::serve(root, &config, &["channel_webhook_js"]).await;
    let base = format!("http://{}", running.addr);
    let post = |msg: Value| {
        let base = base.clone();
        async move {
            let (s, b) = common::inbox_call(&base, "POST", "/channels/webhook/inbox/messages", &msg).await;
            assert_eq!(s, 202, "{b}");
        }
    };
    post(json!({"id": "g1", "chat": {"type": "group", "id": "team"}, "from": {"id": "ana"}, "text": "status, please"}))
        .await;
    common::until_dropped(&running, "send_policy", 1).await;
    let mut n = 0;
    let dm = common::say(&base, &mut n, "bob", "hello").await;
    assert!(dm.starts_with("Atlas (agent `work`) here."), "{dm}");
    let (_, outbox) = common::inbox_call(&base, "GET", "/channels/webhook/inbox/outbox?after=0", &Value::Null).await;
    let sent: Vec<&str> = outbox["messages"].as_array().unwrap().iter().filter_map(|m| m["replyTo"].as_str()).collect();
    assert_eq!(sent, ["m1"], "only the direct chat was answered");
    // The group's turn ran: its answer is in the session's transcript.
    let transcripts = common::transcripts_text(root, "work");
    assert!(
        transcripts.contains("status, please") && transcripts.matches("Atlas (agent").count() == 2,
        "{transcripts}"
    );
}

/// `/send off|on|inherit` sets a session's own policy, for owners only
/// (`commands.ownerAllowFrom`): answers stop while it is off, the command's
/// own confirmations still arrive, and another sender is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_turns_delivery_off_and_on_for_a_session_with_send() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = format!(
        r#"{{
      commands: {{ ownerAllowFrom: ["webhook:alice"] }},
      agents: {{ list: [ {{ id: "work", default: true, workspace: "{root}/ws", identity: {{ name: "Atlas" }} }} ] }},
      channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
        root = root.display()
    );
    let running = common::serve(root, &config, &["channel_webhook_js"]).await;
    let base = format!("http://{}", running.addr);
    let mut n = 0;
    let refused = common::say(&base, &mut n, "bob", "/send off").await;
    assert_eq!(refused, "/send is for owners only: commands.ownerAllowFrom does not list you.");
    let off = common::say(&base, &mut n, "alice", "/send: off").await;
    assert!(off.starts_with("Send policy for this session: off"), "{off}");
    // Held back: the turn runs, its answer is not delivered.
    n += 1;
    let msg = json!({"id": format!("m{n}"), "chat": {"type": "direct", "id": "alice"}, "from": {"id": "alice"}, "text": "anyone?"});
    let (s, b) = common::inbox_call(&base, "POST", "/channels/webhook/inbox/messages", &msg).await;
    assert_eq!(s, 202, "{b}");
    common::until_dropped(&running, "send_policy", 1).await;
    assert!(common::say(&base, &mut n, "alice", "/send inherit").await.contains("inherited from session.sendPolicy"));
    let back = common::say(&base, &mut n, "alice", "still there?").await;
    assert!(back.starts_with("Atlas (agent `work`) here."), "{back}");
    let (_, outbox) = common::inbox_call(&base, "GET", "/channels/webhook/inbox/outbox?after=0", &Value::Null).await;
    let sent: Vec<&str> = outbox["messages"].as_array().unwrap().iter().filter_map(|m| m["replyTo"].as_str()).collect();
    assert_eq!(sent, ["m1", "m2", "m4", "m5"], "nothing for m3");
}
