//! `apply_patch`: applies a multi-file patch in the `*** Begin Patch` format
//! (OpenAI's apply_patch, which OpenClaw accepts) to the workspace.
//!
//! ```text
//! *** Begin Patch
//! *** Add File: notes/new.md
//! +first line
//! *** Update File: src/app.py
//! *** Move to: src/main.py
//! @@ def main():
//!  context line
//! -old line
//! +new line
//! *** Delete File: old.txt
//! *** End Patch
//! ```
//!
//! All-or-nothing: every hunk is located (exactly, then ignoring trailing
//! whitespace, then ignoring surrounding whitespace) before any file is
//! written; a hunk that does not fit fails the whole patch, naming the file
//! and the line it expected. Needs the workspace mounted read-write.
//!
//! Must not: write anything when one hunk fails (all or nothing), or leave the workspace.

use chela_sdk::serde_json;
use chela_sdk::tool::{str_arg, workspace_path, Context, Tool, ToolError, ToolInfo};

mod patch;

use patch::{parse, Op};

struct ApplyPatch;

fn read(rel: &str) -> Result<String, ToolError> {
    std::fs::read_to_string(workspace_path(rel)?).map_err(|e| ToolError::Failed(format!("cannot read {rel}: {e}")))
}

impl Tool for ApplyPatch {
    fn info() -> ToolInfo {
        ToolInfo::new(
            "apply_patch",
            "Applies a patch to files in the agent's workspace. `input` is the whole patch: `*** Begin Patch`, then \
             `*** Add File: PATH` (lines prefixed `+`), `*** Delete File: PATH`, or `*** Update File: PATH` \
             (optional `*** Move to: PATH`) with hunks starting `@@` whose lines are ` ` context, `-` removed, `+` \
             added; then `*** End Patch`. Paths are relative to the workspace. Nothing is written unless every hunk applies.",
            r#"{"type":"object","properties":{"input":{"type":"string","description":"the full patch text"}},"required":["input"]}"#,
        )
    }

    fn invoke(_cx: Context, args: serde_json::Value) -> Result<String, ToolError> {
        let ops = parse(str_arg(&args, "input")?).map_err(ToolError::InvalidArguments)?;
        // Plan everything first: (path, new content or None to delete).
        let mut writes: Vec<(String, Option<String>)> = Vec::new();
        let mut summary = Vec::new();
        for op in &ops {
            match op {
                Op::Add { path, content } => {
                    if std::fs::metadata(workspace_path(path)?).is_ok() {
                        return Err(ToolError::Failed(format!("cannot add {path}: it exists (use Update File)")));
                    }
                    writes.push((path.clone(), Some(content.clone())));
                    summary.push(format!("A {path}"));
                }
                Op::Delete { path } => {
                    read(path)?;
                    writes.push((path.clone(), None));
                    summary.push(format!("D {path}"));
                }
                Op::Update { path, move_to, hunks } => {
                    let text = read(path)?;
                    let updated = patch::apply(&text, hunks).map_err(|e| ToolError::Failed(format!("{path}: {e}")))?;
                    match move_to {
                        Some(to) => {
                            writes.push((path.clone(), None));
                            writes.push((to.clone(), Some(updated)));
                            summary.push(format!("M {path} -> {to}"));
                        }
                        None => {
                            writes.push((path.clone(), Some(updated)));
                            summary.push(format!("M {path}"));
                        }
                    }
                }
            }
        }
        for (rel, content) in &writes {
            let path = workspace_path(rel)?;
            match content {
                Some(c) => {
                    if let Some(parent) = std::path::Path::new(&path).parent() {
                        std::fs::create_dir_all(parent)
                            .map_err(|e| ToolError::Failed(format!("cannot create the folder of {rel}: {e}")))?;
                    }
                    std::fs::write(&path, c).map_err(|e| ToolError::Failed(format!("cannot write {rel}: {e}")))?;
                }
                None => {
                    std::fs::remove_file(&path).map_err(|e| ToolError::Failed(format!("cannot delete {rel}: {e}")))?
                }
            }
        }
        Ok(format!("applied:\n{}", summary.join("\n")))
    }
}

chela_sdk::export_tool!(ApplyPatch);
