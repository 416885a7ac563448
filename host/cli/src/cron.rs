//! `chela cron list|add|rm|runs|run` (OpenClaw's `openclaw cron`): the jobs of the
//! config (`cron.jobs`), those stored by `add`, and the heartbeat monitors,
//! where the gateway's scheduler reads them every tick (the state dir's
//! files, or the replicas' database when storage names one). `run`
//! asks the running gateway to run a job now.
//!
//! Must not: keep its own job format or checks (core's `cron_job` and the
//! gateway's cron store are the one home of both).

use std::process::ExitCode;

use anyhow::{bail, Result};
use chela_agent::clock::now_ms;
use chela_core::config::Config;
use chela_core::cron_job::{valid_id, Delivery, JobSpec, Payload};
use chela_core::schedule::{parse_duration_ms, parse_instant, ScheduleSpec, Unit};
use chela_gateway::cron::{scheduler, CronStore};

use crate::context::Context;
use crate::output::print_json;

#[derive(clap::Subcommand, Debug)]
pub enum CronCommand {
    /// Jobs, heartbeats, their next and last runs.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Store a new job (runs in the gateway; no restart needed).
    Add(Box<AddArgs>),
    /// Remove a stored job.
    #[command(alias = "remove")]
    Rm {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// A job's recent runs (newest first).
    Runs {
        id: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Run a job now, in the running gateway, and wait for it.
    Run {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Turn a job back on that the scheduler turned off after failing 10 times in a row.
    Enable {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug)]
pub struct AddArgs {
    /// The job's id (default: generated).
    #[arg(long)]
    id: Option<String>,
    #[arg(long)]
    name: Option<String>,
    /// The agent it runs as (default: the default agent).
    #[arg(long)]
    agent: Option<String>,
    /// Once: an ISO 8601 time (no offset: UTC) or a delay such as `20m`.
    #[arg(long, conflicts_with_all = ["every", "cron"])]
    at: Option<String>,
    /// Every interval: `10m`, `1h`, `1d`.
    #[arg(long, conflicts_with = "cron")]
    every: Option<String>,
    /// A cron expression (5 fields, or 6 with seconds).
    #[arg(long)]
    cron: Option<String>,
    /// The zone of `--cron` (IANA name; default: the host's).
    #[arg(long, requires = "cron")]
    tz: Option<String>,
    /// `main` | `isolated` | `current` | `session:<id>`.
    #[arg(long)]
    session: Option<String>,
    /// The conversation a `current` job belongs to (a session key of its agent).
    #[arg(long)]
    session_key: Option<String>,
    /// An agent turn with this message.
    #[arg(long, conflicts_with = "system_event")]
    message: Option<String>,
    /// A system event with this text (into the main session).
    #[arg(long)]
    system_event: Option<String>,
    /// A command instead of a model turn: this shell line (`sh -lc`), run
    /// confined in the agent's workspace; its output is the result.
    #[arg(long, conflicts_with_all = ["message", "system_event", "command_argv"])]
    command: Option<String>,
    /// A command as exact argv, a JSON array (`'["node","report.mjs"]'`).
    #[arg(long, conflicts_with_all = ["message", "system_event"])]
    command_argv: Option<String>,
    /// The command's directory, relative to the agent's workspace.
    #[arg(long)]
    command_cwd: Option<String>,
    /// `KEY=VALUE` for the command's environment (repeatable).
    #[arg(long)]
    command_env: Vec<String>,
    /// Written to the command's stdin.
    #[arg(long)]
    command_input: Option<String>,
    /// The command's longest run, in seconds (default 600).
    #[arg(long)]
    timeout_seconds: Option<u64>,
    /// Stop the command once it has written nothing for this many seconds (0: no limit).
    #[arg(long)]
    no_output_timeout_seconds: Option<u64>,
    /// The job's model (`provider/model`, must be allowed for the agent).
    #[arg(long)]
    model: Option<String>,
    /// Leave the workspace files out of the prompt.
    #[arg(long)]
    light_context: bool,
    /// Deliver the result to a chat (`--channel` and `--to`).
    #[arg(long)]
    announce: bool,
    #[arg(long)]
    channel: Option<String>,
    #[arg(long)]
    to: Option<String>,
    #[arg(long)]
    account: Option<String>,
    /// POST the finished run to this URL instead of a chat (OpenClaw's `--webhook`).
    #[arg(long, conflicts_with_all = ["announce", "channel", "to", "account"])]
    webhook: Option<String>,
    /// No failure alerts for this job (`failureAlert: false`).
    #[arg(long)]
    no_failure_alert: bool,
    /// Keep a one-shot job after it ran.
    #[arg(long)]
    keep_after_run: bool,
    /// Dynamic cadence: the shortest delay the job's own run may ask for
    /// with the `automations` tool's `next_check` (`15m`).
    #[arg(long, value_name = "DURATION")]
    pacing_min: Option<String>,
    /// Dynamic cadence: the longest delay a `next_check` may ask for (`4h`).
    #[arg(long, value_name = "DURATION")]
    pacing_max: Option<String>,
    /// Store it disabled.
    #[arg(long)]
    disabled: bool,
    /// A system event: `now` (run at once) or `next-heartbeat` (hand it to the next heartbeat).
    #[arg(long, requires = "system_event")]
    wake: Option<String>,
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, cmd: CronCommand) -> Result<ExitCode> {
    let cfg = ctx.load()?.config;
    // Where the gateway keeps it: the state dir, or the replicas' database.
    let database = crate::context::database(&cfg, &ctx.env)?;
    let store = CronStore::at(&ctx.env.state_dir(), database.as_ref());
    match cmd {
        CronCommand::List { json } => list(&cfg, &store, json),
        CronCommand::Add(args) => add(&cfg, &store, *args),
        CronCommand::Rm { id, json } => remove(&cfg, &store, &id, json),
        CronCommand::Run { id, json } => run_now(ctx, &cfg, &id, json),
        CronCommand::Enable { id, json } => enable(&store, &id, json),
        CronCommand::Runs { id, limit, json } => runs(&store, &id, limit, json),
    }
}

fn list(cfg: &Config, store: &CronStore, json: bool) -> Result<ExitCode> {
    let jobs = scheduler::listing(store, cfg)?;
    if json {
        print_json(&serde_json::json!({ "jobs": chela_gateway::cron::listing_json(cfg, &jobs) }));
        return Ok(ExitCode::SUCCESS);
    }
    if jobs.is_empty() {
        println!("no cron jobs (add one with `chela cron add`)");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<22} {:<10} {:<26} {:<12} {:<26} LAST", "ID", "AGENT", "SCHEDULE", "SESSION", "NEXT RUN");
    for (job, st) in &jobs {
        let agent = job.agent(cfg).unwrap_or_else(|| "?".into());
        let next = match (job.enabled(), st.next_run_at_ms) {
            (false, _) => "disabled".to_string(),
            (_, _) if st.done => "done".to_string(),
            (_, Some(ms)) => chela_core::schedule::format_instant(ms),
            (_, None) => "-".to_string(),
        };
        let last = match (&st.last_status, &st.last_reason) {
            (Some(s), Some(r)) => format!("{s} ({r})"),
            (Some(s), None) => s.clone(),
            _ => "never".into(),
        };
        let running = if st.running.is_some() { " [running]" } else { "" };
        println!(
            "{:<22} {:<10} {:<26} {:<12} {:<26} {last}{running}",
            job.id,
            agent,
            job.describe_schedule(),
            job.session_label(),
            next
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn enable(store: &CronStore, id: &str, json: bool) -> Result<ExitCode> {
    let enabled = store.enable(id)?;
    if json {
        print_json(&serde_json::json!({ "id": id, "enabled": enabled }));
    } else if enabled {
        println!("`{id}` is on again (its failure streak cleared); the gateway picks it up at once");
    } else {
        println!("`{id}` was not turned off by the scheduler; nothing to do");
    }
    Ok(ExitCode::SUCCESS)
}

fn schedule(args: &AddArgs) -> Result<ScheduleSpec> {
    if let Some(at) = &args.at {
        // A delay (`20m`) counts from now; otherwise an ISO 8601 time.
        let when = match parse_duration_ms(at, Unit::Minutes) {
            Ok(ms) if parse_instant(at).is_none() => now_ms() + ms as i64,
            _ => parse_instant(at)
                .ok_or_else(|| anyhow::anyhow!("--at `{at}`: not an ISO 8601 time or a delay such as `20m`"))?,
        };
        return Ok(ScheduleSpec::At { at: chela_core::schedule::format_instant(when) });
    }
    if let Some(every) = &args.every {
        let ms = parse_duration_ms(every, Unit::Minutes).map_err(|e| anyhow::anyhow!("--every: {e}"))?;
        return Ok(ScheduleSpec::Every { every_ms: Some(ms), every: None, anchor_ms: Some(now_ms()) });
    }
    if let Some(expr) = &args.cron {
        return Ok(ScheduleSpec::Cron { expr: expr.clone(), tz: args.tz.clone() });
    }
    bail!("a job needs a schedule: --at, --every or --cron")
}

/// `--command <shell>` as `["sh", "-lc", <shell>]`, or `--command-argv` as given.
fn command_argv(args: &AddArgs) -> Result<Option<Vec<String>>> {
    if let Some(line) = &args.command {
        return Ok(Some(vec!["sh".into(), "-lc".into(), line.clone()]));
    }
    let Some(raw) = &args.command_argv else { return Ok(None) };
    let argv: Vec<String> = serde_json::from_str(raw)
        .map_err(|e| anyhow::anyhow!("--command-argv `{raw}`: a JSON array of strings ({e})"))?;
    Ok(Some(argv))
}

fn add(cfg: &Config, store: &CronStore, args: AddArgs) -> Result<ExitCode> {
    let argv = command_argv(&args)?;
    if argv.is_none() && args.no_output_timeout_seconds.is_some() {
        bail!("--no-output-timeout-seconds is for a command job (--command or --command-argv)");
    }
    let payload = match (&args.message, &args.system_event, argv) {
        (Some(m), None, None) => Payload::AgentTurn {
            message: m.clone(),
            model: args.model.clone(),
            light_context: args.light_context.then_some(true),
        },
        (None, Some(t), None) => Payload::SystemEvent { text: t.clone() },
        (None, None, Some(argv)) => {
            let mut env = std::collections::BTreeMap::new();
            for pair in &args.command_env {
                let Some((k, v)) = pair.split_once('=').filter(|(k, _)| !k.trim().is_empty()) else {
                    bail!("--command-env `{pair}`: write KEY=VALUE");
                };
                env.insert(k.trim().to_string(), v.to_string());
            }
            Payload::Command {
                argv,
                cwd: args.command_cwd.clone(),
                env,
                input: args.command_input.clone(),
                timeout_seconds: args.timeout_seconds,
                no_output_timeout_seconds: args.no_output_timeout_seconds,
                output_max_bytes: None,
            }
        }
        _ => bail!(
            "a job runs --message (an agent turn), --system-event (into the main session) or --command / \
             --command-argv (a command, no model)"
        ),
    };
    let id = match &args.id {
        Some(id) if !valid_id(id) => bail!("--id `{id}`: letters, digits, `-` and `_` only (at most 64)"),
        Some(id) => id.clone(),
        None => uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
    };
    let delivery = match &args.webhook {
        Some(url) => Some(Delivery { mode: Some("webhook".into()), to: Some(url.clone()), ..Delivery::default() }),
        None => (args.announce || args.channel.is_some() || args.to.is_some()).then(|| Delivery {
            mode: Some(if args.announce || args.channel.is_some() { "announce" } else { "none" }.into()),
            channel: args.channel.clone(),
            to: args.to.clone(),
            account_id: args.account.clone(),
            ..Delivery::default()
        }),
    };
    let spec = JobSpec {
        id: Some(id.clone()),
        name: args.name.clone(),
        agent_id: args.agent.clone(),
        enabled: args.disabled.then_some(false),
        schedule: schedule(&args)?,
        session_target: args.session.clone(),
        session_key: args.session_key.clone(),
        payload,
        delivery,
        delete_after_run: args.keep_after_run.then_some(false),
        timeout_seconds: None,
        wake_mode: args.wake.clone(),
        failure_alert: args.no_failure_alert.then_some(chela_core::failure_alert::JobFailureAlert::Switch(false)),
        pacing: (args.pacing_min.is_some() || args.pacing_max.is_some())
            .then(|| chela_core::pacing::Pacing { min: args.pacing_min.clone(), max: args.pacing_max.clone() }),
    };
    if let Err(why) = chela_gateway::cron::add_stored(cfg, store, spec.clone())? {
        for line in why.lines() {
            eprintln!("error: {line}");
        }
        bail!("the job was not added");
    }
    if args.json {
        print_json(&serde_json::json!({ "added": spec }));
    } else {
        let agent = spec.agent(cfg).unwrap_or_default();
        println!("added cron job {id} for agent {agent}; the gateway picks it up within a second");
    }
    Ok(ExitCode::SUCCESS)
}

fn remove(cfg: &Config, store: &CronStore, id: &str, json: bool) -> Result<ExitCode> {
    if let Some(j) = chela_gateway::cron::catalogue(cfg, &[]).into_iter().find(|j| j.id == id) {
        bail!("cron job `{id}` is {}; change it there", j.source.describe());
    }
    if !store.remove(id)? {
        bail!("no stored cron job `{id}` (see `chela cron list`)");
    }
    if json {
        print_json(&serde_json::json!({ "removed": id }));
    } else {
        println!("removed cron job {id}");
    }
    Ok(ExitCode::SUCCESS)
}

fn runs(store: &CronStore, id: &str, limit: usize, json: bool) -> Result<ExitCode> {
    let mut runs = store.runs(id)?;
    runs.reverse();
    runs.truncate(limit);
    if json {
        print_json(&serde_json::json!({ "jobId": id, "runs": runs }));
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        println!("no runs of {id} yet");
    }
    for r in &runs {
        let took = r.duration_ms.map(|d| format!(" in {d} ms")).unwrap_or_default();
        let reason = r.reason.as_deref().map(|x| format!(" ({x})")).unwrap_or_default();
        let how = if r.forced { " [cron run]" } else { "" };
        let delivered = if r.delivered { ", delivered" } else { "" };
        println!(
            "{}  {}{took}{reason}{delivered}{how}",
            chela_core::schedule::format_instant(r.started_at_ms),
            r.status
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run_now(ctx: &Context, cfg: &Config, id: &str, json: bool) -> Result<ExitCode> {
    let body = serde_json::json!({ "id": id });
    let Some(report) = crate::client::control(ctx, cfg, reqwest::Method::POST, "/api/v1/cron/run", Some(&body))? else {
        bail!("no gateway is running for this config: `chela cron run` runs the job in the gateway (start it with `chela gateway`)");
    };
    if json {
        print_json(&report);
    } else {
        let status = report["status"].as_str().unwrap_or("?");
        let reason = report["reason"].as_str().map(|r| format!(" ({r})")).unwrap_or_default();
        let delivered = if report["delivered"] == true { ", delivered" } else { "" };
        println!("cron job {id}: {status}{reason}{delivered}");
        if let Some(reply) = report["reply"].as_str().filter(|r| !r.is_empty()) {
            println!("{reply}");
        }
    }
    Ok(if report["status"] == "error" { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
