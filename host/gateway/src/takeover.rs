//! What a replica that is gone left in the shared journal, taken over: its
//! accepted events that were not finished run here, its journaled replies
//! that were not delivered are sent from here — the files' journal's
//! recovery at start, done continuously across replicas.
//!
//! Every `RENEW`, while this replica's own lease is held (a replica that
//! is not sure it is alive must not take work), it claims the rows of
//! owners whose replica lease ran out (`chela_database` gives each row to
//! one claimer) and resumes them in journal order; per-session order and
//! one turn at a time hold through the session's turn lock. It also counts
//! the journal's depth for `/readyz` and the metrics, and prunes finished
//! rows past their retention once an hour.
//!
//! Must not: claim while this replica's lease is not held, or decide how a
//! claimed event runs (`intake.rs` resumes it like a recovered one).

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::leases::RENEW;
use crate::Gateway;

const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Claims and resumes what gone replicas left, until `stop`.
pub(crate) async fn run(gw: Weak<Gateway>, mut stop: watch::Receiver<bool>) {
    let mut pruned: Option<Instant> = None;
    loop {
        {
            let Some(gw) = gw.upgrade() else { return };
            gw.take_over().await;
            if pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                gw.prune_journal().await;
                pruned = Some(Instant::now());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RENEW) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

impl Gateway {
    /// One round: count the depth, then claim and resume (when alive).
    async fn take_over(self: &Arc<Self>) {
        let (Some(shared), Some(keeper)) = (self.journal.as_shared(), &self.leases) else { return };
        match shared.db.journal_depth().await {
            Ok(d) => *shared.depth.lock().unwrap_or_else(|p| p.into_inner()) = d,
            Err(e) => tracing::debug!(error = %e, "journal depth not counted"),
        }
        if !keeper.alive() || self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let claimed = match shared.db.journal_claim(&shared.owner).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "nothing claimed this round");
                return;
            }
        };
        if claimed.unreadable > 0 {
            tracing::warn!(
                rows = claimed.unreadable,
                "journal rows of a gone replica unreadable; finished without a reply"
            );
        }
        if claimed.unfinished.is_empty() && claimed.undelivered.is_empty() {
            return;
        }
        tracing::info!(
            events = claimed.unfinished.len(),
            replies = claimed.undelivered.len(),
            "taking over what a gone replica left"
        );
        self.metrics.add("chela_takeovers_total", &[], (claimed.unfinished.len() + claimed.undelivered.len()) as u64);
        self.resume(chela_journal::Recovered {
            unfinished: claimed.unfinished,
            undelivered: claimed.undelivered,
            skipped: Vec::new(),
        });
    }

    async fn prune_journal(&self) {
        let Some(shared) = self.journal.as_shared() else { return };
        match shared.db.journal_prune(chela_database::RETAIN).await {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "finished journal rows past their retention pruned"),
            Err(e) => tracing::debug!(error = %e, "journal not pruned this time"),
        }
    }
}
