//! What a config *means*, checked: problems that parse fine but would route
//! wrongly or collide at run time. Every problem is collected.
//!
//! Notably, a binding naming an agent that is not configured is an error:
//! OpenClaw silently routed such messages to the default agent (its issue
//! #13423); chela refuses to load such a config.
//!
//! Must not: change the config or stop at the first problem; routing answers come from the roster
//! and the route table, never a copy of their rules.

use std::collections::HashMap;
use std::path::PathBuf;

use super::diagnostic::{suggest, Diagnostic};
use super::load::Loaded;
use super::paths::{agent_dir, agent_workspace, Environment};
use super::schema::{AgentConfig, Binding, Config, SandboxConfig};
use super::source::{Node, Span};
use crate::ids::{is_valid_agent_id, js_trim, normalize_agent_id, normalize_channel, normalize_chat_type};
use crate::roster::{Roster, RosterShape};

/// Finds the position of a dotted/indexed path (`bindings[3].match.peer`) in the source.
pub fn locate(root: &Node, path: &str) -> Span {
    let mut node = root;
    let mut best = root.span;
    for segment in path.split('.') {
        let (key, indexes) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        if !key.is_empty() {
            match node.member(key) {
                Some(m) => {
                    best = m.key_span;
                    node = &m.value;
                }
                None => return best,
            }
        }
        for idx in indexes.split('[').filter(|s| !s.is_empty()) {
            let idx = idx.trim_end_matches(']');
            let next = match (&node.value, idx.parse::<usize>()) {
                (super::source::Value::Array(items), Ok(i)) => items.get(i),
                _ => node.get(idx.trim_matches('"')),
            };
            match next {
                Some(n) => {
                    node = n;
                    best = n.span;
                }
                None => return best,
            }
        }
    }
    best
}

/// Checks the meaning of a loaded config. Returns errors and warnings.
/// Errors in `after` that were not in `before` (compared by path and message).
pub fn new_errors(before: &[Diagnostic], after: &[Diagnostic]) -> Vec<Diagnostic> {
    after
        .iter()
        .filter(|d| d.is_error() && !before.iter().any(|b| b.is_error() && b.path == d.path && b.message == d.message))
        .cloned()
        .collect()
}

/// An edit of the config text (`new`, of the file `file`) checked against
/// the config as it was: the new config when it loads and adds no error,
/// else every problem that stops it, each at its place in the new text.
pub fn check_edit(before: &Loaded, new: &str, file: &str, env: &Environment) -> Result<Loaded, Vec<Diagnostic>> {
    let after = super::load::load_str(new, Some(file)).map_err(|e| e.diagnostics())?;
    let added = new_errors(&validate(before, env), &validate(&after, env));
    if added.is_empty() {
        Ok(after)
    } else {
        Err(added.into_iter().map(|d| after.attach_file(d)).collect())
    }
}

pub fn validate(loaded: &Loaded, env: &Environment) -> Vec<Diagnostic> {
    let mut check = Checker {
        cfg: &loaded.config,
        root: &loaded.source,
        roster: Roster::from_config(&loaded.config),
        out: Vec::new(),
    };
    check.one_roster_shape();
    let ids = check.agent_ids();
    check.one_default();
    check.separate_dirs(&ids, env);
    for (i, b) in check.cfg.bindings.iter().flatten().enumerate() {
        let path = format!("bindings[{i}]");
        check.binding_agent(&path, b);
        let channel = check.binding_match(&path, b);
        check.binding_account(&path, b, &channel);
    }
    check.broadcast_agents();
    check.heartbeats();
    check.context_pruning();
    check.compaction();
    check.thinking_levels();
    check.ack_scope();
    check.streaming_modes();
    check.block_streaming();
    check.cron_jobs();
    check.control_ui();
    check.storage_url();
    check.weakened_isolation();
    check.ignored_settings();
    check.out.into_iter().map(|d| loaded.attach_file(d)).collect()
}

/// The config under check and the problems found so far.
struct Checker<'a> {
    cfg: &'a Config,
    root: &'a Node,
    roster: Roster,
    out: Vec<Diagnostic>,
}

fn list_path(i: usize) -> String {
    format!("agents.list[{i}]")
}

impl Checker<'_> {
    fn diagnostic(&self, error: bool, path: String, msg: String) -> Diagnostic {
        let span = locate(self.root, &path);
        if error {
            Diagnostic::error(path, span, msg)
        } else {
            Diagnostic::warning(path, span, msg)
        }
    }

    fn err(&mut self, path: String, msg: String) {
        let d = self.diagnostic(true, path, msg);
        self.out.push(d);
    }

    fn warn(&mut self, path: String, msg: String) {
        let d = self.diagnostic(false, path, msg);
        self.out.push(d);
    }

    fn list(&self) -> impl Iterator<Item = (usize, &AgentConfig)> {
        self.cfg.agents.as_ref().and_then(|a| a.list.as_ref()).into_iter().flatten().enumerate()
    }

    fn one_roster_shape(&mut self) {
        if self.cfg.agents.as_ref().is_some_and(|a| a.list.is_some() && a.entries.is_some()) {
            self.err(
                "agents.entries".into(),
                "both `agents.list` and `agents.entries` are set; use one roster shape".into(),
            );
        }
    }

    /// Agent ids: present, valid, unique after normalisation. Returns each
    /// configured id with the path it is written at.
    fn agent_ids(&mut self) -> Vec<(String, String)> {
        let ids: Vec<(String, String)> = match self.cfg.agents.as_ref() {
            Some(a) if a.entries.is_some() => {
                a.entries.iter().flatten().map(|(k, _)| (format!("agents.entries[{k:?}]"), k.clone())).collect()
            }
            Some(_) => {
                self.list().filter_map(|(i, v)| v.id.clone().map(|id| (format!("{}.id", list_path(i)), id))).collect()
            }
            None => Vec::new(),
        };
        let missing: Vec<usize> = self.list().filter(|(_, a)| a.id.is_none()).map(|(i, _)| i).collect();
        for i in missing {
            self.err(
                list_path(i),
                "agent entry has no `id`: routing treats it as agent `main`, as OpenClaw does".into(),
            );
        }
        let mut seen: HashMap<String, String> = HashMap::new();
        for (path, raw) in &ids {
            let norm = normalize_agent_id(Some(raw));
            if js_trim(raw).is_empty() {
                self.err(path.clone(), "agent id is empty: routing treats it as agent `main`, as OpenClaw does".into());
                continue;
            }
            if !is_valid_agent_id(raw) {
                self.warn(path.clone(), format!("agent id `{raw}` is used as `{norm}`"));
            }
            if let Some(first) = seen.get(&norm) {
                self.err(path.clone(), format!("duplicate agent id `{norm}` (also at `{first}`)"));
            } else {
                seen.insert(norm, path.clone());
            }
        }
        ids
    }

    fn one_default(&mut self) {
        let defaults: Vec<usize> = self.list().filter(|(_, a)| a.default == Some(true)).map(|(i, _)| i).collect();
        if defaults.len() > 1 {
            let msg = format!(
                "{} agents are marked `default: true`; the first (`{}`) is the default",
                defaults.len(),
                self.roster.default_agent()
            );
            self.warn(format!("{}.default", list_path(defaults[1])), msg);
        }
    }

    /// Workspaces and agent dirs must not be shared.
    fn separate_dirs(&mut self, ids: &[(String, String)], env: &Environment) {
        let mut workspaces: HashMap<PathBuf, String> = HashMap::new();
        let mut agent_dirs: HashMap<PathBuf, String> = HashMap::new();
        for (path, raw) in ids {
            let id = normalize_agent_id(Some(raw));
            let agent_path = path.trim_end_matches(".id").to_string();
            let ws = agent_workspace(self.cfg, &self.roster, &id, env);
            if let Some(other) = workspaces.insert(ws.clone(), id.clone()).filter(|o| *o != id) {
                self.err(
                    format!("{agent_path}.workspace"),
                    format!("agents `{other}` and `{id}` share the workspace {}", ws.display()),
                );
            }
            let dir = agent_dir(self.cfg, &id, env);
            if let Some(other) = agent_dirs.insert(dir.clone(), id.clone()).filter(|o| *o != id) {
                self.err(
                    format!("{agent_path}.agentDir"),
                    format!(
                        "agents `{other}` and `{id}` share the agentDir {} (auth and sessions would collide)",
                        dir.display()
                    ),
                );
            }
        }
    }

    /// A binding names an agent the roster knows. The roster is the one answer
    /// to "does this agent exist?" (single-agent mode's implicit `main`
    /// included): what validation accepts, the runtime runs.
    fn binding_agent(&mut self, path: &str, b: &Binding) {
        let roster = &self.roster;
        let agent =
            match b.agent_id.as_deref().map(js_trim) {
                None | Some("") => return self.err(
                    path.to_string(),
                    "binding has no `agentId`: routing sends what it matches to the default agent, as OpenClaw does"
                        .into(),
                ),
                Some(agent) => agent,
            };
        // `main` named beside a list that lacks it is left as it was (routing sends it to `main`).
        let unconfigured = roster.shape == RosterShape::Unconfigured;
        if roster.find(agent).is_some() || (!unconfigured && normalize_agent_id(Some(agent)) == "main") {
            return;
        }
        // The runtime's own words: what routing answers for a message this binding matches.
        let message = match roster.pick(Some(agent)) {
            Err(e) => e.to_string(),
            Ok(_) => format!("binding names agent `{agent}`, which is not configured"),
        };
        let known = roster.ids();
        let help = match suggest(agent, known.iter().map(String::as_str)) {
            Some(s) => format!("did you mean `{s}`?"),
            None if unconfigured => {
                "without `agents.list` the only agent is `main` (single-agent mode); list the agents".to_string()
            }
            None => format!("configured agents: {}", known.join(", ")),
        };
        let d = self.diagnostic(true, format!("{path}.agentId"), message).with_help(help);
        self.out.push(d);
    }

    /// A binding's match can match something. Returns its normalised channel.
    fn binding_match(&mut self, path: &str, b: &Binding) -> String {
        let channel = normalize_channel(b.matcher.channel.as_deref().unwrap_or(""));
        if channel.is_empty() {
            self.err(format!("{path}.match"), "`match.channel` is empty: this binding can never match".into());
        }
        if let Some(kind) = b.kind.as_deref().filter(|k| *k != "route" && *k != "acp") {
            self.err(format!("{path}.type"), format!("unknown binding type `{kind}` (expected `route` or `acp`)"));
        }
        if let Some(peer) = &b.matcher.peer {
            let kind = peer.kind.as_deref().unwrap_or("");
            if normalize_chat_type(kind).is_none() {
                let msg = format!("unknown peer kind `{kind}`: this binding can never match");
                let d = self.diagnostic(true, format!("{path}.match.peer.kind"), msg);
                self.out.push(d.with_help("use `direct`, `group` or `channel`"));
            }
            if peer.id.as_ref().is_none_or(|id| js_trim(&id.0).is_empty()) {
                self.err(format!("{path}.match.peer.id"), "peer id is empty: this binding can never match".into());
            }
        }
        if b.matcher.roles.as_ref().is_some_and(|r| !r.is_empty()) && b.matcher.guild_id.is_none() {
            self.warn(format!("{path}.match.roles"), "`roles` without `guildId` only narrows the account tier".into());
        }
        channel
    }

    /// A named account that the channel does not configure (OpenClaw #14354).
    fn binding_account(&mut self, path: &str, b: &Binding, channel: &str) {
        let (Some(acct), Some(ch)) =
            (b.matcher.account_id.as_deref(), self.cfg.channels.as_ref().and_then(|c| c.get(channel)))
        else {
            return;
        };
        let acct = js_trim(acct);
        let (false, Some(accounts)) = (acct == "*" || acct.is_empty(), &ch.accounts) else {
            return;
        };
        if !ch.declares(acct) {
            let names = accounts.keys().cloned().collect::<Vec<_>>().join(", ");
            self.warn(
                format!("{path}.match.accountId"),
                format!("account `{acct}` is not under `channels.{channel}.accounts` ({names})"),
            );
        }
    }

    /// Broadcast lists name agents too.
    fn broadcast_agents(&mut self) {
        let Some(bc) = &self.cfg.broadcast else { return };
        for (peer, agents) in &bc.groups {
            for (j, a) in agents.iter().enumerate() {
                if self.roster.find(a).is_none() {
                    self.err(
                        format!("broadcast[{peer:?}][{j}]"),
                        format!("broadcast names agent `{a}`, which is not configured"),
                    );
                }
            }
        }
    }

    /// `thinkingDefault` values are thinking levels.
    fn thinking_levels(&mut self) {
        let mut levels: Vec<(String, String)> = Vec::new();
        if let Some(t) =
            self.cfg.agents.as_ref().and_then(|a| a.defaults.as_ref()).and_then(|d| d.thinking_default.clone())
        {
            levels.push(("agents.defaults.thinkingDefault".into(), t));
        }
        for id in self.roster.ids() {
            if let Some((path, a)) = self.cfg.agent(&id) {
                if let Some(t) = a.thinking_default.clone() {
                    levels.push((format!("{path}.thinkingDefault"), t));
                }
            }
        }
        for (path, level) in levels {
            if crate::thinking::ThinkLevel::parse(&level).is_none() {
                self.err(path, crate::thinking::unknown_level(&level));
            }
        }
    }

    /// Every `streaming.mode` names a preview mode (`crate::preview`).
    fn streaming_modes(&mut self) {
        let mut bad = Vec::new();
        for (name, ch) in self.cfg.channels.iter().flatten() {
            let accounts = ch.accounts.iter().flatten().map(|(id, a)| (format!("channels.{name}.accounts.{id}"), a));
            for (path, a) in std::iter::once((format!("channels.{name}"), &ch.top)).chain(accounts) {
                if let Some(mode) = a.streaming.as_ref().and_then(|s| s.get("mode")).and_then(|m| m.as_str()) {
                    if crate::preview::parse_mode(mode).is_none() {
                        bad.push((format!("{path}.streaming.mode"), mode.to_string()));
                    }
                }
            }
        }
        for (path, mode) in bad {
            self.err(path, format!("`{mode}` is not a streaming mode (one of {})", crate::preview::MODES));
        }
    }

    /// The `blockStreaming*` and `humanDelay` values name what they may
    /// (`crate::block_stream`; a channel's `streaming.block` is checked
    /// against OpenClaw's schema when the file loads).
    fn block_streaming(&mut self) {
        let mut bad: Vec<(String, String)> = Vec::new();
        let one_of = |value: Option<&str>, allowed: &[&str], path: &str, bad: &mut Vec<(String, String)>| {
            if let Some(v) = value.filter(|v| !allowed.contains(v)) {
                bad.push((path.to_string(), format!("`{v}` is not one of {}", allowed.join(", "))));
            }
        };
        if let Some(d) = self.cfg.agent_defaults() {
            let p = "agents.defaults";
            one_of(
                d.block_streaming_default.as_deref(),
                &["on", "off"],
                &format!("{p}.blockStreamingDefault"),
                &mut bad,
            );
            one_of(
                d.block_streaming_break.as_deref(),
                &["text_end", "message_end"],
                &format!("{p}.blockStreamingBreak"),
                &mut bad,
            );
            let prefer = d.block_streaming_chunk.as_ref().and_then(|c| c.break_preference.as_deref());
            one_of(
                prefer,
                &["paragraph", "newline", "sentence"],
                &format!("{p}.blockStreamingChunk.breakPreference"),
                &mut bad,
            );
            let mode = d.human_delay.as_ref().and_then(|h| h.mode.as_deref());
            one_of(mode, &["off", "natural", "custom"], &format!("{p}.humanDelay.mode"), &mut bad);
        }
        for (i, a) in self.list() {
            let mode = a.human_delay.as_ref().and_then(|h| h.mode.as_deref());
            one_of(mode, &["off", "natural", "custom"], &format!("agents.list[{i}].humanDelay.mode"), &mut bad);
        }
        for (path, msg) in bad {
            self.err(path, msg);
        }
    }

    /// `messages.ackReactionScope` names a scope (`crate::presence`).
    fn ack_scope(&mut self) {
        let scope = self.cfg.messages.as_ref().and_then(|m| m.get("ackReactionScope")).and_then(|v| v.as_str());
        if let Some(s) = scope.filter(|s| crate::presence::AckScope::parse(s).is_none()) {
            self.err(
                "messages.ackReactionScope".into(),
                format!("`{s}` is not an ack reaction scope (one of {})", crate::presence::AckScope::NAMES),
            );
        }
    }

    /// `agents.defaults.compaction`: a mode and an identifier policy chela knows.
    fn compaction(&mut self) {
        let defaults = self.cfg.agents.as_ref().and_then(|a| a.defaults.as_ref());
        let Some(c) = defaults.and_then(|d| d.compaction.clone()) else { return };
        if let Some(mode) = c.mode.as_deref().filter(|m| *m != "default" && *m != "safeguard") {
            self.err(
                "agents.defaults.compaction.mode".into(),
                format!("`{mode}` is not a compaction mode: `default` or `safeguard`"),
            );
        }
        if let Some(p) = c.identifier_policy.as_deref().filter(|p| *p != "strict" && *p != "off") {
            self.err(
                "agents.defaults.compaction.identifierPolicy".into(),
                format!("`{p}` is not an identifier policy: `strict` or `off`"),
            );
        }
        if let Some(t) = c.thinking_level.as_deref().filter(|t| crate::compaction::summary_thinking(t).is_none()) {
            self.err(
                "agents.defaults.compaction.thinkingLevel".into(),
                format!("`{t}` is not a thinking level: {} or `inherit`", crate::thinking::LEVELS.join(", ")),
            );
        }
        if let Some(n) = c.timeout_seconds.filter(|n| *n <= 0) {
            self.err(
                "agents.defaults.compaction.timeoutSeconds".into(),
                format!("{n} is not a timeout: a whole number of seconds above 0 (default 180)"),
            );
        }
        let most = crate::compaction::MAX_RECENT_TURNS_PRESERVE;
        if let Some(n) = c.recent_turns_preserve.filter(|n| !(0..=most as i64).contains(n)) {
            self.err(
                "agents.defaults.compaction.recentTurnsPreserve".into(),
                format!("{n} is out of range: a number of turns from 0 to {most}"),
            );
        }
    }

    /// `agents.defaults.contextPruning`: a mode chela knows; a `ttl` that
    /// does not parse is a warning (OpenClaw falls back to 5m without one).
    fn context_pruning(&mut self) {
        let defaults = self.cfg.agents.as_ref().and_then(|a| a.defaults.as_ref());
        let Some(p) = defaults.and_then(|d| d.context_pruning.clone()) else { return };
        if let Some(mode) = p.mode.as_deref().filter(|m| *m != "off" && *m != "cache-ttl") {
            self.err(
                "agents.defaults.contextPruning.mode".into(),
                format!("`{mode}` is not a pruning mode: `off` or `cache-ttl`"),
            );
        }
        if let Err(e) = crate::pruning::ttl_ms(&p) {
            self.warn(
                "agents.defaults.contextPruning.ttl".into(),
                format!("{e}; the default 5m is used, as OpenClaw does"),
            );
        }
    }

    /// Heartbeat blocks: their interval, active hours and policies parse
    /// (OpenClaw's own checks and messages).
    fn heartbeats(&mut self) {
        let defaults = self.cfg.agents.as_ref().and_then(|a| a.defaults.as_ref());
        let user_tz = defaults.and_then(|d| d.user_timezone.clone());
        if let Some(tz) = user_tz.as_deref().filter(|tz| crate::schedule::Zone::parse(Some(tz)).is_none()) {
            self.err(
                "agents.defaults.userTimezone".into(),
                format!("`{tz}` is not a time zone (an IANA name such as `Europe/Vienna`)"),
            );
        }
        let mut blocks: Vec<(String, crate::config::schema::HeartbeatConfig)> = Vec::new();
        if let Some(h) = defaults.and_then(|d| d.heartbeat.clone()) {
            blocks.push(("agents.defaults.heartbeat".into(), h));
        }
        for id in self.roster.ids() {
            if let Some((path, a)) = self.cfg.agent(&id) {
                if let Some(h) = a.heartbeat.clone() {
                    blocks.push((format!("{path}.heartbeat"), h));
                }
            }
        }
        for (path, h) in blocks {
            if let Some(every) = &h.every {
                if let Err(e) = crate::schedule::parse_duration_ms(every, crate::schedule::Unit::Minutes) {
                    self.err(format!("{path}.every"), e);
                }
            }
            if let Some(p) = h.direct_policy.as_deref().filter(|p| *p != "allow" && *p != "block") {
                self.err(format!("{path}.directPolicy"), format!("`{p}` is not a direct policy: `allow` or `block`"));
            }
            if let Some(t) = h.target.as_deref().filter(|t| t.contains(':')) {
                let d = self.diagnostic(true, format!("{path}.target"), format!("`{t}` is not a heartbeat target"));
                self.out.push(d.with_help("set `target` to the channel and `to` to the recipient; `<channel>:<id>` belongs in `commands.ownerAllowFrom`"));
            }
            if let Some(a) = &h.active_hours {
                match crate::heartbeat::active_hours(a, user_tz.as_deref()) {
                    Err(e) => self.err(format!("{path}.activeHours.{}", e.field), e.message),
                    Ok(w) if w.start == w.end => self.warn(
                        format!("{path}.activeHours"),
                        "`start` equals `end`: a zero-width window, so this heartbeat never runs".into(),
                    ),
                    Ok(_) => {}
                }
            }
            if h.agent_id.is_some() && path != "agents.defaults.heartbeat" {
                self.warn(format!("{path}.agentId"), "`agentId` is read only in `agents.defaults.heartbeat`".into());
            }
        }
    }

    /// Jobs declared in `cron.jobs`: each has a unique id and no problem
    /// (the same check `chela cron add` makes).
    fn cron_jobs(&mut self) {
        if let Some(global) = self.cfg.cron.as_ref().and_then(|c| c.failure_alert.as_ref()) {
            for (field, message) in global.problems("cron.failureAlert") {
                self.err(field, message);
            }
        }
        let Some(jobs) = self.cfg.cron.as_ref().and_then(|c| c.jobs.clone()) else { return };
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, job) in jobs.iter().enumerate() {
            let path = format!("cron.jobs[{i}]");
            match job.id.as_deref() {
                None => self.err(format!("{path}.id"), "a job declared in config needs an `id`".into()),
                Some(id) => {
                    if let Some(first) = seen.insert(id.to_string(), i) {
                        self.err(
                            format!("{path}.id"),
                            format!("duplicate job id `{id}` (also at `cron.jobs[{first}]`)"),
                        );
                    }
                }
            }
            for p in job.problems(self.cfg, 0) {
                self.err(format!("{path}.{}", p.field), p.message);
            }
        }
    }

    /// `gateway.controlUi.basePath` must be a path the page can live under.
    fn control_ui(&mut self) {
        if let Some(Err(why)) = self.cfg.gateway.as_ref().and_then(|g| g.control_ui.as_ref()).map(|c| c.base()) {
            self.err("gateway.controlUi.basePath".into(), why);
        }
    }

    /// `storage.url` must be a PostgreSQL URL (the environment's is checked at start).
    fn storage_url(&mut self) {
        if let Some(Err(why)) = self.cfg.storage.as_ref().and_then(|s| s.url.as_deref()).map(crate::storage::check_url)
        {
            self.err("storage.url".into(), why);
        }
    }

    /// Settings that weaken isolation are loud.
    fn weakened_isolation(&mut self) {
        let unconfined = |exec: Option<&serde_json::Value>| {
            exec.and_then(|e| e.get("host")?.as_str()) == Some(crate::policy::UNCONFINED)
        };
        if unconfined(self.cfg.tools.as_ref().and_then(|t| t.exec.as_ref())) {
            self.warn(
                "tools.exec.host".into(),
                "`unconfined`: every agent's commands can read the gateway's state (other agents' sessions and \
                 credentials, the gateway token) and environment; only for a single-user machine"
                    .into(),
            );
        }
        let agents: Vec<usize> = self
            .list()
            .filter(|(_, a)| unconfined(a.tools.as_ref().and_then(|t| t.exec.as_ref())))
            .map(|(i, _)| i)
            .collect();
        for i in agents {
            self.warn(
                format!("{}.tools.exec.host", list_path(i)),
                "`unconfined`: this agent's commands can read the gateway's state and every other agent's files".into(),
            );
        }
    }

    /// Settings chela does not carry out.
    fn ignored_settings(&mut self) {
        let setup = |s: Option<&SandboxConfig>| s.and_then(|s| s.docker.as_ref()?.get("setupCommand")).is_some();
        if setup(self.cfg.agent_defaults().and_then(|d| d.sandbox.as_ref())) {
            self.warn(
                "agents.defaults.sandbox.docker.setupCommand".into(),
                "ignored: chela's sandbox is bubblewrap over the host's read-only system, not a container image, \
                 so there is no image to set up; install what commands need on the host"
                    .into(),
            );
        }
        let agents: Vec<usize> = self.list().filter(|(_, a)| setup(a.sandbox.as_ref())).map(|(i, _)| i).collect();
        for i in agents {
            self.warn(
                format!("{}.sandbox.docker.setupCommand", list_path(i)),
                "ignored: chela's sandbox has no container image to set up".into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn problems(text: &str) -> Vec<Diagnostic> {
        let loaded = load_str(text, Some("t.json5")).expect("loads");
        validate(&loaded, &Environment { home: "/h".into(), ..Default::default() })
    }

    #[test]
    fn unknown_binding_agent_is_an_error_with_suggestion() {
        let d = problems("{agents: {list: [{id: 'work'}, {id: 'home'}]},\n bindings: [{agentId: 'wrok', match: {channel: 'slack'}}]}");
        assert_eq!(d.len(), 1, "{d:#?}");
        assert!(d[0].is_error());
        assert_eq!(d[0].path, "bindings[0].agentId");
        assert_eq!((d[0].line, d[0].column), (2, 14));
        assert_eq!(d[0].help.as_deref(), Some("did you mean `work`?"));
    }

    #[test]
    fn a_storage_url_that_is_not_postgres_is_an_error_at_its_line_without_its_password() {
        let d = problems("{\n storage: {url: 'mysql://u:hunter2@db/chela'}}");
        assert_eq!(d.len(), 1, "{d:#?}");
        assert!(d[0].is_error());
        assert_eq!((d[0].path.as_str(), d[0].line), ("storage.url", 2));
        assert!(d[0].message.contains("not a PostgreSQL URL") && !d[0].message.contains("hunter2"), "{}", d[0].message);
        assert!(problems("{storage: {url: 'postgres://chela@db/chela'}}").is_empty());
    }

    #[test]
    fn semantic_problems_are_all_reported() {
        let d = problems(
            "{agents: {list: [{id: 'a', default: true, workspace: '/w'}, {id: 'A'}, {id: 'b', default: true, workspace: '/w'}]},
              bindings: [{agentId: 'a', match: {channel: ' ', peer: {kind: 'thread', id: ''}}}]}",
        );
        let msgs: Vec<String> = d.iter().map(|d| format!("{:?} {} {}", d.severity, d.path, d.message)).collect();
        let has = |needle: &str| msgs.iter().any(|m| m.contains(needle));
        assert!(has("duplicate agent id `a`"), "{msgs:#?}");
        assert!(has("share the workspace /w"), "{msgs:#?}");
        assert!(has("Warning agents.list[2].default"), "{msgs:#?}");
        assert!(has("`match.channel` is empty"), "{msgs:#?}");
        assert!(has("unknown peer kind `thread`"), "{msgs:#?}");
        assert!(has("peer id is empty"), "{msgs:#?}");
    }

    #[test]
    fn block_streaming_values_are_checked_where_they_are() {
        let d = problems(
            "{agents: {defaults: {blockStreamingDefault: 'yes', blockStreamingChunk: {breakPreference: 'word'}},\n list: [{id: 'a', humanDelay: {mode: 'slow'}}]}}",
        );
        let at: Vec<(String, u32)> = d.iter().filter(|d| d.is_error()).map(|d| (d.path.clone(), d.line)).collect();
        assert_eq!(
            at,
            [
                ("agents.defaults.blockStreamingDefault".to_string(), 1),
                ("agents.defaults.blockStreamingChunk.breakPreference".to_string(), 1),
                ("agents.list[0].humanDelay.mode".to_string(), 2),
            ],
            "{d:#?}"
        );
        assert!(d[0].message.contains("`yes` is not one of on, off"), "{d:#?}");
        let fine = problems("{agents: {defaults: {blockStreamingDefault: 'on', blockStreamingBreak: 'message_end'}}}");
        assert!(fine.iter().all(|d| !d.is_error()), "{fine:#?}");
    }

    #[test]
    fn valid_config_has_no_errors() {
        let d = problems(
            "{agents: {list: [{id: 'home', default: true}, {id: 'work'}]},
              bindings: [{agentId: 'work', match: {channel: 'whatsapp', accountId: 'biz'}}, {agentId: 'main', match: {channel: 'x'}}],
              channels: {whatsapp: {accounts: {biz: {}, personal: {}}}}}",
        );
        assert!(d.iter().all(|d| !d.is_error()), "{d:#?}");
    }
}
