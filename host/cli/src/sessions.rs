//! `chela send` and `chela sessions`: through a running gateway's control
//! API when one answers on the configured port, else directly on the files.
//!
//! Must not: assemble a runtime differently from the gateway (offline `send` uses
//! `chela_gateway::agent_runtime`).

use std::io::Read as _;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use chela_agent::{Inbound, Origin, Providers};
use chela_core::ids::normalize_agent_id;
use chela_core::roster::Roster;
use chela_core::routing::SessionTarget;
use chela_core::session_key::parse_agent_session_key;
use chela_core::snapshot::SnapshotCell;
use serde_json::json;

use crate::context::Context;
use crate::output::print_json;

#[derive(clap::Args, Debug)]
pub struct SendArgs {
    /// The agent to talk to (default: the session key's agent, else the default agent).
    #[arg(long)]
    agent: Option<String>,
    /// Session key (default: the agent's main session).
    #[arg(long, alias = "session-key")]
    session: Option<String>,
    /// The message.
    message: String,
    #[arg(long)]
    json: bool,
}

/// `chela agent`: one turn, OpenClaw's `openclaw agent` flags.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("body").required(true).args(["message", "message_file"])))]
pub struct AgentArgs {
    /// The message body.
    #[arg(short, long)]
    message: Option<String>,
    /// Read the message body from a UTF-8 file (`-`: stdin).
    #[arg(long, value_name = "PATH")]
    message_file: Option<std::path::PathBuf>,
    /// The agent (default: the session key's agent, else the default agent).
    #[arg(long)]
    agent: Option<String>,
    /// Session key: `agent:<id>:<key>`, or a key of `--agent` (default: its main session).
    #[arg(long)]
    session_key: Option<String>,
    #[arg(long)]
    json: bool,
}

/// The most a `--message-file` may hold (OpenClaw's limit).
const MAX_MESSAGE_FILE: u64 = 4 * 1024 * 1024;

pub fn agent(ctx: &Context, args: &AgentArgs) -> Result<ExitCode> {
    let message = match (&args.message, &args.message_file) {
        (Some(m), _) => m.clone(),
        (None, Some(path)) => {
            let mut bytes = Vec::new();
            let read = if path.as_os_str() == "-" {
                std::io::Read::take(std::io::stdin(), MAX_MESSAGE_FILE + 1).read_to_end(&mut bytes)
            } else {
                std::fs::File::open(path)
                    .and_then(|f| std::io::Read::take(f, MAX_MESSAGE_FILE + 1).read_to_end(&mut bytes))
            };
            read.with_context(|| format!("cannot read {}", path.display()))?;
            if bytes.len() as u64 > MAX_MESSAGE_FILE {
                bail!("{} is larger than 4 MiB", path.display());
            }
            let text = String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8", path.display()))?;
            text.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(text)
        }
        (None, None) => bail!("pass --message or --message-file"),
    };
    if message.trim().is_empty() {
        bail!("the message is empty");
    }
    let send_args = SendArgs { agent: args.agent.clone(), session: args.session_key.clone(), message, json: args.json };
    send(ctx, &send_args)
}

/// The agent a turn is for: `--agent`, else the session key's, else the
/// default; both given must agree.
fn turn_agent(roster: &Roster, agent: Option<&str>, session: Option<&str>) -> Result<String> {
    let from_key = session.and_then(parse_agent_session_key).map(|p| p.agent_id);
    match (agent.map(|a| normalize_agent_id(Some(a))), from_key) {
        (Some(a), Some(k)) if a != k => bail!("--agent `{a}` does not match the session key's agent `{k}`"),
        (Some(a), _) => Ok(a),
        (None, Some(k)) => Ok(k),
        (None, None) => Ok(roster.default_agent()),
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum SessionsCommand {
    /// Sessions of one agent, or of all.
    List {
        #[arg(long, conflicts_with = "all_agents")]
        agent: Option<String>,
        #[arg(long)]
        all_agents: bool,
        /// Only sessions active in the last MIN minutes.
        #[arg(long, value_name = "MIN")]
        active: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// One session's transcript.
    Show {
        key: String,
        #[arg(long)]
        json: bool,
    },
}

pub fn send(ctx: &Context, args: &SendArgs) -> Result<ExitCode> {
    let loaded = ctx.load()?;
    let cfg = loaded.config;
    let agent = turn_agent(&Roster::from_config(&cfg), args.agent.as_deref(), args.session.as_deref())?;
    let mut body = json!({"agentId": agent, "text": args.message});
    if let Some(s) = &args.session {
        body["sessionKey"] = json!(s);
    }
    let outcome = match crate::client::control(ctx, &cfg, reqwest::Method::POST, "/api/v1/send", Some(&body))? {
        Some(v) => v,
        None => {
            if Roster::from_config(&cfg).find(&agent).is_none() {
                bail!("unknown agent `{agent}` (see `chela agents list`)");
            }
            let target = SessionTarget::requested(&cfg, &agent, args.session.as_deref())?;
            let rt = crate::plugins::runtime()?;
            rt.block_on(async {
                let plugins = Arc::new(crate::plugins::load(ctx, &cfg).await?);
                let cell = SnapshotCell::of(Arc::new(cfg.clone()));
                let snap = cell.load();
                let vars = ctx.vars(&snap.config);
                let providers = Providers::from_config(&snap.config, vars.clone());
                // Without a gateway there is no chat to deliver to: what sub-agents
                // report back is printed after the reply.
                let announced = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
                let sink = announced.clone();
                let announcer: Arc<chela_agent::runtime::Announcer> = Arc::new(move |a: chela_agent::Announcement| {
                    sink.lock().unwrap_or_else(|p| p.into_inner()).push(a.text)
                });
                let database = chela_gateway::open_database(&snap.config, &ctx.env).await?;
                let services = chela_gateway::RuntimeServices {
                    announcer: Some(announcer),
                    messaging: None,
                    database,
                    loops: None,
                    automations: None,
                    exec_approvals: None,
                    approvals: None,
                };
                let runtime = chela_gateway::agent_runtime(cell, ctx.env.clone(), plugins, providers, vars, services);
                let turn = runtime
                    .run(
                        &snap,
                        Inbound {
                            target,
                            text: args.message.clone(),
                            sender_id: None,
                            origin: Origin { provider: Some("cli".into()), ..Origin::default() },
                            extra_system: None,
                            message_ref: None,
                            model_override: None,
                            sampling: None,
                            scheduled: None,
                            media: Vec::new(),
                            delivery: None,
                            live_tool_summaries: false,
                            exec_tightening: Default::default(),
                        },
                    )
                    .await?;
                // Sub-agents and agent-to-agent replies this turn started finish before we exit.
                runtime.settle().await;
                let mut value = serde_json::to_value(turn)?;
                let announced = std::mem::take(&mut *announced.lock().unwrap_or_else(|p| p.into_inner()));
                if !announced.is_empty() {
                    value["announcements"] = json!(announced);
                }
                Ok::<_, anyhow::Error>(value)
            })?
        }
    };
    if args.json {
        print_json(&outcome);
    } else {
        println!("{}", outcome["reply"].as_str().unwrap_or_default());
        for a in outcome["announcements"].as_array().into_iter().flatten() {
            println!("\n{}", a.as_str().unwrap_or_default());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(ctx: &Context, cmd: SessionsCommand) -> Result<ExitCode> {
    let loaded = ctx.load()?;
    let cfg = loaded.config;
    let roster = Roster::from_config(&cfg);
    let database = crate::context::database(&cfg, &ctx.env)?;
    let store = |agent: &str| {
        let durability = chela_agent::store::Durability::default();
        chela_agent::runtime::open_store(&cfg, &ctx.env, agent, database.as_ref(), durability)
            .with_context(|| format!("sessions of agent `{agent}`"))
    };
    match cmd {
        SessionsCommand::List { agent, all_agents, active, json } => {
            let agents = match (&agent, all_agents) {
                (Some(a), _) => vec![normalize_agent_id(Some(a))],
                (None, true) => roster.ids(),
                (None, false) => vec![roster.default_agent()],
            };
            let now = chrono_now_ms();
            let mut rows = Vec::new();
            for a in agents {
                for (key, e) in store(&a)?.list()? {
                    if active.is_some_and(|m| now - e.updated_at > (m as i64) * 60_000) {
                        continue;
                    }
                    rows.push(json!({"agentId": a, "key": key, "sessionId": e.session_id, "updatedAt": e.updated_at,
                        "chatType": e.chat_type, "totalTokens": e.total_tokens}));
                }
            }
            if json {
                print_json(&json!({ "sessions": rows }));
            } else if rows.is_empty() {
                println!("no sessions");
            } else {
                for r in rows {
                    let age = (now - r["updatedAt"].as_i64().unwrap_or(now)) / 60_000;
                    println!(
                        "{:<10} {:<50} {:>6} min ago  {}",
                        r["agentId"].as_str().unwrap_or(""),
                        r["key"].as_str().unwrap_or(""),
                        age,
                        r["sessionId"].as_str().unwrap_or("")
                    );
                }
            }
        }
        SessionsCommand::Show { key, json } => {
            let Some(parsed) = parse_agent_session_key(&key) else {
                bail!("`{key}` is not an agent session key (agent:<id>:…)");
            };
            let s = store(&parsed.agent_id)?;
            let Some(entry) = s.get(&key)? else { bail!("agent `{}` has no session `{key}`", parsed.agent_id) };
            let t = s.transcript(&entry)?;
            if json {
                print_json(&json!({"key": key, "entry": entry, "messages": t.messages}));
            } else {
                for m in &t.messages {
                    let role = match m.as_ref() {
                        chela_agent::store::Message::User { .. } => "user",
                        chela_agent::store::Message::Assistant { .. } => "assistant",
                        chela_agent::store::Message::ToolResult { .. } => "tool",
                    };
                    let calls: Vec<String> = m.tool_calls().iter().map(|(_, n, a)| format!("{n}({a})")).collect();
                    let text = if calls.is_empty() { m.text() } else { format!("calls {}", calls.join(", ")) };
                    println!("{role:>9}: {text}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
