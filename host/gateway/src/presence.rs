//! What a chat sees of an agent at work, through its adapter: the
//! acknowledgement reaction on a message taken in, the typing indicator
//! while the turn runs, shown again every `typingIntervalSeconds` until the
//! turn ends (core's `presence` decides when), and the agent's name and
//! emoji on its replies where one bot posts for several agents (per-post
//! identity where the adapter has it; `responsePrefix` anywhere).
//!
//! Must not: hold up a turn: every call to the platform runs beside it and
//! its failure is only logged.

use std::sync::Arc;
use std::time::Duration;

use chela_agent::model::{TextEvent, TextSink};
use chela_core::config::schema::Config;
use chela_core::presence::{StatusReactions, TurnStage, TypingStart};
use chela_plugin::channel::{ChannelRuntime, Features, Identity, InboundEvent, MessageRef};

/// The `responsePrefix` for a reply of `agent_id` on `channel`/`account`
/// (core's `reply_prefix`), its variables filled: `model` is what answered
/// (`None`: the agent's configured model, for text sent while it runs),
/// the thinking level the session's turns use, the agent's name.
pub(crate) fn reply_prefix(
    cfg: &Config,
    channel: &str,
    account: &str,
    agent_id: &str,
    session_thinking: Option<&str>,
    model: Option<&str>,
) -> Option<String> {
    let template = chela_core::reply_prefix::response_prefix(cfg, channel, account)?;
    let configured = cfg.agent_model(agent_id).unwrap_or(chela_agent::runtime::DEFAULT_MODEL);
    let thinking = chela_core::thinking::resolve(cfg, agent_id, session_thinking).map_or("off", |(l, _)| l.as_str());
    let name = cfg.agent(agent_id).and_then(|(_, a)| a.identity.as_ref()?.name.clone());
    let vars = chela_core::reply_prefix::PrefixVars {
        model_full: model.unwrap_or(configured),
        thinking_level: thinking,
        identity_name: name.as_deref().unwrap_or(agent_id),
    };
    Some(chela_core::reply_prefix::render(&template, &vars))
}

/// The agent's `identity` (name, emoji, an `https` avatar) for a reply,
/// when the adapter posts under per-message identities.
pub(crate) fn identity(cfg: &Config, agent_id: &str, channel: &ChannelRuntime) -> Option<Identity> {
    if !channel.features().contains(Features::IDENTITY) {
        return None;
    }
    let i = cfg.agent(agent_id).and_then(|(_, a)| a.identity.clone())?;
    let avatar_url = i.avatar.filter(|a| a.starts_with("https://"));
    (i.name.is_some() || i.emoji.is_some() || avatar_url.is_some()).then_some(Identity {
        name: i.name,
        emoji: i.emoji,
        avatar_url,
    })
}

/// Puts `emoji` on the event's message, beside the turn.
pub(crate) fn acknowledge(channel: &Arc<ChannelRuntime>, ev: &InboundEvent, emoji: String) {
    if !channel.features().contains(Features::REACT) || ev.message_id.is_empty() {
        return;
    }
    let message = MessageRef {
        account_id: ev.account_id.clone(),
        peer: ev.peer.clone(),
        thread_id: ev.thread_id.clone(),
        message_id: ev.message_id.clone(),
    };
    let channel = channel.clone();
    tokio::spawn(async move {
        if let Err(e) = channel.react(message, &emoji).await {
            tracing::warn!(channel = %channel.channel_id(), error = %e, "ack reaction not sent");
        }
    });
}

/// A turn's stages shown as reactions on the message it answers (core's
/// `status_reactions` decides which, and how a channel shows them): the
/// acknowledgement first, then one reaction call at a time, in order, an
/// unchanged one not repeated.
pub(crate) struct Status {
    tx: tokio::sync::mpsc::UnboundedSender<TurnStage>,
}

impl Status {
    /// Status reactions for the event's message, when its adapter reacts.
    pub(crate) fn begin(channel: &Arc<ChannelRuntime>, ev: &InboundEvent, s: StatusReactions) -> Option<Status> {
        if !channel.features().contains(Features::REACT) || ev.message_id.is_empty() {
            return None;
        }
        let message = MessageRef {
            account_id: ev.account_id.clone(),
            peer: ev.peer.clone(),
            thread_id: ev.thread_id.clone(),
            message_id: ev.message_id.clone(),
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<TurnStage>();
        let channel = channel.clone();
        tokio::spawn(async move {
            let mut shown = s.ack.clone();
            if let Err(e) = channel.react(message.clone(), &s.ack).await {
                tracing::warn!(channel = %channel.channel_id(), error = %e, "ack reaction not sent");
            }
            while let Some(stage) = rx.recv().await {
                let Some(emoji) = s.emoji(stage).filter(|e| *e != shown) else { continue };
                match channel.react(message.clone(), emoji).await {
                    Ok(()) => shown = emoji.to_string(),
                    Err(e) => tracing::debug!(channel = %channel.channel_id(), error = %e, "status reaction not sent"),
                }
            }
        });
        Some(Status { tx })
    }

    /// The turn's stages as they happen.
    pub(crate) fn sink(&self) -> TextSink {
        let tx = self.tx.clone();
        Arc::new(move |ev: TextEvent<'_>| {
            let stage = match ev {
                TextEvent::Thinking => TurnStage::Thinking,
                TextEvent::Tool(_) => TurnStage::Tool,
                TextEvent::Compacting => TurnStage::Compacting,
                TextEvent::Delta(_) | TextEvent::MessageEnd | TextEvent::ToolSummary(_) => return,
            };
            let _ = tx.send(stage);
        })
    }

    /// The turn is over (`failed`: with an error): its last reaction goes
    /// after the others, beside the reply (which does not wait for it).
    pub(crate) fn finish(self, failed: bool) {
        let _ = self.tx.send(if failed { TurnStage::Error } else { TurnStage::Done });
    }
}

/// Silent answers that never start typing (`message` mode): a reply that
/// is still a prefix of one of these shows nothing yet.
const SILENT: [&str; 2] = ["NO_REPLY", "HEARTBEAT_OK"];

/// Typing in one chat for as long as this lives.
pub(crate) struct Typing {
    start: Arc<tokio::sync::Notify>,
    /// Told when the turn is over: the loop ends after the call in flight
    /// (never cut off: an adapter call is finished, not abandoned).
    stop: tokio::sync::watch::Sender<bool>,
    seen: Arc<std::sync::Mutex<String>>,
}

impl Typing {
    /// Typing for the event's chat, from now (`AtStart`) or from the
    /// model's first visible text ([`Typing::sink`]), repeated every `every`.
    pub(crate) fn begin(
        channel: &Arc<ChannelRuntime>,
        ev: &InboundEvent,
        when: TypingStart,
        every: Duration,
    ) -> Typing {
        let start = Arc::new(tokio::sync::Notify::new());
        let seen = Arc::new(std::sync::Mutex::new(String::new()));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        if when == TypingStart::Never || !channel.features().contains(Features::TYPING) {
            return Typing { start, stop, seen };
        }
        let (channel, account, peer, thread) =
            (channel.clone(), ev.account_id.clone(), ev.peer.clone(), ev.thread_id.clone());
        let wait = start.clone();
        tokio::spawn(async move {
            if when == TypingStart::OnOutput {
                tokio::select! {
                    _ = wait.notified() => {}
                    _ = stopped.changed() => return,
                }
            }
            loop {
                if let Err(e) = channel.typing(&account, &peer, thread.as_deref()).await {
                    tracing::debug!(channel = %channel.channel_id(), error = %e, "typing not shown");
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stopped.changed() => return,
                }
            }
        });
        Typing { start, stop, seen }
    }

    /// The sink that starts `OnOutput` typing at the first visible text.
    pub(crate) fn sink(&self) -> TextSink {
        let (start, seen) = (self.start.clone(), self.seen.clone());
        Arc::new(move |ev: TextEvent<'_>| {
            let TextEvent::Delta(delta) = ev else { return };
            let mut so_far = seen.lock().unwrap_or_else(|p| p.into_inner());
            if so_far.len() > 32 {
                return;
            }
            so_far.push_str(delta);
            let text = so_far.trim_start();
            if !text.is_empty() && !SILENT.iter().any(|s| s.starts_with(text) || text.starts_with(s)) {
                start.notify_one();
                so_far.push_str(&" ".repeat(33)); // decided: nothing more to look at
            }
        })
    }
}

impl Drop for Typing {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
