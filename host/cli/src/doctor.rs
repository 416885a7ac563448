//! `chela doctor [--fix] [--json]`: health checks of one install, after
//! OpenClaw's `openclaw doctor` — the config, the state dir and credential
//! file permissions, the control token, every plugin, each channel
//! account's credentials (as its adapter judges them; with `--probe`, as its
//! platform does), exec confinement, agent workspaces and session stores,
//! the shared database when storage names one (reachable, schema, TLS
//! verified, replicas) —
//! each a finding `ok`, `warn` or `error`. `--fix` repairs what is safe to repair: permissions, and the seed
//! article's legacy config forms (`agents.list[].agentId` → `id`, flat
//! `agents.bindings` → top-level `bindings`), rewritten in place with comments
//! kept. A config fix is written only when the fixed file loads and routes as
//! the legacy form meant; otherwise nothing is written and the finding says why.
//!
//! Must not: start the gateway, reach the network without `--probe` (the
//! install's own database aside), or change what routing
//! decides (core's roster and bindings are compared before a config fix lands).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use chela_core::config::edit::{append_to_array, remove_member, rename_member};
use chela_core::config::paths::{agent_dir, agent_store_dir, agent_workspace};
use chela_core::config::{load_str, Config, Diagnostic, Loaded};
use chela_core::roster::Roster;
use chela_core::storage::{redacted, storage, verifies_server, Storage};
use chela_database::Database;
use serde::Serialize;
use serde_json::{json, Value as Json};

use crate::context::Context;
use crate::output::print_json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    Ok,
    Warn,
    Error,
}

/// One check's result about one thing.
#[derive(Debug, Serialize)]
struct Finding {
    check: &'static str,
    level: Level,
    message: String,
    /// What `--fix` did about it (or, without `--fix`, what it would do).
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

#[derive(Default)]
struct Report {
    findings: Vec<Finding>,
}

impl Report {
    fn add(&mut self, check: &'static str, level: Level, message: impl Into<String>) {
        self.findings.push(Finding { check, level, message: message.into(), fix: None });
    }

    fn add_fix(&mut self, check: &'static str, level: Level, message: impl Into<String>, fix: String) {
        self.findings.push(Finding { check, level, message: message.into(), fix: Some(fix) });
    }
}

pub fn run(ctx: &Context, fix: bool, probe: bool, json: bool) -> Result<ExitCode> {
    let mut report = Report::default();
    let loaded = config(ctx, fix, &mut report)?;
    state_dir(ctx, fix, &mut report);
    if let Some(loaded) = &loaded {
        let cfg = &loaded.config;
        credential_files(ctx, cfg, fix, &mut report);
        token(ctx, cfg, &mut report);
        plugins(ctx, cfg, &mut report)?;
        channels(ctx, cfg, probe, &mut report)?;
        confinement(&mut report);
        let db = database(ctx, cfg, &mut report);
        agents(ctx, cfg, db.as_ref(), &mut report);
    }
    let errors = report.findings.iter().filter(|f| f.level == Level::Error).count();
    let warnings = report.findings.iter().filter(|f| f.level == Level::Warn).count();
    if json {
        print_json(&json!({"ok": errors == 0, "errors": errors, "warnings": warnings, "findings": report.findings}));
    } else {
        for f in &report.findings {
            let level = match f.level {
                Level::Ok => "ok",
                Level::Warn => "warn",
                Level::Error => "ERROR",
            };
            println!("{level:<6} {:<12} {}", f.check, f.message);
            if let Some(fix) = &f.fix {
                println!("{:<19} fix: {fix}", "");
            }
        }
        println!("doctor: {errors} error(s), {warnings} warning(s)");
    }
    Ok(if errors == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The config loads and validates; legacy forms are reported, and with `fix` rewritten.
fn config(ctx: &Context, fix: bool, report: &mut Report) -> Result<Option<Loaded>> {
    let file = ctx.config_path.display().to_string();
    let Some(mut text) = ctx.read_text()? else {
        report.add("config", Level::Ok, format!("no config at {file}: single-agent mode on built-in defaults"));
        return Ok(load_str("{}", None).ok());
    };
    if let Some(legacy) = legacy_forms(&text) {
        match (fix, fixed_config(ctx, &text, &legacy)) {
            (_, Err(why)) => report.add("config", Level::Error, format!("{file}: {}; not fixed: {why}", legacy.what())),
            (false, Ok(_)) => report.add_fix(
                "config",
                Level::Warn,
                format!("{file}: {}", legacy.what()),
                "run `chela doctor --fix` to rewrite it (comments kept)".into(),
            ),
            (true, Ok(new)) => {
                ctx.write_config(Some(&text), &new)?;
                report.add_fix(
                    "config",
                    Level::Ok,
                    format!("{file}: {}", legacy.what()),
                    format!("rewritten in place, routing unchanged (previous version: {file}.bak)"),
                );
                text = new;
            }
        }
    }
    match load_str(&text, Some(&file)) {
        Err(e) => {
            for d in e.diagnostics() {
                report.add("config", if d.is_error() { Level::Error } else { Level::Warn }, d.to_string());
            }
            Ok(None)
        }
        Ok(loaded) => {
            let mut all: Vec<Diagnostic> = loaded.warnings.clone();
            all.extend(chela_core::config::validate::validate(&loaded, &ctx.env));
            let errors: Vec<&Diagnostic> = all.iter().filter(|d| d.is_error()).collect();
            for d in &errors {
                report.add("config", Level::Error, d.to_string());
            }
            let warnings = all.len() - errors.len();
            match (errors.is_empty(), warnings) {
                (false, _) => {}
                (true, 0) => report.add("config", Level::Ok, format!("{file}: valid")),
                (true, n) => report.add(
                    "config",
                    Level::Ok,
                    format!("{file}: valid, {n} warning(s) (`chela config validate` lists them)"),
                ),
            }
            Ok(Some(loaded))
        }
    }
}

/// The seed article's forms found in a config.
struct Legacy {
    /// `agents.list[i]` entries written with `agentId` and no `id`.
    agent_ids: Vec<usize>,
    /// `agents.bindings`, flat.
    flat_bindings: Option<Json>,
}

impl Legacy {
    fn what(&self) -> String {
        let mut parts = Vec::new();
        if !self.agent_ids.is_empty() {
            parts.push(format!("{} agent(s) named by `agentId` instead of `id`", self.agent_ids.len()));
        }
        if self.flat_bindings.is_some() {
            parts.push("bindings under `agents.bindings` instead of top-level `bindings`".into());
        }
        format!("legacy form: {}", parts.join(", "))
    }
}

fn legacy_forms(text: &str) -> Option<Legacy> {
    let root = chela_core::config::source::parse(text).ok()?.root.to_json();
    let agents = &root["agents"];
    let agent_ids: Vec<usize> = agents["list"]
        .as_array()
        .map(|l| l.iter().enumerate().filter(|(_, a)| a.get("id").is_none() && a.get("agentId").is_some()))
        .into_iter()
        .flatten()
        .map(|(i, _)| i)
        .collect();
    let flat_bindings = agents.get("bindings").cloned();
    (!agent_ids.is_empty() || flat_bindings.is_some()).then_some(Legacy { agent_ids, flat_bindings })
}

/// The config with the legacy forms rewritten, or why it cannot be without changing routing.
fn fixed_config(ctx: &Context, text: &str, legacy: &Legacy) -> Result<String, String> {
    let mut new = text.to_string();
    for &i in &legacy.agent_ids {
        let index = i.to_string();
        new = rename_member(&new, &["agents", "list", &index], "agentId", "id").map_err(|e| e.to_string())?;
    }
    let mut intended = chela_core::config::source::parse(text).map_err(|e| e.to_string())?.root.to_json();
    if let Some(flat) = &legacy.flat_bindings {
        if intended["bindings"].as_array().is_some_and(|b| !b.is_empty()) {
            return Err("top-level `bindings` exist too: where the old ones go in precedence order is for you to \
                        decide (`chela config validate` shows the equivalent bindings)"
                .into());
        }
        let moved = chela_core::config::load::seed_bindings(flat);
        if moved.iter().any(|b| b["agentId"].is_null()) {
            return Err("an entry of `agents.bindings` has no `agentId`".into());
        }
        new = remove_member(&new, &["agents"], "bindings").map_err(|e| e.to_string())?;
        for b in &moved {
            let element = serde_json::to_string(b).map_err(|e| e.to_string())?;
            new = append_to_array(&new, &["bindings"], &element).map_err(|e| e.to_string())?;
        }
        intended["bindings"] = Json::Array(moved);
    }
    // What routing reads must be what the legacy form meant: the roster and the bindings.
    let fixed = load_str(&new, Some(&ctx.config_path.display().to_string()))
        .map_err(|e| format!("the rewritten config would not load: {e}"))?;
    let problems: Vec<String> = chela_core::config::validate::validate(&fixed, &ctx.env)
        .into_iter()
        .filter(|d| d.is_error() && (d.path.starts_with("bindings") || d.path.starts_with("agents")))
        .map(|d| d.to_string())
        .collect();
    if !problems.is_empty() {
        return Err(format!("the rewritten config would not validate: {}", problems.join("; ")));
    }
    let roster_ids = |cfg: &Config| Roster::from_config(cfg).ids();
    let written = chela_core::config::source::parse(&new).map_err(|e| e.to_string())?.root.to_json();
    let meant: Vec<String> = intended["agents"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| chela_core::ids::normalize_agent_id(a.get("id").or(a.get("agentId")).and_then(Json::as_str)))
        .collect();
    let same_agents = meant.is_empty() || roster_ids(&fixed.config) == dedup(meant);
    if !same_agents || written["bindings"] != intended["bindings"] {
        return Err("the rewritten config would route differently (an internal error: please report it)".into());
    }
    Ok(new)
}

fn dedup(ids: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// Group or other can read: the bits `chmod go-rwx` clears.
fn open_to_others(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Reports (and with `fix`, tightens) one path's permissions to `want`.
fn permissions(report: &mut Report, fix: bool, check: &'static str, path: &Path, want: u32, what: &str) {
    let Some(mode) = open_to_others(path) else {
        if path.exists() {
            report.add(check, Level::Ok, format!("{what} {} is private ({want:o})", path.display()));
        }
        return;
    };
    let message = format!("{what} {} is readable by others ({mode:o})", path.display());
    if !fix {
        return report.add_fix(check, Level::Warn, message, format!("`chela doctor --fix` sets {want:o}"));
    }
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(want)) {
        Ok(()) => report.add_fix(check, Level::Ok, message, format!("set to {want:o}")),
        Err(e) => report.add(check, Level::Error, format!("{message}; cannot fix: {e}")),
    }
}

fn state_dir(ctx: &Context, fix: bool, report: &mut Report) {
    let dir = ctx.env.state_dir();
    if !dir.exists() {
        report.add("state", Level::Ok, format!("state dir {} does not exist yet (made on first start)", dir.display()));
        return;
    }
    permissions(report, fix, "state", &dir, 0o700, "state dir");
}

/// Files that hold secrets: the config, the generated token, the state dir's
/// `.env`, pairing allowlists, each agent's auth profiles.
fn credential_files(ctx: &Context, cfg: &Config, fix: bool, report: &mut Report) {
    let state = ctx.env.state_dir();
    let mut files = vec![ctx.config_path.clone(), chela_gateway::token::token_path(&state), state.join(".env")];
    if let Ok(entries) = std::fs::read_dir(state.join("credentials")) {
        files.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
    }
    for id in Roster::from_config(cfg).ids() {
        files.push(agent_dir(cfg, &id, &ctx.env).join("auth-profiles.json"));
    }
    for f in files.iter().filter(|f| f.exists()) {
        permissions(report, fix, "credentials", f, 0o600, "file");
    }
}

fn token(ctx: &Context, cfg: &Config, report: &mut Report) {
    let vars = ctx.vars(cfg);
    let state = ctx.env.state_dir();
    let configured = match chela_gateway::token::configured(cfg, &*vars) {
        Ok(t) => t,
        Err(e) => return report.add("token", Level::Error, e.to_string()),
    };
    if configured.is_some() {
        report.add("token", Level::Ok, "control token configured (gateway.auth.token or CHELA_GATEWAY_TOKEN)");
    } else if chela_gateway::token::token_path(&state).exists() {
        report.add(
            "token",
            Level::Ok,
            format!("control token in {}", chela_gateway::token::token_path(&state).display()),
        );
    } else {
        report.add("token", Level::Ok, "no control token yet: the gateway generates one on first start");
    }
}

fn plugins(ctx: &Context, cfg: &Config, report: &mut Report) -> Result<()> {
    let rt = crate::plugins::runtime()?;
    let plugins = rt.block_on(crate::plugins::load(ctx, cfg))?;
    let list = plugins.list();
    let failed: Vec<_> = list.iter().filter(|p| p.status == "failed").collect();
    for p in &failed {
        report.add("plugins", Level::Error, format!("{}: {}", p.id, p.error.as_deref().unwrap_or("failed to load")));
    }
    if failed.is_empty() {
        report.add("plugins", Level::Ok, format!("{} plugin(s) load", list.len()));
    }
    Ok(())
}

/// Each channel account's credentials, as its adapter judges them; with
/// `probe`, as its platform does (`probe.rs`).
fn channels(ctx: &Context, cfg: &Config, probe: bool, report: &mut Report) -> Result<()> {
    let timeout = std::time::Duration::from_secs(10);
    for c in crate::probe::run(ctx, cfg, None, probe, timeout)? {
        let level = match c.ok {
            Some(true) => Level::Ok,
            Some(false) => Level::Error,
            None => Level::Warn,
        };
        let what = if c.stage == "probe" { "probe" } else { "credentials" };
        report.add("channels", level, format!("{}/{} {what}: {}", c.channel, c.account, c.detail));
    }
    Ok(())
}

fn confinement(report: &mut Report) {
    let (bwrap, landlock) = chela_plugin::capability::process::confinement();
    let landlock = if landlock { "Landlock available" } else { "no Landlock in this kernel" };
    match bwrap {
        Ok(b) => report.add("exec", Level::Ok, format!("host commands confined by {} ({landlock})", b.display())),
        Err(why) => report.add(
            "exec",
            Level::Warn,
            format!("host commands cannot be confined by bubblewrap: {why} ({landlock}); install bubblewrap"),
        ),
    }
}

/// The shared database, when storage names one: reachable, at this
/// chela's schema, its connections verified, and the replicas it knows.
fn database(ctx: &Context, cfg: &Config, report: &mut Report) -> Option<Arc<Database>> {
    let Ok(Storage::Postgres { url, set_by }) = storage(cfg, &ctx.env) else { return None };
    let shown = redacted(&url);
    if !verifies_server(&url) {
        report.add_fix(
            "database",
            Level::Warn,
            format!("connections to {shown} do not check the server's certificate: anyone on the path can pose as the database"),
            "add sslmode=verify-full (and sslrootcert=<your provider's CA file>) to the URL".into(),
        );
    }
    let db = match crate::context::database(cfg, &ctx.env) {
        Ok(Some(db)) => db,
        Ok(None) => return None,
        Err(e) => {
            report.add("database", Level::Error, format!("{e:#}"));
            return None;
        }
    };
    match db.schema_version() {
        Ok((found, known)) => report.add(
            "database",
            Level::Ok,
            format!("{shown} (set by {set_by}) answers, schema version {found} of {known}"),
        ),
        Err(e) => report.add("database", Level::Error, e.to_string()),
    }
    match db.leases() {
        Ok(leases) => {
            let alive =
                leases.iter().filter(|l| chela_database::replica_of(&l.name).is_some() && l.expires_in_ms > 0).count();
            report.add("database", Level::Ok, format!("{alive} replica(s) alive"));
        }
        Err(e) => report.add("database", Level::Error, e.to_string()),
    }
    Some(db)
}

/// Each agent's workspace is a writable directory and its session store
/// reads (the files, or the shared database's rows).
fn agents(ctx: &Context, cfg: &Config, db: Option<&Arc<Database>>, report: &mut Report) {
    let roster = Roster::from_config(cfg);
    for id in roster.ids() {
        let ws = agent_workspace(cfg, &roster, &id, &ctx.env);
        match std::fs::metadata(&ws) {
            Err(_) => report.add("workspace", Level::Ok, format!("{id}: {} is made on first use", ws.display())),
            Ok(m) if !m.is_dir() => {
                report.add("workspace", Level::Error, format!("{id}: {} is not a directory", ws.display()))
            }
            Ok(_) => match writable(&ws) {
                Ok(()) => report.add("workspace", Level::Ok, format!("{id}: {} is writable", ws.display())),
                Err(e) => report.add("workspace", Level::Error, format!("{id}: {} is not writable: {e}", ws.display())),
            },
        }
        if let Some(db) = db {
            let durability = chela_agent::store::Durability::default();
            match chela_agent::runtime::open_store(cfg, &ctx.env, &id, Some(db), durability).and_then(|s| s.list()) {
                Ok(rows) => {
                    report.add("sessions", Level::Ok, format!("{id}: {} session(s) in the database", rows.len()))
                }
                Err(e) => report.add("sessions", Level::Error, format!("{id}: cannot read its sessions: {e}")),
            }
            continue;
        }
        let index = agent_store_dir(cfg, &ctx.env, &id).join("sessions.json");
        match std::fs::read(&index) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => report.add("sessions", Level::Error, format!("{id}: cannot read {}: {e}", index.display())),
            Ok(bytes) => match serde_json::from_slice::<Json>(&bytes) {
                Ok(Json::Object(o)) => {
                    report.add("sessions", Level::Ok, format!("{id}: {} session(s) in {}", o.len(), index.display()))
                }
                Ok(_) => {
                    report.add("sessions", Level::Error, format!("{id}: {} is not a JSON object", index.display()))
                }
                Err(e) => {
                    report.add("sessions", Level::Error, format!("{id}: {} does not parse: {e}", index.display()))
                }
            },
        }
    }
}

/// Creates and removes a probe file in `dir`.
fn writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".chela-doctor-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}
