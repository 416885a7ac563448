//! What every fake shares: a hyper server on 127.0.0.1:0, JSON answers, a
//! minimal HTTP/1.1 client for the deliveries a platform makes to the
//! gateway, and HMAC-SHA256 for the platforms that sign them.
//!
//! Must not: hold platform rules (each fake does).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub type Reply = Response<Full<Bytes>>;

/// Serves `handle` on 127.0.0.1:0 until the returned task is aborted.
pub async fn serve<F, Fut>(handle: F) -> (SocketAddr, tokio::task::JoinHandle<()>)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    serve_on(0, handle).await.expect("bind a fake on 127.0.0.1:0")
}

/// Serves `handle` on `127.0.0.1:port` (0: any free port).
pub async fn serve_on<F, Fut>(port: u16, handle: F) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let fut = handle(req);
                    async move { Ok::<_, Infallible>(fut.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Ok((addr, task))
}

/// A JSON answer with `status` and extra headers.
pub fn json_reply(status: u16, body: &Value, headers: &[(&str, String)]) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) =
            (hyper::header::HeaderName::from_bytes(k.as_bytes()), hyper::header::HeaderValue::from_str(v))
        {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

/// Poison-tolerant lock: a panicking test thread must not wedge the fake.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An HTTP/1.1 answer: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// A minimal HTTP/1.1 request (the platform's delivery to the gateway).
pub async fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Option<Answer> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.split_once('/').map(|(a, p)| (a, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut s = tokio::net::TcpStream::connect(authority).await.ok()?;
    // A caller that names its own `Host` (a rebinding test) sends that one.
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {authority}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    s.write_all(&bytes).await.ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.ok()?;
    let raw = String::from_utf8_lossy(&raw);
    let status = raw.split(' ').nth(1)?.parse().ok()?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Some(Answer { status, body: if chunked { dechunk(body) } else { body.to_string() } })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A JSON POST; the status.
pub async fn post_json(url: &str, headers: &[(&str, &str)], body: &str) -> Option<u16> {
    let mut h = vec![("Content-Type", "application/json")];
    h.extend_from_slice(headers);
    request("POST", url, &h, body.as_bytes()).await.map(|a| a.status)
}

/// Lowercase hex of HMAC-SHA256(key, message).
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// A WebSocket served over hyper's connection upgrade.
pub type WebSocket = tokio_tungstenite::WebSocketStream<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>;

/// Answers a WebSocket handshake with 101 and hands the socket to `serve`
/// once upgraded; `None` when `req` is not a WebSocket handshake. Platforms
/// put sockets on their own hosts; a fake serves them on its one port.
pub fn upgrade<F, Fut>(req: Request<Incoming>, serve: F) -> Option<Reply>
where
    F: FnOnce(WebSocket) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let key = req.headers().get("sec-websocket-key").map(|k| k.as_bytes().to_vec());
    let is_ws =
        req.headers().get("upgrade").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = key.filter(|_| is_ws)?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key);
    tokio::spawn(async move {
        if let Ok(upgraded) = hyper::upgrade::on(req).await {
            let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                hyper_util::rt::TokioIo::new(upgraded),
                tokio_tungstenite::tungstenite::protocol::Role::Server,
                None,
            )
            .await;
            serve(ws).await;
        }
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert("upgrade", hyper::header::HeaderValue::from_static("websocket"));
    h.insert("connection", hyper::header::HeaderValue::from_static("Upgrade"));
    if let Ok(v) = hyper::header::HeaderValue::from_str(&accept) {
        h.insert("sec-websocket-accept", v);
    }
    Some(r)
}

/// A server-sent-events endpoint that answers every request with `stream`
/// delivered in the given pieces: each piece is its own HTTP/1.1 chunk,
/// flushed and followed by a short pause, so the client reads it as one
/// network read. A real provider's stream can be cut anywhere — inside a
/// line, inside a UTF-8 character — and may end lines with CRLF; this
/// serves exactly such cuts. Returns the address and the number of requests.
pub async fn serve_sse_pieces(
    pieces: Vec<Vec<u8>>,
) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>, tokio::task::JoinHandle<()>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind a fake on 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let served = std::sync::Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    let pieces = std::sync::Arc::new(pieces);
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (pieces, count) = (pieces.clone(), count.clone());
            tokio::spawn(async move {
                if read_request(&mut stream).await.is_none() {
                    return;
                }
                count.fetch_add(1, Ordering::SeqCst);
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
                            transfer-encoding: chunked\r\nconnection: close\r\n\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for piece in pieces.iter() {
                    let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
                    chunk.extend_from_slice(piece);
                    chunk.extend_from_slice(b"\r\n");
                    if stream.write_all(&chunk).await.is_err() || stream.flush().await.is_err() {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
                let _ = stream.write_all(b"0\r\n\r\n").await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, served, task)
}

/// Reads one request's head and its `Content-Length` body.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while raw.len() < head_end + length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    Some(raw[head_end..].to_vec())
}

/// `bytes` cut into pieces of 1, 2, 3, 1, 2, 3… bytes: every multi-byte
/// UTF-8 character of the input is cut somewhere.
pub fn ragged_pieces(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut size = 1;
    while !rest.is_empty() {
        let n = size.min(rest.len());
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
        size = size % 3 + 1;
    }
    out
}

/// A `multipart/form-data` body: its text fields as JSON, and its file
/// part (field, file name, content type, bytes) if it has one.
pub type FilePart = (String, String, String, Vec<u8>);

pub async fn multipart(content_type: &str, body: Bytes) -> Result<(Value, Option<FilePart>), String> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| e.to_string())?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, Infallible>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut fields = serde_json::Map::new();
    let mut file = None;
    while let Some(field) = form.next_field().await.map_err(|e| e.to_string())? {
        let name = field.name().unwrap_or_default().to_string();
        match field.file_name().map(str::to_string) {
            Some(file_name) => {
                let mime = field.content_type().map(|m| m.to_string()).unwrap_or_default();
                let bytes = field.bytes().await.map_err(|e| e.to_string())?.to_vec();
                file = Some((name, file_name, mime, bytes));
            }
            None => {
                let text = field.text().await.map_err(|e| e.to_string())?;
                let value = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
                fields.insert(name, value);
            }
        }
    }
    Ok((Value::Object(fields), file))
}

/// `%F0%9F%91%80` → 👀 (a path segment or form value); `None` when the
/// escapes are malformed or the bytes are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
