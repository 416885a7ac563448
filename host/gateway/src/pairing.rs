//! DM pairing (reference §7.2): an unknown sender under `dmPolicy: "pairing"`
//! gets a code; the owner approves it with `chela pairing approve CH CODE`,
//! which adds the sender to the account's approved list. Files, in
//! OpenClaw's layout under `<stateDir>/credentials/`:
//! `<channel>-pairing.json` (pending requests) and
//! `<channel>-allowFrom.json` / `<channel>-<account>-allowFrom.json`
//! (approved senders of the default / another account). The gateway reads
//! them on every such message, so an approval applies at once.
//!
//! Must not: decide DM policy (core's `access` does) or write a file in place.

use std::path::{Path, PathBuf};

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
    #[error("no pending pairing request with code `{code}` on {channel} (codes expire after an hour; `chela pairing list {channel}`)")]
    UnknownCode { channel: String, code: String },
}

/// The pairing store of one state dir.
pub struct Pairing {
    dir: PathBuf,
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

impl Pairing {
    pub fn new(state_dir: &Path) -> Pairing {
        Pairing { dir: state_dir.join("credentials") }
    }

    fn pending_path(&self, channel: &str) -> PathBuf {
        self.dir.join(format!("{channel}-pairing.json"))
    }

    fn allow_path(&self, channel: &str, account: &str) -> PathBuf {
        if account == "default" {
            self.dir.join(format!("{channel}-allowFrom.json"))
        } else {
            self.dir.join(format!("{channel}-{account}-allowFrom.json"))
        }
    }

    fn read<T: for<'de> Deserialize<'de> + Default>(path: &Path) -> Result<T, PairingError> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| PairingError::File { path: path.to_path_buf(), message: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
            Err(e) => Err(PairingError::File { path: path.to_path_buf(), message: e.to_string() }),
        }
    }

    fn write<T: Serialize>(&self, path: &Path, value: &T) -> Result<(), PairingError> {
        let err = |e: String| PairingError::File { path: path.to_path_buf(), message: e };
        let body = serde_json::to_vec_pretty(value).map_err(|e| err(e.to_string()))?;
        chela_durable::replace(path, &body, chela_durable::Durability::Fsync).map_err(|e| err(e.to_string()))
    }

    /// Senders approved for this account.
    pub fn approved(&self, channel: &str, account: &str) -> Vec<String> {
        Self::read::<AllowFile>(&self.allow_path(channel, account)).map(|f| f.allow_from).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "unreadable approved-senders file; treating as empty");
            Vec::new()
        })
    }

    /// Pending requests of a channel (expired ones dropped).
    pub fn pending(&self, channel: &str) -> Result<Vec<PairingRequest>, PairingError> {
        let now = now_ms();
        let f: PendingFile = Self::read(&self.pending_path(channel))?;
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
        let _one_writer = one_writer();
        let now = now_ms();
        let mut pending = self.pending(channel)?;
        if let Some(r) = pending.iter_mut().find(|r| r.id == sender && r.account_id == account) {
            r.last_seen_at = now;
            self.write(&self.pending_path(channel), &PendingFile { version: 1, requests: pending })?;
            return Ok(None);
        }
        if pending.len() >= MAX_PENDING {
            return Ok(None);
        }
        let code = loop {
            let c = new_code();
            if !pending.iter().any(|r| r.code == c) {
                break c;
            }
        };
        pending.push(PairingRequest {
            id: sender.to_string(),
            code: code.clone(),
            account_id: account.to_string(),
            created_at: now,
            last_seen_at: now,
            name: name.map(str::to_string),
        });
        self.write(&self.pending_path(channel), &PendingFile { version: 1, requests: pending })?;
        Ok(Some(code))
    }

    /// Approves a pending code: the sender joins the account's approved list.
    pub fn approve(&self, channel: &str, code: &str) -> Result<PairingRequest, PairingError> {
        let _one_writer = one_writer();
        let (req, rest) = self.take(channel, code)?;
        self.allow_locked(channel, &req.account_id, std::slice::from_ref(&req.id))?;
        self.write(&self.pending_path(channel), &PendingFile { version: 1, requests: rest })?;
        Ok(req)
    }

    /// The pending request with `code` (any case), and the others.
    fn take(&self, channel: &str, code: &str) -> Result<(PairingRequest, Vec<PairingRequest>), PairingError> {
        let code = code.trim().to_ascii_uppercase();
        let mut pending = self.pending(channel)?;
        let pos = pending
            .iter()
            .position(|r| r.code == code)
            .ok_or_else(|| PairingError::UnknownCode { channel: channel.to_string(), code: code.clone() })?;
        let req = pending.remove(pos);
        Ok((req, pending))
    }

    /// Refuses a pending code: the request is forgotten (the sender may ask
    /// again, and gets a new code).
    pub fn deny(&self, channel: &str, code: &str) -> Result<PairingRequest, PairingError> {
        let _one_writer = one_writer();
        let (req, rest) = self.take(channel, code)?;
        self.write(&self.pending_path(channel), &PendingFile { version: 1, requests: rest })?;
        Ok(req)
    }

    /// Adds senders to an account's approved list (those not on it yet, in
    /// order); returns how many were added.
    pub fn allow(&self, channel: &str, account: &str, senders: &[String]) -> Result<usize, PairingError> {
        let _one_writer = one_writer();
        self.allow_locked(channel, account, senders)
    }

    /// [`Pairing::allow`], for a caller that holds [`WRITE`].
    fn allow_locked(&self, channel: &str, account: &str, senders: &[String]) -> Result<usize, PairingError> {
        let path = self.allow_path(channel, account);
        let mut allow: AllowFile = Self::read(&path)?;
        let before = allow.allow_from.len();
        for s in senders {
            if !allow.allow_from.contains(s) {
                allow.allow_from.push(s.clone());
            }
        }
        let added = allow.allow_from.len() - before;
        if added > 0 {
            allow.version = 1;
            self.write(&path, &allow)?;
        }
        Ok(added)
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
        assert_eq!(p.approved("telegram", "default"), ["111"]);
        assert!(p.approved("telegram", "bot2").is_empty());
        assert!(dir.path().join("credentials/telegram-allowFrom.json").exists());
        assert_eq!(p.pending("telegram").unwrap().len(), 2);
    }
}
