//! A turn's answer shown while it is written (core's `preview`): the text so
//! far goes out as one message once `minChars` are written and is edited
//! each time `minChars` more are; when the turn ends, the final answer
//! replaces it in place (`finish` hands the message over for that edit).
//! Edits are paced by the text, one in flight at a time; those that queue
//! up behind a slow platform collapse into the latest.
//!
//! Must not: hold up the turn (the model's text goes into a queue and the
//! platform is called beside it), or preview on a channel without edits.

use std::sync::{Arc, Mutex};

use chela_agent::model::{TextEvent, TextSink};
use chela_core::preview::{PreviewMode, PreviewSettings};
use chela_plugin::channel::{ChannelRuntime, Delivery, Features, InboundEvent, MessageRef, OutboundMessage};
use tokio::sync::mpsc;

/// Text cut to at most `limit` UTF-16 units (what platforms count), at a char boundary.
pub(crate) fn cut(text: &str, limit: usize) -> &str {
    let mut units = 0;
    for (i, c) in text.char_indices() {
        units += c.len_utf16();
        if units > limit {
            return &text[..i];
        }
    }
    text
}

/// What the sink has seen.
struct Seen {
    text: String,
    /// Length of the text when the last snapshot was queued.
    queued: usize,
}

pub(crate) struct Preview {
    /// Snapshots, then `None`: the turn is over (the sink may outlive it).
    tx: mpsc::UnboundedSender<Option<String>>,
    task: tokio::task::JoinHandle<Option<(MessageRef, String)>>,
    seen: Arc<Mutex<Seen>>,
    min_chars: usize,
    limit: usize,
}

impl Preview {
    /// A preview for the event's chat, when the account streams previews
    /// and its adapter edits messages.
    pub(crate) fn begin(channel: &Arc<ChannelRuntime>, ev: &InboundEvent, s: PreviewSettings) -> Option<Preview> {
        if s.mode == PreviewMode::Off || !channel.features().contains(Features::EDIT) {
            return None;
        }
        let limit = channel.info.text_limit.max(1) as usize;
        let (tx, rx) = mpsc::unbounded_channel::<Option<String>>();
        let task = tokio::spawn(show(channel.clone(), ev.clone(), rx));
        let seen = Arc::new(Mutex::new(Seen { text: String::new(), queued: 0 }));
        Some(Preview { tx, task, seen, min_chars: s.min_chars, limit })
    }

    /// Where the model's text goes: a snapshot is queued each time
    /// `min_chars` more are written (cut to the platform's limit).
    pub(crate) fn sink(&self) -> TextSink {
        let (seen, tx, min, limit) = (self.seen.clone(), self.tx.clone(), self.min_chars, self.limit);
        Arc::new(move |ev: TextEvent<'_>| {
            let TextEvent::Delta(delta) = ev else { return };
            let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
            s.text.push_str(delta);
            let len = s.text.chars().count();
            if len >= s.queued + min && s.queued < limit {
                s.queued = len;
                let _ = tx.send(Some(cut(&s.text, limit).trim_end().to_string()));
            }
        })
    }

    /// Stops previewing once what is queued is shown; the preview message
    /// and the text it shows, if one was sent.
    pub(crate) async fn finish(self) -> Option<(MessageRef, String)> {
        let _ = self.tx.send(None);
        self.task.await.ok().flatten()
    }
}

/// Sends the first snapshot, then edits it into each later one.
async fn show(
    channel: Arc<ChannelRuntime>,
    ev: InboundEvent,
    mut rx: mpsc::UnboundedReceiver<Option<String>>,
) -> Option<(MessageRef, String)> {
    let mut shown: Option<(MessageRef, String)> = None;
    while let Some(Some(mut text)) = rx.recv().await {
        // The first preview shows what was there at `minChars`; behind a
        // slow platform, later ones skip to the latest text (up to the end).
        let mut over = false;
        while let (true, Ok(newer)) = (shown.is_some(), rx.try_recv()) {
            match newer {
                Some(t) => text = t,
                None => over = true,
            }
        }
        match &mut shown {
            None => {
                let first = OutboundMessage {
                    account_id: ev.account_id.clone(),
                    peer: ev.peer.clone(),
                    thread_id: ev.thread_id.clone(),
                    reply_to_message_id: Some(ev.message_id.clone()),
                    text: text.clone(),
                    attachments: Vec::new(),
                    identity: None,
                };
                match channel.send(first).await {
                    Ok(Delivery::Sent(ids)) if !ids.is_empty() => {
                        let message = MessageRef {
                            account_id: ev.account_id.clone(),
                            peer: ev.peer.clone(),
                            thread_id: ev.thread_id.clone(),
                            message_id: ids[0].clone(),
                        };
                        shown = Some((message, text));
                    }
                    other => {
                        tracing::warn!(channel = %channel.channel_id(), result = ?other, "preview not sent; the answer comes when the turn ends");
                        return None;
                    }
                }
            }
            Some((message, on_screen)) => match channel.edit(message.clone(), &text).await {
                Ok(Delivery::Sent(_)) => *on_screen = text,
                other => tracing::debug!(channel = %channel.channel_id(), result = ?other, "preview edit skipped"),
            },
        }
        if over {
            break;
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_count_utf16_units_at_char_boundaries() {
        assert_eq!(cut("héllo", 3), "hél");
        assert_eq!(cut("a🦀b", 2), "a");
        assert_eq!(cut("a🦀b", 3), "a🦀");
        assert_eq!(cut("short", 10), "short");
    }
}
