//! The schema, as numbered steps applied in order, each once, recorded in
//! `chela_schema_migrations`. All steps of one start run in one transaction
//! under a transaction-scoped advisory lock: a second replica starting at
//! the same moment waits, then finds them applied. A database at a version
//! this chela does not know is refused, never downgraded.
//!
//! Must not: change a step once released (add a new one).

use super::{Client, Database, DbError, PgError};

/// The migration lock's id (any fixed number no turn lock hashes to in practice).
const MIGRATION_LOCK: i64 = 0x6368_656c_615f_6d67; // "chela_mg"

/// (version, name, SQL), in order.
const STEPS: &[(i32, &str, &str)] = &[
    (
        1,
        "sessions",
        "create table chela_sessions (
         store text not null,
         key text not null,
         entry text not null,
         updated_at bigint not null,
         version bigint not null default 1,
         primary key (store, key)
     );
     create table chela_transcript_lines (
         store text not null,
         session_id text not null,
         seq bigserial not null,
         line text not null,
         primary key (store, session_id, seq)
     );",
    ),
    (
        2,
        "leases",
        "create table chela_leases (
             name text primary key,
             owner text not null,
             expires_at timestamptz not null
         );",
    ),
    (
        3,
        "journal",
        "create table chela_inbound (
             seq bigserial primary key,
             dedupe text unique,
             chat text not null,
             event text not null,
             owner text not null,
             accepted_at timestamptz not null default now(),
             answered_by text[] not null default '{}',
             finished_at timestamptz,
             how text
         );
         create index chela_inbound_open on chela_inbound (seq) where finished_at is null;
         create index chela_inbound_finished on chela_inbound (finished_at);
         create table chela_outbox (
             id bigserial primary key,
             seq bigint not null,
             agent text not null,
             chat text not null,
             message text not null,
             owner text not null,
             created_at timestamptz not null default now(),
             done_at timestamptz,
             outcome text
         );
         create index chela_outbox_open on chela_outbox (id) where done_at is null;
         create index chela_outbox_done on chela_outbox (done_at);",
    ),
    (
        4,
        "settings",
        "create table chela_settings (
             name text primary key,
             value text not null
         );",
    ),
    (
        5,
        "kv",
        "create table chela_kv (
             scope text not null,
             key text not null,
             value bytea not null,
             primary key (scope, key)
         );",
    ),
    (
        6,
        "documents",
        "create table chela_documents (
             name text primary key,
             body text not null,
             updated_at timestamptz not null default now()
         );",
    ),
];

/// Applies the steps the database lacks; `Some((found, known))`: the
/// database is at a version this chela does not know, and nothing was done.
pub(crate) async fn apply(client: &mut Client, url: &str) -> Result<Option<(i32, i32)>, PgError> {
    let tx = client.transaction().await?;
    tx.execute("select pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute(
        "create table if not exists chela_schema_migrations (
             version integer primary key,
             name text not null,
             applied_at timestamptz not null default now()
         )",
    )
    .await?;
    let found: i32 = tx.query_one("select coalesce(max(version), 0) from chela_schema_migrations", &[]).await?.get(0);
    let known = STEPS.last().map_or(0, |s| s.0);
    if found > known {
        return Ok(Some((found, known)));
    }
    for (version, name, sql) in STEPS.iter().filter(|s| s.0 > found) {
        tx.batch_execute(sql).await?;
        tx.execute("insert into chela_schema_migrations (version, name) values ($1, $2)", &[version, name]).await?;
        tracing::info!(database = %url, version, name, "applied migration");
    }
    tx.commit().await?;
    Ok(None)
}

impl Database {
    /// The schema version the database is at, and the newest this chela knows
    /// (waited for on this thread: `chela doctor`).
    pub fn schema_version(&self) -> Result<(i32, i32), DbError> {
        let known = STEPS.last().map_or(0, |s| s.0);
        let found = self.blocking(|c| async move {
            Ok(c.query_one("select coalesce(max(version), 0) from chela_schema_migrations", &[]).await?.get(0))
        })?;
        Ok((found, known))
    }
}
