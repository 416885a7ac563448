//! When a session expires (reference §5): checked on the next inbound
//! message. Daily mode resets at `atHour` (default 04:00, gateway local
//! time) counted from when the session started; idle mode after
//! `idleMinutes` without a message; with both, whichever comes first.
//! Without any `session.reset*` config a session never expires (OpenClaw
//! 2026.9.6's `mode: "none"` default: compaction bounds its context).
//!
//! Must not: reset a session itself (the turn does, when this says it is stale).

use chela_core::config::schema::{Config, ResetConfig};
use chela_core::ids::ChatType;
use chrono::{DateTime, Duration, Local, TimeZone};

/// The reset policy that applies to one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetPolicy {
    pub daily_at_hour: Option<u8>,
    pub idle_minutes: Option<u64>,
}

impl ResetPolicy {
    /// Never expires on its own (`mode: "none"`, the default).
    pub const NONE: ResetPolicy = ResetPolicy { daily_at_hour: None, idle_minutes: None };

    fn from_config(r: &ResetConfig) -> ResetPolicy {
        let idle = r.idle_minutes.filter(|m| *m > 0);
        let daily = || Some(r.at_hour.unwrap_or(4).min(23));
        match r.mode.as_deref() {
            Some("none") => ResetPolicy::NONE,
            Some("idle") => ResetPolicy { daily_at_hour: None, idle_minutes: idle },
            Some(_) => ResetPolicy { daily_at_hour: daily(), idle_minutes: idle },
            // No mode: what the block sets.
            None => ResetPolicy { daily_at_hour: r.at_hour.and(daily()), idle_minutes: idle },
        }
    }
}

/// `resetByChannel[channel]` > `resetByType[direct|group|thread]` > `reset` >
/// legacy `idleMinutes` (idle only) > none.
pub fn policy_for(cfg: &Config, channel: Option<&str>, chat_type: ChatType) -> ResetPolicy {
    let s = cfg.session.as_ref();
    let chat_type = chat_type.as_str();
    let by_channel = channel.and_then(|c| s?.reset_by_channel.as_ref()?.get(c));
    let by_type = s.and_then(|s| {
        let t = s.reset_by_type.as_ref()?;
        t.get(chat_type).or_else(|| if chat_type == "direct" { t.get("dm") } else { None })
    });
    if let Some(r) = by_channel.or(by_type).or_else(|| s?.reset.as_ref()) {
        return ResetPolicy::from_config(r);
    }
    match s.and_then(|s| s.idle_minutes) {
        Some(m) if m > 0 => ResetPolicy { daily_at_hour: None, idle_minutes: Some(m) },
        _ => ResetPolicy::NONE,
    }
}

/// Whether a session that started at `started_ms` and was last active at
/// `last_ms` has expired at `now` (daily counts from the start, idle from
/// the last message).
pub fn is_stale<Tz: TimeZone>(policy: ResetPolicy, started_ms: i64, last_ms: i64, now: &DateTime<Tz>) -> bool {
    let now_ms = now.timestamp_millis();
    if let Some(m) = policy.idle_minutes {
        if now_ms - last_ms >= (m as i64) * 60_000 {
            return true;
        }
    }
    if let Some(h) = policy.daily_at_hour {
        let today = now.date_naive().and_hms_opt(u32::from(h), 0, 0);
        let boundary = today.and_then(|t| now.timezone().from_local_datetime(&t).earliest());
        if let Some(b) = boundary {
            let b = if b.timestamp_millis() > now_ms { b - Duration::days(1) } else { b };
            return started_ms < b.timestamp_millis();
        }
    }
    false
}

pub fn is_stale_now(policy: ResetPolicy, started_ms: i64, last_ms: i64) -> bool {
    is_stale(policy, started_ms, last_ms, &Local::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chela_core::config::load_str;
    use chrono::Utc;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn daily_boundary_and_idle_whichever_first() {
        let daily = ResetPolicy { daily_at_hour: Some(4), idle_minutes: None };
        let now = at("2026-11-21T10:00:00Z");
        let ms = |s: &str| at(s).timestamp_millis();
        let recent = ms("2026-11-21T09:59:00Z");
        assert!(is_stale(daily, ms("2026-11-21T03:59:00Z"), recent, &now), "started before today's 04:00");
        assert!(!is_stale(daily, ms("2026-11-21T04:01:00Z"), recent, &now));
        let early = at("2026-11-21T02:00:00Z");
        assert!(!is_stale(daily, ms("2026-11-20T05:00:00Z"), ms("2026-11-20T05:00:00Z"), &early));
        let both = ResetPolicy { daily_at_hour: Some(4), idle_minutes: Some(30) };
        let started = ms("2026-11-21T05:00:00Z");
        assert!(is_stale(both, started, ms("2026-11-21T09:00:00Z"), &now), "idle for an hour");
        assert!(!is_stale(both, started, ms("2026-11-21T09:45:00Z"), &now));
        assert!(!is_stale(ResetPolicy::NONE, 0, 0, &now), "none never expires");
    }

    #[test]
    fn most_specific_reset_config_wins() {
        let c = load_str(
            "{session: {reset: {mode: 'daily', atHour: 6}, resetByType: {group: {mode: 'idle', idleMinutes: 10}}, resetByChannel: {slack: {mode: 'idle', idleMinutes: 99}}}}",
            None,
        )
        .unwrap()
        .config;
        assert_eq!(
            policy_for(&c, Some("telegram"), ChatType::Direct),
            ResetPolicy { daily_at_hour: Some(6), idle_minutes: None }
        );
        assert_eq!(
            policy_for(&c, Some("telegram"), ChatType::Group),
            ResetPolicy { daily_at_hour: None, idle_minutes: Some(10) }
        );
        assert_eq!(
            policy_for(&c, Some("slack"), ChatType::Group),
            ResetPolicy { daily_at_hour: None, idle_minutes: Some(99) }
        );
        let legacy = load_str("{session: {idleMinutes: 5}}", None).unwrap().config;
        assert_eq!(
            policy_for(&legacy, None, ChatType::Direct),
            ResetPolicy { daily_at_hour: None, idle_minutes: Some(5) }
        );
        let none = load_str("{}", None).unwrap().config;
        assert_eq!(
            policy_for(&none, None, ChatType::Direct),
            ResetPolicy::NONE,
            "OpenClaw 2026.9.6: no automatic reset"
        );
        let off = load_str("{session: {reset: {mode: 'none', idleMinutes: 5}}}", None).unwrap().config;
        assert_eq!(policy_for(&off, None, ChatType::Direct), ResetPolicy::NONE);
    }
}
