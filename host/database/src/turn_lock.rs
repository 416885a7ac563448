//! Turn locks: one session's turn at a time across replicas.
//!
//! Every lock of a replica lives on one dedicated connection as a
//! session-level advisory lock (`pg_try_advisory_lock`), so a thousand
//! running turns cost one connection, and a replica that dies frees all its
//! sessions with it. A lock held elsewhere is tried again with a growing
//! pause (10 ms to 200 ms). When the connection is lost its locks are gone:
//! the next lock reconnects; the turns that held them fail on their own
//! writes (the database is away) and run again under a new lock.
//!
//! Must not: take a lock twice on the connection (advisory locks nest per
//! connection; the replica's own session queue already lets one turn per
//! key in, and `held` refuses a second).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{classify, DbError};

/// A stable 64-bit id of a session for the advisory lock (FNV-1a over the
/// store and key; a collision only makes two sessions wait for each other).
pub(crate) fn lock_id(store: &str, key: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in store.bytes().chain([0u8]).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

struct Conn {
    client: tokio_postgres::Client,
    /// Which connection this is (a lock taken on an older one is gone).
    generation: u64,
}

pub(crate) struct Locks {
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    url: String,
    conn: tokio::sync::Mutex<Option<Conn>>,
    generations: std::sync::atomic::AtomicU64,
    held: Mutex<HashSet<i64>>,
}

/// A session's turn, held until dropped.
pub struct TurnLock {
    id: i64,
    generation: u64,
    locks: Option<Arc<Locks>>,
    handle: tokio::runtime::Handle,
}

impl Locks {
    pub(crate) fn new(
        config: tokio_postgres::Config,
        tls: tokio_postgres_rustls::MakeRustlsConnect,
        url: String,
    ) -> Locks {
        Locks {
            config,
            tls,
            url,
            conn: tokio::sync::Mutex::new(None),
            generations: std::sync::atomic::AtomicU64::new(0),
            held: Mutex::new(HashSet::new()),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for `id`; runs on the database's runtime.
    pub(crate) async fn acquire(self: Arc<Self>, id: i64, handle: tokio::runtime::Handle) -> Result<TurnLock, DbError> {
        let mut pause = Duration::from_millis(10);
        loop {
            if !self.held().contains(&id) {
                if let Some(generation) = self.try_lock(id).await? {
                    self.held().insert(id);
                    return Ok(TurnLock { id, generation, locks: Some(self), handle });
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    async fn try_lock(&self, id: i64) -> Result<Option<u64>, DbError> {
        let mut conn = self.conn.lock().await;
        if conn.as_ref().is_none_or(|c| c.client.is_closed()) {
            if conn.take().is_some() {
                // Every lock of the lost connection is gone with it.
                self.held().clear();
            }
            let (client, connection) = self
                .config
                .connect(self.tls.clone())
                .await
                .map_err(|e| DbError::Unavailable { url: self.url.clone(), message: crate::with_causes(&e) })?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "the turn-lock connection ended");
                }
            });
            let generation = self.generations.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            *conn = Some(Conn { client, generation });
        }
        let Some(c) = conn.as_ref() else { return Ok(None) };
        let row =
            c.client.query_one("select pg_try_advisory_lock($1)", &[&id]).await.map_err(|e| classify(&self.url, e))?;
        Ok(row.get::<_, bool>(0).then_some(c.generation))
    }

    async fn release(&self, id: i64, generation: u64) {
        let conn = self.conn.lock().await;
        if let Some(c) = conn.as_ref().filter(|c| c.generation == generation) {
            if let Err(e) = c.client.execute("select pg_advisory_unlock($1)", &[&id]).await {
                tracing::warn!(error = %e, "a turn lock could not be released; it goes with its connection");
            }
            self.held().remove(&id);
        }
    }
}

impl Drop for TurnLock {
    fn drop(&mut self) {
        if let Some(locks) = self.locks.take() {
            let (id, generation) = (self.id, self.generation);
            self.handle.spawn(async move { locks.release(id, generation).await });
        }
    }
}
