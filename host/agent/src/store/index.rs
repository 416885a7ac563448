//! The session index in memory and its group commit to `sessions.json`.
//!
//! Every change bumps a generation; a writer that needs its change on disk
//! waits for the file to hold that generation. Whoever finds the file behind
//! writes the whole current index once, for every change made meanwhile: one
//! replacement (and its fsyncs) serves all the sessions that changed during the
//! previous one, instead of one per change.
//!
//! Must not: parse entries (the caller does) or hold the in-memory lock while
//! the file is written.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chela_durable::Durability;
use serde_json::{Map, Value};

use super::StoreError;

/// The index as stored (raw values: unknown or unreadable entries survive).
pub(super) struct Index {
    path: PathBuf,
    durability: Durability,
    live: Mutex<Live>,
    /// The generation `sessions.json` holds; locked while it is being written.
    on_disk: Mutex<u64>,
}

pub(super) struct Live {
    pub(super) map: Map<String, Value>,
    generation: u64,
}

/// A change made in memory, not yet known to be on disk.
#[must_use = "a change is durable only once committed"]
pub(super) struct Pending(u64);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Index {
    pub(super) fn new(path: PathBuf, durability: Durability, map: Map<String, Value>) -> Index {
        Index { path, durability, live: Mutex::new(Live { map, generation: 0 }), on_disk: Mutex::new(0) }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the index in memory.
    pub(super) fn read<T>(&self, f: impl FnOnce(&Map<String, Value>) -> T) -> T {
        f(&lock(&self.live).map)
    }

    /// Changes the index in memory; `f` returning an error changes nothing on disk.
    pub(super) fn change<T>(
        &self,
        f: impl FnOnce(&mut Map<String, Value>) -> Result<T, StoreError>,
    ) -> Result<(T, Pending), StoreError> {
        let mut live = lock(&self.live);
        let out = f(&mut live.map)?;
        live.generation += 1;
        Ok((out, Pending(live.generation)))
    }

    /// Returns once `sessions.json` holds `change` (written by this call or by
    /// a concurrent one). On failure the change stays in memory and goes to
    /// disk with the next successful commit; the caller is told it is not durable.
    pub(super) fn commit(&self, change: Pending) -> Result<(), StoreError> {
        let mut on_disk = lock(&self.on_disk);
        if *on_disk >= change.0 {
            return Ok(());
        }
        let (body, generation) = {
            let live = lock(&self.live);
            let body = serde_json::to_vec_pretty(&live.map)
                .map_err(|e| StoreError::Io { path: self.path.clone(), source: std::io::Error::other(e) })?;
            (body, live.generation)
        };
        chela_durable::replace(&self.path, &body, self.durability)
            .map_err(|e| StoreError::Io { path: e.path, source: e.source })?;
        *on_disk = generation;
        Ok(())
    }
}
