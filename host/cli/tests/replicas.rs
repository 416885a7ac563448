//! Several `chela gateway` processes on one real PostgreSQL server
//! (`storage`: `CHELA_DATABASE_URL`): they start together on an empty
//! database and migrate it once; one chat's messages, sent to different
//! replicas, are answered from one history; turns of one session never run
//! on two replicas at once; the journal is shared: a replica killed in the
//! middle of a turn has its message answered once by another, a delivery
//! retried to another replica is a duplicate there, and while the database
//! is away webhooks are refused (503) rather than acknowledged unstored.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use chela_fakes::postgres::Cluster;
use serde_json::{json, Value};
use support::Gateway;

mod support;

const REPLICAS: usize = 3;
const TOKEN: &str = "inbox-secret";

fn config() -> String {
    r#"{ channels: { webhook: { dmPolicy: "open", allowFrom: ["*"],
                                accounts: { inbox: { webhookToken: "inbox-secret" } } } } }"#
        .to_string()
}

async fn replica(root: &Path, url: &str) -> Gateway {
    on_database(root, url, &config(), "channel_webhook_js").await
}

/// `chela gateway` with `config` and one adapter, its sessions in the database at `url`.
async fn on_database(root: &Path, url: &str, config: &str, adapter: &str) -> Gateway {
    let mut command = support::chela(root, &root.join("chela.json5"));
    command.env("CHELA_DATABASE_URL", url);
    Gateway::start_as(root, config, &[adapter], command).await
}

/// `chela ARGS` without a gateway, on the database at `url`: its JSON output
/// (`must_succeed`: asserting a zero exit; `doctor` exits 1 on any finding).
async fn cli_on_database(root: &Path, url: &str, args: &[&str], must_succeed: bool) -> Value {
    let out = support::chela(root, &root.join("chela.json5"))
        .args(args)
        .env("CHELA_DATABASE_URL", url)
        .output()
        .await
        .unwrap();
    assert!(!must_succeed || out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e})"))
}

/// Says `text` as `user` to `gw`'s webhook account; the message id is `id`.
async fn say(gw: &Gateway, user: &str, id: &str, text: &str) {
    let answer = post(gw, user, id, text).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
}

/// The webhook delivery of [`say`], whatever the gateway answers.
async fn post(gw: &Gateway, user: &str, id: &str, text: &str) -> chela_fakes::wire::Answer {
    let body = json!({"id": id, "chat": {"type": "direct", "id": user}, "from": {"id": user}, "text": text});
    let headers = [("authorization", "Bearer inbox-secret"), ("content-type", "application/json")];
    gw.post("/channels/webhook/inbox/messages", &headers, body.to_string().as_bytes()).await
}

/// How many replies `gw` sent to message `id` so far.
async fn replies_to(gw: &Gateway, id: &str) -> usize {
    let auth = format!("Bearer {TOKEN}");
    let answer = gw.get("/channels/webhook/inbox/outbox?after=0", &[("authorization", &auth)]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let v: Value = serde_json::from_str(&answer.body).expect("outbox JSON");
    v["messages"].as_array().into_iter().flatten().filter(|m| m["replyTo"] == id).count()
}

/// A counter of `gw`'s `/metrics`: the series of `name` whose labels include `label`.
async fn metric(gw: &Gateway, name: &str, label: &str) -> f64 {
    let m = gw.get("/metrics", &[]).await;
    m.body
        .lines()
        .find(|l| l.starts_with(name) && l.contains(label) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The reply `gw` sent to message `id`, once there is one.
async fn reply_to(gw: &Gateway, id: &str) -> String {
    let auth = format!("Bearer {TOKEN}");
    let deadline = std::time::Instant::now() + support::WAIT;
    loop {
        let answer = gw.get("/channels/webhook/inbox/outbox?after=0", &[("authorization", &auth)]).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let v: Value = serde_json::from_str(&answer.body).expect("outbox JSON");
        let found = v["messages"].as_array().into_iter().flatten().find(|m| m["replyTo"] == id);
        if let Some(m) = found {
            return m["text"].as_str().unwrap_or_default().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no reply to {id} from {}", gw.addr);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The offline model's count of the user messages it saw, from its reply.
fn message_number(reply: &str) -> usize {
    let after = reply.split("(message ").nth(1).unwrap_or_else(|| panic!("no message number in {reply:?}"));
    after.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{reply:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_share_one_history_per_chat_and_run_a_session_on_one_replica_at_a_time() {
    let db = Cluster::start();
    let url = db.url();
    let dirs: Vec<tempfile::TempDir> = (0..REPLICAS).map(|_| tempfile::tempdir().unwrap()).collect();
    // All three start at once on the empty database.
    let (a, b, c) =
        tokio::join!(replica(dirs[0].path(), &url), replica(dirs[1].path(), &url), replica(dirs[2].path(), &url));
    let replicas = [a, b, c];
    assert_eq!(
        db.psql("select version, name from chela_schema_migrations order by version"),
        "1|sessions\n2|leases\n3|journal\n4|settings\n5|kv\n6|documents"
    );
    // One replica runs the cron scheduler, never two.
    let deadline = std::time::Instant::now() + support::WAIT;
    loop {
        let mut holding = 0;
        for gw in &replicas {
            holding += usize::from(leases_of(gw).await.iter().any(|l| l == "scheduler"));
        }
        assert!(holding <= 1, "{holding} replicas run the scheduler");
        if holding == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no replica runs the scheduler");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // One generated control token for all (no token configured): each
    // replica's token file holds the one in the database, and it opens every replica.
    let tokens: BTreeSet<String> =
        dirs.iter().map(|d| std::fs::read_to_string(d.path().join("state/gateway.token")).unwrap()).collect();
    assert_eq!(tokens.len(), 1, "replicas generated different tokens");
    let token = tokens.into_iter().next().unwrap_or_default();
    assert_eq!(db.psql("select value from chela_settings where name = 'gateway.token'"), token);
    for gw in &replicas {
        let bearer = format!("Bearer {token}");
        let health = gw.get("/api/v1/health", &[("authorization", &bearer)]).await;
        assert_eq!(health.status, 200, "{}", health.body);
        let wrong = gw.get("/api/v1/health", &[("authorization", "Bearer not-the-token")]).await;
        assert_eq!(wrong.status, 401, "{}", wrong.body);
    }

    // `chela status` lists the replicas from the database: three alive, one running the scheduler.
    let status = cli_on_database(dirs[0].path(), &url, &["status", "--json"], true).await;
    let listed = status["replicas"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.iter().filter(|r| r["alive"] == true).count(), REPLICAS, "{status:#}");
    let schedulers = listed.iter().filter(|r| r["leases"].as_array().is_some_and(|l| l.contains(&json!("scheduler"))));
    assert_eq!(schedulers.count(), 1, "{status:#}");
    for gw in &replicas {
        let v: Value = serde_json::from_str(&gw.get("/readyz", &[]).await.body).unwrap();
        assert!(listed.iter().any(|r| r["owner"] == v["replica"]["owner"]), "{} not listed: {status:#}", v["replica"]);
    }

    // `chela doctor` checks the database: reachable, migrated, the replicas alive.
    let doctor = cli_on_database(dirs[0].path(), &url, &["doctor", "--json"], false).await;
    let said: Vec<String> = doctor["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["check"] == "database" || f["check"] == "sessions")
        .map(|f| format!("{} {}", f["level"].as_str().unwrap_or("?"), f["message"].as_str().unwrap_or("")))
        .collect();
    assert!(said.iter().any(|m| m.starts_with("ok") && m.contains("schema version 6 of 6")), "{said:?}");
    assert!(said.iter().any(|m| m == &format!("ok {REPLICAS} replica(s) alive")), "{said:?}");
    assert!(said.iter().any(|m| m.contains("main: 0 session(s) in the database")), "{said:?}");

    // One chat, each message to the next replica, each answered before the
    // next: every reply counts the messages all replicas took before it.
    for i in 0..6 {
        let gw = &replicas[i % REPLICAS];
        let id = format!("seq-{i}");
        say(gw, "alice", &id, &format!("hello {i}")).await;
        let reply = reply_to(gw, &id).await;
        assert_eq!(message_number(&reply), i + 1, "replica {} answered from another history: {reply}", i % REPLICAS);
    }

    // Six at once, two to each replica: turns of the session queue up across
    // replicas, so no two see the same history (each number comes once).
    let ids: Vec<String> = (0..6).map(|i| format!("burst-{i}")).collect();
    let sends = ids.iter().enumerate().map(|(i, id)| say(&replicas[i % REPLICAS], "alice", id, "at once"));
    futures_util::future::join_all(sends).await;
    let mut numbers = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        let reply = reply_to(&replicas[i % REPLICAS], id).await;
        assert!(numbers.insert(message_number(&reply)), "two turns saw the same history: {reply}");
    }
    assert_eq!(numbers, (7..=12).collect::<BTreeSet<_>>());

    // And the rows say the same: one session, twelve user messages.
    let sessions = db.psql("select count(*) from chela_sessions");
    assert_eq!(sessions, "1");
    let users = db.psql("select count(*) from chela_transcript_lines where line::json->'message'->>'role' = 'user'");
    assert_eq!(users, "12");
    // A chat's files stay empty: nothing went to a replica's own state dir.
    for d in &dirs {
        assert!(!d.path().join("state/agents/main/sessions/sessions.json").exists());
    }
}

const BOT: &str = "777:LEASE-bot";

/// The leases `gw` says it holds (`/readyz` on loopback has the details).
async fn leases_of(gw: &Gateway) -> Vec<String> {
    let answer = gw.get("/readyz", &[]).await;
    let v: Value = serde_json::from_str(&answer.body).unwrap_or_default();
    v["replica"]["leases"].as_array().into_iter().flatten().filter_map(|l| l.as_str().map(str::to_string)).collect()
}

const POLL_LEASE: &str = "poll:telegram/default";

/// Two Telegram replicas with `config` on `db`, once one of them (the
/// returned index, never both) holds the poller's lease.
async fn two_on_one_bot(db: &Cluster, config: &str) -> (Vec<tempfile::TempDir>, Vec<Gateway>, usize) {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let url = db.url();
    let (a, b) = tokio::join!(
        on_database(dirs[0].path(), &url, config, "channel_telegram"),
        on_database(dirs[1].path(), &url, config, "channel_telegram")
    );
    let replicas = vec![a, b];
    // One of them takes the lease; the other waits.
    let deadline = std::time::Instant::now() + support::WAIT;
    loop {
        let held = [leases_of(&replicas[0]).await, leases_of(&replicas[1]).await];
        let owners: Vec<usize> = (0..2).filter(|i| held[*i].iter().any(|l| l == POLL_LEASE)).collect();
        assert!(owners.len() <= 1, "both replicas hold the poller's lease");
        if let [one] = owners[..] {
            return (dirs, replicas, one);
        }
        assert!(std::time::Instant::now() < deadline, "no replica took the poller's lease");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two replicas on one Telegram bot (long polling): only the lease's owner
/// polls, so the platform never sees two pollers (no 409); killed with
/// `kill -9`, its lease runs out and the other replica polls within 10 s,
/// from the offset the first one stored (channel kv is in the database),
/// answering what was written meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_replica_polls_a_bot_and_another_takes_over_within_ten_seconds_of_a_kill() {
    let db = Cluster::start();
    let telegram = chela_fakes::telegram::TelegramFake::start().await;
    telegram.add_bot(BOT, 777, "lease_bot");
    let config = format!(
        r#"{{ channels: {{ telegram: {{ dmPolicy: "open", allowFrom: ["*"],
               accounts: {{ default: {{ botToken: "{BOT}", apiRoot: "{}" }} }} }} }} }}"#,
        telegram.api_root()
    );
    let (_dirs, mut replicas, owner) = two_on_one_bot(&db, &config).await;
    telegram.user_message(BOT, None, (91, "Ann"), "first", json!({}));
    let sent = telegram.wait_sent(BOT, 1, support::WAIT).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    // A few more polls by the owner: still no second poller.
    let polls = telegram.polls(BOT);
    support::eventually("more polls", || telegram.polls(BOT) >= polls + 2).await;
    assert_eq!(telegram.conflicts(BOT), 0, "two replicas polled the bot at once");

    // kill -9 the owner; the survivor polls and answers within 10 s.
    let mut dead = replicas.remove(owner);
    dead.child.start_kill().unwrap();
    dead.child.wait().await.unwrap();
    let killed = std::time::Instant::now();
    let before = telegram.poll_offsets(BOT);
    telegram.user_message(BOT, None, (91, "Ann"), "second", json!({}));
    let sent = telegram.wait_sent(BOT, 2, Duration::from_secs(20)).await;
    assert_eq!(sent.len(), 2, "the survivor did not take the poller over: {sent:?}");
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(10), "the survivor answered {took:?} after the kill");
    assert!(leases_of(&replicas[0]).await.iter().any(|l| l == POLL_LEASE));
    // It went on from the first owner's offset, not from 0 (its own state dir has none).
    let reached = before.iter().copied().max().unwrap_or(0);
    let resumed = telegram.poll_offsets(BOT).get(before.len()).copied();
    assert!(reached > 0, "the first owner never confirmed an update: {before:?}");
    assert!(resumed >= Some(reached), "the survivor polled from {resumed:?}, the first owner had reached {reached}");
    let text = sent[1]["text"].as_str().unwrap_or_default();
    assert!(text.contains("(message 2 of this conversation)"), "{text}");
    assert_eq!(telegram.conflicts(BOT), 0);
}

/// What `/readyz` says of the database (`replica.database`).
async fn database_state(gw: &Gateway) -> String {
    let v: Value = serde_json::from_str(&gw.get("/readyz", &[]).await.body).unwrap_or_default();
    v["replica"]["database"].as_str().unwrap_or_default().to_string()
}

/// PostgreSQL stopped under a running gateway: `/readyz` says the database
/// is unreachable, a message accepted meanwhile waits instead of failing,
/// and once the server is back it is answered, once, from the stored history.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restart_loses_no_accepted_message() {
    let mut db = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let gw = replica(dir.path(), &db.url()).await;
    say(&gw, "bob", "before", "one").await;
    assert_eq!(message_number(&reply_to(&gw, "before").await), 1);

    db.stop();
    // Nothing can be stored: the webhook is refused so the platform retries,
    // never acknowledged and lost.
    let refused = post(&gw, "bob", "during", "two").await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    let deadline = std::time::Instant::now() + support::WAIT;
    while database_state(&gw).await == "ok" {
        assert!(std::time::Instant::now() < deadline, "/readyz never said the database is away");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    db.resume();
    // The platform's retry, once the database is back: accepted and answered.
    let deadline = std::time::Instant::now() + support::WAIT;
    loop {
        let retried = post(&gw, "bob", "during", "two").await;
        if retried.status == 202 {
            break;
        }
        assert_eq!(retried.status, 503, "{}", retried.body);
        assert!(std::time::Instant::now() < deadline, "the retry was never accepted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(message_number(&reply_to(&gw, "during").await), 2);
    say(&gw, "bob", "after", "three").await;
    assert_eq!(message_number(&reply_to(&gw, "after").await), 3);
    let deadline = std::time::Instant::now() + support::WAIT;
    while database_state(&gw).await != "ok" {
        assert!(std::time::Instant::now() < deadline, "/readyz still says the database is away");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each answered once: three replies in the outbox, three turns stored.
    let auth = format!("Bearer {TOKEN}");
    let outbox: Value =
        serde_json::from_str(&gw.get("/channels/webhook/inbox/outbox?after=0", &[("authorization", &auth)]).await.body)
            .unwrap();
    assert_eq!(outbox["messages"].as_array().map(Vec::len), Some(3), "{outbox}");
    let users = db.psql("select count(*) from chela_transcript_lines where line::json->'message'->>'role' = 'user'");
    assert_eq!(users, "3");
    // The CLI without a gateway reads the same database (none of it is in the files).
    let listed = cli_on_database(dir.path(), &db.url(), &["sessions", "list", "--json"], true).await;
    let keys: Vec<&str> =
        listed["sessions"].as_array().into_iter().flatten().filter_map(|r| r["key"].as_str()).collect();
    assert_eq!(keys.len(), 1, "{listed}");
    let count = format!("select count(*) from chela_sessions where key = '{}'", keys[0]);
    assert_eq!(db.psql(&count), "1");
}

/// `kill -9` of a replica in the middle of a turn (its model call held):
/// once its replica lease runs out another replica claims the message from
/// the shared journal, runs the turn (continuing the stored one, not
/// repeating it) and answers it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_turn_has_its_message_answered_once_by_another() {
    use chela_fakes::openai::{OpenAiFake, Scripted};
    let db = Cluster::start();
    let url = db.url();
    let openai = OpenAiFake::start("sk-fake-openai").await;
    let config = format!(
        r#"{{ models: {{ providers: {{ openai: {{ baseUrl: "{}" }} }} }},
             agents: {{ defaults: {{ model: "openai/gpt-test" }} }},
             channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"],
                                      accounts: {{ inbox: {{ webhookToken: "{TOKEN}" }} }} }} }} }}"#,
        openai.base_url()
    );
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, b) = tokio::join!(
        on_database(dirs[0].path(), &url, &config, "channel_webhook_js"),
        on_database(dirs[1].path(), &url, &config, "channel_webhook_js")
    );
    openai.hold();
    say(&a, "carol", "mid-1", "the long question").await;
    let deadline = std::time::Instant::now() + support::WAIT;
    while openai.requests().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the turn never reached the model");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut a = a;
    a.child.start_kill().unwrap();
    a.child.wait().await.unwrap();
    openai.script([Scripted::Text("the long answer".into())]);
    openai.release();

    // The survivor answers it (its replica lease is 6 s; it claims every 2 s).
    let killed = std::time::Instant::now();
    let deadline = killed + Duration::from_secs(30);
    while replies_to(&b, "mid-1").await == 0 {
        assert!(std::time::Instant::now() < deadline, "no replica took the message over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = killed.elapsed();
    eprintln!("taken over and answered {took:?} after the kill");
    assert!(took < Duration::from_secs(15), "taken over {took:?} after the kill");
    assert_eq!(metric(&b, "chela_takeovers_total", "").await, 1.0);
    // Answered once, from one stored turn: the message reached the model once more, not twice over.
    let auth = format!("Bearer {TOKEN}");
    let outbox: Value =
        serde_json::from_str(&b.get("/channels/webhook/inbox/outbox?after=0", &[("authorization", &auth)]).await.body)
            .unwrap();
    let replies: Vec<&Value> =
        outbox["messages"].as_array().into_iter().flatten().filter(|m| m["replyTo"] == "mid-1").collect();
    assert_eq!(replies.len(), 1, "{outbox}");
    assert_eq!(replies[0]["text"], "the long answer");
    let asked = openai.requests();
    let last = asked.last().expect("the model was asked again");
    let users = last.1["messages"].as_array().unwrap().iter().filter(|m| m["role"] == "user").count();
    assert_eq!(users, 1, "the message reached the model once: {}", last.1);
    let stored = db.psql("select count(*) from chela_transcript_lines where line::json->'message'->>'role' = 'user'");
    assert_eq!(stored, "1");
    // The journal agrees: one event, finished, now the survivor's; one reply, sent.
    assert_eq!(db.psql("select count(*), bool_and(finished_at is not null) from chela_inbound"), "1|t");
    assert_eq!(db.psql("select count(*), min(outcome) from chela_outbox"), "1|sent");
    let owner = db.psql("select owner from chela_inbound");
    let v: Value = serde_json::from_str(&b.get("/readyz", &[]).await.body).unwrap();
    assert_eq!(v["replica"]["owner"].as_str(), Some(owner.as_str()));
}

/// A platform that retries a webhook delivery to another replica (behind a
/// load balancer, after a timeout): the shared journal knows its message
/// id, so the second replica acknowledges it as a duplicate and only the
/// first answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_retried_to_another_replica_is_answered_once() {
    let db = Cluster::start();
    let url = db.url();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, b) = tokio::join!(replica(dirs[0].path(), &url), replica(dirs[1].path(), &url));
    say(&a, "dave", "retried-1", "only once please").await;
    say(&b, "dave", "retried-1", "only once please").await;
    assert_eq!(
        metric(&b, "chela_messages_dropped_total", r#"reason="duplicate""#).await,
        1.0,
        "the second replica did not see the first's message id"
    );
    assert_eq!(message_number(&reply_to(&a, "retried-1").await), 1);
    // The next message (to the second replica) finds one turn before it.
    say(&b, "dave", "next-1", "and this").await;
    assert_eq!(message_number(&reply_to(&b, "next-1").await), 2);
    // One reply, in the account's one outbox (plugin kv is in the database): either replica shows it.
    assert_eq!(replies_to(&a, "retried-1").await, 1);
    assert_eq!(replies_to(&b, "retried-1").await, 1);
    assert_eq!(db.psql("select count(*) from chela_inbound where dedupe like '%retried-1'"), "1");
}

/// `kill -9` of the poll owner while users keep writing: the survivor takes
/// the poller over, Telegram re-sends what the dead owner had not
/// confirmed (the shared journal drops what it had accepted), the dead
/// owner's accepted but unanswered messages are claimed, and every message
/// is stored once and answered. Telegram has no idempotency key for
/// `sendMessage`, so a reply in flight at the kill (sent, not yet marked)
/// may go twice: at most one per chat.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_poll_owner_killed_under_load_loses_and_repeats_nothing() {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    const SENDERS: i64 = 3;
    let db = Cluster::start();
    let telegram = Arc::new(chela_fakes::telegram::TelegramFake::start().await);
    telegram.add_bot(BOT, 777, "lease_bot");
    let config = format!(
        r#"{{ session: {{ dmScope: "per-channel-peer" }},
             channels: {{ telegram: {{ dmPolicy: "open", allowFrom: ["*"],
               accounts: {{ default: {{ botToken: "{BOT}", apiRoot: "{}" }} }} }} }} }}"#,
        telegram.api_root()
    );
    let (_dirs, mut replicas, owner) = two_on_one_bot(&db, &config).await;
    // Users write without waiting for answers, so the kill finds messages
    // at every stage: not polled, accepted and queued, in a turn, in delivery.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(Mutex::new(BTreeMap::<i64, String>::new()));
    let mut users = Vec::new();
    for u in 0..SENDERS {
        let (telegram, written, stop) = (telegram.clone(), written.clone(), stop.clone());
        users.push(tokio::spawn(async move {
            for i in 0..15 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let text = format!("load {u}-{i}");
                let m = telegram.user_message(BOT, None, (5000 + u, "user"), &text, json!({}));
                let id = m["message"]["message_id"].as_i64().expect("a message id");
                written.lock().unwrap().insert(id, text);
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        }));
    }
    support::eventually("some answers before the kill", || telegram.sent(BOT).len() >= 8).await;
    let mut dead = replicas.remove(owner);
    dead.child.start_kill().unwrap();
    dead.child.wait().await.unwrap();
    let killed = std::time::Instant::now();
    for u in users {
        u.await.unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    let written = written.lock().unwrap().clone();

    // Every message answered (by one replica or the other), within the takeover.
    let answers = |sent: &[Value]| {
        let mut n = BTreeMap::<i64, usize>::new();
        for s in sent {
            if let Some(id) = s["reply_parameters"]["message_id"].as_i64() {
                *n.entry(id).or_default() += 1;
            }
        }
        n
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let per_message = loop {
        let n = answers(&telegram.sent(BOT));
        if written.keys().all(|id| n.contains_key(id)) {
            break n;
        }
        let missing: Vec<&String> = written.iter().filter(|(id, _)| !n.contains_key(id)).map(|(_, t)| t).collect();
        assert!(std::time::Instant::now() < deadline, "never answered after the kill: {missing:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("{} messages, all answered {:?} after the kill", written.len(), killed.elapsed());
    let twice: Vec<&String> = written.iter().filter(|(id, _)| per_message.get(id) > Some(&1)).map(|(_, t)| t).collect();
    assert!(twice.len() <= SENDERS as usize, "more duplicates than chats with a reply in flight: {twice:?}");
    assert_eq!(telegram.conflicts(BOT), 0, "two replicas polled the bot at once");
    // Stored once each: one user line per message written, in one shared database.
    let stored = db.psql("select count(*) from chela_transcript_lines where line::json->'message'->>'role' = 'user'");
    assert_eq!(stored, written.len().to_string(), "a message stored twice or not at all");
    assert_eq!(db.psql("select count(*) from chela_inbound"), written.len().to_string(), "accepted once each");
}

/// PostgreSQL stopped and started again while users write to two replicas:
/// meanwhile the webhooks answer 503 (nothing acknowledged that could not
/// be stored), the platform's retries are accepted once it is back, and
/// every message acknowledged before, during the retries or after is
/// answered exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restart_under_load_refuses_then_answers_everything_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    const SENDERS: usize = 3;
    const EACH: usize = 10;
    let mut db = Cluster::start();
    let url = db.url();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, b) = tokio::join!(replica(dirs[0].path(), &url), replica(dirs[1].path(), &url));
    let replicas = Arc::new([a, b]);
    let refused = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let mut users = Vec::new();
    for u in 0..SENDERS {
        let (replicas, refused, accepted) = (replicas.clone(), refused.clone(), accepted.clone());
        users.push(tokio::spawn(async move {
            for i in 0..EACH {
                // A platform delivers until it is acknowledged, to either replica.
                let id = format!("load-{u}-{i}");
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                let mut attempt = 0;
                loop {
                    let answer = post(&replicas[(u + i + attempt) % 2], &format!("user{u}"), &id, "hello").await;
                    if answer.status == 202 {
                        break;
                    }
                    assert_eq!(answer.status, 503, "{}", answer.body);
                    assert!(answer.body.contains("retry"), "{}", answer.body);
                    refused.fetch_add(1, Ordering::SeqCst);
                    assert!(std::time::Instant::now() < deadline, "{id} never accepted");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                accepted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }));
    }
    support::eventually("a third of the messages accepted", || accepted.load(Ordering::SeqCst) >= SENDERS * EACH / 3)
        .await;
    db.stop();
    support::eventually("a delivery refused while the database is away", || refused.load(Ordering::SeqCst) > 0).await;
    db.resume();
    for u in users {
        u.await.unwrap();
    }
    assert_eq!(accepted.load(Ordering::SeqCst), SENDERS * EACH);
    // Each answered once, by whichever replica holds it, into the account's
    // one outbox (plugin kv is in the database: either replica shows it).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for u in 0..SENDERS {
        for i in 0..EACH {
            let id = format!("load-{u}-{i}");
            loop {
                let n = replies_to(&replicas[0], &id).await;
                if n == 1 {
                    break;
                }
                assert_eq!(n, 0, "{id} answered {n} times");
                assert!(std::time::Instant::now() < deadline, "{id} never answered");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // Once more, from each replica, now that every one has its answer.
    for gw in replicas.iter() {
        let auth = format!("Bearer {TOKEN}");
        let outbox: Value = serde_json::from_str(
            &gw.get("/channels/webhook/inbox/outbox?after=0", &[("authorization", &auth)]).await.body,
        )
        .unwrap();
        let total = outbox["messages"].as_array().map_or(0, Vec::len);
        assert_eq!(total, SENDERS * EACH, "replies in all, seen from {}: one per message", gw.addr);
    }
    let users = db.psql("select count(*) from chela_transcript_lines where line::json->'message'->>'role' = 'user'");
    assert_eq!(users, (SENDERS * EACH).to_string(), "each message stored once");
    assert_eq!(db.psql("select count(*) from chela_inbound"), (SENDERS * EACH).to_string());
    eprintln!("{} deliveries refused while the database was away", refused.load(Ordering::SeqCst));
}

/// DM pairing on replicas: a stranger's request made on one replica is
/// listed and approved by `chela pairing` on the database (from a machine
/// with neither replica's state dir), and the approved sender is then
/// answered by the other replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pairing_request_made_on_one_replica_is_approved_once_for_all() {
    let db = Cluster::start();
    let url = db.url();
    let config = r#"{ channels: { webhook: { dmPolicy: "pairing",
                        accounts: { inbox: { webhookToken: "inbox-secret" } } } } }"#;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, b) = tokio::join!(
        on_database(dirs[0].path(), &url, config, "channel_webhook_js"),
        on_database(dirs[1].path(), &url, config, "channel_webhook_js")
    );
    let cli = dirs[2].path();
    std::fs::write(cli.join("chela.json5"), config).unwrap();
    say(&a, "stranger", "p1", "hello").await;
    let deadline = std::time::Instant::now() + support::WAIT;
    let code = loop {
        let listed = cli_on_database(cli, &url, &["pairing", "list", "webhook", "--json"], true).await;
        if let Some(code) = listed["requests"][0]["code"].as_str() {
            assert_eq!(listed["requests"][0]["id"], "stranger", "{listed}");
            break code.to_string();
        }
        assert!(std::time::Instant::now() < deadline, "the request made on one replica is not in the database");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The code went out through the account's outbox (plugin kv: the same on both replicas).
    let auth = format!("Bearer {TOKEN}");
    let outbox = b.get("/channels/webhook/inbox/outbox?after=0", &[("authorization", &auth)]).await;
    assert!(outbox.body.contains(&code), "the code was not sent: {}", outbox.body);
    let approved = cli_on_database(cli, &url, &["pairing", "approve", "webhook", &code, "--json"], true).await;
    assert_eq!(approved["approved"]["id"], "stranger", "{approved}");
    // The other replica answers the approved sender.
    say(&b, "stranger", "p2", "hi again").await;
    let reply = reply_to(&b, "p2").await;
    assert!(reply.contains("(message 1 of this conversation)"), "{reply}");
    // And a second approval of the same code finds nothing pending.
    let again = support::chela(cli, &cli.join("chela.json5"))
        .args(["pairing", "approve", "webhook", &code])
        .env("CHELA_DATABASE_URL", &url)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && stderr.contains("no pending pairing request"), "{stderr}");
    drop((a, b));
}

/// The scheduler's state as the replicas' database has it (`cron/state.json`).
fn shared_cron_state(db: &Cluster) -> Value {
    serde_json::from_str(&db.psql("select body from chela_documents where name = 'cron/state.json'"))
        .unwrap_or(Value::Null)
}

/// The scheduler runs on the replica holding its lease and keeps its state
/// in the database: `kill -9` that replica in the middle of a one-shot job,
/// and the replica that takes the scheduler over finds the claim, records
/// the run as interrupted and never runs it again, keeps every next-run
/// time the first one wrote, and goes on with the schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_scheduler_taken_over_after_a_kill_runs_no_job_twice() {
    use chela_fakes::openai::OpenAiFake;
    let db = Cluster::start();
    let url = db.url();
    let fake = OpenAiFake::start("sk-fake-openai").await;
    fake.hold();
    let config = format!("{{ {} }}", support::three_jobs(&fake.base_url()));
    let asked = |what: &str| fake.requests().iter().filter(|(_, body)| body.to_string().contains(what)).count();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, b) = tokio::join!(
        on_database(dirs[0].path(), &url, &config, "channel_webhook_js"),
        on_database(dirs[1].path(), &url, &config, "channel_webhook_js")
    );
    let mut replicas = vec![a, b];
    support::eventually("the one-shot job is in its model call", || asked("the one-shot job") == 1).await;
    let mut owner = None;
    for (i, gw) in replicas.iter().enumerate() {
        if leases_of(gw).await.iter().any(|l| l == "scheduler") {
            owner = Some(i);
        }
    }
    let owner = owner.expect("a replica holds the scheduler's lease");
    let before = shared_cron_state(&db);
    assert!(before["jobs"]["once"]["running"].is_object(), "claimed in the database before it ran: {before:#}");
    let hourly_next = before["jobs"]["hourly"]["nextRunAtMs"].as_i64().expect("hourly has its next run");
    let ticks_before = before["jobs"]["tick"]["runs"].as_u64().unwrap_or(0);
    let mut dead = replicas.remove(owner);
    dead.child.start_kill().unwrap();
    dead.child.wait().await.unwrap();
    fake.release();

    // The survivor takes the lease over and goes on from the shared state.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let s = shared_cron_state(&db);
        if s["jobs"]["once"]["lastStatus"] == "interrupted"
            && s["jobs"]["tick"]["runs"].as_u64() >= Some(ticks_before + 3)
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the survivor did not take the scheduler over: {s:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(leases_of(&replicas[0]).await.iter().any(|l| l == "scheduler"));
    let after = shared_cron_state(&db);
    assert_eq!(asked("the one-shot job"), 1, "run a second time by the replica that took over");
    assert!(after["jobs"]["once"]["done"] == true && after["jobs"]["once"]["runs"] == 0, "{after:#}");
    assert_eq!(after["jobs"]["hourly"]["nextRunAtMs"].as_i64(), Some(hourly_next), "the takeover kept the next run");
    assert!(!dirs[1 - owner].path().join("state/cron/state.json").exists(), "scheduler state in a state dir");
    // `chela cron runs` on the database, from neither replica's state dir, shows the cut-off run.
    let cli = tempfile::tempdir().unwrap();
    std::fs::write(cli.path().join("chela.json5"), &config).unwrap();
    let once = cli_on_database(cli.path(), &url, &["cron", "runs", "once", "--json"], true).await;
    assert_eq!(once["runs"][0]["status"], "interrupted", "{once:#}");
}

/// Two replicas on one Discord bot: one holds the Gateway connection; when
/// it is killed, the other takes the connection over and RESUMEs the
/// session the first stored (plugin kv is in the database), so a message
/// written while no replica was connected is replayed and answered, and
/// the bot never identifies a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_discord_connection_taken_over_resumes_the_stored_session() {
    const TOKEN_D: &str = "MTEx.lease-bot-token";
    let db = Cluster::start();
    let url = db.url();
    let discord = chela_fakes::discord::DiscordFake::start().await;
    discord.set_heartbeat_interval(400);
    discord.add_bot(TOKEN_D, "1000000000000000077", "lease", true);
    let config = format!(
        r#"{{ channels: {{ discord: {{ dmPolicy: "open", allowFrom: ["*"], apiBase: "{}",
               accounts: {{ default: {{ token: "{TOKEN_D}" }} }} }} }} }}"#,
        discord.api_base()
    );
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, b) = tokio::join!(
        on_database(dirs[0].path(), &url, &config, "channel_discord"),
        on_database(dirs[1].path(), &url, &config, "channel_discord")
    );
    let mut replicas = vec![a, b];
    assert!(discord.wait_connected(TOKEN_D, support::WAIT).await, "a replica connected");
    discord.user_message(TOKEN_D, None, ("1100000000000000005", "Ada"), "first", &[], false);
    assert_eq!(discord.wait_sent(TOKEN_D, 1, support::WAIT).await.len(), 1);
    assert_eq!(discord.counts(TOKEN_D).0, 1, "identified once");
    let lease = "poll:discord/default";
    let mut owner = None;
    for (i, gw) in replicas.iter().enumerate() {
        if leases_of(gw).await.iter().any(|l| l == lease) {
            owner = Some(i);
        }
    }
    let mut dead = replicas.remove(owner.expect("a replica holds the connection's lease"));
    dead.child.start_kill().unwrap();
    dead.child.wait().await.unwrap();
    // Written while nobody is connected: the resumed session replays it.
    discord.user_message(TOKEN_D, None, ("1100000000000000005", "Ada"), "while nobody listened", &[], false);
    let sent = discord.wait_sent(TOKEN_D, 2, Duration::from_secs(30)).await;
    assert_eq!(sent.len(), 2, "the message written meanwhile was not answered: {sent:?}");
    let (identifies, resumes, _) = discord.counts(TOKEN_D);
    assert_eq!((identifies, resumes.min(1)), (1, 1), "the new owner resumed instead of identifying again");
    assert!(leases_of(&replicas[0]).await.iter().any(|l| l == lease));
}
