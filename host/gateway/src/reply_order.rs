//! Replies of one chat leave in the order its messages were admitted. A
//! chat's messages enter their sessions one after another (`chat_queue`),
//! but once a message has its place in the session's line the next one is
//! let in, so a turn can meet a message sent while it runs; this keeps
//! what reaches the user in order anyway: a message's reply waits until
//! every earlier message of the chat has sent its own (or sent none).
//!
//! Must not: hold up a chat's admissions, or decide what is sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Per chat: the newest turnstile's generation and what its end signals.
type Newest = Arc<Mutex<HashMap<String, (u64, Arc<Gate>)>>>;

#[derive(Default)]
pub(crate) struct ReplyOrder {
    last: Newest,
    generation: std::sync::atomic::AtomicU64,
}

/// Opens when its turnstile is dropped.
#[derive(Default)]
struct Gate {
    rx: tokio::sync::Mutex<Option<oneshot::Receiver<()>>>,
}

/// One message's place in its chat's reply order.
pub(crate) struct Turnstile {
    before: Option<Arc<Gate>>,
    _done: oneshot::Sender<()>,
    chat: String,
    generation: u64,
    last: Newest,
}

impl ReplyOrder {
    /// The next place in `chat`'s reply order (call in admission order).
    pub fn next(&self, chat: &str) -> Turnstile {
        let (tx, rx) = oneshot::channel();
        let generation = self.generation.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let gate = Arc::new(Gate { rx: tokio::sync::Mutex::new(Some(rx)) });
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let before = last.insert(chat.to_string(), (generation, gate)).map(|(_, g)| g);
        Turnstile { before, _done: tx, chat: chat.to_string(), generation, last: self.last.clone() }
    }

    /// Chats with a reply order in force (for tests and status).
    #[cfg(test)]
    pub fn chats(&self) -> usize {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Turnstile {
    /// Waits until every earlier message of the chat is done with its reply.
    pub async fn wait(&self) {
        let Some(gate) = &self.before else { return };
        let mut rx = gate.rx.lock().await;
        if let Some(r) = rx.take() {
            let _ = r.await;
        }
    }
}

impl Turnstile {
    /// Done: the chat's next reply may go once the earlier ones have (a
    /// message without a reply must not let later replies overtake them).
    pub fn finish(self) {
        if self.before.is_none() {
            return;
        }
        tokio::spawn(async move {
            self.wait().await;
            drop(self);
        });
    }
}

impl Drop for Turnstile {
    fn drop(&mut self) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.get(&self.chat).is_some_and(|(g, _)| *g == self.generation) {
            last.remove(&self.chat);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future as _;
    use std::time::Duration;

    #[tokio::test]
    async fn a_reply_waits_for_the_earlier_ones_of_its_chat_only() {
        let order = ReplyOrder::default();
        let first = order.next("a");
        let second = order.next("a");
        let other = order.next("b");
        tokio::time::timeout(Duration::from_secs(1), other.wait()).await.expect("another chat does not wait");
        {
            let mut waiting = std::pin::pin!(second.wait());
            let polled = std::future::poll_fn(|cx| std::task::Poll::Ready(waiting.as_mut().poll(cx))).await;
            assert!(polled.is_pending(), "second waits for first");
            first.wait().await;
            drop(first);
            tokio::time::timeout(Duration::from_secs(1), waiting).await.expect("then it goes");
        }
        drop((second, other));
        assert_eq!(order.chats(), 0, "finished chats are forgotten");
    }
}
