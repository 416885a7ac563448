//! Where every inbound event enters: accepted into the journal (durable)
//! before the platform is told it was received, then queued behind the
//! earlier messages of its chat. On start, what the journal holds comes back
//! the same way: undelivered replies are sent, unfinished events run again,
//! each chat in its order.
//!
//! Must not: acknowledge anything to a platform before `accept` returned
//! (callers answer the webhook or poll again only after), or run two
//! messages of one chat at once.

use std::sync::Arc;

use chela_journal::Recovered;
use chela_plugin::channel::{ChannelRuntime, InboundEvent};

use crate::inbound::Ticket;
use crate::journal::JournalFailure;
use crate::journal_codec::{chat_key, event_of, incoming, reply_of};
use crate::Gateway;

impl Gateway {
    /// Accepts an adapter's events into the journal and queues the new ones
    /// in their chats. When this returns `Ok`, every event is durable (or a
    /// duplicate of one that is) and the platform may be told.
    pub(crate) async fn intake(
        self: &Arc<Self>,
        channel: &Arc<ChannelRuntime>,
        events: Vec<InboundEvent>,
    ) -> Result<(), JournalFailure> {
        if events.is_empty() {
            return Ok(());
        }
        let seqs = self.journal.accept(events.iter().map(incoming).collect()).await?;
        for (ev, seq) in events.into_iter().zip(seqs) {
            match seq {
                Some(seq) => self.enqueue(channel.clone(), ev, Ticket::accepted_now(seq)),
                None => {
                    self.drop_event(&ev.channel, &ev.account_id, "duplicate: this message was accepted before");
                }
            }
        }
        Ok(())
    }

    /// Runs an accepted event after the earlier ones of its chat: the next
    /// one is let in once this one has its place in its session's line (so
    /// it can meet this turn as its queue mode says), and its reply leaves
    /// after this one's.
    fn enqueue(self: &Arc<Self>, channel: Arc<ChannelRuntime>, ev: InboundEvent, ticket: Ticket) {
        let chat = chat_key(&ev.channel, &ev.account_id, &ev.peer, ev.thread_id.as_deref());
        let gw = self.clone();
        self.chats.push(&chat.clone(), async move {
            let order = gw.reply_order.next(&chat);
            let (admitted, on_admitted) = tokio::sync::oneshot::channel();
            let run = gw.clone();
            tokio::spawn(async move {
                let out = run.process(channel, ev, ticket, Some(admitted), Some(&order)).await;
                order.finish();
                tracing::debug!(?out, "inbound handled");
            });
            // Admitted, or finished without a turn (the sender dropped).
            let _ = on_admitted.await;
        });
    }

    /// What a crash left in the journal, resumed: each undelivered reply is
    /// sent (once), then each unfinished event runs, in its chat's order.
    pub(crate) fn resume(self: &Arc<Self>, recovered: Recovered) {
        let (replies, events) = (recovered.undelivered.len(), recovered.unfinished.len());
        if replies + events > 0 || !recovered.skipped.is_empty() {
            tracing::info!(replies, events, skipped = recovered.skipped.len(), "resuming what the journal holds");
        }
        for r in recovered.undelivered {
            let Some((channel_id, message)) = reply_of(&r.message) else {
                tracing::warn!(id = r.id, "journaled reply unreadable; dropped");
                continue;
            };
            let Some(channel) = self.channel(&channel_id) else {
                tracing::warn!(id = r.id, channel = %channel_id, "journaled reply for a channel that is not running; kept for the next start");
                continue;
            };
            let gw = self.clone();
            self.chats.push(&r.chat, async move {
                let _ = gw.send_reply(&channel, Some(r.id), message).await;
            });
        }
        for u in recovered.unfinished {
            let Some(ev) = event_of(&u.event) else {
                tracing::warn!(seq = u.seq, "journaled event unreadable; finished without a reply");
                let gw = self.clone();
                tokio::spawn(async move { gw.journal.finish(u.seq, "unreadable").await });
                continue;
            };
            let Some(channel) = self.channel(&ev.channel) else {
                tracing::warn!(seq = u.seq, channel = %ev.channel, "journaled event for a channel that is not running; kept for the next start");
                continue;
            };
            self.enqueue(channel, ev, Ticket { seq: Some(u.seq), answered_by: u.answered_by, accepted: None });
        }
    }
}
