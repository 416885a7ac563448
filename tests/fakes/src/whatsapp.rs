//! A WhatsApp Cloud API fake (reference channels §4.7). Graph side: `POST
//! /v<N>/<phone-number-id>/messages` and `GET /v<N>/<phone-number-id>` (the
//! number's record) with Bearer auth per number (a wrong
//! token → code 190), body validation (`messaging_product`, `type: text`,
//! `text.body` ≤ 4096 characters, `recipient_type`, `context.message_id`
//! must name a known message), the 24-hour window (131047: the recipient
//! must have written to that number), minted `wamid.` ids, scripted
//! throttling (130429 / 80007 / 131056) and `statuses` notifications for
//! every send. Webhook side: the GET verification handshake, then POSTs of
//! ASCII-only JSON (non-ASCII as `\uXXXX`, as Meta sends it) signed with
//! `X-Hub-Signature-256` over exactly those bytes; undelivered
//! notifications are kept for a retry, and any can be redelivered. Media:
//! users send images, voice notes, audio, video and documents by media id
//! (webhooks carry no size); `GET /v<N>/<media-id>` answers the download URL
//! (with `file_size`), served only with a number's token; `POST
//! /v<N>/<number>/media` (multipart) uploads, and `image`/`audio`/`video`/
//! `document` messages send an uploaded id; `reaction` messages and the
//! `status: read` + `typing_indicator` call are checked and recorded.
//!
//! Must not: accept what Meta refuses, or know chela's internals.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Request;
use serde_json::{json, Value};

use crate::wire::{self, json_reply, lock, Reply};

/// An error the next send from a number answers with (Graph error codes).
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// `130429` Cloud API throughput, as HTTP 429.
    Throughput,
    /// `80007` WABA rate limit, as HTTP 400 (copies of Meta's table disagree on the status).
    WabaRateLimit,
    /// `190` the access token expired.
    TokenExpired,
}

struct Number {
    display: String,
    token: String,
    /// Request bodies of successful sends, in order.
    sent: Vec<Value>,
    faults: VecDeque<Fault>,
    /// Users who wrote to this number (the 24-hour window is open for them).
    contacts: HashSet<String>,
    /// Reactions, typing indicators and media messages sent, in order.
    actions: Vec<Value>,
    /// Files uploaded to `/media`: id → (MIME type, bytes).
    uploaded: HashMap<String, (String, Vec<u8>)>,
}

#[derive(Default)]
struct State {
    app_secret: String,
    numbers: HashMap<String, Number>,
    /// Message ids (inbound and sent) per phone number id.
    messages: HashSet<String>,
    webhook: Option<String>,
    /// Notifications not yet answered with 2xx, oldest first.
    undelivered: VecDeque<Vec<u8>>,
    /// Every notification body ever delivered (for redelivery).
    delivered: Vec<Vec<u8>>,
    next_id: u64,
    /// Every successful send, as it happens: (phone number id, request body).
    sends: Option<tokio::sync::broadcast::Sender<(String, Value)>>,
    /// Media users sent: media id → (MIME type, bytes).
    media: HashMap<String, (String, Vec<u8>)>,
    addr: Option<std::net::SocketAddr>,
}

pub struct WhatsAppFake {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for WhatsAppFake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn graph_error(status: u16, code: i64, message: &str, details: &str) -> Reply {
    json_reply(
        status,
        &json!({"error": {"message": message, "type": "OAuthException", "code": code,
                          "error_data": {"messaging_product": "whatsapp", "details": details},
                          "fbtrace_id": "AfakeTraceId0123"}}),
        &[],
    )
}

/// Meta's webhook JSON: ASCII only, everything else as `\uXXXX` (lowercase hex).
struct AsciiFormatter;

impl serde_json::ser::Formatter for AsciiFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        for c in fragment.chars() {
            if c.is_ascii() {
                w.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    write!(w, "\\u{u:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// `value` as Meta serialises webhook bodies.
pub fn ascii_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, AsciiFormatter);
    serde::Serialize::serialize(value, &mut ser).expect("JSON values serialise");
    out
}

impl WhatsAppFake {
    /// A fake Meta app whose webhooks are signed with `app_secret`.
    pub async fn start(app_secret: &str) -> WhatsAppFake {
        WhatsAppFake::start_on(app_secret, 0).await.expect("bind the WhatsApp fake")
    }

    /// The fake on `127.0.0.1:port` (0: any free port).
    pub async fn start_on(app_secret: &str, port: u16) -> std::io::Result<WhatsAppFake> {
        let (sends, _) = tokio::sync::broadcast::channel(1 << 16);
        let state = Arc::new(Mutex::new(State {
            app_secret: app_secret.into(),
            next_id: 1,
            sends: Some(sends),
            ..State::default()
        }));
        let st = state.clone();
        let (addr, server) = wire::serve_on(port, move |req| handle(st.clone(), req)).await?;
        lock(&state).addr = Some(addr);
        Ok(WhatsAppFake { addr, state, server })
    }

    /// The `graphApiBase` to configure (the version is part of each path).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A business phone number of this app, reachable with `token`.
    pub fn add_number(&self, phone_number_id: &str, display: &str, token: &str) {
        lock(&self.state).numbers.insert(
            phone_number_id.into(),
            Number {
                display: display.into(),
                token: token.into(),
                sent: Vec::new(),
                faults: VecDeque::new(),
                contacts: HashSet::new(),
                actions: Vec::new(),
                uploaded: HashMap::new(),
            },
        );
    }

    /// Meta's subscription handshake against `callback`: a GET with
    /// `hub.challenge`; subscribed only when the answer is 200 and echoes it.
    pub async fn subscribe(&self, callback: &str, verify_token: &str) -> Result<(), String> {
        let challenge = format!("{}", 1_158_201_444 + lock(&self.state).next_id);
        let sep = if callback.contains('?') { '&' } else { '?' };
        let url = format!(
            "{callback}{sep}hub.mode=subscribe&hub.verify_token={}&hub.challenge={challenge}",
            verify_token.replace('%', "%25").replace(' ', "%20").replace('&', "%26")
        );
        let answer = wire::request("GET", &url, &[], b"").await.ok_or("the callback URL did not answer")?;
        if answer.status != 200 || answer.body != challenge {
            return Err(format!("verification failed: HTTP {} `{}`", answer.status, answer.body));
        }
        lock(&self.state).webhook = Some(callback.to_string());
        Ok(())
    }

    /// A user (`from`, an E.164 number without `+`) writes to the number
    /// `phone_number_id`, in a DM or a group (`group_id`), optionally quoting
    /// a message (`context_id`). Delivered to the webhook at once; returns
    /// the message id and the webhook's HTTP status (`None`: unreachable).
    pub async fn user_message(
        &self,
        phone_number_id: &str,
        from: (&str, &str),
        text: &str,
        group_id: Option<&str>,
        context_id: Option<&str>,
    ) -> (String, Option<u16>) {
        let (id, body) = {
            let mut st = lock(&self.state);
            let id = format!("wamid.HBgL{:012}FAKE", st.next_id);
            st.next_id += 1;
            st.messages.insert(id.clone());
            let display = st.numbers.get(phone_number_id).map(|n| n.display.clone()).unwrap_or_default();
            if let Some(n) = st.numbers.get_mut(phone_number_id) {
                n.contacts.insert(group_id.unwrap_or(from.0).to_string());
            }
            let mut msg = json!({"from": from.0, "id": id, "timestamp": "1767700000", "type": "text",
                                 "text": {"body": text}});
            if let Some(g) = group_id {
                msg["group_id"] = json!(g);
            }
            if let Some(c) = context_id {
                msg["context"] = json!({"from": display, "id": c});
            }
            let value = json!({"messaging_product": "whatsapp",
                "metadata": {"display_phone_number": display, "phone_number_id": phone_number_id},
                "contacts": [{"profile": {"name": from.1}, "wa_id": from.0}],
                "messages": [msg]});
            (id, notification(value))
        };
        let status = self.deliver(body).await;
        (id, status)
    }

    /// A user sends a file: `kind` is the message type (`image`, `audio`,
    /// `video`, `document`, `sticker`), `meta` its extra fields (`caption`,
    /// `filename`, `voice: true`). Returns the message id and the webhook's status.
    pub async fn user_media(
        &self,
        phone_number_id: &str,
        from: (&str, &str),
        kind: &str,
        mime: &str,
        bytes: Vec<u8>,
        meta: Value,
    ) -> (String, Option<u16>) {
        let (id, body) = {
            let mut st = lock(&self.state);
            let id = format!("wamid.HBgL{:012}FAKE", st.next_id);
            let media_id = format!("{}", 1_000_000_000_000 + st.next_id);
            st.next_id += 1;
            st.messages.insert(id.clone());
            st.media.insert(media_id.clone(), (mime.to_string(), bytes));
            let display = st.numbers.get(phone_number_id).map(|n| n.display.clone()).unwrap_or_default();
            if let Some(n) = st.numbers.get_mut(phone_number_id) {
                n.contacts.insert(from.0.to_string());
            }
            let mut media = json!({"id": media_id, "mime_type": mime, "sha256": "ZmFrZQ=="});
            if let (Some(m), Some(x)) = (media.as_object_mut(), meta.as_object()) {
                m.extend(x.clone());
            }
            let msg = json!({"from": from.0, "id": id, "timestamp": "1767700000", "type": kind, kind: media});
            let value = json!({"messaging_product": "whatsapp",
                "metadata": {"display_phone_number": display, "phone_number_id": phone_number_id},
                "contacts": [{"profile": {"name": from.1}, "wa_id": from.0}],
                "messages": [msg]});
            (id, notification(value))
        };
        let status = self.deliver(body).await;
        (id, status)
    }

    /// The number's reactions, typing indicators and media messages (request bodies).
    pub fn actions(&self, phone_number_id: &str) -> Vec<Value> {
        lock(&self.state).numbers.get(phone_number_id).map(|n| n.actions.clone()).unwrap_or_default()
    }

    /// What an uploaded media id holds.
    pub fn uploaded(&self, phone_number_id: &str, media_id: &str) -> Option<(String, Vec<u8>)> {
        lock(&self.state).numbers.get(phone_number_id)?.uploaded.get(media_id).cloned()
    }

    /// Signs and POSTs a notification body to the webhook; kept for a retry unless 2xx.
    async fn deliver(&self, body: Vec<u8>) -> Option<u16> {
        let (url, secret) = {
            let st = lock(&self.state);
            (st.webhook.clone()?, st.app_secret.clone())
        };
        let status = post_signed(&url, &secret, &body).await;
        let mut st = lock(&self.state);
        st.delivered.push(body.clone());
        if !status.is_some_and(|s| (200..300).contains(&s)) {
            st.undelivered.push_back(body);
        }
        status
    }

    /// Retries every notification not yet accepted; the statuses.
    pub async fn retry_undelivered(&self) -> Vec<Option<u16>> {
        let pending: Vec<Vec<u8>> = lock(&self.state).undelivered.drain(..).collect();
        let mut out = Vec::new();
        for body in pending {
            out.push(self.deliver(body).await);
        }
        out
    }

    /// Delivers the `n`-th notification ever delivered again (at-least-once delivery).
    pub async fn redeliver(&self, n: usize) -> Option<u16> {
        let body = lock(&self.state).delivered.get(n)?.clone();
        self.deliver(body).await
    }

    /// How many notifications were delivered so far (statuses included).
    pub fn delivered_count(&self) -> usize {
        lock(&self.state).delivered.len()
    }

    /// Successful sends from `phone_number_id` (request bodies), in order.
    pub fn sent(&self, phone_number_id: &str) -> Vec<Value> {
        lock(&self.state).numbers.get(phone_number_id).map(|n| n.sent.clone()).unwrap_or_default()
    }

    pub async fn wait_sent(&self, phone_number_id: &str, n: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let sent = self.sent(phone_number_id);
            if sent.len() >= n || tokio::time::Instant::now() >= deadline {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Successful sends from now on, as they happen: (phone number id, request body).
    pub fn watch_sends(&self) -> tokio::sync::broadcast::Receiver<(String, Value)> {
        match &lock(&self.state).sends {
            Some(tx) => tx.subscribe(),
            None => tokio::sync::broadcast::channel(1).1,
        }
    }

    pub fn fail_next_send(&self, phone_number_id: &str, fault: Fault) {
        if let Some(n) = lock(&self.state).numbers.get_mut(phone_number_id) {
            n.faults.push_back(fault);
        }
    }
}

/// The webhook envelope around one change value.
fn notification(value: Value) -> Vec<u8> {
    ascii_json(&json!({"object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]}))
}

/// POSTs `body` with Meta's signature header computed from `secret`.
pub async fn post_signed(url: &str, secret: &str, body: &[u8]) -> Option<u16> {
    let sig = format!("sha256={}", wire::hmac_sha256_hex(secret.as_bytes(), body));
    let headers = [("Content-Type", "application/json"), ("X-Hub-Signature-256", sig.as_str())];
    wire::request("POST", url, &headers, body).await.map(|a| a.status)
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_string();
    let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let method = req.method().clone();
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    // /v<N>/<phone-number-id>/messages
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let token_ok = |st: &State| st.numbers.values().any(|n| auth.strip_prefix("Bearer ") == Some(n.token.as_str()));
    // The media CDN: the bytes, to a number's token only.
    if let ["media-cdn", media_id] = parts[..] {
        let st = lock(&state);
        if !token_ok(&st) {
            return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token", "");
        }
        return match st.media.get(media_id) {
            Some((mime, bytes)) => {
                let mut r = Reply::new(http_body_util::Full::new(bytes::Bytes::from(bytes.clone())));
                if let Ok(v) = hyper::header::HeaderValue::from_str(mime) {
                    r.headers_mut().insert("content-type", v);
                }
                r
            }
            None => graph_error(404, 100, "media not found", ""),
        };
    }
    // GET /v<N>/<media-id>: where a user's media is.
    if let ([version, media_id], &hyper::Method::GET) = (&parts[..], &method) {
        let st = lock(&state);
        if version.starts_with('v') && st.media.contains_key(*media_id) {
            if !token_ok(&st) {
                return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token", "");
            }
            let (mime, bytes) = &st.media[*media_id];
            let addr = st.addr.map(|a| a.to_string()).unwrap_or_default();
            return json_reply(
                200,
                &json!({"messaging_product": "whatsapp", "url": format!("http://{addr}/media-cdn/{media_id}"),
                        "mime_type": mime, "sha256": "ZmFrZQ==", "file_size": bytes.len(), "id": media_id}),
                &[],
            );
        }
    }
    // POST /v<N>/<number>/media: an upload (multipart).
    if let ([version, number_id, "media"], &hyper::Method::POST) = (&parts[..], &method) {
        let form = wire::multipart(&content_type, body.clone()).await;
        let mut st = lock(&state);
        let Some(number) = st.numbers.get(*number_id).filter(|_| version.starts_with('v')) else {
            return graph_error(400, 100, "Unsupported post request", "");
        };
        if auth.strip_prefix("Bearer ") != Some(number.token.as_str()) {
            return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token", "");
        }
        let Ok((fields, Some((_, _, mime, bytes)))) = form else {
            return graph_error(400, 100, "(#100) The parameter file is required.", "");
        };
        if fields["messaging_product"] != "whatsapp" {
            return graph_error(400, 100, "(#100) Invalid parameter", "messaging_product must be whatsapp");
        }
        if bytes.len() > 100 * 1024 * 1024 {
            return graph_error(400, 131053, "(#131053) Media upload error", "file too large");
        }
        let id = format!("{}", 2_000_000_000_000 + st.next_id);
        st.next_id += 1;
        st.numbers.get_mut(*number_id).expect("looked up").uploaded.insert(id.clone(), (mime, bytes));
        return json_reply(200, &json!({"id": id}), &[]);
    }
    // GET /v<N>/<phone-number-id>: the number's record (what a credential check asks).
    if let ([version, number_id], &hyper::Method::GET) = (&parts[..], &method) {
        if version.starts_with('v') {
            let st = lock(&state);
            return match st.numbers.get(*number_id) {
                Some(n) if auth.strip_prefix("Bearer ") == Some(n.token.as_str()) => json_reply(
                    200,
                    &json!({"display_phone_number": n.display, "verified_name": "chela test", "id": number_id}),
                    &[],
                ),
                Some(_) => graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token", ""),
                None => graph_error(
                    400,
                    100,
                    &format!("Unsupported get request. Object with ID '{number_id}' does not exist"),
                    "",
                ),
            };
        }
    }
    let [version, number_id, "messages"] = parts[..] else {
        return graph_error(400, 100, "Unknown path components", &path);
    };
    if !version.starts_with('v') || method != hyper::Method::POST {
        return graph_error(400, 100, "Unsupported request", &format!("{method} {path}"));
    }
    let mut st = lock(&state);
    let Some(number) = st.numbers.get(number_id) else {
        return graph_error(
            400,
            100,
            &format!("Unsupported post request. Object with ID '{number_id}' does not exist"),
            "",
        );
    };
    if auth.strip_prefix("Bearer ") != Some(number.token.as_str()) {
        return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token", "");
    }
    let Ok(p) = serde_json::from_slice::<Value>(&body) else {
        return graph_error(400, 100, "(#100) Invalid parameter", "the body is not JSON");
    };
    if p["messaging_product"] != "whatsapp" {
        return graph_error(400, 100, "(#100) Invalid parameter", "messaging_product must be whatsapp");
    }
    // Read receipts with a typing indicator: no message is sent.
    if p["status"] == "read" {
        if !p["message_id"].as_str().is_some_and(|m| st.messages.contains(m)) {
            return graph_error(400, 100, "(#100) Invalid parameter", "message_id is unknown");
        }
        st.numbers.get_mut(number_id).expect("looked up above").actions.push(p.clone());
        return json_reply(200, &json!({"success": true}), &[]);
    }
    let recipient_type = p["recipient_type"].as_str().unwrap_or("individual");
    if !["individual", "group"].contains(&recipient_type) {
        return graph_error(400, 100, "(#100) Invalid parameter", "recipient_type must be individual or group");
    }
    let Some(to) = p["to"].as_str().filter(|t| !t.is_empty()) else {
        return graph_error(400, 100, "(#100) The parameter to is required.", "");
    };
    let kind = p["type"].as_str().unwrap_or_default().to_string();
    if kind != "text" {
        let ok = match kind.as_str() {
            "reaction" => p["reaction"]["message_id"].as_str().is_some_and(|m| st.messages.contains(m)),
            "image" | "audio" | "video" | "document" | "sticker" => {
                p[kind.as_str()]["id"].as_str().is_some_and(|m| number.uploaded.contains_key(m))
            }
            _ => return graph_error(400, 100, "(#100) Invalid parameter", "unsupported message type"),
        };
        if !ok {
            return graph_error(400, 131009, "(#131009) Parameter value is not valid", "unknown message or media id");
        }
        if !number.contacts.contains(to) {
            return graph_error(400, 131047, "(#131047) Re-engagement message", "More than 24 hours have passed.");
        }
        let id = format!("wamid.HBgL{:012}SENT", st.next_id);
        st.next_id += 1;
        st.messages.insert(id.clone());
        st.numbers.get_mut(number_id).expect("looked up above").actions.push(p.clone());
        return json_reply(200, &json!({"messaging_product": "whatsapp", "messages": [{"id": id}]}), &[]);
    }
    let text = p["text"]["body"].as_str().unwrap_or_default();
    if text.is_empty() {
        return graph_error(400, 100, "(#100) The parameter text['body'] is required.", "");
    }
    if text.chars().count() > 4096 {
        return graph_error(400, 100, "(#100) Param text['body'] must be at most 4096 characters long.", "");
    }
    if let Some(c) = p.get("context") {
        if !c["message_id"].as_str().is_some_and(|m| st.messages.contains(m)) {
            return graph_error(400, 131009, "(#131009) Parameter value is not valid", "context.message_id is unknown");
        }
    }
    let number = st.numbers.get_mut(number_id).expect("looked up above");
    if !number.contacts.contains(to) {
        return graph_error(
            400,
            131047,
            "(#131047) Re-engagement message",
            "More than 24 hours have passed since the recipient last replied to the sender number.",
        );
    }
    if let Some(f) = number.faults.pop_front() {
        return match f {
            Fault::Throughput => {
                graph_error(429, 130429, "(#130429) Rate limit hit", "Cloud API message throughput has been reached.")
            }
            Fault::WabaRateLimit => {
                graph_error(400, 80007, "(#80007) Rate limit issues", "WhatsApp Business Account rate limit hit.")
            }
            Fault::TokenExpired => graph_error(401, 190, "Error validating access token: Session has expired", ""),
        };
    }
    number.sent.push(p.clone());
    let display = number.display.clone();
    if let Some(tx) = &st.sends {
        let _ = tx.send((number_id.to_string(), p.clone()));
    }
    let id = format!("wamid.HBgL{:012}SENT", st.next_id);
    st.next_id += 1;
    st.messages.insert(id.clone());
    // Meta reports the send's progress on the same webhook.
    let status = json!({"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": display, "phone_number_id": number_id},
        "statuses": [{"id": id, "status": "sent", "timestamp": "1767700001", "recipient_id": to}]});
    st.undelivered.push_back(notification(status));
    json_reply(
        200,
        &json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": id}]}),
        &[],
    )
}
