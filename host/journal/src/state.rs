//! What the journal's records add up to: the inbound events not yet
//! finished, the replies not yet delivered, and the platform message ids
//! already accepted (for dedupe). Applying a record twice, in order, is the
//! same as applying it once, so a compaction that already holds a record
//! and the append of that record after it agree.
//!
//! Must not: do I/O, or forget an unfinished event or undelivered reply.

use std::collections::{BTreeMap, HashSet, VecDeque};

use serde_json::Value;

use crate::record::{Record, VERSION};

/// How many handled platform message ids are remembered for dedupe.
pub(crate) const SEEN_LIMIT: usize = 50_000;

/// An accepted inbound event that is not finished yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Unfinished {
    pub seq: u64,
    /// The chat it belongs to (per-chat order is kept by this key).
    pub chat: String,
    pub event: Value,
    /// Agents whose reply to it is already in the outbox (a broadcast
    /// interrupted half way does not answer twice).
    pub answered_by: Vec<String>,
    dedupe: String,
}

impl Unfinished {
    /// An unfinished event as another store holds it (the shared database's
    /// journal): its dedupe id stays there, so none is kept here.
    pub fn resumed(seq: u64, chat: String, event: Value, answered_by: Vec<String>) -> Unfinished {
        Unfinished { seq, chat, event, answered_by, dedupe: String::new() }
    }
}

/// A reply in the outbox, not delivered yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Undelivered {
    pub id: u64,
    /// The inbound event it answers.
    pub seq: u64,
    pub agent: String,
    pub chat: String,
    pub message: Value,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub next_seq: u64,
    pub next_reply: u64,
    pub open: BTreeMap<u64, Unfinished>,
    pub outbox: BTreeMap<u64, Undelivered>,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
}

impl State {
    pub fn has_seen(&self, dedupe: &str) -> bool {
        !dedupe.is_empty() && self.seen.contains(dedupe)
    }

    pub fn remember(&mut self, dedupe: &str) {
        if dedupe.is_empty() || !self.seen.insert(dedupe.to_string()) {
            return;
        }
        self.seen_order.push_back(dedupe.to_string());
        while self.seen_order.len() > SEEN_LIMIT {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
    }

    fn forget(&mut self, dedupe: &str) {
        if self.seen.remove(dedupe) {
            self.seen_order.retain(|d| d != dedupe);
        }
    }

    /// Takes back records whose write failed: accepted events are neither
    /// open nor remembered (the platform's retry is new), replies not queued.
    pub fn undo(&mut self, records: &[Record]) {
        for r in records {
            match r {
                Record::In { seq, dedupe, .. } => {
                    self.open.remove(seq);
                    self.forget(dedupe);
                }
                Record::Out { id, .. } => {
                    self.outbox.remove(id);
                }
                _ => {}
            }
        }
    }

    /// Folds one record into the state. Idempotent per record.
    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::Journal { .. } => {}
            Record::In { seq, dedupe, chat, event } => {
                self.next_seq = self.next_seq.max(seq + 1);
                self.remember(dedupe);
                self.open.entry(*seq).or_insert_with(|| Unfinished {
                    seq: *seq,
                    chat: chat.clone(),
                    event: event.clone(),
                    answered_by: Vec::new(),
                    dedupe: dedupe.clone(),
                });
            }
            Record::Out { id, seq, agent, chat, message } => {
                self.next_reply = self.next_reply.max(id + 1);
                if let Some(open) = self.open.get_mut(seq) {
                    if !open.answered_by.contains(agent) {
                        open.answered_by.push(agent.clone());
                    }
                }
                self.outbox.entry(*id).or_insert_with(|| Undelivered {
                    id: *id,
                    seq: *seq,
                    agent: agent.clone(),
                    chat: chat.clone(),
                    message: message.clone(),
                });
            }
            Record::Answered { seq, agent } => {
                if let Some(open) = self.open.get_mut(seq) {
                    if !open.answered_by.contains(agent) {
                        open.answered_by.push(agent.clone());
                    }
                }
            }
            Record::Done { seq, .. } => {
                self.open.remove(seq);
            }
            Record::Sent { id } | Record::Dead { id, .. } => {
                self.outbox.remove(id);
            }
            Record::Seen { dedupe } => self.remember(dedupe),
        }
    }

    /// The records that rebuild this state and nothing else: the header,
    /// the remembered ids, the unfinished events, the undelivered replies.
    pub fn compacted(&self) -> Vec<Record> {
        let mut out = vec![Record::Journal { version: VERSION }];
        let open_ids: HashSet<&str> = self.open.values().map(|u| u.dedupe.as_str()).collect();
        out.extend(
            self.seen_order
                .iter()
                .filter(|d| !open_ids.contains(d.as_str()))
                .map(|d| Record::Seen { dedupe: d.clone() }),
        );
        for u in self.open.values() {
            out.push(Record::In { seq: u.seq, dedupe: u.dedupe.clone(), chat: u.chat.clone(), event: u.event.clone() });
        }
        for r in self.outbox.values() {
            out.push(Record::Out {
                id: r.id,
                seq: r.seq,
                agent: r.agent.clone(),
                chat: r.chat.clone(),
                message: r.message.clone(),
            });
        }
        // Agents that answered an open event and whose reply is already
        // delivered (a broadcast half done): noted without the reply.
        for u in self.open.values() {
            for agent in &u.answered_by {
                if !self.outbox.values().any(|r| r.seq == u.seq && &r.agent == agent) {
                    out.push(Record::Answered { seq: u.seq, agent: agent.clone() });
                }
            }
        }
        out
    }
}
