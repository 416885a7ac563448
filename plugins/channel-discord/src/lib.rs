//! `discord`: the Discord channel adapter (the Gateway over the host's
//! WebSocket capability, REST for replies).
//!
//! Per account (`channels.discord.accounts.<id>`, one per bot): `token` (the
//! bot token, a secret: the host inserts it in `Authorization: Bot …` and in
//! the IDENTIFY/RESUME frames), `apiBase` (default
//! `https://discord.com/api/v10`; tests point it at a fake), `allowBots`
//! (default false: other bots' messages are ignored; our own always are).
//!
//! Gateway (reference channels §3.1): URL from `GET /gateway/bot`, `HELLO`
//! → heartbeats every `heartbeat_interval` (the first after a random
//! fraction of it), a missing ACK means a zombie connection: close with
//! 4000 and resume. `IDENTIFY` with intents GUILDS | GUILD_MESSAGES |
//! DIRECT_MESSAGES | MESSAGE_CONTENT (37377). The session (`session_id`,
//! last `s`, `resume_gateway_url`) is kept in the account's kv, so a drop,
//! `RECONNECT`, `INVALID_SESSION(true)` or a restart of the gateway resumes
//! and Discord replays what was missed. Close codes 4004/4010–4014 are
//! fatal: the account stops with the reason until the config changes.
//!
//! Mapping (§0.3, §3.6): no `guild_id` → `direct` peer `author.id`; a guild
//! channel → `channel` peer `channel_id`, with `guild_id` and the member's
//! role ids; a thread → its own `channel` peer with the parent channel as
//! parent peer (from THREAD_CREATE / GUILD_CREATE, else `GET
//! /channels/{id}`). Mentions: `mentions[]` or `<@id>`/`<@!id>` outside code,
//! or a reply to the bot. Replies: `POST /channels/{id}/messages` with
//! `allowed_mentions: {parse: []}` (model output never pings anyone),
//! `message_reference` on the first part, split at 2000 characters, 429
//! honoured with `retry_after`.
//!
//! Files in: a message's `attachments` (a voice message by its flag, else
//! by `content_type`), resolved to their CDN URL (no credentials: Discord
//! signs the URL). Files out: one `POST …/messages` per file, multipart
//! (`payload_json` + `files[0]`, 10 MiB). Typing (`POST …/typing`),
//! reactions (`PUT …/reactions/{emoji}/@me`) and edits (`PATCH
//! …/messages/{id}`) are declared in `describe`.
//!
//! Must not: hold the bot token (only `{{secret:token}}`), route or dedupe messages (the host
//! does), or checkpoint a sequence before the host journaled what it covers.

use std::cell::RefCell;
use std::collections::HashMap;

use chela_channel_sdk::bindings::plugin::websocket::{Connection, Message};
use chela_channel_sdk::serde_json::{self, json, Value};
use chela_channel_sdk::{
    base_url, deliver_parts, export_channel, http, kv, log, monotonic_ms, multipart, parse_settings, random_fraction,
    respond, secrets, AttachmentKind, Channel, ChannelInfo, Delivery, Download, Features, HttpRequest,
    InboundAttachment, InboundEvent, MessageRef, OutboundMessage, PartError, Peer, PeerKind, WebhookOutcome,
};

/// What a bot may upload per file without boosts (10 MiB).
const UPLOAD_LIMIT: u64 = 10 * 1024 * 1024;
/// Discord's flag on a voice message.
const IS_VOICE_MESSAGE: u64 = 1 << 13;

/// The account settings this adapter reads (`channel-settings`), then its credentials.
const SETTINGS: &[&str] = &["apiBase", "allowBots", "guilds"];
const SECRET_SETTINGS: &[&str] = &["token"];

const TEXT_LIMIT: u32 = 2000;
/// GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES | MESSAGE_CONTENT.
const INTENTS: u64 = 1 | 1 << 9 | 1 << 12 | 1 << 15;
/// How long one `poll` listens (the instance serves sends between polls).
const LISTEN_MS: u64 = 250;
const USER_AGENT: &str =
    concat!("DiscordBot (https://github.com/chela-gateway/chela, ", env!("CARGO_PKG_VERSION"), ")");
/// Close codes after which reconnecting cannot help.
const FATAL: [(u16, &str); 6] = [
    (4004, "authentication failed: check `token`"),
    (4010, "invalid shard"),
    (4011, "sharding required"),
    (4012, "invalid API version"),
    (4013, "invalid intents"),
    (
        4014,
        "disallowed intents: enable MESSAGE CONTENT INTENT in the Developer Portal (Bot → Privileged Gateway Intents)",
    ),
];

#[derive(Clone)]
struct Account {
    api: String,
    allow_bots: bool,
}

/// What a resume needs; kept in kv across restarts.
#[derive(Clone, Default)]
struct Session {
    id: String,
    seq: Option<i64>,
    resume_url: String,
    bot_user_id: String,
}

struct Live {
    conn: Connection,
    interval_ms: u64,
    next_beat_ms: u64,
    awaiting_ack: bool,
}

thread_local! {
    static ACCOUNTS: RefCell<HashMap<String, Account>> = RefCell::new(HashMap::new());
    static LIVE: RefCell<HashMap<String, Live>> = RefCell::new(HashMap::new());
    /// Why an account stopped for good (a fatal close code).
    static STOPPED: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
    /// Channel id → parent channel id (threads) or `None` (not a thread).
    static PARENTS: RefCell<HashMap<String, Option<String>>> = RefCell::new(HashMap::new());
    /// Per account: the session after a batch of messages, checkpointed to kv
    /// on the next poll (once the host has journaled the batch).
    static PENDING_SESSION: RefCell<HashMap<String, Session>> = RefCell::new(HashMap::new());
}

fn account(id: &str) -> Result<Account, String> {
    ACCOUNTS.with(|a| a.borrow().get(id).cloned()).ok_or_else(|| format!("account `{id}` is not configured"))
}

fn load_session() -> Session {
    let v: Value = kv::get("session").and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null);
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    Session { id: s("id"), seq: v["seq"].as_i64(), resume_url: s("resume_url"), bot_user_id: s("bot_user_id") }
}

fn save_session(s: &Session) {
    let v = json!({"id": s.id, "seq": s.seq, "resume_url": s.resume_url, "bot_user_id": s.bot_user_id});
    if let Err(e) = kv::set("session", v.to_string().as_bytes()) {
        log::warn(&format!("cannot keep the gateway session: {e}"));
    }
}

/// A REST failure: Discord's `{code, message}`, or a 429's wait.
enum RestError {
    Discord(String),
    RateLimited(u64),
}

fn rest(acct: &Account, method: &str, path: &str, body: Option<&Value>) -> Result<Value, RestError> {
    let bytes = body.map(|b| b.to_string().into_bytes());
    rest_raw(acct, method, path, "application/json", bytes.as_deref())
}

fn rest_raw(
    acct: &Account,
    method: &str,
    path: &str,
    content_type: &str,
    body: Option<&[u8]>,
) -> Result<Value, RestError> {
    let url = format!("{}{path}", acct.api);
    let headers =
        [("authorization", "Bot {{secret:token}}"), ("user-agent", USER_AGENT), ("content-type", content_type)];
    let resp = http::request(method, &url, &headers, body).map_err(RestError::Discord)?;
    let v: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    if resp.status == 429 {
        let header = resp
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse::<f64>().ok());
        let secs = v["retry_after"].as_f64().or(header).unwrap_or(1.0);
        return Err(RestError::RateLimited((secs * 1000.0).ceil() as u64));
    }
    if (200..300).contains(&resp.status) {
        return Ok(v);
    }
    Err(RestError::Discord(format!(
        "{method} {path}: HTTP {} code {}: {}",
        resp.status,
        v["code"],
        v["message"].as_str().unwrap_or("no message")
    )))
}

fn rest_text(e: RestError) -> String {
    match e {
        RestError::Discord(m) => m,
        RestError::RateLimited(ms) => format!("rate limited (retry after {ms} ms)"),
    }
}

fn send_frame(account_id: &str, payload: &Value) -> Result<(), String> {
    LIVE.with(|l| match l.borrow().get(account_id) {
        Some(live) => live.conn.send(&Message::Text(payload.to_string())),
        None => Err("not connected".into()),
    })
}

/// Drops the connection; `code` other than 1000/1001 keeps the session resumable.
fn disconnect(account_id: &str, code: u16, reason: &str) {
    if let Some(live) = LIVE.with(|l| l.borrow_mut().remove(account_id)) {
        live.conn.close(code, reason);
    }
}

fn connect(account_id: &str, acct: &Account) -> Result<(), String> {
    let session = load_session();
    let base = if !session.id.is_empty() && !session.resume_url.is_empty() {
        session.resume_url.clone()
    } else {
        let info = rest(acct, "GET", "/gateway/bot", None).map_err(rest_text)?;
        info["url"].as_str().ok_or("GET /gateway/bot returned no url")?.to_string()
    };
    let url = format!("{}/?v=10&encoding=json", base.trim_end_matches('/'));
    let conn = match Connection::connect(&url, &[]) {
        Ok(c) => c,
        Err(e) if !session.id.is_empty() => {
            // The resume host is gone: identify anew next time.
            save_session(&Session::default());
            return Err(format!("cannot resume at {base}: {e}"));
        }
        Err(e) => return Err(e),
    };
    LIVE.with(|l| {
        l.borrow_mut()
            .insert(account_id.to_string(), Live { conn, interval_ms: 0, next_beat_ms: 0, awaiting_ack: false })
    });
    Ok(())
}

/// Heartbeats when due; a beat without an ACK since the last one is a zombie connection.
fn heartbeat(account_id: &str, seq: Option<i64>) -> Result<(), String> {
    let now = monotonic_ms();
    let due = LIVE.with(|l| {
        l.borrow().get(account_id).map(|live| live.interval_ms > 0 && now >= live.next_beat_ms).unwrap_or(false)
    });
    if !due {
        return Ok(());
    }
    let zombie = LIVE.with(|l| l.borrow().get(account_id).is_some_and(|live| live.awaiting_ack));
    if zombie {
        disconnect(account_id, 4000, "no heartbeat ACK");
        return Err("no heartbeat ACK from the gateway: reconnecting to resume".into());
    }
    send_frame(account_id, &json!({"op": 1, "d": seq}))?;
    LIVE.with(|l| {
        if let Some(live) = l.borrow_mut().get_mut(account_id) {
            live.awaiting_ack = true;
            live.next_beat_ms = now + live.interval_ms;
        }
    });
    Ok(())
}

/// The parent channel of a thread, `None` for other channels (cached).
fn parent_of(acct: &Account, channel_id: &str) -> Option<String> {
    if let Some(p) = PARENTS.with(|p| p.borrow().get(channel_id).cloned()) {
        return p;
    }
    let parent = match rest(acct, "GET", &format!("/channels/{channel_id}"), None) {
        Ok(c) if matches!(c["type"].as_i64(), Some(10..=12)) => c["parent_id"].as_str().map(str::to_string),
        Ok(_) => None,
        Err(e) => {
            log::warn(&format!("cannot look up channel {channel_id}: {}", rest_text(e)));
            return None; // not cached: asked again next time
        }
    };
    PARENTS.with(|p| p.borrow_mut().insert(channel_id.to_string(), parent.clone()));
    parent
}

fn remember_channels(list: &Value) {
    for c in list.as_array().into_iter().flatten() {
        let (Some(id), kind) = (c["id"].as_str(), c["type"].as_i64()) else { continue };
        let parent = matches!(kind, Some(10..=12)).then(|| c["parent_id"].as_str().map(str::to_string)).flatten();
        PARENTS.with(|p| p.borrow_mut().insert(id.to_string(), parent));
    }
}

/// `<@id>` or `<@!id>` outside code spans and blocks.
fn text_mentions(content: &str, bot: &str) -> bool {
    let mut outside = String::new();
    for (i, part) in content.split("```").enumerate() {
        if i % 2 == 0 {
            for (j, p) in part.split('`').enumerate() {
                if j % 2 == 0 {
                    outside.push_str(p);
                }
            }
        }
    }
    outside.contains(&format!("<@{bot}>")) || outside.contains(&format!("<@!{bot}>"))
}

fn to_event(account_id: &str, acct: &Account, bot: &str, d: &Value) -> Option<InboundEvent> {
    let author = &d["author"];
    let author_id = author["id"].as_str()?;
    if author_id == bot || (author["bot"] == true && !acct.allow_bots) || d["webhook_id"].is_string() {
        return None; // our own message, another bot, a webhook
    }
    if !matches!(d["type"].as_i64(), Some(0) | Some(19) | None) {
        return None; // joins, pins, boosts…
    }
    let content = d["content"].as_str().unwrap_or_default();
    let attachments = attachments(d);
    if content.trim().is_empty() && attachments.is_empty() {
        return None; // content withheld (no MESSAGE_CONTENT), or nothing to read
    }
    let channel_id = d["channel_id"].as_str()?;
    let guild = d["guild_id"].as_str();
    let (peer, parent) = match guild {
        None => {
            let _ = kv::set(&format!("dm:{author_id}"), channel_id.as_bytes());
            (Peer { kind: PeerKind::Direct, id: author_id.to_string() }, None)
        }
        Some(_) => (
            Peer { kind: PeerKind::Channel, id: channel_id.to_string() },
            parent_of(acct, channel_id).map(|p| Peer { kind: PeerKind::Channel, id: p }),
        ),
    };
    let mentions_bot = d["mentions"].as_array().into_iter().flatten().any(|m| m["id"].as_str() == Some(bot))
        || text_mentions(content, bot)
        || d["referenced_message"]["author"]["id"].as_str() == Some(bot);
    Some(InboundEvent {
        channel: "discord".into(),
        account_id: account_id.to_string(),
        peer,
        parent_peer: parent,
        guild_id: guild.map(str::to_string),
        team_id: None,
        member_role_ids: d["member"]["roles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect(),
        thread_id: None,
        sender_id: author_id.to_string(),
        sender_name: author["global_name"].as_str().or(author["username"].as_str()).map(str::to_string),
        message_id: d["id"].as_str()?.to_string(),
        text: content.to_string(),
        mentions_bot,
        reply_to_message_id: d["message_reference"]["message_id"].as_str().map(str::to_string),
        raw: d.to_string(),
        attachments,
        sender_is_bot: author["bot"] == true,
    })
}

/// Reads and handles what the gateway sent for up to `LISTEN_MS`; returns the messages.
///
/// The sequence checkpoint that covers messages is written on the *next*
/// poll: the host polls again only after it journaled them, so a crash
/// before that resumes from the earlier sequence, Discord replays the
/// batch, and the host drops what it already holds.
fn pump(account_id: &str, acct: &Account) -> Result<Vec<InboundEvent>, String> {
    let mut session = match PENDING_SESSION.with(|p| p.borrow_mut().remove(account_id)) {
        Some(pending) => {
            save_session(&pending);
            pending
        }
        None => load_session(),
    };
    let start_seq = session.seq;
    let mut events = Vec::new();
    let started = monotonic_ms();
    let result = loop {
        if let Err(e) = heartbeat(account_id, session.seq) {
            break Err(e);
        }
        let text = match next_frame(account_id, started, events.is_empty()) {
            Frame::Text(t) => t,
            Frame::Nothing => continue,
            Frame::End => break Ok(()),
            Frame::Lost(e) => break Err(e),
            Frame::Closed(code, reason) => break on_close(account_id, code, &reason, &mut session),
        };
        let Ok(p) = serde_json::from_str::<Value>(&text) else {
            log::warn("the gateway sent a frame that is not JSON; ignored");
            continue;
        };
        if let Some(s) = p["s"].as_i64() {
            session.seq = Some(s);
        }
        if let Some(done) = on_payload(account_id, acct, &p, &mut session, &mut events) {
            break done;
        }
    };
    if !events.is_empty() {
        PENDING_SESSION.with(|p| p.borrow_mut().insert(account_id.to_string(), session));
    } else if session.seq != start_seq || result.is_ok() {
        save_session(&session);
    }
    match result {
        // Messages already read are handed over even when the connection broke after them.
        Err(e) if !events.is_empty() => {
            log::warn(&e);
            Ok(events)
        }
        r => r.map(|()| events),
    }
}

/// One read from the gateway connection.
enum Frame {
    Text(String),
    /// Nothing yet (or a binary frame): keep listening.
    Nothing,
    /// The listening window is over (or there is no connection).
    End,
    Lost(String),
    Closed(u16, String),
}

/// Waits for the next frame: until the listening window or the next
/// heartbeat is due, and not at all once messages are in hand.
fn next_frame(account_id: &str, started: u64, nothing_yet: bool) -> Frame {
    let now = monotonic_ms();
    let (listen_left, beat_left) = LIVE.with(|l| {
        let l = l.borrow();
        let live = l.get(account_id);
        let beat = live.filter(|x| x.interval_ms > 0).map(|x| x.next_beat_ms.saturating_sub(now)).unwrap_or(LISTEN_MS);
        ((started + LISTEN_MS).saturating_sub(now), beat)
    });
    let wait = if nothing_yet { listen_left.min(beat_left) } else { 0 };
    let next = LIVE.with(|l| l.borrow().get(account_id).map(|live| live.conn.receive(wait as u32)));
    match next {
        None => Frame::End,
        Some(Ok(None)) if wait == 0 || monotonic_ms() >= started + LISTEN_MS => Frame::End,
        Some(Ok(None)) | Some(Ok(Some(Message::Binary(_)))) => Frame::Nothing,
        Some(Ok(Some(Message::Text(t)))) => Frame::Text(t),
        Some(Ok(Some(Message::Close((code, reason))))) => Frame::Closed(code, reason),
        Some(Err(e)) => {
            disconnect(account_id, 4000, "error");
            Frame::Lost(format!("gateway connection lost: {e}"))
        }
    }
}

/// Discord closed the connection: stop for good on a fatal code, else
/// reconnect on the next poll (identifying anew when the session is gone).
fn on_close(account_id: &str, code: u16, reason: &str, session: &mut Session) -> Result<(), String> {
    LIVE.with(|l| l.borrow_mut().remove(account_id));
    if let Some((_, why)) = FATAL.iter().find(|(c, _)| *c == code) {
        let msg = format!("Discord closed the gateway with {code} ({reason}): {why}");
        STOPPED.with(|s| s.borrow_mut().insert(account_id.to_string(), msg.clone()));
        return Err(msg);
    }
    if matches!(code, 4007 | 4009 | 1000 | 1001) {
        forget_session(session);
    }
    log::info(&format!("gateway closed ({code} {reason}); reconnecting"));
    Ok(())
}

/// A new session identifies anew; the bot's own id is kept.
fn forget_session(session: &mut Session) {
    *session = Session { bot_user_id: std::mem::take(&mut session.bot_user_id), ..Session::default() };
}

/// Handles one gateway payload by opcode; `Some` ends this pump.
fn on_payload(
    account_id: &str,
    acct: &Account,
    p: &Value,
    session: &mut Session,
    events: &mut Vec<InboundEvent>,
) -> Option<Result<(), String>> {
    match p["op"].as_i64().unwrap_or(-1) {
        10 => return hello(account_id, p["d"]["heartbeat_interval"].as_u64(), session).err().map(Err),
        11 => LIVE.with(|l| {
            if let Some(live) = l.borrow_mut().get_mut(account_id) {
                live.awaiting_ack = false;
            }
        }),
        1 => return send_frame(account_id, &json!({"op": 1, "d": session.seq})).err().map(Err),
        7 => {
            disconnect(account_id, 4000, "reconnect requested");
            return Some(Ok(()));
        }
        9 => {
            if p["d"] != true {
                forget_session(session);
            }
            disconnect(account_id, 4000, "invalid session");
            return Some(Ok(()));
        }
        0 => dispatch(account_id, acct, p["t"].as_str().unwrap_or_default(), &p["d"], session, events),
        _ => {}
    }
    None
}

/// Hello: start heartbeating (the first beat after a random fraction of the
/// interval) and identify, or resume the session we have.
fn hello(account_id: &str, interval: Option<u64>, session: &Session) -> Result<(), String> {
    let interval = interval.unwrap_or(41_250).max(100);
    let first = (interval as f64 * random_fraction()) as u64;
    LIVE.with(|l| {
        if let Some(live) = l.borrow_mut().get_mut(account_id) {
            live.interval_ms = interval;
            live.next_beat_ms = monotonic_ms() + first;
        }
    });
    let login = if session.id.is_empty() {
        json!({"op": 2, "d": {"token": "{{secret:token}}", "intents": INTENTS,
            "properties": {"os": "wasi", "browser": "chela", "device": "chela"}}})
    } else {
        json!({"op": 6, "d": {"token": "{{secret:token}}", "session_id": session.id, "seq": session.seq}})
    };
    send_frame(account_id, &login)
}

/// A dispatch (op 0) event: session bookkeeping, the channel cache, messages.
fn dispatch(
    account_id: &str,
    acct: &Account,
    event: &str,
    d: &Value,
    session: &mut Session,
    events: &mut Vec<InboundEvent>,
) {
    match event {
        "READY" => {
            session.id = d["session_id"].as_str().unwrap_or_default().to_string();
            session.resume_url = d["resume_gateway_url"].as_str().unwrap_or_default().to_string();
            session.bot_user_id = d["user"]["id"].as_str().unwrap_or_default().to_string();
            log::info(&format!("discord account `{account_id}`: ready as {}", d["user"]["username"]));
        }
        "RESUMED" => log::info(&format!("discord account `{account_id}`: resumed")),
        "GUILD_CREATE" => {
            remember_channels(&d["channels"]);
            remember_channels(&d["threads"]);
        }
        "THREAD_CREATE" | "CHANNEL_CREATE" | "THREAD_UPDATE" => remember_channels(&json!([d])),
        "THREAD_LIST_SYNC" => remember_channels(&d["threads"]),
        "MESSAGE_CREATE" => events.extend(to_event(account_id, acct, &session.bot_user_id, d)),
        _ => {}
    }
}

/// The channel a reply goes to: a user's DM channel for a direct peer.
/// A message's files: a voice message by its flag, the rest by content type.
fn attachments(d: &Value) -> Vec<InboundAttachment> {
    let voice = d["flags"].as_u64().is_some_and(|f| f & IS_VOICE_MESSAGE != 0);
    let list = d["attachments"].as_array().into_iter().flatten();
    list.filter_map(|a| {
        let mime = a["content_type"].as_str().map(|m| m.split(';').next().unwrap_or(m).trim().to_string());
        let kind = match mime.as_deref().unwrap_or_default() {
            _ if voice => AttachmentKind::Voice,
            m => chela_channel_sdk::files::kind_for_mime(m),
        };
        Some(InboundAttachment {
            kind,
            mime_type: mime,
            size: a["size"].as_u64(),
            file_name: a["filename"].as_str().map(str::to_string),
            caption: a["description"].as_str().map(str::to_string),
            reference: a["url"].as_str()?.to_string(),
        })
    })
    .collect()
}

fn reply_channel(acct: &Account, peer: &Peer) -> Result<String, String> {
    if peer.kind != PeerKind::Direct {
        return Ok(peer.id.clone());
    }
    if let Some(c) = kv::get(&format!("dm:{}", peer.id)).and_then(|v| String::from_utf8(v).ok()) {
        return Ok(c);
    }
    let dm = rest(acct, "POST", "/users/@me/channels", Some(&json!({"recipient_id": peer.id}))).map_err(rest_text)?;
    let id = dm["id"].as_str().ok_or("POST /users/@me/channels returned no id")?.to_string();
    let _ = kv::set(&format!("dm:{}", peer.id), id.as_bytes());
    Ok(id)
}

struct Discord;

impl Channel for Discord {
    fn describe() -> ChannelInfo {
        ChannelInfo {
            id: "discord".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            text_limit: TEXT_LIMIT,
            supports_threads: true,
            http_hosts: vec![
                "discord.com".into(),
                "gateway.discord.gg".into(),
                "*.discord.gg".into(),
                "cdn.discordapp.com".into(),
                "media.discordapp.net".into(),
            ],
            needs_polling: true,
            features: Features::EDIT
                | Features::TYPING
                | Features::REACT
                | Features::ATTACHMENTS_IN
                | Features::ATTACHMENTS_OUT,
            upload_limit: UPLOAD_LIMIT,
        }
    }

    fn configure_account(account_id: String, settings: String) -> Result<(), String> {
        // Started over: a batch not yet checkpointed comes again (the host drops repeats).
        PENDING_SESSION.with(|p| p.borrow_mut().remove(&account_id));
        // `guilds` is OpenClaw's per-guild Discord settings, accepted for compatibility.
        let s = parse_settings(&settings, SETTINGS, SECRET_SETTINGS)?;
        if !secrets::exists("token") {
            return Err("`token` is required (Developer Portal → your app → Bot → Reset Token)".into());
        }
        let api = base_url(&s, "apiBase", "https://discord.com/api/v10")?;
        let allow_bots = s["allowBots"].as_bool().unwrap_or(false);
        // Configured again in this instance: the settings changed, so start the
        // account over. A normal close (1000) ends the gateway session and the
        // stored one is dropped: the (maybe new) token identifies afresh. A
        // fresh instance (a restart) keeps the stored session and resumes.
        if ACCOUNTS.with(|a| a.borrow().contains_key(&account_id)) {
            disconnect(&account_id, 1000, "reconfigured");
            if let Err(e) = kv::delete("session") {
                log::warn(&format!("cannot drop the gateway session: {e}"));
            }
        }
        STOPPED.with(|st| st.borrow_mut().remove(&account_id));
        ACCOUNTS.with(|a| a.borrow_mut().insert(account_id, Account { api, allow_bots }));
        Ok(())
    }

    fn remove_account(account_id: String) {
        PENDING_SESSION.with(|p| p.borrow_mut().remove(&account_id));
        disconnect(&account_id, 1000, "account removed");
        STOPPED.with(|st| st.borrow_mut().remove(&account_id));
        ACCOUNTS.with(|a| a.borrow_mut().remove(&account_id));
    }

    fn handle_webhook(_account_id: String, _request: HttpRequest) -> WebhookOutcome {
        WebhookOutcome {
            response: respond(404, &json!({"error": "Discord messages arrive over the gateway; no webhook here"})),
            events: vec![],
        }
    }

    fn poll(account_id: String) -> Result<Vec<InboundEvent>, String> {
        let acct = account(&account_id)?;
        if let Some(why) = STOPPED.with(|s| s.borrow().get(&account_id).cloned()) {
            // The account stays down until reconfigured; the host backs off between polls.
            return Err(why);
        }
        if LIVE.with(|l| !l.borrow().contains_key(&account_id)) {
            connect(&account_id, &acct)?;
        }
        pump(&account_id, &acct)
    }

    fn edit(message: MessageRef, text: String) -> Delivery {
        let edit = || -> Result<Option<String>, RestError> {
            let acct = account(&message.account_id).map_err(RestError::Discord)?;
            let channel = reply_channel(&acct, &message.peer).map_err(RestError::Discord)?;
            let content: String = text.chars().take(TEXT_LIMIT as usize).collect();
            let path = format!("/channels/{channel}/messages/{}", message.message_id);
            let m = rest(&acct, "PATCH", &path, Some(&json!({"content": content, "allowed_mentions": {"parse": []}})))?;
            Ok(m["id"].as_str().map(str::to_string))
        };
        match edit() {
            Ok(id) => Delivery::Sent(id.into_iter().collect()),
            Err(RestError::RateLimited(ms)) => Delivery::RetryAfter(ms),
            Err(e) => Delivery::Failed(format!("edit message: {}", rest_text(e))),
        }
    }

    fn typing(account_id: String, peer: Peer, _thread_id: Option<String>) -> Result<(), String> {
        let acct = account(&account_id)?;
        let channel = reply_channel(&acct, &peer)?;
        rest(&acct, "POST", &format!("/channels/{channel}/typing"), None).map(|_| ()).map_err(rest_text)
    }

    fn react(message: MessageRef, emoji: String) -> Result<(), String> {
        let acct = account(&message.account_id)?;
        let channel = reply_channel(&acct, &message.peer)?;
        let path = format!(
            "/channels/{channel}/messages/{}/reactions/{}/@me",
            message.message_id,
            chela_channel_sdk::percent_encode(&emoji)
        );
        rest(&acct, "PUT", &path, None).map(|_| ()).map_err(rest_text)
    }

    fn resolve_attachment(account_id: String, reference: String) -> Result<Download, String> {
        account(&account_id)?;
        // The CDN URL is the reference; Discord signs it, no token goes along.
        Ok(Download { url: reference, headers: vec![], size: None, file_name: None, mime_type: None })
    }

    fn send(message: OutboundMessage) -> Delivery {
        let acct = match account(&message.account_id) {
            Ok(a) => a,
            Err(e) => return Delivery::Failed(e),
        };
        let channel = match reply_channel(&acct, &message.peer) {
            Ok(c) => c,
            Err(e) => return Delivery::Failed(format!("cannot open the DM: {e}")),
        };
        let chela_channel_sdk::files::Parts { parts, texts } =
            chela_channel_sdk::files::reply_parts(&message, TEXT_LIMIT as usize);
        deliver_parts(&parts, |i, part| {
            if i >= texts {
                let file = &message.attachments[i - texts];
                let mut payload = json!({"allowed_mentions": {"parse": []},
                                         "attachments": [{"id": 0, "filename": file.file_name}]});
                if let (0, Some(r)) = (i, &message.reply_to_message_id) {
                    payload["message_reference"] = json!({"message_id": r, "fail_if_not_exists": false});
                }
                let form = multipart::form(
                    &[("payload_json", payload.to_string())],
                    ("files[0]", &file.file_name, &file.mime_type, &file.data),
                );
                let path = format!("/channels/{channel}/messages");
                return match rest_raw(&acct, "POST", &path, &form.content_type, Some(&form.body)) {
                    Ok(m) => Ok(m["id"].as_str().map(str::to_string)),
                    Err(RestError::RateLimited(ms)) => Err(PartError::RateLimited(ms)),
                    Err(e) => Err(PartError::Failed(format!("upload: {}", rest_text(e)))),
                };
            }
            let mut body = json!({"content": part, "allowed_mentions": {"parse": [], "replied_user": false}});
            if let (0, Some(r)) = (i, &message.reply_to_message_id) {
                body["message_reference"] = json!({"message_id": r, "fail_if_not_exists": false});
            }
            match rest(&acct, "POST", &format!("/channels/{channel}/messages"), Some(&body)) {
                Ok(m) => Ok(m["id"].as_str().map(str::to_string)),
                Err(RestError::RateLimited(ms)) => Err(PartError::RateLimited(ms)),
                Err(e) => Err(PartError::Failed(format!("create message: {}", rest_text(e)))),
            }
        })
    }
}

impl chela_channel_sdk::Probe for Discord {
    /// `GET /users/@me` with the bot token.
    fn probe(account_id: String) -> Result<String, String> {
        let acct = account(&account_id)?;
        let me = rest(&acct, "GET", "/users/@me", None).map_err(rest_text)?;
        Ok(format!("bot {} (id {})", me["username"].as_str().unwrap_or("?"), me["id"].as_str().unwrap_or("?")))
    }
}

impl chela_channel_sdk::Settings for Discord {
    fn settings() -> Vec<String> {
        SETTINGS.iter().chain(SECRET_SETTINGS).map(|s| s.to_string()).collect()
    }
}

export_channel!(Discord);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_outside_code_only() {
        assert!(text_mentions("hey <@42> look", "42"));
        assert!(text_mentions("hey <@!42>", "42"));
        assert!(!text_mentions("`<@42>` is how you ping", "42"));
        assert!(!text_mentions("```\n<@42>\n```", "42"));
        assert!(!text_mentions("<@420>", "42"));
    }
}
