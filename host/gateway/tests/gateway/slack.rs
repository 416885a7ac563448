//! The Slack adapter component (`plugins/channel-slack`) in a real gateway
//! against the Slack fake (`tests/fakes`): Socket Mode for one app, the
//! Events API for another. The same component would talk to slack.com with
//! only `apiBase` changed.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use chela_fakes::slack::{post_signed, AppSpec, SlackFake};
use chela_fakes::wire;
use chela_gateway::Running;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);
const ACME: &str = "A0ACME";
const GLOBEX: &str = "A0GLOBEX";
const GLOBEX_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

fn config(root: &Path, api: &str) -> String {
    format!(
        r#"{{
  agents: {{ list: [
    {{ id: "work", default: true, workspace: "{root}/ws-work", identity: {{ name: "Atlas" }} }},
    {{ id: "support", workspace: "{root}/ws-support", identity: {{ name: "Sage" }} }},
  ] }},
  bindings: [
    {{ agentId: "work", match: {{ channel: "slack", accountId: "acme" }} }},
    {{ agentId: "support", match: {{ channel: "slack", accountId: "*", teamId: "T0GLOBEX" }} }},
  ],
  channels: {{ slack: {{
    dmPolicy: "open", allowFrom: ["*"], groupPolicy: "open", groups: {{ "*": {{ requireMention: true }} }},
    apiBase: "{api}",
    accounts: {{
      acme: {{ botToken: "xoxb-acme", appToken: "xapp-1-acme" }},
      globex: {{ mode: "http", botToken: "xoxb-globex", signingSecret: "{GLOBEX_SECRET}" }},
    }},
  }} }},
}}"#,
        root = root.display()
    )
}

async fn fake() -> SlackFake {
    let fake = SlackFake::start().await;
    fake.add_app(AppSpec {
        app_id: ACME,
        team_id: "T0ACME",
        bot_token: "xoxb-acme",
        app_token: "xapp-1-acme",
        signing_secret: "acme-signing",
        bot_user_id: "U0BOTACME",
    });
    fake.add_app(AppSpec {
        app_id: GLOBEX,
        team_id: "T0GLOBEX",
        bot_token: "xoxb-globex",
        app_token: "xapp-1-globex",
        signing_secret: GLOBEX_SECRET,
        bot_user_id: "U0BOTGLOBEX",
    });
    fake.add_conversation("T0ACME", "D0ADA", "im", Some("U0ADA"));
    fake.add_conversation("T0ACME", "C0GENERAL", "channel", None);
    fake.add_conversation("T0GLOBEX", "D0HANK", "im", Some("U0HANK"));
    fake.add_conversation("T0GLOBEX", "C0SUPPORT", "channel", None);
    fake
}

async fn start(root: &Path, fake: &SlackFake) -> Running {
    common::serve(root, &config(root, &fake.api_base()), &["channel_slack"]).await
}

fn routed(gw: &Running, account: &str, agent: &str) -> u64 {
    gw.gateway.metrics.get("chela_messages_in_total", &[("channel", "slack"), ("account", account), ("agent", agent)])
}

fn text(m: &Value) -> &str {
    m["text"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_mode_dm_channel_thread_long_replies_rate_limits_and_reconnects() {
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), &fake).await;

    // A DM: answered by `work` in the DM, through the acme app only.
    fake.user_message(ACME, "D0ADA", "U0ADA", "hello <there> & you", None).await;
    let sent = fake.wait_sent(ACME, 1, WAIT).await;
    assert_eq!(sent.len(), 1, "no reply");
    assert_eq!(sent[0]["channel"], "D0ADA");
    assert!(sent[0]["thread_ts"].is_null(), "{}", sent[0]);
    assert!(text(&sent[0]).starts_with("Atlas (agent `work`)"), "{}", sent[0]);
    // The agent saw the user's text unescaped; the reply went back escaped.
    assert!(text(&sent[0]).contains("“hello &lt;there&gt; &amp; you”"), "{}", sent[0]);

    // A channel: without a mention nothing; with one (message + app_mention) one answer.
    fake.user_message(ACME, "C0GENERAL", "U0BO", "morning all", None).await;
    let (ts, _) = fake.user_message(ACME, "C0GENERAL", "U0BO", "<@U0BOTACME> what is up?", None).await;
    let sent = fake.wait_sent(ACME, 2, WAIT).await;
    assert_eq!(sent[1]["channel"], "C0GENERAL");
    assert!(sent[1]["thread_ts"].is_null(), "replyToMode off answers top-level: {}", sent[1]);
    // A thread the user started under that message, mentioning the bot: answered in the thread.
    fake.user_message(ACME, "C0GENERAL", "U0BO", "<@U0BOTACME> and in here?", Some(&ts)).await;
    let sent = fake.wait_sent(ACME, 3, WAIT).await;
    assert_eq!(sent[2]["thread_ts"], ts.as_str(), "{}", sent[2]);
    assert!(text(&sent[2]).contains("(message 1 of this conversation)"), "a thread is its own session: {}", sent[2]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.sent(ACME).len(), 3, "one answer per mention; the bot's own echoes are ignored");
    let mention_pairs = fake.events(ACME).iter().filter(|e| e["event"]["type"] == "app_mention").count();
    assert_eq!(mention_pairs, 2, "Slack sent message + app_mention for each mention");

    // A long reply is split under 4000 characters, every part in the DM.
    let long = "word ".repeat(900);
    fake.user_message(ACME, "D0ADA", "U0ADA", long.trim(), None).await;
    let sent = fake.wait_sent(ACME, 5, WAIT).await;
    let parts: Vec<&Value> = sent[3..].iter().collect();
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert!(parts.iter().all(|p| p["channel"] == "D0ADA" && text(p).chars().count() <= 4000));

    // 429 + Retry-After: the reply goes out once, after the wait.
    fake.rate_limit_next_send(ACME, 1);
    let before = Instant::now();
    fake.user_message(ACME, "D0ADA", "U0ADA", "are you there?", None).await;
    let sent = fake.wait_sent(ACME, 6, WAIT).await;
    assert_eq!(sent.len(), 6);
    assert!(before.elapsed() >= Duration::from_secs(1), "Retry-After was honoured");

    // Slack asks for a refresh: the adapter opens a new connection and carries on.
    let opened = fake.connections(ACME);
    fake.disconnect(ACME, "refresh_requested");
    fake.user_message(ACME, "D0ADA", "U0ADA", "after the refresh", None).await;
    let sent = fake.wait_sent(ACME, 7, WAIT).await;
    assert!(text(&sent[6]).contains("after the refresh"), "{}", sent[6]);
    assert!(fake.connections(ACME) > opened);

    // Everything was acknowledged: nothing waits, nothing had to be redelivered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.socket_backlog(ACME), (0, 0));

    // A message while the gateway is down waits in Slack and is answered once after the restart.
    assert!(gw.shutdown().await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    fake.user_message(ACME, "D0ADA", "U0ADA", "while you were out", None).await;
    let gw = start(dir.path(), &fake).await;
    let sent = fake.wait_sent(ACME, 8, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.sent(ACME).len(), 8, "answered once: {sent:?}");
    assert!(text(&sent[7]).contains("while you were out"));
    assert!(gw.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_api_verifies_signatures_dedupes_and_routes_by_team() {
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), &fake).await;
    let url = format!("http://{}/channels/slack/globex/", gw.addr);
    fake.set_request_url(GLOBEX, &url).await.expect("url_verification answered");

    let body = json!({"type": "event_callback", "team_id": "T0GLOBEX", "api_app_id": GLOBEX, "event_id": "EvFORGED",
        "event": {"type": "message", "channel": "D0HANK", "channel_type": "im", "user": "U0HANK", "text": "forged", "ts": "1.000001"}})
    .to_string();
    // Wrong secret, stale timestamp, no signature: 401.
    assert_eq!(post_signed(&url, "wrong", None, body.as_bytes(), None).await.map(|a| a.status), Some(401));
    let stale = wire::request("POST", &url, &[], body.as_bytes()).await.map(|a| a.status);
    assert_eq!(stale, Some(401));
    let old = Some(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 600);
    assert_eq!(post_signed(&url, GLOBEX_SECRET, old, body.as_bytes(), None).await.map(|a| a.status), Some(401));
    // Signed but malformed: 400.
    assert_eq!(post_signed(&url, GLOBEX_SECRET, None, b"{nope", None).await.map(|a| a.status), Some(400));
    let no_event = br#"{"type": "event_callback", "team_id": "T0GLOBEX"}"#;
    assert_eq!(post_signed(&url, GLOBEX_SECRET, None, no_event, None).await.map(|a| a.status), Some(400));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(routed(&gw, "globex", "support"), 0, "nothing was routed");

    // A DM over HTTP: `support` (bound by team) answers through the globex app.
    let (_, statuses) = fake.user_message(GLOBEX, "D0HANK", "U0HANK", "help!", None).await;
    assert_eq!(statuses, vec![Some(200)]);
    let sent = fake.wait_sent(GLOBEX, 1, WAIT).await;
    assert_eq!(sent[0]["channel"], "D0HANK");
    assert!(text(&sent[0]).starts_with("Sage (agent `support`)"), "{}", sent[0]);
    assert!(fake.sent(ACME).is_empty(), "never through another account");

    // Slack retries (X-Slack-Retry-Num): processed once.
    let index = fake.events(GLOBEX).iter().position(|e| e["event"]["text"] == "help!").unwrap();
    assert_eq!(fake.redeliver_http(GLOBEX, index, 1).await, Some(200));
    assert_eq!(fake.redeliver_http(GLOBEX, index, 2).await, Some(200));
    // A channel mention arrives twice (message + app_mention): one answer.
    let (_, statuses) = fake.user_message(GLOBEX, "C0SUPPORT", "U0HANK", "<@U0BOTGLOBEX> status?", None).await;
    assert_eq!(statuses, vec![Some(200), Some(200)]);
    let sent = fake.wait_sent(GLOBEX, 2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(fake.sent(GLOBEX).len(), 2, "{sent:?}");
    assert_eq!(routed(&gw, "globex", "support"), 2);
    assert!(gw.shutdown().await);
}

/// WIT 0.2.0 on Slack: a shared image is downloaded with the bot token and
/// reaches the agent; replies carry the agent's name and emoji
/// (`chat:write.customize`); a mentioned channel message gets `:eyes:`;
/// a reply's `MEDIA:` file goes through the external upload flow into the
/// same channel, through the same app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_identity_reactions_and_uploads() {
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("ws-work")).unwrap();
    std::fs::write(root.join("ws-work/summary.txt"), b"all good\n").unwrap();
    common::offline_script(root, "work", r#"{ rules: [ { when: "summary", reply: "Here.\nMEDIA:summary.txt" } ] }"#);
    let text = config(root, &fake.api_base())
        .replace(r#"identity: { name: "Atlas" }"#, r#"identity: { name: "Atlas", emoji: "🦀" }"#);
    let gw = common::serve(root, &text, &["channel_slack"]).await;

    let png: Vec<u8> = [0x89, b'P', b'N', b'G'].into_iter().chain((0..1020).map(|i| (i % 200) as u8)).collect();
    fake.user_file(ACME, "D0ADA", "U0ADA", "what's this", ("shot.png", "image/png", png)).await;
    let sent = fake.wait_sent(ACME, 1, WAIT).await;
    let reply = sent.first().map(text_of).unwrap_or_default();
    assert!(
        reply.contains("[image: shot.png, image/png, 1.0 KB]") && reply.contains("I see an image (image/png, 1.0 KB)"),
        "{reply}"
    );
    assert_eq!(
        (sent[0]["username"].clone(), sent[0]["icon_emoji"].clone()),
        (serde_json::json!("Atlas"), serde_json::json!(":crab:"))
    );

    let (ts, _) = fake.user_message(ACME, "C0GENERAL", "U0BO", "<@U0BOTACME> the summary please", None).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while (fake.uploads(ACME).is_empty() || fake.actions(ACME).is_empty()) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The ack: the agent's own emoji (no `ackReaction` set), by its Slack name.
    assert_eq!(
        fake.actions(ACME).first().cloned(),
        Some((
            "reactions.add".to_string(),
            serde_json::json!({"channel": "C0GENERAL", "timestamp": ts, "name": "crab"})
        ))
    );
    let uploads = fake.uploads(ACME);
    assert_eq!(uploads.len(), 1, "{uploads:?} {:?}", fake.sent(ACME));
    assert_eq!((uploads[0].channel_id.as_str(), uploads[0].file_name.as_str()), ("C0GENERAL", "summary.txt"));
    assert_eq!(uploads[0].bytes, b"all good\n");
    assert!(fake.uploads(GLOBEX).is_empty());
    assert!(gw.shutdown().await);
}

fn text_of(m: &Value) -> String {
    m["text"].as_str().unwrap_or_default().to_string()
}

/// Preview streaming on Slack (`streaming.mode: "partial"`): one post while
/// the answer is written, then `chat.update`d into the final answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_answer_is_updated_in_place() {
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let answer = "First, we list what we know. Then we pick the two questions that matter most and give each an \
        owner. On Friday we look at what we learned and decide what to stop doing.";
    common::offline_reply(root, "work", "plan", answer);
    let text = config(root, &fake.api_base())
        .replace("apiBase:", "streaming: { mode: \"partial\", preview: { chunk: { minChars: 40 } } }, apiBase:");
    let gw = common::serve(root, &text, &["channel_slack"]).await;
    fake.user_message(ACME, "D0ADA", "U0ADA", "what is the plan?", None).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let updates = loop {
        let updates: Vec<Value> =
            fake.actions(ACME).into_iter().filter(|(m, _)| m == "chat.update").map(|(_, v)| v).collect();
        if updates.last().is_some_and(|u| u["text"] == answer) || tokio::time::Instant::now() >= deadline {
            break updates;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let sent = fake.sent(ACME);
    assert_eq!(sent.len(), 1, "one post: {sent:?}");
    let first = text_of(&sent[0]);
    assert!(answer.starts_with(&first) && first.len() >= 40, "{sent:?}");
    assert_eq!(updates.last().map(|u| u["text"].clone()), Some(serde_json::json!(answer)), "{updates:?}");
    assert!(gw.shutdown().await);
}

/// The `message` tool on Slack: a workspace file into the thread the
/// message came from, through the agent's own app (the upload flow); naming
/// the app of another agent is refused and that app posts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_tool_uploads_into_the_thread_through_the_agents_own_app_only() {
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("ws-work")).unwrap();
    std::fs::write(root.join("ws-work/summary.txt"), b"all good\n").unwrap();
    common::offline_script(
        root,
        "work",
        r#"{ rules: [
            { when: "file the summary", tool: "message",
              arguments: { action: "send", message: "The summary.", media: "summary.txt" }, reply: "Filed." },
            { when: "as globex", tool: "message",
              arguments: { action: "send", accountId: "globex", to: "C0GENERAL", message: "hi from globex" } },
        ] }"#,
    );
    // `globex` routes only to `support` here (no message there reaches `work`).
    let text = config(root, &fake.api_base()).replace(
        r#"{ agentId: "support", match: { channel: "slack", accountId: "*", teamId: "T0GLOBEX" } }"#,
        r#"{ agentId: "support", match: { channel: "slack", accountId: "globex" } }"#,
    );
    assert!(text.contains(r#"accountId: "globex" }"#), "{text}");
    let gw = common::serve(root, &text, &["channel_slack", "tool_message"]).await;

    let (root_ts, _) = fake.user_message(ACME, "C0GENERAL", "U0BO", "<@U0BOTACME> starting a thread", None).await;
    fake.wait_sent(ACME, 1, WAIT).await;
    fake.user_message(ACME, "C0GENERAL", "U0BO", "<@U0BOTACME> file the summary", Some(&root_ts)).await;
    let sent = fake.wait_sent(ACME, 3, WAIT).await;
    let texts: Vec<String> = sent.iter().map(text_of).collect();
    assert_eq!(texts[1..], ["The summary.", "Filed."], "{sent:?}");
    assert!(sent[1..].iter().all(|s| s["thread_ts"] == root_ts.as_str()), "in the thread: {sent:?}");
    let uploads = fake.uploads(ACME);
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    assert_eq!(
        (uploads[0].channel_id.as_str(), uploads[0].thread_ts.as_deref(), uploads[0].file_name.as_str()),
        ("C0GENERAL", Some(root_ts.as_str()), "summary.txt")
    );
    assert_eq!(uploads[0].bytes, b"all good\n");

    fake.user_message(ACME, "C0GENERAL", "U0BO", "<@U0BOTACME> say it as globex", Some(&root_ts)).await;
    let sent = fake.wait_sent(ACME, 4, WAIT).await;
    let refusal = text_of(&sent[3]);
    assert!(refusal.contains("account `globex` of `slack` speaks for support, not `work`"), "{refusal}");
    assert!(fake.sent(GLOBEX).is_empty() && fake.uploads(GLOBEX).is_empty(), "{:?}", fake.sent(GLOBEX));
    assert!(gw.shutdown().await);
}

/// A Slack audio clip is downloaded with the bot token and transcribed by
/// the configured model (`tools.media.models`); the turn gets the
/// transcript. A file over `mediaMaxMb` is refused in the chat and nothing
/// is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audio_clip_is_transcribed_and_an_oversized_file_refused() {
    use chela_fakes::openai::OpenAiFake;
    let openai = OpenAiFake::start("sk-test").await;
    openai.set_transcript("book the room for friday");
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let text = common::with_transcription(&config(root, &fake.api_base()), &openai.base_url())
        .replace("apiBase:", "mediaMaxMb: 1, apiBase:");
    assert!(text.contains("whisper-1") && text.contains("mediaMaxMb: 1"), "{text}");
    let gw = common::serve_with_vars(root, &text, &["channel_slack"], common::openai_test_key()).await;

    let clip: Vec<u8> = (0..3000).map(|i| (i % 241) as u8).collect();
    fake.user_file(ACME, "D0ADA", "U0ADA", "", ("audio_message.webm", "audio/webm", clip.clone())).await;
    let sent = fake.wait_sent(ACME, 1, WAIT).await;
    let reply = sent.first().map(text_of).unwrap_or_default();
    assert!(reply.contains("book the room for friday"), "the turn got the transcript: {reply}");
    let heard = openai.transcriptions();
    assert_eq!(heard.len(), 1);
    assert_eq!(heard[0].bytes, clip);

    fake.user_file(ACME, "D0ADA", "U0ADA", "", ("dump.bin", "application/octet-stream", vec![1u8; 1_300_000])).await;
    let sent = fake.wait_sent(ACME, 2, WAIT).await;
    let notice = text_of(&sent[1]);
    assert!(notice.contains("dump.bin") && notice.contains("the limit is 1.0 MB"), "{notice}");
    let media = root.join("state/agents/work/sessions/media");
    let kept: usize = std::fs::read_dir(&media)
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| std::fs::read_dir(d.path()).map(|r| r.count()).unwrap_or(0))
        .sum();
    assert_eq!(kept, 1, "only the clip is kept");
    assert!(gw.shutdown().await);
    assert_eq!(fake.sent(ACME).len(), 2, "no turn for a refused file alone");
}
