//! `chela:plugin/sessions`: the calling agent's sessions, for the
//! `sessions_*` tools. The host side is a [`SessionsAccess`] the agent
//! runtime provides (this crate knows no session store); it decides
//! visibility and agent-to-agent policy for the calling session, which the
//! host sets — a plugin cannot claim to be another caller. Each function is
//! its own grant (`sessions_list`, `sessions_history`, `sessions_send`,
//! `session_status`, `sessions_spawn`): a call the session's tool policy
//! does not allow is refused here, whichever plugin makes it.
//!
//! Must not: hold a session store or decide visibility itself (the runtime's `SessionsAccess`
//! does).

use std::future::Future;
use std::pin::Pin;

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::plugin::sessions;
pub use crate::bindings::plugin::sessions::{SessionStatus, SessionSummary, SpawnRequest, TranscriptEntry};
use chela_core::policy::SessionRights;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who is asking: the agent and session the tool call runs for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Caller {
    pub agent_id: String,
    pub session_key: String,
    /// The calling turn's own stricter exec rules (`/exec`): what it spawns
    /// runs under them too.
    pub exec: chela_core::policy::Tightening,
}

impl Caller {
    pub fn new(agent_id: &str, session_key: &str) -> Caller {
        Caller { agent_id: agent_id.into(), session_key: session_key.into(), exec: Default::default() }
    }
}

/// What the host answers `sessions` calls with.
pub trait SessionsAccess: Send + Sync {
    fn list<'a>(
        &'a self,
        caller: &'a Caller,
        active_within_minutes: Option<u32>,
    ) -> BoxFuture<'a, Result<Vec<SessionSummary>, String>>;
    fn history<'a>(
        &'a self,
        caller: &'a Caller,
        key: &'a str,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<TranscriptEntry>, String>>;
    /// Queues `text` into `key`; waits up to `wait_seconds` for the reply.
    fn send<'a>(
        &'a self,
        caller: &'a Caller,
        key: &'a str,
        text: &'a str,
        wait_seconds: u32,
    ) -> BoxFuture<'a, Result<Option<String>, String>>;
    fn status<'a>(&'a self, caller: &'a Caller, key: Option<&'a str>) -> BoxFuture<'a, Result<SessionStatus, String>>;
    /// Starts a sub-agent; returns its session key.
    fn spawn<'a>(&'a self, caller: &'a Caller, request: SpawnRequest) -> BoxFuture<'a, Result<String, String>>;
}

/// One function of the interface, each granted by its own tool.
#[derive(Debug, Clone, Copy)]
enum Function {
    List,
    History,
    Send,
    Status,
    Spawn,
}

impl Function {
    fn tool(self) -> &'static str {
        match self {
            Function::List => "sessions_list",
            Function::History => "sessions_history",
            Function::Send => "sessions_send",
            Function::Status => "session_status",
            Function::Spawn => "sessions_spawn",
        }
    }

    fn granted(self, r: &SessionRights) -> bool {
        match self {
            Function::List => r.list,
            Function::History => r.history,
            Function::Send => r.send,
            Function::Status => r.status,
            Function::Spawn => r.spawn,
        }
    }
}

/// An instance's view of the sessions: who calls (agent, session), which
/// functions its policy allows, and the host side that answers.
#[derive(Default)]
pub struct SessionsState {
    pub(crate) plugin: String,
    pub(crate) agent: String,
    pub(crate) session_key: String,
    pub(crate) rights: SessionRights,
    pub(crate) exec: chela_core::policy::Tightening,
    pub(crate) access: Option<std::sync::Arc<dyn SessionsAccess>>,
}

impl SessionsState {
    /// The host side and the caller, if this session's policy allows `f`.
    fn sessions_call(&self, f: Function) -> Result<(std::sync::Arc<dyn SessionsAccess>, Caller), String> {
        let access = self.access.clone().ok_or("the sessions capability is not available here")?;
        if !f.granted(&self.rights) {
            tracing::warn!(plugin = %self.plugin, agent = %self.agent, function = f.tool(), "sessions call refused");
            return Err(format!(
                "`{}` is not allowed for this session (tool policy), so this call is refused",
                f.tool()
            ));
        }
        Ok((access, Caller { exec: self.exec, ..Caller::new(&self.agent, &self.session_key) }))
    }
}

impl sessions::Host for SessionsState {
    async fn list_sessions(&mut self, active_within_minutes: Option<u32>) -> Result<Vec<SessionSummary>, String> {
        let (access, caller) = self.sessions_call(Function::List)?;
        access.list(&caller, active_within_minutes).await
    }

    async fn history(&mut self, key: String, limit: u32) -> Result<Vec<TranscriptEntry>, String> {
        let (access, caller) = self.sessions_call(Function::History)?;
        access.history(&caller, &key, limit).await
    }

    async fn send(&mut self, key: String, text: String, wait_seconds: u32) -> Result<Option<String>, String> {
        let (access, caller) = self.sessions_call(Function::Send)?;
        access.send(&caller, &key, &text, wait_seconds).await
    }

    async fn status(&mut self, key: Option<String>) -> Result<SessionStatus, String> {
        let (access, caller) = self.sessions_call(Function::Status)?;
        access.status(&caller, key.as_deref()).await
    }

    async fn spawn(&mut self, req: SpawnRequest) -> Result<String, String> {
        let (access, caller) = self.sessions_call(Function::Spawn)?;
        access.spawn(&caller, req).await
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut SessionsState,
) -> wasmtime::Result<()> {
    sessions::add_to_linker::<T, HasSelf<SessionsState>>(linker, get)
}
