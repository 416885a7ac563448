//! The schema, as numbered steps applied in order, each once, recorded in
//! `chela_schema_migrations`. All steps of one start run in one transaction
//! under a transaction-scoped advisory lock: a second replica starting at
//! the same moment waits, then finds them applied. A database at a version
//! this chela does not know is refused, never downgraded.
//!
//! Must not: change a step once released (add a new one).

use super::{classify, Client, DbError};

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
];

pub(crate) async fn apply(client: &mut Client, url: &str) -> Result<(), DbError> {
    let err = |e| classify(url, e);
    let tx = client.transaction().await.map_err(err)?;
    tx.execute("select pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(err)?;
    tx.batch_execute(
        "create table if not exists chela_schema_migrations (
             version integer primary key,
             name text not null,
             applied_at timestamptz not null default now()
         )",
    )
    .await
    .map_err(err)?;
    let found: i32 =
        tx.query_one("select coalesce(max(version), 0) from chela_schema_migrations", &[]).await.map_err(err)?.get(0);
    let known = STEPS.last().map_or(0, |s| s.0);
    if found > known {
        return Err(DbError::NewerSchema { url: url.to_string(), found, known });
    }
    for (version, name, sql) in STEPS.iter().filter(|s| s.0 > found) {
        tx.batch_execute(sql).await.map_err(err)?;
        tx.execute("insert into chela_schema_migrations (version, name) values ($1, $2)", &[version, name])
            .await
            .map_err(err)?;
        tracing::info!(database = %url, version, name, "applied migration");
    }
    tx.commit().await.map_err(err)
}
