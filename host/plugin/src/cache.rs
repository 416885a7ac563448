//! Compiling components, with an on-disk cache of compiled code.
//!
//! Big guests (Python, JS: 12–18 MB) take Cranelift 5–10 s to compile; a
//! cached artefact loads in milliseconds. Entries are keyed by the SHA-256 of
//! the `.wasm` and the engine fingerprint, so a changed plugin, a different
//! engine configuration or a new wasmtime never reuses stale code. Besides
//! the state dir's cache, a plugin dir may ship compiled entries in its
//! `.cwasm/` subdir (`chela plugins precompile --ship`, the container image):
//! read, never written, by the gateway.
//!
//! Must not: reuse code across a changed `.wasm` or engine, or write an entry in place.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use crate::engine::PluginEngine;

/// The content hash that identifies a component.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    #[error("cannot compile: {0}")]
    Compile(String),
}

/// Where compiled components are kept (`<stateDir>/cache/plugins`), or none.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
}

/// How a component was obtained (for metrics and `chela plugins list`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
    Disabled,
}

impl CompileCache {
    pub fn new(dir: Option<PathBuf>) -> CompileCache {
        CompileCache { dir }
    }

    fn entry(&self, engine: &PluginEngine, digest: &str) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join(entry_name(engine, digest)))
    }

    /// Whether a compilation of `digest` for this engine is on disk (in the
    /// cache or shipped beside `plugin`).
    pub fn holds(&self, engine: &PluginEngine, digest: &str, plugin: &Path) -> bool {
        self.entry(engine, digest).is_some_and(|p| p.exists()) || shipped(engine, digest, plugin).exists()
    }

    /// Compiles `bytes`, the content of `plugin` (or loads the cached or
    /// shipped compilation).
    pub fn compile(
        &self,
        engine: &PluginEngine,
        bytes: &[u8],
        digest: &str,
        plugin: &Path,
    ) -> Result<(Component, CacheOutcome), CompileError> {
        if !is_component(bytes) {
            return Err(CompileError::NotAComponent(
                "the file is a core module or not WebAssembly; build it as a component (wasm32-wasip2, componentize-py, componentize-js)".into(),
            ));
        }
        let ship = shipped(engine, digest, plugin);
        if ship.exists() {
            // SAFETY: as for the cache below: an entry `precompile --ship`
            // wrote for this digest and engine; wasmtime checks its header.
            match unsafe { Component::deserialize_file(engine.engine(), &ship) } {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(err) => tracing::warn!(path = %ship.display(), %err, "ignoring unusable shipped compilation"),
            }
        }
        let Some(path) = self.entry(engine, digest) else {
            let c = Component::new(engine.engine(), bytes).map_err(|e| CompileError::Compile(format!("{e:#}")))?;
            return Ok((c, CacheOutcome::Disabled));
        };
        if path.exists() {
            // SAFETY: the file is in chela's own cache directory, written by
            // `serialize` below for this exact digest and engine fingerprint;
            // wasmtime still checks the header and engine compatibility.
            match unsafe { Component::deserialize_file(engine.engine(), &path) } {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(err) => tracing::warn!(path = %path.display(), %err, "ignoring unusable compile cache entry"),
            }
        }
        let c = Component::new(engine.engine(), bytes).map_err(|e| CompileError::Compile(format!("{e:#}")))?;
        if let Err(err) = write_entry(&path, &c) {
            tracing::warn!(path = %path.display(), %err, "cannot write compile cache entry");
        }
        Ok((c, CacheOutcome::Miss))
    }
}

fn entry_name(engine: &PluginEngine, digest: &str) -> String {
    format!("{digest}-{}.cwasm", engine.fingerprint())
}

/// Where a compilation of `plugin` is shipped: `<its dir>/.cwasm/<entry>`.
pub fn shipped(engine: &PluginEngine, digest: &str, plugin: &Path) -> PathBuf {
    plugin.parent().unwrap_or(Path::new(".")).join(".cwasm").join(entry_name(engine, digest))
}

/// Writes the compilation of `component` beside its plugin, for
/// `chela plugins precompile --ship`.
pub fn ship(engine: &PluginEngine, digest: &str, plugin: &Path, component: &Component) -> Result<PathBuf, String> {
    let path = shipped(engine, digest, plugin);
    write_entry(&path, component)?;
    Ok(path)
}

/// Replaced atomically, so a reader never sees half an entry; not fsynced: a
/// cache entry lost to a power cut is compiled again.
fn write_entry(path: &Path, c: &Component) -> Result<(), String> {
    let bytes = c.serialize().map_err(|e| e.to_string())?;
    chela_durable::replace(path, &bytes, chela_durable::Durability::OsBuffered).map_err(|e| e.to_string())
}

/// A component's header: magic, then version 0x0d and layer 1.
pub fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && &bytes[0..4] == b"\0asm" && bytes[6..8] == [1, 0]
}
