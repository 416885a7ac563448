//! `chela pairing list CH` / `chela pairing approve CH CODE`: the DM pairing
//! requests of a channel, where a running gateway reads them per message
//! (the state dir's files, or the replicas' database when storage names one).
//!
//! Must not: keep its own pairing format (it uses the gateway's pairing module).

use std::process::ExitCode;

use anyhow::Result;
use chela_gateway::pairing::Pairing;

use crate::context::Context;
use crate::output::print_json;

#[derive(clap::Subcommand, Debug)]
pub enum PairingCommand {
    /// Pending pairing requests of a channel.
    List {
        channel: String,
        #[arg(long)]
        json: bool,
    },
    /// Approve a code: its sender may DM the account from now on.
    Approve {
        channel: String,
        code: String,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Context, cmd: PairingCommand) -> Result<ExitCode> {
    let cfg = ctx.load()?.config;
    let database = crate::context::database(&cfg, &ctx.env)?;
    let pairing = Pairing::at(&ctx.env.state_dir(), database.as_ref());
    match cmd {
        PairingCommand::List { channel, json } => {
            let pending = pairing.pending(&channel)?;
            if json {
                print_json(&serde_json::json!({ "channel": channel, "requests": pending }));
            } else if pending.is_empty() {
                println!("no pending pairing requests on {channel}");
            } else {
                for r in pending {
                    let name = r.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
                    println!("{}  account {:<12} sender {}{name}", r.code, r.account_id, r.id);
                }
            }
        }
        PairingCommand::Approve { channel, code, json } => {
            let r = pairing.approve(&channel, &code)?;
            if json {
                print_json(&serde_json::json!({ "channel": channel, "approved": r }));
            } else {
                println!("approved {} on {channel}/{}: they can message the bot now", r.id, r.account_id);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
