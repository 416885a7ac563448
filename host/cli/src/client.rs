//! The control API client: one call to the gateway this config describes
//! (its port, its token), for the commands that prefer a running gateway
//! and fall back to the files (`send`, `status`, `channels status`) or need
//! one (`health`).
//!
//! Must not: decide what a command does without a gateway; it only says
//! whether one answered.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use serde_json::Value;

use crate::context::Context;

/// How long a turn through the gateway may take (`send`, `agent`).
const TURN_TIMEOUT: Duration = Duration::from_secs(600);

/// A control API call to a gateway on loopback; `None` when none is listening.
pub fn control(
    ctx: &Context,
    ctx_cfg: &chela_core::config::Config,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Option<Value>> {
    request(ctx, ctx_cfg, method, path, body, TURN_TIMEOUT)
}

/// [`control`] with its own time limit for the whole call.
pub fn request(
    ctx: &Context,
    ctx_cfg: &chela_core::config::Config,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<Option<Value>> {
    let addr = gateway_addr(ctx_cfg)?;
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_millis(300).min(timeout))
        .timeout(timeout)
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

/// Where the gateway of this config listens, as a client on this machine reaches it.
pub fn gateway_addr(cfg: &chela_core::config::Config) -> Result<std::net::SocketAddr> {
    crate::gateway::listen_addr(cfg, None, Some("loopback"))
}
