//! `edit`: replaces one exact piece of text in a workspace file.
//!
//! The model names the text it saw (`oldText`) and what it should become
//! (`newText`). The old text must occur exactly once — an ambiguous or stale
//! edit is refused with the count, never guessed — unless `replaceAll`.
//! Needs the workspace mounted read-write.
//!
//! Must not: guess between several matches (ambiguity is an error unless `replaceAll`), or leave
//! the workspace.

use chela_sdk::serde_json;
use chela_sdk::tool::{str_arg, workspace_path, Context, Tool, ToolError, ToolInfo};

struct Edit;

impl Tool for Edit {
    fn info() -> ToolInfo {
        ToolInfo::new(
            "edit",
            "Edits a UTF-8 text file in the agent's workspace: replaces `oldText` (which must occur exactly once, \
             including whitespace) with `newText`. Set `replaceAll` to replace every occurrence. Read the file first.",
            r#"{"type":"object","properties":{"path":{"type":"string"},"oldText":{"type":"string","minLength":1},"newText":{"type":"string"},"replaceAll":{"type":"boolean"}},"required":["path","oldText","newText"]}"#,
        )
    }

    fn invoke(_cx: Context, args: serde_json::Value) -> Result<String, ToolError> {
        let rel = str_arg(&args, "path")?;
        let old = str_arg(&args, "oldText")?;
        let new = str_arg(&args, "newText")?;
        let all = args.get("replaceAll").and_then(|v| v.as_bool()).unwrap_or(false);
        if old.is_empty() {
            return Err(ToolError::InvalidArguments("`oldText` is empty".into()));
        }
        let path = workspace_path(rel)?;
        let text = std::fs::read_to_string(&path).map_err(|e| ToolError::Failed(format!("cannot read {rel}: {e}")))?;
        let count = text.matches(old).count();
        let updated = match (count, all) {
            (0, _) => {
                return Err(ToolError::Failed(format!(
                "`oldText` does not occur in {rel} (it must match exactly, whitespace included; read the file again)"
            )))
            }
            (1, _) => text.replacen(old, new, 1),
            (_, true) => text.replace(old, new),
            (n, false) => {
                return Err(ToolError::Failed(format!(
                    "`oldText` occurs {n} times in {rel}: include more surrounding text, or set `replaceAll`"
                )))
            }
        };
        std::fs::write(&path, &updated).map_err(|e| ToolError::Failed(format!("cannot write {rel}: {e}")))?;
        let line = text.find(old).map(|i| text[..i].matches('\n').count() + 1).unwrap_or(1);
        Ok(format!("replaced {} occurrence(s) in {rel} (first at line {line})", if all { count } else { 1 }))
    }
}

chela_sdk::export_tool!(Edit);
