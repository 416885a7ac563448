//! The live feed (the control page's Live page, `GET /api/v1/events`): what
//! the gateway does with messages — in, out, dropped — as it happens.
//!
//! A bounded broadcast: publishing never waits, and a subscriber that falls
//! behind is told how many events it missed instead of slowing messages
//! down. Text is a preview (the first [`PREVIEW_CHARS`] characters); the
//! transcript has the rest.
//!
//! Must not: block or fail the message path, or be readable without the
//! control token (it is served only through the control API's guard).

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;

/// Events kept for a slow subscriber before it starts missing them.
const CAPACITY: usize = 1024;
pub const PREVIEW_CHARS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
    Dropped,
}

/// One thing that happened to a message.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveEvent {
    pub kind: Direction,
    pub at_ms: i64,
    pub channel: String,
    pub account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Why a message was dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl LiveEvent {
    pub fn new(kind: Direction, channel: &str, account: &str) -> LiveEvent {
        LiveEvent {
            kind,
            at_ms: chela_agent::clock::now_ms(),
            channel: channel.to_string(),
            account: account.to_string(),
            agent: None,
            session_key: None,
            text: None,
            reason: None,
        }
    }

    pub fn agent(mut self, agent: &str, session_key: Option<&str>) -> LiveEvent {
        self.agent = Some(agent.to_string());
        self.session_key = session_key.map(str::to_string);
        self
    }

    pub fn text(mut self, text: &str) -> LiveEvent {
        let mut preview: String = text.chars().take(PREVIEW_CHARS).collect();
        if preview.len() < text.len() {
            preview.push('…');
        }
        self.text = Some(preview);
        self
    }

    pub fn reason(mut self, why: &str) -> LiveEvent {
        self.reason = Some(why.to_string());
        self
    }
}

/// The feed: publish from the message path, subscribe from the control API.
pub struct Live {
    tx: broadcast::Sender<Arc<LiveEvent>>,
}

impl Default for Live {
    fn default() -> Self {
        Live { tx: broadcast::channel(CAPACITY).0 }
    }
}

impl Live {
    /// Never waits; with no subscriber the event is simply gone.
    pub fn publish(&self, event: LiveEvent) {
        let _ = self.tx.send(Arc::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slow_subscriber_misses_events_without_slowing_the_publisher() {
        let live = Live::default();
        let mut rx = live.subscribe();
        for _ in 0..CAPACITY + 10 {
            live.publish(LiveEvent::new(Direction::In, "telegram", "default"));
        }
        assert!(matches!(rx.recv().await, Err(broadcast::error::RecvError::Lagged(10))));
        assert!(rx.recv().await.is_ok());
        let long = "x".repeat(PREVIEW_CHARS + 5);
        let e = LiveEvent::new(Direction::Out, "slack", "a").text(&long);
        assert_eq!(e.text.unwrap().chars().count(), PREVIEW_CHARS + 1);
    }
}
