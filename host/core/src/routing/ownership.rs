//! Which agents an account speaks for: the agents its messages can be routed
//! to (a binding that can match on the account or channel-wide, a
//! `broadcast` group, or, where no binding catches everything, the agent
//! that answers unmatched messages). An agent sends through an account only
//! when it is one of them, so no agent speaks as another agent's bot
//! (reported against OpenClaw: any agent could send through any account).
//!
//! Must not: route a message (`table.rs` does) or decide who may run a
//! command; it answers only "whose account is this?".

use super::RouteTable;

impl RouteTable {
    /// The agents (canonical ids, config order, no duplicates) a message on
    /// `channel`/`account` can reach.
    pub fn agents_on_account(&self, channel: &str, account: &str) -> Vec<String> {
        let (bindings, catches_all) = self.bindings_on_account(channel, account);
        let mut bindings = bindings;
        bindings.sort_by_key(|b| b.source_index);
        let mut out: Vec<String> = Vec::new();
        let mut add = |id: String| {
            if !out.contains(&id) {
                out.push(id);
            }
        };
        for b in bindings {
            if let Ok(id) = self.roster.pick(b.agent_id.as_deref()) {
                add(id);
            }
        }
        if !catches_all {
            if let Ok(id) = self.roster.default_owner(None, channel, account) {
                add(id);
            }
        }
        for id in self.broadcast_agents() {
            add(id.clone());
        }
        out
    }

    /// Whether `agent_id` may send through `channel`/`account`.
    pub fn speaks_for(&self, agent_id: &str, channel: &str, account: &str) -> bool {
        let agent = crate::ids::normalize_agent_id(Some(agent_id));
        self.agents_on_account(channel, account).contains(&agent)
    }

    /// [`RouteTable::speaks_for`], with the refusal said as a user reads it
    /// (whose account it is) when it does not.
    pub fn may_speak_through(&self, agent_id: &str, channel: &str, account: &str) -> Result<(), String> {
        if self.speaks_for(agent_id, channel, account) {
            return Ok(());
        }
        let agent = crate::ids::normalize_agent_id(Some(agent_id));
        let owners = self.agents_on_account(channel, account);
        let owners = if owners.is_empty() { "no agent".to_string() } else { owners.join(", ") };
        Err(format!("account `{account}` of `{channel}` speaks for {owners}, not `{agent}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> RouteTable {
        RouteTable::build(&crate::config::load_str(text, None).unwrap().config)
    }

    #[test]
    fn an_account_speaks_for_the_agents_it_routes_to() {
        let t = table(
            r#"{ agents: { list: [ { id: "home", default: true }, { id: "work" }, { id: "ops" } ] },
                 bindings: [
                   { agentId: "work", match: { channel: "telegram", accountId: "work-bot" } },
                   { agentId: "ops", match: { channel: "telegram", accountId: "home-bot", peer: { kind: "direct", id: "42" } } } ] }"#,
        );
        assert_eq!(t.agents_on_account("telegram", "work-bot"), ["work"], "its binding catches everything there");
        assert_eq!(t.agents_on_account("telegram", "home-bot"), ["ops", "home"], "a peer binding, then the default");
        assert!(!t.speaks_for("work", "telegram", "home-bot"));
        assert_eq!(
            t.may_speak_through("work", "telegram", "home-bot").unwrap_err(),
            "account `home-bot` of `telegram` speaks for ops, home, not `work`"
        );
        assert!(t.may_speak_through("Work", "telegram", "work-bot").is_ok(), "ids compare canonically");
        assert!(t.speaks_for("home", "slack", "default"), "unbound accounts answer the default agent");
        let single = table("{}");
        assert!(single.speaks_for("main", "whatsapp", "anything"), "single-agent mode: main owns every account");
    }
}
