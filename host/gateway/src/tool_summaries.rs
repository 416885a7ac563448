//! `/verbose` in a chat: each tool call's summary (the runtime's line:
//! name, ✓ or ✗, time; `full`: what it returned) sent as its own message
//! when the call finishes, in order, before the turn's reply.
//!
//! Must not: format the summaries (the agent runtime does) or hold up the turn.

use std::sync::Arc;

use chela_agent::model::{TextEvent, TextSink};
use chela_plugin::channel::{ChannelRuntime, InboundEvent, OutboundMessage};
use tokio::sync::mpsc;

use crate::delivery::deliver;

pub(crate) struct ToolSummaries {
    tx: mpsc::UnboundedSender<String>,
    task: tokio::task::JoinHandle<()>,
}

impl ToolSummaries {
    /// Summaries into the event's chat (its thread), one message each.
    pub(crate) fn begin(channel: &Arc<ChannelRuntime>, ev: &InboundEvent) -> ToolSummaries {
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let (channel, ev) = (channel.clone(), ev.clone());
        let task = tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                let msg = OutboundMessage {
                    account_id: ev.account_id.clone(),
                    peer: ev.peer.clone(),
                    thread_id: ev.thread_id.clone(),
                    reply_to_message_id: None,
                    text: line,
                    attachments: Vec::new(),
                    identity: None,
                };
                if let Err(e) = deliver(&channel, msg).await {
                    tracing::warn!(channel = %channel.channel_id(), error = %e, "tool summary not delivered");
                }
            }
        });
        ToolSummaries { tx, task }
    }

    pub(crate) fn sink(&self) -> TextSink {
        let tx = self.tx.clone();
        Arc::new(move |ev: TextEvent<'_>| {
            if let TextEvent::ToolSummary(line) = ev {
                let _ = tx.send(line.to_string());
            }
        })
    }

    /// The turn is over: every summary is out.
    pub(crate) async fn finish(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}
