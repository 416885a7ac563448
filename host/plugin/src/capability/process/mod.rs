//! `chela:plugin/process`: commands run by the host for tools such as
//! `exec`, inside the agent's workspace, with a time limit and an output cap.
//!
//! Every command runs under bubblewrap, in its own PID namespace with all
//! capabilities dropped, a size-capped private `/tmp`, rlimits (CPU, address
//! space, file size, processes) and an environment of `PATH`, `HOME` (the
//! workspace), `LANG` and `tools.exec.env` only:
//! - a sandboxed session (`sandbox.mode`, reference §11): a seccomp filter
//!   (`seccomp.rs`), new namespaces (no
//!   network unless granted; then name resolution and CA certificates are
//!   mounted), the system read-only, only the workspace mounted (read-only
//!   unless the grant says otherwise);
//! - on the host (sandbox off, or elevated): the host filesystem visible as
//!   OpenClaw's `mode: "off"` promises, but the gateway's state dir, the
//!   config file, every agentDir and every other agent's workspace hidden
//!   (core `exec_confinement`), and the gateway's processes invisible.
//!
//! Where bubblewrap is missing or cannot create namespaces, host commands
//! are confined by Landlock instead (`landlock.rs`: the same paths hidden,
//! no private `/tmp`); where neither works, the command does not run (fail
//! closed) and the error names the opt-out,
//! `tools.exec.host: "unconfined"`, which runs commands as OpenClaw does
//! (its own process group, still the cleared environment and rlimits). A
//! timeout or a dropped call kills the whole namespace or process group, so
//! `(cmd &)` does not outlive it.
//!
//! Must not: decide what a command may see (core's `policy::exec` does) or run one unconfined
//! unless that policy says so.

mod landlock;
mod seccomp;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use chela_core::policy::{judge, ExecConfinement, HostExecPolicy, Verdict, HOST_PATH};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command as Child;
use wasmtime::component::Linker;

use crate::bindings::plugin::process;

mod approval;
pub use crate::bindings::plugin::process::{Command, Output};
pub use approval::{run_approved, Asked, ExecApprovals, PendingExec};

/// Bytes kept of stdout and of stderr each.
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;
/// Longest a command may run, whatever it asks for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(120);
/// Size of the private `/tmp`.
pub const TMP_BYTES: u64 = 256 << 20;
/// Address space of a command (generous: JITs reserve a lot they never touch).
pub const MAX_ADDRESS_SPACE: u64 = 8 << 30;
/// Largest file a command may write.
pub const MAX_FILE_BYTES: u64 = 1 << 30;
/// Processes of the gateway's user (the kernel counts them per user).
pub const MAX_PROCESSES: u64 = 4096;

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
    /// What host commands must not see, their environment, and the opt-out.
    pub confinement: ExecConfinement,
    /// Which commands may run on the host at all (`tools.exec.mode` /
    /// `security` / `ask` / `safeBins`): judged before a host command starts.
    pub policy: HostExecPolicy,
}

/// Where bubblewrap is, if installed.
pub fn bubblewrap() -> Option<PathBuf> {
    ["/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// How host commands would be confined here (`chela doctor` asks): bubblewrap
/// with namespaces, and whether Landlock is on offer; `Err` says why not.
pub fn confinement() -> (Result<PathBuf, String>, bool) {
    let bwrap = bubblewrap()
        .ok_or_else(|| "bubblewrap (bwrap) is not installed".to_string())
        .and_then(|b| confinement_works(&b).map(|()| b));
    (bwrap, landlock::available())
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

/// Options every bubblewrap command line starts with. bubblewrap itself
/// starts with an empty environment too: its PID-namespace init stays
/// visible in `/proc/1/environ`.
fn bwrap_base(c: &mut Child) {
    c.env_clear();
    c.args(["--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]);
    c.args(["--unshare-cgroup-try", "--cap-drop", "ALL", "--clearenv"]);
}

fn environment(c: &mut Child, grant: &ProcessGrant, home: &Path) {
    c.arg("--setenv").arg("PATH").arg(HOST_PATH.join(":"));
    c.arg("--setenv").arg("HOME").arg(home);
    c.args(["--setenv", "LANG", "C.UTF-8"]);
    for (k, v) in &grant.confinement.env {
        c.arg("--setenv").arg(k).arg(v);
    }
}

/// The seccomp program on a pipe bubblewrap reads (`--seccomp FD`); the
/// returned end must stay open until the child has started.
fn seccomp_fd(c: &mut Child) -> Result<OwnedFd, String> {
    let program = seccomp::program()?;
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| e.to_string())?;
    // A few hundred bytes: far below a pipe's buffer, so this never blocks.
    rustix::io::write(&write, program).map_err(|e| format!("seccomp program: {e}"))?;
    drop(write);
    let fd = read.as_raw_fd();
    // SAFETY: fcntl(F_SETFD) is async-signal-safe; it lets bubblewrap inherit the read end.
    unsafe {
        c.pre_exec(move || {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c.arg("--seccomp").arg(fd.to_string());
    Ok(read)
}

/// The bubblewrap command line for a sandboxed session's `cmd`, and the
/// seccomp pipe to keep open until it has started.
fn sandboxed(bwrap: &Path, grant: &ProcessGrant, rel_cwd: &Path, cmd: &Command) -> Result<(Child, OwnedFd), String> {
    let mut c = Child::new(bwrap);
    bwrap_base(&mut c);
    let filter = seccomp_fd(&mut c)?;
    c.args(["--unshare-all"]);
    if grant.network {
        c.arg("--share-net");
        // What name resolution and TLS need, read-only.
        for f in ["/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/ssl", "/etc/ca-certificates"] {
            if Path::new(f).exists() {
                c.args(["--ro-bind", f, f]);
            }
        }
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
    c.args(["--proc", "/proc", "--dev", "/dev", "--size", &TMP_BYTES.to_string(), "--tmpfs", "/tmp"]);
    c.arg(if grant.writable { "--bind" } else { "--ro-bind" }).arg(&grant.root).arg("/workspace");
    c.arg("--chdir").arg(Path::new("/workspace").join(rel_cwd));
    environment(&mut c, grant, Path::new("/workspace"));
    c.arg("--").arg(&cmd.program).args(&cmd.args);
    Ok((c, filter))
}

/// Hides `path`: an empty tmpfs over a directory, `/dev/null` over a file.
/// A directory that does not exist yet (another agent's workspace before
/// its first session) is created first and hidden too, so the command cannot
/// plant files where that agent will read them.
fn hide(c: &mut Child, path: &Path, is_file: bool) {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_dir() => {
            c.arg("--ro-bind").arg("/dev/null").arg(path);
        }
        Ok(_) => {
            c.arg("--tmpfs").arg(path);
        }
        Err(_) if !is_file && std::fs::create_dir_all(path).is_ok() => {
            c.arg("--tmpfs").arg(path);
        }
        Err(_) => {} // a file that is not there, or a directory that cannot be made (nor by the command)
    }
}

/// The bubblewrap command line for a host command: the host's filesystem,
/// minus what `grant.confinement` hides, the workspace bound back in.
fn confined_on_host(bwrap: &Path, grant: &ProcessGrant, rel_cwd: &Path, cmd: &Command) -> Child {
    let mut c = Child::new(bwrap);
    bwrap_base(&mut c);
    c.args(["--bind", "/", "/", "--dev-bind", "/dev", "/dev", "--proc", "/proc"]);
    c.args(["--size", &TMP_BYTES.to_string(), "--tmpfs", "/tmp"]);
    let root = grant.root.canonicalize().unwrap_or_else(|_| grant.root.clone());
    let hidden: Vec<PathBuf> =
        grant.confinement.hidden.iter().map(|p| p.canonicalize().unwrap_or_else(|_| p.clone())).collect();
    let is_file = |p: &Path| grant.confinement.hidden_files.iter().any(|f| f == p);
    for p in hidden.iter().filter(|p| !root.starts_with(p) || **p == root) {
        hide(&mut c, p, is_file(p));
    }
    // The workspace may sit inside the state dir (OpenClaw's default): bind it back,
    // then hide again whatever hidden path lies inside it.
    c.arg(if grant.writable { "--bind" } else { "--ro-bind" }).arg(&root).arg(&root);
    for p in hidden.iter().filter(|p| p.starts_with(&root) && **p != root) {
        hide(&mut c, p, is_file(p));
    }
    c.arg("--chdir").arg(root.join(rel_cwd));
    environment(&mut c, grant, &root);
    c.arg("--").arg(&cmd.program).args(&cmd.args);
    c
}

/// OpenClaw's exact behaviour (`tools.exec.host: "unconfined"`): no namespaces.
/// The gateway's `PATH`, which unconfined commands get (else the host default).
fn host_path() -> String {
    std::env::var("PATH").unwrap_or_else(|_| HOST_PATH.join(":"))
}

fn unconfined(grant: &ProcessGrant, rel_cwd: &Path, cmd: &Command) -> Child {
    let mut c = Child::new(&cmd.program);
    c.args(&cmd.args).current_dir(grant.root.join(rel_cwd)).env_clear();
    c.env("PATH", host_path());
    c.env("HOME", &grant.root).env("LANG", "C.UTF-8");
    c.envs(grant.confinement.env.iter().map(|(k, v)| (k, v)));
    c
}

/// Whether bubblewrap can build the host confinement here (namespaces
/// allowed), checked once: `Err` says why, and names the opt-out.
fn confinement_works(bwrap: &Path) -> Result<(), String> {
    static PROBE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    PROBE
        .get_or_init(|| {
            let out = std::process::Command::new(bwrap)
                .env_clear()
                .args(["--die-with-parent", "--unshare-pid", "--cap-drop", "ALL", "--bind", "/", "/"])
                .args(["--dev-bind", "/dev", "/dev", "--proc", "/proc", "--size", "1048576", "--tmpfs", "/tmp"])
                .args(["--", "/bin/sh", "-c", "true"])
                .output();
            match out {
                Ok(o) if o.status.success() => Ok(()),
                Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
        .clone()
}

/// Limits set in the child before it runs (inherited by everything it starts).
fn rlimits(c: &mut Child, timeout: Duration) {
    let cpu = timeout.as_secs() + 5;
    // SAFETY: only async-signal-safe system calls (setrlimit) between fork and exec.
    unsafe {
        c.pre_exec(move || {
            use rustix::process::{setrlimit, Resource, Rlimit};
            let set = |r: Resource, v: u64| setrlimit(r, Rlimit { current: Some(v), maximum: Some(v) });
            let _ = set(Resource::Cpu, cpu);
            let _ = set(Resource::As, MAX_ADDRESS_SPACE);
            let _ = set(Resource::Fsize, MAX_FILE_BYTES);
            let _ = set(Resource::Nproc, MAX_PROCESSES);
            Ok(())
        });
    }
}

/// Kills a command's process group when the call ends early (timeout, dropped call).
struct GroupKill(Option<i32>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pid) = self.0.and_then(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

/// Reads up to the cap, then drains the rest (so the child never blocks on a full pipe).
async fn read_capped(mut r: impl AsyncRead + Unpin, heard: Arc<Heard>) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let mut truncated = false;
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        heard.now();
        let room = MAX_OUTPUT_BYTES.saturating_sub(out.len());
        out.extend_from_slice(&buf[..n.min(room)]);
        truncated |= n > room;
    }
    (out, truncated)
}

/// Runs `cmd` as `grant` allows.
pub async fn run(grant: &ProcessGrant, cmd: Command) -> Result<Output, String> {
    match judged(grant, &cmd).fallback() {
        Verdict::Refuse(why) => Err(format!("{why}; the command was not run")),
        _ => run_as(grant, cmd, HostConfiner::Best).await,
    }
}

/// When a command last wrote to stdout or stderr, in milliseconds since it started.
struct Heard {
    started: std::time::Instant,
    at_ms: std::sync::atomic::AtomicU64,
}

impl Heard {
    fn new() -> Arc<Heard> {
        Arc::new(Heard { started: std::time::Instant::now(), at_ms: std::sync::atomic::AtomicU64::new(0) })
    }

    fn now(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.at_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// How long the command has been silent.
    fn silent_for(&self) -> Duration {
        let at = Duration::from_millis(self.at_ms.load(std::sync::atomic::Ordering::Relaxed));
        self.started.elapsed().saturating_sub(at)
    }
}

/// What a scheduled command did: its output, and whether it was stopped
/// for writing nothing for its silence limit.
#[derive(Debug)]
pub struct Scheduled {
    pub output: Output,
    pub silent_too_long: bool,
}

/// Runs an operator's scheduled command (a cron job's command payload) as
/// `grant` confines its agent's host commands, for up to `max`, and stopped
/// early when it writes nothing for `silence` (OpenClaw's
/// `noOutputTimeoutSeconds`): not judged by the agent's exec policy, which
/// governs what the agent's model asks for, not what the operator wrote.
pub async fn run_scheduled(
    grant: &ProcessGrant,
    cmd: Command,
    max: Duration,
    silence: Option<Duration>,
) -> Result<Scheduled, String> {
    let (output, silent_too_long) = run_within(grant, cmd, HostConfiner::Best, max, silence).await?;
    Ok(Scheduled { output, silent_too_long })
}

/// What the host exec policy says of `cmd` under `grant` (`Run` for a
/// sandboxed command: the policy governs the host only).
fn judged(grant: &ProcessGrant, cmd: &Command) -> Verdict {
    if grant.sandboxed && !cmd.elevated {
        return Verdict::Run;
    }
    let mut policy = grant.policy.clone();
    if grant.confinement.unconfined {
        // It runs with the gateway's own `PATH`: a safe bin must be first there.
        policy.path = std::env::split_paths(&host_path()).collect();
    }
    let verdict = judge(&policy, &cmd.program, &cmd.args);
    if !matches!(verdict, Verdict::Run) {
        tracing::warn!(program = %cmd.program, verdict = ?verdict, "exec: the host exec policy does not let it run as is");
    }
    verdict
}

/// Runs a host command under Landlock even where bubblewrap works (what a
/// machine without namespaces gets): for tests of that fallback.
pub async fn run_landlocked(grant: &ProcessGrant, cmd: Command) -> Result<Output, String> {
    run_as(grant, cmd, HostConfiner::Landlock).await
}

/// How a host command (sandbox off, or elevated) is confined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostConfiner {
    /// bubblewrap where it can create namespaces, else Landlock, else refuse.
    Best,
    Landlock,
}

const OPT_OUT: &str = "To run commands unconfined, as OpenClaw does, set tools.exec.host: \"unconfined\"";

/// The Landlock-confined host command and the ruleset to apply in the child.
fn landlocked(grant: &ProcessGrant, rel: &Path, cmd: &Command) -> Result<(Child, OwnedFd), String> {
    let fd = landlock::ruleset(&grant.root, grant.writable, &grant.confinement.hidden)?;
    let mut child = unconfined(grant, rel, cmd);
    let raw = fd.as_raw_fd();
    // SAFETY: `restrict` makes only the prctl and landlock_restrict_self system calls.
    unsafe {
        child.pre_exec(move || landlock::restrict(raw));
    }
    Ok((child, fd))
}

/// Runs `cmd` confined as `grant` says (the host exec policy applied
/// before, by the caller, or settled by an approval).
async fn run_as(grant: &ProcessGrant, cmd: Command, confiner: HostConfiner) -> Result<Output, String> {
    run_within(grant, cmd, confiner, MAX_TIMEOUT, None).await.map(|(output, _)| output)
}

/// [`run_as`] with `max` as the longest its timeout may be.
async fn run_within(
    grant: &ProcessGrant,
    cmd: Command,
    confiner: HostConfiner,
    max: Duration,
    silence: Option<Duration>,
) -> Result<(Output, bool), String> {
    if cmd.program.is_empty() {
        return Err("program is empty".into());
    }
    std::fs::create_dir_all(&grant.root).map_err(|e| format!("workspace: {e}"))?;
    let rel = working_dir(&grant.root, cmd.cwd.as_deref())?;
    let on_host = !grant.sandboxed || cmd.elevated;
    if grant.sandboxed && cmd.elevated {
        if !grant.elevated {
            return Err("elevated exec is not allowed for this sender (tools.elevated.allowFrom, and the agent's \
                 tools.elevated, must both allow them); the command was not run"
                .into());
        }
        tracing::warn!(program = %cmd.program, "elevated: running on the host, outside the sandbox");
    }
    // Kept open until the child has started: the seccomp pipe, the Landlock ruleset.
    let mut keep: Option<OwnedFd> = None;
    let mut child = if on_host && grant.confinement.unconfined {
        unconfined(grant, &rel, &cmd)
    } else if on_host {
        let bwrap = bubblewrap().ok_or_else(|| "bubblewrap (bwrap) is not installed".to_string());
        let namespaces = bwrap.and_then(|b| confinement_works(&b).map(|()| b));
        match (confiner, namespaces) {
            (HostConfiner::Best, Ok(bwrap)) => confined_on_host(&bwrap, grant, &rel, &cmd),
            (_, why) => {
                let why = why.err().unwrap_or_else(|| "Landlock asked for".into());
                if !landlock::available() {
                    return Err(format!(
                        "commands run confined (the gateway's state and other agents' files hidden), but neither \
                         bubblewrap ({why}) nor Landlock works here; the command was not run. {OPT_OUT}"
                    ));
                }
                tracing::debug!(%why, "host command confined with Landlock");
                let (child, fd) =
                    landlocked(grant, &rel, &cmd).map_err(|e| format!("{e}; the command was not run. {OPT_OUT}"))?;
                keep = Some(fd);
                child
            }
        }
    } else {
        let bwrap = bubblewrap().ok_or(
            "this session must run commands in the sandbox, but bubblewrap (bwrap) is not installed; the command was not run",
        )?;
        let (child, pipe) = sandboxed(&bwrap, grant, &rel, &cmd)?;
        keep = Some(pipe);
        child
    };
    let limit = Duration::from_millis(u64::from(cmd.timeout_ms.max(1))).min(max);
    rlimits(&mut child, limit);
    child.process_group(0);
    child.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut proc = child.spawn().map_err(|e| format!("cannot start `{}`: {e}", cmd.program))?;
    drop(keep); // the child holds its own copy now
                // Killed with its whole group when this call ends early; bubblewrap's
                // namespace dies with it (`--die-with-parent`, PID namespace).
    let mut group = GroupKill(proc.id().and_then(|id| i32::try_from(id).ok()));
    if let Some(mut stdin) = proc.stdin.take() {
        let input = cmd.stdin.clone().unwrap_or_default();
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
    }
    let (stdout, stderr) = (proc.stdout.take(), proc.stderr.take());
    let heard = Heard::new();
    let (h1, h2) = (heard.clone(), heard.clone());
    let out = tokio::spawn(async move {
        match stdout {
            Some(s) => read_capped(s, h1).await,
            None => (Vec::new(), false),
        }
    });
    let err = tokio::spawn(async move {
        match stderr {
            Some(s) => read_capped(s, h2).await,
            None => (Vec::new(), false),
        }
    });
    // The exit, or `None` once it has written nothing for `silence`.
    let exited = async {
        let Some(silence) = silence else { return Some(proc.wait().await) };
        let check = (silence / 4).clamp(Duration::from_millis(20), Duration::from_millis(250));
        loop {
            tokio::select! {
                s = proc.wait() => return Some(s),
                () = tokio::time::sleep(check) => {
                    if heard.silent_for() >= silence {
                        return None;
                    }
                }
            }
        }
    };
    let mut silent_too_long = false;
    let waited = match tokio::time::timeout(limit, exited).await {
        Ok(None) => {
            silent_too_long = true;
            Err(())
        }
        Ok(Some(s)) => Ok(s),
        Err(_) => Err(()),
    };
    let (status, timed_out) = match waited {
        Ok(s) => (s.ok(), false),
        Err(()) => {
            // The leader is not reaped yet, so its group id is still its own.
            drop(GroupKill(group.0.take()));
            let _ = proc.kill().await;
            (None, true)
        }
    };
    // Exited by itself: reaped, so its group id may be reused; never signal it now.
    // (Confined commands' stragglers die with the PID namespace.)
    group.0 = None;
    let (stdout, t1) = out.await.unwrap_or_default();
    let (stderr, t2) = err.await.unwrap_or_default();
    let exit_code = if timed_out { None } else { status.and_then(|s| s.code()) };
    Ok((Output { exit_code, stdout, stderr, truncated: t1 || t2, timed_out }, silent_too_long))
}

/// An instance's right to run commands: the grant (none: not granted), and
/// who runs them, for the log.
#[derive(Default)]
pub struct ProcessState {
    pub(crate) grant: Option<ProcessGrant>,
    pub(crate) plugin: String,
    pub(crate) agent: String,
    /// The session the call serves (an approval prompt goes to its chat).
    pub(crate) session_key: String,
    /// Where a command that needs an approval is asked for (none: refused).
    pub(crate) approvals: Option<Arc<dyn ExecApprovals>>,
}

/// What a `process` call sees: the instance's [`ProcessState`] and the
/// current call's deadline (a command ends before it).
pub struct ProcessView<'a> {
    pub state: &'a ProcessState,
    pub deadline: Option<std::time::Instant>,
}

struct ProcessData;

impl wasmtime::component::HasData for ProcessData {
    type Data<'a> = ProcessView<'a>;
}

impl process::Host for ProcessView<'_> {
    async fn run(&mut self, cmd: Command) -> Result<Output, String> {
        let grant = self.state.grant.clone().ok_or("running commands is not granted to this session")?;
        // The command ends (timed out) before the plugin call's own deadline, so
        // a long command is a result for the model, not a failed plugin call.
        let mut cmd = cmd;
        if let Some(deadline) = self.deadline {
            let left = deadline
                .saturating_duration_since(std::time::Instant::now())
                .saturating_sub(Duration::from_millis(300));
            let left_ms = u32::try_from(left.as_millis()).unwrap_or(u32::MAX).max(1);
            cmd.timeout_ms = cmd.timeout_ms.min(left_ms);
        }
        tracing::info!(plugin = %self.state.plugin, agent = %self.state.agent, program = %cmd.program, sandboxed = grant.sandboxed, "exec");
        let why = match judged(&grant, &cmd) {
            Verdict::Run => return run_as(&grant, cmd, HostConfiner::Best).await,
            Verdict::Refuse(why) => return Err(format!("{why}; the command was not run")),
            Verdict::Ask(why) => why,
        };
        let (Some(approvals), false) = (self.state.approvals.clone(), self.state.session_key.is_empty()) else {
            return run(&grant, cmd).await;
        };
        let pending = PendingExec {
            agent: self.state.agent.clone(),
            session_key: self.state.session_key.clone(),
            plugin: self.state.plugin.clone(),
            reason: why.clone(),
            command: cmd.clone(),
            grant: grant.clone(),
        };
        match approvals.request(pending).await {
            Ok(Asked::Approved) => run_as(&grant, cmd, HostConfiner::Best).await,
            Ok(Asked::Pending(id)) => Err(format!(
                "{why}. An approval prompt went to this chat as `{id}` (/approve {id} allow-once|allow-always|deny); \
                 the command runs once it is approved and its result comes to this session. Do not run it again \
                 meanwhile."
            )),
            Err(e) => Err(format!(
                "{why}; it could not be asked for ({e}), so it is refused (OpenClaw's askFallback: deny); the command \
                 was not run"
            )),
        }
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> ProcessView<'_>,
) -> wasmtime::Result<()> {
    process::add_to_linker::<T, ProcessData>(linker, get)
}
