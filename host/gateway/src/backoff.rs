//! Exponential back-off with jitter, for every retry the gateway makes
//! (deliveries, pollers), so many chats or accounts retrying do not move in
//! step.
//!
//! Must not: sleep or decide whether to retry (callers do).

use std::time::Duration;

/// `base` doubled per attempt (attempt 0 is `base`), at most `cap`, then
/// spread over ±50 %.
pub(crate) fn backoff(base: Duration, attempt: u32, cap: Duration) -> Duration {
    let full = base.saturating_mul(1u32 << attempt.min(16)).min(cap);
    let ms = full.as_millis() as u64;
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let jitter = u64::from(nanos) % (ms + 1);
    Duration::from_millis(ms / 2 + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_within_half_and_one_and_a_half_times() {
        let base = Duration::from_millis(250);
        for (attempt, full) in [(0, 250), (1, 500), (3, 2000), (10, 5000)] {
            let d = backoff(base, attempt, Duration::from_secs(5));
            assert!(
                d >= Duration::from_millis(full / 2) && d <= Duration::from_millis(full * 3 / 2),
                "{attempt}: {d:?}"
            );
        }
    }
}
