//! When a scheduled job fires next: OpenClaw's three time schedules (`at`,
//! `every`, `cron`), its duration strings (`30s`, `5m`, `1h30m`) and the
//! time zones they are read in.
//!
//! A schedule is written as OpenClaw stores one (`{kind:"at", at}`,
//! `{kind:"every", everyMs, anchorMs}`, `{kind:"cron", expr, tz}`), compiled
//! once ([`Schedule::compile`], every problem named), then asked for its next
//! occurrence after a given instant. Cron expressions are croner's (5 fields,
//! or 6 with seconds first; day-of-month and day-of-week match with OR, `+`
//! on the day-of-week asks for AND), as in OpenClaw.
//!
//! Must not: read the clock, sleep, or know what a job runs. Instants are
//! milliseconds since the Unix epoch, given by the caller.

use chrono::{DateTime, Local, NaiveDateTime, TimeZone, Utc};
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use serde::{Deserialize, Serialize};

/// A schedule as stored and written in config: OpenClaw's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum ScheduleSpec {
    /// Once, at an ISO 8601 instant (no offset: UTC).
    At { at: String },
    /// Every `everyMs` (or a duration string `every`, chela's config
    /// shorthand), counted from `anchorMs` (when the job was made).
    #[serde(rename_all = "camelCase")]
    Every {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        every_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        every: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        anchor_ms: Option<i64>,
    },
    /// A cron expression, in `tz` (an IANA zone, `UTC`, or `local`; unset:
    /// the gateway host's zone).
    Cron {
        expr: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tz: Option<String>,
    },
}

/// A schedule that does not compile: what is wrong, with the field it is in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ScheduleError {
    /// The field of the schedule at fault (`expr`, `tz`, `at`, `everyMs`, `every`).
    pub field: &'static str,
    pub message: String,
}

fn fault(field: &'static str, message: impl Into<String>) -> ScheduleError {
    ScheduleError { field, message: message.into() }
}

/// Shortest interval of an `every` schedule: a tighter loop is a mistake, not a schedule.
pub const MIN_EVERY_MS: u64 = 1_000;

/// A time zone a schedule is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// The gateway host's zone.
    Local,
    Named(chrono_tz::Tz),
}

impl Zone {
    /// `local` (or unset) → the host's zone; `UTC`; an IANA name. `None`
    /// when the name is not a zone.
    pub fn parse(name: Option<&str>) -> Option<Zone> {
        match name.map(str::trim) {
            None | Some("") => Some(Zone::Local),
            Some(n) if n.eq_ignore_ascii_case("local") => Some(Zone::Local),
            Some(n) if n.eq_ignore_ascii_case("utc") || n == "Z" => Some(Zone::Named(chrono_tz::UTC)),
            Some(n) => n.parse::<chrono_tz::Tz>().ok().map(Zone::Named),
        }
    }

    /// Minutes since local midnight at `at_ms` in this zone.
    pub fn minute_of_day(&self, at_ms: i64) -> Option<u32> {
        use chrono::Timelike as _;
        let utc = Utc.timestamp_millis_opt(at_ms).single()?;
        let (h, m) = match self {
            Zone::Local => {
                let t = utc.with_timezone(&Local);
                (t.hour(), t.minute())
            }
            Zone::Named(tz) => {
                let t = utc.with_timezone(tz);
                (t.hour(), t.minute())
            }
        };
        Some(h * 60 + m)
    }
}

/// A compiled schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    At(i64),
    Every { every_ms: u64, anchor_ms: i64 },
    Cron { cron: Box<Cron>, zone: Zone },
}

impl Schedule {
    /// Compiles a schedule; `now_ms` anchors an `every` without `anchorMs`.
    pub fn compile(spec: &ScheduleSpec, now_ms: i64) -> Result<Schedule, ScheduleError> {
        match spec {
            ScheduleSpec::At { at } => parse_instant(at)
                .map(Schedule::At)
                .ok_or_else(|| fault("at", format!("`{at}` is not an ISO 8601 time (e.g. `2027-02-01T16:00:00Z`)"))),
            ScheduleSpec::Every { every_ms, every, anchor_ms } => {
                let ms = match (every_ms, every) {
                    (Some(ms), None) => *ms,
                    (None, Some(text)) => parse_duration_ms(text, Unit::Minutes).map_err(|e| fault("every", e))?,
                    (Some(_), Some(_)) => return Err(fault("every", "set `everyMs` or `every`, not both")),
                    (None, None) => {
                        return Err(fault("everyMs", "an `every` schedule needs `everyMs` (or `every: \"10m\"`)"))
                    }
                };
                if ms < MIN_EVERY_MS {
                    let field = if every.is_some() { "every" } else { "everyMs" };
                    return Err(fault(field, format!("an interval of {ms} ms is shorter than the 1 s minimum")));
                }
                Ok(Schedule::Every { every_ms: ms, anchor_ms: anchor_ms.unwrap_or(now_ms) })
            }
            ScheduleSpec::Cron { expr, tz } => {
                let zone = Zone::parse(tz.as_deref()).ok_or_else(|| {
                    fault(
                        "tz",
                        format!(
                            "`{}` is not a time zone (an IANA name such as `Europe/Vienna`, `UTC` or `local`)",
                            tz.as_deref().unwrap_or("")
                        ),
                    )
                })?;
                let cron = parse_cron(expr).map_err(|e| fault("expr", e))?;
                Ok(Schedule::Cron { cron: Box::new(cron), zone })
            }
        }
    }

    /// The first occurrence strictly after `after_ms`; `None` when there is
    /// none (a one-shot in the past, a cron expression that never matches).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match self {
            Schedule::At(at) => (*at > after_ms).then_some(*at),
            Schedule::Every { every_ms, anchor_ms } => {
                let every = i64::try_from(*every_ms).ok()?;
                if after_ms < *anchor_ms {
                    return Some(*anchor_ms + every);
                }
                let steps = (after_ms - anchor_ms) / every + 1;
                anchor_ms.checked_add(steps.checked_mul(every)?)
            }
            Schedule::Cron { cron, zone } => {
                let utc = Utc.timestamp_millis_opt(after_ms).single()?;
                let next = match zone {
                    Zone::Local => {
                        cron.find_next_occurrence(&utc.with_timezone(&Local), false).ok()?.timestamp_millis()
                    }
                    Zone::Named(tz) => {
                        cron.find_next_occurrence(&utc.with_timezone(tz), false).ok()?.timestamp_millis()
                    }
                };
                Some(next)
            }
        }
    }

    /// A one-shot schedule (`at`): the job is done after it runs.
    pub fn is_one_shot(&self) -> bool {
        matches!(self, Schedule::At(_))
    }
}

/// A cron expression: 5 fields, or 6 with seconds first.
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let fields = expr.split_whitespace().count();
    if !(5..=6).contains(&fields) && !expr.trim_start().starts_with('@') {
        return Err(format!("`{expr}` has {fields} fields; a cron expression has 5 (minute hour day month weekday) or 6 (seconds first)"));
    }
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(expr)
        .map_err(|e| format!("`{expr}` is not a cron expression: {e}"))
}

/// An ISO 8601 instant: with an offset, or without one (read as UTC, as
/// OpenClaw reads it); a bare date is midnight UTC.
pub fn parse_instant(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.timestamp_millis());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return Some(n.and_utc().timestamp_millis());
        }
    }
    chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0).map(|n| n.and_utc().timestamp_millis())
}

/// An instant as ISO 8601 UTC (`2027-02-01T16:00:00.000Z`).
pub fn format_instant(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// The unit of a bare number in a duration string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Millis,
    Minutes,
}

/// OpenClaw's duration strings: `500ms`, `30s`, `5m`, `2h`, `1d`, composites
/// such as `1h30m`; a bare number is in `default_unit`. Case-insensitive.
pub fn parse_duration_ms(raw: &str, default_unit: Unit) -> Result<u64, String> {
    let text = raw.trim().to_ascii_lowercase();
    let invalid = |why: &str| {
        let shown = if raw.trim().is_empty() { "empty value".to_string() } else { format!("\"{raw}\"") };
        let why = if why.is_empty() { String::new() } else { format!(" ({why})") };
        format!("invalid duration{why}: {shown}; use values like 500ms, 30s, 5m, 2h, or 1h30m")
    };
    if text.is_empty() {
        return Err(invalid("empty"));
    }
    let unit_ms = |u: &str| -> f64 {
        match u {
            "ms" => 1.0,
            "s" => 1_000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            _ => 86_400_000.0,
        }
    };
    let (mut total, mut rest, mut segments) = (0f64, text.as_str(), 0);
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let value: f64 = number.parse().map_err(|_| invalid(""))?;
        let unit_len = ["ms", "s", "m", "h", "d"].iter().find(|u| after.starts_with(**u)).map(|u| u.len());
        let (unit, next) = match unit_len {
            Some(n) => after.split_at(n),
            None if after.is_empty() && segments == 0 => (if default_unit == Unit::Minutes { "m" } else { "ms" }, ""),
            None if after.is_empty() => return Err(invalid("each composite segment needs a unit")),
            None => return Err(invalid("")),
        };
        total += value * unit_ms(unit);
        rest = next;
        segments += 1;
    }
    let ms = total.round();
    if !ms.is_finite() || !(0.0..=9_007_199_254_740_991.0).contains(&ms) {
        return Err(invalid(""));
    }
    Ok(ms as u64)
}

/// A duration for people: `30m`, `1h30m`, `45s`, `250ms`.
pub fn format_duration(ms: u64) -> String {
    if ms == 0 {
        return "0m".into();
    }
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let mut s = ms / 1000;
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if s >= size {
            out.push_str(&format!("{}{unit}", s / size));
            s %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        parse_instant(text).unwrap()
    }

    #[test]
    fn durations_as_openclaw_reads_them() {
        assert_eq!(parse_duration_ms("30m", Unit::Minutes), Ok(1_800_000));
        assert_eq!(parse_duration_ms("30", Unit::Minutes), Ok(1_800_000), "a bare number is in the default unit");
        assert_eq!(parse_duration_ms("30", Unit::Millis), Ok(30));
        assert_eq!(parse_duration_ms("1h30m", Unit::Minutes), Ok(5_400_000));
        assert_eq!(parse_duration_ms("250ms", Unit::Minutes), Ok(250));
        assert_eq!(parse_duration_ms("1.5h", Unit::Minutes), Ok(5_400_000));
        assert_eq!(parse_duration_ms("0m", Unit::Minutes), Ok(0));
        assert_eq!(parse_duration_ms(" 2H ", Unit::Minutes), Ok(7_200_000));
        for bad in ["", "soon", "1h30", "m5", "-5m", "5 m", "1w"] {
            let e = parse_duration_ms(bad, Unit::Minutes).unwrap_err();
            assert!(e.starts_with("invalid duration"), "{bad}: {e}");
        }
        assert_eq!(format_duration(5_400_000), "1h30m");
        assert_eq!(format_duration(45_000), "45s");
    }

    #[test]
    fn every_counts_from_its_anchor() {
        let spec = ScheduleSpec::Every { every_ms: Some(60_000), every: None, anchor_ms: Some(1_000) };
        let s = Schedule::compile(&spec, 0).unwrap();
        assert_eq!(s.next_after(0), Some(61_000));
        assert_eq!(s.next_after(61_000), Some(121_000), "strictly after");
        assert_eq!(s.next_after(61_001), Some(121_000));
        let text = ScheduleSpec::Every { every_ms: None, every: Some("10m".into()), anchor_ms: None };
        assert_eq!(Schedule::compile(&text, 5).unwrap().next_after(5), Some(600_005), "anchored at compile time");
        let tight = ScheduleSpec::Every { every_ms: Some(10), every: None, anchor_ms: None };
        assert_eq!(Schedule::compile(&tight, 0).unwrap_err().field, "everyMs");
    }

    #[test]
    fn cron_in_a_zone_with_or_semantics() {
        let spec = ScheduleSpec::Cron { expr: "0 9 * * 1-5".into(), tz: Some("America/New_York".into()) };
        let s = Schedule::compile(&spec, 0).unwrap();
        // Friday 2026-12-04 15:00 UTC is 10:00 in New York: next is Monday 09:00 EST = 14:00 UTC.
        assert_eq!(s.next_after(at("2026-12-04T15:00:00Z")), Some(at("2026-12-07T14:00:00Z")));
        // Day-of-month OR day-of-week, as croner (and Vixie cron) match them.
        let or =
            Schedule::compile(&ScheduleSpec::Cron { expr: "0 9 15 * 1".into(), tz: Some("UTC".into()) }, 0).unwrap();
        assert_eq!(
            or.next_after(at("2026-12-04T00:00:00Z")),
            Some(at("2026-12-07T09:00:00Z")),
            "a Monday before the 15th"
        );
        let six = Schedule::compile(&ScheduleSpec::Cron { expr: "*/30 * * * * *".into(), tz: Some("UTC".into()) }, 0)
            .unwrap();
        assert_eq!(six.next_after(at("2026-12-04T00:00:10Z")), Some(at("2026-12-04T00:00:30Z")), "seconds first");
    }

    #[test]
    fn bad_schedules_name_their_field() {
        let bad_expr = ScheduleSpec::Cron { expr: "61 * * * *".into(), tz: None };
        assert_eq!(Schedule::compile(&bad_expr, 0).unwrap_err().field, "expr");
        let short = ScheduleSpec::Cron { expr: "* * *".into(), tz: None };
        let e = Schedule::compile(&short, 0).unwrap_err();
        assert!(e.message.contains("3 fields"), "{e}");
        let bad_tz = ScheduleSpec::Cron { expr: "0 9 * * *".into(), tz: Some("Mars/Olympus".into()) };
        assert_eq!(Schedule::compile(&bad_tz, 0).unwrap_err().field, "tz");
        let bad_at = ScheduleSpec::At { at: "tomorrow".into() };
        assert_eq!(Schedule::compile(&bad_at, 0).unwrap_err().field, "at");
    }

    #[test]
    fn instants_without_offset_are_utc() {
        assert_eq!(at("2027-02-01T16:00:00"), at("2027-02-01T16:00:00Z"));
        assert_eq!(at("2027-02-01T17:00:00+01:00"), at("2027-02-01T16:00:00Z"));
        let once = Schedule::compile(&ScheduleSpec::At { at: "2027-02-01T16:00:00Z".into() }, 0).unwrap();
        assert_eq!(once.next_after(at("2027-02-01T15:00:00Z")), Some(at("2027-02-01T16:00:00Z")));
        assert_eq!(once.next_after(at("2027-02-01T16:00:00Z")), None, "a one-shot does not come back");
        assert_eq!(format_instant(at("2027-02-01T16:00:00Z")), "2027-02-01T16:00:00.000Z");
    }

    #[test]
    fn zones_and_minutes_of_day() {
        let vienna = Zone::parse(Some("Europe/Vienna")).unwrap();
        assert_eq!(vienna.minute_of_day(at("2026-12-04T07:30:00Z")), Some(8 * 60 + 30));
        assert_eq!(Zone::parse(Some("local")), Some(Zone::Local));
        assert_eq!(Zone::parse(Some("Nowhere/Else")), None);
    }
}
