//! Heartbeats (OpenClaw's `docs/gateway/heartbeat.md`): which agents run
//! one, how often, with what prompt, inside which hours, and where an alert
//! goes; and which replies are acknowledgements that nobody needs to read.
//!
//! `agents.defaults.heartbeat` is the baseline; an agent's own `heartbeat`
//! block merges on top, and once any agent has one, only those agents run
//! heartbeats. With no per-agent block the heartbeat belongs to the ambient
//! owner (`agents.defaults.heartbeat.agentId`, `systemAgent`, the default
//! agent); a multi-agent roster without one runs none.
//!
//! Must not: read the clock, the session store or the channels: the gateway's
//! scheduler asks these questions with the facts it has.

use crate::config::schema::{ActiveHoursConfig, Config, HeartbeatConfig};
use crate::roster::Roster;
use crate::schedule::{parse_duration_ms, Unit, Zone};

/// OpenClaw 2026.9.6's default heartbeat prompt, sent verbatim as the user message.
pub const DEFAULT_PROMPT: &str = "Follow the heartbeat monitor scratch context when provided. Recurring tasks are automations; create or change their schedules with the automations tool, not heartbeat scratch. Do not infer or repeat old tasks from prior chats. If nothing needs attention, reply NO_REPLY.";

/// The silent reply: nothing needs attention.
pub const SILENT_REPLY: &str = "NO_REPLY";
/// The legacy acknowledgement custom prompts may still ask for.
pub const ACK_TOKEN: &str = "HEARTBEAT_OK";
/// What may remain beside [`ACK_TOKEN`] for the reply to count as an acknowledgement.
pub const ACK_MAX_CHARS: usize = 300;
/// How the transcript marks a heartbeat turn (OpenClaw's marker).
pub const TRANSCRIPT_MARKER: &str = "[OpenClaw heartbeat poll]";
/// The workspace file read as the heartbeat's monitor scratch, when present.
pub const SCRATCH_FILE: &str = "HEARTBEAT.md";

pub const DEFAULT_EVERY_MS: u64 = 30 * 60 * 1000;
/// A heartbeat turn's longest run when nothing sets `timeoutSeconds`: its cadence, capped here.
const MAX_DEFAULT_TIMEOUT_MS: u64 = 600_000;

/// Where a heartbeat's alert goes (`heartbeat.target`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The operator's DM: `commands.ownerAllowFrom`, else a channel's `allowFrom`.
    Owner,
    /// The last conversation of the heartbeat's session (groups included).
    Last,
    /// Run for internal state only; deliver nothing.
    None,
    /// A channel, to `to` (else the session's last recipient on that channel).
    Channel { channel: String, to: Option<String> },
}

/// A window of the day heartbeats run in (`heartbeat.activeHours`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveHours {
    /// Minutes after midnight, inclusive.
    pub start: u32,
    /// Minutes after midnight, exclusive (1440 for `24:00`).
    pub end: u32,
    pub zone: Zone,
}

impl ActiveHours {
    /// Whether `now_ms` is inside the window. A window ending before it starts
    /// wraps midnight; equal ends are a zero-width window (never inside).
    pub fn contains(&self, now_ms: i64) -> bool {
        if self.start == self.end {
            return false;
        }
        let Some(now) = self.zone.minute_of_day(now_ms) else { return true };
        if self.end > self.start {
            now >= self.start && now < self.end
        } else {
            now >= self.start || now < self.end
        }
    }
}

/// One agent's heartbeat, resolved from config.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatPlan {
    pub agent_id: String,
    /// 0: no recurring cadence (`every: "0m"`).
    pub every_ms: u64,
    pub prompt: String,
    pub target: Target,
    pub account_id: Option<String>,
    /// `heartbeat.session`: a session key of this agent; `None`: its main session.
    pub session: Option<String>,
    pub active_hours: Option<ActiveHours>,
    pub light_context: bool,
    pub isolated_session: bool,
    pub model: Option<String>,
    /// `directPolicy: "block"`: never deliver to a DM.
    pub block_direct: bool,
    pub timeout_ms: u64,
}

/// The heartbeats `cfg` asks for, and why an expected one is missing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plans {
    pub plans: Vec<HeartbeatPlan>,
    /// Why heartbeats are off although none was turned off (no owner among several agents).
    pub warning: Option<String>,
}

/// The heartbeat of every agent that runs one (see the module header).
pub fn plans(cfg: &Config) -> Plans {
    let roster = Roster::from_config(cfg);
    let defaults = cfg.agents.as_ref().and_then(|a| a.defaults.as_ref());
    let base = defaults.and_then(|d| d.heartbeat.clone()).unwrap_or_default();
    let user_tz = defaults.and_then(|d| d.user_timezone.as_deref());
    let agent_timeout = defaults.and_then(|d| d.timeout_seconds);
    let own: Vec<(String, HeartbeatConfig)> = roster
        .ids()
        .into_iter()
        .filter_map(|id| {
            let (_, agent) = cfg.agent(&id)?;
            agent.heartbeat.clone().map(|h| (id, h))
        })
        .collect();
    let chosen: Vec<(String, HeartbeatConfig)> = if own.is_empty() {
        let marked = || {
            let mut marked = roster.entries.iter().filter(|e| e.default);
            match (marked.next(), marked.next()) {
                (Some(only), None) => Some(only.id.clone()),
                _ => None,
            }
        };
        let owner = match roster.pick(base.agent_id.as_deref()) {
            Err(_) if base.agent_id.is_none() => marked().ok_or(crate::roster::OwnerError::NoExplicitAgent),
            other => other,
        };
        match owner {
            Ok(id) => vec![(id, HeartbeatConfig::default())],
            Err(e) => {
                return Plans {
                    plans: Vec::new(),
                    warning: Some(format!(
                        "heartbeats are off: {e} (set `agents.defaults.heartbeat.agentId`, or give agents their own `heartbeat` block)"
                    )),
                }
            }
        }
    } else {
        own
    };
    let plans = chosen
        .into_iter()
        .map(|(agent_id, own)| resolve(agent_id, &merge(&base, &own), user_tz, agent_timeout))
        .collect();
    Plans { plans, warning: None }
}

/// `own` on top of `base`, field by field.
fn merge(base: &HeartbeatConfig, own: &HeartbeatConfig) -> HeartbeatConfig {
    fn pick<T: Clone>(own: &Option<T>, base: &Option<T>) -> Option<T> {
        own.clone().or_else(|| base.clone())
    }
    HeartbeatConfig {
        every: pick(&own.every, &base.every),
        active_hours: pick(&own.active_hours, &base.active_hours),
        model: pick(&own.model, &base.model),
        session: pick(&own.session, &base.session),
        target: pick(&own.target, &base.target),
        direct_policy: pick(&own.direct_policy, &base.direct_policy),
        to: pick(&own.to, &base.to),
        account_id: pick(&own.account_id, &base.account_id),
        prompt: pick(&own.prompt, &base.prompt),
        timeout_seconds: pick(&own.timeout_seconds, &base.timeout_seconds),
        light_context: pick(&own.light_context, &base.light_context),
        isolated_session: pick(&own.isolated_session, &base.isolated_session),
        agent_id: None,
    }
}

fn resolve(agent_id: String, h: &HeartbeatConfig, user_tz: Option<&str>, agent_timeout: Option<u64>) -> HeartbeatPlan {
    let every_ms =
        h.every.as_deref().and_then(|e| parse_duration_ms(e, Unit::Minutes).ok()).unwrap_or(DEFAULT_EVERY_MS);
    let target = match h.target.as_deref().map(str::trim) {
        None | Some("") | Some("owner") => Target::Owner,
        Some("last") => Target::Last,
        Some("none") => Target::None,
        Some(channel) => {
            Target::Channel { channel: channel.to_ascii_lowercase(), to: h.to.clone().filter(|t| !t.trim().is_empty()) }
        }
    };
    let timeout_ms = h
        .timeout_seconds
        .or(agent_timeout.filter(|t| *t > 0))
        .map(|s| s.saturating_mul(1000))
        .unwrap_or_else(|| every_ms.clamp(1, MAX_DEFAULT_TIMEOUT_MS));
    HeartbeatPlan {
        agent_id,
        every_ms,
        prompt: h.prompt.clone().filter(|p| !p.trim().is_empty()).unwrap_or_else(|| DEFAULT_PROMPT.to_string()),
        target,
        account_id: h.account_id.clone().filter(|a| !a.trim().is_empty()),
        session: h.session.clone().filter(|s| !s.trim().is_empty()),
        active_hours: h.active_hours.as_ref().and_then(|a| active_hours(a, user_tz).ok()),
        light_context: h.light_context.unwrap_or(false),
        isolated_session: h.isolated_session.unwrap_or(false),
        model: h.model.clone().filter(|m| !m.trim().is_empty()),
        block_direct: h.direct_policy.as_deref() == Some("block"),
        timeout_ms,
    }
}

/// `HH:MM` (00:00–23:59; `24:00` too when `allow_24`) as minutes after
/// midnight, or OpenClaw's message for the value.
pub fn parse_clock(raw: &str, allow_24: bool) -> Result<u32, String> {
    let bytes = raw.as_bytes();
    let ok =
        bytes.len() == 5 && bytes[2] == b':' && raw[..2].bytes().chain(raw[3..].bytes()).all(|b| b.is_ascii_digit());
    if !ok {
        return Err(format!("invalid time `{raw}` (use \"HH:MM\" 24h format)"));
    }
    let (h, m): (u32, u32) = (raw[..2].parse().unwrap_or(99), raw[3..].parse().unwrap_or(99));
    if h == 24 {
        if m != 0 {
            return Err(format!("invalid time `{raw}` (24:00 is the only allowed 24:xx value)"));
        }
        if !allow_24 {
            return Err("invalid time (start cannot be 24:00)".into());
        }
        return Ok(1440);
    }
    if h > 23 || m > 59 {
        return Err(format!("invalid time `{raw}` (use \"HH:MM\" 24h format)"));
    }
    Ok(h * 60 + m)
}

/// Which field of an `activeHours` block is wrong, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveHoursError {
    pub field: &'static str,
    pub message: String,
}

/// An `activeHours` block: `start` defaults to `00:00`, `end` to `24:00`;
/// the zone is `timezone` (`user`/unset: `agents.defaults.userTimezone`, else
/// the host's; `local`: the host's; an IANA name).
pub fn active_hours(a: &ActiveHoursConfig, user_tz: Option<&str>) -> Result<ActiveHours, ActiveHoursError> {
    let err = |field, message| ActiveHoursError { field, message };
    let start =
        a.start.as_deref().map(|s| parse_clock(s, false)).transpose().map_err(|m| err("start", m))?.unwrap_or(0);
    let end = a.end.as_deref().map(|s| parse_clock(s, true)).transpose().map_err(|m| err("end", m))?.unwrap_or(1440);
    let user = || Zone::parse(user_tz).unwrap_or(Zone::Local);
    let zone = match a.timezone.as_deref().map(str::trim) {
        None | Some("") | Some("user") => user(),
        Some(name) => Zone::parse(Some(name)).ok_or_else(|| err("timezone", format!("`{name}` is not a time zone")))?,
    };
    Ok(ActiveHours { start, end, zone })
}

/// Whether a monitor scratch (HEARTBEAT.md) holds nothing to act on: only
/// blank lines, headings, HTML comments, fence markers or empty checklist
/// items. OpenClaw skips the heartbeat then (`empty-heartbeat-file`).
pub fn scratch_is_empty(text: &str) -> bool {
    let mut in_comment = false;
    for line in text.lines() {
        let mut t = line.trim().to_string();
        if in_comment {
            match t.find("-->") {
                Some(end) => {
                    in_comment = false;
                    t = t[end + 3..].trim().to_string();
                }
                None => continue,
            }
        }
        while let Some(start) = t.find("<!--") {
            match t[start..].find("-->") {
                Some(end) => t = format!("{}{}", &t[..start], &t[start + end + 3..]).trim().to_string(),
                None => {
                    in_comment = true;
                    t = t[..start].trim().to_string();
                    break;
                }
            }
        }
        let t = t.as_str();
        let heading =
            t.starts_with('#') && (t.trim_start_matches('#').is_empty() || t.trim_start_matches('#').starts_with(' '));
        let fence = t.starts_with("```") && t[3..].chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let stub = {
            let rest = t.strip_prefix(['-', '*', '+']).map(str::trim);
            matches!(rest, Some("") | Some("[ ]") | Some("[x]") | Some("[X]") | Some("[]"))
        };
        if !(t.is_empty() || heading || fence || stub) {
            return false;
        }
    }
    true
}

/// Which heartbeat replies reach a chat (`heartbeatVisibility`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visibility {
    /// Send [`ACK_TOKEN`] when the reply says nothing needs attention (default off).
    pub show_ok: bool,
    /// Send the alert when it does (default on).
    pub show_alerts: bool,
    /// Report the run to status surfaces (default on).
    pub use_indicator: bool,
}

impl Visibility {
    /// Nothing would be shown anywhere: the run is skipped before the
    /// model is asked (OpenClaw's `alerts-disabled`).
    pub fn shows_nothing(&self) -> bool {
        !(self.show_ok || self.show_alerts || self.use_indicator)
    }
}

/// The heartbeat visibility of a delivery target, flag by flag: the
/// account's `heartbeatVisibility`, the channel's, `channels.defaults`',
/// then OpenClaw's defaults (OKs hidden, alerts shown, indicator on).
/// `None`: no channel in view (`target: "none"`), `channels.defaults` only.
pub fn visibility(cfg: &Config, channel_account: Option<(&str, &str)>) -> Visibility {
    let scope = match channel_account {
        Some((channel, account)) => crate::access::Scoped::new(cfg, channel, account),
        None => crate::access::Scoped::defaults_only(cfg),
    };
    let flag = |f: fn(&crate::config::schema::HeartbeatVisibilityConfig) -> Option<bool>, default: bool| {
        scope.pick(|a| a.heartbeat_visibility.as_ref().and_then(f)).unwrap_or(default)
    };
    Visibility {
        show_ok: flag(|v| v.show_ok, false),
        show_alerts: flag(|v| v.show_alerts, true),
        use_indicator: flag(|v| v.use_indicator, true),
    }
}

/// A reply that says "nothing needs attention": [`SILENT_REPLY`], or
/// [`ACK_TOKEN`] at its start or end with at most [`ACK_MAX_CHARS`] beside
/// it (OpenClaw's rule; the token in the middle is not special). Otherwise
/// the text to deliver, with an edge token taken off.
pub fn acknowledgement(reply: &str) -> Option<String> {
    let trimmed = reply.trim();
    if trimmed.is_empty() || is_silent(trimmed) {
        return None;
    }
    if !trimmed.contains(ACK_TOKEN) {
        return Some(trimmed.to_string());
    }
    let normalized = strip_markup(trimmed);
    let original = strip_token_at_edges(trimmed);
    let picked = match original {
        Some(t) if !t.is_empty() => Some(t),
        _ => strip_token_at_edges(&normalized),
    };
    match picked {
        None => Some(trimmed.to_string()),
        Some(rest) if rest.chars().count() <= ACK_MAX_CHARS => None,
        Some(rest) => Some(rest),
    }
}

/// `NO_REPLY` alone (surrounding markup or punctuation aside).
pub fn is_silent(text: &str) -> bool {
    let t = strip_markup(text.trim());
    t.trim_end_matches(|c: char| c.is_ascii_punctuation() && c != '_') == SILENT_REPLY
}

fn strip_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if in_tag => {}
            _ => out.push(c),
        }
    }
    let out = out.replace("&nbsp;", " ");
    out.trim().trim_start_matches(['*', '`', '~', '_']).trim_end_matches(['*', '`', '~', '_']).to_string()
}

/// The text with [`ACK_TOKEN`] taken off its start and end (repeatedly; up
/// to four non-word characters may follow an ending token); `None` when
/// there was no token at an edge.
fn strip_token_at_edges(text: &str) -> Option<String> {
    let mut t = text.trim().to_string();
    let mut stripped = false;
    loop {
        let cur = t.trim().to_string();
        if let Some(rest) = cur.strip_prefix(ACK_TOKEN) {
            t = rest.trim_start().to_string();
            stripped = true;
            continue;
        }
        let Some(at) = cur.rfind(ACK_TOKEN) else { break };
        let tail = &cur[at + ACK_TOKEN.len()..];
        if tail.chars().count() <= 4 && tail.chars().all(|c| !(c.is_alphanumeric() || c == '_')) {
            t = cur[..at].trim_end().to_string();
            stripped = true;
            continue;
        }
        break;
    }
    stripped.then(|| t.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The operator's DM for `target: "owner"`: the first concrete
/// `commands.ownerAllowFrom` entry written `<channel>:<id>`, else the first
/// concrete `allowFrom` entry of a configured channel account. `None`: no owner.
pub fn owner_route(cfg: &Config, account_id: Option<&str>) -> Option<OwnerRoute> {
    let owners = cfg.commands.as_ref().and_then(|c| c.owner_allow_from.as_deref()).unwrap_or(&[]);
    let channels = cfg.channels.as_ref();
    for owner in owners {
        let entry = owner.0.trim();
        let Some((channel, id)) = entry.split_once(':') else { continue };
        let (channel, id) = (channel.trim().to_ascii_lowercase(), id.trim());
        if id.is_empty() || id == "*" {
            continue;
        }
        let account = account_id.map(str::to_string).or_else(|| {
            channels
                .and_then(|c| c.get(&channel))
                .and_then(|c| c.declared_accounts().into_iter().find(|a| a.enabled).map(|a| a.id))
        });
        return Some(OwnerRoute {
            channel,
            account_id: account.unwrap_or_else(|| "default".into()),
            to: id.to_string(),
        });
    }
    for (channel, section) in channels.into_iter().flatten() {
        for account in section.declared_accounts().into_iter().filter(|a| a.enabled) {
            if account_id.is_some_and(|want| want != account.id) {
                continue;
            }
            let list = account.account.allow_from.as_deref().or(section.top.allow_from.as_deref()).unwrap_or(&[]);
            let prefix = format!("{channel}:");
            let first = list.iter().map(|v| v.0.trim()).find(|v| !v.is_empty() && *v != "*");
            if let Some(id) = first {
                let to = id.strip_prefix(&prefix).unwrap_or(id).to_string();
                return Some(OwnerRoute { channel: channel.clone(), account_id: account.id, to });
            }
        }
    }
    None
}

/// A DM route to the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRoute {
    pub channel: String,
    pub account_id: String,
    pub to: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn cfg(text: &str) -> Config {
        load_str(text, None).expect("config loads").config
    }

    #[test]
    fn visibility_is_resolved_flag_by_flag_account_then_channel_then_defaults() {
        // OpenClaw's docs/gateway/heartbeat.md example.
        let c = cfg(r#"{ channels: {
            defaults: { heartbeatVisibility: { showOk: false, showAlerts: true, useIndicator: true } },
            slack: { botToken: "x", heartbeatVisibility: { showOk: true },
                     accounts: { ops: { heartbeatVisibility: { showAlerts: false } }, main: {} } },
            telegram: { botToken: "y" } } }"#);
        let v = |ch: &str, acc: &str| visibility(&c, Some((ch, acc)));
        assert_eq!(v("slack", "ops"), Visibility { show_ok: true, show_alerts: false, use_indicator: true });
        assert_eq!(v("slack", "main"), Visibility { show_ok: true, show_alerts: true, use_indicator: true });
        assert_eq!(v("telegram", "default"), Visibility { show_ok: false, show_alerts: true, use_indicator: true });
        let none = cfg("{}");
        let built_in = visibility(&none, None);
        assert_eq!(built_in, Visibility { show_ok: false, show_alerts: true, use_indicator: true });
        assert!(!built_in.shows_nothing());
        let silent = cfg(
            r#"{ channels: { defaults: { heartbeatVisibility: { showOk: false, showAlerts: false, useIndicator: false } } } }"#,
        );
        assert!(visibility(&silent, None).shows_nothing());
        assert!(visibility(&silent, Some(("telegram", "default"))).shows_nothing());
    }

    #[test]
    fn a_misspelt_visibility_flag_is_a_config_error_naming_it_and_its_block() {
        let text = "{\n channels: { telegram: { botToken: \"y\",\n   heartbeatVisibility: { showOK: true } } } }";
        let Err(crate::config::load::ConfigError::Invalid { diagnostics, .. }) = load_str(text, Some("x.json5")) else {
            panic!("a misspelt flag loads")
        };
        let d = &diagnostics[0];
        // The line of the block the flag is in (serde reports the failing object).
        assert_eq!((d.line, d.path.as_str()), (2, "channels.telegram"), "{d:?}");
        assert!(d.message.contains("`showOK`") && d.message.contains("`showOk`"), "{d:?}");
    }

    #[test]
    fn single_agent_mode_runs_one_default_heartbeat() {
        let p = plans(&cfg("{}"));
        assert_eq!(p.plans.len(), 1);
        let main = &p.plans[0];
        assert_eq!((main.agent_id.as_str(), main.every_ms, &main.target), ("main", DEFAULT_EVERY_MS, &Target::Owner));
        assert_eq!(main.prompt, DEFAULT_PROMPT);
        assert_eq!(main.timeout_ms, 600_000, "cadence capped at 600 s");
    }

    #[test]
    fn per_agent_blocks_mean_only_those_agents() {
        let c = cfg(r#"{ agents: {
            defaults: { heartbeat: { every: "1h", target: "none", activeHours: { start: "09:00", end: "17:00", timezone: "UTC" } } },
            list: [ { id: "main", default: true }, { id: "ops", heartbeat: { every: "5m", target: "telegram", to: "42" } } ] } }"#);
        let p = plans(&c);
        assert_eq!(p.plans.len(), 1, "{p:?}");
        let ops = &p.plans[0];
        assert_eq!(ops.agent_id, "ops");
        assert_eq!(ops.every_ms, 300_000, "own value wins");
        assert_eq!(ops.target, Target::Channel { channel: "telegram".into(), to: Some("42".into()) });
        assert!(ops.active_hours.is_some(), "inherited from defaults");
    }

    #[test]
    fn several_agents_without_an_owner_run_none() {
        let c = cfg(r#"{ agents: { entries: { a: {}, b: {} } } }"#);
        let p = plans(&c);
        assert!(p.plans.is_empty());
        assert!(p.warning.as_deref().unwrap_or("").contains("heartbeats are off"), "{p:?}");
        let marked = plans(&cfg(r#"{ agents: { entries: { a: {}, b: { default: true } } } }"#));
        assert_eq!(marked.plans.iter().map(|p| p.agent_id.as_str()).collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn active_hours_window_and_wrap() {
        let at = |t: &str| crate::schedule::parse_instant(t).unwrap();
        let day = ActiveHours { start: 9 * 60, end: 22 * 60, zone: Zone::Named(chrono_tz::UTC) };
        assert!(day.contains(at("2026-12-04T09:00:00Z")), "start inclusive");
        assert!(!day.contains(at("2026-12-04T22:00:00Z")), "end exclusive");
        assert!(!day.contains(at("2026-12-04T08:59:00Z")));
        let night = ActiveHours { start: 22 * 60, end: 6 * 60, zone: Zone::Named(chrono_tz::UTC) };
        assert!(night.contains(at("2026-12-04T23:30:00Z")) && night.contains(at("2026-12-04T05:59:00Z")));
        assert!(!night.contains(at("2026-12-04T12:00:00Z")));
        let zero = ActiveHours { start: 480, end: 480, zone: Zone::Named(chrono_tz::UTC) };
        assert!(!zero.contains(at("2026-12-04T08:00:00Z")), "zero width is never inside");
        assert_eq!(parse_clock("24:00", true), Ok(1440));
        assert!(parse_clock("24:00", false).unwrap_err().contains("start cannot be 24:00"));
        assert!(
            parse_clock("9:00", true).is_err()
                && parse_clock("24:30", true).is_err()
                && parse_clock("12:60", true).is_err()
        );
    }

    #[test]
    fn acknowledgements_as_openclaw_strips_them() {
        assert_eq!(acknowledgement("NO_REPLY"), None);
        assert_eq!(acknowledgement("  NO_REPLY.  "), None);
        assert_eq!(acknowledgement("HEARTBEAT_OK"), None);
        assert_eq!(acknowledgement("HEARTBEAT_OK all quiet"), None, "token at the start, short rest");
        assert_eq!(acknowledgement("**HEARTBEAT_OK**"), None, "markup around it");
        assert_eq!(acknowledgement("Nothing new. HEARTBEAT_OK!"), None, "token at the end");
        let long = format!("HEARTBEAT_OK {}", "x".repeat(301));
        assert_eq!(acknowledgement(&long), Some("x".repeat(301)), "over 300 chars is an alert, token removed");
        assert_eq!(
            acknowledgement("The build HEARTBEAT_OK broke"),
            Some("The build HEARTBEAT_OK broke".into()),
            "in the middle it is not special"
        );
        assert_eq!(acknowledgement("Disk is 95% full"), Some("Disk is 95% full".into()));
    }

    #[test]
    fn an_effectively_empty_scratch_is_recognised() {
        assert!(scratch_is_empty("# Heartbeat checklist\n\n- \n- [ ]\n<!-- add items -->\n```md\n```\n"));
        assert!(scratch_is_empty("<!--\nmulti\nline\n-->\n## Notes"));
        assert!(!scratch_is_empty("# Checklist\n- check the disk"));
        assert!(!scratch_is_empty("#hashtag is text"));
        assert!(!scratch_is_empty("<!-- c --> real text"));
    }

    #[test]
    fn owner_route_prefers_owner_allow_from() {
        let c = cfg(r#"{ commands: { ownerAllowFrom: ["*", "telegram:123"] },
            channels: { telegram: { botToken: "t", allowFrom: ["999"] }, whatsapp: { allowFrom: ["+1555"] } } }"#);
        let r = owner_route(&c, None).unwrap();
        assert_eq!((r.channel.as_str(), r.to.as_str(), r.account_id.as_str()), ("telegram", "123", "default"));
        let fallback = cfg(r#"{ channels: { whatsapp: { allowFrom: ["*", "+15551234"] } } }"#);
        let r = owner_route(&fallback, None).unwrap();
        assert_eq!((r.channel.as_str(), r.to.as_str()), ("whatsapp", "+15551234"));
        assert_eq!(
            owner_route(&cfg(r#"{ commands: { ownerAllowFrom: ["*"] } }"#), None),
            None,
            "a wildcard names no owner"
        );
    }
}
