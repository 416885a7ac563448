//! The `automations` tool's host side (the plugin runtime's
//! `AutomationsAccess`), over this gateway's cron store, for the calling
//! agent only: it lists that agent's jobs, stores a new job only as that
//! agent (checked as `chela cron add` checks one, so a job naming another
//! agent's session or account is refused), and removes only jobs that
//! agent stored.
//!
//! Must not: show, store or remove another agent's job, or touch a job the
//! config declares.

use std::sync::{Arc, Weak};

use chela_core::cron_job::JobSpec;
use chela_plugin::capability::automations::{AutomationsAccess, BoxFuture, Caller};

use super::{add_stored, listing_json, scheduler, CronStore, Source};
use crate::Gateway;

/// The gateway's side of the `automations` capability.
pub(crate) fn automations(gw: Weak<Gateway>) -> Arc<dyn AutomationsAccess> {
    Arc::new(Automations { gw })
}

struct Automations {
    gw: Weak<Gateway>,
}

impl Automations {
    /// Runs `work` on the store off the async workers, with the config in force.
    async fn on_store<R: Send + 'static>(
        &self,
        work: impl FnOnce(&chela_core::config::schema::Config, &CronStore) -> Result<R, String> + Send + 'static,
    ) -> Result<R, String> {
        let gw = self.gw.upgrade().ok_or("the gateway is stopping")?;
        let cfg = gw.config();
        gw.scheduler.store().off_thread(move |store| Ok(work(&cfg, store))).await.map_err(|e| e.to_string())?
    }
}

impl AutomationsAccess for Automations {
    fn list<'a>(&'a self, caller: &'a Caller) -> BoxFuture<'a, Result<String, String>> {
        let agent = caller.agent_id.clone();
        Box::pin(self.on_store(move |cfg, store| {
            let jobs = scheduler::listing(store, cfg).map_err(|e| e.to_string())?;
            let own: Vec<_> =
                jobs.into_iter().filter(|(job, _)| job.agent(cfg).as_deref() == Some(agent.as_str())).collect();
            Ok(listing_json(cfg, &own).to_string())
        }))
    }

    fn add<'a>(&'a self, caller: &'a Caller, job: String) -> BoxFuture<'a, Result<String, String>> {
        let caller = caller.clone();
        Box::pin(self.on_store(move |cfg, store| {
            let mut spec: JobSpec = serde_json::from_str(&job).map_err(|e| format!("not a job: {e}"))?;
            spec.bind_to_caller(&caller.agent_id, &caller.session_key)
                .map_err(|p| format!("{}: {}", p.field, p.message))?;
            let id =
                spec.id.clone().unwrap_or_else(|| format!("job-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
            spec.id = Some(id.clone());
            add_stored(cfg, store, spec).map_err(|e| e.to_string())??;
            tracing::info!(agent = %caller.agent_id, job = %id, "automations tool: job added");
            Ok(id)
        }))
    }

    fn remove<'a>(&'a self, caller: &'a Caller, id: String) -> BoxFuture<'a, Result<bool, String>> {
        let agent = caller.agent_id.clone();
        Box::pin(self.on_store(move |cfg, store| {
            let jobs = super::catalogue(cfg, &store.jobs().map_err(|e| e.to_string())?);
            // Only a stored job of this agent: another agent's is as good as absent.
            let own = jobs
                .iter()
                .any(|j| j.id == id && j.source == Source::Stored && j.agent(cfg).as_deref() == Some(agent.as_str()));
            if !own {
                return Ok(false);
            }
            store.remove(&id).map_err(|e| e.to_string())
        }))
    }
}
