//! `slack`: the Slack channel adapter (Events API over HTTP, or Socket Mode
//! over the host's WebSocket capability).
//!
//! Per account (`channels.slack.accounts.<id>`, one per app installation):
//! `botToken` (`xoxb-…`, a secret the host inserts), `mode`: `socket`
//! (default, as OpenClaw: needs `appToken`, `xapp-…` with
//! `connections:write`) or `http` (needs `signingSecret`; Slack POSTs to
//! `/channels/slack/<account>/`), `apiBase` (default
//! `https://slack.com/api`; tests point it at a fake), `replyToMode`: `off`
//! (default: top-level messages are answered top-level), `first` or `all`
//! (answer in a thread under the message).
//!
//! Events API: `v0` HMAC of `v0:<timestamp>:<raw body>` checked by the host
//! against `signingSecret`, at most 5 minutes old; `url_verification`
//! answered with the challenge; every request answered at once (the turn runs
//! after). Socket Mode: `apps.connections.open` → WebSocket → `hello`; each
//! envelope acknowledged with its `envelope_id` on the next poll, once the
//! host has journaled what it carried; `disconnect` → a fresh connection.
//! Both: retries, redeliveries and the `message` + `app_mention` pair of one
//! message are dropped by the host's journal (same `channel` and `ts`). Mapping (reference channels §0.3, §2.6): `im` → `direct`
//! peer `event.user`; `mpim` → `group`; `channel`/`group` → `channel`; the
//! thread is `thread_ts`; `team_id` → `teamId`. Mentions: `<@BOT>` in the
//! text, `app_mention`, or a thread the bot started. The bot's own posts are
//! ignored. Replies: `chat.postMessage` with `thread_ts`, `&<>` escaped
//! outside Slack's own `<…>` tokens, split at 4000 characters, 429 honoured
//! with `Retry-After`.
//!
//! Files in: a `file_share` message's `files[]`, downloaded by the host from
//! `url_private_download` with `Authorization: Bearer {{secret:botToken}}`.
//! Files out: `files.getUploadURLExternal` → the bytes to `upload_url` →
//! `files.completeUploadExternal` in the channel and thread. Edits
//! (`chat.update`), reactions (`reactions.add`, the emoji by its Slack name)
//! and the agent's name and emoji on each post (`username`, `icon_emoji`:
//! the app needs `chat:write.customize`) are declared in `describe`; Slack
//! has no typing indicator for bots.
//!
//! Must not: hold a token (only `{{secret:…}}`), route or dedupe messages (the host does), or
//! acknowledge an envelope before the host journaled it.

use std::cell::RefCell;
use std::collections::HashMap;

use chela_channel_sdk::bindings::plugin::websocket::{Connection, Message};
use chela_channel_sdk::serde_json::{self, json, Value};
use chela_channel_sdk::{
    base_url, deliver_parts, export_channel, header, hex_decode, http, kv, log, now_unix_s, parse_settings, respond,
    secrets, AttachmentKind, Channel, ChannelInfo, Delivery, Download, Features, HttpRequest, HttpResponse,
    InboundAttachment, InboundEvent, MessageRef, OutboundMessage, PartError, Peer, PeerKind, WebhookOutcome,
};

/// Slack's names for the emoji agents use most (`reactions.add` and
/// `icon_emoji` take names, not characters).
const EMOJI_NAMES: &[(&str, &str)] = &[
    ("👀", "eyes"),
    ("👍", "+1"),
    ("✅", "white_check_mark"),
    ("🔥", "fire"),
    ("❤️", "heart"),
    ("❤", "heart"),
    ("🎉", "tada"),
    ("🦀", "crab"),
    ("🤔", "thinking_face"),
    ("👌", "ok_hand"),
    ("🙏", "pray"),
    ("🚀", "rocket"),
    ("💯", "100"),
    ("⚡", "zap"),
    ("🔧", "wrench"),
    ("🤖", "robot_face"),
    ("❌", "x"),
    ("😱", "scream"),
    ("✍", "writing_hand"),
    ("✍️", "writing_hand"),
];

/// An emoji as Slack names it: a known character's name, or `:name:` as written.
fn emoji_name(emoji: &str) -> Option<String> {
    let e = emoji.trim();
    if let Some(name) = e.strip_prefix(':').and_then(|n| n.strip_suffix(':')) {
        return Some(name.to_string());
    }
    EMOJI_NAMES.iter().find(|(c, _)| *c == e).map(|(_, n)| n.to_string())
}

/// What a function answers that `describe` does not declare (the host never calls it).
const NOT_DECLARED: &str = "not supported by this adapter";
/// Slack's file size limit (1 GB).
const UPLOAD_LIMIT: u64 = 1024 * 1024 * 1024;

/// The account settings this adapter reads (`channel-settings`), then its credentials.
const SETTINGS: &[&str] = &["mode", "apiBase", "replyToMode", "channels"];
const SECRET_SETTINGS: &[&str] = &["botToken", "appToken", "signingSecret"];

const TEXT_LIMIT: u32 = 4000;
/// Slack's replay window for signed requests.
const MAX_SKEW_S: u64 = 300;
/// How long one `poll` listens on the socket (the instance serves sends between polls).
const LISTEN_MS: u32 = 250;

#[derive(Clone, Copy, PartialEq)]
enum ReplyTo {
    Off,
    First,
    All,
}

#[derive(Clone)]
struct Account {
    api: String,
    socket: bool,
    reply_to: ReplyTo,
}

/// Who the bot is in its workspace (`auth.test`).
#[derive(Clone)]
struct Identity {
    user_id: String,
    bot_id: String,
    team_id: String,
}

thread_local! {
    static ACCOUNTS: RefCell<HashMap<String, Account>> = RefCell::new(HashMap::new());
    static IDENTITIES: RefCell<HashMap<String, Identity>> = RefCell::new(HashMap::new());
    static SOCKETS: RefCell<HashMap<String, Connection>> = RefCell::new(HashMap::new());
    /// Per account: envelopes read and handed to the host, acknowledged on the next poll.
    static PENDING_ACKS: RefCell<HashMap<String, Vec<String>>> = RefCell::new(HashMap::new());
}

fn account(id: &str) -> Result<Account, String> {
    ACCOUNTS.with(|a| a.borrow().get(id).cloned()).ok_or_else(|| format!("account `{id}` is not configured"))
}

/// A Web API failure: Slack's `error` string, or a 429's `Retry-After`.
enum ApiError {
    Slack(String),
    RateLimited(u64),
}

impl ApiError {
    fn text(&self) -> String {
        match self {
            ApiError::Slack(e) => e.clone(),
            ApiError::RateLimited(s) => format!("rate limited (retry after {s} s)"),
        }
    }
}

/// Calls a Web API method with a JSON body and the token named `token`.
fn api(acct: &Account, method: &str, token: &str, body: &Value) -> Result<Value, ApiError> {
    api_body(acct, method, token, "application/json; charset=utf-8", body.to_string().as_bytes())
}

/// Calls a Web API method that takes form arguments (`files.getUploadURLExternal`).
fn api_form(acct: &Account, method: &str, token: &str, args: &[(&str, String)]) -> Result<Value, ApiError> {
    let body: Vec<String> = args.iter().map(|(k, v)| format!("{k}={}", chela_channel_sdk::percent_encode(v))).collect();
    api_body(acct, method, token, "application/x-www-form-urlencoded", body.join("&").as_bytes())
}

fn api_body(acct: &Account, method: &str, token: &str, content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let url = format!("{}/{method}", acct.api);
    let auth = format!("Bearer {{{{secret:{token}}}}}");
    let headers = [("content-type", content_type), ("authorization", auth.as_str())];
    let resp = http::request("POST", &url, &headers, Some(body)).map_err(ApiError::Slack)?;
    if resp.status == 429 {
        let wait = resp
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse().ok())
            .unwrap_or(1);
        return Err(ApiError::RateLimited(wait));
    }
    let v: Value = serde_json::from_slice(&resp.body)
        .map_err(|e| ApiError::Slack(format!("{method}: HTTP {} with a body that is not JSON: {e}", resp.status)))?;
    if v["ok"] == true {
        Ok(v)
    } else {
        Err(ApiError::Slack(format!("{method}: {}", v["error"].as_str().unwrap_or("unknown_error"))))
    }
}

/// The bot's identity, asked once per account.
fn identity(account_id: &str, acct: &Account) -> Result<Identity, String> {
    if let Some(i) = IDENTITIES.with(|m| m.borrow().get(account_id).cloned()) {
        return Ok(i);
    }
    let me = api(acct, "auth.test", "botToken", &json!({})).map_err(|e| e.text())?;
    let s = |k: &str| me[k].as_str().unwrap_or_default().to_string();
    let i = Identity { user_id: s("user_id"), bot_id: s("bot_id"), team_id: s("team_id") };
    IDENTITIES.with(|m| m.borrow_mut().insert(account_id.to_string(), i.clone()));
    Ok(i)
}

/// Slack's text escaping, undone for the agent.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// `&`, `<`, `>` escaped, except inside Slack's own tokens (`<@U…>`, `<#C…>`, `<!here>`, `<https://…|label>`).
fn escape(text: &str) -> String {
    const TOKENS: [&str; 8] = ["@", "#", "!", "mailto:", "tel:", "http://", "https://", "slack://"];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['<', '>', '&']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with('<') {
            if let Some(end) = tail.find('>') {
                let inner = &tail[1..end];
                if !inner.contains(['<', ' ', '\n']) && TOKENS.iter().any(|t| inner.starts_with(t)) {
                    out.push_str(&tail[..=end]);
                    rest = &tail[end + 1..];
                    continue;
                }
            }
            out.push_str("&lt;");
        } else if tail.starts_with('>') {
            out.push_str("&gt;");
        } else {
            out.push_str("&amp;");
        }
        rest = &tail[1..];
    }
    out.push_str(rest);
    out
}

/// One `event_callback` payload → an inbound event (`None`: nothing to route).
fn to_event(account_id: &str, me: &Identity, payload: &Value) -> Option<InboundEvent> {
    if payload["type"] != "event_callback" {
        return None;
    }
    let e = &payload["event"];
    let kind = e["type"].as_str()?;
    if kind != "message" && kind != "app_mention" {
        return None;
    }
    // Edits, deletions, joins, bot posts… are not new messages from a person.
    if !matches!(e["subtype"].as_str(), None | Some("thread_broadcast") | Some("file_share")) {
        return None;
    }
    let user = e["user"].as_str()?;
    if user == me.user_id || (!me.bot_id.is_empty() && e["bot_id"].as_str() == Some(me.bot_id.as_str())) {
        return None; // our own post
    }
    let channel = e["channel"].as_str()?;
    let ts = e["ts"].as_str()?;
    // The other half of a message + app_mention pair has the same channel and
    // `ts`: the host's journal keeps the first of the two.
    let channel_type = e["channel_type"].as_str().unwrap_or(match channel.chars().next() {
        Some('D') => "im",
        Some('G') => "group",
        _ => "channel",
    });
    let peer = match channel_type {
        "im" => {
            // Replies need the DM's channel id; the peer is the user.
            let _ = kv::set(&format!("im:{user}"), channel.as_bytes());
            Peer { kind: PeerKind::Direct, id: user.to_string() }
        }
        "mpim" => Peer { kind: PeerKind::Group, id: channel.to_string() },
        _ => Peer { kind: PeerKind::Channel, id: channel.to_string() },
    };
    let text = unescape(e["text"].as_str().unwrap_or_default());
    let attachments = files(e);
    let thread = e["thread_ts"].as_str().filter(|t| *t != ts);
    let mentions_bot = kind == "app_mention"
        || (!me.user_id.is_empty() && text.contains(&format!("<@{}>", me.user_id)))
        || (thread.is_some() && e["parent_user_id"].as_str() == Some(me.user_id.as_str()));
    Some(InboundEvent {
        channel: "slack".into(),
        account_id: account_id.to_string(),
        peer,
        parent_peer: None,
        guild_id: None,
        team_id: payload["team_id"].as_str().or(e["team"].as_str()).map(str::to_string),
        member_role_ids: vec![],
        thread_id: thread.map(str::to_string),
        sender_id: user.to_string(),
        sender_name: None,
        message_id: ts.to_string(),
        text,
        mentions_bot,
        reply_to_message_id: None,
        raw: payload.to_string(),
        attachments,
        sender_is_bot: e["bot_id"].is_string(),
    })
}

/// An `event_callback` (HTTP body or Socket Mode payload) → events. Retries
/// and redeliveries are the host's to drop: it journals every event before
/// the platform hears of it and dedupes by message (`channel`, `ts`).
/// A message's shared files.
fn files(e: &Value) -> Vec<InboundAttachment> {
    let list = e["files"].as_array().into_iter().flatten();
    list.filter_map(|f| {
        let mime = f["mimetype"].as_str().map(str::to_string);
        let kind = match mime.as_deref().unwrap_or_default() {
            // Slack's voice clips are audio/webm or mp4 "audio" files shown as clips.
            _ if f["subtype"] == "slack_audio" => AttachmentKind::Voice,
            m => chela_channel_sdk::files::kind_for_mime(m),
        };
        Some(InboundAttachment {
            kind,
            mime_type: mime,
            size: f["size"].as_u64(),
            file_name: f["name"].as_str().map(str::to_string),
            caption: f["title"].as_str().filter(|t| Some(*t) != f["name"].as_str()).map(str::to_string),
            reference: f["url_private_download"].as_str().or(f["url_private"].as_str())?.to_string(),
        })
    })
    .collect()
}

fn callback_events(account_id: &str, me: &Identity, payload: &Value) -> Vec<InboundEvent> {
    to_event(account_id, me, payload).into_iter().collect()
}

fn signature_ok(request: &HttpRequest) -> Result<(), &'static str> {
    let ts = header(request, "x-slack-request-timestamp").ok_or("X-Slack-Request-Timestamp is missing")?;
    let ts_n: u64 = ts.trim().parse().map_err(|_| "X-Slack-Request-Timestamp is not a number")?;
    if now_unix_s().abs_diff(ts_n) > MAX_SKEW_S {
        return Err("the request is older than 5 minutes (replay?)");
    }
    let sig = header(request, "x-slack-signature")
        .and_then(|s| s.strip_prefix("v0="))
        .ok_or("X-Slack-Signature is missing")?;
    let sig = hex_decode(sig.trim()).ok_or("X-Slack-Signature is not hex")?;
    let mut base = format!("v0:{}:", ts.trim()).into_bytes();
    base.extend_from_slice(&request.body);
    match secrets::verify_hmac_sha256("signingSecret", &base, &sig) {
        Ok(true) => Ok(()),
        _ => Err("X-Slack-Signature does not match"),
    }
}

/// The account's socket, opened (`apps.connections.open`) if there is none.
fn ensure_socket(account_id: &str, acct: &Account) -> Result<(), String> {
    if SOCKETS.with(|s| s.borrow().contains_key(account_id)) {
        return Ok(());
    }
    let open = api(acct, "apps.connections.open", "appToken", &json!({})).map_err(|e| e.text())?;
    let url = open["url"].as_str().ok_or("apps.connections.open returned no url")?;
    let conn = Connection::connect(url, &[])?;
    SOCKETS.with(|s| s.borrow_mut().insert(account_id.to_string(), conn));
    log::info(&format!("slack account `{account_id}`: Socket Mode connected"));
    Ok(())
}

/// Drops what an account holds in memory: its socket and its identity.
fn forget(account_id: &str) {
    drop_socket(account_id);
    IDENTITIES.with(|m| m.borrow_mut().remove(account_id));
}

fn drop_socket(account_id: &str) {
    if let Some(c) = SOCKETS.with(|s| s.borrow_mut().remove(account_id)) {
        c.close(1000, "reconnecting");
    }
}

/// Reads what the socket has. Envelopes are acknowledged on the *next*
/// read: the host polls again only once it has journaled what this one
/// returned, so an envelope Slack considers delivered is never lost (one
/// not acknowledged is redelivered, and the host drops the repeat).
fn read_socket(account_id: &str, me: &Identity) -> Result<Vec<InboundEvent>, String> {
    let pending = PENDING_ACKS.with(|p| p.borrow_mut().remove(account_id)).unwrap_or_default();
    for id in pending {
        let ack = json!({ "envelope_id": id }).to_string();
        let sent = SOCKETS.with(|s| s.borrow().get(account_id).map(|c| c.send(&Message::Text(ack))));
        if let Some(Err(e)) = sent {
            log::warn(&format!("could not acknowledge envelope {id}: {e} (Slack will redeliver it)"));
        }
    }
    let mut events = Vec::new();
    let mut wait = LISTEN_MS;
    loop {
        let next = SOCKETS.with(|s| s.borrow().get(account_id).map(|c| c.receive(wait)));
        wait = 0; // after the first frame, take only what is already there
        let frame = match next {
            None | Some(Ok(None)) => return Ok(events),
            Some(Ok(Some(f))) => f,
            Some(Err(e)) => {
                drop_socket(account_id);
                return if events.is_empty() { Err(format!("Socket Mode connection lost: {e}")) } else { Ok(events) };
            }
        };
        let text = match frame {
            Message::Text(t) => t,
            Message::Binary(_) => continue,
            Message::Close((code, reason)) => {
                drop_socket(account_id);
                log::info(&format!("Socket Mode closed ({code} {reason}); reconnecting"));
                return Ok(events);
            }
        };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            log::warn("Socket Mode sent a frame that is not JSON; ignored");
            continue;
        };
        match v["type"].as_str().unwrap_or_default() {
            "hello" => {}
            "disconnect" => {
                // `refresh_requested`, `warning`, `link_disabled`…: a new connection (or an error next time).
                log::info(&format!("Socket Mode disconnect: {}", v["reason"]));
                drop_socket(account_id);
                return Ok(events);
            }
            _ => {
                if let Some(id) = v["envelope_id"].as_str() {
                    let id = id.to_string();
                    PENDING_ACKS.with(|p| p.borrow_mut().entry(account_id.to_string()).or_default().push(id));
                }
                if v["type"] == "events_api" {
                    events.extend(callback_events(account_id, me, &v["payload"]));
                }
            }
        }
    }
}

/// The channel a reply goes to: the DM's channel id for a user peer.
fn reply_channel(account_id: &str, acct: &Account, peer: &Peer) -> Result<String, String> {
    if peer.kind != PeerKind::Direct || !peer.id.starts_with('U') && !peer.id.starts_with('W') {
        return Ok(peer.id.clone());
    }
    if let Some(c) = kv::get(&format!("im:{}", peer.id)).and_then(|v| String::from_utf8(v).ok()) {
        return Ok(c);
    }
    let _ = account_id;
    let open = api(acct, "conversations.open", "botToken", &json!({ "users": peer.id })).map_err(|e| e.text())?;
    let id = open["channel"]["id"].as_str().ok_or("conversations.open returned no channel")?.to_string();
    let _ = kv::set(&format!("im:{}", peer.id), id.as_bytes());
    Ok(id)
}

struct Slack;

impl Channel for Slack {
    fn describe() -> ChannelInfo {
        ChannelInfo {
            id: "slack".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            text_limit: TEXT_LIMIT,
            supports_threads: true,
            http_hosts: vec!["slack.com".into(), "*.slack.com".into()],
            needs_polling: true,
            features: Features::EDIT
                | Features::REACT
                | Features::ATTACHMENTS_IN
                | Features::ATTACHMENTS_OUT
                | Features::IDENTITY,
            upload_limit: UPLOAD_LIMIT,
        }
    }

    fn configure_account(account_id: String, settings: String) -> Result<(), String> {
        // `channels` is OpenClaw's per-channel Slack settings, accepted for compatibility.
        let s = parse_settings(&settings, SETTINGS, SECRET_SETTINGS)?;
        if !secrets::exists("botToken") {
            return Err("`botToken` is required (OAuth & Permissions → Bot User OAuth Token, xoxb-…)".into());
        }
        let socket = match s["mode"].as_str().unwrap_or("socket") {
            "socket" if !secrets::exists("appToken") => {
                return Err("mode `socket` needs `appToken` (an app-level xapp- token with connections:write)".into())
            }
            "socket" => true,
            "http" if !secrets::exists("signingSecret") => {
                return Err("mode `http` needs `signingSecret` (Basic Information → Signing Secret)".into())
            }
            "http" => false,
            other => return Err(format!("`mode` must be `socket` or `http`, not `{other}`")),
        };
        let reply_to = match s["replyToMode"].as_str().unwrap_or("off") {
            "off" => ReplyTo::Off,
            "first" => ReplyTo::First,
            "all" => ReplyTo::All,
            other => return Err(format!("`replyToMode` must be `off`, `first` or `all`, not `{other}`")),
        };
        let api = base_url(&s, "apiBase", "https://slack.com/api")?;
        // Settings changed: start the account over (new tokens, maybe another workspace).
        forget(&account_id);
        ACCOUNTS.with(|a| a.borrow_mut().insert(account_id, Account { api, socket, reply_to }));
        Ok(())
    }

    fn remove_account(account_id: String) {
        forget(&account_id);
        ACCOUNTS.with(|a| a.borrow_mut().remove(&account_id));
    }

    fn handle_webhook(account_id: String, request: HttpRequest) -> WebhookOutcome {
        let none = |response: HttpResponse| WebhookOutcome { response, events: vec![] };
        let Ok(acct) = account(&account_id) else { return none(respond(404, &json!({"error": "unknown account"}))) };
        if acct.socket {
            return none(respond(404, &json!({"error": "this account uses Socket Mode"})));
        }
        if request.method != "POST" {
            return none(respond(405, &json!({"error": "POST only"})));
        }
        if let Err(why) = signature_ok(&request) {
            return none(respond(401, &json!({ "error": why })));
        }
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return none(respond(400, &json!({"error": "body is not JSON"})));
        };
        match body["type"].as_str() {
            Some("url_verification") => {
                let challenge = body["challenge"].as_str().unwrap_or_default();
                none(respond(200, &json!({ "challenge": challenge })))
            }
            Some("event_callback") => {
                if !body["event"].is_object() {
                    return none(respond(400, &json!({"error": "event_callback without an event"})));
                }
                let me = match identity(&account_id, &acct) {
                    Ok(i) => i,
                    // Slack retries non-2xx deliveries: ask it to, rather than lose the event.
                    Err(e) => return none(respond(503, &json!({ "error": e }))),
                };
                if body["team_id"].as_str().is_some_and(|t| !me.team_id.is_empty() && t != me.team_id) {
                    log::warn(&format!(
                        "event for team {} on account `{account_id}` (team {}); ignored",
                        body["team_id"], me.team_id
                    ));
                    return none(respond(200, &json!({})));
                }
                WebhookOutcome { response: respond(200, &json!({})), events: callback_events(&account_id, &me, &body) }
            }
            Some(_) => none(respond(200, &json!({}))), // app_rate_limited and the like: nothing to do
            None => none(respond(400, &json!({"error": "not a Slack event (no type)"}))),
        }
    }

    fn poll(account_id: String) -> Result<Vec<InboundEvent>, String> {
        let acct = account(&account_id)?;
        if !acct.socket {
            return Ok(vec![]);
        }
        let me = identity(&account_id, &acct)?;
        ensure_socket(&account_id, &acct)?;
        read_socket(&account_id, &me)
    }

    fn edit(message: MessageRef, text: String) -> Delivery {
        let acct = match account(&message.account_id) {
            Ok(a) => a,
            Err(e) => return Delivery::Failed(e),
        };
        let channel = match reply_channel(&message.account_id, &acct, &message.peer) {
            Ok(c) => c,
            Err(e) => return Delivery::Failed(e),
        };
        let text: String = text.chars().take(TEXT_LIMIT as usize).collect();
        let body = json!({"channel": channel, "ts": message.message_id, "text": escape(&text)});
        match api(&acct, "chat.update", "botToken", &body) {
            Ok(_) => Delivery::Sent(vec![message.message_id]),
            Err(ApiError::RateLimited(s)) => Delivery::RetryAfter(s * 1000),
            Err(e) => Delivery::Failed(format!("chat.update: {}", e.text())),
        }
    }

    fn typing(_account_id: String, _peer: Peer, _thread_id: Option<String>) -> Result<(), String> {
        Err(NOT_DECLARED.into())
    }

    fn react(message: MessageRef, emoji: String) -> Result<(), String> {
        let acct = account(&message.account_id)?;
        let name = emoji_name(&emoji).ok_or_else(|| format!("no Slack name known for the emoji {emoji}"))?;
        let channel = reply_channel(&message.account_id, &acct, &message.peer)?;
        let body = json!({"channel": channel, "timestamp": message.message_id, "name": name});
        match api(&acct, "reactions.add", "botToken", &body) {
            Ok(_) => Ok(()),
            Err(ApiError::Slack(e)) if e.ends_with("already_reacted") => Ok(()),
            Err(e) => Err(e.text()),
        }
    }

    fn resolve_attachment(account_id: String, reference: String) -> Result<Download, String> {
        account(&account_id)?;
        let headers = vec![("authorization".to_string(), "Bearer {{secret:botToken}}".to_string())];
        Ok(Download { url: reference, headers, size: None, file_name: None, mime_type: None })
    }

    fn send(message: OutboundMessage) -> Delivery {
        let acct = match account(&message.account_id) {
            Ok(a) => a,
            Err(e) => return Delivery::Failed(e),
        };
        let channel = match reply_channel(&message.account_id, &acct, &message.peer) {
            Ok(c) => c,
            Err(e) => return Delivery::Failed(format!("cannot open the DM: {e}")),
        };
        let thread = message.thread_id.clone().or(match acct.reply_to {
            ReplyTo::Off => None,
            ReplyTo::First | ReplyTo::All => message.reply_to_message_id.clone(),
        });
        let chela_channel_sdk::files::Parts { parts, texts } =
            chela_channel_sdk::files::reply_parts(&message, TEXT_LIMIT as usize);
        deliver_parts(&parts, |i, part| {
            if i >= texts {
                let file = &message.attachments[i - texts];
                let threaded = message.thread_id.is_some() || acct.reply_to == ReplyTo::All || i == 0;
                return upload(&acct, &channel, thread.as_deref().filter(|_| threaded), file);
            }
            let mut body = json!({"channel": channel, "text": escape(part), "unfurl_links": false});
            if let Some(who) = &message.identity {
                if let Some(name) = &who.name {
                    body["username"] = json!(name);
                }
                if let Some(e) = who.emoji.as_deref().and_then(emoji_name) {
                    body["icon_emoji"] = json!(format!(":{e}:"));
                } else if let Some(url) = &who.avatar_url {
                    body["icon_url"] = json!(url);
                }
            }
            // `first`: only the first part starts the thread under the message.
            let threaded = message.thread_id.is_some() || acct.reply_to == ReplyTo::All || i == 0;
            if let Some(t) = thread.as_ref().filter(|_| threaded) {
                body["thread_ts"] = json!(t);
            }
            match api(&acct, "chat.postMessage", "botToken", &body) {
                Ok(v) => Ok(v["ts"].as_str().map(str::to_string)),
                Err(ApiError::RateLimited(s)) => Err(PartError::RateLimited(s * 1000)),
                Err(e) => Err(PartError::Failed(e.text())),
            }
        })
    }
}

/// One file through Slack's external upload flow; the message id is the file's.
fn upload(
    acct: &Account,
    channel: &str,
    thread: Option<&str>,
    file: &chela_channel_sdk::OutboundAttachment,
) -> Result<Option<String>, PartError> {
    let failed = |step: &str, e: ApiError| match e {
        ApiError::RateLimited(s) => PartError::RateLimited(s * 1000),
        other => PartError::Failed(format!("{step}: {}", other.text())),
    };
    let args = [("filename", file.file_name.clone()), ("length", file.data.len().to_string())];
    let target = api_form(acct, "files.getUploadURLExternal", "botToken", &args)
        .map_err(|e| failed("files.getUploadURLExternal", e))?;
    let (Some(url), Some(id)) = (target["upload_url"].as_str(), target["file_id"].as_str()) else {
        return Err(PartError::Failed("files.getUploadURLExternal gave no upload_url".into()));
    };
    let sent = http::request("POST", url, &[("content-type", file.mime_type.as_str())], Some(&file.data))
        .map_err(|e| PartError::Failed(format!("upload: {e}")))?;
    if !(200..300).contains(&sent.status) {
        return Err(PartError::Failed(format!("upload: HTTP {}", sent.status)));
    }
    let mut body = json!({"files": [{"id": id, "title": file.file_name}], "channel_id": channel});
    if let Some(t) = thread {
        body["thread_ts"] = json!(t);
    }
    api(acct, "files.completeUploadExternal", "botToken", &body)
        .map_err(|e| failed("files.completeUploadExternal", e))?;
    Ok(Some(id.to_string()))
}

impl chela_channel_sdk::Probe for Slack {
    /// `auth.test` with the bot token (asked now, not the cached identity).
    fn probe(account_id: String) -> Result<String, String> {
        let acct = account(&account_id)?;
        let me = api(&acct, "auth.test", "botToken", &json!({})).map_err(|e| e.text())?;
        let s = |k: &str| me[k].as_str().unwrap_or("?").to_string();
        Ok(format!("bot {} ({}) in team {}", s("user"), s("user_id"), s("team_id")))
    }
}

impl chela_channel_sdk::Settings for Slack {
    fn settings() -> Vec<String> {
        SETTINGS.iter().chain(SECRET_SETTINGS).map(|s| s.to_string()).collect()
    }
}

export_channel!(Slack);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_slack_tokens() {
        assert_eq!(escape("a < b && c > d"), "a &lt; b &amp;&amp; c &gt; d");
        assert_eq!(escape("hi <@U123> see <https://x.y|x> <#C1>"), "hi <@U123> see <https://x.y|x> <#C1>");
        assert_eq!(escape("<script>"), "&lt;script&gt;");
        assert_eq!(unescape("&lt;b&gt; &amp;"), "<b> &");
    }
}
