//! Block streaming (OpenClaw's `blockStreaming*`, `docs/concepts/streaming.md`):
//! the answer goes out as normal messages, one completed block at a time,
//! while the model writes. Which accounts stream blocks, how text is cut
//! into blocks (low and high bounds, the break preference chain
//! paragraph → newline → sentence → whitespace → hard, never inside a code
//! fence unless forced, then the fence is closed and reopened), how blocks
//! are merged before they are sent (coalescing: `minChars`, `maxChars`,
//! `idleMs`), and the pause between blocks (`humanDelay`).
//!
//! Must not: send, wait or read a clock (the gateway does; times are
//! passed in), or split text any other way than [`BlockChunker`] says.

use crate::access::Scoped;
use crate::config::schema::{BlockChunkConfig, BlockCoalesceConfig, Config, HumanDelayConfig};
use crate::preview::{preview_settings, PreviewMode};

/// Where a block may end, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BreakPreference {
    Paragraph,
    Newline,
    Sentence,
}

impl BreakPreference {
    pub fn parse(s: &str) -> Option<BreakPreference> {
        match s {
            "paragraph" => Some(BreakPreference::Paragraph),
            "newline" => Some(BreakPreference::Newline),
            "sentence" => Some(BreakPreference::Sentence),
            _ => None,
        }
    }

    /// What merged blocks are joined with (OpenClaw's joiner rule).
    pub fn joiner(self) -> &'static str {
        match self {
            BreakPreference::Paragraph => "\n\n",
            BreakPreference::Newline => "\n",
            BreakPreference::Sentence => " ",
        }
    }
}

/// `blockStreamingBreak`: flush at each text end (blocks go as the chunker
/// emits them) or only when the assistant message ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakAt {
    TextEnd,
    MessageEnd,
}

/// `blockStreamingChunk`: a block is at least `min_chars` (unless it is
/// the last) and at most `max_chars` (clamped to the channel's text limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkBounds {
    pub min_chars: usize,
    pub max_chars: usize,
    pub prefer: BreakPreference,
}

/// `blockStreamingCoalesce`: blocks are held and merged until the model has
/// been quiet `idle_ms` with at least `min_chars` held, or `max_chars` would be passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coalesce {
    pub min_chars: usize,
    pub max_chars: usize,
    pub idle_ms: u64,
}

/// `humanDelay`: a pause before each block after the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDelay {
    pub min_ms: u64,
    pub max_ms: u64,
}

impl HumanDelay {
    /// The pause for a draw `unit` in `[0, 1)`.
    pub fn pause_ms(&self, unit: f64) -> u64 {
        let span = self.max_ms.saturating_sub(self.min_ms) as f64;
        self.min_ms + (span * unit.clamp(0.0, 1.0)) as u64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSettings {
    pub break_at: BreakAt,
    pub chunk: ChunkBounds,
    pub coalesce: Option<Coalesce>,
    pub human_delay: Option<HumanDelay>,
}

/// OpenClaw's defaults for a block (`EmbeddedBlockChunker`).
pub const DEFAULT_MIN_CHARS: usize = 800;
pub const DEFAULT_MAX_CHARS: usize = 1200;
/// Channels that coalesce by default, and how (OpenClaw: Discord, Signal, Slack).
const COALESCING_CHANNELS: &[&str] = &["discord", "signal", "slack"];
const DEFAULT_COALESCE_MIN_CHARS: usize = 1500;
const DEFAULT_COALESCE_IDLE_MS: u64 = 1000;

/// Whether (and how) replies on `channel`/`account` of `agent_id` stream as
/// blocks: the account's, else the channel's `streaming.block.enabled`;
/// else `agents.defaults.blockStreamingDefault: "on"`, unless the account
/// streams a preview (an explicit preview mode wins over the inherited
/// default, as in OpenClaw). `text_limit` caps a block.
pub fn block_settings(
    cfg: &Config,
    agent_id: &str,
    channel: &str,
    account_id: &str,
    text_limit: usize,
) -> Option<BlockSettings> {
    let s = Scoped::new(cfg, channel, account_id);
    let block = |key: &'static str| {
        move |a: &crate::config::schema::ChannelAccount| a.streaming.as_ref()?.get("block")?.get(key).cloned()
    };
    let explicit = s.pick(block("enabled")).and_then(|v| v.as_bool());
    let defaults = cfg.agent_defaults();
    let inherited = defaults.and_then(|d| d.block_streaming_default.as_deref()) == Some("on")
        && preview_settings(cfg, channel, account_id).mode == PreviewMode::Off;
    if !explicit.unwrap_or(inherited) {
        return None;
    }
    let chunk_cfg: Option<&BlockChunkConfig> = defaults.and_then(|d| d.block_streaming_chunk.as_ref());
    let limit = text_limit.max(1);
    let max_chars = chunk_cfg.and_then(|c| c.max_chars).map_or(DEFAULT_MAX_CHARS, |n| n as usize).clamp(1, limit);
    let min_chars = chunk_cfg.and_then(|c| c.min_chars).map_or(DEFAULT_MIN_CHARS, |n| n as usize).clamp(1, max_chars);
    let prefer = chunk_cfg
        .and_then(|c| c.break_preference.as_deref())
        .and_then(BreakPreference::parse)
        .unwrap_or(BreakPreference::Paragraph);
    let break_at = match defaults.and_then(|d| d.block_streaming_break.as_deref()) {
        Some("message_end") => BreakAt::MessageEnd,
        _ => BreakAt::TextEnd,
    };
    // The account's, else the channel's `streaming.block.coalesce`, else `agents.defaults`.
    let scoped: Option<BlockCoalesceConfig> = s.pick(block("coalesce")).and_then(|v| serde_json::from_value(v).ok());
    let coalesce_cfg = scoped.or_else(|| defaults.and_then(|d| d.block_streaming_coalesce.clone()));
    let coalesce = match coalesce_cfg {
        Some(c) => Some(Coalesce {
            min_chars: c.min_chars.map_or(min_chars, |n| n as usize),
            max_chars: c.max_chars.map_or(max_chars, |n| n as usize).clamp(1, limit),
            idle_ms: c.idle_ms.unwrap_or(DEFAULT_COALESCE_IDLE_MS),
        }),
        None if COALESCING_CHANNELS.contains(&channel) => Some(Coalesce {
            min_chars: DEFAULT_COALESCE_MIN_CHARS.min(limit),
            max_chars: limit,
            idle_ms: DEFAULT_COALESCE_IDLE_MS,
        }),
        None => None,
    };
    let agent_delay = cfg.agent(agent_id).and_then(|(_, a)| a.human_delay.as_ref());
    let human_delay = human_delay(agent_delay.or_else(|| defaults.and_then(|d| d.human_delay.as_ref())));
    Some(BlockSettings { break_at, chunk: ChunkBounds { min_chars, max_chars, prefer }, coalesce, human_delay })
}

/// `humanDelay.mode`: `natural` 800–2500 ms, `custom` `minMs`–`maxMs`, `off` (default) none.
fn human_delay(c: Option<&HumanDelayConfig>) -> Option<HumanDelay> {
    let c = c?;
    match c.mode.as_deref() {
        Some("natural") => Some(HumanDelay { min_ms: 800, max_ms: 2500 }),
        Some("custom") => {
            let min_ms = c.min_ms.unwrap_or(0);
            Some(HumanDelay { min_ms, max_ms: c.max_ms.unwrap_or(min_ms).max(min_ms) })
        }
        _ => None,
    }
}

/// Cuts streamed text into blocks.
#[derive(Debug, Clone)]
pub struct BlockChunker {
    bounds: ChunkBounds,
    buf: String,
}

/// A place a block can end: the byte index after it, and how strong it is
/// (`None` strength: whitespace).
#[derive(Debug, Clone, Copy)]
struct Break {
    at: usize,
    kind: Option<BreakPreference>,
}

impl BlockChunker {
    pub fn new(bounds: ChunkBounds) -> BlockChunker {
        BlockChunker { bounds, buf: String::new() }
    }

    /// Adds `delta`; the blocks that are complete now.
    pub fn push(&mut self, delta: &str) -> Vec<String> {
        self.buf.push_str(delta);
        self.drain(false)
    }

    /// The text is over (a text end or the message end): everything left, as blocks.
    pub fn flush(&mut self) -> Vec<String> {
        self.drain(true)
    }

    /// Text held, not yet a block.
    pub fn pending(&self) -> &str {
        &self.buf
    }

    fn drain(&mut self, all: bool) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let chars = self.buf.chars().count();
            if chars == 0 || (!all && chars < self.bounds.min_chars) {
                break;
            }
            if all && chars <= self.bounds.max_chars {
                out.extend(block(std::mem::take(&mut self.buf)));
                break;
            }
            let Some((head, rest)) = self.cut(chars >= self.bounds.max_chars || all) else { break };
            out.extend(block(head));
            self.buf = rest;
        }
        out
    }

    /// The next block and what stays; `forced`: the text is over the high
    /// bound, so the best break there is (a hard one at worst) is taken.
    fn cut(&self, forced: bool) -> Option<(String, String)> {
        let b = &self.bounds;
        let window_end = byte_at(&self.buf, b.max_chars);
        let min_at = byte_at(&self.buf, b.min_chars);
        let breaks = breaks(&self.buf[..window_end]);
        let fences = fence_state(&self.buf);
        let usable = |br: &&Break| br.at >= min_at && !inside_fence(&fences, br.at);
        // Unforced: only a break as strong as the preference, the last one in the window.
        let wanted = |br: &&Break| br.kind.is_some_and(|k| k <= b.prefer);
        let pick = breaks.iter().filter(usable).rfind(wanted);
        let pick = match (pick, forced) {
            (Some(p), _) => Some(*p),
            (None, false) => return None,
            (None, true) => [
                Some(BreakPreference::Paragraph),
                Some(BreakPreference::Newline),
                Some(BreakPreference::Sentence),
                None,
            ]
            .iter()
            .find_map(|kind| breaks.iter().filter(usable).rfind(|br| br.kind == *kind).copied()),
        };
        match pick {
            Some(br) => {
                let (head, rest) = self.buf.split_at(br.at);
                Some((head.to_string(), rest.trim_start().to_string()))
            }
            None => {
                // A hard break at the high bound; inside a fence, close it and
                // reopen it after, but only when the cut carries more than the
                // opening line (else the reopened rest would be no shorter
                // than the buffer and the chunker would never finish).
                let (head, rest) = self.buf.split_at(window_end);
                match open_fence_at(&fences, window_end) {
                    Some(opener) if opener.len() + 1 < window_end => {
                        Some((format!("{}\n```", head.trim_end()), format!("{opener}\n{rest}")))
                    }
                    _ => Some((head.to_string(), rest.to_string())),
                }
            }
        }
    }
}

/// A block as sent: trimmed at its end, none when only whitespace.
fn block(text: String) -> Option<String> {
    let t = text.trim_end();
    (!t.trim().is_empty()).then(|| t.to_string())
}

/// The byte index after the first `chars` characters (the end if shorter).
fn byte_at(text: &str, chars: usize) -> usize {
    text.char_indices().nth(chars).map_or(text.len(), |(i, _)| i)
}

/// Every place in `text` a block may end, in order.
fn breaks(text: &str) -> Vec<Break> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    for (i, c) in text.char_indices() {
        let next = i + c.len_utf8();
        match c {
            '\n' if bytes.get(next) == Some(&b'\n') => {
                out.push(Break { at: i, kind: Some(BreakPreference::Paragraph) });
            }
            '\n' if i > 0 && bytes[i - 1] == b'\n' => {}
            '\n' => out.push(Break { at: i, kind: Some(BreakPreference::Newline) }),
            '.' | '!' | '?' if bytes.get(next).is_some_and(|b| *b == b' ') => {
                out.push(Break { at: next, kind: Some(BreakPreference::Sentence) });
            }
            ' ' | '\t' => out.push(Break { at: i, kind: None }),
            _ => {}
        }
    }
    out
}

/// Where code fences open and close: from the opening marker to the end of
/// the closing one (before its newline), each with its opening line (```lang).
fn fence_state(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut open: Option<(usize, String)> = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            match open.take() {
                None => open = Some((at, trimmed.trim_end().to_string())),
                Some((start, opener)) => out.push((start, at + line.trim_end_matches('\n').len(), opener)),
            }
        }
        at += line.len();
    }
    if let Some((start, opener)) = open {
        out.push((start, usize::MAX, opener));
    }
    out
}

fn inside_fence(fences: &[(usize, usize, String)], at: usize) -> bool {
    fences.iter().any(|(start, end, _)| at > *start && at < *end)
}

/// The opening line of the fence `at` is inside, if any.
fn open_fence_at(fences: &[(usize, usize, String)], at: usize) -> Option<String> {
    fences.iter().find(|(start, end, _)| at > *start && at < *end).map(|(_, _, opener)| opener.clone())
}

/// Merges blocks before they are sent (`Coalesce`); times in milliseconds.
#[derive(Debug, Clone)]
pub struct Coalescer {
    settings: Coalesce,
    joiner: &'static str,
    held: String,
    last_ms: u64,
}

impl Coalescer {
    pub fn new(settings: Coalesce, prefer: BreakPreference) -> Coalescer {
        Coalescer { settings, joiner: prefer.joiner(), held: String::new(), last_ms: 0 }
    }

    /// Holds `block`; what must go now (what was held, when `block` would
    /// carry it past `max_chars`).
    pub fn push(&mut self, block: String, now_ms: u64) -> Option<String> {
        self.last_ms = now_ms;
        if self.held.is_empty() {
            self.held = block;
            return self.over_max();
        }
        let merged = self.held.chars().count() + self.joiner.len() + block.chars().count();
        if merged > self.settings.max_chars {
            let out = std::mem::replace(&mut self.held, block);
            return Some(out);
        }
        self.held.push_str(self.joiner);
        self.held.push_str(&block);
        self.over_max()
    }

    fn over_max(&mut self) -> Option<String> {
        (self.held.chars().count() >= self.settings.max_chars).then(|| std::mem::take(&mut self.held))
    }

    /// When what is held goes if nothing more comes (`None`: nothing held,
    /// or too little to go before the end).
    pub fn due_at(&self) -> Option<u64> {
        (!self.held.is_empty() && self.held.chars().count() >= self.settings.min_chars)
            .then_some(self.last_ms + self.settings.idle_ms)
    }

    /// What is held, if it is due at `now_ms`.
    pub fn take_due(&mut self, now_ms: u64) -> Option<String> {
        self.due_at().filter(|at| now_ms >= *at).map(|_| std::mem::take(&mut self.held))
    }

    /// The end: whatever is held.
    pub fn finish(&mut self) -> Option<String> {
        (!self.held.is_empty()).then(|| std::mem::take(&mut self.held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(min: usize, max: usize, prefer: BreakPreference) -> ChunkBounds {
        ChunkBounds { min_chars: min, max_chars: max, prefer }
    }

    fn stream(c: &mut BlockChunker, text: &str, step: usize) -> Vec<String> {
        let chars: Vec<char> = text.chars().collect();
        let mut out = Vec::new();
        for piece in chars.chunks(step) {
            out.extend(c.push(&piece.iter().collect::<String>()));
        }
        out.extend(c.flush());
        out
    }

    #[test]
    fn paragraphs_become_blocks_once_past_the_low_bound() {
        let mut c = BlockChunker::new(bounds(20, 200, BreakPreference::Paragraph));
        let text = "First paragraph, long enough.\n\nSecond one, also long enough.\n\nThird.";
        let blocks = stream(&mut c, text, 3);
        assert_eq!(blocks, ["First paragraph, long enough.", "Second one, also long enough.", "Third."]);
        // Nothing before the low bound, nothing at a weaker break than preferred.
        let mut c = BlockChunker::new(bounds(20, 200, BreakPreference::Paragraph));
        assert!(c.push("Short.\n\nAnother line\nand more text here").is_empty());
        assert_eq!(c.push("\n\nEnd").len(), 1);
    }

    #[test]
    fn over_the_high_bound_the_chain_picks_the_strongest_break() {
        let mut c = BlockChunker::new(bounds(5, 30, BreakPreference::Paragraph));
        let blocks = stream(&mut c, "One sentence here. Another one follows and runs past the bound.", 4);
        assert_eq!(blocks[0], "One sentence here.", "a sentence end before the bound");
        let mut c = BlockChunker::new(bounds(5, 10, BreakPreference::Paragraph));
        let blocks = stream(&mut c, "abcdefghijklmnopqrstuvwxyz", 26);
        assert_eq!(blocks, ["abcdefghij", "klmnopqrst", "uvwxyz"], "hard breaks at the bound");
        assert!(blocks.iter().all(|b| b.chars().count() <= 10));
    }

    #[test]
    fn code_fences_are_not_split_unless_forced_then_closed_and_reopened() {
        let mut c = BlockChunker::new(bounds(5, 200, BreakPreference::Newline));
        let text = "Intro line\n```rust\nlet a = 1;\nlet b = 2;\n```\nAfter";
        let blocks = stream(&mut c, text, 2);
        assert!(blocks.iter().all(|b| b.matches("```").count() % 2 == 0), "{blocks:?}");
        assert_eq!(blocks.concat().replace('\n', ""), text.replace('\n', ""));
        let mut c = BlockChunker::new(bounds(5, 24, BreakPreference::Paragraph));
        let blocks = stream(&mut c, "```py\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n```", 5);
        assert!(blocks.len() >= 2, "{blocks:?}");
        assert!(blocks[0].ends_with("\n```") && blocks[1].starts_with("```py\n"), "{blocks:?}");
    }

    #[test]
    fn a_fence_whose_opening_line_fills_the_bound_still_ends() {
        // Found by fuzzing: the opening line alone is past the high bound, so
        // reopening it after a forced cut never shortened the buffer.
        let mut c = BlockChunker::new(bounds(4, 9, BreakPreference::Paragraph));
        let mut blocks = c.push("```\0\0\0\0 \0");
        blocks.extend(c.flush());
        assert!(!blocks.is_empty());
        assert!(blocks.iter().all(|b| b.chars().count() <= 9 + 4), "{blocks:?}");
        let mut c = BlockChunker::new(bounds(4, 9, BreakPreference::Paragraph));
        let mut blocks = c.push("```abcde\nfn main() {}\n```");
        blocks.extend(c.flush());
        let body: String = blocks.concat().chars().filter(|c| !c.is_whitespace()).collect();
        assert!(body.contains("fnmain(){}"), "{blocks:?}");
    }

    #[test]
    fn what_the_blocks_carry_is_the_text() {
        let mut c = BlockChunker::new(bounds(10, 40, BreakPreference::Sentence));
        let text = "Déjà vu. 🦀 crabs walk sideways! Do they? Yes, they do. The end of it all is here.";
        let blocks = stream(&mut c, text, 1);
        assert!(blocks.len() > 1);
        let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(words(&blocks.join(" ")), words(text));
        assert!(blocks.iter().all(|b| b.chars().count() <= 40));
    }

    #[test]
    fn coalescing_merges_until_idle_or_the_cap() {
        let mut k =
            Coalescer::new(Coalesce { min_chars: 10, max_chars: 30, idle_ms: 1000 }, BreakPreference::Paragraph);
        assert_eq!(k.push("short".into(), 0), None);
        assert_eq!(k.due_at(), None, "under minChars it waits for the end");
        assert_eq!(k.push("second bit".into(), 100), None);
        assert_eq!(k.due_at(), Some(1100));
        assert_eq!(k.take_due(1099), None);
        assert_eq!(k.take_due(1100).as_deref(), Some("short\n\nsecond bit"));
        assert_eq!(k.push("a".repeat(25), 2000), None);
        assert_eq!(
            k.push("next".into(), 2100).as_deref(),
            Some("a".repeat(25).as_str()),
            "the cap sends what was held"
        );
        assert_eq!(k.finish().as_deref(), Some("next"));
        assert_eq!(k.finish(), None);
    }

    #[test]
    fn settings_follow_the_channel_then_the_agent_default() {
        let c = crate::config::load::load_str(
            r#"{ agents: { defaults: { blockStreamingDefault: "on", blockStreamingChunk: { minChars: 100, maxChars: 9000, breakPreference: "newline" },
                                       humanDelay: { mode: "natural" } },
                           list: [ { id: "main" }, { id: "calm", humanDelay: { mode: "off" } } ] },
                 channels: { telegram: { accounts: { quiet: { streaming: { block: { enabled: false } } },
                                                     live: { streaming: { mode: "partial" } } } },
                             discord: { streaming: { block: { enabled: true } } } } }"#,
            Some("t.json5"),
        )
        .expect("loads")
        .config;
        let t = block_settings(&c, "main", "telegram", "default", 4096).expect("the agent default is on");
        assert_eq!(t.chunk, bounds(100, 4096, BreakPreference::Newline), "max clamped to the text limit");
        assert_eq!((t.break_at, t.coalesce), (BreakAt::TextEnd, None));
        assert_eq!(t.human_delay, Some(HumanDelay { min_ms: 800, max_ms: 2500 }));
        assert_eq!(block_settings(&c, "calm", "telegram", "default", 4096).unwrap().human_delay, None);
        assert!(block_settings(&c, "main", "telegram", "quiet", 4096).is_none(), "the account turned it off");
        assert!(block_settings(&c, "main", "telegram", "live", 4096).is_none(), "a preview wins over the default");
        let d = block_settings(&c, "main", "discord", "default", 2000).unwrap();
        assert_eq!(d.coalesce, Some(Coalesce { min_chars: 1500, max_chars: 2000, idle_ms: 1000 }), "Discord coalesces");
        let off = crate::config::load::load_str("{}", None).unwrap().config;
        assert!(block_settings(&off, "main", "telegram", "default", 4096).is_none(), "off by default");
    }
}
