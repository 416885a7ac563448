//! Compaction as a step of the run loop (OpenClaw's `docs/concepts/compaction.md`):
//! before each model call the request is kept within the session's budget —
//! old tool results sent as session pruning projects them (`prune.rs`), the silent memory flush once the context nears it (a detached turn that
//! may write `memory/`, never entering the transcript), then old tool
//! results trimmed if that is enough, then a summary by the agent's model
//! (or `compaction.model`) of everything before the kept tail, appended as a
//! `compaction` entry. `/compact [focus]` runs the same summary on demand.
//! A compaction that fails changes nothing and says so.
//!
//! Must not: decide thresholds (core's `compaction::plan`), estimate or cut
//! (the `compaction` module), or write anything but the compaction entry
//! and the index's counters.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chela_core::compaction::{focus, plan, CompactionPlan, SummaryThinking};
use chela_core::config::paths::{agent_dir, agent_workspace};
use chela_core::config::schema::Config;
use chela_core::roster::Roster;
use chela_plugin::AgentTools;

use super::conversation::{Ask, Conversation, TurnStore};
use super::{agent_profile, AgentRuntime, Inbound, RunError};
use crate::clock;
use crate::compaction::{
    cut_point, flush_prompt, history_bytes, message_tokens, prune_tool_results, request_tokens, summary_input,
    FLUSH_SYSTEM, SUMMARY_SYSTEM,
};
use crate::model::{ModelRequest, Purpose, Sampling, ToolSpec};
use crate::preserved_turns;
use crate::store::transcript::compaction_entry;
use crate::store::{History, Message};
use crate::summary_quality::{audit, identifiers, latest_ask, safeguard_system};

/// Tools through which the memory flush can write notes; without one it is skipped.
const WRITING_TOOLS: &[&str] = &["write", "edit", "apply_patch"];

/// The compaction settings of one turn, resolved once.
pub(super) struct Housekeeping {
    pub(super) plan: CompactionPlan,
    /// Session pruning for the turn's model (`None`: no new pruning).
    pub(super) pruning: Option<chela_core::pruning::Pruning>,
    /// The model whose prompt cache pruning's TTL is about (the turn's first).
    pub(super) model: String,
    /// Who writes summaries: `compaction.model` (exact), else the turn's models.
    summary_models: Result<Vec<String>, String>,
    /// Who runs the memory flush: `memoryFlush.model` (exact), else the turn's models.
    flush_models: Result<Vec<String>, String>,
}

/// One compaction that ran.
pub(super) struct Compacted {
    summarised: usize,
    tokens_before: u64,
    tokens_after: u64,
    count: u64,
}

impl Compacted {
    pub(super) fn notice(&self) -> String {
        format!(
            "🧹 Compacted: {} older messages summarised (~{} → ~{} tokens; compaction {} of this session).",
            self.summarised, self.tokens_before, self.tokens_after, self.count
        )
    }
}

/// What the chat is told (`notifyUser`) when the memory flush failed and the reply goes on.
const FLUSH_FAILED_NOTICE: &str = "⚠️ Memory maintenance temporarily failed; continuing your reply.";

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl AgentRuntime {
    /// The compaction settings for a turn on `models` (the first one's window).
    pub(super) fn housekeeping(&self, cfg: &Config, agent_id: &str, models: &[String]) -> Housekeeping {
        let model = models.first().cloned().unwrap_or_default();
        let plan = plan(cfg, &model);
        // The credential is read only where it decides the route (server-side clearing).
        let mut pruning = chela_core::pruning::plan(cfg, &model, None);
        if pruning.as_ref().is_some_and(|p| matches!(p.route, chela_core::pruning::Route::AnthropicServer { .. })) {
            let auth = model
                .split_once('/')
                .and_then(|(provider, _)| self.providers.get(provider))
                .and_then(|p| p.auth_mode(&agent_dir(cfg, agent_id, &self.env)));
            pruning = chela_core::pruning::plan(cfg, &model, auth);
        }
        let exact = |configured: Option<&String>, what: &str| match configured {
            None => Ok(models.to_vec()),
            Some(m) => self
                .check_model_override(cfg, agent_id, m)
                .map(|m| vec![m])
                .map_err(|why| format!("{what} `{m}`: {why}")),
        };
        let summary_models = exact(plan.model.as_ref(), "agents.defaults.compaction.model");
        let flush_models =
            exact(plan.flush.as_ref().and_then(|f| f.model.as_ref()), "agents.defaults.compaction.memoryFlush.model");
        Housekeeping { plan, pruning, model, summary_models, flush_models }
    }

    /// The messages the next model call is sent, kept within the budget, and
    /// what the chat should be told about it (`notifyUser`, or a failure).
    pub(super) async fn within_budget(
        &self,
        ask: &Ask<'_>,
        tools: &AgentTools,
        specs: &[ToolSpec],
        conversation: &mut Conversation,
        hk: &Housekeeping,
        turn_start: bool,
    ) -> (History, Vec<String>) {
        let plan = &hk.plan;
        let messages = conversation.projected(hk.pruning.as_ref(), &hk.model, clock::now_ms());
        if !plan.enabled {
            return (messages, Vec::new());
        }
        let mut notices = Vec::new();
        let used = request_tokens(&ask.system, specs, &messages);
        let bytes = history_bytes(&messages);
        let too_big = turn_start && plan.max_active_bytes.is_some_and(|max| bytes >= max);
        let forced = plan.flush.as_ref().and_then(|f| f.force_bytes).is_some_and(|max| bytes >= max);
        let flush_due = plan.flush_at().is_some_and(|at| used >= at) || too_big || forced;
        if flush_due
            && conversation.flushed_at_compaction != Some(conversation.view.compactions)
            && !self.memory_flush(ask, tools, specs, conversation, hk).await
            && plan.notify_user
        {
            // OpenClaw's degraded notice: the reply goes on without the flush.
            notices.push(FLUSH_FAILED_NOTICE.to_string());
        }
        if used <= plan.budget() && !too_big {
            return (messages, notices);
        }
        if !too_big {
            if let Some(pruned) = prune_tool_results(&messages) {
                if request_tokens(&ask.system, specs, &pruned) <= plan.budget() {
                    tracing::debug!(session = ask.session_key, "old tool results trimmed; no compaction needed");
                    return (pruned, notices);
                }
            }
        }
        tracing::info!(
            agent = ask.agent_id,
            session = ask.session_key,
            used,
            budget = plan.budget(),
            "auto-compaction start"
        );
        match self.compact(ask, conversation, hk, None, true).await {
            Ok(Some(done)) => {
                tracing::info!(
                    session = ask.session_key,
                    before = done.tokens_before,
                    after = done.tokens_after,
                    "auto-compaction complete"
                );
                notices.extend(plan.notify_user.then(|| done.notice()));
                (conversation.view.messages.clone(), notices)
            }
            Ok(None) => (messages, notices),
            Err(why) => {
                tracing::warn!(agent = ask.agent_id, session = ask.session_key, %why, "auto-compaction failed; the conversation is kept as it was");
                notices.push(format!("⚠️ Compaction failed ({why}); the conversation is kept as it was."));
                (messages, notices)
            }
        }
    }

    /// The silent turn before compaction that lets the agent write durable
    /// notes: on a private copy of the conversation (nothing it says enters
    /// the transcript, nothing reaches the chat), with the agent's own tools;
    /// skipped when none of them can write. Runs once per compaction cycle.
    /// Whether it did not fail (a skipped flush did not). (Boxed: it runs
    /// rounds, which call it.)
    fn memory_flush<'a>(
        &'a self,
        ask: &'a Ask<'_>,
        tools: &'a AgentTools,
        specs: &'a [ToolSpec],
        conversation: &'a mut Conversation,
        hk: &'a Housekeeping,
    ) -> Boxed<'a, bool> {
        Box::pin(async move {
            let cycle = conversation.view.compactions;
            conversation.flushed_at_compaction = Some(cycle);
            if !specs.iter().any(|s| WRITING_TOOLS.contains(&s.name.as_str())) {
                tracing::debug!(session = ask.session_key, "memory flush skipped: no tool here can write");
                return true;
            }
            let models = match &hk.flush_models {
                Ok(m) => m.clone(),
                Err(why) => {
                    tracing::warn!(session = ask.session_key, %why, "memory flush skipped");
                    return false;
                }
            };
            let flush_ask = Ask {
                agent_id: ask.agent_id,
                session_key: ask.session_key,
                models: &models,
                system: format!("{}\n\n{FLUSH_SYSTEM}", ask.system),
                identity: ask.identity.clone(),
                agent_dir: ask.agent_dir.clone(),
                on_text: None,
                live_verbose: None,
                sampling: Sampling::default(),
                thinking: None,
                permit: None,
            };
            let mut private = conversation.detached();
            let date = chrono::Local::now().format("%Y-%m-%d").to_string();
            if private.push(Message::user(&flush_prompt(&date), clock::now_ms())).await.is_err() {
                return false;
            }
            // The flush's own rounds do no housekeeping, so this does not recurse further.
            let flushed = match self.rounds(&flush_ask, tools, specs, &mut private, None).await {
                Ok(_) => {
                    tracing::info!(agent = ask.agent_id, session = ask.session_key, "memory flush complete");
                    true
                }
                Err(e) => {
                    tracing::warn!(agent = ask.agent_id, session = ask.session_key, error = %e, "memory flush failed; compacting anyway");
                    false
                }
            };
            let recorded = conversation
                .update_entry(move |e| {
                    e.memory_flush_at = Some(clock::now_ms());
                    e.memory_flush_compaction_count = Some(cycle);
                })
                .await;
            if let Err(e) = recorded {
                tracing::warn!(session = ask.session_key, error = %e, "could not record the memory flush");
            }
            flushed
        })
    }

    /// Summarises what precedes the kept tail and appends the compaction
    /// entry. `Ok(None)`: nothing old enough to summarise. `automatic` keeps
    /// at least the latest user message when the whole conversation is recent.
    /// On error nothing was written.
    pub(super) async fn compact(
        &self,
        ask: &Ask<'_>,
        conversation: &mut Conversation,
        hk: &Housekeeping,
        focus: Option<&str>,
        automatic: bool,
    ) -> Result<Option<Compacted>, String> {
        let view = &conversation.view;
        let from = usize::from(view.starts_with_summary());
        let Some(cut) = cut_point(&view.messages, hk.plan.keep_recent, from, automatic) else { return Ok(None) };
        let Some(first_kept) = view.ids.get(cut).cloned().flatten() else {
            return Err("the kept messages have no entry id".into());
        };
        let models = hk.summary_models.clone()?;
        if let Some(sink) = &ask.on_text {
            sink(crate::model::TextEvent::Compacting);
        }
        let summarised = &view.messages[from..cut];
        // `safeguard` mode: OpenClaw's sections, the last `recentTurnsPreserve`
        // turns stored verbatim beside the summary rather than summarised,
        // and with its quality guard an audit of each summary, asked again up
        // to `maxRetries` times.
        let guard = hk.plan.safeguard;
        let mut split = preserved_turns::split(summarised, guard.map_or(0, |g| g.recent_turns));
        if split.summarised.is_empty() {
            // All of it is recent: summarised, as there would be nothing else to summarise.
            split = preserved_turns::split(summarised, 0);
        }
        let preserved = preserved_turns::section(&split.preserved);
        let mut input = summary_input(view.summary.as_deref(), &split.summarised, focus);
        let system = guard.map_or_else(|| SUMMARY_SYSTEM.to_string(), |g| safeguard_system(g.strict_identifiers));
        let audited = guard.filter(|g| g.quality_guard);
        // What the stored summary must keep literally: the identifiers of all it stands for.
        let ids = audited
            .filter(|g| g.strict_identifiers)
            .map(|_| identifiers(&summary_input(view.summary.as_deref(), summarised, focus)))
            .unwrap_or_default();
        let latest = audited.and_then(|_| latest_ask(summarised));
        let attempts = audited.map_or(1, |g| g.max_retries + 1);
        let mut summary = String::new();
        for attempt in 1..=attempts {
            let request = ModelRequest {
                purpose: Purpose::Summary,
                // Room for the summary within the reserve.
                sampling: Sampling {
                    max_tokens: Some((hk.plan.reserve * 4 / 5).clamp(256, 8192)),
                    ..Sampling::default()
                },
                model: String::new(),
                system: system.clone(),
                messages: vec![Arc::new(Message::user(&input, clock::now_ms()))],
                tools: Vec::new(),
                identity: ask.identity.clone(),
                agent_dir: ask.agent_dir.clone(),
                on_text: None,
                thinking: match hk.plan.thinking {
                    Some(SummaryThinking::Level(level)) => Some(level),
                    Some(SummaryThinking::Inherit) => ask.thinking,
                    None => None,
                },
                tool_clearing: None,
            };
            let limit = hk.plan.timeout_seconds;
            let asked = tokio::time::timeout(Duration::from_secs(limit), self.complete(ask.agent_id, &models, request));
            let (_, answer) = asked
                .await
                .map_err(|_| {
                    format!(
                        "the summary request took longer than compaction.timeoutSeconds ({limit} s) and was stopped"
                    )
                })?
                .map_err(|e| e.to_string())?;
            summary = answer.text().trim().to_string();
            if summary.is_empty() {
                return Err("the model returned an empty summary".into());
            }
            summary.push_str(&preserved);
            if audited.is_none() {
                break;
            }
            let reasons = audit(&summary, &ids, latest.as_deref());
            if reasons.is_empty() {
                break;
            }
            tracing::warn!(
                session = ask.session_key,
                attempt,
                ?reasons,
                "the compaction summary failed its quality audit"
            );
            if attempt == attempts {
                return Err(format!(
                    "the summary failed the quality audit ({}) after {attempts} attempt{}",
                    reasons.join(", "),
                    if attempts == 1 { "" } else { "s" }
                ));
            }
            input.push_str(&format!(
                "\n\nYour previous summary failed the quality audit ({}). Write the whole summary again: every \
                 required section heading on its own line, every exact identifier literally, and the user's latest \
                 request reflected.",
                reasons.join(", ")
            ));
        }
        let summary = summary.as_str();
        let tokens_before: u64 = view.messages.iter().map(|m| message_tokens(m)).sum();
        let kept: u64 = view.messages[cut..].iter().map(|m| message_tokens(m)).sum();
        let tokens_after = kept + message_tokens(&Message::user(summary, 0));
        let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        let line = compaction_entry(
            &id,
            view.last_id.as_deref(),
            &clock::iso_now(),
            summary,
            &first_kept,
            tokens_before,
            tokens_after,
        );
        conversation.push_entry(line).await.map_err(|e| format!("the compaction could not be stored: {e}"))?;
        let count = conversation.view.compactions;
        if let Err(e) = conversation.update_entry(move |e| e.compaction_count = Some(count)).await {
            tracing::warn!(session = ask.session_key, error = %e, "could not count the compaction in the index");
        }
        Ok(Some(Compacted { summarised: cut - from, tokens_before, tokens_after, count }))
    }

    /// `/compact [focus]`: summarises the session's older messages now,
    /// keeping `keepRecentTokens` of the latest verbatim.
    pub(super) async fn compact_command(
        &self,
        cfg: &Config,
        agent_id: &str,
        inbound: &Inbound,
        instructions: &str,
    ) -> Result<String, RunError> {
        let store = TurnStore::new(self.store_in(cfg, agent_id)?);
        let key = inbound.target.key.as_str().to_string();
        let lookup = key.clone();
        let Some(entry) = store.call(move |s| s.get(&lookup)).await? else {
            return Ok("Nothing to compact: this session has no messages yet.".into());
        };
        let entry = Arc::new(entry);
        let shared = entry.clone();
        let transcript = store.call(move |s| s.transcript(&shared)).await?;
        let (models, identity) = agent_profile(cfg, agent_id);
        let models = match entry.pinned_model() {
            Some(pinned) => vec![pinned],
            None => models,
        };
        let roster = Roster::from_config(cfg);
        let cwd: Arc<str> = agent_workspace(cfg, &roster, agent_id, &self.env).display().to_string().into();
        // `thinkingLevel: "inherit"`: the level this session's turns use.
        let thinking =
            chela_core::thinking::resolve(cfg, agent_id, entry.thinking_level().as_deref()).map(|(level, _)| level);
        let mut conversation = Conversation::new(store, &key, entry, cwd, transcript);
        let hk = self.housekeeping(cfg, agent_id, &models);
        let ask = Ask {
            agent_id,
            session_key: &key,
            models: &models,
            system: String::new(),
            identity,
            agent_dir: agent_dir(cfg, agent_id, &self.env),
            on_text: None,
            live_verbose: None,
            sampling: Sampling::default(),
            thinking,
            permit: None,
        };
        let recent = hk.plan.keep_recent;
        Ok(match self.compact(&ask, &mut conversation, &hk, focus(instructions).as_deref(), false).await {
            Ok(Some(done)) => done.notice(),
            Ok(None) => format!(
                "Nothing to compact: the conversation (~{} tokens) fits in the recent part kept verbatim (keepRecentTokens {recent}).",
                conversation.view.messages.iter().map(|m| message_tokens(m)).sum::<u64>()
            ),
            Err(why) => format!("Compaction failed ({why}); the conversation is unchanged."),
        })
    }
}
