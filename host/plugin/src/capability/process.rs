//! `chela:plugin/process`: commands run by the host for tools such as
//! `exec`, inside the agent's workspace, with a time limit and an output cap.
//!
//! A sandboxed session (`sandbox.mode`, reference §11) runs every command
//! under bubblewrap: new namespaces (no network unless granted), the system
//! read-only, only the workspace mounted (read-only unless the grant says
//! otherwise), a private /tmp. When the sandbox is required and bubblewrap
//! is missing or fails, the command does not run (fail closed). An
//! unsandboxed session runs commands on the host, with a cleared
//! environment, in the workspace.

use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command as Child;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::chela::plugin::process::{self, Command, Output};
use crate::state::PluginState;

/// Bytes kept of stdout and of stderr each.
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;
/// Longest a command may run, whatever it asks for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(120);

/// How one agent's session may run commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessGrant {
    /// The directory commands run in (the workspace, or a scratch dir).
    pub root: PathBuf,
    pub writable: bool,
    pub sandboxed: bool,
    /// Network inside the sandbox.
    pub network: bool,
    /// The sender of the message being answered may run commands on the host
    /// (`tools.elevated`, both the global and the agent's setting allow them).
    pub elevated: bool,
}

/// Where bubblewrap is, if installed.
pub fn bubblewrap() -> Option<PathBuf> {
    ["/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// `cwd` (relative to the root) without leaving it.
fn working_dir(root: &Path, cwd: Option<&str>) -> Result<PathBuf, String> {
    let Some(rel) = cwd.filter(|c| !c.is_empty()) else { return Ok(PathBuf::new()) };
    let rel = Path::new(rel);
    if rel.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(format!("cwd `{}` must be a relative path inside the workspace", rel.display()));
    }
    let full = root.join(rel);
    let real = full.canonicalize().map_err(|e| format!("cwd `{}`: {e}", rel.display()))?;
    let real_root = root.canonicalize().map_err(|e| format!("workspace: {e}"))?;
    if !real.starts_with(&real_root) {
        return Err(format!("cwd `{}` leaves the workspace", rel.display()));
    }
    Ok(rel.to_path_buf())
}

/// The bubblewrap command line for `cmd` under `grant`.
fn sandboxed(bwrap: &Path, grant: &ProcessGrant, rel_cwd: &Path, cmd: &Command) -> Child {
    let mut c = Child::new(bwrap);
    c.args(["--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]);
    if grant.network {
        c.arg("--share-net");
    }
    c.args(["--ro-bind", "/usr", "/usr"]);
    for dir in ["/bin", "/sbin", "/lib", "/lib32", "/lib64"] {
        let p = Path::new(dir);
        match std::fs::read_link(p) {
            Ok(target) => {
                c.arg("--symlink").arg(target).arg(dir);
            }
            Err(_) if p.is_dir() => {
                c.args(["--ro-bind", dir, dir]);
            }
            Err(_) => {}
        }
    }
    c.args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
    c.arg(if grant.writable { "--bind" } else { "--ro-bind" }).arg(&grant.root).arg("/workspace");
    c.arg("--chdir").arg(Path::new("/workspace").join(rel_cwd));
    c.args(["--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "HOME", "/workspace"]);
    c.arg("--").arg(&cmd.program).args(&cmd.args);
    c
}

fn on_host(grant: &ProcessGrant, rel_cwd: &Path, cmd: &Command) -> Child {
    let mut c = Child::new(&cmd.program);
    c.args(&cmd.args).current_dir(grant.root.join(rel_cwd)).env_clear();
    c.env("PATH", std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()));
    c.env("HOME", &grant.root);
    c
}

/// Reads up to the cap, then drains the rest (so the child never blocks on a full pipe).
async fn read_capped(mut r: impl AsyncRead + Unpin) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let mut truncated = false;
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = MAX_OUTPUT_BYTES.saturating_sub(out.len());
        out.extend_from_slice(&buf[..n.min(room)]);
        truncated |= n > room;
    }
    (out, truncated)
}

/// Runs `cmd` as `grant` allows.
pub async fn run(grant: &ProcessGrant, cmd: Command) -> Result<Output, String> {
    if cmd.program.is_empty() {
        return Err("program is empty".into());
    }
    std::fs::create_dir_all(&grant.root).map_err(|e| format!("workspace: {e}"))?;
    let rel = working_dir(&grant.root, cmd.cwd.as_deref())?;
    let mut child = if grant.sandboxed && cmd.elevated {
        if !grant.elevated {
            return Err("elevated exec is not allowed for this sender (tools.elevated.allowFrom, and the agent's \
                 tools.elevated, must both allow them); the command was not run"
                .into());
        }
        tracing::warn!(program = %cmd.program, "elevated: running on the host, outside the sandbox");
        on_host(grant, &rel, &cmd)
    } else if grant.sandboxed {
        let bwrap = bubblewrap().ok_or(
            "this session must run commands in the sandbox, but bubblewrap (bwrap) is not installed; the command was not run",
        )?;
        sandboxed(&bwrap, grant, &rel, &cmd)
    } else {
        on_host(grant, &rel, &cmd)
    };
    child.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut proc = child.spawn().map_err(|e| format!("cannot start `{}`: {e}", cmd.program))?;
    if let Some(mut stdin) = proc.stdin.take() {
        let input = cmd.stdin.clone().unwrap_or_default();
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
    }
    let (stdout, stderr) = (proc.stdout.take(), proc.stderr.take());
    let out = tokio::spawn(async move {
        match stdout {
            Some(s) => read_capped(s).await,
            None => (Vec::new(), false),
        }
    });
    let err = tokio::spawn(async move {
        match stderr {
            Some(s) => read_capped(s).await,
            None => (Vec::new(), false),
        }
    });
    let limit = Duration::from_millis(u64::from(cmd.timeout_ms.max(1))).min(MAX_TIMEOUT);
    let (status, timed_out) = match tokio::time::timeout(limit, proc.wait()).await {
        Ok(s) => (s.ok(), false),
        Err(_) => {
            let _ = proc.kill().await;
            (None, true)
        }
    };
    let (stdout, t1) = out.await.unwrap_or_default();
    let (stderr, t2) = err.await.unwrap_or_default();
    let exit_code = if timed_out { None } else { status.and_then(|s| s.code()) };
    Ok(Output { exit_code, stdout, stderr, truncated: t1 || t2, timed_out })
}

impl process::Host for PluginState {
    async fn run(&mut self, cmd: Command) -> Result<Output, String> {
        let grant = self.process.clone().ok_or("running commands is not granted to this session")?;
        tracing::info!(plugin = %self.plugin_id, agent = %self.agent_id, program = %cmd.program, sandboxed = grant.sandboxed, "exec");
        run(&grant, cmd).await
    }
}

pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    process::add_to_linker::<_, HasSelf<PluginState>>(linker, |s| s)
}
