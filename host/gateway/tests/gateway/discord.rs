//! The Discord adapter component (`plugins/channel-discord`) in a real
//! gateway against the Discord fake (`tests/fakes`): a real WebSocket
//! gateway (HELLO, heartbeats, IDENTIFY, READY, RESUME, close codes) and
//! REST. The same component would talk to discord.com with only `apiBase`
//! changed.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use chela_fakes::discord::DiscordFake;
use chela_gateway::Running;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);
const MAIN: &str = "MTEx.main-bot-token";
const OPS: &str = "MTEx.ops-bot-token";
const MAIN_ID: &str = "1100000000000000009";
const OPS_ID: &str = "1100000000000000010";

fn config(root: &Path, api: &str) -> String {
    format!(
        r#"{{
  agents: {{ list: [
    {{ id: "work", default: true, workspace: "{root}/ws-work", identity: {{ name: "Atlas" }} }},
    {{ id: "support", workspace: "{root}/ws-support", identity: {{ name: "Sage" }} }},
  ] }},
  bindings: [
    {{ agentId: "support", match: {{ channel: "discord", accountId: "main", peer: {{ kind: "channel", id: "1200000000000000003" }} }} }},
    {{ agentId: "support", match: {{ channel: "discord", accountId: "main", guildId: "1200000000000000001", roles: ["1250000000000000001"] }} }},
    {{ agentId: "work", match: {{ channel: "discord", accountId: "main" }} }},
    {{ agentId: "support", match: {{ channel: "discord", accountId: "ops" }} }},
  ],
  channels: {{ discord: {{
    dmPolicy: "open", allowFrom: ["*"], groupPolicy: "open", groups: {{ "*": {{ requireMention: true }} }},
    apiBase: "{api}",
    accounts: {{ main: {{ token: "{MAIN}" }}, ops: {{ token: "{OPS}" }} }},
  }} }},
}}"#,
        root = root.display()
    )
}

const GUILD: &str = "1200000000000000001";
const GENERAL: &str = "1200000000000000002";
const HELP: &str = "1200000000000000003";
const HELP_THREAD: &str = "1200000000000000004";
const ADMIN_ROLE: &str = "1250000000000000001";

async fn fake(heartbeat_ms: u64) -> DiscordFake {
    let fake = DiscordFake::start().await;
    fake.set_heartbeat_interval(heartbeat_ms);
    fake.add_bot(MAIN, MAIN_ID, "atlas", true);
    fake.add_bot(OPS, OPS_ID, "sage", true);
    fake.add_guild(GUILD, &[GENERAL, HELP], &[(HELP_THREAD, HELP)]);
    fake
}

async fn start(root: &Path, fake: &DiscordFake) -> Running {
    let gw = common::serve(root, &config(root, &fake.api_base()), &["channel_discord"]).await;
    assert!(fake.wait_connected(MAIN, WAIT).await && fake.wait_connected(OPS, WAIT).await, "both bots connected");
    gw
}

fn content(v: &Value) -> &str {
    v["content"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_guild_roles_threads_accounts_long_replies_and_rate_limits() {
    let fake = fake(41_250).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), &fake).await;

    // A DM to the main bot: `work` answers in the DM channel, replying to it.
    let id = fake.user_message(MAIN, None, ("1100000000000000005", "Ada"), "hello", &[], false);
    let sent = fake.wait_sent(MAIN, 1, WAIT).await;
    assert_eq!(sent.len(), 1, "no reply");
    assert!(content(&sent[0].1).starts_with("Atlas (agent `work`)"), "{:?}", sent[0]);
    assert_eq!(sent[0].1["message_reference"]["message_id"], id.as_str());
    assert_eq!(sent[0].1["allowed_mentions"]["parse"], serde_json::json!([]), "model output never pings");
    // The same user to the ops bot: `support`, through the ops bot only.
    fake.user_message(OPS, None, ("1100000000000000005", "Ada"), "ops question", &[], false);
    let ops = fake.wait_sent(OPS, 1, WAIT).await;
    assert!(content(&ops[0].1).starts_with("Sage (agent `support`)"), "{:?}", ops[0]);
    assert_eq!(fake.sent(MAIN).len(), 1, "a reply never leaves through another bot");

    // A guild channel: no mention → nothing; a mention → `work`, in the channel.
    fake.user_message(MAIN, Some(GENERAL), ("1100000000000000006", "Bo"), "just chatting", &[], false);
    fake.user_message(MAIN, Some(GENERAL), ("1100000000000000006", "Bo"), "status?", &[], true);
    let sent = fake.wait_sent(MAIN, 2, WAIT).await;
    assert_eq!(sent[1].0, GENERAL);
    assert!(content(&sent[1].1).starts_with("Atlas"), "{:?}", sent[1]);
    // A member with the admin role: guild+roles binding → `support`.
    fake.user_message(MAIN, Some(GENERAL), ("1100000000000000007", "Cy"), "deploy?", &[ADMIN_ROLE], true);
    let sent = fake.wait_sent(MAIN, 3, WAIT).await;
    assert!(content(&sent[2].1).starts_with("Sage (agent `support`)"), "{:?}", sent[2]);
    // A thread under #help inherits #help's binding (parent peer) and is answered in the thread.
    fake.user_message(MAIN, Some(HELP_THREAD), ("1100000000000000006", "Bo"), "in the thread", &[], true);
    let sent = fake.wait_sent(MAIN, 4, WAIT).await;
    assert_eq!(sent[3].0, HELP_THREAD);
    assert!(content(&sent[3].1).starts_with("Sage (agent `support`)"), "{:?}", sent[3]);

    // A long reply: parts of at most 2000 characters, only the first replies.
    let long = "word ".repeat(500);
    fake.user_message(MAIN, None, ("1100000000000000008", "Di"), long.trim(), &[], false);
    let sent = fake.wait_sent(MAIN, 6, WAIT).await;
    let parts: Vec<&Value> = sent[4..].iter().map(|(_, b)| b).collect();
    assert!(parts.len() >= 2, "{parts:?}");
    assert!(parts.iter().all(|p| content(p).chars().count() <= 2000));
    assert!(parts[0]["message_reference"].is_object() && parts[1]["message_reference"].is_null());

    // 429 with retry_after: the reply is created once, after the wait.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before_n = fake.sent(MAIN).len();
    fake.rate_limit_next_send(MAIN, 1.2);
    let before = Instant::now();
    fake.user_message(MAIN, None, ("1100000000000000005", "Ada"), "again", &[], false);
    let sent = fake.wait_sent(MAIN, before_n + 1, WAIT).await;
    assert!(content(&sent[before_n].1).contains("again"), "{:?}", sent[before_n]);
    assert!(before.elapsed() >= Duration::from_millis(1200), "retry_after was honoured");

    // The bot's own messages came back over the gateway and were ignored.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.sent(MAIN).len(), before_n + 1);
    assert!(fake.user_agents(MAIN).iter().all(|ua| ua.starts_with("DiscordBot (")));
    assert!(gw.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_resume_after_drops_restarts_and_zombies() {
    let fake = fake(400).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), &fake).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (identifies, resumes, beats) = fake.counts(MAIN);
    assert_eq!((identifies, resumes), (1, 0));
    assert!(beats >= 2, "heartbeats every interval: {beats}");
    assert!(fake.connected(MAIN), "heartbeats kept the connection");

    // A drop (4000): messages sent meanwhile are replayed on RESUME and answered once.
    fake.close(MAIN, 4000);
    fake.user_message(MAIN, None, ("1100000000000000005", "Ada"), "while dropped", &[], false);
    let sent = fake.wait_sent(MAIN, 1, WAIT).await;
    assert!(content(&sent[0].1).contains("while dropped"), "{sent:?}");
    assert_eq!(fake.counts(MAIN).0, 1, "resumed, not identified again");
    assert!(fake.counts(MAIN).1 >= 1);

    // op 7 RECONNECT: resume again.
    let resumes = fake.counts(MAIN).1;
    fake.request_reconnect(MAIN);
    fake.user_message(MAIN, None, ("1100000000000000005", "Ada"), "after reconnect", &[], false);
    let sent = fake.wait_sent(MAIN, 2, WAIT).await;
    assert!(content(&sent[1].1).contains("after reconnect"), "{sent:?}");
    assert!(fake.counts(MAIN).1 > resumes);

    // A zombie connection (no ACKs): the adapter closes and resumes on its own.
    let resumes = fake.counts(MAIN).1;
    fake.ack_heartbeats(false);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    fake.ack_heartbeats(true);
    fake.user_message(MAIN, None, ("1100000000000000005", "Ada"), "after the zombie", &[], false);
    let sent = fake.wait_sent(MAIN, 3, WAIT).await;
    assert!(content(&sent[2].1).contains("after the zombie"), "{sent:?}");
    assert!(fake.counts(MAIN).1 > resumes, "resumed after missing ACKs");

    // A gateway restart: the session is in kv; what arrived meanwhile is replayed, nothing twice.
    assert!(gw.shutdown().await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    fake.user_message(MAIN, None, ("1100000000000000005", "Ada"), "while restarting", &[], false);
    let gw = start(dir.path(), &fake).await;
    let sent = fake.wait_sent(MAIN, 4, WAIT).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let all = fake.sent(MAIN);
    assert_eq!(all.len(), 4, "nothing lost, nothing repeated: {all:?}");
    assert!(content(&sent[3].1).contains("while restarting"));
    assert_eq!(fake.counts(MAIN).0, 1, "still the first session");

    // INVALID_SESSION (not resumable): identify anew.
    fake.invalidate_session(MAIN, false);
    assert!(fake.wait_connected(MAIN, WAIT).await);
    let deadline = Instant::now() + WAIT;
    while fake.counts(MAIN).0 < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fake.counts(MAIN).0, 2);
    fake.user_message(MAIN, None, ("1100000000000000005", "Ada"), "new session", &[], false);
    let sent = fake.wait_sent(MAIN, 5, WAIT).await;
    assert!(content(&sent[4].1).contains("new session"), "{sent:?}");
    assert!(gw.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disallowed_intents_stop_the_account_without_a_reconnect_storm() {
    let fake = fake(41_250).await;
    fake.add_bot(MAIN, MAIN_ID, "atlas", false); // MESSAGE CONTENT not enabled in the portal
    let dir = tempfile::tempdir().unwrap();
    let gw = common::serve(dir.path(), &config(dir.path(), &fake.api_base()), &["channel_discord"]).await;
    assert!(fake.wait_connected(OPS, WAIT).await, "the other account is unaffected");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fake.counts(MAIN).0, 1, "4014 is fatal: identified once, never again");
    assert!(!fake.connected(MAIN));
    fake.user_message(OPS, None, ("1100000000000000005", "Ada"), "still here?", &[], false);
    assert_eq!(fake.wait_sent(OPS, 1, WAIT).await.len(), 1);
    assert!(gw.shutdown().await);
}

/// A config edit touching one account starts only that account over: the
/// other bot's gateway connection is neither closed nor resumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_one_account_restarts_only_that_account() {
    let fake = fake(41_250).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let gw = start(root, &fake).await;
    let text = config(root, &fake.api_base());
    let apply = |text: String| {
        let gateway = gw.gateway.clone();
        async move {
            let cfg = chela_core::config::load_str(&text, None).expect("config loads").config;
            gateway.apply_config(std::sync::Arc::new(cfg)).await;
        }
    };
    let main_before = fake.counts(MAIN);
    let ops_before = fake.counts(OPS);

    // `ops` gets a new setting: it identifies afresh; `main` is untouched.
    let ops_edited = format!(r#"ops: {{ token: "{OPS}", allowBots: true }}"#);
    apply(text.replace(&format!(r#"ops: {{ token: "{OPS}" }}"#), &ops_edited)).await;
    let deadline = Instant::now() + WAIT;
    while fake.counts(OPS).0 == ops_before.0 {
        assert!(Instant::now() < deadline, "ops never identified again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(fake.wait_connected(OPS, WAIT).await);
    let (main_now, ops_now) = (fake.counts(MAIN), fake.counts(OPS));
    assert_eq!((main_now.0, main_now.1), (main_before.0, main_before.1), "main neither identified nor resumed");
    assert_eq!(ops_now.0, ops_before.0 + 1, "ops identified once more");
    assert!(fake.connected(MAIN));
    fake.user_message(OPS, None, ("1100000000000000005", "Ada"), "still there?", &[], false);
    assert_eq!(fake.wait_sent(OPS, 1, WAIT).await.len(), 1, "ops answers after its restart");

    // `ops` refused (no token): named in /readyz; `main` still answers.
    apply(text.replace(&format!(r#"ops: {{ token: "{OPS}" }}"#), "ops: { allowBots: true }")).await;
    let missing = gw.gateway.missing_channels();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].0, "discord/ops");
    assert!(missing[0].1.contains("`token` is required"), "{missing:?}");
    let deadline = Instant::now() + WAIT;
    while fake.connected(OPS) {
        assert!(Instant::now() < deadline, "a refused account lets its connection go");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fake.user_message(MAIN, None, ("1100000000000000005", "Ada"), "main?", &[], false);
    assert_eq!(fake.wait_sent(MAIN, 1, WAIT).await.len(), 1, "main answers");

    // `ops` back with its token: it connects again; then removed from the config: it disconnects.
    apply(text.clone()).await;
    assert!(fake.wait_connected(OPS, WAIT).await, "ops is back");
    assert!(gw.gateway.missing_channels().is_empty());
    // `ops` removed from the config; `main` keeps its connection.
    apply(text.replace(&format!(r#", ops: {{ token: "{OPS}" }}"#), "")).await;
    assert!(!text.replace(&format!(r#", ops: {{ token: "{OPS}" }}"#), "").contains(OPS));
    let deadline = Instant::now() + WAIT;
    while fake.connected(OPS) {
        assert!(Instant::now() < deadline, "ops still connected after its removal");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gw.gateway.missing_channels().is_empty());
    assert_eq!(fake.counts(MAIN).0, main_before.0, "main never identified again");
    assert!(fake.connected(MAIN));
    gw.shutdown().await;
}

/// WIT 0.2.0 on Discord: a DM with an image reaches the agent described and
/// as an image (the offline model says what it saw), typing shows in the
/// DM, a mentioned guild message gets 👀, and a reply's `MEDIA:` file is
/// uploaded (multipart, `payload_json` + `files[0]`) in the same channel
/// through the same bot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_typing_reactions_and_uploads() {
    let fake = fake(41_250).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("ws-work")).unwrap();
    std::fs::write(root.join("ws-work/notes.md"), b"# Notes\n").unwrap();
    common::offline_script(root, "work", r#"{ rules: [ { when: "notes", reply: "Attached.\nMEDIA:notes.md" } ] }"#);
    let gw = start(root, &fake).await;

    let png: Vec<u8> = [0x89, b'P', b'N', b'G'].into_iter().chain((0..2044).map(|i| (i % 200) as u8)).collect();
    fake.user_file(MAIN, None, ("1100000000000000005", "Ada"), "look", ("cat.png", "image/png", png));
    let sent = fake.wait_sent(MAIN, 1, WAIT).await;
    let reply = sent.first().map(|s| content(&s.1).to_string()).unwrap_or_default();
    assert!(reply.contains("[image: cat.png, image/png, 2.0 KB]"), "{reply}");
    assert!(reply.contains("I see an image (image/png, 2.0 KB)"), "{reply}");
    let typing = fake.wait_action(MAIN, "typing", WAIT).await;
    assert_eq!(typing.first().map(|t| t.0.clone()), Some(sent[0].0.clone()), "typing in the DM channel");

    let id = fake.user_message(MAIN, Some(GENERAL), ("1100000000000000006", "Bo"), "ping", &[], true);
    let reactions = fake.wait_action(MAIN, "reaction", WAIT).await;
    assert_eq!(
        reactions.first().cloned(),
        Some((GENERAL.to_string(), serde_json::json!({"message_id": id, "emoji": "👀"})))
    );

    fake.user_message(MAIN, Some(GENERAL), ("1100000000000000006", "Bo"), "the notes please", &[], true);
    let deadline = tokio::time::Instant::now() + WAIT;
    while fake.uploads(MAIN).is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let uploads = fake.uploads(MAIN);
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    assert_eq!((uploads[0].channel_id.as_str(), uploads[0].file_name.as_str()), (GENERAL, "notes.md"));
    assert_eq!(uploads[0].bytes, b"# Notes\n");
    assert_eq!(uploads[0].payload["attachments"][0]["filename"], "notes.md");
    assert!(fake.uploads(OPS).is_empty());
    assert!(gw.shutdown().await);
}

/// Bot-loop protection: with `allowBots`, another bot's mentions are
/// answered until the pair has exchanged `maxEventsPerWindow` messages
/// (its messages and our replies, counted together); then that bot is not
/// answered during the cooldown, while a person in the same channel still is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bots_in_one_channel_stop_at_the_pair_budget() {
    let fake = fake(41_250).await;
    const OTHER_BOT: &str = "1100000000000000077";
    fake.make_bot(OTHER_BOT);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let text = config(root, &fake.api_base()).replace(
        &format!("main: {{ token: \"{MAIN}\" }}"),
        &format!("main: {{ token: \"{MAIN}\", allowBots: true, botLoopProtection: {{ maxEventsPerWindow: 4, cooldownSeconds: 600 }} }}"),
    );
    assert!(text.contains("allowBots: true"), "{text}");
    let gw = common::serve(root, &text, &["channel_discord"]).await;
    assert!(fake.wait_connected(MAIN, WAIT).await);
    for n in 1..=2 {
        fake.user_message(MAIN, Some(GENERAL), (OTHER_BOT, "Echo"), &format!("round {n}"), &[], true);
        let sent = fake.wait_sent(MAIN, n, WAIT).await;
        assert_eq!(sent.len(), n, "the bot's message {n} is answered");
    }
    // The fifth event of the pair: not answered.
    fake.user_message(MAIN, Some(GENERAL), (OTHER_BOT, "Echo"), "round 3", &[], true);
    // A person after it, in the same channel: answered (after the bot's
    // message was decided, so the count below is final).
    let human = fake.user_message(MAIN, Some(GENERAL), ("1100000000000000006", "Bo"), "are you there?", &[], true);
    let sent = fake.wait_sent(MAIN, 3, WAIT).await;
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(sent[2].1["message_reference"]["message_id"], human.as_str(), "the third reply is the person's");
    assert!(content(&sent[2].1).contains("are you there?"));
    assert!(gw.shutdown().await);
}

/// Preview streaming on Discord (`streaming.mode: "partial"`): one message
/// while the answer is written, then `PATCH`ed into the final answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_answer_is_edited_in_place() {
    let fake = fake(41_250).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let answer = "First, we list what we know. Then we pick the two questions that matter most and give each an \
        owner. On Friday we look at what we learned and decide what to stop doing.";
    common::offline_reply(root, "work", "plan", answer);
    let text = config(root, &fake.api_base())
        .replace("apiBase:", "streaming: { mode: \"partial\", preview: { chunk: { minChars: 40 } } }, apiBase:");
    let gw = common::serve(root, &text, &["channel_discord"]).await;
    assert!(fake.wait_connected(MAIN, WAIT).await);
    fake.user_message(MAIN, None, ("1100000000000000005", "Ada"), "what is the plan?", &[], false);
    let deadline = tokio::time::Instant::now() + WAIT;
    let edits = loop {
        let edits = fake.wait_action(MAIN, "edit", WAIT).await;
        if edits.last().is_some_and(|e| e.1["content"] == answer) || tokio::time::Instant::now() >= deadline {
            break edits;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let sent = fake.sent(MAIN);
    assert_eq!(sent.len(), 1, "one message: {sent:?}");
    assert!(answer.starts_with(content(&sent[0].1)) && content(&sent[0].1).len() >= 40, "{sent:?}");
    assert_eq!(edits.last().map(|e| e.1["content"].clone()), Some(serde_json::json!(answer)), "{edits:?}");
    assert!(gw.shutdown().await);
}

/// The `message` tool on Discord: a workspace file into the channel the
/// message came from, through the agent's own bot; naming the bot of
/// another agent (`ops` routes only to `support`) is refused and that bot
/// posts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_tool_uploads_through_the_agents_own_bot_only() {
    let fake = fake(41_250).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("ws-work")).unwrap();
    std::fs::write(root.join("ws-work/notes.md"), b"# Shipping notes\n").unwrap();
    common::offline_script(
        root,
        "work",
        &format!(
            r#"{{ rules: [
                {{ when: "ship it", tool: "message", arguments: {{ action: "send", message: "Shipping notes.", media: "notes.md" }},
                   reply: "Sent." }},
                {{ when: "as ops", tool: "message",
                   arguments: {{ action: "send", accountId: "ops", to: "channel:{GENERAL}", message: "hi from ops" }} }},
            ] }}"#
        ),
    );
    let text = config(root, &fake.api_base());
    let gw = common::serve(root, &text, &["channel_discord", "tool_message"]).await;
    assert!(fake.wait_connected(MAIN, WAIT).await);

    fake.user_message(MAIN, Some(GENERAL), ("1100000000000000006", "Bo"), "ship it", &[], true);
    // The tool's text, then the turn's answer; the file as its own post.
    let sent = fake.wait_sent(MAIN, 2, WAIT).await;
    let texts: Vec<&str> = sent.iter().map(|s| content(&s.1)).collect();
    assert_eq!(texts, ["Shipping notes.", "Sent."], "{sent:?}");
    assert!(sent.iter().all(|s| s.0 == GENERAL), "{sent:?}");
    let uploads = fake.uploads(MAIN);
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    assert_eq!((uploads[0].channel_id.as_str(), uploads[0].file_name.as_str()), (GENERAL, "notes.md"));
    assert_eq!(uploads[0].bytes, b"# Shipping notes\n");

    fake.user_message(MAIN, Some(GENERAL), ("1100000000000000006", "Bo"), "post as ops", &[], true);
    let sent = fake.wait_sent(MAIN, 3, WAIT).await;
    let refusal = content(&sent[2].1);
    assert!(refusal.contains("account `ops` of `discord` speaks for support, not `work`"), "{refusal}");
    assert!(fake.sent(OPS).is_empty() && fake.uploads(OPS).is_empty(), "{:?}", fake.sent(OPS));
    assert!(gw.shutdown().await);
}

/// Block streaming on Discord, switched on for the channel
/// (`streaming.block.enabled`) and coalesced (`streaming.block.coalesce`):
/// paragraph blocks are merged with a blank line until the next one would
/// pass `maxChars`, so three paragraphs arrive as two messages whose text,
/// joined, is the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_replies_are_coalesced_up_to_max_chars() {
    let fake = fake(41_250).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let paragraphs = common::PLAN;
    let answer = paragraphs.join("\n\n");
    common::offline_reply(root, "work", "plan", &answer);
    let text = common::with_paragraph_blocks(&config(root, &fake.api_base())).replace(
        "apiBase:",
        "streaming: { block: { enabled: true, coalesce: { minChars: 1000, maxChars: 170, idleMs: 60000 } } }, apiBase:",
    );
    assert!(text.contains("coalesce") && text.contains("blockStreamingChunk"), "{text}");
    let gw = common::serve(root, &text, &["channel_discord"]).await;
    assert!(fake.wait_connected(MAIN, WAIT).await);
    fake.user_message(MAIN, Some(GENERAL), ("1100000000000000006", "Bo"), "what is the plan?", &[], true);
    let sent = fake.wait_sent(MAIN, 2, WAIT).await;
    let texts: Vec<&str> = sent.iter().map(|s| content(&s.1)).collect();
    assert_eq!(texts, [format!("{}\n\n{}", paragraphs[0], paragraphs[1]).as_str(), paragraphs[2]], "{sent:?}");
    assert_eq!(texts.join("\n\n"), answer, "together they are the answer");
    assert!(gw.shutdown().await);
    assert_eq!(fake.sent(MAIN).len(), 2, "nothing after the blocks");
}

/// One bot for two agents: with `responsePrefix: "auto"` each reply starts
/// with its agent's name (`[{identity.name}]`), so the channel tells them
/// apart; an account's `""` turns it off there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_carry_their_agents_name_prefix() {
    let fake = fake(41_250).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let text = config(root, &fake.api_base()).replace("apiBase:", "responsePrefix: \"auto\", apiBase:").replace(
        &format!("ops: {{ token: \"{OPS}\" }}"),
        &format!("ops: {{ token: \"{OPS}\", responsePrefix: \"\" }}"),
    );
    assert!(text.contains("responsePrefix: \"\""), "{text}");
    let gw = common::serve(root, &text, &["channel_discord"]).await;
    assert!(fake.wait_connected(MAIN, WAIT).await);
    // The same bot: `work` in #general, `support` in #help (a peer binding).
    fake.user_message(MAIN, Some(GENERAL), ("1100000000000000006", "Bo"), "hello", &[], true);
    let sent = fake.wait_sent(MAIN, 1, WAIT).await;
    assert!(content(&sent[0].1).starts_with("[Atlas] Atlas (agent `work`)"), "{sent:?}");
    fake.user_message(MAIN, Some(HELP), ("1100000000000000006", "Bo"), "hello", &[], true);
    let sent = fake.wait_sent(MAIN, 2, WAIT).await;
    assert!(content(&sent[1].1).starts_with("[Sage] Sage (agent `support`)"), "{sent:?}");
    // The ops bot is support's alone: no prefix there.
    assert!(fake.wait_connected(OPS, WAIT).await);
    fake.user_message(OPS, Some(GENERAL), ("1100000000000000006", "Bo"), "hello", &[], true);
    let ops = fake.wait_sent(OPS, 1, WAIT).await;
    assert!(content(&ops[0].1).starts_with("Sage (agent `support`)"), "{ops:?}");
    assert!(gw.shutdown().await);
}

/// A Discord voice message (an `audio/ogg` attachment with the voice flag)
/// is downloaded from the CDN and transcribed by the configured model
/// (`tools.media.models`, OpenAI's `/audio/transcriptions` fake); the turn
/// gets the transcript. A file over `mediaMaxMb` is refused in the chat,
/// not downloaded, and nothing is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_message_is_transcribed_and_an_oversized_file_refused() {
    use chela_fakes::openai::OpenAiFake;
    let openai = OpenAiFake::start("sk-test").await;
    openai.set_transcript("remind me to water the plants");
    let fake = fake(41_250).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let text = common::with_transcription(&config(root, &fake.api_base()), &openai.base_url())
        .replace("apiBase:", "mediaMaxMb: 1, apiBase:");
    assert!(text.contains("whisper-1") && text.contains("mediaMaxMb: 1"), "{text}");
    let gw = common::serve_with_vars(root, &text, &["channel_discord"], common::openai_test_key()).await;
    assert!(fake.wait_connected(MAIN, WAIT).await);

    let voice: Vec<u8> = b"OggS".iter().copied().chain((0..4092).map(|i| (i % 251) as u8)).collect();
    fake.user_file(MAIN, None, ("1100000000000000005", "Ada"), "", ("voice-message.ogg", "audio/ogg", voice.clone()));
    let sent = fake.wait_sent(MAIN, 1, WAIT).await;
    let reply = content(&sent[0].1);
    assert!(reply.contains("remind me to water the plants"), "the turn got the transcript: {reply}");
    let heard = openai.transcriptions();
    assert_eq!(heard.len(), 1);
    assert_eq!((heard[0].fields["model"].as_str(), heard[0].bytes.as_slice()), (Some("whisper-1"), voice.as_slice()));

    let big = vec![7u8; 1_200_000];
    fake.user_file(MAIN, None, ("1100000000000000005", "Ada"), "", ("big.bin", "application/octet-stream", big));
    let sent = fake.wait_sent(MAIN, 2, WAIT).await;
    let notice = content(&sent[1].1);
    assert!(
        notice.contains("big.bin") && notice.contains("the limit is 1.0 MB"),
        "a notice naming the file and the limit: {notice}"
    );
    assert_eq!(openai.transcriptions().len(), 1);
    let kept: Vec<_> = walk(&root.join("state/agents/work/sessions/media"));
    assert_eq!(kept.len(), 1, "only the voice message is kept: {kept:?}");
    assert!(gw.shutdown().await);
    assert_eq!(fake.sent(MAIN).len(), 2, "no turn for a refused file alone");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
