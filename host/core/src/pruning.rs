//! Session pruning as OpenClaw 2026.9.6 decides it
//! (`docs/concepts/session-pruning.md`, `agents.defaults.contextPruning`):
//! whether a model's requests get old tool results trimmed at all
//! (`mode: "cache-ttl"` on a route that caches prompts), where that happens
//! (the direct Anthropic API clears them server-side; other eligible routes
//! in the gateway), how long a cached prefix stays untouched (`ttl`), which
//! tools' results may go (`tools.allow`/`deny`) and what a cleared result
//! says (`hardClear`). The built-in thresholds live here too: one home for
//! these numbers, the agent runtime does the work.
//!
//! Must not: look at messages, estimate their size or keep projections
//! (the agent runtime's `pruning` module does), or call a provider.

use crate::compaction::context_window;
use crate::config::anthropic_defaults::AuthMode;
use crate::config::schema::{Config, ContextPruningConfig};
use crate::policy::{normalize_tool_name, ToolCatalog, ToolMatcher};
use crate::schedule::{parse_duration_ms, Unit};

/// `ttl` when unset (or unreadable, as OpenClaw falls back).
pub const DEFAULT_TTL_MS: u64 = 5 * 60_000;
/// What a hard-cleared result says unless `hardClear.placeholder` says otherwise.
pub const DEFAULT_PLACEHOLDER: &str = "[Old tool result content cleared]";
/// Below this share of the window (in characters, four a token) nothing is pruned.
pub const SOFT_RATIO: f64 = 0.3;
/// At or above this share, old results are hard-cleared after soft-trimming…
pub const HARD_RATIO: f64 = 0.5;
/// …when at least this many characters of prunable results remain.
pub const MIN_PRUNABLE_CHARS: usize = 50_000;
/// A result over this many characters is soft-trimmed…
pub const SOFT_TRIM_OVER_CHARS: usize = 4_000;
/// …to its first and last this many.
pub const SOFT_TRIM_KEEP_CHARS: usize = 1_500;
/// The last this many assistant messages (and everything after them) are never pruned.
pub const KEEP_LAST_ASSISTANTS: usize = 3;
/// Characters one token stands for in the ratios.
pub const CHARS_PER_TOKEN: u64 = 4;
/// Characters one image counts for.
pub const IMAGE_CHARS: usize = 8_000;
/// What an image in a soft-trimmed result becomes.
pub const IMAGE_MARKER: &str = "[image removed during context pruning]";
/// The most recent completed turns whose images are sent again (OpenClaw's
/// legacy image cleanup); older ones are sent as [`IMAGE_PROCESSED`].
pub const IMAGE_TURNS_KEPT: usize = 3;
/// What an image of an older turn is sent as.
pub const IMAGE_PROCESSED: &str = "[image data removed - already processed by model]";
/// What an older turn's textual media reference is sent as.
pub const MEDIA_REFERENCE_PROCESSED: &str = "[media reference removed - already processed by model]";

/// OpenClaw's textual media references of older turns (`[media attached:
/// …]`, `[media attached 1/2: …]`, `[Image: source: …]`,
/// `media://inbound/…`), as its legacy image cleanup matches them: one
/// pattern, so a text without any is scanned once.
static MEDIA_REFERENCES: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?i:\[media attached(?:\s+\d+/\d+)?:\s*[^\]]+\]|\[Image:\s*source:\s*[^\]]+\])|\bmedia://inbound/[^\]\s/\\]+",
    )
    .expect("a valid built-in pattern")
});

/// `text` with OpenClaw's textual media references replaced by
/// [`MEDIA_REFERENCE_PROCESSED`]; `None` when it has none.
pub fn without_media_references(text: &str) -> Option<String> {
    if !MEDIA_REFERENCES.is_match(text) {
        return None;
    }
    Some(MEDIA_REFERENCES.replace_all(text, MEDIA_REFERENCE_PROCESSED).into_owned())
}

/// The most recent tool uses Anthropic's server-side clearing keeps.
pub const SERVER_KEEP_TOOL_USES: u64 = 3;

/// Pruning for one model's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruning {
    /// How long after a request its cached prefix is left alone.
    pub ttl_ms: u64,
    /// Whether the hard-clear step runs.
    pub hard_clear: bool,
    pub placeholder: String,
    /// The model's context window, in tokens.
    pub window: u64,
    tools: ToolMatcher,
    pub route: Route,
}

/// Where old tool results are pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// In the gateway, on its own view of the conversation.
    Client,
    /// By the Anthropic API (`clear_tool_uses_20250919`): no new rounds in the
    /// gateway; projections made earlier still replay.
    AnthropicServer {
        /// Clear once a request holds this many input tokens…
        trigger_tokens: u64,
        /// …and only if at least this many go.
        clear_at_least_tokens: u64,
    },
}

impl Pruning {
    /// Whether `tool`'s results may be pruned (`tools.deny` wins; an empty
    /// `tools.allow` allows every tool; names, aliases and `group:` entries
    /// as in tool policy).
    pub fn prunable(&self, tool: &str) -> bool {
        let name = normalize_tool_name(tool);
        !self.tools.denies(&name) && self.tools.allow_list_matches(&name)
    }

    /// The window in characters, against which the ratios are taken.
    pub fn window_chars(&self) -> u64 {
        self.window.saturating_mul(CHARS_PER_TOKEN)
    }
}

/// `ttl` as milliseconds: OpenClaw's duration, bare numbers in minutes.
pub fn ttl_ms(settings: &ContextPruningConfig) -> Result<u64, String> {
    match settings.ttl.as_deref() {
        None => Ok(DEFAULT_TTL_MS),
        Some(raw) => parse_duration_ms(raw, Unit::Minutes),
    }
}

/// Pruning for requests to `model` (`provider/model`) under `cfg`, sent
/// with a credential of kind `auth` (`None`: unknown, as an API key);
/// `None` when `contextPruning.mode` is not `cache-ttl` or the model's route
/// does not cache prompts (OpenClaw prunes only where a cache makes it pay:
/// Anthropic, and OpenAI's own platform or a model marked
/// `compat.supportsPromptCacheKey`). Only API-key requests to Anthropic's
/// own endpoint are cleared server-side; OAuth/token ones prune here.
pub fn plan(cfg: &Config, model: &str, auth: Option<AuthMode>) -> Option<Pruning> {
    let settings = cfg.agent_defaults()?.context_pruning.as_ref()?;
    if settings.mode.as_deref() != Some("cache-ttl") {
        return None;
    }
    let (provider, id) = model.split_once('/')?;
    let window = context_window(cfg, model);
    let route = match provider {
        "anthropic" if is_direct(cfg, "anthropic", "api.anthropic.com") && auth != Some(AuthMode::Token) => {
            Route::AnthropicServer {
                trigger_tokens: (window * 3 / 10).max(50_000),
                clear_at_least_tokens: (window / 20).max(12_500),
            }
        }
        "anthropic" | "anthropic-vertex" => Route::Client,
        "openai" if is_direct(cfg, "openai", "api.openai.com") || supports_prompt_cache_key(cfg, provider, id) => {
            Route::Client
        }
        _ => return None,
    };
    let list = |l: &Option<Vec<String>>| -> Vec<String> {
        l.iter().flatten().map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect()
    };
    let tools = settings.tools.clone().unwrap_or_default();
    let hard = settings.hard_clear.clone().unwrap_or_default();
    Some(Pruning {
        ttl_ms: ttl_ms(settings).unwrap_or(DEFAULT_TTL_MS),
        hard_clear: hard.enabled.unwrap_or(true),
        placeholder: hard
            .placeholder
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| DEFAULT_PLACEHOLDER.to_string()),
        window,
        tools: ToolMatcher::new(&list(&tools.allow), &list(&tools.deny), &ToolCatalog::core()),
        route,
    })
}

fn provider_config<'a>(cfg: &'a Config, provider: &str) -> Option<&'a serde_json::Value> {
    cfg.models.as_ref()?.get("providers")?.get(provider)
}

/// Whether `provider` talks to its vendor's own endpoint (no `baseUrl`, or one on `host`).
fn is_direct(cfg: &Config, provider: &str, host: &str) -> bool {
    match provider_config(cfg, provider).and_then(|p| p.get("baseUrl")).and_then(|b| b.as_str()) {
        None => true,
        Some(base) => url_host(base).is_some_and(|h| h.eq_ignore_ascii_case(host)),
    }
}

fn url_host(base: &str) -> Option<&str> {
    let rest = base.trim().split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some(host.split(':').next().unwrap_or(host))
}

/// `models.providers.<provider>.models[id].compat.supportsPromptCacheKey`.
fn supports_prompt_cache_key(cfg: &Config, provider: &str, id: &str) -> bool {
    provider_config(cfg, provider)
        .and_then(|p| p.get("models"))
        .and_then(|m| m.as_array())
        .and_then(|list| list.iter().find(|m| m.get("id").and_then(|v| v.as_str()) == Some(id)))
        .and_then(|m| m.get("compat"))
        .and_then(|c| c.get("supportsPromptCacheKey"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn cfg(text: &str) -> Config {
        load_str(text, None).expect("config").config
    }

    #[test]
    fn openclaws_media_references_are_recognised() {
        let text =
            "see [media attached 1/2: /tmp/a.png] and [Image: source: https://x/y.jpg] at media://inbound/abc123 ok";
        assert_eq!(
            without_media_references(text).as_deref(),
            Some(
                "see [media reference removed - already processed by model] and [media reference removed - already \
                 processed by model] at [media reference removed - already processed by model] ok"
            )
        );
        assert_eq!(without_media_references("[MEDIA ATTACHED: x]").as_deref(), Some(MEDIA_REFERENCE_PROCESSED));
        assert_eq!(without_media_references("an [image] of media:// stuff"), None);
    }

    #[test]
    fn off_unless_cache_ttl_on_a_caching_route() {
        assert!(plan(&Config::default(), "anthropic/claude", None).is_none(), "off by default");
        let on = r#"agents: { defaults: { contextPruning: { mode: "cache-ttl" } } }"#;
        let c = cfg(&format!("{{ {on} }}"));
        assert!(plan(&c, "openai/gpt-5", None).is_some(), "OpenAI's own platform");
        assert!(plan(&c, "offline/persona", None).is_none(), "no prompt cache: not pruned, as OpenClaw");
        let p = plan(&c, "anthropic/claude", None).expect("anthropic");
        assert_eq!(
            p.route,
            Route::AnthropicServer { trigger_tokens: 60_000, clear_at_least_tokens: 12_500 },
            "the direct API clears server-side: max(50000, 30% of 200,000), max(12500, 5%)"
        );
        assert_eq!((p.ttl_ms, p.hard_clear, p.placeholder.as_str()), (DEFAULT_TTL_MS, true, DEFAULT_PLACEHOLDER));
        let keyed = plan(&c, "anthropic/claude", Some(AuthMode::ApiKey)).map(|p| p.route);
        assert_eq!(keyed, Some(p.route), "an API key: server-side");
        let token = plan(&c, "anthropic/claude", Some(AuthMode::Token)).map(|p| p.route);
        assert_eq!(token, Some(Route::Client), "OAuth/token requests prune in the gateway, as OpenClaw's");

        let proxied = cfg(&format!(
            r#"{{ {on}, models: {{ providers: {{
                 anthropic: {{ baseUrl: "http://127.0.0.1:9/" }},
                 openai: {{ baseUrl: "http://127.0.0.1:8/v1", models: [{{ id: "cached", name: "c", compat: {{ supportsPromptCacheKey: true }} }}] }},
                 local: {{ baseUrl: "http://127.0.0.1:7/v1" }} }} }} }}"#
        ));
        assert_eq!(
            plan(&proxied, "anthropic/claude", None).map(|p| p.route),
            Some(Route::Client),
            "a proxy prunes here"
        );
        assert!(plan(&proxied, "openai/cached", None).is_some(), "a model that says it caches");
        assert!(plan(&proxied, "openai/other", None).is_none(), "an OpenAI-compatible server that does not");
        assert!(plan(&proxied, "local/model", None).is_none());
    }

    #[test]
    fn settings_are_read() {
        let c = cfg(r#"{ agents: { defaults: { contextPruning: { mode: "cache-ttl", ttl: "90",
              tools: { allow: ["Read", "web_*"], deny: ["web_search"] },
              hardClear: { enabled: false, placeholder: "  [gone]  " } } } } }"#);
        let p = plan(&c, "openai/gpt-5", None).unwrap();
        assert_eq!((p.ttl_ms, p.hard_clear, p.placeholder.as_str()), (90 * 60_000, false, "[gone]"));
        assert!(p.prunable("read") && p.prunable("READ") && p.prunable("web_fetch"));
        assert!(!p.prunable("web_search"), "deny wins");
        assert!(!p.prunable("exec"), "outside the allowlist");
        let open =
            plan(&cfg(r#"{ agents: { defaults: { contextPruning: { mode: "cache-ttl" } } } }"#), "openai/x", None);
        assert!(open.unwrap().prunable("exec"), "no lists: every tool");
        assert_eq!(url_host("https://user@API.openai.com:443/v1"), Some("API.openai.com"));
    }
}
