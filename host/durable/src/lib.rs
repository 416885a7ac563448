//! Replacing a state file on disk, the one way chela does it.
//!
//! Every file chela rewrites as a whole (session index, kv scopes, pairing
//! lists, the config, compiled-component cache entries) goes through
//! [`replace`]: a temp file in the same directory, the bytes written, the file
//! fsynced, renamed over the target, the directory fsynced. A crash leaves the
//! old version or the new one, never half of either. An existing file's
//! permissions are kept; a new file is created private to the user (0600),
//! because state files may hold tokens.
//!
//! Must not: know what the bytes mean, retry, or lock — callers serialise
//! their own writers. Appending (transcripts) is not replacing and does not
//! live here.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// How hard [`replace`] works to survive a power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync the file before the rename and the directory after it.
    #[default]
    Fsync,
    /// Leave flushing to the OS: a crash of the process is still atomic, a
    /// power loss may lose the latest version (tests, benchmarks, caches).
    OsBuffered,
}

/// A failed replacement, naming the file and the step.
#[derive(Debug, thiserror::Error)]
#[error("cannot {step} {}: {source}", path.display())]
pub struct ReplaceError {
    pub path: PathBuf,
    pub step: &'static str,
    #[source]
    pub source: std::io::Error,
}

/// Replaces `path` with `bytes` atomically (see the module header), creating
/// its directory when missing.
pub fn replace(path: &Path, bytes: &[u8], durability: Durability) -> Result<(), ReplaceError> {
    let fail = |step: &'static str| move |source| ReplaceError { path: path.to_path_buf(), step, source };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(fail("create the directory of"))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", path.file_name().and_then(|n| n.to_str()).unwrap_or("state")))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(fail("create a temp file for"))?;
    if let Ok(meta) = std::fs::metadata(path) {
        tmp.as_file().set_permissions(meta.permissions()).map_err(fail("keep the permissions of"))?;
    }
    tmp.write_all(bytes).map_err(fail("write"))?;
    if durability == Durability::Fsync {
        tmp.as_file().sync_all().map_err(fail("fsync"))?;
    }
    // On failure the temp file is dropped, and with it removed.
    tmp.persist(path).map_err(|e| fail("rename over")(e.error))?;
    if durability == Durability::Fsync {
        sync_dir(dir).map_err(fail("fsync the directory of"))?;
    }
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn creates_the_directory_and_leaves_only_the_target() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("a/b/state.json");
        replace(&path, b"one", Durability::Fsync).unwrap();
        replace(&path, b"two", Durability::OsBuffered).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(leftovers(&root.path().join("a/b")), vec!["state.json".to_string()]);
    }

    #[cfg(unix)]
    #[test]
    fn new_files_are_private_and_existing_permissions_are_kept() {
        use std::os::unix::fs::PermissionsExt as _;
        let root = tempfile::tempdir().unwrap();
        let fresh = root.path().join("fresh");
        replace(&fresh, b"x", Durability::Fsync).unwrap();
        assert_eq!(std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o600);

        let shared = root.path().join("shared");
        std::fs::write(&shared, b"old").unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
        replace(&shared, b"new", Durability::Fsync).unwrap();
        assert_eq!(std::fs::metadata(&shared).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(std::fs::read(&shared).unwrap(), b"new");
    }

    #[test]
    fn a_failed_rename_keeps_the_old_file_and_no_temp() {
        let root = tempfile::tempdir().unwrap();
        // The target is a non-empty directory: the rename fails.
        let target = root.path().join("busy");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), b"keep").unwrap();
        let err = replace(&target, b"new", Durability::Fsync).unwrap_err();
        assert_eq!(err.step, "rename over");
        assert!(err.to_string().contains("busy"), "{err}");
        assert_eq!(leftovers(root.path()), vec!["busy".to_string()]);
        assert_eq!(std::fs::read(target.join("inside")).unwrap(), b"keep");
    }
}
