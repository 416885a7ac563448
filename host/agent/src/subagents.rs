//! Sub-agents (`sessions_spawn`, reference §10.7): a task run in a new
//! session `agent:<id>:subagent:<uuid>` of the caller's agent or, where
//! `agents.list[].subagents.allowAgents` lets it, of another agent. The
//! child's tools are its own policy (with the sub-agent stage) intersected
//! with its parent session's, never more; a sub-agent cannot spawn again.
//! A turn's own `/exec security=… ask=…` rules hold for the child it spawns
//! and for the parent's turn that takes the child's result.
//! When the child is done its result goes to the parent session as a
//! message, and the parent's answer is announced to the parent's chat.
//!
//! Must not: grant a child more than its parent session or turn holds, or let a sub-agent spawn again.

use std::sync::Arc;

use chela_core::ids::normalize_agent_id;
use chela_core::ids::ChatType;
use chela_core::policy::may_spawn;
use chela_core::roster::Roster;
use chela_core::routing::SessionTarget;
use chela_core::session_key::SessionKey;
use chela_plugin::capability::sessions::{Caller, SpawnRequest};
use serde_json::Value;

use crate::runtime::{stored_target, AgentRuntime, Announcement, Inbound};
use crate::store::Origin;

/// Whether `key` is a sub-agent's session.
pub fn is_subagent_key(key: &str) -> bool {
    SessionKey::parse(key).is_some_and(|k| k.is_subagent())
}

/// Checks the request, creates the child session and starts it; returns its key.
pub(crate) fn spawn(rt: &Arc<AgentRuntime>, caller: &Caller, req: SpawnRequest) -> Result<String, String> {
    let cfg = rt.config();
    if is_subagent_key(&caller.session_key) {
        return Err("a sub-agent cannot spawn sub-agents".into());
    }
    if req.task.trim().is_empty() {
        return Err("`task` is empty".into());
    }
    let target = normalize_agent_id(Some(req.agent_id.as_deref().unwrap_or(&caller.agent_id)));
    if Roster::from_config(&cfg).find(&target).is_none() {
        return Err(format!("unknown agent `{target}`"));
    }
    if !may_spawn(&cfg, &caller.agent_id, &target) {
        return Err(format!(
            "agent `{}` may not spawn agent `{target}` (agents.list[{}].subagents.allowAgents)",
            caller.agent_id, caller.agent_id
        ));
    }
    let parent = SessionKey::parse(&caller.session_key)
        .ok_or_else(|| format!("`{}` is not a session key", caller.session_key))?;
    let child = SessionKey::subagent(&target, &uuid::Uuid::new_v4().to_string());
    let label = req.label.clone().filter(|l| !l.trim().is_empty()).unwrap_or_else(|| target.clone());
    rt.store(&target)
        .and_then(|s| {
            s.upsert(child.as_str(), &mut |e| {
                e.extra.insert("spawnedBy".into(), Value::String(parent.to_string()));
                e.extra.insert("spawnDepth".into(), Value::from(1));
                e.extra.insert("label".into(), Value::String(label.clone()));
            })
        })
        .map_err(|e| e.to_string())?;
    tracing::info!(parent = %parent, child = %child, "sub-agent spawned");

    let (runtime, child_key, caller_exec) = (rt.clone(), child.clone(), caller.exec);
    rt.spawn_background(async move {
        let snap = runtime.snapshot();
        let cfg = &snap.config;
        let run = runtime
            .run(
                &snap,
                Inbound {
                    target: SessionTarget::of_key(cfg, child_key.clone(), ChatType::Direct),
                    text: req.task,
                    sender_id: None,
                    origin: Origin {
                        provider: Some("subagent".into()),
                        from: Some(parent.to_string()),
                        label: Some(format!("spawned by {parent}")),
                        ..Origin::default()
                    },
                    extra_system: None,
                    message_ref: None,
                    model_override: None,
                    sampling: None,
                    scheduled: None,
                    media: Vec::new(),
                    delivery: None,
                    live_tool_summaries: false,
                    // The spawning turn's own `/exec` rules hold for the task it hands on.
                    exec_tightening: caller_exec,
                },
            )
            .await;
        let result = match run {
            Ok(out) => format!("[sub-agent `{label}` ({child_key}) finished]\n{}", out.reply),
            Err(e) => format!("[sub-agent `{label}` ({child_key}) failed] {e}"),
        };
        // The parent's turn runs on the snapshot in force when the child finished.
        let snap = runtime.snapshot();
        let cfg = &snap.config;
        let parent_target = stored_target(&runtime, cfg, &parent);
        let delivery = runtime
            .store(&parent_target.agent_id)
            .ok()
            .and_then(|s| s.get(parent.as_str()).ok().flatten())
            .and_then(|e| e.delivery_context);
        let chat_type = parent_target.chat_type;
        let answered = runtime
            .run(
                &snap,
                Inbound {
                    target: parent_target,
                    text: result,
                    sender_id: None,
                    origin: Origin {
                        provider: Some("subagent".into()),
                        from: Some(child_key.to_string()),
                        label: Some(format!("sub-agent {label}")),
                        ..Origin::default()
                    },
                    extra_system: Some(
                        "A sub-agent you spawned has finished; its result is the message. Tell the user what it found."
                            .into(),
                    ),
                    message_ref: None,
                    model_override: None,
                    sampling: None,
                    scheduled: None,
                    media: Vec::new(),
                    delivery: None,
                    live_tool_summaries: false,
                    // Taking the result continues the task the rules were given for.
                    exec_tightening: caller_exec,
                },
            )
            .await;
        match answered {
            Ok(out) => runtime.announce(Announcement { session_key: parent, delivery, chat_type, text: out.reply }),
            Err(e) => tracing::warn!(session = %parent, error = %e, "the parent could not take the sub-agent's result"),
        }
    });
    Ok(child.to_string())
}
