//! chela-sdk: write a chela tool plugin in a short Rust file.
//!
//! ```ignore
//! use chela_sdk::tool::{self, Context, ToolError, ToolInfo};
//!
//! struct Echo;
//! impl tool::Tool for Echo {
//!     fn info() -> ToolInfo { ToolInfo::new("echo", "Repeats its input.", r#"{"type":"object"}"#) }
//!     fn invoke(_cx: Context, args: serde_json::Value) -> Result<String, ToolError> { Ok(args.to_string()) }
//! }
//! chela_sdk::export_tool!(Echo);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2` and drop the
//! `.wasm` into the gateway's plugins dir. Only the capabilities the plugin
//! actually calls end up as imports; the host grants them per agent.

/// Generated bindings for the `tool-plugin-all` world (`wit/`); a component
/// built with them imports only the interfaces its code calls.
pub mod bindings {
    wit_bindgen::generate!({
        world: "tool-plugin-all",
        path: "../wit",
        pub_export_macro: true,
        default_bindings_module: "chela_sdk::bindings",
        export_macro_name: "export_tool_bindings",
        generate_all,
    });
}

pub use serde_json;

/// Logging into the host's logs (tagged with plugin and agent by the host).
pub mod log {
    use crate::bindings::chela::plugin::log::{log, Level};

    pub fn info(msg: &str) {
        log(Level::Info, msg);
    }
    pub fn warn(msg: &str) {
        log(Level::Warn, msg);
    }
    pub fn error(msg: &str) {
        log(Level::Error, msg);
    }
}

/// Persistent key-value state scoped to this plugin (and agent or account).
pub mod kv {
    pub use crate::bindings::chela::plugin::kv::{delete, get, list_keys, set};
}

/// Secrets by name; values never enter the plugin.
pub mod secrets {
    pub use crate::bindings::chela::plugin::secrets::{exists, matches, verify_hmac_sha256};

    /// The placeholder the host replaces with secret `name` on egress to an allowed host.
    pub fn placeholder(name: &str) -> String {
        format!("{{{{secret:{name}}}}}")
    }
}

/// The calling agent's sessions (`sessions_*` tools); the host decides
/// what is visible to the session the call runs for.
pub mod sessions {
    pub use crate::bindings::chela::plugin::sessions::{history, list_sessions, send, SessionSummary, TranscriptEntry};
}

/// Outbound HTTP through `wasi:http` (the host allows only granted hosts).
pub mod http {
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
        if let Some(bytes) = body {
            let stream = out_body.write().map_err(|_| "body stream")?;
            for chunk in bytes.chunks(4096) {
                stream.blocking_write_and_flush(chunk).map_err(|e| format!("write body: {e:?}"))?;
            }
            drop(stream);
        }
        let fut = outgoing_handler::handle(req, None).map_err(|e| format!("request refused: {e:?}"))?;
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
}

/// Writing a tool.
pub mod tool {
    pub use crate::bindings::chela::plugin::types::{InvokeContext as Context, ToolError, ToolInfo};

    impl ToolInfo {
        /// A tool description with no HTTP hosts.
        pub fn new(name: &str, description: &str, parameters_schema: &str) -> ToolInfo {
            ToolInfo {
                name: name.to_string(),
                description: description.to_string(),
                parameters_schema: parameters_schema.to_string(),
                http_hosts: Vec::new(),
            }
        }

        pub fn with_http_hosts(mut self, hosts: &[&str]) -> ToolInfo {
            self.http_hosts = hosts.iter().map(|h| h.to_string()).collect();
            self
        }
    }

    /// Implement this and call [`crate::export_tool!`].
    pub trait Tool {
        fn info() -> ToolInfo;
        /// `args` is the parsed `arguments` object.
        fn invoke(cx: Context, args: serde_json::Value) -> Result<String, ToolError>;
    }

    /// Adapts a [`Tool`] to the generated export trait.
    pub struct Adapter<T>(core::marker::PhantomData<T>);

    impl<T: Tool> crate::bindings::exports::chela::plugin::tool::Guest for Adapter<T> {
        fn describe() -> ToolInfo {
            T::info()
        }

        fn invoke(cx: Context, arguments: String) -> Result<String, ToolError> {
            let args: serde_json::Value = serde_json::from_str(&arguments)
                .map_err(|e| ToolError::InvalidArguments(format!("arguments are not JSON: {e}")))?;
            T::invoke(cx, args)
        }
    }

    /// A string argument, or `InvalidArguments` naming it.
    pub fn str_arg<'a>(args: &'a serde_json::Value, name: &str) -> Result<&'a str, ToolError> {
        args.get(name)
            .and_then(|v| v.as_str())
            .ok_or_else(|| ToolError::InvalidArguments(format!("`{name}` (a string) is required")))
    }
}

/// Exports a [`tool::Tool`] implementation as the component's `tool` interface.
#[macro_export]
macro_rules! export_tool {
    ($t:ty) => {
        type __ChelaToolAdapter = $crate::tool::Adapter<$t>;
        $crate::bindings::export_tool_bindings!(__ChelaToolAdapter with_types_in $crate::bindings);
    };
}
