//! `session_status`: the state of this session (or another visible one):
//! model, tokens, messages, sandboxing, queue, who spawned it.
//!
//! Must not: decide what it may see (the host's `sessions` capability does).

use chela_sdk::serde_json::{self, json};
use chela_sdk::sessions::status;
use chela_sdk::tool::{Context, Tool, ToolError, ToolInfo};

struct SessionStatus;

impl Tool for SessionStatus {
    fn info() -> ToolInfo {
        ToolInfo::new(
            "session_status",
            "Shows the state of this session (or of another visible session, by key): model, token use, message count, sandboxing, queue.",
            r#"{"type":"object","properties":{"key":{"type":"string","description":"a session key; this session if omitted"}}}"#,
        )
    }

    fn invoke(_cx: Context, args: serde_json::Value) -> Result<String, ToolError> {
        let key = args.get("key").or_else(|| args.get("sessionKey")).and_then(|v| v.as_str()).map(str::to_string);
        let s = status(key.as_deref()).map_err(ToolError::Denied)?;
        Ok(json!({
            "key": s.key,
            "agentId": s.agent_id,
            "sessionId": s.session_id,
            "model": s.model,
            "chatType": s.chat_type,
            "updatedAt": s.updated_at_ms,
            "messages": s.message_count,
            "inputTokens": s.input_tokens,
            "outputTokens": s.output_tokens,
            "sandboxed": s.sandboxed,
            "spawnedBy": s.spawned_by,
            "queued": s.queued,
        })
        .to_string())
    }
}

chela_sdk::export_tool!(SessionStatus);
