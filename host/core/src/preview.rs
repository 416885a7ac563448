//! Preview streaming (OpenClaw's `channels.<channel>.streaming`): while a
//! turn runs, its answer so far is shown in one message that is edited as
//! it grows, and the final answer replaces it in place. Which mode an
//! account uses, and the chunk sizes that pace the edits.
//!
//! Must not: send or edit anything (the gateway does, where the adapter
//! declares edits); it only decides.

use crate::access::Scoped;
use crate::config::schema::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewMode {
    /// The answer is delivered when the turn ends (also `progress`: chela
    /// keeps no tool-progress draft, and OpenClaw's progress mode delivers
    /// the final answer normally too).
    Off,
    /// One preview, replaced with the latest text (`partial`; `block` is
    /// shown the same way: one message grown by edits).
    Partial,
}

/// How a preview is paced: the first edit once `min_chars` are written,
/// the next each time `min_chars` more are (OpenClaw's
/// `streaming.preview.chunk.minChars`, 200).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviewSettings {
    pub mode: PreviewMode,
    pub min_chars: usize,
}

pub const MODES: &str = "off, partial, block or progress";

pub fn parse_mode(s: &str) -> Option<PreviewMode> {
    match s {
        "off" | "progress" => Some(PreviewMode::Off),
        "partial" | "block" => Some(PreviewMode::Partial),
        _ => None,
    }
}

/// The account's `streaming`, else the channel's; off when neither sets a
/// mode (or names one this does not know; validation reports it).
pub fn preview_settings(cfg: &Config, channel: &str, account_id: &str) -> PreviewSettings {
    let s = Scoped::new(cfg, channel, account_id);
    let streaming = s.pick(|a| a.streaming.as_ref().filter(|v| v.is_object()));
    let mode = streaming.and_then(|v| v.get("mode")?.as_str()).and_then(parse_mode).unwrap_or(PreviewMode::Off);
    let min_chars = streaming
        .and_then(|v| v.get("preview")?.get("chunk")?.get("minChars")?.as_u64())
        .map_or(200, |n| n.max(1) as usize);
    PreviewSettings { mode, min_chars }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_then_the_channel_sets_the_mode() {
        let c = crate::config::load::load_str(
            r#"{ channels: { telegram: { streaming: { mode: "partial", preview: { chunk: { minChars: 50 } } },
                 accounts: { quiet: { streaming: { mode: "progress" } } } } } }"#,
            Some("t.json5"),
        )
        .expect("loads")
        .config;
        assert_eq!(
            preview_settings(&c, "telegram", "default"),
            PreviewSettings { mode: PreviewMode::Partial, min_chars: 50 }
        );
        assert_eq!(preview_settings(&c, "telegram", "quiet").mode, PreviewMode::Off);
        assert_eq!(
            preview_settings(&c, "slack", "default"),
            PreviewSettings { mode: PreviewMode::Off, min_chars: 200 }
        );
    }
}
