//! `web_fetch`: GETs a URL and returns status and (truncated) text. Reaches
//! only the hosts the gateway allows this tool (config `plugins.entries`).
//!
//! Must not: choose the hosts it may reach (the host's egress policy does).

use chela_sdk::serde_json;
use chela_sdk::tool::{str_arg, Context, Tool, ToolError, ToolInfo};

const MAX_CHARS: usize = 20_000;

struct WebFetch;

impl Tool for WebFetch {
    fn info() -> ToolInfo {
        ToolInfo::new(
            "web_fetch",
            "Fetches a URL over HTTP(S) and returns the status and the response text.",
            r#"{"type":"object","properties":{"url":{"type":"string"}},"required":["url"]}"#,
        )
    }

    fn invoke(_cx: Context, args: serde_json::Value) -> Result<String, ToolError> {
        let url = str_arg(&args, "url")?;
        let resp = chela_sdk::http::request("GET", url, &[("user-agent", "chela-web-fetch/0.1")], None)
            .map_err(ToolError::Failed)?;
        let text = String::from_utf8_lossy(&resp.body);
        let text: String = text.chars().take(MAX_CHARS).collect();
        Ok(serde_json::json!({"status": resp.status, "text": text}).to_string())
    }
}

chela_sdk::export_tool!(WebFetch);
