//! The run loop: one inbound message → one agent turn.
//!
//! prompt (persona, re-read every turn) → model → tool calls through the
//! agent's capability-linked tools → results → model … bounded in rounds and
//! time; every message is appended to the transcript as it happens, so a
//! crash loses at most the step in progress. Turns of one session key run in
//! arrival order ([`SessionQueues`]); other sessions run in parallel.
//!
//! Must not: route, build session keys or decide tool policy (core does); the steps of one turn
//! live in `runtime/turn.rs`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chela_core::snapshot::{Snapshot, SnapshotCell};
use std::time::Duration;

use chela_core::config::paths::Environment;
use chela_core::config::schema::Config;
use chela_core::ids::{normalize_agent_id, ChatType};
use chela_core::policy::elevated_allowed;
use chela_core::queue_mode::{DropPolicy, QueueMode, QueueSettings};
use chela_core::routing::SessionTarget;
use chela_core::session_key::SessionKey;
use chela_plugin::capability::messaging::MessagingAccess;
use chela_plugin::capability::secrets::SecretStore;
use chela_plugin::capability::sessions::SessionsAccess;
use chela_plugin::capability::HostServices;
use chela_plugin::Plugins;

mod admission;
mod commands;
mod compact;
mod conversation;
mod prune;
mod turn;

use crate::model::{split_model, ModelReply, ModelRequest, ProviderError, Providers, TextSink};
use crate::persona::Identity;
use crate::queue::{Absorbed, QueueFull, SessionQueues};
use crate::store::{DeliveryContext, Durability, FileStore, Origin, SessionStore, StoreError};
use admission::{absorbed_outcome, arrival, Caller};

/// The model an agent uses when none is configured: works with no key and no network.
pub const DEFAULT_MODEL: &str = "offline/persona";

#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    /// Model calls per turn (each may ask for tools).
    pub max_rounds: usize,
    /// Wall-clock bound on one turn, queue wait excluded.
    pub turn_timeout: Duration,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits { max_rounds: 8, turn_timeout: Duration::from_secs(300) }
    }
}

/// Waits before a turn the session store refused runs again (the session's
/// later messages wait behind it).
const STORE_FIRST_RETRY: Duration = Duration::from_millis(500);
const STORE_LONGEST_RETRY: Duration = Duration::from_secs(30);

/// One message for an agent, already routed.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// Where the turn runs, as core decided it (a route's target, or a key
    /// from core's constructors); the runtime never re-derives any of it.
    pub target: SessionTarget,
    pub text: String,
    /// The sender's platform id, for `tools.elevated` (`None`: not a platform user).
    pub sender_id: Option<String>,
    pub origin: Origin,
    /// Added to the system prompt of this turn only (agent-to-agent context).
    pub extra_system: Option<String>,
    pub delivery: Option<DeliveryContext>,
    /// The platform message this turn answers (`<channel>/<account>/<chat>/<id>`):
    /// a turn for it that a crash cut off is continued, not started twice.
    pub message_ref: Option<String>,
    /// This turn's model instead of the agent's own (`x-openclaw-model`),
    /// already checked with [`AgentRuntime::check_model_override`].
    pub model_override: Option<String>,
    /// Sampling and length settings for this turn's model calls (the OpenAI
    /// endpoint's `temperature`, `max_completion_tokens`…), best effort.
    pub sampling: Option<crate::model::Sampling>,
    /// A turn the scheduler starts (a cron job, a heartbeat), not a person.
    pub scheduled: Option<Scheduled>,
    /// Blocks stored after the text in the user's message: the images that
    /// came with it (`Content::Image`). Files of other kinds are described
    /// in `text` by whoever took them in.
    pub media: Vec<crate::store::Content>,
    /// The caller shows the session's `/verbose` tool summaries as each
    /// call finishes (`TextEvent::ToolSummary`, to a chat), so the reply
    /// does not list them again; otherwise they follow the reply.
    pub live_tool_summaries: bool,
    /// The message's own `/exec security=… ask=…`: stricter host exec
    /// rules for its turn alone.
    pub exec_tightening: chela_core::policy::Tightening,
}

/// How a scheduled turn opens its session and prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scheduled {
    /// Start a new session id first (an `isolated` job's fresh session per run).
    pub fresh_session: bool,
    /// Leave the workspace bootstrap files out of the system prompt (`lightContext`).
    pub light_context: bool,
}

/// A tool call made during a turn.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallSummary {
    pub name: String,
    pub ok: bool,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnOutcome {
    pub agent_id: String,
    pub session_key: String,
    pub session_id: String,
    pub reply: String,
    pub model: String,
    pub tool_calls: Vec<ToolCallSummary>,
    /// The session was reset by this message (trigger or expiry).
    pub reset: bool,
    /// Tokens the model reported for this turn (all rounds).
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Seconds waiting on the model, all rounds.
    pub model_seconds: f64,
    /// Seconds waiting on the session store (its syncs included), all calls.
    pub store_seconds: f64,
    /// The message got no turn of its own (steered into the running turn,
    /// collected, dropped by the queue's cap, cleared by `/stop`); `reply` is empty.
    pub absorbed: Option<Absorbed>,
}

impl TurnOutcome {
    /// A chat command's answer (no model turn).
    pub fn is_command(&self) -> bool {
        self.model == commands::COMMAND_MODEL
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("unknown agent `{0}`")]
    UnknownAgent(String),
    #[error(transparent)]
    QueueFull(#[from] QueueFull),
    #[error("session store: {0}")]
    Store(#[from] StoreError),
    #[error("no model could answer for agent `{agent}`: {}", .tried.join("; "))]
    Model { agent: String, tried: Vec<String> },
    #[error("the turn did not finish within {0:?}")]
    Timeout(Duration),
    #[error("the session queue was closed")]
    Closed,
    /// `/stop`, or a newer message under queue mode `interrupt`.
    #[error("the turn was aborted: {0}")]
    Aborted(&'static str),
}

pub type SecretsFor = dyn Fn(&str) -> Arc<SecretStore> + Send + Sync;

/// A reply that no inbound message waits for — a sub-agent's result, as its
/// parent session answered it — to be delivered to that session's chat.
#[derive(Debug, Clone)]
pub struct Announcement {
    pub session_key: SessionKey,
    pub delivery: Option<DeliveryContext>,
    /// The kind of chat `delivery.to` is.
    pub chat_type: ChatType,
    pub text: String,
}

pub type Announcer = dyn Fn(Announcement) + Send + Sync;

/// Everything an [`AgentRuntime`] is built from, given once: nothing is
/// installed into it afterwards.
pub struct RuntimeParts {
    /// The snapshot in force, shared with whoever reloads it (the gateway).
    pub snapshot: Arc<SnapshotCell>,
    pub env: Environment,
    pub plugins: Arc<Plugins>,
    pub providers: Providers,
    /// Each tool plugin's secrets.
    pub secrets: Arc<SecretsFor>,
    pub limits: RunLimits,
    /// How far transcript and index writes go before a turn continues (default: fsync).
    pub durability: Durability,
    /// Where announcements go (the gateway delivers them through the channel;
    /// `None`: they are logged and stay in the transcript).
    pub announcer: Option<Arc<Announcer>>,
    /// What the `message` tool sends through (the gateway's channels; `None`:
    /// its calls fail as unavailable).
    pub messaging: Option<Arc<dyn MessagingAccess>>,
    /// The shared database sessions live in (core's `storage`); `None`: the
    /// embedded files.
    pub database: Option<Arc<chela_database::Database>>,
    /// Where `/loop` stores its jobs (the gateway's scheduler; `None`:
    /// `/loop` needs a running gateway).
    pub loops: Option<Arc<dyn crate::loops::ConversationLoops>>,
    /// What the `automations` tool manages jobs through (the gateway's
    /// scheduler; `None`: its calls fail as unavailable).
    pub automations: Option<Arc<dyn chela_plugin::capability::automations::AutomationsAccess>>,
    /// Where host commands that need an approval are asked for, and where
    /// `/approve` settles them (the gateway; `None`: such commands are
    /// refused, and `/approve` needs a gateway).
    pub exec_approvals: Option<Arc<dyn chela_plugin::capability::process::ExecApprovals>>,
    pub approvals: Option<Arc<dyn crate::approvals::ApprovalDecisions>>,
}

impl RuntimeParts {
    /// Parts with the default limits, fsync durability and no announcer.
    pub fn new(
        snapshot: Arc<SnapshotCell>,
        env: Environment,
        plugins: Arc<Plugins>,
        providers: Providers,
        secrets: Arc<SecretsFor>,
    ) -> RuntimeParts {
        RuntimeParts {
            snapshot,
            env,
            plugins,
            providers,
            secrets,
            limits: RunLimits::default(),
            durability: Durability::default(),
            announcer: None,
            messaging: None,
            database: None,
            loops: None,
            automations: None,
            exec_approvals: None,
            approvals: None,
        }
    }
}

pub struct AgentRuntime {
    env: Environment,
    /// The snapshot in force, shared with the gateway (one swap on reload).
    snapshot: Arc<SnapshotCell>,
    plugins: Arc<Plugins>,
    providers: Providers,
    secrets: Arc<SecretsFor>,
    /// Opened stores, by directory (files) or agent (the database).
    stores: Mutex<HashMap<String, Arc<dyn SessionStore>>>,
    durability: Durability,
    database: Option<Arc<chela_database::Database>>,
    queues: SessionQueues,
    limits: RunLimits,
    /// Turns started by tools (agent-to-agent, sub-agents) that no caller awaits.
    background: Mutex<tokio::task::JoinSet<()>>,
    announcer: Option<Arc<Announcer>>,
    /// What `sessions_*` tools of this runtime's turns see (answered from its stores).
    sessions: Arc<dyn SessionsAccess>,
    messaging: Option<Arc<dyn MessagingAccess>>,
    pub(crate) loops: Option<Arc<dyn crate::loops::ConversationLoops>>,
    automations: Option<Arc<dyn chela_plugin::capability::automations::AutomationsAccess>>,
    exec_approvals: Option<Arc<dyn chela_plugin::capability::process::ExecApprovals>>,
    pub(crate) approvals: Option<Arc<dyn crate::approvals::ApprovalDecisions>>,
    /// Set by [`AgentRuntime::close`]: turns the store refuses stop waiting for it.
    closing: tokio::sync::watch::Sender<bool>,
}

impl AgentRuntime {
    /// The runtime of `parts`, answering its tools' `sessions` calls through
    /// `sessions` (built by `assemble.rs`, which ties the two together).
    pub(crate) fn from_parts(parts: RuntimeParts, sessions: Arc<dyn SessionsAccess>) -> AgentRuntime {
        let RuntimeParts {
            snapshot,
            env,
            plugins,
            providers,
            secrets,
            limits,
            durability,
            announcer,
            messaging,
            database,
            loops,
            automations,
            exec_approvals,
            approvals,
        } = parts;
        AgentRuntime {
            env,
            snapshot,
            plugins,
            providers,
            secrets,
            stores: Mutex::default(),
            durability,
            database,
            queues: SessionQueues::new(),
            limits,
            background: Mutex::default(),
            announcer,
            sessions,
            messaging,
            loops,
            automations,
            exec_approvals,
            approvals,
            closing: tokio::sync::watch::channel(false).0,
        }
    }

    /// The host services its turns' tools are linked with.
    pub(crate) fn services(&self) -> HostServices {
        HostServices {
            sessions: Some(self.sessions.clone()),
            messaging: self.messaging.clone(),
            automations: self.automations.clone(),
            exec_approvals: self.exec_approvals.clone(),
        }
    }

    pub(crate) fn announce(&self, a: Announcement) {
        match &self.announcer {
            Some(f) => f(a),
            None => tracing::info!(session = %a.session_key, text = %a.text, "announcement (no channel to deliver it)"),
        }
    }

    /// Runs `task` in the background; [`AgentRuntime::settle`] waits for it.
    pub(crate) fn spawn_background(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut set = self.background.lock().unwrap_or_else(|p| p.into_inner());
        while set.try_join_next().is_some() {}
        set.spawn(task);
    }

    /// Waits until no background turn is left (they may start more; waits for those too).
    pub async fn settle(&self) {
        loop {
            let mut set = std::mem::take(&mut *self.background.lock().unwrap_or_else(|p| p.into_inner()));
            if set.is_empty() {
                return;
            }
            while set.join_next().await.is_some() {}
        }
    }

    /// Turns of `session_key` running or waiting.
    pub fn queue_depth(&self, session_key: &str) -> usize {
        self.queues.depths().into_iter().find(|(k, _)| k == session_key).map(|(_, n)| n).unwrap_or(0)
    }

    /// The config in force (for work no message started: background turns, stores).
    pub fn config(&self) -> Arc<Config> {
        self.snapshot.load().config.clone()
    }

    /// The snapshot in force; a message takes it once and runs on it.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load()
    }

    pub fn plugins(&self) -> &Arc<Plugins> {
        &self.plugins
    }

    /// The text of an audio file sent to `agent_id`, by the transcription
    /// model `tools.media` names (core's `media::transcription`), with that
    /// agent's credentials: `Ok(None)` when none is configured.
    pub async fn transcribe(
        &self,
        cfg: &Config,
        agent_id: &str,
        file_name: &str,
        mime_type: &str,
        data: &[u8],
    ) -> Result<Option<String>, ProviderError> {
        let Some(t) = chela_core::media::transcription(cfg) else { return Ok(None) };
        let Some(provider) = self.providers.get(&t.provider) else {
            return Err(ProviderError::Unavailable {
                provider: t.provider.clone(),
                why: "`tools.media.models` names a provider chela does not have".into(),
            });
        };
        let dir = chela_core::config::paths::agent_dir(cfg, agent_id, &self.env);
        let request = crate::model::TranscribeRequest {
            model: &t.model,
            file_name,
            mime_type,
            data,
            language: t.language.as_deref(),
            agent_dir: &dir,
        };
        provider.transcribe(&request).await.map(Some)
    }

    pub fn queue_depths(&self) -> Vec<(String, usize)> {
        self.queues.depths()
    }

    /// The session store of an agent (`session.store` with `{agentId}`, else
    /// `<stateDir>/agents/<id>/sessions`; the agent's rows in the shared
    /// database when there is one), opened once.
    pub fn store(&self, agent_id: &str) -> Result<Arc<dyn SessionStore>, StoreError> {
        self.store_in(&self.config(), agent_id)
    }

    /// [`store`](Self::store) as `cfg` places it.
    fn store_in(&self, cfg: &Config, agent_id: &str) -> Result<Arc<dyn SessionStore>, StoreError> {
        let name = store_name(cfg, &self.env, agent_id, self.database.is_some());
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = stores.get(&name) {
            return Ok(s.clone());
        }
        let s = open_store(cfg, &self.env, agent_id, self.database.as_ref(), self.durability)?;
        stores.insert(name, s.clone());
        Ok(s)
    }

    /// Runs one turn for a routed message on the snapshot it was routed on
    /// (a reload meanwhile does not change it). Waits for the session's earlier turns.
    pub async fn run(&self, snapshot: &Snapshot, inbound: Inbound) -> Result<TurnOutcome, RunError> {
        self.run_streaming(snapshot, inbound, None).await
    }

    /// [`run`](Self::run), with the model's text passed to `on_text` as it
    /// arrives (every round's: text before a tool call too).
    pub async fn run_streaming(
        &self,
        snapshot: &Snapshot,
        inbound: Inbound,
        on_text: Option<TextSink>,
    ) -> Result<TurnOutcome, RunError> {
        self.run_queued(snapshot, inbound, on_text, None, Caller::InOrder).await
    }

    /// [`run_streaming`](Self::run_streaming), telling `admitted` as soon as
    /// the message has its place in the session's order (a command answered,
    /// or a place in line taken): a caller that keeps its chat's messages in
    /// order may let the next one in from then on, and the next one then
    /// meets this turn as its queue mode says.
    /// Only a chat message meets the session's queue mode; an API caller
    /// ([`run`](Self::run)) waits its turn and gets its own answer.
    pub async fn run_admitted(
        &self,
        snapshot: &Snapshot,
        inbound: Inbound,
        on_text: Option<TextSink>,
        admitted: Option<tokio::sync::oneshot::Sender<()>>,
    ) -> Result<TurnOutcome, RunError> {
        self.run_queued(snapshot, inbound, on_text, admitted, Caller::Chat).await
    }

    async fn run_queued(
        &self,
        snapshot: &Snapshot,
        inbound: Inbound,
        on_text: Option<TextSink>,
        admitted: Option<tokio::sync::oneshot::Sender<()>>,
        caller: Caller,
    ) -> Result<TurnOutcome, RunError> {
        let admitted = std::sync::Mutex::new(admitted);
        let admit = || {
            if let Some(tx) = admitted.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = tx.send(());
            }
        };
        let cfg = &snapshot.config;
        let agent_id = normalize_agent_id(Some(&inbound.target.agent_id));
        if snapshot.routes.roster().find(&agent_id).is_none() {
            return Err(RunError::UnknownAgent(inbound.target.agent_id));
        }
        let key = inbound.target.key.as_str().to_string();
        // A command is answered at once, beside a turn that may be running;
        // text the host itself wrote (another agent, a job) is never one.
        let command = chela_core::access::may_command(inbound.origin.provider.as_deref())
            .then(|| chela_core::commands::parse(&inbound.text))
            .flatten();
        let mut inbound = inbound;
        if let Some(cmd) = command {
            match self.command(cfg, &agent_id, &inbound, &cmd).await? {
                commands::Handled::Reply(reply) => {
                    admit();
                    return Ok(commands::outcome(&agent_id, &inbound, reply));
                }
                commands::Handled::Compact(focus) => {
                    // It rewrites what the next turn reads: after the turns before it, before those after.
                    let in_order = QueueSettings {
                        mode: QueueMode::Followup,
                        cap: usize::MAX,
                        ..self.queue_settings(cfg, &inbound, &agent_id)
                    };
                    let entered = self.queues.enter(&key, &in_order, &arrival(cfg, &agent_id, &inbound))?;
                    admit();
                    let permit = match self.wait_turn(entered).await? {
                        Ok(p) => p,
                        Err(absorbed) => return Ok(absorbed_outcome(&agent_id, &inbound, absorbed)),
                    };
                    let limit = self.limits.turn_timeout;
                    let out = tokio::time::timeout(limit, self.compact_command(cfg, &agent_id, &inbound, &focus)).await;
                    drop(permit);
                    let reply = out.map_err(|_| RunError::Timeout(limit))??;
                    return Ok(commands::outcome(&agent_id, &inbound, reply));
                }
                commands::Handled::Turn => {}
                commands::Handled::TurnWith { text, exec } => {
                    inbound.text = text;
                    inbound.exec_tightening = exec;
                }
            }
        }
        let mut settings = self.queue_settings(cfg, &inbound, &agent_id);
        if caller == Caller::InOrder {
            // Waits its turn, refused at the cap (the API says 429), never absorbed.
            settings = QueueSettings {
                mode: QueueMode::Followup,
                debounce: Duration::ZERO,
                drop: DropPolicy::New,
                ..settings
            };
        }
        let entered = self.queues.enter(&key, &settings, &arrival(cfg, &agent_id, &inbound))?;
        admit();
        let permit = match self.wait_turn(entered).await? {
            Ok(p) => p,
            Err(Absorbed::Stopped) if caller == Caller::InOrder => return Err(RunError::Aborted("stopped by /stop")),
            Err(absorbed) => {
                tracing::info!(agent = %agent_id, session = %key, ?absorbed, "message absorbed by the session queue");
                return Ok(absorbed_outcome(&agent_id, &inbound, absorbed));
            }
        };
        let (collected, overflow) = permit.settle(settings.debounce).await;
        if let Some(items) = collected {
            inbound.text = chela_core::queue_mode::collect_prompt(&items);
        }
        if let Some((dropped, lines)) = overflow {
            inbound.text = format!("{}\n\n{}", chela_core::queue_mode::overflow_prompt(dropped, &lines), inbound.text);
        }
        let limit = self.limits.turn_timeout;
        let mut closing = self.closing.subscribe();
        let mut attempt = 0;
        loop {
            let turn = self.turn(cfg, &agent_id, inbound.clone(), on_text.clone(), &permit);
            let out = tokio::time::timeout(limit, turn).await.map_err(|_| RunError::Timeout(limit))?;
            match out {
                // The store refused a write (a full disk): the turn runs again
                // once it can be stored, holding the session's place, so its
                // later messages keep their order. Closing: the caller keeps it.
                Err(RunError::Store(e)) if e.passes() && !*closing.borrow() => {
                    let wait = STORE_FIRST_RETRY.saturating_mul(1u32 << attempt.min(16)).min(STORE_LONGEST_RETRY);
                    tracing::warn!(agent = %agent_id, session = %key, error = %e, ?wait, "the turn cannot be stored; running it again");
                    attempt += 1;
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = closing.wait_for(|c| *c) => {}
                    }
                }
                out => return out,
            }
        }
    }

    /// Turns the store refuses are no longer run again (shutting down): they
    /// return their error and stay with the caller.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}

impl AgentRuntime {
    /// A per-turn model instead of `agent_id`'s own (the OpenAI endpoint's
    /// `x-openclaw-model`), as `provider/model`: a bare name takes the
    /// agent's primary provider or is an alias from `agents.defaults.models`;
    /// the provider must be configured here, and the model listed in
    /// `agents.defaults.models` when that catalog is set (OpenClaw's
    /// allowlist). The error says which of these it failed.
    pub fn check_model_override(&self, cfg: &Config, agent_id: &str, raw: &str) -> Result<String, String> {
        let raw = raw.trim();
        let catalog = cfg.agent_defaults().and_then(|d| d.models.as_ref()).and_then(|m| m.as_object());
        let alias = catalog.and_then(|c| c.iter().find(|(_, v)| v["alias"].as_str() == Some(raw)).map(|(k, _)| k));
        let name = match alias {
            Some(full) => full.clone(),
            None if raw.contains('/') => raw.to_string(),
            None => {
                let (models, _) = agent_profile(cfg, agent_id);
                let provider = models.first().and_then(|m| split_model(m).ok()).map_or("offline", |(p, _)| p);
                format!("{provider}/{raw}")
            }
        };
        let (provider, _) = split_model(&name)?;
        if self.providers.get(provider).is_none() {
            return Err(format!("provider `{provider}` is not configured in this gateway (models.providers)"));
        }
        if let Some(catalog) = catalog.filter(|c| !c.is_empty()) {
            if !catalog.contains_key(&name) {
                return Err(format!("model `{name}` is not allowed for agent `{agent_id}` (agents.defaults.models)"));
            }
        }
        Ok(name)
    }

    /// Tries the primary model, then the fallbacks, on provider errors.
    async fn complete(
        &self,
        agent_id: &str,
        models: &[String],
        mut request: ModelRequest,
    ) -> Result<(String, ModelReply), RunError> {
        let mut tried = Vec::new();
        for name in models {
            let (provider, model) = match split_model(name) {
                Ok(pm) => pm,
                Err(e) => {
                    tried.push(e);
                    continue;
                }
            };
            let Some(p) = self.providers.get(provider) else {
                tried.push(
                    ProviderError::Unavailable {
                        provider: provider.into(),
                        why: "not configured in this gateway".into(),
                    }
                    .to_string(),
                );
                continue;
            };
            request.model = model.to_string();
            match p.complete(&request).await {
                Ok(reply) => return Ok((name.clone(), reply)),
                Err(e) => {
                    tracing::warn!(agent = agent_id, model = %name, error = %e, "model failed; trying the next");
                    tried.push(format!("{name}: {e}"));
                }
            }
        }
        Err(RunError::Model { agent: agent_id.to_string(), tried })
    }
}

/// `/new` or `/reset` (or `session.resetTriggers`) at the start of a message:
/// the rest of the message, and whether it was a trigger.
fn strip_reset_trigger(cfg: &Config, text: &str) -> (String, bool) {
    let defaults = ["/new".to_string(), "/reset".to_string()];
    let triggers = cfg.session.as_ref().and_then(|s| s.reset_triggers.as_deref()).unwrap_or(&defaults);
    let t = text.trim_start();
    for trig in triggers {
        if let Some(rest) = t.strip_prefix(trig.as_str()) {
            if rest.is_empty() || rest.starts_with(char::is_whitespace) {
                return (rest.trim().to_string(), true);
            }
        }
    }
    (text.to_string(), false)
}

/// The agent's models (primary, then fallbacks) and identity.
fn agent_profile(cfg: &Config, agent_id: &str) -> (Vec<String>, Identity) {
    let agent = cfg.agent(agent_id).map(|(_, a)| a);
    let model = agent.and_then(|a| a.model.as_ref()).or_else(|| cfg.agent_defaults()?.model.as_ref());
    let mut models: Vec<String> = Vec::new();
    if let Some(m) = model {
        models.extend(m.primary().map(str::to_string));
        if let chela_core::config::schema::ModelRef::Detailed(d) = m {
            models.extend(d.fallbacks.iter().flatten().cloned());
        }
    }
    if models.is_empty() {
        models.push(DEFAULT_MODEL.to_string());
    }
    let ident = agent.and_then(|a| a.identity.as_ref());
    let name = ident
        .and_then(|i| i.name.clone())
        .or_else(|| agent.and_then(|a| a.name.clone()))
        .unwrap_or_else(|| agent_id.to_string());
    (models, Identity { agent_id: agent_id.to_string(), name, emoji: ident.and_then(|i| i.emoji.clone()) })
}

/// The turn target of a session known by its key only (another agent's
/// session, a sub-agent's parent): its chat type is the one stored for it.
pub(crate) fn stored_target(rt: &AgentRuntime, cfg: &Config, key: &SessionKey) -> SessionTarget {
    let chat_type = rt
        .store(&key.agent_id())
        .ok()
        .and_then(|s| s.get(key.as_str()).ok().flatten())
        .and_then(|e| e.chat_type)
        .and_then(|c| chela_core::ids::normalize_chat_type(&c))
        .unwrap_or(ChatType::Direct);
    SessionTarget::of_key(cfg, key.clone(), chat_type)
}

/// The session that spawned this one (sub-agents), from the index entry.
pub(crate) fn spawned_by(entry: &crate::store::SessionEntry) -> Option<SessionKey> {
    SessionKey::parse(entry.extra.get("spawnedBy")?.as_str()?)
}

/// `tools.elevated` for the platform user who sent this message.
fn sender_may_elevate(cfg: &Config, agent_id: &str, inbound: &Inbound) -> bool {
    let (Some(provider), Some(sender)) = (inbound.origin.provider.as_deref(), inbound.sender_id.as_deref()) else {
        return false;
    };
    elevated_allowed(cfg, agent_id, provider, sender)
}

/// Where an agent's sessions live (core `agent_store_dir`).
pub fn store_dir(cfg: &Config, env: &Environment, agent_id: &str) -> PathBuf {
    chela_core::config::paths::agent_store_dir(cfg, env, agent_id)
}

/// Which store holds `agent_id`'s sessions: its rows in the shared database
/// (`agent:<id>`) when there is one, else its store dir.
fn store_name(cfg: &Config, env: &Environment, agent_id: &str, shared: bool) -> String {
    match shared {
        true => format!("agent:{}", chela_core::ids::normalize_agent_id(Some(agent_id))),
        false => store_dir(cfg, env, agent_id).display().to_string(),
    }
}

/// Opens `agent_id`'s session store: its rows in `database`, else the
/// embedded files in its store dir. The one rule for the runtime and the CLI.
pub fn open_store(
    cfg: &Config,
    env: &Environment,
    agent_id: &str,
    database: Option<&Arc<chela_database::Database>>,
    durability: Durability,
) -> Result<Arc<dyn SessionStore>, StoreError> {
    let name = store_name(cfg, env, agent_id, database.is_some());
    Ok(match database {
        Some(db) => Arc::new(crate::store::PgStore::new(db.clone(), &name)),
        None => Arc::new(FileStore::open_with(&store_dir(cfg, env, agent_id), durability)?),
    })
}
