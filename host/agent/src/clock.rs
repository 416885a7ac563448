//! Wall-clock helpers in the shapes the store writes (epoch ms, ISO-8601 UTC).
//!
//! Must not: hold any rule about time (expiry is `freshness`).

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn iso_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
