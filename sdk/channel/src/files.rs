//! What every adapter does alike with files: telling a file's kind from its
//! MIME type, and the parts of a reply (the text, split to the platform's
//! limit, then one part per attachment).
//!
//! Must not: talk to a platform (each adapter uploads its own way).

use crate::split::split;
use crate::{AttachmentKind, OutboundMessage};

/// A file's kind by its MIME type (`image/*`, `audio/*`, `video/*`; anything
/// else is a document). Voice notes and stickers the platform marks itself.
pub fn kind_for_mime(mime: &str) -> AttachmentKind {
    match mime {
        m if m.starts_with("image/") => AttachmentKind::Image,
        m if m.starts_with("audio/") => AttachmentKind::Audio,
        m if m.starts_with("video/") => AttachmentKind::Video,
        _ => AttachmentKind::Document,
    }
}

/// A reply as parts for `deliver_parts`: the text split at `limit` (none
/// when it is empty), then each attachment's file name.
pub struct Parts {
    pub parts: Vec<String>,
    /// How many of `parts` are text; part `i >= texts` is attachment `i - texts`.
    pub texts: usize,
}

pub fn reply_parts(message: &OutboundMessage, limit: usize) -> Parts {
    let mut parts = if message.text.trim().is_empty() { Vec::new() } else { split(&message.text, limit) };
    let texts = parts.len();
    parts.extend(message.attachments.iter().map(|a| a.file_name.clone()));
    Parts { parts, texts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OutboundAttachment, Peer, PeerKind};

    #[test]
    fn text_parts_come_first_then_one_per_file() {
        let file = |n: &str| OutboundAttachment {
            kind: AttachmentKind::Document,
            file_name: n.into(),
            mime_type: "text/plain".into(),
            data: vec![],
        };
        let mut m = OutboundMessage {
            account_id: "a".into(),
            peer: Peer { kind: PeerKind::Direct, id: "p".into() },
            thread_id: None,
            reply_to_message_id: None,
            text: "hello".into(),
            attachments: vec![file("a.txt"), file("b.txt")],
            identity: None,
        };
        let p = reply_parts(&m, 100);
        assert_eq!((p.parts, p.texts), (vec!["hello".to_string(), "a.txt".into(), "b.txt".into()], 1));
        m.text = "  ".into();
        assert_eq!(reply_parts(&m, 100).texts, 0);
        assert_eq!(kind_for_mime("audio/ogg"), AttachmentKind::Audio);
        assert_eq!(kind_for_mime("application/pdf"), AttachmentKind::Document);
    }
}
