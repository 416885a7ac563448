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
            && all.contains("/think [level|default] — show or set this session's thinking level")
            && all.contains("/elevated [on|off|ask|full] — whether your commands may run outside the sandbox")
            && !all.contains("not in chela yet"),
        "{all}"
    );
    assert_eq!(say(&base, &mut n, "alice", "/status now").await, "Usage: /status");
    assert!(
        say(&base, &mut n, "alice", "/exec host=gateway")
            .await
            .starts_with("chela does not change where commands run from a chat"),
        "a chat cannot move commands out of their confinement"
    );
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

/// `/think` sets the session's thinking level (OpenClaw's `thinkingLevel`),
/// which the model request carries (`reasoning_effort` for an OpenAI model);
/// `/think default` clears it, an unknown level changes nothing. `/verbose
/// full` sends each tool call with what it returned as its own message,
/// before the answer and outside the transcript.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn think_sets_the_reasoning_effort_and_verbose_lists_the_tools() {
    use chela_fakes::openai::{OpenAiFake, Scripted};
    let fake = OpenAiFake::start("sk-test").await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = format!(
        r#"{{
      models: {{ providers: {{ openai: {{ baseUrl: "{openai}" }} }} }},
      agents: {{ list: [ {{ id: "work", default: true, workspace: "{root}/ws", model: "openai/gpt-test",
                           tools: {{ allow: ["write"] }} }} ] }},
      channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
        openai = fake.base_url(),
        root = root.display()
    );
    let vars = common::openai_test_key();
    let running = common::serve_with_vars(root, &config, &["channel_webhook_js", "tool_write"], vars).await;
    let base = format!("http://{}", running.addr);
    let mut n = 0;
    let effort = |i: usize| fake.requests()[i].1.get("reasoning_effort").cloned();

    assert!(say(&base, &mut n, "alice", "/think").await.starts_with("Thinking level: the model's default"));
    assert_eq!(say(&base, &mut n, "alice", "/think: high").await, "Thinking level set to high.");
    assert_eq!(
        say(&base, &mut n, "alice", "/think big").await,
        "Unrecognized thinking level \"big\". Valid levels: off, minimal, low, medium, high, xhigh, adaptive, max."
    );
    assert!(say(&base, &mut n, "alice", "/t").await.starts_with("Thinking level: high (this session's"));
    fake.script([Scripted::Text("thought about it".into())]);
    assert_eq!(say(&base, &mut n, "alice", "hello").await, "thought about it");
    assert_eq!(effort(0), Some(serde_json::json!("high")), "{:?}", fake.requests()[0].1);

    assert!(say(&base, &mut n, "alice", "/verbose full").await.starts_with("Verbose full"));
    fake.script([
        Scripted::ToolCall { name: "write".into(), arguments: serde_json::json!({"path": "a.txt", "content": "hi"}) },
        Scripted::Text("wrote it".into()),
    ]);
    // In a chat, each call's summary is its own message, sent as the call
    // finishes and before the answer, which does not list them again.
    assert_eq!(say(&base, &mut n, "alice", "write a file").await, "wrote it");
    let (_, outbox) =
        common::inbox_call(&base, "GET", "/channels/webhook/inbox/outbox?after=0", &serde_json::Value::Null).await;
    let texts: Vec<String> = outbox["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect();
    let summary = texts.iter().position(|t| t.starts_with("🔧 write ✓ (")).expect("a summary message");
    assert!(texts[summary].ends_with(": wrote 2 bytes to a.txt"), "{texts:?}");
    assert_eq!(texts.get(summary + 1).map(String::as_str), Some("wrote it"), "then the answer: {texts:?}");
    assert!(!common::transcripts_text(root, "work").contains("🔧"), "the list is not in the transcript");

    assert_eq!(
        say(&base, &mut n, "alice", "/think default").await,
        "Thinking level cleared; using the model's default."
    );
    assert!(say(&base, &mut n, "alice", "/verbose off").await.starts_with("Verbose off"));
    fake.script([Scripted::Text("plain".into())]);
    assert_eq!(say(&base, &mut n, "alice", "again").await, "plain");
    let last = fake.requests().len() - 1;
    assert_eq!(effort(last), None, "no level, nothing sent");
}
