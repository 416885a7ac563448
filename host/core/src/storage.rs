//! Where sessions live: the embedded files in the state dir (the default,
//! one process) or a PostgreSQL database that replicas share
//! (`storage.url`, or `CHELA_DATABASE_URL`, which wins).
//!
//! Must not: connect to anything, or show a URL's password (`redacted`).

use crate::config::paths::Environment;
use crate::config::schema::Config;

/// The backend a gateway's sessions are kept in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// `<stateDir>/agents/<id>/sessions`, as OpenClaw keeps them.
    Embedded,
    /// A PostgreSQL database, by URL, and where that URL was set.
    Postgres { url: String, set_by: &'static str },
}

/// Where the environment names the database.
pub const DATABASE_URL_VAR: &str = "CHELA_DATABASE_URL";

/// The backend `cfg` and `env` select; `Err`: the URL that wins is not a
/// PostgreSQL URL (naming who set it).
pub fn storage(cfg: &Config, env: &Environment) -> Result<Storage, String> {
    let (url, set_by) = match (&env.database_url, cfg.storage.as_ref().and_then(|s| s.url.as_deref())) {
        (Some(url), _) => (url.trim().to_string(), DATABASE_URL_VAR),
        (None, Some(url)) => (url.trim().to_string(), "storage.url"),
        (None, None) => return Ok(Storage::Embedded),
    };
    check_url(&url).map_err(|why| format!("{set_by}: {why}"))?;
    Ok(Storage::Postgres { url, set_by })
}

/// A URL chela can hand to the PostgreSQL driver: `postgres://` or
/// `postgresql://`, with a host.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://")).ok_or_else(|| {
        format!("`{}` is not a PostgreSQL URL (postgres://user:password@host:port/database)", redacted(url))
    })?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    // A host may also come from `?host=/run/postgresql` (a Unix socket).
    if host.is_empty() && !rest.contains("host=") {
        return Err(format!("`{}` names no host", redacted(url)));
    }
    // libpq's TLS modes (the database crate enforces them).
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    for mode in query.split('&').filter_map(|p| p.strip_prefix("sslmode=")) {
        if !SSL_MODES.contains(&mode) {
            return Err(format!("sslmode={mode} in `{}` is not one of {}", redacted(url), SSL_MODES.join(", ")));
        }
    }
    Ok(())
}

/// Whether connections to `url` check the server's certificate
/// (`sslmode=verify-ca|verify-full`, or `require` with an `sslrootcert`),
/// or need not: a loopback host or a Unix socket. `false`: anyone on the
/// path can pose as the database (libpq's default, `prefer`).
pub fn verifies_server(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, q),
        None => (rest, ""),
    };
    let param = |name: &str| query.split('&').find_map(|p| p.strip_prefix(name)?.strip_prefix('='));
    let host = authority.split('/').next().unwrap_or_default().rsplit('@').next().unwrap_or_default();
    let host = param("host").unwrap_or(host);
    let host_name = host.rsplit_once(':').map_or(host, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
    let local = host_name.starts_with('/')
        || host_name.starts_with("%2F")
        || matches!(host_name, "localhost" | "127.0.0.1" | "::1");
    match param("sslmode") {
        Some("verify-ca" | "verify-full") => true,
        Some("require") => param("sslrootcert").is_some() || local,
        _ => local,
    }
}

/// libpq's `sslmode` values.
const SSL_MODES: [&str; 6] = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];

/// `url` with its password replaced by `***`, for logs and errors.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let tail = mask_query_password(tail);
    let Some((userinfo, host)) = authority.rsplit_once('@') else { return format!("{scheme}://{authority}{tail}") };
    let user = userinfo.split(':').next().unwrap_or_default();
    let masked = if userinfo.contains(':') { format!("{user}:***") } else { user.to_string() };
    format!("{scheme}://{masked}@{host}{tail}")
}

fn mask_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else { return tail.to_string() };
    let query: Vec<String> = query
        .split('&')
        .map(|kv| if kv.starts_with("password=") { "password=***".to_string() } else { kv.to_string() })
        .collect();
    format!("{path}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::StorageConfig;

    fn cfg(url: Option<&str>) -> Config {
        Config { storage: Some(StorageConfig { url: url.map(str::to_string) }), ..Config::default() }
    }

    #[test]
    fn the_environment_wins_over_the_config_and_nothing_means_the_files() {
        let env = Environment { database_url: Some("postgres://a@db1/chela".into()), ..Default::default() };
        let picked = storage(&cfg(Some("postgres://b@db2/chela")), &env).unwrap();
        assert_eq!(picked, Storage::Postgres { url: "postgres://a@db1/chela".into(), set_by: DATABASE_URL_VAR });
        let picked = storage(&cfg(Some("postgresql://b@db2/chela")), &Environment::default()).unwrap();
        assert_eq!(picked, Storage::Postgres { url: "postgresql://b@db2/chela".into(), set_by: "storage.url" });
        assert_eq!(storage(&cfg(None), &Environment::default()).unwrap(), Storage::Embedded);
        assert_eq!(storage(&Config::default(), &Environment::default()).unwrap(), Storage::Embedded);
    }

    #[test]
    fn a_url_that_is_not_postgres_says_who_set_it_without_its_password() {
        let err = storage(&cfg(Some("mysql://u:hunter2@db/x")), &Environment::default()).unwrap_err();
        assert!(err.starts_with("storage.url: "), "{err}");
        assert!(err.contains("u:***@db") && !err.contains("hunter2"), "{err}");
        let env = Environment { database_url: Some("postgres:///chela".into()), ..Default::default() };
        assert!(storage(&Config::default(), &env).unwrap_err().contains("names no host"));
        assert!(check_url("postgres:///chela?host=/run/postgresql").is_ok());
        assert!(check_url("postgres://db/chela?sslmode=verify-full&sslrootcert=/etc/ca.pem").is_ok());
        let bad = check_url("postgres://u:hunter2@db/chela?sslmode=verify").unwrap_err();
        assert!(bad.contains("sslmode=verify in") && bad.contains("verify-full") && !bad.contains("hunter2"), "{bad}");
    }

    #[test]
    fn only_checked_or_local_connections_count_as_verified() {
        assert!(verifies_server("postgres://db.example/chela?sslmode=verify-full"));
        assert!(verifies_server("postgres://db.example/chela?sslmode=require&sslrootcert=/ca.pem"));
        assert!(verifies_server("postgres://chela@127.0.0.1:5432/chela"));
        assert!(verifies_server("postgres:///chela?host=/run/postgresql"));
        assert!(!verifies_server("postgres://chela:pw@db.example:5432/chela"));
        assert!(!verifies_server("postgres://db.example/chela?sslmode=require"));
    }

    #[test]
    fn redaction_hides_both_kinds_of_password() {
        assert_eq!(redacted("postgres://chela:s3cret@db:5432/chela"), "postgres://chela:***@db:5432/chela");
        assert_eq!(redacted("postgres://db/chela?user=c&password=s3cret"), "postgres://db/chela?user=c&password=***");
        assert_eq!(redacted("postgres://chela@db/chela"), "postgres://chela@db/chela");
    }
}
