//! Thinking levels (OpenClaw 2026.9.6's `docs/tools/thinking.md`): the
//! `/think` ladder, its aliases, which level a turn uses, and what each level
//! asks of a provider.
//!
//! A turn's level is the session's `/think` pick (stored as OpenClaw's
//! `thinkingLevel`), else the agent's `thinkingDefault`, else
//! `agents.defaults.thinkingDefault`; with none, nothing is sent and the
//! provider's own default applies.
//!
//! Must not: talk to a provider or the session store; providers map a level
//! with the functions here.

use crate::config::schema::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ThinkLevel {
    Off,
    Minimal,
    Low,
    Medium,
    High,
    Xhigh,
    Adaptive,
    Max,
}

/// The levels as `/think` lists them.
pub const LEVELS: &[&str] = &["off", "minimal", "low", "medium", "high", "xhigh", "adaptive", "max"];

impl ThinkLevel {
    /// A level as written (OpenClaw's names and aliases: `x-high`,
    /// `extra high`…, `highest` → high; `false`/`disabled` → off).
    pub fn parse(raw: &str) -> Option<ThinkLevel> {
        let t = raw.trim().to_ascii_lowercase().replace(['-', '_'], " ");
        Some(match t.as_str() {
            "off" | "false" | "disabled" | "none" => ThinkLevel::Off,
            "minimal" | "min" => ThinkLevel::Minimal,
            "low" => ThinkLevel::Low,
            "medium" | "med" => ThinkLevel::Medium,
            "high" | "highest" => ThinkLevel::High,
            "xhigh" | "x high" | "extra high" | "extrahigh" => ThinkLevel::Xhigh,
            "adaptive" | "auto" => ThinkLevel::Adaptive,
            "max" | "maximum" => ThinkLevel::Max,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            ThinkLevel::Off => "off",
            ThinkLevel::Minimal => "minimal",
            ThinkLevel::Low => "low",
            ThinkLevel::Medium => "medium",
            ThinkLevel::High => "high",
            ThinkLevel::Xhigh => "xhigh",
            ThinkLevel::Adaptive => "adaptive",
            ThinkLevel::Max => "max",
        }
    }

    /// OpenAI's `reasoning_effort` for this level (`None`: leave it to the
    /// model, as for `adaptive`).
    pub fn openai_effort(&self) -> Option<&'static str> {
        match self {
            ThinkLevel::Off => Some("none"),
            ThinkLevel::Minimal => Some("minimal"),
            ThinkLevel::Low => Some("low"),
            ThinkLevel::Medium => Some("medium"),
            ThinkLevel::High => Some("high"),
            ThinkLevel::Xhigh | ThinkLevel::Max => Some("xhigh"),
            ThinkLevel::Adaptive => None,
        }
    }

    /// Anthropic's extended-thinking budget in tokens (`None`: thinking off;
    /// `adaptive` asks for the provider's adaptive mode instead).
    pub fn anthropic_budget(&self) -> Option<u64> {
        match self {
            ThinkLevel::Off | ThinkLevel::Adaptive => None,
            ThinkLevel::Minimal => Some(1024),
            ThinkLevel::Low => Some(2048),
            ThinkLevel::Medium => Some(8192),
            ThinkLevel::High => Some(16384),
            ThinkLevel::Xhigh | ThinkLevel::Max => Some(32000),
        }
    }
}

/// The message for a level that is not one.
pub fn unknown_level(raw: &str) -> String {
    format!("Unrecognized thinking level \"{raw}\". Valid levels: {}.", LEVELS.join(", "))
}

/// Where a turn's level came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelSource {
    Session,
    Agent,
    Defaults,
}

/// The level a turn of `agent_id` uses, given the session's own pick (its
/// stored `thinkingLevel`), and where it came from; `None`: the provider's default.
pub fn resolve(cfg: &Config, agent_id: &str, session: Option<&str>) -> Option<(ThinkLevel, LevelSource)> {
    if let Some(l) = session.and_then(ThinkLevel::parse) {
        return Some((l, LevelSource::Session));
    }
    let agent = cfg.agent(agent_id).and_then(|(_, a)| a.thinking_default.as_deref()).and_then(ThinkLevel::parse);
    if let Some(l) = agent {
        return Some((l, LevelSource::Agent));
    }
    cfg.agent_defaults()
        .and_then(|d| d.thinking_default.as_deref())
        .and_then(ThinkLevel::parse)
        .map(|l| (l, LevelSource::Defaults))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_aliases_as_openclaw_names_them() {
        assert_eq!(ThinkLevel::parse("x-high"), Some(ThinkLevel::Xhigh));
        assert_eq!(ThinkLevel::parse("Extra_High"), Some(ThinkLevel::Xhigh));
        assert_eq!(ThinkLevel::parse("highest"), Some(ThinkLevel::High));
        assert_eq!(ThinkLevel::parse("disabled"), Some(ThinkLevel::Off));
        assert_eq!(ThinkLevel::parse("big"), None);
        assert!(unknown_level("big").contains("Valid levels: off, minimal, low, medium, high, xhigh, adaptive, max."));
        assert_eq!(ThinkLevel::High.openai_effort(), Some("high"));
        assert_eq!(ThinkLevel::Off.openai_effort(), Some("none"));
        assert_eq!(ThinkLevel::Adaptive.openai_effort(), None);
        assert_eq!(ThinkLevel::Medium.anthropic_budget(), Some(8192));
    }

    #[test]
    fn session_then_agent_then_defaults() {
        let cfg = crate::config::load_str(
            r#"{ agents: { defaults: { thinkingDefault: "low" },
                 list: [ { id: "a", default: true, thinkingDefault: "high" }, { id: "b" } ] } }"#,
            None,
        )
        .unwrap()
        .config;
        assert_eq!(resolve(&cfg, "a", Some("minimal")), Some((ThinkLevel::Minimal, LevelSource::Session)));
        assert_eq!(resolve(&cfg, "a", None), Some((ThinkLevel::High, LevelSource::Agent)));
        assert_eq!(resolve(&cfg, "b", None), Some((ThinkLevel::Low, LevelSource::Defaults)));
        assert_eq!(resolve(&crate::config::load_str("{}", None).unwrap().config, "main", None), None);
    }
}
