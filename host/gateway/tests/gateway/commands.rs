//! Chat commands through the gateway, as a chat user sends them (the
//! JavaScript webhook channel): answered without a model turn and kept out
//! of the transcript, refused to a sender `commands.allowFrom` does not
//! list (a refused `/new` resets nothing), a usage line for a malformed one,
//! and an unknown `/word` goes to the model as text.

use crate::common;

use common::say;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_answer_without_the_model_and_only_for_senders_commands_allow_from_lists() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = format!(
        r#"{{
      agents: {{ list: [ {{ id: "work", default: true, workspace: "{root}/ws", identity: {{ name: "Atlas" }} }} ] }},
      commands: {{ allowFrom: {{ webhook: ["alice"], "*": ["nobody"] }} }},
      channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
        root = root.display()
    );
    let running = common::serve(root, &config, &["channel_webhook_js"]).await;
    let base = format!("http://{}", running.addr);
    let mut n = 0;

    let status = say(&base, &mut n, "alice", "/status").await;
    assert!(status.contains("Agent: Atlas (`work`) · model offline/persona"), "{status}");
    assert!(status.contains("no messages yet"), "a command is no message of the session: {status}");
    let hello = say(&base, &mut n, "alice", "hello there").await;
    assert!(hello.starts_with("Atlas (agent `work`) here."), "{hello}");
    let status = say(&base, &mut n, "alice", "/STATUS").await;
    assert!(status.contains("(2 messages"), "the user message and the reply, not the commands: {status}");

    let whoami = say(&base, &mut n, "alice", "/whoami").await;
    assert!(whoami.starts_with("You are alice on webhook (account inbox)"), "{whoami}");
    assert!(say(&base, &mut n, "alice", "/help").await.contains("/commands lists them all"));
    let all = say(&base, &mut n, "alice", "/commands").await;
    assert!(
        all.contains("/status — ")
            && all.contains("/compact [instructions] — summarise older messages now")
            && all.contains("/stop — stop the answer being written and drop waiting messages")
            && all.contains("/think <level|default> — the thinking level (not in chela yet)"),
        "{all}"
    );
    assert_eq!(say(&base, &mut n, "alice", "/status now").await, "Usage: /status");
    assert_eq!(say(&base, &mut n, "alice", "/think high").await, "/think is not available in chela yet.");
    let unknown = say(&base, &mut n, "alice", "/frobnicate the widget").await;
    assert!(unknown.starts_with("Atlas (agent `work`) here."), "an unknown command is text for the model: {unknown}");

    // /model: shown, picked for this session (checked), used by the next turn, unpicked.
    assert!(say(&base, &mut n, "alice", "/model").await.starts_with("Model: offline/persona (the agent's"));
    let models = say(&base, &mut n, "alice", "/models").await;
    assert!(models.contains("Atlas's models: offline/persona") && models.contains("offline"), "{models}");
    let refused_pick = say(&base, &mut n, "alice", "/model nosuch/thing").await;
    assert!(refused_pick.starts_with("Cannot use nosuch/thing: provider `nosuch` is not configured"), "{refused_pick}");
    assert_eq!(say(&base, &mut n, "alice", "/model offline/scribe").await, "Model for this session: offline/scribe.");
    assert!(say(&base, &mut n, "alice", "/status").await.contains("model offline/scribe (this session's pick)"));
    let _ = say(&base, &mut n, "alice", "which model?").await;
    let transcript = common::transcripts_text(root, "work");
    assert!(transcript.contains(r#""model":"scribe""#), "the pick answered: {transcript}");
    assert!(say(&base, &mut n, "alice", "/model default").await.contains("offline/persona (the agent's)"));
    let index = std::fs::read_to_string(root.join("state/agents/work/sessions/sessions.json")).unwrap();
    assert!(!index.contains("modelOverride\""), "unpicked: {index}");

    // bob reaches the agent (dmPolicy open) but may not run commands: refused, nothing reset.
    let refused = say(&base, &mut n, "bob", "/status").await;
    assert_eq!(refused, "You may not run /status here: commands.allowFrom does not list you.");
    let refused = say(&base, &mut n, "bob", "/new").await;
    assert!(refused.contains("commands.allowFrom"), "{refused}");
    let status = say(&base, &mut n, "alice", "/status").await;
    assert!(status.contains("(6 messages"), "bob's /new reset nothing (three messages, answered): {status}");
    // alice's /new does.
    let fresh = say(&base, &mut n, "alice", "/new").await;
    let status = say(&base, &mut n, "alice", "/status").await;
    assert!(!status.contains("(6 messages"), "{fresh} / {status}");
}
