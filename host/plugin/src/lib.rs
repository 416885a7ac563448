//! chela's plugin runtime: loads WebAssembly components, links each agent's
//! tools with exactly that agent's capabilities, and runs calls under limits.
//!
//! Invariants: this is the only crate that knows wasmtime. A capability an
//! agent does not hold is never in the linker its instances are built from;
//! a tool denied by policy is never instantiated for that agent. A trap, a
//! timeout or an out-of-memory fails that one call, never the host.
//!
//! Must not: decide tool policy (core does) or know sessions, routing or channels' meaning.

mod bindings;
pub mod cache;
pub mod call;
pub mod capability;
pub mod channel;
pub mod engine;
pub mod guarded;
pub mod inspect;
pub mod linking;
pub mod loader;
mod state;

pub use call::CallOutcome;
pub use capability::{Capability, GrantSet, WorkspaceAccess};
pub use engine::{Limits, PluginEngine};
pub use guarded::{CallError, Health, PluginStatus};
pub use inspect::{PluginKind, PluginManifest};
pub use linking::{AgentTools, LinkRequest, LinkedTool, Unavailable};
pub use loader::{LoadedPlugin, Plugins};
