//! The embedded store, in OpenClaw's layout:
//! `<dir>/sessions.json` (index) and `<dir>/<sessionId>.jsonl` (transcripts).
//!
//! Crash safety: the index is replaced through `chela_durable::replace`, so a
//! reader sees the old or the new file, never half of one; a transcript line
//! is one `write` on an append-only file, and a torn last line (a crash
//! mid-write) is skipped on read and terminated before the next append.
//! Entries chela cannot parse are kept verbatim.
//!
//! Speed: changes to the index of many sessions share one replacement
//! (`index`: group commit); transcripts of active sessions are kept in memory
//! and extended by appends (`cache`), so a turn reads its history from disk
//! only when the file changed behind the store's back.
//!
//! Must not: interpret entries beyond what a turn needs (unknown ones are kept verbatim) or replace
//! a file in place.

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::cache::TranscriptCache;
use super::index::Index;
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
    index: Index,
    transcripts: TranscriptCache,
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
        Ok(FileStore {
            dir: dir.to_path_buf(),
            durability,
            index: Index::new(path, durability, index),
            transcripts: TranscriptCache::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The transcript file of an entry (`sessionFile` when set, else `<sessionId>.jsonl`).
    pub fn transcript_path(&self, entry: &SessionEntry) -> PathBuf {
        match &entry.session_file {
            Some(f) if Path::new(f).is_absolute() => PathBuf::from(f),
            Some(f) => self.dir.join(f),
            None => self.dir.join(format!("{}.jsonl", entry.session_id)),
        }
    }

    fn parse(&self, key: &str, raw: &Value) -> Result<SessionEntry, StoreError> {
        SessionEntry::deserialize(raw).map_err(|e| StoreError::BadEntry {
            path: self.index.path().to_path_buf(),
            key: key.to_string(),
            message: e.to_string(),
        })
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
        self.index.read(|index| index.get(key).map(|raw| self.parse(key, raw)).transpose())
    }

    fn list(&self) -> Result<Vec<(String, SessionEntry)>, StoreError> {
        let mut out: Vec<(String, SessionEntry)> = self.index.read(|index| {
            index
                .iter()
                .filter_map(|(k, raw)| match self.parse(k, raw) {
                    Ok(e) => Some((k.clone(), e)),
                    Err(e) => {
                        tracing::warn!(error = %e, "skipping session entry");
                        None
                    }
                })
                .collect()
        });
        out.sort_by_key(|e| std::cmp::Reverse(e.1.updated_at));
        Ok(out)
    }

    fn upsert(&self, key: &str, edit: &mut dyn FnMut(&mut SessionEntry)) -> Result<SessionEntry, StoreError> {
        let (entry, pending) = self.index.change(|index| {
            let mut entry = match index.get(key) {
                Some(raw) => self.parse(key, raw)?,
                None => SessionEntry::new(clock::now_ms()),
            };
            edit(&mut entry);
            let raw = serde_json::to_value(&entry).map_err(|e| StoreError::BadEntry {
                path: self.index.path().to_path_buf(),
                key: key.to_string(),
                message: e.to_string(),
            })?;
            index.insert(key.to_string(), raw);
            Ok(entry)
        })?;
        self.index.commit(pending)?;
        Ok(entry)
    }

    fn reset(&self, key: &str) -> Result<SessionEntry, StoreError> {
        if let Some(old) = self.get(key)? {
            let from = self.transcript_path(&old);
            self.transcripts.forget(&from);
            if from.exists() {
                let to = PathBuf::from(format!("{}.reset.{}", from.display(), clock::now_ms()));
                fs::rename(&from, &to).map_err(io(&from))?;
            }
        }
        let now = clock::now_ms();
        self.upsert(key, &mut |e| e.restart(now))
    }

    fn append(&self, entry: &SessionEntry, cwd: &str, lines: &[Value]) -> Result<(), StoreError> {
        let path = self.transcript_path(entry);
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let mut f = OpenOptions::new().create(true).append(true).read(true).open(&path).map_err(io(&path))?;
        let len = f.metadata().map_err(io(&path))?.len();
        let mut buf = Vec::new();
        let mut header = None;
        if len == 0 {
            let line = super::transcript::header(&entry.session_id, cwd, &clock::iso_now());
            buf.extend_from_slice(line.to_string().as_bytes());
            buf.push(b'\n');
            header = Some(line);
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
        let written = f.write_all(&buf).and_then(|_| if fsync { f.sync_data() } else { Ok(()) });
        if let Err(e) = written {
            self.transcripts.forget(&path);
            return Err(StoreError::Io { path, source: e });
        }
        let to = len + buf.len() as u64;
        match header {
            // A new file: its transcript is exactly what was written.
            Some(h) => {
                let mut t = Transcript::default();
                for line in std::iter::once(&h).chain(lines) {
                    t.push_line(line);
                }
                self.transcripts.put(&path, to, t);
            }
            None => self.transcripts.appended(&path, len, to, lines),
        }
        Ok(())
    }

    fn transcript(&self, entry: &SessionEntry) -> Result<Transcript, StoreError> {
        let path = self.transcript_path(entry);
        let len = match fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.transcripts.forget(&path);
                return Ok(Transcript::default());
            }
            Err(e) => return Err(StoreError::Io { path, source: e }),
        };
        if let Some(t) = self.transcripts.get(&path, len) {
            return Ok(t);
        }
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Transcript::default()),
            Err(e) => return Err(StoreError::Io { path, source: e }),
        };
        let t = Transcript::parse(&String::from_utf8_lossy(&bytes));
        if !t.skipped.is_empty() {
            tracing::warn!(file = %path.display(), lines = ?t.skipped, "skipped unreadable transcript lines");
        }
        self.transcripts.put(&path, bytes.len() as u64, t.clone());
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
        assert_eq!(t.messages.iter().map(|m| m.text()).collect::<Vec<_>>(), vec!["one", "two"]);
        assert_eq!(t.skipped, vec![3]);
        assert!(fs::read_to_string(&path).unwrap().starts_with(r#"{"type":"session""#));

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

    #[test]
    fn concurrent_upserts_all_reach_the_index_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(FileStore::open(dir.path()).unwrap());
        let threads: Vec<_> = (0..16)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..20 {
                        store.upsert(&format!("agent:a:s{t}"), &mut |e| e.updated_at = i).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // A fresh store reads what the file holds: every session, at its last change.
        let reopened = FileStore::open(dir.path()).unwrap();
        let listed = reopened.list().unwrap();
        assert_eq!(listed.len(), 16);
        assert!(listed.iter().all(|(_, e)| e.updated_at == 19), "{listed:?}");
    }

    #[test]
    fn a_transcript_changed_behind_the_store_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let entry = store.upsert("k", &mut |_| {}).unwrap();
        store.append(&entry, "/w", &[message_entry("a1", None, "t", &Message::user("one", 1))]).unwrap();
        assert_eq!(store.transcript(&entry).unwrap().messages.len(), 1, "served from the cache");
        // Another writer (an OpenClaw process, a hand edit) appends a message.
        let line = message_entry("b1", Some("a1"), "t", &Message::user("from elsewhere", 2));
        OpenOptions::new()
            .append(true)
            .open(store.transcript_path(&entry))
            .unwrap()
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
        let t = store.transcript(&entry).unwrap();
        assert_eq!(t.messages.iter().map(|m| m.text()).collect::<Vec<_>>(), vec!["one", "from elsewhere"]);
        assert_eq!(t.last_id.as_deref(), Some("b1"));
        // Our next append extends what was re-read.
        store.append(&entry, "/w", &[message_entry("a2", Some("b1"), "t", &Message::user("two", 3))]).unwrap();
        assert_eq!(store.transcript(&entry).unwrap().messages.len(), 3);
        assert_eq!(Transcript::parse(&fs::read_to_string(store.transcript_path(&entry)).unwrap()).messages.len(), 3);
    }
}
