//! The config file's shape: OpenClaw's schema (camelCase outside, Rust names inside).
//!
//! Every struct rejects unknown keys it does not know from OpenClaw either:
//! keys OpenClaw defines that chela does not implement are not fields here;
//! `openclaw_keys` recognizes them from OpenClaw's own schema (a warning, the
//! value still type-checked). Sections chela reads only in part (`models`,
//! `auth`, `messages`…) are kept as JSON, checked against OpenClaw's schema
//! for types. Channel accounts keep adapter-specific settings (tokens, base
//! URLs) in `settings`, which the channel plugin validates when configured.
//!
//! Must not: hold behaviour beyond accessors; what a value means is decided by the modules that use
//! it.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer};
use serde_json::Value as Json;

use super::de::{lenient, lenient_vec};

/// Root of `chela.json` / `openclaw.json`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    #[serde(rename = "$schema", default)]
    pub schema: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub agents: Option<Agents>,
    /// `None` when the key is absent; `Some(vec![])` for `bindings: []`.
    #[serde(default, deserialize_with = "lenient_opt_vec")]
    pub bindings: Option<Vec<Binding>>,
    #[serde(default, deserialize_with = "lenient")]
    pub session: Option<SessionConfig>,
    #[serde(default, deserialize_with = "lenient")]
    pub tools: Option<ToolsConfig>,
    /// `channels` as read; the loader splits it into `channels` and
    /// `channel_defaults` (see [`ChannelsSection`]).
    #[serde(rename = "channels", default, deserialize_with = "lenient")]
    pub(crate) channels_section: Option<ChannelsSection>,
    /// The channel sections by id (`channels.<id>`).
    #[serde(skip)]
    pub channels: Option<IndexMap<String, ChannelConfig>>,
    /// `channels.defaults` (OpenClaw's shared channel baseline: `groupPolicy`,
    /// `contextVisibility`, `heartbeatVisibility`), shaped like a channel
    /// section with only those keys set, so it is never mistaken for a channel.
    #[serde(skip)]
    pub channel_defaults: Option<ChannelConfig>,
    #[serde(default, deserialize_with = "lenient")]
    pub broadcast: Option<Broadcast>,
    #[serde(default, deserialize_with = "lenient")]
    pub gateway: Option<GatewayConfig>,
    #[serde(default, deserialize_with = "lenient")]
    pub plugins: Option<PluginsConfig>,
    /// `commands`: chela reads `allowFrom` (who may run chat commands).
    #[serde(default, deserialize_with = "lenient")]
    pub commands: Option<CommandsConfig>,
    #[serde(default, deserialize_with = "lenient")]
    pub cron: Option<CronConfig>,
    /// `storage` (chela's own): where sessions live (`crate::storage`).
    #[serde(default, deserialize_with = "lenient")]
    pub storage: Option<StorageConfig>,
    // OpenClaw sections chela reads in part (or, `meta` and `wizard`, keeps as written).
    #[serde(default)]
    pub meta: Option<Json>,
    #[serde(default)]
    pub wizard: Option<Json>,
    #[serde(default)]
    pub auth: Option<Json>,
    #[serde(default)]
    pub env: Option<Json>,
    #[serde(default)]
    pub models: Option<Json>,
    #[serde(default)]
    pub messages: Option<Json>,
    #[serde(default)]
    pub skills: Option<Json>,
    #[serde(default)]
    pub update: Option<Json>,
    #[serde(default)]
    pub diagnostics: Option<Json>,
    #[serde(default)]
    pub web: Option<Json>,
    #[serde(default)]
    pub canvas_host: Option<Json>,
    #[serde(default)]
    pub memory: Option<Json>,
    #[serde(default)]
    pub secrets: Option<Json>,
}

impl Config {
    /// The config entry of an agent (either roster shape) and its field path
    /// (`agents.list[2]` or `agents.entries.work`), by canonical id.
    pub fn agent(&self, agent_id: &str) -> Option<(String, &AgentConfig)> {
        use crate::ids::normalize_agent_id;
        let id = normalize_agent_id(Some(agent_id));
        let agents = self.agents.as_ref()?;
        if let Some(entries) = &agents.entries {
            return entries
                .iter()
                .find(|(k, _)| normalize_agent_id(Some(k)) == id)
                .map(|(k, v)| (format!("agents.entries.{k}"), v));
        }
        agents
            .list
            .as_ref()?
            .iter()
            .enumerate()
            .find(|(_, a)| a.id.as_deref().is_some_and(|x| normalize_agent_id(Some(x)) == id))
            .map(|(i, a)| (format!("agents.list[{i}]"), a))
    }

    /// The agent's primary model as configured (its own, else
    /// `agents.defaults.model`); `None`: the built-in default.
    pub fn agent_model(&self, agent_id: &str) -> Option<&str> {
        let own = self.agent(agent_id).and_then(|(_, a)| a.model.as_ref());
        own.or(self.agent_defaults()?.model.as_ref()).and_then(|m| m.primary())
    }

    /// `agents.defaults`, when set.
    pub fn agent_defaults(&self) -> Option<&AgentDefaults> {
        self.agents.as_ref()?.defaults.as_ref()
    }
}

fn lenient_opt_vec<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Vec<T>>, D::Error> {
    lenient_vec(d).map(Some)
}

/// `agents`: the roster in either of OpenClaw's shapes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Agents {
    #[serde(default, deserialize_with = "lenient")]
    pub defaults: Option<AgentDefaults>,
    /// The classic list shape (`agents.list[]`).
    #[serde(default, deserialize_with = "lenient_opt_vec")]
    pub list: Option<Vec<AgentConfig>>,
    /// The newer map shape (`agents.entries.<id>`).
    #[serde(default, deserialize_with = "lenient")]
    pub entries: Option<IndexMap<String, AgentConfig>>,
    /// `"explicit"`: no implicit default agent (OpenClaw's E4 ownership model).
    #[serde(default)]
    pub ownership: Option<String>,
    /// Seed-article shape, rejected by validation with the equivalent `bindings`.
    #[serde(default)]
    pub bindings: Option<Json>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentDefaults {
    pub workspace: Option<String>,
    pub model: Option<ModelRef>,
    pub sandbox: Option<SandboxConfig>,
    pub bootstrap_max_chars: Option<u64>,
    pub bootstrap_total_max_chars: Option<u64>,
    pub system_agent: Option<SystemAgent>,
    pub subagents: Option<Json>,
    pub models: Option<Json>,
    pub compaction: Option<CompactionConfig>,
    pub context_pruning: Option<ContextPruningConfig>,
    pub heartbeat: Option<HeartbeatConfig>,
    /// The zone `activeHours` is read in when it names none (`"user"`).
    pub user_timezone: Option<String>,
    /// A turn's longest run, in seconds (heartbeat turns use it when they set none).
    pub timeout_seconds: Option<u64>,
    /// The thinking level of turns whose session picked none (`crate::thinking`).
    pub thinking_default: Option<String>,
    /// `/elevated` level of sessions that picked none (`on` when unset, as OpenClaw).
    pub elevated_default: Option<String>,
    /// When chats see the agent typing (`crate::presence`).
    pub typing_mode: Option<TypingMode>,
    /// How often typing is shown again while a turn runs (OpenClaw's default: 6).
    pub typing_interval_seconds: Option<u64>,
    /// The largest inbound file an agent's turn takes, in MB (`crate::media`).
    pub media_max_mb: Option<f64>,
    /// `"on"`: replies stream as blocks where a channel does not say otherwise (`crate::block_stream`).
    pub block_streaming_default: Option<String>,
    /// `"text_end"` (default) or `"message_end"`.
    pub block_streaming_break: Option<String>,
    pub block_streaming_chunk: Option<BlockChunkConfig>,
    pub block_streaming_coalesce: Option<BlockCoalesceConfig>,
    /// The pause between block replies.
    pub human_delay: Option<HumanDelayConfig>,
}

/// `agents.defaults.blockStreamingChunk`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockChunkConfig {
    pub min_chars: Option<u64>,
    pub max_chars: Option<u64>,
    /// `paragraph` (default), `newline`, `sentence`.
    pub break_preference: Option<String>,
}

/// `blockStreamingCoalesce`, and a channel's `streaming.block.coalesce`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockCoalesceConfig {
    pub min_chars: Option<u64>,
    pub max_chars: Option<u64>,
    pub idle_ms: Option<u64>,
}

/// `humanDelay` (agent or `agents.defaults`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HumanDelayConfig {
    /// `off` (default), `natural`, `custom`.
    pub mode: Option<String>,
    pub min_ms: Option<u64>,
    pub max_ms: Option<u64>,
}

/// `typingMode` (OpenClaw's `docs/concepts/typing-indicators.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TypingMode {
    Never,
    /// From the moment the turn starts.
    Instant,
    /// From the model's first reasoning; chela's providers do not stream
    /// reasoning, so from the model's first output, like `message`.
    Thinking,
    /// From the model's first visible output.
    Message,
}

/// `agents.*.heartbeat` (OpenClaw's `docs/gateway/heartbeat.md`; what the
/// values mean: `crate::heartbeat`). Strict, as in OpenClaw.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// A duration string, minutes when bare (`"30m"`; `"0m"` turns the cadence off).
    pub every: Option<String>,
    pub active_hours: Option<ActiveHoursConfig>,
    pub model: Option<String>,
    pub session: Option<String>,
    /// `owner` (default) | `last` | `none` | a channel id.
    pub target: Option<String>,
    /// `allow` (default) | `block`.
    pub direct_policy: Option<String>,
    pub to: Option<String>,
    pub account_id: Option<String>,
    pub prompt: Option<String>,
    pub timeout_seconds: Option<u64>,
    pub light_context: Option<bool>,
    pub isolated_session: Option<bool>,
    /// `agents.defaults.heartbeat.agentId`: the heartbeat's owner when no agent has its own block.
    pub agent_id: Option<String>,
}

/// `heartbeat.activeHours`: `HH:MM` start (inclusive) and end (exclusive, `24:00` allowed).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActiveHoursConfig {
    pub start: Option<String>,
    pub end: Option<String>,
    pub timezone: Option<String>,
}

/// `cron`: the scheduler (OpenClaw's automations). `jobs` is chela's: jobs
/// `storage`: chela's own section (OpenClaw has one process and no such key).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageConfig {
    /// `postgres://…`: sessions in that database, shared by replicas.
    pub url: Option<String>,
}

/// declared in config, beside those `chela cron add` stores in the state dir.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CronConfig {
    /// `false`: no job and no scheduled heartbeat runs.
    pub enabled: Option<bool>,
    /// Skip `cron`/`every` slots missed while the gateway was down instead of catching up once.
    pub skip_missed_jobs: Option<bool>,
    #[serde(default, deserialize_with = "lenient_opt_vec")]
    pub jobs: Option<Vec<crate::cron_job::JobSpec>>,
    /// Sent as `Authorization: Bearer …` on webhook deliveries: a string,
    /// `"${VAR}"` or an env SecretRef (`{source: "env", id}`).
    pub webhook_token: Option<Json>,
    /// Where webhook deliveries may connect beyond public addresses.
    pub webhook_ssrf_policy: Option<WebhookSsrfPolicy>,
    /// Who is told when a job keeps failing (`crate::failure_alert`).
    pub failure_alert: Option<FailureAlertConfig>,
}

/// `cron.failureAlert`, or a job's `failureAlert` object (what the values
/// mean: `crate::failure_alert`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailureAlertConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Consecutive failures before the alert (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_ms: Option<u64>,
    /// Count consecutive skipped runs too (on their own streak).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_skipped: Option<bool>,
    /// `announce` (a chat) or `webhook` (`to` is the URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The chat's channel; `last` (or unset): where the job last spoke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

impl FailureAlertConfig {
    /// Its destination fields.
    pub fn route(&self) -> FailureDestination {
        FailureDestination {
            mode: self.mode.clone(),
            channel: self.channel.clone(),
            to: self.to.clone(),
            account_id: self.account_id.clone(),
        }
    }

    /// Problems with its values, each with its field below `at`.
    pub fn problems(&self, at: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.after == Some(0) {
            out.push((format!("{at}.after"), "at least 1: the failures before an alert".into()));
        }
        out.extend(self.route().problems(at));
        out
    }
}

/// `delivery.failureDestination`: where a job's failure alerts go.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailureDestination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

impl FailureDestination {
    pub(crate) fn names(&self) -> bool {
        self.mode.is_some() || self.channel.is_some() || self.to.is_some() || self.account_id.is_some()
    }

    /// Each field it leaves unset taken from `wider`.
    pub(crate) fn over(&self, wider: &FailureDestination) -> FailureDestination {
        let pick = |a: &Option<String>, b: &Option<String>| a.clone().or_else(|| b.clone());
        FailureDestination {
            mode: pick(&self.mode, &wider.mode),
            channel: pick(&self.channel, &wider.channel),
            to: pick(&self.to, &wider.to),
            account_id: pick(&self.account_id, &wider.account_id),
        }
    }

    /// Problems with its mode and, for a webhook, its URL, below `at`.
    pub fn problems(&self, at: &str) -> Vec<(String, String)> {
        match self.mode.as_deref() {
            None | Some("announce") => Vec::new(),
            Some("webhook") => crate::cron_job::webhook_url_problem(self.to.as_deref())
                .map(|why| vec![(format!("{at}.to"), why)])
                .unwrap_or_default(),
            Some(m) => vec![(format!("{at}.mode"), format!("`{m}` is not an alert mode: `announce` or `webhook`"))],
        }
    }
}

/// A job's `failureAlert`: `false` (never for this job), `true` or an
/// object (its own policy, which also turns alerts on).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum JobFailureAlert {
    Switch(bool),
    Policy(Box<FailureAlertConfig>),
}

impl<'de> serde::Deserialize<'de> for JobFailureAlert {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = JobFailureAlert;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("false, true or an object {after, cooldownMs, mode, channel, to, accountId, …}")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<JobFailureAlert, E> {
                Ok(JobFailureAlert::Switch(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<JobFailureAlert, A::Error> {
                FailureAlertConfig::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|p| JobFailureAlert::Policy(Box::new(p)))
            }
        }
        d.deserialize_any(Either)
    }
}

/// `cron.webhookSsrfPolicy`: a webhook delivery goes only to public
/// addresses unless a host is listed here (OpenClaw's strict default).
/// OpenClaw's two narrow fake-IP proxy flags are not read (they load with
/// an "ignored" warning; their ranges stay refused).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookSsrfPolicy {
    /// Exact host names or IP addresses allowed even when they are loopback or private.
    pub allowed_hostnames: Option<Vec<String>>,
    /// Hosts refused before anything else: exact names, `*.domain` for its subdomains.
    pub blocked_hostnames: Option<Vec<String>>,
    /// Every host may resolve to a private or loopback address.
    pub dangerously_allow_private_network: Option<bool>,
}

/// `agents.defaults.compaction`: when and how long sessions are summarised
/// (what the values mean: `crate::compaction`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompactionConfig {
    pub enabled: Option<bool>,
    /// `default` or `safeguard` (structured summaries, audited by `qualityGuard`).
    pub mode: Option<String>,
    pub quality_guard: Option<QualityGuardConfig>,
    /// `strict` (default: the summary keeps exact identifiers) or `off`.
    pub identifier_policy: Option<String>,
    /// Safeguard mode: the last this many user turns of what is summarised
    /// are stored verbatim after the summary (0 to 12, default 3).
    pub recent_turns_preserve: Option<i64>,
    /// The most seconds one summary request may take (default 180).
    pub timeout_seconds: Option<i64>,
    /// The thinking level of summary requests (`/think`'s levels, or
    /// `inherit`: the session's).
    pub thinking_level: Option<String>,
    pub keep_recent_tokens: Option<u64>,
    /// `provider/model` or an alias of `agents.defaults.models` for the summary calls.
    pub model: Option<String>,
    pub notify_user: Option<bool>,
    pub max_active_transcript_bytes: Option<ByteSize>,
    pub memory_flush: Option<MemoryFlushConfig>,
}

/// `agents.defaults.contextPruning` (OpenClaw's session pruning).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContextPruningConfig {
    /// `off` (default) or `cache-ttl`.
    pub mode: Option<String>,
    /// A duration; bare numbers are minutes (default 5m).
    pub ttl: Option<String>,
    pub tools: Option<ContextPruningTools>,
    pub hard_clear: Option<HardClearConfig>,
}

/// `contextPruning.tools`: whose results may be pruned.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextPruningTools {
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
}

/// `contextPruning.hardClear`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HardClearConfig {
    pub enabled: Option<bool>,
    pub placeholder: Option<String>,
}

/// `agents.defaults.compaction.qualityGuard`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QualityGuardConfig {
    pub enabled: Option<bool>,
    pub max_retries: Option<u64>,
}

/// `agents.defaults.compaction.memoryFlush`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemoryFlushConfig {
    pub enabled: Option<bool>,
    pub model: Option<String>,
    pub soft_threshold_tokens: Option<u64>,
    /// Flush once the history the model sees holds this many bytes, whatever the token estimate.
    pub force_flush_transcript_bytes: Option<ByteSize>,
}

/// A byte count as OpenClaw writes one: a number, or a string such as
/// `"20mb"` (`b`, `kb`, `mb`, `gb`; 1024-based, as OpenClaw's `"2mb"` = 2,097,152).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u64),
            Text(String),
        }
        match Raw::deserialize(d) {
            Ok(Raw::Count(n)) => Ok(ByteSize(n)),
            Ok(Raw::Text(t)) => ByteSize::parse(&t).map_err(serde::de::Error::custom),
            Err(_) => Err(serde::de::Error::custom("expected a byte count: a number, or a string such as \"20mb\"")),
        }
    }
}

impl ByteSize {
    /// `"512"`, `"64kb"`, `"20mb"`, `"1gb"` (any case, spaces allowed).
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let t = text.trim().to_ascii_lowercase();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (number, unit) = t.split_at(digits);
        let scale: u64 = match unit.trim() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            other => return Err(format!("`{text}`: unknown unit `{other}` (use b, kb, mb or gb)")),
        };
        let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a byte count such as \"20mb\""))?;
        n.checked_mul(scale).map(ByteSize).ok_or_else(|| format!("`{text}` is too large"))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SystemAgent {
    pub agent_id: Option<String>,
}

/// One agent ("brain").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentConfig {
    /// Required in `agents.list[]`; the map key is the id in `agents.entries`.
    pub id: Option<String>,
    /// Seed-article alias of `id` (accepted with a warning).
    pub agent_id: Option<String>,
    pub default: Option<bool>,
    pub name: Option<String>,
    pub workspace: Option<String>,
    pub cwd: Option<String>,
    pub agent_dir: Option<String>,
    pub model: Option<ModelRef>,
    pub skills: Option<Vec<String>>,
    pub identity: Option<Identity>,
    pub group_chat: Option<GroupChat>,
    pub subagents: Option<Subagents>,
    pub sandbox: Option<SandboxConfig>,
    pub tools: Option<AgentToolsConfig>,
    pub runtime: Option<Json>,
    pub heartbeat: Option<HeartbeatConfig>,
    /// This agent's thinking level when its session picked none (`crate::thinking`).
    pub thinking_default: Option<String>,
    /// This agent's `/elevated` level when its session picked none.
    pub elevated_default: Option<String>,
    pub typing_mode: Option<TypingMode>,
    pub media_max_mb: Option<f64>,
    /// The pause between this agent's block replies (over `agents.defaults.humanDelay`).
    pub human_delay: Option<HumanDelayConfig>,
}

/// `"provider/model"` or `{primary, fallbacks}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ModelRef {
    Name(String),
    Detailed(ModelChoice),
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelChoice {
    pub primary: Option<String>,
    pub fallbacks: Option<Vec<String>>,
}

impl ModelRef {
    pub fn primary(&self) -> Option<&str> {
        match self {
            ModelRef::Name(s) => Some(s),
            ModelRef::Detailed(c) => c.primary.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Identity {
    pub name: Option<String>,
    pub theme: Option<String>,
    pub emoji: Option<String>,
    pub avatar: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupChat {
    pub mention_patterns: Option<Vec<String>>,
    pub history_limit: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subagents {
    /// Agent ids this agent may spawn; `"*"` = any.
    pub allow_agents: Option<Vec<String>>,
    pub model: Option<ModelRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    #[default]
    Off,
    NonMain,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxScope {
    #[default]
    Session,
    Agent,
    Shared,
}

/// Ordered: `None < Ro < Rw` (narrowing is `min`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceAccess {
    #[default]
    None,
    Ro,
    Rw,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SandboxConfig {
    pub mode: Option<SandboxMode>,
    pub scope: Option<SandboxScope>,
    pub per_session: Option<bool>,
    pub workspace_access: Option<WorkspaceAccess>,
    pub workspace_root: Option<String>,
    pub session_tools_visibility: Option<String>,
    pub docker: Option<Json>,
}

/// An allow/deny pair (`tools.sandbox.tools`, `tools.subagents.tools`, …).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolList {
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    pub also_allow: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderToolPolicy {
    pub profile: Option<String>,
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    pub also_allow: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolsWrapper {
    pub tools: Option<ToolList>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubagentTools {
    pub tools: Option<ToolList>,
    pub model: Option<ModelRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentToAgent {
    pub enabled: Option<bool>,
    pub allow: Option<Vec<String>>,
}

/// `commands` (OpenClaw's chat command settings): chela reads `allowFrom`;
/// the others are OpenClaw's (ignored with a warning).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommandsConfig {
    /// `{<provider>|"*": [sender ids]}`: when set, the only authorization for commands.
    pub allow_from: Option<IndexMap<String, Vec<IdValue>>>,
    /// `["<channel>:<sender id>", …]`: who may run owner-only commands (`/send`).
    pub owner_allow_from: Option<Vec<IdValue>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Elevated {
    pub enabled: Option<bool>,
    /// `{<provider>: [sender ids]}`; ids may be numbers.
    pub allow_from: Option<IndexMap<String, Vec<IdValue>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionsTools {
    pub visibility: Option<String>,
}

/// Global `tools`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolsConfig {
    pub profile: Option<String>,
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    pub also_allow: Option<Vec<String>>,
    pub by_provider: Option<IndexMap<String, ProviderToolPolicy>>,
    pub agent_to_agent: Option<AgentToAgent>,
    pub elevated: Option<Elevated>,
    pub sandbox: Option<ToolsWrapper>,
    pub subagents: Option<SubagentTools>,
    pub sessions: Option<SessionsTools>,
    pub exec: Option<Json>,
    pub message: Option<Json>,
    /// Media understanding (`crate::media::transcription`): `models[]` with
    /// `capabilities: ["audio"]` and `audio.enabled`/`language` are read.
    pub media: Option<Json>,
}

/// `agents.list[].tools`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentToolsConfig {
    pub profile: Option<String>,
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    pub also_allow: Option<Vec<String>>,
    pub by_provider: Option<IndexMap<String, ProviderToolPolicy>>,
    pub elevated: Option<Elevated>,
    pub sandbox: Option<ToolsWrapper>,
    pub agent_to_agent: Option<AgentToAgent>,
    pub exec: Option<Json>,
}

/// A string id that configs sometimes write as a number (Telegram chat ids).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct IdValue(pub String);

impl<'de> Deserialize<'de> for IdValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = IdValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E>(self, v: &str) -> Result<IdValue, E> {
                Ok(IdValue(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<IdValue, E> {
                Ok(IdValue(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<IdValue, E> {
                Ok(IdValue(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<IdValue, E> {
                Ok(IdValue(super::source::Number::Float(v).to_js_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// One routing rule: which agent gets messages that match.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Binding {
    /// `"route"` (default) or `"acp"`; ACP bindings take no part in routing.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub agent_id: Option<String>,
    pub comment: Option<String>,
    #[serde(rename = "match")]
    pub matcher: BindingMatch,
    /// Per-binding session scoping, applied only when this binding matches.
    pub session: Option<BindingSession>,
}

impl Binding {
    pub fn is_route(&self) -> bool {
        self.kind.as_deref().is_none_or(|k| k == "route")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BindingMatch {
    pub channel: Option<String>,
    pub account_id: Option<String>,
    pub peer: Option<PeerMatch>,
    pub guild_id: Option<IdValue>,
    pub team_id: Option<IdValue>,
    pub roles: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerMatch {
    pub kind: Option<String>,
    pub id: Option<IdValue>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BindingSession {
    pub dm_scope: Option<DmScope>,
    pub group_scope: Option<GroupScope>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DmScope {
    #[default]
    Main,
    PerPeer,
    PerChannelPeer,
    PerAccountChannelPeer,
}

impl DmScope {
    pub fn as_str(self) -> &'static str {
        match self {
            DmScope::Main => "main",
            DmScope::PerPeer => "per-peer",
            DmScope::PerChannelPeer => "per-channel-peer",
            DmScope::PerAccountChannelPeer => "per-account-channel-peer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "main" => DmScope::Main,
            "per-peer" => DmScope::PerPeer,
            "per-channel-peer" => DmScope::PerChannelPeer,
            "per-account-channel-peer" => DmScope::PerAccountChannelPeer,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupScope {
    Main,
    #[default]
    PerGroup,
}

impl GroupScope {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupScope::Main => "main",
            GroupScope::PerGroup => "per-group",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "main" => Some(GroupScope::Main),
            "per-group" => Some(GroupScope::PerGroup),
            _ => None,
        }
    }
}

/// `session.*`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionConfig {
    pub scope: Option<String>,
    pub dm_scope: Option<DmScope>,
    pub group_scope: Option<GroupScope>,
    /// Canonical name → ids (`"telegram:123"` or bare ids); order matters.
    pub identity_links: Option<IndexMap<String, Json>>,
    pub main_key: Option<String>,
    pub reset: Option<ResetConfig>,
    pub reset_by_type: Option<IndexMap<String, ResetConfig>>,
    pub reset_by_channel: Option<IndexMap<String, ResetConfig>>,
    pub reset_triggers: Option<Vec<String>>,
    pub idle_minutes: Option<u64>,
    pub store: Option<String>,
    pub agent_to_agent: Option<SessionAgentToAgent>,
    pub parent_fork_max_tokens: Option<u64>,
    /// `{ rules: [{ action, match: { channel, chatType, keyPrefix, rawKeyPrefix } }], default }`
    /// (checked against OpenClaw's schema; read by `send_policy`).
    pub send_policy: Option<Json>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetConfig {
    pub mode: Option<String>,
    pub at_hour: Option<u8>,
    pub idle_minutes: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionAgentToAgent {
    pub max_ping_pong_turns: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DmPolicy {
    Pairing,
    Allowlist,
    Open,
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupPolicy {
    Open,
    Allowlist,
    Disabled,
}

/// Settings of one channel account (also the top level of a single-account channel).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelAccount {
    pub enabled: Option<bool>,
    pub name: Option<String>,
    pub dm_policy: Option<DmPolicy>,
    pub allow_from: Option<Vec<IdValue>>,
    pub group_policy: Option<GroupPolicy>,
    pub group_allow_from: Option<Vec<IdValue>>,
    pub groups: Option<IndexMap<String, Json>>,
    pub auth_dir: Option<String>,
    /// Unanswered group messages kept for the next answered turn (OpenClaw's; 0 disables).
    pub history_limit: Option<u64>,
    /// `all` | `allowlist` | `allowlist_quote`: whose supplemental context (group history) the model sees.
    pub context_visibility: Option<String>,
    /// Which heartbeat replies this account delivers (OpenClaw's; see [`crate::heartbeat::visibility`]).
    pub heartbeat_visibility: Option<HeartbeatVisibilityConfig>,
    /// The emoji put on a message when it is taken in (`""`: none; `crate::presence`).
    pub ack_reaction: Option<String>,
    /// Put before each reply (`""`: none; `crate::reply_prefix`).
    pub response_prefix: Option<String>,
    /// The largest inbound file this account takes, in MB (`crate::media`).
    pub media_max_mb: Option<f64>,
    /// Bot-to-bot pair limits (`crate::bot_loop`).
    pub bot_loop_protection: Option<BotLoopConfig>,
    /// Preview streaming (`crate::preview`): `mode` and
    /// `preview.chunk.minChars` are read, and `block.enabled` and
    /// `block.coalesce` (`crate::block_stream`); OpenClaw's other members are kept as written.
    pub streaming: Option<Json>,
    /// Adapter-specific settings (tokens, base URLs…), checked by the channel plugin.
    #[serde(flatten)]
    pub settings: IndexMap<String, Json>,
}

/// `heartbeatVisibility` of `channels.defaults`, a channel or one of its
/// accounts; each flag unset falls back to the wider scope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeartbeatVisibilityConfig {
    pub show_ok: Option<bool>,
    pub show_alerts: Option<bool>,
    pub use_indicator: Option<bool>,
}

/// `channels` as written: the channel sections, and the two members that
/// are not channels. `defaults` is read strictly (OpenClaw allows five keys
/// there: the one chela does not act on, `implicitMentions`, loads with an
/// "ignored" warning; anything else is an
/// error); `modelByChannel` is type-checked against OpenClaw's schema and
/// not acted on.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChannelsSection {
    pub(crate) named: IndexMap<String, ChannelConfig>,
    pub(crate) defaults: Option<ChannelDefaults>,
}

impl<'de> Deserialize<'de> for ChannelsSection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = ChannelsSection;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of channel sections")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ChannelsSection, A::Error> {
                let mut out = ChannelsSection::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "defaults" => out.defaults = Some(map.next_value()?),
                        "modelByChannel" => {
                            map.next_value::<Json>()?;
                        }
                        _ => {
                            let section = map.next_value()?;
                            out.named.insert(key, section);
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(Members)
    }
}

/// `channels.defaults`: the settings every channel inherits where it and
/// its account set none.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ChannelDefaults {
    group_policy: Option<GroupPolicy>,
    context_visibility: Option<String>,
    heartbeat_visibility: Option<HeartbeatVisibilityConfig>,
    bot_loop_protection: Option<BotLoopConfig>,
}

/// `botLoopProtection` (OpenClaw's `docs/channels/bot-loop-protection.md`;
/// what the values mean: `crate::bot_loop`). Each key unset falls back to
/// the wider scope, then to the built-in default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BotLoopConfig {
    pub enabled: Option<bool>,
    pub max_events_per_window: Option<u32>,
    pub window_seconds: Option<u64>,
    pub cooldown_seconds: Option<u64>,
}

impl ChannelDefaults {
    /// The baseline as a channel section with only the shared keys set, so
    /// one lookup ([`crate::access`]'s scopes) reads account, channel and
    /// baseline alike.
    pub(crate) fn into_section(self) -> ChannelConfig {
        let top = ChannelAccount {
            group_policy: self.group_policy,
            context_visibility: self.context_visibility,
            heartbeat_visibility: self.heartbeat_visibility,
            bot_loop_protection: self.bot_loop_protection,
            ..ChannelAccount::default()
        };
        ChannelConfig { accounts: None, top }
    }
}

/// `channels.<id>`: one account at the top level, or several under `accounts`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelConfig {
    pub accounts: Option<IndexMap<String, ChannelAccount>>,
    #[serde(flatten)]
    pub top: ChannelAccount,
}

/// One account a channel section declares (see [`ChannelConfig::declared_accounts`]).
#[derive(Debug, Clone)]
pub struct DeclaredAccount<'a> {
    pub id: String,
    /// `enabled: false` on the account (or on the top level for `default`).
    pub enabled: bool,
    /// The account's own settings (the top level's for `default`).
    pub account: &'a ChannelAccount,
}

impl ChannelConfig {
    /// Whether `account` (any spelling of its id) is one this section declares.
    pub fn declares(&self, account: &str) -> bool {
        let want = crate::ids::normalize_account_id(Some(account));
        self.declared_accounts().iter().any(|d| crate::ids::normalize_account_id(Some(&d.id)) == want)
    }

    /// The accounts this section declares, disabled ones included: each of
    /// `accounts.<id>`, or the top level alone as account `default` when
    /// there is no (non-empty) `accounts` map.
    pub fn declared_accounts(&self) -> Vec<DeclaredAccount<'_>> {
        match &self.accounts {
            Some(accounts) if !accounts.is_empty() => accounts
                .iter()
                .map(|(id, a)| DeclaredAccount { id: id.clone(), enabled: a.enabled != Some(false), account: a })
                .collect(),
            _ => vec![DeclaredAccount {
                id: "default".to_string(),
                enabled: self.top.enabled != Some(false),
                account: &self.top,
            }],
        }
    }
}

/// `broadcast`: `{strategy?, "<peerId>": ["agentA", …]}` (WhatsApp).
/// OpenClaw 2026.9.6's qualified entries (`"<channel>:<peerId>"`, a list or
/// `{agents, mentionGating, maxRounds, maxTurns}`: agent group threads) are
/// checked and kept apart in `qualified`; chela does not run them (the
/// loader warns that they are ignored).
#[derive(Debug, Clone, Default)]
pub struct Broadcast {
    pub strategy: Option<String>,
    pub groups: IndexMap<String, Vec<String>>,
    /// Qualified entries: key → the agents they list (not dispatched).
    pub qualified: IndexMap<String, Vec<String>>,
}

/// Whether a broadcast key is OpenClaw's qualified `<channel>:<peerId>` form.
pub fn is_qualified_broadcast_key(key: &str) -> bool {
    key.split_once(':').is_some_and(|(channel, peer)| !channel.is_empty() && !peer.is_empty())
}

fn agent_list(v: &Json) -> Option<Vec<String>> {
    v.as_array()?.iter().map(|x| x.as_str().map(str::to_string)).collect()
}

/// A qualified entry's object form, strict as OpenClaw's.
fn qualified_entry(k: &str, v: &Json) -> Result<Vec<String>, String> {
    let Some(obj) = v.as_object() else {
        return agent_list(v).ok_or_else(|| format!("broadcast[{k:?}] must be a list of agent ids or {{agents, …}}"));
    };
    if let Some(unknown) =
        obj.keys().find(|f| !["agents", "mentionGating", "maxRounds", "maxTurns"].contains(&f.as_str()))
    {
        return Err(format!(
            "broadcast[{k:?}] has unknown field `{unknown}` (agents, mentionGating, maxRounds, maxTurns)"
        ));
    }
    let agents = obj
        .get("agents")
        .and_then(agent_list)
        .ok_or_else(|| format!("broadcast[{k:?}].agents must be a list of agent ids"))?;
    if obj.get("mentionGating").is_some_and(|g| !g.is_boolean()) {
        return Err(format!("broadcast[{k:?}].mentionGating must be true or false"));
    }
    for (field, max) in [("maxRounds", 4), ("maxTurns", 32)] {
        if let Some(n) = obj.get(field) {
            if !n.as_u64().is_some_and(|n| (1..=max).contains(&n)) {
                return Err(format!("broadcast[{k:?}].{field} must be an integer from 1 to {max}"));
            }
        }
    }
    Ok(agents)
}

impl<'de> Deserialize<'de> for Broadcast {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw: IndexMap<String, Json> = IndexMap::deserialize(d)?;
        let mut out = Broadcast::default();
        for (k, v) in raw {
            if k == "strategy" {
                match v.as_str() {
                    Some(s @ ("parallel" | "sequential")) => out.strategy = Some(s.to_string()),
                    _ => return Err(D::Error::custom("broadcast.strategy must be \"parallel\" or \"sequential\"")),
                }
            } else if is_qualified_broadcast_key(&k) {
                let agents = qualified_entry(&k, &v).map_err(D::Error::custom)?;
                out.qualified.insert(k, agents);
            } else if v.is_object() {
                return Err(D::Error::custom(format!(
                    "broadcast[{k:?}]: the object form needs a qualified key (`<channel>:{k}`); an unqualified entry is a list of agent ids"
                )));
            } else {
                let list = agent_list(&v)
                    .ok_or_else(|| D::Error::custom(format!("broadcast[{k:?}] must be a list of agent ids")))?;
                out.groups.insert(k, list);
            }
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayConfig {
    pub port: Option<u16>,
    pub bind: Option<String>,
    pub custom_bind_host: Option<String>,
    pub mode: Option<String>,
    pub auth: Option<GatewayAuth>,
    pub http: Option<Json>,
    pub control_ui: Option<ControlUiConfig>,
    pub tls: Option<Json>,
    /// chela: `/metrics`.
    pub metrics: Option<GatewayMetrics>,
}

/// `gateway.controlUi`: the control page the gateway serves (OpenClaw's
/// keys; the others it defines load with an "ignored" warning).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControlUiConfig {
    /// `false`: no control page (the control API stays).
    pub enabled: Option<bool>,
    /// Where the page is served (`/ops`); default `/`.
    pub base_path: Option<String>,
    /// Other origins whose pages may call the control API (a reverse proxy's name).
    pub allowed_origins: Option<Vec<String>>,
}

impl ControlUiConfig {
    /// The base path normalised (`""` for the root, else `/a/b` without a
    /// trailing slash), or why it cannot be one.
    pub fn base(&self) -> Result<String, String> {
        let raw = self.base_path.as_deref().unwrap_or("").trim();
        let trimmed = raw.trim_end_matches('/');
        if trimmed.is_empty() {
            return Ok(String::new());
        }
        if !trimmed.starts_with('/') {
            return Err(format!("`{raw}` must start with `/`"));
        }
        if trimmed.split('/').any(|s| s == ".." || s == ".")
            || !trimmed.chars().all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c))
        {
            return Err(format!("`{raw}`: letters, digits, `-`, `_`, `.` and `/` only, no `.` or `..` segments"));
        }
        let first = trimmed.split('/').nth(1).unwrap_or_default();
        if ["api", "v1", "channels", "healthz", "readyz", "metrics"].contains(&first) {
            return Err(format!("`{raw}` would hide the gateway's own `/{first}` routes"));
        }
        Ok(trimmed.to_string())
    }
}

/// `gateway.metrics` (chela).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayMetrics {
    /// `/metrics` needs the bearer token. Default: on when bound off loopback.
    pub auth: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayAuth {
    pub mode: Option<String>,
    pub token: Option<String>,
    pub password: Option<String>,
}

/// `plugins` (chela): where plugins live and per-plugin limits/grants.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginsConfig {
    pub dirs: Option<Vec<String>>,
    pub entries: Option<IndexMap<String, Json>>,
    /// OpenClaw's plugin keys, accepted for compatibility.
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    pub load: Option<Json>,
    pub slots: Option<Json>,
    pub installs: Option<Json>,
    pub enabled: Option<bool>,
}
