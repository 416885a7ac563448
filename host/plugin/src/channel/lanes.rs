//! The instances of one channel adapter, by lane: each account has a
//! *serve* lane (its sends and webhooks) and, when the adapter polls, a
//! *poll* lane (its polls; that one instance alone opens the account's
//! socket and keeps its unacknowledged offset, so its calls run one at a
//! time). A serve lane is a small pool: a call takes a free instance, or
//! starts one more while under the pool's size, so one slow platform round
//! trip does not hold up the account's other chats; state the adapter shares
//! between its calls lives in kv, whose operations are atomic across
//! instances (`compare-and-swap` for read-modify-write). Lanes run in
//! parallel: a long poll never holds up a send, one account never another.
//!
//! Must not: decide what a call does, configure accounts, or scope a call
//! to an account (the channel runtime does all three).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::Live;

/// Which instance a call runs on. Serve lanes sort before poll lanes, so a
/// walk over every lane (a config change) reaches the connections last.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lane {
    /// The account's sends and webhook requests.
    Serve(String),
    /// The account's polls and its platform connection.
    Poll(String),
}

impl Lane {
    pub fn account(&self) -> &str {
        match self {
            Lane::Serve(a) | Lane::Poll(a) => a,
        }
    }

    pub fn role(&self) -> &'static str {
        match self {
            Lane::Serve(_) => "serve",
            Lane::Poll(_) => "poll",
        }
    }
}

/// One lane's instance (`None`: not started, or dropped after a call spoiled it).
#[derive(Default)]
pub(super) struct Slot {
    pub live: tokio::sync::Mutex<Option<Live>>,
    /// Linear memory after the last call, readable while a call runs.
    memory: AtomicUsize,
}

impl Slot {
    pub fn note_memory(&self, live: &Option<Live>) {
        let bytes = live.as_ref().map_or(0, |l| l.store.data().limits.size);
        self.memory.store(bytes, Ordering::Relaxed);
    }
}

/// A lane's instances, and where the next busy-time pick goes.
#[derive(Default)]
struct Pool {
    slots: Vec<Arc<Slot>>,
    next: usize,
}

pub(super) struct Lanes {
    lanes: Mutex<BTreeMap<Lane, Pool>>,
    /// Instances per serve lane at most.
    serve_instances: usize,
}

impl Lanes {
    pub fn new(serve_instances: usize) -> Lanes {
        Lanes { lanes: Mutex::default(), serve_instances: serve_instances.max(1) }
    }

    fn lanes(&self) -> std::sync::MutexGuard<'_, BTreeMap<Lane, Pool>> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The slot a call on `lane` waits for: a free one; else a new one
    /// while the pool is under its size (a poll lane has one); else the
    /// next in turn. A new slot is empty: the call starts its instance.
    pub fn pick(&self, lane: &Lane) -> Arc<Slot> {
        let cap = match lane {
            Lane::Serve(_) => self.serve_instances,
            Lane::Poll(_) => 1,
        };
        let mut lanes = self.lanes();
        let pool = lanes.entry(lane.clone()).or_default();
        if let Some(free) = pool.slots.iter().find(|s| s.live.try_lock().is_ok()) {
            return free.clone();
        }
        if pool.slots.len() < cap {
            pool.slots.push(Arc::default());
            return pool.slots[pool.slots.len() - 1].clone();
        }
        pool.next = (pool.next + 1) % pool.slots.len();
        pool.slots[pool.next].clone()
    }

    pub fn contains(&self, lane: &Lane) -> bool {
        self.lanes().contains_key(lane)
    }

    /// Every instance's slot, serve lanes first.
    pub fn all(&self) -> Vec<(Lane, Arc<Slot>)> {
        let lanes = self.lanes();
        lanes.iter().flat_map(|(l, p)| p.slots.iter().map(move |s| (l.clone(), s.clone()))).collect()
    }

    /// Forgets both lanes of `account`; their instances go once no call holds them.
    pub fn drop_account(&self, account: &str) {
        self.lanes().retain(|lane, _| lane.account() != account);
    }

    /// Each lane's linear memory (all its instances) after their last calls.
    pub fn memory(&self) -> Vec<(Lane, usize)> {
        let lanes = self.lanes();
        lanes.iter().map(|(l, p)| (l.clone(), p.slots.iter().map(|s| s.memory.load(Ordering::Relaxed)).sum())).collect()
    }
}
