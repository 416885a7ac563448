//! `sessions_history`: the last messages of a session this session may see.
//!
//! Must not: decide which sessions it may see (the host does).

use chela_sdk::serde_json::{self, json};
use chela_sdk::sessions::history;
use chela_sdk::tool::{str_arg, Context, Tool, ToolError, ToolInfo};

struct SessionsHistory;

impl Tool for SessionsHistory {
    fn info() -> ToolInfo {
        ToolInfo::new(
            "sessions_history",
            "Reads the last messages of a session (by key, from sessions_list).",
            r#"{"type":"object","properties":{"key":{"type":"string"},"limit":{"type":"integer","minimum":1,"maximum":200}},"required":["key"]}"#,
        )
    }

    fn invoke(_cx: Context, args: serde_json::Value) -> Result<String, ToolError> {
        let key = str_arg(&args, "key")?;
        let limit = args.get("limit").and_then(|v| v.as_u64()).unwrap_or(20).clamp(1, 200) as u32;
        let entries = history(key, limit).map_err(ToolError::Denied)?;
        let rows: Vec<serde_json::Value> =
            entries.iter().map(|e| json!({"role": e.role, "text": e.text, "at": e.at_ms})).collect();
        Ok(json!({ "key": key, "messages": rows }).to_string())
    }
}

chela_sdk::export_tool!(SessionsHistory);
