//! Supervised connections: an account is alive when it last *worked* (a
//! poll that returned, a webhook delivery the adapter accepted), not when a
//! socket says "connected". Each polling account has a supervisor loop: a
//! poll that fails or stops answering marks the account degraded and the
//! loop backs off with jitter. A poll that did not return in time (or
//! trapped) has its poll instance started over, which opens a fresh
//! connection; an error the adapter answers with is its own considered
//! verdict (it reconnects itself, or has stopped the account for good, as
//! Discord's fatal close codes do), so its instance and what it remembers are
//! kept. Every account's state, restarts and
//! last-contact age are in `/readyz` (reported apart: a degraded account
//! never makes the replica unready) and `/metrics`.
//!
//! Must not: interpret or route events (intake and the pipeline do), or
//! touch another account's instance when one account fails.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chela_plugin::channel::{ChannelError, ChannelRuntime};

use crate::backoff::backoff;
use crate::metrics::Gauge;
use crate::Gateway;

/// Pause after a poll that returned nothing (adapters long-poll or wait
/// for socket frames inside the call; this only bounds a busy loop).
const IDLE_PAUSE: Duration = Duration::from_millis(200);
const FIRST_RETRY: Duration = Duration::from_millis(500);
const LONGEST_RETRY: Duration = Duration::from_secs(30);
/// How long a replica without an account's lease waits before it looks at
/// the account's conditions (stop, reconfigured) again.
const LEASE_WAIT: Duration = Duration::from_secs(1);

/// How an account is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountState {
    /// Serving; no poll has returned yet.
    Starting,
    /// The last poll returned (or, for a webhook account, it is configured).
    Up,
    /// The last poll failed or did not return in time; retrying.
    Degraded,
}

#[derive(Debug, Clone)]
struct Record {
    state: AccountState,
    polls: bool,
    /// The last poll that returned, or webhook delivery that was accepted.
    last_contact: Option<Instant>,
    /// The last inbound event.
    last_event: Option<Instant>,
    /// Failed polls in a row.
    failures: u32,
    restarts: u64,
    last_error: Option<String>,
    /// Since when the account is degraded.
    degraded_since: Option<Instant>,
}

/// One account's state, as `/readyz` shows it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountReport {
    pub channel: String,
    pub account: String,
    pub state: AccountState,
    /// `poll` or `webhook`.
    pub delivery: &'static str,
    pub last_contact_age_seconds: Option<f64>,
    pub last_event_age_seconds: Option<f64>,
    pub consecutive_failures: u32,
    pub restarts: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Every served account's liveness.
#[derive(Default)]
pub struct Supervision {
    accounts: Mutex<BTreeMap<(String, String), Record>>,
}

impl Supervision {
    fn with<T>(&self, channel: &str, account: &str, f: impl FnOnce(&mut Record) -> T) -> T {
        let mut all = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        let r = all.entry((channel.to_string(), account.to_string())).or_insert_with(|| Record {
            state: AccountState::Starting,
            polls: false,
            last_contact: None,
            last_event: None,
            failures: 0,
            restarts: 0,
            last_error: None,
            degraded_since: None,
        });
        f(r)
    }

    /// The account is served from now on (`polls`: by a supervisor loop).
    pub(crate) fn serving(&self, channel: &str, account: &str, polls: bool) {
        self.with(channel, account, |r| {
            r.polls = polls;
            if !polls {
                r.state = AccountState::Up;
            }
        });
    }

    /// Keeps only the accounts in `served` (channel, account).
    pub(crate) fn retain(&self, served: &[(String, String)]) {
        self.accounts.lock().unwrap_or_else(|p| p.into_inner()).retain(|k, _| served.contains(k));
    }

    /// The adapter worked for the account: a poll returned, or a webhook delivery was accepted.
    pub(crate) fn contact(&self, channel: &str, account: &str, events: usize) {
        let recovered = self.with(channel, account, |r| {
            let now = Instant::now();
            r.last_contact = Some(now);
            if events > 0 {
                r.last_event = Some(now);
            }
            r.failures = 0;
            let was = std::mem::replace(&mut r.state, AccountState::Up);
            (was == AccountState::Degraded).then(|| (r.degraded_since.take(), r.restarts))
        });
        if let Some((since, restarts)) = recovered {
            let down_s = since.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0);
            tracing::info!(channel, account, down_s, restarts, "account is up again");
        }
    }

    /// A poll failed; returns the failures in a row.
    fn failed(&self, channel: &str, account: &str, error: &ChannelError) -> u32 {
        let (failures, newly) = self.with(channel, account, |r| {
            r.failures += 1;
            r.last_error = Some(error.to_string());
            let newly = r.state != AccountState::Degraded;
            if newly {
                r.state = AccountState::Degraded;
                r.degraded_since = Some(Instant::now());
            }
            (r.failures, newly)
        });
        if newly {
            tracing::warn!(channel, account, error = %error, "account degraded: its poll failed; retrying with back-off");
        } else {
            tracing::debug!(channel, account, error = %error, failures, "poll failed again");
        }
        failures
    }

    fn restarted(&self, channel: &str, account: &str, why: &str) {
        let restarts = self.with(channel, account, |r| {
            r.restarts += 1;
            r.restarts
        });
        tracing::warn!(channel, account, restarts, why, "poller started over with a fresh connection");
    }

    pub fn report(&self) -> Vec<AccountReport> {
        let age = |t: Option<Instant>| t.map(|t| t.elapsed().as_secs_f64());
        let all = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        all.iter()
            .map(|((channel, account), r)| AccountReport {
                channel: channel.clone(),
                account: account.clone(),
                state: r.state,
                delivery: if r.polls { "poll" } else { "webhook" },
                last_contact_age_seconds: age(r.last_contact),
                last_event_age_seconds: age(r.last_event),
                consecutive_failures: r.failures,
                restarts: r.restarts,
                last_error: r.last_error.clone(),
            })
            .collect()
    }

    /// Per account: up (1/0), seconds since last contact, restarts.
    pub(crate) fn gauges(&self) -> Vec<Gauge> {
        let mut out = Vec::new();
        for a in self.report() {
            let labels = vec![("channel", a.channel.clone()), ("account", a.account.clone())];
            out.push(Gauge {
                name: "chela_channel_account_up",
                help:
                    "1 when the account's last poll (or webhook delivery) worked, 0 while it is degraded or starting.",
                labels: labels.clone(),
                value: f64::from(u8::from(a.state == AccountState::Up)),
            });
            if let Some(age) = a.last_contact_age_seconds {
                out.push(Gauge {
                    name: "chela_channel_account_last_contact_age_seconds",
                    help: "Seconds since the account's last poll returned or webhook delivery was accepted.",
                    labels: labels.clone(),
                    value: age,
                });
            }
            out.push(Gauge {
                name: "chela_channel_account_restarts",
                help: "Times the account's poller was started over with a fresh connection.",
                labels,
                value: a.restarts as f64,
            });
        }
        out
    }
}

/// Polls one account of an adapter that asks for it, while that account
/// keeps the configuration it had when the loop started, and supervises it.
pub(crate) async fn poll_loop(gw: Weak<Gateway>, channel: Arc<ChannelRuntime>, account: String) {
    let generation = channel.generation(&account);
    let ch = channel.channel_id().to_string();
    // Replicas on one database: only the lease's owner polls (`leases.rs`).
    let mut lease =
        gw.upgrade().and_then(|g| g.leases.as_ref().map(|k| k.want(&crate::leases::poll_lease(&ch, &account))));
    loop {
        let Some(g) = gw.upgrade() else { return };
        if g.stopping.load(Ordering::SeqCst)
            || g.channel(&ch).is_none_or(|c| !Arc::ptr_eq(&c, &channel))
            || channel.generation(&account) != generation
        {
            return; // shutting down; adapter replaced or removed; account reconfigured or removed
        }
        let holds = lease.as_mut().map(|held| *held.borrow_and_update());
        let polled = match lease.as_mut() {
            None => Some(channel.poll(&account).await),
            Some(held) if holds == Some(false) => {
                // Another replica polls this account; check again when the
                // lease changes hands (or in a while, for the conditions above).
                drop(g);
                let _ = tokio::time::timeout(LEASE_WAIT, held.changed()).await;
                continue;
            }
            // A poll in flight when the lease goes is cut off: its instance
            // (and the platform connection it holds) is dropped, and what it
            // had read but not acknowledged is read again by the new owner.
            Some(held) => tokio::select! {
                polled = channel.poll(&account) => Some(polled),
                _ = held.wait_for(|h| !*h) => None,
            },
        };
        let Some(polled) = polled else {
            tracing::info!(channel = %ch, account, "lease lost: this replica stopped polling the account");
            continue;
        };
        match polled {
            Ok(events) if events.is_empty() => {
                g.supervision.contact(&ch, &account, 0);
                drop(g);
                tokio::time::sleep(IDLE_PAUSE).await;
            }
            Ok(events) => {
                g.supervision.contact(&ch, &account, events.len());
                // The next poll tells the platform these were received: not
                // before they are in the journal.
                let mut attempt = 0;
                while let Err(e) = g.intake(&channel, events.clone()).await {
                    tracing::error!(channel = %ch, account, error = %e, "cannot journal polled messages; polling paused");
                    g.metrics.inc("chela_errors_total", &[("stage", "journal")]);
                    if g.stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    tokio::time::sleep(backoff(FIRST_RETRY, attempt, LONGEST_RETRY)).await;
                    attempt += 1;
                }
            }
            Err(e) => {
                g.metrics.inc("chela_errors_total", &[("stage", "poll")]);
                let failures = g.supervision.failed(&ch, &account, &e);
                if matches!(&e, ChannelError::Call(c) if c.spoils_instance()) {
                    // The call's instance is already gone: the next poll starts a fresh one.
                    g.supervision.restarted(
                        &ch,
                        &account,
                        "the poll did not return in time, trapped, or lost a host service",
                    );
                }
                drop(g);
                tokio::time::sleep(backoff(FIRST_RETRY, failures - 1, LONGEST_RETRY)).await;
            }
        }
    }
}
