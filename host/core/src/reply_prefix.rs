//! `responsePrefix` (OpenClaw's `messages.responsePrefix`, overridden by a
//! channel's and an account's): text put before each reply, so an agent
//! that shares a bot with others (a Discord account several bindings route
//! to) is told apart in the chat. Most specific wins; `""` turns it off
//! and stops the cascade; `"auto"` is `[{identity.name}]`. Template
//! variables (case-insensitive): `{model}`, `{modelFull}`, `{provider}`,
//! `{thinkingLevel}` (`{think}`), `{identity.name}`.
//!
//! Must not: send anything or decide which messages of a reply carry it
//! (the gateway puts it on the first one).

use crate::access::Scoped;
use crate::config::schema::Config;

/// What the template's variables stand for in one reply.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrefixVars<'a> {
    /// `provider/model`.
    pub model_full: &'a str,
    pub thinking_level: &'a str,
    pub identity_name: &'a str,
}

/// The template in force on `channel`/`account_id` (account → channel →
/// `channels.defaults` → `messages.responsePrefix`), `None` when off.
pub fn response_prefix(cfg: &Config, channel: &str, account_id: &str) -> Option<String> {
    let scoped = Scoped::new(cfg, channel, account_id).pick(|a| a.response_prefix.clone());
    let global = || cfg.messages.as_ref()?.get("responsePrefix")?.as_str().map(str::to_string);
    scoped.or_else(global).filter(|p| !p.is_empty())
}

/// `template` with its variables filled (unknown ones stay as written).
pub fn render(template: &str, vars: &PrefixVars<'_>) -> String {
    let template = if template.trim() == "auto" { "[{identity.name}]" } else { template };
    let (provider, model) = vars.model_full.split_once('/').unwrap_or(("", vars.model_full));
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &rest[open + 1..close];
        let value = match name.to_ascii_lowercase().as_str() {
            "model" => Some(model),
            "modelfull" => Some(vars.model_full),
            "provider" => Some(provider),
            "thinkinglevel" | "think" => Some(vars.thinking_level),
            "identity.name" => Some(vars.identity_name),
            _ => None,
        };
        match value {
            Some(v) => out.push_str(v),
            None => out.push_str(&rest[open..=close]),
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// `text` with `prefix` before it (once: a reply that already starts with it is left alone).
pub fn apply(prefix: &str, text: &str) -> String {
    let prefix = prefix.trim_end();
    if prefix.is_empty() || text.starts_with(prefix) {
        return text.to_string();
    }
    if text.is_empty() {
        return String::new();
    }
    format!("{prefix} {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        crate::config::load::load_str(text, Some("t.json5")).expect("loads").config
    }

    #[test]
    fn the_most_specific_prefix_wins_and_empty_stops_the_cascade() {
        let c = cfg(r#"{ messages: { responsePrefix: "🦞" },
                       channels: { discord: { responsePrefix: "auto", accounts: { quiet: { responsePrefix: "" } } } } }"#);
        assert_eq!(response_prefix(&c, "telegram", "default").as_deref(), Some("🦞"));
        assert_eq!(response_prefix(&c, "discord", "default").as_deref(), Some("auto"));
        assert_eq!(response_prefix(&c, "discord", "quiet"), None, "\"\" turns it off for that account");
        assert_eq!(response_prefix(&cfg("{}"), "discord", "default"), None);
    }

    #[test]
    fn templates_fill_their_variables_case_insensitively() {
        let v = PrefixVars { model_full: "anthropic/claude-opus-4-6", thinking_level: "high", identity_name: "Atlas" };
        assert_eq!(render("auto", &v), "[Atlas]");
        assert_eq!(render("[{MODEL} · {provider} · {think}]", &v), "[claude-opus-4-6 · anthropic · high]");
        assert_eq!(render("{modelFull} {thinkingLevel} {unknown} {", &v), "anthropic/claude-opus-4-6 high {unknown} {");
        assert_eq!(apply("[Atlas]", "Hello"), "[Atlas] Hello");
        assert_eq!(apply("[Atlas]", "[Atlas] Hello"), "[Atlas] Hello", "never twice");
        assert_eq!(apply("", "Hello"), "Hello");
    }
}
