//! Egress policy: where a plugin's outbound HTTP and WebSocket connections
//! may go, and where the host may put a secret on the way.
//!
//! - URLs are parsed by a real URL parser (`url`); userinfo is refused,
//!   scheme, host and port are compared exactly.
//! - The grant is the host's, never the plugin's: *operator* hosts (from
//!   `plugins.entries.<id>.allowHosts` or the base URLs an account's settings
//!   configure) may be anything the operator wrote, loopback included;
//!   *public* hosts (a first-party channel's platform defaults) must be DNS
//!   names whose every resolved address is public. IP literals, loopback,
//!   private, link-local, CGNAT and metadata addresses are refused unless an
//!   operator entry names them.
//! - The address is checked where the connection is made ([`Egress::connect`]):
//!   names are resolved once and the checked address is the one connected
//!   to, so DNS rebinding cannot swap it.
//! - `{{secret:NAME}}` is substituted only in header values, WebSocket text
//!   frames and the URL *path* (Telegram's `/bot<token>/`), never in the
//!   host, userinfo, query or fragment, and only over TLS unless the
//!   connection goes to a loopback address the operator allowed.
//!
//! This module must not send requests (that is `http.rs` and `websocket.rs`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use super::secrets::store::SecretStore;

/// One allowlist entry: `host` (any port), `host:port`, `*.domain` (any
/// subdomain, any port), an IP literal, or a URL (its host and port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRule {
    host: HostPattern,
    port: Option<u16>,
    /// Written by the operator: may name loopback, private and IP-literal hosts.
    operator: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Name(String),
    Suffix(String),
    Ip(IpAddr),
}

impl HostRule {
    pub fn parse(entry: &str, operator: bool) -> Result<HostRule, String> {
        let e = entry.trim().to_ascii_lowercase();
        let authority = match e.split_once("://") {
            Some((_, rest)) => rest.split(['/', '?', '#']).next().unwrap_or_default().to_string(),
            None => e.clone(),
        };
        if authority.contains('@') {
            return Err(format!("`{entry}`: an allowed host cannot carry userinfo"));
        }
        let (host, port) = split_port(&authority).map_err(|why| format!("`{entry}`: {why}"))?;
        if host.is_empty() {
            return Err(format!("`{entry}` names no host"));
        }
        let pattern = if let Some(domain) = host.strip_prefix("*.") {
            HostPattern::Suffix(format!(".{domain}"))
        } else if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            HostPattern::Ip(ip)
        } else {
            HostPattern::Name(host.to_string())
        };
        Ok(HostRule { host: pattern, port, operator })
    }

    fn matches(&self, host: &url::Host<&str>, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match (&self.host, host) {
            (HostPattern::Name(n), url::Host::Domain(d)) => n == d,
            (HostPattern::Suffix(s), url::Host::Domain(d)) => d.len() > s.len() && d.ends_with(s.as_str()),
            (HostPattern::Ip(ip), url::Host::Ipv4(a)) => *ip == IpAddr::V4(*a),
            (HostPattern::Ip(ip), url::Host::Ipv6(a)) => *ip == IpAddr::V6(*a),
            _ => false,
        }
    }
}

/// `host[:port]` with `[v6]` brackets kept on the host.
fn split_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(i) => (&authority[..=i], authority[i + 1..].strip_prefix(':')),
            None => return Err("unclosed `[`".into()),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            Some(_) => return Err("an IPv6 address must be written in brackets".into()),
            None => (authority, None),
        }
    };
    let port = port.map(|p| p.parse::<u16>().map_err(|_| format!("port `{p}` is not a number"))).transpose()?;
    Ok((host, port))
}

/// A public (globally routable) address: not loopback, private, link-local
/// (cloud metadata at 169.254.169.254 included), CGNAT, multicast,
/// documentation, benchmarking or reserved space.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => public_v4(a),
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return public_v4(v4);
            }
            let s = a.segments();
            // NAT64 (64:ff9b::/96) carries an IPv4 address.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                return public_v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8));
            }
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local (fd00:ec2::254 metadata included)
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || a == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1))
        }
    }
}

fn public_v4(a: Ipv4Addr) -> bool {
    let o = a.octets();
    !(a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_multicast()
        || a.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64/10 (Alibaba's metadata 100.100.100.200)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240)
}

/// Which scheme family a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    WebSocket,
}

/// Where one allowed request goes.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: url::Url,
    pub tls: bool,
    pub port: u16,
    /// Matched only by public rules: every address must be public.
    public_only: bool,
}

impl Target {
    /// The host as TLS and `Host:` want it (IPv6 without brackets for TLS).
    pub fn host(&self) -> String {
        match self.url.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => String::new(),
        }
    }
}

/// The egress policy of one plugin instance.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    rules: Vec<HostRule>,
    pub secrets: Arc<SecretStore>,
}

const PLACEHOLDER: &str = "{{secret:";

impl Egress {
    /// `operator` entries may name anything; `public` entries only public DNS names.
    pub fn new(operator: &[String], public: &[String], secrets: Arc<SecretStore>) -> Egress {
        let mut rules = Vec::new();
        for (list, op) in [(operator, true), (public, false)] {
            for entry in list {
                match HostRule::parse(entry, op) {
                    // A plugin's own host list never grants an IP literal.
                    Ok(r) if !op && matches!(r.host, HostPattern::Ip(_)) => {
                        tracing::warn!(host = %entry, "a plugin-declared IP address is not granted; list it in plugins.entries.<id>.allowHosts")
                    }
                    Ok(r) => rules.push(r),
                    Err(why) => tracing::warn!(%why, "allowed host ignored"),
                }
            }
        }
        Egress { rules, secrets }
    }

    /// Checks `url` against the grant (before any secret is put in).
    pub fn check(&self, url: &str, protocol: Protocol) -> Result<Target, String> {
        let url = url::Url::parse(url).map_err(|e| format!("`{url}` is not a valid URL: {e}"))?;
        let tls = match (protocol, url.scheme()) {
            (Protocol::Http, "https") | (Protocol::WebSocket, "wss") => true,
            (Protocol::Http, "http") | (Protocol::WebSocket, "ws") => false,
            (_, other) => return Err(format!("scheme `{other}` is not allowed here")),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err("URLs with userinfo (`user:pass@`) are refused".into());
        }
        let host = url.host().ok_or("the URL has no host")?;
        let port = url.port_or_known_default().ok_or("the URL has no port")?;
        let matched: Vec<&HostRule> = self.rules.iter().filter(|r| r.matches(&host, port)).collect();
        if matched.is_empty() {
            return Err(format!("{host}:{port} is not an allowed host"));
        }
        let public_only = !matched.iter().any(|r| r.operator);
        Ok(Target { tls, port, public_only, url })
    }

    /// Resolves the target once, checks every candidate address, and
    /// connects to a checked one. `carries_secret`: plaintext is allowed
    /// only to loopback.
    pub async fn connect(
        &self,
        target: &Target,
        carries_secret: bool,
        timeout: Duration,
    ) -> Result<(TcpStream, SocketAddr), EgressError> {
        let addrs: Vec<SocketAddr> = match target.url.host() {
            Some(url::Host::Ipv4(a)) => vec![SocketAddr::new(a.into(), target.port)],
            Some(url::Host::Ipv6(a)) => vec![SocketAddr::new(a.into(), target.port)],
            Some(url::Host::Domain(d)) => tokio::time::timeout(timeout, tokio::net::lookup_host((d, target.port)))
                .await
                .map_err(|_| EgressError::Dns(format!("resolving {d} timed out")))?
                .map_err(|e| EgressError::Dns(format!("cannot resolve {d}: {e}")))?
                .collect(),
            None => return Err(EgressError::Denied("no host".into())),
        };
        let allowed: Vec<SocketAddr> = addrs
            .iter()
            .copied()
            .filter(|a| !target.public_only || is_public(a.ip()))
            .filter(|a| !carries_secret || target.tls || a.ip().is_loopback())
            .collect();
        if allowed.is_empty() {
            let why = if addrs.iter().any(|a| !is_public(a.ip())) && target.public_only {
                format!(
                    "{} resolves to a non-public address ({addrs:?}); only an operator's allowHosts may name one",
                    target.host()
                )
            } else {
                format!("a secret may go to {} only over TLS", target.host())
            };
            return Err(EgressError::Prohibited(why));
        }
        let mut last = None;
        for addr in allowed {
            match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => return Ok((s, addr)),
                Ok(Err(e)) => last = Some(EgressError::Connect(format!("{addr}: {e}"))),
                Err(_) => last = Some(EgressError::Timeout(addr)),
            }
        }
        Err(last.unwrap_or_else(|| EgressError::Denied("no address".into())))
    }

    /// Replaces every `{{secret:NAME}}` in a header value or frame going to
    /// `target`; `true` when one was. A secret bound to hosts goes only there.
    pub fn substitute(&self, text: &str, target: &Target) -> Result<(String, bool), String> {
        if !text.contains(PLACEHOLDER) {
            return Ok((text.to_string(), false));
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find(PLACEHOLDER) {
            out.push_str(&rest[..start]);
            let after = &rest[start + PLACEHOLDER.len()..];
            let end = after.find("}}").ok_or("unterminated {{secret:…}} placeholder")?;
            let name = &after[..end];
            let value = self.secrets.value(name).ok_or_else(|| format!("no secret named `{name}`"))?;
            if let Some(hosts) = self.secrets.bound_hosts(name) {
                let host = target.url.host().ok_or("no host")?;
                let ok =
                    hosts.iter().filter_map(|h| HostRule::parse(h, true).ok()).any(|r| r.matches(&host, target.port));
                if !ok {
                    return Err(format!("secret `{name}` is bound to {hosts:?}, not {host}:{}", target.port));
                }
            }
            out.push_str(value);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok((out, true))
    }

    /// A URL with secrets substituted in its path only; `true` when one was.
    pub fn substitute_url(&self, url: &str, target: &Target) -> Result<(String, bool), String> {
        if !url.contains(PLACEHOLDER) {
            return Ok((url.to_string(), false));
        }
        let after_scheme = url.find("://").map_or(0, |i| i + 3);
        let path_start = url[after_scheme..].find('/').map_or(url.len(), |i| after_scheme + i);
        let path_end = url[path_start..].find(['?', '#']).map_or(url.len(), |i| path_start + i);
        if url[..path_start].contains(PLACEHOLDER) {
            return Err("a secret cannot go in a URL's host or userinfo".into());
        }
        if url[path_end..].contains(PLACEHOLDER) {
            return Err("a secret cannot go in a query string or fragment (redirects and logs carry them); \
                 send it in a header"
                .into());
        }
        let (path, used) = self.substitute(&url[path_start..path_end], target)?;
        Ok((format!("{}{path}{}", &url[..path_start], &url[path_end..]), used))
    }
}

/// Why a connection was not made.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("outbound connection denied: {0}")]
    Denied(String),
    #[error("outbound connection prohibited: {0}")]
    Prohibited(String),
    #[error("{0}")]
    Dns(String),
    #[error("cannot connect to {0}")]
    Connect(String),
    #[error("connecting to {0} timed out")]
    Timeout(SocketAddr),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn egress(operator: &[&str], public: &[&str]) -> Egress {
        let s = |l: &[&str]| l.iter().map(|h| h.to_string()).collect::<Vec<_>>();
        Egress::new(&s(operator), &s(public), SecretStore::from_pairs([("TOKEN".to_string(), "s3cr3t".to_string())]))
    }

    #[test]
    fn urls_are_parsed_not_split() {
        let e = egress(&["127.0.0.1:8080"], &["api.telegram.org", "*.discord.gg", "gateway.discord.gg"]);
        let ok = |u: &str, p| e.check(u, p).is_ok();
        assert!(
            ok("https://api.telegram.org/x", Protocol::Http) && ok("https://API.telegram.org:443/", Protocol::Http)
        );
        assert!(ok("http://127.0.0.1:8080/", Protocol::Http) && !ok("http://127.0.0.1:8081/", Protocol::Http));
        assert!(ok("wss://gateway-us-east1-b.discord.gg/?v=10", Protocol::WebSocket));
        // The userinfo trick: everything before the last `:` is not the host.
        assert!(!ok("ws://gateway.discord.gg:1@127.0.0.1/", Protocol::WebSocket));
        assert!(!ok("https://user@api.telegram.org/", Protocol::Http));
        assert!(!ok("https://api.telegram.org.evil.example/", Protocol::Http));
        assert!(!ok("https://evildiscord.gg/", Protocol::Http) && !ok("https://discord.gg/", Protocol::Http));
        assert!(
            !ok("ftp://api.telegram.org/", Protocol::Http) && !ok("https://api.telegram.org/", Protocol::WebSocket)
        );
        assert!(!ok("http://[::1]:8080/", Protocol::Http));
    }

    #[test]
    fn plugin_declared_addresses_are_never_granted() {
        let e = egress(&[], &["169.254.169.254", "127.0.0.1:18789", "metadata.google.internal"]);
        assert!(e.check("http://169.254.169.254/latest/meta-data/", Protocol::Http).is_err());
        assert!(e.check("http://127.0.0.1:18789/api/v1/send", Protocol::Http).is_err());
        // A name is granted, but must resolve to public addresses at connect time.
        let t = e.check("http://metadata.google.internal/", Protocol::Http).unwrap();
        assert!(t.public_only);
    }

    #[test]
    fn address_classes() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "224.0.0.1",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a}");
        }
        for a in ["149.154.167.220", "162.159.135.232", "2606:4700::6810:84e5", "8.8.8.8"] {
            assert!(is_public(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn secrets_go_only_in_path_and_headers_and_only_to_their_hosts() {
        let e = egress(&[], &["api.telegram.org", "api.example.com"]);
        let t = |u: &str| e.check(u, Protocol::Http).unwrap();
        let tg = t("https://api.telegram.org/");
        let (u, used) = e.substitute_url("https://api.telegram.org/bot{{secret:TOKEN}}/getMe?x=1", &tg).unwrap();
        assert_eq!((u.as_str(), used), ("https://api.telegram.org/bots3cr3t/getMe?x=1", true));
        assert!(e.substitute_url("https://api.telegram.org/echo?q={{secret:TOKEN}}", &tg).is_err());
        assert!(e.substitute_url("https://api.telegram.org/echo#{{secret:TOKEN}}", &tg).is_err());
        assert!(e.substitute_url("https://{{secret:TOKEN}}@api.telegram.org/", &tg).is_err());
        assert_eq!(e.substitute("Bearer {{secret:TOKEN}}", &tg).unwrap(), ("Bearer s3cr3t".to_string(), true));
        assert!(e.substitute("{{secret:NOPE}}", &tg).is_err());
        // A secret bound to one host is not substituted for another host of the same grant.
        let bound = Egress::new(
            &[],
            &["api.telegram.org".into(), "api.example.com".into()],
            SecretStore::from_bound([(
                "TG".to_string(),
                "t0k".to_string(),
                Some(vec!["api.telegram.org".to_string()]),
            )]),
        );
        assert!(bound.substitute("{{secret:TG}}", &tg).is_ok());
        assert!(bound.substitute("{{secret:TG}}", &t("https://api.example.com/")).is_err());
    }

    #[tokio::test]
    async fn connect_checks_the_address_and_tls_for_secrets() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let wait = Duration::from_secs(2);
        // An operator-listed loopback host: plaintext with a secret is fine (the test fakes).
        let e = egress(&[&format!("127.0.0.1:{port}"), "localhost"], &[]);
        let t = e.check(&format!("http://127.0.0.1:{port}/"), Protocol::Http).unwrap();
        assert!(e.connect(&t, true, wait).await.is_ok());
        // A public-only name that resolves to loopback (rebinding) is refused at connect time.
        let e = egress(&[], &["localhost"]);
        let t = e.check(&format!("http://localhost:{port}/"), Protocol::Http).unwrap();
        assert!(matches!(e.connect(&t, false, wait).await, Err(EgressError::Prohibited(_))));
    }
}
