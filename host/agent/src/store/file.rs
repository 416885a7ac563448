//! The embedded store, in OpenClaw's layout:
//! `<dir>/sessions.json` (index) and `<dir>/<sessionId>.jsonl` (transcripts).
//!
//! Crash safety: the index is replaced through `chela_durable::replace`, so a
//! reader sees the old or the new file, never half of one; a transcript line
//! is one `write` on an append-only file, and a torn last line (a crash
//! mid-write) is skipped on read and terminated before the next append.
//! Entries chela cannot parse are kept verbatim.
//!
//! Must not: interpret entries beyond what a turn needs (unknown ones are kept verbatim) or replace
//! a file in place.

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::{SessionEntry, SessionStore, StoreError, Transcript};
use crate::clock;

/// How far a write goes before the store returns: `Fsync` (the default)
/// fsyncs each transcript append and index replacement, so a finished turn
/// survives a power loss; `OsBuffered` survives `kill -9` of chela but not a
/// crash of the machine. Measured against each other in
/// `cargo bench -p chela-agent --bench turns`.
pub use chela_durable::Durability;

pub struct FileStore {
    dir: PathBuf,
    durability: Durability,
    /// The index as stored (raw values: unknown or unreadable entries survive).
    index: Mutex<Map<String, Value>>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

impl FileStore {
    /// Opens the store in `dir` (created on first write). A corrupt index is
    /// an error, never silently replaced.
    pub fn open(dir: &Path) -> Result<FileStore, StoreError> {
        FileStore::open_with(dir, Durability::default())
    }

    pub fn open_with(dir: &Path, durability: Durability) -> Result<FileStore, StoreError> {
        let path = dir.join("sessions.json");
        let index = match fs::read_to_string(&path) {
            Ok(text) if text.trim().is_empty() => Map::new(),
            Ok(text) => match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => map,
                Ok(other) => {
                    return Err(StoreError::CorruptIndex {
                        path,
                        line: 1,
                        column: 1,
                        message: format!("expected an object of sessions, found {}", type_name(&other)),
                    })
                }
                Err(e) => {
                    return Err(StoreError::CorruptIndex {
                        path,
                        line: e.line(),
                        column: e.column(),
                        message: e.to_string(),
                    })
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(StoreError::Io { path, source: e }),
        };
        Ok(FileStore { dir: dir.to_path_buf(), durability, index: Mutex::new(index) })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("sessions.json")
    }

    /// The transcript file of an entry (`sessionFile` when set, else `<sessionId>.jsonl`).
    pub fn transcript_path(&self, entry: &SessionEntry) -> PathBuf {
        match &entry.session_file {
            Some(f) if Path::new(f).is_absolute() => PathBuf::from(f),
            Some(f) => self.dir.join(f),
            None => self.dir.join(format!("{}.jsonl", entry.session_id)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map<String, Value>> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn parse(&self, key: &str, raw: &Value) -> Result<SessionEntry, StoreError> {
        serde_json::from_value(raw.clone()).map_err(|e| StoreError::BadEntry {
            path: self.index_path(),
            key: key.to_string(),
            message: e.to_string(),
        })
    }

    /// Replaces the index atomically (`chela_durable::replace`).
    fn persist(&self, index: &Map<String, Value>) -> Result<(), StoreError> {
        let path = self.index_path();
        let body = serde_json::to_vec_pretty(index).map_err(|e| StoreError::Io {
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        chela_durable::replace(&path, &body, self.durability)
            .map_err(|e| StoreError::Io { path: e.path, source: e.source })
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl SessionStore for FileStore {
    fn get(&self, key: &str) -> Result<Option<SessionEntry>, StoreError> {
        let index = self.lock();
        index.get(key).map(|raw| self.parse(key, raw)).transpose()
    }

    fn list(&self) -> Result<Vec<(String, SessionEntry)>, StoreError> {
        let index = self.lock();
        let mut out: Vec<(String, SessionEntry)> = index
            .iter()
            .filter_map(|(k, raw)| match self.parse(k, raw) {
                Ok(e) => Some((k.clone(), e)),
                Err(e) => {
                    tracing::warn!(error = %e, "skipping session entry");
                    None
                }
            })
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.1.updated_at));
        Ok(out)
    }

    fn upsert(&self, key: &str, edit: &mut dyn FnMut(&mut SessionEntry)) -> Result<SessionEntry, StoreError> {
        let mut index = self.lock();
        let mut entry = match index.get(key) {
            Some(raw) => self.parse(key, raw)?,
            None => SessionEntry::new(clock::now_ms()),
        };
        edit(&mut entry);
        let raw = serde_json::to_value(&entry).map_err(|e| StoreError::BadEntry {
            path: self.index_path(),
            key: key.to_string(),
            message: e.to_string(),
        })?;
        let previous = index.insert(key.to_string(), raw);
        if let Err(e) = self.persist(&index) {
            // Keep memory and disk in step: the change did not happen.
            match previous {
                Some(p) => index.insert(key.to_string(), p),
                None => index.remove(key),
            };
            return Err(e);
        }
        Ok(entry)
    }

    fn reset(&self, key: &str) -> Result<SessionEntry, StoreError> {
        if let Some(old) = self.get(key)? {
            let from = self.transcript_path(&old);
            if from.exists() {
                let to = PathBuf::from(format!("{}.reset.{}", from.display(), clock::now_ms()));
                fs::rename(&from, &to).map_err(io(&from))?;
            }
        }
        let now = clock::now_ms();
        self.upsert(key, &mut |e| {
            e.session_id = uuid::Uuid::new_v4().to_string();
            e.session_file = None;
            e.session_started_at = Some(now);
            e.updated_at = now;
            e.input_tokens = None;
            e.output_tokens = None;
            e.total_tokens = None;
        })
    }

    fn append(&self, entry: &SessionEntry, cwd: &str, lines: &[Value]) -> Result<(), StoreError> {
        let path = self.transcript_path(entry);
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let mut f = OpenOptions::new().create(true).append(true).read(true).open(&path).map_err(io(&path))?;
        let len = f.metadata().map_err(io(&path))?.len();
        let mut buf = Vec::new();
        if len == 0 {
            let header = super::transcript::header(&entry.session_id, cwd, &clock::iso_now());
            buf.extend_from_slice(header.to_string().as_bytes());
            buf.push(b'\n');
        } else {
            // A crash may have left a torn line: end it so ours starts clean.
            let mut last = [0u8; 1];
            f.seek(SeekFrom::Start(len - 1)).and_then(|_| f.read_exact(&mut last)).map_err(io(&path))?;
            if last[0] != b'\n' {
                buf.push(b'\n');
            }
        }
        for line in lines {
            buf.extend_from_slice(line.to_string().as_bytes());
            buf.push(b'\n');
        }
        // One write of whole lines, then to disk before the turn goes on.
        let fsync = self.durability == Durability::Fsync;
        f.write_all(&buf).and_then(|_| if fsync { f.sync_data() } else { Ok(()) }).map_err(io(&path))
    }

    fn transcript(&self, entry: &SessionEntry) -> Result<Transcript, StoreError> {
        let path = self.transcript_path(entry);
        let text = match fs::read(&path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Transcript::default()),
            Err(e) => return Err(StoreError::Io { path, source: e }),
        };
        let t = Transcript::parse(&text);
        if !t.skipped.is_empty() {
            tracing::warn!(file = %path.display(), lines = ?t.skipped, "skipped unreadable transcript lines");
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::transcript::{message_entry, Message};

    #[test]
    fn index_round_trips_and_keeps_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("sessions.json"),
            r#"{"agent:a:main":{"sessionId":"s1","updatedAt":5,"thinkingLevel":"low","origin":{"label":"Alice"}},
                "agent:a:odd":{"updatedAt":"not a number"}}"#,
        )
        .unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let e = store.upsert("agent:a:main", &mut |e| e.updated_at = 9).unwrap();
        assert_eq!((e.session_id.as_str(), e.updated_at), ("s1", 9));
        store.upsert("agent:a:new", &mut |_| {}).unwrap();
        let text = fs::read_to_string(dir.path().join("sessions.json")).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["agent:a:main"]["thinkingLevel"], "low");
        assert_eq!(v["agent:a:odd"]["updatedAt"], "not a number", "an unreadable entry is kept verbatim");
        assert!(v["agent:a:new"]["sessionId"].as_str().is_some_and(|s| s.len() == 36));
        let listed: Vec<String> = store.list().unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(listed.len(), 2);
        assert!(matches!(store.get("agent:a:odd"), Err(StoreError::BadEntry { .. })));
    }

    #[test]
    fn corrupt_index_is_reported_with_position_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.json");
        fs::write(&path, "{\n  \"a\": {,\n}").unwrap();
        let err = FileStore::open(dir.path()).err().expect("corrupt index is an error");
        let msg = err.to_string();
        assert!(msg.contains("sessions.json:2:"), "{msg}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\n  \"a\": {,\n}");
    }

    #[test]
    fn append_after_torn_line_starts_a_new_line_and_reset_archives() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let entry = store.upsert("k", &mut |_| {}).unwrap();
        let first = message_entry("a1", None, "t", &Message::user("one", 1));
        store.append(&entry, "/w", &[first]).unwrap();
        let path = store.transcript_path(&entry);
        // Simulate a crash mid-line.
        OpenOptions::new().append(true).open(&path).unwrap().write_all(br#"{"type":"message","id":"#).unwrap();
        let second = message_entry("a2", Some("a1"), "t", &Message::user("two", 2));
        store.append(&entry, "/w", &[second]).unwrap();
        let t = store.transcript(&entry).unwrap();
        assert_eq!(t.messages.iter().map(Message::text).collect::<Vec<_>>(), vec!["one", "two"]);
        assert_eq!(t.skipped, vec![3]);
        assert_eq!(t.lines[0]["type"], "session");

        let fresh = store.reset("k").unwrap();
        assert_ne!(fresh.session_id, entry.session_id);
        assert!(!path.exists());
        let archived = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(&format!("{}.jsonl.reset.", entry.session_id)));
        assert!(archived);
        assert!(store.transcript(&fresh).unwrap().messages.is_empty());
    }
}
