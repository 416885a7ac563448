//! HTTP replies: the body type every route answers with, JSON and text
//! answers, a streamed body for SSE, the guard's refusals rendered, and the
//! bounded read of a request body.
//!
//! Must not: route, authorize or know any endpoint; it only shapes bytes.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Response, StatusCode};

/// How long a client may take to send a request's body.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A response body: whole (most answers) or streamed (SSE).
pub(crate) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::convert::Infallible>;
pub(crate) type Reply = Response<Body>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

/// A receiving end of a channel of pieces (bounded or not).
trait Pieces: Send + Unpin + 'static {
    fn poll_piece(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Bytes>>;
}

impl Pieces for tokio::sync::mpsc::UnboundedReceiver<Bytes> {
    fn poll_piece(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Bytes>> {
        self.poll_recv(cx)
    }
}

impl Pieces for tokio::sync::mpsc::Receiver<Bytes> {
    fn poll_piece(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Bytes>> {
        self.poll_recv(cx)
    }
}

/// A body that sends each piece given to the channel as it comes, and ends
/// when every sender is dropped. Over a bounded channel the sender sees a
/// client that reads too slowly.
struct ChannelBody<P>(P);

impl<P: Pieces> hyper::body::Body for ChannelBody<P> {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.0.poll_piece(cx).map(|piece| piece.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

pub(crate) fn streaming(
    status: StatusCode,
    content_type: &'static str,
    pieces: tokio::sync::mpsc::UnboundedReceiver<Bytes>,
) -> Reply {
    piece_stream(status, content_type, ChannelBody(pieces))
}

/// An event stream from a bounded channel (the live feed).
pub(crate) fn event_stream(pieces: tokio::sync::mpsc::Receiver<Bytes>) -> Reply {
    piece_stream(StatusCode::OK, "text/event-stream", ChannelBody(pieces))
}

fn piece_stream<P: Pieces>(status: StatusCode, content_type: &'static str, body: ChannelBody<P>) -> Reply {
    let mut r = Response::new(body.boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static(content_type));
    r.headers_mut().insert("cache-control", hyper::header::HeaderValue::from_static("no-cache"));
    r
}

pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Reply {
    let mut r = Response::new(full(value.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    r
}

pub(crate) fn error(status: StatusCode, message: &str) -> Reply {
    json(status, &serde_json::json!({ "error": message }))
}

/// A request the guard turned away, as a JSON error (with `Retry-After` for a lockout).
pub(crate) fn refused(r: crate::guard::Refusal) -> Reply {
    let mut reply = error(r.status, &r.message);
    if let Some(v) = r.retry_after.and_then(|d| hyper::header::HeaderValue::from_str(&d.as_secs().to_string()).ok()) {
        reply.headers_mut().insert("retry-after", v);
    }
    reply
}

pub(crate) fn text(status: StatusCode, body: String, content_type: &'static str) -> Reply {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static(content_type));
    r
}

/// A request body, at most `limit` bytes and within [`BODY_TIMEOUT`].
pub(crate) async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, Reply> {
    read_body_or_refusal(body, limit).await.map_err(refused)
}

/// [`read_body`], the refusal left for the caller to shape (the OpenAI API answers in OpenAI's error form).
pub(crate) async fn read_body_or_refusal(body: Incoming, limit: usize) -> Result<Bytes, crate::guard::Refusal> {
    use crate::guard::Refusal;
    let read = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, limit).collect()).await;
    match read {
        Err(_) => {
            Err(Refusal::new(StatusCode::REQUEST_TIMEOUT, format!("request body not received within {BODY_TIMEOUT:?}")))
        }
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(_)) => {
            Err(Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, format!("request body larger than {limit} bytes")))
        }
    }
}
