//! `memory_get`: reads a memory file (`MEMORY.md` or a file under `memory/`)
//! from the agent's workspace, optionally a line range (from
//! `memory_search`). Other workspace files are `read`'s business, so a
//! policy can allow memory without allowing the whole filesystem.
//!
//! Must not: read workspace files that are not memory.

use chela_sdk::serde_json::{self, json};
use chela_sdk::tool::{str_arg, Context, Tool, ToolError, ToolInfo, WORKSPACE};

/// Longest text returned, in bytes.
const MAX_BYTES: usize = 64 * 1024;

struct MemoryGet;

/// A memory path, normalised (`./memory/a.md` → `memory/a.md`); anything else is refused.
fn memory_path(path: &str) -> Result<String, ToolError> {
    let p = path.trim().trim_start_matches("./").trim_start_matches(&format!("{WORKSPACE}/")).to_string();
    let ok = matches!(p.as_str(), "MEMORY.md" | "memory.md")
        || (p.starts_with("memory/") && p.ends_with(".md") && !p.split('/').any(|s| s == ".." || s.is_empty()));
    if ok {
        Ok(p)
    } else {
        Err(ToolError::Denied(format!("{path} is not a memory file (MEMORY.md or memory/*.md)")))
    }
}

impl Tool for MemoryGet {
    fn info() -> ToolInfo {
        ToolInfo::new(
            "memory_get",
            "Reads the agent's memory file `path` (MEMORY.md or memory/….md), optionally `lines` lines from line `from` \
             (1-based), e.g. a range memory_search returned.",
            r#"{"type":"object","properties":{"path":{"type":"string"},"from":{"type":"integer","minimum":1},"lines":{"type":"integer","minimum":1}},"required":["path"]}"#,
        )
    }

    fn invoke(_cx: Context, args: serde_json::Value) -> Result<String, ToolError> {
        let rel = memory_path(str_arg(&args, "path")?)?;
        let text = std::fs::read_to_string(format!("{WORKSPACE}/{rel}"))
            .map_err(|e| ToolError::Failed(format!("cannot read {rel}: {e}")))?;
        let from = args.get("from").and_then(|v| v.as_u64()).unwrap_or(1).max(1) as usize;
        let count = args.get("lines").and_then(|v| v.as_u64()).map(|n| n as usize).unwrap_or(usize::MAX);
        let total = text.lines().count();
        let mut out: String = text.lines().skip(from - 1).take(count).collect::<Vec<_>>().join("\n");
        let truncated = out.len() > MAX_BYTES;
        if truncated {
            let mut cut = MAX_BYTES;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
        }
        Ok(json!({"path": rel, "from": from, "totalLines": total, "truncated": truncated, "text": out}).to_string())
    }
}

chela_sdk::export_tool!(MemoryGet);
