//! `/loop`'s jobs in this gateway's cron store (the agent runtime's
//! `ConversationLoops`): stored as `chela cron add` stores a job, listed and
//! removed by the conversation's name prefix (core's `conversation_loop`).
//!
//! Must not: list or remove a job of another conversation, or one that is
//! not stored (a config job is the config's).

use std::sync::{Arc, Weak};

use chela_agent::loops::{ConversationLoops, LoopListing};
use chela_core::conversation_loop::{name_prefix, stops};
use chela_core::cron_job::JobSpec;
use chela_core::schedule::ScheduleSpec;

use super::{add_stored, scheduler, Source};
use crate::Gateway;

/// The gateway's side of `/loop`.
pub(crate) fn loops(gw: Weak<Gateway>) -> Arc<dyn ConversationLoops> {
    Arc::new(Loops { gw })
}

struct Loops {
    gw: Weak<Gateway>,
}

impl Loops {
    fn gateway(&self) -> Result<Arc<Gateway>, String> {
        self.gw.upgrade().ok_or_else(|| "the gateway is stopping".to_string())
    }
}

impl ConversationLoops for Loops {
    fn start(&self, job: JobSpec) -> Result<(), String> {
        let gw = self.gateway()?;
        add_stored(&gw.config(), gw.scheduler.store(), job).map_err(|e| e.to_string())?
    }

    fn list(&self, session_key: &str) -> Result<Vec<LoopListing>, String> {
        let gw = self.gateway()?;
        let cfg = gw.config();
        let prefix = name_prefix(session_key);
        let jobs = scheduler::listing(gw.scheduler.store(), &cfg).map_err(|e| e.to_string())?;
        Ok(jobs
            .into_iter()
            .filter(|(job, _)| job.source == Source::Stored && job.name().starts_with(&prefix))
            .map(|(job, st)| LoopListing {
                name: job.name(),
                every_ms: match job.schedule() {
                    ScheduleSpec::Every { every_ms, .. } => every_ms,
                    _ => None,
                },
                pacing: match &job.kind {
                    super::JobKind::Spec(spec) => spec.pacing.clone().map(|p| (p.min, p.max)),
                    super::JobKind::Heartbeat(_) => None,
                },
                enabled: job.enabled() && st.auto_disabled.is_none(),
                next_run_at_ms: st.next_run_at_ms,
                last_status: st.last_status,
            })
            .collect())
    }

    fn stop(&self, session_key: &str, wanted: Option<&str>) -> Result<Vec<String>, String> {
        let gw = self.gateway()?;
        let store = gw.scheduler.store();
        let mut stopped = Vec::new();
        for job in store.jobs().map_err(|e| e.to_string())? {
            let (Some(id), Some(name)) = (job.id.as_deref(), job.name.as_deref()) else { continue };
            if stops(session_key, name, wanted) && store.remove(id).map_err(|e| e.to_string())? {
                stopped.push(name.to_string());
            }
        }
        Ok(stopped)
    }
}
