//! The rules for files in chat messages: how large an inbound one may be
//! (OpenClaw's `mediaMaxMb`), and which files a reply attaches (OpenClaw's
//! standalone `MEDIA:` lines).
//!
//! Must not: download, store or read files (the gateway does); it only decides and words.

use crate::access::Scoped;
use crate::config::schema::Config;

/// OpenClaw's default cap for a chat attachment (`agents.defaults.mediaMaxMb`).
pub const DEFAULT_MAX_MB: f64 = 20.0;

/// The largest inbound file, in bytes, for `agent_id` on a channel account:
/// the smallest of the account's (or channel's) `mediaMaxMb` and the agent's
/// (or `agents.defaults.mediaMaxMb`); 20 MB when none is set. Zero or a
/// negative number takes no files at all.
pub fn max_bytes(cfg: &Config, channel: &str, account_id: &str, agent_id: &str) -> u64 {
    let on_channel = Scoped::new(cfg, channel, account_id).pick(|a| a.media_max_mb);
    let for_agent = cfg
        .agent(agent_id)
        .and_then(|(_, a)| a.media_max_mb)
        .or_else(|| cfg.agent_defaults().and_then(|d| d.media_max_mb));
    let mb = match (on_channel, for_agent) {
        (Some(a), Some(b)) => a.min(b),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => DEFAULT_MAX_MB,
    };
    if mb.is_nan() || mb <= 0.0 {
        return 0;
    }
    (mb * 1024.0 * 1024.0) as u64
}

/// A reply's text without its `MEDIA:` lines, and the references they
/// name, in order (OpenClaw's rich-output protocol: a line whose text,
/// after at most three spaces, starts with `MEDIA:`; never inside a fenced
/// code block; a reference may be double-quoted).
pub fn reply_media(reply: &str) -> (String, Vec<String>) {
    let mut kept = Vec::new();
    let mut refs = Vec::new();
    let mut fence: Option<&str> = None;
    for line in reply.lines() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let body = line.trim_start_matches(' ');
        if indent <= 3 {
            for marker in ["```", "~~~"] {
                if body.starts_with(marker) {
                    fence = match fence {
                        None => Some(marker),
                        Some(open) if open == marker => None,
                        open => open,
                    };
                }
            }
        }
        let reference = (fence.is_none() && indent <= 3 && !line.starts_with('\t'))
            .then(|| body.strip_prefix("MEDIA:"))
            .flatten()
            .map(|r| {
                let r = r.trim();
                r.strip_prefix('"').and_then(|q| q.strip_suffix('"')).unwrap_or(r).to_string()
            })
            .filter(|r| !r.is_empty());
        match reference {
            Some(r) => refs.push(r),
            None => kept.push(line),
        }
    }
    let text = kept.join("\n").trim_end().to_string();
    (text, refs)
}

/// Which model transcribes voice notes and audio files (OpenClaw's
/// `tools.media`): the first `models[]` entry of `provider` + `model` whose
/// `capabilities` include `audio` (or that names none), unless
/// `tools.media.audio.enabled` is `false`; CLI entries are not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcription {
    pub provider: String,
    pub model: String,
    /// `tools.media.audio.language`: a hint for the model.
    pub language: Option<String>,
}

pub fn transcription(cfg: &Config) -> Option<Transcription> {
    let media = cfg.tools.as_ref()?.media.as_ref()?;
    if media["audio"]["enabled"] == false {
        return None;
    }
    let entry = media["models"].as_array()?.iter().find(|m| {
        let caps = m["capabilities"].as_array();
        m["type"].as_str().is_none_or(|t| t == "provider")
            && caps.is_none_or(|c| c.iter().any(|x| x == "audio"))
            && m["provider"].is_string()
            && m["model"].is_string()
    })?;
    Some(Transcription {
        provider: entry["provider"].as_str()?.to_string(),
        model: entry["model"].as_str()?.to_string(),
        language: media["audio"]["language"].as_str().map(str::to_string),
    })
}

/// A size for people: `812 B`, `14.2 KB`, `3.0 MB`.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smaller_cap_wins_and_twenty_mb_by_default() {
        let load = |t: &str| crate::config::load::load_str(t, Some("t.json5")).expect("loads").config;
        let c = load(
            r#"{ agents: { defaults: { mediaMaxMb: 5 }, list: [ { id: "main" }, { id: "big", mediaMaxMb: 50 } ] },
            channels: { telegram: { mediaMaxMb: 10 }, slack: {} } }"#,
        );
        assert_eq!(max_bytes(&c, "telegram", "default", "main"), 5 * 1024 * 1024);
        assert_eq!(max_bytes(&c, "telegram", "default", "big"), 10 * 1024 * 1024);
        assert_eq!(max_bytes(&c, "slack", "default", "big"), 50 * 1024 * 1024);
        assert_eq!(max_bytes(&load("{}"), "slack", "default", "main"), 20 * 1024 * 1024);
        let off = load(r#"{ channels: { telegram: { mediaMaxMb: 0 } } }"#);
        assert_eq!(max_bytes(&off, "telegram", "default", "main"), 0);
        assert_eq!(human_size(14_540), "14.2 KB");
    }

    #[test]
    fn the_first_audio_model_transcribes_unless_audio_is_off() {
        let load = |t: &str| crate::config::load::load_str(t, Some("t.json5")).expect("loads").config;
        let c = load(
            r#"{ tools: { media: { models: [
                { provider: "google", model: "gemini-3-flash-preview", capabilities: ["image", "video"] },
                { type: "cli", command: "whisper", args: ["{{AttachmentPath}}"], capabilities: ["audio"] },
                { provider: "openai", model: "gpt-4o-mini-transcribe", capabilities: ["audio"] },
              ], audio: { language: "de" } } } }"#,
        );
        assert_eq!(
            transcription(&c),
            Some(Transcription {
                provider: "openai".into(),
                model: "gpt-4o-mini-transcribe".into(),
                language: Some("de".into())
            })
        );
        let off = load(
            r#"{ tools: { media: { models: [ { provider: "openai", model: "whisper-1" } ], audio: { enabled: false } } } }"#,
        );
        assert_eq!(transcription(&off), None);
        assert_eq!(transcription(&load("{}")), None);
    }

    #[test]
    fn only_standalone_media_lines_attach() {
        let reply = "Here it is.\n\nMEDIA:report.pdf\n   MEDIA:\"out/a b.png\"\n**MEDIA:x.png**\nsee MEDIA:y.png\n    MEDIA:code.png\n```\nMEDIA:fenced.png\n```";
        let (text, refs) = reply_media(reply);
        assert_eq!(refs, ["report.pdf", "out/a b.png"]);
        assert_eq!(
            text,
            "Here it is.\n\n**MEDIA:x.png**\nsee MEDIA:y.png\n    MEDIA:code.png\n```\nMEDIA:fenced.png\n```"
        );
        assert_eq!(reply_media("no files"), ("no files".to_string(), vec![]));
    }
}
