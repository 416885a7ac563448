//! `chela agents …`: list, add, delete, bind, unbind (OpenClaw's contract, §13.1);
//! `set-identity` lives in `identity.rs`.
//!
//! Changes are made to the config *text* (comments survive), re-loaded and
//! re-validated before the file is replaced; an edit that would add a config
//! error is refused and nothing is written.
//!
//! Must not: write a file that does not load and validate, or re-serialise the whole config.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use chela_core::config::edit::{append_to_array, remove_array_elements, set_member};
use chela_core::config::paths::{agent_dir, agent_workspace, expand_tilde, sessions_dir};
use chela_core::config::{load_str, Config, Loaded};
use chela_core::ids::{js_trim, normalize_account_id, normalize_agent_id, normalize_channel, DEFAULT_AGENT_ID};
use chela_core::roster::{Roster, RosterShape};
use clap::Subcommand;
use serde_json::json;

use crate::context::Context;
use crate::output::{binding_source, print_diagnostics, print_json};

#[derive(Subcommand, Debug)]
pub enum AgentsCommand {
    /// List agents (with --bindings: their routing rules).
    List {
        #[arg(long)]
        bindings: bool,
        #[arg(long)]
        json: bool,
    },
    /// Add an agent: config entry, workspace with persona templates, optional bindings.
    Add {
        /// Agent name; its id is the normalised name (`main` is reserved).
        name: String,
        #[arg(long)]
        workspace: Option<String>,
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        agent_dir: Option<String>,
        /// Route a channel (or one account of it) to the agent: CHANNEL[:ACCOUNT], `*` = all accounts.
        #[arg(long = "bind", value_name = "CHANNEL[:ACCOUNT]")]
        binds: Vec<String>,
        /// Never prompt (all commands here are non-interactive; accepted for OpenClaw parity).
        #[arg(long)]
        non_interactive: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete an agent: config entry, its bindings and allow entries; its dirs move to the trash.
    Delete {
        id: String,
        /// Do not ask for confirmation (required without a terminal).
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Set an agent's name, theme, emoji and avatar (`identity`), from
    /// flags or its workspace's IDENTITY.md.
    SetIdentity(crate::identity::SetIdentityArgs),
    /// Bind channels (or accounts) to an agent.
    Bind {
        #[arg(long)]
        agent: Option<String>,
        #[arg(long = "bind", value_name = "CHANNEL[:ACCOUNT]", required = true)]
        binds: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove an agent's channel/account bindings (or all of them).
    Unbind {
        #[arg(long)]
        agent: Option<String>,
        #[arg(long = "bind", value_name = "CHANNEL[:ACCOUNT]", conflicts_with = "all")]
        binds: Vec<String>,
        #[arg(long, required_unless_present = "binds")]
        all: bool,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Context, cmd: AgentsCommand) -> Result<ExitCode> {
    match cmd {
        AgentsCommand::List { bindings, json } => list(ctx, bindings, json),
        AgentsCommand::Add { name, workspace, model, agent_dir, binds, non_interactive: _, json } => {
            add(ctx, &name, workspace, model, agent_dir, &binds, json)
        }
        AgentsCommand::Delete { id, force, json } => delete(ctx, &id, force, json),
        AgentsCommand::SetIdentity(args) => crate::identity::run(ctx, &args),
        AgentsCommand::Bind { agent, binds, json } => bind(ctx, agent.as_deref(), &binds, json),
        AgentsCommand::Unbind { agent, binds, all, json } => unbind(ctx, agent.as_deref(), &binds, all, json),
    }
}

/// `(index, binding)` pairs naming `agent`.
fn bindings_of<'a>(cfg: &'a Config, agent: &str) -> Vec<(usize, &'a chela_core::config::schema::Binding)> {
    cfg.bindings
        .iter()
        .flatten()
        .enumerate()
        .filter(|(_, b)| normalize_agent_id(b.agent_id.as_deref()) == agent)
        .collect()
}

fn list(ctx: &Context, with_bindings: bool, json: bool) -> Result<ExitCode> {
    let text = ctx.read_text()?.unwrap_or_else(|| "{}".into());
    let loaded = ctx.parse(&text)?;
    let cfg = &loaded.config;
    let roster = Roster::from_config(cfg);
    let default = roster.default_agent();
    let model_of = |id: &str| cfg.agent_model(id).map(str::to_string);
    let name_of = |id: &str| cfg.agent(id).and_then(|(_, a)| a.name.clone());
    let rows: Vec<serde_json::Value> = roster
        .ids()
        .iter()
        .map(|id| {
            let bindings: Vec<serde_json::Value> = bindings_of(cfg, id)
                .into_iter()
                .map(|(i, _)| json!({"index": i, "text": binding_source(&loaded, &text, i)}))
                .collect();
            json!({
                "id": id,
                "name": name_of(id),
                "default": *id == default,
                "workspace": agent_workspace(cfg, &roster, id, &ctx.env),
                "agentDir": agent_dir(cfg, id, &ctx.env),
                "model": model_of(id),
                "bindingCount": bindings.len(),
                "bindings": bindings,
            })
        })
        .collect();
    if json {
        print_json(&json!({"configPath": ctx.config_path, "defaultAgent": default, "agents": rows}));
        return Ok(ExitCode::SUCCESS);
    }
    println!("config: {}", ctx.config_path.display());
    for r in &rows {
        let id = r["id"].as_str().unwrap_or("");
        let marker = if r["default"] == true { " (default)" } else { "" };
        let name = r["name"].as_str().map(|n| format!(" \"{n}\"")).unwrap_or_default();
        println!("- {id}{name}{marker}");
        println!("    workspace: {}", r["workspace"].as_str().unwrap_or(""));
        println!("    agentDir:  {}", r["agentDir"].as_str().unwrap_or(""));
        if let Some(m) = r["model"].as_str() {
            println!("    model:     {m}");
        }
        if with_bindings {
            let list = r["bindings"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!("    bindings:  none{}", if r["default"] == true { " (gets unmatched messages)" } else { "" });
            }
            for b in list {
                println!("    bindings[{}] {}", b["index"], b["text"].as_str().unwrap_or(""));
            }
        } else {
            println!("    bindings:  {}", r["bindingCount"]);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_bind(spec: &str) -> Result<(String, Option<String>)> {
    let (channel, account) = match spec.split_once(':') {
        Some((c, a)) => (c, Some(a)),
        None => (spec, None),
    };
    let channel = normalize_channel(channel);
    if channel.is_empty() {
        bail!("--bind `{spec}`: the channel is empty (use CHANNEL or CHANNEL:ACCOUNT)");
    }
    let account = account.map(js_trim).filter(|a| !a.is_empty()).map(|a| {
        if a == "*" {
            "*".to_string()
        } else {
            normalize_account_id(Some(a))
        }
    });
    Ok((channel, account))
}

fn binding_json5(agent: &str, channel: &str, account: Option<&str>) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    match account {
        Some(a) => format!("{{ agentId: {}, match: {{ channel: {}, accountId: {} }} }}", q(agent), q(channel), q(a)),
        None => format!("{{ agentId: {}, match: {{ channel: {} }} }}", q(agent), q(channel)),
    }
}

/// Checks edited text and writes it, unless it adds config errors.
fn commit(ctx: &Context, before: &Loaded, old: Option<&str>, new: &str) -> Result<Loaded> {
    let file = ctx.config_path.display().to_string();
    match chela_core::config::validate::check_edit(before, new, &file, &ctx.env) {
        Ok(after) => {
            ctx.write_config(old, new)?;
            Ok(after)
        }
        Err(problems) => {
            print_diagnostics(&problems);
            bail!("the change would make the config invalid; nothing was written");
        }
    }
}

const AGENTS_TEMPLATE: &str =
    "# AGENTS.md — operating rules\n\nHow this agent works: what it may do on its own, what it must ask about first.\n";
const SOUL_TEMPLATE: &str = "# SOUL.md — persona\n\nWho this agent is: voice, tone, what it cares about.\n";
const USER_TEMPLATE: &str = "# USER.md — the user\n\nWho the agent works for and what they prefer.\n";

/// Creates the workspace with persona templates, keeping files that exist.
fn seed_workspace(dir: &Path, name: &str) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir.join("memory")).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::create_dir_all(dir.join("skills"))?;
    let mut created = Vec::new();
    for (file, body) in [("AGENTS.md", AGENTS_TEMPLATE), ("SOUL.md", SOUL_TEMPLATE), ("USER.md", USER_TEMPLATE)] {
        let path = dir.join(file);
        if !path.exists() {
            let body = body.replacen("this agent", &format!("`{name}`"), 1);
            std::fs::write(&path, body).with_context(|| format!("cannot write {}", path.display()))?;
            created.push(path);
        }
    }
    Ok(created)
}

fn add(
    ctx: &Context,
    name: &str,
    workspace: Option<String>,
    model: Option<String>,
    agent_dir_flag: Option<String>,
    binds: &[String],
    json: bool,
) -> Result<ExitCode> {
    let id = normalize_agent_id(Some(name));
    if js_trim(name).is_empty() {
        bail!("the agent name is empty");
    }
    if id == DEFAULT_AGENT_ID {
        bail!("`main` is reserved for the default agent; choose another name");
    }
    let binds: Vec<(String, Option<String>)> = binds.iter().map(|b| parse_bind(b)).collect::<Result<_>>()?;
    let old = ctx.read_text()?;
    let text = old.clone().unwrap_or_else(|| "{\n}\n".to_string());
    let before = ctx.parse(&text)?;
    let roster = Roster::from_config(&before.config);
    if roster.find(&id).is_some() {
        bail!("an agent `{id}` already exists");
    }
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut fields = vec![format!("id: {}", q(&id))];
    if id != js_trim(name) {
        fields.push(format!("name: {}", q(js_trim(name))));
    }
    if let Some(ws) = &workspace {
        fields.push(format!("workspace: {}", q(ws)));
    }
    if let Some(dir) = &agent_dir_flag {
        fields.push(format!("agentDir: {}", q(dir)));
    }
    if let Some(m) = &model {
        fields.push(format!("model: {}", q(m)));
    }
    let entry = format!("{{ {} }}", fields.join(", "));
    let mut new = match roster.shape {
        RosterShape::Entries => {
            let body = format!("{{ {} }}", fields[1..].join(", "));
            set_member(&text, &["agents", "entries"], &id, &body)?
        }
        // The implicit `main` agent stays the default once a list exists.
        RosterShape::Unconfigured => {
            let t = append_to_array(&text, &["agents", "list"], "{ id: \"main\", default: true }")?;
            append_to_array(&t, &["agents", "list"], &entry)?
        }
        RosterShape::List => append_to_array(&text, &["agents", "list"], &entry)?,
    };
    for (channel, account) in &binds {
        new = append_to_array(&new, &["bindings"], &binding_json5(&id, channel, account.as_deref()))?;
    }
    let after = commit(ctx, &before, old.as_deref(), &new)?;
    let after_roster = Roster::from_config(&after.config);
    let ws = workspace
        .map(|w| expand_tilde(&w, &ctx.env.home))
        .unwrap_or_else(|| agent_workspace(&after.config, &after_roster, &id, &ctx.env));
    let dir = agent_dir(&after.config, &id, &ctx.env);
    let created = seed_workspace(&ws, js_trim(name))?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if json {
        print_json(&json!({
            "agentId": id, "workspace": ws, "agentDir": dir, "config": ctx.config_path,
            "bindings": binds.iter().map(|(c, a)| json!({"channel": c, "accountId": a})).collect::<Vec<_>>(),
            "createdFiles": created,
        }));
    } else {
        println!("added agent `{id}` to {}", ctx.config_path.display());
        println!("  workspace: {} ({} template file(s) created)", ws.display(), created.len());
        println!("  agentDir:  {}", dir.display());
        for (c, a) in &binds {
            println!("  bound:     {c}{}", a.as_deref().map(|a| format!(":{a}")).unwrap_or_default());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn confirm(question: &str) -> Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

fn delete(ctx: &Context, raw: &str, force: bool, json: bool) -> Result<ExitCode> {
    let id = normalize_agent_id(Some(raw));
    if id != js_trim(raw) {
        eprintln!("note: `{raw}` normalises to `{id}`");
    }
    if id == DEFAULT_AGENT_ID {
        bail!("the `main` agent cannot be deleted");
    }
    let Some(text) = ctx.read_text()? else { bail!("no config at {}", ctx.config_path.display()) };
    let before = ctx.parse(&text)?;
    let roster = Roster::from_config(&before.config);
    if roster.shape == RosterShape::Entries {
        bail!("`agents.entries` rosters are edited by hand for now (remove `agents.entries.{id}`)");
    }
    let Some(index) = before
        .config
        .agents
        .iter()
        .flat_map(|a| a.list.iter().flatten())
        .position(|a| normalize_agent_id(a.id.as_deref()) == id)
    else {
        bail!("no agent `{id}` (agents: {})", roster.ids().join(", "));
    };
    if !force {
        if !std::io::stdin().is_terminal() {
            eprintln!("error: deleting `{id}` needs confirmation; pass --force to delete without a terminal");
            return Ok(ExitCode::FAILURE);
        }
        if !confirm(&format!("Delete agent `{id}`, its bindings, and move its workspace and sessions to the trash?"))? {
            eprintln!("nothing deleted");
            return Ok(ExitCode::FAILURE);
        }
    }
    let ws = agent_workspace(&before.config, &roster, &id, &ctx.env);
    let dir = agent_dir(&before.config, &id, &ctx.env);
    let sessions = sessions_dir(&id, &ctx.env);
    let bound: Vec<usize> = bindings_of(&before.config, &id).into_iter().map(|(i, _)| i).collect();
    let allow_idx: Vec<usize> = before
        .config
        .tools
        .as_ref()
        .and_then(|t| t.agent_to_agent.as_ref())
        .and_then(|a| a.allow.as_ref())
        .map(|l| l.iter().enumerate().filter(|(_, a)| normalize_agent_id(Some(a)) == id).map(|(i, _)| i).collect())
        .unwrap_or_default();
    let mut new = remove_array_elements(&text, &["agents", "list"], &[index])?;
    if !bound.is_empty() {
        new = remove_array_elements(&new, &["bindings"], &bound)?;
    }
    if !allow_idx.is_empty() {
        new = remove_array_elements(&new, &["tools", "agentToAgent", "allow"], &allow_idx)?;
    }
    commit(ctx, &before, Some(&text), &new)?;
    // Move, never delete: the trash is under the state dir, one folder per deletion.
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let trash = ctx.env.state_dir().join("trash").join(format!("{id}-{stamp}"));
    let mut moved = Vec::new();
    for (what, path) in [("workspace", &ws), ("agent", &dir), ("sessions", &sessions)] {
        if path.exists() {
            std::fs::create_dir_all(&trash)?;
            let to = trash.join(what);
            std::fs::rename(path, &to)
                .with_context(|| format!("cannot move {} to {}", path.display(), to.display()))?;
            moved.push(json!({"from": path, "to": to}));
        }
    }
    if json {
        print_json(&json!({
            "agentId": id, "workspace": ws, "agentDir": dir, "sessionsDir": sessions,
            "removedBindings": bound.len(), "removedAllow": allow_idx.len(), "moved": moved,
        }));
    } else {
        println!(
            "deleted agent `{id}`: {} binding(s), {} agentToAgent.allow entr(ies) removed",
            bound.len(),
            allow_idx.len()
        );
        for m in &moved {
            println!("  moved {} -> {}", m["from"].as_str().unwrap_or(""), m["to"].as_str().unwrap_or(""));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn target_agent(roster: &Roster, agent: Option<&str>) -> Result<String> {
    match agent {
        Some(a) if roster.find(a).is_some() => Ok(normalize_agent_id(Some(a))),
        Some(a) => bail!("no agent `{a}` (agents: {})", roster.ids().join(", ")),
        None => Ok(roster.default_agent()),
    }
}

/// Whether binding `b` is a plain channel/account binding equal to `(channel, account)`.
fn same_scope(b: &chela_core::config::schema::Binding, channel: &str, account: Option<&str>) -> bool {
    let m = &b.matcher;
    let plain = m.peer.is_none() && m.guild_id.is_none() && m.team_id.is_none() && m.roles.is_none();
    let ch = normalize_channel(m.channel.as_deref().unwrap_or(""));
    let acct = m.account_id.as_deref().map(js_trim).filter(|a| !a.is_empty()).map(|a| {
        if a == "*" {
            "*".to_string()
        } else {
            normalize_account_id(Some(a))
        }
    });
    let want = account.map(str::to_string);
    plain && ch == channel && (acct == want || (acct.is_none() && want.as_deref() == Some("default")))
}

fn bind(ctx: &Context, agent: Option<&str>, binds: &[String], json: bool) -> Result<ExitCode> {
    let old = ctx.read_text()?;
    let text = old.clone().unwrap_or_else(|| "{\n}\n".into());
    let before = ctx.parse(&text)?;
    let roster = Roster::from_config(&before.config);
    let id = target_agent(&roster, agent)?;
    let mut new = text.clone();
    // What happened to each `--bind`: `added`, `upgraded` (bindings[i] got the account) or `already`.
    let mut done: Vec<serde_json::Value> = Vec::new();
    for spec in binds {
        let (channel, account) = parse_bind(spec)?;
        let current =
            load_str(&new, Some(&ctx.config_path.display().to_string())).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mine = bindings_of(&current.config, &id);
        if mine.iter().any(|(_, b)| same_scope(b, &channel, account.as_deref())) {
            done.push(json!({"bind": spec, "result": "already"}));
            continue;
        }
        // A channel-only binding is upgraded in place when an account is named.
        let upgrade = account.as_ref().and_then(|_| {
            mine.iter().find(|(_, b)| b.matcher.account_id.is_none() && same_scope(b, &channel, None)).map(|(i, _)| *i)
        });
        new = match (upgrade, &account) {
            (Some(i), Some(a)) => {
                done.push(json!({"bind": spec, "result": "upgraded", "index": i}));
                set_member(&new, &["bindings", &i.to_string(), "match"], "accountId", &serde_json::to_string(a)?)?
            }
            _ => {
                done.push(json!({"bind": spec, "result": "added"}));
                append_to_array(&new, &["bindings"], &binding_json5(&id, &channel, account.as_deref()))?
            }
        };
    }
    if new != text {
        commit(ctx, &before, old.as_deref(), &new)?;
    }
    if json {
        print_json(&json!({"agentId": id, "binds": done}));
        return Ok(ExitCode::SUCCESS);
    }
    for d in &done {
        let spec = d["bind"].as_str().unwrap_or_default();
        match d["result"].as_str() {
            Some("already") => println!("`{id}` is already bound to {spec}"),
            Some("upgraded") => println!("upgraded bindings[{}] of `{id}` to {spec}", d["index"]),
            _ => println!("bound `{id}` to {spec}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn unbind(ctx: &Context, agent: Option<&str>, binds: &[String], all: bool, json: bool) -> Result<ExitCode> {
    let Some(text) = ctx.read_text()? else { bail!("no config at {}", ctx.config_path.display()) };
    let before = ctx.parse(&text)?;
    let roster = Roster::from_config(&before.config);
    let id = target_agent(&roster, agent)?;
    let specs: Vec<(String, Option<String>)> = binds.iter().map(|b| parse_bind(b)).collect::<Result<_>>()?;
    let remove: Vec<usize> = bindings_of(&before.config, &id)
        .into_iter()
        .filter(|(_, b)| all || specs.iter().any(|(c, a)| same_scope(b, c, a.as_deref())))
        .map(|(i, _)| i)
        .collect();
    if !remove.is_empty() {
        let new = remove_array_elements(&text, &["bindings"], &remove)?;
        commit(ctx, &before, Some(&text), &new)?;
    }
    if json {
        print_json(&json!({"agentId": id, "removed": remove.len(), "indexes": remove}));
    } else if remove.is_empty() {
        println!("nothing to unbind for `{id}`");
    } else {
        println!("removed {} binding(s) of `{id}`", remove.len());
    }
    Ok(ExitCode::SUCCESS)
}
