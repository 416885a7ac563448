//! The control-plane token: the one credential every control API and `/v1`
//! request carries.
//!
//! Configured (`gateway.auth.token`, literal or `${VAR}`, else
//! `CHELA_GATEWAY_TOKEN`, else OpenClaw's `OPENCLAW_GATEWAY_TOKEN`) when the
//! operator chose one; otherwise generated on the gateway's first start into
//! `<stateDir>/gateway.token` (mode 0600, 256 random bits), where the CLI on
//! the same machine reads it. Replicas on a shared database share one: the
//! first to start puts it in the database, every replica writes it to its
//! own token file. So there is always a token, and the owner
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

/// `gateway.auth.token` names a variable (`"${OPENCLAW_GATEWAY_TOKEN}"`, as
/// OpenClaw's docs write it) that is not set: there is no token to use, and
/// the literal text must never become one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("gateway.auth.token is `${{{var}}}`, and {var} is not set (set it, or remove gateway.auth.token to use the generated token)")]
pub struct UnsetTokenVar {
    pub var: String,
}

/// The operator's token: `gateway.auth.token` (a literal, or a `${VAR}`
/// reference read through `vars`), else `CHELA_GATEWAY_TOKEN`, else
/// OpenClaw's `OPENCLAW_GATEWAY_TOKEN` (`vars` reads the environment).
pub fn configured(cfg: &Config, vars: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, UnsetTokenVar> {
    let written = cfg.gateway.as_ref().and_then(|g| g.auth.as_ref()?.token.clone());
    let token = match written {
        Some(t) => match t.trim().strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
            Some(var) => {
                Some(vars(var).filter(|v| !v.trim().is_empty()).ok_or_else(|| UnsetTokenVar { var: var.to_string() })?)
            }
            None => Some(t),
        },
        None => vars("CHELA_GATEWAY_TOKEN").or_else(|| vars("OPENCLAW_GATEWAY_TOKEN")),
    };
    Ok(token.filter(|t| !t.trim().is_empty()))
}

/// The token a local client should present: the configured one, else the
/// one the gateway generated (`None` before any gateway ran on this state dir).
pub fn for_client(cfg: &Config, vars: &dyn Fn(&str) -> Option<String>, state_dir: &Path) -> Option<String> {
    configured(cfg, vars).ok().flatten().or_else(|| read_generated(state_dir))
}

fn read_generated(state_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(token_path(state_dir)).ok()?;
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot create the gateway token {path}: {error}")]
    File {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("cannot share the gateway token through the database: {0}")]
    Database(#[from] chela_database::DbError),
}

/// 256 random bits, in hex.
fn fresh() -> Result<String, std::io::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The generated token, created on first use (never overwritten).
pub fn load_or_create(state_dir: &Path) -> Result<String, TokenError> {
    if let Some(t) = read_generated(state_dir) {
        return Ok(t);
    }
    let path = token_path(state_dir);
    let err = |error| TokenError::File { path: path.clone(), error };
    std::fs::create_dir_all(state_dir).map_err(err)?;
    let token = fresh().map_err(err)?;
    write_new(state_dir, &token)
}

/// The replicas' generated token: the one in the database, or this
/// replica's own (its file's, else a fresh one) when it is the first. It is
/// written to this replica's token file for the CLI beside it.
pub async fn shared(db: &chela_database::Database, state_dir: &Path) -> Result<String, TokenError> {
    let path = token_path(state_dir);
    let err = |error| TokenError::File { path: path.clone(), error };
    let mine = match read_generated(state_dir) {
        Some(t) => t,
        None => fresh().map_err(err)?,
    };
    let token = db.setting_or_insert(TOKEN_SETTING, &mine).await?;
    if read_generated(state_dir).as_deref() != Some(token.as_str()) {
        std::fs::create_dir_all(state_dir).map_err(err)?;
        let _ = std::fs::remove_file(&path);
        write_new(state_dir, &token)?;
    }
    Ok(token)
}

/// The database setting the shared generated token is kept under.
const TOKEN_SETTING: &str = "gateway.token";

/// Writes `token` to a token file that does not exist yet (0600); if
/// another process created it first, theirs.
fn write_new(state_dir: &Path, token: &str) -> Result<String, TokenError> {
    let path = token_path(state_dir);
    let err = |error| TokenError::File { path: path.clone(), error };
    let token = token.to_string();
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

    #[test]
    fn a_token_reference_is_read_and_an_unset_one_is_no_token() {
        let cfg = |t: &str| {
            chela_core::config::load_str(&format!(r#"{{ gateway: {{ auth: {{ token: "{t}" }} }} }}"#), None)
                .unwrap()
                .config
        };
        let env = |k: &str| (k == "OC_TOKEN").then(|| "s3cret".to_string());
        assert_eq!(configured(&cfg("${OC_TOKEN}"), &env), Ok(Some("s3cret".into())));
        assert_eq!(configured(&cfg("${MISSING}"), &env), Err(UnsetTokenVar { var: "MISSING".into() }));
        assert_eq!(configured(&cfg("literal"), &env), Ok(Some("literal".into())));
        let openclaw = |k: &str| (k == "OPENCLAW_GATEWAY_TOKEN").then(|| "oc".to_string());
        assert_eq!(configured(&Config::default(), &openclaw), Ok(Some("oc".into())));
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(for_client(&cfg("${MISSING}"), &env, dir.path()), None, "never the literal text");
    }
}
