//! `sessions_spawn`: hands a task to a sub-agent in a new session and returns
//! at once; the result comes back to this session when the sub-agent is done.
//! The host decides which agents may be spawned (`subagents.allowAgents`) and
//! gives the sub-agent no tool this session lacks.
//!
//! Must not: decide which agents it may spawn or what tools the child gets (the host does).

use chela_sdk::serde_json::{self, json};
use chela_sdk::sessions::{spawn, SpawnRequest};
use chela_sdk::tool::{str_arg, Context, Tool, ToolError, ToolInfo};

struct SessionsSpawn;

impl Tool for SessionsSpawn {
    fn info() -> ToolInfo {
        ToolInfo::new(
            "sessions_spawn",
            "Starts a sub-agent on a task in a new session and returns at once; its result is reported back here when it is done.",
            r#"{"type":"object","properties":{"task":{"type":"string"},"agentId":{"type":"string","description":"another agent to run it, if allowed"},"label":{"type":"string"}},"required":["task"]}"#,
        )
    }

    fn invoke(_cx: Context, args: serde_json::Value) -> Result<String, ToolError> {
        let opt = |k: &str| args.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let req =
            SpawnRequest { task: str_arg(&args, "task")?.to_string(), agent_id: opt("agentId"), label: opt("label") };
        let key = spawn(&req).map_err(ToolError::Denied)?;
        Ok(json!({ "status": "accepted", "childSessionKey": key }).to_string())
    }
}

chela_sdk::export_tool!(SessionsSpawn);
