//! The control-plane token: the one credential every control API and `/v1`
//! request carries.
//!
//! Configured (`gateway.auth.token`, else `CHELA_GATEWAY_TOKEN`) when the
//! operator chose one; otherwise generated on the gateway's first start into
//! `<stateDir>/gateway.token` (mode 0600, 256 random bits), where the CLI on
//! the same machine reads it. So there is always a token, and the owner
//! needs no setup. This module must not decide *who* may call (that is
//! `guard.rs`); it only says what the token is.
//!
//! Must not: log or print the token, or write it readable by anyone but the owner (it is 0600).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chela_core::config::schema::Config;

/// The file a generated token lives in.
pub fn token_path(state_dir: &Path) -> PathBuf {
    state_dir.join("gateway.token")
}

/// The operator's token: `gateway.auth.token`, else `CHELA_GATEWAY_TOKEN` (`vars` reads the environment).
pub fn configured(cfg: &Config, vars: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    cfg.gateway
        .as_ref()
        .and_then(|g| g.auth.as_ref()?.token.clone())
        .or_else(|| vars("CHELA_GATEWAY_TOKEN"))
        .filter(|t| !t.trim().is_empty())
}

/// The token a local client should present: the configured one, else the
/// one the gateway generated (`None` before any gateway ran on this state dir).
pub fn for_client(cfg: &Config, vars: &dyn Fn(&str) -> Option<String>, state_dir: &Path) -> Option<String> {
    configured(cfg, vars).or_else(|| read_generated(state_dir))
}

fn read_generated(state_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(token_path(state_dir)).ok()?;
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

#[derive(Debug, thiserror::Error)]
#[error("cannot create the gateway token {path}: {error}")]
pub struct TokenError {
    pub path: PathBuf,
    #[source]
    pub error: std::io::Error,
}

/// The generated token, created on first use (never overwritten).
pub fn load_or_create(state_dir: &Path) -> Result<String, TokenError> {
    if let Some(t) = read_generated(state_dir) {
        return Ok(t);
    }
    let path = token_path(state_dir);
    let err = |error| TokenError { path: path.clone(), error };
    std::fs::create_dir_all(state_dir).map_err(err)?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| err(std::io::Error::other(e.to_string())))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        open.mode(0o600);
    }
    match open.open(&path) {
        Ok(mut f) => {
            f.write_all(token.as_bytes()).and_then(|_| f.sync_all()).map_err(err)?;
            Ok(token)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_generated(state_dir).ok_or_else(|| err(e)),
        Err(e) => Err(err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a, b, "never regenerated");
        assert_eq!(a.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(token_path(dir.path())).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let cfg = Config::default();
        assert_eq!(for_client(&cfg, &|_| None, dir.path()), Some(a));
        assert_eq!(
            for_client(&cfg, &|k| (k == "CHELA_GATEWAY_TOKEN").then(|| "t".into()), dir.path()),
            Some("t".into())
        );
    }
}
