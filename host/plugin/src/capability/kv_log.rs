//! The files under one kv scope: `kv.json`, a snapshot replaced atomically,
//! and `kv.log`, the changes since, one checksummed line each, appended and
//! fsynced (a `set` costs one small append, not a rewrite of the whole
//! state). Opening replays the log over the snapshot; a torn or corrupt line
//! is reported and skipped, and the lines after it still count. Once the log
//! outgrows the snapshot it is folded into a new one.
//!
//! Must not: enforce key or value limits, or know whose scope it is (`kv.rs`).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub(crate) type Data = BTreeMap<String, Vec<u8>>;

/// The log is folded into the snapshot once it is this big and bigger than the snapshot.
const FOLD_AFTER_BYTES: u64 = 64 * 1024;

/// One scope's state in memory and the log file it appends to.
#[derive(Debug)]
pub(crate) struct Stored {
    pub map: Data,
    dir: PathBuf,
    log: Option<File>,
    log_bytes: u64,
    snapshot_bytes: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Change {
    k: String,
    /// Hex of the value; `None`: deleted.
    v: Option<String>,
}

fn line(change: &Change) -> Result<String, String> {
    let json = serde_json::to_string(change).map_err(|e| e.to_string())?;
    Ok(format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes())))
}

/// A log line's change, or why it is unusable.
fn parse(text: &str) -> Result<Change, &'static str> {
    let (crc, json) = text.split_once(' ').ok_or("no checksum")?;
    let crc = u32::from_str_radix(crc, 16).map_err(|_| "bad checksum field")?;
    if crc32fast::hash(json.as_bytes()) != crc {
        return Err("checksum mismatch");
    }
    serde_json::from_str(json).map_err(|_| "not a change record")
}

fn load_snapshot(path: &Path) -> (Data, u64) {
    let Ok(text) = std::fs::read_to_string(path) else { return (Data::new(), 0) };
    let Ok(map) = serde_json::from_str::<BTreeMap<String, String>>(&text) else {
        tracing::warn!(path = %path.display(), "unreadable kv snapshot; starting from its log alone (the old file is kept as .corrupt)");
        let _ = std::fs::rename(path, path.with_extension("corrupt"));
        return (Data::new(), 0);
    };
    (map.into_iter().filter_map(|(k, v)| Some((k, hex::decode(v).ok()?))).collect(), text.len() as u64)
}

impl Stored {
    /// The scope in `dir`: the snapshot with its log replayed over it.
    pub fn open(dir: &Path) -> Stored {
        let (mut map, snapshot_bytes) = load_snapshot(&dir.join("kv.json"));
        let log_path = dir.join("kv.log");
        let mut log_bytes = 0;
        if let Ok(text) = std::fs::read(&log_path) {
            // A torn tail (a crash inside an append) was never acknowledged: cut it off.
            let whole = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            if whole < text.len() {
                tracing::warn!(path = %log_path.display(), bytes = text.len() - whole, "kv log ends in a torn line; dropped");
                if let Ok(f) = OpenOptions::new().write(true).open(&log_path) {
                    let _ = f.set_len(whole as u64).and_then(|()| f.sync_data());
                }
            }
            for (n, raw) in text[..whole].split(|b| *b == b'\n').enumerate().filter(|(_, l)| !l.is_empty()) {
                match std::str::from_utf8(raw).map_err(|_| "not UTF-8").and_then(parse) {
                    Ok(Change { k, v: Some(hex) }) => match hex::decode(hex) {
                        Ok(v) => {
                            map.insert(k, v);
                        }
                        Err(_) => {
                            tracing::warn!(path = %log_path.display(), line = n + 1, "kv log line skipped: bad value")
                        }
                    },
                    Ok(Change { k, v: None }) => {
                        map.remove(&k);
                    }
                    Err(why) => tracing::warn!(path = %log_path.display(), line = n + 1, why, "kv log line skipped"),
                }
            }
            log_bytes = whole as u64;
        }
        Stored { map, dir: dir.to_path_buf(), log: None, log_bytes, snapshot_bytes }
    }

    /// Appends the change of `key` (its value now, `None`: deleted) and
    /// syncs it. On an error nothing is acknowledged: the caller undoes the
    /// change in memory.
    pub fn record(&mut self, key: &str, value: Option<&[u8]>) -> Result<(), String> {
        let text = line(&Change { k: key.to_string(), v: value.map(hex::encode) })?;
        let write = |log: &mut File| log.write_all(text.as_bytes()).and_then(|()| log.sync_data());
        let log = match &mut self.log {
            Some(f) => f,
            None => {
                std::fs::create_dir_all(&self.dir).map_err(|e| format!("cannot write state: {e}"))?;
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join("kv.log"))
                    .map_err(|e| format!("cannot write state: {e}"))?;
                self.log.insert(f)
            }
        };
        if let Err(e) = write(log) {
            // The file may hold part of the line now: start over from a fresh handle,
            // and cut the part off so the next line starts clean.
            self.log = None;
            if let Ok(f) = OpenOptions::new().write(true).open(self.dir.join("kv.log")) {
                let _ = f.set_len(self.log_bytes);
            }
            return Err(format!("cannot write state: {e}"));
        }
        self.log_bytes += text.len() as u64;
        if self.log_bytes > FOLD_AFTER_BYTES && self.log_bytes > self.snapshot_bytes {
            if let Err(e) = self.fold() {
                // The change is in the log already; folding is tried again on the next one.
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot fold the kv log into a snapshot");
            }
        }
        Ok(())
    }

    /// Writes the whole state as the snapshot, then empties the log. A
    /// crash in between replays the log over a snapshot that already holds
    /// it: the same state.
    fn fold(&mut self) -> Result<(), String> {
        let text: BTreeMap<&String, String> = self.map.iter().map(|(k, v)| (k, hex::encode(v))).collect();
        let body = serde_json::to_vec(&text).map_err(|e| e.to_string())?;
        chela_durable::replace(&self.dir.join("kv.json"), &body, chela_durable::Durability::Fsync)
            .map_err(|e| e.to_string())?;
        let log = OpenOptions::new().write(true).open(self.dir.join("kv.log")).map_err(|e| e.to_string())?;
        log.set_len(0).and_then(|()| log.sync_data()).map_err(|e| e.to_string())?;
        self.snapshot_bytes = body.len() as u64;
        self.log_bytes = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_survive_a_reopen_and_a_corrupt_or_torn_line_costs_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Stored::open(dir.path());
        for (k, v) in [("a", Some(&b"1"[..])), ("b", Some(b"2")), ("c", Some(b"3")), ("a", None)] {
            match v {
                Some(v) => s.map.insert(k.into(), v.to_vec()),
                None => s.map.remove(k),
            };
            s.record(k, v).unwrap();
        }
        assert!(!dir.path().join("kv.json").exists(), "small changes only append");
        let log = dir.path().join("kv.log");
        // Corrupt the second line (b), then tear a fifth on the end.
        let text = std::fs::read_to_string(&log).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines[1] = lines[1].replace("\"b\"", "\"B\"");
        std::fs::write(&log, format!("{}\n{{half a li", lines.join("\n"))).unwrap();
        let mut again = Stored::open(dir.path());
        let want: Data = [("c".to_string(), b"3".to_vec())].into();
        assert_eq!(again.map, want, "b's line failed its checksum; c after it still counts; a stays deleted");
        // The torn tail was cut off: the next append starts a clean line.
        again.map.insert("d".into(), b"4".to_vec());
        again.record("d", Some(b"4")).unwrap();
        assert_eq!(Stored::open(dir.path()).map.get("d").map(Vec::as_slice), Some(&b"4"[..]));
    }

    #[test]
    fn a_long_log_is_folded_into_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Stored::open(dir.path());
        for i in 0..2_000u32 {
            let v = i.to_string().into_bytes();
            s.map.insert("offset".into(), v.clone());
            s.record("offset", Some(&v)).unwrap();
        }
        let log = std::fs::metadata(dir.path().join("kv.log")).unwrap().len();
        assert!(log <= FOLD_AFTER_BYTES + 100, "the log was folded: {log} bytes");
        assert!(dir.path().join("kv.json").exists());
        assert_eq!(Stored::open(dir.path()).map.get("offset").map(Vec::as_slice), Some(&b"1999"[..]));
    }
}
