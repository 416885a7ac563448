//! `chela tools --agent ID`: the effective tool set, and which stage removed the rest.
//!
//! Must not: compute tool policy itself (core's `effective_tools` does).

use std::process::ExitCode;

use anyhow::{bail, Result};
use chela_core::policy::SessionKind;

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
            if roster.find(a).is_none() {
                bail!("no agent `{a}` in the config (agents: {})", roster.ids().join(", "));
            }
            a.clone()
        }
        None => roster.default_agent(),
    };
    let kind = parse_session(&args.session)?;
    let rt = crate::plugins::runtime()?;
    let plugins = rt.block_on(crate::plugins::load(ctx, &loaded.config))?;
    let secrets = |_: &str| std::sync::Arc::new(chela_plugin::capability::secrets::SecretStore::default());
    let linked = plugins.link_agent(&loaded.config, &ctx.env, &agent, &kind, &secrets);
    let tools = linked.policy.clone();
    let plugin_tools: Vec<serde_json::Value> = linked
        .tools
        .iter()
        .map(|t| {
            serde_json::json!({
                "name": t.descriptor.name, "plugin": t.plugin.id,
                "capabilities": t.grants.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                "workspace": t.grants.workspace.as_ref().map(|(_, a)| a),
                "httpHosts": t.grants.http_hosts,
                // What the plugin asks for; only `httpHosts` (plugins.entries.<id>.allowHosts) is granted.
                "requestedHosts": t.descriptor.http_hosts,
            })
        })
        .collect();
    if args.json {
        let mut v = serde_json::to_value(&tools)?;
        v["plugins"] = serde_json::json!({"linked": plugin_tools, "unavailable": linked.unavailable});
        print_json(&v);
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
    if !plugin_tools.is_empty() || !linked.unavailable.is_empty() {
        println!("plugin tools:");
        for t in &linked.tools {
            let mut caps: Vec<String> = t.grants.capabilities.iter().map(|c| c.as_str().to_string()).collect();
            if let Some((dir, access)) = &t.grants.workspace {
                caps.push(format!(
                    "workspace {} ({})",
                    dir.display(),
                    serde_json::to_value(access)?.as_str().unwrap_or("?")
                ));
            }
            println!("  {:<18} linked from `{}` with {}", t.descriptor.name, t.plugin.id, caps.join(", "));
        }
        for u in &linked.unavailable {
            println!("  {:<18} unavailable (`{}`): {}", u.tool, u.plugin, u.reason);
        }
    }
    Ok(ExitCode::SUCCESS)
}
