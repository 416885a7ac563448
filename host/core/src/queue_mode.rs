//! Queue modes (OpenClaw 2026.9.6's `docs/concepts/queue.md`): what a
//! message does when its session already has a turn running — `steer` it
//! into that turn at its next model or tool boundary, wait as a `followup`,
//! `collect` with the other waiting messages into one turn, or `interrupt`
//! the running turn — and the queue's debounce, cap and drop policy. The
//! settings resolve as OpenClaw's do: the session's `/queue` override, then
//! `messages.queue.byChannel.<channel>`, then `messages.queue.mode`, then
//! `steer`; debounce from the override, `messages.queue.debounceMsByChannel`,
//! then 500 ms; cap and drop from the override, then `messages.queue`.
//! Also the texts the queue gives the model: a collected batch and the
//! summary of what a full queue dropped.
//!
//! Must not: hold a queue or run a turn (the agent runtime's `queue.rs` does).

use std::time::Duration;

use crate::config::schema::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMode {
    Steer,
    Followup,
    Collect,
    Interrupt,
}

impl QueueMode {
    /// A mode by name, with OpenClaw's aliases (`steering`, `follow-ups`,
    /// `coalesce`, `abort`…).
    pub fn parse(s: &str) -> Option<QueueMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "steer" | "steering" => Some(QueueMode::Steer),
            "followup" | "follow-ups" | "followups" => Some(QueueMode::Followup),
            "collect" | "coalesce" => Some(QueueMode::Collect),
            "interrupt" | "interrupts" | "abort" => Some(QueueMode::Interrupt),
            _ => None,
        }
    }

    /// A mode as a session entry stores it: [`QueueMode::parse`], plus the
    /// legacy values older OpenClaw versions wrote (`queue`/`queued` are
    /// `steer`, `steer+backlog` is `followup`), as OpenClaw reads them.
    pub fn parse_persisted(s: &str) -> Option<QueueMode> {
        QueueMode::parse(s).or_else(|| match s.trim().to_ascii_lowercase().as_str() {
            "queue" | "queued" => Some(QueueMode::Steer),
            "steer+backlog" | "steer-backlog" | "steer_backlog" => Some(QueueMode::Followup),
            _ => None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QueueMode::Steer => "steer",
            QueueMode::Followup => "followup",
            QueueMode::Collect => "collect",
            QueueMode::Interrupt => "interrupt",
        }
    }
}

/// What a full queue gives up (`messages.queue.drop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropPolicy {
    /// The oldest waiting messages, without a trace.
    Old,
    /// The newest message is refused.
    New,
    /// The oldest waiting messages, each kept as one summary line that the
    /// next turn receives (OpenClaw's default).
    Summarize,
}

impl DropPolicy {
    pub fn parse(s: &str) -> Option<DropPolicy> {
        match s.trim().to_ascii_lowercase().as_str() {
            "old" | "oldest" => Some(DropPolicy::Old),
            "new" | "newest" => Some(DropPolicy::New),
            "summarize" | "summary" => Some(DropPolicy::Summarize),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DropPolicy::Old => "old",
            DropPolicy::New => "new",
            DropPolicy::Summarize => "summarize",
        }
    }
}

/// One session's queue settings, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    pub mode: QueueMode,
    /// Quiet window before a waiting followup or a collected batch runs.
    pub debounce: Duration,
    /// Messages waiting per session (the running turn not counted).
    pub cap: usize,
    pub drop: DropPolicy,
}

pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(500);
pub const DEFAULT_CAP: usize = 20;

/// A session's own `/queue` settings (stored on its index entry as
/// OpenClaw's `queueMode`, `queueDebounceMs`, `queueCap`, `queueDrop`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueOverride {
    pub mode: Option<QueueMode>,
    pub debounce: Option<Duration>,
    pub cap: Option<usize>,
    pub drop: Option<DropPolicy>,
}

impl QueueOverride {
    pub fn is_empty(&self) -> bool {
        *self == QueueOverride::default()
    }
}

/// The settings in force for a session of `channel`.
pub fn settings(cfg: &Config, channel: Option<&str>, own: &QueueOverride) -> QueueSettings {
    let queue = cfg.messages.as_ref().and_then(|m| m.get("queue"));
    let by_channel = |field: &str| Some(queue?.get(field)?.get(channel?)?.clone());
    let mode = own
        .mode
        .or_else(|| by_channel("byChannel").and_then(|v| QueueMode::parse(v.as_str()?)))
        .or_else(|| QueueMode::parse(queue?.get("mode")?.as_str()?))
        .unwrap_or(QueueMode::Steer);
    let debounce = own
        .debounce
        .or_else(|| by_channel("debounceMsByChannel")?.as_u64().map(Duration::from_millis))
        .unwrap_or(DEFAULT_DEBOUNCE);
    let cap = own
        .cap
        .or_else(|| queue?.get("cap")?.as_u64().and_then(|n| usize::try_from(n).ok()))
        .filter(|n| *n >= 1)
        .unwrap_or(DEFAULT_CAP);
    let drop = own.drop.or_else(|| DropPolicy::parse(queue?.get("drop")?.as_str()?)).unwrap_or(DropPolicy::Summarize);
    QueueSettings { mode, debounce, cap, drop }
}

/// What `/queue …` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueDirective {
    /// `/queue` alone: the settings in force.
    Show,
    /// `/queue default` (`reset`, `clear`): back to the config's.
    Reset,
    /// `/queue collect debounce:2s cap:25 drop:old` (any of them).
    Set(QueueOverride),
}

pub const QUEUE_USAGE: &str = "/queue <steer|followup|collect|interrupt> [debounce:<500ms|2s|1m>] [cap:<n>] [drop:<old|new|summarize>], or /queue default";

/// Parses the arguments of `/queue`; the error names the bad word.
pub fn parse_directive(args: &str) -> Result<QueueDirective, String> {
    let mut own = QueueOverride::default();
    let words: Vec<&str> = args.split_whitespace().collect();
    if words.is_empty() {
        return Ok(QueueDirective::Show);
    }
    for word in words {
        let lower = word.to_ascii_lowercase();
        if matches!(lower.as_str(), "default" | "reset" | "clear") {
            return Ok(QueueDirective::Reset);
        }
        let option = lower.split_once([':', '=']);
        match option {
            Some(("debounce", v)) => {
                own.debounce = Some(
                    parse_duration(v)
                        .ok_or_else(|| format!("`{word}`: debounce is a duration such as 500ms, 2s or 1m"))?,
                )
            }
            Some(("cap", v)) => {
                own.cap = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| format!("`{word}`: cap is a whole number of messages, at least 1"))?,
                )
            }
            Some(("drop", v)) => {
                own.drop = Some(DropPolicy::parse(v).ok_or_else(|| format!("`{word}`: drop is old, new or summarize"))?)
            }
            _ => {
                own.mode =
                    Some(QueueMode::parse(&lower).ok_or_else(|| format!("`{word}` is not a queue mode or option"))?)
            }
        }
    }
    Ok(QueueDirective::Set(own))
}

/// A duration as OpenClaw's `/queue debounce:` takes it: a bare number is
/// milliseconds; `ms`, `s`, `m`, `h` and `d` are units.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number.parse().ok().filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let ms = match unit {
        "" | "ms" => n,
        "s" => n * 1e3,
        "m" => n * 60e3,
        "h" => n * 3_600e3,
        "d" => n * 86_400e3,
        _ => return None,
    };
    Some(Duration::from_millis(ms.round() as u64))
}

/// The settings as `/queue` shows them.
pub fn describe(s: &QueueSettings, own: &QueueOverride) -> String {
    let source = if own.is_empty() { "from the config" } else { "this session's /queue override" };
    format!(
        "Queue: mode {}, debounce {} ms, cap {}, drop {} ({source}).",
        s.mode.as_str(),
        s.debounce.as_millis(),
        s.cap,
        s.drop.as_str()
    )
}

/// One dropped message as the overflow summary keeps it: whitespace folded,
/// at most 160 characters (OpenClaw's `buildQueueSummaryLine`).
pub fn summary_line(text: &str) -> String {
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() <= 160 {
        return folded;
    }
    let cut: String = folded.chars().take(159).collect();
    format!("{}…", cut.trim_end())
}

/// What the next turn is told about messages a full queue dropped.
pub fn overflow_prompt(dropped: usize, lines: &[String]) -> String {
    let mut out =
        format!("[Queue overflow] Dropped {dropped} message{} due to cap.", if dropped == 1 { "" } else { "s" });
    if !lines.is_empty() {
        out.push_str("\nSummary:");
        for l in lines {
            out.push_str("\n- ");
            out.push_str(l);
        }
    }
    out
}

/// One collected message: who sent it and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    pub sender: Option<String>,
    pub text: String,
}

/// Messages collected while the agent was busy, as one prompt (OpenClaw's
/// collect prompt: a title, then `---` / `Queued #n (from …)` per message).
pub fn collect_prompt(items: &[Collected]) -> String {
    let mut out = String::from("[Queued messages while agent was busy]");
    for (i, item) in items.iter().enumerate() {
        let from = item.sender.as_deref().map(|s| format!(" (from {s})")).unwrap_or_default();
        out.push_str(&format!("\n\n---\nQueued #{}{from}\n{}", i + 1, item.text.trim()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        crate::config::load_str(text, None).unwrap().config
    }

    #[test]
    fn settings_resolve_override_then_channel_then_global_then_defaults() {
        let bare = cfg("{}");
        let none = QueueOverride::default();
        assert_eq!(
            settings(&bare, Some("telegram"), &none),
            QueueSettings { mode: QueueMode::Steer, debounce: DEFAULT_DEBOUNCE, cap: 20, drop: DropPolicy::Summarize }
        );
        let c = cfg(r#"{ messages: { queue: { mode: "followup", cap: 5, drop: "old",
            byChannel: { discord: "collect" }, debounceMsByChannel: { discord: 1000 } } } }"#);
        let discord = settings(&c, Some("discord"), &none);
        assert_eq!(
            (discord.mode, discord.debounce, discord.cap, discord.drop),
            (QueueMode::Collect, Duration::from_secs(1), 5, DropPolicy::Old)
        );
        let slack = settings(&c, Some("slack"), &none);
        assert_eq!((slack.mode, slack.debounce), (QueueMode::Followup, DEFAULT_DEBOUNCE));
        let own = QueueOverride { mode: Some(QueueMode::Interrupt), cap: Some(2), ..QueueOverride::default() };
        let s = settings(&c, Some("discord"), &own);
        assert_eq!((s.mode, s.cap, s.debounce), (QueueMode::Interrupt, 2, Duration::from_secs(1)));
    }

    #[test]
    fn directives_parse_modes_aliases_and_options_and_name_what_is_wrong() {
        assert_eq!(parse_directive(""), Ok(QueueDirective::Show));
        assert_eq!(parse_directive("reset"), Ok(QueueDirective::Reset));
        assert_eq!(
            parse_directive("coalesce debounce:0.5s cap:25 drop:summary"),
            Ok(QueueDirective::Set(QueueOverride {
                mode: Some(QueueMode::Collect),
                debounce: Some(Duration::from_millis(500)),
                cap: Some(25),
                drop: Some(DropPolicy::Summarize),
            }))
        );
        assert!(parse_directive("sideways").unwrap_err().contains("`sideways`"));
        assert!(parse_directive("steer cap:0").unwrap_err().contains("cap"));
        assert!(parse_directive("debounce:soon").unwrap_err().contains("duration"));
        assert_eq!(parse_duration("250"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("3w"), None);
        assert_eq!(QueueMode::parse_persisted("steer+backlog"), Some(QueueMode::Followup));
        assert_eq!(QueueMode::parse_persisted("queued"), Some(QueueMode::Steer));
        assert_eq!(QueueMode::parse("queued"), None, "not a mode /queue accepts");
    }

    #[test]
    fn prompts_have_openclaws_shape() {
        let p = collect_prompt(&[
            Collected { sender: Some("Ana".into()), text: "one".into() },
            Collected { sender: None, text: " two ".into() },
        ]);
        assert_eq!(
            p,
            "[Queued messages while agent was busy]\n\n---\nQueued #1 (from Ana)\none\n\n---\nQueued #2\ntwo"
        );
        assert_eq!(
            overflow_prompt(2, &["a".into(), "b".into()]),
            "[Queue overflow] Dropped 2 messages due to cap.\nSummary:\n- a\n- b"
        );
        let long = "word ".repeat(100);
        let line = summary_line(&long);
        assert_eq!(line.chars().count(), 160);
        assert!(line.ends_with('…'));
    }
}
