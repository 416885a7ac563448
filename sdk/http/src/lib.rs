//! Outbound HTTP through `wasi:http` for chela plugins: the host allows
//! only granted hosts and substitutes `{{secret:NAME}}` placeholders.
//!
//! Must not: bypass `wasi:http` or resolve secrets in the guest.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// A response: status, headers, body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// Sends a request. `url` and header values may contain `{{secret:NAME}}`.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Result<Response, String> {
    let (scheme, rest) = url.split_once("://").ok_or("the URL needs a scheme (http:// or https://)")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let fields = Fields::new();
    for (k, v) in headers {
        fields.append(k, v.as_bytes()).map_err(|e| format!("header {k}: {e:?}"))?;
    }
    let req = OutgoingRequest::new(fields);
    let method = match method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_string()),
    };
    req.set_method(&method).map_err(|_| "invalid method")?;
    let scheme = if scheme.eq_ignore_ascii_case("https") { Scheme::Https } else { Scheme::Http };
    req.set_scheme(Some(&scheme)).map_err(|_| "invalid scheme")?;
    req.set_authority(Some(authority)).map_err(|_| "invalid authority")?;
    req.set_path_with_query(Some(path)).map_err(|_| "invalid path")?;
    let out_body = req.body().map_err(|_| "request body already taken")?;
    // Send first, then stream the body: the host buffers only a little of an
    // outgoing body before the request is under way.
    let fut = outgoing_handler::handle(req, None).map_err(|e| format!("request refused: {e:?}"))?;
    if let Some(bytes) = body {
        let stream = out_body.write().map_err(|_| "body stream")?;
        for chunk in bytes.chunks(4096) {
            stream.blocking_write_and_flush(chunk).map_err(|e| format!("write body: {e:?}"))?;
        }
        drop(stream);
    }
    OutgoingBody::finish(out_body, None).map_err(|e| format!("finish body: {e:?}"))?;
    fut.subscribe().block();
    let resp = fut
        .get()
        .ok_or("no response")?
        .map_err(|_| "response already taken")?
        .map_err(|e| format!("request failed: {e:?}"))?;
    let status = resp.status();
    let headers = resp.headers().entries();
    let body = resp.consume().map_err(|_| "response body already taken")?;
    let stream = body.stream().map_err(|_| "response stream")?;
    let mut buf = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => buf.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(e) => return Err(format!("read body: {e:?}")),
        }
    }
    Ok(Response { status, headers, body: buf })
}
