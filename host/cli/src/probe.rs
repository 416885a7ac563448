//! Channel credentials, checked by the adapters themselves: every channel
//! plugin is started as the gateway starts it (same grants, same account
//! settings) but never polled. What an adapter refuses at `configure-account`
//! is a missing or malformed credential; with `probe`, the adapter also asks
//! its platform whether the credential works (`chela:plugin/channel-probe`:
//! Telegram `getMe`, Slack `auth.test`, Discord `GET /users/@me`, WhatsApp the
//! number's record). Used by `chela doctor [--probe]` and `chela channels
//! status --probe`.
//!
//! Must not: know any platform's credential names or endpoints (the adapters
//! do), or start a poller, socket or webhook.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use chela_core::config::Config;
use chela_plugin::channel::ChannelRuntime;
use chela_plugin::PluginKind;
use serde::Serialize;

use crate::context::Context;

/// What was found about one account.
#[derive(Debug, Clone, Serialize)]
pub struct AccountCheck {
    pub channel: String,
    pub account: String,
    /// `true`: accepted (by the platform when probed, else by the adapter);
    /// `false`: refused; `null`: the adapter has no probe.
    pub ok: Option<bool>,
    /// `settings` (the adapter's configure-account) or `probe` (the platform).
    pub stage: &'static str,
    pub detail: String,
}

/// Every enabled account of every configured channel (or of `only`); with
/// `probe`, each accepted account is also probed (each within `timeout`).
pub fn run(
    ctx: &Context,
    cfg: &Config,
    only: Option<&str>,
    probe: bool,
    timeout: Duration,
) -> Result<Vec<AccountCheck>> {
    let rt = crate::plugins::runtime()?;
    rt.block_on(check(ctx, cfg, only, probe, timeout))
}

async fn check(
    ctx: &Context,
    cfg: &Config,
    only: Option<&str>,
    probe: bool,
    timeout: Duration,
) -> Result<Vec<AccountCheck>> {
    let wanted: Vec<&String> =
        cfg.channels.iter().flat_map(|c| c.keys()).filter(|c| only.is_none_or(|o| o == c.as_str())).collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let plugins = Arc::new(crate::plugins::load(ctx, cfg).await?);
    let vars = ctx.vars(cfg);
    let mut adapters: Vec<ChannelRuntime> = Vec::new();
    let mut out = Vec::new();
    for plugin in plugins.all().into_iter().filter(|p| p.manifest.kind == PluginKind::Channel) {
        match ChannelRuntime::start(&plugins, plugin.clone(), cfg, &ctx.env, &*vars).await {
            Ok(rt) if wanted.iter().any(|c| c.as_str() == rt.channel_id()) => adapters.push(rt),
            Ok(_) => {}
            Err(e) => tracing::warn!(plugin = %plugin.id, error = %e, "channel plugin not started"),
        }
    }
    for channel in wanted {
        let Some(rt) = adapters.iter().find(|rt| rt.channel_id() == channel.as_str()) else {
            out.push(AccountCheck {
                channel: channel.clone(),
                account: "*".into(),
                ok: Some(false),
                stage: "settings",
                detail: "no channel plugin for it is loaded (`chela plugins list`)".into(),
            });
            continue;
        };
        let refused = rt.refused_accounts();
        let section = cfg.channels.as_ref().and_then(|c| c.get(channel));
        for declared in section.into_iter().flat_map(|s| s.declared_accounts()).filter(|a| a.enabled) {
            let account = declared.id;
            let row = |ok, stage, detail: String| AccountCheck {
                channel: channel.clone(),
                account: account.clone(),
                ok,
                stage,
                detail,
            };
            if let Some((_, why)) = refused.iter().find(|(a, _)| *a == account) {
                out.push(row(Some(false), "settings", why.clone()));
                continue;
            }
            if !probe {
                out.push(row(Some(true), "settings", "credentials present (accepted by the adapter)".into()));
                continue;
            }
            let verdict = match tokio::time::timeout(timeout, rt.probe(&account)).await {
                Err(_) => row(Some(false), "probe", format!("no answer within {} ms", timeout.as_millis())),
                Ok(Err(e)) => row(Some(false), "probe", e.to_string()),
                Ok(Ok(None)) => row(None, "probe", "the adapter has no probe (channel-probe)".into()),
                Ok(Ok(Some(Ok(who)))) => row(Some(true), "probe", who),
                Ok(Ok(Some(Err(why)))) => row(Some(false), "probe", why),
            };
            out.push(verdict);
        }
    }
    Ok(out)
}
