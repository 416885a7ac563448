//! `memory_search`: finds passages in the agent's memory — `MEMORY.md` and
//! the Markdown files under `memory/` in its workspace.
//!
//! Lexical ranking (BM25 over paragraph-sized chunks), so it works offline
//! with no embedding model; results carry the file and line range for
//! `memory_get`. Read-only: the workspace mount may be `ro`.
//!
//! Must not: reach the network or read files that are not memory.

use chela_sdk::serde_json::{self, json};
use chela_sdk::tool::{str_arg, Context, Tool, ToolError, ToolInfo, WORKSPACE};

mod rank;

struct MemorySearch;

/// Memory files: `MEMORY.md` (or `memory.md`) and `memory/**/*.md`, workspace-relative.
fn memory_files() -> Vec<String> {
    let mut out = Vec::new();
    for top in ["MEMORY.md", "memory.md"] {
        if std::fs::metadata(format!("{WORKSPACE}/{top}")).is_ok_and(|m| m.is_file()) {
            out.push(top.to_string());
            break;
        }
    }
    let mut stack = vec!["memory".to_string()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(format!("{WORKSPACE}/{dir}")) else { continue };
        let mut names: Vec<(String, bool)> = entries
            .flatten()
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.file_type().ok()?.is_dir())))
            .collect();
        names.sort();
        for (name, is_dir) in names {
            let rel = format!("{dir}/{name}");
            if is_dir {
                stack.push(rel);
            } else if name.ends_with(".md") {
                out.push(rel);
            }
        }
    }
    out
}

impl Tool for MemorySearch {
    fn info() -> ToolInfo {
        ToolInfo::new(
            "memory_search",
            "Searches the agent's memory (MEMORY.md and memory/*.md in its workspace) for passages about `query` \
             (keywords). Returns the best passages with their file and line range; use memory_get to read more.",
            r#"{"type":"object","properties":{"query":{"type":"string","minLength":1},"maxResults":{"type":"integer","minimum":1,"maximum":20}},"required":["query"]}"#,
        )
    }

    fn invoke(_cx: Context, args: serde_json::Value) -> Result<String, ToolError> {
        let query = str_arg(&args, "query")?;
        let max = args.get("maxResults").and_then(|v| v.as_u64()).unwrap_or(5).clamp(1, 20) as usize;
        if rank::terms(query).is_empty() {
            return Err(ToolError::InvalidArguments("`query` has no words to search for".into()));
        }
        let mut docs = Vec::new();
        for rel in memory_files() {
            match std::fs::read_to_string(format!("{WORKSPACE}/{rel}")) {
                Ok(text) => docs.push((rel, text)),
                Err(e) => chela_sdk::log::warn(&format!("memory_search: cannot read {rel}: {e}")),
            }
        }
        let hits = rank::search(&docs, query, max);
        let results: Vec<_> = hits
            .iter()
            .map(|h| {
                json!({"path": h.path, "startLine": h.start_line, "endLine": h.end_line,
                       "score": (h.score * 1000.0).round() / 1000.0, "snippet": h.snippet})
            })
            .collect();
        Ok(json!({"results": results, "files": docs.len()}).to_string())
    }
}

chela_sdk::export_tool!(MemorySearch);
