//! `/loop` (OpenClaw's `commands-loop`): a recurring agent turn bound to
//! the conversation it was asked in. `/loop 5m check deploy status` makes a
//! job that runs `check deploy status` every 5 minutes in this session
//! (`sessionTarget: "current"`), answering here; `/loop status` lists the
//! conversation's loops, `/loop stop [name]` removes them. A loop's name
//! starts with `loop[<tag>]`, the tag the first 12 hex digits of the
//! SHA-256 of the session key (OpenClaw's), so a conversation only ever
//! sees and stops its own loops.
//!
//! Without an interval the loop self-paces, as OpenClaw's: it starts at
//! the 15-minute cadence with `pacing: { min: "1m", max: "1h" }`, and its
//! message asks the agent to call the `automations` tool's `next_check`
//! before replying, checking more often while the task is active and
//! backing off toward an hour while it is quiet (`crate::pacing`).
//!
//! Must not: store or run a job (the gateway's scheduler does), or decide
//! who may ask (`/loop` is owner-only: `access::is_owner`).

use sha2::{Digest, Sha256};

use crate::cron_job::{Delivery, JobSpec, Payload};
use crate::pacing::Pacing;
use crate::schedule::{parse_duration_ms, ScheduleSpec, Unit};

/// OpenClaw's shortest loop interval.
pub const MIN_INTERVAL_MS: u64 = 30_000;
/// OpenClaw's cadence of a loop given no interval.
pub const DEFAULT_INTERVAL_MS: u64 = 900_000;
/// The prompt's share of a loop's name.
const NAME_MAX_CHARS: usize = 40;

pub const USAGE: &str =
    "Usage: /loop [interval] <prompt> — repeat a prompt in this chat (e.g. /loop 5m check deploy status). \
/loop status lists loops; /loop stop [name] stops.";

/// What `/loop <args>` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoopCommand {
    Help,
    Status,
    /// Stop this conversation's loops, or those whose name contains the text.
    Stop(Option<String>),
    Start {
        every_ms: u64,
        prompt: String,
        /// No interval was given: the loop paces itself (`next_check`).
        self_paced: bool,
    },
}

/// Reads `/loop`'s arguments; `Err` is the reply (usage, or why).
pub fn parse(args: &str) -> Result<LoopCommand, String> {
    let spec = args.trim();
    if spec.is_empty() || spec.eq_ignore_ascii_case("help") {
        return Ok(LoopCommand::Help);
    }
    if spec.eq_ignore_ascii_case("status") {
        return Ok(LoopCommand::Status);
    }
    let (first, rest) = spec.split_once(char::is_whitespace).unwrap_or((spec, ""));
    let rest = rest.trim();
    if first.eq_ignore_ascii_case("stop") {
        return Ok(LoopCommand::Stop(Some(rest.to_string()).filter(|n| !n.is_empty())));
    }
    // A leading duration is the interval (a bare number is milliseconds, as OpenClaw reads it).
    match parse_duration_ms(first, Unit::Millis) {
        Ok(every_ms) if every_ms < MIN_INTERVAL_MS => Err(format!("{USAGE} Minimum interval 30s.")),
        Ok(_) if rest.is_empty() => Err(USAGE.to_string()),
        Ok(every_ms) => Ok(LoopCommand::Start { every_ms, prompt: rest.to_string(), self_paced: false }),
        Err(_) => Ok(LoopCommand::Start { every_ms: DEFAULT_INTERVAL_MS, prompt: spec.to_string(), self_paced: true }),
    }
}

/// `loop[<tag>]`: what every loop name of the conversation `session_key` starts with.
pub fn name_prefix(session_key: &str) -> String {
    let digest = Sha256::digest(session_key.as_bytes());
    let tag: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("loop[{tag}]")
}

/// The loop's name: the prefix and the prompt's first 40 characters.
pub fn name(session_key: &str, prompt: &str) -> String {
    let short: String = prompt.trim().chars().take(NAME_MAX_CHARS).collect();
    format!("{} {}", name_prefix(session_key), short.trim_end())
}

/// Whose loop it is and where it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopAt {
    pub agent: String,
    pub now_ms: i64,
    pub chat: Option<LoopChat>,
}

/// The chat a loop answers in: where `/loop` was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopChat {
    pub channel: String,
    pub to: String,
    pub account_id: String,
    pub thread_id: Option<String>,
}

/// A self-paced loop's bounds (OpenClaw's).
pub const SELF_PACED_MIN: &str = "1m";
pub const SELF_PACED_MAX: &str = "1h";

/// The job a loop is: `agent`'s turn every `every_ms` in `session_key`
/// (`self_paced`: paced by the agent between 1 minute and 1 hour from
/// there), with OpenClaw's loop message, announced in `chat` (the
/// conversation's own chat, so a session that has only seen commands still
/// has a route); `id` is the store's id for it.
pub fn job(id: &str, session_key: &str, every_ms: u64, prompt: &str, self_paced: bool, at: LoopAt) -> JobSpec {
    let LoopAt { agent, now_ms, chat } = at;
    let short: String = prompt.trim().chars().take(NAME_MAX_CHARS).collect();
    let mut message = format!(
        "[loop {}] {}\nDo the task and reply concisely. If nothing changed since the last run, reply briefly.",
        short.trim_end(),
        prompt.trim()
    );
    if self_paced {
        message.push_str(
            "\nBefore replying, ALWAYS call the automations tool action:\"next_check\" with in:\"<duration>\" — \
             pick the next check interval from how active the task is; back off toward 1h when quiet.",
        );
    }
    JobSpec {
        id: Some(id.to_string()),
        name: Some(name(session_key, prompt)),
        agent_id: Some(agent.to_string()),
        enabled: None,
        schedule: ScheduleSpec::Every { every_ms: Some(every_ms), every: None, anchor_ms: Some(now_ms) },
        session_target: Some("current".into()),
        session_key: Some(session_key.to_string()),
        payload: Payload::AgentTurn { message, model: None, light_context: None },
        delivery: chat.map(|c| Delivery {
            mode: Some("announce".into()),
            channel: Some(c.channel),
            to: Some(c.to),
            account_id: Some(c.account_id),
            thread_id: c.thread_id,
            ..Delivery::default()
        }),
        delete_after_run: None,
        timeout_seconds: None,
        wake_mode: None,
        failure_alert: None,
        pacing: self_paced.then(|| Pacing { min: Some(SELF_PACED_MIN.into()), max: Some(SELF_PACED_MAX.into()) }),
    }
}

/// Whether the job named `job_name` is one of the conversation's loops that
/// `/loop stop [name]` means (`wanted` `None`: all of them).
pub fn stops(session_key: &str, job_name: &str, wanted: Option<&str>) -> bool {
    let Some(rest) = job_name.strip_prefix(&name_prefix(session_key)) else { return false };
    wanted.is_none_or(|w| rest.to_lowercase().contains(&w.trim().to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_read_as_openclaw_reads_them() {
        assert_eq!(parse(""), Ok(LoopCommand::Help));
        assert_eq!(parse("STATUS"), Ok(LoopCommand::Status));
        assert_eq!(parse("stop"), Ok(LoopCommand::Stop(None)));
        assert_eq!(parse("stop deploy"), Ok(LoopCommand::Stop(Some("deploy".into()))));
        assert_eq!(
            parse("5m check deploy status"),
            Ok(LoopCommand::Start { every_ms: 300_000, prompt: "check deploy status".into(), self_paced: false })
        );
        assert_eq!(
            parse("watch for new issues"),
            Ok(LoopCommand::Start {
                every_ms: DEFAULT_INTERVAL_MS,
                prompt: "watch for new issues".into(),
                self_paced: true
            })
        );
        assert!(parse("10s too often").unwrap_err().contains("Minimum interval 30s"));
        assert!(parse("5000 a bare number is milliseconds").unwrap_err().contains("Minimum interval 30s"));
        assert_eq!(parse("5m").unwrap_err(), USAGE, "an interval needs a prompt");
    }

    #[test]
    fn a_loop_belongs_to_its_conversation() {
        let key = "agent:main:telegram:direct:42";
        let prefix = name_prefix(key);
        assert_eq!(prefix.len(), "loop[]".len() + 12);
        assert_ne!(prefix, name_prefix("agent:main:telegram:direct:43"));
        let chat =
            LoopChat { channel: "telegram".into(), to: "42".into(), account_id: "default".into(), thread_id: None };
        let at = LoopAt { agent: "main".into(), now_ms: 7, chat: Some(chat) };
        let j = job("loop-1", key, 300_000, "check deploy status", false, at.clone());
        assert_eq!(j.pacing, None, "an interval is a fixed cadence");
        let paced = job("loop-2", key, DEFAULT_INTERVAL_MS, "watch issues", true, at);
        let bounds = paced.pacing.as_ref().unwrap().bounds().unwrap();
        assert_eq!((bounds.min_ms, bounds.max_ms), (60_000, Some(3_600_000)));
        let Payload::AgentTurn { message, .. } = &paced.payload else { panic!("an agent turn") };
        assert!(message.contains(r#"action:"next_check""#), "{message}");
        assert!(paced.problems(&crate::config::load_str("{}", None).unwrap().config, 7).is_empty());
        let d = j.delivery.clone().unwrap();
        assert_eq!(
            (d.mode.as_deref(), d.channel.as_deref(), d.to.as_deref()),
            (Some("announce"), Some("telegram"), Some("42"))
        );
        assert_eq!(j.name.as_deref(), Some(format!("{prefix} check deploy status").as_str()));
        assert_eq!((j.session_target.as_deref(), j.session_key.as_deref()), (Some("current"), Some(key)));
        let Payload::AgentTurn { message, .. } = &j.payload else { panic!("an agent turn") };
        assert!(message.starts_with("[loop check deploy status] check deploy status\n"), "{message}");
        let name = j.name.unwrap();
        assert!(stops(key, &name, None) && stops(key, &name, Some("DEPLOY")));
        assert!(!stops(key, &name, Some("backup")), "another name");
        assert!(!stops("agent:main:telegram:direct:43", &name, None), "another conversation's loop");
        let long = super::name(key, &"x".repeat(100));
        assert_eq!(long.len(), prefix.len() + 1 + 40);
    }
}
