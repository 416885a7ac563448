//! Agent-to-agent messaging (`sessions_send`, reference §10.7): the target
//! session answers in its own queue, behind its own turns; then the two
//! sessions may answer each other, alternating and starting with the
//! requester, up to `session.agentToAgent.maxPingPongTurns` (0–5, default 5),
//! until one answers `REPLY_SKIP` or nothing. The policy checks (agent-to-agent
//! allow list, visibility) are the caller's, in [`crate::sessions_access`].
//!
//! Must not: decide the allow list or visibility (that is `sessions_access`, from core's rules), or
//! bypass the target session's queue.

use std::sync::Arc;
use std::time::Duration;

use chela_core::session_key::SessionKey;
use chela_plugin::capability::sessions::Caller;
use tokio::sync::oneshot;

use crate::runtime::{stored_target, AgentRuntime, Inbound};
use crate::store::Origin;

/// A reply that ends the back-and-forth.
pub const REPLY_SKIP: &str = "REPLY_SKIP";
/// The most a `sessions_send` waits for the target's reply.
pub const MAX_WAIT_SECONDS: u32 = 300;
/// The cap (and default) of `maxPingPongTurns`.
pub const MAX_PING_PONG_TURNS: u8 = 5;

/// Queues `text` into `target_key` and runs the exchange in the background;
/// with `wait_seconds` > 0, returns the target's first reply if it comes in time.
pub(crate) async fn send(
    rt: &Arc<AgentRuntime>,
    caller: &Caller,
    target_key: &str,
    text: &str,
    wait_seconds: u32,
) -> Result<Option<String>, String> {
    let target = SessionKey::parse(target_key).ok_or_else(|| format!("`{target_key}` is not a session key"))?;
    let requester = SessionKey::parse(&caller.session_key)
        .ok_or_else(|| format!("`{}` is not a session key", caller.session_key))?;
    let (tx, rx) = oneshot::channel();
    let (runtime, text) = (rt.clone(), text.to_string());
    rt.spawn_background(async move {
        let snap = runtime.snapshot();
        let first = runtime.run(&snap, inbound(&runtime, &snap.config, &target, &requester, text, None)).await;
        match first {
            Ok(out) => {
                let _ = tx.send(Ok(out.reply.clone()));
                ping_pong(&runtime, &requester, &target, out.reply).await;
            }
            Err(e) => {
                tracing::warn!(target = %target, error = %e, "sessions_send: the target's turn failed");
                let _ = tx.send(Err(format!("session `{target}` could not answer: {e}")));
            }
        }
    });
    if wait_seconds == 0 {
        return Ok(None);
    }
    let wait = Duration::from_secs(u64::from(wait_seconds.min(MAX_WAIT_SECONDS)));
    match tokio::time::timeout(wait, rx).await {
        Ok(Ok(reply)) => reply.map(Some),
        // Still running: the exchange goes on without the caller.
        _ => Ok(None),
    }
}

fn ends_exchange(reply: &str) -> bool {
    let r = reply.trim();
    r.is_empty() || r == REPLY_SKIP
}

/// The back-and-forth after the target's first reply.
async fn ping_pong(rt: &AgentRuntime, requester: &SessionKey, target: &SessionKey, first_reply: String) {
    let max = rt
        .config()
        .session
        .as_ref()
        .and_then(|s| s.agent_to_agent.as_ref()?.max_ping_pong_turns)
        .unwrap_or(MAX_PING_PONG_TURNS)
        .min(MAX_PING_PONG_TURNS);
    let (mut current, mut other) = (requester.clone(), target.clone());
    let mut incoming = first_reply;
    for turn in 1..=max {
        if ends_exchange(&incoming) {
            break;
        }
        let context = format!(
            "This message comes from another agent's session `{other}` (agent-to-agent exchange, reply {turn} of at \
             most {max}). Answer it if that helps; reply exactly {REPLY_SKIP} to end the exchange."
        );
        let snap = rt.snapshot();
        match rt.run(&snap, inbound(rt, &snap.config, &current, &other, incoming, Some(context))).await {
            Ok(out) => incoming = out.reply,
            Err(e) => {
                tracing::warn!(session = %current, error = %e, "agent-to-agent reply failed; exchange ends");
                break;
            }
        }
        std::mem::swap(&mut current, &mut other);
    }
}

/// A message from session `from` into session `key`.
fn inbound(
    rt: &AgentRuntime,
    cfg: &chela_core::config::Config,
    key: &SessionKey,
    from: &SessionKey,
    text: String,
    extra_system: Option<String>,
) -> Inbound {
    Inbound {
        target: stored_target(rt, cfg, key),
        text,
        sender_id: None,
        origin: Origin {
            provider: Some("agent".into()),
            from: Some(from.to_string()),
            label: Some(format!("agent {}", from.agent_id())),
            ..Origin::default()
        },
        extra_system,
        message_ref: None,
        model_override: None,
        sampling: None,
        scheduled: None,
        media: Vec::new(),
        delivery: None,
        live_tool_summaries: false,
        exec_tightening: Default::default(),
    }
}
