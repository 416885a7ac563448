//! Documents replicas edit together against a real PostgreSQL server: an
//! edit sees the last one's result whichever replica made it, concurrent
//! edits of one document lose nothing, and an edit that changes nothing
//! writes nothing.

use std::sync::Arc;

use chela_database::Database;
use chela_fakes::postgres::Cluster;

const DOC: &str = "telegram-allowFrom.json";

fn connect(db: &Cluster) -> Arc<Database> {
    Database::connect(&db.url()).expect("connects")
}

#[test]
fn concurrent_edits_from_two_replicas_lose_nothing() {
    let db = Cluster::start();
    let (a, b) = (connect(&db), connect(&db));
    assert_eq!(a.document("telegram-allowFrom.json").unwrap(), None, "never written");
    // Four writers on two replicas each append ten entries by read-modify-write.
    std::thread::scope(|t| {
        for (w, replica) in [&a, &b, &a, &b].into_iter().enumerate() {
            t.spawn(move || {
                for i in 0..10 {
                    replica
                        .edit_documents(DOC, vec![DOC.to_string()], |bodies| {
                            let mut list: Vec<String> =
                                bodies[0].as_deref().map(|b| serde_json::from_str(b).unwrap()).unwrap_or_default();
                            list.push(format!("{w}-{i}"));
                            bodies[0] = Some(serde_json::to_string(&list).unwrap());
                            Ok::<(), String>(())
                        })
                        .unwrap()
                        .unwrap();
                }
            });
        }
    });
    let list: Vec<String> = serde_json::from_str(&b.document("telegram-allowFrom.json").unwrap().unwrap()).unwrap();
    assert_eq!(list.len(), 40, "an edit was lost: {list:?}");
    // An edit that leaves the document alone answers and writes nothing.
    let before = db.psql("select updated_at from chela_documents where name = 'telegram-allowFrom.json'");
    let seen =
        a.edit_documents(DOC, vec![DOC.to_string()], |bodies| Ok::<_, String>(bodies[0].as_ref().map(String::len)));
    assert!(seen.unwrap().unwrap().is_some_and(|n| n > 0));
    assert_eq!(db.psql("select updated_at from chela_documents where name = 'telegram-allowFrom.json'"), before);
}
