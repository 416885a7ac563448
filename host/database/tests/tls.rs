//! TLS to a real PostgreSQL server that refuses plain connections, with a
//! certificate for `localhost` from its own CA: each libpq `sslmode` does
//! what it does for `psql` — `prefer` (the default) and `require` encrypt,
//! `verify-ca` checks the chain, `verify-full` the host name too — and a
//! connection the server must refuse or the certificate fails is an error
//! naming the database, not a silent plain-text fallback.

use chela_database::Database;
use chela_fakes::postgres::Cluster;

/// Connects (off the async workers) and asks the server whether this session is TLS.
async fn tls_in_use(url: String) -> Result<bool, String> {
    let db = tokio::task::spawn_blocking(move || Database::connect(&url)).await.unwrap().map_err(|e| e.to_string())?;
    db.run(|c| async move {
        let row = c.query_one("select ssl from pg_stat_ssl where pid = pg_backend_pid()", &[]).await?;
        Ok(row.get::<_, bool>(0))
    })
    .await
    .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sslmode_connects_as_libpq_would_and_never_in_plain_text_when_told_not_to() {
    let db = Cluster::start_tls();
    let port = db.port;
    let ca = db.ca_file().display().to_string();
    let url = |host: &str, query: &str| format!("postgres://chela@{host}:{port}/chela{query}");

    // The default (prefer) and require: encrypted, certificate unchecked.
    assert_eq!(tls_in_use(url("127.0.0.1", "")).await, Ok(true));
    assert_eq!(tls_in_use(url("127.0.0.1", "?sslmode=require")).await, Ok(true));
    // verify-ca: the chain to the CA, whatever name the certificate has.
    assert_eq!(tls_in_use(url("127.0.0.1", &format!("?sslmode=verify-ca&sslrootcert={ca}"))).await, Ok(true));
    // verify-full: the name too — right for localhost, wrong for 127.0.0.1.
    assert_eq!(tls_in_use(url("localhost", &format!("?sslmode=verify-full&sslrootcert={ca}"))).await, Ok(true));
    let wrong_name = tls_in_use(url("127.0.0.1", &format!("?sslmode=verify-full&sslrootcert={ca}"))).await;
    let why = wrong_name.expect_err("a certificate for localhost accepted for 127.0.0.1");
    assert!(why.contains("127.0.0.1") && why.to_lowercase().contains("certificate"), "{why}");
    // verify-full against the public roots: this CA is not one of them.
    let unknown = tls_in_use(url("localhost", "?sslmode=verify-full")).await.expect_err("a private CA trusted");
    assert!(unknown.to_lowercase().contains("certificate"), "{unknown}");
    // require with sslrootcert checks the chain (as libpq does).
    let other_ca = db.dir().join("garbled.crt");
    std::fs::write(&other_ca, "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n").unwrap();
    let bad_root = tls_in_use(url("localhost", &format!("?sslmode=require&sslrootcert={}", other_ca.display())))
        .await
        .expect_err("a garbled CA file accepted");
    assert!(bad_root.contains("sslrootcert"), "{bad_root}");
    // disable: plain text, which this server refuses — an error, not a hang.
    let plain = tls_in_use(url("127.0.0.1", "?sslmode=disable")).await.expect_err("plain text accepted");
    assert!(plain.contains("127.0.0.1"), "the error names the database: {plain}");
}
