//! Inbound events and replies as the journal keeps them (JSON, in the WIT
//! records' own field names), and the keys the message path orders and
//! dedupes by.
//!
//! Must not: decide anything about a message; it only converts and names.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chela_journal::Incoming;
use chela_plugin::channel::{
    AttachmentKind, Identity, InboundAttachment, InboundEvent, OutboundAttachment, OutboundMessage, Peer, PeerKind,
};
use serde_json::{json, Value};

pub fn attachment_kind_name(k: AttachmentKind) -> &'static str {
    match k {
        AttachmentKind::Image => "image",
        AttachmentKind::Audio => "audio",
        AttachmentKind::Voice => "voice",
        AttachmentKind::Video => "video",
        AttachmentKind::Document => "document",
        AttachmentKind::Sticker => "sticker",
    }
}

pub fn attachment_kind_of(name: &str) -> Option<AttachmentKind> {
    Some(match name {
        "image" => AttachmentKind::Image,
        "audio" => AttachmentKind::Audio,
        "voice" => AttachmentKind::Voice,
        "video" => AttachmentKind::Video,
        "document" => AttachmentKind::Document,
        "sticker" => AttachmentKind::Sticker,
        _ => return None,
    })
}

fn inbound_attachment_json(a: &InboundAttachment) -> Value {
    json!({
        "kind": attachment_kind_name(a.kind), "mimeType": a.mime_type, "size": a.size,
        "fileName": a.file_name, "caption": a.caption, "reference": a.reference,
    })
}

fn inbound_attachment_of(v: &Value) -> Option<InboundAttachment> {
    Some(InboundAttachment {
        kind: attachment_kind_of(v["kind"].as_str()?)?,
        mime_type: opt(&v["mimeType"]),
        size: v["size"].as_u64(),
        file_name: opt(&v["fileName"]),
        caption: opt(&v["caption"]),
        reference: v["reference"].as_str()?.to_string(),
    })
}

/// A file to send, bytes included: the outbox replays exactly what was accepted.
fn outbound_attachment_json(a: &OutboundAttachment) -> Value {
    json!({
        "kind": attachment_kind_name(a.kind), "fileName": a.file_name, "mimeType": a.mime_type,
        "data": BASE64.encode(&a.data),
    })
}

fn outbound_attachment_of(v: &Value) -> Option<OutboundAttachment> {
    Some(OutboundAttachment {
        kind: attachment_kind_of(v["kind"].as_str()?)?,
        file_name: v["fileName"].as_str()?.to_string(),
        mime_type: v["mimeType"].as_str()?.to_string(),
        data: BASE64.decode(v["data"].as_str()?).ok()?,
    })
}

fn list_of<T>(v: &Value, one: impl Fn(&Value) -> Option<T>) -> Option<Vec<T>> {
    match v.as_array() {
        None => Some(Vec::new()),
        Some(items) => items.iter().map(one).collect(),
    }
}

fn kind_name(k: PeerKind) -> &'static str {
    match k {
        PeerKind::Direct => "direct",
        PeerKind::Group => "group",
        PeerKind::Channel => "channel",
    }
}

fn peer_json(p: &Peer) -> Value {
    json!({"kind": kind_name(p.kind), "id": p.id})
}

fn peer_of(v: &Value) -> Option<Peer> {
    let kind = match v["kind"].as_str()? {
        "direct" => PeerKind::Direct,
        "group" => PeerKind::Group,
        "channel" => PeerKind::Channel,
        _ => return None,
    };
    Some(Peer { kind, id: v["id"].as_str()?.to_string() })
}

fn opt(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// The chat a message belongs to: its replies and its successors are ordered by this key.
pub fn chat_key(channel: &str, account: &str, peer: &Peer, thread: Option<&str>) -> String {
    format!("{channel}/{account}/{}:{}/{}", kind_name(peer.kind), peer.id, thread.unwrap_or(""))
}

/// The platform's identity of an event, for dedupe (`""`: the adapter gave no message id).
pub fn dedupe_key(ev: &InboundEvent) -> String {
    if ev.message_id.is_empty() {
        return String::new();
    }
    // Some platforms number messages per chat (Telegram): the chat is part of the id.
    format!("{}/{}/{}:{}/{}", ev.channel, ev.account_id, kind_name(ev.peer.kind), ev.peer.id, ev.message_id)
}

/// What the journal keeps of an event: its dedupe key, its chat, the event.
pub fn incoming(ev: &InboundEvent) -> Incoming {
    Incoming {
        dedupe: dedupe_key(ev),
        chat: chat_key(&ev.channel, &ev.account_id, &ev.peer, ev.thread_id.as_deref()),
        event: event_json(ev),
    }
}

pub fn event_json(ev: &InboundEvent) -> Value {
    json!({
        "channel": ev.channel, "accountId": ev.account_id, "peer": peer_json(&ev.peer),
        "parentPeer": ev.parent_peer.as_ref().map(peer_json), "guildId": ev.guild_id, "teamId": ev.team_id,
        "memberRoleIds": ev.member_role_ids, "threadId": ev.thread_id, "senderId": ev.sender_id,
        "senderName": ev.sender_name, "messageId": ev.message_id, "text": ev.text, "mentionsBot": ev.mentions_bot,
        "replyToMessageId": ev.reply_to_message_id, "raw": ev.raw,
        "attachments": ev.attachments.iter().map(inbound_attachment_json).collect::<Vec<_>>(),
        "senderIsBot": ev.sender_is_bot,
    })
}

pub fn event_of(v: &Value) -> Option<InboundEvent> {
    Some(InboundEvent {
        channel: v["channel"].as_str()?.to_string(),
        account_id: v["accountId"].as_str()?.to_string(),
        peer: peer_of(&v["peer"])?,
        parent_peer: peer_of(&v["parentPeer"]),
        guild_id: opt(&v["guildId"]),
        team_id: opt(&v["teamId"]),
        member_role_ids: v["memberRoleIds"]
            .as_array()
            .map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        thread_id: opt(&v["threadId"]),
        sender_id: v["senderId"].as_str()?.to_string(),
        sender_name: opt(&v["senderName"]),
        message_id: v["messageId"].as_str().unwrap_or_default().to_string(),
        text: v["text"].as_str()?.to_string(),
        mentions_bot: v["mentionsBot"].as_bool().unwrap_or(false),
        reply_to_message_id: opt(&v["replyToMessageId"]),
        raw: v["raw"].as_str().unwrap_or_default().to_string(),
        attachments: list_of(&v["attachments"], inbound_attachment_of)?,
        sender_is_bot: v["senderIsBot"].as_bool().unwrap_or(false),
    })
}

/// A reply with the channel it leaves through.
pub fn reply_json(channel: &str, m: &OutboundMessage) -> Value {
    json!({
        "channel": channel, "accountId": m.account_id, "peer": peer_json(&m.peer), "threadId": m.thread_id,
        "replyToMessageId": m.reply_to_message_id, "text": m.text,
        "attachments": m.attachments.iter().map(outbound_attachment_json).collect::<Vec<_>>(),
        "identity": m.identity.as_ref().map(|i| json!({"name": i.name, "emoji": i.emoji, "avatarUrl": i.avatar_url})),
    })
}

/// A journaled reply: its channel and the message.
pub fn reply_of(v: &Value) -> Option<(String, OutboundMessage)> {
    let m = OutboundMessage {
        account_id: v["accountId"].as_str()?.to_string(),
        peer: peer_of(&v["peer"])?,
        thread_id: opt(&v["threadId"]),
        reply_to_message_id: opt(&v["replyToMessageId"]),
        text: v["text"].as_str()?.to_string(),
        attachments: list_of(&v["attachments"], outbound_attachment_of)?,
        identity: v["identity"].is_object().then(|| Identity {
            name: opt(&v["identity"]["name"]),
            emoji: opt(&v["identity"]["emoji"]),
            avatar_url: opt(&v["identity"]["avatarUrl"]),
        }),
    };
    Some((v["channel"].as_str()?.to_string(), m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_replies_come_back_as_they_went_in() {
        let ev = InboundEvent {
            channel: "discord".into(),
            account_id: "default".into(),
            peer: Peer { kind: PeerKind::Channel, id: "42".into() },
            parent_peer: Some(Peer { kind: PeerKind::Group, id: "7".into() }),
            guild_id: Some("g".into()),
            team_id: None,
            member_role_ids: vec!["r1".into()],
            thread_id: Some("t".into()),
            sender_id: "u".into(),
            sender_name: Some("Ana".into()),
            message_id: "m1".into(),
            text: "héllo 🦀".into(),
            mentions_bot: true,
            reply_to_message_id: None,
            raw: "{}".into(),
            attachments: vec![InboundAttachment {
                kind: AttachmentKind::Voice,
                mime_type: Some("audio/ogg".into()),
                size: Some(5120),
                file_name: None,
                caption: None,
                reference: "AwACAg".into(),
            }],
            sender_is_bot: true,
        };
        let back = event_of(&event_json(&ev)).expect("reads back");
        assert_eq!(event_json(&back), event_json(&ev));
        let m = OutboundMessage {
            account_id: "default".into(),
            peer: ev.peer.clone(),
            thread_id: Some("t".into()),
            reply_to_message_id: Some("m1".into()),
            text: "answer".into(),
            attachments: vec![OutboundAttachment {
                kind: AttachmentKind::Document,
                file_name: "report.pdf".into(),
                mime_type: "application/pdf".into(),
                data: vec![0, 159, 255, 37],
            }],
            identity: Some(Identity { name: Some("Support".into()), emoji: Some(":wrench:".into()), avatar_url: None }),
        };
        let (ch, back) = reply_of(&reply_json("discord", &m)).expect("reads back");
        assert_eq!((ch.as_str(), reply_json("discord", &back)), ("discord", reply_json("discord", &m)));
        assert_eq!(dedupe_key(&ev), "discord/default/channel:42/m1");
    }
}
