//! Leases: one owner at a time for what must not run twice across replicas
//! (a Telegram poller per bot, a Discord or Slack socket per app).
//!
//! A lease is a row (`chela_leases`: name, owner, expiry). Taking it
//! succeeds when it is free, expired, or already this owner's; holding it
//! means renewing it before it expires. An owner that dies stops renewing,
//! and after the TTL the next replica that asks takes it over. The clock is
//! the database's (`now()`), so replicas' clocks do not matter.
//!
//! Must not: decide who wants which lease or what holding one allows (the
//! gateway's lease keeper does).

use std::time::Duration;

use super::{Database, DbError};

/// One lease as the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub name: String,
    pub owner: String,
    /// Milliseconds until it expires (negative: expired).
    pub expires_in_ms: i64,
}

impl Database {
    /// Takes or renews `name` for `owner` for `ttl`; `true` when `owner`
    /// holds it now.
    pub async fn take_lease(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, DbError> {
        let (name, owner) = (name.to_string(), owner.to_string());
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.run(move |c| async move {
            let row = c
                .query_opt(
                    "insert into chela_leases (name, owner, expires_at)
                     values ($1, $2, now() + $3::bigint * interval '1 millisecond')
                     on conflict (name) do update set owner = excluded.owner, expires_at = excluded.expires_at
                     where chela_leases.owner = excluded.owner or chela_leases.expires_at < now()
                     returning owner",
                    &[&name, &owner, &ttl_ms],
                )
                .await?;
            Ok(row.is_some())
        })
        .await
    }

    /// Gives `name` up if `owner` holds it (a clean stop: the next replica
    /// need not wait for the TTL).
    pub async fn release_lease(&self, name: &str, owner: &str) -> Result<(), DbError> {
        let (name, owner) = (name.to_string(), owner.to_string());
        self.run(move |c| async move {
            c.execute("delete from chela_leases where name = $1 and owner = $2", &[&name, &owner]).await?;
            Ok(())
        })
        .await
    }

    /// Every lease and its owner, waited for on this thread (the CLI).
    pub fn leases(&self) -> Result<Vec<LeaseRecord>, DbError> {
        self.blocking(list)
    }
}

async fn list(c: super::Client) -> Result<Vec<LeaseRecord>, super::PgError> {
    let rows = c
        .query(
            "select name, owner,
                    (extract(epoch from (expires_at - now())) * 1000)::bigint
             from chela_leases order by name",
            &[],
        )
        .await?;
    Ok(rows.into_iter().map(|r| LeaseRecord { name: r.get(0), owner: r.get(1), expires_in_ms: r.get(2) }).collect())
}
