//! The bindings as routing sees them, for people (`GET /api/v1/bindings`,
//! the control page's Bindings page): the tier each binding sits in, and
//! whether it can ever win — *shadowed* when an earlier binding of the same
//! tier and scope matches every message it matches (the first in source
//! order wins a tier), *dead* when it can never match at all.
//!
//! Must not: decide a route (the table's tiers do) or change the config.

use serde::Serialize;

use super::table::{PeerConstraint, RouteTable};
use super::MatchedBy;
use crate::config::schema::Config;
use crate::ids::{js_trim, normalize_account_id, normalize_agent_id, normalize_channel, ChatType};

/// Whether a binding can win.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum Standing {
    /// It wins the messages it matches.
    Active,
    /// `bindings[by]` wins every message this one matches.
    Shadowed { by: usize },
    /// It can never match: why.
    Dead { why: String },
}

/// One binding of the config, audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingAudit {
    /// Its index in the config's `bindings`.
    pub index: usize,
    pub agent_id: Option<String>,
    /// The tier it is filed under (`None` for a dead one that never is).
    pub tier: Option<MatchedBy>,
    /// `channel`, `accountId` (`*`: every account), `peer`, `guildId`, `teamId`, `roles`, as routing reads them.
    pub scope: serde_json::Value,
    #[serde(flatten)]
    pub standing: Standing,
}

impl RouteTable {
    /// Every binding of `cfg` (which this table was built from), audited.
    pub fn audit(&self, cfg: &Config) -> Vec<BindingAudit> {
        let mut out: Vec<BindingAudit> = Vec::new();
        let mut filed: Vec<Filed> = Vec::new();
        for (index, b) in cfg.bindings.iter().flatten().enumerate() {
            let channel = normalize_channel(b.matcher.channel.as_deref().unwrap_or(""));
            let account_raw = js_trim(b.matcher.account_id.as_deref().unwrap_or(""));
            let account = if account_raw == "*" { "*".to_string() } else { normalize_account_id(Some(account_raw)) };
            let scope = serde_json::json!({
                "channel": channel,
                "accountId": account,
                "peer": b.matcher.peer.as_ref().map(|p| serde_json::json!({
                    "kind": p.kind,
                    "id": p.id.as_ref().map(|v| v.0.clone()),
                })),
                "guildId": b.matcher.guild_id.as_ref().map(|v| v.0.clone()),
                "teamId": b.matcher.team_id.as_ref().map(|v| v.0.clone()),
                "roles": b.matcher.roles,
            });
            let audit = |tier, standing| BindingAudit {
                index,
                agent_id: b.agent_id.clone(),
                tier,
                scope: scope.clone(),
                standing,
            };
            if !b.is_route() {
                out.push(audit(None, Standing::Dead { why: "not a route binding (`type` is not `route`)".into() }));
                continue;
            }
            let Some(compiled) = self.bindings.iter().find(|c| c.source_index == index) else {
                let why = if channel.is_empty() {
                    "`match.channel` is empty".to_string()
                } else {
                    "its peer has an unknown kind or an empty id".to_string()
                };
                out.push(audit(None, Standing::Dead { why }));
                continue;
            };
            let tier = compiled.tier(account == "*");
            if let Some(agent) = &b.agent_id {
                if self.roster.find(&normalize_agent_id(Some(agent))).is_none() {
                    let why = format!("agent `{agent}` is not configured");
                    out.push(audit(Some(tier), Standing::Dead { why }));
                    continue;
                }
            }
            if let Some(why) = undeclared_account(cfg, &channel, &account) {
                out.push(audit(Some(tier), Standing::Dead { why }));
                continue;
            }
            let key = match &compiled.peer {
                PeerConstraint::Exact(kind, id) => format!("{}:{id}", class(*kind)),
                PeerConstraint::Wildcard(kind) => format!("{}:*", class(*kind)),
                PeerConstraint::Any => match (&compiled.guild, &compiled.team) {
                    (Some(g), _) => g.clone(),
                    (None, Some(t)) => t.clone(),
                    (None, None) => String::new(),
                },
            };
            let roles = compiled.roles.clone();
            // An earlier binding with the same key wins whenever this one would
            // (for roles: when it asks for a subset of this one's roles).
            let winner = filed.iter().find(|f| {
                f.channel == channel
                    && f.account == account
                    && f.tier == tier
                    && f.key == key
                    && match (&f.roles, &roles) {
                        (Some(theirs), Some(mine)) => theirs.iter().all(|x| mine.contains(x)),
                        _ => true,
                    }
            });
            let standing = match winner {
                Some(f) => Standing::Shadowed { by: f.index },
                None => Standing::Active,
            };
            filed.push(Filed { channel: channel.clone(), account: account.clone(), tier, key, roles, index });
            out.push(audit(Some(tier), standing));
        }
        out
    }
}

/// Where a binding is filed, for shadowing: its scope, tier and lookup key.
struct Filed {
    channel: String,
    account: String,
    tier: MatchedBy,
    key: String,
    roles: Option<Vec<String>>,
    index: usize,
}

/// Direct chats and rooms are looked up apart (a group and a channel with the same id are one room).
fn class(kind: ChatType) -> &'static str {
    match kind {
        ChatType::Direct => "direct",
        _ => "room",
    }
}

/// Why an account a binding names cannot receive messages: the channel
/// lists its accounts and this one is not among them.
fn undeclared_account(cfg: &Config, channel: &str, account: &str) -> Option<String> {
    if account == "*" {
        return None;
    }
    let section = cfg.channels.as_ref()?.iter().find(|(id, _)| normalize_channel(id) == channel)?.1;
    (!section.declares(account)).then(|| format!("account `{account}` is not declared under `channels.{channel}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audit(text: &str) -> Vec<BindingAudit> {
        let cfg = crate::config::load_str(text, None).expect("loads").config;
        RouteTable::build(&cfg).audit(&cfg)
    }

    #[test]
    fn each_binding_gets_its_tier_and_whether_it_can_win() {
        let a = audit(
            r#"{ agents: { list: [ { id: "home", default: true }, { id: "work" }, { id: "ops" } ] },
            channels: { slack: { accounts: { main: {}, side: {} } } },
            bindings: [
              { agentId: "work", match: { channel: "slack", accountId: "main" } },
              { agentId: "ops",  match: { channel: "slack", accountId: "main" } },
              { agentId: "ops",  match: { channel: "slack", accountId: "main", peer: { kind: "group", id: "C1" } } },
              { agentId: "work", match: { channel: "slack", accountId: "main", peer: { kind: "channel", id: "C1" } } },
              { agentId: "home", match: { channel: "slack", accountId: "*" } },
              { agentId: "home", match: { channel: "slack", accountId: "gone" } },
              { agentId: "ghost", match: { channel: "slack", accountId: "side" } },
              { agentId: "work", match: { channel: "discord", guildId: "G", roles: ["a"] } },
              { agentId: "ops",  match: { channel: "discord", guildId: "G", roles: ["a", "b"] } },
              { agentId: "home", match: { channel: "discord", guildId: "G", roles: ["b"] } },
            ] }"#,
        );
        let tiers: Vec<Option<MatchedBy>> = a.iter().map(|b| b.tier).collect();
        use MatchedBy::*;
        assert_eq!(
            tiers,
            [
                Some(Account),
                Some(Account),
                Some(Peer),
                Some(Peer),
                Some(Channel),
                Some(Account),
                Some(Account),
                Some(GuildRoles),
                Some(GuildRoles),
                Some(GuildRoles)
            ]
        );
        assert_eq!(a[0].standing, Standing::Active);
        assert_eq!(a[1].standing, Standing::Shadowed { by: 0 }, "the first of a tier wins");
        assert_eq!(a[3].standing, Standing::Shadowed { by: 2 }, "a group and a channel with one id are one room");
        assert_eq!(a[4].standing, Standing::Active, "channel-wide: another scope");
        assert!(matches!(&a[5].standing, Standing::Dead { why } if why.contains("`gone`")), "{:?}", a[5]);
        assert!(matches!(&a[6].standing, Standing::Dead { why } if why.contains("`ghost`")), "{:?}", a[6]);
        assert_eq!(a[8].standing, Standing::Shadowed { by: 7 }, "roles [a] match whenever [a, b] do");
        assert_eq!(a[9].standing, Standing::Active, "roles [b] is not covered by [a]");
    }
}
