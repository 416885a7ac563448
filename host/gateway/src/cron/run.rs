//! Running one job as its agent: the session it names (the agent's own,
//! checked by core), a turn through the agent runtime (that agent's
//! workspace, tools and model, as any of its turns), then the reply
//! delivered to the chat the job says (a webhook job's run is posted by
//! `webhook.rs` afterwards), or held back when it is an acknowledgement.
//!
//! Heartbeats first check what would make the run pointless: outside
//! `activeHours`, a busy session, no one to tell (`no-route`), or a target
//! whose `heartbeatVisibility` shows nothing (`alerts-disabled`) skip it
//! before the model is asked anything.
//!
//! Must not: pick the agent or session itself (core's `cron_job` and
//! `heartbeat` do), or deliver around `deliver_announcement` (which applies
//! `session.sendPolicy`).

use std::sync::Arc;
use std::time::Duration;

use chela_agent::{DeliveryContext, Inbound, Origin, Scheduled};
use chela_core::config::schema::Config;
use chela_core::cron_job::{JobSession, JobSpec, Payload};
use chela_core::heartbeat::{self, HeartbeatPlan, Target};
use chela_core::ids::ChatType;
use chela_core::routing::SessionTarget;
use chela_core::session_key::{derive_chat_type_from_key, SessionKey};

use super::in_session::RunInSession;
use super::store::Claim;
use super::{Job, JobKind};
use crate::Gateway;

/// The most of HEARTBEAT.md the heartbeat prompt carries.
const SCRATCH_MAX_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Error,
    Skipped,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub status: Status,
    pub reason: Option<String>,
    pub reply: Option<String>,
    pub delivered: bool,
    pub session_key: Option<String>,
}

fn ended(status: Status, reason: impl Into<String>) -> Outcome {
    Outcome { status, reason: Some(reason.into()), reply: None, delivered: false, session_key: None }
}

/// Where a reply goes: a chat, and what kind of chat it is.
pub(crate) type Route = Option<(DeliveryContext, ChatType)>;

pub async fn run(gw: &Arc<Gateway>, job: &Job, claim: &Claim) -> Outcome {
    match &job.kind {
        JobKind::Spec(spec) => cron_job(gw, &job.id, spec, claim).await,
        JobKind::Heartbeat(plan) => heartbeat_run(gw, plan, claim.forced).await,
    }
}

/// The session's last route (where its replies went), if any.
pub(crate) fn last_route(gw: &Gateway, target: &SessionTarget) -> Route {
    let store = gw.runtime.store(&target.agent_id).ok()?;
    let entry = store.get(target.key.as_str()).ok().flatten()?;
    let d = entry.delivery_context?;
    let chat = derive_chat_type_from_key(target.key.as_str()).unwrap_or(ChatType::Direct);
    Some((d, chat))
}

fn explicit_route(d: &chela_core::cron_job::Delivery) -> Route {
    let channel = d.channel.as_deref().map(str::trim).filter(|c| !c.is_empty())?;
    let to = d.to.as_deref().map(str::trim).filter(|t| !t.is_empty())?;
    let ctx = DeliveryContext {
        channel: channel.to_ascii_lowercase(),
        to: to.to_string(),
        account_id: d.account_id.clone().unwrap_or_else(|| "default".into()),
        thread_id: d.thread_id.clone(),
    };
    Some((ctx, ChatType::Direct))
}

async fn cron_job(gw: &Arc<Gateway>, id: &str, spec: &JobSpec, claim: &Claim) -> Outcome {
    let snap = gw.snapshot();
    let cfg = &snap.config;
    let agent = match spec.agent(cfg) {
        Ok(a) => a,
        Err(e) => return ended(Status::Error, format!("agentId: {e}")),
    };
    let session = match spec.session(cfg, &agent) {
        Ok(s) => s,
        Err(p) => return ended(Status::Error, format!("{}: {}", p.field, p.message)),
    };
    let (target, fresh) = match &session {
        JobSession::Main => (SessionTarget::main(cfg, &agent), false),
        JobSession::Isolated => (SessionTarget::of_key(cfg, SessionKey::cron(&agent, id), ChatType::Direct), true),
        JobSession::Current(key) | JobSession::Custom(key) => {
            let chat = derive_chat_type_from_key(key.as_str()).unwrap_or(ChatType::Direct);
            (SessionTarget::of_key(cfg, key.clone(), chat), false)
        }
    };
    if spec.operator_only() {
        // A command: no turn, no session of its own beyond its run's key.
        let route = spec.delivery.as_ref().filter(|_| spec.announces()).and_then(explicit_route);
        return command_job(gw, &snap, id, spec, &agent, route).await;
    }
    // The turn's session runs this job until the scheduler's `execute` ends it:
    // the `automations` tool narrows to the job there, and paces it.
    gw.scheduler.in_session.enter(
        target.key.as_str(),
        RunInSession {
            job_id: id.to_string(),
            run_id: claim.run_id.clone(),
            pacing: spec.pacing.as_ref().and_then(|p| p.bounds().ok()),
            forced: claim.forced,
            proposal_ms: None,
        },
    );
    let route: Route = match spec.delivery.as_ref() {
        Some(d) if matches!(d.mode.as_deref(), Some("none" | "webhook")) => None,
        Some(d) if spec.announces() => explicit_route(d).or_else(|| last_route(gw, &target)),
        _ if session == JobSession::Isolated => None,
        _ => last_route(gw, &target),
    };
    if let (Payload::SystemEvent { text }, JobSession::Main, Some("next-heartbeat")) =
        (&spec.payload, &session, spec.wake_mode.as_deref())
    {
        let beats = chela_core::heartbeat::plans(cfg).plans.iter().any(|p| p.agent_id == agent && p.every_ms > 0);
        if beats {
            let event = super::store::PendingEvent {
                job_id: id.to_string(),
                text: text.clone(),
                at_ms: chela_agent::clock::now_ms(),
            };
            let to = agent.clone();
            return match gw.scheduler.store().off_thread(move |s| s.push_event(&to, event)).await {
                Ok(()) => Outcome {
                    status: Status::Ok,
                    reason: Some("queued for the next heartbeat".into()),
                    reply: None,
                    delivered: false,
                    session_key: Some(target.key.to_string()),
                },
                Err(e) => ended(Status::Error, format!("cannot queue the system event: {e}")),
            };
        }
        tracing::info!(job = id, agent = %agent, "wakeMode next-heartbeat, but the agent runs no heartbeat: the event runs now");
    }
    let name = spec.name.clone().unwrap_or_else(|| id.to_string());
    let (text, light, model) = match &spec.payload {
        Payload::SystemEvent { text } => (format!("System: {text}"), false, None),
        Payload::AgentTurn { message, light_context, model } => {
            (message.clone(), light_context.unwrap_or(false), model.clone())
        }
        Payload::Command { .. } => return ended(Status::Error, "a command payload has no turn"),
    };
    let model_override = match model {
        Some(raw) => match gw.runtime.check_model_override(cfg, &agent, &raw) {
            Ok(m) => Some(m),
            Err(why) => return ended(Status::Error, format!("payload.model: {why}")),
        },
        None => None,
    };
    let unattended = format!(
        "# Scheduled run\nThis turn is the scheduled job `{name}`; no one is present to answer questions. \
         Reply with the result itself, or exactly NO_REPLY when nothing needs saying."
    );
    let inbound = Inbound {
        target,
        text,
        sender_id: None,
        origin: Origin { provider: Some("cron".into()), label: Some(format!("cron job {id}")), ..Origin::default() },
        extra_system: Some(unattended),
        delivery: None,
        message_ref: None,
        model_override,
        sampling: None,
        scheduled: Some(Scheduled { fresh_session: fresh, light_context: light }),
        media: Vec::new(),
        live_tool_summaries: false,
        exec_tightening: Default::default(),
    };
    let timeout = spec.timeout_seconds.map(Duration::from_secs);
    turn_and_deliver(gw, &snap, inbound, route, timeout, None).await
}

async fn heartbeat_run(gw: &Arc<Gateway>, plan: &HeartbeatPlan, forced: bool) -> Outcome {
    let snap = gw.snapshot();
    let cfg = &snap.config;
    let agent = plan.agent_id.as_str();
    if !forced {
        if let Some(w) = &plan.active_hours {
            if !w.contains(chela_agent::clock::now_ms()) {
                return ended(Status::Skipped, "quiet-hours");
            }
        }
    }
    // An empty checklist with no event waiting: nothing to look at, no model call.
    let scratch = read_scratch(cfg, gw, agent);
    let of = agent.to_string();
    let waiting = gw.scheduler.store().off_thread(move |s| s.has_events(&of)).await.unwrap_or(true);
    if scratch.as_deref().is_some_and(heartbeat::scratch_is_empty) && !waiting {
        return ended(Status::Skipped, "empty-heartbeat-file");
    }
    // The conversation the heartbeat belongs to (`target: "last"` follows its
    // route); an isolated heartbeat runs beside it in a fresh session of its own.
    let (target, fresh, context) =
        match (plan.isolated_session, SessionTarget::requested(cfg, agent, plan.session.as_deref())) {
            (true, own) => (
                SessionTarget::of_key(cfg, SessionKey::cron(agent, "heartbeat"), ChatType::Direct),
                true,
                own.unwrap_or_else(|_| SessionTarget::main(cfg, agent)),
            ),
            (false, Ok(own)) => (own.clone(), false, own),
            (false, Err(e)) => return ended(Status::Error, format!("heartbeat.session: {e}")),
        };
    if gw.runtime.queue_depth(target.key.as_str()) > 0 {
        return ended(Status::Skipped, "busy");
    }
    let route: Route = match &plan.target {
        Target::None => None,
        Target::Owner => match heartbeat::owner_route(cfg, plan.account_id.as_deref()) {
            Some(o) => Some((
                DeliveryContext { channel: o.channel, to: o.to, account_id: o.account_id, thread_id: None },
                ChatType::Direct,
            )),
            None => return ended(Status::Skipped, "no-route"),
        },
        Target::Last => match last_route(gw, &context) {
            Some((mut d, chat)) => {
                if let Some(a) = &plan.account_id {
                    d.account_id = a.clone();
                }
                Some((d, chat))
            }
            None => return ended(Status::Skipped, "no-route"),
        },
        Target::Channel { channel, to } => {
            let last = last_route(gw, &context).filter(|(d, _)| &d.channel == channel);
            match (to, last) {
                (Some(to), last) => Some((
                    DeliveryContext {
                        channel: channel.clone(),
                        to: to.clone(),
                        account_id: plan
                            .account_id
                            .clone()
                            .or(last.map(|(d, _)| d.account_id))
                            .unwrap_or_else(|| "default".into()),
                        thread_id: None,
                    },
                    ChatType::Direct,
                )),
                (None, Some(last)) => Some(last),
                (None, None) => return ended(Status::Skipped, "no-route"),
            }
        }
    };
    let route = match route {
        Some((_, ChatType::Direct)) if plan.block_direct => None,
        r => r,
    };
    // What the target's channel account shows of heartbeats (`heartbeatVisibility`).
    let visibility =
        heartbeat::visibility(cfg, route.as_ref().map(|(d, _)| (d.channel.as_str(), d.account_id.as_str())));
    if visibility.shows_nothing() {
        return ended(Status::Skipped, "alerts-disabled");
    }
    let model_override = match &plan.model {
        Some(raw) => match gw.runtime.check_model_override(cfg, agent, raw) {
            Ok(m) => Some(m),
            Err(why) => return ended(Status::Error, format!("heartbeat.model: {why}")),
        },
        None => None,
    };
    // System events queued for this heartbeat (`wakeMode: "next-heartbeat"`), taken now: at most once.
    let of = agent.to_string();
    let events = match gw.scheduler.store().off_thread(move |s| s.take_events(&of)).await {
        Ok(e) => e,
        Err(e) => return ended(Status::Error, format!("cannot read the queued system events: {e}")),
    };
    let inbound = Inbound {
        target,
        text: plan.prompt.clone(),
        sender_id: None,
        origin: Origin {
            provider: Some("heartbeat".into()),
            label: Some(heartbeat::TRANSCRIPT_MARKER.into()),
            ..Origin::default()
        },
        extra_system: Some(heartbeat_context(scratch.as_deref(), &events)),
        delivery: None,
        message_ref: None,
        model_override,
        sampling: None,
        scheduled: Some(Scheduled { fresh_session: fresh, light_context: plan.light_context }),
        media: Vec::new(),
        live_tool_summaries: false,
        exec_tightening: Default::default(),
    };
    turn_and_deliver(gw, &snap, inbound, route, Some(Duration::from_millis(plan.timeout_ms)), Some(visibility)).await
}

/// The agent's monitor scratch (`HEARTBEAT.md` in its workspace), read
/// confined beneath it, when the file is there.
fn read_scratch(cfg: &Config, gw: &Gateway, agent: &str) -> Option<String> {
    let roster = chela_core::roster::Roster::from_config(cfg);
    let ws = chela_core::config::paths::agent_workspace(cfg, &roster, agent, &gw.env);
    let w = chela_agent::workspace_read::Workspace::open(&ws).ok()?;
    w.read_text(heartbeat::SCRATCH_FILE, SCRATCH_MAX_BYTES).ok().map(|(t, _)| t)
}

/// The heartbeat's part of the system prompt: what it is, the system events
/// queued for it, and the monitor scratch.
fn heartbeat_context(scratch: Option<&str>, events: &[super::store::PendingEvent]) -> String {
    let mut out = format!(
        "# Heartbeat poll\n{} This turn is a scheduled heartbeat: no one asked anything. Reply NO_REPLY unless something needs the user's attention; then reply with only the alert.",
        heartbeat::TRANSCRIPT_MARKER
    );
    if !events.is_empty() {
        out.push_str("\n\n## System events since the last heartbeat");
        for e in events {
            out.push_str(&format!("\n- System: {} (cron job `{}`)", e.text, e.job_id));
        }
    }
    if let Some(s) = scratch.map(str::trim).filter(|s| !s.is_empty()) {
        out.push_str(&format!("\n\n## Heartbeat monitor scratch ({})\n{s}", heartbeat::SCRATCH_FILE));
    }
    out
}

pub(crate) async fn turn_and_deliver(
    gw: &Arc<Gateway>,
    snap: &chela_core::snapshot::Snapshot,
    inbound: Inbound,
    route: Route,
    timeout: Option<Duration>,
    // `Some` for a heartbeat: what its target shows.
    heartbeat: Option<heartbeat::Visibility>,
) -> Outcome {
    let is_heartbeat = heartbeat.is_some();
    let key = inbound.target.key.clone();
    let run = gw.runtime.run(snap, inbound);
    let result = match timeout {
        Some(t) => match tokio::time::timeout(t, run).await {
            Ok(r) => r,
            Err(_) => {
                return Outcome {
                    session_key: Some(key.to_string()),
                    ..ended(Status::Error, format!("timed out after {t:?}"))
                }
            }
        },
        None => run.await,
    };
    let turn = match result {
        Ok(t) => t,
        Err(e) => return Outcome { session_key: Some(key.to_string()), ..ended(Status::Error, e.to_string()) },
    };
    let reply = turn.reply.clone();
    let alert = match heartbeat {
        Some(_) => heartbeat::acknowledgement(&reply),
        None => Some(reply.trim().to_string()).filter(|r| !r.is_empty() && !heartbeat::is_silent(r)),
    };
    let mut out = Outcome {
        status: Status::Ok,
        reason: None,
        reply: Some(reply),
        delivered: false,
        session_key: Some(key.to_string()),
    };
    // An OK goes out only under `showOk` (as the bare token), an alert unless `showAlerts: false`.
    let text = match (alert, heartbeat) {
        (None, Some(v)) if v.show_ok => heartbeat::ACK_TOKEN.to_string(),
        (None, _) => {
            out.reason = Some(if is_heartbeat { "ack" } else { "silent" }.into());
            return out;
        }
        (Some(_), Some(v)) if !v.show_alerts => {
            out.reason = Some("alert hidden (heartbeatVisibility.showAlerts: false)".into());
            return out;
        }
        (Some(text), _) => text,
    };
    deliver(gw, snap, key, route, text, is_heartbeat, out).await
}

/// `text` announced along `route` for the run `out` records (the session
/// `key` is the run's), through the agent's own accounts only.
async fn deliver(
    gw: &Arc<Gateway>,
    snap: &chela_core::snapshot::Snapshot,
    key: SessionKey,
    route: Route,
    text: String,
    is_heartbeat: bool,
    mut out: Outcome,
) -> Outcome {
    let Some((delivery, chat_type)) = route else {
        out.reason = Some("no-delivery".into());
        return out;
    };
    if let Some(why) = foreign_account(snap, &key.agent_id(), &delivery) {
        out.status = if is_heartbeat { Status::Skipped } else { Status::Error };
        out.reason = Some(why);
        return out;
    }
    let announcement = chela_agent::Announcement { session_key: key, delivery: Some(delivery), chat_type, text };
    out.delivered = gw.deliver_announcement(announcement).await;
    if !out.delivered {
        out.reason = Some("not delivered (see the log)".into());
    }
    out
}

/// A command payload's run (OpenClaw's command jobs): the operator's argv,
/// confined as the job's agent's host commands are (its workspace, the
/// gateway's state and other agents' files hidden, `tools.exec.host:
/// "unconfined"` the opt-out), no model turn. Exit 0 is `ok`; its output
/// (stdout, else stderr, else both labelled) is announced unless it is
/// `NO_REPLY`.
async fn command_job(
    gw: &Arc<Gateway>,
    snap: &chela_core::snapshot::Snapshot,
    id: &str,
    spec: &JobSpec,
    agent: &str,
    route: Route,
) -> Outcome {
    use chela_core::cron_job::{COMMAND_MAX_TIMEOUT_SECONDS, COMMAND_OUTPUT_MAX_BYTES, COMMAND_TIMEOUT_SECONDS};
    use chela_plugin::capability::process::{run_scheduled, Command, ProcessGrant};
    let Payload::Command {
        argv, cwd, env, input, timeout_seconds, no_output_timeout_seconds, output_max_bytes, ..
    } = &spec.payload
    else {
        return ended(Status::Error, "not a command payload");
    };
    let Some((program, args)) = argv.split_first() else {
        return ended(Status::Error, "payload.argv: a command needs its program");
    };
    let cfg = &snap.config;
    let roster = chela_core::roster::Roster::from_config(cfg);
    let workspace = chela_core::config::paths::agent_workspace(cfg, &roster, agent, &gw.env);
    let config_path = gw.env.config_path(|p| p.exists());
    let mut confinement = chela_core::policy::exec_confinement(cfg, &gw.env, agent, Some(&config_path));
    confinement.env.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let grant = ProcessGrant {
        root: workspace,
        writable: true,
        sandboxed: false,
        network: true,
        elevated: false,
        confinement,
        policy: chela_core::policy::HostExecPolicy::default(),
    };
    let seconds = timeout_seconds.unwrap_or(COMMAND_TIMEOUT_SECONDS).clamp(1, COMMAND_MAX_TIMEOUT_SECONDS);
    let cmd = Command {
        program: program.clone(),
        args: args.to_vec(),
        cwd: cwd.clone(),
        stdin: input.as_ref().map(|i| i.as_bytes().to_vec()),
        timeout_ms: u32::try_from(seconds * 1000).unwrap_or(u32::MAX),
        elevated: false,
    };
    let key = SessionKey::cron(agent, id);
    tracing::info!(job = id, agent, program = %program, "cron: running the job's command");
    let silence = no_output_timeout_seconds.filter(|s| *s > 0);
    let ran = run_scheduled(&grant, cmd, Duration::from_secs(seconds), silence.map(Duration::from_secs)).await;
    let (output, silent_too_long) = match ran {
        Ok(r) => (r.output, r.silent_too_long),
        Err(why) => {
            return Outcome {
                session_key: Some(key.to_string()),
                ..ended(Status::Error, format!("the command did not start: {why}"))
            }
        }
    };
    let (status, reason) = match (output.timed_out, output.exit_code) {
        (true, _) if silent_too_long => (
            Status::Error,
            Some(format!(
                "command produced no output for noOutputTimeoutSeconds ({}s) and was stopped",
                silence.unwrap_or_default()
            )),
        ),
        (true, _) => (Status::Error, Some(format!("command timed out after {seconds}s"))),
        (false, Some(0)) => (Status::Ok, None),
        (false, Some(code)) => (Status::Error, Some(format!("command exited with code {code}"))),
        (false, None) => (Status::Error, Some("command stopped by a signal".to_string())),
    };
    let max = output_max_bytes.unwrap_or(COMMAND_OUTPUT_MAX_BYTES).min(COMMAND_OUTPUT_MAX_BYTES) as usize;
    let text = command_text(&output.stdout, &output.stderr, max);
    let out =
        Outcome { status, reason, reply: Some(text.clone()), delivered: false, session_key: Some(key.to_string()) };
    if status != Status::Ok || text.is_empty() || heartbeat::is_silent(&text) {
        let reason = out.reason.clone().or_else(|| Some("silent".into()));
        return Outcome { reason, ..out };
    }
    deliver(gw, snap, key, route, text, false, out).await
}

/// What a command said, as OpenClaw delivers it: stdout, else stderr, else
/// both labelled; cut to `max` bytes (at a character boundary).
fn command_text(stdout: &[u8], stderr: &[u8], max: usize) -> String {
    let (out, err) = (String::from_utf8_lossy(stdout), String::from_utf8_lossy(stderr));
    let (out, err) = (out.trim(), err.trim());
    let text = match (out.is_empty(), err.is_empty()) {
        (false, true) => out.to_string(),
        (true, false) => err.to_string(),
        (false, false) => format!("stdout:\n{out}\nstderr:\n{err}"),
        (true, true) => String::new(),
    };
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}\n[truncated]", &text[..cut])
}

/// Why `agent` may not speak through the account of `delivery` (another
/// agent's bot), if it may not.
pub(super) fn foreign_account(
    snap: &chela_core::snapshot::Snapshot,
    agent: &str,
    delivery: &DeliveryContext,
) -> Option<String> {
    let refused = snap.routes.may_speak_through(agent, &delivery.channel, &delivery.account_id).err()?;
    Some(format!("{refused}: not delivered"))
}
