//! `chela agents set-identity` (OpenClaw's verb): an agent's name, theme,
//! emoji and avatar written into its config entry's `identity`, from flags
//! or from `IDENTITY.md` (core's `identity` reads it; flags win over the
//! file). The agent is `--agent`, else the one whose workspace is
//! `--workspace` (or the identity file's folder, or the current directory).
//!
//! Must not: move an agent's workspace (`--workspace` only selects), or
//! write an avatar path that leaves the workspace.

use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use chela_core::config::paths::{agent_workspace, expand_tilde};
use chela_core::config::schema::Identity;
use chela_core::identity::parse_identity_markdown;
use chela_core::ids::normalize_agent_id;
use chela_core::roster::Roster;
use serde_json::{json, Value};

use crate::context::Context;
use crate::output::print_json;

/// OpenClaw's limit for a local avatar image.
const MAX_AVATAR_BYTES: u64 = 2 * 1024 * 1024;
/// OpenClaw's limit for `IDENTITY.md`.
const MAX_IDENTITY_BYTES: u64 = 4 * 1024 * 1024;

#[derive(clap::Args, Debug)]
pub struct SetIdentityArgs {
    /// The agent (default: the one whose workspace is --workspace or the current directory).
    #[arg(long)]
    agent: Option<String>,
    /// Select the agent by its workspace, and read IDENTITY.md there.
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// Read the identity from this file instead of <workspace>/IDENTITY.md.
    #[arg(long, value_name = "PATH")]
    identity_file: Option<PathBuf>,
    /// Read IDENTITY.md even when fields are given (the flags win).
    #[arg(long)]
    from_identity: bool,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    theme: Option<String>,
    #[arg(long)]
    emoji: Option<String>,
    /// A workspace-relative image path, an http(s) URL or a data: URI.
    #[arg(long)]
    avatar: Option<String>,
    #[arg(long)]
    json: bool,
}

fn one_line(v: &Option<String>) -> Option<String> {
    v.as_deref().map(|s| s.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|s| !s.is_empty())
}

fn absolute(ctx: &Context, p: &Path) -> PathBuf {
    let p = expand_tilde(&p.to_string_lossy(), &ctx.env.home);
    let p = if p.is_absolute() { p } else { std::env::current_dir().unwrap_or_default().join(p) };
    std::fs::canonicalize(&p).unwrap_or(p)
}

pub fn run(ctx: &Context, args: &SetIdentityArgs) -> Result<ExitCode> {
    let text = ctx.read_text()?.unwrap_or_else(|| "{}".into());
    let cfg = ctx.parse(&text)?.config;
    let roster = Roster::from_config(&cfg);
    let flags = Identity {
        name: one_line(&args.name),
        theme: one_line(&args.theme),
        emoji: one_line(&args.emoji),
        avatar: one_line(&args.avatar),
    };
    let explicit = flags.name.is_some() || flags.theme.is_some() || flags.emoji.is_some() || flags.avatar.is_some();
    let wants_file = args.from_identity || args.identity_file.is_some() || !explicit;
    // Where the identity (and, without --agent, the agent) is looked for.
    let locator: Option<PathBuf> = match (&args.identity_file, &args.workspace) {
        (Some(f), _) => Some(absolute(ctx, f).parent().map(Path::to_path_buf).unwrap_or_default()),
        (None, Some(w)) => Some(absolute(ctx, w)),
        (None, None) => None,
    };
    let workspace_of = |id: &str| absolute(ctx, &agent_workspace(&cfg, &roster, id, &ctx.env));
    let agent = match &args.agent {
        Some(a) => {
            let id = normalize_agent_id(Some(a));
            if roster.find(&id).is_none() {
                bail!("agent `{id}` not found (create it with `chela agents add`)");
            }
            id
        }
        None => {
            let dir = locator.clone().unwrap_or_else(|| absolute(ctx, Path::new(".")));
            let matches: Vec<String> = roster.ids().into_iter().filter(|id| workspace_of(id) == dir).collect();
            match &matches[..] {
                [one] => one.clone(),
                [] => bail!("no agent's workspace is {} (pass --agent)", dir.display()),
                many => bail!("several agents use {}: {} (pass --agent)", dir.display(), many.join(", ")),
            }
        }
    };
    let workspace = workspace_of(&agent);
    let mut from_file = None;
    if wants_file {
        let path = match &args.identity_file {
            Some(f) => absolute(ctx, f),
            None => locator.clone().unwrap_or_else(|| workspace.clone()).join("IDENTITY.md"),
        };
        let read = std::fs::metadata(&path).and_then(|m| {
            if m.len() > MAX_IDENTITY_BYTES {
                Err(std::io::Error::other("larger than 4 MiB"))
            } else {
                std::fs::read_to_string(&path)
            }
        });
        let body = read.with_context(|| format!("cannot read {}", path.display()))?;
        match parse_identity_markdown(&body) {
            Some(id) => from_file = Some((path, id)),
            None if explicit => {}
            None => {
                bail!("no identity data found in {} (fill in its `- Name:` … lines, or pass --name)", path.display())
            }
        }
    }
    let file_identity = from_file.as_ref().map(|(_, i)| i.clone()).unwrap_or_default();
    let incoming = Identity {
        name: flags.name.or(file_identity.name),
        theme: flags.theme.or(file_identity.theme),
        emoji: flags.emoji.or(file_identity.emoji),
        avatar: flags.avatar.or(file_identity.avatar),
    };
    if let Some(a) = &incoming.avatar {
        check_avatar(a, &workspace)?;
    }
    // Merged over what the entry has: fields not given stay.
    let existing = cfg.agent(&agent).and_then(|(_, a)| a.identity.clone()).unwrap_or_default();
    let merged = Identity {
        name: incoming.name.or(existing.name),
        theme: incoming.theme.or(existing.theme),
        emoji: incoming.emoji.or(existing.emoji),
        avatar: incoming.avatar.or(existing.avatar),
    };
    let mut value = serde_json::Map::new();
    for (k, v) in
        [("name", &merged.name), ("theme", &merged.theme), ("emoji", &merged.emoji), ("avatar", &merged.avatar)]
    {
        if let Some(v) = v {
            value.insert(k.into(), json!(v));
        }
    }
    let mut segs = match cfg.agent(&agent) {
        Some((path, _)) => crate::config::segments(&path)?,
        // The implicit `main` of a config without a roster gets its entry (the roster stays `main` alone).
        None if cfg.agents.as_ref().and_then(|a| a.list.as_ref()).is_none() => {
            vec!["agents".into(), "entries".into(), agent.clone()]
        }
        None => bail!("agent `{agent}` has no entry in agents.list to write to (add one with `chela agents add`)"),
    };
    segs.push("identity".into());
    crate::config::set_value(ctx, &segs, &Value::Object(value.clone()))?;
    if args.json {
        print_json(&json!({
            "agentId": agent,
            "identity": value,
            "workspace": from_file.as_ref().and_then(|(p, _)| p.parent()).map(Path::to_path_buf).or(locator),
            "storedWorkspace": workspace,
            "identityFile": from_file.as_ref().map(|(p, _)| p),
        }));
    } else {
        println!("updated {}", ctx.config_path.display());
        println!("agent: {agent}");
        for (k, v) in &value {
            println!("{k}: {}", v.as_str().unwrap_or(""));
        }
        println!("workspace: {}", workspace.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// An avatar is an http(s) URL, a data: URI, or an image inside the workspace (at most 2 MiB).
fn check_avatar(avatar: &str, workspace: &Path) -> Result<()> {
    let lower = avatar.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("data:") {
        return Ok(());
    }
    let rel = Path::new(avatar);
    if rel.is_absolute() || rel.components().any(|c| matches!(c, Component::ParentDir | Component::Prefix(_))) {
        bail!("--avatar `{avatar}`: a local avatar is a path inside the workspace ({})", workspace.display());
    }
    let path = workspace.join(rel);
    if let Ok(real) = std::fs::canonicalize(&path) {
        let root = std::fs::canonicalize(workspace).unwrap_or_else(|_| workspace.to_path_buf());
        if !real.starts_with(&root) {
            bail!("--avatar `{avatar}` leads outside the workspace ({})", real.display());
        }
        let size = std::fs::metadata(&real).map(|m| m.len()).unwrap_or(0);
        if size > MAX_AVATAR_BYTES {
            bail!("--avatar `{avatar}` is {size} bytes; a local avatar may be at most 2 MiB");
        }
    }
    Ok(())
}
