//! chela's pure core: the one place the rules of configuration, routing,
//! session keys and tool policy live.
//!
//! Invariant: this crate knows nothing of tokio, hyper or wasmtime and does no
//! I/O of its own beyond reading a config file (and the files it `$include`s) when asked. Everything else in
//! chela (CLI, gateway, plugin runtime) calls into it; none re-implements it.
//!
//! Must not: depend on tokio, hyper, wasmtime or the network, or write files.

pub mod access;
pub mod block_stream;
pub mod bot_loop;
pub mod commands;
pub mod compaction;
pub mod config;
pub mod conversation_loop;
pub mod cron_job;
pub mod failure_alert;
pub mod heartbeat;
pub mod identity;
pub mod ids;
pub mod media;
pub mod pacing;
pub mod policy;
pub mod presence;
pub mod preview;
pub mod pruning;
pub mod queue_mode;
pub mod reply_prefix;
pub mod roster;
pub mod routing;
pub mod schedule;
pub mod send_policy;
pub mod session_key;
pub mod snapshot;
pub mod storage;
pub mod thinking;
