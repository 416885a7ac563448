//! `sessions_send`: queues a message into another session (another agent's
//! only where `tools.agentToAgent` allows both sides); optionally waits for
//! the reply. The sessions may then answer each other a few times
//! (`session.agentToAgent.maxPingPongTurns`); the host runs that exchange.
//!
//! Must not: decide agent-to-agent policy (the host does), or loop replies itself.

use chela_sdk::serde_json::{self, json};
use chela_sdk::sessions::send;
use chela_sdk::tool::{str_arg, Context, Tool, ToolError, ToolInfo};

struct SessionsSend;

impl Tool for SessionsSend {
    fn info() -> ToolInfo {
        ToolInfo::new(
            "sessions_send",
            "Sends a message into another session (by key); that session's agent answers there. With timeoutSeconds > 0, waits for and returns the answer.",
            r#"{"type":"object","properties":{"key":{"type":"string"},"text":{"type":"string"},"timeoutSeconds":{"type":"integer","minimum":0,"maximum":300}},"required":["key","text"]}"#,
        )
    }

    fn invoke(_cx: Context, args: serde_json::Value) -> Result<String, ToolError> {
        let key = str_arg(&args, "key")?;
        let text = str_arg(&args, "text")?;
        let wait = args.get("timeoutSeconds").and_then(|v| v.as_u64()).unwrap_or(0).min(300) as u32;
        let reply = send(key, text, wait).map_err(ToolError::Denied)?;
        Ok(match reply {
            Some(r) => json!({ "status": "ok", "key": key, "reply": r }),
            None if wait > 0 => json!({ "status": "timeout", "key": key }),
            None => json!({ "status": "accepted", "key": key }),
        }
        .to_string())
    }
}

chela_sdk::export_tool!(SessionsSend);
