//! The rules for files that come with chat messages: how large one may be
//! (OpenClaw's `mediaMaxMb`), and how an agent's turn is told about one.
//!
//! Must not: download, store or read files (the gateway does); it only decides and words.

use crate::access::Scoped;
use crate::config::schema::Config;

/// OpenClaw's default cap for a chat attachment (`agents.defaults.mediaMaxMb`).
pub const DEFAULT_MAX_MB: f64 = 20.0;

/// The largest inbound file, in bytes, for `agent_id` on a channel account:
/// the smallest of the account's (or channel's) `mediaMaxMb` and the agent's
/// (or `agents.defaults.mediaMaxMb`); 20 MB when none is set. Zero or a
/// negative number takes no files at all.
pub fn max_bytes(cfg: &Config, channel: &str, account_id: &str, agent_id: &str) -> u64 {
    let on_channel = Scoped::new(cfg, channel, account_id).pick(|a| a.media_max_mb);
    let for_agent = cfg
        .agent(agent_id)
        .and_then(|(_, a)| a.media_max_mb)
        .or_else(|| cfg.agent_defaults().and_then(|d| d.media_max_mb));
    let mb = match (on_channel, for_agent) {
        (Some(a), Some(b)) => a.min(b),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => DEFAULT_MAX_MB,
    };
    if mb.is_nan() || mb <= 0.0 {
        return 0;
    }
    (mb * 1024.0 * 1024.0) as u64
}

/// A size for people: `812 B`, `14.2 KB`, `3.0 MB`.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smaller_cap_wins_and_twenty_mb_by_default() {
        let load = |t: &str| crate::config::load::load_str(t, Some("t.json5")).expect("loads").config;
        let c = load(
            r#"{ agents: { defaults: { mediaMaxMb: 5 }, list: [ { id: "main" }, { id: "big", mediaMaxMb: 50 } ] },
            channels: { telegram: { mediaMaxMb: 10 }, slack: {} } }"#,
        );
        assert_eq!(max_bytes(&c, "telegram", "default", "main"), 5 * 1024 * 1024);
        assert_eq!(max_bytes(&c, "telegram", "default", "big"), 10 * 1024 * 1024);
        assert_eq!(max_bytes(&c, "slack", "default", "big"), 50 * 1024 * 1024);
        assert_eq!(max_bytes(&load("{}"), "slack", "default", "main"), 20 * 1024 * 1024);
        let off = load(r#"{ channels: { telegram: { mediaMaxMb: 0 } } }"#);
        assert_eq!(max_bytes(&off, "telegram", "default", "main"), 0);
        assert_eq!(human_size(14_540), "14.2 KB");
    }
}
