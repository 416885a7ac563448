//! Who may call the control plane (`/api/…`, `/v1/…`, `/metrics` when it
//! needs auth), checked before any handler runs:
//!
//! 1. `Host` must be an IP literal, a loopback name (`localhost`,
//!    `*.localhost`) or the host of a `gateway.controlUi.allowedOrigins`
//!    entry: a DNS-rebinding page reaches us under *its* name and is refused.
//! 2. `Origin` (and `Sec-Fetch-Site: cross-site`) must be the gateway's own
//!    origin or an allowed one: a page on another origin is refused even for
//!    "simple" requests that skip the CORS preflight. No CORS grants are made.
//! 3. A request with a body must say `content-type: application/json`.
//! 4. `Authorization: Bearer <token>` must match, compared in constant time;
//!    repeated failures from one address lock it out (429 + Retry-After), and
//!    a global failure budget stops many addresses guessing together.
//!
//! The same [`Lockout`] rate-limits failed webhook authentication. This
//! module must not route, run turns or know any handler: it only says yes or no.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chela_core::config::schema::Config;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hyper::{HeaderMap, Method, StatusCode};

/// Compares without an early exit on the first differing byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Failed attempts per address, in a bounded table, plus a global budget.
pub(crate) struct Lockout {
    per_address: u32,
    window: Duration,
    table: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    global: DefaultDirectRateLimiter,
    /// Until when the global budget is spent: then any address with a failure is locked.
    global_spent_until: Mutex<Option<Instant>>,
}

/// Addresses tracked at once; past it, expired entries are pruned, then the oldest dropped.
const MAX_TRACKED: usize = 4096;

impl Lockout {
    pub(crate) fn new(per_address: u32, global_per_minute: u32, window: Duration) -> Lockout {
        let global = NonZeroU32::new(global_per_minute).unwrap_or(NonZeroU32::MIN);
        Lockout {
            per_address,
            window,
            table: Mutex::new(HashMap::new()),
            global: RateLimiter::direct(Quota::per_minute(global)),
            global_spent_until: Mutex::new(None),
        }
    }

    /// How long `ip` stays locked out, if it is.
    pub(crate) fn locked(&self, ip: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let (n, since) = *table.get(&ip)?;
        let left = self.window.saturating_sub(now.duration_since(since));
        if left.is_zero() {
            return None;
        }
        if n >= self.per_address {
            return Some(left);
        }
        let global = *self.global_spent_until.lock().unwrap_or_else(|p| p.into_inner());
        global.filter(|until| *until > now).map(|until| until - now)
    }

    pub(crate) fn failed(&self, ip: IpAddr) {
        let now = Instant::now();
        if self.global.check().is_err() {
            *self.global_spent_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(now + self.window);
        }
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.len() >= MAX_TRACKED && !table.contains_key(&ip) {
            let window = self.window;
            table.retain(|_, (_, since)| now.duration_since(*since) < window);
            if table.len() >= MAX_TRACKED {
                if let Some(oldest) = table.iter().min_by_key(|(_, (_, since))| *since).map(|(k, _)| *k) {
                    table.remove(&oldest);
                }
            }
        }
        let e = table.entry(ip).or_insert((0, now));
        if now.duration_since(e.1) >= self.window {
            *e = (0, now);
        }
        e.0 = e.0.saturating_add(1);
    }

    pub(crate) fn succeeded(&self, ip: IpAddr) {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).remove(&ip);
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Why a request is turned away: the status, the message, and for a
/// lockout how long until it may try again (`Retry-After`). The server
/// turns it into a response; this module knows no handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl Refusal {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal { status, message: message.into(), retry_after: None }
    }

    pub(crate) fn too_many(left: Duration, what: &str) -> Refusal {
        Refusal {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!("too many failed {what}; try later"),
            retry_after: Some(left.max(Duration::from_secs(1))),
        }
    }
}

/// `gateway.controlUi.allowedOrigins`, normalised (lowercase, no trailing `/`).
pub(crate) fn allowed_origins(cfg: &Config) -> Vec<String> {
    cfg.gateway
        .as_ref()
        .and_then(|g| g.control_ui.as_ref()?.allowed_origins.clone())
        .unwrap_or_default()
        .iter()
        .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
        .collect()
}

/// `host[:port]` → host, brackets of an IPv6 literal removed.
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    authority.rsplit_once(':').filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit())).map_or(authority, |(h, _)| h)
}

fn origin_host(origin: &str) -> Option<&str> {
    let rest = origin.split_once("://")?.1;
    Some(host_of(rest.split('/').next().unwrap_or_default()))
}

/// A `Host` a rebinding page cannot present: an IP literal, a loopback
/// name, or the host of an allowed origin.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let h = host_of(host).to_ascii_lowercase();
    h.parse::<IpAddr>().is_ok()
        || h == "localhost"
        || h.ends_with(".localhost")
        || allowed.iter().any(|o| origin_host(o).is_some_and(|oh| oh == h))
}

/// Checks 1–3 of the module header: Host, Origin / Sec-Fetch-Site, content type.
pub(crate) fn browser_checks(method: &Method, headers: &HeaderMap, cfg: &Config) -> Result<(), Refusal> {
    let refuse = |status: StatusCode, why: String| Err(Refusal::new(status, why));
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}").trim().to_string());
    let allowed = allowed_origins(cfg);
    let host = text("host").unwrap_or_default();
    if !host.is_empty() && !host_allowed(&host, &allowed) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "Host `{host}` is not this gateway (a DNS-rebinding page?); to serve under that name, \
                 add its origin to gateway.controlUi.allowedOrigins"
            ),
        );
    }
    let origin = text("origin").map(|o| o.trim_end_matches('/').to_ascii_lowercase());
    let own = |o: &str| {
        let h = host.to_ascii_lowercase();
        o == format!("http://{h}") || o == format!("https://{h}")
    };
    match origin.as_deref() {
        Some(o) if !own(o) && !allowed.iter().any(|a| a == o) => {
            return refuse(
                StatusCode::FORBIDDEN,
                format!("cross-origin request from `{o}` refused (gateway.controlUi.allowedOrigins lists the allowed)"),
            );
        }
        Some(_) => {}
        None if text("sec-fetch-site").as_deref() == Some("cross-site") => {
            return refuse(StatusCode::FORBIDDEN, "cross-site request refused".into());
        }
        None => {}
    }
    if matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        let ct = text("content-type").unwrap_or_default().to_ascii_lowercase();
        if ct.split(';').next().map(str::trim) != Some("application/json") {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("the control API takes `content-type: application/json`, not `{ct}`"),
            );
        }
    }
    Ok(())
}

/// Check 4: the bearer token, with lockout.
pub(crate) fn bearer(headers: &HeaderMap, token: &str, ip: IpAddr, lockout: &Lockout) -> Result<(), Refusal> {
    if let Some(left) = lockout.locked(ip) {
        return Err(Refusal::too_many(left, "authentications"));
    }
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if same(presented.trim().as_bytes(), token.as_bytes()) {
        lockout.succeeded(ip);
        return Ok(());
    }
    lockout.failed(ip);
    Err(Refusal::new(
        StatusCode::UNAUTHORIZED,
        "missing or wrong bearer token (the CLI on this machine reads it from the state dir's gateway.token, \
         or set gateway.auth.token)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn cfg(text: &str) -> Config {
        chela_core::config::load_str(text, None).unwrap().config
    }

    #[test]
    fn rebinding_hosts_and_foreign_origins_are_refused() {
        let c = cfg("{}");
        let ok = |h: &[(&'static str, &'static str)]| browser_checks(&Method::GET, &headers(h), &c).is_ok();
        assert!(ok(&[("host", "127.0.0.1:18789")]));
        assert!(ok(&[("host", "localhost:18789"), ("origin", "http://localhost:18789")]));
        assert!(ok(&[("host", "[::1]:18789")]));
        assert!(ok(&[("host", "192.168.1.4:18789")]), "a LAN address is an IP literal: not rebindable");
        assert!(!ok(&[("host", "attacker.example:18789")]));
        assert!(!ok(&[("host", "127.0.0.1:18789"), ("origin", "http://attacker.example")]));
        assert!(!ok(&[("host", "127.0.0.1:18789"), ("origin", "null")]));
        assert!(!ok(&[("host", "127.0.0.1:18789"), ("sec-fetch-site", "cross-site")]));
        let c = cfg("{ gateway: { controlUi: { allowedOrigins: ['https://ops.example.com'] } } }");
        let ok = |h: &[(&'static str, &'static str)]| browser_checks(&Method::GET, &headers(h), &c).is_ok();
        assert!(ok(&[("host", "ops.example.com"), ("origin", "https://ops.example.com")]));
        assert!(ok(&[("host", "127.0.0.1:1"), ("origin", "https://ops.example.com/")]));
    }

    #[test]
    fn bodies_must_be_json() {
        let c = cfg("{}");
        let post = |ct: &'static str| {
            browser_checks(&Method::POST, &headers(&[("host", "127.0.0.1"), ("content-type", ct)]), &c).is_ok()
        };
        assert!(post("application/json") && post("application/json; charset=utf-8"));
        assert!(!post("text/plain") && !post("application/x-www-form-urlencoded") && !post("multipart/form-data"));
    }

    #[test]
    fn lockout_is_per_address_bounded_and_global() {
        let l = Lockout::new(3, 1000, Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(l.locked(a).is_none());
            l.failed(a);
        }
        assert!(l.locked(a).is_some());
        assert!(l.locked("10.0.0.2".parse().unwrap()).is_none(), "others are not locked");
        for i in 0..(MAX_TRACKED as u32 + 100) {
            l.failed(IpAddr::from(i.to_be_bytes()));
        }
        assert!(l.tracked() <= MAX_TRACKED, "the table stays bounded");
        // A small global budget: many addresses guessing together lock each other out.
        let g = Lockout::new(100, 5, Duration::from_secs(60));
        for i in 0..10u8 {
            g.failed(IpAddr::from([10, 1, 0, i]));
        }
        assert!(g.locked(IpAddr::from([10, 1, 0, 1])).is_some());
        assert!(g.locked(IpAddr::from([10, 2, 0, 1])).is_none(), "an address with no failure is not");
    }
}
