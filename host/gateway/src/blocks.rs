//! Block replies (core's `block_stream`): while a turn runs, its text is
//! cut into blocks by the core's chunker (at each text end, or only when an
//! assistant message ends under `blockStreamingBreak: "message_end"`),
//! merged by the coalescer where the channel coalesces, and each block is
//! sent as a normal message into the chat the message came from (the first
//! one replying to it), with `humanDelay`'s pause between blocks. `MEDIA:`
//! lines are not sent as text: the reply path attaches their files when
//! the turn ends, with whatever of the answer the blocks did not carry.
//!
//! Must not: hold up the turn (the model's text goes into a queue and the
//! platform is called beside it), cut text itself (core's `BlockChunker`
//! does), or stream blocks and a preview for the same turn.

use std::sync::Arc;
use std::time::Duration;

use chela_agent::model::{TextEvent, TextSink};
use chela_core::block_stream::{BlockChunker, BlockSettings, BreakAt, Coalescer};
use chela_core::media::reply_media;
use chela_plugin::channel::{ChannelRuntime, Identity, InboundEvent, OutboundMessage};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::delivery::deliver;

enum Piece {
    Text(String),
    MessageEnd,
}

/// What the blocks carried, once the turn is over.
#[derive(Debug, Default)]
pub(crate) struct Streamed {
    /// The platform ids of every block sent.
    pub ids: Vec<String>,
    /// The text of the turn's last assistant message (the one the reply is),
    /// as the model wrote it.
    pub last_message: String,
}

impl Streamed {
    /// What of `reply` (the turn's answer as the chat would get it, without
    /// its `MEDIA:` lines) the blocks did not carry: the notices before it
    /// and the `/verbose` list after it. All of it when no block went out.
    pub(crate) fn rest_of(&self, reply: &str) -> String {
        if self.ids.is_empty() {
            return reply.to_string();
        }
        let (said, _) = reply_media(&self.last_message);
        let said = said.trim();
        if said.is_empty() {
            return reply.trim().to_string();
        }
        let mut rest = reply.replacen(said, "", 1).trim().to_string();
        while rest.contains("\n\n\n") {
            rest = rest.replace("\n\n\n", "\n\n");
        }
        rest
    }
}

/// How the blocks show who speaks: the per-post identity, and the
/// `responsePrefix` on the first block.
#[derive(Debug, Clone, Default)]
pub(crate) struct Look {
    pub identity: Option<Identity>,
    pub prefix: Option<String>,
}

pub(crate) struct BlockReplies {
    tx: mpsc::UnboundedSender<Piece>,
    task: tokio::task::JoinHandle<Streamed>,
}

impl BlockReplies {
    /// Block replies into the event's chat, as `settings` pace them.
    pub(crate) fn begin(
        channel: &Arc<ChannelRuntime>,
        ev: &InboundEvent,
        settings: BlockSettings,
        look: Look,
    ) -> BlockReplies {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(stream(channel.clone(), ev.clone(), settings, look, rx));
        BlockReplies { tx, task }
    }

    /// Where the model's text goes.
    pub(crate) fn sink(&self) -> TextSink {
        let tx = self.tx.clone();
        Arc::new(move |ev: TextEvent<'_>| {
            let piece = match ev {
                TextEvent::Delta(t) => Piece::Text(t.to_string()),
                TextEvent::MessageEnd => Piece::MessageEnd,
                TextEvent::Thinking | TextEvent::Tool(_) | TextEvent::Compacting | TextEvent::ToolSummary(_) => return,
            };
            let _ = tx.send(piece);
        })
    }

    /// The turn is over: what is still held goes out; what the blocks carried.
    pub(crate) async fn finish(self) -> Streamed {
        drop(self.tx);
        self.task.await.unwrap_or_default()
    }
}

/// One chat's block replies: sends in order, one at a time.
struct Sender {
    channel: Arc<ChannelRuntime>,
    ev: InboundEvent,
    look: Look,
    settings: BlockSettings,
    out: Streamed,
}

impl Sender {
    async fn send(&mut self, text: String) {
        let (kept, _) = reply_media(&text);
        let kept = kept.trim();
        if kept.is_empty() {
            return;
        }
        if let (Some(delay), false) = (self.settings.human_delay, self.out.ids.is_empty()) {
            let unit = getrandom::u64().map_or(0.5, |r| (r >> 11) as f64 / (1u64 << 53) as f64);
            tokio::time::sleep(Duration::from_millis(delay.pause_ms(unit))).await;
        }
        let first = self.out.ids.is_empty();
        let text = match self.look.prefix.as_deref().filter(|_| first) {
            Some(p) => chela_core::reply_prefix::apply(p, kept),
            None => kept.to_string(),
        };
        let msg = OutboundMessage {
            account_id: self.ev.account_id.clone(),
            peer: self.ev.peer.clone(),
            thread_id: self.ev.thread_id.clone(),
            reply_to_message_id: first.then(|| self.ev.message_id.clone()),
            text,
            attachments: Vec::new(),
            identity: self.look.identity.clone(),
        };
        match deliver(&self.channel, msg).await {
            Ok(ids) => self.out.ids.extend(ids),
            Err(e) => tracing::warn!(channel = %self.channel.channel_id(), error = %e, "block reply not delivered"),
        }
    }
}

async fn stream(
    channel: Arc<ChannelRuntime>,
    ev: InboundEvent,
    settings: BlockSettings,
    look: Look,
    mut rx: mpsc::UnboundedReceiver<Piece>,
) -> Streamed {
    let started = Instant::now();
    let now_ms = || started.elapsed().as_millis() as u64;
    let mut chunker = BlockChunker::new(settings.chunk);
    let mut coalescer = settings.coalesce.map(|c| Coalescer::new(c, settings.chunk.prefer));
    let mut sender = Sender { channel, ev, look, settings, out: Streamed::default() };
    let mut message = String::new();
    // A block goes through the coalescer, when there is one.
    async fn offer(sender: &mut Sender, coalescer: &mut Option<Coalescer>, block: String, now: u64) {
        match coalescer {
            Some(c) => {
                if let Some(ready) = c.push(block, now) {
                    sender.send(ready).await;
                }
            }
            None => sender.send(block).await,
        }
    }
    loop {
        let due = coalescer.as_ref().and_then(Coalescer::due_at);
        let piece = match due {
            Some(at) => tokio::select! {
                p = rx.recv() => p,
                _ = tokio::time::sleep_until(started + Duration::from_millis(at)) => {
                    if let Some(ready) = coalescer.as_mut().and_then(|c| c.take_due(now_ms())) {
                        sender.send(ready).await;
                    }
                    continue;
                }
            },
            None => rx.recv().await,
        };
        match piece {
            Some(Piece::Text(t)) => {
                message.push_str(&t);
                if settings.break_at == BreakAt::TextEnd {
                    for block in chunker.push(&t) {
                        offer(&mut sender, &mut coalescer, block, now_ms()).await;
                    }
                }
            }
            Some(Piece::MessageEnd) => {
                if settings.break_at == BreakAt::MessageEnd {
                    chunker.push(&message);
                }
                for block in chunker.flush() {
                    offer(&mut sender, &mut coalescer, block, now_ms()).await;
                }
                sender.out.last_message = std::mem::take(&mut message);
            }
            None => break,
        }
    }
    // The turn is over (a message that did not end, e.g. an aborted turn, goes as it is).
    if settings.break_at == BreakAt::MessageEnd && !message.is_empty() {
        chunker.push(&message);
    }
    for block in chunker.flush() {
        offer(&mut sender, &mut coalescer, block, now_ms()).await;
    }
    if let Some(rest) = coalescer.as_mut().and_then(Coalescer::finish) {
        sender.send(rest).await;
    }
    if !message.is_empty() {
        sender.out.last_message = message;
    }
    sender.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_is_what_the_blocks_did_not_say() {
        let s = Streamed { ids: vec!["1".into()], last_message: "The answer.\nMEDIA:out/a.png".into() };
        assert_eq!(s.rest_of("Compacted.\n\nThe answer.\n\nTools: read"), "Compacted.\n\nTools: read");
        assert_eq!(s.rest_of("The answer."), "");
        let none = Streamed::default();
        assert_eq!(none.rest_of("The answer."), "The answer.", "nothing streamed: all of it");
    }
}
