//! `echo`: returns its `text` argument. The smallest useful tool: used to
//! check the plugin path end to end and to measure per-call overhead.
//!
//! Must not: import any capability beyond logging.

use chela_sdk::serde_json;
use chela_sdk::tool::{str_arg, Context, Tool, ToolError, ToolInfo};

struct Echo;

impl Tool for Echo {
    fn info() -> ToolInfo {
        ToolInfo::new(
            "echo",
            "Repeats the given text back. Useful to test that tools work.",
            r#"{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}"#,
        )
    }

    fn invoke(cx: Context, args: serde_json::Value) -> Result<String, ToolError> {
        let text = str_arg(&args, "text")?;
        chela_sdk::log::info(&format!("echo for agent {}", cx.agent_id));
        Ok(text.to_string())
    }
}

chela_sdk::export_tool!(Echo);
