//! `exec`: runs a shell command in the agent's workspace. The host runs it
//! (this component cannot start processes itself), under the agent's
//! sandbox when its session is sandboxed, with a time limit and an output cap.
//!
//! Must not: decide its own confinement (the host does, from the agent's policy).

use chela_sdk::bindings::plugin::process::{run, Command};
use chela_sdk::serde_json::{self, json};
use chela_sdk::tool::{str_arg, Context, Tool, ToolError, ToolInfo};

struct Exec;

impl Tool for Exec {
    fn info() -> ToolInfo {
        ToolInfo::new(
            "exec",
            "Runs a shell command (sh -c) in your workspace and returns its exit code, stdout and stderr.",
            r#"{"type":"object","properties":{"command":{"type":"string"},"cwd":{"type":"string","description":"relative to the workspace"},"timeoutMs":{"type":"integer","minimum":1,"maximum":120000},"elevated":{"type":"boolean","description":"run on the host instead of the sandbox; only where tools.elevated allows the sender"}},"required":["command"]}"#,
        )
    }

    fn invoke(_cx: Context, args: serde_json::Value) -> Result<String, ToolError> {
        let command = str_arg(&args, "command")?;
        let cwd = args.get("cwd").and_then(|v| v.as_str()).map(str::to_string);
        let timeout_ms = args.get("timeoutMs").and_then(|v| v.as_u64()).unwrap_or(30_000).clamp(1, 120_000) as u32;
        let elevated = args.get("elevated").and_then(|v| v.as_bool()).unwrap_or(false);
        let cmd = Command {
            program: "sh".into(),
            args: vec!["-c".into(), command.into()],
            cwd,
            stdin: None,
            timeout_ms,
            elevated,
        };
        let out = run(&cmd).map_err(ToolError::Denied)?;
        Ok(json!({
            "exitCode": out.exit_code,
            "stdout": String::from_utf8_lossy(&out.stdout),
            "stderr": String::from_utf8_lossy(&out.stderr),
            "truncated": out.truncated,
            "timedOut": out.timed_out,
        })
        .to_string())
    }
}

chela_sdk::export_tool!(Exec);
