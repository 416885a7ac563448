//! `chela plugins list|precompile|inspect` and the plugin side of `chela tools`.
//!
//! Plugins live in `<stateDir>/plugins` and in every `plugins.dirs` entry of
//! the config; compiled code is cached in `<stateDir>/cache/plugins`.
//!
//! Must not: link or run tools differently from the gateway (it asks the plugin runtime).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use chela_core::config::Config;
use chela_plugin::{Limits, PluginEngine, Plugins};
use clap::Subcommand;

use crate::context::Context;
use crate::output::print_json;

#[derive(Subcommand, Debug)]
pub enum PluginsCommand {
    /// Every plugin file with its status (ready, disabled, failed) and error.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Compiles every plugin into the compile cache ahead of time (in
    /// parallel), so the gateway's first start does not wait for it.
    Precompile {
        /// Also write each compilation beside its plugin (`<dir>/.cwasm/`),
        /// where a gateway with a fresh state dir (a container image) finds it.
        #[arg(long)]
        ship: bool,
        #[arg(long)]
        json: bool,
    },
    /// World, exports, imports and the capabilities they map to, of one file.
    Inspect {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// The plugin dirs for a config.
pub fn dirs(ctx: &Context, cfg: &Config) -> Vec<PathBuf> {
    chela_core::config::paths::plugin_dirs(cfg, &ctx.env)
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// The plugins of the configured dirs, not yet scanned (the gateway scans).
pub fn load_lazy(ctx: &Context, cfg: &Config) -> Result<Plugins> {
    let engine = Arc::new(PluginEngine::new(Limits::default())?);
    Ok(Plugins::new(engine, dirs(ctx, cfg), Some(ctx.env.state_dir().join("cache").join("plugins"))))
}

/// Loads every plugin of the configured dirs.
pub async fn load(ctx: &Context, cfg: &Config) -> Result<Plugins> {
    let plugins = load_lazy(ctx, cfg)?;
    plugins.rescan().await;
    Ok(plugins)
}

pub fn run(ctx: &Context, cmd: PluginsCommand) -> Result<ExitCode> {
    let rt = runtime()?;
    match cmd {
        PluginsCommand::List { json } => {
            let loaded = ctx.load()?;
            let plugins = rt.block_on(load(ctx, &loaded.config))?;
            let list = plugins.list();
            let code = if list.iter().any(|p| p.status == "failed") { ExitCode::FAILURE } else { ExitCode::SUCCESS };
            if json {
                print_json(&serde_json::json!({"dirs": dirs(ctx, &loaded.config), "plugins": list}));
                return Ok(code);
            }
            for d in dirs(ctx, &loaded.config) {
                println!("dir: {}", d.display());
            }
            if list.is_empty() {
                println!("no plugins (drop .wasm components into a dir above)");
            }
            for p in &list {
                let what =
                    p.tool.as_deref().map(|t| format!("tool `{t}`")).unwrap_or_else(|| {
                        p.kind.map(|k| format!("{k:?}").to_lowercase()).unwrap_or_else(|| "?".into())
                    });
                let needs: Vec<&str> = p.needs.iter().map(|c| c.as_str()).collect();
                println!(
                    "{:<24} {:<9} {:<22} needs: {}",
                    p.id,
                    p.status,
                    what,
                    if needs.is_empty() { "-".into() } else { needs.join(", ") }
                );
                if let Some(e) = &p.error {
                    println!("    {e}");
                }
            }
            Ok(code)
        }
        PluginsCommand::Precompile { ship, json } => precompile(ctx, &rt, ship, json),
        PluginsCommand::Inspect { file, json } => inspect(ctx, &rt, &file, json),
    }
}

fn precompile(ctx: &Context, rt: &tokio::runtime::Runtime, ship: bool, json: bool) -> Result<ExitCode> {
    let loaded = ctx.load()?;
    let started = std::time::Instant::now();
    let plugins = rt.block_on(load(ctx, &loaded.config))?;
    let elapsed = started.elapsed();
    let shipped = if ship { plugins.ship_compiled().map_err(anyhow::Error::msg)? } else { Vec::new() };
    let all = plugins.all();
    let failed: Vec<_> = plugins.list().into_iter().filter(|p| p.status == "failed").collect();
    if json {
        let each: Vec<serde_json::Value> = all
            .iter()
            .map(|p| serde_json::json!({"id": p.id, "cache": format!("{:?}", p.cache).to_lowercase(), "ms": p.load_time.as_millis() as u64}))
            .collect();
        print_json(
            &serde_json::json!({"plugins": each, "failed": failed, "shipped": shipped, "ms": elapsed.as_millis() as u64}),
        );
    } else {
        for p in &all {
            println!("{:<24} {:<6} {:>7} ms", p.id, format!("{:?}", p.cache).to_lowercase(), p.load_time.as_millis());
        }
        for f in &failed {
            println!("{:<24} failed: {}", f.id, f.error.as_deref().unwrap_or("?"));
        }
        for path in &shipped {
            println!("shipped {}", path.display());
        }
        println!("{} plugins ready in {:.1} s", all.len(), elapsed.as_secs_f64());
    }
    Ok(if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn inspect(ctx: &Context, rt: &tokio::runtime::Runtime, file: &Path, json: bool) -> Result<ExitCode> {
    let engine = Arc::new(PluginEngine::new(Limits::default())?);
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let plugins = Plugins::new(engine, vec![dir], Some(ctx.env.state_dir().join("cache").join("plugins")));
    let loaded = match rt.block_on(plugins.load_file(file)) {
        Ok(p) => p,
        Err(e) => {
            if json {
                print_json(&serde_json::json!({"file": file, "error": e}));
            } else {
                eprintln!("{}: {e}", file.display());
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    if json {
        print_json(&serde_json::json!({
            "file": file, "id": loaded.id, "digest": loaded.digest, "manifest": loaded.manifest, "tool": loaded.tool,
            "compileMs": loaded.load_time.as_millis() as u64,
        }));
        return Ok(ExitCode::SUCCESS);
    }
    let m = &loaded.manifest;
    println!("file:    {}", file.display());
    println!("sha256:  {}", loaded.digest);
    println!("world:   {:?} (exports {})", m.kind, m.world_export);
    if let Some(t) = &loaded.tool {
        println!("tool:    {} — {}", t.name, t.description);
        println!("schema:  {}", t.parameters_schema);
        if !t.http_hosts.is_empty() {
            println!(
                "hosts:   {} (requested; granted only by plugins.entries.<id>.allowHosts)",
                t.http_hosts.join(", ")
            );
        }
    }
    println!("imports:");
    for (name, cap) in &m.imports {
        let cap = cap.map(|c| format!("capability `{}`", c.as_str()));
        println!("  {name:<44} {}", cap.unwrap_or_else(|| "always linked".into()));
    }
    Ok(ExitCode::SUCCESS)
}
