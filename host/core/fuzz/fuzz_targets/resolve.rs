//! Arbitrary configs and inputs through `resolve`: never a panic, and every
//! route it returns is well-formed (canonical agent id, keys under that agent).
//!
//! Must not: re-implement routing to compare against; it checks invariants only.
#![no_main]

use arbitrary::Arbitrary;
use chela_core::config::load_str;
use chela_core::ids::normalize_agent_id;
use chela_core::routing::{PeerRef, RouteInput, RouteTable};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Case {
    bindings: Vec<(String, String, Option<String>, Option<(String, String)>, Option<String>, Option<String>, Vec<String>)>,
    agents: Vec<String>,
    inputs: Vec<Input>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    channel: String,
    account: Option<String>,
    peer: Option<(String, String)>,
    parent: Option<(String, String)>,
    guild: Option<String>,
    team: Option<String>,
    roles: Vec<String>,
    default_agent: Option<String>,
}

fuzz_target!(|case: Case| {
    let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let agents: Vec<String> = case.agents.iter().take(8).map(|a| format!("{{id: {}}}", q(a))).collect();
    let bindings: Vec<String> = case
        .bindings
        .iter()
        .take(32)
        .map(|(agent, channel, account, peer, guild, team, roles)| {
            let mut m = vec![format!("channel: {}", q(channel))];
            if let Some(a) = account {
                m.push(format!("accountId: {}", q(a)));
            }
            if let Some((k, id)) = peer {
                m.push(format!("peer: {{kind: {}, id: {}}}", q(k), q(id)));
            }
            if let Some(g) = guild {
                m.push(format!("guildId: {}", q(g)));
            }
            if let Some(t) = team {
                m.push(format!("teamId: {}", q(t)));
            }
            if !roles.is_empty() {
                m.push(format!("roles: [{}]", roles.iter().map(|r| q(r)).collect::<Vec<_>>().join(",")));
            }
            format!("{{agentId: {}, match: {{{}}}}}", q(agent), m.join(", "))
        })
        .collect();
    let list = if agents.is_empty() { String::new() } else { format!("agents: {{list: [{}]}},", agents.join(",")) };
    let text = format!("{{{list} bindings: [{}]}}", bindings.join(","));
    let Ok(loaded) = load_str(&text, None) else { return };
    let table = RouteTable::build(&loaded.config);
    for i in case.inputs.iter().take(16) {
        let input = RouteInput {
            channel: i.channel.clone(),
            account_id: i.account.clone(),
            peer: i.peer.clone().map(|(k, id)| PeerRef::new(k, id)),
            parent_peer: i.parent.clone().map(|(k, id)| PeerRef::new(k, id)),
            guild_id: i.guild.clone(),
            team_id: i.team.clone(),
            member_role_ids: i.roles.clone(),
            default_agent_id: i.default_agent.clone(),
            ..Default::default()
        };
        if let Ok(route) = table.resolve(&input) {
            // Keys belong to the normalised agent id. (OpenClaw's normaliser is not
            // idempotent for ids that truncation leaves ending in `-`; see ids.rs.)
            let prefix = format!("agent:{}:", normalize_agent_id(Some(&route.agent_id)));
            assert!(route.main_session_key.as_str().starts_with(&prefix), "{route:?}");
            assert!(route.session_key.as_str().starts_with(&prefix), "{route:?}");
        }
        let _ = table.explain(&loaded.config, &input);
    }
});
