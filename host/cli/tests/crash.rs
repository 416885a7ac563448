//! The message path across `kill -9`, through the binary: every message the
//! gateway acknowledged is in a transcript after a restart and answered
//! exactly once. Counted, not sampled: lost, unanswered and duplicated.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::Gateway;

mod support;

const SENDERS: usize = 8;

/// Each user has their own session: the senders write without waiting, and
/// one session shared by all of them would meet `messages.queue.cap` (20
/// waiting, OpenClaw's default), which folds the oldest into a summary
/// instead of answering each (`host/gateway/tests/gateway/queue.rs`).
fn config() -> String {
    r#"{ session: { dmScope: "per-channel-peer" },
         channels: { webhook: { dmPolicy: "open", allowFrom: ["*"],
                                accounts: { inbox: { webhookToken: "inbox-secret" } } } } }"#
        .to_string()
}

/// Every user message text in every transcript of agent `main`.
fn transcript_texts(root: &Path) -> Vec<String> {
    let dir = root.join("state/agents/main/sessions");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        if entry.path().extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(entry.path()).unwrap_or_default().lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
            if v["message"]["role"] == "user" {
                for c in v["message"]["content"].as_array().into_iter().flatten() {
                    if let Some(t) = c["text"].as_str() {
                        out.push(t.to_string());
                    }
                }
            }
        }
    }
    out
}

/// Replies in the webhook outbox, counted per message they answer.
async fn replies_per_message(gw: &Gateway) -> BTreeMap<String, usize> {
    let answer = gw.get("/channels/webhook/inbox/outbox?after=0", &[("authorization", "Bearer inbox-secret")]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let v: Value = serde_json::from_str(&answer.body).expect("outbox JSON");
    let mut counts = BTreeMap::new();
    for m in v["messages"].as_array().into_iter().flatten() {
        if let Some(id) = m["replyTo"].as_str() {
            *counts.entry(id.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

/// What a restart left of the messages acknowledged before a kill.
struct Tally {
    lost: Vec<String>,
    unanswered: Vec<String>,
    duplicated: Vec<String>,
    repeated: Vec<String>,
}

/// `written`: message id → its text; `replies`: message id → replies sent
/// for it; `texts`: the user messages in the transcripts.
fn tally(written: &BTreeMap<String, String>, replies: &BTreeMap<String, usize>, texts: &[String]) -> Tally {
    let stored = |t: &String| texts.iter().filter(|x| *x == t).count();
    let ids = |f: &dyn Fn(&String, &String) -> bool| -> Vec<String> {
        written.iter().filter(|(id, t)| f(id, t)).map(|(id, _)| id.clone()).collect()
    };
    let tally = Tally {
        lost: ids(&|_, t| stored(t) == 0),
        unanswered: ids(&|id, _| !replies.contains_key(id)),
        duplicated: ids(&|id, _| replies.get(id).is_some_and(|n| *n > 1)),
        // A turn the kill cut off is continued after the restart, not started twice.
        repeated: ids(&|_, t| stored(t) > 1),
    };
    eprintln!(
        "acknowledged {} before the kill; lost {}, unanswered {}, duplicated {}, repeated in a transcript {}",
        written.len(),
        tally.lost.len(),
        tally.unanswered.len(),
        tally.duplicated.len(),
        tally.repeated.len()
    );
    tally
}

/// Once the load running in `tasks` has got far enough (`loaded`), kills the
/// gateway mid-load, then stops the load and waits for it to end.
async fn kill_under_load(
    gw: Gateway,
    stop: &AtomicBool,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    loaded: impl Fn() -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !loaded() {
        assert!(Instant::now() < deadline, "the gateway handled too little under load");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill_9(gw).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
}

/// After the restart: waits (up to 2 min) until every message in `written`
/// has a reply (`replies_now` counts them per message id), then tallies.
async fn after_restart(
    written: &BTreeMap<String, String>,
    root: &Path,
    replies_now: impl AsyncFn() -> BTreeMap<String, usize>,
) -> Tally {
    let deadline = Instant::now() + Duration::from_secs(120);
    let replies = loop {
        let r = replies_now().await;
        if written.keys().all(|id| r.contains_key(id)) || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tally(written, &replies, &transcript_texts(root))
}

/// `kill -9` of the gateway process.
async fn kill_9(mut gw: Gateway) {
    gw.child.start_kill().expect("SIGKILL");
    let _ = gw.child.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_on_a_webhook_channel_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let gw = Gateway::start_with(root, &config(), &["channel_webhook_js"]).await;
    let accepted = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let url = format!("http://{}/channels/webhook/inbox/messages", gw.addr);
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let (accepted, stop, url) = (accepted.clone(), stop.clone(), url.clone());
        senders.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let id = format!("s{s}-{i}");
                let body = json!({"id": id, "chat": {"type": "direct", "id": format!("user{s}")},
                                  "from": {"id": format!("user{s}")}, "text": format!("message {id}")});
                let headers = [("authorization", "Bearer inbox-secret"), ("content-type", "application/json")];
                match chela_fakes::wire::request("POST", &url, &headers, body.to_string().as_bytes()).await {
                    Some(a) if a.status == 202 => {
                        accepted.lock().unwrap().insert(id);
                        i += 1;
                    }
                    Some(a) => panic!("a delivery was refused while the gateway ran: {} {}", a.status, a.body),
                    None => break, // the gateway is gone
                }
            }
        }));
    }
    // Load until enough is acknowledged that the kill lands among turns in flight.
    kill_under_load(gw, &stop, senders, || accepted.lock().unwrap().len() >= 40).await;
    let written: BTreeMap<String, String> =
        accepted.lock().unwrap().iter().map(|id| (id.clone(), format!("message {id}"))).collect();

    let gw = Gateway::start_with(root, &config(), &["channel_webhook_js"]).await;
    let t = after_restart(&written, root, async || replies_per_message(&gw).await).await;
    assert!(t.lost.is_empty(), "accepted but in no transcript: {:?}", t.lost);
    assert!(t.unanswered.is_empty(), "accepted but never answered: {:?}", t.unanswered);
    assert!(t.duplicated.is_empty(), "answered more than once: {:?}", t.duplicated);
    assert!(t.repeated.is_empty(), "stored twice in a transcript: {:?}", t.repeated);
}

/// The gateway's own counter or gauge, read from `/metrics`.
async fn metric(gw: &Gateway, name: &str) -> f64 {
    let m = gw.get("/metrics", &[]).await;
    m.body
        .lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

const BOT: &str = "555:CRASH-bot";

/// One polling Telegram bot, `BOT`, open to everyone, against the fake at `api`.
fn telegram_config(api: &str) -> String {
    format!(
        r#"{{ session: {{ dmScope: "per-channel-peer" }},
             channels: {{ telegram: {{ dmPolicy: "open", allowFrom: ["*"],
               accounts: {{ default: {{ botToken: "{BOT}", apiRoot: "{api}" }} }} }} }} }}"#
    )
}

/// A reply that is journaled but not yet delivered when the gateway dies
/// (Telegram asked it to wait) is delivered once after the restart, and
/// the message is not run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_journaled_but_not_sent_at_the_kill_is_sent_once_after_the_restart() {
    use chela_fakes::telegram::{Fault, TelegramFake};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let telegram = TelegramFake::start().await;
    telegram.add_bot(BOT, 555, "crash_bot");
    let text = telegram_config(&telegram.api_root());
    let gw = Gateway::start_with(root, &text, &["channel_telegram"]).await;
    // Telegram answers the reply with "retry after 50 s": the gateway waits, the reply journaled.
    telegram.fail_next_send(BOT, Fault::TooManyRequests(50));
    let m = telegram.user_message(BOT, None, (4242, "Ana"), "are you there?", json!({}));
    let message_id = m["message"]["message_id"].as_i64().expect("the update carries a message");
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&gw, "chela_journal_undelivered_replies").await < 1.0 {
        assert!(Instant::now() < deadline, "the reply never waited in the outbox");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(telegram.sent(BOT).is_empty(), "nothing reached Telegram yet");
    kill_9(gw).await;

    let gw = Gateway::start_with(root, &text, &["channel_telegram"]).await;
    let sent = telegram.wait_sent(BOT, 1, Duration::from_secs(30)).await;
    assert_eq!(sent.len(), 1, "the journaled reply went out after the restart: {sent:?}");
    assert_eq!(sent[0]["reply_parameters"]["message_id"], message_id, "{sent:?}");
    // Settled: the outbox is empty and nothing else is pending.
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&gw, "chela_journal_undelivered_replies").await > 0.0
        || metric(&gw, "chela_journal_unfinished_messages").await > 0.0
    {
        assert!(Instant::now() < deadline, "the journal did not settle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let texts = transcript_texts(root);
    assert_eq!(texts.iter().filter(|t| *t == "are you there?").count(), 1, "the turn ran once: {texts:?}");
    // A new message is answered as usual, and the old one still only once.
    telegram.user_message(BOT, None, (4242, "Ana"), "and now?", json!({}));
    let sent = telegram.wait_sent(BOT, 2, Duration::from_secs(30)).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    let for_first = sent.iter().filter(|s| s["reply_parameters"]["message_id"] == message_id).count();
    assert_eq!(for_first, 1, "{sent:?}");
}

/// A turn killed in the middle of its model call continues after the
/// restart: the model is asked again with the message once, and one reply
/// goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_killed_in_its_model_call_continues_once_after_the_restart() {
    use chela_fakes::openai::{OpenAiFake, Scripted};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let openai = OpenAiFake::start("sk-fake-openai").await;
    let text = format!(
        r#"{{ models: {{ providers: {{ openai: {{ baseUrl: "{base}" }} }} }},
             agents: {{ defaults: {{ model: "openai/gpt-test" }} }},
             channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"],
                                      accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }} }}"#,
        base = openai.base_url()
    );
    let gw = Gateway::start_with(root, &text, &["channel_webhook_js"]).await;
    openai.hold();
    let body = json!({"id": "k1", "chat": {"type": "direct", "id": "ana"}, "from": {"id": "ana"}, "text": "the long question"});
    let auth = [("authorization", "Bearer inbox-secret"), ("content-type", "application/json")];
    let posted = gw.post("/channels/webhook/inbox/messages", &auth, body.to_string().as_bytes()).await;
    assert_eq!(posted.status, 202, "{}", posted.body);
    let deadline = Instant::now() + Duration::from_secs(30);
    while openai.requests().is_empty() {
        assert!(Instant::now() < deadline, "the turn never reached the model");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill_9(gw).await;
    assert_eq!(transcript_texts(root), ["the long question"], "the message was stored before the model call");

    openai.script([Scripted::Text("the long answer".into())]);
    openai.release();
    let gw = Gateway::start_with(root, &text, &["channel_webhook_js"]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let replies = loop {
        let r = replies_per_message(&gw).await;
        if !r.is_empty() || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(replies.get("k1"), Some(&1), "one reply: {replies:?}");
    let requests = openai.requests();
    let asked = requests.last().expect("the model was asked again");
    let users: Vec<&Value> = asked.1["messages"].as_array().unwrap().iter().filter(|m| m["role"] == "user").collect();
    assert_eq!(users.len(), 1, "the message reached the model once: {users:?}");
    assert_eq!(transcript_texts(root), ["the long question"], "stored once");
}

/// `kill -9` while several Telegram users write to a polling bot: after the
/// restart every message the platform holds is in a transcript and
/// answered. Telegram has no idempotency key for `sendMessage`, so a reply
/// in flight at the kill (sent, not yet marked) can go out twice; per-chat
/// order bounds that to one per chat.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_on_telegram_polling_loses_nothing() {
    use chela_fakes::telegram::TelegramFake;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let telegram = Arc::new(TelegramFake::start().await);
    telegram.add_bot(BOT, 555, "crash_bot");
    let text = telegram_config(&telegram.api_root());
    let gw = Gateway::start_with(root, &text, &["channel_telegram"]).await;
    // Users keep writing without waiting for answers, so the kill finds
    // messages at every stage: not polled, journaled and queued, in a turn,
    // in delivery.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(Mutex::new(BTreeMap::<i64, String>::new()));
    let mut users = Vec::new();
    for u in 0..SENDERS as i64 {
        let (telegram, stop, written) = (telegram.clone(), stop.clone(), written.clone());
        users.push(tokio::spawn(async move {
            for i in 0..15 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let text = format!("telegram {u}-{i}");
                let m = telegram.user_message(BOT, None, (9000 + u, "user"), &text, json!({}));
                let id = m["message"]["message_id"].as_i64().expect("a message id");
                written.lock().unwrap().insert(id, text);
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        }));
    }
    kill_under_load(gw, &stop, users, || telegram.sent(BOT).len() >= 30).await;
    let written: BTreeMap<String, String> =
        written.lock().unwrap().iter().map(|(id, t)| (id.to_string(), t.clone())).collect();

    let _gw = Gateway::start_with(root, &text, &["channel_telegram"]).await;
    let per_message = |sent: &[Value]| {
        let mut n = BTreeMap::<String, usize>::new();
        for s in sent {
            if let Some(id) = s["reply_parameters"]["message_id"].as_i64() {
                *n.entry(id.to_string()).or_default() += 1;
            }
        }
        n
    };
    let t = after_restart(&written, root, async || per_message(&telegram.sent(BOT))).await;
    assert!(t.lost.is_empty(), "written but in no transcript: {:?}", t.lost);
    assert!(t.unanswered.is_empty(), "never answered: {:?}", t.unanswered);
    assert!(t.repeated.is_empty(), "stored twice: {:?}", t.repeated);
    assert!(t.duplicated.len() <= SENDERS, "more duplicates than chats with a reply in flight: {:?}", t.duplicated);
}

/// Two gateways on one state dir would both answer every message: the
/// second is refused with a message that says why, and the first runs on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_gateway_on_the_same_state_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let gw = Gateway::start_with(root, &config(), &["channel_webhook_js"]).await;
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        support::chela(root, &gw.config).args(["gateway", "--port", "0"]).output(),
    )
    .await
    .expect("the second gateway exits")
    .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second gateway started: {stderr}");
    assert!(stderr.contains("in use by another chela gateway"), "{stderr}");
    assert_eq!(gw.get("/readyz", &[]).await.status, 200, "the first one is unaffected");
}

/// The scheduler's state after a restart: `state.json` under the state dir.
fn cron_state(root: &Path) -> Value {
    std::fs::read_to_string(root.join("state/cron/state.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// A scheduled job is claimed before it runs: `kill -9` in the middle of
/// its turn, and the restarted gateway records it as interrupted and never
/// runs it again, while the schedule goes on (another job keeps running) and
/// every next-run time is the one written before the kill. `chela cron run`
/// runs a job at once through the gateway and leaves its schedule alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_job_never_runs_it_twice_and_keeps_next_run_times() {
    use chela_fakes::openai::OpenAiFake;
    let fake = OpenAiFake::start("sk-fake-openai").await;
    fake.hold();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // A port of its own in the config: `chela cron run` finds the gateway there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!("{{ gateway: {{ port: {port} }}, {} }}", support::three_jobs(&fake.base_url()));
    let asked = |what: &str| fake.requests().iter().filter(|(_, body)| body.to_string().contains(what)).count();
    std::fs::write(root.join("chela.json5"), &config).unwrap();
    let gw = Gateway::start_as_installed(root).await;
    support::eventually("the one-shot job is in its model call", || asked("the one-shot job") == 1).await;
    let before = cron_state(root);
    assert!(before["jobs"]["once"]["running"].is_object(), "claimed before it ran: {before:#}");
    let hourly_next = before["jobs"]["hourly"]["nextRunAtMs"].as_i64().expect("hourly has its next run");
    let ticks_before = before["jobs"]["tick"]["runs"].as_u64().unwrap_or(0);
    kill_9(gw).await;

    fake.release();
    let gw = Gateway::start_as_installed(root).await;
    support::eventually("the restart recorded the cut-off run, and later ticks ran", || {
        let s = cron_state(root);
        s["jobs"]["once"]["lastStatus"] == "interrupted"
            && s["jobs"]["tick"]["runs"].as_u64().unwrap_or(0) >= ticks_before + 3
    })
    .await;
    let after = cron_state(root);
    assert_eq!(asked("the one-shot job"), 1, "never run a second time");
    assert!(after["jobs"]["once"]["nextRunAtMs"].is_null() && after["jobs"]["once"]["done"] == true, "{after:#}");
    assert_eq!(after["jobs"]["once"]["runs"], 0, "no run of it finished: {after:#}");
    assert_eq!(after["jobs"]["hourly"]["nextRunAtMs"].as_i64(), Some(hourly_next), "the restart kept the next run");

    let out = support::chela(root, &root.join("chela.json5"))
        .args(["cron", "run", "hourly", "--json"])
        .output()
        .await
        .expect("chela runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["status"], "ok", "{report:#}");
    assert_eq!(report["sessionKey"], "agent:main:cron:hourly", "{report:#}");
    assert_eq!(asked("hourly"), 1);
    assert_eq!(
        cron_state(root)["jobs"]["hourly"]["nextRunAtMs"].as_i64(),
        Some(hourly_next),
        "a forced run keeps the schedule"
    );
    // The history says what happened: the cut-off run, and the forced one.
    let history = |id: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_chela"))
            .arg("--config")
            .arg(root.join("chela.json5"))
            .args(["cron", "runs", id, "--json"])
            .env("CHELA_STATE_DIR", root.join("state"))
            .env("HOME", root)
            .output()
            .expect("chela runs");
        serde_json::from_slice::<Value>(&out.stdout).expect("JSON")
    };
    let once = history("once");
    assert_eq!(once["runs"].as_array().map(Vec::len), Some(1), "{once:#}");
    assert_eq!(once["runs"][0]["status"], "interrupted", "{once:#}");
    let hourly = history("hourly");
    let newest = (hourly["runs"][0]["status"].as_str(), hourly["runs"][0]["forced"].as_bool());
    assert_eq!(newest, (Some("ok"), Some(true)), "{hourly:#}");
    drop(gw);
}
