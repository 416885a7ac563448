//! `session.sendPolicy` (OpenClaw 2026.9.6): whether an agent's answers
//! may be delivered into a session's chat. A session's own `sendPolicy`
//! (`allow` | `deny` on its index entry) wins; then the rules in order —
//! each matches on `channel`, `chatType` (`direct` | `group` | `channel`,
//! `dm` as `direct`), `keyPrefix` (the key with or without its
//! `agent:<id>:` part) and `rawKeyPrefix` (the whole key), all given parts
//! must match — where the first matching `deny` denies and any matching
//! `allow` allows; then `default` (`allow`). Without `sendPolicy`
//! everything is allowed. The turn still runs: only its delivery is held
//! back, as OpenClaw's is.
//!
//! Must not: deliver or suppress anything itself (the gateway asks this).

use crate::config::schema::Config;
use crate::ids::ChatType;

/// What one session is allowed, asked about one delivery.
#[derive(Debug, Clone, Copy)]
pub struct SendTarget<'a> {
    pub session_key: &'a str,
    /// The channel the answer would go to.
    pub channel: Option<&'a str>,
    pub chat_type: Option<ChatType>,
    /// The session's own `sendPolicy`, from its index entry.
    pub own: Option<&'a str>,
}

fn policy(v: Option<&str>) -> Option<bool> {
    match v?.trim().to_ascii_lowercase().as_str() {
        "allow" | "on" => Some(true),
        "deny" | "off" => Some(false),
        _ => None,
    }
}

fn chat_type(v: &str) -> Option<ChatType> {
    match v.trim().to_ascii_lowercase().as_str() {
        "dm" => Some(ChatType::Direct),
        other => crate::ids::normalize_chat_type(other),
    }
}

/// Whether an answer may be delivered to `target`.
pub fn send_allowed(cfg: &Config, target: &SendTarget<'_>) -> bool {
    if let Some(own) = policy(target.own) {
        return own;
    }
    let Some(sp) = cfg.session.as_ref().and_then(|s| s.send_policy.as_ref()) else { return true };
    let raw = target.session_key.to_ascii_lowercase();
    let rest = crate::session_key::parse_agent_session_key(target.session_key)
        .map(|p| p.rest.to_ascii_lowercase())
        .unwrap_or_default();
    let channel = target.channel.map(|c| c.trim().to_ascii_lowercase());
    let mut allowed = false;
    for rule in sp.get("rules").and_then(|r| r.as_array()).into_iter().flatten() {
        let action = policy(rule.get("action").and_then(|a| a.as_str())).unwrap_or(true);
        let m = rule.get("match");
        let field = |k: &str| m.and_then(|m| m.get(k)).and_then(|v| v.as_str()).map(|v| v.trim().to_ascii_lowercase());
        let matches = field("channel").is_none_or(|c| channel.as_deref() == Some(c.as_str()))
            && field("chatType").and_then(|t| chat_type(&t)).is_none_or(|t| target.chat_type == Some(t))
            && field("rawKeyPrefix").is_none_or(|p| raw.starts_with(&p))
            && field("keyPrefix").is_none_or(|p| raw.starts_with(&p) || rest.starts_with(&p));
        if matches {
            if !action {
                return false;
            }
            allowed = true;
        }
    }
    allowed || policy(sp.get("default").and_then(|d| d.as_str())).unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        crate::config::load_str(text, None).unwrap().config
    }

    fn to<'a>(key: &'a str, channel: &'a str, chat: ChatType) -> SendTarget<'a> {
        SendTarget { session_key: key, channel: Some(channel), chat_type: Some(chat), own: None }
    }

    #[test]
    fn rules_first_deny_wins_then_allow_then_default() {
        let c = cfg(r#"{ session: { sendPolicy: { default: "deny", rules: [
            { action: "allow", match: { channel: "telegram" } },
            { action: "deny", match: { channel: "telegram", chatType: "group" } },
            { action: "allow", match: { keyPrefix: "discord:direct:" } },
            { action: "deny", match: { rawKeyPrefix: "agent:ops:" } } ] } } }"#);
        assert!(send_allowed(&c, &to("agent:main:telegram:direct:1", "telegram", ChatType::Direct)));
        assert!(
            !send_allowed(&c, &to("agent:main:telegram:group:9", "telegram", ChatType::Group)),
            "a later deny wins"
        );
        assert!(
            send_allowed(&c, &to("agent:main:discord:direct:5", "discord", ChatType::Direct)),
            "keyPrefix without agent:"
        );
        assert!(!send_allowed(&c, &to("agent:main:slack:channel:c1", "slack", ChatType::Channel)), "default deny");
        assert!(!send_allowed(&c, &to("agent:ops:telegram:direct:1", "telegram", ChatType::Direct)));
        let own = SendTarget { own: Some("allow"), ..to("agent:main:slack:channel:c1", "slack", ChatType::Channel) };
        assert!(send_allowed(&c, &own), "the session's own policy wins");
    }

    #[test]
    fn no_policy_allows_and_dm_means_direct() {
        assert!(send_allowed(&cfg("{}"), &to("agent:main:main", "webhook", ChatType::Direct)));
        let c = cfg(r#"{ session: { sendPolicy: { rules: [{ action: "deny", match: { chatType: "direct" } }] } } }"#);
        assert!(!send_allowed(&c, &to("agent:main:main", "webhook", ChatType::Direct)));
        assert!(send_allowed(&c, &to("agent:main:webhook:group:g", "webhook", ChatType::Group)));
    }
}
