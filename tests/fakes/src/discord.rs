//! A Discord fake (reference channels §3.7). REST under `/api/v10`: `GET
//! /gateway/bot`, `GET /users/@me`, `GET /channels/{id}`, `POST
//! /channels/{id}/messages` (content 1–2000 characters, `message_reference`
//! must exist unless `fail_if_not_exists: false`, scripted 429 with
//! `Retry-After`, `X-RateLimit-*` and a JSON `retry_after`), `POST
//! /users/@me/channels`; `Authorization: Bot <token>` and a `DiscordBot`
//! User-Agent required. Gateway (WebSocket on the same port): HELLO with a
//! configurable `heartbeat_interval`, heartbeats ACKed (or not, on demand)
//! and enforced (4009 after two missed intervals), IDENTIFY checked (4004
//! bad token, 4013 unknown intent bits, 4014 privileged intents not enabled),
//! READY + GUILD_CREATE, MESSAGE_CREATE with increasing `s` filtered by
//! intents and blanked without MESSAGE_CONTENT (unless DM, mention or own),
//! RESUME replaying what the session missed then RESUMED, scripted op 7
//! RECONNECT, op 9 INVALID_SESSION, drops and close codes. The bot's own
//! messages come back as MESSAGE_CREATE, as on Discord. Files: a user's
//! message may carry an attachment served from the fake's CDN path
//! (`/attachments/{channel}/{id}/{name}`); `POST /channels/{id}/typing`,
//! `PUT …/messages/{id}/reactions/{emoji}/@me` (percent-encoded emoji) and
//! `PATCH …/messages/{id}` (only the bot's own; 1–2000 characters) are
//! checked and recorded; `POST …/messages` as `multipart/form-data`
//! (`payload_json` + `files[n]`, 10 MiB per file) is an upload.
//!
//! Must not: accept what Discord refuses, or know chela's internals.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Request;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::wire::{self, json_reply, lock, Reply};

const KNOWN_INTENTS: u64 = (1 << 26) - 1;
const PRIVILEGED: u64 = 1 << 1 | 1 << 8 | 1 << 15;
const GUILD_MESSAGES: u64 = 1 << 9;
const DIRECT_MESSAGES: u64 = 1 << 12;
const MESSAGE_CONTENT: u64 = 1 << 15;

struct Session {
    id: String,
    intents: u64,
    /// Every dispatch of the session, by `s`.
    log: Vec<(i64, Value)>,
    conn: Option<mpsc::UnboundedSender<Frame>>,
}

struct Bot {
    user_id: String,
    username: String,
    privileged_enabled: bool,
    session: Option<Session>,
    sent: Vec<Value>,
    faults: VecDeque<f64>,
    identifies: u32,
    resumes: u32,
    heartbeats: u32,
    user_agents: HashSet<String>,
    /// Typing, reactions and edits: (what, channel, body).
    actions: Vec<(String, String, Value)>,
    uploads: Vec<Upload>,
}

/// A file the bot uploaded with a message: channel, `payload_json`, the file part.
#[derive(Debug, Clone)]
pub struct Upload {
    pub channel_id: String,
    pub payload: Value,
    pub file_name: String,
    pub bytes: Vec<u8>,
}

struct ChannelInfo {
    guild_id: Option<String>,
    kind: u8,
    parent_id: Option<String>,
    /// A DM's other user.
    recipient: Option<String>,
    messages: HashSet<String>,
}

struct State {
    bots: HashMap<String, Bot>,
    channels: HashMap<String, ChannelInfo>,
    guilds: HashMap<String, Vec<String>>,
    next_id: u64,
    heartbeat_interval: u64,
    ack_heartbeats: bool,
    addr: Option<std::net::SocketAddr>,
    /// What `GET /gateway/bot` answers instead of this fake's own socket (a compromised upstream).
    gateway_url: Option<String>,
    /// `GET /gateway/bot` requests served.
    gateway_bot_requests: usize,
    /// CDN files by path, and the bot's own message ids (edits need them).
    files: HashMap<String, Vec<u8>>,
    bot_messages: HashSet<String>,
    /// Users that are bots (their messages carry `author.bot`).
    bot_users: HashSet<String>,
}

pub struct DiscordFake {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for DiscordFake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn error(status: u16, code: i64, message: &str) -> Reply {
    json_reply(status, &json!({"code": code, "message": message}), &[])
}

fn snowflake(st: &mut State) -> String {
    st.next_id += 1;
    format!("13{:017}", st.next_id)
}

impl DiscordFake {
    pub async fn start() -> DiscordFake {
        DiscordFake::start_on(0).await.expect("bind the Discord fake")
    }

    /// The fake on `127.0.0.1:port` (0: any free port).
    pub async fn start_on(port: u16) -> std::io::Result<DiscordFake> {
        let state = Arc::new(Mutex::new(State {
            bots: HashMap::new(),
            channels: HashMap::new(),
            guilds: HashMap::new(),
            next_id: 1000,
            heartbeat_interval: 41_250,
            ack_heartbeats: true,
            addr: None,
            gateway_url: None,
            gateway_bot_requests: 0,
            files: HashMap::new(),
            bot_messages: HashSet::new(),
            bot_users: HashSet::new(),
        }));
        let st = state.clone();
        let (addr, server) = wire::serve_on(port, move |req| handle(st.clone(), req)).await?;
        lock(&state).addr = Some(addr);
        Ok(DiscordFake { addr, state, server })
    }

    /// The REST base to configure (`apiBase`).
    pub fn api_base(&self) -> String {
        format!("http://{}/api/v10", self.addr)
    }

    /// A bot; `privileged` says whether its privileged intents are enabled in the portal.
    pub fn add_bot(&self, token: &str, user_id: &str, username: &str, privileged: bool) {
        lock(&self.state).bots.insert(
            token.into(),
            Bot {
                user_id: user_id.into(),
                username: username.into(),
                privileged_enabled: privileged,
                session: None,
                sent: Vec::new(),
                faults: VecDeque::new(),
                identifies: 0,
                resumes: 0,
                heartbeats: 0,
                user_agents: HashSet::new(),
                actions: Vec::new(),
                uploads: Vec::new(),
            },
        );
    }

    /// A guild with text channels and threads (`(thread, parent)`).
    pub fn add_guild(&self, guild_id: &str, channels: &[&str], threads: &[(&str, &str)]) {
        let mut st = lock(&self.state);
        let mut ids = Vec::new();
        for c in channels {
            let info = ChannelInfo {
                guild_id: Some(guild_id.into()),
                kind: 0,
                parent_id: None,
                recipient: None,
                messages: HashSet::new(),
            };
            st.channels.insert(c.to_string(), info);
            ids.push(c.to_string());
        }
        for (t, parent) in threads {
            let info = ChannelInfo {
                guild_id: Some(guild_id.into()),
                kind: 11,
                parent_id: Some(parent.to_string()),
                recipient: None,
                messages: HashSet::new(),
            };
            st.channels.insert(t.to_string(), info);
            ids.push(t.to_string());
        }
        st.guilds.insert(guild_id.into(), ids);
    }

    /// Heartbeat interval sent in HELLO (short in tests).
    pub fn set_heartbeat_interval(&self, ms: u64) {
        lock(&self.state).heartbeat_interval = ms;
    }

    /// Makes `GET /gateway/bot` answer `url` (as a compromised or spoofed upstream would).
    pub fn set_gateway_url(&self, url: &str) {
        lock(&self.state).gateway_url = Some(url.to_string());
    }

    /// How many times `GET /gateway/bot` was asked.
    pub fn gateway_bot_requests(&self) -> usize {
        lock(&self.state).gateway_bot_requests
    }

    /// Whether heartbeats are ACKed (off: a zombie connection).
    pub fn ack_heartbeats(&self, on: bool) {
        lock(&self.state).ack_heartbeats = on;
    }

    /// A user's message in `channel_id` (a guild channel or thread), or a DM
    /// to the bot when `channel_id` is `None`. `roles` are the member's role
    /// ids; `mention` adds the bot to `mentions` and `<@id>` to the content.
    /// Dispatched to every bot with a session; returns the message id.
    pub fn user_message(
        &self,
        bot_token: &str,
        channel_id: Option<&str>,
        author: (&str, &str),
        content: &str,
        roles: &[&str],
        mention: bool,
    ) -> String {
        let mut st = lock(&self.state);
        let id = snowflake(&mut st);
        let bot_id = st.bots.get(bot_token).map(|b| b.user_id.clone()).unwrap_or_default();
        let channel = match channel_id {
            Some(c) => c.to_string(),
            None => dm_channel(&mut st, author.0),
        };
        let guild = st.channels.get(&channel).and_then(|c| c.guild_id.clone());
        if let Some(c) = st.channels.get_mut(&channel) {
            c.messages.insert(id.clone());
        }
        let content = if mention { format!("<@{bot_id}> {content}") } else { content.to_string() };
        let mut d = json!({"id": id, "type": 0, "channel_id": channel, "content": content,
            "author": {"id": author.0, "username": author.1.to_lowercase(), "global_name": author.1},
            "mentions": if mention { json!([{"id": bot_id, "username": "bot", "bot": true}]) } else { json!([]) },
            "mention_roles": [], "mention_everyone": false, "timestamp": "2026-01-01T12:00:00.000000+00:00",
            "edited_timestamp": null, "tts": false, "attachments": [], "embeds": [], "pinned": false});
        if st.bot_users.contains(author.0) {
            d["author"]["bot"] = json!(true);
        }
        if let Some(g) = &guild {
            d["guild_id"] = json!(g);
            d["member"] = json!({"roles": roles, "nick": null, "joined_at": "2024-01-01T00:00:00.000000+00:00",
                                 "deaf": false, "mute": false});
        }
        dispatch(&mut st, bot_token, "MESSAGE_CREATE", d);
        id
    }

    /// From now on `user_id`'s messages are a bot's (`author.bot: true`).
    pub fn make_bot(&self, user_id: &str) {
        lock(&self.state).bot_users.insert(user_id.to_string());
    }

    /// A user's message with one file (`content_type` decides the kind;
    /// `voice` sets the voice-message flag). Returns the message id.
    pub fn user_file(
        &self,
        bot_token: &str,
        channel_id: Option<&str>,
        author: (&str, &str),
        content: &str,
        file: (&str, &str, Vec<u8>),
    ) -> String {
        let mut st = lock(&self.state);
        let id = snowflake(&mut st);
        let channel = match channel_id {
            Some(c) => c.to_string(),
            None => dm_channel(&mut st, author.0),
        };
        if let Some(c) = st.channels.get_mut(&channel) {
            c.messages.insert(id.clone());
        }
        let (name, content_type, bytes) = file;
        let attachment_id = snowflake(&mut st);
        let path = format!("/attachments/{channel}/{attachment_id}/{name}");
        let base = format!("http://{}", st.addr.map(|a| a.to_string()).unwrap_or_default());
        let size = bytes.len();
        st.files.insert(path.clone(), bytes);
        let guild = st.channels.get(&channel).and_then(|c| c.guild_id.clone());
        let mut d = json!({"id": id, "type": 0, "channel_id": channel, "content": content,
            "author": {"id": author.0, "username": author.1.to_lowercase(), "global_name": author.1},
            "mentions": [], "mention_roles": [], "mention_everyone": false,
            "timestamp": "2026-01-01T12:00:00.000000+00:00", "edited_timestamp": null, "tts": false,
            "attachments": [{"id": attachment_id, "filename": name, "size": size, "content_type": content_type,
                             "url": format!("{base}{path}"), "proxy_url": format!("{base}{path}")}],
            "embeds": [], "pinned": false});
        if content_type.starts_with("audio/ogg") {
            d["flags"] = json!(8192);
        }
        if let Some(g) = &guild {
            d["guild_id"] = json!(g);
            d["member"] = json!({"roles": [], "nick": null, "joined_at": "2024-01-01T00:00:00.000000+00:00",
                                 "deaf": false, "mute": false});
        }
        dispatch(&mut st, bot_token, "MESSAGE_CREATE", d);
        id
    }

    /// The bot's typing, reactions and edits: (`typing` | `reaction` | `edit`, channel, body).
    pub fn actions(&self, token: &str) -> Vec<(String, String, Value)> {
        lock(&self.state).bots.get(token).map(|b| b.actions.clone()).unwrap_or_default()
    }

    /// Waits until the bot made an action of `kind`; all of them.
    pub async fn wait_action(&self, token: &str, kind: &str, within: Duration) -> Vec<(String, Value)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let found: Vec<(String, Value)> =
                self.actions(token).into_iter().filter(|(k, _, _)| k == kind).map(|(_, c, v)| (c, v)).collect();
            if !found.is_empty() || tokio::time::Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn uploads(&self, token: &str) -> Vec<Upload> {
        lock(&self.state).bots.get(token).map(|b| b.uploads.clone()).unwrap_or_default()
    }

    /// What the bot created with `POST /channels/{id}/messages` (`(channel, body)`), in order.
    pub fn sent(&self, token: &str) -> Vec<(String, Value)> {
        lock(&self.state)
            .bots
            .get(token)
            .map(|b| {
                b.sent
                    .iter()
                    .map(|v| (v["channel_id"].as_str().unwrap_or_default().to_string(), v["body"].clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub async fn wait_sent(&self, token: &str, n: usize, within: Duration) -> Vec<(String, Value)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let sent = self.sent(token);
            if sent.len() >= n || tokio::time::Instant::now() >= deadline {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// (IDENTIFYs, RESUMEs, heartbeats) the bot sent so far.
    pub fn counts(&self, token: &str) -> (u32, u32, u32) {
        lock(&self.state).bots.get(token).map(|b| (b.identifies, b.resumes, b.heartbeats)).unwrap_or_default()
    }

    /// Whether the bot has a live gateway connection.
    pub fn connected(&self, token: &str) -> bool {
        lock(&self.state).bots.get(token).and_then(|b| b.session.as_ref()).is_some_and(|s| s.conn.is_some())
    }

    pub async fn wait_connected(&self, token: &str, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if self.connected(token) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// The next create-message answers 429 with `retry_after` seconds.
    pub fn rate_limit_next_send(&self, token: &str, retry_after: f64) {
        if let Some(b) = lock(&self.state).bots.get_mut(token) {
            b.faults.push_back(retry_after);
        }
    }

    /// Closes the bot's connection with `code` (the session stays resumable unless the code says otherwise).
    pub fn close(&self, token: &str, code: u16) {
        if let Some(conn) = lock(&self.state).bots.get_mut(token).and_then(|b| b.session.as_mut()?.conn.take()) {
            let _ = conn.send(Frame::Close(Some(CloseFrame { code: CloseCode::from(code), reason: "fake".into() })));
        }
    }

    /// Sends op 7 RECONNECT.
    pub fn request_reconnect(&self, token: &str) {
        send_op(&self.state, token, json!({"op": 7, "d": null}));
    }

    /// Sends op 9 INVALID_SESSION; `resumable: false` also forgets the session.
    pub fn invalidate_session(&self, token: &str, resumable: bool) {
        send_op(&self.state, token, json!({"op": 9, "d": resumable}));
        if !resumable {
            if let Some(b) = lock(&self.state).bots.get_mut(token) {
                b.session = None;
            }
        }
    }

    /// User-Agents the bot's REST calls carried.
    pub fn user_agents(&self, token: &str) -> Vec<String> {
        lock(&self.state).bots.get(token).map(|b| b.user_agents.iter().cloned().collect()).unwrap_or_default()
    }
}

fn send_op(state: &Mutex<State>, token: &str, op: Value) {
    if let Some(conn) = lock(state).bots.get(token).and_then(|b| b.session.as_ref()?.conn.clone()) {
        let _ = conn.send(Frame::text(op.to_string()));
    }
}

/// The DM channel between the bot and `user` (made on first use).
fn dm_channel(st: &mut State, user: &str) -> String {
    if let Some((id, _)) = st.channels.iter().find(|(_, c)| c.kind == 1 && c.recipient.as_deref() == Some(user)) {
        return id.clone();
    }
    let id = snowflake(st);
    st.channels.insert(
        id.clone(),
        ChannelInfo {
            guild_id: None,
            kind: 1,
            parent_id: None,
            recipient: Some(user.into()),
            messages: HashSet::new(),
        },
    );
    id
}

/// Appends a dispatch to the bot's session (intents applied) and sends it if connected.
fn dispatch(st: &mut State, token: &str, t: &str, mut d: Value) {
    let Some(bot) = st.bots.get_mut(token) else { return };
    let bot_id = bot.user_id.clone();
    let Some(session) = bot.session.as_mut() else { return };
    if t == "MESSAGE_CREATE" {
        let dm = d["guild_id"].is_null();
        if session.intents & if dm { DIRECT_MESSAGES } else { GUILD_MESSAGES } == 0 {
            return;
        }
        let own = d["author"]["id"] == bot_id.as_str();
        let mentioned = d["mentions"].as_array().is_some_and(|m| m.iter().any(|u| u["id"] == bot_id.as_str()));
        if session.intents & MESSAGE_CONTENT == 0 && !(dm || own || mentioned) {
            d["content"] = json!("");
        }
    }
    let s = session.log.last().map(|(s, _)| s + 1).unwrap_or(1);
    let frame = json!({"op": 0, "t": t, "s": s, "d": d});
    session.log.push((s, frame.clone()));
    if let Some(conn) = &session.conn {
        let _ = conn.send(Frame::text(frame.to_string()));
    }
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_string();
    if path.starts_with("/attachments/") {
        // The CDN: no authentication, signed URLs in real life.
        return match lock(&state).files.get(&path) {
            Some(bytes) => {
                let mut r = Reply::new(http_body_util::Full::new(bytes::Bytes::from(bytes.clone())));
                r.headers_mut()
                    .insert("content-type", hyper::header::HeaderValue::from_static("application/octet-stream"));
                r
            }
            None => error(404, 0, "404: Not Found"),
        };
    }
    if !path.starts_with("/api/") {
        let st = state.clone();
        return wire::upgrade(req, move |ws| gateway(st, ws)).unwrap_or_else(|| error(404, 0, "404: Not Found"));
    }
    let method = req.method().clone();
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let ua = req.headers().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let Some(route) = path.strip_prefix("/api/v10") else { return error(404, 0, "404: Not Found") };
    let form = match content_type.starts_with("multipart/form-data") {
        true => Some(wire::multipart(&content_type, body.clone()).await),
        false => None,
    };
    let mut st = lock(&state);
    let Some(token) = auth.strip_prefix("Bot ").filter(|t| st.bots.contains_key(*t)).map(str::to_string) else {
        return error(401, 0, "401: Unauthorized");
    };
    if !ua.starts_with("DiscordBot (") {
        return error(403, 0, "Requests need a User-Agent of the form `DiscordBot ($url, $versionNumber)`");
    }
    st.bots.get_mut(&token).expect("checked").user_agents.insert(ua);
    let parts: Vec<&str> = route.trim_start_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["gateway", "bot"]) => {
            st.gateway_bot_requests += 1;
            let own = format!("ws://{}", st.addr.map(|a| a.to_string()).unwrap_or_default());
            let url = st.gateway_url.clone().unwrap_or(own);
            json_reply(
                200,
                &json!({"url": url, "shards": 1, "session_start_limit":
                {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}}),
                &[],
            )
        }
        ("GET", ["users", "@me"]) => {
            let b = &st.bots[&token];
            json_reply(200, &json!({"id": b.user_id, "username": b.username, "bot": true}), &[])
        }
        ("GET", ["channels", id]) => match st.channels.get(*id) {
            Some(c) => json_reply(
                200,
                &json!({"id": id, "type": c.kind, "guild_id": c.guild_id, "parent_id": c.parent_id}),
                &[],
            ),
            None => error(404, 10003, "Unknown Channel"),
        },
        ("POST", ["users", "@me", "channels"]) => {
            let Some(user) = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["recipient_id"].as_str().map(str::to_string))
            else {
                return error(400, 50035, "Invalid Form Body");
            };
            let id = dm_channel(&mut st, &user);
            json_reply(200, &json!({"id": id, "type": 1, "recipients": [{"id": user}]}), &[])
        }
        ("POST", ["channels", id, "messages"]) if content_type.starts_with("multipart/form-data") => {
            let id = id.to_string();
            let Some(Ok((fields, Some((field, file_name, _, bytes))))) = form else {
                return error(400, 50035, "Invalid Form Body");
            };
            if !field.starts_with("files[") {
                return error(400, 50035, "Invalid Form Body: files[n] expected");
            }
            if bytes.len() > 10 * 1024 * 1024 {
                return error(413, 40005, "Request entity too large");
            }
            if !st.channels.contains_key(&id) {
                return error(404, 10003, "Unknown Channel");
            }
            let payload = match &fields["payload_json"] {
                Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
                v => v.clone(),
            };
            let message_id = snowflake(&mut st);
            st.bot_messages.insert(message_id.clone());
            let upload = Upload { channel_id: id.clone(), payload, file_name: file_name.clone(), bytes };
            st.bots.get_mut(&token).expect("checked").uploads.push(upload);
            json_reply(200, &json!({"id": message_id, "channel_id": id, "attachments": [{"filename": file_name}]}), &[])
        }
        ("POST", ["channels", id, "messages"]) => create_message(&mut st, &token, id, &body),
        ("POST", ["channels", id, "typing"]) => {
            if !st.channels.contains_key(*id) {
                return error(404, 10003, "Unknown Channel");
            }
            let id = id.to_string();
            st.bots.get_mut(&token).expect("checked").actions.push(("typing".into(), id, Value::Null));
            wire::json_reply(204, &Value::Null, &[])
        }
        ("PUT", ["channels", cid, "messages", mid, "reactions", emoji, "@me"]) => {
            let known = st.channels.get(*cid).is_some_and(|c| c.messages.contains(*mid));
            if !known {
                return error(404, 10008, "Unknown Message");
            }
            let Some(decoded) = wire::percent_decode(emoji).filter(|e| !e.is_empty() && !e.contains(' ')) else {
                return error(400, 10014, "Unknown Emoji");
            };
            let (cid, mid) = (cid.to_string(), mid.to_string());
            let entry = ("reaction".to_string(), cid, json!({"message_id": mid, "emoji": decoded}));
            st.bots.get_mut(&token).expect("checked").actions.push(entry);
            wire::json_reply(204, &Value::Null, &[])
        }
        ("PATCH", ["channels", cid, "messages", mid]) => {
            if !st.bot_messages.contains(*mid) {
                return error(403, 50005, "Cannot edit a message authored by another user");
            }
            let Ok(p) = serde_json::from_slice::<Value>(&body) else {
                return error(400, 50109, "The request body contains invalid JSON.");
            };
            let content = p["content"].as_str().unwrap_or_default().to_string();
            if content.is_empty() || content.chars().count() > 2000 {
                return error(400, 50035, "Invalid Form Body");
            }
            let (cid, mid) = (cid.to_string(), mid.to_string());
            let entry = ("edit".to_string(), cid.clone(), json!({"message_id": mid, "content": content}));
            st.bots.get_mut(&token).expect("checked").actions.push(entry);
            json_reply(200, &json!({"id": mid, "channel_id": cid, "content": content}), &[])
        }
        _ => error(404, 0, "404: Not Found"),
    }
}

fn create_message(st: &mut State, token: &str, channel_id: &str, body: &[u8]) -> Reply {
    let Ok(p) = serde_json::from_slice::<Value>(body) else {
        return error(400, 50109, "The request body contains invalid JSON.");
    };
    let Some(channel) = st.channels.get(channel_id) else { return error(404, 10003, "Unknown Channel") };
    let content = p["content"].as_str().unwrap_or_default();
    if content.is_empty() {
        return error(400, 50006, "Cannot send an empty message");
    }
    if content.chars().count() > 2000 {
        return json_reply(
            400,
            &json!({"code": 50035, "message": "Invalid Form Body",
            "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}}),
            &[],
        );
    }
    if let Some(r) = p["message_reference"]["message_id"].as_str() {
        if !channel.messages.contains(r) && p["message_reference"]["fail_if_not_exists"] != false {
            return error(400, 50035, "Invalid Form Body: Unknown message");
        }
    }
    let guild = channel.guild_id.clone();
    let bot = st.bots.get_mut(token).expect("checked");
    let headers = |remaining: u32| {
        vec![
            ("X-RateLimit-Limit", "5".to_string()),
            ("X-RateLimit-Remaining", remaining.to_string()),
            ("X-RateLimit-Reset-After", "1.0".to_string()),
            ("X-RateLimit-Bucket", "fake-bucket-create-message".to_string()),
        ]
    };
    if let Some(wait) = bot.faults.pop_front() {
        let mut h = headers(0);
        h.push(("Retry-After", format!("{}", wait.ceil() as u64)));
        h.push(("X-RateLimit-Scope", "user".to_string()));
        return json_reply(
            429,
            &json!({"message": "You are being rate limited.", "retry_after": wait, "global": false}),
            &h,
        );
    }
    bot.sent.push(json!({"channel_id": channel_id, "body": p}));
    let author = json!({"id": bot.user_id, "username": bot.username, "bot": true});
    let id = snowflake(st);
    st.bot_messages.insert(id.clone());
    if let Some(c) = st.channels.get_mut(channel_id) {
        c.messages.insert(id.clone());
    }
    let mut m = json!({"id": id, "type": 0, "channel_id": channel_id, "content": content, "author": author,
        "mentions": [], "mention_roles": [], "timestamp": "2026-01-01T12:00:01.000000+00:00", "attachments": [], "embeds": []});
    if let Some(g) = guild {
        m["guild_id"] = json!(g);
        m["member"] = json!({"roles": []});
    }
    // Discord echoes the bot's own message over the gateway.
    dispatch(st, token, "MESSAGE_CREATE", m.clone());
    json_reply(200, &m, &headers(4))
}

/// One gateway connection: HELLO, then IDENTIFY or RESUME, heartbeats, dispatches.
async fn gateway(state: Arc<Mutex<State>>, ws: wire::WebSocket) {
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Frame>();
    let interval = lock(&state).heartbeat_interval;
    let _ = tx
        .send(Frame::text(json!({"op": 10, "d": {"heartbeat_interval": interval}, "s": null, "t": null}).to_string()));
    let writer = tokio::spawn(async move {
        while let Some(f) = rx.recv().await {
            let close = matches!(f, Frame::Close(_));
            if sink.send(f).await.is_err() || close {
                break;
            }
        }
    });
    let close = |code: u16, reason: &str| {
        Frame::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.to_string().into() }))
    };
    let mut token: Option<String> = None;
    // Two missed intervals and the gateway gives up on the client.
    let grace = Duration::from_millis(interval * 2);
    loop {
        let frame = match tokio::time::timeout(grace, source.next()).await {
            Err(_) => {
                let _ = tx.send(close(4009, "Session timed out"));
                break;
            }
            Ok(Some(Ok(f))) => f,
            Ok(_) => break,
        };
        let Frame::Text(t) = frame else {
            if matches!(frame, Frame::Close(_)) {
                break;
            }
            continue;
        };
        let Ok(p) = serde_json::from_str::<Value>(&t) else {
            let _ = tx.send(close(4002, "Decode error"));
            break;
        };
        let mut st = lock(&state);
        match p["op"].as_i64() {
            Some(1) => {
                if let Some(b) = token.as_ref().and_then(|t| st.bots.get_mut(t)) {
                    b.heartbeats += 1;
                }
                if st.ack_heartbeats {
                    let _ = tx.send(Frame::text(json!({"op": 11}).to_string()));
                }
            }
            Some(2) => {
                let tok = p["d"]["token"].as_str().unwrap_or_default().to_string();
                let intents = p["d"]["intents"].as_u64().unwrap_or(0);
                let Some(bot) = st.bots.get_mut(&tok) else {
                    let _ = tx.send(close(4004, "Authentication failed."));
                    break;
                };
                bot.identifies += 1;
                if intents & !KNOWN_INTENTS != 0 {
                    let _ = tx.send(close(4013, "Invalid intent(s)."));
                    break;
                }
                if intents & PRIVILEGED != 0 && !bot.privileged_enabled {
                    let _ = tx.send(close(4014, "Disallowed intent(s)."));
                    break;
                }
                let session_id = format!("fake-session-{}", bot.identifies);
                let user = json!({"id": bot.user_id, "username": bot.username, "bot": true});
                bot.session =
                    Some(Session { id: session_id.clone(), intents, log: Vec::new(), conn: Some(tx.clone()) });
                token = Some(tok.clone());
                let resume = format!("ws://{}", st.addr.map(|a| a.to_string()).unwrap_or_default());
                let guilds: Vec<Value> = st.guilds.keys().map(|g| json!({"id": g, "unavailable": true})).collect();
                dispatch(
                    &mut st,
                    &tok,
                    "READY",
                    json!({"v": 10, "user": user, "session_id": session_id,
                    "resume_gateway_url": resume, "guilds": guilds, "application": {"id": "1100000000000000001"}}),
                );
                let creates: Vec<Value> = st
                    .guilds
                    .iter()
                    .map(|(g, ids)| {
                        let (threads, channels): (Vec<Value>, Vec<Value>) = ids
                            .iter()
                            .map(|id| {
                                let c = &st.channels[id];
                                json!({"id": id, "type": c.kind, "guild_id": g, "parent_id": c.parent_id})
                            })
                            .partition(|c| c["type"] == 11);
                        json!({"id": g, "channels": channels, "threads": threads, "roles": []})
                    })
                    .collect();
                for g in creates {
                    dispatch(&mut st, &tok, "GUILD_CREATE", g);
                }
            }
            Some(6) => {
                let tok = p["d"]["token"].as_str().unwrap_or_default().to_string();
                let sid = p["d"]["session_id"].as_str().unwrap_or_default();
                let seq = p["d"]["seq"].as_i64().unwrap_or(0);
                let Some(bot) = st.bots.get_mut(&tok) else {
                    let _ = tx.send(close(4004, "Authentication failed."));
                    break;
                };
                match bot.session.as_mut().filter(|s| s.id == sid) {
                    Some(session) => {
                        bot.resumes += 1;
                        session.conn = Some(tx.clone());
                        for (_, f) in session.log.iter().filter(|(s, _)| *s > seq) {
                            let _ = tx.send(Frame::text(f.to_string()));
                        }
                        token = Some(tok.clone());
                        dispatch(&mut st, &tok, "RESUMED", json!({}));
                    }
                    None => {
                        let _ = tx.send(Frame::text(json!({"op": 9, "d": false}).to_string()));
                    }
                }
            }
            _ => {
                let _ = tx.send(close(4001, "Unknown opcode"));
                break;
            }
        }
    }
    // Gone: the session stays for a resume, without a connection.
    if let Some(t) = token {
        if let Some(s) = lock(&state).bots.get_mut(&t).and_then(|b| b.session.as_mut()) {
            if s.conn.as_ref().is_some_and(|c| c.same_channel(&tx)) {
                s.conn = None;
            }
        }
    }
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
}
