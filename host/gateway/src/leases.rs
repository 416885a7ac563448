//! Which singleton connections this replica owns, on a shared database: a
//! polling or socket account is served by one replica at a time, through a
//! lease (`chela_database` leases) this keeper takes and renews.
//!
//! Every `RENEW` the keeper renews what it holds and tries what it wants;
//! a lease is `TTL` long, so a replica that dies is replaced within
//! `TTL + RENEW` (8 s). A renewal that fails (the database away) counts as
//! lost at once: the poller stops, and nobody else can take the lease
//! before its TTL runs out, so two replicas never both believe they own it.
//! A clean stop gives its leases back. Without a database there is no
//! keeper: the one process owns everything.
//!
//! The keeper also holds this replica's own lease (`replica:<owner>`) for
//! as long as it runs: it says the replica is alive, so the events it
//! accepted into the shared journal stay its own (`takeover.rs` claims a
//! gone replica's).
//!
//! Must not: poll or connect (the supervisor does, while its lease says so).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chela_database::Database;
use tokio::sync::watch;

/// How long a lease lasts unless renewed.
pub(crate) const TTL: Duration = Duration::from_secs(6);
/// How often leases are renewed and wanted ones tried.
pub(crate) const RENEW: Duration = Duration::from_secs(2);

pub(crate) struct LeaseKeeper {
    db: Arc<Database>,
    /// This replica, as lease rows name it (host, pid, a random part).
    owner: String,
    /// Wanted leases, each telling its poller whether it is held.
    wanted: Mutex<BTreeMap<String, watch::Sender<bool>>>,
    /// Wakes the keeper early (a new lease wanted).
    nudge: tokio::sync::Notify,
    /// Why the last round could not reach the database (`None`: it could).
    unreachable: Mutex<Option<String>>,
    /// Whether this replica's own lease is held (wanted for its whole life).
    alive: watch::Receiver<bool>,
}

impl LeaseKeeper {
    pub(crate) fn new(db: Arc<Database>) -> Arc<LeaseKeeper> {
        let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "chela".into());
        let random = uuid::Uuid::new_v4().simple().to_string();
        let owner = format!("{host}/{}/{}", std::process::id(), &random[..8]);
        let (alive_tx, alive) = watch::channel(false);
        let wanted = BTreeMap::from([(chela_database::replica_lease(&owner), alive_tx)]);
        Arc::new(LeaseKeeper {
            db,
            owner,
            wanted: Mutex::new(wanted),
            nudge: tokio::sync::Notify::new(),
            unreachable: Mutex::default(),
            alive,
        })
    }

    /// Takes this replica's lease (and anything wanted already) once, before it serves.
    pub(crate) async fn begin(&self) {
        self.round().await;
    }

    /// Whether this replica's own lease is held now: while it is not, what it
    /// accepted may be claimed by another replica.
    pub(crate) fn alive(&self) -> bool {
        *self.alive.borrow()
    }

    pub(crate) fn owner(&self) -> &str {
        &self.owner
    }

    fn wanted(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, watch::Sender<bool>>> {
        self.wanted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks for lease `name`; the receiver says whether it is held. Dropping
    /// every receiver of a lease gives it back.
    pub(crate) fn want(&self, name: &str) -> watch::Receiver<bool> {
        let rx = self.wanted().entry(name.to_string()).or_insert_with(|| watch::channel(false).0).subscribe();
        self.nudge.notify_one();
        rx
    }

    /// Why the database could not be reached on the last round, if it could not.
    pub(crate) fn database_error(&self) -> Option<String> {
        self.unreachable.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The leases this replica holds now.
    pub(crate) fn held(&self) -> Vec<String> {
        self.wanted().iter().filter(|(_, tx)| *tx.borrow()).map(|(n, _)| n.clone()).collect()
    }

    /// Renews and takes leases until `stop`, then gives back what it holds.
    pub(crate) async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            self.round().await;
            tokio::select! {
                _ = tokio::time::sleep(RENEW) => {}
                _ = self.nudge.notified() => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        self.release_all().await;
    }

    async fn round(&self) {
        let unwanted: Vec<String> = {
            let mut wanted = self.wanted();
            let gone: Vec<String> =
                wanted.iter().filter(|(_, tx)| tx.receiver_count() == 0).map(|(n, _)| n.clone()).collect();
            for n in &gone {
                wanted.remove(n);
            }
            gone
        };
        for n in unwanted {
            if let Err(e) = self.db.release_lease(&n, &self.owner).await {
                tracing::warn!(lease = %n, error = %e, "could not give a lease back; it expires");
            }
        }
        let names: Vec<(String, bool)> = self.wanted().iter().map(|(n, tx)| (n.clone(), *tx.borrow())).collect();
        let mut unreachable = None;
        for (name, was) in names {
            let now = match self.db.take_lease(&name, &self.owner, TTL).await {
                Ok(held) => held,
                Err(e) => {
                    if was {
                        tracing::warn!(lease = %name, error = %e, "lease not renewed; its connection stops");
                    }
                    unreachable = Some(e.to_string());
                    false
                }
            };
            if now != was {
                tracing::info!(lease = %name, owner = %self.owner, held = now, "lease {}", if now { "taken" } else { "lost" });
            }
            if let Some(tx) = self.wanted().get(&name) {
                tx.send_replace(now);
            }
        }
        *self.unreachable.lock().unwrap_or_else(|p| p.into_inner()) = unreachable;
    }

    /// Gives back every lease held (a clean stop: the next owner need not wait).
    pub(crate) async fn release_all(&self) {
        let held = self.held();
        for name in held {
            if let Some(tx) = self.wanted().get(&name) {
                tx.send_replace(false);
            }
            if let Err(e) = self.db.release_lease(&name, &self.owner).await {
                tracing::warn!(lease = %name, error = %e, "could not give a lease back; it expires");
            }
        }
    }
}

/// The cron scheduler's lease (jobs and heartbeats run on one replica).
pub(crate) const SCHEDULER: &str = "scheduler";

/// The lease of a polling or socket account.
pub(crate) fn poll_lease(channel: &str, account: &str) -> String {
    format!("poll:{channel}/{account}")
}
