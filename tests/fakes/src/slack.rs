//! A Slack fake (reference channels §2.7). Web API at `/api/<method>`
//! (JSON or urlencoded bodies, Bearer auth, `{"ok": false, "error"}`
//! answers): `auth.test`, `apps.connections.open` (app-level `xapp-` token in
//! the header only), `chat.postMessage` (membership, `thread_ts`, length,
//! one message a second per channel with a small burst, scripted 429 with
//! `Retry-After`), `conversations.open`. Socket Mode: a WebSocket at the URL
//! `apps.connections.open` returns (one-time ticket), `hello`, `events_api`
//! envelopes that must be acknowledged with `{"envelope_id"}` within the
//! deadline or are redelivered with `retry_attempt`/`retry_reason`,
//! `disconnect` on demand. Events API: the signed `url_verification`
//! handshake and signed event deliveries (`X-Slack-Signature`,
//! `X-Slack-Request-Timestamp`), redeliveries with `X-Slack-Retry-Num`. A
//! message that mentions a bot is also sent as an `app_mention` event, as
//! Slack does for apps subscribed to both. Files: a user's message may
//! share a file (`file_share`, `files[]` with `url_private_download`,
//! served only with the bot token); `reactions.add` (a known emoji name),
//! `chat.update` (the bot's own messages), and the upload flow
//! `files.getUploadURLExternal` (form-encoded) → POST to `upload_url` →
//! `files.completeUploadExternal` are checked and recorded;
//! `chat.postMessage` takes `username`/`icon_emoji` (`chat:write.customize`).
//!
//! Must not: accept what Slack refuses, or know chela's internals.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Request;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::wire::{self, json_reply, lock, Reply};

/// One installed app (an account, from chela's side).
pub struct AppSpec<'a> {
    pub app_id: &'a str,
    pub team_id: &'a str,
    pub bot_token: &'a str,
    pub app_token: &'a str,
    pub signing_secret: &'a str,
    pub bot_user_id: &'a str,
}

struct Envelope {
    id: String,
    payload: Value,
    attempts: u32,
    last_sent: Option<Instant>,
}

struct App {
    team_id: String,
    bot_token: String,
    app_token: String,
    signing_secret: String,
    bot_user_id: String,
    bot_id: String,
    request_url: Option<String>,
    sent: Vec<Value>,
    faults: VecDeque<u64>,
    sockets: Vec<(u64, mpsc::UnboundedSender<Frame>)>,
    /// Socket Mode envelopes not acknowledged yet.
    pending: VecDeque<Envelope>,
    /// Every event envelope made for this app (HTTP redelivery picks from here).
    events: Vec<Value>,
    redeliveries: u32,
    connections: u32,
    /// `reactions.add` and `chat.update` requests: (method, params).
    actions: Vec<(String, Value)>,
    uploads: Vec<Upload>,
}

/// An upload `files.getUploadURLExternal` started: for which app, the
/// file's name and announced length, and the bytes once they came.
struct PendingUpload {
    app: String,
    name: String,
    length: usize,
    data: Option<Vec<u8>>,
}

/// A file the bot shared: where, under which title, and its bytes.
#[derive(Debug, Clone)]
pub struct Upload {
    pub channel_id: String,
    pub thread_ts: Option<String>,
    pub title: String,
    pub file_name: String,
    pub bytes: Vec<u8>,
}

/// Emoji names `reactions.add` knows (a few of Slack's).
const EMOJI_NAMES: &[&str] = &[
    "eyes",
    "+1",
    "white_check_mark",
    "fire",
    "heart",
    "tada",
    "crab",
    "thinking_face",
    "ok_hand",
    "pray",
    "rocket",
    "100",
    "zap",
    "wrench",
    "robot_face",
];

struct Conversation {
    team_id: String,
    kind: &'static str,
    /// The user of a DM (`im`).
    user: Option<String>,
    messages: HashSet<String>,
    /// Send budget (one a second, bursts of a few).
    tokens: f64,
    refilled: Instant,
}

struct State {
    apps: HashMap<String, App>,
    conversations: HashMap<String, Conversation>,
    tickets: HashMap<String, String>,
    next: u64,
    ack_deadline: Duration,
    addr: Option<std::net::SocketAddr>,
    /// Files users shared (by URL path), and the bot's uploads in progress (file id → (app, name, length, bytes)).
    files: HashMap<String, Vec<u8>>,
    pending_uploads: HashMap<String, PendingUpload>,
    /// The bot's own message timestamps (edits need them).
    bot_messages: HashSet<String>,
}

pub struct SlackFake {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for SlackFake {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

const BURST: f64 = 4.0;

fn ok(mut v: Value) -> Reply {
    v["ok"] = json!(true);
    json_reply(200, &v, &[])
}

fn fail(error: &str) -> Reply {
    json_reply(200, &json!({"ok": false, "error": error}), &[])
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `X-Slack-Signature` for a body sent at `timestamp`.
pub fn sign(signing_secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mut base = format!("v0:{timestamp}:").into_bytes();
    base.extend_from_slice(body);
    format!("v0={}", wire::hmac_sha256_hex(signing_secret.as_bytes(), &base))
}

/// POSTs `body` to `url` signed as Slack does, at `timestamp` (now if `None`).
pub async fn post_signed(
    url: &str,
    signing_secret: &str,
    timestamp: Option<u64>,
    body: &[u8],
    retry_num: Option<u32>,
) -> Option<wire::Answer> {
    let ts = timestamp.unwrap_or_else(now_s);
    let sig = sign(signing_secret, ts, body);
    let ts = ts.to_string();
    let retry = retry_num.map(|n| n.to_string());
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("X-Slack-Request-Timestamp", ts.as_str()),
        ("X-Slack-Signature", sig.as_str()),
    ];
    if let Some(r) = &retry {
        headers.push(("X-Slack-Retry-Num", r.as_str()));
        headers.push(("X-Slack-Retry-Reason", "http_timeout"));
    }
    wire::request("POST", url, &headers, body).await
}

fn form(s: &str) -> Value {
    let mut o = serde_json::Map::new();
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        o.insert(k.to_string(), Value::String(wire::percent_decode(&v.replace('+', " ")).unwrap_or_default()));
    }
    Value::Object(o)
}

impl SlackFake {
    pub async fn start() -> SlackFake {
        SlackFake::start_on(0).await.expect("bind the Slack fake")
    }

    /// The fake on `127.0.0.1:port` (0: any free port).
    pub async fn start_on(port: u16) -> std::io::Result<SlackFake> {
        let state = Arc::new(Mutex::new(State {
            apps: HashMap::new(),
            conversations: HashMap::new(),
            tickets: HashMap::new(),
            next: 1,
            ack_deadline: Duration::from_secs(3),
            addr: None,
            files: HashMap::new(),
            pending_uploads: HashMap::new(),
            bot_messages: HashSet::new(),
        }));
        let st = state.clone();
        let (addr, http) = wire::serve_on(port, move |req| handle(st.clone(), req)).await?;
        lock(&state).addr = Some(addr);
        let st = state.clone();
        let redeliver = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                pump(&st);
            }
        });
        Ok(SlackFake { addr, state, tasks: vec![http, redeliver] })
    }

    /// The Web API base to configure (`apiBase`).
    pub fn api_base(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    pub fn add_app(&self, spec: AppSpec<'_>) {
        let mut st = lock(&self.state);
        let bot_id = format!("B{}", &spec.bot_user_id[1..]);
        st.apps.insert(
            spec.app_id.into(),
            App {
                team_id: spec.team_id.into(),
                bot_token: spec.bot_token.into(),
                app_token: spec.app_token.into(),
                signing_secret: spec.signing_secret.into(),
                bot_user_id: spec.bot_user_id.into(),
                bot_id,
                request_url: None,
                sent: Vec::new(),
                faults: VecDeque::new(),
                sockets: Vec::new(),
                pending: VecDeque::new(),
                events: Vec::new(),
                redeliveries: 0,
                connections: 0,
                actions: Vec::new(),
                uploads: Vec::new(),
            },
        );
    }

    /// A conversation in `team_id`: `im` (with `user`), `mpim`, `channel` or `group` (private).
    pub fn add_conversation(&self, team_id: &str, id: &str, kind: &'static str, user: Option<&str>) {
        lock(&self.state).conversations.insert(
            id.into(),
            Conversation {
                team_id: team_id.into(),
                kind,
                user: user.map(str::to_string),
                messages: HashSet::new(),
                tokens: BURST,
                refilled: Instant::now(),
            },
        );
    }

    /// How long Socket Mode waits for an ack before redelivering.
    pub fn set_ack_deadline(&self, d: Duration) {
        lock(&self.state).ack_deadline = d;
    }

    /// Sets the app's Events API Request URL, as Slack does: a signed
    /// `url_verification` the endpoint must answer with the challenge.
    pub async fn set_request_url(&self, app_id: &str, url: &str) -> Result<(), String> {
        let secret = lock(&self.state).apps.get(app_id).ok_or("no such app")?.signing_secret.clone();
        let challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P";
        let body = json!({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": challenge, "type": "url_verification"});
        let a = post_signed(url, &secret, None, body.to_string().as_bytes(), None)
            .await
            .ok_or("the Request URL did not answer")?;
        let echoed = a.body == challenge
            || a.body.strip_prefix("challenge=") == Some(challenge)
            || serde_json::from_str::<Value>(&a.body).is_ok_and(|v| v["challenge"] == challenge);
        if a.status != 200 || !echoed {
            return Err(format!("URL verification failed: HTTP {} `{}`", a.status, a.body));
        }
        if let Some(app) = lock(&self.state).apps.get_mut(app_id) {
            app.request_url = Some(url.into());
        }
        Ok(())
    }

    /// `user` writes `text` in `channel` (in the thread `thread_ts` if
    /// given). The app gets a `message` event (plus `app_mention` when its bot
    /// is mentioned): POSTed to its Request URL if set (the statuses are
    /// returned), else queued for its Socket Mode connections. Returns the ts.
    pub async fn user_message(
        &self,
        app_id: &str,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> (String, Vec<Option<u16>>) {
        self.user_event(app_id, channel, user, text, thread_ts, json!({})).await
    }

    /// [`Self::user_message`] with `extra` merged into the event.
    async fn user_event(
        &self,
        app_id: &str,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
        extra: Value,
    ) -> (String, Vec<Option<u16>>) {
        let (ts, envelopes, http) = {
            let mut st = lock(&self.state);
            let n = st.next;
            st.next += 2;
            let ts = format!("{}.{:06}", 1_767_700_000 + n, n);
            let kind = st.conversations.get(channel).map(|c| c.kind).unwrap_or("channel");
            if let Some(c) = st.conversations.get_mut(channel) {
                c.messages.insert(ts.clone());
            }
            let Some(app) = st.apps.get(app_id) else { return (ts, vec![]) };
            let mut event = json!({"type": "message", "channel": channel, "user": user, "text": text, "ts": ts,
                                   "event_ts": ts, "channel_type": kind, "team": app.team_id,
                                   "client_msg_id": format!("c0ffee00-{n:04}")});
            if let Some(t) = thread_ts {
                event["thread_ts"] = json!(t);
            }
            if let (Some(e), Some(x)) = (event.as_object_mut(), extra.as_object()) {
                e.extend(x.clone());
            }
            let mut events = vec![event.clone()];
            if text.contains(&format!("<@{}>", app.bot_user_id)) && kind != "im" {
                let mut mention = event;
                mention["type"] = json!("app_mention");
                mention.as_object_mut().map(|m| m.remove("channel_type"));
                events.push(mention);
            }
            let team = app.team_id.clone();
            let http = app.request_url.clone().map(|u| (u, app.signing_secret.clone()));
            let envelopes: Vec<Value> = events
                .into_iter()
                .enumerate()
                .map(|(i, e)| {
                    json!({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "team_id": team, "api_app_id": app_id,
                           "event": e, "type": "event_callback", "event_id": format!("Ev{:08}{i}", n),
                           "event_time": 1_767_700_000 + n,
                           "authorizations": [{"team_id": team, "user_id": user, "is_bot": false}]})
                })
                .collect();
            let app = st.apps.get_mut(app_id).expect("looked up above");
            app.events.extend(envelopes.iter().cloned());
            if http.is_none() {
                for e in &envelopes {
                    let id = format!("{:08x}-{:04x}-fake-envelope", n, app.events.len());
                    app.pending.push_back(Envelope { id, payload: e.clone(), attempts: 0, last_sent: None });
                }
            }
            (ts, envelopes, http)
        };
        let mut statuses = Vec::new();
        if let Some((url, secret)) = http {
            for e in envelopes {
                statuses.push(post_signed(&url, &secret, None, e.to_string().as_bytes(), None).await.map(|a| a.status));
            }
        } else {
            pump(&self.state);
        }
        (ts, statuses)
    }

    /// `user` shares a file in `channel` with `text` as its comment: a
    /// `message` event with subtype `file_share` and the file's private
    /// URL (served to the bot token only). Returns the ts.
    pub async fn user_file(
        &self,
        app_id: &str,
        channel: &str,
        user: &str,
        text: &str,
        file: (&str, &str, Vec<u8>),
    ) -> String {
        let (name, mime, bytes) = file;
        let extra = {
            let mut st = lock(&self.state);
            let id = format!("F{:09}", st.next);
            st.next += 1;
            let path = format!("/files-pri/T-{id}/download/{name}");
            let base = format!("http://{}", st.addr.map(|a| a.to_string()).unwrap_or_default());
            let size = bytes.len();
            st.files.insert(path.clone(), bytes);
            json!({"subtype": "file_share", "files": [{"id": id, "name": name, "title": name, "mimetype": mime,
                   "filetype": name.rsplit('.').next().unwrap_or("bin"), "size": size,
                   "url_private": format!("{base}{path}"), "url_private_download": format!("{base}{path}")}]})
        };
        self.user_event(app_id, channel, user, text, None, extra).await.0
    }

    pub fn actions(&self, app_id: &str) -> Vec<(String, Value)> {
        lock(&self.state).apps.get(app_id).map(|a| a.actions.clone()).unwrap_or_default()
    }

    pub fn uploads(&self, app_id: &str) -> Vec<Upload> {
        lock(&self.state).apps.get(app_id).map(|a| a.uploads.clone()).unwrap_or_default()
    }

    /// Every event envelope made for the app, in order.
    pub fn events(&self, app_id: &str) -> Vec<Value> {
        lock(&self.state).apps.get(app_id).map(|a| a.events.clone()).unwrap_or_default()
    }

    /// Events API: POSTs event `index` again, as Slack's retry `retry_num`
    /// (`X-Slack-Retry-Num`, reason `http_timeout`).
    pub async fn redeliver_http(&self, app_id: &str, index: usize, retry_num: u32) -> Option<u16> {
        let (url, secret, body) = {
            let st = lock(&self.state);
            let app = st.apps.get(app_id)?;
            (app.request_url.clone()?, app.signing_secret.clone(), app.events.get(index)?.to_string())
        };
        post_signed(&url, &secret, None, body.as_bytes(), Some(retry_num)).await.map(|a| a.status)
    }

    /// Socket Mode: envelopes not acknowledged yet, and redeliveries so far.
    pub fn socket_backlog(&self, app_id: &str) -> (usize, u32) {
        lock(&self.state).apps.get(app_id).map(|a| (a.pending.len(), a.redeliveries)).unwrap_or((0, 0))
    }

    /// Socket Mode connections the app has opened so far.
    pub fn connections(&self, app_id: &str) -> u32 {
        lock(&self.state).apps.get(app_id).map(|a| a.connections).unwrap_or(0)
    }

    /// Sends `{"type": "disconnect", "reason"}` on the app's open sockets and closes them.
    pub fn disconnect(&self, app_id: &str, reason: &str) {
        let frame = json!({"type": "disconnect", "reason": reason,
                           "debug_info": {"host": "applink-fake"}})
        .to_string();
        if let Some(app) = lock(&self.state).apps.get_mut(app_id) {
            for (_, tx) in app.sockets.drain(..) {
                let _ = tx.send(Frame::text(frame.clone()));
                let _ = tx.send(Frame::Close(None));
            }
        }
    }

    /// What the app posted with `chat.postMessage` (request bodies), in order.
    pub fn sent(&self, app_id: &str) -> Vec<Value> {
        lock(&self.state).apps.get(app_id).map(|a| a.sent.clone()).unwrap_or_default()
    }

    pub async fn wait_sent(&self, app_id: &str, n: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let sent = self.sent(app_id);
            if sent.len() >= n || tokio::time::Instant::now() >= deadline {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The app's next `chat.postMessage` answers 429 with `Retry-After: seconds`.
    pub fn rate_limit_next_send(&self, app_id: &str, seconds: u64) {
        if let Some(a) = lock(&self.state).apps.get_mut(app_id) {
            a.faults.push_back(seconds);
        }
    }
}

/// Sends envelopes that wait, and redelivers those not acknowledged in time.
fn pump(state: &Mutex<State>) {
    let mut st = lock(state);
    let deadline = st.ack_deadline;
    for app in st.apps.values_mut() {
        let Some((_, tx)) = app.sockets.first().cloned() else { continue };
        for env in app.pending.iter_mut() {
            let due = match env.last_sent {
                None => true,
                Some(t) => t.elapsed() >= deadline,
            };
            if !due {
                continue;
            }
            let mut frame = json!({"envelope_id": env.id, "payload": env.payload, "type": "events_api",
                                   "accepts_response_payload": false, "retry_attempt": env.attempts,
                                   "retry_reason": ""});
            if env.attempts > 0 {
                frame["retry_reason"] = json!("timeout");
                app.redeliveries += 1;
            }
            env.attempts += 1;
            env.last_sent = Some(Instant::now());
            let _ = tx.send(Frame::text(frame.to_string()));
        }
    }
}

/// One Socket Mode connection (the ticket was checked at the upgrade): hello, acks.
async fn socket(state: Arc<Mutex<State>>, ws: wire::WebSocket, app_id: String) {
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Frame>();
    let conn_id = {
        let mut s = lock(&state);
        let id = s.next;
        s.next += 1;
        if let Some(app) = s.apps.get_mut(&app_id) {
            app.sockets.push((id, tx.clone()));
        }
        id
    };
    let hello = json!({"type": "hello", "num_connections": 1,
                       "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
                       "connection_info": {"app_id": app_id}});
    let _ = tx.send(Frame::text(hello.to_string()));
    pump(&state);
    let writer = tokio::spawn(async move {
        while let Some(f) = rx.recv().await {
            let close = matches!(f, Frame::Close(_));
            if sink.send(f).await.is_err() || close {
                break;
            }
        }
    });
    while let Some(Ok(frame)) = source.next().await {
        let Frame::Text(t) = frame else { continue };
        let Ok(v) = serde_json::from_str::<Value>(&t) else { continue };
        if let Some(id) = v["envelope_id"].as_str() {
            if let Some(app) = lock(&state).apps.get_mut(&app_id) {
                app.pending.retain(|e| e.id != id);
            }
        }
    }
    writer.abort();
    if let Some(app) = lock(&state).apps.get_mut(&app_id) {
        app.sockets.retain(|(id, _)| *id != conn_id);
    }
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_string();
    if path.starts_with("/link") {
        let query = req.uri().query().unwrap_or_default().to_string();
        let ticket = query.split('&').find_map(|p| p.strip_prefix("ticket=")).unwrap_or_default();
        let Some(app_id) = lock(&state).tickets.remove(ticket) else {
            return json_reply(401, &json!({"error": "invalid or used ticket"}), &[]);
        };
        let st = state.clone();
        return wire::upgrade(req, move |ws| socket(st, ws, app_id))
            .unwrap_or_else(|| json_reply(400, &json!({"error": "expected a WebSocket handshake"}), &[]));
    }
    let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if path.starts_with("/files-pri/") {
        // A private file: only with a bot token of the workspace.
        let st = lock(&state);
        let token = auth.strip_prefix("Bearer ").unwrap_or_default();
        if !st.apps.values().any(|a| a.bot_token == token) {
            return json_reply(403, &json!({"error": "not_authed"}), &[]);
        }
        return match st.files.get(&path) {
            Some(b) => {
                let mut r = Reply::new(http_body_util::Full::new(bytes::Bytes::from(b.clone())));
                r.headers_mut()
                    .insert("content-type", hyper::header::HeaderValue::from_static("application/octet-stream"));
                r
            }
            None => json_reply(404, &json!({"error": "file_not_found"}), &[]),
        };
    }
    if let Some(file_id) = path.strip_prefix("/upload/") {
        // The upload URL: the raw bytes, exactly `length` of them.
        let mut st = lock(&state);
        return match st.pending_uploads.get_mut(file_id) {
            Some(PendingUpload { length, data, .. }) if *length == body.len() => {
                *data = Some(body.to_vec());
                let mut r = Reply::new(http_body_util::Full::new(bytes::Bytes::from(format!("OK - {}", body.len()))));
                r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("text/plain"));
                r
            }
            Some(_) => json_reply(400, &json!({"error": "invalid_length"}), &[]),
            None => json_reply(404, &json!({"error": "upload_not_found"}), &[]),
        };
    }
    let Some(method) = path.strip_prefix("/api/") else { return json_reply(404, &json!({}), &[]) };
    let params = if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => v,
            Err(_) => return fail("invalid_json"),
        }
    } else {
        form(&String::from_utf8_lossy(&body))
    };
    let header_token = auth.strip_prefix("Bearer ").map(str::to_string);
    let mut st = lock(&state);
    if method == "apps.connections.open" {
        // The app token must be in the header: as a parameter Slack refuses it.
        let Some(token) = header_token else { return fail("not_authed") };
        let Some(app_id) = st.apps.iter().find(|(_, a)| a.app_token == token).map(|(k, _)| k.clone()) else {
            return fail(if token.starts_with("xapp-") { "invalid_auth" } else { "not_allowed_token_type" });
        };
        let ticket = format!("fake-ticket-{}", st.next);
        st.next += 1;
        st.tickets.insert(ticket.clone(), app_id.clone());
        if let Some(a) = st.apps.get_mut(&app_id) {
            a.connections += 1;
        }
        let addr = st.addr.map(|a| a.to_string()).unwrap_or_default();
        let url = format!("ws://{addr}/link/?ticket={ticket}&app_id={app_id}");
        return ok(json!({ "url": url }));
    }
    let token = header_token.or_else(|| params["token"].as_str().map(str::to_string)).unwrap_or_default();
    let Some(app_id) = st.apps.iter().find(|(_, a)| a.bot_token == token).map(|(k, _)| k.clone()) else {
        return fail(if token.is_empty() { "not_authed" } else { "invalid_auth" });
    };
    match method {
        "auth.test" => {
            let a = &st.apps[&app_id];
            ok(json!({"url": "https://fake.slack.com/", "team": "Fake Team", "user": "chela",
                      "team_id": a.team_id, "user_id": a.bot_user_id, "bot_id": a.bot_id, "is_enterprise_install": false}))
        }
        "conversations.open" => {
            let user = params["users"].as_str().unwrap_or_default().to_string();
            if user.is_empty() || user.contains(',') {
                return fail("users_list_not_supplied");
            }
            let team = st.apps[&app_id].team_id.clone();
            let existing = st
                .conversations
                .iter()
                .find(|(_, c)| c.kind == "im" && c.user.as_deref() == Some(user.as_str()) && c.team_id == team)
                .map(|(k, _)| k.clone());
            let id = existing.unwrap_or_else(|| {
                let id = format!("D{:09}", st.next);
                st.next += 1;
                st.conversations.insert(
                    id.clone(),
                    Conversation {
                        team_id: team,
                        kind: "im",
                        user: Some(user),
                        messages: HashSet::new(),
                        tokens: BURST,
                        refilled: Instant::now(),
                    },
                );
                id
            });
            ok(json!({"channel": {"id": id}}))
        }
        "chat.postMessage" => post_message(&mut st, &app_id, &params),
        "reactions.add" => {
            let channel = params["channel"].as_str().unwrap_or_default();
            let ts = params["timestamp"].as_str().unwrap_or_default();
            if !st.conversations.get(channel).is_some_and(|c| c.messages.contains(ts)) {
                return fail("message_not_found");
            }
            if !EMOJI_NAMES.contains(&params["name"].as_str().unwrap_or_default()) {
                return fail("invalid_name");
            }
            st.apps.get_mut(&app_id).expect("found").actions.push((method.to_string(), params.clone()));
            ok(json!({}))
        }
        "chat.update" => {
            let ts = params["ts"].as_str().unwrap_or_default().to_string();
            if !st.bot_messages.contains(&ts) {
                return fail(if st.conversations.values().any(|c| c.messages.contains(&ts)) {
                    "cant_update_message"
                } else {
                    "message_not_found"
                });
            }
            if params["text"].as_str().unwrap_or_default().trim().is_empty() {
                return fail("no_text");
            }
            st.apps.get_mut(&app_id).expect("found").actions.push((method.to_string(), params.clone()));
            ok(json!({"channel": params["channel"], "ts": ts, "text": params["text"]}))
        }
        "files.getUploadURLExternal" => {
            // Form arguments only, as Slack takes them for this method.
            if content_type.starts_with("application/json") {
                return fail("invalid_arguments");
            }
            let name = params["filename"].as_str().unwrap_or_default().to_string();
            let length = params["length"].as_u64().or_else(|| params["length"].as_str()?.parse().ok());
            let Some(length) = length.filter(|l| *l > 0) else { return fail("invalid_arguments") };
            if name.is_empty() {
                return fail("invalid_arguments");
            }
            let id = format!("F{:09}", st.next);
            st.next += 1;
            let pending = PendingUpload { app: app_id.clone(), name, length: length as usize, data: None };
            st.pending_uploads.insert(id.clone(), pending);
            let addr = st.addr.map(|a| a.to_string()).unwrap_or_default();
            ok(json!({"upload_url": format!("http://{addr}/upload/{id}"), "file_id": id}))
        }
        "files.completeUploadExternal" => {
            let channel = params["channel_id"].as_str().unwrap_or_default().to_string();
            let team = st.apps[&app_id].team_id.clone();
            if st.conversations.get(&channel).is_none_or(|c| c.team_id != team) {
                return fail("channel_not_found");
            }
            let files = params["files"].as_array().cloned().unwrap_or_default();
            if files.is_empty() {
                return fail("invalid_arguments");
            }
            let mut done = Vec::new();
            for f in files {
                let id = f["id"].as_str().unwrap_or_default().to_string();
                let Some(PendingUpload { app: owner, name, data: Some(bytes), .. }) = st.pending_uploads.remove(&id)
                else {
                    return fail("file_not_found");
                };
                if owner != app_id {
                    return fail("file_not_found");
                }
                let title = f["title"].as_str().unwrap_or(&name).to_string();
                let thread_ts = params["thread_ts"].as_str().map(str::to_string);
                done.push(json!({"id": id, "title": title}));
                st.apps.get_mut(&app_id).expect("found").uploads.push(Upload {
                    channel_id: channel.clone(),
                    thread_ts,
                    title,
                    file_name: name,
                    bytes,
                });
            }
            ok(json!({"files": done}))
        }
        _ => fail("unknown_method"),
    }
}

fn post_message(st: &mut State, app_id: &str, p: &Value) -> Reply {
    let channel = p["channel"].as_str().unwrap_or_default().to_string();
    let team = st.apps[app_id].team_id.clone();
    let Some(conv) = st.conversations.get_mut(&channel).filter(|c| c.team_id == team) else {
        return fail("channel_not_found");
    };
    let text = p["text"].as_str().unwrap_or_default();
    if text.trim().is_empty() {
        return fail("no_text");
    }
    if text.chars().count() > 40_000 {
        return fail("msg_too_long");
    }
    if let Some(t) = p["thread_ts"].as_str() {
        if !conv.messages.contains(t) {
            return fail("thread_not_found");
        }
    }
    // One message a second per channel, small bursts tolerated.
    let refill = conv.refilled.elapsed().as_secs_f64();
    conv.tokens = (conv.tokens + refill).min(BURST);
    conv.refilled = Instant::now();
    let app = st.apps.get_mut(app_id).expect("checked by the caller");
    let scripted = app.faults.pop_front();
    if scripted.is_some() || conv.tokens < 1.0 {
        let wait = scripted.unwrap_or(1);
        return json_reply(429, &json!({"ok": false, "error": "ratelimited"}), &[("Retry-After", wait.to_string())]);
    }
    conv.tokens -= 1.0;
    let kind = conv.kind;
    app.sent.push(p.clone());
    let (bot_id, bot_user, team) = (app.bot_id.clone(), app.bot_user_id.clone(), app.team_id.clone());
    let n = st.next;
    st.next += 1;
    let ts = format!("{}.{:06}", 1_767_800_000 + n, n);
    if let Some(c) = st.conversations.get_mut(&channel) {
        c.messages.insert(ts.clone());
    }
    st.bot_messages.insert(ts.clone());
    // Slack echoes the bot's own post as a `message` event (with `bot_id`) to the app.
    let mut event = json!({"type": "message", "channel": channel, "user": bot_user, "bot_id": bot_id, "text": text,
                           "ts": ts, "event_ts": ts, "channel_type": kind, "team": team});
    if let Some(t) = p["thread_ts"].as_str() {
        event["thread_ts"] = json!(t);
    }
    let envelope = json!({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "team_id": team, "api_app_id": app_id, "event": event,
                          "type": "event_callback", "event_id": format!("Ev{n:08}b"), "event_time": 1_767_800_000 + n});
    let app = st.apps.get_mut(app_id).expect("checked by the caller");
    app.events.push(envelope.clone());
    match app.request_url.clone() {
        Some(url) => {
            let secret = app.signing_secret.clone();
            tokio::spawn(async move { post_signed(&url, &secret, None, envelope.to_string().as_bytes(), None).await });
        }
        None => {
            let id = format!("{n:08x}-echo-fake-envelope");
            app.pending.push_back(Envelope { id, payload: envelope, attempts: 0, last_sent: None });
        }
    }
    ok(json!({"channel": channel, "ts": ts, "message": {"type": "message", "text": text, "bot_id": bot_id, "ts": ts}}))
}
