//! The host's own reads of agent-writable files (persona, skills): beneath
//! the workspace and nowhere else.
//!
//! A plugin with a writable workspace, or exec, can plant a symlink
//! (`SOUL.md → ../../agents/other/sessions/sessions.json`, `→ /dev/zero`) or a
//! FIFO; the host must not follow it out, block on it, or read without end.
//! So every read goes through a capability handle on the workspace (cap-std:
//! `openat2(RESOLVE_BENEATH)` where the kernel has it): symlinks that stay
//! inside keep working, those that leave fail; only regular files are read,
//! opened non-blocking, and at most a size cap of bytes. This module must not
//! know what the files mean (that is `persona.rs`).

use std::io::Read as _;
use std::path::Path;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("missing")]
    Missing,
    #[error("not read: it leads outside the workspace")]
    Outside,
    #[error("not read: not a regular file")]
    NotRegular,
    #[error("not read: {0}")]
    Io(std::io::Error),
}

/// A workspace opened for confined reads.
pub struct Workspace {
    dir: Dir,
}

impl Workspace {
    pub fn open(root: &Path) -> std::io::Result<Workspace> {
        Ok(Workspace { dir: Dir::open_ambient_dir(root, ambient_authority())? })
    }

    /// The text of `rel` (lossy UTF-8), at most `max_bytes` of it; `true` when cut.
    pub fn read_text(&self, rel: &str, max_bytes: usize) -> Result<(String, bool), ReadError> {
        let mut opts = OpenOptions::new();
        opts.read(true);
        #[cfg(unix)]
        {
            use cap_std::fs::OpenOptionsExt as _;
            // A FIFO must not block the worker; a regular file ignores the flag.
            opts.custom_flags(libc_nonblock());
        }
        let file = self.dir.open_with(rel, &opts).map_err(classify)?;
        let meta = file.metadata().map_err(ReadError::Io)?;
        if !meta.is_file() {
            return Err(ReadError::NotRegular);
        }
        let mut bytes = Vec::new();
        let limit = u64::try_from(max_bytes).unwrap_or(u64::MAX).saturating_add(1);
        file.take(limit).read_to_end(&mut bytes).map_err(ReadError::Io)?;
        let cut = bytes.len() > max_bytes;
        bytes.truncate(max_bytes);
        Ok((String::from_utf8_lossy(&bytes).into_owned(), cut))
    }

    /// Whether `rel` is a file the workspace holds (same confinement as reading).
    pub fn exists(&self, rel: &str) -> bool {
        self.dir.metadata(rel).is_ok_and(|m| m.is_file())
    }

    /// The names of the directories directly in `rel` (not following links out), sorted.
    pub fn subdirs(&self, rel: &str) -> Vec<String> {
        let Ok(entries) = self.dir.read_dir(rel) else { return Vec::new() };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

#[cfg(unix)]
fn libc_nonblock() -> i32 {
    rustix::fs::OFlags::NONBLOCK.bits() as i32
}

fn classify(e: std::io::Error) -> ReadError {
    match e.kind() {
        std::io::ErrorKind::NotFound => ReadError::Missing,
        // cap-std answers an escape (`..`, an absolute or outward symlink) with PermissionDenied.
        std::io::ErrorKind::PermissionDenied => ReadError::Outside,
        _ if e.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error()) => ReadError::Outside,
        _ => ReadError::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_out_fifos_and_devices_are_not_read() {
        let root = tempfile::tempdir().unwrap();
        let ws = root.path().join("ws");
        std::fs::create_dir_all(ws.join("notes")).unwrap();
        std::fs::write(root.path().join("secret.json"), "other agent's data").unwrap();
        std::fs::write(ws.join("notes/soul.md"), "inside").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("../secret.json", ws.join("OUT.md")).unwrap();
            std::os::unix::fs::symlink("/dev/zero", ws.join("ZERO.md")).unwrap();
            std::os::unix::fs::symlink("notes/soul.md", ws.join("IN.md")).unwrap();
            rustix::fs::mknodat(
                rustix::fs::CWD,
                ws.join("FIFO.md"),
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o600),
                0,
            )
            .unwrap();
        }
        let w = Workspace::open(&ws).unwrap();
        assert_eq!(w.read_text("IN.md", 100).unwrap().0, "inside", "a link that stays inside works");
        assert!(matches!(w.read_text("OUT.md", 100), Err(ReadError::Outside)));
        assert!(matches!(w.read_text("../secret.json", 100), Err(ReadError::Outside)));
        assert!(matches!(w.read_text("ZERO.md", 100), Err(ReadError::Outside)));
        assert!(matches!(w.read_text("FIFO.md", 100), Err(ReadError::NotRegular)));
        assert!(matches!(w.read_text("NOPE.md", 100), Err(ReadError::Missing)));
        std::fs::write(ws.join("BIG.md"), "x".repeat(1000)).unwrap();
        assert_eq!(w.read_text("BIG.md", 10).unwrap(), ("x".repeat(10), true));
    }
}
