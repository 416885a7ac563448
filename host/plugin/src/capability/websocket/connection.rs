//! The host side of one WebSocket connection: the resource a guest's
//! `connection` handle names in its instance's table.
//!
//! Must not: know the WIT bindings (they map their resource onto this type).

use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::capability::egress::Target;

pub struct WsConnection {
    pub(super) stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub(super) closed: bool,
    /// Where it goes: secrets in later frames are checked against it.
    pub(super) target: Target,
}
