//! The journal the message path writes to: the state dir's files
//! (`chela-journal`, one gateway per state dir) or, on a shared database,
//! the replicas' common journal (`chela-database`), where this replica
//! owns what it accepted. The same calls, the same promises: an accepted
//! event is durable before the platform hears of it, a reply is journaled
//! before it is sent.
//!
//! Must not: decide what to journal or when (`intake.rs`, `inbound.rs`
//! do), or take over another replica's events (`takeover.rs` does).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chela_database::{Database, DbError, Depth};
use chela_journal::{Incoming, JournalError};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum JournalFailure {
    #[error(transparent)]
    Files(#[from] JournalError),
    #[error(transparent)]
    Database(#[from] DbError),
    /// The event moved to another replica while this one could not reach
    /// the database: its answer is that replica's to give.
    #[error("message {seq} was taken over by another replica")]
    TakenOver { seq: u64 },
}

pub(crate) enum Journal {
    Files(chela_journal::Journal),
    Shared(Shared),
}

/// The shared journal, as this replica writes it.
pub(crate) struct Shared {
    pub db: Arc<Database>,
    /// This replica (the owner of what it accepts).
    pub owner: String,
    /// Every replica's depth, as last counted (`takeover.rs` counts it).
    pub depth: Mutex<Depth>,
}

impl Journal {
    pub(crate) fn shared(db: Arc<Database>, owner: &str) -> Journal {
        Journal::Shared(Shared { db, owner: owner.to_string(), depth: Mutex::default() })
    }

    /// Accepts events; a duplicate of one accepted before gets `None`. When
    /// this returns `Ok`, every new event is durable.
    pub(crate) async fn accept(&self, items: Vec<Incoming>) -> Result<Vec<Option<u64>>, JournalFailure> {
        Ok(match self {
            Journal::Files(j) => j.accept(items).await?,
            Journal::Shared(s) => s.db.journal_accept(&s.owner, items).await?,
        })
    }

    /// Journals `agent`'s reply to event `seq`; its id once durable.
    pub(crate) async fn reply(&self, seq: u64, agent: &str, chat: &str, message: Value) -> Result<u64, JournalFailure> {
        match self {
            Journal::Files(j) => Ok(j.reply(seq, agent, chat, message).await?),
            Journal::Shared(s) => s.reply(seq, agent, chat, &message, false).await,
        }
    }

    /// [`reply`](Self::reply) and [`finish`](Self::finish) in one write.
    pub(crate) async fn reply_and_finish(
        &self,
        seq: u64,
        agent: &str,
        chat: &str,
        message: Value,
    ) -> Result<u64, JournalFailure> {
        match self {
            Journal::Files(j) => Ok(j.reply_and_finish(seq, agent, chat, message).await?),
            Journal::Shared(s) => s.reply(seq, agent, chat, &message, true).await,
        }
    }

    /// Event `seq` is finished (`how`: replied, dropped, failed…).
    pub(crate) async fn finish(&self, seq: u64, how: &str) -> Result<(), JournalFailure> {
        match self {
            Journal::Files(j) => Ok(j.finish(seq, how).await?),
            Journal::Shared(s) => {
                let (owner, how) = (s.owner.clone(), how.to_string());
                s.until_recorded(format!("message {seq} finished"), move |db| {
                    let (owner, how) = (owner.clone(), how.clone());
                    async move { db.journal_finish(&owner, seq, &how).await }
                })
                .await
            }
        }
    }

    /// Reply `id` reached the platform.
    pub(crate) async fn delivered(&self, id: u64) -> Result<(), JournalFailure> {
        match self {
            Journal::Files(j) => Ok(j.delivered(id).await?),
            Journal::Shared(s) => {
                s.until_recorded(format!("reply {id} delivered"), move |db| async move {
                    db.journal_delivered(id, None).await
                })
                .await
            }
        }
    }

    /// Reply `id` failed for good (not retried again).
    pub(crate) async fn undeliverable(&self, id: u64, why: &str) -> Result<(), JournalFailure> {
        match self {
            Journal::Files(j) => Ok(j.undeliverable(id, why).await?),
            Journal::Shared(s) => {
                let why = why.to_string();
                s.until_recorded(format!("reply {id} dead"), move |db| {
                    let why = why.clone();
                    async move { db.journal_delivered(id, Some(&why)).await }
                })
                .await
            }
        }
    }

    /// Unfinished events and undelivered replies: this process's, or on a
    /// shared database every replica's as last counted.
    pub(crate) fn depth(&self) -> (usize, usize) {
        match self {
            Journal::Files(j) => j.depth(),
            Journal::Shared(s) => {
                let d = *s.depth.lock().unwrap_or_else(|p| p.into_inner());
                (d.unfinished, d.undelivered)
            }
        }
    }

    /// Stops writing: the files' lock is released for the next gateway (a
    /// shared journal needs nothing: what is unfinished is claimed once this
    /// replica's lease is given back).
    pub(crate) fn close(&self) {
        if let Journal::Files(j) = self {
            j.close();
        }
    }

    /// The shared journal, when there is one.
    pub(crate) fn as_shared(&self) -> Option<&Shared> {
        match self {
            Journal::Shared(s) => Some(s),
            Journal::Files(_) => None,
        }
    }
}

/// How long a mark the database could not take is retried in the background.
const MARK_RETRY_FOR: Duration = Duration::from_secs(600);

impl Shared {
    /// Records a mark (finished, delivered, dead). One the database cannot
    /// take now is retried in the background until it can: left unrecorded
    /// it would make whoever claims this replica's rows later send or run
    /// again what is done.
    async fn until_recorded<F, Fut>(&self, what: String, mark: F) -> Result<(), JournalFailure>
    where
        F: Fn(Arc<Database>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), DbError>> + Send + 'static,
    {
        let first = match mark(self.db.clone()).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() => e,
            Err(e) => return Err(e.into()),
        };
        tracing::warn!(mark = %what, error = %first, "the database cannot record this now; retrying in the background");
        let db = self.db.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + MARK_RETRY_FOR;
            let mut attempt = 0;
            while tokio::time::Instant::now() < deadline {
                tokio::time::sleep(crate::backoff::backoff(
                    Duration::from_millis(500),
                    attempt,
                    Duration::from_secs(10),
                ))
                .await;
                attempt += 1;
                match mark(db.clone()).await {
                    Ok(()) => return tracing::info!(mark = %what, attempt, "recorded after all"),
                    Err(e) if e.is_transient() => continue,
                    Err(e) => return tracing::warn!(mark = %what, error = %e, "not recorded"),
                }
            }
            tracing::error!(mark = %what, "not recorded in {MARK_RETRY_FOR:?}; a replica that claims it later may repeat it");
        });
        Ok(())
    }

    async fn reply(
        &self,
        seq: u64,
        agent: &str,
        chat: &str,
        message: &Value,
        finish: bool,
    ) -> Result<u64, JournalFailure> {
        self.db
            .journal_reply(&self.owner, seq, agent, chat, message, finish)
            .await?
            .ok_or(JournalFailure::TakenOver { seq })
    }
}
