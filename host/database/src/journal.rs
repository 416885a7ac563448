//! The message journal on the shared database: what the files' journal
//! (`chela-journal`) keeps in one process's state dir, kept where every
//! replica sees it — accepted inbound events (deduped by their platform id
//! across replicas), the outbox of replies, and who owns each.
//!
//! - An event belongs to the replica that accepted it (`owner`). Its reply
//!   is journaled only while it still does: a replica that lost the event
//!   to another cannot journal, so cannot send, a second answer.
//! - A replica is alive while its replica lease (`replica:<owner>`, renewed
//!   by its lease keeper) is. [`claim`](Database::journal_claim) moves the
//!   unfinished events and undelivered replies of owners whose lease ran
//!   out ([`CLAIM_GRACE`] ago) to the caller, each row to one claimer
//!   (`for update skip locked`).
//! - Finished events and sent replies are kept for [`RETAIN`] (their ids
//!   dedupe a platform's late retries), then pruned.
//!
//! Must not: route, run or deliver anything (the gateway does), or know
//! what an event or a reply says (opaque JSON).

use std::time::Duration;

use chela_journal::{Incoming, Undelivered, Unfinished};
use serde_json::Value;

use super::{Database, DbError};

/// How long finished events and delivered replies are kept (and a platform
/// message id is remembered against a redelivery).
pub const RETAIN: Duration = Duration::from_secs(7 * 24 * 3600);

/// The lease that says replica `owner` is alive (it owns what it accepted).
pub fn replica_lease(owner: &str) -> String {
    format!("{REPLICA_LEASE}{owner}")
}

/// The replica a replica lease names (`None`: another kind of lease).
pub fn replica_of(lease: &str) -> Option<&str> {
    lease.strip_prefix(REPLICA_LEASE)
}

const REPLICA_LEASE: &str = "replica:";

/// How long after its replica lease ran out a replica's rows may be claimed.
pub const CLAIM_GRACE: Duration = Duration::from_secs(3);

/// How long a lease that ran out stays listed (a killed replica's, for `chela status`).
const STALE_LEASE: Duration = Duration::from_secs(3600);

/// What a claim took over from replicas that are gone, in journal order.
#[derive(Debug, Default)]
pub struct Claimed {
    pub unfinished: Vec<Unfinished>,
    pub undelivered: Vec<Undelivered>,
    /// Rows whose JSON could not be read (finished as unreadable here).
    pub unreadable: usize,
}

/// Events accepted and not finished, replies not delivered (every replica's).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Depth {
    pub unfinished: usize,
    pub undelivered: usize,
}

fn seq_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn db_seq(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Database {
    /// Accepts events for `owner`, in one transaction: each new one gets its
    /// sequence number, one whose platform id any replica accepted before
    /// gets `None`. An error means none was stored.
    pub async fn journal_accept(&self, owner: &str, items: Vec<Incoming>) -> Result<Vec<Option<u64>>, DbError> {
        let owner = owner.to_string();
        self.run(move |mut c| async move {
            let tx = c.transaction().await?;
            let insert = tx
                .prepare(
                    "insert into chela_inbound (dedupe, chat, event, owner) values ($1, $2, $3, $4)
                     on conflict (dedupe) do nothing returning seq",
                )
                .await?;
            let mut seqs = Vec::with_capacity(items.len());
            for item in items {
                let dedupe = (!item.dedupe.is_empty()).then_some(item.dedupe);
                let event = item.event.to_string();
                let row = tx.query_opt(&insert, &[&dedupe, &item.chat, &event, &owner]).await?;
                seqs.push(row.map(|r| seq_of(r.get(0))));
            }
            tx.commit().await?;
            Ok(seqs)
        })
        .await
    }

    /// Journals `agent`'s reply to event `seq` (and, with `finish`, marks
    /// the event replied) while `owner` owns the event; the reply's id, or
    /// `None` when another replica took the event over (nothing written).
    pub async fn journal_reply(
        &self,
        owner: &str,
        seq: u64,
        agent: &str,
        chat: &str,
        message: &Value,
        finish: bool,
    ) -> Result<Option<u64>, DbError> {
        let (owner, agent, chat, message) =
            (owner.to_string(), agent.to_string(), chat.to_string(), message.to_string());
        let seq = db_seq(seq);
        self.run(move |mut c| async move {
            let tx = c.transaction().await?;
            let held = tx
                .query_opt(
                    "select 1 from chela_inbound where seq = $1 and owner = $2 and finished_at is null for update",
                    &[&seq, &owner],
                )
                .await?;
            if held.is_none() {
                return Ok(None);
            }
            let id: i64 = tx
                .query_one(
                    "insert into chela_outbox (seq, agent, chat, message, owner) values ($1, $2, $3, $4, $5) returning id",
                    &[&seq, &agent, &chat, &message, &owner],
                )
                .await?
                .get(0);
            tx.execute(
                "update chela_inbound set
                     answered_by = case when $2 = any(answered_by) then answered_by else array_append(answered_by, $2) end,
                     finished_at = case when $3 then now() else finished_at end,
                     how = case when $3 then 'replied' else how end
                 where seq = $1",
                &[&seq, &agent, &finish],
            )
            .await?;
            tx.commit().await?;
            Ok(Some(seq_of(id)))
        })
        .await
    }

    /// Event `seq` is finished (`how`: replied, dropped, failed…), if
    /// `owner` still owns it (a taken-over event is the new owner's to finish).
    pub async fn journal_finish(&self, owner: &str, seq: u64, how: &str) -> Result<(), DbError> {
        let (owner, how, seq) = (owner.to_string(), how.to_string(), db_seq(seq));
        self.run(move |c| async move {
            c.execute(
                "update chela_inbound set finished_at = now(), how = $3
                 where seq = $1 and owner = $2 and finished_at is null",
                &[&seq, &owner, &how],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Reply `id` reached the platform (`None`), or failed for good (why).
    pub async fn journal_delivered(&self, id: u64, failed: Option<&str>) -> Result<(), DbError> {
        let outcome = failed.map_or_else(|| "sent".to_string(), |why| format!("dead: {why}"));
        let id = db_seq(id);
        self.run(move |c| async move {
            c.execute("update chela_outbox set done_at = now(), outcome = $2 where id = $1", &[&id, &outcome]).await?;
            Ok(())
        })
        .await
    }

    /// Takes over, for `owner`, what replicas whose replica lease ran out
    /// left unfinished and undelivered. Each row goes to one claimer.
    pub async fn journal_claim(&self, owner: &str) -> Result<Claimed, DbError> {
        let owner = owner.to_string();
        let grace = i64::try_from(CLAIM_GRACE.as_millis()).unwrap_or(i64::MAX);
        self.run(move |mut c| async move {
            let tx = c.transaction().await?;
            // `t`: the journal row (the lease table has an `owner` too). An
            // owner is gone once its lease ran out `CLAIM_GRACE` ago: replicas
            // back from a database outage renew before they are taken for dead.
            let gone = "t.owner <> $1 and not exists (select 1 from chela_leases l
                          where l.name = $2 || t.owner
                            and l.expires_at > now() - $3::bigint * interval '1 millisecond')";
            let events = tx
                .query(
                    &format!(
                        "with gone as (select seq from chela_inbound t where t.finished_at is null and {gone}
                                       order by seq for update skip locked)
                         update chela_inbound i set owner = $1 from gone where i.seq = gone.seq
                         returning i.seq, i.chat, i.event, i.answered_by"
                    ),
                    &[&owner, &REPLICA_LEASE, &grace],
                )
                .await?;
            let replies = tx
                .query(
                    &format!(
                        "with gone as (select id from chela_outbox t where t.done_at is null and {gone}
                                       order by id for update skip locked)
                         update chela_outbox o set owner = $1 from gone where o.id = gone.id
                         returning o.id, o.seq, o.agent, o.chat, o.message"
                    ),
                    &[&owner, &REPLICA_LEASE, &grace],
                )
                .await?;
            let mut claimed = Claimed::default();
            let mut unreadable = Vec::new();
            for r in events {
                let seq: i64 = r.get(0);
                match serde_json::from_str::<Value>(r.get(2)) {
                    Ok(event) => claimed.unfinished.push(Unfinished::resumed(seq_of(seq), r.get(1), event, r.get(3))),
                    Err(_) => unreadable.push(seq),
                }
            }
            for r in replies {
                let id: i64 = r.get(0);
                match serde_json::from_str::<Value>(r.get(4)) {
                    Ok(message) => claimed.undelivered.push(Undelivered {
                        id: seq_of(id),
                        seq: seq_of(r.get(1)),
                        agent: r.get(2),
                        chat: r.get(3),
                        message,
                    }),
                    Err(_) => {
                        tx.execute(
                            "update chela_outbox set done_at = now(), outcome = 'dead: unreadable' where id = $1",
                            &[&id],
                        )
                        .await?;
                        claimed.unreadable += 1;
                    }
                }
            }
            for seq in &unreadable {
                tx.execute("update chela_inbound set finished_at = now(), how = 'unreadable' where seq = $1", &[seq])
                    .await?;
            }
            claimed.unreadable += unreadable.len();
            claimed.unfinished.sort_by_key(|u| u.seq);
            claimed.undelivered.sort_by_key(|u| u.id);
            tx.commit().await?;
            Ok(claimed)
        })
        .await
    }

    /// Every replica's unfinished events and undelivered replies, counted.
    pub async fn journal_depth(&self) -> Result<Depth, DbError> {
        self.run(move |c| async move {
            let row = c
                .query_one(
                    "select (select count(*) from chela_inbound where finished_at is null),
                            (select count(*) from chela_outbox where done_at is null)",
                    &[],
                )
                .await?;
            let count = |i: usize| usize::try_from(row.get::<_, i64>(i)).unwrap_or(0);
            Ok(Depth { unfinished: count(0), undelivered: count(1) })
        })
        .await
    }

    /// Deletes finished events and done replies older than `retain` (and
    /// leases that ran out an hour ago); how many journal rows went.
    pub async fn journal_prune(&self, retain: Duration) -> Result<u64, DbError> {
        let ms = i64::try_from(retain.as_millis()).unwrap_or(i64::MAX);
        let stale = i64::try_from(STALE_LEASE.as_millis()).unwrap_or(i64::MAX);
        self.run(move |c| async move {
            let cutoff = "now() - $1::bigint * interval '1 millisecond'";
            let replies = c.execute(&format!("delete from chela_outbox where done_at < {cutoff}"), &[&ms]).await?;
            let events = c.execute(&format!("delete from chela_inbound where finished_at < {cutoff}"), &[&ms]).await?;
            c.execute(&format!("delete from chela_leases where expires_at < {cutoff}"), &[&stale]).await?;
            Ok(replies + events)
        })
        .await
    }
}
