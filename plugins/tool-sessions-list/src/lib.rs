//! `sessions_list`: the sessions this agent's session may see (the host
//! applies `tools.sessions.visibility` and agent-to-agent policy).
//!
//! Must not: decide visibility itself (the host does).

use chela_sdk::serde_json::{self, json};
use chela_sdk::sessions::list_sessions;
use chela_sdk::tool::{Context, Tool, ToolError, ToolInfo};

struct SessionsList;

impl Tool for SessionsList {
    fn info() -> ToolInfo {
        ToolInfo::new(
            "sessions_list",
            "Lists the conversations (sessions) you can see, most recent first, with their keys.",
            r#"{"type":"object","properties":{"activeMinutes":{"type":"integer","minimum":1}}}"#,
        )
    }

    fn invoke(_cx: Context, args: serde_json::Value) -> Result<String, ToolError> {
        let active = args.get("activeMinutes").and_then(|v| v.as_u64()).map(|m| m.min(u64::from(u32::MAX)) as u32);
        let list = list_sessions(active).map_err(ToolError::Denied)?;
        let rows: Vec<serde_json::Value> = list
            .iter()
            .map(|s| json!({"key": s.key, "agentId": s.agent_id, "updatedAt": s.updated_at_ms, "messages": s.message_count}))
            .collect();
        Ok(json!({ "sessions": rows }).to_string())
    }
}

chela_sdk::export_tool!(SessionsList);
