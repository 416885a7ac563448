//! The built-in offline model: no key, no network, deterministic. It answers
//! in the agent's persona (name, and the first line of SOUL.md), counts the
//! conversation's turns (so session continuity is visible), and calls tools
//! when asked: `/tool NAME {json}` in a message, or rules from a script file
//! `<agentDir>/offline-script.json5`:
//!
//! ```json5
//! { rules: [ { when: "count words", tool: "word_count", arguments: { text: "{{message}}" },
//!              reply: "Counted: {{result}}" } ] }
//! ```
//! `when` matches case-insensitively as a substring (`"*"`: any message);
//! `{{message}}` is the user's text, `{{result}}` the tool's answer.
//! A compaction summary request gets a deterministic summary that counts
//! what it summarised and quotes the first and latest requests, carried
//! over from the previous summary (bounded however often it runs). A
//! heartbeat poll is answered with its first queued system event, else the
//! first item of HEARTBEAT.md, as its alert, or `NO_REPLY` when it has neither.
//!
//! Must not: reach the network or depend on anything outside the request and the agent's own dir.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::{BoxFuture, ModelReply, ModelRequest, Provider, ProviderError};
use crate::store::{Content, Message, Usage};

pub struct Offline;

pub const SCRIPT_FILE: &str = "offline-script.json5";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Script {
    #[serde(default)]
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    when: String,
    #[serde(default)]
    tool: Option<String>,
    #[serde(default)]
    arguments: Option<Value>,
    #[serde(default)]
    reply: Option<String>,
}

impl Rule {
    fn matches(&self, text: &str) -> bool {
        self.when == "*" || text.to_lowercase().contains(&self.when.to_lowercase())
    }
}

fn load_script(agent_dir: &Path) -> Result<Script, ProviderError> {
    let path = agent_dir.join(SCRIPT_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(Script::default()) };
    let err = |message: String| ProviderError::Script { path: path.display().to_string(), message };
    let parsed = chela_core::config::source::parse(&text).map_err(|e| err(e.to_string()))?;
    serde_json::from_value(parsed.root.to_json()).map_err(|e| err(e.to_string()))
}

/// Replaces `{{message}}` inside every string of `v`.
fn fill(v: &Value, message: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("{{message}}", message)),
        Value::Array(a) => Value::Array(a.iter().map(|x| fill(x, message)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), fill(x, message))).collect()),
        other => other.clone(),
    }
}

/// The opening sentence of SOUL.md as injected into the system prompt
/// (its own headings skipped; the section ends at the next injected file).
fn soul_line(system: &str) -> Option<String> {
    let rest = &system[system.find("## SOUL.md\n")? + "## SOUL.md\n".len()..];
    let end = crate::persona::BOOTSTRAP_FILES
        .iter()
        .map(|f| format!("\n## {f}\n"))
        .chain(["\n# Current Date".to_string()])
        .filter_map(|marker| rest.find(&marker))
        .min()
        .unwrap_or(rest.len());
    // The first paragraph's first sentence.
    let paragraph: Vec<&str> = rest[..end]
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty() || l.starts_with('#') || l.starts_with('['))
        .take_while(|l| !l.is_empty())
        .collect();
    let text = paragraph.join(" ");
    let sentence = match text.find(". ") {
        Some(i) => &text[..=i],
        None => text.as_str(),
    };
    (!sentence.is_empty()).then(|| sentence.to_string())
}

fn text(t: String) -> Vec<Content> {
    vec![Content::Text { text: t }]
}

/// The line of a previous offline summary that starts with `label`, without it.
fn summary_field<'a>(summary: &'a str, label: &str) -> Option<&'a str> {
    summary.lines().find_map(|l| l.strip_prefix(label)).map(str::trim)
}

fn quoted(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = one_line.chars().take(120).collect();
    if cut.len() < one_line.len() {
        format!("“{cut}…”")
    } else {
        format!("“{cut}”")
    }
}

/// The offline model's compaction summary of a `compaction::summary_input` text.
fn summarise(input: &str) -> String {
    let previous = input
        .split_once("<previous-summary>\n")
        .and_then(|(_, rest)| rest.split_once("\n</previous-summary>"))
        .map(|(p, _)| p);
    let conversation = input
        .split_once("<conversation>\n")
        .and_then(|(_, rest)| rest.rsplit_once("</conversation>"))
        .map_or("", |(c, _)| c);
    let count = |prefix: &str| conversation.lines().filter(|l| l.starts_with(prefix)).count();
    let (users, answers, tools) = (count("[User]: "), count("[Assistant]: "), count("[Tool "));
    let requests: Vec<&str> = conversation.lines().filter_map(|l| l.strip_prefix("[User]: ")).collect();
    let before: usize = previous
        .and_then(|p| summary_field(p, "- Messages summarised so far: "))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let first = previous
        .and_then(|p| summary_field(p, "- First request: "))
        .map(str::to_string)
        .or_else(|| requests.first().map(|r| quoted(r)))
        .unwrap_or_else(|| "(none)".into());
    let mut out = format!(
        "## Summary (offline model)\n- Messages summarised so far: {} (this pass: {users} from the user, {answers} answers, {tools} tool results)\n- First request: {first}",
        before + users + answers + tools
    );
    if let Some(latest) = requests.last() {
        out.push_str(&format!("\n- Latest request summarised: {}", quoted(latest)));
    }
    if let Some(focus) = input.split_once("<focus>").and_then(|(_, r)| r.split_once("</focus>")).map(|(f, _)| f) {
        out.push_str(&format!("\n- Focus: {focus}"));
    }
    out
}

/// The offline summary in `safeguard` mode's sections: it as the
/// decisions, the latest request as the pending ask, and every exact
/// identifier of the input, so it passes the quality audit.
fn structured(summary: &str, input: &str) -> String {
    let latest = input.lines().rev().find_map(|l| l.strip_prefix("[User]: "));
    let ids = crate::summary_quality::identifiers(input);
    let list = |items: Vec<String>| if items.is_empty() { "- none".to_string() } else { items.join("\n") };
    let [decisions, todos, rules, asks, exact] = chela_core::compaction::REQUIRED_SECTIONS;
    format!(
        "{decisions}\n{summary}\n{todos}\n- none recorded (offline model)\n{rules}\n- none recorded (offline model)\n\
         {asks}\n{}\n{exact}\n{}",
        list(latest.map(|l| format!("- {}", quoted(l))).into_iter().collect()),
        list(ids.iter().map(|i| format!("- {i}")).collect())
    )
}

/// A heartbeat poll (the gateway's `# Heartbeat poll` prompt section): the
/// first item of the monitor scratch (HEARTBEAT.md) as the alert, or
/// `NO_REPLY` when there is none — deterministic, and quiet by default.
fn heartbeat_reply(system: &str) -> Option<String> {
    let (_, poll) = system.split_once("# Heartbeat poll\n")?;
    if let Some((_, events)) = poll.split_once("## System events since the last heartbeat\n") {
        let first = events.lines().next().unwrap_or("").trim().trim_start_matches("- ");
        return Some(format!("Heartbeat: {first}"));
    }
    let Some((_, scratch)) = poll.split_once("## Heartbeat monitor scratch") else {
        return Some(chela_core::heartbeat::SILENT_REPLY.to_string());
    };
    let item = scratch
        .lines()
        .skip(1)
        .map(|l| l.trim().trim_start_matches(['-', '*', ' ']).trim())
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    Some(match item {
        Some(item) => format!("Heartbeat: {item}"),
        None => chela_core::heartbeat::SILENT_REPLY.to_string(),
    })
}

impl Offline {
    fn answer(&self, req: &ModelRequest) -> Result<ModelReply, ProviderError> {
        if req.purpose == super::Purpose::Summary {
            let input = req.messages.last().map(|m| m.text()).unwrap_or_default();
            let mut summary = summarise(&input);
            if req.system.contains("## Exact identifiers") {
                summary = structured(&summary, &input);
            }
            let usage = Usage { input: input.len() as u64 / 4, output: summary.len() as u64 / 4, ..Usage::default() };
            return Ok(ModelReply { content: text(summary), usage, stop_reason: "stop".into() });
        }
        let script = load_script(&req.agent_dir)?;
        let last_user = req.messages.iter().rev().find(|m| matches!(m.as_ref(), Message::User { .. }));
        let said = last_user.map(|m| m.text()).unwrap_or_default();
        let who = match &req.identity.emoji {
            Some(e) => format!("{e} {}", req.identity.name),
            None => req.identity.name.clone(),
        };
        let reply = |content: Vec<Content>, stop: &str| ModelReply {
            usage: Usage {
                input: (req.system.len() + req.messages.iter().map(|m| m.text_len()).sum::<usize>()) as u64 / 4,
                output: content
                    .iter()
                    .map(|c| if let Content::Text { text } = c { text.len() as u64 / 4 } else { 8 })
                    .sum(),
                ..Usage::default()
            },
            content,
            stop_reason: stop.to_string(),
        };
        let has_tool = |name: &str| req.tools.iter().any(|t| t.name == name);

        // After tool results: report them (through the rule's reply if it has one).
        if let Some(Message::ToolResult { .. }) = req.messages.last().map(|m| m.as_ref()) {
            let results: Vec<(String, String, bool)> = req
                .messages
                .iter()
                .rev()
                .take_while(|m| matches!(m.as_ref(), Message::ToolResult { .. }))
                .filter_map(|m| match m.as_ref() {
                    Message::ToolResult { tool_name, is_error, .. } => Some((tool_name.clone(), m.text(), *is_error)),
                    _ => None,
                })
                .collect();
            let rule_reply =
                script.rules.iter().find(|r| r.matches(&said) && r.tool.is_some()).and_then(|r| r.reply.clone());
            let body = results
                .iter()
                .rev()
                .map(|(name, out, err)| match (&rule_reply, err) {
                    (Some(t), false) => t.replace("{{result}}", out).replace("{{message}}", &said),
                    (_, true) => format!("{who}: the tool `{name}` failed: {out}"),
                    (None, false) => format!("{who}: `{name}` says: {out}"),
                })
                .collect::<Vec<_>>()
                .join("\n");
            return Ok(reply(text(body), "stop"));
        }

        let call = |name: &str, arguments: Value| {
            if !has_tool(name) {
                return reply(text(format!("{who}: I have no tool `{name}` in this session.")), "stop");
            }
            let id = format!("call_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            reply(vec![Content::ToolCall { id, name: name.to_string(), arguments }], "toolUse")
        };

        if let Some(rest) = said.trim().strip_prefix("/tool ") {
            let (name, args) = rest.trim().split_once(char::is_whitespace).unwrap_or((rest.trim(), "{}"));
            return Ok(match chela_core::config::source::parse(args).map(|p| p.root.to_json()) {
                Ok(v @ Value::Object(_)) => call(name, v),
                _ => reply(text(format!("{who}: usage: /tool NAME {{\"json\": \"arguments\"}}")), "stop"),
            });
        }
        if let Some(rule) = script.rules.iter().find(|r| r.matches(&said)) {
            if let Some(tool) = &rule.tool {
                let args = rule.arguments.as_ref().map(|a| fill(a, &said)).unwrap_or_else(|| serde_json::json!({}));
                return Ok(call(tool, args));
            }
            if let Some(t) = &rule.reply {
                return Ok(reply(text(t.replace("{{message}}", &said)), "stop"));
            }
        }
        if let Some(reply_line) = heartbeat_reply(&req.system) {
            return Ok(reply(text(reply_line), "stop"));
        }
        let turn = req.messages.iter().filter(|m| matches!(m.as_ref(), Message::User { .. })).count();
        let mut out = format!("{who} (agent `{}`) here.", req.identity.agent_id);
        if let Some(soul) = soul_line(&req.system) {
            out.push_str(&format!(" {soul}"));
        }
        out.push_str(&format!(" You said: “{said}” (message {turn} of this conversation)."));
        // What came with it, so the media path shows offline.
        let images: Vec<String> = last_user
            .into_iter()
            .flat_map(|m| m.images())
            .map(|(mime, data)| {
                let bytes = data.len() / 4 * 3 - data.bytes().rev().take_while(|b| *b == b'=').count();
                format!("an image ({mime}, {})", chela_core::media::human_size(bytes as u64))
            })
            .collect();
        if !images.is_empty() {
            out.push_str(&format!(" I see {}.", images.join(" and ")));
        }
        Ok(reply(text(out), "stop"))
    }
}

impl Provider for Offline {
    fn id(&self) -> &str {
        "offline"
    }

    fn complete<'a>(&'a self, request: &'a ModelRequest) -> BoxFuture<'a, Result<ModelReply, ProviderError>> {
        Box::pin(async move {
            let reply = self.answer(request)?;
            // Streamed word by word, as a remote model would.
            for c in &reply.content {
                if let Content::Text { text } = c {
                    for word in text.split_inclusive(' ') {
                        request.emit(word);
                    }
                }
            }
            Ok(reply)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ToolSpec;
    use crate::persona::Identity;

    fn request(dir: &Path, messages: Vec<Message>, tools: &[&str]) -> ModelRequest {
        ModelRequest {
            purpose: Default::default(),
            sampling: Default::default(),
            model: "persona".into(),
            system: "# Workspace Files (injected)\n## SOUL.md\nCalm and precise.\n".into(),
            messages: messages.into_iter().map(std::sync::Arc::new).collect(),
            tools: tools
                .iter()
                .map(|n| ToolSpec { name: n.to_string(), description: String::new(), parameters: Value::Null })
                .collect(),
            identity: Identity { agent_id: "work".into(), name: "Atlas".into(), emoji: None },
            agent_dir: dir.to_path_buf(),
            on_text: None,
            thinking: None,
            tool_clearing: None,
        }
    }

    #[test]
    fn a_safeguard_summary_passes_the_quality_audit() {
        let dir = tempfile::tempdir().unwrap();
        let history: crate::store::History = vec![
            std::sync::Arc::new(Message::user("ship release 9c41be07 to https://example.com/releases", 1)),
            std::sync::Arc::new(Message::user("then archive /var/lib/app/old please", 2)),
        ];
        let input = crate::compaction::summary_input(None, &history, None);
        let mut req = request(dir.path(), vec![Message::user(&input, 3)], &[]);
        req.purpose = super::super::Purpose::Summary;
        req.system = crate::summary_quality::safeguard_system(true);
        let r = Offline.answer(&req).unwrap();
        let summary = r.text();
        let ids = crate::summary_quality::identifiers(&input);
        assert_eq!(ids.len(), 3, "{ids:?}");
        let latest = crate::summary_quality::latest_ask(&history);
        let reasons = crate::summary_quality::audit(&summary, &ids, latest.as_deref());
        assert!(reasons.is_empty(), "{reasons:?}\n{summary}");
    }

    #[test]
    fn persona_reply_counts_turns() {
        let dir = tempfile::tempdir().unwrap();
        let msgs = vec![Message::user("a", 1), Message::user("hello", 2)];
        let r = Offline.answer(&request(dir.path(), msgs, &[])).unwrap();
        assert_eq!(
            Message::Assistant {
                content: r.content,
                timestamp: 0,
                provider: String::new(),
                model: String::new(),
                usage: r.usage,
                stop_reason: r.stop_reason
            }
            .text(),
            "Atlas (agent `work`) here. Calm and precise. You said: “hello” (message 2 of this conversation)."
        );
    }

    #[test]
    fn summaries_count_and_carry_over_from_the_previous_one() {
        let first = summarise(
            "<conversation>\n[User]: plan a trip to Lisbon\n[Assistant]: ok\n[User]: in May\n</conversation>\n",
        );
        assert!(first.contains("so far: 3 (this pass: 2 from the user, 1 answers, 0 tool results)"), "{first}");
        assert!(
            first.contains("First request: “plan a trip to Lisbon”")
                && first.contains("Latest request summarised: “in May”")
        );
        let input = format!(
            "<previous-summary>\n{first}\n</previous-summary>\n\n<conversation>\n[User]: book it\n[Tool result: x]: done\n</conversation>\n\n<focus>dates</focus>\n"
        );
        let second = summarise(&input);
        assert!(second.contains("so far: 5 ") && second.contains("First request: “plan a trip to Lisbon”"), "{second}");
        assert!(second.ends_with("- Focus: dates") && second.len() < first.len() + 40, "{second}");
    }

    #[test]
    fn script_calls_tools_only_when_the_agent_has_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(SCRIPT_FILE),
            "{rules: [{when: 'count', tool: 'word_count', arguments: {text: '{{message}}'}, reply: 'Counted: {{result}}'}]}",
        )
        .unwrap();
        let r =
            Offline.answer(&request(dir.path(), vec![Message::user("count these words", 1)], &["word_count"])).unwrap();
        assert_eq!(r.stop_reason, "toolUse");
        let Content::ToolCall { name, arguments, .. } = &r.content[0] else { panic!("{r:?}") };
        assert_eq!((name.as_str(), arguments["text"].as_str()), ("word_count", Some("count these words")));
        let denied = Offline.answer(&request(dir.path(), vec![Message::user("count", 1)], &[])).unwrap();
        assert!(matches!(&denied.content[0], Content::Text { text } if text.contains("no tool `word_count`")));
        let after = vec![
            Message::user("count these words", 1),
            Message::ToolResult {
                tool_call_id: "c".into(),
                tool_name: "word_count".into(),
                content: vec![Content::Text { text: "3".into() }],
                is_error: false,
                timestamp: 2,
            },
        ];
        let r = Offline.answer(&request(dir.path(), after, &["word_count"])).unwrap();
        assert_eq!(r.content, vec![Content::Text { text: "Counted: 3".into() }]);
        std::fs::write(dir.path().join(SCRIPT_FILE), "{rules: [{when: 1}]}").unwrap();
        let err = Offline.answer(&request(dir.path(), vec![Message::user("x", 1)], &[])).unwrap_err();
        assert!(err.to_string().contains(SCRIPT_FILE), "{err}");
    }
}
