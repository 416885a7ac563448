//! Tool policy: which tools an agent's session may use (reference spec §10).
//!
//! The output, [`EffectiveTools`], is what the plugin runtime links: a tool
//! that is not allowed here is never instantiated for that agent nor shown to
//! its model. Everything that decides it lives in this module.
//!
//! Must not: link or run anything (the plugin runtime does, from this module's answers).

mod catalog;
mod exec;
mod exec_approval;
mod matcher;
pub(crate) mod pipeline;

pub use catalog::{normalize_tool_name, profile_allow, ToolCatalog, CORE_TOOLS, GROUPS};
pub use exec::{exec_confinement, exec_unconfined, ExecConfinement, UNCONFINED};
pub use exec_approval::{
    host_exec_policy, judge, Ask, Decision, HostExecPolicy, Security, Tightening, Verdict, HOST_PATH,
};
pub use matcher::ToolMatcher;
pub use pipeline::{
    agent_to_agent_allowed, classify_session, effective_tools, elevated_active, elevated_allowed, elevated_level,
    is_sandboxed, may_attach_files, may_spawn, parse_elevated_level, reach, sandbox_mode, session_kind_for_key,
    session_visible, workspace_access, EffectiveTools, Reach, SessionKind, SessionRights, ToolDecision,
};
