//! Bot-loop protection (OpenClaw's `docs/channels/bot-loop-protection.md`):
//! two bots in one conversation may exchange `maxEventsPerWindow` messages
//! (20) within `windowSeconds` (60), counted for the pair in both
//! directions; past that, the pair is suppressed for `cooldownSeconds` (60).
//! Human-authored messages are never counted or suppressed.
//!
//! Must not: read a clock or keep anything but the ledger it is handed
//! (the gateway owns the ledger and passes the time in); it only decides.

use std::collections::{HashMap, VecDeque};

use crate::access::Scoped;
use crate::config::schema::{BotLoopConfig, Config};

/// The limits in force for one conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BotLoopLimits {
    pub enabled: bool,
    pub max_events: u32,
    pub window_ms: u64,
    pub cooldown_ms: u64,
}

/// Key by key, narrowest first: the group's (`channels.<ch>.groups.<id>`),
/// the account's, the channel's, `channels.defaults`, the built-in defaults.
pub fn limits(cfg: &Config, channel: &str, account_id: &str, conversation: &str) -> BotLoopLimits {
    let s = Scoped::new(cfg, channel, account_id);
    let group: Option<BotLoopConfig> = s
        .pick(|a| a.groups.as_ref()?.get(conversation)?.get("botLoopProtection").cloned())
        .and_then(|v| serde_json::from_value(v).ok());
    let pick = |f: &dyn Fn(&BotLoopConfig) -> Option<u64>| {
        group.as_ref().and_then(f).or_else(|| s.pick(|a| a.bot_loop_protection.as_ref().and_then(f)))
    };
    BotLoopLimits {
        enabled: pick(&|b| b.enabled.map(u64::from)).is_none_or(|e| e != 0),
        max_events: pick(&|b| b.max_events_per_window.map(u64::from)).unwrap_or(20).max(1) as u32,
        window_ms: pick(&|b| b.window_seconds).unwrap_or(60).max(1) * 1000,
        cooldown_ms: pick(&|b| b.cooldown_seconds).unwrap_or(60) * 1000,
    }
}

/// One bot pair in one conversation: `(channel, account, conversation,
/// the other bot's id)` — the account is our side of the pair.
pub type PairKey = (String, String, String, String);

#[derive(Debug, Default)]
struct Pair {
    events: VecDeque<u64>,
    suppressed_until: Option<u64>,
}

/// The exchanges of every bot pair lately seen.
#[derive(Debug, Default)]
pub struct BotLoopLedger {
    pairs: HashMap<PairKey, Pair>,
}

impl BotLoopLedger {
    /// A bot-authored message for the pair at `now_ms`: counted, and whether
    /// it may be answered (`false`: the pair is over its budget or cooling down).
    pub fn inbound(&mut self, key: &PairKey, now_ms: u64, l: &BotLoopLimits) -> bool {
        if !l.enabled {
            return true;
        }
        let pair = self.pairs.entry(key.clone()).or_default();
        if pair.suppressed_until.is_some_and(|until| now_ms < until) {
            return false;
        }
        pair.suppressed_until = None;
        while pair.events.front().is_some_and(|t| now_ms.saturating_sub(*t) >= l.window_ms) {
            pair.events.pop_front();
        }
        if pair.events.len() as u32 >= l.max_events {
            pair.suppressed_until = Some(now_ms + l.cooldown_ms);
            pair.events.clear();
            return false;
        }
        pair.events.push_back(now_ms);
        true
    }

    /// Our reply to the pair's bot at `now_ms` (the other direction).
    pub fn reply(&mut self, key: &PairKey, now_ms: u64, l: &BotLoopLimits) {
        if l.enabled {
            self.pairs.entry(key.clone()).or_default().events.push_back(now_ms);
        }
        // Pairs quiet for longer than their window are forgotten.
        self.pairs.retain(|_, p| {
            p.suppressed_until.is_some_and(|u| u > now_ms)
                || p.events.back().is_some_and(|t| now_ms - t < l.window_ms * 4)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(t: &str) -> Config {
        crate::config::load::load_str(t, Some("t.json5")).expect("loads").config
    }

    #[test]
    fn the_narrowest_scope_sets_each_key() {
        let c = cfg(r#"{ channels: { defaults: { botLoopProtection: { maxEventsPerWindow: 10 } },
            discord: { botLoopProtection: { maxEventsPerWindow: 8 },
                       accounts: { second: { botLoopProtection: { maxEventsPerWindow: 5, cooldownSeconds: 90 } } },
                       groups: { "C1": { botLoopProtection: { windowSeconds: 30 } } } },
            slack: { botLoopProtection: { enabled: false } } } }"#);
        let d = limits(&c, "discord", "second", "C1");
        assert_eq!(d, BotLoopLimits { enabled: true, max_events: 5, window_ms: 30_000, cooldown_ms: 90_000 });
        assert_eq!(limits(&c, "discord", "main", "C2").max_events, 8);
        assert_eq!(limits(&c, "telegram", "x", "y").max_events, 10);
        assert!(!limits(&c, "slack", "a", "b").enabled);
        assert_eq!(
            limits(&cfg("{}"), "discord", "a", "b"),
            BotLoopLimits { enabled: true, max_events: 20, window_ms: 60_000, cooldown_ms: 60_000 }
        );
    }

    #[test]
    fn a_pair_over_its_budget_cools_down_then_talks_again() {
        let l = BotLoopLimits { enabled: true, max_events: 4, window_ms: 60_000, cooldown_ms: 60_000 };
        let key: PairKey = ("discord".into(), "main".into(), "C1".into(), "bot-b".into());
        let mut ledger = BotLoopLedger::default();
        // Two exchanges: in, reply, in, reply = 4 events.
        for t in [0, 1_000] {
            assert!(ledger.inbound(&key, t, &l));
            ledger.reply(&key, t + 100, &l);
        }
        assert!(!ledger.inbound(&key, 2_000, &l), "the fifth event exceeds the budget");
        assert!(!ledger.inbound(&key, 30_000, &l), "still cooling down");
        assert!(ledger.inbound(&key, 62_001, &l), "after the cooldown the pair may talk again");
        let other: PairKey = ("discord".into(), "main".into(), "C1".into(), "bot-c".into());
        assert!(ledger.inbound(&other, 2_000, &l), "another pair is not affected");
    }
}
