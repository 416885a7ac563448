//! Dynamic cadence (OpenClaw's `pacing`, `docs/automation/cron-jobs/schedules.md`):
//! a recurring job with `pacing: { min?, max? }` lets its own run propose
//! when it runs next (the `automations` tool's `next_check in: "30m"`).
//! The proposal is clamped to the bounds, measured from the end of a
//! successful run, and replaces that one next run; a failed, timed-out or
//! skipped run discards it (normal back-off wins), and a run without a
//! proposal leaves the schedule alone.
//!
//! Without `min`, a proposal is still held to [`FLOOR_MS`] (OpenClaw's
//! shortest loop interval), so a paced job never runs hotter than a loop
//! may; without `max`, to [`CEILING_MS`] (a year), so a proposal always
//! names a time.
//!
//! Must not: schedule or store anything (the gateway's scheduler applies
//! the clamped delay to the job's state).

use serde::{Deserialize, Serialize};

use crate::schedule::{parse_duration_ms, Unit};

/// The shortest delay a proposal may ask for when `min` is unset.
pub const FLOOR_MS: u64 = 30_000;
/// The longest delay a proposal may ask for when `max` is unset.
pub const CEILING_MS: u64 = 366 * 24 * 3_600_000;

/// `pacing` as written: duration strings (`"15m"`, `"4h"`), at least one.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pacing {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<String>,
}

/// The bounds of a valid `pacing`, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub min_ms: u64,
    pub max_ms: Option<u64>,
}

impl Pacing {
    /// The bounds, or each problem as (field under `pacing`, message).
    pub fn bounds(&self) -> Result<Bounds, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut read = |field: &str, raw: &Option<String>| match raw {
            None => None,
            Some(raw) => match parse_duration_ms(raw, Unit::Millis) {
                Ok(0) => {
                    problems.push((field.to_string(), "a pacing bound must be longer than zero".to_string()));
                    None
                }
                Ok(ms) => Some(ms),
                Err(e) => {
                    problems.push((field.to_string(), e));
                    None
                }
            },
        };
        let (min, max) = (read("min", &self.min), read("max", &self.max));
        if self.min.is_none() && self.max.is_none() {
            problems.push((String::new(), "pacing needs `min` or `max` (durations such as \"15m\")".to_string()));
        }
        if let (Some(lo), Some(hi)) = (min, max) {
            if lo > hi {
                problems.push(("min".into(), "`min` is longer than `max`".into()));
            }
        }
        if problems.is_empty() {
            Ok(Bounds { min_ms: min.unwrap_or(FLOOR_MS), max_ms: max })
        } else {
            Err(problems)
        }
    }
}

impl Bounds {
    /// `proposal_ms` held to the bounds (OpenClaw clamps silently).
    pub fn clamp(&self, proposal_ms: u64) -> u64 {
        proposal_ms.max(self.min_ms).min(self.max_ms.unwrap_or(CEILING_MS).max(self.min_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacing(min: Option<&str>, max: Option<&str>) -> Pacing {
        Pacing { min: min.map(str::to_string), max: max.map(str::to_string) }
    }

    #[test]
    fn a_proposal_is_held_to_the_bounds() {
        let b = pacing(Some("1m"), Some("1h")).bounds().unwrap();
        assert_eq!(b.clamp(5_000), 60_000);
        assert_eq!(b.clamp(1_800_000), 1_800_000);
        assert_eq!(b.clamp(86_400_000), 3_600_000);
        let only_max = pacing(None, Some("4h")).bounds().unwrap();
        assert_eq!(only_max.clamp(1), FLOOR_MS, "no min: still not hotter than a loop may run");
        assert_eq!(pacing(Some("15m"), None).bounds().unwrap().clamp(u64::MAX), CEILING_MS);
    }

    #[test]
    fn bad_bounds_name_their_field() {
        let fields = |p: Pacing| p.bounds().unwrap_err().into_iter().map(|(f, _)| f).collect::<Vec<_>>();
        assert_eq!(fields(pacing(None, None)), [""]);
        assert_eq!(fields(pacing(Some("2h"), Some("1h"))), ["min"]);
        assert_eq!(fields(pacing(Some("soon"), Some("0s"))), ["min", "max"]);
    }
}
