//! `telegram`: the Telegram Bot API channel adapter.
//!
//! Per account (`channels.telegram.accounts.<id>`): `botToken` (a secret: the
//! host puts it into the URL, this code writes `{{secret:botToken}}`),
//! `apiRoot` (default `https://api.telegram.org`; tests point it at a fake),
//! `mode`: `polling` (default: `getUpdates`; see "Offsets" below) or `webhook` (Telegram
//! POSTs to `/channels/telegram/<account>/`, checked against the secret
//! `webhookSecret` in constant time by the host).
//!
//! Mapping (reference channels §0.3, §1): a private chat → `direct` peer
//! `from.id`; a group or supergroup → `group` peer `chat.id`; a forum topic →
//! peer `<chat>:topic:<thread>` with parent `group:<chat>`; a channel post →
//! `channel`. The bot's own messages are ignored; a mention is an `@username`
//! or `text_mention` entity, a `/cmd@bot` command, or a reply to the bot.
//! Replies: `sendMessage` with `reply_parameters` on the first chunk and
//! `message_thread_id` (never 1) on every chunk, split at 4000 UTF-16 units.
//!
//! Files in: a photo (its largest size), voice note, audio, video, video
//! note, document or sticker becomes an attachment whose reference is the
//! `file_id`; `resolve-attachment` asks `getFile` and answers with the
//! download URL `<apiRoot>/file/bot{{secret:botToken}}/<file_path>` (the Bot
//! API serves files up to 20 MB). The caption is the event's text. Edits
//! (`editMessageText`), typing (`sendChatAction`) and reactions
//! (`setMessageReaction`) are declared in `describe`. Files out: each
//! attachment after the text, as `sendPhoto`, `sendVoice`, `sendAudio`,
//! `sendVideo` or `sendDocument` (multipart upload, up to 50 MB) in the
//! same chat and topic.
//!
//! Offsets: `getUpdates` with an offset tells Telegram every earlier update
//! was received. The host calls `poll` again only after the previous batch
//! is in its journal, so a batch's next offset is committed to kv (and sent
//! to Telegram) by the *next* poll: after a crash the batch comes again and
//! the host's journal drops what it already holds. Nothing is lost, nothing
//! is answered twice.
//!
//! Must not: hold the bot token (only `{{secret:botToken}}`), route or dedupe messages (the host
//! does), or commit an offset before the host journaled the updates below it.

use std::cell::RefCell;
use std::collections::HashMap;

use chela_channel_sdk::serde_json::{self, json, Value};
use chela_channel_sdk::{
    base_url, deliver_parts, export_channel, header, http, kv, log, multipart, parse_settings, respond, secrets,
    split::split, AttachmentKind, Channel, ChannelInfo, Delivery, Download, Features, HttpRequest, InboundAttachment,
    InboundEvent, MessageRef, OutboundMessage, PartError, Peer, PeerKind, WebhookOutcome,
};

/// What OpenClaw uses; Telegram's hard limit is 4096.
/// The account settings this adapter reads (`channel-settings`), then its credentials.
const SETTINGS: &[&str] = &["apiRoot", "mode"];
const SECRET_SETTINGS: &[&str] = &["botToken", "webhookSecret"];

const TEXT_LIMIT: u32 = 4000;
/// What the Bot API accepts from a bot in one upload (50 MB).
const UPLOAD_LIMIT: u64 = 50 * 1024 * 1024;
/// Seconds a `getUpdates` call may wait (the instance serves sends between polls).
const POLL_TIMEOUT_S: u64 = 1;

#[derive(Clone)]
struct Account {
    api_root: String,
    webhook: bool,
}

#[derive(Clone)]
struct Bot {
    id: i64,
    username: String,
}

thread_local! {
    static ACCOUNTS: RefCell<HashMap<String, Account>> = RefCell::new(HashMap::new());
    static BOTS: RefCell<HashMap<String, Bot>> = RefCell::new(HashMap::new());
    /// Per account: the offset after the last batch returned, committed on the next poll.
    static PENDING_OFFSET: RefCell<HashMap<String, u64>> = RefCell::new(HashMap::new());
}

/// A Bot API error (`{"ok": false, "error_code", "description", "parameters"}`).
struct ApiError {
    code: i64,
    description: String,
    retry_after: Option<u64>,
    migrate_to: Option<i64>,
}

fn account(id: &str) -> Result<Account, String> {
    ACCOUNTS.with(|a| a.borrow().get(id).cloned()).ok_or_else(|| format!("account `{id}` is not configured"))
}

fn api(acct: &Account, method: &str, body: &Value) -> Result<Value, ApiError> {
    api_raw(acct, method, "application/json", body.to_string().as_bytes())
}

fn api_raw(acct: &Account, method: &str, content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let url = format!("{}/bot{{{{secret:botToken}}}}/{method}", acct.api_root);
    let err = |description: String| ApiError { code: 0, description, retry_after: None, migrate_to: None };
    let resp = http::request("POST", &url, &[("content-type", content_type)], Some(body)).map_err(err)?;
    let v: Value = serde_json::from_slice(&resp.body)
        .map_err(|e| err(format!("{method}: HTTP {} with a body that is not JSON: {e}", resp.status)))?;
    if v["ok"] == true {
        return Ok(v["result"].clone());
    }
    Err(ApiError {
        code: v["error_code"].as_i64().unwrap_or(i64::from(resp.status)),
        description: v["description"].as_str().unwrap_or("unknown error").to_string(),
        retry_after: v["parameters"]["retry_after"].as_u64(),
        migrate_to: v["parameters"]["migrate_to_chat_id"].as_i64(),
    })
}

/// The bot's own identity (`getMe`), fetched once per account.
fn bot(account_id: &str, acct: &Account) -> Result<Bot, String> {
    if let Some(b) = BOTS.with(|b| b.borrow().get(account_id).cloned()) {
        return Ok(b);
    }
    let me = api(acct, "getMe", &json!({})).map_err(|e| format!("getMe failed ({}): {}", e.code, e.description))?;
    let b =
        Bot { id: me["id"].as_i64().unwrap_or(0), username: me["username"].as_str().unwrap_or_default().to_string() };
    BOTS.with(|m| m.borrow_mut().insert(account_id.to_string(), b.clone()));
    Ok(b)
}

/// The text an entity covers (offsets are UTF-16 code units).
fn entity_text(text: &str, e: &Value) -> String {
    let units: Vec<u16> = text.encode_utf16().collect();
    let (off, len) = (e["offset"].as_u64().unwrap_or(0) as usize, e["length"].as_u64().unwrap_or(0) as usize);
    units.get(off..off.saturating_add(len).min(units.len())).map(String::from_utf16_lossy).unwrap_or_default()
}

fn mentions(msg: &Value, text: &str, bot: &Bot) -> bool {
    let at = format!("@{}", bot.username).to_lowercase();
    let by_entity = msg["entities"].as_array().into_iter().flatten().any(|e| match e["type"].as_str() {
        Some("mention") => entity_text(text, e).to_lowercase() == at,
        Some("text_mention") => e["user"]["id"].as_i64() == Some(bot.id),
        Some("bot_command") => entity_text(text, e).to_lowercase().ends_with(&at),
        _ => false,
    });
    by_entity || msg["reply_to_message"]["from"]["id"].as_i64() == Some(bot.id)
}

fn id_string(v: &Value) -> Option<String> {
    v.as_i64().map(|i| i.to_string()).or_else(|| v.as_str().map(str::to_string))
}

/// One update → an inbound event (`None`: nothing to route).
fn to_event(account_id: &str, bot: &Bot, update: &Value) -> Option<InboundEvent> {
    let msg = update.get("message").or_else(|| update.get("channel_post"))?;
    let attachments = attachments(msg);
    let text = match msg["text"].as_str().or_else(|| msg["caption"].as_str()) {
        Some(t) => t.to_string(),
        None if !attachments.is_empty() => String::new(),
        None => return None, // service messages, polls, locations…
    };
    let from = &msg["from"];
    if from["id"].as_i64() == Some(bot.id) {
        return None; // our own message
    }
    let chat = &msg["chat"];
    let chat_id = id_string(&chat["id"])?;
    let thread = msg["message_thread_id"].as_i64().filter(|_| chat["is_forum"] == true);
    let (peer, parent) = match chat["type"].as_str()? {
        "private" => {
            (Peer { kind: PeerKind::Direct, id: id_string(&from["id"]).unwrap_or_else(|| chat_id.clone()) }, None)
        }
        "group" | "supergroup" => match thread {
            Some(t) => (
                Peer { kind: PeerKind::Group, id: format!("{chat_id}:topic:{t}") },
                Some(Peer { kind: PeerKind::Group, id: chat_id.clone() }),
            ),
            None => (Peer { kind: PeerKind::Group, id: chat_id.clone() }, None),
        },
        "channel" => (Peer { kind: PeerKind::Channel, id: chat_id.clone() }, None),
        _ => return None,
    };
    let sender_id = id_string(&from["id"]).or_else(|| id_string(&msg["sender_chat"]["id"])).unwrap_or_default();
    let name =
        [from["first_name"].as_str(), from["last_name"].as_str()].into_iter().flatten().collect::<Vec<_>>().join(" ");
    Some(InboundEvent {
        channel: "telegram".into(),
        account_id: account_id.to_string(),
        peer,
        parent_peer: parent,
        guild_id: None,
        team_id: None,
        member_role_ids: vec![],
        thread_id: None,
        sender_id,
        sender_name: (!name.is_empty()).then_some(name).or_else(|| from["username"].as_str().map(str::to_string)),
        message_id: id_string(&msg["message_id"]).unwrap_or_default(),
        mentions_bot: mentions(msg, &text, bot),
        text,
        reply_to_message_id: id_string(&msg["reply_to_message"]["message_id"]),
        raw: update.to_string(),
        attachments,
        sender_is_bot: from["is_bot"] == true,
    })
}

/// The files of a message, with what Telegram says of each.
fn attachments(msg: &Value) -> Vec<InboundAttachment> {
    let file = |kind: AttachmentKind, v: &Value, mime: Option<&str>| {
        Some(InboundAttachment {
            kind,
            mime_type: v["mime_type"].as_str().or(mime).map(str::to_string),
            size: v["file_size"].as_u64(),
            file_name: v["file_name"].as_str().map(str::to_string),
            caption: None,
            reference: v["file_id"].as_str()?.to_string(),
        })
    };
    let mut out = Vec::new();
    // A photo comes in several sizes, smallest first: the largest is the photo.
    if let Some(largest) = msg["photo"].as_array().and_then(|sizes| sizes.last()) {
        out.extend(file(AttachmentKind::Image, largest, Some("image/jpeg")));
    }
    let sticker_mime = if msg["sticker"]["is_video"] == true {
        "video/webm"
    } else if msg["sticker"]["is_animated"] == true {
        "application/x-tgsticker"
    } else {
        "image/webp"
    };
    for (key, kind, mime) in [
        ("voice", AttachmentKind::Voice, Some("audio/ogg")),
        ("audio", AttachmentKind::Audio, None),
        ("video", AttachmentKind::Video, Some("video/mp4")),
        ("video_note", AttachmentKind::Video, Some("video/mp4")),
        ("animation", AttachmentKind::Video, Some("video/mp4")),
        ("document", AttachmentKind::Document, None),
        ("sticker", AttachmentKind::Sticker, Some(sticker_mime)),
    ] {
        if msg[key].is_object() && !(key == "document" && msg["animation"].is_object()) {
            out.extend(file(kind, &msg[key], mime));
        }
    }
    out
}

/// The chat id and forum topic a peer id names (`<chat>:topic:<thread>`).
fn chat_of(peer_id: &str) -> (Value, Option<i64>) {
    let (chat, topic) = match peer_id.split_once(":topic:") {
        Some((c, t)) => (c, t.parse::<i64>().ok()),
        None => (peer_id, None),
    };
    // Numeric ids as numbers; `@channelusername` as a string (the API takes both).
    (chat.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(chat)), topic)
}

fn failed(method: &str, e: ApiError) -> String {
    format!("{method} ({}): {}", e.code, e.description)
}

fn kv_u64(key: &str) -> u64 {
    kv::get(key).and_then(|v| String::from_utf8(v).ok()).and_then(|s| s.parse().ok()).unwrap_or(0)
}

struct Telegram;

impl Channel for Telegram {
    fn describe() -> ChannelInfo {
        ChannelInfo {
            id: "telegram".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            text_limit: TEXT_LIMIT,
            supports_threads: true,
            http_hosts: vec!["api.telegram.org".into()],
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
        // Started over: a batch not yet committed comes again (the host drops what it holds).
        PENDING_OFFSET.with(|p| p.borrow_mut().remove(&account_id));
        let s = parse_settings(&settings, SETTINGS, SECRET_SETTINGS)?;
        if !secrets::exists("botToken") {
            return Err("`botToken` is required (from @BotFather)".into());
        }
        let webhook = match s["mode"].as_str().unwrap_or("polling") {
            "polling" => false,
            "webhook" => {
                if !secrets::exists("webhookSecret") {
                    return Err("mode `webhook` needs `webhookSecret` (the secret_token given to setWebhook)".into());
                }
                true
            }
            other => return Err(format!("`mode` must be `polling` or `webhook`, not `{other}`")),
        };
        let api_root = base_url(&s, "apiRoot", "https://api.telegram.org")?;
        ACCOUNTS.with(|a| a.borrow_mut().insert(account_id, Account { api_root, webhook }));
        Ok(())
    }

    fn remove_account(account_id: String) {
        PENDING_OFFSET.with(|p| p.borrow_mut().remove(&account_id));
        ACCOUNTS.with(|a| a.borrow_mut().remove(&account_id));
    }

    fn handle_webhook(account_id: String, request: HttpRequest) -> WebhookOutcome {
        let none = |status: u16, body: Value| WebhookOutcome { response: respond(status, &body), events: vec![] };
        let Ok(acct) = account(&account_id) else { return none(404, json!({"error": "unknown account"})) };
        if !acct.webhook {
            return none(404, json!({"error": "this account uses long polling"}));
        }
        let presented = header(&request, "x-telegram-bot-api-secret-token").unwrap_or_default();
        if presented.is_empty() || !secrets::matches("webhookSecret", presented).unwrap_or(false) {
            return none(401, json!({"error": "wrong secret token"}));
        }
        let Ok(update) = serde_json::from_slice::<Value>(&request.body) else {
            return none(400, json!({"error": "body is not JSON"}));
        };
        if update["update_id"].as_i64().is_none() {
            return none(400, json!({"error": "not a Telegram Update (no update_id)"}));
        }
        let bot = match bot(&account_id, &acct) {
            Ok(b) => b,
            // Telegram retries non-2xx deliveries: ask it to, rather than lose the update.
            Err(e) => return none(503, json!({ "error": e })),
        };
        // A redelivered update is the host's to drop (its journal dedupes by message).
        WebhookOutcome {
            response: respond(200, &json!({})),
            events: to_event(&account_id, &bot, &update).into_iter().collect(),
        }
    }

    fn poll(account_id: String) -> Result<Vec<InboundEvent>, String> {
        let acct = account(&account_id)?;
        if acct.webhook {
            return Ok(vec![]);
        }
        let bot = bot(&account_id, &acct)?;
        // The host journaled the previous batch before calling again: commit it.
        if let Some(done) = PENDING_OFFSET.with(|p| p.borrow_mut().remove(&account_id)) {
            kv::set("offset", done.to_string().as_bytes())?;
        }
        let offset = kv_u64("offset");
        let body = json!({"offset": offset, "timeout": POLL_TIMEOUT_S, "limit": 100, "allowed_updates": ["message", "channel_post"]});
        let updates = match api(&acct, "getUpdates", &body) {
            Ok(u) => u,
            Err(e) if e.code == 409 => {
                return Err(format!(
                    "getUpdates conflict (409): another poller or a webhook is active: {}",
                    e.description
                ))
            }
            Err(e) => return Err(format!("getUpdates failed ({}): {}", e.code, e.description)),
        };
        let mut next = offset;
        let mut events = Vec::new();
        for u in updates.as_array().into_iter().flatten() {
            let Some(id) = u["update_id"].as_u64() else { continue };
            next = next.max(id + 1);
            events.extend(to_event(&account_id, &bot, u));
        }
        if next != offset {
            // Committed by the next poll, once the host holds these events.
            PENDING_OFFSET.with(|p| p.borrow_mut().insert(account_id.clone(), next));
        }
        Ok(events)
    }

    fn edit(message: MessageRef, text: String) -> Delivery {
        match Telegram::edit_message(&message, &text) {
            Ok(id) => Delivery::Sent(id.into_iter().collect()),
            Err(e) => Delivery::Failed(e),
        }
    }

    fn typing(account_id: String, peer: Peer, thread_id: Option<String>) -> Result<(), String> {
        let acct = account(&account_id)?;
        let (chat_id, topic) = chat_of(&peer.id);
        let mut body = json!({"chat_id": chat_id, "action": "typing"});
        if let Some(t) = thread_id.as_deref().and_then(|t| t.parse::<i64>().ok()).or(topic).filter(|t| *t != 1) {
            body["message_thread_id"] = json!(t);
        }
        api(&acct, "sendChatAction", &body).map(|_| ()).map_err(|e| failed("sendChatAction", e))
    }

    fn react(message: MessageRef, emoji: String) -> Result<(), String> {
        let acct = account(&message.account_id)?;
        let (chat_id, _) = chat_of(&message.peer.id);
        let id =
            message.message_id.parse::<i64>().map_err(|_| format!("`{}` is not a message id", message.message_id))?;
        let body = json!({"chat_id": chat_id, "message_id": id, "reaction": [{"type": "emoji", "emoji": emoji}]});
        api(&acct, "setMessageReaction", &body).map(|_| ()).map_err(|e| failed("setMessageReaction", e))
    }

    fn resolve_attachment(account_id: String, reference: String) -> Result<Download, String> {
        let acct = account(&account_id)?;
        let file = api(&acct, "getFile", &json!({"file_id": reference})).map_err(|e| failed("getFile", e))?;
        let path = file["file_path"]
            .as_str()
            .ok_or("getFile gave no file_path (files over 20 MB cannot be downloaded by bots)")?;
        Ok(Download {
            url: format!("{}/file/bot{{{{secret:botToken}}}}/{path}", acct.api_root),
            headers: vec![],
            size: file["file_size"].as_u64(),
            file_name: path.rsplit('/').next().map(str::to_string),
            mime_type: None,
        })
    }

    fn send(message: OutboundMessage) -> Delivery {
        let acct = match account(&message.account_id) {
            Ok(a) => a,
            Err(e) => return Delivery::Failed(e),
        };
        // A forum topic travels in the peer id (`<chat>:topic:<thread>`).
        let (mut chat, topic) = match message.peer.id.split_once(":topic:") {
            Some((c, t)) => (c.to_string(), t.parse::<i64>().ok()),
            None => (message.peer.id.clone(), None),
        };
        let thread = message.thread_id.as_deref().and_then(|t| t.parse::<i64>().ok()).or(topic).filter(|t| *t != 1);
        let reply_to = message.reply_to_message_id.as_deref().and_then(|r| r.parse::<i64>().ok());
        let mut migrated = false;
        // The text in parts, then each file as a part of its own.
        let chela_channel_sdk::files::Parts { parts, texts } =
            chela_channel_sdk::files::reply_parts(&message, TEXT_LIMIT as usize);
        deliver_parts(&parts, |i, part| loop {
            if i >= texts {
                let file = &message.attachments[i - texts];
                let (method, field) = match file.kind {
                    AttachmentKind::Image => ("sendPhoto", "photo"),
                    AttachmentKind::Voice => ("sendVoice", "voice"),
                    AttachmentKind::Audio => ("sendAudio", "audio"),
                    AttachmentKind::Video => ("sendVideo", "video"),
                    _ => ("sendDocument", "document"),
                };
                let mut fields = vec![("chat_id", chat.clone())];
                if let Some(t) = thread {
                    fields.push(("message_thread_id", t.to_string()));
                }
                if let (0, Some(r)) = (i, reply_to) {
                    fields.push((
                        "reply_parameters",
                        json!({"message_id": r, "allow_sending_without_reply": true}).to_string(),
                    ));
                }
                let form = multipart::form(&fields, (field, &file.file_name, &file.mime_type, &file.data));
                return match api_raw(&acct, method, &form.content_type, &form.body) {
                    Ok(m) => Ok(id_string(&m["message_id"])),
                    Err(ApiError { retry_after: Some(s), .. }) => Err(PartError::RateLimited(s * 1000)),
                    Err(e) => Err(PartError::Failed(failed(method, e))),
                };
            }
            // Numeric ids as numbers; `@channelusername` as a string (the API takes both).
            let chat_id = chat.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(chat.as_str()));
            let mut body = json!({"chat_id": chat_id, "text": part, "link_preview_options": {"is_disabled": true}});
            if let Some(t) = thread {
                body["message_thread_id"] = json!(t);
            }
            if let (0, Some(r)) = (i, reply_to) {
                body["reply_parameters"] = json!({"message_id": r, "allow_sending_without_reply": true});
            }
            return match api(&acct, "sendMessage", &body) {
                Ok(m) => Ok(id_string(&m["message_id"])),
                Err(ApiError { retry_after: Some(s), .. }) => Err(PartError::RateLimited(s * 1000)),
                // A group became a supergroup: send there, once.
                Err(ApiError { migrate_to: Some(to), .. }) if !migrated => {
                    log::info(&format!("chat {chat} migrated to {to}"));
                    chat = to.to_string();
                    migrated = true;
                    continue;
                }
                Err(e) => Err(PartError::Failed(format!("sendMessage ({}): {}", e.code, e.description))),
            };
        })
    }
}

impl Telegram {
    fn edit_message(message: &MessageRef, text: &str) -> Result<Option<String>, String> {
        let acct = account(&message.account_id)?;
        let (chat_id, _) = chat_of(&message.peer.id);
        let id =
            message.message_id.parse::<i64>().map_err(|_| format!("`{}` is not a message id", message.message_id))?;
        let text: String = split(text, TEXT_LIMIT as usize).into_iter().next().unwrap_or_default();
        let body =
            json!({"chat_id": chat_id, "message_id": id, "text": text, "link_preview_options": {"is_disabled": true}});
        match api(&acct, "editMessageText", &body) {
            Ok(_) => Ok(Some(message.message_id.clone())),
            // The same text again is not a failure: the message already says it.
            Err(e) if e.description.contains("message is not modified") => Ok(Some(message.message_id.clone())),
            Err(e) => Err(failed("editMessageText", e)),
        }
    }
}

impl chela_channel_sdk::Probe for Telegram {
    /// `getMe` with the account's bot token (not the cached identity: the point is to ask now).
    fn probe(account_id: String) -> Result<String, String> {
        let acct = account(&account_id)?;
        let me =
            api(&acct, "getMe", &json!({})).map_err(|e| format!("getMe failed ({}): {}", e.code, e.description))?;
        Ok(format!("bot @{} (id {})", me["username"].as_str().unwrap_or("?"), me["id"]))
    }
}

impl chela_channel_sdk::Settings for Telegram {
    fn settings() -> Vec<String> {
        SETTINGS.iter().chain(SECRET_SETTINGS).map(|s| s.to_string()).collect()
    }
}

export_channel!(Telegram);
