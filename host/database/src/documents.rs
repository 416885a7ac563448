//! Small documents replicas edit together (`chela_documents`): one row per
//! name holding what a state file would (the pairing requests of a channel,
//! an account's approved senders). An edit reads, changes and writes a
//! document in one transaction with the row locked, so two replicas editing
//! one document at once never lose each other's change.
//!
//! Must not: parse a document (its owner does), or hold a lock past one edit.

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

    /// Edits the document `name` under its row lock, waited for on this
    /// thread: `edit` gets the body (`None`: never written) and returns the
    /// new body (`None`: leave it as it is) and its answer.
    pub fn edit_document<R, F>(&self, name: &str, edit: F) -> Result<R, DbError>
    where
        R: Send + 'static,
        F: FnOnce(Option<String>) -> (Option<String>, R) + Send + 'static,
    {
        let name = name.to_string();
        self.blocking(move |mut c| async move {
            let tx = c.transaction().await?;
            // The row exists before it is locked, so a first edit is serialised too.
            tx.execute(
                "insert into chela_documents (name, body) values ($1, '') on conflict (name) do nothing",
                &[&name],
            )
            .await?;
            let body: String =
                tx.query_one("select body from chela_documents where name = $1 for update", &[&name]).await?.get(0);
            let (changed, answer) = edit(Some(body).filter(|b| !b.is_empty()));
            if let Some(body) = changed {
                tx.execute("update chela_documents set body = $2, updated_at = now() where name = $1", &[&name, &body])
                    .await?;
            }
            tx.commit().await?;
            Ok(answer)
        })
    }
}
