//! `automations` (alias `cron`): OpenClaw's scheduler tool, the calling
//! agent's own jobs, with OpenClaw's actions: `status`, `list`, `get`
//! (`jobId`), `add` (a `job` in OpenClaw's shape: `schedule`, `payload`,
//! `sessionTarget`, `delivery`, `pacing`, …; `current` is this
//! conversation), `update` (`jobId` + `job`, a partial patch: only supplied
//! fields change, `null` clears), `remove`, `run` (`runMode: "force"` runs
//! it now), `runs` (history), `next_check` (`in: "30m"`, a paced job's own
//! run only) and `wake` (`text`, `mode`).
//!
//! Must not: check a job, pick its agent or decide what a caller may see
//! (the host answers for the calling agent only, checked as `chela cron
//! add` checks a job).

use chela_sdk::automations::{
    add_job, get_job, job_runs, list_jobs, next_check, remove_job, run_job, status, update_job, wake,
};
use chela_sdk::serde_json::{self, json, Value};
use chela_sdk::tool::{Context, Tool, ToolError, ToolInfo};

struct Automations;

const ACTIONS: &str = "status, list, get, add, update, remove, run, runs, next_check or wake";

const SCHEMA: &str = r#"{"type":"object","properties":{
  "action":{"type":"string","enum":["status","list","get","add","update","remove","run","runs","next_check","wake"]},
  "job":{"type":"object","description":"add: the whole job {name?, schedule: {kind: at|every|cron, …}, sessionTarget?: current|isolated|main|session:<id>, payload: {kind: agentTurn, message} or {kind: systemEvent, text}, delivery?, pacing?: {min?, max?}}; update: only the fields to change (null clears)"},
  "jobId":{"type":"string","description":"get, update, remove, run, runs"},
  "id":{"type":"string","description":"jobId's older name"},
  "runMode":{"type":"string","enum":["due","force"],"description":"run: \"force\" runs it now; omitted, only when due"},
  "limit":{"type":"integer","minimum":1,"description":"runs: how many of the newest (default 20)"},
  "in":{"type":"string","description":"next_check: when this paced job runs next, e.g. \"15m\" (held to its pacing bounds)"},
  "text":{"type":"string","description":"wake: the system event for the next heartbeat"},
  "mode":{"type":"string","enum":["now","next-heartbeat"],"description":"wake: run the heartbeat now, or wait for it (default)"}
},"required":["action"]}"#;

fn parsed(text: &str) -> Result<Value, ToolError> {
    serde_json::from_str(text).map_err(|e| ToolError::Failed(format!("the host answered with bad JSON: {e}")))
}

fn job_id(args: &Value, action: &str) -> Result<String, ToolError> {
    args.get("jobId")
        .or_else(|| args.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ToolError::InvalidArguments(format!("`jobId` is required for {action}")))
}

fn job_object<'a>(args: &'a Value, action: &str) -> Result<&'a Value, ToolError> {
    args.get("job")
        .filter(|j| j.is_object())
        .ok_or_else(|| ToolError::InvalidArguments(format!("`job` (an object) is required for {action}")))
}

impl Tool for Automations {
    fn info() -> ToolInfo {
        ToolInfo::new(
            "automations",
            "Your own scheduled jobs (reminders, recurring checks, loops). Actions: status | list | get jobId | \
             add job | update jobId job (partial: only supplied fields change; null clears) | remove jobId | \
             run jobId (runMode \"force\" runs now) | runs jobId | next_check in:\"30m\" (inside a paced job's own \
             run: when it runs next, held to its pacing bounds) | wake text (mode \"now\" or \"next-heartbeat\"). \
             A job with sessionTarget \"current\" runs in this conversation.",
            SCHEMA,
        )
    }

    fn invoke(_cx: Context, args: Value) -> Result<String, ToolError> {
        let action = args
            .get("action")
            .and_then(Value::as_str)
            .ok_or_else(|| ToolError::InvalidArguments(format!("`action` is required ({ACTIONS})")))?;
        let answer = match action {
            "status" => parsed(&status().map_err(ToolError::Failed)?)?,
            "list" => json!({ "jobs": parsed(&list_jobs().map_err(ToolError::Failed)?)? }),
            "get" => {
                let id = job_id(&args, action)?;
                match get_job(&id).map_err(ToolError::Failed)? {
                    Some(job) => parsed(&job)?,
                    None => return Err(ToolError::Failed(format!("no job `{id}`"))),
                }
            }
            "add" => {
                let id = add_job(&job_object(&args, action)?.to_string()).map_err(ToolError::Denied)?;
                json!({ "ok": true, "jobId": id })
            }
            "update" => {
                let id = job_id(&args, action)?;
                let job = update_job(&id, &job_object(&args, action)?.to_string()).map_err(ToolError::Denied)?;
                json!({ "ok": true, "job": parsed(&job)? })
            }
            "remove" => {
                json!({ "ok": true, "removed": remove_job(&job_id(&args, action)?).map_err(ToolError::Failed)? })
            }
            "run" => {
                let force = match args.get("runMode").and_then(Value::as_str) {
                    None | Some("due") => false,
                    Some("force") => true,
                    Some(other) => {
                        return Err(ToolError::InvalidArguments(format!("`runMode` `{other}`: use due or force")))
                    }
                };
                parsed(&run_job(&job_id(&args, action)?, force).map_err(ToolError::Denied)?)?
            }
            "runs" => {
                let id = job_id(&args, action)?;
                let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(20).min(u64::from(u32::MAX)) as u32;
                match job_runs(&id, limit).map_err(ToolError::Failed)? {
                    Some(runs) => json!({ "entries": parsed(&runs)? }),
                    None => return Err(ToolError::Failed(format!("no job `{id}`"))),
                }
            }
            "next_check" => {
                let text = args.get("in").and_then(Value::as_str).ok_or_else(|| {
                    ToolError::InvalidArguments("`in` (a duration such as \"15m\") is required".into())
                })?;
                let delay = next_check(text).map_err(ToolError::Denied)?;
                json!({ "ok": true, "nextCheckInMs": delay })
            }
            "wake" => {
                let text = args.get("text").and_then(Value::as_str).unwrap_or_default();
                let now = match args.get("mode").and_then(Value::as_str) {
                    None | Some("next-heartbeat") => false,
                    Some("now") => true,
                    Some(other) => {
                        return Err(ToolError::InvalidArguments(format!("`mode` `{other}`: use now or next-heartbeat")))
                    }
                };
                wake(text, now).map_err(ToolError::Denied)?;
                json!({ "ok": true })
            }
            other => return Err(ToolError::InvalidArguments(format!("action `{other}` is not one of {ACTIONS}"))),
        };
        Ok(answer.to_string())
    }
}

chela_sdk::export_tool!(Automations);
