//! A turn's conversation and what its model rounds are asked with: the
//! session store as a turn uses it (every call on the blocking pool, its
//! wait measured), the conversation the turn extends (each message on disk
//! before the next step; a detached copy writes nothing), and the `Ask`
//! shared by every round. Shared by the turn (`turn.rs`) and its
//! housekeeping (`compact.rs`).
//!
//! Must not: call a model or decide when to compact.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use crate::clock;
use crate::model::{Sampling, TextSink};
use crate::persona::Identity;
use crate::queue::TurnPermit;
use crate::store::transcript::message_entry;
use crate::store::{Message, SessionEntry, SessionStore, StoreError, Transcript};

/// Runs store work on the blocking pool: its fsyncs wait there, never on an
/// async worker, and the index changes of many turns meet in one commit.
pub(super) async fn off_thread<T: Send + 'static>(
    store: &Arc<dyn SessionStore>,
    work: impl FnOnce(&dyn SessionStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || work(store.as_ref())).await {
        Ok(out) => out,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(StoreError::Interrupted(e.to_string())),
    }
}

/// The session store as one turn uses it: every call on the blocking pool
/// ([`off_thread`]), and the time the turn spent waiting on it (for the
/// store-time histogram).
#[derive(Clone)]
pub(super) struct TurnStore {
    store: Arc<dyn SessionStore>,
    waited_ns: Arc<std::sync::atomic::AtomicU64>,
}

impl TurnStore {
    pub(super) fn new(store: Arc<dyn SessionStore>) -> TurnStore {
        TurnStore { store, waited_ns: Arc::default() }
    }

    pub(super) async fn call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn SessionStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let started = std::time::Instant::now();
        let out = off_thread(&self.store, work).await;
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.waited_ns.fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
        out
    }

    /// The session's turn held against other replicas (nothing on the embedded store).
    pub(super) async fn hold(&self, key: &str) -> Result<crate::store::TurnHold, StoreError> {
        let started = std::time::Instant::now();
        let held = self.store.hold_turn(key).await;
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.waited_ns.fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
        held
    }

    pub(super) fn waited(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.waited_ns.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// The session's conversation as this turn extends it: each message is on
/// disk before the next step starts, so a crash loses at most the step in progress.
pub(super) struct Conversation {
    store: TurnStore,
    key: Arc<str>,
    entry: Arc<SessionEntry>,
    cwd: Arc<str>,
    /// What the model sees (since the last compaction), extended as the turn goes.
    pub(super) view: Transcript,
    /// A private copy (the memory flush): its appends stay in memory.
    detached: bool,
    /// The compaction count at which the memory flush last ran (one flush per cycle).
    pub(super) flushed_at_compaction: Option<u64>,
    /// Session pruning's projections and cache clock (`prune.rs`).
    pub(super) pruning: crate::pruning::PruneState,
}

fn new_entry_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

impl Conversation {
    pub(super) fn new(
        store: TurnStore,
        key: &str,
        entry: Arc<SessionEntry>,
        cwd: Arc<str>,
        view: Transcript,
    ) -> Conversation {
        let flushed_at_compaction = entry.memory_flush_compaction_count;
        Conversation {
            store,
            key: Arc::from(key),
            entry,
            cwd,
            view,
            detached: false,
            flushed_at_compaction,
            pruning: Default::default(),
        }
    }

    /// The session's key.
    pub(super) fn key(&self) -> &str {
        &self.key
    }

    pub(super) async fn push(&mut self, m: Message) -> Result<(), StoreError> {
        self.push_as(m, None).await
    }

    /// Appends `m`; a user message may record the inbound message it is.
    pub(super) async fn push_as(&mut self, m: Message, inbound_ref: Option<&str>) -> Result<(), StoreError> {
        let id = new_entry_id();
        if !self.detached {
            let mut line = message_entry(&id, self.view.last_id.as_deref(), &clock::iso_now(), &m);
            if let (Some(r), Some(obj)) = (inbound_ref, line.as_object_mut()) {
                obj.insert("inboundRef".into(), Value::String(r.to_string()));
            }
            let (entry, cwd) = (self.entry.clone(), self.cwd.clone());
            self.store.call(move |s| s.append(&entry, &cwd, &[line])).await?;
        }
        self.view.push_message(&id, Arc::new(m), inbound_ref.map(Arc::from));
        Ok(())
    }

    /// Appends an entry that is not a message (a compaction) and reads it into the view.
    pub(super) async fn push_entry(&mut self, line: Value) -> Result<(), StoreError> {
        if !self.detached {
            let (entry, cwd, shared) = (self.entry.clone(), self.cwd.clone(), line.clone());
            self.store.call(move |s| s.append(&entry, &cwd, &[shared])).await?;
        }
        self.view.push_line(&line);
        Ok(())
    }

    /// A private copy whose appends are never written (the memory flush's view).
    pub(super) fn detached(&self) -> Conversation {
        Conversation {
            store: self.store.clone(),
            key: self.key.clone(),
            entry: self.entry.clone(),
            cwd: self.cwd.clone(),
            view: self.view.clone(),
            detached: true,
            flushed_at_compaction: self.flushed_at_compaction,
            pruning: self.pruning.clone(),
        }
    }

    /// Runs index work for this session (after a compaction or a flush).
    pub(super) async fn update_entry(
        &self,
        edit: impl FnMut(&mut SessionEntry) + Send + 'static,
    ) -> Result<(), StoreError> {
        if self.detached {
            return Ok(());
        }
        let key = self.key.clone();
        let mut edit = edit;
        self.store.call(move |s| s.upsert(&key, &mut edit).map(|_| ())).await
    }
}

/// What a model round is asked with (the same in every round of a turn).
pub(super) struct Ask<'a> {
    pub(super) agent_id: &'a str,
    pub(super) session_key: &'a str,
    pub(super) models: &'a [String],
    pub(super) system: String,
    pub(super) identity: Identity,
    pub(super) agent_dir: PathBuf,
    pub(super) on_text: Option<TextSink>,
    /// The session's `/verbose` level when its summaries go to `on_text` as
    /// each tool call finishes (`None`: they follow the reply, or are off).
    pub(super) live_verbose: Option<crate::store::Verbose>,
    pub(super) sampling: Sampling,
    /// The thinking level the model is asked for (`None`: its own default).
    pub(super) thinking: Option<chela_core::thinking::ThinkLevel>,
    /// The session's turn (the rounds of a chat message: steered messages
    /// come in and aborts are seen through it); `None` for private rounds
    /// (the memory flush, a compaction's summary).
    pub(super) permit: Option<&'a TurnPermit>,
}
