//! The WhatsApp Cloud API adapter component (`plugins/channel-whatsapp`) in
//! a real gateway against the WhatsApp fake (`tests/fakes`): the same
//! component would talk to graph.facebook.com with only `graphApiBase`
//! changed.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use chela_fakes::whatsapp::{ascii_json, post_signed, Fault, WhatsAppFake};
use chela_fakes::wire;
use chela_gateway::Running;
use serde_json::{json, Value};

const APP_SECRET: &str = "meta-app-secret";
const SALES: &str = "106540352242922";
const CARE: &str = "106540352249999";
const WAIT: Duration = Duration::from_secs(20);

fn config(root: &Path, base: &str) -> String {
    format!(
        r#"{{
  agents: {{ list: [
    {{ id: "work", default: true, workspace: "{root}/ws-work", identity: {{ name: "Atlas" }},
       groupChat: {{ mentionPatterns: ["\\batlas\\b"] }} }},
    {{ id: "support", workspace: "{root}/ws-support", identity: {{ name: "Sage" }} }},
  ] }},
  bindings: [
    {{ agentId: "work", match: {{ channel: "whatsapp", accountId: "sales" }} }},
    {{ agentId: "support", match: {{ channel: "whatsapp", accountId: "care" }} }},
  ],
  channels: {{ whatsapp: {{
    dmPolicy: "open", allowFrom: ["*"], groupPolicy: "open", groups: {{ "*": {{ requireMention: true }} }},
    appSecret: "{APP_SECRET}", verifyToken: "let-me-in", graphApiBase: "{base}",
    accounts: {{
      sales: {{ phoneNumberId: "{SALES}", accessToken: "EAAG-sales" }},
      care: {{ phoneNumberId: "{CARE}", accessToken: "EAAG-care" }},
    }},
  }} }},
}}"#,
        root = root.display()
    )
}

async fn start(root: &Path) -> (WhatsAppFake, Running, String) {
    let fake = WhatsAppFake::start(APP_SECRET).await;
    fake.add_number(SALES, "15550783881", "EAAG-sales");
    fake.add_number(CARE, "15550783882", "EAAG-care");
    let gw = common::serve(root, &config(root, &fake.base_url()), &["channel_whatsapp"]).await;
    let hook = format!("http://{}/channels/whatsapp/sales/", gw.addr);
    (fake, gw, hook)
}

fn routed(gw: &Running, account: &str, agent: &str) -> u64 {
    gw.gateway
        .metrics
        .get("chela_messages_in_total", &[("channel", "whatsapp"), ("account", account), ("agent", agent)])
}

fn text(m: &Value) -> &str {
    m["text"]["body"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_group_two_numbers_long_replies_and_throttling() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, gw, hook) = start(dir.path()).await;
    // The handshake: a wrong verify token is refused, the right one echoes the challenge.
    assert!(fake.subscribe(&hook, "guess").await.unwrap_err().contains("403"));
    fake.subscribe(&hook, "let-me-in").await.expect("subscribed");

    // A DM to the sales number: `work` answers through the sales number, quoting it.
    let (id, status) = fake.user_message(SALES, ("16505551234", "Ada"), "hello", None, None).await;
    assert_eq!(status, Some(200));
    let sent = fake.wait_sent(SALES, 1, WAIT).await;
    assert_eq!(sent.len(), 1, "no reply");
    assert_eq!((sent[0]["to"].as_str(), sent[0]["recipient_type"].as_str()), (Some("16505551234"), Some("individual")));
    assert_eq!(sent[0]["context"]["message_id"], id.as_str());
    assert!(text(&sent[0]).starts_with("Atlas (agent `work`)"), "{}", sent[0]);

    // The same app's callback carries the care number's events too: routed by
    // phone_number_id to account `care`, answered by `support` through care only.
    fake.user_message(CARE, ("16505551234", "Ada"), "my order is late", None, None).await;
    let care = fake.wait_sent(CARE, 1, WAIT).await;
    assert!(text(&care[0]).starts_with("Sage (agent `support`)"), "{}", care[0]);
    assert_eq!(fake.sent(SALES).len(), 1, "a reply never leaves through another number");

    // A group: not mentioned → no answer; mentioned by pattern → answered to the group.
    fake.user_message(SALES, ("16505550001", "Bo"), "lunch anyone?", Some("Y2FwaV9ncm91cDox"), None).await;
    fake.user_message(SALES, ("16505550001", "Bo"), "Atlas, the numbers please", Some("Y2FwaV9ncm91cDox"), None).await;
    let sent = fake.wait_sent(SALES, 2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent_now = fake.sent(SALES);
    assert_eq!(sent_now.len(), 2, "only the mention is answered: {sent_now:?}");
    assert_eq!((sent[1]["to"].as_str(), sent[1]["recipient_type"].as_str()), (Some("Y2FwaV9ncm91cDox"), Some("group")));
    assert!(text(&sent[1]).contains("Atlas, the numbers please"), "{}", sent[1]);

    // Non-ASCII arrives \u-escaped and signed as sent; the agent sees the text itself.
    fake.user_message(SALES, ("16505550002", "Zoë"), "¿qué tal? 👋", None, None).await;
    let sent = fake.wait_sent(SALES, 3, WAIT).await;
    assert!(text(&sent[2]).contains("“¿qué tal? 👋”"), "{}", sent[2]);

    // A long reply is split under 4096 characters; only the first part quotes.
    let long = "word ".repeat(900);
    fake.user_message(SALES, ("16505550003", "Cy"), long.trim(), None, None).await;
    let sent = fake.wait_sent(SALES, 5, WAIT).await;
    let parts: Vec<&Value> = sent.iter().filter(|m| m["to"] == "16505550003").collect();
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert!(parts.iter().all(|p| text(p).chars().count() <= 4096));
    assert!(parts[0]["context"].is_object() && parts[1]["context"].is_null());

    // Throughput limit (130429): the reply goes out once, after a back-off.
    fake.fail_next_send(SALES, Fault::Throughput);
    let before = Instant::now();
    fake.user_message(SALES, ("16505550004", "Di"), "still there?", None, None).await;
    let sent = fake.wait_sent(SALES, 6, WAIT).await;
    assert_eq!(sent.iter().filter(|m| m["to"] == "16505550004").count(), 1);
    assert!(before.elapsed() >= Duration::from_secs(1), "backed off before retrying");

    // Meta's `statuses` notifications for our sends reach the adapter and route nothing.
    let before = routed(&gw, "sales", "work");
    let statuses = fake.retry_undelivered().await;
    assert!(!statuses.is_empty() && statuses.iter().all(|s| *s == Some(200)), "{statuses:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(routed(&gw, "sales", "work"), before);
    assert!(gw.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_malformed_bodies_and_redelivery() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, gw, hook) = start(dir.path()).await;
    fake.subscribe(&hook, "let-me-in").await.expect("subscribed");
    let body = ascii_json(&json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": SALES},
            "messages": [{"from": "16505559999", "id": "wamid.forged", "timestamp": "1", "type": "text",
                          "text": {"body": "forged"}}]}}]}]}));
    // Signed with another secret, unsigned, or signed over other bytes: 401.
    assert_eq!(post_signed(&hook, "not-the-secret", &body).await, Some(401));
    let unsigned = wire::request("POST", &hook, &[("Content-Type", "application/json")], &body).await.unwrap();
    assert_eq!(unsigned.status, 401);
    let sig = format!("sha256={}", wire::hmac_sha256_hex(APP_SECRET.as_bytes(), b"{}"));
    let swapped = wire::request("POST", &hook, &[("X-Hub-Signature-256", &sig)], &body).await.unwrap();
    assert_eq!(swapped.status, 401);
    // Validly signed but malformed: 400.
    assert_eq!(post_signed(&hook, APP_SECRET, b"{not json").await, Some(400));
    assert_eq!(post_signed(&hook, APP_SECRET, br#"{"object": "page", "entry": []}"#).await, Some(400));
    // A handshake with the wrong mode is refused.
    let bad = wire::request(
        "GET",
        &format!("{hook}?hub.mode=unsubscribe&hub.verify_token=let-me-in&hub.challenge=1"),
        &[],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(bad.status, 400);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(routed(&gw, "sales", "work"), 0, "nothing was routed");
    assert!(fake.sent(SALES).is_empty());

    // At-least-once delivery: the same notification twice is one message.
    let n = fake.delivered_count();
    fake.user_message(SALES, ("16505551234", "Ada"), "once only", None, None).await;
    fake.wait_sent(SALES, 1, WAIT).await;
    assert_eq!(fake.redeliver(n).await, Some(200));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.sent(SALES).len(), 1, "processed once");
    assert_eq!(routed(&gw, "sales", "work"), 1);

    // A restarted gateway still remembers it (the dedupe set lives in the account's kv).
    assert!(gw.shutdown().await);
    let gw = common::serve(dir.path(), &config(dir.path(), &fake.base_url()), &["channel_whatsapp"]).await;
    let hook = format!("http://{}/channels/whatsapp/sales/", gw.addr);
    fake.subscribe(&hook, "let-me-in").await.expect("subscribed again");
    assert_eq!(fake.redeliver(n).await, Some(200));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.sent(SALES).len(), 1, "not processed again after a restart");
    assert!(gw.shutdown().await);
}

/// WIT 0.2.0 on WhatsApp: a voice note (a media id, no size in the webhook)
/// is resolved through `GET /<media-id>`, downloaded with the access token
/// and reaches the agent; the message gets `messages.ackReaction` (the only
/// source WhatsApp takes) and a typing indicator; an image over
/// `mediaMaxMb` is refused and nothing is kept; a reply's `MEDIA:` file is
/// uploaded to `/media` and sent as a document through the same number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_reactions_typing_and_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("ws-work")).unwrap();
    std::fs::write(root.join("ws-work/invoice.pdf"), b"%PDF-1.4 invoice 42").unwrap();
    common::offline_script(root, "work", r#"{ rules: [ { when: "invoice", reply: "Sure.\nMEDIA:invoice.pdf" } ] }"#);
    let fake = WhatsAppFake::start(APP_SECRET).await;
    fake.add_number(SALES, "15550783881", "EAAG-sales");
    fake.add_number(CARE, "15550783882", "EAAG-care");
    let cfg = config(root, &fake.base_url())
        .replace("  channels: {", "  messages: { ackReaction: \"👍\", ackReactionScope: \"all\" },\n  channels: {")
        .replace("dmPolicy: \"open\",", "dmPolicy: \"open\", mediaMaxMb: 1,");
    let gw = common::serve(root, &cfg, &["channel_whatsapp"]).await;
    fake.subscribe(&format!("http://{}/channels/whatsapp/sales/", gw.addr), "let-me-in").await.expect("subscribed");

    let (id, status) = fake
        .user_media(
            SALES,
            ("16505551234", "Ada"),
            "audio",
            "audio/ogg; codecs=opus",
            vec![3; 5120],
            serde_json::json!({"voice": true}),
        )
        .await;
    assert_eq!(status, Some(200));
    let sent = fake.wait_sent(SALES, 1, WAIT).await;
    let reply = sent.first().map(|m| text(m).to_string()).unwrap_or_default();
    assert!(reply.contains("[voice: voice.ogg, audio/ogg, 5.0 KB]"), "{reply}");
    let deadline = tokio::time::Instant::now() + WAIT;
    while fake.actions(SALES).len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let actions = fake.actions(SALES);
    let reaction = actions.iter().find(|a| a["type"] == "reaction").expect("an ack reaction");
    assert_eq!(reaction["reaction"], serde_json::json!({"message_id": id, "emoji": "👍"}));
    assert_eq!(reaction["to"], "16505551234");
    let typing = actions.iter().find(|a| a["status"] == "read").expect("a typing indicator");
    assert_eq!(
        (typing["message_id"].as_str(), typing["typing_indicator"]["type"].as_str()),
        (Some(id.as_str()), Some("text"))
    );

    // 2 MB against a 1 MB cap: refused, nothing kept, no turn.
    fake.user_media(
        SALES,
        ("16505551234", "Ada"),
        "image",
        "image/jpeg",
        vec![9; 2 * 1024 * 1024],
        serde_json::json!({}),
    )
    .await;
    let sent = fake.wait_sent(SALES, 2, WAIT).await;
    assert_eq!(
        sent.get(1).map(text),
        Some("⚠️ image.jpg is too large (2.0 MB; the limit is 1.0 MB), so it was not taken in")
    );
    let media_dir = root.join("state/agents/work/sessions/media");
    let kept: Vec<_> = std::fs::read_dir(&media_dir)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .collect();
    assert_eq!(kept.len(), 1, "only the voice note is kept: {kept:?}");

    fake.user_message(SALES, ("16505551234", "Ada"), "send the invoice", None, None).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !fake.actions(SALES).iter().any(|a| a["type"] == "document") && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let doc = fake.actions(SALES).into_iter().find(|a| a["type"] == "document").expect("a document message");
    assert_eq!(doc["document"]["filename"], "invoice.pdf");
    let media_id = doc["document"]["id"].as_str().unwrap().to_string();
    assert_eq!(fake.uploaded(SALES, &media_id), Some(("application/pdf".to_string(), b"%PDF-1.4 invoice 42".to_vec())));
    assert!(fake.actions(CARE).is_empty(), "nothing through the other number");
    assert!(gw.shutdown().await);
}

/// The `message` tool on WhatsApp: a workspace file (media upload, then a
/// document message) to the person who asked, through the agent's own
/// number; naming the number of another agent is refused and that number
/// sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_tool_sends_a_document_through_the_agents_own_number_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("ws-work")).unwrap();
    std::fs::write(root.join("ws-work/invoice.pdf"), b"%PDF-1.4 invoice 43").unwrap();
    common::offline_script(
        root,
        "work",
        r#"{ rules: [
            { when: "invoice", tool: "message",
              arguments: { action: "send", message: "Your invoice.", media: "invoice.pdf" }, reply: "Sent it." },
            { when: "as care", tool: "message",
              arguments: { action: "send", accountId: "care", to: "16505551234", message: "hi from care" } },
        ] }"#,
    );
    let fake = WhatsAppFake::start(APP_SECRET).await;
    fake.add_number(SALES, "15550783881", "EAAG-sales");
    fake.add_number(CARE, "15550783882", "EAAG-care");
    let gw = common::serve(root, &config(root, &fake.base_url()), &["channel_whatsapp", "tool_message"]).await;
    fake.subscribe(&format!("http://{}/channels/whatsapp/sales/", gw.addr), "let-me-in").await.expect("subscribed");

    fake.user_message(SALES, ("16505551234", "Ada"), "my invoice please", None, None).await;
    let sent = fake.wait_sent(SALES, 2, WAIT).await;
    let texts: Vec<&str> = sent.iter().map(text).collect();
    assert_eq!(texts, ["Your invoice.", "Sent it."], "{sent:?}");
    assert!(sent.iter().all(|s| s["to"] == "16505551234"), "{sent:?}");
    let doc = fake.actions(SALES).into_iter().find(|a| a["type"] == "document").expect("a document message");
    assert_eq!((doc["to"].as_str(), doc["document"]["filename"].as_str()), (Some("16505551234"), Some("invoice.pdf")));
    let media_id = doc["document"]["id"].as_str().unwrap().to_string();
    assert_eq!(fake.uploaded(SALES, &media_id), Some(("application/pdf".to_string(), b"%PDF-1.4 invoice 43".to_vec())));

    fake.user_message(SALES, ("16505551234", "Ada"), "say it as care", None, None).await;
    let sent = fake.wait_sent(SALES, 3, WAIT).await;
    assert!(text(&sent[2]).contains("account `care` of `whatsapp` speaks for support, not `work`"), "{sent:?}");
    assert!(fake.sent(CARE).is_empty() && fake.actions(CARE).is_empty(), "{:?}", fake.sent(CARE));
    assert!(gw.shutdown().await);
}

/// Block streaming where the platform has no edits: with
/// `streaming.block.enabled` on the channel, a long answer arrives as
/// several WhatsApp messages while it is written (the first quoting the
/// message), together exactly the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_streamed_answer_arrives_as_several_messages() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let paragraphs = &common::PLAN[..2];
    let answer = paragraphs.join("\n\n");
    common::offline_reply(root, "work", "plan", &answer);
    let fake = WhatsAppFake::start(APP_SECRET).await;
    fake.add_number(SALES, "15550783881", "EAAG-sales");
    fake.add_number(CARE, "15550783882", "EAAG-care");
    let config_text = common::with_paragraph_blocks(&config(root, &fake.base_url()))
        .replace("graphApiBase:", "streaming: { block: { enabled: true } }, graphApiBase:");
    assert!(config_text.contains("block: { enabled: true }"), "{config_text}");
    let gw = common::serve(root, &config_text, &["channel_whatsapp"]).await;
    fake.subscribe(&format!("http://{}/channels/whatsapp/sales/", gw.addr), "let-me-in").await.expect("subscribed");
    let (id, _) = fake.user_message(SALES, ("16505551234", "Ada"), "what is the plan?", None, None).await;
    let sent = fake.wait_sent(SALES, 2, WAIT).await;
    let texts: Vec<&str> = sent.iter().map(text).collect();
    assert_eq!(texts, paragraphs, "{sent:?}");
    assert_eq!(sent[0]["context"]["message_id"], id.as_str(), "the first block quotes the message");
    assert!(sent[1].get("context").is_none(), "{sent:?}");
    assert!(gw.shutdown().await);
    assert_eq!(fake.sent(SALES).len(), 2, "nothing after the blocks");
}

/// A photo to a vision model and a voice note to the transcription model,
/// through the media id → URL → bytes flow: the model request carries the
/// image byte for byte, and the voice note's transcript reaches the turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_reaches_the_model_and_a_voice_note_is_transcribed() {
    use base64::Engine as _;
    use chela_fakes::openai::{OpenAiFake, Scripted};
    let openai = OpenAiFake::start("sk-test").await;
    openai.set_transcript("call the supplier tomorrow");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let fake = WhatsAppFake::start(APP_SECRET).await;
    fake.add_number(SALES, "15550783881", "EAAG-sales");
    fake.add_number(CARE, "15550783882", "EAAG-care");
    let cfg = common::with_transcription(&config(root, &fake.base_url()), &openai.base_url())
        .replace(r#"identity: { name: "Sage" } }"#, r#"identity: { name: "Sage" }, model: "openai/gpt-test" }"#);
    assert!(cfg.contains("gpt-test") && cfg.contains("whisper-1"), "{cfg}");
    let gw = common::serve_with_vars(root, &cfg, &["channel_whatsapp"], common::openai_test_key()).await;
    fake.subscribe(&format!("http://{}/channels/whatsapp/care/", gw.addr), "let-me-in").await.expect("subscribed");

    let photo: Vec<u8> = [0xFF, 0xD8, 0xFF, 0xE0].into_iter().chain((0..6000).map(|i| (i % 199) as u8)).collect();
    openai.script([Scripted::Text("a receipt".into())]);
    fake.user_media(CARE, ("16505551234", "Ada"), "image", "image/jpeg", photo.clone(), serde_json::json!({})).await;
    let sent = fake.wait_sent(CARE, 1, WAIT).await;
    assert_eq!(sent.first().map(text), Some("a receipt"), "{sent:?}");
    let (_, request) = openai.requests().last().cloned().expect("the model was asked");
    let user = request["messages"].as_array().unwrap().iter().rev().find(|m| m["role"] == "user").unwrap().clone();
    let url = format!("data:image/jpeg;base64,{}", base64::engine::general_purpose::STANDARD.encode(&photo));
    assert!(
        user["content"].as_array().is_some_and(|p| p.iter().any(|p| p["image_url"]["url"] == url.as_str())),
        "the image, byte for byte: {user}"
    );

    openai.script([Scripted::Text("noted".into())]);
    let voice = vec![5u8; 4096];
    fake.user_media(
        CARE,
        ("16505551234", "Ada"),
        "audio",
        "audio/ogg; codecs=opus",
        voice.clone(),
        serde_json::json!({"voice": true}),
    )
    .await;
    fake.wait_sent(CARE, 2, WAIT).await;
    let heard = openai.transcriptions();
    assert_eq!((heard.len(), heard.first().map(|h| h.bytes.clone())), (1, Some(voice)));
    let (_, request) = openai.requests().last().cloned().expect("the model was asked again");
    assert!(request.to_string().contains("call the supplier tomorrow"), "the transcript is in the turn: {request}");
    assert!(gw.shutdown().await);
}
