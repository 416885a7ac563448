//! `chela gateway`: run the gateway in the foreground until SIGINT/SIGTERM.
//!
//! Must not: assemble the gateway differently from `chela_gateway` (it calls the gateway's own
//! constructor).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use chela_agent::Providers;
use chela_gateway::{Gateway, GatewayOptions};

use crate::context::Context;

pub const DEFAULT_PORT: u16 = 18789;

#[derive(clap::Args, Debug)]
pub struct GatewayArgs {
    /// Port (default: gateway.port, else 18789).
    #[arg(long)]
    port: Option<u16>,
    /// loopback (default), lan (all interfaces) or custom (gateway.customBindHost).
    #[arg(long)]
    bind: Option<String>,
}

/// The address the config (and flags) ask for.
pub fn listen_addr(ctx_cfg: &chela_core::config::Config, port: Option<u16>, bind: Option<&str>) -> Result<SocketAddr> {
    let g = ctx_cfg.gateway.as_ref();
    let port = port.or_else(|| g.and_then(|g| g.port)).unwrap_or(DEFAULT_PORT);
    let bind = bind.map(str::to_string).or_else(|| g.and_then(|g| g.bind.clone())).unwrap_or_else(|| "loopback".into());
    let ip: IpAddr = match bind.as_str() {
        "loopback" => Ipv4Addr::LOCALHOST.into(),
        "lan" => Ipv4Addr::UNSPECIFIED.into(),
        "custom" => g
            .and_then(|g| g.custom_bind_host.as_deref())
            .context("gateway.bind is `custom` but gateway.customBindHost is not set")?
            .parse()
            .context("gateway.customBindHost is not an IP address")?,
        other => bail!("--bind must be loopback, lan or custom; got `{other}`"),
    };
    Ok(SocketAddr::new(ip, port))
}

/// The token to present to a gateway on this machine: the configured one,
/// else the one the gateway generated in the state dir.
pub fn client_token(ctx: &Context, cfg: &chela_core::config::Config) -> Option<String> {
    chela_gateway::token::for_client(cfg, &*ctx.vars(cfg), &ctx.env.state_dir())
}

pub fn run(ctx: &Context, args: &GatewayArgs) -> Result<ExitCode> {
    let loaded = ctx.load()?;
    let cfg = loaded.config;
    let mut options = GatewayOptions::loopback(0);
    options.addr = listen_addr(&cfg, args.port, args.bind.as_deref())?;
    let vars = ctx.vars(&cfg);
    options.auth_token = chela_gateway::token::configured(&cfg, &*vars)?;
    let rt = crate::plugins::runtime()?;
    rt.block_on(async {
        let plugins = Arc::new(crate::plugins::load_lazy(ctx, &cfg)?);
        let providers = Providers::from_config(&cfg, vars.clone());
        let gw = Gateway::new(Arc::new(cfg), ctx.env.clone(), plugins, providers, options, vars).await?;
        let running = gw.serve().await?;
        let _reload = gw.watch_config(ctx.config_path.clone(), Duration::from_secs(1));
        // Through tracing, so `--log-format json` output is JSON only.
        tracing::info!(
            addr = %running.addr,
            config = %ctx.config_path.display(),
            plugins = %gw.plugin_dirs_hint().display(),
            "chela gateway listening on http://{}",
            running.addr
        );
        if let Some(base) = chela_gateway::control_ui::base_path(&gw.config()) {
            tracing::info!("control page at http://{}{base}/", running.addr);
        }
        for (channel, why) in gw.missing_channels() {
            tracing::warn!(%channel, "channel `{channel}` not running: {why}");
        }
        shutdown_signal().await;
        tracing::info!("shutting down: finishing turns in flight");
        if !running.shutdown().await {
            tracing::warn!("some turns did not finish within the grace period");
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
