//! `write`: writes a text file in the agent's workspace (creating folders).
//! Needs the workspace mounted read-write; with a read-only mount WASI refuses.
//!
//! Must not: write outside `/workspace`.

use chela_sdk::serde_json;
use chela_sdk::tool::{str_arg, workspace_path, Context, Tool, ToolError, ToolInfo};

struct Write;

impl Tool for Write {
    fn info() -> ToolInfo {
        ToolInfo::new(
            "write",
            "Writes (replaces) a UTF-8 text file in the agent's workspace; creates parent folders.",
            r#"{"type":"object","properties":{"path":{"type":"string"},"content":{"type":"string"}},"required":["path","content"]}"#,
        )
    }

    fn invoke(_cx: Context, args: serde_json::Value) -> Result<String, ToolError> {
        let rel = str_arg(&args, "path")?;
        let content = str_arg(&args, "content")?;
        let path = workspace_path(rel)?;
        if let Some(parent) = std::path::Path::new(&path).parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| ToolError::Failed(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(&path, content).map_err(|e| ToolError::Failed(format!("cannot write {path}: {e}")))?;
        Ok(format!("wrote {} bytes to {rel}", content.len()))
    }
}

chela_sdk::export_tool!(Write);
