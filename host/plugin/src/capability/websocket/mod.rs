//! `chela:plugin/websocket`: a WebSocket client for adapters that hold a
//! socket (Discord's gateway, Slack Socket Mode). WASI has none, so the host
//! owns the connection: the URL is checked by the same egress policy as
//! HTTP (`egress.rs`: parsed, no userinfo, exact host and port, the connected
//! address checked), header values, the path and text frames may carry
//! `{{secret:NAME}}` (substituted here, so the token never enters the guest;
//! a plaintext `ws://` socket only to operator-allowed loopback), messages
//! are size-limited, and an instance holds only a few connections.
//!
//! Must not: open a socket the egress policy refuses, or let a guest hold more than its few
//! connections.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as Frame;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::egress::{Egress, Protocol};
use crate::bindings::plugin::websocket::{self, Message};

pub(crate) mod connection;
pub use connection::WsConnection;

/// Largest message either way.
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;
/// Connections one instance may hold at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Longest connecting (TCP, TLS, upgrade) may take.
pub const CONNECT_WAIT: Duration = Duration::from_secs(20);
/// Longest a single `receive` waits.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// What a `websocket` call sees: the instance's resource table (where its
/// connections live), its egress policy and its count of open connections.
pub struct WsView<'a> {
    pub table: &'a mut ResourceTable,
    pub egress: &'a Egress,
    pub open: &'a mut usize,
}

impl WsView<'_> {
    fn connection(&mut self, r: &Resource<WsConnection>) -> Result<&mut WsConnection, String> {
        self.table.get_mut(r).map_err(|e| e.to_string())
    }
}

struct WsData;

impl HasData for WsData {
    type Data<'a> = WsView<'a>;
}

impl websocket::HostConnection for WsView<'_> {
    async fn connect(&mut self, url: String, headers: Vec<(String, String)>) -> Result<Resource<WsConnection>, String> {
        // The URL (often an upstream's answer, such as Discord's READY) is checked by the URL parser.
        let target = self.egress.check(&url, Protocol::WebSocket)?;
        if *self.open >= MAX_CONNECTIONS {
            return Err(format!("at most {MAX_CONNECTIONS} WebSocket connections per plugin instance"));
        }
        let (url, mut carries_secret) = self.egress.substitute_url(&url, &target)?;
        let mut request = url.as_str().into_client_request().map_err(|e| format!("bad WebSocket URL: {e}"))?;
        for (k, v) in headers {
            let (v, used) = self.egress.substitute(&v, &target)?;
            carries_secret |= used;
            let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| format!("header `{k}`: {e}"))?;
            let value = v.parse().map_err(|_| format!("header `{k}` has an invalid value"))?;
            request.headers_mut().insert(name, value);
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let host = target.host();
        // Frames may carry secrets later (Discord's IDENTIFY): a plaintext socket only to loopback.
        carries_secret |= !target.tls;
        let (tcp, _) = self.egress.connect(&target, carries_secret, CONNECT_WAIT).await.map_err(|e| e.to_string())?;
        let handshake = tokio_tungstenite::client_async_tls_with_config(request, tcp, Some(config), None);
        let (stream, _) = tokio::time::timeout(CONNECT_WAIT, handshake)
            .await
            .map_err(|_| format!("connecting to {host} timed out"))?
            .map_err(|e| format!("cannot connect to {host}: {e}"))?;
        *self.open += 1;
        self.table.push(WsConnection { stream, closed: false, target }).map_err(|e| e.to_string())
    }

    async fn send(&mut self, this: Resource<WsConnection>, msg: Message) -> Result<(), String> {
        // Protocols that log in over the socket (Discord's IDENTIFY) carry
        // `{{secret:NAME}}` in a text frame; the connection's host is allowed.
        let target = self.connection(&this)?.target.clone();
        let msg = match msg {
            Message::Text(t) => Message::Text(self.egress.substitute(&t, &target)?.0),
            other => other,
        };
        let conn = self.connection(&this)?;
        let frame = match msg {
            Message::Text(t) if t.len() <= MAX_MESSAGE_BYTES => Frame::text(t),
            Message::Binary(b) if b.len() <= MAX_MESSAGE_BYTES => Frame::binary(b),
            Message::Close((code, reason)) => {
                Frame::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.into() }))
            }
            _ => return Err(format!("message larger than {MAX_MESSAGE_BYTES} bytes")),
        };
        conn.stream.send(frame).await.map_err(|e| e.to_string())
    }

    async fn receive(&mut self, this: Resource<WsConnection>, timeout_ms: u32) -> Result<Option<Message>, String> {
        let wait = Duration::from_millis(u64::from(timeout_ms)).min(MAX_WAIT);
        let conn = self.connection(&this)?;
        if conn.closed {
            return Err("the connection is closed".into());
        }
        loop {
            let next = match tokio::time::timeout(wait, conn.stream.next()).await {
                Err(_) => return Ok(None),
                Ok(n) => n,
            };
            return match next {
                None => {
                    conn.closed = true;
                    Ok(Some(Message::Close((1006, "connection lost".into()))))
                }
                Some(Err(e)) => {
                    conn.closed = true;
                    Err(e.to_string())
                }
                Some(Ok(Frame::Text(t))) => Ok(Some(Message::Text(t.to_string()))),
                Some(Ok(Frame::Binary(b))) => Ok(Some(Message::Binary(b.to_vec()))),
                Some(Ok(Frame::Close(frame))) => {
                    conn.closed = true;
                    let (code, reason) =
                        frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new()));
                    Ok(Some(Message::Close((code, reason))))
                }
                // Pings are answered by the library; pongs and raw frames are not messages.
                Some(Ok(_)) => continue,
            };
        }
    }

    async fn close(&mut self, this: Resource<WsConnection>, code: u16, reason: String) {
        if let Ok(conn) = self.connection(&this) {
            if !conn.closed {
                conn.closed = true;
                let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                let _ = tokio::time::timeout(Duration::from_secs(2), conn.stream.close(Some(frame))).await;
            }
        }
    }

    async fn drop(&mut self, this: Resource<WsConnection>) -> wasmtime::Result<()> {
        let conn = self.table.delete(this)?;
        *self.open = self.open.saturating_sub(1);
        drop(conn);
        Ok(())
    }
}

impl websocket::Host for WsView<'_> {}

pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: fn(&mut T) -> WsView<'_>) -> wasmtime::Result<()> {
    websocket::add_to_linker::<T, WsData>(linker, get)
}
