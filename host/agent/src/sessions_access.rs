//! The host side of the `sessions` capability: what a `sessions_*` tool may
//! see and do, decided for the calling session by the core's visibility and
//! agent-to-agent rules, answered from the agents' stores.
//!
//! Must not: hold the visibility or agent-to-agent rules themselves (core's `policy` does), or
//! answer for another caller than the session the host set.

use std::sync::{Arc, Weak};

use chela_core::policy::{agent_to_agent_allowed, is_sandboxed, session_kind_for_key, session_visible};
use chela_core::routing::main_key;
use chela_core::session_key::{parse_agent_session_key, SessionKey};
use chela_plugin::capability::sessions::{
    BoxFuture, Caller, SessionStatus, SessionSummary, SessionsAccess, SpawnRequest, TranscriptEntry,
};

use crate::runtime::AgentRuntime;
use crate::store::{Message, SessionEntry};

/// A runtime's stores, as the `sessions` capability of its turns' tools sees them.
pub(crate) struct SessionsBridge {
    runtime: Weak<AgentRuntime>,
}

impl SessionsBridge {
    pub(crate) fn new(runtime: Weak<AgentRuntime>) -> SessionsBridge {
        SessionsBridge { runtime }
    }

    fn runtime(&self) -> Result<Arc<AgentRuntime>, String> {
        self.runtime.upgrade().ok_or_else(|| "the agent runtime is shutting down".to_string())
    }

    /// The entry of `key` if the caller may see it.
    fn visible(&self, rt: &AgentRuntime, caller: &Caller, key: &str) -> Result<SessionEntry, String> {
        let cfg = rt.config();
        let target = parse_agent_session_key(key).ok_or_else(|| format!("`{key}` is not a session key"))?;
        let store = rt.store(&target.agent_id).map_err(|e| e.to_string())?;
        let entry = store.get(key).map_err(|e| e.to_string())?;
        let spawned_by = entry.as_ref().and_then(crate::runtime::spawned_by);
        if !session_visible(
            &cfg,
            &caller.agent_id,
            &caller.session_key,
            sandboxed(rt, caller),
            key,
            spawned_by.as_ref().map(SessionKey::as_str),
        ) {
            return Err(format!("session `{key}` is not visible from `{}`", caller.session_key));
        }
        entry.ok_or_else(|| format!("no session `{key}`"))
    }
}

fn sandboxed(rt: &AgentRuntime, caller: &Caller) -> bool {
    let cfg = rt.config();
    let main = SessionKey::main(&caller.agent_id, main_key(&cfg));
    is_sandboxed(
        &cfg,
        &caller.agent_id,
        &session_kind_for_key(&cfg, &caller.agent_id, &caller.session_key, main.as_str()),
    )
}

fn role(m: &Message) -> &'static str {
    match m {
        Message::User { .. } => "user",
        Message::Assistant { .. } => "assistant",
        Message::ToolResult { .. } => "toolResult",
    }
}

fn at(m: &Message) -> u64 {
    match m {
        Message::User { timestamp, .. }
        | Message::Assistant { timestamp, .. }
        | Message::ToolResult { timestamp, .. } => (*timestamp).max(0) as u64,
    }
}

impl SessionsAccess for SessionsBridge {
    fn list<'a>(
        &'a self,
        caller: &'a Caller,
        active: Option<u32>,
    ) -> BoxFuture<'a, Result<Vec<SessionSummary>, String>> {
        Box::pin(async move {
            let rt = self.runtime()?;
            let cfg = rt.config();
            let sandboxed = sandboxed(&rt, caller);
            let now = crate::clock::now_ms();
            let mut out = Vec::new();
            for agent in chela_core::roster::Roster::from_config(&cfg).ids() {
                let store = rt.store(&agent).map_err(|e| e.to_string())?;
                for (key, e) in store.list().map_err(|e| e.to_string())? {
                    let spawned_by = e.extra.get("spawnedBy").and_then(|v| v.as_str());
                    if !session_visible(&cfg, &caller.agent_id, &caller.session_key, sandboxed, &key, spawned_by) {
                        continue;
                    }
                    if active.is_some_and(|m| now - e.updated_at > i64::from(m) * 60_000) {
                        continue;
                    }
                    let count = store.transcript(&e).map(|t| t.messages.len()).unwrap_or(0);
                    out.push(SessionSummary {
                        key,
                        agent_id: agent.clone(),
                        updated_at_ms: e.updated_at.max(0) as u64,
                        message_count: count as u32,
                    });
                }
            }
            Ok(out)
        })
    }

    fn history<'a>(
        &'a self,
        caller: &'a Caller,
        key: &'a str,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<TranscriptEntry>, String>> {
        Box::pin(async move {
            let rt = self.runtime()?;
            let entry = self.visible(&rt, caller, key)?;
            let agent = parse_agent_session_key(key).map(|p| p.agent_id).unwrap_or_default();
            let t = rt.store(&agent).and_then(|s| s.transcript(&entry)).map_err(|e| e.to_string())?;
            let skip = t.messages.len().saturating_sub(limit as usize);
            Ok(t.messages
                .iter()
                .skip(skip)
                .map(|m| TranscriptEntry { role: role(m).into(), text: m.text(), at_ms: at(m) })
                .collect())
        })
    }

    fn send<'a>(
        &'a self,
        caller: &'a Caller,
        key: &'a str,
        text: &'a str,
        wait_seconds: u32,
    ) -> BoxFuture<'a, Result<Option<String>, String>> {
        Box::pin(async move {
            let rt = self.runtime()?;
            let cfg = rt.config();
            let target = parse_agent_session_key(key).ok_or_else(|| format!("`{key}` is not a session key"))?;
            if target.agent_id != caller.agent_id && !agent_to_agent_allowed(&cfg, &caller.agent_id, &target.agent_id) {
                return Err(format!(
                    "agent `{}` may not message agent `{}` (tools.agentToAgent)",
                    caller.agent_id, target.agent_id
                ));
            }
            if key == caller.session_key {
                return Err("a session cannot send to itself".into());
            }
            self.visible(&rt, caller, key)?;
            crate::agent_to_agent::send(&rt, caller, key, text, wait_seconds).await
        })
    }

    fn status<'a>(&'a self, caller: &'a Caller, key: Option<&'a str>) -> BoxFuture<'a, Result<SessionStatus, String>> {
        Box::pin(async move {
            let rt = self.runtime()?;
            let key = key.unwrap_or(&caller.session_key);
            let entry = self.visible(&rt, caller, key)?;
            let agent = parse_agent_session_key(key).map(|p| p.agent_id).unwrap_or_default();
            let t = rt.store(&agent).and_then(|s| s.transcript(&entry)).map_err(|e| e.to_string())?;
            let model = t.messages.iter().rev().find_map(|m| match m.as_ref() {
                Message::Assistant { provider, model, .. } if !model.is_empty() => Some(format!("{provider}/{model}")),
                _ => None,
            });
            let cfg = rt.config();
            let kind = session_kind_for_key(&cfg, &agent, key, SessionKey::main(&agent, main_key(&cfg)).as_str());
            Ok(SessionStatus {
                key: key.to_string(),
                agent_id: agent.clone(),
                session_id: entry.session_id.clone(),
                model,
                chat_type: entry.chat_type.clone(),
                updated_at_ms: entry.updated_at.max(0) as u64,
                message_count: t.messages.len() as u32,
                input_tokens: entry.input_tokens.unwrap_or(0),
                output_tokens: entry.output_tokens.unwrap_or(0),
                sandboxed: is_sandboxed(&cfg, &agent, &kind),
                spawned_by: crate::runtime::spawned_by(&entry).map(|k| k.to_string()),
                queued: rt.queue_depth(key) as u32,
            })
        })
    }

    fn spawn<'a>(&'a self, caller: &'a Caller, request: SpawnRequest) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let rt = self.runtime()?;
            crate::subagents::spawn(&rt, caller, request)
        })
    }
}
