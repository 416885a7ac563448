//! The shared store: sessions in PostgreSQL, for replicas (design §12).
//!
//! One row per session key (`chela_sessions`: the entry as the same JSON
//! `sessions.json` holds, unknown fields kept) and one row per transcript
//! line (`chela_transcript_lines`, ordered by `seq`), each store (agent)
//! apart. An entry changes by compare-and-swap on its `version`, so replicas
//! editing one entry never lose each other's change. A turn holds its
//! session's turn lock (`chela_database::TurnLock`) for as long as it runs,
//! so two replicas never run one session at once; a transcript append is
//! one transaction (the header with the first lines), so a kill leaves whole
//! lines only.
//!
//! Speed: a transcript read fetches only the lines past the ones this
//! replica already holds (bounded LRU), whoever appended them; an entry
//! edit starts from the version this replica last read or wrote (bounded
//! LRU) and goes to the database once, reading the entry again only when
//! another replica changed it meanwhile (its compare-and-swap missed).
//!
//! Must not: decide when a session resets, or keep anything the database
//! does not (the cache only mirrors rows).

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use chela_database::{Database, DbError};
use lru::LruCache;
use serde_json::Value;

use super::{SessionEntry, SessionStore, StoreError, Transcript, TurnHold};
use crate::clock;

/// Transcripts kept in memory at most (each mirrors its rows).
const CACHED_TRANSCRIPTS: usize = 1024;
/// Entries (with their row version) kept as the base of the next edit.
const CACHED_ENTRIES: usize = 4096;

pub struct PgStore {
    db: Arc<Database>,
    /// Whose sessions these are: the agent id.
    store: String,
    transcripts: Mutex<LruCache<String, (i64, Transcript)>>,
    /// The last entry and version this replica read or wrote, by key: only
    /// ever the base of a compare-and-swap, never an answer to a read.
    entries: Mutex<LruCache<String, (i64, SessionEntry)>>,
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> StoreError {
        StoreError::Database { transient: e.is_transient(), message: e.to_string() }
    }
}

impl PgStore {
    pub fn new(db: Arc<Database>, store: &str) -> PgStore {
        let cap = |n: usize| NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN);
        PgStore {
            db,
            store: store.to_string(),
            transcripts: Mutex::new(LruCache::new(cap(CACHED_TRANSCRIPTS))),
            entries: Mutex::new(LruCache::new(cap(CACHED_ENTRIES))),
        }
    }

    fn parse(&self, key: &str, raw: &str) -> Result<SessionEntry, StoreError> {
        serde_json::from_str(raw).map_err(|e| StoreError::BadEntry {
            path: format!("{} (store `{}`)", self.db.shown_url(), self.store).into(),
            key: key.to_string(),
            message: e.to_string(),
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, LruCache<String, (i64, Transcript)>> {
        self.transcripts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn known(&self) -> std::sync::MutexGuard<'_, LruCache<String, (i64, SessionEntry)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entry of `key` and its row version, from the database.
    fn read(&self, key: &str) -> Result<Option<(SessionEntry, i64)>, StoreError> {
        let (store, k) = (self.store.clone(), key.to_string());
        let found = self.db.blocking(move |c| async move {
            let row = c
                .query_opt("select entry, version from chela_sessions where store = $1 and key = $2", &[&store, &k])
                .await?;
            Ok(row.map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1))))
        })?;
        let Some((raw, version)) = found else {
            self.known().pop(key);
            return Ok(None);
        };
        let entry = self.parse(key, &raw)?;
        self.known().put(key.to_string(), (version, entry.clone()));
        Ok(Some((entry, version)))
    }
}

impl SessionStore for PgStore {
    fn get(&self, key: &str) -> Result<Option<SessionEntry>, StoreError> {
        Ok(self.read(key)?.map(|(entry, _)| entry))
    }

    fn list(&self) -> Result<Vec<(String, SessionEntry)>, StoreError> {
        let store = self.store.clone();
        let rows = self.db.blocking(move |c| async move {
            let rows = c
                .query("select key, entry from chela_sessions where store = $1 order by updated_at desc", &[&store])
                .await?;
            Ok(rows.into_iter().map(|r| (r.get::<_, String>(0), r.get::<_, String>(1))).collect::<Vec<_>>())
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, raw)| match self.parse(&k, &raw) {
                Ok(e) => Some((k, e)),
                Err(e) => {
                    tracing::warn!(error = %e, "skipping session entry");
                    None
                }
            })
            .collect())
    }

    fn upsert(&self, key: &str, edit: &mut dyn FnMut(&mut SessionEntry)) -> Result<SessionEntry, StoreError> {
        // First from the version this replica knows; after a miss, from the database's.
        let mut base = self.known().get(key).cloned().map(|(v, e)| (e, v));
        loop {
            let found = match base.take() {
                Some(known) => Some(known),
                None => self.read(key)?,
            };
            let (mut entry, version) = match found {
                Some((e, v)) => (e, Some(v)),
                None => (SessionEntry::new(clock::now_ms()), None),
            };
            edit(&mut entry);
            let raw = serde_json::to_string(&entry).map_err(|e| StoreError::BadEntry {
                path: self.db.shown_url().into(),
                key: key.to_string(),
                message: e.to_string(),
            })?;
            let (store, k, at) = (self.store.clone(), key.to_string(), entry.updated_at);
            let stored = self.db.blocking(move |c| async move {
                let n = match version {
                    Some(v) => {
                        c.execute(
                            "update chela_sessions set entry = $3, updated_at = $4, version = version + 1
                             where store = $1 and key = $2 and version = $5",
                            &[&store, &k, &raw, &at, &v],
                        )
                        .await?
                    }
                    None => {
                        c.execute(
                            "insert into chela_sessions (store, key, entry, updated_at) values ($1, $2, $3, $4)
                             on conflict do nothing",
                            &[&store, &k, &raw, &at],
                        )
                        .await?
                    }
                };
                Ok(n == 1)
            })?;
            // Another replica changed the entry meanwhile: edit its version.
            if stored {
                self.known().put(key.to_string(), (version.map_or(1, |v| v + 1), entry.clone()));
                return Ok(entry);
            }
            self.known().pop(key);
        }
    }

    fn reset(&self, key: &str) -> Result<SessionEntry, StoreError> {
        // The old transcript's rows stay (archived: no entry names them).
        if let Some(old) = self.get(key)? {
            self.cache().pop(&old.session_id);
        }
        let now = clock::now_ms();
        self.upsert(key, &mut |e| e.restart(now))
    }

    fn append(&self, entry: &SessionEntry, cwd: &str, lines: &[Value]) -> Result<(), StoreError> {
        let (store, id) = (self.store.clone(), entry.session_id.clone());
        let header = super::transcript::header(&entry.session_id, cwd, &clock::iso_now()).to_string();
        let lines: Vec<String> = lines.iter().map(Value::to_string).collect();
        self.db.blocking(move |mut c| async move {
            let tx = c.transaction().await?;
            let started = tx
                .query_opt(
                    "select 1 from chela_transcript_lines where store = $1 and session_id = $2 limit 1",
                    &[&store, &id],
                )
                .await?
                .is_some();
            let insert = "insert into chela_transcript_lines (store, session_id, line) values ($1, $2, $3)";
            if !started {
                tx.execute(insert, &[&store, &id, &header]).await?;
            }
            for line in &lines {
                tx.execute(insert, &[&store, &id, line]).await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    fn transcript(&self, entry: &SessionEntry) -> Result<Transcript, StoreError> {
        let id = entry.session_id.clone();
        let (mut seen, mut transcript) = self.cache().get(&id).cloned().unwrap_or((0, Transcript::default()));
        let (store, sid) = (self.store.clone(), id.clone());
        let rows = self.db.blocking(move |c| async move {
            let rows = c
                .query(
                    "select seq, line from chela_transcript_lines
                     where store = $1 and session_id = $2 and seq > $3 order by seq",
                    &[&store, &sid, &seen],
                )
                .await?;
            Ok(rows.into_iter().map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1))).collect::<Vec<_>>())
        })?;
        for (seq, raw) in rows {
            seen = seq;
            match serde_json::from_str::<Value>(&raw) {
                Ok(line) if transcript.push_line(&line) => {}
                _ => tracing::warn!(session = %id, seq, "skipped an unreadable transcript line"),
            }
        }
        self.cache().put(id, (seen, transcript.clone()));
        Ok(transcript)
    }

    fn hold_turn(&self, key: &str) -> super::HoldFuture {
        let (db, store, key) = (self.db.clone(), self.store.clone(), key.to_string());
        Box::pin(async move {
            let lock = db.lock_turn(&store, &key).await?;
            Ok(TurnHold::new(lock))
        })
    }
}
