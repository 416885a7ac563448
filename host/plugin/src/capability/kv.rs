//! `chela:plugin/kv`: small persistent state per scope (plugin × account or
//! plugin × agent). Where it lives is the host's [`KvHome`]: the state dir
//! (`kv_files.rs`, the default) or, on replicas, the shared database
//! (`chela_kv`), so an account's offsets and sessions follow whichever
//! replica serves it. Keys and values are checked here, the same for both.
//! A file write runs on the blocking pool, never on an async worker. Each
//! operation is atomic; a read the database cannot answer fails the call
//! (a guest is never told "absent" for a value it merely could not read).
//!
//! Must not: let one scope read another's state.

use std::path::PathBuf;
use std::sync::Arc;

use chela_database::{Database, KvWrite};
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::plugin::kv;
pub use crate::capability::kv_files::FileKv;

pub const MAX_KEY_BYTES: usize = 256;
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
pub const MAX_KEYS: usize = 1024;

/// Where one scope's state is kept: its dir under the state dir, and its
/// name in a shared database (`<plugin>/account-<id>`, `<plugin>/agent-<id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvPlace {
    pub dir: PathBuf,
    pub scope: String,
}

/// Where the host keeps every scope: the state dir, or the replicas' database.
#[derive(Clone, Default)]
pub enum KvHome {
    #[default]
    Files,
    Shared(Arc<Database>),
}

impl KvHome {
    pub fn open(&self, place: &KvPlace) -> KvScope {
        match self {
            KvHome::Files => KvScope::Files(FileKv::open(&place.dir, MAX_KEYS)),
            KvHome::Shared(db) => KvScope::Shared { db: db.clone(), scope: place.scope.clone() },
        }
    }
}

/// One scope's state, wherever it is kept.
#[derive(Clone)]
pub enum KvScope {
    Files(FileKv),
    Shared { db: Arc<Database>, scope: String },
}

fn check(key: &str, value: &[u8]) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(format!("keys must be 1 to {MAX_KEY_BYTES} bytes"));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!("values are limited to {MAX_VALUE_BYTES} bytes"));
    }
    Ok(())
}

fn full() -> String {
    format!("this scope already holds {MAX_KEYS} keys")
}

impl KvScope {
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        match self {
            KvScope::Files(f) => Ok(f.get(key)),
            KvScope::Shared { db, scope } => db.kv_get(scope, key).await.map_err(|e| e.to_string()),
        }
    }

    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, String> {
        match self {
            KvScope::Files(f) => Ok(f.keys(prefix)),
            KvScope::Shared { db, scope } => db.kv_keys(scope, prefix).await.map_err(|e| e.to_string()),
        }
    }

    pub async fn set(&self, key: String, value: Vec<u8>) -> Result<(), String> {
        check(&key, &value)?;
        match self {
            KvScope::Files(f) => {
                let f = f.clone();
                off_thread(move || f.set(key, value)).await
            }
            KvScope::Shared { db, scope } => match db.kv_put(scope, &key, None, value, MAX_KEYS).await {
                Ok(KvWrite::Stored) => Ok(()),
                Ok(_) => Err(full()),
                Err(e) => Err(e.to_string()),
            },
        }
    }

    /// Sets `key` to `value` if it holds `expected` (`None`: absent), in one
    /// step; `Ok(false)` when it held something else.
    pub async fn compare_and_swap(
        &self,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<bool, String> {
        check(&key, &value)?;
        match self {
            KvScope::Files(f) => {
                let f = f.clone();
                off_thread(move || f.compare_and_swap(key, expected, value)).await
            }
            KvScope::Shared { db, scope } => match db.kv_put(scope, &key, Some(expected), value, MAX_KEYS).await {
                Ok(KvWrite::Stored) => Ok(true),
                Ok(KvWrite::Mismatch) => Ok(false),
                Ok(KvWrite::Full) => Err(full()),
                Err(e) => Err(e.to_string()),
            },
        }
    }

    pub async fn delete(&self, key: String) -> Result<(), String> {
        match self {
            KvScope::Files(f) => {
                let f = f.clone();
                off_thread(move || f.delete(&key)).await
            }
            KvScope::Shared { db, scope } => db.kv_delete(scope, &key).await.map_err(|e| e.to_string()),
        }
    }
}

/// An instance's key-value scope (a channel instance switches it per account).
#[derive(Default)]
pub struct KvState {
    pub(crate) scope: Option<KvScope>,
    /// Why a read failed and ended the call (`guarded.rs` reports it as the host's failure).
    pub(crate) failed: Option<String>,
}

/// Runs a write (a file replacement and its fsyncs) on the blocking pool:
/// the guest's call waits, the async worker it ran on does not.
async fn off_thread<T: Send + 'static>(
    write: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(write).await {
        Ok(out) => out,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(format!("the write did not complete: {e}")),
    }
}

fn scope(s: &KvState) -> Result<&KvScope, String> {
    s.scope.as_ref().ok_or_else(|| "key-value state is not configured for this plugin".to_string())
}

impl KvState {
    /// A read that could not be answered ends the call: "absent" would be a
    /// lie (a poller would start over from offset 0).
    fn unreadable(&mut self, e: String) -> wasmtime::Error {
        let message = format!("key-value state cannot be read: {e}");
        self.failed = Some(message.clone());
        wasmtime::Error::msg(message)
    }
}

impl kv::Host for KvState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        let Ok(scope) = scope(self) else { return Ok(None) };
        let read = scope.get(&key).await;
        read.map_err(|e| self.unreadable(e))
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        scope(self)?.clone().set(key, value).await
    }

    async fn delete(&mut self, key: String) -> Result<(), String> {
        scope(self)?.clone().delete(key).await
    }

    async fn list_keys(&mut self, prefix: String) -> wasmtime::Result<Vec<String>> {
        let Ok(scope) = scope(self) else { return Ok(Vec::new()) };
        let read = scope.keys(&prefix).await;
        read.map_err(|e| self.unreadable(e))
    }

    async fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<bool, String> {
        scope(self)?.clone().compare_and_swap(key, expected, value).await
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut KvState,
) -> wasmtime::Result<()> {
    kv::add_to_linker::<T, HasSelf<KvState>>(linker, get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_and_values_are_checked_before_any_backend() {
        let dir = tempfile::tempdir().unwrap();
        let place = KvPlace { dir: dir.path().to_path_buf(), scope: "p/account-a".into() };
        let kv = KvHome::Files.open(&place);
        kv.set("offset".into(), b"42".to_vec()).await.unwrap();
        assert_eq!(kv.get("offset").await.unwrap().as_deref(), Some(&b"42"[..]));
        assert!(kv.set(String::new(), vec![]).await.unwrap_err().contains("1 to 256 bytes"));
        assert!(kv.set("k".repeat(MAX_KEY_BYTES + 1), vec![]).await.is_err());
        assert!(kv.set("big".into(), vec![0; MAX_VALUE_BYTES + 1]).await.unwrap_err().contains("limited"));
        assert!(kv.compare_and_swap("big".into(), None, vec![0; MAX_VALUE_BYTES + 1]).await.is_err());
        assert_eq!(kv.keys("").await.unwrap(), vec!["offset".to_string()]);
        // Full: a new key is refused, an existing one still changes.
        for i in 1..MAX_KEYS {
            kv.set(format!("k{i}"), vec![]).await.unwrap();
        }
        assert!(kv.set("one-more".into(), vec![]).await.unwrap_err().contains("1024 keys"));
        kv.set("offset".into(), b"43".to_vec()).await.unwrap();
    }
}
