//! `sessions_send`: queues a message into another session (another agent's
//! only where `tools.agentToAgent` allows both sides).

use chela_sdk::serde_json;
use chela_sdk::sessions::send;
use chela_sdk::tool::{str_arg, Context, Tool, ToolError, ToolInfo};

struct SessionsSend;

impl Tool for SessionsSend {
    fn info() -> ToolInfo {
        ToolInfo::new(
            "sessions_send",
            "Sends a message into another session (by key); that session's agent answers there.",
            r#"{"type":"object","properties":{"key":{"type":"string"},"text":{"type":"string"}},"required":["key","text"]}"#,
        )
    }

    fn invoke(_cx: Context, args: serde_json::Value) -> Result<String, ToolError> {
        let key = str_arg(&args, "key")?;
        let text = str_arg(&args, "text")?;
        send(key, text).map_err(ToolError::Denied)?;
        Ok(format!("queued for {key}"))
    }
}

chela_sdk::export_tool!(SessionsSend);
