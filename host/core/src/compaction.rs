//! When a session is compacted, as OpenClaw 2026.9.6 decides it
//! (`docs/concepts/compaction.md`, `reference/session-management-compaction/`):
//! the model's context window, the reserve kept free for the summary and
//! housekeeping, the recent tail kept verbatim, and the soft margin at which
//! the memory flush runs first. One home for these numbers: the agent
//! runtime asks here and does the work.
//!
//! Must not: estimate tokens of messages, choose a cut point or call a model
//! (the agent runtime's `compaction` module does).

use crate::config::schema::Config;
use crate::thinking::ThinkLevel;

/// The context window assumed when the config names none for a model
/// (OpenClaw's `DEFAULT_CONTEXT_TOKENS`).
pub const DEFAULT_CONTEXT_WINDOW: u64 = 200_000;
/// The reserve for windows of 80,000 tokens or more; at most a quarter of a smaller window.
pub const DEFAULT_RESERVE_TOKENS: u64 = 20_000;
/// `keepRecentTokens` when unset.
pub const DEFAULT_KEEP_RECENT_TOKENS: u64 = 20_000;
/// `memoryFlush.softThresholdTokens` when unset.
pub const DEFAULT_FLUSH_SOFT_TOKENS: u64 = 4_000;
/// Operator focus (`/compact <instructions>`) is cut to this many characters.
pub const MAX_FOCUS_CHARS: usize = 800;

/// The sections a `safeguard` summary must have, in this order (OpenClaw's).
pub const REQUIRED_SECTIONS: [&str; 5] =
    ["## Decisions", "## Open TODOs", "## Constraints/Rules", "## Pending user asks", "## Exact identifiers"];
/// Corrective attempts after a summary fails the audit, unless `qualityGuard.maxRetries` says otherwise…
pub const DEFAULT_QUALITY_RETRIES: u32 = 1;
/// …and at most this many.
pub const MAX_QUALITY_RETRIES: u32 = 3;
/// `timeoutSeconds` when unset: how long one summary request may take.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 180;
/// `recentTurnsPreserve` when unset…
pub const DEFAULT_RECENT_TURNS_PRESERVE: usize = 3;
/// …and at most this many.
pub const MAX_RECENT_TURNS_PRESERVE: usize = 12;
/// The most identifiers a summary is audited for.
pub const MAX_AUDITED_IDENTIFIERS: usize = 12;

/// `compaction.mode: "safeguard"`: structured summaries and their audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Safeguard {
    /// Audit each summary (`qualityGuard.enabled`, default on).
    pub quality_guard: bool,
    /// Corrective attempts after a failed audit.
    pub max_retries: u32,
    /// `identifierPolicy: "strict"` (default): exact identifiers must stay.
    pub strict_identifiers: bool,
    /// `recentTurnsPreserve`: the last this many user turns of what is
    /// summarised are stored verbatim after the summary instead.
    pub recent_turns: usize,
}

/// What compaction means for one agent's session on one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionPlan {
    /// Threshold compaction before a model call (`compaction.enabled`, default on).
    /// Overflow recovery and `/compact` work either way.
    pub enabled: bool,
    /// The model's context window (`contextTokens`, else `contextWindow`, of
    /// `models.providers.<p>.models[]`; else [`DEFAULT_CONTEXT_WINDOW`]).
    pub window: u64,
    /// Kept free below the window: compaction starts at `window - reserve`.
    pub reserve: u64,
    /// The recent tail kept verbatim, in estimated tokens (never more than
    /// half the budget, so the summary and the tail fit together).
    pub keep_recent: u64,
    /// The model that writes summaries, when not the session's own.
    pub model: Option<String>,
    /// How long one summary request may take before the compaction fails
    /// (`timeoutSeconds`, default 180).
    pub timeout_seconds: u64,
    /// The thinking summary requests ask for (`thinkingLevel`; `None`: the
    /// model's own default).
    pub thinking: Option<SummaryThinking>,
    /// Tell the chat when a compaction ran (or failed).
    pub notify_user: bool,
    /// Compact before a turn once the active history holds this many bytes.
    pub max_active_bytes: Option<u64>,
    /// The silent memory-flush turn before compacting, when on.
    pub flush: Option<FlushPlan>,
    /// `mode: "safeguard"`; `None`: the default mode (free-form summaries, no audit).
    pub safeguard: Option<Safeguard>,
}

/// `compaction.thinkingLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryThinking {
    Level(ThinkLevel),
    /// `inherit`: the level the session's own turns use.
    Inherit,
}

/// `thinkingLevel` as written; `None` when it is no level.
pub fn summary_thinking(raw: &str) -> Option<SummaryThinking> {
    if raw.trim().eq_ignore_ascii_case("inherit") {
        return Some(SummaryThinking::Inherit);
    }
    ThinkLevel::parse(raw).map(SummaryThinking::Level)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushPlan {
    /// The flush runs once the context passes `budget - soft_threshold`.
    pub soft_threshold: u64,
    /// An exact model for the flush turn (no fallbacks), else the session's.
    pub model: Option<String>,
    /// The flush also runs once the history the model sees (since the last
    /// compaction, its kept tail included) holds this many bytes
    /// (`forceFlushTranscriptBytes`).
    pub force_bytes: Option<u64>,
}

impl CompactionPlan {
    /// Estimated tokens a request may hold before compaction is due.
    pub fn budget(&self) -> u64 {
        self.window.saturating_sub(self.reserve)
    }

    /// Estimated tokens at which the memory flush is due (`None`: no flush).
    pub fn flush_at(&self) -> Option<u64> {
        self.flush.as_ref().map(|f| self.budget().saturating_sub(f.soft_threshold))
    }
}

/// The plan for `model` (`provider/model`) under `cfg`.
pub fn plan(cfg: &Config, model: &str) -> CompactionPlan {
    let c = cfg.agent_defaults().and_then(|d| d.compaction.clone()).unwrap_or_default();
    let window = context_window(cfg, model);
    let reserve = DEFAULT_RESERVE_TOKENS.min(window / 4);
    let budget = window.saturating_sub(reserve);
    let keep_recent = c.keep_recent_tokens.unwrap_or(DEFAULT_KEEP_RECENT_TOKENS).min(budget / 2);
    let flush_cfg = c.memory_flush.unwrap_or_default();
    let flush = flush_cfg.enabled.unwrap_or(true).then(|| FlushPlan {
        soft_threshold: flush_cfg.soft_threshold_tokens.unwrap_or(DEFAULT_FLUSH_SOFT_TOKENS),
        model: flush_cfg.model.filter(|m| !m.trim().is_empty()),
        force_bytes: flush_cfg.force_flush_transcript_bytes.map(|b| b.0).filter(|b| *b > 0),
    });
    CompactionPlan {
        enabled: c.enabled.unwrap_or(true),
        window,
        reserve,
        keep_recent,
        model: c.model.filter(|m| !m.trim().is_empty()),
        timeout_seconds: c
            .timeout_seconds
            .and_then(|s| u64::try_from(s).ok())
            .filter(|s| *s > 0)
            .unwrap_or(DEFAULT_TIMEOUT_SECONDS),
        thinking: c.thinking_level.as_deref().and_then(summary_thinking),
        notify_user: c.notify_user.unwrap_or(false),
        max_active_bytes: c.max_active_transcript_bytes.map(|b| b.0).filter(|b| *b > 0),
        flush,
        safeguard: (c.mode.as_deref() == Some("safeguard")).then(|| {
            let guard = c.quality_guard.clone().unwrap_or_default();
            Safeguard {
                quality_guard: guard.enabled.unwrap_or(true),
                max_retries: guard
                    .max_retries
                    .map_or(DEFAULT_QUALITY_RETRIES, |n| u32::try_from(n).unwrap_or(u32::MAX).min(MAX_QUALITY_RETRIES)),
                strict_identifiers: c.identifier_policy.as_deref() != Some("off"),
                recent_turns: c.recent_turns_preserve.map_or(DEFAULT_RECENT_TURNS_PRESERVE, |n| {
                    usize::try_from(n.max(0)).unwrap_or(usize::MAX).min(MAX_RECENT_TURNS_PRESERVE)
                }),
            }
        }),
    }
}

/// The context window of `provider/model`: `contextTokens` (the effective
/// cap) or `contextWindow` of its `models.providers.<provider>.models[]`
/// entry, else [`DEFAULT_CONTEXT_WINDOW`].
pub fn context_window(cfg: &Config, model: &str) -> u64 {
    let Some((provider, id)) = model.split_once('/') else { return DEFAULT_CONTEXT_WINDOW };
    let entry = cfg
        .models
        .as_ref()
        .and_then(|m| m.get("providers"))
        .and_then(|p| p.get(provider))
        .and_then(|p| p.get("models"))
        .and_then(|m| m.as_array())
        .and_then(|list| list.iter().find(|m| m.get("id").and_then(|v| v.as_str()) == Some(id)));
    entry
        .and_then(|e| e.get("contextTokens").or_else(|| e.get("contextWindow")))
        .and_then(|v| v.as_u64())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_CONTEXT_WINDOW)
}

/// Whether a provider's error says the request did not fit the model's
/// context (the patterns OpenClaw recognises): compact and retry.
pub fn is_context_overflow(message: &str) -> bool {
    const PATTERNS: &[&str] = &[
        "request_too_large",
        "context length exceeded",
        "context_length_exceeded",
        "maximum context length",
        "input exceeds the maximum number of tokens",
        "input token count exceeds the maximum",
        "input is too long",
        "prompt is too long",
        "too many tokens",
        "context window",
    ];
    let m = message.to_ascii_lowercase();
    PATTERNS.iter().any(|p| m.contains(p))
}

/// Operator focus for a summary, cut to [`MAX_FOCUS_CHARS`] characters.
pub fn focus(instructions: &str) -> Option<String> {
    let t = instructions.trim();
    (!t.is_empty()).then(|| t.chars().take(MAX_FOCUS_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn cfg(text: &str) -> Config {
        load_str(text, None).expect("config").config
    }

    #[test]
    fn defaults_follow_openclaw() {
        let p = plan(&Config::default(), "openai/gpt-5");
        assert_eq!((p.window, p.reserve, p.budget(), p.keep_recent), (200_000, 20_000, 180_000, 20_000));
        assert!(p.enabled && !p.notify_user && p.model.is_none());
        assert_eq!(p.flush_at(), Some(176_000));
    }

    #[test]
    fn a_small_window_keeps_three_quarters_and_the_tail_fits_beside_the_summary() {
        let c = cfg(r#"{ models: { providers: { local: { baseUrl: "http://127.0.0.1:1/v1",
              models: [{ id: "small", name: "small", contextWindow: 32768 }] } } } }"#);
        let p = plan(&c, "local/small");
        // OpenClaw's documented example: a 32,768 window has an 8,192 reserve
        // and flushes from 20,576 projected tokens.
        assert_eq!((p.window, p.reserve, p.budget()), (32_768, 8_192, 24_576));
        assert_eq!(p.flush_at(), Some(20_576));
        assert_eq!(p.keep_recent, 12_288, "half the budget, not the 20,000 default");
        assert_eq!(plan(&c, "local/other").window, DEFAULT_CONTEXT_WINDOW);
    }

    #[test]
    fn settings_are_read() {
        let c = cfg(
            r#"{ agents: { defaults: { compaction: { enabled: false, keepRecentTokens: 500, model: "offline/persona",
              notifyUser: true, maxActiveTranscriptBytes: "2mb", memoryFlush: { enabled: false } } } } }"#,
        );
        let p = plan(&c, "offline/persona");
        assert_eq!((p.enabled, p.keep_recent, p.notify_user), (false, 500, true));
        assert_eq!(
            (p.model.as_deref(), p.max_active_bytes, p.flush.is_none()),
            (Some("offline/persona"), Some(2 << 20), true)
        );
    }

    #[test]
    fn safeguard_mode_audits_by_default_and_caps_its_retries() {
        assert_eq!(plan(&Config::default(), "openai/x").safeguard, None, "the default mode, as OpenClaw's runtime");
        let c = cfg(r#"{ agents: { defaults: { compaction: { mode: "safeguard" } } } }"#);
        assert_eq!(
            plan(&c, "openai/x").safeguard,
            Some(Safeguard { quality_guard: true, max_retries: 1, strict_identifiers: true, recent_turns: 3 })
        );
        let c = cfg(r#"{ agents: { defaults: { compaction: { mode: "safeguard", identifierPolicy: "off",
              qualityGuard: { enabled: false, maxRetries: 9 }, recentTurnsPreserve: 0 } } } }"#);
        assert_eq!(
            plan(&c, "openai/x").safeguard,
            Some(Safeguard {
                quality_guard: false,
                max_retries: MAX_QUALITY_RETRIES,
                strict_identifiers: false,
                recent_turns: 0
            })
        );
    }

    #[test]
    fn overflow_errors_are_recognised() {
        assert!(is_context_overflow("400: This model's maximum context length is 8192 tokens"));
        assert!(is_context_overflow("{\"type\":\"request_too_large\"}"));
        assert!(!is_context_overflow("401 unauthorized"));
        assert_eq!(focus("  "), None);
        assert_eq!(focus(&"x".repeat(900)).map(|f| f.chars().count()), Some(MAX_FOCUS_CHARS));
    }
}
