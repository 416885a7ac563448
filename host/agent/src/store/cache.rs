//! The transcripts of recently active sessions, held in memory so a turn
//! does not re-read and re-parse its whole session from disk.
//!
//! An entry remembers how long the file was when it was read or last
//! appended to by this store. A lookup stats the file and uses the entry only
//! if the length still matches: anything else (an edit by hand, another
//! process, a truncation) reads the file again. The cache is bounded by the
//! bytes of the files it stands for; the least recently used go first.
//!
//! Must not: be the only copy of anything (the file is the truth) or grow
//! without bound.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lru::LruCache;
use serde_json::Value;

use super::Transcript;

/// File bytes of cached transcripts kept at most (they take a few times this in memory).
const BUDGET_BYTES: u64 = 32 << 20;
const MAX_ENTRIES: usize = 4096;

struct Entry {
    len: u64,
    transcript: Transcript,
}

pub(super) struct TranscriptCache {
    inner: Mutex<Inner>,
}

struct Inner {
    entries: LruCache<PathBuf, Entry>,
    bytes: u64,
}

impl Default for TranscriptCache {
    fn default() -> Self {
        let cap = NonZeroUsize::new(MAX_ENTRIES).unwrap_or(NonZeroUsize::MIN);
        TranscriptCache { inner: Mutex::new(Inner { entries: LruCache::new(cap), bytes: 0 }) }
    }
}

impl TranscriptCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The transcript of `path` if the cache holds it at file length `len`.
    pub(super) fn get(&self, path: &Path, len: u64) -> Option<Transcript> {
        let mut inner = self.lock();
        match inner.entries.get(path) {
            Some(e) if e.len == len => Some(e.transcript.clone()),
            Some(_) => {
                inner.remove(path);
                None
            }
            None => None,
        }
    }

    /// Remembers `transcript` as the content of `path` at length `len`.
    pub(super) fn put(&self, path: &Path, len: u64, transcript: Transcript) {
        let mut inner = self.lock();
        inner.remove(path);
        inner.bytes += len;
        if let Some((_, old)) = inner.entries.push(path.to_path_buf(), Entry { len, transcript }) {
            inner.bytes -= old.len;
        }
        inner.trim();
    }

    /// `path` grew from `from` to `to` bytes by `lines`: extends the entry
    /// if it stood for the file at `from`, else forgets it.
    pub(super) fn appended(&self, path: &Path, from: u64, to: u64, lines: &[Value]) {
        let mut inner = self.lock();
        match inner.entries.get_mut(path) {
            None => return,
            Some(e) if e.len == from => {
                for line in lines {
                    e.transcript.push_line(line);
                }
                e.len = to;
            }
            Some(_) => {
                inner.remove(path);
                return;
            }
        }
        inner.bytes += to.saturating_sub(from);
        inner.trim();
    }

    /// Forgets `path` (reset, archive).
    pub(super) fn forget(&self, path: &Path) {
        self.lock().remove(path);
    }
}

impl Inner {
    fn remove(&mut self, path: &Path) {
        if let Some(old) = self.entries.pop(path) {
            self.bytes -= old.len;
        }
    }

    fn trim(&mut self) {
        while self.bytes > BUDGET_BYTES && self.entries.len() > 1 {
            match self.entries.pop_lru() {
                Some((_, old)) => self.bytes -= old.len,
                None => break,
            }
        }
    }
}
