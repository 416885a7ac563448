//! Configuration: reading `chela.json` (JSON5, OpenClaw's schema), finding it
//! on disk, and validating what it means.
//!
//! Must not: hold rules itself; each concept has its own module below.

pub mod anthropic_defaults;
pub mod de;
pub mod diagnostic;
pub mod edit;
pub mod env;
pub mod include;
pub mod instead;
pub mod load;
pub mod openclaw_keys;
pub mod paths;
pub mod plugin_entry;
pub mod schema;
pub mod source;
pub mod validate;

pub use diagnostic::{Diagnostic, Severity};
pub use load::{load_file, load_str, ConfigError, Loaded};
pub use plugin_entry::EnvVars;
pub use schema::Config;
