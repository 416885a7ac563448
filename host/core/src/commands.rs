//! Chat commands (OpenClaw 2026.9.6's `docs/tools/slash-commands.md`): a
//! message that is only `/name [args]` is a command. The registry says
//! which names chela knows (with OpenClaw's aliases), what each does, and
//! whether it is built here yet; an unknown `/name` is not a command and
//! goes to the model as text, as OpenClaw does. Who may run commands is
//! `access::command_access` (owner-only ones: `access::is_owner`).
//!
//! Must not: run a command (the agent runtime does) or decide who may.

/// One command chela knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// The canonical name, without the slash.
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub usage: &'static str,
    pub summary: &'static str,
    /// `false`: OpenClaw has it and chela does not yet (the reply says so).
    pub built: bool,
}

const fn spec(
    name: &'static str,
    aliases: &'static [&'static str],
    usage: &'static str,
    summary: &'static str,
    built: bool,
) -> CommandSpec {
    CommandSpec { name, aliases, usage, summary, built }
}

/// Every command chela knows, in the order `/commands` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    spec("help", &[], "/help", "what you can ask here", true),
    spec("commands", &[], "/commands", "every command, with its usage", true),
    spec("status", &[], "/status", "this agent, its model and this session", true),
    spec("whoami", &["id"], "/whoami", "who you are to this agent", true),
    spec("new", &[], "/new [message]", "start this session over", true),
    spec("reset", &[], "/reset [message]", "start this session over", true),
    spec("model", &[], "/model [name|default]", "show or pick this session's model", true),
    spec("models", &[], "/models", "the models you can pick", true),
    spec("compact", &[], "/compact [instructions]", "summarise older messages now", true),
    spec("stop", &[], "/stop", "stop the answer being written and drop waiting messages", true),
    spec(
        "queue",
        &[],
        "/queue <steer|followup|collect|interrupt|default> [debounce:… cap:… drop:…]",
        "how messages sent mid-answer are handled",
        true,
    ),
    spec("send", &[], "/send on|off|inherit", "whether answers are delivered into this chat (owners only)", true),
    spec("think", &["thinking", "t"], "/think [level|default]", "show or set this session's thinking level", true),
    spec(
        "verbose",
        &["v"],
        "/verbose [on|off|full]",
        "list the tools each answer used (full: with their results)",
        true,
    ),
    spec(
        "elevated",
        &["elev"],
        "/elevated [on|off|ask|full]",
        "whether your commands may run outside the sandbox",
        true,
    ),
    spec(
        "exec",
        &[],
        "/exec [security=deny|allowlist|full] [ask=off|on-miss|always] [task]",
        "where this agent's commands run; a task with stricter exec rules for it alone",
        true,
    ),
    spec(
        "approve",
        &[],
        "/approve <id> allow-once|allow-always|deny",
        "answer a command's approval prompt (owners only)",
        true,
    ),
    spec(
        "loop",
        &[],
        "/loop [interval] <prompt> | status | stop [name]",
        "repeat a prompt in this chat (owners only)",
        true,
    ),
];

/// A message that is a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub spec: CommandSpec,
    /// What follows the name, trimmed (may be empty).
    pub args: String,
}

/// The command `text` is, if it is one: `/name` (any case, `/name@bot` as
/// Telegram writes it in groups) alone or followed by arguments.
pub fn parse(text: &str) -> Option<Parsed> {
    let rest = text.trim().strip_prefix('/')?;
    let (word, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    // An optional `:` between the command and its arguments (`/think: high`, `/queue:collect`).
    let (word, glued) = word.split_once(':').unwrap_or((word, ""));
    let name = word.split_once('@').map_or(word, |(n, _)| n).to_ascii_lowercase();
    let spec = COMMANDS.iter().find(|c| c.name == name || c.aliases.contains(&name.as_str()))?;
    let args = format!("{glued} {args}");
    Some(Parsed { spec: *spec, args: args.trim().to_string() })
}

/// `/exec`'s options as OpenClaw writes them (`host=… security=… ask=…
/// node=…`), then the task they come with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecDirective {
    /// `security=`/`ask=`: for the task's turn only, and only stricter.
    pub tightening: crate::policy::Tightening,
    /// `host=`/`node=` options asked for, as written.
    pub placement: Vec<String>,
    /// What follows the options (the message the model gets).
    pub task: String,
}

/// `/exec`'s arguments: leading `key=value` options, then the task; a
/// `security` or `ask` value OpenClaw does not know is an error naming it.
pub fn exec_directive(args: &str) -> Result<ExecDirective, String> {
    use crate::policy::{Ask, Security};
    let mut out = ExecDirective::default();
    let mut rest = args.trim_start();
    while !rest.is_empty() {
        let (token, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let Some((key, value)) = token.split_once('=') else { break };
        match key.to_ascii_lowercase().as_str() {
            "security" => {
                let level = Security::parse(&value.to_ascii_lowercase())
                    .ok_or_else(|| format!("`security={value}` is not a security level: deny, allowlist or full."))?;
                out.tightening.security = Some(level);
            }
            "ask" => {
                let level = Ask::parse(&value.to_ascii_lowercase())
                    .ok_or_else(|| format!("`ask={value}` is not an ask mode: off, on-miss or always."))?;
                out.tightening.ask = Some(level);
            }
            "host" | "node" => out.placement.push(token.to_string()),
            _ => break,
        }
        rest = after.trim_start();
    }
    out.task = rest.to_string();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_options_come_before_the_task() {
        use crate::policy::{Ask, Security};
        let d = exec_directive("security=allowlist ask=always inspect the  build output").unwrap();
        assert_eq!((d.tightening.security, d.tightening.ask), (Some(Security::Allowlist), Some(Ask::Always)));
        assert_eq!(d.task, "inspect the  build output", "the task as written");
        let d = exec_directive("host=node node=worker-1").unwrap();
        assert_eq!((d.placement, d.task.as_str()), (vec!["host=node".to_string(), "node=worker-1".into()], ""));
        assert_eq!(exec_directive("list a=b files").unwrap().task, "list a=b files", "options lead");
        assert_eq!(
            exec_directive("ask=sometimes run it"),
            Err("`ask=sometimes` is not an ask mode: off, on-miss or always.".into())
        );
        assert!(exec_directive("").unwrap().tightening.is_empty());
    }

    #[test]
    fn known_names_and_aliases_are_commands_and_others_are_text() {
        assert_eq!(parse("/status").map(|p| p.spec.name), Some("status"));
        assert_eq!(parse("  /STATUS@sage_bot ").map(|p| p.spec.name), Some("status"));
        assert_eq!(parse("/id").map(|p| p.spec.name), Some("whoami"));
        let p = parse("/new  fresh start ").unwrap();
        assert_eq!((p.spec.name, p.args.as_str()), ("new", "fresh start"));
        assert_eq!(parse("/frobnicate now"), None, "unknown: the model gets it");
        assert_eq!(parse("hello /status"), None, "only a message that starts with the command");
        assert_eq!(parse("/"), None);
        let p = parse("/queue: collect cap:3").unwrap();
        assert_eq!((p.spec.name, p.args.as_str()), ("queue", "collect cap:3"), "an optional colon");
        assert_eq!(parse("/think:high").map(|p| p.args), Some("high".to_string()));
    }
}
