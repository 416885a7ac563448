//! `read`: reads a text file from the agent's workspace.
//!
//! The workspace is the only directory the host preopens (at `/workspace`),
//! so paths that escape it (`..`, absolute paths, symlinks out) fail in WASI
//! itself; the checks here only make the error message clear.
//!
//! Must not: read outside `/workspace` (WASI refuses; this code does not try).

use chela_sdk::serde_json;
use chela_sdk::tool::{str_arg, workspace_path, Context, Tool, ToolError, ToolInfo};

const MAX_BYTES: u64 = 256 * 1024;

struct Read;

impl Tool for Read {
    fn info() -> ToolInfo {
        ToolInfo::new(
            "read",
            "Reads a UTF-8 text file from the agent's workspace (paths are relative to it).",
            r#"{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}"#,
        )
    }

    fn invoke(_cx: Context, args: serde_json::Value) -> Result<String, ToolError> {
        let path = workspace_path(str_arg(&args, "path")?)?;
        let meta = std::fs::metadata(&path).map_err(|e| ToolError::Failed(format!("cannot read {path}: {e}")))?;
        if meta.len() > MAX_BYTES {
            return Err(ToolError::Failed(format!("{path} is {} bytes; the limit is {MAX_BYTES}", meta.len())));
        }
        std::fs::read_to_string(&path).map_err(|e| ToolError::Failed(format!("cannot read {path}: {e}")))
    }
}

chela_sdk::export_tool!(Read);
