//! The Telegram adapter component (`plugins/channel-telegram`) in a real
//! gateway against the Telegram fake (`tests/fakes`) on 127.0.0.1: the same
//! component would talk to api.telegram.org with only `apiRoot` changed.

use crate::common;

use std::path::Path;
use std::time::Duration;

use chela_fakes::telegram::{post_json, Fault, TelegramFake};
use chela_gateway::Running;
use serde_json::{json, Value};

const WORK: &str = "111:AAA-work";
const HELP: &str = "222:BBB-help";

fn config(root: &Path, api: &str, help_mode: &str) -> String {
    format!(
        r#"{{
  agents: {{ list: [
    {{ id: "work", default: true, workspace: "{root}/ws-work", identity: {{ name: "Atlas" }} }},
    {{ id: "support", workspace: "{root}/ws-support", identity: {{ name: "Sage" }} }},
  ] }},
  bindings: [
    {{ agentId: "work", match: {{ channel: "telegram", accountId: "work" }} }},
    {{ agentId: "support", match: {{ channel: "telegram", accountId: "help" }} }},
  ],
  channels: {{ telegram: {{
    dmPolicy: "open", allowFrom: ["*"], groupPolicy: "open", groups: {{ "*": {{ requireMention: true }} }},
    accounts: {{
      work: {{ botToken: "{WORK}", apiRoot: "{api}" }},
      help: {{ botToken: "{HELP}", apiRoot: "{api}", mode: "{help_mode}", webhookSecret: "wh-secret" }},
    }},
  }} }},
}}"#,
        root = root.display()
    )
}

async fn start(root: &Path, fake: &TelegramFake, help_mode: &str) -> Running {
    common::serve(root, &config(root, &fake.api_root(), help_mode), &["channel_telegram"]).await
}

fn fake_bots(fake: &TelegramFake) {
    fake.add_bot(WORK, 111, "atlas_bot");
    fake.add_bot(HELP, 222, "sage_bot");
}

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_dm_group_topic_accounts_long_replies_and_rate_limits() {
    let fake = TelegramFake::start().await;
    fake_bots(&fake);
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), &fake, "polling").await;

    // A DM to the work bot: answered by `work`, through the work bot only.
    let u = fake.user_message(WORK, None, (5001, "Ada"), "hello", json!({}));
    let sent = fake.wait_sent(WORK, 1, WAIT).await;
    assert_eq!(sent.len(), 1, "no reply");
    assert_eq!(sent[0]["chat_id"], 5001);
    assert_eq!(sent[0]["reply_parameters"]["message_id"], u["message"]["message_id"]);
    assert!(sent[0]["text"].as_str().unwrap().starts_with("Atlas (agent `work`)"), "{}", sent[0]);
    // The same person writing to the help bot gets `support`, through the help bot.
    fake.user_message(HELP, None, (5001, "Ada"), "help me", json!({}));
    let help = fake.wait_sent(HELP, 1, WAIT).await;
    assert!(help[0]["text"].as_str().unwrap().starts_with("Sage (agent `support`)"), "{}", help[0]);
    assert_eq!(fake.sent(WORK).len(), 1, "a reply never leaves through another account");

    // A forum topic: not mentioned → no answer; mentioned → answered in the topic.
    fake.add_group(-100_777, "Team", &[5]);
    fake.user_message(
        WORK,
        Some(-100_777),
        (5002, "Bo"),
        "just chatting",
        json!({"message_thread_id": 5, "is_topic_message": true}),
    );
    let mention = json!({"message_thread_id": 5, "is_topic_message": true,
                         "entities": [{"type": "mention", "offset": 0, "length": 10}]});
    fake.user_message(WORK, Some(-100_777), (5002, "Bo"), "@atlas_bot status?", mention);
    let sent = fake.wait_sent(WORK, 2, WAIT).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(
        (sent[1]["chat_id"].as_i64(), sent[1]["message_thread_id"].as_i64()),
        (Some(-100_777), Some(5)),
        "{}",
        sent[1]
    );
    // The unanswered topic message reaches the answered one as group history (once).
    let text = sent[1]["text"].as_str().unwrap();
    assert!(text.contains("Bo: just chatting") && text.contains("@atlas_bot status?” (message 1"), "{}", sent[1]);

    // A long reply is split under the limit; only the first part replies.
    let long = "word ".repeat(900);
    fake.user_message(WORK, None, (5003, "Cy"), long.trim(), json!({}));
    let sent = fake.wait_sent(WORK, 4, WAIT).await;
    let parts: Vec<&Value> = sent.iter().filter(|m| m["chat_id"] == 5003).collect();
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert!(parts.iter().all(|p| p["text"].as_str().unwrap().encode_utf16().count() <= 4000));
    assert!(parts[0]["reply_parameters"].is_object() && parts[1]["reply_parameters"].is_null());

    // 429 with retry_after: the reply is sent once, after the wait.
    fake.fail_next_send(WORK, Fault::TooManyRequests(1));
    let before = std::time::Instant::now();
    fake.user_message(WORK, None, (5004, "Di"), "are you there?", json!({}));
    let sent = fake.wait_sent(WORK, 5, WAIT).await;
    assert_eq!(sent.iter().filter(|m| m["chat_id"] == 5004).count(), 1);
    assert!(before.elapsed() >= Duration::from_secs(1), "retry_after was honoured");
    assert!(gw.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_gateway_resumes_at_the_stored_offset() {
    let fake = TelegramFake::start().await;
    fake_bots(&fake);
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), &fake, "polling").await;
    let first = fake.user_message(WORK, None, (6001, "Eve"), "one", json!({}));
    fake.wait_sent(WORK, 1, WAIT).await;
    assert!(gw.shutdown().await);
    tokio::time::sleep(Duration::from_millis(1500)).await; // the old poller's last getUpdates ends

    let gw = start(dir.path(), &fake, "polling").await;
    fake.user_message(WORK, None, (6001, "Eve"), "two", json!({}));
    let sent = fake.wait_sent(WORK, 2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent_after = fake.sent(WORK);
    assert_eq!(sent_after.len(), 2, "`one` was not answered twice: {sent:?}");
    assert!(sent_after[1]["text"].as_str().unwrap().contains("“two” (message 2"), "{}", sent_after[1]);
    let first_id = first["update_id"].as_i64().unwrap();
    let offsets = fake.poll_offsets(WORK);
    assert!(offsets.iter().rev().take(3).all(|o| *o > first_id), "resumed after the first update: {offsets:?}");
    assert!(gw.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_mode_checks_the_secret_rejects_garbage_and_dedupes() {
    let fake = TelegramFake::start().await;
    fake_bots(&fake);
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), &fake, "webhook").await;
    let hook = format!("http://{}/channels/telegram/help/", gw.addr);
    let set = json!({"url": hook, "secret_token": "wh-secret"}).to_string();
    assert_eq!(post_json(&format!("{}/bot{HELP}/setWebhook", fake.api_root()), &[], &set).await, Some(200));

    let update = fake.user_message(HELP, None, (7001, "Fay"), "via webhook", json!({}));
    // Wrong or missing secret: 401 and nothing routed.
    assert_eq!(post_json(&hook, &[("X-Telegram-Bot-Api-Secret-Token", "nope")], &update.to_string()).await, Some(401));
    assert_eq!(post_json(&hook, &[], &update.to_string()).await, Some(401));
    // Malformed: 400.
    let secret = [("X-Telegram-Bot-Api-Secret-Token", "wh-secret")];
    assert_eq!(post_json(&hook, &secret, "{not json").await, Some(400));
    assert_eq!(post_json(&hook, &secret, r#"{"message": {}}"#).await, Some(400));
    // Telegram's own delivery, then a redelivery of the same update.
    assert_eq!(fake.push_webhook(HELP).await, Some(200));
    assert_eq!(post_json(&hook, &secret, &update.to_string()).await, Some(200));
    let sent = fake.wait_sent(HELP, 1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.sent(HELP).len(), 1, "processed once: {sent:?}");
    assert!(sent[0]["text"].as_str().unwrap().contains("“via webhook”"));
    assert!(
        gw.gateway
            .metrics
            .get("chela_messages_in_total", &[("channel", "telegram"), ("account", "help"), ("agent", "support")])
            == 1
    );
    assert!(gw.shutdown().await);
}

/// Off loopback, `/readyz` tells anyone whether the replica is ready, but
/// which accounts exist and their errors only to a caller with the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_shows_account_details_off_loopback_only_with_the_token() {
    let fake = TelegramFake::start().await;
    fake_bots(&fake);
    let dir = tempfile::tempdir().unwrap();
    let options = chela_gateway::GatewayOptions {
        addr: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
        auth_token: Some("ops-token".into()),
        ..chela_gateway::GatewayOptions::loopback(0)
    };
    let config = config(dir.path(), &fake.api_root(), "polling");
    let gw = common::serve_with_options(
        dir.path(),
        &config,
        &["channel_telegram"],
        std::sync::Arc::new(|_: &str| None),
        options,
    )
    .await;
    let url = format!("http://127.0.0.1:{}/readyz", gw.addr.port());
    let get = |headers: Vec<(&'static str, &'static str)>| {
        let url = url.clone();
        async move {
            let a = chela_fakes::wire::request("GET", &url, &headers, b"").await.expect("answered");
            (a.status, serde_json::from_str::<Value>(&a.body).unwrap_or_default())
        }
    };
    let (status, anonymous) = get(vec![]).await;
    assert_eq!(status, 200);
    assert_eq!(anonymous["ready"], true);
    assert!(anonymous.get("accounts").is_none(), "{anonymous}");
    assert!(anonymous["accountsDegraded"].is_u64(), "only a count: {anonymous}");
    assert!(!anonymous.to_string().contains("work"), "no account names: {anonymous}");
    let (_, wrong) = get(vec![("authorization", "Bearer guess")]).await;
    assert!(wrong.get("accounts").is_none(), "{wrong}");
    let (status, owner) = get(vec![("authorization", "Bearer ops-token")]).await;
    assert_eq!(status, 200);
    let accounts: Vec<&str> =
        owner["accounts"].as_array().into_iter().flatten().filter_map(|a| a["account"].as_str()).collect();
    assert!(accounts.contains(&"work") && accounts.contains(&"help"), "{owner}");
    assert!(gw.shutdown().await);
}

/// A JPEG-looking payload of `n` bytes (the fake and the model only count and pass it on).
fn jpeg(n: usize) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0];
    b.extend((0..n.saturating_sub(4)).map(|i| (i % 251) as u8));
    b
}

/// Files in (WIT 0.2.0 attachments): a photo reaches the OpenAI-compatible
/// model as an image part with exactly the bytes the user sent, a voice
/// note is transcribed by the fake's `/audio/transcriptions` and a text
/// document read inline, both reaching the offline model, each kept in the
/// session's media dir; a file over
/// `mediaMaxMb` is refused in the chat, never downloaded, never stored.
/// Typing shows in the chat while the turn runs, and a mentioned group
/// message gets the ack reaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_in_typing_and_ack_reactions() {
    use chela_fakes::openai::{OpenAiFake, Scripted};
    let openai = OpenAiFake::start("sk-test").await;
    let fake = TelegramFake::start().await;
    fake_bots(&fake);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = format!(
        r#"{{
  models: {{ providers: {{ openai: {{ baseUrl: "{base}" }} }} }},
  tools: {{ media: {{ models: [ {{ provider: "openai", model: "whisper-1", capabilities: ["audio"] }} ] }} }},
  agents: {{ list: [
    {{ id: "work", default: true, workspace: "{root}/ws-work", identity: {{ name: "Atlas" }} }},
    {{ id: "vision", workspace: "{root}/ws-vision", model: "openai/gpt-test" }},
  ] }},
  bindings: [ {{ agentId: "vision", match: {{ channel: "telegram", accountId: "help" }} }} ],
  channels: {{ telegram: {{
    dmPolicy: "open", allowFrom: ["*"], groupPolicy: "open", groups: {{ "*": {{ requireMention: true }} }},
    mediaMaxMb: 1,
    accounts: {{
      work: {{ botToken: "{WORK}", apiRoot: "{api}" }},
      help: {{ botToken: "{HELP}", apiRoot: "{api}" }},
    }},
  }} }},
}}"#,
        base = openai.base_url(),
        api = fake.api_root(),
        root = root.display()
    );
    let gw = common::serve_with_vars(root, &config, &["channel_telegram"], common::openai_test_key()).await;

    // A photo to the vision agent: the model gets the caption and the image, byte for byte.
    let photo = jpeg(14_540);
    openai.script([Scripted::Text("a test card".into())]);
    fake.user_file(HELP, None, (5001, "Ada"), "photo", photo.clone(), json!({"caption": "what is this?"}));
    let sent = fake.wait_sent(HELP, 1, WAIT).await;
    assert_eq!(sent.first().map(|s| s["text"].clone()), Some(json!("a test card")), "{sent:?}");
    let (_, request) = openai.requests().last().cloned().expect("the model was asked");
    let user = request["messages"].as_array().unwrap().iter().rev().find(|m| m["role"] == "user").unwrap().clone();
    let parts = user["content"].as_array().unwrap_or_else(|| panic!("content parts: {user}"));
    let text = parts[0]["text"].as_str().unwrap();
    assert!(text.starts_with("what is this?\n[image: file_2.jpg, image/jpeg, 14.2 KB]"), "{text}");
    use base64::Engine as _;
    let url = format!("data:image/jpeg;base64,{}", base64::engine::general_purpose::STANDARD.encode(&photo));
    assert_eq!(parts[1], json!({"type": "image_url", "image_url": {"url": url}}));
    let media = |agent: &str| -> Vec<std::path::PathBuf> {
        let d = root.join(format!("state/agents/{agent}/sessions/media"));
        walk(&d)
    };
    let kept = media("vision");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), photo);
    // Typing was shown in that chat while the turn ran (a DM: at once).
    let typing = fake.wait_action(HELP, "sendchataction", WAIT).await;
    assert_eq!(
        typing.first().map(|t| (t["chat_id"].clone(), t["action"].clone())),
        Some((json!(5001), json!("typing")))
    );
    // Three more turns send the photo again; from the fourth on, it is a
    // marker (OpenClaw's cleanup of images the model already saw).
    for turn in 2..=5 {
        openai.script([Scripted::Text(format!("answer {turn}"))]);
        fake.user_message(HELP, None, (5001, "Ada"), &format!("and now {turn}?"), json!({}));
        let sent = fake.wait_sent(HELP, turn, WAIT).await;
        assert_eq!(sent.last().map(|s| s["text"].clone()), Some(json!(format!("answer {turn}"))));
        let asked = openai.requests().last().cloned().expect("asked").1["messages"].to_string();
        let marker = chela_core::pruning::IMAGE_PROCESSED;
        if turn < 5 {
            assert!(asked.contains(&url) && !asked.contains(marker), "turn {turn}: the photo is sent again");
        } else {
            assert!(!asked.contains("image_url") && asked.contains(marker), "turn {turn}: {asked}");
            assert!(asked.contains("what is this?"), "the photo's caption stays");
        }
    }

    // A voice note and a text document to the offline agent: the voice note
    // transcribed (by the configured model, with the agent's key), the document inline.
    openai.set_transcript("remind me to buy milk");
    fake.user_file(WORK, None, (5002, "Bo"), "voice", vec![7; 5120], json!({"duration": 3, "mime_type": "audio/ogg"}));
    let sent = fake.wait_sent(WORK, 1, WAIT).await;
    let reply = sent.first().and_then(|s| s["text"].as_str()).unwrap_or_default().to_string();
    assert!(reply.contains("[voice: file_3.oga, audio/ogg, 5.0 KB]\nTranscript: remind me to buy milk"), "{reply}");
    let heard = openai.transcriptions();
    assert_eq!(heard.len(), 1);
    assert_eq!((heard[0].fields["model"].as_str(), heard[0].bytes.len()), (Some("whisper-1"), 5120));
    assert_eq!((heard[0].file_name.as_str(), heard[0].mime_type.as_str()), ("file_3.oga", "audio/ogg"));
    let notes = b"buy milk\ncall mum\n".to_vec();
    fake.user_file(
        WORK,
        None,
        (5002, "Bo"),
        "document",
        notes,
        json!({"file_name": "todo.txt", "mime_type": "text/plain", "caption": "my list"}),
    );
    let sent = fake.wait_sent(WORK, 2, WAIT).await;
    let reply = sent.get(1).and_then(|s| s["text"].as_str()).unwrap_or_default().to_string();
    assert!(reply.contains("my list\n[document: todo.txt, text/plain, 18 B]"), "{reply}");
    assert!(reply.contains("<file name=\"todo.txt\">\nbuy milk\ncall mum\n"), "{reply}");
    assert_eq!(media("work").len(), 2);

    // Over the 1 MB cap: refused in the chat, nothing downloaded or stored, no turn.
    fake.user_file(
        WORK,
        None,
        (5002, "Bo"),
        "document",
        vec![1; 2 * 1024 * 1024],
        json!({"file_name": "big.zip", "mime_type": "application/zip"}),
    );
    let sent = fake.wait_sent(WORK, 3, WAIT).await;
    let notice = sent.get(2).and_then(|s| s["text"].as_str()).unwrap_or_default().to_string();
    assert_eq!(notice, "⚠️ big.zip is too large (2.0 MB; the limit is 1.0 MB), so it was not taken in");
    assert_eq!(media("work").len(), 2, "nothing of the refused file is kept");

    // A mentioned group message gets 👀 (the default scope acknowledges group mentions).
    fake.add_group(-100_900, "Team", &[]);
    let u = fake.user_message(
        WORK,
        Some(-100_900),
        (5003, "Cy"),
        "@atlas_bot ping",
        json!({"entities": [{"type": "mention", "offset": 0, "length": 10}]}),
    );
    let reactions = fake.wait_action(WORK, "setmessagereaction", WAIT).await;
    assert_eq!(
        reactions.first().cloned(),
        Some(
            json!({"chat_id": -100_900, "message_id": u["message"]["message_id"], "reaction": [{"type": "emoji", "emoji": "👀"}]})
        )
    );
    fake.wait_sent(WORK, 4, WAIT).await;
    gw.shutdown().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Files out: a reply's `MEDIA:` lines attach files from the agent's own
/// workspace, uploaded with the platform's file methods in the same chat
/// and topic, through the account the message came in on; a file outside
/// the workspace is not read, and the reply says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_files_are_uploaded_from_the_workspace_only() {
    let fake = TelegramFake::start().await;
    fake_bots(&fake);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ws = root.join("ws-work");
    std::fs::create_dir_all(ws.join("out")).unwrap();
    let report = b"%PDF-1.7 quarterly numbers".to_vec();
    std::fs::write(ws.join("out/report.pdf"), &report).unwrap();
    std::fs::write(ws.join("chart.png"), jpeg(2048)).unwrap();
    std::fs::write(root.join("private.txt"), b"another agent's notes").unwrap();
    common::offline_script(
        root,
        "work",
        r#"{ rules: [
            { when: "report", reply: "Here it is.\n\nMEDIA:out/report.pdf\nMEDIA:/workspace/chart.png" },
            { when: "peek", reply: "Trying.\nMEDIA:../private.txt" },
        ] }"#,
    );
    let gw = start(root, &fake, "polling").await;
    fake.add_group(-100_500, "Team", &[7]);
    let topic = json!({"message_thread_id": 7, "is_topic_message": true,
                       "entities": [{"type": "mention", "offset": 0, "length": 10}]});
    fake.user_message(WORK, Some(-100_500), (5001, "Ada"), "@atlas_bot the report please", topic);
    let uploads = fake.wait_uploads(WORK, 2, WAIT).await;
    assert_eq!(uploads.len(), 2, "{uploads:?}");
    assert_eq!(uploads[0].method, "senddocument");
    assert_eq!((uploads[0].file_name.as_str(), uploads[0].mime_type.as_str()), ("report.pdf", "application/pdf"));
    assert_eq!(uploads[0].bytes, report);
    assert_eq!(
        (uploads[0].fields["chat_id"].clone(), uploads[0].fields["message_thread_id"].clone()),
        (json!(-100_500), json!(7))
    );
    assert_eq!(uploads[1].method, "sendphoto");
    let text = fake.wait_sent(WORK, 1, WAIT).await;
    assert_eq!(text[0]["text"], "Here it is.", "the MEDIA lines are not sent as text");
    assert!(fake.uploads(HELP).is_empty(), "nothing leaves through another account");

    fake.user_message(WORK, None, (5001, "Ada"), "peek", json!({}));
    let sent = fake.wait_sent(WORK, 2, WAIT).await;
    assert_eq!(sent[1]["text"], "Trying.\n(private.txt not attached: outside the agent's workspace)");
    assert_eq!(fake.uploads(WORK).len(), 2);
    assert!(gw.shutdown().await);
}

/// Preview streaming (`streaming.mode: "partial"`): the answer appears as
/// one message while it is written, edited as it grows, and its last edit
/// is exactly the answer the transcript holds; no second message is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_answer_is_edited_in_place_into_the_transcripts_text() {
    let fake = TelegramFake::start().await;
    fake_bots(&fake);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let answer = "The plan has three parts. First we gather what the team already knows and write it down \
        in one place, so nobody has to ask twice. Then we pick the two questions that matter most this \
        month and give each an owner. Last, we meet on Friday, look at what we learned, and decide what \
        to stop doing. That is all it takes.";
    common::offline_script(
        root,
        "work",
        &format!("{{ rules: [ {{ when: \"plan\", reply: {} }} ] }}", serde_json::to_string(answer).unwrap()),
    );
    let text = config(root, &fake.api_root(), "polling").replace(
        "dmPolicy: \"open\",",
        "dmPolicy: \"open\", streaming: { mode: \"partial\", preview: { chunk: { minChars: 60 } } },",
    );
    let gw = common::serve(root, &text, &["channel_telegram"]).await;
    let u = fake.user_message(WORK, None, (5001, "Ada"), "what is the plan?", json!({}));
    let edits = async {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let edits: Vec<Value> =
                fake.actions(WORK).into_iter().filter(|(m, _)| m == "editmessagetext").map(|(_, v)| v).collect();
            if edits.last().is_some_and(|e| e["text"] == answer) || tokio::time::Instant::now() >= deadline {
                return edits;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    .await;
    let sent = fake.sent(WORK);
    assert_eq!(sent.len(), 1, "one message, edited in place: {sent:?}");
    let first = sent[0]["text"].as_str().unwrap();
    assert!(first.chars().count() >= 60 && answer.starts_with(first), "the preview is the answer so far: {first}");
    assert_eq!(sent[0]["reply_parameters"]["message_id"], u["message"]["message_id"]);
    assert!(!edits.is_empty(), "the preview was edited: {:?}", fake.actions(WORK));
    assert_eq!(edits.last().unwrap()["text"], answer, "{edits:?}");
    // The transcript holds the same answer.
    let sessions = root.join("state/agents/work/sessions");
    let transcript = walk(&sessions)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .expect("a transcript");
    let last_assistant = transcript
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"]["role"] == "assistant")
        .expect("an assistant message");
    assert_eq!(last_assistant["message"]["content"][0]["text"], answer);
    assert!(gw.shutdown().await);
}

/// A reply's `MEDIA:` line reads a workspace file only for an agent whose
/// tool policy allows `read`: with `read` denied nothing is uploaded and
/// the reply says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_files_need_the_read_tool() {
    let fake = TelegramFake::start().await;
    fake_bots(&fake);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("ws-support")).unwrap();
    std::fs::write(root.join("ws-support/notes.txt"), b"private notes").unwrap();
    common::offline_script(root, "support", r#"{ rules: [ { when: "notes", reply: "Here.\nMEDIA:notes.txt" } ] }"#);
    let text = config(root, &fake.api_root(), "polling")
        .replace(r#"identity: { name: "Sage" } }"#, r#"identity: { name: "Sage" }, tools: { deny: ["read"] } }"#);
    assert!(text.contains(r#"deny: ["read"]"#), "{text}");
    let gw = common::serve(root, &text, &["channel_telegram"]).await;
    fake.user_message(HELP, None, (5001, "Ada"), "the notes please", json!({}));
    let sent = fake.wait_sent(HELP, 1, WAIT).await;
    assert_eq!(
        sent.first().map(|m| m["text"].clone()),
        Some(json!("Here.\n(notes.txt not attached: this agent's tool policy does not allow `read`)"))
    );
    assert!(fake.uploads(HELP).is_empty());
    assert!(gw.shutdown().await);
}

/// The `message` tool (OpenClaw's `action: "send"`): an agent sends text
/// and a file from its workspace into another chat through its own bot,
/// and into its own chat with no target named; naming another agent's
/// account is refused and nothing leaves through that bot; an agent whose
/// policy denies `message` has no such tool at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_tool_sends_through_the_agents_own_account_only() {
    let fake = TelegramFake::start().await;
    fake_bots(&fake);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ws = root.join("ws-work");
    std::fs::create_dir_all(ws.join("out")).unwrap();
    let report = b"%PDF-1.7 the numbers Bo asked for".to_vec();
    std::fs::write(ws.join("out/report.pdf"), &report).unwrap();
    for (agent, script) in [
        (
            "work",
            r#"{ rules: [
                { when: "send bo the report", tool: "message",
                  arguments: { action: "send", to: "5002", message: "The report, as promised.", media: "out/report.pdf" },
                  reply: "Sent: {{result}}" },
                { when: "as sage", tool: "message",
                  arguments: { action: "send", accountId: "help", to: "5001", message: "Hello from Sage (not really)" } },
                { when: "note here", tool: "message", arguments: { action: "send", message: "An extra note." }, reply: "Done." },
                { when: "steal", tool: "message",
                  arguments: { action: "send", to: "5002", message: "x", media: "../ws-support/notes.txt" } },
            ] }"#,
        ),
        (
            "support",
            r#"{ rules: [ { when: "announce", tool: "message", arguments: { action: "send", message: "hi" } } ] }"#,
        ),
    ] {
        common::offline_script(root, agent, script);
    }
    std::fs::create_dir_all(root.join("ws-support")).unwrap();
    std::fs::write(root.join("ws-support/notes.txt"), b"support's private notes").unwrap();
    let text = config(root, &fake.api_root(), "polling")
        .replace(r#"identity: { name: "Sage" } }"#, r#"identity: { name: "Sage" }, tools: { deny: ["message"] } }"#);
    assert!(text.contains(r#"deny: ["message"]"#), "{text}");
    let gw = common::serve(root, &text, &["channel_telegram", "tool_message"]).await;

    // Bo has talked to the bot (a bot can write only to those who did).
    fake.user_message(WORK, None, (5002, "Bo"), "hi", json!({}));
    fake.wait_sent(WORK, 1, WAIT).await;

    // Into another chat, through its own bot: the text, then the file, in Bo's chat.
    fake.user_message(WORK, None, (5001, "Ada"), "please send bo the report", json!({}));
    let uploads = fake.wait_uploads(WORK, 1, WAIT).await;
    assert_eq!(uploads.len(), 1, "{:?}", fake.sent(WORK));
    assert_eq!(uploads[0].method, "senddocument");
    assert_eq!(uploads[0].fields["chat_id"], json!(5002), "{:?}", uploads[0].fields);
    assert_eq!((uploads[0].file_name.as_str(), uploads[0].bytes.as_slice()), ("report.pdf", report.as_slice()));
    let sent = fake.wait_sent(WORK, 3, WAIT).await;
    assert_eq!((sent[1]["chat_id"].clone(), sent[1]["text"].clone()), (json!(5002), json!("The report, as promised.")));
    assert_eq!(sent[2]["chat_id"], 5001, "the turn's own answer goes back to Ada");
    let answer = sent[2]["text"].as_str().unwrap();
    assert!(answer.starts_with("Sent: ") && answer.contains(r#""accountId":"work""#), "{answer}");

    // Through another agent's bot: refused, and nothing leaves through it.
    fake.user_message(WORK, None, (5001, "Ada"), "say hello as sage", json!({}));
    let sent = fake.wait_sent(WORK, 4, WAIT).await;
    let refusal = sent[3]["text"].as_str().unwrap();
    assert!(refusal.contains("the tool `message` failed"), "{refusal}");
    assert!(refusal.contains("account `help` of `telegram` speaks for support, not `work`"), "{refusal}");
    assert!(fake.sent(HELP).is_empty() && fake.uploads(HELP).is_empty(), "{:?}", fake.sent(HELP));

    // No target: the session's own chat. A file outside the workspace: nothing sent.
    fake.user_message(WORK, None, (5001, "Ada"), "add a note here", json!({}));
    let sent = fake.wait_sent(WORK, 6, WAIT).await;
    assert_eq!((sent[4]["chat_id"].clone(), sent[4]["text"].clone()), (json!(5001), json!("An extra note.")));
    assert_eq!(sent[5]["text"], "Done.");
    fake.user_message(WORK, None, (5001, "Ada"), "steal their notes", json!({}));
    let sent = fake.wait_sent(WORK, 7, WAIT).await;
    let refusal = sent[6]["text"].as_str().unwrap();
    assert!(refusal.contains("notes.txt not sent: outside the agent's workspace"), "{refusal}");
    assert_eq!(fake.uploads(WORK).len(), 1, "nothing more was uploaded");
    assert!(sent.iter().all(|s| s["text"] != "x"), "no part of a refused message is sent: {sent:?}");

    // Denied by policy: the tool is not there for `support`.
    fake.user_message(HELP, None, (5001, "Ada"), "announce it", json!({}));
    let help = fake.wait_sent(HELP, 1, WAIT).await;
    assert!(help[0]["text"].as_str().unwrap().contains("I have no tool `message` in this session"), "{}", help[0]);
    assert_eq!(help.len(), 1);
    assert!(gw.shutdown().await);
}

/// Block streaming (`agents.defaults.blockStreamingDefault: "on"`): the
/// answer arrives as several messages, cut at paragraph breaks once
/// `blockStreamingChunk.minChars` are written, the first replying to the
/// message; together they are the transcript's answer, nothing is edited,
/// and a `MEDIA:` line's file comes after them (not as text).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_streamed_answer_arrives_as_paragraph_blocks_equal_to_the_transcript() {
    let fake = TelegramFake::start().await;
    fake_bots(&fake);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let paragraphs = common::PLAN;
    let answer = format!("{}\n\nMEDIA:plan.txt", paragraphs.join("\n\n"));
    std::fs::create_dir_all(root.join("ws-work")).unwrap();
    std::fs::write(root.join("ws-work/plan.txt"), b"the plan, in full\n").unwrap();
    common::offline_reply(root, "work", "plan", &answer);
    let text = common::with_paragraph_blocks(&config(root, &fake.api_root(), "polling"))
        .replace("agents: { defaults: {", "agents: { defaults: { blockStreamingDefault: \"on\",");
    assert!(text.contains("blockStreamingDefault"), "{text}");
    let gw = common::serve(root, &text, &["channel_telegram"]).await;
    let u = fake.user_message(WORK, None, (5001, "Ada"), "what is the plan?", json!({}));
    let uploads = fake.wait_uploads(WORK, 1, WAIT).await;
    assert_eq!(uploads.len(), 1, "the file after the blocks: {:?}", fake.sent(WORK));
    assert_eq!(
        (uploads[0].file_name.as_str(), uploads[0].bytes.as_slice()),
        ("plan.txt", b"the plan, in full\n".as_slice())
    );
    let sent = fake.wait_sent(WORK, 3, WAIT).await;
    let texts: Vec<&str> = sent.iter().map(|s| s["text"].as_str().unwrap_or_default()).collect();
    assert_eq!(texts, paragraphs, "one block per paragraph, in order, nothing else: {sent:?}");
    assert_eq!(sent[0]["reply_parameters"]["message_id"], u["message"]["message_id"]);
    assert!(sent[1..].iter().all(|s| s.get("reply_parameters").is_none()), "only the first replies: {sent:?}");
    assert!(fake.actions(WORK).iter().all(|(m, _)| m != "editmessagetext"), "blocks are not edits");
    // The transcript holds the answer the blocks carried.
    let transcript = std::fs::read_dir(root.join("state/agents/work/sessions"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect::<String>();
    assert!(transcript.contains(&serde_json::to_string(&answer).unwrap()), "{transcript}");
    assert!(gw.shutdown().await);
}

/// Status reactions (`messages.statusReactions.enabled`): the one reaction
/// a bot has on the message goes 👀 (taken in) → 🤔 (thinking) → 🔥 (a
/// tool runs) → 🤔 → 👀 again once the answer is out, in that order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reactions_follow_the_turn_and_end_on_the_acknowledgement() {
    let fake = TelegramFake::start().await;
    fake_bots(&fake);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    common::offline_script(
        root,
        "work",
        r#"{ rules: [ { when: "echo", tool: "echo", arguments: { text: "ping" }, reply: "Echoed: {{result}}" } ] }"#,
    );
    let text = config(root, &fake.api_root(), "polling").replace(
        "channels: {",
        "messages: { ackReactionScope: \"all\", statusReactions: { enabled: true } }, channels: {",
    );
    assert!(text.contains("statusReactions"), "{text}");
    let gw = common::serve(root, &text, &["channel_telegram", "tool_echo"]).await;
    let u = fake.user_message(WORK, None, (5001, "Ada"), "echo this", json!({}));
    let sent = fake.wait_sent(WORK, 1, WAIT).await;
    assert!(sent[0]["text"].as_str().unwrap().starts_with("Echoed:"), "{sent:?}");
    let emojis = || -> Vec<String> {
        fake.actions(WORK)
            .into_iter()
            .filter(|(m, v)| m == "setmessagereaction" && v["message_id"] == u["message"]["message_id"])
            .map(|(_, v)| v["reaction"][0]["emoji"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while emojis().len() < 5 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(emojis(), ["👀", "🤔", "🔥", "🤔", "👀"]);
    assert!(gw.shutdown().await);
}
