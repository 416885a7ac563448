//! `chela:plugin/automations` (0.2.0): the calling agent's own scheduled
//! jobs, for the `automations` tool. The host side is an
//! [`AutomationsAccess`] the embedding host provides (the gateway, which
//! holds the scheduler); this crate knows no job. The caller (agent and
//! session) is set by the host per call — a plugin cannot claim to be
//! another agent — and the capability is linked only into agents whose
//! tool policy allows `automations`.
//!
//! Must not: decide which jobs an agent may see, store or remove (the
//! `AutomationsAccess` does, from the core's job checks).

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::automations;
pub use crate::capability::sessions::{BoxFuture, Caller};

/// What the host answers `automations` calls with, for `caller` only
/// (each method is the WIT function of the same name; JSON as it says).
pub trait AutomationsAccess: Send + Sync {
    fn list<'a>(&'a self, caller: &'a Caller) -> BoxFuture<'a, Result<String, String>>;
    fn add<'a>(&'a self, caller: &'a Caller, job: String) -> BoxFuture<'a, Result<String, String>>;
    fn remove<'a>(&'a self, caller: &'a Caller, id: String) -> BoxFuture<'a, Result<bool, String>>;
    fn status<'a>(&'a self, caller: &'a Caller) -> BoxFuture<'a, Result<String, String>>;
    fn get<'a>(&'a self, caller: &'a Caller, id: String) -> BoxFuture<'a, Result<Option<String>, String>>;
    fn update<'a>(&'a self, caller: &'a Caller, id: String, patch: String) -> BoxFuture<'a, Result<String, String>>;
    fn run<'a>(&'a self, caller: &'a Caller, id: String, force: bool) -> BoxFuture<'a, Result<String, String>>;
    fn runs<'a>(&'a self, caller: &'a Caller, id: String, limit: u32) -> BoxFuture<'a, Result<Option<String>, String>>;
    fn next_check<'a>(&'a self, caller: &'a Caller, delay: String) -> BoxFuture<'a, Result<u64, String>>;
    fn wake<'a>(&'a self, caller: &'a Caller, text: String, now: bool) -> BoxFuture<'a, Result<(), String>>;
}

/// An instance's automations: who calls, and the host side that answers.
#[derive(Default)]
pub struct AutomationsState {
    pub(crate) agent: String,
    pub(crate) session_key: String,
    pub(crate) access: Option<Arc<dyn AutomationsAccess>>,
}

impl AutomationsState {
    fn caller(&self) -> Result<(Arc<dyn AutomationsAccess>, Caller), String> {
        let access = self.access.clone().ok_or("automations are not available here (no scheduler in this process)")?;
        if self.session_key.is_empty() {
            return Err("automations are managed from a session's turn".into());
        }
        Ok((access, Caller::new(&self.agent, &self.session_key)))
    }
}

impl automations::Host for AutomationsState {
    async fn list_jobs(&mut self) -> Result<String, String> {
        let (access, caller) = self.caller()?;
        access.list(&caller).await
    }

    async fn add_job(&mut self, job: String) -> Result<String, String> {
        let (access, caller) = self.caller()?;
        access.add(&caller, job).await
    }

    async fn remove_job(&mut self, id: String) -> Result<bool, String> {
        let (access, caller) = self.caller()?;
        access.remove(&caller, id).await
    }

    async fn status(&mut self) -> Result<String, String> {
        let (access, caller) = self.caller()?;
        access.status(&caller).await
    }

    async fn get_job(&mut self, id: String) -> Result<Option<String>, String> {
        let (access, caller) = self.caller()?;
        access.get(&caller, id).await
    }

    async fn update_job(&mut self, id: String, patch: String) -> Result<String, String> {
        let (access, caller) = self.caller()?;
        access.update(&caller, id, patch).await
    }

    async fn run_job(&mut self, id: String, force: bool) -> Result<String, String> {
        let (access, caller) = self.caller()?;
        access.run(&caller, id, force).await
    }

    async fn job_runs(&mut self, id: String, limit: u32) -> Result<Option<String>, String> {
        let (access, caller) = self.caller()?;
        access.runs(&caller, id, limit).await
    }

    async fn next_check(&mut self, delay: String) -> Result<u64, String> {
        let (access, caller) = self.caller()?;
        access.next_check(&caller, delay).await
    }

    async fn wake(&mut self, text: String, now: bool) -> Result<(), String> {
        let (access, caller) = self.caller()?;
        access.wake(&caller, text, now).await
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut AutomationsState,
) -> wasmtime::Result<()> {
    automations::add_to_linker::<T, HasSelf<AutomationsState>>(linker, get)
}
