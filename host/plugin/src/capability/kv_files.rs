//! A kv scope in the state dir (`kv_log.rs` keeps its files): loaded once
//! per process and shared by every instance of the scope, each change
//! synced before it is acknowledged; the key count (the limit `kv.rs`
//! opens it with) is checked here, under the scope's lock, so racing
//! writers cannot pass it.
//!
//! Must not: check key or value sizes (`kv.rs` does, for every backend), or
//! be called on an async worker for a write (it blocks on fsync).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use super::kv_log::Stored;

/// One scope's state, loaded once per process.
#[derive(Debug, Clone)]
pub struct FileKv {
    data: Arc<Mutex<Stored>>,
    /// The most keys the scope may hold (a new key past it is refused).
    max_keys: usize,
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<Mutex<Stored>>>> {
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<Stored>>>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

impl FileKv {
    /// Opens the scope stored in `dir` (`kv.json` and `kv.log`), holding at most `max_keys` keys.
    pub fn open(dir: &Path, max_keys: usize) -> FileKv {
        let mut open = registry().lock().unwrap_or_else(|p| p.into_inner());
        let data = open.entry(dir.to_path_buf()).or_insert_with(|| Arc::new(Mutex::new(Stored::open(dir)))).clone();
        FileKv { data, max_keys }
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
        let mut stored = self.lock();
        if condition.is_some_and(|expected| stored.map.get(&key) != expected.as_ref()) {
            return Ok(false);
        }
        if !stored.map.contains_key(&key) && stored.map.len() >= self.max_keys {
            return Err(format!("this scope already holds {} keys", self.max_keys));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let a = FileKv::open(dir.path(), 1024);
        a.set("offset".into(), b"42".to_vec()).unwrap();
        // A second handle to the same scope shares state.
        assert_eq!(FileKv::open(dir.path(), 1024).get("offset").as_deref(), Some(&b"42"[..]));
        // A fresh process would read the files.
        assert_eq!(Stored::open(dir.path()).map.get("offset").map(Vec::as_slice), Some(&b"42"[..]));
        a.delete("offset").unwrap();
        assert!(a.get("offset").is_none());
        assert!(a.keys("").is_empty());
    }

    #[test]
    fn compare_and_swap_stores_only_over_what_was_expected_and_racers_each_win_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = FileKv::open(dir.path(), 1024);
        assert!(a.compare_and_swap("seq".into(), None, b"1".to_vec()).unwrap(), "absent, as expected");
        assert!(!a.compare_and_swap("seq".into(), None, b"9".to_vec()).unwrap(), "present now");
        assert!(!a.compare_and_swap("seq".into(), Some(b"0".to_vec()), b"9".to_vec()).unwrap());
        assert_eq!(a.get("seq").as_deref(), Some(&b"1"[..]), "a failed swap changes nothing");
        // Eight threads each claim five numbers by read-then-swap: no number is claimed twice.
        let claimed = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|t| {
            for _ in 0..8 {
                t.spawn(|| {
                    let kv = FileKv::open(dir.path(), 1024);
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
