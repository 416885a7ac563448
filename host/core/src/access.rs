//! Who may reach an agent through a channel account (reference §7): DM
//! policy before routing, group policy and mention gating around it. Pure:
//! approved pairings are passed in by the caller that stores them.
//!
//! Must not: store or look up pairings itself (the caller passes them in), or choose an agent
//! (routing does).

use serde_json::Value as Json;

use crate::config::schema::{ChannelAccount, Config, DmPolicy, GroupPolicy, IdValue};
use crate::ids::normalize_agent_id;

/// What to do with a direct message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DmVerdict {
    Allow,
    /// Unknown sender under `dmPolicy: "pairing"`: offer a pairing code, do not route.
    Pairing,
    Deny(String),
}

/// What to do with a group message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupVerdict {
    Deny(String),
    /// Allowed; when `require_mention`, only a message that mentions the
    /// agent gets a reply.
    Allow {
        require_mention: bool,
    },
}

/// The account's settings with the channel's top level, then
/// `channels.defaults` (OpenClaw's shared baseline), as fallbacks.
pub(crate) struct Scoped<'a> {
    account: Option<&'a ChannelAccount>,
    top: Option<&'a ChannelAccount>,
    defaults: Option<&'a ChannelAccount>,
}

impl<'a> Scoped<'a> {
    pub(crate) fn new(cfg: &'a Config, channel: &str, account_id: &str) -> Scoped<'a> {
        let ch = cfg.channels.as_ref().and_then(|c| c.get(channel));
        Scoped {
            account: ch.and_then(|c| c.accounts.as_ref()?.get(account_id)),
            top: ch.map(|c| &c.top),
            defaults: cfg.channel_defaults.as_ref().map(|d| &d.top),
        }
    }

    /// `channels.defaults` alone: no channel in view.
    pub(crate) fn defaults_only(cfg: &'a Config) -> Scoped<'a> {
        Scoped { account: None, top: None, defaults: cfg.channel_defaults.as_ref().map(|d| &d.top) }
    }

    pub(crate) fn pick<T>(&self, f: impl Fn(&'a ChannelAccount) -> Option<T>) -> Option<T> {
        self.account.and_then(&f).or_else(|| self.top.and_then(&f)).or_else(|| self.defaults.and_then(&f))
    }
}

/// `allowFrom` entries match the sender id as given, or with a `<channel>:`
/// prefix; case-insensitive; `"*"` matches everyone.
fn listed(list: &[IdValue], approved: &[String], channel: &str, sender: &str) -> bool {
    let sender = sender.trim().to_lowercase();
    let prefixed = format!("{}:{sender}", channel.to_lowercase());
    list.iter().map(|v| v.0.as_str()).chain(approved.iter().map(String::as_str)).any(|e| {
        let e = e.trim().to_lowercase();
        e == "*" || e == sender || e == prefixed
    })
}

/// DM access for `sender` on one channel account. `approved`: senders
/// approved through pairing.
pub fn dm_access(cfg: &Config, channel: &str, account_id: &str, sender: &str, approved: &[String]) -> DmVerdict {
    let s = Scoped::new(cfg, channel, account_id);
    let policy = s.pick(|a| a.dm_policy).unwrap_or(DmPolicy::Pairing);
    let allow = s.pick(|a| a.allow_from.as_deref()).unwrap_or(&[]);
    let known = listed(allow, approved, channel, sender);
    match policy {
        DmPolicy::Disabled => DmVerdict::Deny(format!("direct messages are disabled on {channel}/{account_id}")),
        // `open` is public only with "*" in allowFrom; otherwise it is an allowlist.
        DmPolicy::Open | DmPolicy::Allowlist if known => DmVerdict::Allow,
        DmPolicy::Open | DmPolicy::Allowlist => {
            DmVerdict::Deny(format!("sender `{sender}` is not in allowFrom of {channel}/{account_id}"))
        }
        DmPolicy::Pairing if known => DmVerdict::Allow,
        DmPolicy::Pairing => DmVerdict::Pairing,
    }
}

/// How many unanswered group messages are kept for the next answered turn
/// (OpenClaw: the account's `historyLimit`, the channel's, then
/// `messages.groupChat.historyLimit`, then 50; 0 keeps none).
pub fn group_history_limit(cfg: &Config, channel: &str, account_id: &str) -> usize {
    let s = Scoped::new(cfg, channel, account_id);
    let global = || cfg.messages.as_ref()?.get("groupChat")?.get("historyLimit")?.as_u64();
    s.pick(|a| a.history_limit).or_else(global).unwrap_or(50) as usize
}

/// Whether a sender's line of group history may reach the model
/// (`contextVisibility`: the account's, the channel's, then
/// `channels.defaults.contextVisibility`; `all` by default). Under
/// `allowlist` (and `allowlist_quote`: chela carries no quotes) only senders
/// the account's `groupAllowFrom` or `allowFrom` lists; an unknown mode
/// fails closed (no history), as OpenClaw's does.
pub fn history_visible(cfg: &Config, channel: &str, account_id: &str, sender: &str) -> bool {
    let s = Scoped::new(cfg, channel, account_id);
    match s.pick(|a| a.context_visibility.clone()).as_deref().unwrap_or("all") {
        "all" => true,
        "allowlist" | "allowlist_quote" => {
            let lists = [s.pick(|a| a.group_allow_from.as_deref()), s.pick(|a| a.allow_from.as_deref())];
            lists.into_iter().flatten().any(|l| listed(l, &[], channel, sender))
        }
        _ => false,
    }
}

/// One unanswered group message, as the next answered turn is told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryLine {
    pub sender: String,
    pub text: String,
}

/// The answered message with the group's unanswered ones before it, in
/// OpenClaw's markers (`src/auto-reply/reply/history.ts`); the message alone
/// when there are none.
pub fn with_group_history(lines: &[HistoryLine], current: &str) -> String {
    if lines.is_empty() {
        return current.to_string();
    }
    let history: Vec<String> = lines.iter().map(|l| format!("{}: {}", l.sender, l.text)).collect();
    format!(
        "[Chat messages since your last reply - for context]\n{}\n\n[Current message - respond to this]\n{current}",
        history.join("\n")
    )
}

/// Whether `sender` on `channel` may run chat commands (`commands.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandVerdict {
    Allow,
    Deny(String),
}

/// Where the host itself wrote a message: another agent (`sessions_send`),
/// a sub-agent's result, a scheduled job or heartbeat, an exec approval's
/// result. Such text is never a command, whatever it starts with: it has
/// no sender, and a command without one would pass as the operator's
/// (an agent could otherwise `/approve` its own command through a job or
/// another session).
pub const HOST_ORIGINS: [&str; 5] = ["agent", "subagent", "cron", "heartbeat", "exec-approval"];

/// Whether a message from `provider` (its origin) may be a command: people
/// on channels and the operator's own surfaces, not the host's own writing.
pub fn may_command(provider: Option<&str>) -> bool {
    provider.is_none_or(|p| !HOST_ORIGINS.contains(&p))
}

/// Chat command authorization (OpenClaw's `commands.allowFrom`): when set,
/// it is the only source: the channel's own list, else its `"*"` entry; a
/// sender on neither may not run commands. When not set, whoever the
/// channel admitted to the agent may (DM and group policy already ran).
/// `sender`: `None` for the operator's own surfaces (CLI, control API,
/// OpenAI endpoint), which the gateway token already authenticated.
pub fn command_access(cfg: &Config, channel: &str, sender: Option<&str>) -> CommandVerdict {
    let Some(sender) = sender else { return CommandVerdict::Allow };
    let Some(map) = cfg.commands.as_ref().and_then(|c| c.allow_from.as_ref()) else { return CommandVerdict::Allow };
    let list = map
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(channel))
        .or_else(|| map.iter().find(|(k, _)| k.as_str() == "*"))
        .map(|(_, v)| v.as_slice());
    // OpenClaw also accepts `user:<id>` (Discord) entries.
    let bare = |l: &[IdValue]| -> Vec<IdValue> {
        l.iter().map(|v| IdValue(v.0.trim().strip_prefix("user:").unwrap_or(v.0.trim()).to_string())).collect()
    };
    match list {
        Some(l) if listed(&bare(l), &[], channel, sender) => CommandVerdict::Allow,
        _ => CommandVerdict::Deny(format!("sender `{sender}` on {channel} is not in commands.allowFrom")),
    }
}

/// Whether `sender` on `channel` is an owner (`commands.ownerAllowFrom`:
/// `<channel>:<id>` entries, or bare ids on any channel; `"*"` names no
/// owner, as in OpenClaw). The operator's own surfaces (`sender: None`) are.
pub fn is_owner(cfg: &Config, channel: &str, sender: Option<&str>) -> bool {
    let Some(sender) = sender else { return true };
    let owners = cfg.commands.as_ref().and_then(|c| c.owner_allow_from.as_deref()).unwrap_or(&[]);
    let concrete: Vec<IdValue> = owners.iter().filter(|v| v.0.trim() != "*").cloned().collect();
    listed(&concrete, &[], channel, sender)
}

/// Group access for a message in `group_id` from `sender`.
pub fn group_access(cfg: &Config, channel: &str, account_id: &str, group_id: &str, sender: &str) -> GroupVerdict {
    let s = Scoped::new(cfg, channel, account_id);
    let policy = s.pick(|a| a.group_policy).unwrap_or(GroupPolicy::Allowlist);
    let groups = s.pick(|a| a.groups.as_ref());
    let entry = |id: &str| groups.and_then(|g| g.iter().find(|(k, _)| k.eq_ignore_ascii_case(id)).map(|(_, v)| v));
    let own = entry(group_id);
    let any = entry("*");
    match policy {
        GroupPolicy::Disabled => return GroupVerdict::Deny(format!("groups are disabled on {channel}/{account_id}")),
        GroupPolicy::Allowlist if own.is_none() && any.is_none() => {
            return GroupVerdict::Deny(format!("group `{group_id}` is not in groups of {channel}/{account_id}"))
        }
        _ => {}
    }
    if let Some(list) = s.pick(|a| a.group_allow_from.as_deref()) {
        if !listed(list, &[], channel, sender) {
            return GroupVerdict::Deny(format!("sender `{sender}` is not in groupAllowFrom of {channel}/{account_id}"));
        }
    }
    let flag = |v: Option<&Json>| v.and_then(|g| g.get("requireMention")).and_then(Json::as_bool);
    GroupVerdict::Allow { require_mention: flag(own).or(flag(any)).unwrap_or(true) }
}

/// The routed agent's mention patterns (reference §7.4): its own
/// `groupChat.mentionPatterns`, else `messages.groupChat.mentionPatterns`,
/// else derived from its identity name and emoji.
pub fn mention_patterns(cfg: &Config, agent_id: &str) -> Vec<String> {
    let id = normalize_agent_id(Some(agent_id));
    let agent = cfg.agent(&id).map(|(_, a)| a);
    if let Some(p) = agent.and_then(|a| a.group_chat.as_ref()?.mention_patterns.clone()) {
        return p;
    }
    let global = cfg.messages.as_ref().and_then(|m| m.get("groupChat")?.get("mentionPatterns")?.as_array().cloned());
    if let Some(list) = global {
        return list.iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
    }
    let mut out = Vec::new();
    let ident = agent.and_then(|a| a.identity.as_ref());
    if let Some(name) = ident.and_then(|i| i.name.as_deref()) {
        let words: Vec<String> = name.split_whitespace().map(regex::escape).collect();
        if !words.is_empty() {
            out.push(format!(r"\b@?{}\b", words.join(r"\s+")));
        }
    }
    if let Some(emoji) = ident.and_then(|i| i.emoji.as_deref()).filter(|e| !e.trim().is_empty()) {
        out.push(regex::escape(emoji.trim()));
    }
    out
}

/// Whether `text` matches any pattern (case-insensitive regexes; a pattern
/// that does not compile is skipped).
pub fn is_mentioned(patterns: &[String], text: &str) -> bool {
    patterns.iter().any(|p| {
        let p = p.replace('\u{8}', r"\b");
        regex::RegexBuilder::new(&p).case_insensitive(true).build().is_ok_and(|re| re.is_match(text))
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn only_people_and_the_operator_send_commands() {
        for person in [Some("telegram"), Some("webhook"), Some("api"), Some("cli"), None] {
            assert!(super::may_command(person), "{person:?}");
        }
        for host in super::HOST_ORIGINS {
            assert!(!super::may_command(Some(host)), "{host}");
        }
    }

    #[test]
    fn group_history_limit_resolves_account_channel_global_then_50() {
        let cfg = crate::config::load_str(
            r#"{ messages: { groupChat: { historyLimit: 7 } },
                 channels: { telegram: { historyLimit: 3, accounts: { ops: { historyLimit: 0 }, main: {} } }, slack: {} } }"#,
            None,
        )
        .unwrap()
        .config;
        assert_eq!(group_history_limit(&cfg, "telegram", "ops"), 0);
        assert_eq!(group_history_limit(&cfg, "telegram", "main"), 3);
        assert_eq!(group_history_limit(&cfg, "slack", "default"), 7);
        let bare = crate::config::load_str("{}", None).unwrap().config;
        assert_eq!(group_history_limit(&bare, "slack", "default"), 50);
        let lines = [HistoryLine { sender: "Dave".into(), text: "hi".into() }];
        assert_eq!(with_group_history(&[], "now"), "now");
        assert!(with_group_history(&lines, "now")
            .starts_with("[Chat messages since your last reply - for context]\nDave: hi\n\n"));
    }

    #[test]
    fn commands_allow_from_is_the_only_source_when_set() {
        let open = crate::config::load_str("{}", None).unwrap().config;
        assert_eq!(
            command_access(&open, "telegram", Some("42")),
            CommandVerdict::Allow,
            "unset: the channel admitted them"
        );
        let cfg = crate::config::load_str(
            r#"{ commands: { allowFrom: { discord: ["user:123"], "*": ["telegram:42"] } } }"#,
            None,
        )
        .unwrap()
        .config;
        assert_eq!(
            command_access(&cfg, "discord", Some("123")),
            CommandVerdict::Allow,
            "user:<id> as OpenClaw writes it"
        );
        assert!(
            matches!(command_access(&cfg, "discord", Some("42")), CommandVerdict::Deny(_)),
            "discord has its own list"
        );
        assert_eq!(command_access(&cfg, "telegram", Some("42")), CommandVerdict::Allow, "the * entry");
        assert!(
            matches!(command_access(&cfg, "telegram", Some("7")), CommandVerdict::Deny(w) if w.contains("commands.allowFrom"))
        );
        assert_eq!(command_access(&cfg, "cli", None), CommandVerdict::Allow, "the operator's own surfaces");
    }

    use super::*;
    use crate::config::load_str;

    fn cfg(text: &str) -> Config {
        load_str(text, None).expect("config loads").config
    }

    #[test]
    fn dm_policy_per_account_with_channel_fallback() {
        let c = cfg(r#"{channels: {whatsapp: {dmPolicy: "allowlist", allowFrom: ["+1555"],
            accounts: {biz: {dmPolicy: "open", allowFrom: ["*"]}, personal: {}, shut: {dmPolicy: "disabled"}, pair: {dmPolicy: "pairing"}, half: {dmPolicy: "open"}}}}}"#);
        assert_eq!(dm_access(&c, "whatsapp", "biz", "+1999", &[]), DmVerdict::Allow);
        assert_eq!(dm_access(&c, "whatsapp", "personal", "+1555", &[]), DmVerdict::Allow);
        assert_eq!(
            dm_access(&c, "whatsapp", "personal", "whatsapp:+1555", &[]),
            DmVerdict::Deny("sender `whatsapp:+1555` is not in allowFrom of whatsapp/personal".into())
        );
        assert!(matches!(dm_access(&c, "whatsapp", "personal", "+1999", &[]), DmVerdict::Deny(_)));
        assert!(matches!(dm_access(&c, "whatsapp", "shut", "+1555", &[]), DmVerdict::Deny(_)));
        assert_eq!(dm_access(&c, "whatsapp", "pair", "+1999", &[]), DmVerdict::Pairing);
        assert_eq!(dm_access(&c, "whatsapp", "pair", "+1999", &["+1999".into()]), DmVerdict::Allow);
        assert!(
            matches!(dm_access(&c, "whatsapp", "half", "+1999", &[]), DmVerdict::Deny(_)),
            "open without * is an allowlist"
        );
        assert_eq!(
            dm_access(&cfg("{}"), "telegram", "default", "1", &[]),
            DmVerdict::Pairing,
            "pairing is the default"
        );
    }

    #[test]
    fn owners_are_concrete_entries_of_owner_allow_from() {
        let cfg = |t: &str| crate::config::load_str(t, None).unwrap().config;
        let c = cfg(r#"{ commands: { ownerAllowFrom: ["telegram:123", "*"] } }"#);
        assert!(is_owner(&c, "telegram", Some("123")) && !is_owner(&c, "telegram", Some("456")));
        assert!(!is_owner(&c, "discord", Some("123")), "the entry names its channel");
        assert!(
            !is_owner(&cfg(r#"{ commands: { ownerAllowFrom: ["*"] } }"#), "telegram", Some("1")),
            "* names no owner"
        );
        assert!(!is_owner(&cfg("{}"), "telegram", Some("1")) && is_owner(&cfg("{}"), "cli", None));
    }

    #[test]
    fn channels_defaults_is_a_baseline_for_every_channel_not_a_channel() {
        let cfg = crate::config::load_str(
            r#"{ channels: { defaults: { groupPolicy: "open", contextVisibility: "allowlist" },
                            telegram: { groupAllowFrom: ["ana"] }, slack: { groupPolicy: "disabled" } } }"#,
            None,
        )
        .unwrap()
        .config;
        let ids: Vec<&String> = cfg.channels.as_ref().unwrap().keys().collect();
        assert_eq!(ids, ["telegram", "slack"], "`defaults` is not a channel");
        assert!(
            matches!(group_access(&cfg, "telegram", "default", "g1", "ana"), GroupVerdict::Allow { .. }),
            "open from defaults"
        );
        assert!(
            matches!(group_access(&cfg, "slack", "default", "g1", "bob"), GroupVerdict::Deny(_)),
            "a channel's own wins"
        );
        assert!(
            history_visible(&cfg, "telegram", "default", "ana") && !history_visible(&cfg, "telegram", "default", "bob")
        );
    }

    #[test]
    fn group_policy_and_mention_requirement() {
        let c = cfg(
            r#"{channels: {slack: {groupPolicy: "allowlist", groups: {C1: {requireMention: false}, "*": {requireMention: true}}},
            discord: {groupPolicy: "open"}, telegram: {groupPolicy: "disabled"}, whatsapp: {groups: {G1: {}}, groupAllowFrom: ["+1"]}}}"#,
        );
        assert_eq!(group_access(&c, "slack", "default", "C1", "u"), GroupVerdict::Allow { require_mention: false });
        assert_eq!(group_access(&c, "slack", "default", "C9", "u"), GroupVerdict::Allow { require_mention: true });
        assert_eq!(group_access(&c, "discord", "default", "x", "u"), GroupVerdict::Allow { require_mention: true });
        assert!(matches!(group_access(&c, "telegram", "default", "x", "u"), GroupVerdict::Deny(_)));
        assert!(matches!(group_access(&c, "whatsapp", "default", "G2", "+1"), GroupVerdict::Deny(_)));
        assert!(matches!(group_access(&c, "whatsapp", "default", "G1", "+2"), GroupVerdict::Deny(_)));
        assert_eq!(group_access(&c, "whatsapp", "default", "G1", "+1"), GroupVerdict::Allow { require_mention: true });
    }

    #[test]
    fn mention_patterns_own_then_global_then_identity() {
        let c = cfg(
            r#"{agents: {list: [{id: "a", groupChat: {mentionPatterns: ["@atlas"]}}, {id: "b", identity: {name: "Big Sage", emoji: "🛟"}}, {id: "c", groupChat: {mentionPatterns: []}}]}}"#,
        );
        assert_eq!(mention_patterns(&c, "a"), ["@atlas"]);
        let b = mention_patterns(&c, "b");
        assert!(
            is_mentioned(&b, "hey big   sage, help") && is_mentioned(&b, "🛟 please") && !is_mentioned(&b, "bigsage")
        );
        assert!(mention_patterns(&c, "c").is_empty());
        let g = cfg(r#"{messages: {groupChat: {mentionPatterns: ["(unclosed", "bot"]}}, agents: {list: [{id: "d"}]}}"#);
        assert!(is_mentioned(&mention_patterns(&g, "d"), "hi BOT"));
    }
}
