//! Plugins' key-value state, shared (`chela_kv`): one row per scope and
//! key, so a channel's offsets, gateway sessions and DM caches are the same
//! on every replica (the one that takes a poller over resumes where the
//! last owner stopped). Each call is one statement, atomic on its own.
//!
//! Must not: decide what a scope is or which plugin may use it (the plugin
//! runtime's `kv` capability does), or check sizes beyond the key count it
//! is told (the capability checks keys and values before they come here).

use super::{Database, DbError};

/// What a conditional write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvWrite {
    Stored,
    /// A compare-and-swap found something other than what was expected.
    Mismatch,
    /// The key is new and the scope already holds as many keys as allowed.
    Full,
}

impl Database {
    /// The value of `key` in `scope`.
    pub async fn kv_get(&self, scope: &str, key: &str) -> Result<Option<Vec<u8>>, DbError> {
        let (scope, key) = (scope.to_string(), key.to_string());
        self.run(move |c| async move {
            let row = c.query_opt("select value from chela_kv where scope = $1 and key = $2", &[&scope, &key]).await?;
            Ok(row.map(|r| r.get(0)))
        })
        .await
    }

    /// The keys of `scope` that start with `prefix`, in order.
    pub async fn kv_keys(&self, scope: &str, prefix: &str) -> Result<Vec<String>, DbError> {
        let (scope, prefix) = (scope.to_string(), prefix.to_string());
        self.run(move |c| async move {
            let rows = c
                .query(
                    "select key from chela_kv where scope = $1 and starts_with(key, $2) order by key",
                    &[&scope, &prefix],
                )
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
        .await
    }

    /// Sets `key` to `value`; a new key only while `scope` holds fewer than
    /// `max_keys`. With `expected`, only when the key holds it (`Some(None)`:
    /// only when it is absent).
    pub async fn kv_put(
        &self,
        scope: &str,
        key: &str,
        expected: Option<Option<Vec<u8>>>,
        value: Vec<u8>,
        max_keys: usize,
    ) -> Result<KvWrite, DbError> {
        let (scope, key) = (scope.to_string(), key.to_string());
        let max_keys = i64::try_from(max_keys).unwrap_or(i64::MAX);
        self.run(move |c| async move {
            let stored = match &expected {
                Some(Some(old)) => {
                    c.execute(
                        "update chela_kv set value = $3 where scope = $1 and key = $2 and value = $4",
                        &[&scope, &key, &value, old],
                    )
                    .await?
                }
                Some(None) => {
                    c.execute(
                        "insert into chela_kv (scope, key, value)
                         select $1, $2, $3 where (select count(*) from chela_kv where scope = $1) < $4
                         on conflict (scope, key) do nothing",
                        &[&scope, &key, &value, &max_keys],
                    )
                    .await?
                }
                None => {
                    c.execute(
                        "insert into chela_kv (scope, key, value)
                         select $1, $2, $3
                         where exists (select 1 from chela_kv where scope = $1 and key = $2)
                            or (select count(*) from chela_kv where scope = $1) < $4
                         on conflict (scope, key) do update set value = excluded.value",
                        &[&scope, &key, &value, &max_keys],
                    )
                    .await?
                }
            };
            if stored > 0 {
                return Ok(KvWrite::Stored);
            }
            // Nothing written: a condition that did not hold, or a full scope.
            let present =
                c.query_opt("select 1 from chela_kv where scope = $1 and key = $2", &[&scope, &key]).await?.is_some();
            Ok(match expected {
                Some(Some(_)) => KvWrite::Mismatch,
                Some(None) if present => KvWrite::Mismatch,
                _ => KvWrite::Full,
            })
        })
        .await
    }

    /// Deletes `key` from `scope` (nothing when it is absent).
    pub async fn kv_delete(&self, scope: &str, key: &str) -> Result<(), DbError> {
        let (scope, key) = (scope.to_string(), key.to_string());
        self.run(move |c| async move {
            c.execute("delete from chela_kv where scope = $1 and key = $2", &[&scope, &key]).await?;
            Ok(())
        })
        .await
    }
}
