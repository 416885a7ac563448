//! Chat commands answered by the runtime itself, without a model turn
//! (`/help`, `/commands`, `/status`, `/whoami`; core's `commands` knows the
//! names, `access::command_access` who may run them). `/new` and `/reset`
//! go on to the turn, which starts the session over. A command is not
//! written to the transcript: the model never sees it.
//!
//! `/model` and `/queue` write only their own fields of the session's index
//! entry; `/stop` aborts the running turn through the session queue.
//!
//! Must not: change a session's transcript, or answer for a sender
//! `commands.allowFrom` does not list.

use chela_core::access::{command_access, is_owner, CommandVerdict};
use chela_core::commands::{Parsed, COMMANDS};
use chela_core::config::schema::Config;

use super::{agent_profile, AgentRuntime, Inbound, RunError, TurnOutcome};
use crate::clock;

/// What the runtime does with a command message.
pub(super) enum Handled {
    /// Answered here: this is the reply.
    Reply(String),
    /// Not answered here (`/new`, `/reset`): the turn goes on.
    Turn,
    /// `/compact [focus]`: run in the session's turn order.
    Compact(String),
    /// `/exec security=… ask=… <task>`: the task runs as this message, its
    /// turn under the stricter exec rules.
    TurnWith { text: String, exec: chela_core::policy::Tightening },
}

fn age(ms: i64) -> String {
    let s = (ms.max(0) / 1000) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

impl AgentRuntime {
    pub(super) async fn command(
        &self,
        cfg: &Config,
        agent_id: &str,
        inbound: &Inbound,
        cmd: &Parsed,
    ) -> Result<Handled, RunError> {
        let channel = inbound.origin.provider.as_deref().unwrap_or("");
        if let CommandVerdict::Deny(why) = command_access(cfg, channel, inbound.sender_id.as_deref()) {
            tracing::info!(agent = agent_id, command = cmd.spec.name, %why, "command refused");
            return Ok(Handled::Reply(format!(
                "You may not run /{} here: commands.allowFrom does not list you.",
                cmd.spec.name
            )));
        }
        if !cmd.spec.built {
            return Ok(Handled::Reply(format!("/{} is not available in chela yet.", cmd.spec.name)));
        }
        let takes_args = matches!(
            cmd.spec.name,
            "new"
                | "reset"
                | "model"
                | "compact"
                | "queue"
                | "send"
                | "think"
                | "verbose"
                | "elevated"
                | "exec"
                | "loop"
                | "approve"
        );
        if !takes_args && !cmd.args.is_empty() {
            return Ok(Handled::Reply(format!("Usage: {}", cmd.spec.usage)));
        }
        let (models, identity) = agent_profile(cfg, agent_id);
        let who = identity.name.clone();
        let key = inbound.target.key.as_str().to_string();
        let reply = match cmd.spec.name {
            "new" | "reset" => return Ok(Handled::Turn),
            "compact" => return Ok(Handled::Compact(cmd.args.clone())),
            "help" => format!(
                "You are talking to {who}. Commands: /status, /whoami, /new, /reset, /compact, /queue, /stop, /help; /commands lists them all. \
                 Anything else goes to {who}."
            ),
            "commands" => {
                let lines: Vec<String> = COMMANDS
                    .iter()
                    .map(|c| {
                        let later = if c.built { "" } else { " (not in chela yet)" };
                        format!("{} — {}{later}", c.usage, c.summary)
                    })
                    .collect();
                lines.join("\n")
            }
            "whoami" => match &inbound.sender_id {
                Some(sender) => {
                    let account = inbound.origin.account_id.as_deref().unwrap_or("default");
                    format!("You are {sender} on {channel} (account {account}); you are talking to agent `{agent_id}` in session {key}.")
                }
                None => {
                    format!("You are the operator ({channel}); you are talking to agent `{agent_id}` in session {key}.")
                }
            },
            "status" => {
                let store = self.store_in(cfg, agent_id)?;
                let lookup = key.clone();
                let found = super::conversation::off_thread(&store, move |s| {
                    let Some(entry) = s.get(&lookup)? else { return Ok(None) };
                    let messages = s.transcript(&entry)?.messages.len();
                    Ok(Some((entry, messages)))
                })
                .await?;
                let pinned = found.as_ref().and_then(|(e, _)| e.pinned_model());
                let model = match pinned {
                    Some(m) => format!("{m} (this session's pick)"),
                    None => models.first().cloned().unwrap_or_default(),
                };
                let own = found.as_ref().map(|(e, _)| e.queue_override()).unwrap_or_default();
                let queue = chela_core::queue_mode::settings(cfg, Some(channel), &own);
                let (session, compactions) = match found {
                    None => ("no messages yet".to_string(), 0),
                    Some((entry, messages)) => {
                        let tokens = entry.total_tokens.map(|t| format!(", {t} tokens")).unwrap_or_default();
                        let ago = age(clock::now_ms() - entry.updated_at);
                        (format!("{messages} messages{tokens}, last active {ago} ago"), entry.compaction_count.unwrap_or(0))
                    }
                };
                let mut status = format!("Agent: {who} (`{agent_id}`) · model {model}\nSession: {key} ({session})");
                if compactions > 0 {
                    status.push_str(&format!("\n🧹 Compactions: {compactions}"));
                }
                // The turn running now (if any) and the messages waiting behind it.
                let busy = self.queue_depth(&key);
                status.push_str(&format!("\nQueue: {} ({busy} running or waiting)", queue.mode.as_str()));
                status
            }
            "model" => self.model_command(cfg, agent_id, &key, &cmd.args, &models).await?,
            "queue" => self.queue_command(cfg, agent_id, &key, channel, &cmd.args).await?,
            "send" if !is_owner(cfg, channel, inbound.sender_id.as_deref()) => {
                "/send is for owners only: commands.ownerAllowFrom does not list you.".to_string()
            }
            "send" => self.send_command(cfg, agent_id, &key, &cmd.args).await?,
            "think" => self.think_command(cfg, agent_id, &key, &cmd.args).await?,
            "verbose" => self.verbose_command(cfg, agent_id, &key, &cmd.args).await?,
            "elevated" => self.elevated_command(cfg, agent_id, inbound, &key, &cmd.args).await?,
            "exec" => return Ok(exec_command(cfg, agent_id, inbound, &cmd.args, cmd.spec.usage)),
            "loop" if !is_owner(cfg, channel, inbound.sender_id.as_deref()) => {
                "/loop is for owners only: commands.ownerAllowFrom does not list you.".to_string()
            }
            "loop" => self.loop_command(agent_id, &key, inbound.delivery.as_ref(), &cmd.args).await,
            "approve" if !is_owner(cfg, channel, inbound.sender_id.as_deref()) => {
                "/approve is for owners only: commands.ownerAllowFrom does not list you.".to_string()
            }
            "approve" => self.approve_command(channel, inbound, &cmd.args).await,
            "stop" => match self.queues.stop(&key) {
                (false, 0) => "Nothing to stop: no answer is being written here.".to_string(),
                (running, waiting) => {
                    let mut reply = if running { "⚙️ Agent was aborted.".to_string() } else { "⚙️ Nothing was running.".to_string() };
                    if waiting > 0 {
                        reply.push_str(&format!(" Dropped {waiting} waiting message{}.", if waiting == 1 { "" } else { "s" }));
                    }
                    reply
                }
            },
            "models" => {
                let mut lines = vec![format!("{who}'s models: {}", models.join(", then "))];
                let catalog = cfg.agent_defaults().and_then(|d| d.models.as_ref()).and_then(|m| m.as_object());
                match catalog.filter(|c| !c.is_empty()) {
                    Some(c) => {
                        let names: Vec<String> = c
                            .iter()
                            .map(|(k, v)| match v["alias"].as_str() {
                                Some(a) => format!("{k} ({a})"),
                                None => k.clone(),
                            })
                            .collect();
                        lines.push(format!("You can pick: {}", names.join(", ")));
                    }
                    None => lines.push(format!("You can pick any model of: {}", self.providers.ids().join(", "))),
                }
                lines.push("/model <name> picks one for this session; /model default goes back.".into());
                lines.join("\n")
            }
            other => format!("/{other} is not available in chela yet."),
        };
        Ok(Handled::Reply(reply))
    }
}

impl AgentRuntime {
    /// `/model`: show the session's model; `/model <name>` pins one (checked
    /// as `x-openclaw-model` is: configured provider, the catalog when set);
    /// `/model default` unpins. Written to the session's index entry only.
    async fn model_command(
        &self,
        cfg: &Config,
        agent_id: &str,
        key: &str,
        args: &str,
        models: &[String],
    ) -> Result<String, RunError> {
        let store = self.store_in(cfg, agent_id)?;
        let lookup = key.to_string();
        let default = models.first().cloned().unwrap_or_default();
        if args.is_empty() {
            let entry = super::conversation::off_thread(&store, move |s| s.get(&lookup)).await?;
            return Ok(match entry.and_then(|e| e.pinned_model()) {
                Some(m) => format!("Model: {m} (picked for this session; /model default goes back to {default})"),
                None => format!("Model: {default} (the agent's; /models lists what you can pick)"),
            });
        }
        if args.split_whitespace().count() > 1 {
            return Ok("Usage: /model [name|default]".into());
        }
        let pick = if args.eq_ignore_ascii_case("default") {
            None
        } else {
            match self.check_model_override(cfg, agent_id, args) {
                Ok(m) => Some(m),
                Err(why) => return Ok(format!("Cannot use {args}: {why}. /models lists what you can pick.")),
            }
        };
        let parts = pick
            .as_deref()
            .and_then(|m| crate::model::split_model(m).ok())
            .map(|(p, m)| (p.to_string(), m.to_string()));
        edit_entry(&store, key, move |e| {
            e.model_override_source = parts.as_ref().map(|_| "user".to_string());
            e.provider_override = parts.as_ref().map(|(p, _)| p.clone());
            e.model_override = parts.as_ref().map(|(_, m)| m.clone());
        })
        .await?;
        Ok(match pick {
            Some(m) => format!("Model for this session: {m}."),
            None => format!("Model for this session: {default} (the agent's)."),
        })
    }
}

impl AgentRuntime {
    /// `/queue`: show the session's queue settings; `/queue <mode> [options]`
    /// stores them on its index entry (options combine with what is
    /// stored; a mode replaces the stored mode); `/queue default` clears them.
    async fn queue_command(
        &self,
        cfg: &Config,
        agent_id: &str,
        key: &str,
        channel: &str,
        args: &str,
    ) -> Result<String, RunError> {
        use chela_core::queue_mode::{describe, parse_directive, settings, QueueDirective, QueueOverride, QUEUE_USAGE};
        let directive = match parse_directive(args) {
            Ok(d) => d,
            Err(why) => return Ok(format!("{why}. Usage: {QUEUE_USAGE}")),
        };
        let store = self.store_in(cfg, agent_id)?;
        let lookup = key.to_string();
        let stored = super::conversation::off_thread(&store, move |s| s.get(&lookup)).await?;
        let current = stored.map(|e| e.queue_override()).unwrap_or_default();
        let own = match directive {
            QueueDirective::Show => {
                return Ok(describe(&settings(cfg, Some(channel), &current), &current));
            }
            QueueDirective::Reset => QueueOverride::default(),
            QueueDirective::Set(new) => QueueOverride {
                mode: new.mode.or(current.mode),
                debounce: new.debounce.or(current.debounce),
                cap: new.cap.or(current.cap),
                drop: new.drop.or(current.drop),
            },
        };
        edit_entry(&store, key, move |e| e.set_queue_override(&own)).await?;
        let now = describe(&settings(cfg, Some(channel), &own), &own);
        Ok(if own.is_empty() { format!("Queue settings for this session cleared. {now}") } else { now })
    }
}

impl AgentRuntime {
    /// `/send on|off|inherit`: the session's own `sendPolicy` (`allow`,
    /// `deny`, or none: `session.sendPolicy` decides), on its index entry.
    async fn send_command(&self, cfg: &Config, agent_id: &str, key: &str, args: &str) -> Result<String, RunError> {
        let (value, reply) = match args.to_ascii_lowercase().as_str() {
            "on" | "allow" => (Some("allow"), "Send policy for this session: on (answers are delivered)."),
            "off" | "deny" => {
                (Some("deny"), "Send policy for this session: off (answers are not delivered; commands still are).")
            }
            "inherit" | "default" | "reset" => {
                (None, "Send policy for this session: inherited from session.sendPolicy.")
            }
            _ => return Ok("Usage: /send on|off|inherit".into()),
        };
        let store = self.store_in(cfg, agent_id)?;
        edit_entry(&store, key, move |e| e.set_text_field("sendPolicy", value)).await?;
        Ok(reply.to_string())
    }
}

impl AgentRuntime {
    /// `/think`: show the level this session's turns use; `/think <level>`
    /// stores it as the session's `thinkingLevel` (OpenClaw's field);
    /// `/think default` clears it. An unknown level changes nothing.
    async fn think_command(&self, cfg: &Config, agent_id: &str, key: &str, args: &str) -> Result<String, RunError> {
        use chela_core::thinking::{resolve, unknown_level, LevelSource, ThinkLevel};
        let store = self.store_in(cfg, agent_id)?;
        if args.is_empty() {
            let lookup = key.to_string();
            let entry = super::conversation::off_thread(&store, move |s| s.get(&lookup)).await?;
            let own = entry.as_ref().and_then(|e| e.thinking_level());
            return Ok(match resolve(cfg, agent_id, own.as_deref()) {
                None => "Thinking level: the model's default (/think <level> sets one for this session).".into(),
                Some((l, LevelSource::Session)) => {
                    format!("Thinking level: {} (this session's; /think default clears it).", l.as_str())
                }
                Some((l, _)) => format!("Thinking level: {} (thinkingDefault).", l.as_str()),
            });
        }
        let clear = matches!(args.to_ascii_lowercase().as_str(), "default" | "inherit" | "clear" | "reset" | "unpin");
        let level = match (clear, ThinkLevel::parse(args)) {
            (true, _) => None,
            (false, Some(l)) => Some(l),
            (false, None) => return Ok(unknown_level(args)),
        };
        edit_entry(&store, key, move |e| e.set_text_field("thinkingLevel", level.map(|l| l.as_str()))).await?;
        Ok(match level {
            Some(ThinkLevel::Off) => "Thinking disabled.".into(),
            Some(l) => format!("Thinking level set to {}.", l.as_str()),
            None => match resolve(cfg, agent_id, None) {
                Some((l, _)) => format!("Thinking level cleared; using {} (thinkingDefault).", l.as_str()),
                None => "Thinking level cleared; using the model's default.".into(),
            },
        })
    }

    /// `/verbose on|off|full`: whether this session's answers end with the
    /// tools they used (`full`: with what each returned), stored as
    /// OpenClaw's `verboseLevel`; `/verbose` shows it.
    async fn verbose_command(&self, cfg: &Config, agent_id: &str, key: &str, args: &str) -> Result<String, RunError> {
        let store = self.store_in(cfg, agent_id)?;
        let level = match args.to_ascii_lowercase().as_str() {
            "" => {
                let lookup = key.to_string();
                let entry = super::conversation::off_thread(&store, move |s| s.get(&lookup)).await?;
                let now = entry.map(|e| e.verbose_level()).unwrap_or_default();
                return Ok(format!("Verbose: {} (/verbose on|off|full).", now.as_str()));
            }
            "on" | "true" | "1" => crate::store::Verbose::On,
            "full" | "all" => crate::store::Verbose::Full,
            "off" | "false" | "0" => crate::store::Verbose::Off,
            _ => return Ok("Usage: /verbose [on|off|full]".into()),
        };
        edit_entry(&store, key, move |e| e.set_verbose_level(level)).await?;
        Ok(match level {
            crate::store::Verbose::Off => "Verbose off.".into(),
            crate::store::Verbose::On => "Verbose on: answers end with the tools they used.".into(),
            crate::store::Verbose::Full => {
                "Verbose full: answers end with the tools they used and what each returned.".into()
            }
        })
    }
}

impl AgentRuntime {
    /// `/elevated on|off|ask|full`: the session's `elevatedLevel`. It can
    /// only take elevation away from, or give it back to, a sender
    /// `tools.elevated` allows; it never makes anyone allowed.
    async fn elevated_command(
        &self,
        cfg: &Config,
        agent_id: &str,
        inbound: &Inbound,
        key: &str,
        args: &str,
    ) -> Result<String, RunError> {
        use chela_core::policy::{elevated_allowed, elevated_level, parse_elevated_level};
        let channel = inbound.origin.provider.as_deref().unwrap_or("");
        let allowed = inbound.sender_id.as_deref().is_some_and(|s| elevated_allowed(cfg, agent_id, channel, s));
        if !allowed {
            return Ok("Elevated mode is not available to you here: tools.elevated.allowFrom (and the agent's tools.elevated) must list you.".into());
        }
        let store = self.store_in(cfg, agent_id)?;
        if args.is_empty() {
            let lookup = key.to_string();
            let entry = super::conversation::off_thread(&store, move |s| s.get(&lookup)).await?;
            let own = entry.and_then(|e| e.elevated_level());
            let level = elevated_level(cfg, agent_id, own.as_deref());
            let from = if own.is_some() { "this session's" } else { "the default" };
            return Ok(format!("Elevated: {level} ({from}; /elevated on|off|ask|full)."));
        }
        let Some(level) = parse_elevated_level(args) else { return Ok("Usage: /elevated [on|off|ask|full]".into()) };
        edit_entry(&store, key, move |e| e.set_text_field("elevatedLevel", Some(level))).await?;
        Ok(match level {
            "off" => "Elevated off: your commands stay in the sandbox.".into(),
            l => format!("Elevated {l}: commands that ask for it may run outside the sandbox (chela has no approval prompts, so ask and full are on)."),
        })
    }
}

/// `/exec`: where this agent's commands run (chela changes it only in
/// config: a chat cannot move commands out of their confinement).
/// `/exec`: the settings alone; `security=… ask=…` with a task runs the
/// task's turn under those stricter rules (OpenClaw's turn-scoped
/// overrides: never looser than the config, never kept for later messages).
fn exec_command(cfg: &Config, agent_id: &str, inbound: &Inbound, args: &str, usage: &str) -> Handled {
    let d = match chela_core::commands::exec_directive(args) {
        Ok(d) => d,
        Err(why) => return Handled::Reply(format!("{why} Usage: {usage}")),
    };
    if !d.placement.is_empty() {
        return Handled::Reply(format!(
            "chela does not change where commands run from a chat ({}): set tools.exec.host and sandbox.mode in the \
             config. /exec shows the settings.",
            d.placement.join(" ")
        ));
    }
    match (d.tightening.is_empty(), d.task.is_empty()) {
        (true, true) => Handled::Reply(exec_summary(cfg, agent_id, inbound)),
        (true, false) => Handled::Reply(format!("Usage: {usage}")),
        (false, true) => Handled::Reply(format!(
            "/exec {} applies only to the message it comes with: send it with the task (/exec {} <task>). \
             Nothing ran, and later messages are unchanged.",
            d.tightening.describe(),
            d.tightening.describe()
        )),
        (false, false) => Handled::TurnWith { text: d.task, exec: d.tightening },
    }
}

fn exec_summary(cfg: &Config, agent_id: &str, inbound: &Inbound) -> String {
    let sandboxed = chela_core::policy::is_sandboxed(cfg, agent_id, &inbound.target.kind);
    let place = match (sandboxed, chela_core::policy::exec_unconfined(cfg, agent_id)) {
        (true, _) => "in the sandbox (bubblewrap; sandbox.mode)",
        (false, false) => {
            "on the gateway host, confined (the gateway's state, the config and other agents' files hidden)"
        }
        (false, true) => "on the gateway host, unconfined (tools.exec.host: unconfined)",
    };
    let policy = chela_core::policy::host_exec_policy(cfg, agent_id).describe();
    format!(
        "Exec: this session's commands run {place}. Host commands: {policy}; one that needs an approval is asked \
         for in this chat (/approve <id> allow-once|allow-always|deny, owners only). /elevated says whether yours \
         may leave the sandbox."
    )
}

/// Changes the session's index entry (a command's own fields), off the async workers.
async fn edit_entry(
    store: &std::sync::Arc<dyn crate::store::SessionStore>,
    key: &str,
    mut edit: impl FnMut(&mut crate::store::SessionEntry) + Send + 'static,
) -> Result<(), crate::store::StoreError> {
    let key = key.to_string();
    super::conversation::off_thread(store, move |s| s.upsert(&key, &mut edit).map(|_| ())).await
}

/// The `model` of a command's answer.
pub(super) const COMMAND_MODEL: &str = "command";

/// A command's answer as a turn's outcome (no model, no tokens).
pub(super) fn outcome(agent_id: &str, inbound: &Inbound, reply: String) -> TurnOutcome {
    TurnOutcome {
        agent_id: agent_id.to_string(),
        session_key: inbound.target.key.as_str().to_string(),
        session_id: String::new(),
        reply,
        model: COMMAND_MODEL.into(),
        tool_calls: Vec::new(),
        reset: false,
        absorbed: None,
        input_tokens: 0,
        output_tokens: 0,
        model_seconds: 0.0,
        store_seconds: 0.0,
    }
}

impl AgentRuntime {
    /// `/loop [interval] <prompt>`: a recurring turn of this agent in this
    /// conversation, stored in the gateway's scheduler (core's
    /// `conversation_loop` says what the job is); `/loop status` and
    /// `/approve <id> <decision>`: settles a command's approval prompt (the
    /// sender is an owner, checked before).
    async fn approve_command(&self, channel: &str, inbound: &Inbound, args: &str) -> String {
        const USAGE: &str = "Usage: /approve <id> allow-once|allow-always|deny";
        let mut words = args.split_whitespace();
        let (Some(id), Some(decision), None) = (words.next(), words.next(), words.next()) else {
            return USAGE.to_string();
        };
        let Some(decision) = chela_core::policy::Decision::parse(decision) else { return USAGE.to_string() };
        let Some(approvals) = self.approvals.clone() else {
            return "/approve needs a running gateway (it holds the commands waiting for approval).".to_string();
        };
        let approver =
            crate::approvals::Approver { channel: channel.to_string(), sender_id: inbound.sender_id.clone() };
        match approvals.decide(&approver, id, decision).await {
            Ok(reply) => reply,
            Err(why) => why,
        }
    }

    /// `/loop stop [name]` see and remove only this conversation's loops.
    async fn loop_command(
        &self,
        agent_id: &str,
        key: &str,
        chat: Option<&crate::store::DeliveryContext>,
        args: &str,
    ) -> String {
        use chela_core::conversation_loop::{self as cl, LoopCommand};
        let command = match cl::parse(args) {
            Ok(LoopCommand::Help) => return cl::USAGE.to_string(),
            Ok(c) => c,
            Err(reply) => return reply,
        };
        let Some(loops) = self.loops.clone() else {
            return "/loop needs a running gateway (its scheduler keeps the loop).".to_string();
        };
        let (agent, key) = (agent_id.to_string(), key.to_string());
        let chat = chat.map(|d| cl::LoopChat {
            channel: d.channel.clone(),
            to: d.to.clone(),
            account_id: d.account_id.clone(),
            thread_id: d.thread_id.clone(),
        });
        let done = tokio::task::spawn_blocking(move || match command {
            LoopCommand::Help => Ok::<String, String>(cl::USAGE.to_string()),
            LoopCommand::Status => {
                let listed = loops.list(&key)?;
                if listed.is_empty() {
                    return Ok("No loops in this chat. /loop <interval> <prompt> starts one.".to_string());
                }
                let lines: Vec<String> = listed
                    .iter()
                    .map(|l| {
                        let format_duration = chela_core::schedule::format_duration;
                        let every = l.every_ms.map(format_duration).unwrap_or_default();
                        let every = match &l.pacing {
                            Some((min, max)) => format!(
                                "{every}, self-paced between {} and {}",
                                min.clone().unwrap_or_else(|| format_duration(chela_core::pacing::FLOOR_MS)),
                                max.clone().unwrap_or_else(|| format_duration(chela_core::pacing::CEILING_MS))
                            ),
                            None => every,
                        };
                        let state = if l.enabled { "on" } else { "off" };
                        let next = l.next_run_at_ms.map(chela_core::schedule::format_instant).unwrap_or("—".into());
                        let last = l.last_status.as_deref().unwrap_or("not run yet");
                        format!("{} — every {every}, {state}, next {next}, last {last}", l.name)
                    })
                    .collect();
                Ok(lines.join("\n"))
            }
            LoopCommand::Stop(wanted) => {
                let stopped = loops.stop(&key, wanted.as_deref())?;
                Ok(match (stopped.is_empty(), wanted) {
                    (true, Some(w)) => format!("No loop of this chat matches “{w}”; /loop status lists them."),
                    (true, None) => "No loops in this chat to stop.".to_string(),
                    (false, _) => format!("Stopped: {}", stopped.join(", ")),
                })
            }
            LoopCommand::Start { every_ms, prompt, self_paced } => {
                let id = format!("loop-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
                let at = cl::LoopAt { agent, now_ms: clock::now_ms(), chat };
                let job = cl::job(&id, &key, every_ms, &prompt, self_paced, at);
                let name = job.name.clone().unwrap_or_default();
                loops.start(job)?;
                let cadence = if self_paced {
                    format!("self-paced between {} and {}", cl::SELF_PACED_MIN, cl::SELF_PACED_MAX)
                } else {
                    format!("every {}", chela_core::schedule::format_duration(every_ms))
                };
                Ok(format!("🔁 Loop started: {name} — {cadence}. /loop stop ends it."))
            }
        })
        .await;
        match done {
            Ok(Ok(reply)) => reply,
            Ok(Err(why)) => format!("The loop could not be changed: {why}"),
            Err(e) => format!("The loop could not be changed: {e}"),
        }
    }
}
