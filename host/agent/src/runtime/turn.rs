//! One agent turn, as named steps: open the session (reset trigger, expiry,
//! index entry) → link the tools this session may hold → build the system
//! prompt → model and tool rounds, each message appended as it happens →
//! record the usage.
//!
//! Must not: route or choose a session key (core decided `inbound.target`),
//! decide tool policy (core's `policy`, applied by linking: a denied tool is
//! simply absent here), or wait on the session queue (the runtime holds the
//! permit around the whole turn).

use std::sync::Arc;
use std::time::Instant;

use chela_core::config::paths::{agent_dir, agent_workspace};
use chela_core::config::schema::Config;
use chela_core::policy::session_kind_for_key;
use chela_core::roster::Roster;
use chela_core::routing::main_key;
use chela_core::session_key::SessionKey;
use chela_plugin::{AgentTools, LinkRequest};
use serde_json::Value;

use super::compact::Housekeeping;
use super::conversation::{Ask, Conversation, TurnStore};
use super::{agent_profile, sender_may_elevate, spawned_by, strip_reset_trigger};
use super::{AgentRuntime, Inbound, RunError, ToolCallSummary, TurnOutcome};
use crate::clock;
use crate::freshness::{self, ResetPolicy};
use crate::model::{split_model, ModelRequest, Purpose, TextSink, ToolSpec};
use crate::persona::{self, Budget, Identity, PromptInput};
use crate::queue::TurnPermit;
use crate::store::{Content, DeliveryContext, Message, Origin, SessionEntry, SessionStore, StoreError};
use chela_core::compaction::is_context_overflow;

/// What the model rounds of one turn produced.
#[derive(Default)]
pub(super) struct Exchange {
    reply: String,
    /// Said before the reply (a compaction that ran with `notifyUser`, or failed).
    pub(super) notices: Vec<String>,
    model: String,
    calls: Vec<ToolCallSummary>,
    /// What each call returned, beside `calls` (for `/verbose full`).
    outputs: Vec<String>,
    input_tokens: u64,
    output_tokens: u64,
    /// Time spent waiting on the model (all rounds).
    model_time: std::time::Duration,
}

/// The result a tool call the model asked for gets when a steered message
/// came before it started (OpenClaw's wording).
const STEER_SKIP: &str = "Skipped to process an incoming message.";

impl AgentRuntime {
    pub(super) async fn turn(
        &self,
        cfg: &Config,
        agent_id: &str,
        inbound: Inbound,
        on_text: Option<TextSink>,
        permit: &TurnPermit,
    ) -> Result<TurnOutcome, RunError> {
        let store = TurnStore::new(self.store_in(cfg, agent_id)?);
        let key = inbound.target.key.as_str();
        // Replicas on one database: this session's turn runs here alone.
        let _held = store.hold(key).await?;
        let (text, explicit_reset) = strip_reset_trigger(cfg, &inbound.text);
        // The reply's channel, else the one the caller says it speaks for (`x-openclaw-message-channel`).
        let channel = inbound.delivery.as_ref().map(|d| d.channel.as_str()).or(inbound.origin.provider.as_deref());
        let policy = freshness::policy_for(cfg, channel, inbound.target.chat_type);
        let fresh = inbound.scheduled.is_some_and(|s| s.fresh_session);
        let opening = Opening {
            key: key.to_string(),
            explicit_reset: explicit_reset || fresh,
            policy,
            stamp: Stamp::of(&inbound),
        };
        let (reset, entry) = store.call(move |s| open_session(s, &opening)).await?;
        let (mut models, identity) = agent_profile(cfg, agent_id);
        if let Some(m) = &inbound.model_override {
            models = vec![m.clone()];
        } else if let Some(pinned) = entry.pinned_model() {
            // The session's own pick (`/model`) is exact: no fallbacks, and a
            // pick the config no longer allows fails visibly.
            let checked = self.check_model_override(cfg, agent_id, &pinned).map_err(|why| RunError::Model {
                agent: agent_id.to_string(),
                tried: vec![format!("{pinned} (this session's /model pick): {why}; `/model default` clears it")],
            })?;
            models = vec![checked];
        }
        let outcome = |session_id: String, exchange: Exchange| TurnOutcome {
            agent_id: agent_id.to_string(),
            session_key: key.to_string(),
            session_id,
            reply: with_notices(&exchange.notices, exchange.reply),
            model: exchange.model,
            tool_calls: exchange.calls,
            reset,
            input_tokens: exchange.input_tokens,
            output_tokens: exchange.output_tokens,
            model_seconds: exchange.model_time.as_secs_f64(),
            store_seconds: store.waited().as_secs_f64(),
            absorbed: None,
        };
        if text.trim().is_empty() {
            let greeting = Exchange {
                reply: format!("New session started with {}.", identity.name),
                model: models.first().cloned().unwrap_or_default(),
                ..Exchange::default()
            };
            return Ok(outcome(entry.session_id, greeting));
        }

        let roster = Roster::from_config(cfg);
        let workspace = agent_workspace(cfg, &roster, agent_id, &self.env);
        let entry = Arc::new(entry);
        let shared = entry.clone();
        let transcript = store.call(move |s| s.transcript(&shared)).await?;
        let cwd: Arc<str> = workspace.display().to_string().into();
        let mut conversation = Conversation::new(store.clone(), key, entry.clone(), cwd, transcript);
        let housekeeping = self.housekeeping(cfg, agent_id, &models);
        // Right after a start, tool components may still be compiling: wait
        // for them rather than run the turn without its tools.
        self.plugins.settled().await;
        let tools = self.link_tools(cfg, agent_id, &entry, &inbound);
        let specs = tool_specs(&tools);
        let ask = Ask {
            agent_id,
            session_key: key,
            models: &models,
            system: self.system_prompt(cfg, agent_id, &identity, &workspace, &specs, &inbound),
            identity,
            agent_dir: agent_dir(cfg, agent_id, &self.env),
            live_verbose: (inbound.live_tool_summaries && on_text.is_some())
                .then(|| entry.verbose_level())
                .filter(|l| *l != crate::store::Verbose::Off),
            on_text,
            sampling: inbound.sampling.clone().unwrap_or_default(),
            thinking: chela_core::thinking::resolve(cfg, agent_id, entry.thinking_level().as_deref()).map(|(l, _)| l),
            permit: Some(permit),
        };
        let compactions_before = conversation.view.compactions;
        let exchange = match resumed(&mut conversation, inbound.message_ref.as_deref()).await? {
            Resumed::Answered(exchange) => exchange,
            Resumed::Continue => self.rounds(&ask, &tools, &specs, &mut conversation, Some(&housekeeping)).await?,
            Resumed::New => {
                let message = Message::user_with(&text, &inbound.media, clock::now_ms());
                conversation.push_as(message, inbound.message_ref.as_deref()).await?;
                // The messages this one carries (collected, summarized) are stored with it.
                permit.stored();
                self.rounds(&ask, &tools, &specs, &mut conversation, Some(&housekeeping)).await?
            }
        };
        // Session pruning's marker, as OpenClaw writes one after a turn that
        // did not compact (its boundary is being rewritten then).
        if housekeeping.pruning.is_some() && conversation.view.compactions == compactions_before {
            if let Err(e) = conversation.mark_cache(&exchange.model).await {
                tracing::warn!(session = key, error = %e, "could not record the prompt cache's touch");
            }
        }
        let usage = (key.to_string(), exchange.input_tokens, exchange.output_tokens);
        let done = store.call(move |s| record_usage(s, &usage.0, usage.1, usage.2)).await?;
        let mut exchange = exchange;
        if !inbound.live_tool_summaries {
            exchange.reply = verbose_reply(entry.verbose_level(), exchange.reply, &exchange.calls, &exchange.outputs);
        }
        Ok(outcome(done.session_id, exchange))
    }

    /// The tools this session may hold, linked now (a plugin dropped in a
    /// moment ago is already here). A sub-agent's parent is known by its stored key only.
    fn link_tools(&self, cfg: &Config, agent_id: &str, entry: &SessionEntry, inbound: &Inbound) -> AgentTools {
        let spawner = spawned_by(entry).map(|parent| {
            let parent_main = SessionKey::main(&parent.agent_id(), main_key(cfg));
            let parent_kind = session_kind_for_key(cfg, &parent.agent_id(), parent.as_str(), parent_main.as_str());
            (parent.agent_id(), parent_kind)
        });
        let request = LinkRequest {
            agent_id,
            kind: inbound.target.kind.clone(),
            parent: spawner.as_ref().map(|(a, k)| (a.as_str(), k.clone())),
            // The sender's right, as the session's `/elevated` level leaves it.
            elevated: sender_may_elevate(cfg, agent_id, inbound)
                && chela_core::policy::elevated_level(cfg, agent_id, entry.elevated_level().as_deref()) != "off",
            exec: inbound.exec_tightening,
            services: self.services(),
        };
        let secrets = self.secrets.clone();
        self.plugins.link_session(cfg, &self.env, &request, &move |p| secrets(p))
    }

    /// The persona files, skills and tool list as one system prompt, plus the
    /// turn's own extra context (agent-to-agent).
    fn system_prompt(
        &self,
        cfg: &Config,
        agent_id: &str,
        identity: &Identity,
        workspace: &std::path::Path,
        specs: &[ToolSpec],
        inbound: &Inbound,
    ) -> String {
        let tool_names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        let defaults = cfg.agent_defaults();
        let fallback = Budget::default();
        let budget = Budget {
            per_file: defaults.and_then(|d| d.bootstrap_max_chars).map(|n| n as usize).unwrap_or(fallback.per_file),
            total: defaults.and_then(|d| d.bootstrap_total_max_chars).map(|n| n as usize).unwrap_or(fallback.total),
        };
        let mut system = persona::system_prompt(&PromptInput {
            identity,
            workspace,
            shared_skills: &self.env.state_dir().join("skills"),
            skill_filter: cfg.agent(agent_id).and_then(|(_, a)| a.skills.as_deref()),
            tool_names: &tool_names,
            budget,
            minimal: inbound.target.key.is_background(),
            light: inbound.scheduled.is_some_and(|s| s.light_context),
            now: &chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        });
        if let Some(extra) = &inbound.extra_system {
            system.push_str("\n\n");
            system.push_str(extra);
        }
        system
    }

    /// Model calls until one asks for no tool, bounded by `max_rounds`; each
    /// asked-for tool runs between rounds. With `housekeeping`, each request
    /// is kept within the session's budget first (memory flush, pruning,
    /// compaction), and a request the provider refuses as too long is
    /// compacted and asked again once; without (the memory flush's own
    /// rounds), the conversation goes as it is.
    pub(super) async fn rounds(
        &self,
        ask: &Ask<'_>,
        tools: &AgentTools,
        specs: &[ToolSpec],
        conversation: &mut Conversation,
        housekeeping: Option<&Housekeeping>,
    ) -> Result<Exchange, RunError> {
        let mut exchange = Exchange { model: ask.models.first().cloned().unwrap_or_default(), ..Exchange::default() };
        let mut recovered = false;
        if let Some(p) = ask.permit {
            // From now on a message sent meanwhile may steer this turn.
            p.steering().open();
        }
        for round in 0..self.limits.max_rounds {
            if round > 0 {
                // A model decision is a boundary: what was steered in meanwhile is seen first.
                take_steered(ask, conversation).await?;
            }
            let (name, answer) = loop {
                let messages = match housekeeping {
                    Some(hk) => {
                        let (messages, notices) =
                            self.within_budget(ask, tools, specs, conversation, hk, round == 0).await;
                        exchange.notices.extend(notices);
                        messages
                    }
                    None => conversation.view.messages.clone(),
                };
                if let Some(sink) = &ask.on_text {
                    sink(crate::model::TextEvent::Thinking);
                }
                let request = ModelRequest {
                    purpose: Purpose::Turn,
                    sampling: ask.sampling.clone(),
                    model: String::new(),
                    system: ask.system.clone(),
                    messages,
                    tools: specs.to_vec(),
                    identity: ask.identity.clone(),
                    agent_dir: ask.agent_dir.clone(),
                    on_text: ask.on_text.clone(),
                    thinking: ask.thinking,
                    tool_clearing: housekeeping.and_then(|hk| {
                        super::prune::server_clearing(hk.pruning.as_ref(), specs, &conversation.view.messages)
                    }),
                };
                let asked = std::time::Instant::now();
                let asked_ms = clock::now_ms();
                let answered = match ask.permit {
                    Some(p) => tokio::select! {
                        a = self.complete(ask.agent_id, ask.models, request) => a,
                        why = p.aborted() => return Err(RunError::Aborted(why)),
                    },
                    None => self.complete(ask.agent_id, ask.models, request).await,
                };
                exchange.model_time += asked.elapsed();
                match (answered, housekeeping) {
                    (Ok(a), hk) => {
                        if hk.is_some() {
                            conversation.cache_touched(asked_ms);
                        }
                        break a;
                    }
                    (Err(RunError::Model { agent, tried }), Some(hk))
                        if !recovered && tried.iter().any(|t| is_context_overflow(t)) =>
                    {
                        recovered = true;
                        tracing::info!(
                            agent = ask.agent_id,
                            session = ask.session_key,
                            "the model refused the context as too long; compacting"
                        );
                        match self.compact(ask, conversation, hk, None, true).await {
                            Ok(Some(done)) => exchange.notices.extend(hk.plan.notify_user.then(|| done.notice())),
                            Ok(None) | Err(_) => return Err(RunError::Model { agent, tried }),
                        }
                    }
                    (Err(e), _) => return Err(e),
                }
            };
            exchange.input_tokens += answer.usage.input;
            exchange.output_tokens += answer.usage.output;
            let (provider, model) = split_model(&name).unwrap_or(("", ""));
            let assistant = Message::Assistant {
                content: answer.content,
                timestamp: clock::now_ms(),
                provider: provider.to_string(),
                model: model.to_string(),
                usage: answer.usage,
                stop_reason: answer.stop_reason,
            };
            exchange.model = name.clone();
            exchange.reply = assistant.text();
            if let Some(sink) = &ask.on_text {
                sink(crate::model::TextEvent::MessageEnd);
            }
            let wanted: Vec<(String, String, Value)> =
                assistant.tool_calls().into_iter().map(|(i, n, a)| (i.to_string(), n.to_string(), a.clone())).collect();
            conversation.push(assistant).await?;
            if wanted.is_empty() {
                break;
            }
            if round + 1 == self.limits.max_rounds {
                exchange.reply = format!("(stopped: more than {} model rounds in one turn)", self.limits.max_rounds);
                break;
            }
            for (i, (call_id, name, arguments)) in wanted.iter().enumerate() {
                let steered = ask.permit.is_some_and(|p| p.steering().pending());
                if steered {
                    // A tool not started yet gives way to the steered message.
                    conversation.push(skipped(call_id, name, STEER_SKIP)).await?;
                    continue;
                }
                let call = self.call_tool(ask, tools, call_id.clone(), name.clone(), arguments);
                let (result, summary) = match ask.permit {
                    Some(p) => tokio::select! {
                        done = call => done,
                        why = p.aborted() => {
                            // Every call keeps a result: this one and those after say why.
                            for (id, n, _) in &wanted[i..] {
                                conversation.push(skipped(id, n, &format!("Not completed: the turn was aborted ({why})."))).await?;
                            }
                            return Err(RunError::Aborted(why));
                        }
                    },
                    None => call.await,
                };
                if let (Some(level), Some(sink)) = (ask.live_verbose, &ask.on_text) {
                    sink(crate::model::TextEvent::ToolSummary(&verbose_line(level, &summary, &result.text())));
                }
                exchange.calls.push(summary);
                exchange.outputs.push(result.text());
                conversation.push(result).await?;
            }
        }
        Ok(exchange)
    }

    /// One tool call the model asked for, as the transcript's tool result.
    /// Only linked tools can run: a denied tool is not in `tools`.
    async fn call_tool(
        &self,
        ask: &Ask<'_>,
        tools: &AgentTools,
        call_id: String,
        name: String,
        arguments: &Value,
    ) -> (Message, ToolCallSummary) {
        let started = Instant::now();
        if let Some(sink) = &ask.on_text {
            sink(crate::model::TextEvent::Tool(&name));
        }
        let (out, is_error) = match tools.get(&name) {
            None => (format!("tool `{name}` is not available to agent `{}`", ask.agent_id), true),
            Some(t) => match t.invoke(&self.plugins, ask.session_key, &call_id, &arguments.to_string()).await {
                Ok(o) => match o.value {
                    Ok(v) => (v, false),
                    Err(e) => (serde_json::to_string(&e).unwrap_or_default(), true),
                },
                Err(e) => (e.to_string(), true),
            },
        };
        let summary =
            ToolCallSummary { name: name.clone(), ok: !is_error, elapsed_ms: started.elapsed().as_millis() as u64 };
        let result = Message::ToolResult {
            tool_call_id: call_id,
            tool_name: name,
            content: vec![Content::Text { text: out }],
            is_error,
            timestamp: clock::now_ms(),
        };
        (result, summary)
    }
}

/// The tool result of a call that did not run.
fn skipped(call_id: &str, name: &str, why: &str) -> Message {
    Message::ToolResult {
        tool_call_id: call_id.to_string(),
        tool_name: name.to_string(),
        content: vec![Content::Text { text: why.to_string() }],
        is_error: true,
        timestamp: clock::now_ms(),
    }
}

/// The messages steered into the running turn since the last boundary,
/// appended as the user's (each with its platform message, so a replay
/// after a crash finds it answered).
async fn take_steered(ask: &Ask<'_>, conversation: &mut Conversation) -> Result<(), StoreError> {
    let Some(p) = ask.permit else { return Ok(()) };
    for taken in p.steering().take() {
        tracing::info!(agent = ask.agent_id, session = ask.session_key, "a message steered into the running turn");
        conversation.push_as(Message::user(&taken.text, clock::now_ms()), taken.message_ref.as_deref()).await?;
        // Done only once it is on disk: a crash before leaves it to run again.
        taken.stored();
    }
    Ok(())
}

/// Where a turn for an inbound message stands when it starts.
enum Resumed {
    /// First time: the message is appended and answered.
    New,
    /// A crash cut the turn off after the message was stored: go on from
    /// the conversation as it is (tool calls it left without a result are
    /// answered as interrupted).
    Continue,
    /// The turn had finished: its reply is the answer, no model is called.
    Answered(Exchange),
}

/// Whether the conversation already holds the turn for `message_ref`.
async fn resumed(conversation: &mut Conversation, message_ref: Option<&str>) -> Result<Resumed, StoreError> {
    let Some(r) = message_ref else { return Ok(Resumed::New) };
    let view = &conversation.view;
    let Some(at) = view.inbound_refs.iter().rposition(|x| x.as_deref() == Some(r)) else {
        return Ok(Resumed::New);
    };
    let after = &view.messages[(at + 1).min(view.messages.len())..];
    if let Some(m @ Message::Assistant { provider, model, .. }) = after.last().map(|m| m.as_ref()) {
        if m.tool_calls().is_empty() {
            tracing::info!(inbound = r, "the turn finished before a restart; its reply is used");
            let exchange = Exchange { reply: m.text(), model: format!("{provider}/{model}"), ..Exchange::default() };
            return Ok(Resumed::Answered(exchange));
        }
    }
    // Tool calls of the last answer that have no result yet.
    let last_answer = after.iter().rposition(|m| matches!(m.as_ref(), Message::Assistant { .. }));
    let pending: Vec<(String, String)> = match last_answer {
        None => Vec::new(),
        Some(i) => {
            let done: Vec<&str> = after[i + 1..]
                .iter()
                .filter_map(|m| match m.as_ref() {
                    Message::ToolResult { tool_call_id, .. } => Some(tool_call_id.as_str()),
                    _ => None,
                })
                .collect();
            after[i]
                .tool_calls()
                .into_iter()
                .filter(|(id, _, _)| !done.contains(id))
                .map(|(id, name, _)| (id.to_string(), name.to_string()))
                .collect()
        }
    };
    tracing::info!(inbound = r, interrupted_tools = pending.len(), "continuing a turn a restart cut off");
    for (call_id, name) in pending {
        conversation
            .push(Message::ToolResult {
                tool_call_id: call_id,
                tool_name: name,
                content: vec![Content::Text {
                    text: "the gateway restarted while this tool call ran; it may not have completed".into(),
                }],
                is_error: true,
                timestamp: clock::now_ms(),
            })
            .await?;
    }
    Ok(Resumed::Continue)
}

/// The reply with what the chat is told first (compaction notices).
/// The longest part of a tool's result `/verbose full` shows.
const VERBOSE_RESULT_CHARS: usize = 300;

/// The reply with the tools it used after it (`/verbose on`; `full`: with
/// what each returned). The transcript keeps the reply alone.
fn verbose_reply(level: crate::store::Verbose, reply: String, calls: &[ToolCallSummary], outputs: &[String]) -> String {
    use crate::store::Verbose;
    if level == Verbose::Off || calls.is_empty() {
        return reply;
    }
    let lines: Vec<String> = calls
        .iter()
        .enumerate()
        .map(|(i, c)| verbose_line(level, c, outputs.get(i).map_or("", String::as_str)))
        .collect();
    format!("{reply}\n\n{}", lines.join("\n"))
}

/// One tool call as `/verbose` shows it: name, ✓ or ✗, time; `full`: what it returned, cut.
fn verbose_line(level: crate::store::Verbose, c: &ToolCallSummary, out: &str) -> String {
    let mark = if c.ok { "✓" } else { "✗" };
    let mut line = format!("🔧 {} {mark} ({} ms)", c.name, c.elapsed_ms);
    if level == crate::store::Verbose::Full {
        let mut shown: String = out.chars().take(VERBOSE_RESULT_CHARS).collect();
        if out.chars().count() > VERBOSE_RESULT_CHARS {
            shown.push('…');
        }
        line.push_str(&format!(": {}", shown.replace('\n', " ")));
    }
    line
}

fn with_notices(notices: &[String], reply: String) -> String {
    if notices.is_empty() {
        return reply;
    }
    format!("{}\n\n{reply}", notices.join("\n"))
}

/// What a message stamps on its session's index entry.
struct Stamp {
    chat_type: String,
    origin: Origin,
    delivery: Option<DeliveryContext>,
    /// A scheduled turn (cron, heartbeat): it neither expires the session
    /// nor counts as activity that keeps it fresh (as in OpenClaw).
    scheduled: bool,
}

impl Stamp {
    fn of(inbound: &Inbound) -> Stamp {
        Stamp {
            chat_type: inbound.target.chat_type.as_str().to_string(),
            origin: inbound.origin.clone(),
            delivery: inbound.delivery.clone(),
            scheduled: inbound.scheduled.is_some(),
        }
    }
}

/// How a message opens its session, decided from the config before the store is touched.
struct Opening {
    key: String,
    /// The message carried a reset trigger (`/new`, `/reset`).
    explicit_reset: bool,
    /// When an idle session expires (checked on this message).
    policy: ResetPolicy,
    stamp: Stamp,
}

/// Applies a reset (explicit trigger, or expiry checked on this message) and
/// stamps the index entry with this message's chat and delivery. Returns
/// whether the session was reset, and the entry.
fn open_session(store: &dyn SessionStore, opening: &Opening) -> Result<(bool, SessionEntry), StoreError> {
    let key = opening.key.as_str();
    let now = clock::now_ms();
    let mut reset = opening.explicit_reset;
    if reset {
        store.reset(key)?;
    } else if let Some(old) = store.get(key)?.filter(|_| !opening.stamp.scheduled) {
        let last = old.last_interaction_at.unwrap_or(old.updated_at);
        if freshness::is_stale_now(opening.policy, old.session_started_at.unwrap_or(last), last) {
            tracing::info!(session = key, "session expired; starting a new one");
            store.reset(key)?;
            reset = true;
        }
    }
    let stamp = &opening.stamp;
    let entry = store.upsert(key, &mut |e| {
        e.updated_at = now;
        if !stamp.scheduled {
            e.last_interaction_at = Some(now);
        }
        e.chat_type = Some(stamp.chat_type.clone());
        // A chat session keeps its chat's origin when another agent or a sub-agent writes into it.
        if stamp.delivery.is_some() || e.origin.is_none() {
            e.origin = Some(stamp.origin.clone());
        }
        if let Some(d) = &stamp.delivery {
            e.last_channel = Some(d.channel.clone());
            e.last_to = Some(d.to.clone());
            e.last_account_id = Some(d.account_id.clone());
            e.last_thread_id = d.thread_id.clone();
            e.delivery_context = Some(d.clone());
        }
    })?;
    Ok((reset, entry))
}

/// The linked tools as the model is told about them.
fn tool_specs(tools: &AgentTools) -> Vec<ToolSpec> {
    tools
        .descriptors()
        .into_iter()
        .map(|d| ToolSpec {
            name: d.name.clone(),
            description: d.description.clone(),
            parameters: serde_json::from_str(&d.parameters_schema).unwrap_or(Value::Null),
        })
        .collect()
}

/// Adds the turn's token usage to the session's index entry.
fn record_usage(store: &dyn SessionStore, key: &str, input: u64, output: u64) -> Result<SessionEntry, StoreError> {
    store.upsert(key, &mut |e| {
        e.updated_at = clock::now_ms();
        e.input_tokens = Some(e.input_tokens.unwrap_or(0) + input);
        e.output_tokens = Some(e.output_tokens.unwrap_or(0) + output);
        e.total_tokens = Some(e.input_tokens.unwrap_or(0) + e.output_tokens.unwrap_or(0));
    })
}
