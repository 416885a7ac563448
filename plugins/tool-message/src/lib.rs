//! `message`: OpenClaw's message tool, `action: "send"` — text and files
//! from the agent's workspace into a chat (`channel`, `accountId`, `to`,
//! `threadId`, `replyTo`; each left out is the session's own chat).
//!
//! Must not: pick accounts, check ownership or read files itself (the host
//! does all three, for the calling agent only).

use chela_sdk::messaging::{send, Outbound};
use chela_sdk::serde_json::{json, Value};
use chela_sdk::tool::{Context, Tool, ToolError, ToolInfo};

struct Message;

const SCHEMA: &str = r#"{"type":"object","properties":{
  "action":{"type":"string","enum":["send"]},
  "channel":{"type":"string","description":"telegram, slack, discord, whatsapp; default: this chat's"},
  "accountId":{"type":"string","description":"the account to send through; default: this chat's"},
  "to":{"type":"string","description":"the chat (chat id, channel:<id>, user:<id>, phone number); default: this chat"},
  "threadId":{"type":"string"},
  "replyTo":{"type":"string","description":"a message id of that chat to reply to"},
  "message":{"type":"string"},
  "media":{"description":"a workspace file, or a list of them","anyOf":[{"type":"string"},{"type":"array","items":{"type":"string"}}]},
  "filePath":{"type":"string"},
  "attachments":{"type":"array","items":{"type":"object","properties":{"type":{"type":"string"},"media":{"type":"string"}},"required":["media"]}}
},"required":["action"]}"#;

fn opt(args: &Value, name: &str) -> Result<Option<String>, ToolError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(ToolError::InvalidArguments(format!("`{name}` is a string, not {other}"))),
    }
}

/// Every file the call names: `media` (one or a list), `filePath`, `attachments[].media`.
fn files(args: &Value) -> Result<Vec<String>, ToolError> {
    let mut out = Vec::new();
    match args.get("media") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => out.push(s.clone()),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let s = item
                    .as_str()
                    .ok_or_else(|| ToolError::InvalidArguments(format!("`media[{i}]` is not a string")))?;
                out.push(s.to_string());
            }
        }
        Some(other) => return Err(ToolError::InvalidArguments(format!("`media` is a path or a list, not {other}"))),
    }
    out.extend(opt(args, "filePath")?);
    for (i, a) in args.get("attachments").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let media = a["media"]
            .as_str()
            .ok_or_else(|| ToolError::InvalidArguments(format!("`attachments[{i}].media` is required")))?;
        out.push(media.to_string());
    }
    Ok(out)
}

impl Tool for Message {
    fn info() -> ToolInfo {
        ToolInfo::new(
            "message",
            "Sends a message (text and files from your workspace) into a chat through one of your own channel accounts.",
            SCHEMA,
        )
    }

    fn invoke(_cx: Context, args: Value) -> Result<String, ToolError> {
        match args.get("action").and_then(Value::as_str) {
            Some("send") => {}
            Some(other) => {
                return Err(ToolError::InvalidArguments(format!("action `{other}` is not supported; use `send`")))
            }
            None => return Err(ToolError::InvalidArguments("`action` is required (`send`)".into())),
        }
        let message = Outbound {
            channel: opt(&args, "channel")?,
            account_id: opt(&args, "accountId")?,
            to: opt(&args, "to")?,
            thread_id: opt(&args, "threadId")?,
            reply_to: opt(&args, "replyTo")?,
            text: opt(&args, "message")?.unwrap_or_default(),
            files: files(&args)?,
        };
        let sent = send(&message).map_err(ToolError::Denied)?;
        Ok(json!({"ok": true, "channel": sent.channel, "accountId": sent.account_id, "to": sent.to,
                  "messageIds": sent.message_ids})
        .to_string())
    }
}

chela_sdk::export_tool!(Message);
