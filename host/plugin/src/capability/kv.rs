//! `chela:plugin/kv`: small persistent state per scope (plugin × account or
//! plugin × agent) under the state dir, a snapshot plus an append-only log
//! (`kv_log.rs`); every change is synced before it is acknowledged, on the
//! blocking pool, never on an async worker. Shared by all instances of the
//! scope; each operation is atomic.
//!
//! Must not: let one scope read another's state.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::plugin::kv;
use crate::capability::kv_log::Stored;
use crate::capability::GrantSet;

pub const MAX_KEY_BYTES: usize = 256;
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
pub const MAX_KEYS: usize = 1024;

/// One scope's state, loaded once per process.
#[derive(Debug, Clone)]
pub struct KvScope {
    data: Arc<Mutex<Stored>>,
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<Mutex<Stored>>>> {
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<Stored>>>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

impl KvScope {
    /// Opens the scope stored in `dir` (`kv.json` and `kv.log`).
    pub fn open(dir: &Path) -> KvScope {
        let mut open = registry().lock().unwrap_or_else(|p| p.into_inner());
        let data = open.entry(dir.to_path_buf()).or_insert_with(|| Arc::new(Mutex::new(Stored::open(dir)))).clone();
        KvScope { data }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Stored> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().map.get(key).cloned()
    }

    pub fn set(&self, key: String, value: Vec<u8>) -> Result<(), String> {
        self.store_if(key, None, value).map(|_| ())
    }

    /// Sets `key` to `value` if it holds `expected` (`None`: absent), in one
    /// step under the scope's lock; `Ok(false)` when it held something else.
    pub fn compare_and_swap(&self, key: String, expected: Option<Vec<u8>>, value: Vec<u8>) -> Result<bool, String> {
        self.store_if(key, Some(expected), value)
    }

    /// The one write path: `condition` `None` stores unconditionally,
    /// `Some(expected)` only when the key holds `expected`.
    fn store_if(&self, key: String, condition: Option<Option<Vec<u8>>>, value: Vec<u8>) -> Result<bool, String> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(format!("keys must be 1 to {MAX_KEY_BYTES} bytes"));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(format!("values are limited to {MAX_VALUE_BYTES} bytes"));
        }
        let mut stored = self.lock();
        if condition.is_some_and(|expected| stored.map.get(&key) != expected.as_ref()) {
            return Ok(false);
        }
        if !stored.map.contains_key(&key) && stored.map.len() >= MAX_KEYS {
            return Err(format!("this scope already holds {MAX_KEYS} keys"));
        }
        let previous = stored.map.insert(key.clone(), value.clone());
        if let Err(e) = stored.record(&key, Some(&value)) {
            // Keep memory and disk in step: undo on a failed write.
            match previous {
                Some(v) => stored.map.insert(key, v),
                None => stored.map.remove(&key),
            };
            return Err(e);
        }
        Ok(true)
    }

    pub fn delete(&self, key: &str) -> Result<(), String> {
        let mut stored = self.lock();
        if let Some(previous) = stored.map.remove(key) {
            if let Err(e) = stored.record(key, None) {
                stored.map.insert(key.to_string(), previous);
                return Err(e);
            }
        }
        Ok(())
    }

    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.lock().map.keys().filter(|k| k.starts_with(prefix)).cloned().collect()
    }
}

/// An instance's key-value scope (a channel instance switches it per account).
#[derive(Default)]
pub struct KvState {
    pub(crate) scope: Option<KvScope>,
}

impl KvState {
    /// The scope the grant names, when `Kv` is granted.
    pub(crate) fn granted(grants: &GrantSet) -> KvState {
        let scope = grants.kv_dir.as_deref().filter(|_| grants.holds(super::Capability::Kv)).map(KvScope::open);
        KvState { scope }
    }
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

impl kv::Host for KvState {
    async fn get(&mut self, key: String) -> Option<Vec<u8>> {
        scope(self).ok()?.get(&key)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        let scope = scope(self)?.clone();
        off_thread(move || scope.set(key, value)).await
    }

    async fn delete(&mut self, key: String) -> Result<(), String> {
        let scope = scope(self)?.clone();
        off_thread(move || scope.delete(&key)).await
    }

    async fn list_keys(&mut self, prefix: String) -> Vec<String> {
        scope(self).map(|s| s.keys(&prefix)).unwrap_or_default()
    }

    async fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<bool, String> {
        let scope = scope(self)?.clone();
        off_thread(move || scope.compare_and_swap(key, expected, value)).await
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

    #[test]
    fn persists_across_reopen_and_enforces_limits() {
        let dir = tempfile::tempdir().unwrap();
        let a = KvScope::open(dir.path());
        a.set("offset".into(), b"42".to_vec()).unwrap();
        // A second handle to the same scope shares state.
        assert_eq!(KvScope::open(dir.path()).get("offset").as_deref(), Some(&b"42"[..]));
        // A fresh process would read the files.
        assert_eq!(Stored::open(dir.path()).map.get("offset").map(Vec::as_slice), Some(&b"42"[..]));
        assert!(a.set(String::new(), vec![]).is_err());
        assert!(a.set("big".into(), vec![0; MAX_VALUE_BYTES + 1]).is_err());
        a.delete("offset").unwrap();
        assert!(a.get("offset").is_none());
        assert!(a.keys("").is_empty());
    }

    #[test]
    fn compare_and_swap_stores_only_over_what_was_expected_and_racers_each_win_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = KvScope::open(dir.path());
        assert!(a.compare_and_swap("seq".into(), None, b"1".to_vec()).unwrap(), "absent, as expected");
        assert!(!a.compare_and_swap("seq".into(), None, b"9".to_vec()).unwrap(), "present now");
        assert!(!a.compare_and_swap("seq".into(), Some(b"0".to_vec()), b"9".to_vec()).unwrap());
        assert_eq!(a.get("seq").as_deref(), Some(&b"1"[..]), "a failed swap changes nothing");
        // Eight threads each claim five numbers by read-then-swap: no number is claimed twice.
        let claimed = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|t| {
            for _ in 0..8 {
                t.spawn(|| {
                    let kv = KvScope::open(dir.path());
                    let mut mine = 0;
                    while mine < 5 {
                        let seen = kv.get("seq");
                        let n: u64 =
                            seen.as_deref().and_then(|b| std::str::from_utf8(b).ok()?.parse().ok()).unwrap_or(0);
                        if kv.compare_and_swap("seq".into(), seen, (n + 1).to_string().into_bytes()).unwrap() {
                            claimed.lock().unwrap().push(n + 1);
                            mine += 1;
                        }
                    }
                });
            }
        });
        let mut claimed = claimed.into_inner().unwrap();
        claimed.sort_unstable();
        assert_eq!(claimed, (2..=41).collect::<Vec<u64>>());
        assert_eq!(Stored::open(dir.path()).map.get("seq").map(Vec::as_slice), Some(&b"41"[..]));
    }
}
