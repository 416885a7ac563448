//! The `message` tool's sends (`chela:plugin/messaging`): a message a tool
//! call asks for, delivered through a channel account — only one that
//! speaks for the calling agent (core's `RouteTable::may_speak_through`:
//! its bindings, or the default agent's unbound accounts), only where
//! `session.sendPolicy` allows, with files from the agent's own workspace
//! read by the reply path's rules (`media_out.rs`). Target fields left out
//! are the calling session's own chat.
//!
//! Must not: send through an account that does not speak for the caller
//! (the gap reported against OpenClaw: any agent sending as another agent's
//! bot), trust the plugin for who calls (the host sets the caller), or read
//! a file the reply path would not.

use std::sync::{Arc, Weak};

use chela_core::config::paths::agent_workspace;
use chela_core::ids::{normalize_chat_type, ChatType};
use chela_core::policy::{may_attach_files, session_kind_for_key};
use chela_core::roster::Roster;
use chela_core::routing::main_key;
use chela_core::session_key::SessionKey;
use chela_plugin::capability::messaging::{BoxFuture, Caller, MessagingAccess, Outbound, Sent};
use chela_plugin::channel::{OutboundMessage, Peer};

use crate::delivery::{deliver, peer_kind};
use crate::inbound::may_send_with;
use crate::live::{Direction, LiveEvent};
use crate::{media_out, presence, Gateway};

/// The gateway as the `messaging` capability's host side.
pub(crate) struct Messenger {
    pub(crate) gateway: Weak<Gateway>,
}

impl MessagingAccess for Messenger {
    fn send<'a>(&'a self, caller: &'a Caller, message: Outbound) -> BoxFuture<'a, Result<Sent, String>> {
        Box::pin(async move {
            let gw = self.gateway.upgrade().ok_or("the gateway is stopping")?;
            let out = gw.send_for(caller, message).await;
            if let Err(why) = &out {
                tracing::warn!(agent = %caller.agent_id, session = %caller.session_key, %why, "message tool: not sent");
            }
            out
        })
    }
}

/// Where a tool's message goes, every field settled.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    channel: String,
    account: String,
    to: String,
    chat: ChatType,
    thread: Option<String>,
}

/// `to` as OpenClaw's message targets write it: `user:`/`dm:` a direct
/// chat, `channel:` a channel, `group:` a group; bare ids are the kind
/// `same_chat` says (the session's own chat), else direct.
fn parse_to(to: &str, same_chat: Option<ChatType>) -> (String, ChatType) {
    for (prefix, kind) in [
        ("user:", ChatType::Direct),
        ("dm:", ChatType::Direct),
        ("channel:", ChatType::Channel),
        ("group:", ChatType::Group),
    ] {
        if let Some(id) = to.strip_prefix(prefix) {
            return (id.to_string(), kind);
        }
    }
    (to.to_string(), same_chat.unwrap_or(ChatType::Direct))
}

impl Gateway {
    /// Settles where `message` goes for `caller`, checks that it may go
    /// there, and sends it.
    async fn send_for(&self, caller: &Caller, message: Outbound) -> Result<Sent, String> {
        let cfg = self.config();
        let snap = self.snapshot();
        let agent = chela_core::ids::normalize_agent_id(Some(&caller.agent_id));
        let entry = self.session_entry(&caller.session_key);
        let own = entry.as_ref().and_then(|e| e.delivery_context.clone());
        let own_chat = entry.as_ref().and_then(|e| e.chat_type.as_deref()).and_then(normalize_chat_type);
        let channel_id = message
            .channel
            .clone()
            .or_else(|| own.as_ref().map(|d| d.channel.clone()))
            .ok_or("this session has no chat of its own: name the `channel` (and `to`)")?;
        let channel = self.channel(&channel_id).ok_or_else(|| format!("channel `{channel_id}` is not running"))?;
        let same_channel = own.as_ref().filter(|d| d.channel == channel_id);
        let account = match (&message.account_id, same_channel) {
            (Some(a), _) => a.clone(),
            (None, Some(d)) => d.account_id.clone(),
            (None, None) => {
                let mine: Vec<String> = channel
                    .account_ids()
                    .into_iter()
                    .filter(|a| snap.routes.speaks_for(&agent, &channel_id, a))
                    .collect();
                match mine.as_slice() {
                    [one] => one.clone(),
                    [] => return Err(format!("no account of `{channel_id}` speaks for `{agent}`")),
                    _ => {
                        return Err(format!(
                            "name the `accountId`: {} of `{channel_id}` speak for `{agent}`",
                            mine.join(", ")
                        ))
                    }
                }
            }
        };
        if !channel.has_account(&account) {
            return Err(format!("channel `{channel_id}` has no account `{account}`"));
        }
        // The rule that matters: never through another agent's account.
        snap.routes.may_speak_through(&agent, &channel_id, &account)?;
        let same_account = same_channel.filter(|d| d.account_id == account);
        let target = match (&message.to, same_account) {
            (Some(to), d) => {
                let own_to = d.filter(|d| d.to == *to);
                let (to, chat) = parse_to(to, own_to.and(own_chat));
                let thread = message.thread_id.clone().or_else(|| own_to.and_then(|d| d.thread_id.clone()));
                Target { channel: channel_id.clone(), account, to, chat, thread }
            }
            (None, Some(d)) => Target {
                channel: channel_id.clone(),
                account,
                to: d.to.clone(),
                chat: own_chat.unwrap_or(ChatType::Direct),
                thread: message.thread_id.clone().or_else(|| d.thread_id.clone()),
            },
            (None, None) => return Err(format!("name the chat (`to`) on `{channel_id}`")),
        };
        if !may_send_with(&cfg, &caller.session_key, &target.channel, target.chat, entry.as_ref()) {
            return Err("session.sendPolicy does not allow this session to send there".into());
        }
        let main = SessionKey::main(&agent, main_key(&cfg));
        let kind = session_kind_for_key(&cfg, &agent, &caller.session_key, main.as_str());
        let workspace = agent_workspace(&cfg, &Roster::from_config(&cfg), &agent, &self.env);
        let may_read = may_attach_files(&cfg, &agent, &kind);
        let mut attachments = Vec::with_capacity(message.files.len());
        for f in &message.files {
            let a = media_out::attachment(f, &workspace, may_read, &channel)
                .map_err(|why| format!("{} not sent: {why}", media_out::file_name(f)))?;
            attachments.push(a);
        }
        if message.text.trim().is_empty() && attachments.is_empty() {
            return Err("nothing to send: give `message` text or files".into());
        }
        let out = LiveEvent::new(Direction::Out, &target.channel, &target.account)
            .agent(&agent, Some(&caller.session_key))
            .text(&message.text);
        let msg = OutboundMessage {
            account_id: target.account.clone(),
            peer: Peer { kind: peer_kind(target.chat), id: target.to.clone() },
            thread_id: target.thread.clone(),
            reply_to_message_id: message.reply_to.clone(),
            text: message.text,
            attachments,
            identity: presence::identity(&cfg, &agent, &channel),
        };
        let ids = deliver(&channel, msg).await?;
        self.metrics.inc(
            "chela_messages_out_total",
            &[("channel", &target.channel), ("account", &target.account), ("agent", &agent)],
        );
        self.live.publish(out);
        tracing::info!(agent, channel = %target.channel, account = %target.account, to = %target.to, "message tool: sent");
        Ok(Sent { channel: target.channel, account_id: target.account, to: target.to, message_ids: ids })
    }
}

/// The messenger of the gateway `me` will be (built inside `Arc::new_cyclic`).
pub(crate) fn messenger(me: Weak<Gateway>) -> Arc<dyn MessagingAccess> {
    Arc::new(Messenger { gateway: me })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_as_openclaw_writes_them() {
        assert_eq!(parse_to("channel:123", None), ("123".into(), ChatType::Channel));
        assert_eq!(parse_to("user:42", Some(ChatType::Group)), ("42".into(), ChatType::Direct));
        assert_eq!(parse_to("group:abc", None), ("abc".into(), ChatType::Group));
        assert_eq!(
            parse_to("-100500", Some(ChatType::Group)),
            ("-100500".into(), ChatType::Group),
            "the session's own chat"
        );
        assert_eq!(parse_to("+15550001111", None), ("+15550001111".into(), ChatType::Direct));
    }
}
