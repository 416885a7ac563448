//! The live feed (the control page's Live page, `GET /api/v1/events`): what
//! the gateway does with messages — in, out, dropped — as it happens.
//!
//! A bounded broadcast: publishing never waits, and a subscriber that falls
//! behind is told how many events it missed instead of slowing messages
//! down. Text is a preview (the first [`PREVIEW_CHARS`] characters); the
//! transcript has the rest. It also counts, per minute, messages in by
//! agent and drops by class (the Overview's charts, `GET /api/v1/traffic`).
//!
//! Must not: block or fail the message path, or be readable without the
//! control token (it is served only through the control API's guard).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

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
    /// The drop's class (`dm_policy`, `no_mention`…: the metric's `reason`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_class: Option<String>,
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
            reason_class: None,
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

    pub fn reason(mut self, why: &str, class: &str) -> LiveEvent {
        self.reason = Some(why.to_string());
        self.reason_class = Some(class.to_string());
        self
    }
}

/// One minute of traffic: messages in by agent, drops by class.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Minute {
    pub at_ms: i64,
    #[serde(rename = "in")]
    pub messages_in: BTreeMap<String, u64>,
    pub dropped: BTreeMap<String, u64>,
}

/// Minutes of traffic kept (the Overview's charts show the last 30).
const MINUTES_KEPT: usize = 60;
const MINUTE_MS: i64 = 60_000;

/// The feed: publish from the message path, subscribe from the control API;
/// it also counts what it carries per minute.
pub struct Live {
    tx: broadcast::Sender<Arc<LiveEvent>>,
    minutes: Mutex<VecDeque<Minute>>,
}

impl Default for Live {
    fn default() -> Self {
        Live { tx: broadcast::channel(CAPACITY).0, minutes: Mutex::default() }
    }
}

impl Live {
    /// Never waits on a subscriber; with none the event is only counted.
    pub fn publish(&self, event: LiveEvent) {
        self.count(&event);
        let _ = self.tx.send(Arc::new(event));
    }

    fn count(&self, e: &LiveEvent) {
        let (bucket, key) = match e.kind {
            Direction::In => (0, e.agent.clone().unwrap_or_else(|| "-".into())),
            Direction::Dropped => (1, e.reason_class.clone().unwrap_or_else(|| "other".into())),
            Direction::Out => return,
        };
        let at = e.at_ms - e.at_ms.rem_euclid(MINUTE_MS);
        let mut minutes = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        if minutes.back().is_none_or(|m| m.at_ms < at) {
            minutes.push_back(Minute { at_ms: at, ..Minute::default() });
            while minutes.len() > MINUTES_KEPT {
                minutes.pop_front();
            }
        }
        if let Some(m) = minutes.iter_mut().rev().find(|m| m.at_ms == at) {
            let map = if bucket == 0 { &mut m.messages_in } else { &mut m.dropped };
            *map.entry(key).or_default() += 1;
        }
    }

    /// The last `n` minutes up to `now_ms`, oldest first, quiet ones included.
    pub fn traffic(&self, now_ms: i64, n: usize) -> Vec<Minute> {
        let minutes = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        let last = now_ms - now_ms.rem_euclid(MINUTE_MS);
        (0..n as i64)
            .rev()
            .map(|back| {
                let at = last - back * MINUTE_MS;
                minutes.iter().find(|m| m.at_ms == at).cloned().unwrap_or(Minute { at_ms: at, ..Minute::default() })
            })
            .collect()
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
        let now = chela_agent::clock::now_ms();
        live.publish(LiveEvent::new(Direction::Dropped, "slack", "a").reason("not mentioned", "no_mention"));
        let minutes = live.traffic(now, 30);
        assert_eq!(minutes.len(), 30);
        // (Summed: the publishing may straddle a minute boundary.)
        let total = |f: fn(&Minute) -> u64| minutes.iter().map(f).sum::<u64>();
        assert_eq!(total(|m| m.messages_in.get("-").copied().unwrap_or(0)), CAPACITY as u64 + 10, "counted unheard");
        assert_eq!(total(|m| m.dropped.get("no_mention").copied().unwrap_or(0)), 1);
        assert!(minutes[..28].iter().all(|m| m.messages_in.is_empty()), "quiet minutes are empty");
        let long = "x".repeat(PREVIEW_CHARS + 5);
        let e = LiveEvent::new(Direction::Out, "slack", "a").text(&long);
        assert_eq!(e.text.unwrap().chars().count(), PREVIEW_CHARS + 1);
    }
}
