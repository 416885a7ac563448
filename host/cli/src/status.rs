//! `chela status`, `chela health` and `chela channels status` (OpenClaw's
//! verbs): what the install and its running gateway are doing. `health`
//! needs the gateway (its snapshot, `GET /api/v1/health`); `status` and
//! `channels status` ask it when it answers and fall back to the config and
//! the files when it does not, saying which they used.
//!
//! Must not: change anything (every command here is read-only) or judge an
//! account itself: states come from the gateway, credentials from the
//! adapters (`doctor`, `--probe`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use chela_core::config::{load_str, Config};
use chela_core::roster::Roster;
use chela_database::Database;
use serde_json::{json, Value};

use crate::context::Context;
use crate::output::print_json;

#[derive(clap::Args, Debug)]
pub struct HealthArgs {
    /// Print the gateway's snapshot as JSON.
    #[arg(long)]
    json: bool,
    /// How long to wait for the gateway, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    timeout: u64,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[arg(long)]
    json: bool,
    /// How long to wait for the gateway, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    timeout: u64,
}

#[derive(clap::Subcommand, Debug)]
pub enum ChannelsCommand {
    /// Every configured channel account and its state (the running
    /// gateway's view; the config's when none answers).
    Status {
        /// Only this channel.
        #[arg(long)]
        channel: Option<String>,
        /// Also ask each platform whether the account's credentials work
        /// (through its adapter; needs network access to the platform).
        #[arg(long)]
        probe: bool,
        #[arg(long)]
        json: bool,
        /// How long to wait for the gateway (and each probe), in milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 10_000)]
        timeout: u64,
    },
}

fn get(ctx: &Context, cfg: &Config, path: &str, timeout_ms: u64) -> Result<Option<Value>> {
    crate::client::request(ctx, cfg, reqwest::Method::GET, path, None, Duration::from_millis(timeout_ms.max(1)))
}

/// `chela health`: the running gateway's snapshot; exit 1 when none answers.
pub fn health(ctx: &Context, args: &HealthArgs) -> Result<ExitCode> {
    let cfg = ctx.load()?.config;
    let addr = crate::client::gateway_addr(&cfg)?;
    let Some(snapshot) = get(ctx, &cfg, "/api/v1/health", args.timeout)? else {
        bail!("no gateway answers at http://{addr} (start one with `chela gateway`)");
    };
    if args.json {
        print_json(&snapshot);
        return Ok(ExitCode::SUCCESS);
    }
    let ready = if snapshot["ready"] == true { "ready" } else { "not ready" };
    println!(
        "gateway: http://{addr} · chela {} · up {} · {ready}",
        snapshot["version"].as_str().unwrap_or("?"),
        age(snapshot["uptimeSeconds"].as_f64())
    );
    print_agents(&snapshot["agents"]);
    print_channels(&snapshot["channels"]);
    let plugins = snapshot["plugins"].as_array().cloned().unwrap_or_default();
    let failed: Vec<&Value> = plugins.iter().filter(|p| p["status"] != "ready").collect();
    println!("plugins: {} loaded, {} not ready", plugins.len() - failed.len(), failed.len());
    for p in failed {
        println!("  {}: {} {}", p["id"].as_str().unwrap_or(""), p["status"].as_str().unwrap_or(""), text(&p["error"]));
    }
    println!(
        "journal: {} unfinished message(s), {} undelivered repl(ies)",
        snapshot["journal"]["unfinishedMessages"], snapshot["journal"]["undeliveredReplies"]
    );
    Ok(ExitCode::SUCCESS)
}

/// `chela status`: config, state dir, gateway, agents and channels; works
/// without a gateway and with a config that has errors (it reports them).
pub fn status(ctx: &Context, args: &StatusArgs) -> Result<ExitCode> {
    let text = ctx.read_text()?;
    let file = ctx.config_path.display().to_string();
    let (cfg, config) = match load_str(text.as_deref().unwrap_or("{}"), Some(&file)) {
        Ok(loaded) => {
            let mut diags = loaded.warnings.clone();
            diags.extend(chela_core::config::validate::validate(&loaded, &ctx.env));
            let errors = diags.iter().filter(|d| d.is_error()).count();
            let ignored = diags.iter().filter(|d| d.unimplemented).count();
            let warnings = diags.len() - errors - ignored;
            let report = json!({"path": file, "exists": text.is_some(), "loads": true, "errors": errors,
                                "warnings": warnings, "ignoredOpenclawSettings": ignored});
            (loaded.config, report)
        }
        Err(e) => {
            let report = json!({"path": file, "exists": text.is_some(), "loads": false,
                                "errors": e.diagnostics().len(), "error": e.to_string()});
            (Config::default(), report)
        }
    };
    let addr = crate::client::gateway_addr(&cfg)?;
    let snapshot = match get(ctx, &cfg, "/api/v1/health", args.timeout) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warning: {e:#}");
            None
        }
    };
    let gateway = match &snapshot {
        Some(s) => json!({"url": format!("http://{addr}"), "reachable": true, "ready": s["ready"],
                          "version": s["version"], "uptimeSeconds": s["uptimeSeconds"]}),
        None => json!({"url": format!("http://{addr}"), "reachable": false}),
    };
    // On a shared database: every replica and what it owns, whichever gateway answered.
    let database = crate::context::database(&cfg, &ctx.env).map_err(|e| format!("{e:#}"));
    let (agents, channels, source) = match &snapshot {
        Some(s) => (s["agents"].clone(), s["channels"].clone(), "gateway"),
        None => (local_agents(ctx, &cfg, &database), Value::Array(config_accounts(&cfg, None)), "config"),
    };
    let mut report = json!({
        "config": config,
        "stateDir": ctx.env.state_dir(),
        "gateway": gateway,
        "source": source,
        "defaultAgent": Roster::from_config(&cfg).default_agent(),
        "agents": agents,
        "channels": channels,
    });
    match &database {
        Ok(Some(db)) => {
            report["database"] = json!({"url": db.shown_url()});
            match db.leases() {
                Ok(leases) => report["replicas"] = replicas(&leases),
                Err(e) => report["database"]["error"] = json!(e.to_string()),
            }
        }
        Ok(None) => {}
        Err(e) => report["database"] = json!({"error": e}),
    }
    if args.json {
        print_json(&report);
        return Ok(ExitCode::SUCCESS);
    }
    let c = &report["config"];
    if c["loads"] == true {
        println!(
            "config:    {file}{} · {} error(s), {} warning(s), {} ignored OpenClaw setting(s)",
            if c["exists"] == true { "" } else { " (not there: defaults)" },
            c["errors"],
            c["warnings"],
            c["ignoredOpenclawSettings"]
        );
    } else {
        println!("config:    {file} does not load: {}", c["error"].as_str().unwrap_or(""));
    }
    println!("state dir: {}", ctx.env.state_dir().display());
    match &snapshot {
        Some(s) => println!(
            "gateway:   http://{addr} · chela {} · up {} · {}",
            s["version"].as_str().unwrap_or("?"),
            age(s["uptimeSeconds"].as_f64()),
            if s["ready"] == true { "ready" } else { "not ready" }
        ),
        None => println!("gateway:   not running at http://{addr} (agents and channels below are from the config)"),
    }
    print_agents(&report["agents"]);
    print_channels(&report["channels"]);
    print_replicas(&report);
    Ok(ExitCode::SUCCESS)
}

/// The replicas the leases show: each one's owner, whether its replica
/// lease is alive, and the other leases it holds (pollers, the scheduler).
fn replicas(leases: &[chela_database::LeaseRecord]) -> Value {
    let rows = leases.iter().filter_map(|l| {
        let owner = chela_database::replica_of(&l.name)?;
        let holds: Vec<&str> = leases
            .iter()
            .filter(|o| o.owner == owner && o.expires_in_ms > 0 && chela_database::replica_of(&o.name).is_none())
            .map(|o| o.name.as_str())
            .collect();
        Some(json!({"owner": owner, "alive": l.expires_in_ms > 0, "leases": holds}))
    });
    Value::Array(rows.collect())
}

fn print_replicas(report: &Value) {
    let Some(db) = report.get("database") else { return };
    if let Some(e) = db["error"].as_str() {
        println!("database:  {e}");
        return;
    }
    let all = report["replicas"].as_array().cloned().unwrap_or_default();
    let alive: Vec<&Value> = all.iter().filter(|r| r["alive"] == true).collect();
    println!("database:  {} · {} replica(s) alive", db["url"].as_str().unwrap_or("?"), alive.len());
    for r in &all {
        let leases: Vec<&str> = r["leases"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        println!(
            "  {:<32} {:<6} {}",
            r["owner"].as_str().unwrap_or("?"),
            if r["alive"] == true { "alive" } else { "gone" },
            if leases.is_empty() { "-".to_string() } else { leases.join(", ") }
        );
    }
}

/// `chela channels status [--channel C] [--probe]`.
pub fn channels(ctx: &Context, cmd: &ChannelsCommand) -> Result<ExitCode> {
    let ChannelsCommand::Status { channel, probe, json, timeout } = cmd;
    let cfg = ctx.load()?.config;
    let channel = channel.as_deref().map(chela_core::ids::normalize_channel);
    let (mut rows, source) = match get(ctx, &cfg, "/api/v1/channels", *timeout)? {
        Some(v) => {
            let rows = v["channels"].as_array().cloned().unwrap_or_default();
            let rows = rows.into_iter().filter(|r| channel.as_deref().is_none_or(|c| r["channel"] == c)).collect();
            (rows, "gateway")
        }
        None => (config_accounts(&cfg, channel.as_deref()), "config"),
    };
    if let Some(c) = &channel {
        if cfg.channels.as_ref().is_none_or(|m| !m.contains_key(c)) {
            bail!("no channel `{c}` in {}", ctx.config_path.display());
        }
    }
    if *probe {
        let probes = crate::probe::run(ctx, &cfg, channel.as_deref(), true, Duration::from_millis(*timeout))?;
        for row in rows.iter_mut() {
            let found =
                probes.iter().find(|p| row["channel"] == p.channel.as_str() && row["account"] == p.account.as_str());
            row["probe"] = match found {
                Some(p) => serde_json::to_value(p)?,
                None => json!({"ok": false, "detail": "not probed (disabled, or no adapter loaded)"}),
            };
        }
    }
    if *json {
        print_json(&json!({"source": source, "channels": rows}));
    } else {
        if source == "config" {
            println!("gateway not running: accounts as configured");
        }
        print_channels(&Value::Array(rows));
    }
    Ok(ExitCode::SUCCESS)
}

/// The accounts the config declares, without a gateway to say how they run.
fn config_accounts(cfg: &Config, only: Option<&str>) -> Vec<Value> {
    let mut out = Vec::new();
    for (channel, section) in cfg.channels.iter().flatten() {
        if only.is_some_and(|c| c != channel) {
            continue;
        }
        for a in section.declared_accounts() {
            out.push(json!({
                "channel": channel,
                "account": a.id,
                "name": a.account.name,
                "enabled": a.enabled,
                "running": Value::Null,
                "state": if a.enabled { "configured" } else { "disabled" },
            }));
        }
    }
    out
}

/// Agents and their session stores, read from the store the runtime opens.
fn local_agents(ctx: &Context, cfg: &Config, database: &Result<Option<Arc<Database>>, String>) -> Value {
    let rows = chela_gateway::agent_summaries(cfg, &Roster::from_config(cfg), |id| {
        let database = database.as_ref().map_err(Clone::clone)?;
        let durability = chela_agent::store::Durability::default();
        chela_agent::runtime::open_store(cfg, &ctx.env, id, database.as_ref(), durability)
            .map_err(|e| e.to_string())
            .and_then(|s| s.list().map_err(|e| e.to_string()))
    });
    Value::Array(rows)
}

fn print_agents(agents: &Value) {
    println!("agents:");
    for a in agents.as_array().into_iter().flatten() {
        let marker = if a["default"] == true { " (default)" } else { "" };
        let emoji = a["emoji"].as_str().map(|e| format!("{e} ")).unwrap_or_default();
        let sessions = match (&a["sessions"], &a["sessionStoreError"]) {
            (Value::Number(n), _) => {
                let last = a["lastActivityAgeSeconds"].as_f64().map(|s| format!(", last active {} ago", age(Some(s))));
                format!("{n} session(s){}", last.unwrap_or_default())
            }
            (_, Value::String(e)) => format!("session store unreadable: {e}"),
            _ => String::new(),
        };
        println!("  {emoji}{}{marker}: {sessions}", a["id"].as_str().unwrap_or(""));
    }
}

fn print_channels(channels: &Value) {
    let rows = channels.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        println!("channels: none configured");
        return;
    }
    println!("channels:");
    for r in rows {
        let id = format!("{}/{}", r["channel"].as_str().unwrap_or(""), r["account"].as_str().unwrap_or(""));
        let mut detail = Vec::new();
        if let Some(d) = r["delivery"].as_str() {
            detail.push(d.to_string());
        }
        if let Some(s) = r["lastContactAgeSeconds"].as_f64() {
            detail.push(format!("last contact {} ago", age(Some(s))));
        }
        if let Some(e) = r["lastError"].as_str() {
            detail.push(e.to_string());
        }
        if let Some(p) = r.get("probe") {
            let verdict = if p["ok"] == true { "probe ok" } else { "probe failed" };
            detail.push(format!("{verdict}: {}", p["detail"].as_str().unwrap_or("")));
        }
        println!("  {id:<24} {:<10} {}", r["state"].as_str().unwrap_or(""), detail.join(" · "));
    }
}

fn text(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_default()
}

/// `75` → `1m 15s`.
fn age(seconds: Option<f64>) -> String {
    let Some(s) = seconds else { return "?".into() };
    let s = s.max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::age;

    #[test]
    fn ages_read_as_the_largest_two_units() {
        assert_eq!(age(Some(5.4)), "5s");
        assert_eq!(age(Some(75.0)), "1m 15s");
        assert_eq!(age(Some(7322.0)), "2h 2m");
        assert_eq!(age(Some(90_000.0)), "1d 1h");
        assert_eq!(age(None), "?");
    }
}
