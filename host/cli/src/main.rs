//! `chela`: the command-line entry point. A thin edge over `chela-core`:
//! parse flags, find and load the config, call the core, print the result.
//! Errors become one clear message and a non-zero exit code here.
//!
//! Must not: hold rules: every decision is the core's or the gateway's, called from here.

mod agents;
mod client;
mod config;
mod context;
mod cron;
mod doctor;
mod gateway;
mod identity;
mod migrate;
mod output;
mod pairing;
mod plugins;
mod probe;
mod route;
mod sessions;
mod status;
mod tools;
mod validate;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// chela — a multi-agent AI gateway (OpenClaw-compatible configuration).
#[derive(Parser, Debug)]
#[command(name = "chela", version, about)]
pub struct Cli {
    /// Config file (default: $CHELA_CONFIG_PATH, else <stateDir>/chela.json).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Use ~/.chela-NAME as the state dir (unless CHELA_STATE_DIR is set).
    #[arg(long, global = true, value_name = "NAME")]
    profile: Option<String>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check, read and edit the config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// List, add, delete, bind and unbind agents.
    #[command(subcommand)]
    Agents(agents::AgentsCommand),
    /// Show which agent a message would go to, and why.
    Route(route::RouteArgs),
    /// Show the tools an agent may use, and which stage removed the others.
    Tools(tools::ToolsArgs),
    /// List and inspect WebAssembly plugins.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// Run the gateway (webhooks, channel adapters, agents, control API).
    Gateway(gateway::GatewayArgs),
    /// Send a message to an agent (through a running gateway, else directly).
    Send(sessions::SendArgs),
    /// Run one agent turn (OpenClaw's `openclaw agent --message`).
    Agent(sessions::AgentArgs),
    /// List sessions and show transcripts.
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
    /// DM pairing requests: list and approve.
    #[command(subcommand)]
    Pairing(pairing::PairingCommand),
    /// Scheduled jobs and heartbeats: list, add, remove, run now.
    #[command(subcommand)]
    Cron(cron::CronCommand),
    /// Health checks (config, permissions, token, plugins, channel
    /// credentials, exec confinement, workspaces, session stores) and safe
    /// repairs with --fix.
    Doctor(DoctorArgs),
    /// Config, state dir, gateway, agents and channels at a glance (works
    /// without a running gateway).
    Status(status::StatusArgs),
    /// The running gateway's health snapshot (exit 1 when none answers).
    Health(status::HealthArgs),
    /// Channel accounts: their state, and with --probe whether their credentials work.
    #[command(subcommand)]
    Channels(status::ChannelsCommand),
    /// Bring another gateway's install over.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Print a shell completion script (`chela completion bash > /etc/bash_completion.d/chela`).
    Completion { shell: clap_complete::Shell },
}

#[derive(Subcommand, Debug)]
enum MigrateCommand {
    /// An OpenClaw state dir: config, sessions and transcripts, auth
    /// profiles, approved senders (the source is never modified).
    Openclaw {
        /// The OpenClaw state dir (default: $OPENCLAW_STATE_DIR, else ~/.openclaw).
        #[arg(long, value_name = "DIR")]
        from: Option<std::path::PathBuf>,
        /// Report what would be carried, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug, Clone, Copy)]
pub struct DoctorArgs {
    /// Repair what is safe to: file permissions, and legacy config forms
    /// rewritten in place with comments kept (never a change to routing).
    #[arg(long)]
    pub fix: bool,
    /// Also ask each channel's platform whether the account's credentials
    /// work (through its adapter; needs network access to the platform).
    #[arg(long)]
    pub probe: bool,
    /// Print JSON (`ok`, `findings`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Report every problem in the config (exit 1 if there are errors).
    Validate(ValidateArgs),
    #[command(flatten)]
    Edit(config::ConfigEdit),
}

#[derive(Args, Debug, Clone, Copy)]
pub struct ValidateArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Treat OpenClaw settings chela does not implement (ignored with a warning otherwise) as errors.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Args, Debug, Clone, Copy)]
pub struct JsonFlag {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Logs to stderr: `CHELA_LOG`, else `RUST_LOG`, else warnings plus what
/// start-up is doing; colour only on a terminal and never with `NO_COLOR`.
fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHELA_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        // Warnings, plus what start-up is doing (compiling plugins, adapters started, listening).
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("warn,chela=info,chela_plugin::loader=info,chela_gateway=info")
        });
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Restores the default SIGPIPE action so `chela … | head` ends quietly
/// instead of panicking on a closed stdout (Rust ignores SIGPIPE by default).
fn reset_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called once at start-up before any thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    reset_sigpipe();
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let ctx = context::Context::from_cli(cli.config.clone(), cli.profile.clone());
    let result = match cli.command {
        Command::Config(ConfigCommand::Validate(a)) => validate::run(&ctx, a.json, a.strict),
        Command::Config(ConfigCommand::Edit(cmd)) => config::run(&ctx, cmd),
        Command::Agents(cmd) => agents::run(&ctx, cmd),
        Command::Route(args) => route::run(&ctx, &args),
        Command::Tools(args) => tools::run(&ctx, &args),
        Command::Plugins(cmd) => plugins::run(&ctx, cmd),
        Command::Gateway(args) => gateway::run(&ctx, &args),
        Command::Send(args) => sessions::send(&ctx, &args),
        Command::Agent(args) => sessions::agent(&ctx, &args),
        Command::Sessions(cmd) => sessions::run(&ctx, cmd),
        Command::Pairing(cmd) => pairing::run(&ctx, cmd),
        Command::Cron(cmd) => cron::run(&ctx, cmd),
        Command::Doctor(a) => doctor::run(&ctx, a.fix, a.probe, a.json),
        Command::Status(args) => status::status(&ctx, &args),
        Command::Health(args) => status::health(&ctx, &args),
        Command::Channels(cmd) => status::channels(&ctx, &cmd),
        Command::Completion { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "chela",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate(MigrateCommand::Openclaw { from, dry_run, json }) => migrate::run(&ctx, from, dry_run, json),
    };
    match result {
        Ok(code) => code,
        // 1 for a runtime error, as OpenClaw's CLI; clap exits 2 for usage errors.
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
