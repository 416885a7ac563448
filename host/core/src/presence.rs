//! What a chat sees of an agent at work besides its answer: the
//! acknowledgement reaction put on a message when it is taken in, and when
//! the typing indicator starts (OpenClaw's `messages.ackReaction`,
//! `messages.ackReactionScope`, `typingMode`, `typingIntervalSeconds`).
//!
//! Must not: call an adapter or know whether a platform can react or type
//! (the gateway asks the adapter's declared features); it only decides.

use std::time::Duration;

use crate::access::Scoped;
use crate::config::schema::{Config, TypingMode};
use crate::ids::ChatType;

/// The emoji when nothing names one (OpenClaw's).
pub const DEFAULT_ACK: &str = "👀";

/// `messages.ackReactionScope`: which messages are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckScope {
    /// Group messages that mention the agent (the default; no DMs).
    GroupMentions,
    GroupAll,
    Direct,
    All,
    Off,
}

impl AckScope {
    pub fn parse(s: &str) -> Option<AckScope> {
        Some(match s {
            "group-mentions" => AckScope::GroupMentions,
            "group-all" => AckScope::GroupAll,
            "direct" => AckScope::Direct,
            "all" => AckScope::All,
            "off" | "none" => AckScope::Off,
            _ => return None,
        })
    }

    pub const NAMES: &'static str = "group-mentions, group-all, direct, all, off or none";
}

fn messages_str<'a>(cfg: &'a Config, key: &str) -> Option<&'a str> {
    cfg.messages.as_ref()?.get(key)?.as_str()
}

/// The acknowledgement for a message `agent_id` takes in on a channel
/// account, or `None`. The emoji: the account's `ackReaction`, the
/// channel's, `messages.ackReaction`, the agent's `identity.emoji`, then
/// 👀; `""` at any level turns it off there. WhatsApp takes only
/// `messages.ackReaction` (none when unset), as OpenClaw does. An unknown
/// scope acknowledges nothing (validation reports it).
pub fn ack_reaction(
    cfg: &Config,
    channel: &str,
    account_id: &str,
    agent_id: &str,
    chat: ChatType,
    mentioned: bool,
) -> Option<String> {
    let scope = match messages_str(cfg, "ackReactionScope") {
        None => AckScope::GroupMentions,
        Some(s) => AckScope::parse(s)?,
    };
    let direct = chat == ChatType::Direct;
    let acked = match scope {
        AckScope::Off => false,
        AckScope::All => true,
        AckScope::Direct => direct,
        AckScope::GroupAll => !direct,
        AckScope::GroupMentions => !direct && mentioned,
    };
    if !acked {
        return None;
    }
    let global = messages_str(cfg, "ackReaction").map(str::to_string);
    let emoji = if channel == "whatsapp" {
        global?
    } else {
        Scoped::new(cfg, channel, account_id)
            .pick(|a| a.ack_reaction.clone())
            .or(global)
            .or_else(|| cfg.agent(agent_id).and_then(|(_, a)| a.identity.as_ref()?.emoji.clone()))
            .unwrap_or_else(|| DEFAULT_ACK.to_string())
    };
    let emoji = emoji.trim().to_string();
    (!emoji.is_empty()).then_some(emoji)
}

/// A turn's stage, as status reactions show it (OpenClaw's lifecycle:
/// queued is the acknowledgement itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnStage {
    Thinking,
    Tool,
    Compacting,
    Done,
    Error,
}

/// How a channel shows a turn's stages on the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusStyle {
    /// One reaction slot, replaced at each stage and the acknowledgement
    /// put back when the turn is done (Telegram, WhatsApp).
    Replace,
    /// The acknowledgement stays; only a failure adds a reaction (Discord,
    /// Slack: no per-stage emoji, no success flash).
    ErrorOnly,
}

/// Status reactions of one turn: how they show, over which acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReactions {
    pub style: StatusStyle,
    pub ack: String,
}

/// `messages.statusReactions.enabled` for `channel`, over the turn's
/// acknowledgement `ack` (none: no status reactions either). Unset: on for
/// Discord (where acknowledgements are), off elsewhere, as in OpenClaw.
pub fn status_reactions(cfg: &Config, channel: &str, ack: Option<&str>) -> Option<StatusReactions> {
    let ack = ack?;
    let set = cfg.messages.as_ref().and_then(|m| m.get("statusReactions")?.get("enabled")?.as_bool());
    if !set.unwrap_or(channel == "discord") {
        return None;
    }
    let style = match channel {
        "telegram" | "whatsapp" => StatusStyle::Replace,
        _ => StatusStyle::ErrorOnly,
    };
    Some(StatusReactions { style, ack: ack.to_string() })
}

impl StatusReactions {
    /// The reaction `stage` puts on the message (`None`: it changes nothing).
    /// The emoji are ones Telegram lets bots react with.
    pub fn emoji(&self, stage: TurnStage) -> Option<&str> {
        match (self.style, stage) {
            (StatusStyle::Replace, TurnStage::Thinking) => Some("🤔"),
            (StatusStyle::Replace, TurnStage::Tool) => Some("🔥"),
            (StatusStyle::Replace, TurnStage::Compacting) => Some("✍"),
            (StatusStyle::Replace, TurnStage::Done) => Some(&self.ack),
            (StatusStyle::Replace, TurnStage::Error) => Some("😱"),
            (StatusStyle::ErrorOnly, TurnStage::Error) => Some("❌"),
            (StatusStyle::ErrorOnly, _) => None,
        }
    }
}

/// When typing starts in a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypingStart {
    Never,
    /// As the turn starts.
    AtStart,
    /// With the model's first visible output.
    OnOutput,
}

/// The agent's `typingMode`, else `agents.defaults.typingMode`, else
/// OpenClaw's default: at once in direct chats and for mentions, on the
/// first output in a group the agent was not mentioned in.
pub fn typing_start(cfg: &Config, agent_id: &str, chat: ChatType, mentioned: bool) -> TypingStart {
    let mode = cfg
        .agent(agent_id)
        .and_then(|(_, a)| a.typing_mode)
        .or_else(|| cfg.agent_defaults().and_then(|d| d.typing_mode));
    match mode {
        Some(TypingMode::Never) => TypingStart::Never,
        Some(TypingMode::Instant) => TypingStart::AtStart,
        Some(TypingMode::Thinking | TypingMode::Message) => TypingStart::OnOutput,
        None if chat == ChatType::Direct || mentioned => TypingStart::AtStart,
        None => TypingStart::OnOutput,
    }
}

/// How often typing is shown again while the turn runs
/// (`agents.defaults.typingIntervalSeconds`, 6 s; at least 1 s).
pub fn typing_interval(cfg: &Config) -> Duration {
    let s = cfg.agent_defaults().and_then(|d| d.typing_interval_seconds).unwrap_or(6).max(1);
    Duration::from_secs(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_reactions_follow_the_channel_and_the_acknowledgement() {
        let on =
            crate::config::load::load_str("{ messages: { statusReactions: { enabled: true } } }", None).unwrap().config;
        let unset = crate::config::load::load_str("{}", None).unwrap().config;
        let t = status_reactions(&on, "telegram", Some("👀")).expect("enabled");
        let stages = [TurnStage::Thinking, TurnStage::Tool, TurnStage::Compacting, TurnStage::Done, TurnStage::Error];
        let shown: Vec<Option<&str>> = stages.iter().map(|s| t.emoji(*s)).collect();
        assert_eq!(shown, [Some("🤔"), Some("🔥"), Some("✍"), Some("👀"), Some("😱")], "replaced, the ack put back");
        let s = status_reactions(&on, "slack", Some("👀")).unwrap();
        assert_eq!(stages.map(|st| s.emoji(st)), [None, None, None, None, Some("❌")], "only a failure shows");
        assert!(status_reactions(&on, "telegram", None).is_none(), "no acknowledgement, no status");
        assert!(status_reactions(&unset, "telegram", Some("👀")).is_none(), "off unless enabled");
        assert!(status_reactions(&unset, "discord", Some("👀")).is_some(), "Discord: on where acks are");
    }

    fn cfg(text: &str) -> Config {
        crate::config::load::load_str(text, Some("t.json5")).expect("loads").config
    }

    #[test]
    fn ack_follows_scope_and_the_emoji_cascade() {
        let c = cfg(r#"{ agents: { list: [ { id: "main", identity: { emoji: "🦀" } } ] },
            channels: { telegram: { ackReaction: "✅", accounts: { quiet: { ackReaction: "" } } }, discord: {} } }"#);
        // Default scope: group mentions only.
        assert_eq!(ack_reaction(&c, "telegram", "default", "main", ChatType::Group, true).as_deref(), Some("✅"));
        assert_eq!(ack_reaction(&c, "telegram", "default", "main", ChatType::Group, false), None);
        assert_eq!(ack_reaction(&c, "telegram", "default", "main", ChatType::Direct, true), None);
        // `""` on the account turns it off there; the identity emoji where nothing else names one.
        assert_eq!(ack_reaction(&c, "telegram", "quiet", "main", ChatType::Group, true), None);
        assert_eq!(ack_reaction(&c, "discord", "default", "main", ChatType::Group, true).as_deref(), Some("🦀"));
        // WhatsApp: only messages.ackReaction.
        assert_eq!(ack_reaction(&c, "whatsapp", "default", "main", ChatType::Group, true), None);
        let all = cfg(r#"{ messages: { ackReaction: "👍", ackReactionScope: "all" } }"#);
        assert_eq!(ack_reaction(&all, "whatsapp", "default", "main", ChatType::Direct, false).as_deref(), Some("👍"));
        assert_eq!(ack_reaction(&all, "slack", "default", "main", ChatType::Group, false).as_deref(), Some("👍"));
        let direct = cfg(r#"{ messages: { ackReactionScope: "direct" } }"#);
        assert_eq!(ack_reaction(&direct, "slack", "a", "main", ChatType::Direct, false).as_deref(), Some(DEFAULT_ACK));
        assert_eq!(ack_reaction(&direct, "slack", "a", "main", ChatType::Group, true), None);
    }

    #[test]
    fn typing_defaults_to_at_once_for_direct_chats_and_mentions() {
        let c = cfg(r#"{ agents: { defaults: { typingMode: "message" },
            list: [ { id: "main" }, { id: "eager", typingMode: "instant" }, { id: "mute", typingMode: "never" } ] } }"#);
        assert_eq!(typing_start(&c, "main", ChatType::Direct, false), TypingStart::OnOutput);
        assert_eq!(typing_start(&c, "eager", ChatType::Group, false), TypingStart::AtStart);
        assert_eq!(typing_start(&c, "mute", ChatType::Direct, true), TypingStart::Never);
        let d = cfg("{}");
        assert_eq!(typing_start(&d, "main", ChatType::Direct, false), TypingStart::AtStart);
        assert_eq!(typing_start(&d, "main", ChatType::Group, true), TypingStart::AtStart);
        assert_eq!(typing_start(&d, "main", ChatType::Group, false), TypingStart::OnOutput);
        assert_eq!(typing_interval(&d), Duration::from_secs(6));
    }
}
