//! Heartbeats and cron jobs through the gateway (the JavaScript webhook
//! channel, the OpenAI fake as the model): a heartbeat alerts the owner and
//! keeps acknowledgements to itself, stays quiet outside its active hours and
//! with nobody to tell, shows per account what `heartbeatVisibility` says;
//! a job runs as its own agent, in its own session, and
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
    // (A run is counted once recorded, just after its reply went out.)
    until("both runs counted", || runs(&running, "heartbeat-work", "ok") >= 2).await;
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

/// `heartbeatVisibility` of the target account, flag by flag: `showOk` sends
/// the bare `HEARTBEAT_OK` for a quiet poll, `showAlerts: false` keeps an
/// alert in the transcript only, and with all three off the heartbeat never
/// runs (`alerts-disabled`). The offline model answers (NO_REPLY without a
/// checklist, the first item with one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_visibility_decides_what_each_account_shows() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("hush")).unwrap();
    std::fs::write(root.join("hush/HEARTBEAT.md"), "- check the disk\n").unwrap();
    std::fs::create_dir_all(root.join("mute")).unwrap();
    std::fs::write(root.join("mute/HEARTBEAT.md"), "- check the disk\n").unwrap();
    let beat =
        |acc: &str| format!(r#"heartbeat: {{ every: "1s", target: "webhook", to: "{acc}-chat", accountId: "{acc}" }}"#);
    let config = format!(
        r#"{{
      agents: {{ list: [
        {{ id: "loud", default: true, workspace: "{root}/loud", {loud} }},
        {{ id: "hush", workspace: "{root}/hush", {hush} }},
        {{ id: "mute", workspace: "{root}/mute", {mute} }} ] }},
      bindings: [ {{ agentId: "loud", match: {{ channel: "webhook", accountId: "loud" }} }},
                  {{ agentId: "hush", match: {{ channel: "webhook", accountId: "hush" }} }},
                  {{ agentId: "mute", match: {{ channel: "webhook", accountId: "mute" }} }} ],
      channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{
        loud: {{ webhookToken: "inbox-secret", heartbeatVisibility: {{ showOk: true }} }},
        hush: {{ webhookToken: "inbox-secret", heartbeatVisibility: {{ showAlerts: false }} }},
        mute: {{ webhookToken: "inbox-secret",
                 heartbeatVisibility: {{ showOk: false, showAlerts: false, useIndicator: false }} }} }} }} }},
    }}"#,
        root = root.display(),
        loud = beat("loud"),
        hush = beat("hush"),
        mute = beat("mute"),
    );
    let running = common::serve(root, &config, &["channel_webhook_js"]).await;
    let base = format!("http://{}", running.addr);
    let sent = |account: &'static str| {
        let base = base.clone();
        async move {
            let path = format!("/channels/webhook/{account}/outbox?after=0");
            let (_, b) = common::inbox_call(&base, "GET", &path, &Value::Null).await;
            b["messages"].as_array().cloned().unwrap_or_default()
        }
    };
    // A quiet poll on `loud` goes out as the bare token.
    let deadline = Instant::now() + WAIT;
    let loud = loop {
        let m = sent("loud").await;
        if !m.is_empty() {
            break m;
        }
        assert!(Instant::now() < deadline, "no HEARTBEAT_OK through `loud`");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(loud[0]["text"], "HEARTBEAT_OK", "{loud:?}");
    assert_eq!(loud[0]["chat"]["id"], "loud-chat", "{loud:?}");
    // The alert on `hush` was answered and kept in the transcript, not sent.
    let state_file = root.join("state/cron/state.json");
    let hidden = "alert hidden (heartbeatVisibility.showAlerts: false)";
    until("hush's alert held back", || {
        let state: Value = std::fs::read_to_string(&state_file)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        state["jobs"]["heartbeat-hush"]["lastReason"] == hidden
    })
    .await;
    assert!(common::transcripts_text(root, "hush").contains("check the disk"));
    assert!(sent("hush").await.is_empty(), "{:?}", sent("hush").await);
    // `mute` shows nothing anywhere: skipped before any turn, no session.
    until("mute skipped twice", || runs(&running, "heartbeat-mute", "skipped") >= 2).await;
    let state: Value = serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    assert_eq!(state["jobs"]["heartbeat-mute"]["lastReason"], "alerts-disabled", "{state:#}");
    assert_eq!(runs(&running, "heartbeat-mute", "ok"), 0);
    assert!(!root.join("state/agents/mute/sessions/sessions.json").exists(), "mute ran a turn");
    assert!(sent("mute").await.is_empty());
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

/// What a webhook receiver on 127.0.0.1 got: path, `Authorization`, body.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, Option<String>, Value)>>>;

async fn webhook_receiver() -> (std::net::SocketAddr, Received, tokio::task::JoinHandle<()>) {
    use http_body_util::BodyExt;
    let got: Received = Default::default();
    let sink = got.clone();
    let (addr, task) = chela_fakes::wire::serve(move |req: hyper::Request<hyper::body::Incoming>| {
        let sink = sink.clone();
        async move {
            let path = req.uri().path().to_string();
            let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
            chela_fakes::wire::lock(&sink).push((path, auth, json));
            chela_fakes::wire::json_reply(200, &serde_json::json!({"ok": true}), &[])
        }
    })
    .await;
    (addr, got, task)
}

/// `delivery.mode: "webhook"` POSTs OpenClaw's `finished` event, with
/// `cron.webhookToken` as the bearer; a loopback receiver is reached only
/// because `webhookSsrfPolicy.allowedHostnames` names it (`localhost`): the
/// same receiver by its IP address, which the policy does not name, gets
/// nothing and the run records why. A failed run posts its error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_job_posts_its_finished_run_only_where_the_ssrf_policy_allows() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("ws")).unwrap();
    let (addr, got, _receiver) = webhook_receiver().await;
    let port = addr.port();
    let config = format!(
        r#"{{
      agents: {{ list: [ {{ id: "main", default: true, workspace: "{root}/ws" }} ] }},
      cron: {{
        webhookToken: "hook-secret",
        webhookSsrfPolicy: {{ allowedHostnames: ["localhost"] }},
        jobs: [
          {{ id: "report", schedule: {{ kind: "at", at: "2020-01-01T00:00:00Z" }},
             payload: {{ kind: "agentTurn", message: "nightly report" }},
             delivery: {{ mode: "webhook", to: "http://localhost:{port}/hooks/report?src=chela" }} }},
          {{ id: "broken", schedule: {{ kind: "at", at: "2020-01-01T00:00:00Z" }},
             payload: {{ kind: "agentTurn", message: "x", model: "nosuch/model" }},
             delivery: {{ mode: "webhook", to: "http://localhost:{port}/hooks/broken" }} }},
          {{ id: "sneaky", schedule: {{ kind: "at", at: "2020-01-01T00:00:00Z" }},
             payload: {{ kind: "agentTurn", message: "exfiltrate" }},
             delivery: {{ mode: "webhook", to: "http://127.0.0.1:{port}/hooks/sneaky" }} }} ] }},
    }}"#,
        root = root.display()
    );
    let running = common::serve(root, &config, &[]).await;
    until("all three one-shots ran", || {
        runs(&running, "report", "ok") == 1
            && runs(&running, "broken", "error") == 1
            && runs(&running, "sneaky", "ok") == 1
    })
    .await;
    let got = chela_fakes::wire::lock(&got).clone();
    let paths: Vec<&str> = got.iter().map(|(p, _, _)| p.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(sorted, ["/hooks/broken", "/hooks/report"], "the unlisted 127.0.0.1 got nothing: {got:?}");
    for (_, auth, _) in &got {
        assert_eq!(auth.as_deref(), Some("Bearer hook-secret"));
    }
    let event = |path: &str| got.iter().find(|(p, _, _)| p == path).map(|(_, _, b)| b.clone()).unwrap();
    let report = event("/hooks/report");
    assert_eq!(report["action"], "finished", "{report:#}");
    assert_eq!(report["jobId"], "report");
    assert_eq!(report["status"], "ok");
    assert_eq!(report["sessionKey"], "agent:main:cron:report");
    assert!(report["summary"].as_str().is_some_and(|s| s.contains("nightly report")), "{report:#}");
    assert!(report["runAtMs"].as_i64().is_some_and(|t| t > 0) && report["runId"].is_string(), "{report:#}");
    assert!(report.get("error").is_none());
    let broken = event("/hooks/broken");
    assert_eq!(broken["status"], "error", "{broken:#}");
    assert!(broken["error"].as_str().is_some_and(|e| e.contains("payload.model")), "{broken:#}");
    assert!(broken.get("summary").is_none(), "{broken:#}");

    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("state/cron/state.json")).unwrap()).unwrap();
    let why = state["jobs"]["sneaky"]["lastReason"].as_str().unwrap_or_default();
    assert!(why.contains("not delivered") && why.contains("allowedHostnames"), "{state:#}");
    assert!(!why.contains("src=chela"), "logged URLs lose their query");
    assert!(state["jobs"]["report"]["lastReason"].is_null(), "{state:#}");
    let history = std::fs::read_to_string(root.join("state/cron/runs/report.json")).unwrap();
    assert!(history.contains("\"delivered\": true") || history.contains("\"delivered\":true"), "{history}");
}

/// `POST /api/v1/cron/run` (what `chela cron run` calls): the finished run's report.
async fn force_run(running: &chela_gateway::Running, id: &str) -> Value {
    let url = format!("http://{}/api/v1/cron/run", running.addr);
    let auth = format!("Bearer {}", running.gateway.control_token());
    let body = serde_json::json!({ "id": id }).to_string();
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let a = chela_fakes::wire::request("POST", &url, &headers, body.as_bytes()).await.expect("the gateway answers");
    assert_eq!(a.status, 200, "{}", a.body);
    serde_json::from_str(&a.body).unwrap()
}

/// A gateway whose agent `work` (model: the OpenAI fake) has the cron jobs
/// `jobs` (JSON5, the items of `cron.jobs`), on the webhook channel
/// (account `inbox`).
async fn work_with_jobs(jobs: &str) -> (OpenAiFake, tempfile::TempDir, chela_gateway::Running) {
    jobs_gateway(tempfile::tempdir().unwrap(), jobs, &["channel_webhook_js"]).await
}

/// [`work_with_jobs`] in `dir`, with `plugins`.
async fn jobs_gateway(
    dir: tempfile::TempDir,
    jobs: &str,
    plugins: &[&str],
) -> (OpenAiFake, tempfile::TempDir, chela_gateway::Running) {
    let fake = OpenAiFake::start("sk-test").await;
    let root = dir.path();
    let config = format!(
        r#"{{
      models: {{ providers: {{ openai: {{ baseUrl: "{openai}" }} }} }},
      agents: {{ list: [ {{ id: "work", default: true, workspace: "{root}/ws", model: "openai/gpt-test" }} ] }},
      cron: {{ jobs: [ {jobs} ] }},
      channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
        openai = fake.base_url(),
        root = root.display()
    );
    let running = common::serve_with_vars(root, &config, plugins, common::openai_test_key()).await;
    (fake, dir, running)
}

/// [`work_with_jobs`] with the job `nightly` ("Nightly digest", every 6 h,
/// isolated) announcing to alice; `extra` adds job keys.
async fn nightly_job(extra: &str) -> (OpenAiFake, tempfile::TempDir, chela_gateway::Running) {
    work_with_jobs(&format!(
        r#"{{ id: "nightly", name: "Nightly digest", schedule: {{ kind: "every", every: "6h" }},
          sessionTarget: "isolated", payload: {{ kind: "agentTurn", message: "digest" }}, {extra}
          delivery: {{ mode: "announce", channel: "webhook", to: "alice", accountId: "inbox" }} }}"#
    ))
    .await
}

/// A job that announces is covered by failure alerts by default (OpenClaw's
/// policy): after two consecutive failures one alert, with a normalised
/// cause and not the provider's error; the third failure, same cause, is the
/// same incident and stays quiet; the first success after it sends one
/// recovery notice. The incident is kept in the job's state meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_alerts_once_per_incident_and_once_when_it_recovers() {
    let (fake, dir, running) = nightly_job("").await;
    let (root, base) = (dir.path(), format!("http://{}", running.addr));
    fake.script([
        Scripted::Status(400),
        Scripted::Status(400),
        Scripted::Status(400),
        Scripted::Text("all quiet".into()),
    ]);
    let state = || -> Value {
        serde_json::from_str(&std::fs::read_to_string(root.join("state/cron/state.json")).unwrap()).unwrap()
    };
    let mut statuses = Vec::new();
    for run in 1..=4 {
        let report = force_run(&running, "nightly").await;
        statuses.push(report["status"].as_str().unwrap_or_default().to_string());
        if run == 3 {
            let st = state();
            let incident = &st["jobs"]["nightly"]["incident"];
            assert_eq!(incident["cause"], "the agent turn failed", "{st:#}");
            assert_eq!(incident["failures"], 3, "{st:#}");
        }
    }
    assert_eq!(statuses, ["error", "error", "error", "ok"]);
    let deadline = Instant::now() + WAIT;
    let sent = loop {
        let sent = announced_to(&base, "alice").await;
        if sent.len() >= 3 || Instant::now() > deadline {
            break sent;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(sent.len(), 3, "one alert, the answer, one recovery notice: {sent:#?}");
    assert!(
        sent[0].starts_with("⚠️ Scheduled job “Nightly digest” failed 2 times in a row: the agent turn failed."),
        "{}",
        sent[0]
    );
    assert!(sent[0].contains("chela cron runs nightly") && !sent[0].contains("400"), "{}", sent[0]);
    assert!(sent[1].contains("all quiet"), "{}", sent[1]);
    assert_eq!(sent[2], "✅ Scheduled job “Nightly digest” is working again (after 3 failed runs).");
    assert!(state()["jobs"]["nightly"].get("incident").is_none(), "the success closed the incident");
    assert_eq!(fake.requests().len(), 4, "every run asked the model once");
}

/// OpenClaw's safety backstop: a recurring job failing 10 times in a row is
/// turned off — even with `failureAlert: false` its chat is told, once,
/// how to turn it back on — and stays off for the scheduler (listed as off)
/// until `chela cron enable` (here its store call) clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_failing_ten_times_in_a_row_is_turned_off_until_enabled() {
    let (fake, dir, running) = nightly_job("failureAlert: false,").await;
    let (root, base) = (dir.path(), format!("http://{}", running.addr));
    fake.script((0..10).map(|_| Scripted::Status(400)).chain([Scripted::Text("back on track".into())]));
    for _ in 0..10 {
        assert_eq!(force_run(&running, "nightly").await["status"], "error");
    }
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("state/cron/state.json")).unwrap()).unwrap();
    assert_eq!(state["jobs"]["nightly"]["autoDisabled"]["reason"], "consecutive-failures", "{state:#}");
    let store = chela_gateway::cron::CronStore::new(&root.join("state"));
    let cfg = running.gateway.config();
    let listed =
        || chela_gateway::cron::listing_json(&cfg, &chela_gateway::cron::scheduler::listing(&store, &cfg).unwrap());
    assert_eq!(listed()[0]["enabled"], false, "listed as off: {:#}", listed());
    let sent = first_announcements(&base, "alice").await;
    assert_eq!(sent.len(), 1, "only the turn-off notice (failureAlert: false): {sent:#?}");
    assert!(
        sent[0].starts_with("⛔ Scheduled job “Nightly digest” was turned off after 10 failures in a row"),
        "{}",
        sent[0]
    );
    assert!(sent[0].contains("chela cron enable nightly"), "{}", sent[0]);

    assert!(store.enable("nightly").unwrap(), "`chela cron enable`");
    assert_eq!(listed()[0]["enabled"], true, "{:#}", listed());
    assert_eq!(force_run(&running, "nightly").await["status"], "ok");
    let deadline = Instant::now() + WAIT;
    while announced_to(&base, "alice").await.len() < 2 {
        assert!(Instant::now() < deadline, "the answer after enabling");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = announced_to(&base, "alice").await;
    assert!(sent[1].contains("back on track"), "{sent:#?}");
}

/// OpenClaw's backstop for schedules: a job whose next run cannot be
/// computed (here a cron expression for 30 February, which never comes) is
/// turned off after 3 failed computations in a row, `schedule-errors`, and
/// its chat is told once how to turn it back on; no model is asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_schedule_never_comes_is_turned_off_after_three_schedule_errors() {
    let (fake, dir, running) = work_with_jobs(
        r#"{ id: "leap", name: "Leap report", schedule: { kind: "cron", expr: "0 0 30 2 *", tz: "UTC" },
          sessionTarget: "isolated", payload: { kind: "agentTurn", message: "report" },
          delivery: { mode: "announce", channel: "webhook", to: "alice", accountId: "inbox" } }"#,
    )
    .await;
    let root = dir.path();
    let base = format!("http://{}", running.addr);
    let sent = first_announcements(&base, "alice").await;
    assert_eq!(sent.len(), 1, "one turn-off notice: {sent:#?}");
    assert!(
        sent[0]
            .starts_with("⛔ Scheduled job “Leap report” was turned off: its next run could not be computed 3 times"),
        "{}",
        sent[0]
    );
    assert!(sent[0].contains("never matches") && sent[0].contains("chela cron enable leap"), "{}", sent[0]);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("state/cron/state.json")).unwrap()).unwrap();
    let leap = &state["jobs"]["leap"];
    assert_eq!(leap["autoDisabled"]["reason"], "schedule-errors", "{state:#}");
    assert_eq!((leap["scheduleErrors"].as_u64(), leap["lastStatus"].as_str()), (Some(3), Some("error")), "{state:#}");
    let store = chela_gateway::cron::CronStore::new(&root.join("state"));
    let cfg = running.gateway.config();
    let listed =
        || chela_gateway::cron::listing_json(&cfg, &chela_gateway::cron::scheduler::listing(&store, &cfg).unwrap());
    assert_eq!(listed()[0]["enabled"], false, "listed as off: {:#}", listed());
    assert!(fake.requests().is_empty(), "a job that never comes asked the model");
    assert!(store.enable("leap").unwrap(), "`chela cron enable` turns it back on");
}

/// `delivery.completionDestination`: an announcing job's finished run is
/// announced in its chat and POSTed, as OpenClaw's `finished` event with
/// `cron.webhookToken`, to the completion webhook as well (under the same
/// SSRF policy: the receiver is reached because `allowedHostnames` names it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announcing_job_also_posts_its_finished_run_to_its_completion_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("ws")).unwrap();
    let (addr, got, _receiver) = webhook_receiver().await;
    let config = format!(
        r#"{{
      agents: {{ list: [ {{ id: "main", default: true, workspace: "{root}/ws" }} ] }},
      cron: {{
        webhookToken: "hook-secret",
        webhookSsrfPolicy: {{ allowedHostnames: ["localhost"] }},
        jobs: [ {{ id: "digest", schedule: {{ kind: "at", at: "2020-01-01T00:00:00Z" }},
             payload: {{ kind: "agentTurn", message: "the morning digest" }},
             delivery: {{ mode: "announce", channel: "webhook", to: "alice", accountId: "inbox",
                          completionDestination: {{ mode: "webhook", to: "http://localhost:{port}/hooks/done" }} }} }} ] }},
      channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
        root = root.display(),
        port = addr.port()
    );
    let running = common::serve(root, &config, &["channel_webhook_js"]).await;
    let base = format!("http://{}", running.addr);
    let announced = first_announcements(&base, "alice").await;
    assert!(announced[0].contains("the morning digest"), "{announced:?}");
    until("the completion webhook got the finished run", || !chela_fakes::wire::lock(&got).is_empty()).await;
    let got = chela_fakes::wire::lock(&got).clone();
    assert_eq!(got.len(), 1, "{got:?}");
    let (path, auth, event) = &got[0];
    assert_eq!((path.as_str(), auth.as_deref()), ("/hooks/done", Some("Bearer hook-secret")));
    assert_eq!((event["action"].as_str(), event["jobId"].as_str()), (Some("finished"), Some("digest")), "{event:#}");
    assert_eq!(event["status"], "ok", "{event:#}");
    assert!(event["summary"].as_str().is_some_and(|s| s.contains("the morning digest")), "{event:#}");
    until("the run recorded as ok", || runs(&running, "digest", "ok") == 1).await;
}

/// `/loop` (OpenClaw's, owner-only): `/loop 5m <prompt>` stores a recurring
/// agent turn bound to this conversation (`sessionTarget: "current"`, named
/// `loop[<tag>] <prompt>`); its run answers in this chat; `/loop status`
/// lists it and `/loop stop` removes it. A sender who is not an owner is
/// refused, and an interval under 30 s gets the usage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_starts_lists_runs_and_stops_a_loop_in_their_chat() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = format!(
        r#"{{
      commands: {{ ownerAllowFrom: ["webhook:alice"] }},
      agents: {{ list: [ {{ id: "work", default: true, workspace: "{root}/ws" }} ] }},
      channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
        root = root.display()
    );
    let running = common::serve(root, &config, &["channel_webhook_js"]).await;
    let base = format!("http://{}", running.addr);
    let store = chela_gateway::cron::CronStore::new(&root.join("state"));
    let mut n = 0;
    let refused = common::say(&base, &mut n, "bob", "/loop 5m check the build").await;
    assert_eq!(refused, "/loop is for owners only: commands.ownerAllowFrom does not list you.");
    let short = common::say(&base, &mut n, "alice", "/loop 10s check the build").await;
    assert!(short.starts_with("Usage: /loop") && short.contains("Minimum interval 30s"), "{short}");
    assert!(store.jobs().unwrap().is_empty(), "neither stored a job");

    let started = common::say(&base, &mut n, "alice", "/loop 5m check the build").await;
    assert!(
        started.starts_with("🔁 Loop started: loop[") && started.contains("check the build — every 5m"),
        "{started}"
    );
    let jobs = store.jobs().unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let job = &jobs[0];
    assert_eq!((job.agent_id.as_deref(), job.session_target.as_deref()), (Some("work"), Some("current")));
    let key = job.session_key.clone().expect("bound to the conversation");
    assert!(key.starts_with("agent:work:"), "{key}");
    let name = job.name.clone().unwrap();
    assert!(name.starts_with(&chela_core::conversation_loop::name_prefix(&key)), "{name}");

    // A run answers in alice's chat, from the loop's prompt.
    let report = force_run(&running, job.id.as_deref().unwrap()).await;
    assert_eq!(
        (report["status"].as_str(), report["sessionKey"].as_str()),
        (Some("ok"), Some(key.as_str())),
        "{report:#}"
    );
    let said = first_announcements(&base, "alice").await;
    assert!(said.iter().any(|t| t.contains("[loop check the build] check the build")), "{said:#?}");

    let status = common::say(&base, &mut n, "alice", "/loop status").await;
    assert!(status.contains(&name) && status.contains("every 5m") && status.contains("last ok"), "{status}");
    let stopped = common::say(&base, &mut n, "alice", "/loop stop build").await;
    assert_eq!(stopped, format!("Stopped: {name}"));
    assert!(store.jobs().unwrap().is_empty(), "removed");
    let none = common::say(&base, &mut n, "alice", "/loop status").await;
    assert!(none.starts_with("No loops in this chat"), "{none}");

    // Without an interval the loop paces itself between 1m and 1h (`next_check`).
    let paced = common::say(&base, &mut n, "alice", "/loop watch for new issues").await;
    assert!(paced.contains("watch for new issues — self-paced between 1m and 1h"), "{paced}");
    let job = store.jobs().unwrap().remove(0);
    let pacing = job.pacing.clone().expect("paced");
    assert_eq!((pacing.min.as_deref(), pacing.max.as_deref()), (Some("1m"), Some("1h")));
    let chela_core::cron_job::Payload::AgentTurn { message, .. } = &job.payload else { panic!("an agent turn") };
    assert!(message.contains(r#"action:"next_check""#), "{message}");
    let status = common::say(&base, &mut n, "alice", "/loop status").await;
    assert!(status.contains("every 15m, self-paced between 1m and 1h"), "{status}");
}

/// The last tool result the model was given in request `i`.
fn last_tool_result(fake: &OpenAiFake, i: usize) -> String {
    let body = &fake.requests()[i].1;
    let tool = body["messages"].as_array().unwrap().iter().rev().find(|m| m["role"] == "tool").cloned();
    tool.map(|m| m["content"].to_string()).unwrap_or_default()
}

/// A gateway with the `automations` tool for its agents `work` (the
/// default: alice), `home` (bob) and `quiet` (carol, denying `cron`), all
/// on the OpenAI fake, on the webhook channel (account `inbox`); `jobs`:
/// the items of `cron.jobs` (JSON5).
async fn automations_gateway(jobs: &str) -> (OpenAiFake, tempfile::TempDir, chela_gateway::Running) {
    let fake = OpenAiFake::start("sk-test").await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = format!(
        r#"{{
      models: {{ providers: {{ openai: {{ baseUrl: "{openai}" }} }} }},
      agents: {{ list: [
        {{ id: "work", default: true, workspace: "{root}/ws-work", model: "openai/gpt-test" }},
        {{ id: "home", workspace: "{root}/ws-home", model: "openai/gpt-test" }},
        {{ id: "quiet", workspace: "{root}/ws-quiet", model: "openai/gpt-test", tools: {{ deny: ["cron"] }} }} ] }},
      bindings: [
        {{ agentId: "home", match: {{ channel: "webhook", accountId: "inbox", peer: {{ kind: "direct", id: "bob" }} }} }},
        {{ agentId: "quiet", match: {{ channel: "webhook", accountId: "inbox", peer: {{ kind: "direct", id: "carol" }} }} }} ],
      cron: {{ jobs: [ {jobs} ] }},
      channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
        openai = fake.base_url(),
        root = root.display()
    );
    let running =
        common::serve_with_vars(root, &config, &["channel_webhook_js", "tool_automations"], common::openai_test_key())
            .await;
    (fake, dir, running)
}

/// The `automations` tool (OpenClaw's scheduler tool, alias `cron`), for the
/// calling agent only: `work` adds a job in its conversation (bound to it:
/// `current`), which the scheduler stores as `work`'s; `home` lists nothing
/// of it, cannot remove it (`removed: false`, the job stays) and cannot add
/// a job as `work`; an agent whose policy denies `cron` is not offered the tool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_automations_tool_manages_only_the_calling_agents_jobs() {
    let (fake, dir, running) = automations_gateway("").await;
    let root = dir.path();
    let base = format!("http://{}", running.addr);
    let store = chela_gateway::cron::CronStore::new(&root.join("state"));
    let mut n = 0;
    let job = serde_json::json!({ "name": "standup", "schedule": { "kind": "every", "everyMs": 3_600_000 },
        "sessionTarget": "current", "payload": { "kind": "agentTurn", "message": "standup reminder" } });
    fake.script([
        Scripted::ToolCall {
            name: "automations".into(),
            arguments: serde_json::json!({ "action": "add", "job": job }),
        },
        Scripted::Text("Added.".into()),
    ]);
    assert_eq!(common::say(&base, &mut n, "alice", "remind me hourly").await, "Added.");
    assert!(last_tool_result(&fake, 1).contains("jobId"), "{}", last_tool_result(&fake, 1));
    let jobs = store.jobs().unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let id = jobs[0].id.clone().unwrap();
    assert_eq!(jobs[0].agent_id.as_deref(), Some("work"));
    assert!(jobs[0].session_key.as_deref().is_some_and(|k| k.starts_with("agent:work:")), "{:?}", jobs[0]);

    // `home` sees none of it, cannot remove it, cannot add as `work`.
    fake.script([
        Scripted::ToolCall { name: "automations".into(), arguments: serde_json::json!({ "action": "list" }) },
        Scripted::ToolCall { name: "automations".into(), arguments: serde_json::json!({ "action": "remove", "jobId": id }) },
        Scripted::ToolCall {
            name: "automations".into(),
            arguments: serde_json::json!({ "action": "add", "job": { "agentId": "work", "schedule": { "kind": "every", "everyMs": 60_000 },
                "payload": { "kind": "agentTurn", "message": "as work" } } }),
        },
        Scripted::Text("Done.".into()),
    ]);
    assert_eq!(common::say(&base, &mut n, "bob", "tidy up work's jobs").await, "Done.");
    let (list, remove, add) = (last_tool_result(&fake, 3), last_tool_result(&fake, 4), last_tool_result(&fake, 5));
    assert!(list.contains(r#"\"jobs\":[]"#), "home listed: {list}");
    assert!(remove.contains(r#"\"removed\":false"#), "{remove}");
    assert!(add.contains("runs as the agent that adds it"), "{add}");
    assert_eq!(store.jobs().unwrap().len(), 1, "work's job is still there, nothing added");

    // An agent whose policy denies `cron` (the alias) is not offered the tool.
    fake.script([Scripted::Text("No tools.".into())]);
    assert_eq!(common::say(&base, &mut n, "carol", "hi").await, "No tools.");
    let offered: Vec<String> = fake.requests()[6].1["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_string))
        .collect();
    assert!(!offered.contains(&"automations".to_string()), "{offered:?}");
    let work_tools = fake.requests()[0].1["tools"].to_string();
    assert!(work_tools.contains("\"automations\""), "work was offered it: {work_tools}");
}

/// A call of the `automations` tool with `args`.
fn automations_call(args: Value) -> Scripted {
    Scripted::ToolCall { name: "automations".into(), arguments: args }
}

/// The rest of OpenClaw's tool actions, outside a run: `get` shows the
/// whole job, `update` patches only what it names (and is checked as a new
/// job is), `status` counts the agent's jobs, `run` with `runMode: "force"`
/// starts it without waiting and `runs` shows how it ended; `next_check`
/// outside a run is refused. Another agent can get, update or run none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_automations_tool_gets_updates_runs_and_lists_runs_of_its_own_jobs() {
    let (fake, dir, running) = automations_gateway("").await;
    let base = format!("http://{}", running.addr);
    let store = chela_gateway::cron::CronStore::new(&dir.path().join("state"));
    let mut n = 0;
    let job = serde_json::json!({ "id": "standup", "name": "standup", "schedule": { "kind": "every", "everyMs": 3_600_000 },
        "sessionTarget": "isolated", "payload": { "kind": "agentTurn", "message": "standup reminder" },
        "delivery": { "mode": "none" } });
    fake.script([
        automations_call(serde_json::json!({ "action": "add", "job": job })),
        automations_call(serde_json::json!({ "action": "get", "jobId": "standup" })),
        automations_call(serde_json::json!({ "action": "update", "jobId": "standup",
            "job": { "name": "Daily standup", "payload": { "message": "the daily standup" }, "pacing": { "max": "2h" } } })),
        automations_call(serde_json::json!({ "action": "update", "jobId": "standup",
            "job": { "schedule": { "kind": "cron", "expr": "99 * * * *" } } })),
        automations_call(serde_json::json!({ "action": "next_check", "in": "5m" })),
        automations_call(serde_json::json!({ "action": "status" })),
        Scripted::Text("Done.".into()),
    ]);
    assert_eq!(common::say(&base, &mut n, "alice", "set up and tune my standup").await, "Done.");
    let got = last_tool_result(&fake, 2);
    assert!(got.contains(r#"\"message\":\"standup reminder\""#) && got.contains(r#"\"nextRunAtMs\""#), "get: {got}");
    let updated = last_tool_result(&fake, 3);
    assert!(updated.contains(r#"\"name\":\"Daily standup\""#), "update: {updated}");
    let refused = last_tool_result(&fake, 4);
    assert!(refused.contains("schedule.expr"), "a bad patch is refused at its field: {refused}");
    let outside = last_tool_result(&fake, 5);
    assert!(outside.contains("this turn is not a scheduled run"), "{outside}");
    let status = last_tool_result(&fake, 6);
    // Its job and its heartbeat (`work` is the default agent: the ambient heartbeat's owner).
    assert!(status.contains(r#"\"jobs\":2"#) && status.contains(r#"\"enabled\":true"#), "status: {status}");
    let stored = store.jobs().unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].name.as_deref(), Some("Daily standup"));
    assert_eq!(
        stored[0].payload,
        chela_core::cron_job::Payload::AgentTurn {
            message: "the daily standup".into(),
            model: None,
            light_context: None
        }
    );
    assert_eq!(stored[0].pacing.as_ref().and_then(|p| p.max.as_deref()), Some("2h"));
    assert_eq!(stored[0].agent_id.as_deref(), Some("work"), "still work's");

    // `home` can get, update and run none of it.
    let before = fake.requests().len();
    fake.script([
        automations_call(serde_json::json!({ "action": "get", "jobId": "standup" })),
        automations_call(serde_json::json!({ "action": "update", "jobId": "standup", "job": { "name": "mine now" } })),
        automations_call(serde_json::json!({ "action": "run", "jobId": "standup", "runMode": "force" })),
        Scripted::Text("No luck.".into()),
    ]);
    assert_eq!(common::say(&base, &mut n, "bob", "take over work's standup").await, "No luck.");
    for i in 1..=3 {
        let r = last_tool_result(&fake, before + i);
        assert!(r.contains("no job `standup`"), "home's call {i}: {r}");
    }
    assert_eq!(store.jobs().unwrap()[0].name.as_deref(), Some("Daily standup"), "unchanged");
    assert_eq!(runs(&running, "standup", "ok"), 0, "not run");

    // `run` force starts it without waiting; `runs` then shows it.
    fake.script([
        automations_call(serde_json::json!({ "action": "run", "jobId": "standup", "runMode": "force" })),
        Scripted::Text("Started.".into()),
        Scripted::Text("Started.".into()),
    ]);
    assert_eq!(common::say(&base, &mut n, "alice", "run my standup now").await, "Started.");
    until("the forced run recorded as ok", || runs(&running, "standup", "ok") == 1).await;
    let before = fake.requests().len();
    fake.script([
        automations_call(serde_json::json!({ "action": "runs", "jobId": "standup" })),
        Scripted::Text("Listed.".into()),
    ]);
    assert_eq!(common::say(&base, &mut n, "alice", "how did it go").await, "Listed.");
    let history = last_tool_result(&fake, before + 1);
    assert!(history.contains(r#"\"status\":\"ok\""#) && history.contains(r#"\"forced\":true"#), "runs: {history}");
}

/// Pacing (OpenClaw's dynamic cadence): inside its own scheduled run a
/// paced job's `next_check in: "5m"` is held to its `pacing.min` of 10
/// minutes and replaces its next run (every second otherwise), measured
/// from the run's end. Inside the run the tool narrows to the job: `list`
/// shows only it, and `add` is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_jobs_own_run_sets_its_next_check_within_its_bounds() {
    let (fake, dir, running) = automations_gateway(
        r#"{ id: "watch", schedule: { kind: "every", everyMs: 1000 }, pacing: { min: "10m", max: "2h" },
             sessionTarget: "isolated", payload: { kind: "agentTurn", message: "watch the deploy" },
             delivery: { mode: "none" } },
           { id: "digest", schedule: { kind: "every", every: "24h" }, sessionTarget: "isolated",
             payload: { kind: "agentTurn", message: "digest" }, delivery: { mode: "none" } }"#,
    )
    .await;
    fake.script([
        automations_call(serde_json::json!({ "action": "next_check", "in": "5m" })),
        automations_call(serde_json::json!({ "action": "list" })),
        automations_call(
            serde_json::json!({ "action": "add", "job": { "schedule": { "kind": "every", "everyMs": 60_000 },
            "payload": { "kind": "agentTurn", "message": "more work" } } }),
        ),
        Scripted::Text("NO_REPLY".into()),
    ]);
    until("the paced run recorded as ok", || runs(&running, "watch", "ok") == 1).await;
    let proposed = last_tool_result(&fake, 1);
    assert!(proposed.contains(r#"\"nextCheckInMs\":600000"#), "clamped to pacing.min: {proposed}");
    let listed = last_tool_result(&fake, 2);
    assert!(listed.contains(r#"\"id\":\"watch\""#) && !listed.contains("digest"), "only itself: {listed}");
    let add = last_tool_result(&fake, 3);
    assert!(add.contains("this turn is the scheduled job `watch`"), "{add}");
    let store = chela_gateway::cron::CronStore::new(&dir.path().join("state"));
    assert!(store.jobs().unwrap().is_empty(), "the run added nothing");
    let st = store.states().unwrap()["watch"].clone();
    let now = chela_agent::clock::now_ms();
    let next = st.next_run_at_ms.expect("a next run");
    assert!(next >= now + 590_000 && next <= now + 600_000, "next run {} ms from now", next - now);
    assert_eq!(fake.requests().len(), 4, "one run, four model calls");
}

/// `automations` `wake` (OpenClaw's): the text is queued for the calling
/// agent's next heartbeat, which hands it to the model; an agent that runs
/// no heartbeat is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wake_hands_its_text_to_the_agents_next_heartbeat() {
    let fake = OpenAiFake::start("sk-test").await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = format!(
        r#"{{
      commands: {{ ownerAllowFrom: ["webhook:alice"] }},
      models: {{ providers: {{ openai: {{ baseUrl: "{openai}" }} }} }},
      agents: {{ list: [
        {{ id: "work", default: true, workspace: "{root}/ws-work", model: "openai/gpt-test", heartbeat: {{ every: "1h" }} }},
        {{ id: "home", workspace: "{root}/ws-home", model: "openai/gpt-test" }} ] }},
      bindings: [ {{ agentId: "home", match: {{ channel: "webhook", accountId: "inbox", peer: {{ kind: "direct", id: "bob" }} }} }} ],
      channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
        openai = fake.base_url(),
        root = root.display()
    );
    let running =
        common::serve_with_vars(root, &config, &["channel_webhook_js", "tool_automations"], common::openai_test_key())
            .await;
    let base = format!("http://{}", running.addr);
    let mut n = 0;
    fake.script([
        automations_call(serde_json::json!({ "action": "wake", "text": "the deploy finished" })),
        Scripted::Text("Queued.".into()),
    ]);
    assert_eq!(common::say(&base, &mut n, "alice", "remember the deploy").await, "Queued.");
    assert!(last_tool_result(&fake, 1).contains(r#"\"ok\":true"#), "{}", last_tool_result(&fake, 1));
    fake.script([Scripted::Text("Deploy noted.".into())]);
    let report = force_run(&running, "heartbeat-work").await;
    assert_eq!(report["status"], "ok", "{report:#}");
    let (_, system) = request_texts(&fake, 2);
    assert!(system.contains("the deploy finished"), "the heartbeat was given the event: {system}");

    fake.script([
        automations_call(serde_json::json!({ "action": "wake", "text": "hello" })),
        Scripted::Text("No.".into()),
    ]);
    assert_eq!(common::say(&base, &mut n, "bob", "wake up").await, "No.");
    assert!(last_tool_result(&fake, 4).contains("runs no heartbeat"), "{}", last_tool_result(&fake, 4));
}

/// Command payloads (OpenClaw's command jobs), the operator's: a job in
/// `cron.jobs` runs its argv with no model turn, confined as its agent's
/// host commands are (in its workspace, with the job's `env`, the
/// gateway's state hidden), and its output is announced; a failing command
/// is an `error` run naming its exit code. The agent's `automations` tool
/// can add, change, run or remove no such job (an agent must never get a
/// command of its own run outside its tool policy), and `get` hides the
/// job's environment values. The root is under /var/tmp (host commands get
/// a private /tmp).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_job_runs_confined_as_the_operator_wrote_it_and_no_agent_can_add_one() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let root = dir.path().to_path_buf();
    std::fs::create_dir_all(root.join("state")).unwrap();
    std::fs::write(root.join("state/secret.txt"), "gateway-secret").unwrap();
    let probe = format!(
        "echo queue=$QUEUE_NAME; pwd; cat {}/state/secret.txt 2>/dev/null || echo state-hidden",
        root.display()
    );
    let jobs = format!(
        r#"{{ id: "probe", schedule: {{ kind: "every", every: "6h" }},
             payload: {{ kind: "command", argv: ["sh", "-c", {probe:?}], env: {{ QUEUE_NAME: "orders" }} }},
             delivery: {{ mode: "announce", channel: "webhook", to: "alice", accountId: "inbox" }} }},
           {{ id: "broken", schedule: {{ kind: "every", every: "6h" }},
             payload: {{ kind: "command", argv: ["sh", "-c", "echo oops >&2; exit 3"] }}, delivery: {{ mode: "none" }} }}"#
    );
    let (fake, _dir, running) = jobs_gateway(dir, &jobs, &["channel_webhook_js", "tool_automations"]).await;
    let base = format!("http://{}", running.addr);

    let report = force_run(&running, "probe").await;
    assert_eq!(report["status"], "ok", "{report:#}");
    let said = first_announcements(&base, "alice").await;
    let ws = root.join("ws").canonicalize().unwrap();
    let said: Vec<String> = said.iter().map(|t| t.replace("/ws/\n", "/ws\n")).collect();
    assert_eq!(said, [format!("queue=orders\n{}\nstate-hidden", ws.display())], "{report:#}");
    assert!(fake.requests().is_empty(), "no model was asked");
    let report = force_run(&running, "broken").await;
    assert_eq!(
        (report["status"].as_str(), report["reason"].as_str()),
        (Some("error"), Some("command exited with code 3")),
        "{report:#}"
    );

    // The agent's tool: no command job of its own, none of the operator's touched.
    let store = chela_gateway::cron::CronStore::new(&root.join("state"));
    let command = serde_json::json!({ "schedule": { "kind": "every", "everyMs": 3_600_000 },
        "payload": { "kind": "command", "argv": ["sh", "-c", "cat /etc/hostname"] } });
    fake.script([
        automations_call(serde_json::json!({ "action": "add", "job": command })),
        automations_call(serde_json::json!({ "action": "run", "jobId": "probe", "runMode": "force" })),
        automations_call(serde_json::json!({ "action": "get", "jobId": "probe" })),
        Scripted::Text("Tried.".into()),
    ]);
    let mut n = 0;
    assert_eq!(common::say(&base, &mut n, "alice", "schedule a command").await, "Tried.");
    let (add, run, get) = (last_tool_result(&fake, 1), last_tool_result(&fake, 2), last_tool_result(&fake, 3));
    for refused in [&add, &run] {
        assert!(refused.contains("a command payload is the operator's"), "{refused}");
    }
    assert!(store.jobs().unwrap().is_empty(), "nothing was stored");
    assert!(get.contains("(hidden)") && !get.contains("orders"), "the environment's values stay hidden: {get}");
    assert_eq!(first_announcements(&base, "alice").await.len(), 1, "the tool ran no command");
    assert!(running.shutdown().await);
}

/// OpenClaw's Anthropic defaults: with Anthropic OAuth/token auth
/// configured, the heartbeat runs every hour unless `heartbeat.every` says
/// otherwise (30 minutes with an API key, or without Anthropic); as in
/// OpenClaw, only a config with `agents.defaults` gets them. Read from the
/// gateway's own job listing (`GET /api/v1/cron`, what `chela cron list` shows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_token_auth_gives_the_heartbeat_openclaws_hourly_default() {
    let token = r#"auth: { profiles: { "anthropic:me": { provider: "anthropic", mode: "token" } } },"#;
    let key_env: std::sync::Arc<chela_core::config::EnvVars> =
        std::sync::Arc::new(|k: &str| (k == "ANTHROPIC_API_KEY").then(|| "sk-ant-api-1".to_string()));
    let none: std::sync::Arc<chela_core::config::EnvVars> = std::sync::Arc::new(|_: &str| None);
    let cases = [
        (token, "agents: { defaults: {} },", none.clone(), "every 1h"),
        (token, r#"agents: { defaults: { heartbeat: { every: "2h" } } },"#, none.clone(), "every 2h"),
        (token, "", none.clone(), "every 30m"),
        ("", "agents: { defaults: {} },", key_env, "every 30m"),
        ("", "agents: { defaults: {} },", none, "every 30m"),
    ];
    for (auth, agents, vars, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let config = format!("{{ {auth} {agents} }}");
        let running = common::serve_with_vars(dir.path(), &config, &[], vars).await;
        let url = format!("http://{}/api/v1/cron", running.addr);
        let auth_header = format!("Bearer {}", running.gateway.control_token());
        let a = chela_fakes::wire::request("GET", &url, &[("authorization", auth_header.as_str())], b"")
            .await
            .expect("the gateway answers");
        assert_eq!(a.status, 200, "{}", a.body);
        let listing: Value = serde_json::from_str(&a.body).unwrap();
        let jobs = listing["jobs"].as_array().cloned().unwrap_or_default();
        let beat = jobs.iter().find(|j| j["name"] == "Heartbeat (main)").unwrap_or_else(|| panic!("{listing:#}"));
        assert_eq!(beat["scheduleText"], expected, "{config}");
        assert!(running.shutdown().await);
    }
}

/// `noOutputTimeoutSeconds` of a command job (OpenClaw's silence limit): a
/// command that goes quiet for longer is stopped and the run is an `error`
/// saying so, long before its `timeoutSeconds`; one that keeps writing runs
/// past the same limit to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_job_silent_past_its_limit_is_stopped_and_a_chatty_one_is_not() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let jobs = r#"{ id: "quiet", schedule: { kind: "every", every: "6h" },
             payload: { kind: "command", argv: ["sh", "-c", "echo started; sleep 30; echo never"],
                        timeoutSeconds: 60, noOutputTimeoutSeconds: 1 }, delivery: { mode: "none" } },
           { id: "chatty", schedule: { kind: "every", every: "6h" },
             payload: { kind: "command", argv: ["sh", "-c", "for i in 1 2 3 4 5; do echo tick $i; sleep 0.4; done"],
                        noOutputTimeoutSeconds: 1 }, delivery: { mode: "none" } }"#;
    let (_fake, _dir, running) = jobs_gateway(dir, jobs, &["channel_webhook_js"]).await;

    let started = Instant::now();
    let report = force_run(&running, "quiet").await;
    let took = started.elapsed();
    assert_eq!(
        (report["status"].as_str(), report["reason"].as_str()),
        (Some("error"), Some("command produced no output for noOutputTimeoutSeconds (1s) and was stopped")),
        "{report:#}"
    );
    assert!(took < Duration::from_secs(20), "stopped for its silence, not its 60 s timeout: {took:?}");

    let started = Instant::now();
    let report = force_run(&running, "chatty").await;
    assert_eq!(report["status"], "ok", "{report:#}");
    assert!(started.elapsed() >= Duration::from_millis(1_600), "it ran past the silence limit to its end");
    assert!(running.shutdown().await);
}
