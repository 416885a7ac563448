//! Unanswered group messages (no mention under `requireMention`), kept per
//! group and account until the next answered message there, which is given
//! them as context (core's `access::with_group_history`), then the group's
//! history starts over. Bounded: each group to its `historyLimit`, and at
//! most 1,000 groups (the least recently touched go first), as OpenClaw's.
//! In memory: a restart forgets it, as OpenClaw's does.
//!
//! Must not: decide whether a message is answered (the pipeline does) or
//! what the model may see (core's `history_visible`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use chela_core::access::HistoryLine;

/// Groups remembered at once.
const MAX_GROUPS: usize = 1000;

/// `(channel, account, group)` (the group with `:thread:<id>` for a topic or thread).
type GroupKey = (String, String, String);

#[derive(Default)]
pub(crate) struct GroupHistory {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    groups: BTreeMap<GroupKey, (u64, VecDeque<HistoryLine>)>,
    /// A counter standing for time: the group touched longest ago has the smallest.
    tick: u64,
}

impl GroupHistory {
    /// Keeps `line` for the group, dropping its oldest beyond `limit`.
    pub(crate) fn record(&self, key: GroupKey, line: HistoryLine, limit: usize) {
        if limit == 0 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.tick += 1;
        let tick = inner.tick;
        let entry = inner.groups.entry(key).or_insert_with(|| (tick, VecDeque::new()));
        entry.0 = tick;
        entry.1.push_back(line);
        while entry.1.len() > limit {
            entry.1.pop_front();
        }
        if inner.groups.len() > MAX_GROUPS {
            if let Some(oldest) = inner.groups.iter().min_by_key(|(_, (t, _))| *t).map(|(k, _)| k.clone()) {
                inner.groups.remove(&oldest);
            }
        }
    }

    /// The group's kept lines (at most `limit`, the newest), and forgets them.
    pub(crate) fn take(&self, key: &GroupKey, limit: usize) -> Vec<HistoryLine> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let lines: Vec<HistoryLine> =
            inner.groups.remove(key).map(|(_, l)| l.into_iter().collect()).unwrap_or_default();
        let skip = lines.len().saturating_sub(limit);
        lines.into_iter().skip(skip).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(t: &str) -> HistoryLine {
        HistoryLine { sender: "s".into(), text: t.into() }
    }

    #[test]
    fn a_group_keeps_its_newest_lines_until_taken() {
        let h = GroupHistory::default();
        let k = ("webhook".to_string(), "inbox".to_string(), "team".to_string());
        for t in ["a", "b", "c"] {
            h.record(k.clone(), line(t), 2);
        }
        assert_eq!(h.take(&k, 2).iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["b", "c"]);
        assert!(h.take(&k, 2).is_empty(), "taken once");
        h.record(k.clone(), line("x"), 0);
        assert!(h.take(&k, 5).is_empty(), "a limit of 0 keeps nothing");
    }

    #[test]
    fn the_least_recently_touched_group_goes_first() {
        let h = GroupHistory::default();
        let key = |i: usize| ("c".to_string(), "a".to_string(), format!("g{i}"));
        for i in 0..=MAX_GROUPS {
            h.record(key(i), line("x"), 5);
        }
        assert!(h.take(&key(0), 5).is_empty(), "the oldest group was dropped");
        assert_eq!(h.take(&key(MAX_GROUPS), 5).len(), 1);
    }
}
