//! chela's agent runtime: sessions, persona prompts, model providers and the
//! run loop that calls an agent's capability-linked tools.
//!
//! Invariants: an agent's turn reads and writes only that agent's store,
//! workspace and agentDir; a tool runs only if it is in the agent's linked
//! set for that session; turns of one session key never overlap.
//!
//! Must not: route messages or decide tool policy (core does), or know wasmtime (the plugin runtime
//! does).

pub mod agent_to_agent;
pub mod approvals;
mod assemble;
pub mod auth;
pub mod clock;
pub mod compaction;
pub mod freshness;
pub mod loops;
pub mod model;
pub mod persona;
pub mod preserved_turns;
pub mod pruning;
pub mod queue;
pub mod runtime;
pub mod sessions_access;
pub mod store;
pub mod subagents;
pub mod summary_quality;
pub mod workspace_read;

pub use model::{Provider, Providers, TextEvent, TextSink};
pub use runtime::{AgentRuntime, Announcement, Announcer, Inbound, RunError, RunLimits, Scheduled, TurnOutcome};
pub use store::{DeliveryContext, FileStore, Origin, SessionEntry, SessionStore};
