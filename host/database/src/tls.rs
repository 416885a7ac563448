//! TLS to the database, as the URL's libpq parameters say (users copy these
//! URLs from their provider, so they mean what they mean to `psql`):
//!
//! - `sslmode=disable`: plain TCP.
//! - `allow`, `prefer` (the default): TLS when the server offers it, its
//!   certificate not checked — libpq's meaning, so a URL that works with
//!   `psql` works here.
//! - `require`: TLS or no connection; the certificate is checked against
//!   `sslrootcert` when one is named (libpq then verifies the chain too).
//! - `verify-ca`: TLS, the certificate chained to `sslrootcert` (a PEM file;
//!   `system` or none: the public web roots); `verify-full`: the host name too.
//!
//! Must not: send a password over a connection `sslmode` says must be TLS
//! without TLS (tokio-postgres refuses to, given `require`).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error as TlsError, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// What a URL asks of the connection, once its TLS parameters are taken out.
pub(crate) struct Connection {
    /// The URL as tokio-postgres reads it (`sslmode` mapped, `sslrootcert` removed).
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Encrypted, the server's certificate not checked.
    Nothing,
    /// Chained to a trusted root, whatever host name it names.
    Chain,
    /// Chained and naming the host connected to.
    Full,
}

/// Reads `url` (a `postgres://` URL) with its libpq TLS parameters.
pub(crate) fn connection(url: &str) -> Result<Connection, String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mode = "prefer".to_string();
    let mut root: Option<String> = None;
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "sslmode" => mode = v.into_owned(),
            "sslrootcert" => root = Some(v.into_owned()),
            _ => {
                rest.append_pair(&k, &v);
            }
        }
    }
    let (pg_mode, check) = match mode.as_str() {
        "disable" => ("disable", Check::Nothing),
        "allow" | "prefer" => ("prefer", Check::Nothing),
        "require" if root.is_some() => ("require", Check::Chain),
        "require" => ("require", Check::Nothing),
        "verify-ca" => ("require", Check::Chain),
        "verify-full" => ("require", Check::Full),
        other => {
            return Err(format!(
                "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
            ))
        }
    };
    rest.append_pair("sslmode", pg_mode);
    let config: tokio_postgres::Config =
        format!("{base}?{}", rest.finish()).parse().map_err(|e: tokio_postgres::Error| e.to_string())?;
    let roots = roots(root.as_deref())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let client = match check {
        Check::Full => builder.with_root_certificates(roots).with_no_client_auth(),
        Check::Chain | Check::Nothing => {
            let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| e.to_string())?;
            let verifier = Arc::new(Lenient { chain, provider, check });
            builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth()
        }
    };
    Ok(Connection { config, tls: MakeRustlsConnect::new(client) })
}

/// `sslrootcert`: a PEM file of CA certificates; `system` or none: the public web roots.
fn roots(file: Option<&str>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match file {
        None | Some("system") => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("sslrootcert {path}: {e}"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("sslrootcert {path}: {e}"))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("sslrootcert {path}: no CA certificate in it"));
            }
        }
    }
    Ok(store)
}

/// The checks `prefer`/`require` (none) and `verify-ca` (the chain, not
/// the name) make; the handshake's signatures are verified either way.
#[derive(Debug)]
struct Lenient {
    chain: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
    check: Check,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        if self.check == Check::Nothing {
            return Ok(ServerCertVerified::assertion());
        }
        match self.chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(TlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_modes_map_to_what_tokio_postgres_enforces() {
        let mode = |url: &str| connection(url).map(|c| c.config.get_ssl_mode());
        use tokio_postgres::config::SslMode;
        assert_eq!(mode("postgres://u@h/db"), Ok(SslMode::Prefer));
        assert_eq!(mode("postgres://u@h/db?sslmode=disable"), Ok(SslMode::Disable));
        assert_eq!(mode("postgres://u@h/db?sslmode=verify-full&application_name=chela"), Ok(SslMode::Require));
        assert_eq!(mode("postgres://u@h/db?sslmode=verify-ca&sslrootcert=system"), Ok(SslMode::Require));
        let bad = connection("postgres://u@h/db?sslmode=always").err().unwrap_or_default();
        assert!(bad.contains("sslmode=always"), "{bad}");
        let missing = connection("postgres://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
            .err()
            .unwrap_or_default();
        assert!(missing.contains("sslrootcert /nonexistent/ca.pem"), "{missing}");
    }
}
