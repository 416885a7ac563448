//! The host confinement where bubblewrap cannot create namespaces (many
//! containers): a Landlock ruleset (the `landlock` crate) that grants read
//! and execute on the whole host filesystem *except* the paths the core
//! hides, write on the workspace, `/tmp` and `/dev`, and scopes signals and
//! abstract sockets to the command's own domain. Landlock also keeps the
//! command from ptracing processes outside it, so the gateway's
//! `/proc/<pid>/environ` and memory stay unreadable.
//!
//! Landlock only adds rights, so "everything but X" is built by walking from
//! `/` towards each hidden path and granting every sibling on the way (a
//! symlink is granted only if it resolves away from every hidden path).
//! Compared with bubblewrap there is no private `/tmp`, no PID namespace
//! and no `/proc/self`.
//! This module must not decide what to hide (that is the core's
//! `exec_confinement`).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use landlock::{
    Access, AccessFs, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

/// The newest ABI this code knows; older kernels get what they support.
const ABI_TARGET: ABI = ABI::V6;

/// Paths beneath `dir` that together cover it, minus every `hidden` path
/// (and minus symlinks that resolve into or above one).
fn cover(dir: &Path, hidden: &[PathBuf], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let path = e.path();
        let real = path.canonicalize().unwrap_or_else(|_| path.clone());
        if hidden.iter().any(|h| real.starts_with(h) || path.starts_with(h)) {
            continue; // hidden itself, or inside it
        }
        let leads_to_hidden = |p: &Path| hidden.iter().any(|h| h.starts_with(p));
        if leads_to_hidden(&real) || leads_to_hidden(&path) {
            if e.file_type().is_ok_and(|t| t.is_dir()) && real == path {
                cover(&path, hidden, out); // an ancestor of a hidden path: grant its other entries
            }
            continue;
        }
        out.push(path);
    }
}

/// The ruleset for a host command: `root` is the workspace (writable when
/// `writable`), `hidden` what it must not see. The returned fd is applied in
/// the child (`restrict`); `Err` when this kernel does not enforce Landlock.
pub fn ruleset(root: &Path, writable: bool, hidden: &[PathBuf]) -> Result<OwnedFd, String> {
    let err = |e: &dyn std::fmt::Display| format!("Landlock: {e}");
    let hidden: Vec<PathBuf> = hidden.iter().map(|p| p.canonicalize().unwrap_or_else(|_| p.clone())).collect();
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let all = AccessFs::from_all(ABI_TARGET);
    let read = AccessFs::from_read(ABI_TARGET);
    let mut ruleset = Ruleset::default()
        .handle_access(all)
        .map_err(|e| err(&e))?
        .scope(Scope::from_all(ABI_TARGET))
        .map_err(|e| err(&e))?
        .create()
        .map_err(|e| err(&e))?;
    let mut readable = Vec::new();
    let mut fence = hidden.clone();
    fence.push(root.clone());
    // A Landlock domain may still read an ancestor's /proc/<pid>/environ (the
    // gateway's): grant /proc's system files, never its process directories.
    fence.push(PathBuf::from("/proc"));
    cover(Path::new("/"), &fence, &mut readable);
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let per_process = name.chars().all(|c| c.is_ascii_digit()) || name == "self" || name == "thread-self";
            if !per_process {
                readable.push(e.path());
            }
        }
    }
    // Covers `base`, minus what `fence` hides inside it.
    let split = |base: &Path, fence: &[PathBuf], out: &mut Vec<PathBuf>| {
        if fence.iter().any(|h| h.starts_with(base)) {
            cover(base, fence, out);
        } else {
            out.push(base.to_path_buf());
        }
    };
    // Writable: /tmp and /dev (a state dir or workspace may live in /tmp: still
    // hidden), and the workspace when the grant says so.
    let mut write_fence = hidden.clone();
    if !writable {
        write_fence.push(root.clone());
    }
    let mut writable_paths = Vec::new();
    for base in ["/tmp", "/dev"] {
        split(Path::new(base), &write_fence, &mut writable_paths);
    }
    let mut workspace = Vec::new();
    split(&root, &hidden, &mut workspace); // other agents' dirs nested in this workspace stay hidden
    let workspace_access = if writable { all } else { read };
    let rules = readable
        .iter()
        .map(|p| (p, read))
        .chain(writable_paths.iter().map(|p| (p, all)))
        .chain(workspace.iter().map(|p| (p, workspace_access)));
    for (path, access) in rules {
        // A path that vanished since the walk is simply not granted.
        let Ok(fd) = PathFd::new(path) else { continue };
        ruleset = ruleset.add_rule(PathBeneath::new(fd, access)).map_err(|e| err(&e))?;
    }
    let fd: Option<OwnedFd> = ruleset.into();
    fd.ok_or_else(|| "this kernel does not enforce Landlock".to_string())
}

/// Whether this kernel enforces Landlock at all.
pub fn available() -> bool {
    static PROBE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PROBE.get_or_init(|| {
        let probe = || -> Result<RulesetStatus, landlock::RulesetError> {
            // Created, never applied: only asks the kernel what it supports.
            let created = Ruleset::default().handle_access(AccessFs::from_all(ABI::V1))?.create()?;
            let fd: Option<OwnedFd> = created.into();
            Ok(if fd.is_some() { RulesetStatus::FullyEnforced } else { RulesetStatus::NotEnforced })
        };
        matches!(probe(), Ok(RulesetStatus::FullyEnforced))
    })
}

/// Applies the ruleset to the calling process: only system calls, so it is
/// safe between fork and exec.
///
/// # Safety
/// Call only in a child between fork and exec (`pre_exec`).
pub unsafe fn restrict(fd: i32) -> std::io::Result<()> {
    if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if libc::syscall(libc::SYS_landlock_restrict_self, fd, 0) != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
