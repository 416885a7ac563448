//! `chela route`: which agent a message would reach, and why.
//!
//! Works on a config that loads but fails semantic validation (those problems
//! are printed as warnings), because diagnosing a broken config is the point.
//!
//! Must not: route by its own rules: it prints what core's dispatch decided.

use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use chela_core::config::validate::validate;
use chela_core::config::Severity;
use chela_core::roster::OwnerError;
use chela_core::routing::{Dispatch, Explanation, PeerRef, Route, RouteInput, RouteTable, TierOutcome};

use crate::context::Context;
use crate::output::{binding_source, print_diagnostics, print_json};

#[derive(clap::Args, Debug)]
pub struct RouteArgs {
    /// Channel id (whatsapp, telegram, slack, discord, …).
    #[arg(long, required_unless_present = "input")]
    channel: Option<String>,
    /// Channel account id (default: `default`).
    #[arg(long)]
    account: Option<String>,
    /// The chat: KIND:ID with KIND direct|group|channel (e.g. direct:+15551234567).
    #[arg(long, value_name = "KIND:ID")]
    peer: Option<String>,
    /// The parent chat of a thread, KIND:ID.
    #[arg(long, value_name = "KIND:ID")]
    parent: Option<String>,
    /// Discord guild id.
    #[arg(long)]
    guild: Option<String>,
    /// Slack team id.
    #[arg(long)]
    team: Option<String>,
    /// Discord member role ids, comma-separated.
    #[arg(long, value_delimiter = ',')]
    roles: Vec<String>,
    /// The thread the message is in (Slack thread ts, Telegram topic, Discord thread).
    #[arg(long)]
    thread: Option<String>,
    /// The whole input as JSON, in the conformance vectors' shape.
    #[arg(long, value_name = "JSON", conflicts_with_all = ["channel", "account", "peer", "parent", "guild", "team", "roles", "thread"])]
    input: Option<String>,
    /// Print JSON (the vectors' field names, or {"error": …}).
    #[arg(long)]
    json: bool,
}

fn parse_peer(s: &str, flag: &str) -> Result<PeerRef> {
    match s.split_once(':') {
        Some((kind, id)) if !kind.is_empty() => Ok(PeerRef::new(kind, id)),
        _ => bail!("--{flag} must be KIND:ID (e.g. direct:+15551234567 or group:123@g.us), got `{s}`"),
    }
}

fn input_from(args: &RouteArgs) -> Result<RouteInput> {
    if let Some(json) = &args.input {
        let v: serde_json::Value = serde_json::from_str(json).context("--input is not valid JSON")?;
        return RouteInput::from_json(&v).map_err(|e| anyhow::anyhow!("--input: {e}"));
    }
    Ok(RouteInput {
        channel: args.channel.clone().unwrap_or_default(),
        account_id: args.account.clone(),
        peer: args.peer.as_deref().map(|p| parse_peer(p, "peer")).transpose()?,
        parent_peer: args.parent.as_deref().map(|p| parse_peer(p, "parent")).transpose()?,
        guild_id: args.guild.clone(),
        team_id: args.team.clone(),
        member_role_ids: args.roles.clone(),
        thread_id: args.thread.clone(),
        ..Default::default()
    })
}

pub fn run(ctx: &Context, args: &RouteArgs) -> Result<ExitCode> {
    let input = input_from(args)?;
    let text = ctx.read_text()?.unwrap_or_else(|| "{}".to_string());
    let loaded = ctx.parse(&text)?;
    // Semantic problems are reported as warnings: route still diagnoses.
    let problems: Vec<_> = validate(&loaded, &ctx.env)
        .into_iter()
        .map(|mut d| {
            if d.severity == Severity::Error {
                d.severity = Severity::Warning;
                d.message = format!("(config invalid) {}", d.message);
            }
            d
        })
        .collect();
    print_diagnostics(&problems);
    let table = RouteTable::build(&loaded.config);
    // What the gateway does with the message (broadcast, threads), and why the tiers chose it.
    let dispatch = table.dispatch(&input);
    let explanation = table.explain(&loaded.config, &input);
    let describe = |i: usize| binding_source(&loaded, &text, i);
    if args.json {
        print_json(&json_output(&dispatch, &explanation, &describe));
    } else {
        print_text(&input, &dispatch, &explanation, &describe);
    }
    Ok(if dispatch.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The vectors' fields of the (first) route, then every route in full,
/// the broadcast order, and the tier trace.
fn json_output(
    dispatch: &Result<Dispatch, OwnerError>,
    e: &Explanation,
    describe: &dyn Fn(usize) -> String,
) -> serde_json::Value {
    let mut out = match dispatch {
        Ok(d) => match d.routes.first() {
            Some(route) => route.to_vector_json(),
            None => serde_json::json!({"agentId": null}),
        },
        Err(err) => err.to_vector_json(),
    };
    if let Ok(d) = dispatch {
        out["routes"] = serde_json::to_value(&d.routes).unwrap_or_default();
        if let Some(order) = d.broadcast {
            out["broadcast"] = serde_json::to_value(order).unwrap_or_default();
        }
    }
    if let Some(i) = e.result.as_ref().ok().and_then(|r| r.binding_index) {
        out["binding"] = serde_json::json!({"index": i, "text": describe(i)});
    }
    let trace = e.trace_json();
    out["tiers"] = trace["tiers"].clone();
    out["shadowed"] = trace["shadowed"].clone();
    out
}

fn print_route(r: &Route, describe: &dyn Fn(usize) -> String) {
    println!("agent:   {}  (matched by {})", r.agent_id, r.matched_by.as_str());
    if let Some(i) = r.binding_index {
        println!("binding: bindings[{i}] {}", describe(i));
    }
    println!(
        "session: {}  (main: {}, last route: {}, {} chat, {} session)",
        r.session_key,
        r.main_session_key,
        r.last_route_policy.as_str(),
        r.chat_type.as_str(),
        r.session_kind.label()
    );
}

fn print_text(
    input: &RouteInput,
    dispatch: &Result<Dispatch, OwnerError>,
    e: &Explanation,
    describe: &dyn Fn(usize) -> String,
) {
    let mut what = format!("channel {}", input.channel);
    what.push_str(&format!(", account {}", input.account_id.as_deref().unwrap_or("default")));
    if let Some(p) = &input.peer {
        what.push_str(&format!(", peer {}:{}", p.kind, p.id));
    }
    if let Some(p) = &input.parent_peer {
        what.push_str(&format!(", parent {}:{}", p.kind, p.id));
    }
    if let Some(g) = &input.guild_id {
        what.push_str(&format!(", guild {g}"));
    }
    if let Some(t) = &input.team_id {
        what.push_str(&format!(", team {t}"));
    }
    if !input.member_role_ids.is_empty() {
        what.push_str(&format!(", roles {}", input.member_role_ids.join(",")));
    }
    if let Some(t) = &input.thread_id {
        what.push_str(&format!(", thread {t}"));
    }
    println!("message: {what}");
    match dispatch {
        Ok(d) if d.broadcast.is_some() => {
            let order = if d.broadcast == Some(chela_core::routing::BroadcastOrder::Sequential) {
                "one after another"
            } else {
                "in parallel"
            };
            println!("broadcast group: {} agents answer, {order}; bindings do not apply", d.routes.len());
            for r in &d.routes {
                print_route(r, describe);
            }
            println!("\nwhat the bindings alone would choose:");
        }
        Ok(d) => d.routes.iter().for_each(|r| print_route(r, describe)),
        Err(err) => println!("no agent: {err}"),
    }
    println!("\nwhy (tiers in precedence order):");
    for t in &e.tiers {
        match &t.outcome {
            TierOutcome::Skipped { reason } => println!("  {:<22} skipped: {reason}", t.tier.as_str()),
            TierOutcome::Checked { candidates } if candidates.is_empty() => {
                println!("  {:<22} no binding for this", t.tier.as_str())
            }
            TierOutcome::Checked { candidates } => {
                for c in candidates {
                    match &c.rejected_because {
                        None => println!(
                            "  {:<22} bindings[{}] MATCHED  {}",
                            t.tier.as_str(),
                            c.binding_index,
                            describe(c.binding_index)
                        ),
                        Some(why) => println!(
                            "  {:<22} bindings[{}] skipped: {why}  {}",
                            t.tier.as_str(),
                            c.binding_index,
                            describe(c.binding_index)
                        ),
                    }
                }
            }
        }
    }
    if e.result.as_ref().is_ok_and(|r| r.binding_index.is_none()) {
        println!("  {:<22} no binding matched: the default agent answers", "default");
    }
    if !e.shadowed.is_empty() {
        println!("\nalso matching, but less specific (a more specific tier wins regardless of order):");
        for (tier, i) in &e.shadowed {
            println!("  {:<22} bindings[{i}] {}", tier.as_str(), describe(*i));
        }
    }
    if !e.other_accounts.is_empty() {
        println!("\nbindings of this channel for other accounts (never candidates here):");
        for (i, account) in &e.other_accounts {
            println!("  bindings[{i}] (account {account}) {}", describe(*i));
        }
        println!("  note: a binding without accountId matches only the `default` account; use accountId \"*\" for all");
    }
}
