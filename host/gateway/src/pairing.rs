//! DM pairing (reference §7.2): an unknown sender under `dmPolicy: "pairing"`
//! gets a code; the owner approves it with `chela pairing approve CH CODE`,
//! which adds the sender to the account's approved list. Files, in
//! OpenClaw's layout under `<stateDir>/credentials/`:
//! `<channel>-pairing.json` (pending requests) and
//! `<channel>-allowFrom.json` / `<channel>-<account>-allowFrom.json`
//! (approved senders of the default / another account); on replicas the
//! same documents, under the same names, in the shared database
//! (`chela_documents`), each edit under its document's lock, so replicas and the
//! CLI never lose each other's requests or approvals. The gateway reads
//! them on every such message, so an approval applies at once.
//!
//! Must not: decide DM policy (core's `access` does) or write a file in place.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chela_database::Database;

use serde::{Deserialize, Serialize};

/// In this process, one read-modify-write of the pairing files at a time
/// (the gateway's inbound path and the control API both write them).
static WRITE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_writer() -> std::sync::MutexGuard<'static, ()> {
    WRITE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Codes use these 32 characters: no 0/O, no 1/I.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
pub const CODE_LEN: usize = 8;
pub const EXPIRY_MS: i64 = 60 * 60 * 1000;
pub const MAX_PENDING: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingRequest {
    /// The sender's id on the channel.
    pub id: String,
    pub code: String,
    pub account_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PendingFile {
    #[serde(default = "one")]
    version: u32,
    #[serde(default)]
    requests: Vec<PairingRequest>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AllowFile {
    #[serde(default = "one")]
    version: u32,
    #[serde(default)]
    allow_from: Vec<String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    /// The shared database refused or could not be reached, or holds a
    /// document that is not what this chela writes.
    #[error("pairing document `{name}` in the database: {message}")]
    Database { name: String, message: String, transient: bool },
    #[error("the pairing store call did not complete: {0}")]
    Stopped(String),
    #[error("no pending pairing request with code `{code}` on {channel} (codes expire after an hour; `chela pairing list {channel}`)")]
    UnknownCode { channel: String, code: String },
}

/// Where the pairing documents are.
enum Place {
    /// `<stateDir>/credentials/`.
    Files(PathBuf),
    Shared(Arc<Database>),
}

/// The pairing store of one state dir, or of the replicas' database.
pub struct Pairing {
    place: Place,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A fresh code from 40 random bits (8 × 5 bits of a v4 UUID's randomness).
fn new_code() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let bits = u64::from_be_bytes([0, 0, 0, bytes[0], bytes[1], bytes[2], bytes[3], bytes[4]]);
    (0..CODE_LEN).map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize] as char).collect()
}

fn pending_name(channel: &str) -> String {
    format!("{channel}-pairing.json")
}

fn allow_name(channel: &str, account: &str) -> String {
    if account == "default" {
        format!("{channel}-allowFrom.json")
    } else {
        format!("{channel}-{account}-allowFrom.json")
    }
}

impl PairingError {
    /// A failure that may pass (the database away), as opposed to a
    /// document that is wrong.
    pub fn passes(&self) -> bool {
        matches!(self, PairingError::Database { transient: true, .. } | PairingError::Stopped(_))
    }
}

/// A change to one document: whether it changed (so is written) and its answer.
type Edited<R> = Result<(bool, R), PairingError>;

impl Pairing {
    /// The files of `state_dir`.
    pub fn new(state_dir: &Path) -> Pairing {
        Pairing { place: Place::Files(state_dir.join("credentials")) }
    }

    /// The replicas' database when there is one, else the files of `state_dir`.
    pub fn at(state_dir: &Path, database: Option<&Arc<Database>>) -> Pairing {
        match database {
            Some(db) => Pairing { place: Place::Shared(db.clone()) },
            None => Pairing::new(state_dir),
        }
    }

    fn load<T: for<'de> Deserialize<'de> + Default>(&self, name: &str) -> Result<T, PairingError> {
        match &self.place {
            Place::Files(dir) => {
                let path = dir.join(name);
                let err = |message: String| PairingError::File { path: path.clone(), message };
                match std::fs::read_to_string(&path) {
                    Ok(text) => serde_json::from_str(&text).map_err(|e| err(e.to_string())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
                    Err(e) => Err(err(e.to_string())),
                }
            }
            Place::Shared(db) => {
                let err =
                    |message: String, transient| PairingError::Database { name: name.to_string(), message, transient };
                match db.document(name).map_err(|e| err(e.to_string(), e.is_transient()))? {
                    Some(text) => serde_json::from_str(&text).map_err(|e| err(e.to_string(), false)),
                    None => Ok(T::default()),
                }
            }
        }
    }

    /// Reads document `name`, lets `edit` change it, and writes it back when
    /// it says it changed: one edit at a time (a process lock for the files,
    /// the document's lock in the database). An error from `edit` writes nothing.
    fn edit<T, R>(&self, name: &str, edit: impl FnOnce(&mut T) -> Edited<R>) -> Result<R, PairingError>
    where
        T: for<'de> Deserialize<'de> + Serialize + Default,
    {
        match &self.place {
            Place::Files(dir) => {
                let _one_writer = one_writer();
                let mut doc: T = self.load(name)?;
                let (changed, answer) = edit(&mut doc)?;
                if changed {
                    let path = dir.join(name);
                    let err = |e: String| PairingError::File { path: path.clone(), message: e };
                    let body = serde_json::to_vec_pretty(&doc).map_err(|e| err(e.to_string()))?;
                    chela_durable::replace(&path, &body, chela_durable::Durability::Fsync)
                        .map_err(|e| err(e.to_string()))?;
                }
                Ok(answer)
            }
            Place::Shared(db) => {
                let err =
                    |message: String, transient| PairingError::Database { name: name.to_string(), message, transient };
                let malformed = |e: serde_json::Error| err(e.to_string(), false);
                // Under the document's own lock; an error from `edit` writes nothing.
                let edited = db.edit_documents(name, vec![name.to_string()], |bodies| {
                    let mut doc: T = match bodies[0].as_deref() {
                        Some(text) => serde_json::from_str(text).map_err(malformed)?,
                        None => T::default(),
                    };
                    let (changed, answer) = edit(&mut doc)?;
                    if changed {
                        bodies[0] = Some(serde_json::to_string_pretty(&doc).map_err(malformed)?);
                    }
                    Ok(answer)
                });
                edited.map_err(|e| err(e.to_string(), e.is_transient()))?
            }
        }
    }

    /// Senders approved for this account. A document that cannot be read
    /// is an error (an approved sender must not be taken for a stranger).
    pub fn approved(&self, channel: &str, account: &str) -> Result<Vec<String>, PairingError> {
        Ok(self.load::<AllowFile>(&allow_name(channel, account))?.allow_from)
    }

    /// Pending requests of a channel (expired ones dropped).
    pub fn pending(&self, channel: &str) -> Result<Vec<PairingRequest>, PairingError> {
        let now = now_ms();
        let f: PendingFile = self.load(&pending_name(channel))?;
        Ok(f.requests.into_iter().filter(|r| now - r.created_at < EXPIRY_MS).collect())
    }

    /// An unknown sender wrote: returns a code to send them when this created
    /// a new request (`None`: one is already pending, or the channel has
    /// `MAX_PENDING` pending and further requests are ignored).
    pub fn request(
        &self,
        channel: &str,
        account: &str,
        sender: &str,
        name: Option<&str>,
    ) -> Result<Option<String>, PairingError> {
        let (account, sender, name) = (account.to_string(), sender.to_string(), name.map(str::to_string));
        self.edit(&pending_name(channel), move |f: &mut PendingFile| {
            let now = now_ms();
            f.version = 1;
            f.requests.retain(|r| now - r.created_at < EXPIRY_MS);
            if let Some(r) = f.requests.iter_mut().find(|r| r.id == sender && r.account_id == account) {
                r.last_seen_at = now;
                return Ok((true, None));
            }
            if f.requests.len() >= MAX_PENDING {
                return Ok((false, None));
            }
            let code = loop {
                let c = new_code();
                if !f.requests.iter().any(|r| r.code == c) {
                    break c;
                }
            };
            f.requests.push(PairingRequest {
                id: sender,
                code: code.clone(),
                account_id: account,
                created_at: now,
                last_seen_at: now,
                name,
            });
            Ok((true, Some(code)))
        })
    }

    /// Approves a pending code: the sender joins the account's approved list,
    /// then the request is removed (a crash between leaves a request for a
    /// sender who is already approved, which expires).
    pub fn approve(&self, channel: &str, code: &str) -> Result<PairingRequest, PairingError> {
        let code = code.trim().to_ascii_uppercase();
        let req = self
            .pending(channel)?
            .into_iter()
            .find(|r| r.code == code)
            .ok_or_else(|| PairingError::UnknownCode { channel: channel.to_string(), code: code.clone() })?;
        self.allow(channel, &req.account_id, std::slice::from_ref(&req.id))?;
        self.edit(&pending_name(channel), move |f: &mut PendingFile| {
            let before = f.requests.len();
            f.requests.retain(|r| r.code != code);
            Ok((f.requests.len() != before, ()))
        })?;
        Ok(req)
    }

    /// Refuses a pending code: the request is forgotten (the sender may ask
    /// again, and gets a new code).
    pub fn deny(&self, channel: &str, code: &str) -> Result<PairingRequest, PairingError> {
        let (channel, code) = (channel.to_string(), code.trim().to_ascii_uppercase());
        self.edit(&pending_name(&channel.clone()), move |f: &mut PendingFile| {
            let now = now_ms();
            let pos = f
                .requests
                .iter()
                .position(|r| r.code == code && now - r.created_at < EXPIRY_MS)
                .ok_or(PairingError::UnknownCode { channel, code })?;
            Ok((true, f.requests.remove(pos)))
        })
    }

    /// Adds senders to an account's approved list (those not on it yet, in
    /// order); returns how many were added.
    pub fn allow(&self, channel: &str, account: &str, senders: &[String]) -> Result<usize, PairingError> {
        let senders = senders.to_vec();
        self.edit(&allow_name(channel, account), move |allow: &mut AllowFile| {
            let before = allow.allow_from.len();
            for s in senders {
                if !allow.allow_from.contains(&s) {
                    allow.allow_from.push(s);
                }
            }
            let added = allow.allow_from.len() - before;
            allow.version = 1;
            Ok((added > 0, added))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_requests_limits_and_approval() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pairing::new(dir.path());
        let code = p.request("telegram", "default", "111", Some("Ada")).unwrap().expect("a new code");
        assert_eq!(code.len(), CODE_LEN);
        assert!(code.chars().all(|c| ALPHABET.contains(&(c as u8))) && !code.contains(['0', 'O', '1', 'I']));
        assert_eq!(p.request("telegram", "default", "111", None).unwrap(), None, "one pending request per sender");
        assert!(p.request("telegram", "bot2", "222", None).unwrap().is_some());
        assert!(p.request("telegram", "default", "333", None).unwrap().is_some());
        assert_eq!(p.request("telegram", "default", "444", None).unwrap(), None, "at most 3 pending");
        assert!(matches!(p.approve("telegram", "ZZZZZZZZ"), Err(PairingError::UnknownCode { .. })));
        let req = p.approve("telegram", &code.to_lowercase()).unwrap();
        assert_eq!(req.id, "111");
        assert_eq!(p.approved("telegram", "default").unwrap(), ["111"]);
        assert!(p.approved("telegram", "bot2").unwrap().is_empty());
        assert!(dir.path().join("credentials/telegram-allowFrom.json").exists());
        assert_eq!(p.pending("telegram").unwrap().len(), 2);
    }
}
