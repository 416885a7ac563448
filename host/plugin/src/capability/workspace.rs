//! The agent's workspace as a WASI preopen at `/workspace`, read-only or
//! read-write. It is the only directory a plugin instance can see; WASI's
//! capability-based resolution refuses `..` and symlinks that leave it.
//!
//! Must not: preopen anything but the agent's own workspace.

use std::path::Path;

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::WorkspaceAccess;

pub const GUEST_PATH: &str = "/workspace";

pub fn preopen(builder: &mut WasiCtxBuilder, dir: &Path, access: WorkspaceAccess) -> Result<(), String> {
    let perms = match access {
        WorkspaceAccess::None => return Ok(()),
        WorkspaceAccess::Ro => FsPerms::ReadOnly,
        WorkspaceAccess::Rw => FsPerms::ReadWrite,
    };
    builder
        .preopened_dir(dir, GUEST_PATH, perms)
        .map(|_| ())
        .map_err(|e| format!("cannot open workspace {}: {e}", dir.display()))
}
