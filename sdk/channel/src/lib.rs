//! chela-channel-sdk: write a chela channel adapter in Rust.
//!
//! Implement [`Channel`] (the adapter), [`Probe`] (whether an account's
//! credential works, `chela channels status --probe`) and [`Settings`] (the
//! account settings it reads) on one type and call [`export_channel!`]. Outbound HTTP goes through [`http`]; credentials
//! only as `{{secret:NAME}}` placeholders the host fills in on the way to an
//! allowed host. [`split`] cuts long replies at the platform's limit.
//!
//! Must not: hold a credential's value: adapters only write `{{secret:NAME}}`.

/// Generated bindings for the `probing-channel-plugin` world (`wit/`,
/// `chela:plugin@0.2.0`): the
/// adapter and its credential probe; a component imports only the
/// interfaces its code calls.
pub mod bindings {
    wit_bindgen::generate!({
        world: "chela:plugin/probing-channel-plugin@0.2.0",
        path: "../../wit",
        pub_export_macro: true,
        default_bindings_module: "chela_channel_sdk::bindings",
        export_macro_name: "export_channel_bindings",
        generate_all,
    });
    /// The 0.1.0 interfaces (capabilities, shared types) without the version in the path.
    pub use chela::plugin0_1_0 as plugin;
}

pub mod deliver;
pub mod files;
pub mod multipart;
pub mod settings;
pub mod split;
pub mod util;

pub use chela_sdk_http as http;
pub use deliver::{deliver_parts, PartError};
pub use serde_json;
pub use settings::{base_url, parse_settings};
pub use util::{header, hex_decode, monotonic_ms, now_unix_s, percent_encode, query_param, random_fraction, sleep_ms};

pub use bindings::chela::plugin0_2_0::channel_types::{
    AttachmentKind, Download, Identity, InboundAttachment, InboundEvent, MessageRef, OutboundAttachment,
    OutboundMessage,
};
pub use bindings::exports::chela::plugin0_1_0::channel_probe::Guest as Probe;
pub use bindings::exports::chela::plugin0_1_0::channel_settings::Guest as Settings;
pub use bindings::exports::chela::plugin0_2_0::channel_adapter::{
    ChannelInfo, Features, Guest as Channel, WebhookOutcome,
};
pub use bindings::plugin::types::{Delivery, HttpRequest, HttpResponse, Peer, PeerKind};

/// Logging into the host's logs (tagged with the plugin by the host).
pub mod log {
    use crate::bindings::plugin::log::{log, Level};

    pub fn info(msg: &str) {
        log(Level::Info, msg);
    }
    pub fn warn(msg: &str) {
        log(Level::Warn, msg);
    }
}

/// Key-value state, scoped by the host to this plugin and the current account.
pub mod kv {
    pub use crate::bindings::plugin::kv::{delete, get, list_keys, set};
}

/// Secrets by name; values never enter the plugin.
pub mod secrets {
    pub use crate::bindings::plugin::secrets::{exists, matches, verify_hmac_sha256};
}

/// A JSON HTTP answer.
pub fn respond(status: u16, body: &serde_json::Value) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

/// Exports a [`Channel`] implementation as the component's `channel-adapter`.
#[macro_export]
macro_rules! export_channel {
    ($t:ident) => {
        $crate::bindings::export_channel_bindings!($t with_types_in $crate::bindings);
    };
}
