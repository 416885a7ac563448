//! Small helpers every adapter needs: request headers and query strings,
//! hex signatures and clocks. (No redelivery guard: the host journals every
//! event before the platform hears of it and drops repeats by message id; an
//! adapter that remembered ids itself would drop a retry of an event the host
//! never stored.)
//!
//! Must not: hold platform-specific rules (each adapter does).

use crate::HttpRequest;

/// The first value of header `name` (case-insensitive).
pub fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn unhex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `"0aff"` → `[0x0a, 0xff]`; `None` when not hex.
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks(2).map(|p| Some(unhex(p[0])? << 4 | unhex(p[1])?)).collect()
}

/// Percent-decoding of a query component (`+` is a space).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (b.get(i + 1).copied().and_then(unhex), b.get(i + 2).copied().and_then(unhex)) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded value of query parameter `name` in `path?query`.
pub fn query_param(path_with_query: &str, name: &str) -> Option<String> {
    let query = path_with_query.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

/// Waits inside the guest (wasi clocks): a short rate-limit pause mid-reply.
/// Percent-encodes every byte but RFC 3986's unreserved ones (a path
/// segment such as a reaction's emoji, or a form value).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn sleep_ms(ms: u64) {
    wasip2::clocks::monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000)).block();
}

/// Milliseconds on the monotonic clock (timers such as heartbeats).
pub fn monotonic_ms() -> u64 {
    wasip2::clocks::monotonic_clock::now() / 1_000_000
}

/// A random fraction in [0, 1) (jitter).
pub fn random_fraction() -> f64 {
    (wasip2::random::random::get_random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Seconds since the Unix epoch (wall clock; replay windows).
pub fn now_unix_s() -> u64 {
    wasip2::clocks::wall_clock::now().seconds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_query() {
        assert_eq!(hex_decode("0aFf"), Some(vec![0x0a, 0xff]));
        assert_eq!(hex_decode("0g"), None);
        assert_eq!(hex_decode("abc"), None);
        let q = "/?hub.mode=subscribe&hub.verify_token=a%20b+c&hub.challenge=123%";
        assert_eq!(query_param(q, "hub.mode").as_deref(), Some("subscribe"));
        assert_eq!(query_param(q, "hub.verify_token").as_deref(), Some("a b c"));
        assert_eq!(query_param(q, "hub.challenge").as_deref(), Some("123%"));
        assert_eq!(query_param(q, "nope"), None);
        assert_eq!(query_param("/plain", "a"), None);
    }
}
