//! What chela does instead of an OpenClaw setting it ignores: the `help`
//! of that setting's "ignored" warning, so an OpenClaw user reads what
//! happens to their setting, not only that it is dropped. Keyed by the
//! setting's path with the agent and account named generically
//! (`agents.*`, `channels.*`).
//!
//! Must not: decide whether a setting is ignored (`openclaw_keys` does);
//! it only explains.

/// `(generic path prefix, what chela does instead)`; the first match wins.
const INSTEAD: &[(&str, &str)] = &[
    ("agents.*.typing", "typing shows per `typingMode` (agent, then `agents.defaults`) and repeats every `agents.defaults.typingIntervalSeconds`; a per-agent interval is not read"),
    ("agents.*.compaction", "chela compacts with the agent's model (or `compaction.model`) in one summary pass; `enabled`, `mode`, `qualityGuard`, `identifierPolicy`, `recentTurnsPreserve`, `timeoutSeconds`, `thinkingLevel`, `keepRecentTokens`, `model`, `notifyUser`, `maxActiveTranscriptBytes` and `memoryFlush` (`enabled`, `model`, `softThresholdTokens`, `forceFlushTranscriptBytes`) are what it reads"),
    ("agents.*.contextLimits", "compaction keeps the context within the model's window (`models.providers.*.models[].contextWindow`)"),
    ("agents.*.sandbox.backend", "exec runs under bubblewrap with Landlock (`sandbox.mode`); there is no other backend"),
    ("agents.*.media", "images go to the agent's own model as image parts, text documents inline, audio transcribed by `tools.media.models`, other files described in the text (`mediaMaxMb` caps them)"),
    ("agents.*.imageModel", "images go to the agent's own model as image parts; there is no separate image model"),
    ("agents.*.maxConcurrent", "one session's turns run one at a time, in order; different sessions run side by side"),
    ("agents.*.memorySearch", "the `memory_search` tool ranks the workspace's memory/ files itself (no embedding index)"),
    ("agents.*.verboseDefault", "sessions start with `/verbose off`; `/verbose on|full` sets it per session"),
    ("agents.*.skipBootstrap", "chela writes the persona templates only into an empty workspace, never over a file"),
    ("channels.*.typing", "typing follows the agent's `typingMode`"),
    ("channels.*.blockStreaming", "block replies are switched per channel or account with `streaming.block.enabled` (and merged per `streaming.block.coalesce`)"),
    ("env.shellEnv", "chela does not read the login shell; put variables in the state dir's `.env` or `env.vars`"),
    ("cron.triggers", "chela has no condition triggers, stream sources or script payloads: jobs run on `at`, `every` or `cron` schedules (command payloads included)"),
    ("cron.webhookSsrfPolicy.allowRfc2544BenchmarkRange", "198.18.0.0/15 stays refused; name the receiver in `allowedHostnames`"),
    ("cron.webhookSsrfPolicy.allowIpv6UniqueLocalRange", "fc00::/7 stays refused; name the receiver in `allowedHostnames`"),
    ("cron.webhook", "OpenClaw retired this fallback URL: set a job's `delivery: {mode: \"webhook\", to}`"),
    ("cron.sessionRetention", "an isolated job's run sessions stay in its agent's session store"),
    ("gateway.controlUi", "chela's control page is built into the binary and reads `enabled`, `basePath` and `allowedOrigins` only"),
    ("mcp", "tools are WebAssembly components dropped into the plugins dir (docs/plugins.md)"),
    ("hooks", "there are no hooks; channel adapters and tools are WebAssembly plugins"),
    ("logging", "logs go to stderr: filter with `CHELA_LOG` or `RUST_LOG`, JSON with `--log-format json`"),
    ("diagnostics.otel", "metrics are served at `/metrics` (OpenMetrics text)"),
    ("tts", "chela sends text only"),
    ("talk", "chela sends text only"),
    ("browser", "there is no browser tool; `web_fetch` reads pages from the hosts a plugin is allowed"),
    ("update", "chela updates with its binary"),
];

/// `agents.list[2].typingMode`, `agents.entries.work.typingMode` and
/// `agents.defaults.typingMode` → `agents.*.typingMode`; the same for
/// `channels.<c>` and `channels.<c>.accounts.<a>`.
fn generic(path: &str) -> String {
    let mut parts: Vec<&str> = path.split('.').collect();
    match parts.as_slice() {
        ["agents", "list", ..] => {}
        ["agents", first, ..] if first.starts_with("list[") => {
            parts.splice(0..2, ["agents", "*"]);
        }
        ["agents", "entries", _, ..] => {
            parts.splice(0..3, ["agents", "*"]);
        }
        ["agents", "defaults", ..] => {
            parts.splice(0..2, ["agents", "*"]);
        }
        ["channels", _, "accounts", _, ..] => {
            parts.splice(0..4, ["channels", "*"]);
        }
        ["channels", _, ..] => {
            parts.splice(0..2, ["channels", "*"]);
        }
        _ => {}
    }
    parts.join(".")
}

/// What chela does instead of the OpenClaw setting at `path`, when that is known.
pub fn instead(path: &str) -> Option<&'static str> {
    let g = generic(path);
    INSTEAD.iter().find(|(prefix, _)| g.starts_with(prefix)).map(|(_, what)| *what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_an_agent_or_account_finds_the_same_hint() {
        let typing = instead("agents.defaults.typingMode");
        assert!(typing.is_some_and(|t| t.contains("typing")));
        assert_eq!(instead("agents.list[3].typingMode"), typing);
        assert_eq!(instead("agents.entries.work.typingIntervalSeconds"), typing);
        assert_eq!(instead("channels.telegram.accounts.ops.blockStreaming"), instead("channels.slack.blockStreaming"));
        assert!(instead("cron.triggers.enabled").is_some());
        assert_eq!(instead("cron.jobs"), None, "chela reads `cron.jobs`");
        assert_eq!(instead("agents.defaults.workspace"), None);
    }
}
