//! `chela migrate openclaw [--from DIR] [--dry-run] [--json]`: brings an
//! OpenClaw 2026.9.6 install over — its `openclaw.json` (chela reads it as
//! is), every agent's sessions and transcripts (`agents/<id>/agent/
//! openclaw-agent.sqlite`: `session_nodes`, `transcript_events`), its auth
//! profiles (`auth_profile_store`, as `auth-profiles.json`), the channels'
//! approved senders (`state/openclaw.sqlite`: `channel_pairing_allow_entries`),
//! carries OpenClaw's `.env`, and says which `OPENCLAW_*` variables of this environment chela names
//! otherwise. Every item is reported carried, skipped (with why) or failed
//! (with its path); one failure never stops the rest.
//!
//! Must not: modify the source directory (databases are copied to a temp dir
//! and read there), overwrite what chela already has (a session key chela
//! knows, an existing config or auth file), or carry a session twice (a
//! carried session records `migratedFrom` and is skipped on a second run).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use chela_agent::store::{FileStore, SessionStore};
use chela_core::config::paths::{agent_dir, agent_store_dir};
use chela_core::config::{load_str, Config};
use chela_core::session_key::SessionKey;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use serde_json::{json, Value as Json};

use crate::context::Context;
use crate::output::print_json;

/// chela's names for the `OPENCLAW_*` variables it reads under another name.
const ENV_NAMES: &[(&str, &str)] = &[
    ("OPENCLAW_STATE_DIR", "CHELA_STATE_DIR"),
    ("OPENCLAW_CONFIG_PATH", "CHELA_CONFIG_PATH"),
    ("OPENCLAW_PROFILE", "--profile"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Outcome {
    Carried,
    Skipped,
    Failed,
}

#[derive(Debug, Serialize)]
struct Item {
    what: String,
    outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    why: Option<String>,
}

struct Migration<'a> {
    ctx: &'a Context,
    from: PathBuf,
    dry_run: bool,
    items: Vec<Item>,
    /// Copies of the source databases, read here.
    scratch: tempfile::TempDir,
}

impl Migration<'_> {
    fn carried(&mut self, what: impl Into<String>, to: impl Into<String>) {
        self.items.push(Item { what: what.into(), outcome: Outcome::Carried, to: Some(to.into()), why: None });
    }

    fn skipped(&mut self, what: impl Into<String>, why: impl Into<String>) {
        self.items.push(Item { what: what.into(), outcome: Outcome::Skipped, to: None, why: Some(why.into()) });
    }

    fn failed(&mut self, what: impl Into<String>, why: impl std::fmt::Display) {
        self.items.push(Item { what: what.into(), outcome: Outcome::Failed, to: None, why: Some(why.to_string()) });
    }
}

pub fn run(ctx: &Context, from: Option<PathBuf>, dry_run: bool, json: bool) -> Result<ExitCode> {
    let explicit_from = from.is_some();
    let from = from
        .or_else(|| std::env::var_os("OPENCLAW_STATE_DIR").map(PathBuf::from))
        .unwrap_or_else(|| ctx.env.home.join(".openclaw"));
    if !from.is_dir() {
        anyhow::bail!("{} is not an OpenClaw state dir (set --from)", from.display());
    }
    let scratch = tempfile::tempdir().context("cannot make a scratch dir")?;
    let mut m = Migration { ctx, from, dry_run, items: Vec::new(), scratch };
    let cfg = config(&mut m, explicit_from);
    for (agent, db) in agent_databases(&m.from) {
        match open_copy(&m, &db) {
            Ok(conn) => {
                sessions(&mut m, &cfg, &agent, &conn);
                auth_profiles(&mut m, &cfg, &agent, &conn);
            }
            Err(e) => m.failed(format!("agent `{agent}`: {}", db.display()), e),
        }
    }
    let shared = m.from.join("state/openclaw.sqlite");
    if shared.exists() {
        match open_copy(&m, &shared) {
            Ok(conn) => {
                approved_senders(&mut m, &conn);
                pending_requests(&mut m, &conn);
            }
            Err(e) => m.failed(shared.display().to_string(), e),
        }
    }
    dotenv(&mut m);
    environment(&mut m);
    let failed = m.items.iter().filter(|i| i.outcome == Outcome::Failed).count();
    let carried = m.items.iter().filter(|i| i.outcome == Outcome::Carried).count();
    if json {
        print_json(&json!({"from": m.from, "dryRun": dry_run, "carried": carried, "failed": failed, "items": m.items}));
    } else {
        for i in &m.items {
            let (tag, rest) = match i.outcome {
                Outcome::Carried if dry_run => ("would carry", i.to.as_deref().map(|t| format!(" -> {t}"))),
                Outcome::Carried => ("carried", i.to.as_deref().map(|t| format!(" -> {t}"))),
                Outcome::Skipped => ("skipped", i.why.as_deref().map(|w| format!(": {w}"))),
                Outcome::Failed => ("FAILED", i.why.as_deref().map(|w| format!(": {w}"))),
            };
            println!("{tag:<11} {}{}", i.what, rest.unwrap_or_default());
        }
        let verb = if dry_run { "would carry" } else { "carried" };
        println!("migrate: {verb} {carried} item(s) from {}, {failed} failed", m.from.display());
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `openclaw.json` becomes chela's config unless chela has one, with each
/// listed agent that used OpenClaw's default workspace (`<stateDir>/workspace`,
/// `<stateDir>/workspace-<id>`) pinned to it, comments kept. Returns the
/// config chela will run with (sessions are placed by it).
fn config(m: &mut Migration, explicit_from: bool) -> Config {
    let source = match std::env::var_os("OPENCLAW_CONFIG_PATH") {
        Some(p) if !explicit_from => PathBuf::from(p),
        _ => m.from.join("openclaw.json"),
    };
    let dest = m.ctx.config_path.clone();
    let existing = m.ctx.read_text().ok().flatten();
    let text = match std::fs::read_to_string(&source) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            m.skipped(source.display().to_string(), "no OpenClaw config there");
            None
        }
        Err(e) => {
            m.failed(source.display().to_string(), e);
            None
        }
    };
    let what = format!("config {}", source.display());
    let mut carried = None;
    match (&text, &existing) {
        (Some(_), Some(_)) => {
            m.skipped(what, format!("chela already has a config at {}; left as it is", dest.display()))
        }
        (Some(t), None) => match load_str(t, Some(&source.display().to_string())) {
            Err(e) => m.failed(what, format!("chela cannot load it: {e}")),
            Ok(loaded) => {
                let (t, pinned) = pin_workspaces(&m.from, t, &loaded.config);
                for (agent, ws) in &pinned {
                    m.carried(
                        format!("agent `{agent}`: workspace"),
                        format!("{ws} (set in the config: OpenClaw's default)"),
                    );
                }
                let written = if m.dry_run { Ok(()) } else { m.ctx.write_config(None, &t) };
                match written {
                    Ok(()) => m.carried(what, dest.display().to_string()),
                    Err(e) => m.failed(what, format!("{e:#}")),
                }
                carried = Some(t);
            }
        },
        (None, _) => {}
    }
    // Sessions go where the config chela will run with puts them.
    let run_with = existing.or(carried).unwrap_or_else(|| "{}".into());
    load_str(&run_with, None).map(|l| l.config).unwrap_or_default()
}

/// Sets `workspace` on each `agents.list[]` entry that has none and whose
/// OpenClaw default workspace exists under `from`.
fn pin_workspaces(from: &Path, text: &str, cfg: &Config) -> (String, Vec<(String, String)>) {
    let roster = chela_core::roster::Roster::from_config(cfg);
    let defaults_set = cfg.agent_defaults().and_then(|d| d.workspace.as_ref()).is_some();
    let mut text = text.to_string();
    let mut pinned = Vec::new();
    let list = cfg.agents.as_ref().and_then(|a| a.list.as_ref());
    for (i, entry) in list.into_iter().flatten().enumerate() {
        let Some(id) = entry.id.as_deref().or(entry.agent_id.as_deref()) else { continue };
        let id = chela_core::ids::normalize_agent_id(Some(id));
        if entry.workspace.is_some() || (defaults_set && id == roster.default_agent()) {
            continue;
        }
        let ws =
            if id == roster.default_agent() { from.join("workspace") } else { from.join(format!("workspace-{id}")) };
        if !ws.is_dir() {
            continue;
        }
        let value = serde_json::to_string(&ws.display().to_string()).unwrap_or_default();
        if let Ok(t) =
            chela_core::config::edit::set_member(&text, &["agents", "list", &i.to_string()], "workspace", &value)
        {
            text = t;
            pinned.push((id, ws.display().to_string()));
        }
    }
    (text, pinned)
}

/// `agents/<id>/agent/openclaw-agent.sqlite` of every agent dir, by agent id.
fn agent_databases(from: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(from.join("agents"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let db = e.path().join("agent/openclaw-agent.sqlite");
            let id = chela_core::ids::normalize_agent_id(Some(&e.file_name().to_string_lossy()));
            db.exists().then_some((id, db))
        })
        .collect();
    out.sort();
    out
}

/// Copies a database (with its WAL) into the scratch dir and opens the copy
/// read-only: opening the original, even read-only, may write its `-shm`.
fn open_copy(m: &Migration, db: &Path) -> Result<Connection, String> {
    let dir = m.scratch.path().join(rand_suffix().to_string());
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let name = db.file_name().ok_or("no file name")?.to_owned();
    for suffix in ["", "-wal"] {
        let mut src = db.as_os_str().to_owned();
        src.push(suffix);
        let src = PathBuf::from(src);
        if src.exists() {
            let mut dst = name.clone();
            dst.push(suffix);
            std::fs::copy(&src, dir.join(dst)).map_err(|e| format!("cannot read {}: {e}", src.display()))?;
        }
    }
    let copy = dir.join(name);
    let conn = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| format!("{}: not an SQLite database: {e}", db.display()))?;
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
        .map_err(|e| format!("{}: not an SQLite database: {e}", db.display()))?;
    Ok(conn)
}

/// A fresh number per copy (scratch subdirectories).
fn rand_suffix() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// One transcript row as chela's store keeps it: user text as a text part.
fn chela_line(mut event: Json) -> Json {
    if event["type"] == "message" {
        let message = &mut event["message"];
        if let Some(text) = message["content"].as_str().map(str::to_string) {
            message["content"] = json!([{"type": "text", "text": text}]);
        }
    }
    event
}

fn sessions(m: &mut Migration, cfg: &Config, agent: &str, conn: &Connection) {
    let rows = conn
        .prepare(
            "SELECT session_key, current_session_id, entry_json, updated_at FROM session_nodes ORDER BY updated_at",
        )
        .and_then(|mut q| {
            q.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))
            })?
            .collect::<Result<Vec<_>, _>>()
        });
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return m.failed(format!("agent `{agent}`: sessions"), e),
    };
    let dir = agent_store_dir(cfg, &m.ctx.env, agent);
    let store = match FileStore::open(&dir) {
        Ok(s) => s,
        Err(e) => return m.failed(format!("agent `{agent}`: chela's sessions"), e),
    };
    for (key, session_id, entry_json, updated_at) in rows {
        let what = format!("session {key}");
        let Some(target) = SessionKey::from_openclaw(agent, &key) else {
            m.skipped(what, format!("not a session key of agent `{agent}`"));
            continue;
        };
        // The id names the transcript file: nothing but a plain name.
        if session_id.is_empty() || !session_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            m.skipped(what, format!("session id `{session_id}` is not a plain name"));
            continue;
        }
        let origin = format!("openclaw:{session_id}");
        match store.get(target.as_str()) {
            Ok(Some(e)) if e.extra.get("migratedFrom").and_then(Json::as_str) == Some(origin.as_str()) => {
                m.skipped(what, "already migrated");
                continue;
            }
            Ok(Some(_)) => {
                m.skipped(what, format!("chela already has a session `{target}`; left as it is"));
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                m.failed(what, e);
                continue;
            }
        }
        let lines = match transcript(conn, &session_id) {
            Ok(l) => l,
            Err(e) => {
                m.failed(what, e);
                continue;
            }
        };
        let to = format!("{target} ({} transcript entries, {})", lines.len(), dir.display());
        if m.dry_run {
            m.carried(what, to);
            continue;
        }
        let openclaw: Json = serde_json::from_str(&entry_json).unwrap_or(Json::Null);
        let written = store
            .upsert(target.as_str(), &mut |e| {
                e.session_id = session_id.clone();
                e.updated_at = updated_at;
                e.session_started_at = openclaw["sessionStartedAt"].as_i64().or(e.session_started_at);
                e.chat_type = openclaw["chatType"].as_str().map(str::to_string).or(e.chat_type.take());
                e.extra.insert("migratedFrom".into(), json!(origin));
            })
            .and_then(|entry| {
                let cwd = openclaw["cwd"].as_str().unwrap_or_default().to_string();
                store.append(&entry, &cwd, &lines)
            });
        match written {
            Ok(()) => m.carried(what, to),
            Err(e) => m.failed(what, e),
        }
    }
}

/// A session's transcript rows after its header, in order (`event_zstd` rows decompressed).
fn transcript(conn: &Connection, session_id: &str) -> Result<Vec<Json>, String> {
    let mut q = conn
        .prepare("SELECT seq, event_json, event_zstd FROM transcript_events WHERE session_id = ?1 ORDER BY seq")
        .map_err(|e| e.to_string())?;
    let rows = q
        .query_map([session_id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, Option<Vec<u8>>>(2)?))
        })
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, text, zstd) = row.map_err(|e| e.to_string())?;
        let text = match (text, zstd) {
            (Some(t), _) => t,
            (None, Some(z)) => {
                let mut raw = Vec::new();
                let mut decoder = ruzstd::decoding::StreamingDecoder::new(z.as_slice())
                    .map_err(|e| format!("transcript row {seq}: {e}"))?;
                std::io::Read::read_to_end(&mut decoder, &mut raw).map_err(|e| format!("transcript row {seq}: {e}"))?;
                String::from_utf8(raw).map_err(|e| format!("transcript row {seq}: {e}"))?
            }
            (None, None) => return Err(format!("transcript row {seq} is empty")),
        };
        let event: Json = serde_json::from_str(&text).map_err(|e| format!("transcript row {seq}: {e}"))?;
        if event["type"] != "session" {
            out.push(chela_line(event));
        }
    }
    Ok(out)
}

/// `auth_profile_store` (`primary`): chela's `<agentDir>/auth-profiles.json`, unless there is one.
fn auth_profiles(m: &mut Migration, cfg: &Config, agent: &str, conn: &Connection) {
    let stored = conn.query_row("SELECT store_json FROM auth_profile_store WHERE store_key = 'primary'", [], |r| {
        r.get::<_, String>(0)
    });
    let json = match stored {
        Ok(j) => j,
        Err(rusqlite::Error::QueryReturnedNoRows) => return,
        Err(e) => return m.failed(format!("agent `{agent}`: auth profiles"), e),
    };
    let dest = agent_dir(cfg, agent, &m.ctx.env).join("auth-profiles.json");
    let what = format!("agent `{agent}`: auth profiles");
    if dest.exists() {
        return m.skipped(what, format!("{} exists; left as it is", dest.display()));
    }
    if m.dry_run {
        return m.carried(what, dest.display().to_string());
    }
    let written = dest
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            chela_durable::replace(&dest, json.as_bytes(), chela_durable::Durability::Fsync).map_err(|e| e.to_string())
        })
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())
        });
    match written {
        Ok(()) => m.carried(what, dest.display().to_string()),
        Err(e) => m.failed(what, e),
    }
}

/// `channel_pairing_allow_entries`: each account's approved senders, in their order.
fn approved_senders(m: &mut Migration, conn: &Connection) {
    let rows = conn
        .prepare("SELECT channel_key, account_id, entry FROM channel_pairing_allow_entries ORDER BY channel_key, account_id, sort_order")
        .and_then(|mut q| {
            q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?
                .collect::<Result<Vec<_>, _>>()
        });
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return m.failed("approved senders (channel_pairing_allow_entries)", e),
    };
    let mut by_account: Vec<((String, String), Vec<String>)> = Vec::new();
    for (channel, account, entry) in rows {
        match by_account.iter_mut().find(|(k, _)| k.0 == channel && k.1 == account) {
            Some((_, v)) => v.push(entry),
            None => by_account.push(((channel, account), vec![entry])),
        }
    }
    let pairing = chela_gateway::pairing::Pairing::new(&m.ctx.env.state_dir());
    for ((channel, account), senders) in by_account {
        let what = format!("approved senders of {channel}/{account} ({})", senders.len());
        let to = m.ctx.env.state_dir().join("credentials").display().to_string();
        if m.dry_run {
            m.carried(what, to);
            continue;
        }
        match pairing.allow(&channel, &account, &senders) {
            Ok(0) => m.skipped(what, "already approved in chela"),
            Ok(_) => m.carried(what, to),
            Err(e) => m.failed(what, e),
        }
    }
}

/// `channel_pairing_requests`: codes waiting for approval. Not carried: a
/// code lives an hour, and the sender gets a fresh one from chela with their
/// next message; each account's count is reported.
fn pending_requests(m: &mut Migration, conn: &Connection) {
    let rows = conn
        .prepare(
            "SELECT channel_key, account_id, COUNT(*) FROM channel_pairing_requests GROUP BY channel_key, account_id",
        )
        .and_then(|mut q| {
            q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))?
                .collect::<Result<Vec<_>, _>>()
        });
    match rows {
        Ok(rows) => {
            for (channel, account, n) in rows {
                m.skipped(
                    format!("{n} pending pairing request(s) of {channel}/{account}"),
                    "codes expire within an hour: each sender gets a new code from chela with their next message (`chela pairing list`)",
                );
            }
        }
        Err(e) => m.failed("pending pairing requests (channel_pairing_requests)", e),
    }
}

/// OpenClaw's global `.env` (`<stateDir>/.env`: provider keys, tokens)
/// becomes chela's (read below the process environment, above `env.vars`),
/// kept private; names of the variables it sets are reported, never values.
fn dotenv(m: &mut Migration) {
    let src = m.from.join(".env");
    let Ok(bytes) = std::fs::read(&src) else { return };
    let names: Vec<String> = dotenvy::from_read_iter(bytes.as_slice()).filter_map(|r| r.ok().map(|(k, _)| k)).collect();
    let what = format!(".env ({} variable(s): {})", names.len(), names.join(", "));
    let dest = m.ctx.env.state_dir().join(".env");
    match std::fs::read(&dest) {
        Ok(existing) if existing == bytes => return m.skipped(what, "already carried"),
        Ok(_) => return m.skipped(what, format!("{} exists; merge by hand", dest.display())),
        Err(_) => {}
    }
    for (theirs, ours) in ENV_NAMES {
        if names.iter().any(|n| n == theirs) {
            m.skipped(format!(".env sets {theirs}"), format!("chela reads {ours}: set that instead"));
        }
    }
    if m.dry_run {
        return m.carried(what, dest.display().to_string());
    }
    let written = dest.parent().map_or(Ok(()), std::fs::create_dir_all).map_err(|e| e.to_string()).and_then(|()| {
        chela_durable::replace(&dest, &bytes, chela_durable::Durability::Fsync).map_err(|e| e.to_string())
    });
    match written {
        Ok(()) => m.carried(what, dest.display().to_string()),
        Err(e) => m.failed(what, e),
    }
}

/// `OPENCLAW_*` variables set here, and chela's name for each.
fn environment(m: &mut Migration) {
    for (theirs, ours) in ENV_NAMES {
        if std::env::var_os(theirs).is_some() {
            m.skipped(format!("environment {theirs}"), format!("chela reads {ours}: set that instead"));
        }
    }
}
