//! Text or file → a typed [`Config`], or every problem in it.
//!
//! Loading is syntax + schema: JSON5 grammar, known keys, value types, and the
//! seed-article shapes (`agentId` alias, flat `agents.bindings`). Meaning
//! (unknown agents, shared workspaces…) is checked by [`super::validate`],
//! so `chela route` can still work on a config that loads but is invalid.
//!
//! Must not: check meaning (that is `validate`) or read anything but the one
//! file asked for and the files it `$include`s (`include.rs`).

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::de::{from_node, Sink};
use super::diagnostic::Diagnostic;
use super::openclaw_keys;
use super::schema::Config;
use super::source::{self, Node};

/// Larger files are refused before parsing (a config is kilobytes; this
/// leaves room for 100k generated bindings).
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024 * 1024;

/// A config that loaded, with its source tree (for positions) and warnings.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    /// The merged tree (`$include`s resolved); each span names its file.
    pub source: Node,
    pub file: Option<String>,
    /// The config file, then every file it `$include`s (`Span::source`).
    pub files: Vec<String>,
    pub warnings: Vec<Diagnostic>,
}

impl Loaded {
    /// Fills in the file name on diagnostics found later (validation).
    pub fn attach_file(&self, mut d: Diagnostic) -> Diagnostic {
        d.file = self.files.get(d.source as usize).cloned().or_else(|| self.file.clone());
        d
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is {size} bytes; the limit is {MAX_CONFIG_BYTES}")]
    TooLarge { path: PathBuf, size: u64 },
    #[error("{} problem(s) in {}", .diagnostics.iter().filter(|d| d.is_error()).count(), .file.as_deref().unwrap_or("config"))]
    Invalid { file: Option<String>, diagnostics: Vec<Diagnostic> },
}

impl ConfigError {
    /// All problems, for printing one per line.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            ConfigError::Invalid { diagnostics, .. } => diagnostics.clone(),
            other => vec![Diagnostic {
                severity: super::Severity::Error,
                file: None,
                line: 0,
                column: 0,
                path: String::new(),
                message: other.to_string(),
                help: None,
                unimplemented: false,
                source: 0,
            }],
        }
    }
}

pub fn load_file(path: &Path) -> Result<Loaded, ConfigError> {
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge { path: path.to_path_buf(), size: meta.len() });
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })?;
    load_str(&text, Some(&path.display().to_string()))
}

/// Parses and type-checks config text. `file` names it in diagnostics, and
/// is where its `$include`s are resolved from (`include.rs`).
pub fn load_str(text: &str, file: Option<&str>) -> Result<Loaded, ConfigError> {
    let mut files: Vec<String> = file.map(str::to_string).into_iter().collect();
    let name_of = |files: &[String], mut d: Diagnostic| {
        d.file = files.get(d.source as usize).cloned().or_else(|| file.map(str::to_string));
        d
    };
    let parsed = match source::parse(text) {
        Ok(p) => p,
        Err(e) => {
            let d = Diagnostic::error("", e.span, format!("invalid JSON5: {}", e.message));
            return Err(ConfigError::Invalid { file: file.map(str::to_string), diagnostics: vec![name_of(&files, d)] });
        }
    };
    let parsed = match resolve_includes(parsed, file, &mut files) {
        Ok(p) => p,
        Err(d) => {
            return Err(ConfigError::Invalid {
                file: file.map(str::to_string),
                diagnostics: vec![name_of(&files, *d)],
            });
        }
    };
    let with_file = |d: Diagnostic| name_of(&files, d);
    let mut warnings: Vec<Diagnostic> = parsed
        .duplicates
        .iter()
        .map(|dup| {
            Diagnostic::warning(dup.key.clone(), dup.second, format!("duplicate key `{}`; this one wins", dup.key))
                .with_help(format!("the first one is at {}", dup.first))
        })
        .collect();

    let root = parsed.root;
    // Keys and untyped values chela does not interpret are checked against OpenClaw's schema.
    let sink = Sink::consulting(openclaw_keys::classify, openclaw_keys::check_opaque);
    let config: Option<Config> = from_node(&root, "", &sink);
    let mut diagnostics = sink.diagnostics.into_inner();
    diagnostics.extend(seed_shape_problems(&root));
    diagnostics.extend(qualified_broadcasts(&root));
    let (errors, more_warnings): (Vec<_>, Vec<_>) = diagnostics.into_iter().partition(Diagnostic::is_error);
    warnings.extend(more_warnings);
    match config {
        Some(config) if errors.is_empty() => Ok(Loaded {
            config: apply_aliases(config),
            source: root,
            file: file.map(str::to_string),
            warnings: warnings.into_iter().map(with_file).collect(),
            files: files.clone(),
        }),
        _ => {
            let mut all: Vec<Diagnostic> = errors.into_iter().chain(warnings).map(with_file).collect();
            all.sort_by_key(|d| (d.source, d.line, d.column));
            Err(ConfigError::Invalid { file: file.map(str::to_string), diagnostics: all })
        }
    }
}

/// The tree with its `$include`s resolved; the included files' names are
/// added to `files` (after the config file's). A config read from no file
/// cannot include.
fn resolve_includes(
    parsed: source::Parsed,
    file: Option<&str>,
    files: &mut Vec<String>,
) -> Result<source::Parsed, Box<Diagnostic>> {
    use super::include;
    if !include::has_includes(&parsed.root) {
        return Ok(parsed);
    }
    let Some(file) = file else {
        let at = parsed.root.member(include::INCLUDE_KEY).map(|m| m.key_span).unwrap_or(parsed.root.span);
        return Err(Box::new(Diagnostic::error(
            include::INCLUDE_KEY,
            at,
            "`$include` needs the config to be read from a file",
        )));
    };
    let mut read = include::Files::default();
    let result = include::resolve(parsed.root, Path::new(file), &mut read);
    files.extend(read.paths.iter().skip(1).map(|p| p.display().to_string()));
    let root = result.map_err(Box::new)?;
    Ok(source::Parsed { root, duplicates: parsed.duplicates })
}

/// OpenClaw's agent group threads (`broadcast["<channel>:<peer>"]`): checked,
/// kept, not run; one "ignored" warning each.
fn qualified_broadcasts(root: &Node) -> Vec<Diagnostic> {
    let Some(source::Value::Object(members)) = root.get("broadcast").map(|b| &b.value) else { return Vec::new() };
    members
        .iter()
        .filter(|m| super::schema::is_qualified_broadcast_key(&m.key))
        .map(|m| {
            Diagnostic::warning(
                format!("broadcast[{:?}]", m.key),
                m.key_span,
                format!(
                    "`{}` is an OpenClaw {} agent group thread (a qualified broadcast key); chela does not implement these: ignored",
                    m.key,
                    openclaw_keys::OPENCLAW_VERSION
                ),
            )
            .unimplemented()
            .with_help(format!(
                "instead: an unqualified key (`{}`) broadcasts to every listed agent, each in its own session",
                m.key.split_once(':').map_or(m.key.as_str(), |(_, p)| p)
            ))
        })
        .collect()
}

/// `agents.list[].agentId` → `id`; `channels` split into the channel
/// sections and `channels.defaults`.
fn apply_aliases(mut config: Config) -> Config {
    if let Some(section) = config.channels_section.take() {
        config.channels = Some(section.named);
        config.channel_defaults = section.defaults.map(super::schema::ChannelDefaults::into_section);
    }
    if let Some(list) = config.agents.as_mut().and_then(|a| a.list.as_mut()) {
        for agent in list {
            if agent.id.is_none() {
                agent.id = agent.agent_id.clone();
            }
        }
    }
    config
}

/// The seed article's shapes: warn on `agentId`, reject flat `agents.bindings`.
fn seed_shape_problems(root: &Node) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(agents) = root.get("agents") else {
        return out;
    };
    if let Some(super::source::Value::Array(list)) = agents.get("list").map(|n| &n.value) {
        for (i, agent) in list.iter().enumerate() {
            let path = format!("agents.list[{i}]");
            match (agent.member("id"), agent.member("agentId")) {
                (None, Some(m)) => out.push(
                    Diagnostic::warning(
                        format!("{path}.agentId"),
                        m.key_span,
                        "`agentId` is accepted as an alias of `id`",
                    )
                    .with_help("rename it to `id`"),
                ),
                (Some(_), Some(m)) => out.push(Diagnostic::error(
                    format!("{path}.agentId"),
                    m.key_span,
                    "both `id` and its alias `agentId` are set; keep only `id`",
                )),
                _ => {}
            }
        }
    }
    if let Some(m) = agents.member("bindings") {
        out.push(
            Diagnostic::error(
                "agents.bindings",
                m.key_span,
                "`agents.bindings` is not a config key; bindings live at the top level as `bindings`",
            )
            .with_help(format!("use this instead:\nbindings: {}", equivalent_bindings(&m.value.to_json()))),
        );
    }
    out
}

fn equivalent_bindings(flat: &Json) -> String {
    serde_json::to_string_pretty(&Json::Array(seed_bindings(flat))).unwrap_or_default()
}

/// Translates the seed article's `[{agentId, channel, groupId|peerId, accountId}]`
/// into top-level `bindings` entries (`chela doctor --fix` writes them).
pub fn seed_bindings(flat: &Json) -> Vec<Json> {
    flat.as_array()
        .map(|a| {
            a.iter()
                .map(|b| {
                    let get = |k: &str| b.get(k).cloned();
                    let mut m = serde_json::Map::new();
                    if let Some(c) = get("channel") {
                        m.insert("channel".into(), c);
                    }
                    if let Some(a) = get("accountId") {
                        m.insert("accountId".into(), a);
                    }
                    if let Some(g) = get("groupId") {
                        m.insert("peer".into(), serde_json::json!({"kind": "group", "id": g}));
                    } else if let Some(p) = get("peerId") {
                        m.insert("peer".into(), serde_json::json!({"kind": "direct", "id": p}));
                    }
                    for k in ["guildId", "teamId", "roles"] {
                        if let Some(v) = get(k) {
                            m.insert(k.into(), v);
                        }
                    }
                    serde_json::json!({"agentId": get("agentId").unwrap_or(Json::Null), "match": m})
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_wrong_broadcast_entry_is_an_error_and_qualified_groups_are_kept_but_ignored() {
        // A custom `Deserialize` error used to vanish (the whole section became empty).
        let e = load_str(r#"{ broadcast: { "-1001": "ops" } }"#, Some("c.json5")).unwrap_err();
        let d = e.diagnostics();
        assert!(d.iter().any(|d| d.path == "broadcast" && d.message.contains("list of agent ids")), "{d:?}");
        let loaded = load_str(
            r#"{ broadcast: { "-1001": ["work", "ops"], "telegram:-100123": { agents: ["work"], maxRounds: 2 } } }"#,
            Some("c.json5"),
        )
        .expect("loads");
        let bc = loaded.config.broadcast.expect("broadcast kept");
        assert_eq!(bc.groups["-1001"], ["work", "ops"], "unqualified entries beside a qualified one still run");
        assert_eq!(bc.qualified["telegram:-100123"], ["work"]);
        let w = loaded.warnings.iter().find(|w| w.path == "broadcast[\"telegram:-100123\"]").expect("warned");
        assert!(w.unimplemented && w.help.as_deref().is_some_and(|h| h.contains("`-100123`")), "{w:?}");
        for bad in [
            r#"{ broadcast: { "telegram:-1": { agents: ["a"], maxRounds: 9 } } }"#,
            r#"{ broadcast: { "telegram:-1": { agents: ["a"], extra: 1 } } }"#,
            r#"{ broadcast: { "-1": { agents: ["a"] } } }"#,
        ] {
            assert!(load_str(bad, None).is_err(), "{bad}");
        }
    }

    use super::*;

    #[test]
    fn openclaw_shaped_file_loads() {
        let text = r#"{
          // OpenClaw config with sections chela does not interpret yet
          meta: {lastTouchedVersion: "2026.9.6"},
          agents: {
            defaults: {workspace: "~/.openclaw/workspace", model: {primary: "anthropic/claude-sonnet-4-5"}},
            list: [{id: "main", default: true}, {id: "work", workspace: "~/w", tools: {deny: ["exec"]}}],
          },
          bindings: [{agentId: "work", match: {channel: "slack", teamId: "T1"}}],
          channels: {telegram: {botToken: "x", dmPolicy: "pairing", accounts: {ops: {botToken: "y"}}}},
          session: {dmScope: "per-channel-peer", identityLinks: {alice: ["telegram:1"]}},
          tools: {profile: "coding", agentToAgent: {enabled: false}},
          gateway: {port: 18789, bind: "loopback", auth: {mode: "token"}},
        }"#;
        let loaded = load_str(text, Some("openclaw.json")).expect("loads");
        assert_eq!(loaded.config.bindings.as_ref().unwrap().len(), 1);
        let tg = &loaded.config.channels.as_ref().unwrap()["telegram"];
        assert!(tg.top.settings.contains_key("botToken"));
        assert!(tg.accounts.as_ref().unwrap().contains_key("ops"));
    }

    #[test]
    fn channels_defaults_is_the_shared_baseline_read_strictly() {
        use crate::config::schema::GroupPolicy;
        let loaded = load_str(
            "{ channels: {\n defaults: { groupPolicy: 'allowlist', heartbeatVisibility: { showOk: true },\n   botLoopProtection: { enabled: true }, implicitMentions: { replyToBot: false } },\n modelByChannel: { telegram: { '-100': 'openai/gpt-5' } },\n telegram: { botToken: 'x' } } }",
            Some("c.json5"),
        )
        .expect("loads");
        let channels = loaded.config.channels.as_ref().expect("channels");
        assert_eq!(channels.keys().collect::<Vec<_>>(), ["telegram"], "defaults and modelByChannel are not channels");
        let baseline = &loaded.config.channel_defaults.as_ref().expect("baseline").top;
        assert_eq!(baseline.group_policy, Some(GroupPolicy::Allowlist));
        assert_eq!(baseline.heartbeat_visibility.as_ref().and_then(|v| v.show_ok), Some(true));
        assert_eq!(
            baseline.bot_loop_protection.and_then(|b| b.enabled),
            Some(true),
            "botLoopProtection is read (crate::bot_loop)"
        );
        let w = loaded.warnings.iter().find(|w| w.path == "channels.defaults.implicitMentions");
        let w = w.unwrap_or_else(|| panic!("implicitMentions warned: {:?}", loaded.warnings));
        assert!(w.unimplemented && w.message.contains("ignored") && w.line == 3, "{w:?}");
        assert!(!loaded.warnings.iter().any(|w| w.path.contains("botLoopProtection")), "{:?}", loaded.warnings);

        // A key OpenClaw does not define there, and a wrong type in an ignored one, are errors.
        let err = load_str(
            "{ channels: { defaults: { groupPolicy: 'open', dmPolicy: 'open',\n botLoopProtection: { enabled: 'yes' } } } }",
            Some("c.json5"),
        )
        .unwrap_err();
        let d = err.diagnostics();
        let paths: Vec<&str> = d.iter().filter(|d| d.is_error()).map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["channels.defaults.dmPolicy", "channels.defaults.botLoopProtection.enabled"], "{d:#?}");
        assert!(d.iter().all(|d| d.file.as_deref() == Some("c.json5") && d.line > 0), "{d:#?}");
        let bad_map = load_str("{ channels: { modelByChannel: { telegram: 3 } } }", None).unwrap_err();
        assert!(bad_map.diagnostics().iter().any(|d| d.path.starts_with("channels.modelByChannel")), "{bad_map:?}");
    }

    #[test]
    fn every_problem_is_reported_with_position() {
        let text = "{\n agents: {list: [{id: 'a', worspace: '/x'}, {id: 3}]},\n bindings: [null, {agentId: 'a', match: {channel: 'x', peer: {kind: 'dm', id: 'p'}, acount: 'b'}}],\n sesion: {},\n}";
        let err = load_str(text, Some("c.json5")).unwrap_err();
        let d = err.diagnostics();
        let paths: Vec<&str> = d.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["agents.list[0].worspace", "agents.list[1].id", "bindings[0]", "bindings[1].match.acount", "sesion"],
            "{d:#?}"
        );
        assert!(d.iter().all(|d| d.file.as_deref() == Some("c.json5") && d.line > 0));
        assert_eq!(d[0].help.as_deref(), Some("did you mean `workspace`?"));
        assert_eq!(d[4].help.as_deref(), Some("did you mean `session`?"));
    }

    #[test]
    fn agent_id_alias_warns_and_flat_bindings_are_rejected_with_equivalent() {
        let ok = load_str("{agents: {list: [{agentId: 'work'}]}}", None).unwrap();
        assert_eq!(ok.config.agents.unwrap().list.unwrap()[0].id.as_deref(), Some("work"));
        assert!(ok.warnings.iter().any(|w| w.path == "agents.list[0].agentId"));

        let err = load_str(
            "{agents: {list: [{id: 'w'}], bindings: [{agentId: 'w', channel: 'whatsapp', groupId: '123@g.us'}]}}",
            None,
        )
        .unwrap_err();
        let d = err.diagnostics();
        let flat = d.iter().find(|d| d.path == "agents.bindings").expect("flat bindings reported");
        let help = flat.help.as_deref().unwrap();
        assert!(help.contains("\"kind\": \"group\"") && help.contains("123@g.us"), "{help}");
    }

    #[test]
    fn syntax_error_is_one_diagnostic_with_position() {
        let err = load_str("{\n  agents: {\n    list: [,]\n  }\n}", Some("bad.json")).unwrap_err();
        let d = err.diagnostics();
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].line, d[0].column), (3, 12));
    }
}
