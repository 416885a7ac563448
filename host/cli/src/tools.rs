//! `chela tools --agent ID`: the effective tool set, and which stage removed the rest.

use std::process::ExitCode;

use anyhow::{bail, Result};
use chela_core::policy::{effective_tools, SessionKind, ToolCatalog};
use chela_core::roster::RosterShape;

use crate::context::Context;
use crate::output::print_json;

#[derive(clap::Args, Debug)]
pub struct ToolsArgs {
    /// The agent (default: the default agent).
    #[arg(long)]
    agent: Option<String>,
    /// Session kind: main | group:CHANNEL:GROUP_ID | sandboxed | subagent.
    #[arg(long, default_value = "main")]
    session: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn parse_session(s: &str) -> Result<SessionKind> {
    Ok(match s {
        "main" => SessionKind::Main,
        "sandboxed" => SessionKind::Sandboxed,
        "subagent" | "sub-agent" => SessionKind::Subagent,
        other => match other.strip_prefix("group:").and_then(|r| r.split_once(':')) {
            Some((channel, group)) => SessionKind::Group { channel: channel.to_string(), group_id: group.to_string() },
            None => bail!("--session must be main, group:CHANNEL:GROUP_ID, sandboxed or subagent; got `{s}`"),
        },
    })
}

pub fn run(ctx: &Context, args: &ToolsArgs) -> Result<ExitCode> {
    let loaded = ctx.load()?;
    let roster = chela_core::roster::Roster::from_config(&loaded.config);
    let agent = match &args.agent {
        Some(a) => {
            if roster.shape != RosterShape::Unconfigured && roster.find(a).is_none() {
                bail!("no agent `{a}` in the config (agents: {})", roster.ids().join(", "));
            }
            a.clone()
        }
        None => roster.default_agent(),
    };
    let kind = parse_session(&args.session)?;
    // Plugin tools join the catalog once the plugin runtime lands; built-ins for now.
    let tools = effective_tools(&loaded.config, &agent, &kind, &ToolCatalog::core());
    if args.json {
        print_json(&serde_json::to_value(&tools)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "agent {} — {} session{}",
        tools.agent_id,
        tools.session,
        if tools.sandboxed { " (sandboxed)" } else { "" }
    );
    println!("allowed: {}", tools.allowed().collect::<Vec<_>>().join(", "));
    let removed: Vec<_> = tools.tools.iter().filter(|t| !t.allowed).collect();
    if !removed.is_empty() {
        println!("removed:");
        for t in removed {
            println!("  {:<18} by {}", t.name, t.removed_by.as_deref().unwrap_or("?"));
        }
    }
    for n in &tools.notes {
        println!("note: {n}");
    }
    Ok(ExitCode::SUCCESS)
}
