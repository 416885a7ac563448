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
//!
//! Must not: give a tool anything its manifest did not ask for (the host links only granted
//! capabilities).

/// Generated bindings for the `tool-plugin-all` world (`wit/`, 0.2.0:
/// 0.1.0's capabilities and tool contract plus `messaging` and
/// `automations`); a component
/// built with them imports only the interfaces its code calls, so a tool
/// that sends no messages still loads on a 0.1.0 host.
pub mod bindings {
    wit_bindgen::generate!({
        world: "chela:plugin/tool-plugin-all@0.2.0",
        path: "../wit",
        pub_export_macro: true,
        default_bindings_module: "chela_sdk::bindings",
        export_macro_name: "export_tool_bindings",
        generate_all,
    });
    /// The 0.1.0 interfaces without the version in the path (wit-bindgen
    /// adds it because `wit/` holds two versions of `chela:plugin`).
    pub use chela::plugin0_1_0 as plugin;
    /// `messaging` and `automations` (0.2.0).
    pub use chela::plugin0_2_0::{automations, messaging};
}

pub use serde_json;

/// Logging into the host's logs (tagged with plugin and agent by the host).
pub mod log {
    use crate::bindings::plugin::log::{log, Level};

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
    pub use crate::bindings::plugin::kv::{delete, get, list_keys, set};
}

/// Secrets by name; values never enter the plugin.
pub mod secrets {
    pub use crate::bindings::plugin::secrets::{exists, matches, verify_hmac_sha256};

    /// The placeholder the host replaces with secret `name` on egress to an allowed host.
    pub fn placeholder(name: &str) -> String {
        format!("{{{{secret:{name}}}}}")
    }
}

/// The calling agent's sessions (`sessions_*` tools); the host decides
/// what is visible to the session the call runs for.
pub mod sessions {
    pub use crate::bindings::plugin::sessions::{
        history, list_sessions, send, spawn, status, SessionStatus, SessionSummary, SpawnRequest, TranscriptEntry,
    };
}

/// Sending messages into chats (the `message` tool): the host picks only
/// accounts that speak for the calling agent and files from its workspace.
pub mod messaging {
    pub use crate::bindings::messaging::{send, Outbound, Sent};
}

/// The calling agent's own scheduled jobs (the `automations` tool): the
/// host lists, stores and removes only that agent's jobs.
pub mod automations {
    pub use crate::bindings::automations::{
        add_job, get_job, job_runs, list_jobs, next_check, remove_job, run_job, status, update_job, wake,
    };
}

/// Outbound HTTP through `wasi:http` (the host allows only granted hosts).
pub use chela_sdk_http as http;

/// Writing a tool.
pub mod tool {
    pub use crate::bindings::plugin::types::{InvokeContext as Context, ToolError, ToolInfo};

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

    impl<T: Tool> crate::bindings::exports::chela::plugin0_1_0::tool::Guest for Adapter<T> {
        fn describe() -> ToolInfo {
            T::info()
        }

        fn invoke(cx: Context, arguments: String) -> Result<String, ToolError> {
            let args: serde_json::Value = serde_json::from_str(&arguments)
                .map_err(|e| ToolError::InvalidArguments(format!("arguments are not JSON: {e}")))?;
            T::invoke(cx, args)
        }
    }

    /// Where the host mounts the agent's workspace (the only directory a tool sees).
    pub const WORKSPACE: &str = "/workspace";

    /// `notes/a.md` → `/workspace/notes/a.md`; absolute paths must already be
    /// inside. (WASI refuses `..` out of the mount and symlinks leaving it.)
    pub fn workspace_path(path: &str) -> Result<String, ToolError> {
        if path.is_empty() {
            return Err(ToolError::InvalidArguments("`path` is empty".into()));
        }
        if path.starts_with('/') {
            if path == WORKSPACE || path.starts_with(&format!("{WORKSPACE}/")) {
                return Ok(path.to_string());
            }
            return Err(ToolError::Denied(format!("{path} is outside the workspace")));
        }
        Ok(format!("{WORKSPACE}/{path}"))
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
