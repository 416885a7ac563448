//! Small documents replicas edit together (`chela_documents`): one row per
//! name holding what a state file would (a channel's pairing requests, an
//! account's approved senders, the scheduler's jobs and run state). An edit
//! reads, changes and writes its documents in one transaction under an
//! advisory lock named by the caller (one document's name, or a whole
//! store's), so replicas and the CLI editing at once never lose each
//! other's change, and a failed edit writes nothing.
//!
//! Must not: parse a document (its owner does), or hold a lock past one edit.

use super::turn_lock::lock_id;
use super::{Database, DbError};

impl Database {
    /// The document `name` (`None`: never written), waited for on this thread.
    pub fn document(&self, name: &str) -> Result<Option<String>, DbError> {
        let name = name.to_string();
        self.blocking(move |c| async move {
            let row = c.query_opt("select body from chela_documents where name = $1", &[&name]).await?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    /// Edits the documents `names` under the lock `lock`, waited for on this
    /// thread: `edit` gets their bodies (`None`: absent) and may change any
    /// (`None` deletes it); what it changed is written when it returns `Ok`,
    /// nothing when it returns `Err`. `edit` runs on this thread while the
    /// database holds the transaction open (so it may borrow what it likes).
    pub fn edit_documents<R, E>(
        &self,
        lock: &str,
        names: Vec<String>,
        edit: impl FnOnce(&mut [Option<String>]) -> Result<R, E>,
    ) -> Result<Result<R, E>, DbError> {
        type Bodies = Vec<Option<String>>;
        let lock = lock_id("documents", lock);
        let (read_tx, read_rx) = std::sync::mpsc::sync_channel::<Bodies>(1);
        // `None`: roll back.
        let (write_tx, write_rx) = tokio::sync::oneshot::channel::<Option<Bodies>>();
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<Result<(), DbError>>(1);
        let work = self.call(move |mut c| async move {
            let tx = c.transaction().await?;
            tx.execute("select pg_advisory_xact_lock($1)", &[&lock]).await?;
            let rows = tx.query("select name, body from chela_documents where name = any($1)", &[&names]).await?;
            let found = |name: &String| rows.iter().find(|r| r.get::<_, String>(0) == *name).map(|r| r.get(1));
            let before: Bodies = names.iter().map(found).collect();
            if read_tx.send(before.clone()).is_err() {
                return Ok(());
            }
            let Ok(Some(after)) = write_rx.await else { return Ok(()) }; // dropped: rolled back
            for ((name, old), new) in names.iter().zip(&before).zip(&after) {
                match new {
                    _ if new == old => {}
                    Some(body) => {
                        tx.execute(
                            "insert into chela_documents (name, body) values ($1, $2)
                             on conflict (name) do update set body = excluded.body, updated_at = now()",
                            &[name, body],
                        )
                        .await?;
                    }
                    None => {
                        tx.execute("delete from chela_documents where name = $1", &[name]).await?;
                    }
                }
            }
            tx.commit().await
        });
        self.handle.spawn(async move {
            let _ = done_tx.send(work.await);
        });
        // No bodies: the transaction failed before it read them.
        let Ok(mut bodies) = read_rx.recv() else {
            return Err(match done_rx.recv() {
                Ok(Err(e)) => e,
                _ => DbError::Stopped,
            });
        };
        let edited = edit(&mut bodies);
        let _ = write_tx.send(edited.is_ok().then_some(bodies));
        done_rx.recv().map_err(|_| DbError::Stopped)??;
        Ok(edited)
    }
}
