//! Per-chat order for every delivery path (webhook, polled, socket,
//! replayed): the jobs of one chat run one after another in the order they
//! were pushed; different chats run in parallel. A chat's worker lives while
//! its queue has work and ends when it drains, so idle chats cost nothing.
//!
//! Must not: decide what a job does, or let two jobs of one chat overlap.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Default)]
pub(crate) struct ChatQueues {
    chats: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Job>>>>,
}

impl ChatQueues {
    /// Runs `job` after every job pushed before it for `chat`.
    pub fn push(&self, chat: &str, job: impl Future<Output = ()> + Send + 'static) {
        let mut chats = self.chats.lock().unwrap_or_else(|p| p.into_inner());
        let job: Job = Box::pin(job);
        let job = match chats.get(chat) {
            Some(tx) => match tx.send(job) {
                Ok(()) => return,
                Err(mpsc::error::SendError(job)) => job, // its worker just ended
            },
            None => job,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(job);
        chats.insert(chat.to_string(), tx);
        tokio::spawn(work(self.chats.clone(), chat.to_string(), rx));
    }

    /// Chats with work queued or running.
    pub fn busy(&self) -> usize {
        self.chats.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Runs a chat's jobs until its queue is empty, then leaves (under the lock,
/// so a job pushed meanwhile is either seen here or starts a new worker).
async fn work(
    chats: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Job>>>>,
    chat: String,
    mut rx: mpsc::UnboundedReceiver<Job>,
) {
    loop {
        let next = match rx.try_recv() {
            Ok(job) => job,
            Err(_) => {
                let mut map = chats.lock().unwrap_or_else(|p| p.into_inner());
                match rx.try_recv() {
                    Ok(job) => job,
                    Err(_) => {
                        map.remove(&chat);
                        return;
                    }
                }
            }
        };
        next.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_chats_jobs_keep_their_order_and_chats_run_in_parallel() {
        let q = ChatQueues::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
        // Chat a's first job waits for chat b: b must run while a is busy.
        let l = log.clone();
        q.push("a", async move {
            let _ = gate_rx.await;
            l.lock().unwrap().push("a1");
        });
        for i in 2..=20 {
            let l = log.clone();
            q.push("a", async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                l.lock().unwrap().push(Box::leak(format!("a{i}").into_boxed_str()));
            });
        }
        let l = log.clone();
        q.push("b", async move {
            l.lock().unwrap().push("b1");
            let _ = gate_tx.send(());
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while log.lock().unwrap().len() < 21 {
            assert!(std::time::Instant::now() < deadline, "jobs did not finish: {:?}", log.lock().unwrap());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let log = log.lock().unwrap().clone();
        assert_eq!(log[0], "b1", "b ran while a's first job waited");
        let a: Vec<&str> = log.iter().copied().filter(|s| s.starts_with('a')).collect();
        let want: Vec<String> = (1..=20).map(|i| format!("a{i}")).collect();
        assert_eq!(a, want.iter().map(String::as_str).collect::<Vec<_>>());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while q.busy() > 0 {
            assert!(std::time::Instant::now() < deadline, "idle workers did not end");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
