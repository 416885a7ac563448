//! The shared session store against a real PostgreSQL server, as two
//! replicas see it (two connections): entries edited from both keep every
//! change, transcripts appended by one are read by the other, a turn lock
//! held by one makes the other wait until it is let go, and a database
//! that goes away is a passing error, not a lost write.

use std::sync::Arc;
use std::time::Duration;

use chela_agent::store::transcript::{message_entry, Message};
use chela_agent::store::{PgStore, SessionStore};
use chela_database::Database;
use chela_fakes::postgres::Cluster;

const KEY: &str = "agent:main:main";

fn two_replicas(db: &Cluster) -> (Arc<PgStore>, Arc<PgStore>) {
    let one = Database::connect(&db.url()).expect("connects");
    let two = Database::connect(&db.url()).expect("connects");
    (Arc::new(PgStore::new(one, "agent:main")), Arc::new(PgStore::new(two, "agent:main")))
}

fn line(i: usize) -> serde_json::Value {
    message_entry(&format!("m{i}"), None, "2026-12-07T00:00:00Z", &Message::user(&format!("hello {i}"), 0))
}

#[test]
fn entries_and_transcripts_are_shared_and_no_edit_is_lost() {
    let db = Cluster::start();
    let (a, b) = two_replicas(&db);
    let entry = a.upsert(KEY, &mut |_| {}).unwrap();
    assert_eq!(b.get(KEY).unwrap().map(|e| e.session_id), Some(entry.session_id.clone()));

    // Forty increments of one counter from both sides at once: none lost.
    let bump = |s: Arc<PgStore>| {
        std::thread::spawn(move || {
            for _ in 0..20 {
                s.upsert(KEY, &mut |e| e.input_tokens = Some(e.input_tokens.unwrap_or(0) + 1)).unwrap();
            }
        })
    };
    let (t1, t2) = (bump(a.clone()), bump(b.clone()));
    t1.join().unwrap();
    t2.join().unwrap();
    assert_eq!(a.get(KEY).unwrap().and_then(|e| e.input_tokens), Some(40));

    // Lines appended on either side are read, in order, on both.
    a.append(&entry, "/ws", &[line(0), line(1)]).unwrap();
    assert_eq!(b.transcript(&entry).unwrap().messages.len(), 2);
    b.append(&entry, "/ws", &[line(2)]).unwrap();
    let seen: Vec<String> = a.transcript(&entry).unwrap().messages.iter().map(|m| m.text()).collect();
    assert_eq!(seen, ["hello 0", "hello 1", "hello 2"]);
    assert_eq!(db.psql("select count(*) from chela_transcript_lines where line like '{\"type\":\"session\"%'"), "1");

    // A reset starts an empty transcript under a new id; the old rows stay.
    let fresh = b.reset(KEY).unwrap();
    assert_ne!(fresh.session_id, entry.session_id);
    assert!(a.transcript(&fresh).unwrap().messages.is_empty());
    assert_eq!(a.transcript(&entry).unwrap().messages.len(), 3);
}

#[test]
fn a_turn_lock_held_by_one_replica_makes_the_other_wait() {
    let db = Cluster::start();
    let (a, b) = two_replicas(&db);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let held = a.hold_turn(KEY).await.unwrap();
        assert!(held.is_shared());
        let b2 = b.clone();
        let waiting = tokio::spawn(async move {
            let lock = b2.hold_turn(KEY).await.map(|_| ());
            (std::time::Instant::now(), lock)
        });
        // Another session is not held up by it.
        tokio::time::timeout(Duration::from_secs(5), b.hold_turn("agent:main:other")).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let released = std::time::Instant::now();
        drop(held);
        let (granted, lock) =
            tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("granted once let go").unwrap();
        lock.unwrap();
        assert!(granted >= released, "the second replica got the session while the first held it");
    });
}

#[test]
fn a_database_that_went_away_is_a_passing_error_and_comes_back() {
    let mut db = Cluster::start();
    let (a, _) = two_replicas(&db);
    let entry = a.upsert(KEY, &mut |_| {}).unwrap();
    db.stop();
    let err = a.append(&entry, "/ws", &[line(0)]).unwrap_err();
    assert!(err.passes(), "a stopped server must be retried, not fail the turn: {err}");
    db.resume();
    a.append(&entry, "/ws", &[line(0)]).unwrap();
    assert_eq!(a.transcript(&entry).unwrap().messages.len(), 1);
}
