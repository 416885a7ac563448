//! `chela send` and `chela sessions`: through a running gateway's control
//! API when one answers on the configured port, else directly on the files.
//!
//! Must not: assemble a runtime differently from the gateway (offline `send` uses
//! `chela_gateway::agent_runtime`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use chela_agent::store::SessionStore;
use chela_agent::{FileStore, Inbound, Origin, Providers};
use chela_core::ids::normalize_agent_id;
use chela_core::roster::Roster;
use chela_core::routing::SessionTarget;
use chela_core::session_key::parse_agent_session_key;
use chela_core::snapshot::SnapshotCell;
use serde_json::{json, Value};

use crate::context::Context;
use crate::output::print_json;

#[derive(clap::Args, Debug)]
pub struct SendArgs {
    /// The agent to talk to.
    #[arg(long)]
    agent: String,
    /// Session key (default: the agent's main session).
    #[arg(long)]
    session: Option<String>,
    /// The message.
    message: String,
    #[arg(long)]
    json: bool,
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

/// A control API call to a gateway on loopback; `None` when none is listening.
fn control(
    ctx: &Context,
    ctx_cfg: &chela_core::config::Config,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Option<Value>> {
    let addr = crate::gateway::listen_addr(ctx_cfg, None, Some("loopback"))?;
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_millis(300))
        .timeout(Duration::from_secs(600))
        .no_proxy()
        .build()
        .context("cannot build an HTTP client")?;
    let mut request = client.request(method, format!("http://{addr}{path}"));
    if let Some(token) = crate::gateway::client_token(ctx, ctx_cfg) {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = match request.send() {
        Ok(r) => r,
        // Nobody listening: the caller works on the files instead.
        Err(e) if e.is_connect() => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("gateway at {addr}")),
    };
    let status = response.status();
    let text = response.text().with_context(|| format!("reading the answer of the gateway at {addr}"))?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
    if !status.is_success() {
        bail!("gateway at {addr} answered {status}: {}", v.get("error").and_then(Value::as_str).unwrap_or(&text));
    }
    Ok(Some(v))
}

pub fn send(ctx: &Context, args: &SendArgs) -> Result<ExitCode> {
    let loaded = ctx.load()?;
    let cfg = loaded.config;
    let agent = normalize_agent_id(Some(&args.agent));
    let mut body = json!({"agentId": agent, "text": args.message});
    if let Some(s) = &args.session {
        body["sessionKey"] = json!(s);
    }
    let outcome = match control(ctx, &cfg, reqwest::Method::POST, "/api/v1/send", Some(&body))? {
        Some(v) => v,
        None => {
            if Roster::from_config(&cfg).find(&agent).is_none() {
                bail!("unknown agent `{}` (see `chela agents list`)", args.agent);
            }
            let target = SessionTarget::requested(&cfg, &agent, args.session.as_deref())?;
            let rt = crate::plugins::runtime()?;
            rt.block_on(async {
                let plugins = Arc::new(crate::plugins::load(ctx, &cfg).await?);
                let cell = SnapshotCell::of(Arc::new(cfg.clone()));
                let snap = cell.load();
                let vars: Arc<chela_core::config::EnvVars> = Arc::new(|k: &str| std::env::var(k).ok());
                let providers = Providers::from_config(&snap.config, vars.clone());
                // Without a gateway there is no chat to deliver to: what sub-agents
                // report back is printed after the reply.
                let announced = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
                let sink = announced.clone();
                let announcer: Arc<chela_agent::runtime::Announcer> = Arc::new(move |a: chela_agent::Announcement| {
                    sink.lock().unwrap_or_else(|p| p.into_inner()).push(a.text)
                });
                let runtime =
                    chela_gateway::agent_runtime(cell, ctx.env.clone(), plugins, providers, vars, Some(announcer));
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
                            delivery: None,
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
    let store = |agent: &str| -> Result<FileStore> {
        let dir = chela_agent::runtime::store_dir(&cfg, &ctx.env, agent);
        FileStore::open(&dir).with_context(|| format!("sessions of agent `{agent}`"))
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
