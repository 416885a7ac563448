//! A Telegram Bot API fake (reference channels §1.8): `POST|GET
//! /bot<token>/<method>` (method names case-insensitive; JSON, urlencoded or
//! query parameters), `getMe`, `getUpdates` (long polling, offset
//! confirmation, 409 with a webhook set, and for a request a newer one terminated), `sendMessage`
//! (1–4096 UTF-16 units, reply and thread checks), `setWebhook` /
//! `deleteWebhook` / `getWebhookInfo` with pushes carrying
//! `X-Telegram-Bot-Api-Secret-Token`; scripted 429 / 403 / migrate faults.
//! Files: users send photos, voice notes and documents (`user_file`);
//! `getFile` answers with a `file_path` (400 "file is too big" over 20 MB)
//! served at `GET /file/bot<token>/<file_path>`. `sendChatAction`,
//! `setMessageReaction` (Telegram's emoji set only) and `editMessageText`
//! (only the bot's own messages; 400 "message is not modified") are
//! checked and recorded. Uploads: `sendPhoto` (10 MB), `sendDocument`,
//! `sendVoice`, `sendAudio`, `sendVideo` (50 MB) as `multipart/form-data`,
//! recorded with their bytes (`uploads`).
//!
//! Must not: accept what Telegram refuses, or know chela's internals.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::wire;

/// A fault the next `sendMessage` of a bot answers with.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 429 with `parameters.retry_after`.
    TooManyRequests(u64),
    /// 403: the user blocked the bot.
    Blocked,
    /// 400 with `parameters.migrate_to_chat_id`.
    Migrated(i64),
}

#[derive(Default)]
struct Chat {
    kind: String,
    title: Option<String>,
    is_forum: bool,
    topics: HashSet<i64>,
    messages: HashSet<i64>,
}

struct Bot {
    id: i64,
    username: String,
    updates: VecDeque<Value>,
    webhook: Option<(String, String)>,
    /// Bumped by each `getUpdates`: a request whose number is no longer the
    /// latest was terminated by a newer one (409), as Telegram does.
    poll_generation: u64,
    /// `getUpdates` requests ended by a newer one (409: two pollers of one bot).
    conflicts: usize,
    sent: Vec<Value>,
    faults: VecDeque<Fault>,
    offsets: Vec<i64>,
    /// `getUpdates` is accepted and left unanswered (a platform gone silent).
    silent: bool,
    /// `sendChatAction`, `setMessageReaction` and `editMessageText` requests, in order.
    actions: Vec<(String, Value)>,
    uploads: Vec<Upload>,
}

/// A file a bot uploaded: the method, its text fields, and the file part.
#[derive(Debug, Clone)]
pub struct Upload {
    pub method: String,
    pub fields: Value,
    pub file_name: String,
    pub mime_type: String,
    pub bytes: Vec<u8>,
}

/// A file a user sent: where `getFile` says it is, and its bytes.
struct StoredFile {
    path: String,
    bytes: Vec<u8>,
}

/// What bots may download with `getFile` (20 MB).
pub const DOWNLOAD_LIMIT: usize = 20 * 1024 * 1024;

/// The emoji `setMessageReaction` takes (part of Telegram's fixed set).
const REACTIONS: &[&str] = &[
    "👍", "👎", "❤", "🔥", "🥰", "👏", "😁", "🤔", "🤯", "😱", "🎉", "🤩", "🙏", "👌", "👀", "🤝", "✍", "💯", "⚡",
    "🏆",
];

#[derive(Default)]
struct State {
    bots: HashMap<String, Bot>,
    /// Chats whose `sendMessage` requests are held open until released.
    held: HashSet<i64>,
    chats: HashMap<i64, Chat>,
    files: HashMap<String, StoredFile>,
    /// The text of each message a bot sent, by (chat, message id).
    bot_texts: HashMap<(i64, i64), String>,
    next_update: i64,
    next_message: i64,
}

pub struct TelegramFake {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TelegramFake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(s: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

fn reply(status: u16, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    r
}

fn error(code: u16, description: &str, parameters: Option<Value>) -> Response<Full<Bytes>> {
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if let Some(p) = parameters {
        body["parameters"] = p;
    }
    reply(code, body)
}

fn ok(result: Value) -> Response<Full<Bytes>> {
    reply(200, json!({"ok": true, "result": result}))
}

/// `a=1&b=x` → a JSON object (numbers stay strings; Telegram accepts both).
fn form(s: &str) -> Value {
    let mut o = serde_json::Map::new();
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = v.replace('+', " ");
        let parsed = serde_json::from_str::<Value>(&v).unwrap_or(Value::String(v));
        o.insert(k.to_string(), parsed);
    }
    Value::Object(o)
}

fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

impl TelegramFake {
    pub async fn start() -> TelegramFake {
        TelegramFake::start_on(0).await.expect("bind the Telegram fake")
    }

    /// The fake on `127.0.0.1:port` (0: any free port).
    pub async fn start_on(port: u16) -> std::io::Result<TelegramFake> {
        let state = Arc::new(Mutex::new(State { next_update: 900_000_001, next_message: 1, ..State::default() }));
        let changed = Arc::new(Notify::new());
        let (st, ch) = (state.clone(), changed.clone());
        let (addr, server) = wire::serve_on(port, move |req| handle(st.clone(), ch.clone(), req)).await?;
        Ok(TelegramFake { addr, state, changed, server })
    }

    /// The `apiRoot` to configure (no `/bot<token>`).
    pub fn api_root(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn add_bot(&self, token: &str, id: i64, username: &str) {
        lock(&self.state).bots.insert(
            token.to_string(),
            Bot {
                id,
                username: username.to_string(),
                updates: VecDeque::new(),
                webhook: None,
                poll_generation: 0,
                conflicts: 0,
                sent: Vec::new(),
                faults: VecDeque::new(),
                offsets: Vec::new(),
                silent: false,
                actions: Vec::new(),
                uploads: Vec::new(),
            },
        );
    }

    /// A group (`supergroup` when `forum`), optionally with topics.
    pub fn add_group(&self, chat_id: i64, title: &str, forum_topics: &[i64]) {
        lock(&self.state).chats.insert(
            chat_id,
            Chat {
                kind: "supergroup".into(),
                title: Some(title.into()),
                is_forum: !forum_topics.is_empty(),
                topics: forum_topics.iter().copied().collect(),
                messages: HashSet::new(),
            },
        );
    }

    /// A user writes to the bot `token`: in a private chat (`chat_id: None`)
    /// or in a group. `extra` is merged into the `message` (entities,
    /// `message_thread_id`, `reply_to_message`…). Returns the update.
    pub fn user_message(
        &self,
        token: &str,
        chat_id: Option<i64>,
        from: (i64, &str),
        text: &str,
        extra: Value,
    ) -> Value {
        self.push_message(token, chat_id, from, Some(text), extra)
    }

    /// Queues one update whole (the poller may take it at once): a file
    /// message has a caption and no `text`.
    fn push_message(
        &self,
        token: &str,
        chat_id: Option<i64>,
        from: (i64, &str),
        text: Option<&str>,
        extra: Value,
    ) -> Value {
        let mut st = lock(&self.state);
        let chat_id = chat_id.unwrap_or(from.0);
        let message_id = st.next_message;
        st.next_message += 1;
        let chat = st.chats.entry(chat_id).or_insert_with(|| Chat { kind: "private".into(), ..Chat::default() });
        chat.messages.insert(message_id);
        let mut chat_json = json!({"id": chat_id, "type": chat.kind});
        if chat.kind == "private" {
            chat_json["first_name"] = json!(from.1);
        } else {
            chat_json["title"] = json!(chat.title);
            if chat.is_forum {
                chat_json["is_forum"] = json!(true);
            }
        }
        let mut message = json!({
            "message_id": message_id,
            "from": {"id": from.0, "is_bot": false, "first_name": from.1},
            "chat": chat_json,
            "date": 1_767_700_000 + message_id,
        });
        if let Some(t) = text {
            message["text"] = json!(t);
        }
        if let (Some(m), Some(e)) = (message.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        let update_id = st.next_update;
        st.next_update += 1;
        let update = json!({"update_id": update_id, "message": message});
        if let Some(bot) = st.bots.get_mut(token) {
            bot.updates.push_back(update.clone());
        }
        drop(st);
        self.changed.notify_waiters();
        update
    }

    /// A user sends a file: `key` is the message field (`photo`, `voice`,
    /// `document`, `audio`, `video`), `meta` its extra fields (`mime_type`,
    /// `file_name`, `duration`…; a `caption` there is the message's). A
    /// photo comes in two sizes, as Telegram sends them. Returns the update.
    pub fn user_file(
        &self,
        token: &str,
        chat_id: Option<i64>,
        from: (i64, &str),
        key: &str,
        bytes: Vec<u8>,
        mut meta: Value,
    ) -> Value {
        let caption = meta.as_object_mut().and_then(|m| m.remove("caption"));
        let caption = caption.as_ref().and_then(|c| c.as_str());
        let file = |st: &mut State, size: usize, bytes: Vec<u8>| {
            let n = st.files.len() + 1;
            let id = format!("AgAC{key}{n:04}");
            let ext = match key {
                "photo" => "jpg",
                "voice" => "oga",
                _ => "bin",
            };
            let dir = if key == "photo" { "photos" } else { "documents" };
            st.files.insert(id.clone(), StoredFile { path: format!("{dir}/file_{n}.{ext}"), bytes });
            let mut v = json!({"file_id": id, "file_unique_id": format!("AQAD{n}"), "file_size": size});
            if let (Some(o), Some(m)) = (v.as_object_mut(), meta.as_object()) {
                o.extend(m.clone());
            }
            v
        };
        let extra = {
            let mut st = lock(&self.state);
            let size = bytes.len();
            let value = if key == "photo" {
                let thumb = file(&mut st, 1024, vec![0xff; 1024]);
                let mut full = file(&mut st, size, bytes);
                full["width"] = json!(1280);
                full["height"] = json!(960);
                json!([thumb, full])
            } else {
                file(&mut st, size, bytes)
            };
            let mut extra = json!({ key: value });
            if let Some(c) = caption {
                extra["caption"] = json!(c);
            }
            extra
        };
        // A file message has a caption, never a text; queued whole, so a
        // poll never sees it half made.
        let mut update = self.push_message(token, chat_id, from, None, extra);
        update["message"]["caption"] = caption.map_or(Value::Null, |c| json!(c));
        update
    }

    /// The files the bot uploaded, in order.
    pub fn uploads(&self, token: &str) -> Vec<Upload> {
        lock(&self.state).bots.get(token).map(|b| b.uploads.clone()).unwrap_or_default()
    }

    /// Waits until the bot uploaded at least `n` files.
    pub async fn wait_uploads(&self, token: &str, n: usize, within: Duration) -> Vec<Upload> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let up = self.uploads(token);
            if up.len() >= n || tokio::time::Instant::now() >= deadline {
                return up;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The bot's `sendChatAction`, `setMessageReaction` and
    /// `editMessageText` requests, in order: (method, body).
    pub fn actions(&self, token: &str) -> Vec<(String, Value)> {
        lock(&self.state).bots.get(token).map(|b| b.actions.clone()).unwrap_or_default()
    }

    /// Waits until the bot made a `method` request (lowercase), and returns them all.
    pub async fn wait_action(&self, token: &str, method: &str, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let found: Vec<Value> =
                self.actions(token).into_iter().filter(|(m, _)| m == method).map(|(_, v)| v).collect();
            if !found.is_empty() || tokio::time::Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What the bot `token` sent with `sendMessage`, in order (request bodies).
    pub fn sent(&self, token: &str) -> Vec<Value> {
        lock(&self.state).bots.get(token).map(|b| b.sent.clone()).unwrap_or_default()
    }

    /// Waits until the bot has sent at least `n` messages.
    pub async fn wait_sent(&self, token: &str, n: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let sent = self.sent(token);
            if sent.len() >= n || tokio::time::Instant::now() >= deadline {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The offsets `getUpdates` was called with.
    pub fn poll_offsets(&self, token: &str) -> Vec<i64> {
        lock(&self.state).bots.get(token).map(|b| b.offsets.clone()).unwrap_or_default()
    }

    /// From now on the bot's `getUpdates` requests are accepted and never
    /// answered (the connection stays open), until [`Self::answer_again`].
    pub fn stop_answering(&self, token: &str) {
        if let Some(b) = lock(&self.state).bots.get_mut(token) {
            b.silent = true;
        }
    }

    pub fn answer_again(&self, token: &str) {
        if let Some(b) = lock(&self.state).bots.get_mut(token) {
            b.silent = false;
        }
        self.changed.notify_waiters();
    }

    /// Holds every `sendMessage` to `chat_id` open (a slow platform) until [`Self::release_sends`].
    pub fn hold_sends_to(&self, chat_id: i64) {
        lock(&self.state).held.insert(chat_id);
    }

    pub fn release_sends(&self) {
        lock(&self.state).held.clear();
        self.changed.notify_waiters();
    }

    /// How many `getUpdates` calls the bot received (answered or not).
    pub fn polls(&self, token: &str) -> usize {
        lock(&self.state).bots.get(token).map_or(0, |b| b.offsets.len())
    }

    /// How many `getUpdates` requests of the bot a newer one terminated (409).
    pub fn conflicts(&self, token: &str) -> usize {
        lock(&self.state).bots.get(token).map_or(0, |b| b.conflicts)
    }

    pub fn fail_next_send(&self, token: &str, fault: Fault) {
        if let Some(b) = lock(&self.state).bots.get_mut(token) {
            b.faults.push_back(fault);
        }
    }

    /// Pushes the oldest pending update to the bot's webhook, as Telegram
    /// does (with the secret token header); returns the HTTP status. A 2xx
    /// answer removes the update; anything else keeps it for a retry.
    pub async fn push_webhook(&self, token: &str) -> Option<u16> {
        let (url, secret, update) = {
            let st = lock(&self.state);
            let bot = st.bots.get(token)?;
            let (url, secret) = bot.webhook.clone()?;
            (url, secret, bot.updates.front()?.clone())
        };
        let status = post_json(&url, &[("X-Telegram-Bot-Api-Secret-Token", &secret)], &update.to_string()).await?;
        if (200..300).contains(&status) {
            if let Some(b) = lock(&self.state).bots.get_mut(token) {
                b.updates.pop_front();
            }
        }
        Some(status)
    }
}

pub use crate::wire::post_json;

async fn handle(state: Arc<Mutex<State>>, changed: Arc<Notify>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(form);
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if let Some((token, file_path)) = path.strip_prefix("/file/bot").and_then(|r| r.split_once('/')) {
        let st = lock(&state);
        if !st.bots.contains_key(token) {
            return error(401, "Unauthorized", None);
        }
        return match st.files.values().find(|f| f.path == file_path) {
            Some(f) => {
                let mut r = Response::new(Full::new(Bytes::from(f.bytes.clone())));
                r.headers_mut()
                    .insert("content-type", hyper::header::HeaderValue::from_static("application/octet-stream"));
                r
            }
            None => error(404, "Not Found", None),
        };
    }
    let Some((token, method)) = path.strip_prefix("/bot").and_then(|r| r.split_once('/')) else {
        return error(404, "Not Found", None);
    };
    let (token, method) = (token.to_string(), method.to_ascii_lowercase());
    let mut file = None;
    let params = if content_type.starts_with("multipart/form-data") {
        match wire::multipart(&content_type, body.clone()).await {
            Ok((fields, f)) => {
                file = f;
                fields
            }
            Err(why) => return error(400, &format!("Bad Request: {why}"), None),
        }
    } else if body.is_empty() {
        query.unwrap_or_else(|| json!({}))
    } else if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => v,
            Err(_) => return error(400, "Bad Request: can't parse JSON object", None),
        }
    } else {
        form(&String::from_utf8_lossy(&body))
    };
    if !lock(&state).bots.contains_key(&token) {
        return error(401, "Unauthorized", None);
    }
    match method.as_str() {
        "getme" => {
            let st = lock(&state);
            let b = &st.bots[&token];
            ok(json!({"id": b.id, "is_bot": true, "first_name": b.username, "username": b.username,
                      "can_read_all_group_messages": false, "has_topics_enabled": false}))
        }
        "getupdates" => get_updates(state, changed, &token, &params).await,
        "sendmessage" => {
            // A held chat: the request waits (the connection open) until released.
            while let Some(chat) = as_i64(&params["chat_id"]) {
                let notified = changed.notified();
                if !lock(&state).held.contains(&chat) {
                    break;
                }
                notified.await;
            }
            send_message(&state, &token, &params)
        }
        "setwebhook" => {
            let mut st = lock(&state);
            let b = st.bots.get_mut(&token).expect("checked");
            let url = params["url"].as_str().unwrap_or_default().to_string();
            b.webhook =
                (!url.is_empty()).then(|| (url, params["secret_token"].as_str().unwrap_or_default().to_string()));
            ok(json!(true))
        }
        "deletewebhook" => {
            lock(&state).bots.get_mut(&token).expect("checked").webhook = None;
            ok(json!(true))
        }
        "getwebhookinfo" => {
            let st = lock(&state);
            let b = &st.bots[&token];
            ok(
                json!({"url": b.webhook.as_ref().map(|w| w.0.clone()).unwrap_or_default(), "pending_update_count": b.updates.len()}),
            )
        }
        "sendchataction" => {
            let mut st = lock(&state);
            let Some(chat) = as_i64(&params["chat_id"]).filter(|c| st.chats.contains_key(c)) else {
                return error(400, "Bad Request: chat not found", None);
            };
            let actions =
                ["typing", "upload_photo", "record_voice", "upload_voice", "upload_document", "choose_sticker"];
            if !actions.contains(&params["action"].as_str().unwrap_or_default()) {
                return error(400, "Bad Request: wrong parameter action in request", None);
            }
            let _ = chat;
            st.bots.get_mut(&token).expect("checked").actions.push((method.clone(), params.clone()));
            ok(json!(true))
        }
        "setmessagereaction" => {
            let mut st = lock(&state);
            let chat = as_i64(&params["chat_id"]);
            let Some(c) = chat.and_then(|c| st.chats.get(&c)) else {
                return error(400, "Bad Request: chat not found", None);
            };
            if !as_i64(&params["message_id"]).is_some_and(|m| c.messages.contains(&m)) {
                return error(400, "Bad Request: message to react not found", None);
            }
            let ok_reaction = params["reaction"].as_array().is_some_and(|r| {
                r.iter().all(|x| x["type"] == "emoji" && REACTIONS.contains(&x["emoji"].as_str().unwrap_or_default()))
            });
            if !ok_reaction {
                return error(400, "Bad Request: REACTION_INVALID", None);
            }
            st.bots.get_mut(&token).expect("checked").actions.push((method.clone(), params.clone()));
            ok(json!(true))
        }
        "editmessagetext" => {
            let mut st = lock(&state);
            let key = (as_i64(&params["chat_id"]).unwrap_or(0), as_i64(&params["message_id"]).unwrap_or(0));
            let text = params["text"].as_str().unwrap_or_default().to_string();
            match st.bot_texts.get(&key) {
                None => return error(400, "Bad Request: message to edit not found", None),
                Some(old) if *old == text => {
                    return error(400, "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message", None)
                }
                Some(_) => {}
            }
            if text.is_empty() || text.encode_utf16().count() > 4096 {
                return error(400, "Bad Request: message text is empty or too long", None);
            }
            st.bot_texts.insert(key, text.clone());
            st.bots.get_mut(&token).expect("checked").actions.push((method.clone(), params.clone()));
            ok(json!({"message_id": key.1, "chat": {"id": key.0}, "date": 1_767_700_000, "text": text}))
        }
        "sendphoto" | "senddocument" | "sendvoice" | "sendaudio" | "sendvideo" => {
            let field = &method[4..];
            let Some((name, file_name, mime, bytes)) = file.filter(|f| f.0 == field) else {
                return error(400, &format!("Bad Request: there is no {field} in the request"), None);
            };
            let _ = name;
            let limit = if field == "photo" { 10 * 1024 * 1024 } else { 50 * 1024 * 1024 };
            if bytes.len() > limit {
                return error(413, "Request Entity Too Large", None);
            }
            let mut st = lock(&state);
            let Some(chat_id) = as_i64(&params["chat_id"]).filter(|c| st.chats.contains_key(c)) else {
                return error(400, "Bad Request: chat not found", None);
            };
            let message_id = st.next_message;
            st.next_message += 1;
            if let Some(c) = st.chats.get_mut(&chat_id) {
                c.messages.insert(message_id);
            }
            let upload = Upload { method: method.clone(), fields: params.clone(), file_name, mime_type: mime, bytes };
            st.bots.get_mut(&token).expect("checked").uploads.push(upload);
            ok(json!({"message_id": message_id, "chat": {"id": chat_id}, "date": 1_767_700_000}))
        }
        "getfile" => {
            let st = lock(&state);
            let id = params["file_id"].as_str().unwrap_or_default();
            let Some(f) = st.files.get(id) else {
                return error(400, "Bad Request: invalid file_id", None);
            };
            if f.bytes.len() > DOWNLOAD_LIMIT {
                return error(400, "Bad Request: file is too big", None);
            }
            ok(json!({"file_id": id, "file_unique_id": "AQADx", "file_size": f.bytes.len(), "file_path": f.path}))
        }
        _ => error(404, "Not Found: method not found", None),
    }
}

async fn get_updates(state: Arc<Mutex<State>>, changed: Arc<Notify>, token: &str, p: &Value) -> Response<Full<Bytes>> {
    let offset = as_i64(&p["offset"]).unwrap_or(0);
    let limit = as_i64(&p["limit"]).unwrap_or(100).clamp(1, 100) as usize;
    let timeout = Duration::from_secs(as_i64(&p["timeout"]).unwrap_or(0).clamp(0, 50) as u64);
    // Gone silent: hold the request until the bot answers again; by then the
    // caller has given up, and the late (empty) answer goes nowhere.
    if lock(&state).bots[token].silent {
        lock(&state).bots.get_mut(token).expect("checked").offsets.push(offset);
        loop {
            let notified = changed.notified();
            if !lock(&state).bots[token].silent {
                return ok(json!([]));
            }
            notified.await;
        }
    }
    let generation = {
        let mut st = lock(&state);
        let b = st.bots.get_mut(token).expect("checked");
        if b.webhook.is_some() {
            return error(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first", None);
        }
        b.poll_generation += 1;
        b.offsets.push(offset);
        let generation = b.poll_generation;
        // Confirmation: everything below the offset is gone for good.
        while b.updates.front().is_some_and(|u| u["update_id"].as_i64().unwrap_or(0) < offset) {
            b.updates.pop_front();
        }
        generation
    };
    changed.notify_waiters(); // an older request of this bot ends with 409
    let deadline = tokio::time::Instant::now() + timeout;
    let result = loop {
        let notified = changed.notified();
        let batch: Vec<Value> = {
            let mut st = lock(&state);
            if st.bots[token].poll_generation != generation {
                if let Some(b) = st.bots.get_mut(token) {
                    b.conflicts += 1;
                }
                return error(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                    None,
                );
            }
            st.bots[token]
                .updates
                .iter()
                .filter(|u| u["update_id"].as_i64().unwrap_or(0) >= offset)
                .take(limit)
                .cloned()
                .collect()
        };
        if !batch.is_empty() || tokio::time::Instant::now() >= deadline {
            break batch;
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
    };
    ok(Value::Array(result))
}

fn send_message(state: &Mutex<State>, token: &str, p: &Value) -> Response<Full<Bytes>> {
    let mut st = lock(state);
    let Some(chat_id) = as_i64(&p["chat_id"]) else { return error(400, "Bad Request: chat_id is empty", None) };
    if !st.chats.contains_key(&chat_id) {
        return error(400, "Bad Request: chat not found", None);
    }
    let text = p["text"].as_str().unwrap_or_default().to_string();
    let units = text.encode_utf16().count();
    if units == 0 {
        return error(400, "Bad Request: message text is empty", None);
    }
    if units > 4096 {
        return error(400, "Bad Request: message is too long", None);
    }
    let thread = as_i64(&p["message_thread_id"]);
    let chat = &st.chats[&chat_id];
    if let Some(t) = thread {
        if chat.is_forum && (t == 1 || !chat.topics.contains(&t)) {
            return error(400, "Bad Request: message thread not found", None);
        }
    }
    let reply_to = as_i64(&p["reply_parameters"]["message_id"]).or_else(|| as_i64(&p["reply_to_message_id"]));
    let lenient = p["reply_parameters"]["allow_sending_without_reply"] == true;
    if let Some(r) = reply_to {
        if !chat.messages.contains(&r) && !lenient {
            return error(400, "Bad Request: message to be replied not found", None);
        }
    }
    let bot = st.bots.get_mut(token).expect("checked");
    if let Some(f) = bot.faults.pop_front() {
        return match f {
            Fault::TooManyRequests(s) => {
                error(429, &format!("Too Many Requests: retry after {s}"), Some(json!({"retry_after": s})))
            }
            Fault::Blocked => error(403, "Forbidden: bot was blocked by the user", None),
            Fault::Migrated(to) => error(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                Some(json!({"migrate_to_chat_id": to})),
            ),
        };
    }
    bot.sent.push(p.clone());
    let (bot_id, username) = (bot.id, bot.username.clone());
    let message_id = st.next_message;
    st.next_message += 1;
    if let Some(c) = st.chats.get_mut(&chat_id) {
        c.messages.insert(message_id);
    }
    st.bot_texts.insert((chat_id, message_id), text.to_string());
    let mut m = json!({"message_id": message_id, "from": {"id": bot_id, "is_bot": true, "first_name": username, "username": username},
                       "chat": {"id": chat_id}, "date": 1_767_700_000, "text": text});
    if let Some(t) = thread {
        m["message_thread_id"] = json!(t);
    }
    ok(m)
}
