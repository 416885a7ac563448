//! "Why did this message go to that agent?" — the tier walk, recorded.
//!
//! Uses the very walk `resolve` uses (with a recording tracer), so the
//! explanation cannot drift from the behaviour. It also points out bindings
//! of the same channel that were never candidates because they name another
//! account — the usual cause of "messages go to the wrong agent" (a binding
//! without `accountId` matches only the `default` account).
//!
//! Must not: walk the tiers by its own rules: it records the walk `resolve` runs.

use super::table::{CompiledBinding, Mismatch, Trace};
use super::{MatchedBy, RouteInput, RouteResult, RouteTable};
use crate::config::schema::Config;
use crate::ids::{js_trim, normalize_account_id, normalize_channel};

/// What happened to one binding that was a candidate in a tier.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidateVerdict {
    pub binding_index: usize,
    /// `None` when it matched, else why not.
    pub rejected_because: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum TierOutcome {
    /// The message lacks what this tier keys on.
    Skipped { reason: String },
    /// Candidates were checked (possibly none).
    Checked { candidates: Vec<CandidateVerdict> },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TierTrace {
    pub tier: MatchedBy,
    #[serde(flatten)]
    pub outcome: TierOutcome,
}

/// The route and the walk that produced it.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub result: RouteResult,
    /// Binding tiers in precedence order, up to and including the one that matched.
    pub tiers: Vec<TierTrace>,
    /// Bindings that also match but lose to a more specific tier: `(tier, index)`.
    pub shadowed: Vec<(MatchedBy, usize)>,
    /// Bindings of this channel that name a different account: `(index, account pattern)`.
    pub other_accounts: Vec<(usize, String)>,
}

struct Recorder {
    tiers: Vec<TierTrace>,
    matched: bool,
    shadowed: Vec<(MatchedBy, usize)>,
}

impl Recorder {
    fn tier(&mut self, tier: MatchedBy) -> &mut TierTrace {
        if self.tiers.last().is_none_or(|t| t.tier != tier) {
            self.tiers.push(TierTrace { tier, outcome: TierOutcome::Checked { candidates: Vec::new() } });
        }
        let last = self.tiers.len() - 1;
        &mut self.tiers[last]
    }
}

impl Trace for Recorder {
    fn tier_skipped(&mut self, tier: MatchedBy, why: &'static str) {
        if self.matched {
            return;
        }
        self.tier(tier).outcome = TierOutcome::Skipped { reason: why.to_string() };
    }

    fn candidate(&mut self, tier: MatchedBy, binding: &CompiledBinding, verdict: Result<(), Mismatch>) {
        if self.matched {
            if verdict.is_ok() {
                self.shadowed.push((tier, binding.source_index));
            }
            return;
        }
        self.matched = verdict.is_ok();
        let entry =
            CandidateVerdict { binding_index: binding.source_index, rejected_because: verdict.err().map(describe) };
        if let TierOutcome::Checked { candidates } = &mut self.tier(tier).outcome {
            candidates.push(entry);
        }
    }
}

fn describe(m: Mismatch) -> String {
    match m {
        Mismatch::NoPeer => "it needs a peer and the message has none".into(),
        Mismatch::PeerKind { wanted } => format!("it needs a `{wanted}` peer"),
        Mismatch::PeerId { wanted } => format!("it needs peer id `{wanted}`"),
        Mismatch::Guild { wanted } => format!("it needs guild `{wanted}`"),
        Mismatch::Team { wanted } => format!("it needs team `{wanted}`"),
        Mismatch::Roles { wanted } => format!("it needs one of the roles {wanted:?}"),
    }
}

impl Explanation {
    /// The walk as JSON, as `chela route --json` and the control API give it:
    /// `tiers` (each tier checked or skipped, with every candidate's verdict)
    /// and `shadowed` (bindings that also match but lose).
    pub fn trace_json(&self) -> serde_json::Value {
        serde_json::json!({
            "tiers": serde_json::to_value(&self.tiers).unwrap_or_default(),
            "shadowed": self.shadowed.iter().map(|(t, i)| serde_json::json!({"matchedBy": t, "index": i})).collect::<Vec<_>>(),
        })
    }
}

impl RouteTable {
    /// Routes `input` and records why each tier did or did not match.
    pub fn explain(&self, cfg: &Config, input: &RouteInput) -> Explanation {
        let mut rec = Recorder { tiers: Vec::new(), matched: false, shadowed: Vec::new() };
        let result = self.walk(input, &mut rec, true);
        // Tiers with no candidates at all still appear, so the reader sees every step.
        let mut tiers = Vec::new();
        let last = result.as_ref().ok().map(|r| r.matched_by);
        for tier in MatchedBy::TIERS {
            let trace = rec
                .tiers
                .iter()
                .find(|t| t.tier == tier)
                .cloned()
                .unwrap_or(TierTrace { tier, outcome: TierOutcome::Checked { candidates: Vec::new() } });
            tiers.push(trace);
            if Some(tier) == last {
                break;
            }
        }
        let channel = normalize_channel(&input.channel);
        let account = normalize_account_id(input.account_id.as_deref());
        let other_accounts = cfg
            .bindings
            .iter()
            .flatten()
            .enumerate()
            .filter(|(_, b)| b.is_route() && normalize_channel(b.matcher.channel.as_deref().unwrap_or("")) == channel)
            .filter_map(|(i, b)| {
                let pattern = js_trim(b.matcher.account_id.as_deref().unwrap_or("")).to_string();
                let key = if pattern.is_empty() { "default".to_string() } else { pattern.clone() };
                (pattern != "*" && normalize_account_id(Some(&key)) != account).then_some((i, key))
            })
            .collect();
        Explanation { result, tiers, shadowed: rec.shadowed, other_accounts }
    }
}
