//! Heartbeats and cron jobs through the gateway (the JavaScript webhook
//! channel, the OpenAI fake as the model): a heartbeat alerts the owner and
//! keeps acknowledgements to itself, stays quiet outside its active hours and
//! with nobody to tell; a job runs as its own agent, in its own session, and
//! announces where it says.

use std::time::{Duration, Instant};

use chela_fakes::openai::{OpenAiFake, Scripted};
use serde_json::Value;

use crate::common;

const WAIT: Duration = Duration::from_secs(30);

async fn outbox(base: &str) -> Vec<Value> {
    let (_, b) = common::inbox_call(base, "GET", "/channels/webhook/inbox/outbox?after=0", &Value::Null).await;
    b["messages"].as_array().cloned().unwrap_or_default()
}

/// Messages delivered to `chat` that answer no message (announcements).
async fn announced_to(base: &str, chat: &str) -> Vec<String> {
    outbox(base)
        .await
        .iter()
        .filter(|m| m["chat"]["id"] == chat && m["replyTo"].is_null())
        .filter_map(|m| m["text"].as_str().map(str::to_string))
        .collect()
}

/// The announcements `chat` has got, once there is at least one.
async fn first_announcements(base: &str, chat: &str) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let a = announced_to(base, chat).await;
        if !a.is_empty() {
            return a;
        }
        assert!(Instant::now() < deadline, "nothing announced to {chat}: {:?}", outbox(base).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn runs(running: &chela_gateway::Running, job: &str, status: &str) -> u64 {
    running.gateway.metrics.get("chela_cron_runs_total", &[("job", job), ("status", status)])
}

/// The model's user and system text of request `i`.
fn request_texts(fake: &OpenAiFake, i: usize) -> (String, String) {
    let body = &fake.requests()[i].1;
    let mut user = String::new();
    let mut system = String::new();
    for m in body["messages"].as_array().unwrap() {
        let text = match &m["content"] {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(""),
            _ => String::new(),
        };
        match m["role"].as_str() {
            Some("system") | Some("developer") => system.push_str(&text),
            Some("user") => user = text,
            _ => {}
        }
    }
    (user, system)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_alerts_the_owner_and_keeps_acknowledgements_to_itself() {
    let fake = OpenAiFake::start("sk-test").await;
    fake.script([Scripted::Text("HEARTBEAT_OK".into()), Scripted::Text("The disk is 95% full.".into())]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("ws")).unwrap();
    std::fs::write(root.join("ws/HEARTBEAT.md"), "- check the disk\n").unwrap();
    let config = format!(
        r#"{{
      commands: {{ ownerAllowFrom: ["webhook:alice"] }},
      models: {{ providers: {{ openai: {{ baseUrl: "{openai}" }} }} }},
      agents: {{ defaults: {{ heartbeat: {{ every: "1s" }} }},
        list: [ {{ id: "work", default: true, workspace: "{root}/ws", model: "openai/gpt-test" }} ] }},
      channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
        openai = fake.base_url(),
        root = root.display()
    );
    let running = common::serve_with_vars(root, &config, &["channel_webhook_js"], common::openai_test_key()).await;
    let base = format!("http://{}", running.addr);
    let alerts = first_announcements(&base, "alice").await;
    // The first heartbeat's HEARTBEAT_OK ran before the alert and was never sent.
    assert_eq!(alerts, ["The disk is 95% full."]);
    assert!(runs(&running, "heartbeat-work", "ok") >= 2);
    let (user, system) = request_texts(&fake, 0);
    assert_eq!(user, chela_core::heartbeat::DEFAULT_PROMPT, "the prompt is sent verbatim");
    assert!(
        system.contains("Heartbeat monitor scratch (HEARTBEAT.md)") && system.contains("- check the disk"),
        "{system}"
    );
    // It ran in the agent's main session.
    assert!(common::transcripts_text(root, "work").contains("The disk is 95% full."));
    let sessions = std::fs::read_to_string(root.join("state/agents/work/sessions/sessions.json")).unwrap();
    assert!(sessions.contains("agent:work:main"), "{sessions}");
}

/// Outside `activeHours`, with no owner to tell, or with an empty checklist,
/// the heartbeat skips before the model is asked anything (counted as
/// skipped runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_outside_its_hours_or_without_a_route_asks_no_model() {
    let fake = OpenAiFake::start("sk-test").await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // A window that is never open (zero width), for one agent; no owner for
    // another; a checklist with nothing on it for the third.
    std::fs::create_dir_all(root.join("b")).unwrap();
    std::fs::write(root.join("b/HEARTBEAT.md"), "# Checklist\n\n- [ ]\n<!-- add items here -->\n").unwrap();
    let config = format!(
        r#"{{
      models: {{ providers: {{ openai: {{ baseUrl: "{openai}" }} }} }},
      agents: {{ list: [
        {{ id: "night", default: true, workspace: "{root}/n", model: "openai/gpt-test",
           heartbeat: {{ every: "1s", target: "webhook", to: "alice", activeHours: {{ start: "08:00", end: "08:00" }} }} }},
        {{ id: "lonely", workspace: "{root}/l", model: "openai/gpt-test", heartbeat: {{ every: "1s" }} }},
        {{ id: "blank", workspace: "{root}/b", model: "openai/gpt-test", heartbeat: {{ every: "1s", target: "webhook", to: "alice" }} }} ] }},
      channels: {{ webhook: {{ dmPolicy: "open", accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
        openai = fake.base_url(),
        root = root.display()
    );
    let running = common::serve_with_vars(root, &config, &["channel_webhook_js"], common::openai_test_key()).await;
    until("both heartbeats skipped twice", || {
        ["heartbeat-night", "heartbeat-lonely", "heartbeat-blank"].iter().all(|j| runs(&running, j, "skipped") >= 2)
    })
    .await;
    assert!(fake.requests().is_empty(), "no model call: {:?}", fake.requests());
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("state/cron/state.json")).unwrap()).unwrap();
    assert_eq!(state["jobs"]["heartbeat-night"]["lastReason"], "quiet-hours", "{state:#}");
    assert_eq!(state["jobs"]["heartbeat-lonely"]["lastReason"], "no-route", "{state:#}");
    assert_eq!(state["jobs"]["heartbeat-blank"]["lastReason"], "empty-heartbeat-file", "{state:#}");
}

/// A job runs as its own agent only: its persona, its workspace, a session
/// of its own under its agent. Its answer is announced where it says, and
/// only through an account that speaks for its agent: another agent's job
/// announcing through that account is refused (no agent sends as another
/// agent's bot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_as_its_agent_in_its_own_session_and_announces() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (ws, soul) in [("home", "I keep the house."), ("work", "I keep the books.")] {
        std::fs::create_dir_all(root.join(ws)).unwrap();
        std::fs::write(root.join(ws).join("SOUL.md"), soul).unwrap();
    }
    let config = format!(
        r#"{{
      agents: {{ list: [
        {{ id: "home", default: true, workspace: "{root}/home", identity: {{ name: "Hestia" }} }},
        {{ id: "work", workspace: "{root}/work", identity: {{ name: "Atlas" }} }} ] }},
      bindings: [ {{ agentId: "work", match: {{ channel: "webhook", accountId: "inbox" }} }} ],
      cron: {{ jobs: [
        {{ id: "spoof", agentId: "home", schedule: {{ kind: "at", at: "2020-01-01T00:00:00Z" }},
           payload: {{ kind: "agentTurn", message: "pretend to be Atlas" }},
           delivery: {{ mode: "announce", channel: "webhook", to: "alice", accountId: "inbox" }} }},
        {{ id: "brief", agentId: "work", schedule: {{ kind: "at", at: "2020-01-01T00:00:00Z" }},
           sessionTarget: "isolated", payload: {{ kind: "agentTurn", message: "morning brief" }},
           delivery: {{ mode: "announce", channel: "webhook", to: "alice", accountId: "inbox" }} }} ] }},
      channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
        root = root.display()
    );
    let running = common::serve(root, &config, &["channel_webhook_js"]).await;
    let base = format!("http://{}", running.addr);
    until("both one-shots ran", || runs(&running, "brief", "ok") == 1 && runs(&running, "spoof", "error") == 1).await;
    let sent = announced_to(&base, "alice").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].starts_with("Atlas (agent `work`) here. I keep the books."), "{}", sent[0]);
    assert!(sent[0].contains("“morning brief”"), "{}", sent[0]);
    let sessions = std::fs::read_to_string(root.join("state/agents/work/sessions/sessions.json")).unwrap();
    assert!(sessions.contains("agent:work:cron:brief"), "{sessions}");
    // `home`'s job ran in `home`'s own session, and was not let speak through `work`'s account.
    let home = std::fs::read_to_string(root.join("state/agents/home/sessions/sessions.json")).unwrap();
    assert!(home.contains("agent:home:cron:spoof") && !home.contains("brief"), "{home}");
    assert!(!sessions.contains("spoof"), "{sessions}");
    // A one-shot in config runs once: the state says done, and a forced run is the only way again.
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("state/cron/state.json")).unwrap()).unwrap();
    assert_eq!(state["jobs"]["brief"]["done"], true, "{state:#}");
    assert_eq!(state["jobs"]["brief"]["lastStatus"], "ok", "{state:#}");
    let refused = state["jobs"]["spoof"]["lastReason"].as_str().unwrap_or_default();
    assert!(refused.contains("speaks for work, not `home`"), "{state:#}");
}

/// A `main` system event with `wakeMode: "next-heartbeat"` waits for the
/// agent's next heartbeat and is handed to it (the offline model alerts on
/// it), even though the agent's checklist is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_event_for_the_next_heartbeat_is_handed_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("ws")).unwrap();
    std::fs::write(root.join("ws/HEARTBEAT.md"), "# Checklist\n").unwrap();
    let config = format!(
        r#"{{
      commands: {{ ownerAllowFrom: ["webhook:alice"] }},
      agents: {{ defaults: {{ heartbeat: {{ every: "2s" }} }},
        list: [ {{ id: "work", default: true, workspace: "{root}/ws" }} ] }},
      cron: {{ jobs: [ {{ id: "ping", schedule: {{ kind: "at", at: "2020-01-01T00:00:00Z" }}, sessionTarget: "main",
                        wakeMode: "next-heartbeat", payload: {{ kind: "systemEvent", text: "the build broke" }} }} ] }},
      channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
        root = root.display()
    );
    let running = common::serve(root, &config, &["channel_webhook_js"]).await;
    let base = format!("http://{}", running.addr);
    let alerts = first_announcements(&base, "alice").await;
    assert_eq!(alerts, ["Heartbeat: System: the build broke (cron job `ping`)"]);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("state/cron/state.json")).unwrap()).unwrap();
    assert_eq!(state["jobs"]["ping"]["lastReason"], "queued for the next heartbeat", "{state:#}");
    let events = std::fs::read_to_string(root.join("state/cron/events.json")).unwrap();
    assert!(!events.contains("the build broke"), "taken by the heartbeat: {events}");
}
