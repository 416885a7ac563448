//! `automations` (alias `cron`): OpenClaw's scheduler tool, the calling
//! agent's own jobs — `action: "list"`, `"add"` (a `job` in OpenClaw's
//! shape: `schedule`, `payload`, `sessionTarget`, `delivery`, …; `current`
//! is this conversation), `"remove"` (`jobId`).
//!
//! Must not: check a job or pick its agent (the host stores it as the
//! calling agent, checked as `chela cron add` checks one).

use chela_sdk::automations::{add_job, list_jobs, remove_job};
use chela_sdk::serde_json::{json, Value};
use chela_sdk::tool::{Context, Tool, ToolError, ToolInfo};

struct Automations;

const SCHEMA: &str = r#"{"type":"object","properties":{
  "action":{"type":"string","enum":["list","add","remove"]},
  "job":{"type":"object","description":"for add: {name?, schedule: {kind: at|every|cron, …}, sessionTarget?: current|isolated|main|session:<id>, payload: {kind: agentTurn, message} or {kind: systemEvent, text}, delivery?}"},
  "jobId":{"type":"string","description":"for remove"},
  "id":{"type":"string","description":"for remove (jobId's older name)"}
},"required":["action"]}"#;

impl Tool for Automations {
    fn info() -> ToolInfo {
        ToolInfo::new(
            "automations",
            "Lists, adds and removes your own scheduled jobs (reminders, recurring checks). \
             A job with sessionTarget \"current\" runs in this conversation.",
            SCHEMA,
        )
    }

    fn invoke(_cx: Context, args: Value) -> Result<String, ToolError> {
        match args.get("action").and_then(Value::as_str) {
            Some("list") => {
                let jobs: Value = chela_sdk::serde_json::from_str(&list_jobs().map_err(ToolError::Failed)?)
                    .map_err(|e| ToolError::Failed(e.to_string()))?;
                Ok(json!({"jobs": jobs}).to_string())
            }
            Some("add") => {
                let job = args
                    .get("job")
                    .filter(|j| j.is_object())
                    .ok_or_else(|| ToolError::InvalidArguments("`job` (an object) is required for add".into()))?;
                let id = add_job(&job.to_string()).map_err(ToolError::Denied)?;
                Ok(json!({"ok": true, "jobId": id}).to_string())
            }
            Some("remove") => {
                let id = args
                    .get("jobId")
                    .or_else(|| args.get("id"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| ToolError::InvalidArguments("`jobId` is required for remove".into()))?;
                let removed = remove_job(id).map_err(ToolError::Failed)?;
                Ok(json!({"ok": true, "removed": removed}).to_string())
            }
            Some(other) => {
                Err(ToolError::InvalidArguments(format!("action `{other}` is not supported; use list, add or remove")))
            }
            None => Err(ToolError::InvalidArguments("`action` is required (list, add or remove)".into())),
        }
    }
}

chela_sdk::export_tool!(Automations);
