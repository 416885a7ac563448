//! Files that come with an inbound message: each is checked against the
//! agent's size cap (`chela_core::media`), resolved by its adapter,
//! downloaded by the host through that adapter's egress grant, and kept in
//! the session's media dir; the turn is told about each one in its text,
//! and gets images as image blocks, small text documents inline, and voice
//! notes and audio transcribed when `tools.media` names a transcription
//! model.
//!
//! Must not: keep a file over the cap (not even in part), or let the model
//! see a path outside the session's media dir.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chela_agent::store::Content;
use chela_core::media::human_size;
use chela_plugin::channel::{AttachmentKind, ChannelRuntime, DownloadError, Features, InboundAttachment, InboundEvent};

use crate::journal_codec::attachment_kind_name;

/// A text document up to this size is given to the model inline.
const INLINE_TEXT_MAX: usize = 64 * 1024;

/// What the turn gets of an event's files.
#[derive(Debug, Default)]
pub(crate) struct Files {
    /// One line per file, for the turn's text.
    pub notes: Vec<String>,
    /// Image blocks for the user message.
    pub media: Vec<Content>,
    /// Files refused (over the cap, or unavailable), said in the chat.
    pub refused: Vec<String>,
    /// Files kept in the media dir.
    pub stored: usize,
}

impl Files {
    /// The event's text with a line per file after it.
    pub fn text(&self, text: &str) -> String {
        if self.notes.is_empty() {
            return text.to_string();
        }
        let mut out = text.trim_end().to_string();
        for n in &self.notes {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(n);
        }
        out
    }
}

fn describe(a: &InboundAttachment, name: &str, size: Option<u64>) -> String {
    let mut facts = vec![name.to_string()];
    facts.extend(a.mime_type.clone());
    facts.extend(size.map(human_size));
    format!("{}: {}", attachment_kind_name(a.kind), facts.join(", "))
}

/// A file name safe to keep: its last path segment, only ordinary
/// characters, never empty or hidden.
fn safe_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .map(|c| if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .take(80)
        .collect();
    let cleaned = cleaned.trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "file".into()
    } else {
        cleaned
    }
}

fn default_name(kind: AttachmentKind, mime: Option<&str>) -> String {
    let ext = match mime.unwrap_or_default() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "audio/ogg" => "ogg",
        "audio/mpeg" => "mp3",
        "video/mp4" => "mp4",
        "application/pdf" => "pdf",
        m if m.starts_with("text/") => "txt",
        _ => "bin",
    };
    format!("{}.{ext}", attachment_kind_name(kind))
}

fn is_image(mime: &str) -> bool {
    matches!(mime, "image/jpeg" | "image/png" | "image/gif" | "image/webp")
}

fn is_text(mime: Option<&str>, name: &str) -> bool {
    let by_mime = mime.is_some_and(|m| {
        m.starts_with("text/") || matches!(m, "application/json" | "application/xml" | "application/x-yaml")
    });
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    by_mime || matches!(ext.as_str(), "txt" | "md" | "csv" | "json" | "yaml" | "yml" | "xml" | "log")
}

/// Takes in the files of `ev` for a turn of an agent whose cap is
/// `limit` bytes, keeping them in `dir`. Never fails as a whole: each file
/// is taken, refused or noted as unavailable on its own.
/// Whose turn the files are for: the agent, its config, its runtime (for
/// transcription with the agent's own credentials).
pub(crate) struct For<'a> {
    pub runtime: &'a chela_agent::AgentRuntime,
    pub cfg: &'a chela_core::config::schema::Config,
    pub agent_id: &'a str,
}

pub(crate) async fn take_in(
    channel: &ChannelRuntime,
    ev: &InboundEvent,
    dir: &Path,
    limit: u64,
    agent: For<'_>,
) -> Files {
    let mut intake = Files::default();
    if ev.attachments.is_empty() || !channel.features().contains(Features::ATTACHMENTS_IN) {
        return intake;
    }
    for (i, a) in ev.attachments.iter().enumerate() {
        let name = a.file_name.clone().unwrap_or_else(|| default_name(a.kind, a.mime_type.as_deref()));
        let too_large = |size: Option<u64>| match size {
            Some(size) => format!(
                "{name} is too large ({}; the limit is {}), so it was not taken in",
                human_size(size),
                human_size(limit)
            ),
            None => format!("{name} is over the {} limit, so it was not taken in", human_size(limit)),
        };
        if a.size.is_some_and(|s| s > limit) || limit == 0 {
            intake.notes.push(format!("[{} — refused: over the size limit]", describe(a, &name, a.size)));
            intake.refused.push(too_large(a.size));
            continue;
        }
        let resolved = channel.resolve_attachment(&ev.account_id, &a.reference).await;
        // The size the platform reports on resolving (WhatsApp's webhooks carry none).
        let reported = resolved.as_ref().ok().and_then(|d| d.size).or(a.size);
        let fetched = match resolved {
            Ok(d) => channel.download(&ev.account_id, &d, limit).await.map(|bytes| (d, bytes)),
            Err(e) => Err(DownloadError::Failed(e.to_string())),
        };
        let (download, bytes) = match fetched {
            Ok(x) => x,
            Err(DownloadError::TooLarge { .. }) => {
                intake.notes.push(format!("[{} — refused: over the size limit]", describe(a, &name, reported)));
                intake.refused.push(too_large(reported.filter(|s| *s > limit)));
                continue;
            }
            Err(DownloadError::Failed(why)) => {
                tracing::warn!(channel = %ev.channel, account = %ev.account_id, file = %name, %why, "attachment not downloaded");
                intake.notes.push(format!("[{} — could not be downloaded: {why}]", describe(a, &name, a.size)));
                continue;
            }
        };
        let mime = a.mime_type.clone().or(download.mime_type.clone());
        let name = a.file_name.clone().or(download.file_name.clone()).unwrap_or(name);
        let stored = dir.join(format!("{}-{i}-{}", safe_name(&ev.message_id), safe_name(&name)));
        if let Err(e) = write(&stored, &bytes) {
            tracing::error!(path = %stored.display(), error = %e, "attachment not stored");
            intake.notes.push(format!("[{} — could not be stored]", describe(a, &name, Some(bytes.len() as u64))));
            continue;
        }
        intake.stored += 1;
        let mut note = format!("[{}]", describe(a, &name, Some(bytes.len() as u64)));
        if let Some(c) = &a.caption {
            note.push_str(&format!(" {c}"));
        }
        if matches!(a.kind, AttachmentKind::Voice | AttachmentKind::Audio) {
            let mime = mime.as_deref().unwrap_or("audio/ogg");
            match agent.runtime.transcribe(agent.cfg, agent.agent_id, &safe_name(&name), mime, &bytes).await {
                Ok(Some(text)) => note.push_str(&format!("\nTranscript: {text}")),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "audio not transcribed");
                    note.push_str(" (not transcribed: the transcription model failed)");
                }
            }
        }
        match mime.as_deref() {
            Some(m) if is_image(m) => {
                intake.media.push(Content::Image { data: BASE64.encode(&bytes), mime_type: m.to_string() })
            }
            m if a.kind == AttachmentKind::Document && is_text(m, &name) && bytes.len() <= INLINE_TEXT_MAX => {
                if let Ok(text) = std::str::from_utf8(&bytes) {
                    note.push_str(&format!("\n<file name=\"{}\">\n{text}\n</file>", safe_name(&name)));
                }
            }
            _ => {}
        }
        intake.notes.push(note);
    }
    intake
}

fn write(path: &PathBuf, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_stay_inside_the_dir() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name(".hidden"), "hidden");
        assert_eq!(safe_name("my photo (1).jpg"), "my_photo__1_.jpg");
        assert_eq!(safe_name(""), "file");
        assert_eq!(default_name(AttachmentKind::Voice, Some("audio/ogg")), "voice.ogg");
    }
}
