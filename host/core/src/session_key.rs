//! Session keys: which conversation a message belongs to (reference spec §4).
//!
//! `agent:<agentId>:<mainKey>` is an agent's main session; DMs, groups,
//! channels and threads get their own keys depending on `dmScope` and
//! `groupScope`. Keys are lowercased for stable comparison, except opaque
//! case-sensitive room ids (Signal groups, Matrix rooms). Legacy `dm` keys
//! are read as direct chats; new keys are written with `direct`.
//!
//! Must not: be bypassed: no other module formats or sniffs a key (`format!("agent:…")`, substring
//! checks).

use indexmap::IndexMap;
use serde_json::Value as Json;

use crate::config::schema::{DmScope, GroupScope};
use crate::ids::{js_trim, normalize_account_id, normalize_agent_id, normalize_main_key, ChatType};

/// A session key, built only by this module's constructors (or read back
/// from storage with [`SessionKey::parse`]): nobody outside core formats or
/// takes one apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct SessionKey(String);

impl SessionKey {
    /// `agent:<id>:<mainKey>`: an agent's main session.
    pub fn main(agent_id: &str, main_key: Option<&str>) -> SessionKey {
        SessionKey(build_main_session_key(agent_id, main_key))
    }

    /// The session of a message from a peer (dmScope/groupScope applied).
    pub fn peer(parts: &PeerKeyParts<'_>) -> SessionKey {
        SessionKey(build_peer_session_key(parts))
    }

    /// This key's thread session (`:thread:<id>`); itself without a thread.
    pub fn with_thread(&self, thread_id: Option<&str>) -> SessionKey {
        SessionKey(build_thread_session_key(&self.0, thread_id, true))
    }

    /// A sub-agent's session `agent:<id>:subagent:<run id>`.
    pub fn subagent(agent_id: &str, run_id: &str) -> SessionKey {
        let run: String = run_id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        SessionKey(format!("agent:{}:subagent:{}", normalize_agent_id(Some(agent_id)), run.to_lowercase()))
    }

    /// A scheduled job's own session `agent:<id>:cron:<job id>` (an
    /// `isolated` job's, or an isolated heartbeat's): background, minimal prompt.
    pub fn cron(agent_id: &str, job_id: &str) -> SessionKey {
        let job: String = job_id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
        SessionKey(format!("agent:{}:cron:{}", normalize_agent_id(Some(agent_id)), job.to_lowercase()))
    }

    /// The session of an OpenAI-compatible API request ([`build_api_session_key`]).
    pub fn api(agent_id: &str, caller: ApiCaller<'_>) -> SessionKey {
        SessionKey(build_api_session_key(agent_id, caller))
    }

    /// The key chela keeps an OpenClaw 2026.9.6 session of `agent_id` under
    /// (`chela migrate openclaw`): OpenClaw's OpenAI-endpoint sessions
    /// (`agent:<id>:openai-user:<user>`) become chela's ([`build_api_session_key`]);
    /// channel, main and other keys are the same in both. `None` for a key
    /// that is not `agent_id`'s.
    pub fn from_openclaw(agent_id: &str, raw: &str) -> Option<SessionKey> {
        let parsed = parse_agent_session_key(raw)?;
        if parsed.agent_id != normalize_agent_id(Some(agent_id)) {
            return None;
        }
        match parsed.rest.strip_prefix("openai-user:") {
            Some(user) => Some(SessionKey::api(agent_id, ApiCaller::User(user))),
            None => SessionKey::parse(raw),
        }
    }

    /// A key a control-API caller names (maybe short, like `main`), as stored
    /// for `agent_id` ([`to_agent_store_session_key`]).
    pub fn requested(agent_id: &str, request_key: Option<&str>, main_key: Option<&str>) -> SessionKey {
        SessionKey(to_agent_store_session_key(agent_id, request_key, main_key))
    }

    /// An agent session key read back (from a store, a tool argument, a
    /// request): normalized, or `None` when it is not `agent:<id>:<rest>`.
    pub fn parse(raw: &str) -> Option<SessionKey> {
        let p = parse_agent_session_key(raw)?;
        Some(SessionKey(format!("agent:{}:{}", p.agent_id, p.rest)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The agent the session belongs to.
    pub fn agent_id(&self) -> String {
        parse_agent_session_key(&self.0).map(|p| p.agent_id).unwrap_or_default()
    }

    /// A sub-agent's session (`sessions_spawn`).
    pub fn is_subagent(&self) -> bool {
        parse_agent_session_key(&self.0).is_some_and(|p| p.rest.starts_with("subagent:"))
    }

    /// Sessions that get the minimal prompt: sub-agents and cron runs.
    pub fn is_background(&self) -> bool {
        self.0.contains(":subagent:") || self.0.contains(":cron:")
    }
}

impl std::fmt::Display for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SessionKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for SessionKey {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for SessionKey {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// `agent:<id>:<mainKey>`.
pub fn build_main_session_key(agent_id: &str, main_key: Option<&str>) -> String {
    format!("agent:{}:{}", normalize_agent_id(Some(agent_id)), normalize_main_key(main_key))
}

/// Who an OpenAI-compatible API request says it is, for its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiCaller<'a> {
    /// An explicit session header (`x-chela-session-key`, `x-openclaw-session-key`).
    Session(&'a str),
    /// The request's `user` field: one stable conversation per user.
    User(&'a str),
    /// Neither: a session of this request alone (stateless, as OpenClaw), named by a fresh id.
    Request(&'a str),
}

/// The session of an API request, always inside the endpoint's own
/// namespace `agent:<id>:openai:…`: whatever the caller sends, it can never
/// name a channel conversation or a main, sub-agent, cron or thread session
/// (separators in the value are replaced, so no marker can be smuggled in).
pub fn build_api_session_key(agent_id: &str, caller: ApiCaller<'_>) -> String {
    let clean = |v: &str| -> String {
        let v: String = js_trim(v)
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "-_.@".contains(c) { c } else { '-' })
            .take(128)
            .collect();
        if v.is_empty() {
            "anonymous".into()
        } else {
            v
        }
    };
    let agent = normalize_agent_id(Some(agent_id));
    match caller {
        ApiCaller::Session(v) => format!("agent:{agent}:openai:{}", clean(v)),
        ApiCaller::User(u) => format!("agent:{agent}:openai:direct:{}", clean(u)),
        ApiCaller::Request(id) => format!("agent:{agent}:openai:request-{}", clean(id)),
    }
}

/// Whether a session an API caller names uses a namespace OpenClaw keeps for
/// the gateway's own runs (`subagent:`, `cron:`, `acp:`, at the start or
/// after `agent:<id>:`). Such names are refused as OpenClaw refuses them;
/// [`build_api_session_key`] could not reach those sessions anyway.
pub fn is_reserved_api_session(raw: &str) -> bool {
    let lowered = js_trim(raw).to_lowercase();
    let rest = parse_agent_session_key(&lowered).map_or(lowered, |p| p.rest);
    ["subagent:", "cron:", "acp:"].iter().any(|ns| rest.starts_with(ns))
}

/// What a peer session key is built from.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerKeyParts<'a> {
    pub agent_id: &'a str,
    pub channel: &'a str,
    pub account_id: Option<&'a str>,
    /// Runtime peer kind as given; missing or `direct` means a direct message.
    pub peer_kind: Option<&'a str>,
    pub peer_id: &'a str,
    pub dm_scope: DmScope,
    pub group_scope: GroupScope,
    pub identity_links: Option<&'a IndexMap<String, Json>>,
    pub main_key: Option<&'a str>,
}

fn channel_or_unknown(channel: &str) -> String {
    let ch = js_trim(channel).to_lowercase();
    if ch.is_empty() {
        "unknown".into()
    } else {
        ch
    }
}

/// Whether an id keeps its case in keys (opaque, case-sensitive room ids).
fn preserves_case(channel: &str, kind: &str, id: &str) -> bool {
    match (channel, kind) {
        ("signal", "group") => !id.contains(':'),
        ("matrix", "group" | "channel") => true,
        _ => false,
    }
}

/// The peer id as written into keys: `unknown` when blank, case kept for
/// opaque room ids, else lowercased.
pub(crate) fn key_peer_id(channel: &str, kind: &str, id: &str) -> String {
    let id = js_trim(id);
    if id.is_empty() {
        "unknown".to_string()
    } else if preserves_case(channel, kind, id) {
        id.to_string()
    } else {
        id.to_lowercase()
    }
}

/// The canonical name an identity link gives this DM peer, if any (§4.4).
pub fn resolve_linked_peer_id(links: Option<&IndexMap<String, Json>>, channel: &str, peer_id: &str) -> Option<String> {
    let links = links?;
    let peer = js_trim(peer_id);
    if peer.is_empty() {
        return None;
    }
    let bare = peer.to_lowercase();
    let scoped = js_trim(&format!("{}:{}", js_trim(channel).to_lowercase(), peer_id)).to_lowercase();
    for (canonical, ids) in links {
        let name = js_trim(canonical);
        if name.is_empty() {
            continue;
        }
        let Some(ids) = ids.as_array() else { continue };
        for id in ids {
            let Some(id) = id.as_str() else { continue };
            let id = js_trim(id).to_lowercase();
            if id == bare || id == scoped {
                return Some(name.to_string());
            }
        }
    }
    None
}

/// The session key of a message from a peer (direct, group or channel).
pub fn build_peer_session_key(parts: &PeerKeyParts<'_>) -> String {
    let agent = normalize_agent_id(Some(parts.agent_id));
    let main = || build_main_session_key(parts.agent_id, parts.main_key);
    let ch = channel_or_unknown(parts.channel);
    let is_direct = parts.peer_kind.is_none_or(|k| js_trim(k).eq_ignore_ascii_case("direct"));
    if is_direct {
        if parts.dm_scope == DmScope::Main {
            return main();
        }
        let mut peer = js_trim(parts.peer_id).to_string();
        if let Some(linked) = resolve_linked_peer_id(parts.identity_links, parts.channel, &peer) {
            peer = linked;
        }
        let peer = match peer.to_lowercase() {
            p if p.is_empty() => "unknown".to_string(),
            p => p,
        };
        return match parts.dm_scope {
            DmScope::Main => main(),
            DmScope::PerPeer => format!("agent:{agent}:direct:{peer}"),
            DmScope::PerChannelPeer => format!("agent:{agent}:{ch}:direct:{peer}"),
            DmScope::PerAccountChannelPeer => {
                format!("agent:{agent}:{ch}:{}:direct:{peer}", normalize_account_id(parts.account_id))
            }
        };
    }
    if parts.group_scope == GroupScope::Main {
        return main();
    }
    let kind = js_trim(parts.peer_kind.unwrap_or("")).to_lowercase();
    format!("agent:{agent}:{ch}:{kind}:{}", key_peer_id(&ch, &kind, parts.peer_id))
}

/// Appends `:thread:<id>` to a base key (when `use_suffix` and the id is not blank).
pub fn build_thread_session_key(base: &str, thread_id: Option<&str>, use_suffix: bool) -> String {
    match thread_id.map(js_trim) {
        Some(t) if !t.is_empty() && use_suffix => format!("{base}:thread:{}", t.to_lowercase()),
        _ => base.to_string(),
    }
}

/// The key under which a group's recent messages are buffered.
pub fn build_group_history_key(channel: &str, account_id: Option<&str>, peer_kind: &str, peer_id: &str) -> String {
    let ch = channel_or_unknown(channel);
    let kind = js_trim(peer_kind).to_lowercase();
    format!("{ch}:{}:{kind}:{}", normalize_account_id(account_id), key_peer_id(&ch, &kind, peer_id))
}

/// An agent session key split into the agent id and the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSessionKey {
    pub agent_id: String,
    pub rest: String,
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.is_char_boundary(prefix.len()) && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Lowercases the part after `agent:<id>:`, keeping Signal group and Matrix room ids.
fn normalize_rest(rest: &str) -> String {
    if starts_with_ignore_case(rest, "signal:group:") {
        let tail = &rest["signal:group:".len()..];
        let (id, after) = match tail.find(':') {
            Some(i) => (&tail[..i], &tail[i..]),
            None => (tail, ""),
        };
        return format!("signal:group:{id}{}", after.to_lowercase());
    }
    for prefix in ["matrix:channel:", "matrix:group:"] {
        if starts_with_ignore_case(rest, prefix) {
            let tail = &rest[prefix.len()..];
            return format!("{prefix}{}", lowercase_thread_markers(tail));
        }
    }
    rest.to_lowercase()
}

fn lowercase_thread_markers(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if starts_with_ignore_case(&s[i..], ":thread:") {
            out.push_str(":thread:");
            i += ":thread:".len();
        } else {
            let c = s[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `agent:<id>:<rest>` → parts; `None` for anything else (empty segments around the id included).
pub fn parse_agent_session_key(key: &str) -> Option<ParsedSessionKey> {
    let raw = js_trim(key);
    if !starts_with_ignore_case(raw, "agent:") {
        return None;
    }
    let after = &raw["agent:".len()..];
    let colon = after.find(':')?;
    let (agent, rest) = (&after[..colon], &after[colon + 1..]);
    if agent.is_empty() || rest.is_empty() || rest.starts_with(':') {
        return None;
    }
    Some(ParsedSessionKey { agent_id: agent.to_lowercase(), rest: normalize_rest(rest) })
}

/// The broad shape of a stored key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyShape {
    Missing,
    Agent,
    MalformedAgent,
    LegacyOrAlias,
}

pub fn classify_session_key_shape(key: Option<&str>) -> KeyShape {
    let raw = js_trim(key.unwrap_or(""));
    if raw.is_empty() {
        KeyShape::Missing
    } else if parse_agent_session_key(raw).is_some() {
        KeyShape::Agent
    } else if starts_with_ignore_case(raw, "agent:") {
        KeyShape::MalformedAgent
    } else {
        KeyShape::LegacyOrAlias
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionKeyError {
    #[error("Session key does not contain an agent id; resolve it with the configured default agent.")]
    NoAgentId,
    #[error("Malformed agent session key; refusing default-agent resolution.")]
    Malformed,
}

/// The agent a key belongs to; a key without one needs an explicit default.
pub fn resolve_agent_id_from_session_key(
    key: Option<&str>,
    default_agent: Option<&str>,
) -> Result<String, SessionKeyError> {
    let raw = js_trim(key.unwrap_or(""));
    if let Some(parsed) = parse_agent_session_key(raw) {
        return Ok(normalize_agent_id(Some(&parsed.agent_id)));
    }
    if starts_with_ignore_case(raw, "agent:") {
        return Err(SessionKeyError::Malformed);
    }
    match default_agent.map(js_trim) {
        Some(d) if !d.is_empty() => Ok(normalize_agent_id(Some(d))),
        _ => Err(SessionKeyError::NoAgentId),
    }
}

/// A key from a request (maybe short, like `main`) → the key stored for `agent_id`.
pub fn to_agent_store_session_key(agent_id: &str, request_key: Option<&str>, main_key: Option<&str>) -> String {
    let raw = js_trim(request_key.unwrap_or(""));
    if raw.is_empty() || raw.eq_ignore_ascii_case(crate::ids::DEFAULT_MAIN_KEY) {
        return build_main_session_key(agent_id, main_key);
    }
    if let Some(parsed) = parse_agent_session_key(raw) {
        return format!("agent:{}:{}", parsed.agent_id, parsed.rest);
    }
    if starts_with_ignore_case(raw, "agent:") {
        return raw.to_lowercase();
    }
    format!("agent:{}:{}", normalize_agent_id(Some(agent_id)), raw.to_lowercase())
}

/// The agent-relative part of a key (`agent:x:main` → `main`).
pub fn to_agent_request_session_key(key: Option<&str>) -> Option<String> {
    let raw = js_trim(key.unwrap_or(""));
    if raw.is_empty() {
        return None;
    }
    Some(parse_agent_session_key(raw).map(|p| p.rest).unwrap_or_else(|| raw.to_string()))
}

/// How deeply nested a sub-agent session is (number of `subagent` segments).
pub fn subagent_depth(key: Option<&str>) -> usize {
    js_trim(key.unwrap_or("")).to_lowercase().split(':').filter(|s| *s == "subagent").count()
}

/// `main` when the session is the agent's main session, else `session`.
pub fn derive_last_route_policy(session_key: &str, main_session_key: &str) -> &'static str {
    if session_key == main_session_key {
        "main"
    } else {
        "session"
    }
}

/// A key split at its last `:thread:` marker (case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSuffix {
    pub base: String,
    pub thread_id: Option<String>,
}

pub fn parse_thread_session_suffix(key: &str) -> ThreadSuffix {
    let lower = key.to_ascii_lowercase();
    match lower.rfind(":thread:") {
        Some(i) if i + ":thread:".len() < key.len() => {
            ThreadSuffix { base: key[..i].to_string(), thread_id: Some(key[i + ":thread:".len()..].to_string()) }
        }
        _ => ThreadSuffix { base: key.to_string(), thread_id: None },
    }
}

/// The chat type a stored key implies, when its shape says so unambiguously.
pub fn derive_chat_type_from_key(key: &str) -> Option<ChatType> {
    let raw = js_trim(key).to_lowercase();
    if raw.is_empty() {
        return None;
    }
    let rest = if raw.starts_with("agent:") { parse_agent_session_key(&raw)?.rest } else { raw };
    if rest.starts_with("agent:") {
        return None;
    }
    let base = parse_thread_session_suffix(&rest).base;
    let tokens: Vec<&str> = base.split(':').collect();
    let marker = |t: &str| match t {
        "direct" | "dm" => Some(ChatType::Direct),
        "group" => Some(ChatType::Group),
        "channel" => Some(ChatType::Channel),
        _ => None,
    };
    // `<kind>:<id>`, `<channel>:<kind>:<id>` or `<channel>:<account>:<kind>:<id>`.
    for (i, token) in tokens.iter().enumerate().take(3) {
        let Some(kind) = marker(token) else {
            if token.is_empty() {
                break;
            }
            continue;
        };
        let tail = &tokens[i + 1..];
        if tail.first().is_none_or(|t| t.is_empty()) {
            return None;
        }
        let tail_has_marker = tail.iter().any(|t| marker(t).is_some());
        // A bare group/channel key may carry anything in its id (`group:dm:user`).
        let bare_room = i == 0 && kind != ChatType::Direct;
        if tail_has_marker && !bare_room {
            return None;
        }
        return Some(kind);
    }
    // Legacy shapes: WhatsApp group JIDs and Discord `guild-<id>:channel-<id>`.
    if base.ends_with("@g.us") {
        return Some(ChatType::Group);
    }
    if tokens.windows(2).any(|w| w[0].starts_with("guild-") && w[1].starts_with("channel-")) {
        return Some(ChatType::Channel);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_sessions_stay_in_their_namespace() {
        let k = |c| build_api_session_key("Work", c);
        assert_eq!(k(ApiCaller::Session("agent:work:main")), "agent:work:openai:agent-work-main");
        assert_eq!(k(ApiCaller::Session("x:subagent:y:thread:1")), "agent:work:openai:x-subagent-y-thread-1");
        assert_eq!(k(ApiCaller::User("Bob")), "agent:work:openai:direct:bob");
        assert_eq!(k(ApiCaller::User("")), "agent:work:openai:direct:anonymous");
        for key in [k(ApiCaller::Session("agent:work:whatsapp:direct:+1555")), k(ApiCaller::Request("abc"))] {
            let rest = parse_agent_session_key(&key).unwrap().rest;
            assert!(rest.starts_with("openai:") && subagent_depth(Some(&key)) == 0, "{key}");
            assert_eq!(rest.matches(':').count(), 1, "no smuggled separators: {key}");
        }
    }

    #[test]
    fn openclaw_session_keys_map_to_chelas() {
        assert_eq!(
            SessionKey::from_openclaw("work", "agent:work:openai-user:Bob").unwrap(),
            "agent:work:openai:direct:bob"
        );
        assert_eq!(
            SessionKey::from_openclaw("work", "agent:work:telegram:direct:42").unwrap(),
            "agent:work:telegram:direct:42"
        );
        assert_eq!(SessionKey::from_openclaw("work", "agent:main:main"), None, "another agent's key");
        assert_eq!(SessionKey::from_openclaw("work", "main"), None);
    }

    #[test]
    fn gateway_namespaces_are_reserved_for_api_callers() {
        for raw in ["subagent:x", " Cron:nightly", "acp:1", "agent:work:subagent:a1", "agent:work:cron:job"] {
            assert!(is_reserved_api_session(raw), "{raw}");
        }
        for raw in ["conv:42", "agent:work:main", "my-subagent:x", "agent:work:direct:cron"] {
            assert!(!is_reserved_api_session(raw), "{raw}");
        }
    }

    #[test]
    fn typed_keys_come_from_constructors() {
        let main = SessionKey::main("Work", None);
        assert_eq!(main, "agent:work:main");
        assert_eq!(main.with_thread(Some(" T1 ")), "agent:work:main:thread:t1");
        assert_eq!(main.with_thread(None), main);
        let child = SessionKey::subagent("work", "A1:b");
        assert_eq!(child, "agent:work:subagent:a1b");
        assert!(child.is_subagent() && child.is_background() && !main.is_subagent());
        assert_eq!(child.agent_id(), "work");
        assert_eq!(SessionKey::parse(" Agent:Work:Main "), Some(main.clone()));
        assert_eq!(SessionKey::parse("main"), None);
        assert_eq!(SessionKey::requested("work", Some("main"), None), main);
    }

    #[test]
    fn dm_scopes() {
        let mut p = PeerKeyParts {
            agent_id: "main",
            channel: "telegram",
            account_id: Some("tasks"),
            peer_kind: Some("direct"),
            peer_id: "7550356539",
            ..Default::default()
        };
        assert_eq!(build_peer_session_key(&p), "agent:main:main");
        p.dm_scope = DmScope::PerPeer;
        assert_eq!(build_peer_session_key(&p), "agent:main:direct:7550356539");
        p.dm_scope = DmScope::PerChannelPeer;
        assert_eq!(build_peer_session_key(&p), "agent:main:telegram:direct:7550356539");
        p.dm_scope = DmScope::PerAccountChannelPeer;
        assert_eq!(build_peer_session_key(&p), "agent:main:telegram:tasks:direct:7550356539");
    }

    #[test]
    fn legacy_dm_keys_read_as_direct() {
        assert_eq!(derive_chat_type_from_key("agent:main:whatsapp:dm:+1555"), Some(ChatType::Direct));
        assert_eq!(derive_chat_type_from_key("agent:main:slack:channel:c1:thread:17.1"), Some(ChatType::Channel));
    }

    #[test]
    fn signal_group_keeps_case() {
        let p = PeerKeyParts {
            agent_id: "arjun",
            channel: "signal",
            peer_kind: Some("group"),
            peer_id: "AbC=",
            ..Default::default()
        };
        assert_eq!(build_peer_session_key(&p), "agent:arjun:signal:group:AbC=");
    }
}
