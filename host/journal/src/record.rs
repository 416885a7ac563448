//! One journal line: a record as JSON behind its CRC-32, `<crc hex> <json>\n`.
//! A line whose checksum or JSON does not hold (a torn write, a flipped
//! bit) is reported by its number and skipped; the lines after it are read.
//!
//! Must not: decide what a record means for the journal's state (`state.rs`
//! does), or touch files.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The format this build writes; a journal with a higher version is refused.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "lowercase")]
pub(crate) enum Record {
    /// The first line of every journal file.
    Journal { version: u32 },
    /// An inbound event, accepted (durable before the platform is told).
    In { seq: u64, dedupe: String, chat: String, event: Value },
    /// A reply for inbound `seq` by `agent`, to be delivered.
    Out { id: u64, seq: u64, agent: String, chat: String, message: Value },
    /// `agent` answered inbound `seq` and that reply is delivered already
    /// (written by compaction, for an event still open).
    Answered { seq: u64, agent: String },
    /// Inbound `seq` is finished: its replies (if any) are in the outbox.
    Done { seq: u64, how: String },
    /// Reply `id` was delivered.
    Sent { id: u64 },
    /// Reply `id` failed for good.
    Dead { id: u64, why: String },
    /// A platform message id already handled (kept by compaction for dedupe).
    Seen { dedupe: String },
}

/// `record` as one line.
pub(crate) fn encode(record: &Record) -> Vec<u8> {
    let json = serde_json::to_string(record).unwrap_or_else(|_| "{}".into());
    let mut line = format!("{:08x} ", crc32fast::hash(json.as_bytes())).into_bytes();
    line.extend_from_slice(json.as_bytes());
    line.push(b'\n');
    line
}

/// A line back into its record, or why it cannot be read.
pub(crate) fn decode(line: &[u8]) -> Result<Record, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
    let (crc, json) = text.split_once(' ').ok_or("no checksum")?;
    let want = u32::from_str_radix(crc, 16).map_err(|_| format!("bad checksum field `{crc}`"))?;
    if crc.len() != 8 || crc32fast::hash(json.as_bytes()) != want {
        return Err("checksum mismatch (torn or corrupted line)".into());
    }
    serde_json::from_str(json).map_err(|e| format!("unreadable record: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_round_trips_and_any_changed_byte_is_caught() {
        let r = Record::In {
            seq: 7,
            dedupe: "telegram/default/42".into(),
            chat: "c".into(),
            event: serde_json::json!({"text": "héllo"}),
        };
        let line = encode(&r);
        assert_eq!(decode(&line[..line.len() - 1]), Ok(r));
        for i in 0..line.len() - 1 {
            let mut bad = line[..line.len() - 1].to_vec();
            bad[i] ^= 0x01;
            assert!(decode(&bad).is_err(), "byte {i} flipped went unnoticed");
        }
        assert!(decode(&line[..line.len() / 2]).is_err(), "a torn line is refused");
    }
}
