//! Per-session ordering: the turns of one session key run one at a time, in
//! the order `enter` was called; different keys run in parallel. Each key's
//! queue is bounded: a message that would exceed it is refused at once (the
//! caller tells the sender) rather than queued without limit or dropped
//! silently.
//!
//! Must not: run turns itself or queue without bound.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session `{key}` already has {queued} messages queued (limit {limit}); this one was not accepted")]
pub struct QueueFull {
    pub key: String,
    pub queued: usize,
    pub limit: usize,
}

#[derive(Default)]
struct Lane {
    running: bool,
    waiting: VecDeque<oneshot::Sender<TurnPermit>>,
}

type Lanes = Arc<Mutex<HashMap<String, Lane>>>;

pub struct SessionQueues {
    lanes: Lanes,
    limit: usize,
}

/// Holding this is holding the key's turn; dropping it hands the turn to the
/// next waiter in line.
pub struct TurnPermit {
    key: String,
    lanes: Lanes,
    armed: bool,
}

impl SessionQueues {
    /// `limit`: turns per key, running plus waiting.
    pub fn new(limit: usize) -> SessionQueues {
        SessionQueues { lanes: Arc::default(), limit: limit.max(1) }
    }

    /// Takes a place in `key`'s line now and returns a future that resolves
    /// when it is this caller's turn. Dropping the future gives up the place.
    pub fn enter(&self, key: &str) -> Result<impl Future<Output = Option<TurnPermit>> + Send + 'static, QueueFull> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        let lane = lanes.entry(key.to_string()).or_default();
        let queued = usize::from(lane.running) + lane.waiting.len();
        if queued >= self.limit {
            return Err(QueueFull { key: key.to_string(), queued, limit: self.limit });
        }
        let ready = if lane.running {
            let (tx, rx) = oneshot::channel();
            lane.waiting.push_back(tx);
            Err(rx)
        } else {
            lane.running = true;
            Ok(TurnPermit { key: key.to_string(), lanes: self.lanes.clone(), armed: true })
        };
        drop(lanes);
        Ok(async move {
            match ready {
                Ok(permit) => Some(permit),
                // `None` only if the lane dropped the sender unsent, which it never does.
                Err(rx) => rx.await.ok(),
            }
        })
    }

    /// Turns running or waiting, per key (for metrics and status).
    pub fn depths(&self) -> Vec<(String, usize)> {
        let lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<(String, usize)> =
            lanes.iter().map(|(k, l)| (k.clone(), usize::from(l.running) + l.waiting.len())).collect();
        v.sort();
        v
    }
}

impl Drop for TurnPermit {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        let Some(lane) = lanes.get_mut(&self.key) else { return };
        // Hand the turn to the first waiter still waiting.
        while let Some(next) = lane.waiting.pop_front() {
            let permit = TurnPermit { key: self.key.clone(), lanes: self.lanes.clone(), armed: true };
            match next.send(permit) {
                Ok(()) => return,
                // That waiter gave up: its permit must not hand over again.
                Err(mut unused) => unused.armed = false,
            }
        }
        lanes.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_key_runs_in_order_other_keys_in_parallel() {
        let q = Arc::new(SessionQueues::new(10));
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let turn = q.enter("a").unwrap();
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let _p = turn.await.unwrap();
                log.lock().unwrap().push(format!("a{i}-start"));
                tokio::time::sleep(Duration::from_millis(5 - i)).await;
                log.lock().unwrap().push(format!("a{i}-end"));
            }));
        }
        // Another key is not held up by `a`'s line.
        let b = tokio::time::timeout(Duration::from_millis(2), q.enter("b").unwrap()).await;
        assert!(b.is_ok_and(|p| p.is_some()));
        for t in tasks {
            t.await.unwrap();
        }
        let log = log.lock().unwrap().clone();
        let expected: Vec<String> = (0..5).flat_map(|i| [format!("a{i}-start"), format!("a{i}-end")]).collect();
        assert_eq!(log, expected);
        assert!(q.depths().is_empty(), "idle lanes are removed: {:?}", q.depths());
    }

    #[tokio::test]
    async fn full_queue_refuses_and_abandoned_waiters_are_skipped() {
        let q = SessionQueues::new(3);
        let first = q.enter("k").unwrap().await.unwrap();
        let abandoned = q.enter("k").unwrap();
        let third = q.enter("k").unwrap();
        let err = q.enter("k").err().expect("fourth is refused");
        assert_eq!((err.queued, err.limit), (3, 3));
        drop(abandoned);
        drop(first);
        let p = tokio::time::timeout(Duration::from_millis(100), third).await.expect("turn handed over");
        assert!(p.is_some());
        assert_eq!(q.depths(), vec![("k".to_string(), 1)]);
        drop(p);
        assert!(q.depths().is_empty());
    }
}
