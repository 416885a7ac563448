//! The gateway's integration tests, one binary: each module starts real
//! gateways on 127.0.0.1:0 with real components and (where a platform is out
//! of reach) its fake. One binary links wasmtime once instead of once per file.

mod common;

mod commands;
mod compaction;
mod credentials;
mod cron;
mod discord;
mod e2e;
mod exec_approvals;
mod group_history;
mod openai_params;
mod pruning;
mod queue;
mod reload;
mod send_policy;
mod slack;
mod telegram;
mod whatsapp;
