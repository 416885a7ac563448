//! The files a reply attaches: each `MEDIA:` line of the agent's answer
//! (core's `media::reply_media`) names a file in the agent's own
//! workspace, read here and handed to the adapter with the text, within
//! the platform's upload limit. What cannot be attached is said in the
//! reply instead of silently dropped. The `message` tool's files
//! (`messenger.rs`) are read by the same rules.
//!
//! Must not: read a file outside the agent's workspace (a `..`, an absolute
//! path elsewhere or a symlink out of it is refused), read one for an agent
//! whose tool policy denies `read` (core's `may_attach_files`), or fetch a URL.

use std::path::{Path, PathBuf};

use chela_core::media::{human_size, reply_media};
use chela_plugin::channel::{AttachmentKind, ChannelRuntime, Features, OutboundAttachment};

/// A reply ready to send: its text and its files.
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    pub text: String,
    pub attachments: Vec<OutboundAttachment>,
}

fn kind_of(mime: &str) -> AttachmentKind {
    match mime {
        "audio/ogg" | "audio/opus" => AttachmentKind::Voice,
        m if m.starts_with("image/") => AttachmentKind::Image,
        m if m.starts_with("audio/") => AttachmentKind::Audio,
        m if m.starts_with("video/") => AttachmentKind::Video,
        _ => AttachmentKind::Document,
    }
}

/// `reference` as a file inside `workspace` (`/workspace/…` is the
/// sandbox's name for it), or why not.
fn resolve(workspace: &Path, reference: &str) -> Result<PathBuf, String> {
    if reference.contains("://") {
        return Err("only files in the agent's workspace are attached (not URLs)".into());
    }
    let relative = reference.strip_prefix("/workspace/").unwrap_or(reference);
    let candidate = if Path::new(relative).is_absolute() { PathBuf::from(relative) } else { workspace.join(relative) };
    let root = workspace.canonicalize().map_err(|e| format!("the workspace cannot be read: {e}"))?;
    let file = candidate.canonicalize().map_err(|_| "no such file in the workspace".to_string())?;
    if !file.starts_with(&root) {
        return Err("outside the agent's workspace".into());
    }
    if !file.is_file() {
        return Err("not a file".into());
    }
    Ok(file)
}

/// The reply `text` with its `MEDIA:` files read from `workspace`, as far
/// as `channel` can send them.
pub(crate) fn attach(text: &str, workspace: &Path, may_read: bool, channel: &ChannelRuntime) -> Outgoing {
    let (kept, refs) = reply_media(text);
    if refs.is_empty() {
        return Outgoing { text: text.to_string(), attachments: Vec::new() };
    }
    let mut out = Outgoing { text: kept, attachments: Vec::new() };
    let mut problems = Vec::new();
    for r in refs {
        match attachment(&r, workspace, may_read, channel) {
            Ok(a) => out.attachments.push(a),
            Err(why) => {
                tracing::warn!(file = %r, %why, "reply file not attached");
                problems.push(format!("({} not attached: {why})", file_name(&r)));
            }
        }
    }
    for p in problems {
        if !out.text.is_empty() {
            out.text.push('\n');
        }
        out.text.push_str(&p);
    }
    out
}

/// The last part of a file reference (what the chat shows as its name).
pub(crate) fn file_name(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap_or(reference)
}

/// The file `reference` names in `workspace` as an attachment `channel`
/// can send, or why not.
pub(crate) fn attachment(
    reference: &str,
    workspace: &Path,
    may_read: bool,
    channel: &ChannelRuntime,
) -> Result<OutboundAttachment, String> {
    if !may_read {
        return Err("this agent's tool policy does not allow `read`".into());
    }
    if !channel.features().contains(Features::ATTACHMENTS_OUT) {
        return Err(format!("{} cannot send files", channel.channel_id()));
    }
    let path = resolve(workspace, reference)?;
    let size = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
    let limit = channel.info.upload_limit;
    if size > limit {
        return Err(format!(
            "{} is over {}'s {} upload limit",
            human_size(size),
            channel.channel_id(),
            human_size(limit)
        ));
    }
    let data = std::fs::read(&path).map_err(|e| format!("cannot read it: {e}"))?;
    let mime = mime_guess::from_path(&path).first_or_octet_stream().essence_str().to_string();
    Ok(OutboundAttachment { kind: kind_of(&mime), file_name: file_name(reference).to_string(), mime_type: mime, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_inside_the_workspace_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join("out")).unwrap();
        std::fs::write(ws.join("out/a.png"), b"png").unwrap();
        std::fs::write(dir.path().join("secret.txt"), b"no").unwrap();
        assert_eq!(resolve(&ws, "out/a.png").unwrap(), ws.join("out/a.png").canonicalize().unwrap());
        assert!(resolve(&ws, "/workspace/out/a.png").is_ok());
        assert_eq!(resolve(&ws, "../secret.txt").unwrap_err(), "outside the agent's workspace");
        let abs = dir.path().join("secret.txt").display().to_string();
        assert_eq!(resolve(&ws, &abs).unwrap_err(), "outside the agent's workspace");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret.txt"), ws.join("link.txt")).unwrap();
            assert_eq!(resolve(&ws, "link.txt").unwrap_err(), "outside the agent's workspace");
        }
        assert!(resolve(&ws, "https://example.com/x.png").is_err());
        assert_eq!(kind_of("image/png"), AttachmentKind::Image);
        assert_eq!(kind_of("audio/ogg"), AttachmentKind::Voice);
        assert_eq!(kind_of("application/pdf"), AttachmentKind::Document);
    }
}
