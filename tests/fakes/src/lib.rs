//! Fakes of the chat platforms, served on 127.0.0.1:0 by tests. Each speaks
//! the platform's real wire protocol (paths, bodies, errors, limits), so the
//! adapter components under test are byte-for-byte what would run against the
//! live service; only the base URL differs. Each fake also has a simulation
//! side (plain Rust methods) to inject user messages, schedule faults and read
//! what the adapter sent.
//!
//! Must not: know chela's internals: every fake speaks only its platform's protocol.

pub mod anthropic;
pub mod discord;
pub mod openai;
pub mod platforms;
pub mod postgres;
pub mod slack;
pub mod telegram;
pub mod whatsapp;
pub mod wire;
