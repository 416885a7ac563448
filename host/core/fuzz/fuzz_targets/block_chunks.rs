//! Arbitrary text streamed in arbitrary pieces through the block chunker
//! and the coalescer: never a panic, no block past the high bound (but for
//! the fence it closes), and the blocks carry the text's characters (all
//! but the whitespace a cut trims), in order, each once.
//!
//! Must not: assert where blocks break (unit tests do).
#![no_main]

use arbitrary::Arbitrary;
use chela_core::block_stream::{BlockChunker, BreakPreference, ChunkBounds, Coalesce, Coalescer};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    min: u8,
    max: u8,
    prefer: u8,
    /// Where the stream is cut (piece lengths in chars).
    steps: Vec<u8>,
    text: String,
    coalesce: Option<(u8, u8, u16)>,
}

fuzz_target!(|input: Input| {
    let max = usize::from(input.max).max(1) + 8;
    let min = usize::from(input.min).clamp(1, max);
    let prefer = [BreakPreference::Paragraph, BreakPreference::Newline, BreakPreference::Sentence]
        [usize::from(input.prefer) % 3];
    let mut chunker = BlockChunker::new(ChunkBounds { min_chars: min, max_chars: max, prefer });
    let mut coalescer = input.coalesce.map(|(cmin, cmax, idle)| {
        let settings = Coalesce {
            min_chars: usize::from(cmin),
            max_chars: usize::from(cmax).max(1) + 8,
            idle_ms: u64::from(idle),
        };
        Coalescer::new(settings, prefer)
    });
    let chars: Vec<char> = input.text.chars().collect();
    let mut blocks = Vec::new();
    let (mut at, mut step) = (0usize, 0usize);
    while at < chars.len() {
        let n = usize::from(*input.steps.get(step).unwrap_or(&7)).max(1);
        let piece: String = chars[at..(at + n).min(chars.len())].iter().collect();
        at += n;
        step += 1;
        blocks.extend(chunker.push(&piece));
    }
    blocks.extend(chunker.flush());
    // Every block within the bound (a forced cut in a fence adds "\n```").
    for b in &blocks {
        assert!(b.chars().count() <= max + 4, "a block of {} chars over {max}: {b:?}", b.chars().count());
        assert!(!b.trim().is_empty(), "an empty block");
    }
    let solid = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    if !input.text.contains("```") {
        assert_eq!(solid(&blocks.concat()), solid(&input.text), "the blocks lost or repeated text");
    }
    if let Some(c) = coalescer.as_mut() {
        let mut sent = Vec::new();
        for (i, b) in blocks.iter().enumerate() {
            sent.extend(c.push(b.clone(), i as u64 * 5));
            sent.extend(c.take_due(i as u64 * 5 + 3));
        }
        sent.extend(c.finish());
        assert_eq!(solid(&sent.concat()), solid(&blocks.concat()), "coalescing lost or repeated text");
    }
});
