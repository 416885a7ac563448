//! Plugins' shared key-value state against a real PostgreSQL server, as two
//! replicas see it: what one writes the other reads; scopes never see each
//! other; a compare-and-swap stores only over what was expected, and of
//! racers each number is claimed once; a full scope refuses new keys only.

use std::sync::Arc;

use chela_database::{Database, KvWrite};
use chela_fakes::postgres::Cluster;

async fn connect(db: &Cluster) -> Arc<Database> {
    let url = db.url();
    tokio::task::spawn_blocking(move || Database::connect(&url).expect("connects")).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_each_scope_and_only_that_scope() {
    let db = Cluster::start();
    let (a, b) = (connect(&db).await, connect(&db).await);
    let tg = "channel_telegram/account-default";
    assert_eq!(a.kv_put(tg, "offset", None, b"41".to_vec(), 10).await.unwrap(), KvWrite::Stored);
    assert_eq!(a.kv_put(tg, "offset", None, b"42".to_vec(), 10).await.unwrap(), KvWrite::Stored);
    assert_eq!(b.kv_get(tg, "offset").await.unwrap().as_deref(), Some(&b"42"[..]), "the other replica reads it");
    assert_eq!(b.kv_get("channel_telegram/account-other", "offset").await.unwrap(), None, "scopes are apart");
    b.kv_put(tg, "dm:1", None, vec![1], 10).await.unwrap();
    b.kv_put(tg, "dm:2", None, vec![2], 10).await.unwrap();
    assert_eq!(a.kv_keys(tg, "dm:").await.unwrap(), ["dm:1", "dm:2"]);
    assert_eq!(a.kv_keys(tg, "").await.unwrap(), ["dm:1", "dm:2", "offset"]);
    a.kv_delete(tg, "dm:1").await.unwrap();
    a.kv_delete(tg, "never-there").await.unwrap();
    assert_eq!(b.kv_keys(tg, "dm:").await.unwrap(), ["dm:2"]);

    // A full scope: a new key is refused, an existing one still changes.
    assert_eq!(a.kv_put(tg, "new", None, vec![], 2).await.unwrap(), KvWrite::Full);
    assert_eq!(a.kv_put(tg, "new", Some(None), vec![], 2).await.unwrap(), KvWrite::Full);
    assert_eq!(a.kv_put(tg, "offset", None, b"43".to_vec(), 2).await.unwrap(), KvWrite::Stored);
    assert_eq!(db.psql("select count(*) from chela_kv"), "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_swap_across_replicas_gives_each_number_to_one_claimer() {
    let db = Cluster::start();
    let (a, b) = (connect(&db).await, connect(&db).await);
    let s = "tool_counter/agent-main";
    assert_eq!(a.kv_put(s, "seq", Some(None), b"1".to_vec(), 10).await.unwrap(), KvWrite::Stored);
    assert_eq!(b.kv_put(s, "seq", Some(None), b"9".to_vec(), 10).await.unwrap(), KvWrite::Mismatch, "present");
    assert_eq!(b.kv_put(s, "seq", Some(Some(b"0".to_vec())), b"9".to_vec(), 10).await.unwrap(), KvWrite::Mismatch);
    assert_eq!(a.kv_get(s, "seq").await.unwrap().as_deref(), Some(&b"1"[..]), "a failed swap changes nothing");
    // Four claimers on two replicas take ten numbers each by read-then-swap.
    let mut claimers = Vec::new();
    for replica in [a.clone(), b.clone(), a, b] {
        claimers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while mine.len() < 10 {
                let seen = replica.kv_get(s, "seq").await.unwrap();
                let n: u64 = seen.as_deref().and_then(|v| std::str::from_utf8(v).ok()?.parse().ok()).unwrap_or(0);
                let next = (n + 1).to_string().into_bytes();
                if replica.kv_put(s, "seq", Some(seen), next, 10).await.unwrap() == KvWrite::Stored {
                    mine.push(n + 1);
                }
            }
            mine
        }));
    }
    let mut claimed = Vec::new();
    for c in claimers {
        claimed.extend(c.await.unwrap());
    }
    claimed.sort_unstable();
    assert_eq!(claimed, (2..=41).collect::<Vec<u64>>(), "a number claimed twice or lost");
    assert_eq!(db.psql("select convert_from(value, 'UTF8') from chela_kv where key = 'seq'"), "41");
}
