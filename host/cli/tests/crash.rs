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

fn config() -> String {
    r#"{ channels: { webhook: { dmPolicy: "open", allowFrom: ["*"],
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_on_a_webhook_channel_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut gw = Gateway::start_with(root, &config(), &["channel_webhook_js"]).await;
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
    let deadline = Instant::now() + Duration::from_secs(60);
    while accepted.lock().unwrap().len() < 40 {
        assert!(Instant::now() < deadline, "the gateway accepted too little under load");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gw.child.start_kill().expect("SIGKILL");
    let _ = gw.child.wait().await;
    stop.store(true, Ordering::SeqCst);
    for s in senders {
        s.await.unwrap();
    }
    let accepted: BTreeSet<String> = accepted.lock().unwrap().clone();

    let gw = Gateway::start_with(root, &config(), &["channel_webhook_js"]).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let replies = loop {
        let replies = replies_per_message(&gw).await;
        if accepted.iter().all(|id| replies.contains_key(id)) {
            break replies;
        }
        if Instant::now() > deadline {
            break replies;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let texts = transcript_texts(root);
    let lost: Vec<&String> = accepted.iter().filter(|id| !texts.contains(&format!("message {id}"))).collect();
    let unanswered: Vec<&String> = accepted.iter().filter(|id| !replies.contains_key(*id)).collect();
    let duplicated: Vec<(&String, &usize)> = replies.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "accepted {} before the kill; lost {}, unanswered {}, duplicated {}",
        accepted.len(),
        lost.len(),
        unanswered.len(),
        duplicated.len()
    );
    assert!(lost.is_empty(), "accepted but in no transcript: {lost:?}");
    assert!(unanswered.is_empty(), "accepted but never answered: {unanswered:?}");
    assert!(duplicated.is_empty(), "answered more than once: {duplicated:?}");
}
