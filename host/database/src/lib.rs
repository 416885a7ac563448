//! The PostgreSQL database replicas share (`storage.url`,
//! `CHELA_DATABASE_URL`; core's `storage` decides whether there is one).
//!
//! - The driver (`tokio-postgres`, pooled by `deadpool-postgres`) runs on
//!   this crate's own small runtime, so a synchronous caller (the session
//!   store, called on the blocking pool) and an async one both reach it
//!   without blocking or nesting the caller's runtime.
//! - `migrations`: the schema, versioned, applied at connect under a
//!   transaction-scoped advisory lock, so replicas starting together apply
//!   each version once.
//! - `leases`: one owner at a time for a singleton connection, by a row
//!   with an expiry the owner renews.
//! - `journal`: accepted inbound events and the outbox of replies, shared:
//!   deduped across replicas, each owned by the replica that accepted it
//!   until a replica whose owner is gone claims it.
//! - `tls`: TLS as the URL's libpq `sslmode` and `sslrootcert` say (rustls).
//! - `kv`: plugins' key-value state (channel offsets, gateway sessions),
//!   the same on every replica.
//! - `documents`: small documents replicas edit together, each edit one
//!   transaction under a lock the caller names (pairing, the scheduler).
//! - `settings`: values set once for every replica (the generated token).
//! - `turn_lock`: a session's turn, held against every other replica by a
//!   session-level advisory lock that dies with its connection (a replica
//!   killed mid-turn frees its sessions).
//!
//! Must not: know what the rows mean (the stores that use it do), or show a
//! URL's password (errors carry core's `storage::redacted` form).

mod documents;
mod journal;
mod kv;
mod leases;
mod migrations;
mod settings;
mod tls;
mod turn_lock;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use deadpool_postgres::Object as Client;
pub use journal::{replica_lease, replica_of, Claimed, Depth, RETAIN};
pub use kv::KvWrite;
pub use leases::LeaseRecord;
pub use tokio_postgres::{Error as PgError, Row};
pub use turn_lock::TurnLock;

/// How long one database call may take before it fails (a partition or a
/// stalled server must not hang a turn forever).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections for queries, per replica (turn locks have one of their own).
const POOL_SIZE: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database {url}: {message}")]
    Unavailable { url: String, message: String },
    #[error("database {url}: {message}")]
    Query { url: String, message: String },
    #[error(
        "database {url} was migrated by a newer chela (schema version {found}, this one knows {known}); upgrade chela"
    )]
    NewerSchema { url: String, found: i32, known: i32 },
    #[error("database {url}: a call took longer than {0:?}", CALL_TIMEOUT)]
    Timeout { url: String },
    #[error("the database runtime has stopped")]
    Stopped,
}

impl DbError {
    /// A failure that may pass (the server unreachable, restarting, slow),
    /// as opposed to one in what was asked.
    pub fn is_transient(&self) -> bool {
        matches!(self, DbError::Unavailable { .. } | DbError::Timeout { .. } | DbError::Stopped)
    }
}

/// A connection to the shared database: a pool and the turn locks, on the
/// database's own runtime.
pub struct Database {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pool: deadpool_postgres::Pool,
    locks: Arc<turn_lock::Locks>,
    shown: String,
}

impl Database {
    /// Connects to `url`, applies the migrations this chela knows (once,
    /// whoever else starts beside it), and returns the connection.
    /// Blocking: call it at start-up, off an async worker.
    pub fn connect(url: &str) -> Result<Arc<Database>, DbError> {
        let shown = chela_core::storage::redacted(url);
        let tls::Connection { config, tls } =
            tls::connection(url).map_err(|message| DbError::Query { url: shown.clone(), message })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("chela-db")
            .enable_all()
            .build()
            .map_err(|e| DbError::Unavailable { url: shown.clone(), message: e.to_string() })?;
        let manager = deadpool_postgres::Manager::from_config(
            config.clone(),
            tls.clone(),
            deadpool_postgres::ManagerConfig { recycling_method: deadpool_postgres::RecyclingMethod::Fast },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(CALL_TIMEOUT))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| DbError::Unavailable { url: shown.clone(), message: e.to_string() })?;
        let handle = runtime.handle().clone();
        let db = Database {
            locks: Arc::new(turn_lock::Locks::new(config, tls, shown.clone())),
            runtime: Some(runtime),
            handle,
            pool,
            shown,
        };
        let url = db.shown.clone();
        let newer = db.blocking(move |mut c| async move { migrations::apply(&mut c, &url).await })?;
        if let Some((found, known)) = newer {
            return Err(DbError::NewerSchema { url: db.shown.clone(), found, known });
        }
        Ok(Arc::new(db))
    }

    /// The URL as it may be shown (password masked).
    pub fn shown_url(&self) -> &str {
        &self.shown
    }

    /// Runs `work` with a pooled connection and waits for it on this thread
    /// (its driver errors come back as [`DbError`]s naming this database)
    /// (for synchronous callers: the blocking pool, start-up).
    pub fn blocking<T, F, Fut>(&self, work: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, PgError>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let call = self.call(work);
        self.handle.spawn(async move {
            let _ = tx.send(call.await);
        });
        rx.recv().map_err(|_| DbError::Stopped)?
    }

    /// Runs `work` with a pooled connection, on the database's runtime.
    pub async fn run<T, F, Fut>(&self, work: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, PgError>> + Send + 'static,
    {
        let call = self.call(work);
        self.handle.spawn(call).await.map_err(|_| DbError::Stopped)?
    }

    fn call<T, F, Fut>(&self, work: F) -> impl Future<Output = Result<T, DbError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, PgError>> + Send + 'static,
    {
        let pool = self.pool.clone();
        let url = self.shown.clone();
        async move {
            let work = async {
                let client = pool
                    .get()
                    .await
                    .map_err(|e| DbError::Unavailable { url: url.clone(), message: with_causes(&e) })?;
                work(client).await.map_err(|e| classify(&url, e))
            };
            tokio::time::timeout(CALL_TIMEOUT, work).await.map_err(|_| DbError::Timeout { url: url.clone() })?
        }
    }

    /// Holds the turns of session `key` (of `store`) against every other
    /// replica until the returned lock is dropped; waits while another holds it.
    pub async fn lock_turn(&self, store: &str, key: &str) -> Result<TurnLock, DbError> {
        let locks = self.locks.clone();
        let id = turn_lock::lock_id(store, key);
        let handle = self.handle.clone();
        self.handle.spawn(async move { locks.acquire(id, handle).await }).await.map_err(|_| DbError::Stopped)?
    }
}

/// An error with the causes under it (a failed TLS handshake says why).
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let next = c.to_string();
        if !text.contains(&next) {
            text = format!("{text}: {next}");
        }
        cause = c.source();
    }
    text
}

fn classify(url: &str, e: tokio_postgres::Error) -> DbError {
    let message = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => with_causes(&e),
    };
    // Class 08 (connection), 57P (operator intervention: shutdown, restart),
    // 53 (insufficient resources) pass; a closed connection has no code.
    let transient = e.is_closed()
        || e.as_db_error().is_none()
        || e.code().is_some_and(|c| {
            let c = c.code();
            c.starts_with("08") || c.starts_with("57P") || c.starts_with("53")
        });
    if transient {
        DbError::Unavailable { url: url.to_string(), message }
    } else {
        DbError::Query { url: url.to_string(), message }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // Dropped inside an async context (the last owner a task): a
        // runtime must not block there, so it stops in the background.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
