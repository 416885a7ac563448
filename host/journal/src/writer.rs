//! Group commit: one thread owns the journal file. Callers hand it encoded
//! lines and wait; it writes every batch waiting at once, syncs the file
//! once for the whole batch, and only then answers each caller. Many
//! sessions' records share one fsync, and no tokio worker ever blocks on
//! the disk. When the file has grown enough, the thread replaces it with a
//! compacted one (between batches, so no batch is split).
//!
//! Must not: acknowledge a line before the sync that covers it, or reorder
//! lines of one caller.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use chela_durable::Durability;
use tokio::sync::oneshot;

use crate::record::encode;
use crate::state::State;

/// Replace the file with a compacted one after this many appended bytes.
const COMPACT_AFTER_BYTES: u64 = 8 << 20;

pub(crate) struct Job {
    pub lines: Vec<u8>,
    pub done: oneshot::Sender<std::io::Result<()>>,
}

/// Starts the writer thread on `file` (already positioned at its end).
pub(crate) fn spawn(
    path: PathBuf,
    file: File,
    durability: Durability,
    state: Arc<Mutex<State>>,
) -> std::io::Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new().name("chela-journal".into()).spawn(move || {
        let mut file = file;
        let mut since_compaction = 0u64;
        let mut len = file.metadata().map(|m| m.len()).unwrap_or(0);
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            let mut bytes = Vec::with_capacity(batch.iter().map(|j| j.lines.len()).sum());
            for job in &batch {
                bytes.extend_from_slice(&job.lines);
            }
            let written = file.write_all(&bytes).and_then(|()| match durability {
                Durability::Fsync => file.sync_data(),
                Durability::OsBuffered => Ok(()),
            });
            match &written {
                Ok(()) => len += bytes.len() as u64,
                // A partial batch must not glue itself to the next line (it
                // would take that line with it): cut the file back.
                Err(_) => {
                    if let Err(e) = file.set_len(len) {
                        tracing::warn!(journal = %path.display(), error = %e, "cannot cut a failed batch off the journal");
                    }
                }
            }
            for job in batch {
                let answer = match &written {
                    Ok(()) => Ok(()),
                    Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
                };
                let _ = job.done.send(answer);
            }
            since_compaction += bytes.len() as u64;
            if written.is_ok() && since_compaction > COMPACT_AFTER_BYTES {
                match compact(&path, &state, durability) {
                    Ok(f) => {
                        len = f.metadata().map(|m| m.len()).unwrap_or(0);
                        file = f;
                        since_compaction = 0;
                    }
                    Err(e) => tracing::warn!(journal = %path.display(), error = %e, "journal compaction failed; appending on"),
                }
            }
        }
    })?;
    Ok(tx)
}

/// Replaces the journal with the records of its current state, and opens
/// the new file for appending.
pub(crate) fn compact(path: &PathBuf, state: &Mutex<State>, durability: Durability) -> std::io::Result<File> {
    let records = state.lock().unwrap_or_else(|p| p.into_inner()).compacted();
    let mut bytes = Vec::new();
    for r in &records {
        bytes.extend_from_slice(&encode(r));
    }
    chela_durable::replace(path, &bytes, durability).map_err(|e| std::io::Error::other(e.to_string()))?;
    OpenOptions::new().append(true).open(path)
}
