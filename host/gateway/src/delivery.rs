//! One message to a platform, the way every sender in the gateway sends
//! it: retried while the adapter says "later" (within a bound) or its
//! instance failed, given up with why otherwise.
//!
//! Must not: decide what is sent or where (the callers do).

use std::time::Duration;

use chela_core::ids::ChatType;
use chela_plugin::channel::{ChannelError, ChannelRuntime, Delivery, OutboundMessage, PeerKind};

use crate::backoff::backoff;

/// Delivery attempts when the platform asks to retry later.
const MAX_DELIVERY_ATTEMPTS: u32 = 4;
/// The longest retry-after we wait for before giving up on a reply.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// Core's chat type as the WIT peer kind.
pub(crate) fn peer_kind(c: ChatType) -> PeerKind {
    match c {
        ChatType::Direct => PeerKind::Direct,
        ChatType::Group => PeerKind::Group,
        ChatType::Channel => PeerKind::Channel,
    }
}

/// Sends a reply: the platform's retry-after is honoured, and a call that
/// failed in the adapter (trap, timeout, cool-down) is retried with
/// exponential back-off and jitter, a few times; a refusal by the platform
/// or a missing account is final.
pub(crate) async fn deliver(channel: &ChannelRuntime, reply: OutboundMessage) -> Result<Vec<String>, String> {
    let mut last = String::from("delivery failed");
    for attempt in 1..=MAX_DELIVERY_ATTEMPTS {
        let wait = match channel.send(reply.clone()).await {
            Ok(Delivery::Sent(ids)) => return Ok(ids),
            Ok(Delivery::Failed(why)) => return Err(format!("delivery failed: {why}")),
            Ok(Delivery::RetryAfter(ms)) => {
                last = format!("rate limited; gave up after {attempt} attempts (retry after {ms} ms)");
                let wait = Duration::from_millis(ms);
                if wait > MAX_RETRY_WAIT {
                    return Err(last);
                }
                tracing::info!(channel = channel.channel_id(), ms, "rate limited; retrying the reply");
                wait
            }
            Err(e @ ChannelError::Call(_)) => {
                last = format!("{e} (after {attempt} attempts)");
                tracing::warn!(channel = channel.channel_id(), error = %e, attempt, "send failed in the adapter; retrying");
                backoff(Duration::from_millis(250), attempt, Duration::from_secs(16))
            }
            Err(e) => return Err(e.to_string()),
        };
        if attempt < MAX_DELIVERY_ATTEMPTS {
            tokio::time::sleep(wait).await;
        }
    }
    Err(last)
}
