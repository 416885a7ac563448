//! Sending a reply that was split into parts, the way every platform needs:
//! one part after another; a rate limit on the first part hands the wait to
//! the host (which retries the whole reply later), a short one mid-reply is
//! waited out (the parts already sent stay sent), anything else stops with
//! how far it got.
//!
//! Must not: retry a reply itself beyond a short mid-reply wait (the host schedules retries).

use crate::util::sleep_ms;
use crate::Delivery;

/// The longest rate-limit wait taken inside a call, mid-reply.
pub const MAX_INLINE_WAIT_MS: u64 = 5000;

/// Why one part was not sent.
pub enum PartError {
    /// The platform asked to wait this long.
    RateLimited(u64),
    /// A failure to report as is.
    Failed(String),
}

/// Sends `parts` in order with `send(index, part)`, which returns the
/// platform's id of the message it created (if it gives one).
pub fn deliver_parts(
    parts: &[String],
    mut send: impl FnMut(usize, &str) -> Result<Option<String>, PartError>,
) -> Delivery {
    let mut ids = Vec::new();
    let mut i = 0;
    while i < parts.len() {
        match send(i, &parts[i]) {
            Ok(id) => {
                ids.extend(id);
                i += 1;
            }
            Err(PartError::RateLimited(ms)) if i == 0 => return Delivery::RetryAfter(ms),
            Err(PartError::RateLimited(ms)) if ms <= MAX_INLINE_WAIT_MS => sleep_ms(ms),
            Err(e) => {
                let why = match e {
                    PartError::RateLimited(ms) => format!("rate limited for {ms} ms"),
                    PartError::Failed(m) => m,
                };
                let sent = if i == 0 { String::new() } else { format!(" after {i} of {} parts", parts.len()) };
                return Delivery::Failed(format!("send failed{sent}: {why}"));
            }
        }
    }
    Delivery::Sent(ids)
}
