//! Session pruning as a step of the run loop (OpenClaw's `cache-ttl`
//! pruning, `docs/concepts/session-pruning.md`): before each model call the
//! conversation is sent with the projections in force (read back from the
//! transcript's last `openclaw.cache-ttl` marker), and, on a route that
//! prunes in the gateway, once the cache's TTL has passed since the last
//! successful request, a new pruning round adds to them. At the end of a
//! turn on a pruning route, a marker records when the cache was touched and,
//! when they changed, the projections. On the direct Anthropic API the
//! request instead asks the server to clear old tool results. Whatever the
//! settings, images of turns before the last three completed ones are sent
//! as a marker.
//!
//! Must not: decide thresholds or routes (core's `pruning`), choose which
//! results go (the `pruning` module), or write anything but the marker.

use std::sync::Arc;

use chela_core::pruning::{Pruning, Route, SERVER_KEEP_TOOL_USES};

use super::conversation::Conversation;
use crate::clock;
use crate::model::{ToolClearing, ToolSpec};
use crate::pruning::{replay, round, without_old_images, Marks, PruneState};
use crate::store::transcript::cache_ttl_entry;
use crate::store::{History, Message, StoreError};

impl Conversation {
    /// The messages the next request is sent: the projections replayed and,
    /// when `plan` prunes here and the TTL has passed, a new round first.
    /// `model` is the `provider/model` whose cache the TTL is about.
    pub(super) fn projected(&mut self, plan: Option<&Pruning>, model: &str, now_ms: i64) -> History {
        if !self.pruning.loaded {
            let (provider, id) = model.split_once('/').unwrap_or(("", model));
            let ttl = &self.view.cache_ttl;
            let marks: Marks = ttl.pruned.iter().flatten().cloned().collect();
            self.pruning =
                PruneState { written: marks.clone(), marks, touched_at: ttl.touched(provider, id), loaded: true };
        }
        if let (Some(plan), Some(touched)) = (plan.filter(|p| p.route == Route::Client), self.pruning.touched_at) {
            let expired =
                plan.ttl_ms > 0 && now_ms.saturating_sub(touched) >= i64::try_from(plan.ttl_ms).unwrap_or(i64::MAX);
            if expired && round(&self.view.messages, &mut self.pruning.marks, plan) {
                tracing::info!(session = %self.key(), pruned = self.pruning.marks.len(), "old tool results pruned");
                self.pruning.touched_at = Some(now_ms);
            }
        }
        without_old_images(&replay(&self.view.messages, &self.pruning.marks))
    }

    /// A request that started at `at_ms` was answered: the cache is fresh from then.
    pub(super) fn cache_touched(&mut self, at_ms: i64) {
        self.pruning.touched_at = Some(at_ms);
    }

    /// The turn's marker: `model`'s cache touch and, when they changed, the
    /// projections. Nothing when no request was answered.
    pub(super) async fn mark_cache(&mut self, model: &str) -> Result<(), StoreError> {
        let Some(touched) = self.pruning.touched_at else { return Ok(()) };
        let (provider, id) = model.split_once('/').unwrap_or(("", model));
        let changed = self.pruning.marks != self.pruning.written;
        let marks: Vec<_> = self.pruning.marks.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let entry_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        let line = cache_ttl_entry(
            &entry_id,
            self.view.last_id.as_deref(),
            &clock::iso_now(),
            (provider, id, touched),
            changed.then_some(marks.as_slice()),
        );
        self.push_entry(line).await?;
        self.pruning.written = self.pruning.marks.clone();
        Ok(())
    }
}

/// What the direct Anthropic API is asked to clear (OpenClaw's derived
/// parameters), when `plan` clears server-side: the tools whose results
/// must stay are every offered or earlier-used tool `tools.allow`/`deny`
/// keeps out of pruning.
pub(super) fn server_clearing(
    plan: Option<&Pruning>,
    specs: &[ToolSpec],
    messages: &[Arc<Message>],
) -> Option<ToolClearing> {
    let plan = plan?;
    let Route::AnthropicServer { trigger_tokens, clear_at_least_tokens } = plan.route else { return None };
    let mut names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    for m in messages {
        if let Message::ToolResult { tool_name, .. } = m.as_ref() {
            names.push(tool_name.clone());
        }
    }
    names.sort();
    names.dedup();
    Some(ToolClearing {
        trigger_tokens,
        keep_tool_uses: SERVER_KEEP_TOOL_USES,
        clear_at_least_tokens,
        exclude_tools: names.into_iter().filter(|n| !plan.prunable(n)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chela_core::config::load_str;

    #[test]
    fn the_direct_anthropic_api_is_asked_to_clear_all_but_the_kept_tools() {
        let cfg = load_str(
            r#"{ agents: { defaults: { contextPruning: { mode: "cache-ttl", tools: { deny: ["memory_*"] } } } } }"#,
            None,
        )
        .unwrap()
        .config;
        let spec =
            |n: &str| ToolSpec { name: n.into(), description: String::new(), parameters: serde_json::Value::Null };
        let used = Arc::new(Message::ToolResult {
            tool_call_id: "c1".into(),
            tool_name: "memory_search".into(),
            content: vec![],
            is_error: false,
            timestamp: 1,
        });
        let plan = chela_core::pruning::plan(&cfg, "anthropic/claude", None);
        let c = server_clearing(plan.as_ref(), &[spec("read"), spec("memory_get")], &[used]).expect("direct API");
        assert_eq!((c.trigger_tokens, c.keep_tool_uses, c.clear_at_least_tokens), (60_000, 3, 12_500));
        assert_eq!(c.exclude_tools, ["memory_get", "memory_search"], "offered and used earlier");
        let proxied = chela_core::pruning::plan(&cfg, "openai/gpt-5", None);
        assert!(server_clearing(proxied.as_ref(), &[spec("read")], &[]).is_none(), "pruned in the gateway");
    }
}
