//! The shared journal against a real PostgreSQL server, as two replicas
//! write it: a platform id accepted by one is a duplicate for the other;
//! what a replica accepted stays its own while its replica lease lives and
//! is claimed, once, by one other replica when it runs out; a replica that
//! lost an event cannot journal (so cannot send) a reply to it.

use std::time::Duration;

use chela_database::{replica_lease, Database, Depth};
use chela_fakes::postgres::Cluster;
use chela_journal::Incoming;
use serde_json::json;

fn incoming(id: &str) -> Incoming {
    Incoming { dedupe: format!("webhook/inbox/{id}"), chat: "webhook/inbox/alice".into(), event: json!({ "id": id }) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_events_dedupe_across_replicas_and_move_only_when_their_owner_is_gone() {
    let db = Cluster::start();
    let a = tokio::task::spawn_blocking({
        let url = db.url();
        move || Database::connect(&url).expect("connects")
    })
    .await
    .unwrap();
    let b = tokio::task::spawn_blocking({
        let url = db.url();
        move || Database::connect(&url).expect("connects")
    })
    .await
    .unwrap();
    // Both replicas alive (their leases held long enough for the test).
    assert!(a.take_lease(&replica_lease("a"), "a", Duration::from_secs(60)).await.unwrap());
    assert!(b.take_lease(&replica_lease("b"), "b", Duration::from_secs(60)).await.unwrap());

    // One id twice in a batch, and again from the other replica: accepted once.
    let seqs = a.journal_accept("a", vec![incoming("m1"), incoming("m1"), incoming("m2")]).await.unwrap();
    assert!(seqs[0].is_some() && seqs[1].is_none() && seqs[2].is_some(), "{seqs:?}");
    assert_eq!(b.journal_accept("b", vec![incoming("m1")]).await.unwrap(), vec![None]);
    // Without a platform id nothing is deduped.
    let plain = Incoming { dedupe: String::new(), ..incoming("x") };
    let twice = b.journal_accept("b", vec![plain.clone(), plain]).await.unwrap();
    assert!(twice.iter().all(Option::is_some), "{twice:?}");
    assert_eq!(a.journal_depth().await.unwrap(), Depth { unfinished: 4, undelivered: 0 });

    // While "a" lives its events are its own: nothing to claim.
    let claimed = b.journal_claim("b").await.unwrap();
    assert!(claimed.unfinished.is_empty() && claimed.undelivered.is_empty());

    // "a" journals a reply to m1 (not delivered), then is gone (its lease given back).
    let (m1, m2) = (seqs[0].unwrap(), seqs[2].unwrap());
    let reply = a.journal_reply("a", m1, "main", "webhook/inbox/alice", &json!({"text": "hi"}), false).await.unwrap();
    assert!(reply.is_some());
    a.release_lease(&replica_lease("a"), "a").await.unwrap();

    // "b" claims both events (in order) and the undelivered reply, with who answered.
    let claimed = b.journal_claim("b").await.unwrap();
    let claimed_seqs: Vec<u64> = claimed.unfinished.iter().map(|u| u.seq).collect();
    assert_eq!(claimed_seqs, vec![m1, m2]);
    assert_eq!(claimed.unfinished[0].answered_by, vec!["main".to_string()]);
    assert_eq!(claimed.undelivered.len(), 1);
    assert_eq!(claimed.undelivered[0].message, json!({"text": "hi"}));
    // Claimed once: a second claim (by anyone) finds nothing.
    let again = b.journal_claim("c").await.unwrap();
    assert!(again.unfinished.is_empty() && again.undelivered.is_empty(), "claimed twice: {again:?}");

    // "a" is back from a partition: it no longer owns m2, so it cannot
    // journal a reply to it nor finish it; "b" can.
    let late = a.journal_reply("a", m2, "main", "webhook/inbox/alice", &json!({"text": "late"}), true).await.unwrap();
    assert_eq!(late, None, "a replica that lost an event journaled a reply to it");
    a.journal_finish("a", m2, "replied").await.unwrap();
    assert_eq!(db.psql(&format!("select finished_at is null from chela_inbound where seq = {m2}")), "t");
    let id = b.journal_reply("b", m2, "main", "webhook/inbox/alice", &json!({"text": "ok"}), true).await.unwrap();
    b.journal_delivered(id.expect("b owns it"), None).await.unwrap();
    b.journal_finish("b", m1, "replied").await.unwrap();
    b.journal_delivered(claimed.undelivered[0].id, Some("chat gone")).await.unwrap();
    assert_eq!(b.journal_depth().await.unwrap(), Depth { unfinished: 2, undelivered: 0 });
    assert_eq!(db.psql("select outcome from chela_outbox order by id"), "dead: chat gone\nsent");

    // Pruning keeps what is unfinished and what is younger than the retention.
    assert_eq!(b.journal_prune(Duration::from_secs(3600)).await.unwrap(), 0);
    assert_eq!(b.journal_prune(Duration::ZERO).await.unwrap(), 4, "two events and two replies finished");
    assert_eq!(b.journal_depth().await.unwrap(), Depth { unfinished: 2, undelivered: 0 });

    // A lease that ran out a moment ago is in its grace (a replica back from
    // a database outage renews before it is taken for dead): nothing moves.
    assert!(a.take_lease(&replica_lease("c"), "c", Duration::from_millis(1)).await.unwrap());
    let c = a.journal_accept("c", vec![incoming("m9")]).await.unwrap();
    assert!(c[0].is_some());
    let early = b.journal_claim("b").await.unwrap();
    assert!(early.unfinished.is_empty(), "claimed within the grace: {early:?}");
}
