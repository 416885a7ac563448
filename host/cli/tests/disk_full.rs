//! A full disk, through the binary: the gateway refuses what it cannot
//! store instead of acknowledging it. A webhook delivery gets 503 (with
//! `Retry-After`), so the platform retries; a poller stops confirming
//! offsets; turns it accepted but cannot store wait; once there is space
//! again, every message is answered, once, in order.
//!
//! The state dir is a small disk of its own (a tmpfs in the gateway's mount
//! namespace), filled and freed by this test.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use chela_fakes::telegram::TelegramFake;
use chela_fakes::whatsapp::WhatsAppFake;
use serde_json::json;
use support::{Gateway, WAIT};

mod support;

const BOT: &str = "777:DISK-bot";
const NUMBER: &str = "109876543210";
const APP_SECRET: &str = "disk-app-secret";

fn config(telegram: &str, whatsapp: &str) -> String {
    format!(
        r#"{{ channels: {{
  telegram: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{ default: {{ botToken: "{BOT}", apiRoot: "{telegram}" }} }} }},
  whatsapp: {{ dmPolicy: "open", allowFrom: ["*"], appSecret: "{APP_SECRET}", verifyToken: "let-me-in",
    graphApiBase: "{whatsapp}", accounts: {{ biz: {{ phoneNumberId: "{NUMBER}", accessToken: "EAAG-disk" }} }} }},
}} }}"#
    )
}

/// Writes zeros to `path` until the disk it is on refuses more.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).expect("the filler file");
    let (mut written, big, small) = (0u64, vec![0u8; 1 << 20], vec![0u8; 4096]);
    for chunk in [&big, &small] {
        loop {
            match f.write(chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    let _ = f.sync_all();
    written
}

/// A WhatsApp notification of one text message (Meta's envelope).
fn notification(id: &str, text: &str) -> Vec<u8> {
    let value = json!({"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": NUMBER},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": "15550001111"}],
        "messages": [{"from": "15550001111", "id": id, "timestamp": "1767700000", "type": "text", "text": {"body": text}}]});
    json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}]})
        .to_string()
        .into_bytes()
}

/// POSTs `body` signed as Meta signs it, over a raw connection; the whole
/// response as text (so its headers can be read).
async fn raw_signed_post(addr: &str, path: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let sig = chela_fakes::wire::hmac_sha256_hex(APP_SECRET.as_bytes(), body);
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("the gateway accepts");
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\nx-hub-signature-256: sha256={sig}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(body).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut out)).await.expect("an answer in time").unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// A labelled counter from `/metrics` (`series` names it with its labels).
async fn counter(gw: &Gateway, series: &str) -> f64 {
    let m = gw.get("/metrics", &[]).await;
    m.body.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_webhooks_and_pauses_polling_then_everything_is_answered_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let telegram = TelegramFake::start().await;
    telegram.add_bot(BOT, 777, "disk_bot");
    let whatsapp = WhatsAppFake::start(APP_SECRET).await;
    whatsapp.add_number(NUMBER, "15550783881", "EAAG-disk");
    let text = config(&telegram.api_root(), &whatsapp.base_url());
    let gw = Gateway::start_on_small_disk(root, &text, &["channel_telegram", "channel_whatsapp"], 64).await;
    let hook = format!("http://{}/channels/whatsapp/biz/", gw.addr);
    whatsapp.subscribe(&hook, "let-me-in").await.expect("WhatsApp handshake");

    // With space: both channels answer.
    let (_, status) = whatsapp.user_message(NUMBER, ("15550001111", "Ana"), "before", None, None).await;
    assert_eq!(status, Some(200));
    whatsapp.wait_sent(NUMBER, 1, WAIT).await;
    telegram.user_message(BOT, None, (4242, "Ana"), "before", json!({}));
    telegram.wait_sent(BOT, 1, WAIT).await;

    let filler = gw.state_path("filler");
    let filled = fill(&filler);
    assert!(filled > 0, "the state dir's disk took nothing");

    // Polled messages. The journal's last page may still take a few small
    // records: those are accepted (and may be confirmed to Telegram), but
    // their turns cannot be stored, so they stay unfinished and wait, in
    // order. Once the journal (or the adapter's offset in kv) refuses, the
    // poller retries instead of polling on: a next poll would confirm to
    // Telegram what was not stored.
    let refusals = async || {
        counter(&gw, r#"chela_errors_total{stage="journal"}"#).await
            + counter(&gw, r#"chela_errors_total{stage="poll"}"#).await
    };
    let unfinished = async || counter(&gw, "chela_journal_unfinished_messages").await as usize;
    let refused_before = refusals().await;
    let (mut written, mut updates) = (Vec::new(), Vec::new());
    loop {
        assert!(written.len() < 40, "40 messages accepted on a full disk");
        let m = telegram.user_message(BOT, None, (4242, "Ana"), &format!("while full {}", written.len()), json!({}));
        updates.push(m["update_id"].as_i64().unwrap());
        written.push(m["message"]["message_id"].as_i64().unwrap());
        let deadline = Instant::now() + WAIT;
        while unfinished().await < written.len() && refusals().await == refused_before {
            assert!(Instant::now() < deadline, "update {} was neither accepted nor refused", updates.last().unwrap());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if unfinished().await < written.len() {
            break;
        }
    }
    // It keeps retrying, and nothing it has not stored was confirmed.
    let deadline = Instant::now() + WAIT;
    while refusals().await < refused_before + 3.0 {
        assert!(Instant::now() < deadline, "the poller stopped retrying");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let offsets = telegram.poll_offsets(BOT);
    let accepted = unfinished().await;
    assert!(accepted < written.len(), "every message was stored on a full disk");
    let first_not_stored = updates[accepted];
    assert!(
        offsets.iter().all(|o| *o <= first_not_stored),
        "update {first_not_stored} was confirmed to Telegram while it could not be stored: {offsets:?}"
    );

    // A webhook delivery: refused with 503 and Retry-After, so Meta retries.
    let raw =
        raw_signed_post(&gw.addr, "/channels/whatsapp/biz/", &notification("wamid.DISK-raw", "raw while full")).await;
    let head = raw.split("\r\n\r\n").next().unwrap_or_default().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 503"), "a webhook the gateway could not store was acknowledged: {raw}");
    assert!(head.contains("\r\nretry-after: "), "a refusal says when to retry: {raw}");
    let (_, status) = whatsapp.user_message(NUMBER, ("15550001111", "Ana"), "while full (whatsapp)", None, None).await;
    assert_eq!(status, Some(503), "a webhook the gateway could not store was acknowledged");
    let (_, status) = whatsapp.user_message(NUMBER, ("15550001111", "Ana"), "again while full", None, None).await;
    assert_eq!(status, Some(503));
    assert_eq!(whatsapp.sent(NUMBER).len(), 1, "nothing was answered while full");
    assert_eq!(telegram.sent(BOT).len(), 1, "nothing was answered while full");

    // Space again: the waiting turns run, the poller's retry gets through,
    // Meta's retries are accepted; every message answered once, in order.
    std::fs::remove_file(&filler).expect("free the disk");
    let sent = telegram.wait_sent(BOT, 1 + written.len(), WAIT).await;
    let answered: Vec<i64> = sent[1..].iter().filter_map(|s| s["reply_parameters"]["message_id"].as_i64()).collect();
    assert_eq!(answered, written, "each message answered once, in the order written");
    let retried = whatsapp.retry_undelivered().await;
    // (Status notifications for the earlier reply were refused too.)
    assert!(retried.len() >= 2 && retried.iter().all(|s| *s == Some(200)), "Meta's retries accepted: {retried:?}");
    whatsapp.wait_sent(NUMBER, 3, WAIT).await;

    // Exactly once: a later message in each chat is answered after them, and
    // nothing else was sent for the ones refused before.
    let m = telegram.user_message(BOT, None, (4242, "Ana"), "after", json!({}));
    let sent = telegram.wait_sent(BOT, 2 + written.len(), WAIT).await;
    assert_eq!(sent.last().unwrap()["reply_parameters"]["message_id"], m["message"]["message_id"], "{sent:?}");
    assert_eq!(sent.len(), 2 + written.len(), "one reply per message: {sent:?}");
    let (_, status) = whatsapp.user_message(NUMBER, ("15550001111", "Ana"), "after", None, None).await;
    assert_eq!(status, Some(200));
    let sent = whatsapp.wait_sent(NUMBER, 4, WAIT).await;
    assert_eq!(sent.len(), 4, "one reply per message: {sent:?}");
}
