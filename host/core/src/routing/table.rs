//! The compiled routing snapshot and the tier walk.
//!
//! Each route binding lands in exactly one bucket of one index: the index of
//! its (channel, account) — or the channel's any-account index for
//! `accountId: "*"` — and, inside it, the first bucket that applies (peer,
//! peer wildcard, guild+roles, guild, team, rest). A request consults the
//! account index and the any-account index per tier and takes the candidate
//! earlier in source order, which equals OpenClaw's merged candidate list.
//!
//! Must not: look at access policy or session stores; session keys come from `session_key`'s
//! constructors only.

use std::collections::HashMap;

use indexmap::IndexMap;
use serde_json::Value as Json;

use super::input::NormPeer;
use super::{LastRoutePolicy, MatchedBy, Route, RouteInput, RouteResult};
use crate::config::schema::{BindingSession, Config, DmScope, GroupScope, SandboxMode};
use crate::ids::{
    js_trim, normalize_account_id, normalize_binding_id, normalize_channel, normalize_chat_type, ChatType,
};
use crate::policy::pipeline::{classify_session, sandbox_mode};
use crate::roster::Roster;
use crate::session_key::{key_peer_id, PeerKeyParts, SessionKey};

/// What a binding requires of the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PeerConstraint {
    Any,
    Exact(ChatType, String),
    Wildcard(ChatType),
}

/// One route binding, normalised once when the snapshot loads.
#[derive(Debug, Clone)]
pub(crate) struct CompiledBinding {
    /// Index in the config's `bindings` array.
    pub source_index: usize,
    pub agent_id: Option<String>,
    pub peer: PeerConstraint,
    pub guild: Option<String>,
    pub team: Option<String>,
    pub roles: Option<Vec<String>>,
    pub session: Option<BindingSession>,
}

/// Why a binding that was a candidate did not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    PeerKind { wanted: &'static str },
    PeerId { wanted: String },
    NoPeer,
    Guild { wanted: String },
    Team { wanted: String },
    Roles { wanted: Vec<String> },
}

impl CompiledBinding {
    /// AND semantics: every field the binding sets must match.
    pub(crate) fn check(&self, peer: Option<&NormPeer>, scope: &Scope<'_>) -> Result<(), Mismatch> {
        match &self.peer {
            PeerConstraint::Any => {}
            PeerConstraint::Exact(kind, _) | PeerConstraint::Wildcard(kind) => {
                let Some(p) = peer else {
                    return Err(Mismatch::NoPeer);
                };
                if !p.class.is_some_and(|c| kind.matches(c)) {
                    return Err(Mismatch::PeerKind { wanted: kind.as_str() });
                }
            }
        }
        if let PeerConstraint::Exact(_, id) = &self.peer {
            if peer.is_some_and(|p| &p.id != id) {
                return Err(Mismatch::PeerId { wanted: id.clone() });
            }
        }
        if let Some(g) = &self.guild {
            if g != scope.guild {
                return Err(Mismatch::Guild { wanted: g.clone() });
            }
        }
        if let Some(t) = &self.team {
            if t != scope.team {
                return Err(Mismatch::Team { wanted: t.clone() });
            }
        }
        if let Some(roles) = &self.roles {
            if !roles.iter().any(|r| scope.roles.contains(r)) {
                return Err(Mismatch::Roles { wanted: roles.clone() });
            }
        }
        Ok(())
    }
}

/// The non-peer parts of a request that bindings are checked against.
pub(crate) struct Scope<'a> {
    pub guild: &'a str,
    pub team: &'a str,
    pub roles: &'a [String],
}

/// Tier buckets of one (channel, account) or of a channel's any-account list.
/// Values are positions in `RouteTable::bindings` (ascending = source order).
#[derive(Debug, Default)]
struct TierIndex {
    peer_direct: HashMap<String, Vec<u32>>,
    /// `group` and `channel` peers share a bucket: they match each other.
    peer_room: HashMap<String, Vec<u32>>,
    wildcard: Vec<u32>,
    guild_roles: HashMap<String, Vec<u32>>,
    guild: HashMap<String, Vec<u32>>,
    team: HashMap<String, Vec<u32>>,
    rest: Vec<u32>,
}

impl CompiledBinding {
    /// The tier [`TierIndex::insert`] files it under (`any_account`: in the
    /// channel's any-account index, where the last tier is `Channel`).
    pub(crate) fn tier(&self, any_account: bool) -> MatchedBy {
        match &self.peer {
            PeerConstraint::Exact(..) => MatchedBy::Peer,
            PeerConstraint::Wildcard(_) => MatchedBy::PeerWildcard,
            PeerConstraint::Any => match (&self.guild, &self.roles, &self.team) {
                (Some(_), Some(_), _) => MatchedBy::GuildRoles,
                (Some(_), None, _) => MatchedBy::Guild,
                (None, _, Some(_)) => MatchedBy::Team,
                (None, _, None) if any_account => MatchedBy::Channel,
                (None, _, None) => MatchedBy::Account,
            },
        }
    }
}

impl TierIndex {
    fn insert(&mut self, pos: u32, b: &CompiledBinding) {
        let push = |map: &mut HashMap<String, Vec<u32>>, key: &str| map.entry(key.to_string()).or_default().push(pos);
        match &b.peer {
            PeerConstraint::Exact(ChatType::Direct, id) => push(&mut self.peer_direct, id),
            PeerConstraint::Exact(_, id) => push(&mut self.peer_room, id),
            PeerConstraint::Wildcard(_) => self.wildcard.push(pos),
            PeerConstraint::Any => match (&b.guild, &b.roles, &b.team) {
                (Some(g), Some(_), _) => push(&mut self.guild_roles, g),
                (Some(g), None, _) => push(&mut self.guild, g),
                (None, _, Some(t)) => push(&mut self.team, t),
                (None, _, None) => self.rest.push(pos),
            },
        }
    }

    /// Every position, in no particular order.
    fn all(&self) -> impl Iterator<Item = u32> + '_ {
        let maps = [&self.peer_direct, &self.peer_room, &self.guild_roles, &self.guild, &self.team];
        maps.into_iter()
            .flat_map(|m| m.values().flatten().copied())
            .chain(self.wildcard.iter().copied())
            .chain(self.rest.iter().copied())
    }

    /// Candidates of one tier, in source order.
    fn candidates(&self, tier: MatchedBy, peer: Option<&NormPeer>, scope: &Scope<'_>) -> &[u32] {
        let by_id = |p: &NormPeer| -> &[u32] {
            let map = match p.class {
                Some(ChatType::Direct) => &self.peer_direct,
                Some(_) => &self.peer_room,
                None => return &[],
            };
            map.get(p.id.as_str()).map(Vec::as_slice).unwrap_or(&[])
        };
        match tier {
            MatchedBy::Peer | MatchedBy::ParentPeer => peer.map(by_id).unwrap_or(&[]),
            MatchedBy::PeerWildcard => &self.wildcard,
            MatchedBy::GuildRoles => self.guild_roles.get(scope.guild).map(Vec::as_slice).unwrap_or(&[]),
            MatchedBy::Guild => self.guild.get(scope.guild).map(Vec::as_slice).unwrap_or(&[]),
            MatchedBy::Team => self.team.get(scope.team).map(Vec::as_slice).unwrap_or(&[]),
            MatchedBy::Account | MatchedBy::Channel => &self.rest,
            MatchedBy::Default | MatchedBy::Broadcast => &[],
        }
    }
}

#[derive(Debug, Default)]
struct ChannelIndex {
    by_account: HashMap<String, TierIndex>,
    any_account: TierIndex,
}

/// Session settings routing needs from `session.*`.
#[derive(Debug, Clone, Default)]
struct SessionDefaults {
    dm_scope: DmScope,
    group_scope: GroupScope,
    main_key: Option<String>,
    identity_links: Option<IndexMap<String, Json>>,
}

/// Observer of the tier walk (`explain` records; `resolve` uses the no-op).
pub(crate) trait Trace {
    fn tier_skipped(&mut self, _tier: MatchedBy, _why: &'static str) {}
    fn candidate(&mut self, _tier: MatchedBy, _binding: &CompiledBinding, _verdict: Result<(), Mismatch>) {}
}

pub(crate) struct NoTrace;
impl Trace for NoTrace {}

/// A config snapshot compiled for routing. Immutable; rebuild on reload.
#[derive(Debug)]
/// The message's channel, account and peer after normalisation.
struct Normalized {
    channel: String,
    account: String,
    peer: Option<NormPeer>,
}

pub struct RouteTable {
    pub(crate) roster: Roster,
    pub(crate) bindings: Vec<CompiledBinding>,
    channels: HashMap<String, ChannelIndex>,
    session: SessionDefaults,
    /// `broadcast`: peer id → agents (unknown agents dropped at build).
    broadcast: HashMap<String, Vec<String>>,
    broadcast_sequential: bool,
    /// Each known agent's `sandbox.mode` (decides a non-main session's kind).
    sandbox: HashMap<String, SandboxMode>,
}

impl RouteTable {
    pub fn build(cfg: &Config) -> RouteTable {
        let mut bindings = Vec::new();
        let mut channels: HashMap<String, ChannelIndex> = HashMap::new();
        for (source_index, b) in cfg.bindings.iter().flatten().enumerate() {
            if !b.is_route() {
                continue;
            }
            let channel = normalize_channel(b.matcher.channel.as_deref().unwrap_or(""));
            if channel.is_empty() {
                continue;
            }
            let peer = match &b.matcher.peer {
                None => PeerConstraint::Any,
                Some(p) => {
                    let kind = normalize_chat_type(p.kind.as_deref().unwrap_or(""));
                    let id = normalize_binding_id(p.id.as_ref().map(|v| v.0.as_str()).unwrap_or(""));
                    match kind {
                        // A peer that can never match drops the binding (validation reports it).
                        None => continue,
                        Some(_) if id.is_empty() => continue,
                        Some(k) if id == "*" => PeerConstraint::Wildcard(k),
                        Some(k) => PeerConstraint::Exact(k, id),
                    }
                }
            };
            let non_empty = |v: &Option<crate::config::schema::IdValue>| {
                v.as_ref().map(|v| normalize_binding_id(&v.0)).filter(|s| !s.is_empty())
            };
            let compiled = CompiledBinding {
                source_index,
                agent_id: b.agent_id.clone(),
                peer,
                guild: non_empty(&b.matcher.guild_id),
                team: non_empty(&b.matcher.team_id),
                roles: b.matcher.roles.clone().filter(|r| !r.is_empty()),
                session: b.session.clone(),
            };
            let pos = u32::try_from(bindings.len()).unwrap_or(u32::MAX);
            let account = js_trim(b.matcher.account_id.as_deref().unwrap_or(""));
            let index = channels.entry(channel).or_default();
            let tiers = if account == "*" {
                &mut index.any_account
            } else {
                index.by_account.entry(normalize_account_id(Some(account))).or_default()
            };
            tiers.insert(pos, &compiled);
            bindings.push(compiled);
        }
        let s = cfg.session.as_ref();
        let session = SessionDefaults {
            dm_scope: s.and_then(|s| s.dm_scope).unwrap_or_default(),
            group_scope: s.and_then(|s| s.group_scope).unwrap_or_default(),
            main_key: s.and_then(|s| s.main_key.clone()),
            identity_links: s.and_then(|s| s.identity_links.clone()),
        };
        let roster = Roster::from_config(cfg);
        let bc = cfg.broadcast.as_ref();
        let broadcast = bc
            .map(|b| {
                b.groups
                    .iter()
                    .map(|(peer, agents)| {
                        let known = agents
                            .iter()
                            .map(|a| crate::ids::normalize_agent_id(Some(a)))
                            .filter(|a| roster.find(a).is_some())
                            .collect();
                        (peer.trim().to_string(), known)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let broadcast_sequential = bc.and_then(|b| b.strategy.as_deref()) == Some("sequential");
        let sandbox = roster.ids().into_iter().map(|a| (a.clone(), sandbox_mode(cfg, &a))).collect();
        RouteTable { roster, bindings, channels, session, broadcast, broadcast_sequential, sandbox }
    }

    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// The bindings that can match a message on `channel`/`account` (its own
    /// account's and the channel's any-account ones), and whether one of them
    /// matches every message there (no peer, guild, team or role constraint).
    pub(crate) fn bindings_on_account(&self, channel: &str, account: &str) -> (Vec<&CompiledBinding>, bool) {
        let Some(index) = self.channels.get(&normalize_channel(channel)) else { return (Vec::new(), false) };
        let own = index.by_account.get(&normalize_account_id(Some(account)));
        let positions: Vec<u32> =
            own.into_iter().chain(std::iter::once(&index.any_account)).flat_map(TierIndex::all).collect();
        let unconstrained = own.is_some_and(|t| !t.rest.is_empty()) || !index.any_account.rest.is_empty();
        let found = positions.into_iter().filter_map(|p| self.bindings.get(p as usize)).collect();
        (found, unconstrained)
    }

    /// Every agent of the `broadcast` groups.
    pub(crate) fn broadcast_agents(&self) -> impl Iterator<Item = &String> {
        self.broadcast.values().flatten()
    }

    /// Routes one message.
    pub fn resolve(&self, input: &RouteInput) -> RouteResult {
        self.walk(input, &mut NoTrace, false)
    }

    /// The tier walk. With `exhaustive`, every candidate of every tier is
    /// checked and traced (for `explain`); the first match still decides.
    pub(crate) fn walk<T: Trace>(&self, input: &RouteInput, trace: &mut T, exhaustive: bool) -> RouteResult {
        let channel = normalize_channel(&input.channel);
        let account = normalize_account_id(input.account_id.as_deref());
        let peer = input.peer.as_ref().map(NormPeer::from);
        let parent = input.parent_peer.as_ref().map(NormPeer::from).filter(|p| !p.id.is_empty());
        let guild = input.guild_id.as_deref().map(normalize_binding_id).unwrap_or_default();
        let team = input.team_id.as_deref().map(normalize_binding_id).unwrap_or_default();
        let scope = Scope { guild: &guild, team: &team, roles: &input.member_role_ids };
        let index = self.channels.get(&channel);
        let lists = (index.and_then(|i| i.by_account.get(&account)), index.map(|i| &i.any_account));

        let mut matched = None;
        for tier in MatchedBy::TIERS {
            let subject = match tier_subject(tier, peer.as_ref(), parent.as_ref(), &scope) {
                Ok(subject) => subject,
                Err(why) => {
                    trace.tier_skipped(tier, why);
                    continue;
                }
            };
            if let Some(pos) = self.tier_match(tier, subject, &scope, lists, trace, exhaustive) {
                matched = matched.or(Some((tier, &self.bindings[pos as usize])));
                if !exhaustive {
                    break;
                }
            }
        }

        let (matched_by, binding, agent_id) = match matched {
            Some((tier, b)) => (tier, Some(b), self.roster.pick(b.agent_id.as_deref())?),
            None => (
                MatchedBy::Default,
                None,
                self.roster.default_owner(input.default_agent_id.as_deref(), &channel, &account)?,
            ),
        };
        let norm = Normalized { channel, account, peer };
        Ok(self.route_for(input, &norm, agent_id, matched_by, binding))
    }

    /// The first binding of `tier` that matches: account-specific and
    /// any-account candidates merged by source order (the account tier looks
    /// at the account's list only, the channel tier at the any-account list only).
    fn tier_match<T: Trace>(
        &self,
        tier: MatchedBy,
        subject: Option<&NormPeer>,
        scope: &Scope<'_>,
        (account_list, any_list): (Option<&TierIndex>, Option<&TierIndex>),
        trace: &mut T,
        exhaustive: bool,
    ) -> Option<u32> {
        let mut first = |tiers: Option<&TierIndex>| -> Option<u32> {
            let mut found = None;
            for &pos in tiers?.candidates(tier, subject, scope) {
                let b = &self.bindings[pos as usize];
                let verdict = b.check(subject, scope);
                let ok = verdict.is_ok();
                trace.candidate(tier, b, verdict);
                if ok && found.is_none() {
                    found = Some(pos);
                    if !exhaustive {
                        break;
                    }
                }
            }
            found
        };
        match tier {
            MatchedBy::Account => first(account_list),
            MatchedBy::Channel => first(any_list),
            _ => {
                let a = first(account_list);
                let b = first(any_list);
                match (a, b) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        }
    }

    /// The route of `input` for `agent_id`: scopes from the binding (if any),
    /// the caller, or `session.*`; the session key built for that agent.
    fn route_for(
        &self,
        input: &RouteInput,
        norm: &Normalized,
        agent_id: String,
        matched_by: MatchedBy,
        binding: Option<&CompiledBinding>,
    ) -> Route {
        let Normalized { channel, account, peer } = norm;
        let bs = binding.and_then(|b| b.session.as_ref());
        let dm_scope = bs.and_then(|s| s.dm_scope).or(input.dm_scope).unwrap_or(self.session.dm_scope);
        let group_scope = bs.and_then(|s| s.group_scope).or(input.group_scope).unwrap_or(self.session.group_scope);
        let main_key = self.session.main_key.as_deref();
        let main_session_key = SessionKey::main(&agent_id, main_key);
        let base = match &peer {
            None => main_session_key.clone(),
            Some(p) => SessionKey::peer(&PeerKeyParts {
                agent_id: &agent_id,
                channel,
                account_id: Some(account),
                peer_kind: Some(&p.key_kind),
                peer_id: &p.id,
                dm_scope,
                group_scope,
                identity_links: self.session.identity_links.as_ref(),
                main_key,
            }),
        };
        let thread_id = input.thread_id.as_deref().map(js_trim).filter(|t| !t.is_empty()).map(str::to_string);
        let session_key = base.with_thread(thread_id.as_deref());
        let last_route_policy =
            if session_key == main_session_key { LastRoutePolicy::Main } else { LastRoutePolicy::Session };
        let chat_type = peer.as_ref().and_then(|p| p.class).unwrap_or(ChatType::Direct);
        let group_id = match &peer {
            Some(p) if chat_type != ChatType::Direct => Some(key_peer_id(channel, &p.key_kind, &p.id)),
            _ => None,
        };
        let mode = self.sandbox.get(&agent_id).copied().unwrap_or_default();
        let session_kind = classify_session(
            session_key == main_session_key,
            false,
            group_id.as_deref().map(|g| (channel.as_str(), g)),
            mode,
        );
        Route {
            agent_id,
            channel: channel.clone(),
            account_id: account.clone(),
            dm_scope,
            group_scope,
            session_key,
            main_session_key,
            last_route_policy,
            matched_by,
            chat_type,
            thread_id,
            session_kind,
            binding_index: binding.map(|b| b.source_index),
        }
    }

    /// A broadcast group for the message's peer (reference §8): every listed
    /// agent, each with its own session key, instead of bindings; `None` when
    /// the peer is not a broadcast group. The flag says whether to run them
    /// one after another (`strategy: "sequential"`) or in parallel (default).
    /// Callers go through [`RouteTable::dispatch`], which decides precedence.
    pub(crate) fn broadcast(&self, input: &RouteInput) -> Option<(Vec<Route>, bool)> {
        let peer = input.peer.as_ref()?;
        let agents = self.broadcast.get(peer.id.trim())?;
        let norm = Normalized {
            channel: normalize_channel(&input.channel),
            account: normalize_account_id(input.account_id.as_deref()),
            peer: Some(NormPeer::from(peer)),
        };
        let routes =
            agents.iter().map(|a| self.route_for(input, &norm, a.clone(), MatchedBy::Broadcast, None)).collect();
        Some((routes, self.broadcast_sequential))
    }
}

/// The peer a tier matches against (the parent peer for `ParentPeer`), or
/// why the tier cannot match this message at all.
fn tier_subject<'p>(
    tier: MatchedBy,
    peer: Option<&'p NormPeer>,
    parent: Option<&'p NormPeer>,
    scope: &Scope<'_>,
) -> Result<Option<&'p NormPeer>, &'static str> {
    match tier {
        MatchedBy::Peer | MatchedBy::PeerWildcard if peer.is_none() => Err("the message has no peer"),
        MatchedBy::ParentPeer if parent.is_none() => Err("the message has no parent peer"),
        MatchedBy::GuildRoles if scope.guild.is_empty() || scope.roles.is_empty() => {
            Err("the message has no guild id or no member roles")
        }
        MatchedBy::Guild if scope.guild.is_empty() => Err("the message has no guild id"),
        MatchedBy::Team if scope.team.is_empty() => Err("the message has no team id"),
        MatchedBy::ParentPeer => Ok(parent),
        _ => Ok(peer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use crate::routing::PeerRef;

    #[test]
    fn broadcast_groups_fan_out_with_each_agents_own_session() {
        let cfg = load_str(
            r#"{agents: {list: [{id: "alfred", default: true}, {id: "baerbel"}]},
                bindings: [{agentId: "alfred", match: {channel: "whatsapp"}}],
                broadcast: {strategy: "sequential", "120363@g.us": ["alfred", "baerbel", "ghost"]}}"#,
            None,
        )
        .unwrap()
        .config;
        let table = RouteTable::build(&cfg);
        let input = |peer: &str| RouteInput {
            channel: "whatsapp".into(),
            peer: Some(PeerRef::new("group", peer)),
            ..RouteInput::default()
        };
        let (routes, sequential) = table.broadcast(&input("120363@g.us")).expect("a broadcast group");
        assert!(sequential);
        let keys: Vec<(&str, &str)> = routes.iter().map(|r| (r.agent_id.as_str(), r.session_key.as_str())).collect();
        assert_eq!(
            keys,
            [
                ("alfred", "agent:alfred:whatsapp:group:120363@g.us"),
                ("baerbel", "agent:baerbel:whatsapp:group:120363@g.us")
            ],
            "unknown agents are skipped"
        );
        assert!(routes.iter().all(|r| r.matched_by == MatchedBy::Broadcast));
        assert!(table.broadcast(&input("other@g.us")).is_none());
        assert_eq!(table.resolve(&input("other@g.us")).unwrap().matched_by, MatchedBy::Account);
    }
}
