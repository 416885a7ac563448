//! `whatsapp`: the WhatsApp Cloud API (Meta Graph API) channel adapter.
//!
//! Per account (`channels.whatsapp.accounts.<id>`, one per business phone
//! number): `phoneNumberId` (the Graph id of the number), `accessToken`
//! (Bearer; a secret the host inserts), `appSecret` (signs webhooks),
//! `verifyToken` (the subscription handshake), `graphApiBase` (default
//! `https://graph.facebook.com`; tests point it at a fake) and
//! `graphApiVersion` (default `v25.0`: Graph is version-sensitive, pin it).
//!
//! Inbound is webhooks only (reference channels §4): Meta calls
//! `/channels/whatsapp/<account>/` — a GET handshake (`hub.mode`,
//! `hub.verify_token`, `hub.challenge`), then POSTs signed with
//! `X-Hub-Signature-256: sha256=HMAC(appSecret, raw body)`. One Meta app's
//! callback carries every number subscribed to it, so events are routed to
//! the account whose `phoneNumberId` is `metadata.phone_number_id`, whichever
//! account's URL received them — the host accepts that only when the
//! delivery was signed with a secret both accounts share (the same app), so
//! one app's secret never speaks for another's number. Deliveries are at-least-once: message ids
//! (`wamid.…`) are remembered. A DM peer is the sender's number in E.164 (`+1650…`); a Groups
//! API message's peer is its `group_id`. Replies quote the message
//! (`context.message_id`, first part only), split at 4000 characters.
//! Throttling is keyed on `error.code` (4, 80007, 130429, 131048, 131056):
//! Meta documents no Retry-After, so waits double per account.
//!
//! Media in: `image`, `audio` (`voice: true` is a voice note), `video`,
//! `document` and `sticker` messages carry a media id (no size: the host's
//! download cap applies); `resolve-attachment` asks `GET /<media-id>` for the
//! URL, fetched by the host with the access token. Media out: `POST
//! /<number>/media` (multipart), then a message of that type with the id.
//! Reactions are `reaction` messages; typing is the read receipt with
//! `typing_indicator` on the chat's latest inbound message (kept in kv).
//!
//! Must not: hold the access token or app secret (only `{{secret:…}}` and host checks), route or
//! dedupe messages (the host does), or credit a delivery to an account it was not signed for.

use std::cell::RefCell;
use std::collections::HashMap;

use chela_channel_sdk::serde_json::{self, json, Value};
use chela_channel_sdk::{
    base_url, deliver_parts, export_channel, header, hex_decode, http, kv, log, multipart, parse_settings, query_param,
    respond, secrets, AttachmentKind, Channel, ChannelInfo, Delivery, Download, Features, HttpRequest, HttpResponse,
    InboundAttachment, InboundEvent, MessageRef, OutboundMessage, PartError, Peer, PeerKind, WebhookOutcome,
};

/// What a function answers that `describe` does not declare (the host never calls it).
const NOT_DECLARED: &str = "not supported by this adapter";
/// The Cloud API's largest upload (documents, 100 MB; images 5 MB, audio and video 16 MB).
const UPLOAD_LIMIT: u64 = 100 * 1024 * 1024;

/// The account settings this adapter reads (`channel-settings`), then its credentials.
const SETTINGS: &[&str] = &["phoneNumberId", "graphApiBase", "graphApiVersion"];
const SECRET_SETTINGS: &[&str] = &["accessToken", "appSecret", "verifyToken"];

const TEXT_LIMIT: u32 = 4000;
/// First wait after a throttling error; doubled per consecutive one.
const BASE_BACKOFF_MS: u64 = 1000;
const MAX_BACKOFF_MS: u64 = 60_000;
/// Graph error codes that mean "slow down".
const THROTTLED: [i64; 5] = [4, 80007, 130429, 131048, 131056];

#[derive(Clone)]
struct Account {
    phone_number_id: String,
    api: String,
}

thread_local! {
    static ACCOUNTS: RefCell<HashMap<String, Account>> = RefCell::new(HashMap::new());
    /// Consecutive throttling errors per account (for the backoff).
    static THROTTLE: RefCell<HashMap<String, u32>> = RefCell::new(HashMap::new());
}

fn account(id: &str) -> Result<Account, String> {
    ACCOUNTS.with(|a| a.borrow().get(id).cloned()).ok_or_else(|| format!("account `{id}` is not configured"))
}

/// The account label of a business number.
fn account_for_number(phone_number_id: &str) -> Option<String> {
    ACCOUNTS
        .with(|a| a.borrow().iter().find(|(_, acct)| acct.phone_number_id == phone_number_id).map(|(k, _)| k.clone()))
}

fn plain(status: u16, body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
        body: body.as_bytes().to_vec(),
    }
}

/// The GET subscription handshake: echo the challenge when the token matches.
fn verify_subscription(request: &HttpRequest) -> HttpResponse {
    let q = |k: &str| query_param(&request.path_with_query, k).unwrap_or_default();
    if q("hub.mode") != "subscribe" {
        return plain(400, "hub.mode must be subscribe");
    }
    let token = q("hub.verify_token");
    if token.is_empty() || !secrets::matches("verifyToken", &token).unwrap_or(false) {
        return plain(403, "verify token mismatch");
    }
    plain(200, &q("hub.challenge"))
}

fn signature_ok(request: &HttpRequest) -> bool {
    let Some(sig) = header(request, "x-hub-signature-256").and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Some(sig) = hex_decode(sig.trim()) else { return false };
    secrets::verify_hmac_sha256("appSecret", &request.body, &sig).unwrap_or(false)
}

/// One `messages[]` entry of a change → an inbound event.
fn to_event(account_id: &str, value: &Value, msg: &Value) -> Option<InboundEvent> {
    let kind = msg["type"].as_str()?;
    let (text, attachments) = match kind {
        "text" => (msg["text"]["body"].as_str()?, vec![]),
        "image" | "audio" | "video" | "document" | "sticker" => {
            let m = &msg[kind];
            let kind = match kind {
                "image" => AttachmentKind::Image,
                "audio" if m["voice"] == true => AttachmentKind::Voice,
                "audio" => AttachmentKind::Audio,
                "video" => AttachmentKind::Video,
                "sticker" => AttachmentKind::Sticker,
                _ => AttachmentKind::Document,
            };
            let file = InboundAttachment {
                kind,
                mime_type: m["mime_type"].as_str().map(|t| t.split(';').next().unwrap_or(t).trim().to_string()),
                size: None,
                file_name: m["filename"].as_str().map(str::to_string),
                caption: None,
                reference: m["id"].as_str()?.to_string(),
            };
            (m["caption"].as_str().unwrap_or_default(), vec![file])
        }
        _ => return None,
    };
    let from = msg["from"].as_str()?;
    let own = value["metadata"]["display_phone_number"].as_str().unwrap_or_default();
    if !own.is_empty() && digits(from) == digits(own) {
        return None; // our own number
    }
    // Numbers as E.164 with `+`, as OpenClaw's WhatsApp channel writes them in
    // peer bindings and `allowFrom`; the Cloud API's `wa_id` has no `+`.
    let e164 = format!("+{}", digits(from));
    let peer = match msg["group_id"].as_str() {
        Some(g) => Peer { kind: PeerKind::Group, id: g.to_string() },
        None => Peer { kind: PeerKind::Direct, id: e164.clone() },
    };
    let name = value["contacts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["wa_id"].as_str() == Some(from))
        .and_then(|c| c["profile"]["name"].as_str())
        .map(str::to_string);
    // No platform mentions in the Cloud API: the bot's number in the text, or a
    // reply to the bot's message, count (mention patterns are the host's).
    let mentions_bot = !own.is_empty()
        && (digits(text).contains(&digits(own))
            || msg["context"]["from"].as_str().is_some_and(|f| digits(f) == digits(own)));
    Some(InboundEvent {
        channel: "whatsapp".into(),
        account_id: account_id.to_string(),
        peer,
        parent_peer: None,
        guild_id: None,
        team_id: None,
        member_role_ids: vec![],
        thread_id: None,
        sender_id: e164,
        sender_name: name,
        message_id: msg["id"].as_str()?.to_string(),
        text: text.to_string(),
        mentions_bot,
        reply_to_message_id: msg["context"]["id"].as_str().map(str::to_string),
        raw: msg.to_string(),
        attachments,
        sender_is_bot: false,
    })
}

/// Where typing is shown: the read receipt of the chat's latest message.
fn last_inbound_key(peer: &Peer) -> String {
    format!("last-in:{}", peer.id)
}

fn graph_get(acct: &Account, path: &str) -> Result<Value, String> {
    let url = format!("{}/{path}", acct.api);
    let resp = http::request("GET", &url, &[("authorization", "Bearer {{secret:accessToken}}")], None)?;
    let v: Value = serde_json::from_slice(&resp.body)
        .map_err(|e| format!("HTTP {} with a body that is not JSON: {e}", resp.status))?;
    if (200..300).contains(&resp.status) {
        Ok(v)
    } else {
        Err(format!(
            "HTTP {} (code {}): {}",
            resp.status,
            v["error"]["code"],
            v["error"]["message"].as_str().unwrap_or("?")
        ))
    }
}

/// A file to `/media`; its media id.
fn upload(acct: &Account, file: &chela_channel_sdk::OutboundAttachment) -> Result<String, String> {
    let url = format!("{}/{}/media", acct.api, acct.phone_number_id);
    let fields = [("messaging_product", "whatsapp".to_string()), ("type", file.mime_type.clone())];
    let form = multipart::form(&fields, ("file", &file.file_name, &file.mime_type, &file.data));
    let headers = [("content-type", form.content_type.as_str()), ("authorization", "Bearer {{secret:accessToken}}")];
    let resp = http::request("POST", &url, &headers, Some(&form.body))?;
    let v: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    match v["id"].as_str() {
        Some(id) if (200..300).contains(&resp.status) => Ok(id.to_string()),
        _ => Err(format!("media upload: HTTP {} {}", resp.status, v["error"]["message"].as_str().unwrap_or(""))),
    }
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// A Graph API error (`{"error": {"message", "code", "error_data": {"details"}}}`).
struct GraphError {
    code: i64,
    message: String,
    retry_after_s: Option<u64>,
}

fn post_message(acct: &Account, body: &Value) -> Result<String, GraphError> {
    let v = graph_post(acct, body)?;
    v["messages"][0]["id"].as_str().map(str::to_string).ok_or_else(|| GraphError {
        code: 0,
        message: "the answer names no message id".into(),
        retry_after_s: None,
    })
}

/// `POST /<number>/messages`: the answer, or Graph's error.
fn graph_post(acct: &Account, body: &Value) -> Result<Value, GraphError> {
    let url = format!("{}/{}/messages", acct.api, acct.phone_number_id);
    let headers = [("content-type", "application/json"), ("authorization", "Bearer {{secret:accessToken}}")];
    let failed = |message: String| GraphError { code: 0, message, retry_after_s: None };
    let resp = http::request("POST", &url, &headers, Some(body.to_string().as_bytes())).map_err(failed)?;
    let v: Value = serde_json::from_slice(&resp.body)
        .map_err(|e| failed(format!("HTTP {} with a body that is not JSON: {e}", resp.status)))?;
    if (200..300).contains(&resp.status) {
        return Ok(v);
    }
    let e = &v["error"];
    let details = e["error_data"]["details"].as_str().map(|d| format!(": {d}")).unwrap_or_default();
    Err(GraphError {
        code: e["code"].as_i64().unwrap_or(i64::from(resp.status)),
        message: format!("{}{details}", e["message"].as_str().unwrap_or("unknown error")),
        retry_after_s: resp
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse().ok()),
    })
}

fn backoff_ms(account_id: &str, retry_after_s: Option<u64>) -> u64 {
    let n = THROTTLE.with(|t| {
        let mut t = t.borrow_mut();
        let n = t.entry(account_id.to_string()).or_insert(0);
        *n += 1;
        *n
    });
    let exp = BASE_BACKOFF_MS.saturating_mul(1 << (n - 1).min(10)).min(MAX_BACKOFF_MS);
    retry_after_s.map(|s| s * 1000).unwrap_or(exp)
}

struct WhatsApp;

impl Channel for WhatsApp {
    fn describe() -> ChannelInfo {
        ChannelInfo {
            id: "whatsapp".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            text_limit: TEXT_LIMIT,
            supports_threads: false,
            http_hosts: vec!["graph.facebook.com".into(), "lookaside.fbsbx.com".into()],
            needs_polling: false,
            features: Features::TYPING | Features::REACT | Features::ATTACHMENTS_IN | Features::ATTACHMENTS_OUT,
            upload_limit: UPLOAD_LIMIT,
        }
    }

    fn configure_account(account_id: String, settings: String) -> Result<(), String> {
        let s = parse_settings(&settings, SETTINGS, SECRET_SETTINGS)?;
        let phone_number_id = match &s["phoneNumberId"] {
            Value::String(p) if !p.is_empty() => p.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err("`phoneNumberId` is required (WhatsApp Manager → API Setup → Phone number ID)".into()),
        };
        for (name, what) in [
            ("accessToken", "a system-user access token with whatsapp_business_messaging"),
            ("appSecret", "the Meta app's secret, which signs webhooks"),
            ("verifyToken", "any string; give Meta the same one when subscribing the webhook"),
        ] {
            if !secrets::exists(name) {
                return Err(format!("`{name}` is required ({what})"));
            }
        }
        if let Some(other) = account_for_number(&phone_number_id).filter(|o| *o != account_id) {
            return Err(format!("`phoneNumberId` {phone_number_id} is already account `{other}`'s"));
        }
        let base = base_url(&s, "graphApiBase", "https://graph.facebook.com")?;
        let version = s["graphApiVersion"].as_str().unwrap_or("v25.0");
        if !version.starts_with('v')
            || version.len() < 2
            || !version[1..].chars().all(|c| c.is_ascii_digit() || c == '.')
        {
            return Err(format!("`graphApiVersion` looks like `v25.0`, not `{version}`"));
        }
        let api = format!("{base}/{version}");
        ACCOUNTS.with(|a| a.borrow_mut().insert(account_id, Account { phone_number_id, api }));
        Ok(())
    }

    fn remove_account(account_id: String) {
        ACCOUNTS.with(|a| a.borrow_mut().remove(&account_id));
        THROTTLE.with(|t| t.borrow_mut().remove(&account_id));
    }

    fn handle_webhook(account_id: String, request: HttpRequest) -> WebhookOutcome {
        let none = |response: HttpResponse| WebhookOutcome { response, events: vec![] };
        if account(&account_id).is_err() {
            return none(respond(404, &json!({"error": "unknown account"})));
        }
        match request.method.as_str() {
            "GET" => return none(verify_subscription(&request)),
            "POST" => {}
            _ => return none(respond(405, &json!({"error": "GET (handshake) or POST (events) only"}))),
        }
        if !signature_ok(&request) {
            return none(respond(401, &json!({"error": "X-Hub-Signature-256 is missing or wrong"})));
        }
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return none(respond(400, &json!({"error": "body is not JSON"})));
        };
        if body["object"] != "whatsapp_business_account" || !body["entry"].is_array() {
            return none(respond(400, &json!({"error": "not a whatsapp_business_account notification"})));
        }
        let mut events = Vec::new();
        for change in
            body["entry"].as_array().into_iter().flatten().flat_map(|e| e["changes"].as_array().into_iter().flatten())
        {
            if change["field"] != "messages" {
                continue;
            }
            let value = &change["value"];
            let number = value["metadata"]["phone_number_id"].as_str().unwrap_or_default();
            let Some(target) = account_for_number(number) else {
                log::warn(&format!("event for phone number id {number}, which no account has; ignored"));
                continue;
            };
            for s in value["statuses"].as_array().into_iter().flatten().filter(|s| s["status"] == "failed") {
                log::warn(&format!("message {} to {} failed: {}", s["id"], s["recipient_id"], s["errors"]));
            }
            for e in value["errors"].as_array().into_iter().flatten() {
                log::warn(&format!("WhatsApp reported error {}: {}", e["code"], e["title"]));
            }
            for msg in value["messages"].as_array().into_iter().flatten() {
                // Redeliveries (Meta's at-least-once) are dropped by the host's
                // journal, which dedupes by `wamid` once the event is stored.
                let event = to_event(&target, value, msg);
                // Typing needs the chat's latest message (this account's kv only).
                if let Some(ev) = event.as_ref().filter(|ev| ev.account_id == account_id) {
                    let _ = kv::set(&last_inbound_key(&ev.peer), ev.message_id.as_bytes());
                }
                events.extend(event);
            }
        }
        WebhookOutcome { response: respond(200, &json!({})), events }
    }

    fn poll(_account_id: String) -> Result<Vec<InboundEvent>, String> {
        Ok(vec![]) // webhooks only
    }

    fn edit(_message: MessageRef, _text: String) -> Delivery {
        Delivery::Failed(NOT_DECLARED.into())
    }

    fn typing(account_id: String, peer: Peer, _thread_id: Option<String>) -> Result<(), String> {
        let acct = account(&account_id)?;
        let Some(last) = kv::get(&last_inbound_key(&peer)).and_then(|v| String::from_utf8(v).ok()) else {
            return Err("no message from this chat to show typing on".into());
        };
        let body = json!({"messaging_product": "whatsapp", "status": "read", "message_id": last,
                          "typing_indicator": {"type": "text"}});
        graph_post(&acct, &body).map(|_| ()).map_err(|e| format!("error {}: {}", e.code, e.message))
    }

    fn react(message: MessageRef, emoji: String) -> Result<(), String> {
        let acct = account(&message.account_id)?;
        let recipient_type = if message.peer.kind == PeerKind::Group { "group" } else { "individual" };
        let body = json!({"messaging_product": "whatsapp", "recipient_type": recipient_type,
                          "to": message.peer.id.trim_start_matches('+'), "type": "reaction",
                          "reaction": {"message_id": message.message_id, "emoji": emoji}});
        post_message(&acct, &body).map(|_| ()).map_err(|e| format!("error {}: {}", e.code, e.message))
    }

    fn resolve_attachment(account_id: String, reference: String) -> Result<Download, String> {
        let acct = account(&account_id)?;
        let media = graph_get(&acct, &reference)?;
        Ok(Download {
            url: media["url"].as_str().ok_or("the media record has no url")?.to_string(),
            headers: vec![("authorization".into(), "Bearer {{secret:accessToken}}".into())],
            size: media["file_size"].as_u64(),
            file_name: None,
            mime_type: media["mime_type"].as_str().map(str::to_string),
        })
    }

    fn send(message: OutboundMessage) -> Delivery {
        let acct = match account(&message.account_id) {
            Ok(a) => a,
            Err(e) => return Delivery::Failed(e),
        };
        let recipient_type = match message.peer.kind {
            PeerKind::Group => "group",
            _ => "individual",
        };
        let account_id = message.account_id.clone();
        let chela_channel_sdk::files::Parts { parts, texts } =
            chela_channel_sdk::files::reply_parts(&message, TEXT_LIMIT as usize);
        deliver_parts(&parts, |i, part| {
            if i >= texts {
                let file = &message.attachments[i - texts];
                let id = upload(&acct, file).map_err(PartError::Failed)?;
                let kind = match file.kind {
                    AttachmentKind::Image => "image",
                    AttachmentKind::Audio | AttachmentKind::Voice => "audio",
                    AttachmentKind::Video => "video",
                    AttachmentKind::Sticker => "sticker",
                    AttachmentKind::Document => "document",
                };
                let mut media = json!({"id": id});
                if kind == "document" {
                    media["filename"] = json!(file.file_name);
                }
                let body = json!({"messaging_product": "whatsapp", "recipient_type": recipient_type,
                                  "to": message.peer.id.trim_start_matches('+'), "type": kind, kind: media});
                return post_message(&acct, &body)
                    .map(Some)
                    .map_err(|e| PartError::Failed(format!("error {}: {}", e.code, e.message)));
            }
            let mut body = json!({
                "messaging_product": "whatsapp",
                "recipient_type": recipient_type,
                "to": message.peer.id.trim_start_matches('+'),
                "type": "text",
                "text": {"preview_url": false, "body": part},
            });
            if let (0, Some(r)) = (i, &message.reply_to_message_id) {
                body["context"] = json!({"message_id": r});
            }
            match post_message(&acct, &body) {
                Ok(id) => {
                    THROTTLE.with(|t| t.borrow_mut().remove(&account_id));
                    Ok(Some(id))
                }
                Err(e) if THROTTLED.contains(&e.code) => {
                    Err(PartError::RateLimited(backoff_ms(&account_id, e.retry_after_s)))
                }
                Err(e) => {
                    let hint = match e.code {
                        190 => " (the access token expired or was revoked)",
                        131047 => " (more than 24 hours since the user last wrote: only templates may be sent)",
                        131026 => " (the number cannot receive messages)",
                        _ => "",
                    };
                    Err(PartError::Failed(format!("error {}: {}{hint}", e.code, e.message)))
                }
            }
        })
    }
}

impl chela_channel_sdk::Probe for WhatsApp {
    /// `GET /<phone-number-id>` with the access token: the number's record.
    fn probe(account_id: String) -> Result<String, String> {
        let acct = account(&account_id)?;
        let url = format!("{}/{}?fields=display_phone_number,verified_name", acct.api, acct.phone_number_id);
        let headers = [("authorization", "Bearer {{secret:accessToken}}")];
        let resp = http::request("GET", &url, &headers, None)?;
        let v: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| format!("HTTP {} with a body that is not JSON: {e}", resp.status))?;
        if !(200..300).contains(&resp.status) {
            return Err(format!(
                "HTTP {} (code {}): {}",
                resp.status,
                v["error"]["code"],
                v["error"]["message"].as_str().unwrap_or("unknown error")
            ));
        }
        Ok(format!(
            "number {} \"{}\" (id {})",
            v["display_phone_number"].as_str().unwrap_or("?"),
            v["verified_name"].as_str().unwrap_or("?"),
            acct.phone_number_id
        ))
    }
}

impl chela_channel_sdk::Settings for WhatsApp {
    fn settings() -> Vec<String> {
        SETTINGS.iter().chain(SECRET_SETTINGS).map(|s| s.to_string()).collect()
    }
}

export_channel!(WhatsApp);
