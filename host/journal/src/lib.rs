//! The message journal: what makes the gateway's message path lossless
//! across crashes.
//!
//! - An inbound event is [`accept`](Journal::accept)ed — durable on disk —
//!   before the platform is told it was received (webhook 2xx, polling offset
//!   commit). Its platform message id dedupes replays and platform retries.
//! - A reply is journaled ([`reply`](Journal::reply)) before it is sent and
//!   marked [`delivered`](Journal::delivered) after the platform answers, or
//!   [`undeliverable`](Journal::undeliverable) when it fails for good.
//! - An event is [`finish`](Journal::finish)ed when its replies are in the
//!   outbox (or it needs none). On open, unfinished events and undelivered
//!   replies come back in [`Recovered`], in acceptance order.
//!
//! One file, `<dir>/journal.log`, of checksummed lines (`record.rs`); one
//! writer thread that syncs once per batch (`writer.rs`). A torn or corrupt
//! line is reported and skipped, never fatal, and the lines after it are
//! read; a journal written by a newer version is refused.
//!
//! Must not: know what an event or a reply says (they are opaque JSON here),
//! route, or deliver anything itself.

mod record;
mod state;
mod writer;

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

pub use chela_durable::Durability;
pub use record::VERSION;
pub use state::{Undelivered, Unfinished};

use record::{decode, encode, Record};
use serde_json::Value;
use state::State;
use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "journal {} was written by a newer chela (format {found}; this build reads up to {supported}); \
         upgrade chela or move the file away",
        path.display()
    )]
    NewerVersion { path: PathBuf, found: u32, supported: u32 },
    #[error("the journal writer has stopped")]
    Stopped,
    #[error(
        "journal {} is in use by another chela gateway (one gateway per state dir: two would answer every message twice)",
        path.display()
    )]
    Busy { path: PathBuf },
}

/// A line of the journal that could not be read, skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line number in the file as it was found.
    pub line: usize,
    pub why: String,
}

/// What a journal held when it was opened.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Accepted events not finished, in acceptance order.
    pub unfinished: Vec<Unfinished>,
    /// Replies not delivered, in the order they were journaled.
    pub undelivered: Vec<Undelivered>,
    pub skipped: Vec<Skipped>,
}

/// An inbound event to accept.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The platform's id for it (`<channel>/<account>/<message id>`); empty: not deduped.
    pub dedupe: String,
    /// The chat it belongs to.
    pub chat: String,
    pub event: Value,
}

pub struct Journal {
    path: PathBuf,
    state: Arc<Mutex<State>>,
    writer: Mutex<mpsc::Sender<writer::Job>>,
    /// `journal.lock`, locked exclusively while this journal is open.
    lock: Mutex<Option<std::fs::File>>,
}

impl Journal {
    /// Opens (or creates) the journal in `dir`: reads what it holds,
    /// compacts it, and starts its writer.
    pub fn open(dir: &Path, durability: Durability) -> Result<(Journal, Recovered), JournalError> {
        let path = dir.join("journal.log");
        let io = |source| JournalError::Io { path: path.clone(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("journal.lock"))
            .map_err(io)?;
        match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Err(JournalError::Busy { path }),
            Err(e) => return Err(io(e.into())),
        }
        let mut state = State::default();
        let mut skipped = Vec::new();
        match std::fs::File::open(&path) {
            Ok(f) => {
                let mut reader = std::io::BufReader::new(f);
                let mut line = Vec::new();
                let mut n = 0;
                loop {
                    line.clear();
                    let read = reader.read_until(b'\n', &mut line).map_err(io)?;
                    if read == 0 {
                        break;
                    }
                    n += 1;
                    let body = line.strip_suffix(b"\n").unwrap_or(&line);
                    if body.is_empty() {
                        continue;
                    }
                    match decode(body) {
                        Ok(Record::Journal { version }) if version > VERSION => {
                            return Err(JournalError::NewerVersion { path, found: version, supported: VERSION })
                        }
                        Ok(r) => state.apply(&r),
                        Err(why) => {
                            tracing::warn!(journal = %path.display(), line = n, %why, "journal line skipped");
                            skipped.push(Skipped { line: n, why });
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let recovered = Recovered {
            unfinished: state.open.values().cloned().collect(),
            undelivered: state.outbox.values().cloned().collect(),
            skipped,
        };
        let state = Arc::new(Mutex::new(state));
        let file = writer::compact(&path, &state, durability).map_err(io)?;
        let tx = writer::spawn(path.clone(), file, durability, state.clone()).map_err(io)?;
        Ok((Journal { path, state, writer: Mutex::new(tx), lock: Mutex::new(Some(lock)) }, recovered))
    }

    /// Updates the state and queues the lines in one step (so the file's
    /// order is the state's), then waits until they are on disk. A failed
    /// write takes its records back out of the state.
    async fn commit(&self, records: Vec<Record>) -> Result<(), JournalError> {
        let rx = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            self.enqueue(&mut state, &records)?
        };
        self.wait(rx, &records).await
    }

    fn enqueue(
        &self,
        state: &mut State,
        records: &[Record],
    ) -> Result<oneshot::Receiver<std::io::Result<()>>, JournalError> {
        let mut lines = Vec::new();
        for r in records {
            state.apply(r);
            lines.extend_from_slice(&encode(r));
        }
        let (done, rx) = oneshot::channel();
        let tx = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if tx.send(writer::Job { lines, done }).is_err() {
            state.undo(records);
            return Err(JournalError::Stopped);
        }
        Ok(rx)
    }

    async fn wait(&self, rx: oneshot::Receiver<std::io::Result<()>>, records: &[Record]) -> Result<(), JournalError> {
        let failed = match rx.await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(source)) => JournalError::Io { path: self.path.clone(), source },
            Err(_) => JournalError::Stopped,
        };
        self.state.lock().unwrap_or_else(|p| p.into_inner()).undo(records);
        Err(failed)
    }

    /// Accepts events: each new one gets its sequence number, a duplicate
    /// of one accepted before (or earlier in `items`) gets `None`. Returns
    /// once every new one is durable; an error means none may be
    /// acknowledged (and none is remembered, so the platform's retry is not
    /// taken for a duplicate).
    pub async fn accept(&self, items: Vec<Incoming>) -> Result<Vec<Option<u64>>, JournalError> {
        let mut records = Vec::new();
        let mut seqs = Vec::with_capacity(items.len());
        let rx = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            for item in items {
                let repeated = records
                    .iter()
                    .any(|r| matches!(r, Record::In { dedupe, .. } if !dedupe.is_empty() && *dedupe == item.dedupe));
                if state.has_seen(&item.dedupe) || repeated {
                    seqs.push(None);
                    continue;
                }
                let seq = state.next_seq + records.len() as u64;
                seqs.push(Some(seq));
                records.push(Record::In { seq, dedupe: item.dedupe, chat: item.chat, event: item.event });
            }
            if records.is_empty() {
                return Ok(seqs);
            }
            self.enqueue(&mut state, &records)?
        };
        self.wait(rx, &records).await?;
        Ok(seqs)
    }

    /// Journals `agent`'s reply to event `seq`; returns the reply's id once durable.
    pub async fn reply(&self, seq: u64, agent: &str, chat: &str, message: Value) -> Result<u64, JournalError> {
        let id = self.next_reply_id();
        let out = Record::Out { id, seq, agent: agent.into(), chat: chat.into(), message };
        self.commit(vec![out]).await?;
        Ok(id)
    }

    /// [`reply`](Self::reply) and [`finish`](Self::finish) in one sync: the
    /// one reply of a message with one route.
    pub async fn reply_and_finish(
        &self,
        seq: u64,
        agent: &str,
        chat: &str,
        message: Value,
    ) -> Result<u64, JournalError> {
        let id = self.next_reply_id();
        let out = Record::Out { id, seq, agent: agent.into(), chat: chat.into(), message };
        self.commit(vec![out, Record::Done { seq, how: "replied".into() }]).await?;
        Ok(id)
    }

    fn next_reply_id(&self) -> u64 {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let id = state.next_reply;
        state.next_reply += 1;
        id
    }

    /// Event `seq` is finished (`how`: replied, dropped, failed…).
    pub async fn finish(&self, seq: u64, how: &str) -> Result<(), JournalError> {
        self.commit(vec![Record::Done { seq, how: how.into() }]).await
    }

    /// Reply `id` reached the platform.
    pub async fn delivered(&self, id: u64) -> Result<(), JournalError> {
        self.commit(vec![Record::Sent { id }]).await
    }

    /// Reply `id` failed for good (recorded with why; not retried again).
    pub async fn undeliverable(&self, id: u64, why: &str) -> Result<(), JournalError> {
        self.commit(vec![Record::Dead { id, why: why.into() }]).await
    }

    /// Closes the journal: later writes fail with [`JournalError::Stopped`],
    /// the writer thread ends once it has written what it was given, and the
    /// lock is released (another gateway may open the state dir).
    pub fn close(&self) {
        let (dead, _) = mpsc::channel();
        *self.writer.lock().unwrap_or_else(|p| p.into_inner()) = dead;
        self.lock.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Events accepted and not finished, and replies not delivered, right now.
    pub fn depth(&self) -> (usize, usize) {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (state.open.len(), state.outbox.len())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests;
