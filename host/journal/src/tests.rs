use super::*;
use serde_json::json;

fn incoming(id: &str, chat: &str) -> Incoming {
    Incoming {
        dedupe: format!("webhook/dev/{id}"),
        chat: chat.into(),
        event: json!({"id": id, "text": format!("msg {id}")}),
    }
}

fn open(dir: &Path) -> (Journal, Recovered) {
    Journal::open(dir, Durability::Fsync).expect("journal opens")
}

#[tokio::test]
async fn accepted_events_and_queued_replies_survive_a_reopen_until_finished_and_delivered() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (j, rec) = open(dir.path());
        assert!(rec.unfinished.is_empty() && rec.undelivered.is_empty());
        let seqs = j.accept(vec![incoming("1", "a"), incoming("2", "b"), incoming("3", "a")]).await.unwrap();
        assert_eq!(seqs, [Some(0), Some(1), Some(2)]);
        let id = j.reply_and_finish(0, "work", "a", json!({"text": "answer 1"})).await.unwrap();
        j.delivered(id).await.unwrap();
        j.reply(1, "work", "b", json!({"text": "answer 2"})).await.unwrap();
        j.finish(1, "replied").await.unwrap();
        assert_eq!(j.depth(), (1, 1));
    } // dropped without any shutdown: as after kill -9
    let (j, rec) = open(dir.path());
    let open_ids: Vec<&str> = rec.unfinished.iter().map(|u| u.event["id"].as_str().unwrap()).collect();
    assert_eq!(open_ids, ["3"], "only the unanswered event is open");
    assert_eq!(rec.undelivered.len(), 1);
    assert_eq!(rec.undelivered[0].message["text"], "answer 2");
    assert!(rec.skipped.is_empty());
    // Replays and platform retries of any accepted event are duplicates, finished or not.
    let again =
        j.accept(vec![incoming("1", "a"), incoming("3", "a"), incoming("4", "a"), incoming("4", "a")]).await.unwrap();
    assert_eq!(again, [None, None, Some(3), None]);
}

#[tokio::test]
async fn a_torn_or_corrupt_line_is_reported_and_skipped_and_the_lines_after_it_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (j, _) = open(dir.path());
        for i in 0..5 {
            j.accept(vec![incoming(&i.to_string(), "a")]).await.unwrap();
        }
    }
    let path = dir.path().join("journal.log");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // Line 3 (event 1) gets a flipped byte; a torn half line ends the file.
    let target = lines.iter().position(|l| l.contains(r#""id":"1""#)).unwrap();
    lines[target] = lines[target].replacen("msg 1", "msg X", 1);
    let torn = lines[1][..lines[1].len() / 2].to_string();
    let mut damaged = lines.join("\n");
    damaged.push('\n');
    damaged.push_str(&torn);
    std::fs::write(&path, damaged).unwrap();

    let (j, rec) = open(dir.path());
    let ids: Vec<&str> = rec.unfinished.iter().map(|u| u.event["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["0", "2", "3", "4"], "the events around the bad line are all there");
    assert_eq!(rec.skipped.len(), 2, "{:?}", rec.skipped);
    assert_eq!(rec.skipped[0].line, target + 1);
    assert!(rec.skipped[0].why.contains("checksum"), "{:?}", rec.skipped);
    // The journal goes on: new events are accepted after the damage.
    assert_eq!(j.accept(vec![incoming("5", "a")]).await.unwrap(), [Some(5)]);
    drop(j);
    let (_, rec) = open(dir.path());
    assert_eq!(rec.unfinished.len(), 5);
    assert!(rec.skipped.is_empty(), "compaction wrote a clean file: {:?}", rec.skipped);
}

#[tokio::test]
async fn a_journal_from_a_newer_version_is_refused_with_a_message_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let line = encode(&Record::Journal { version: VERSION + 1 });
    std::fs::write(dir.path().join("journal.log"), &line).unwrap();
    let err = Journal::open(dir.path(), Durability::Fsync).err().expect("refused");
    let msg = err.to_string();
    assert!(msg.contains("newer chela") && msg.contains(&format!("format {}", VERSION + 1)), "{msg}");
    assert_eq!(std::fs::read(dir.path().join("journal.log")).unwrap(), line, "the file is left as it was");
}

#[tokio::test]
async fn a_half_answered_broadcast_remembers_who_answered_across_compaction() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (j, _) = open(dir.path());
        j.accept(vec![incoming("b", "group")]).await.unwrap();
        let id = j.reply(0, "work", "group", json!({"text": "from work"})).await.unwrap();
        j.delivered(id).await.unwrap();
        j.reply(0, "home", "group", json!({"text": "from home"})).await.unwrap();
    }
    for _ in 0..2 {
        // Each open compacts; what it knows must not change.
        let (_, rec) = open(dir.path());
        assert_eq!(rec.unfinished.len(), 1);
        let mut who = rec.unfinished[0].answered_by.clone();
        who.sort();
        assert_eq!(who, ["home", "work"]);
        assert_eq!(rec.undelivered.len(), 1);
        assert_eq!(rec.undelivered[0].agent, "home");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_syncs_and_every_acknowledged_event_is_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = open(dir.path());
    let j = Arc::new(j);
    let mut tasks = Vec::new();
    for w in 0..16 {
        let j = j.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                j.accept(vec![incoming(&format!("{w}-{i}"), &format!("chat{w}"))]).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    drop(j);
    let (_, rec) = open(dir.path());
    assert_eq!(rec.unfinished.len(), 16 * 25);
    for w in 0..16 {
        let mine: Vec<String> = rec
            .unfinished
            .iter()
            .filter(|u| u.chat == format!("chat{w}"))
            .map(|u| u.event["id"].as_str().unwrap().to_string())
            .collect();
        let want: Vec<String> = (0..25).map(|i| format!("{w}-{i}")).collect();
        assert_eq!(mine, want, "one chat's events come back in their order");
    }
}

#[tokio::test]
async fn one_journal_per_state_dir_until_it_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = open(dir.path());
    let err = Journal::open(dir.path(), Durability::Fsync).err().expect("a second opener is refused");
    assert!(matches!(err, JournalError::Busy { .. }), "{err}");
    assert!(err.to_string().contains("another chela gateway"), "{err}");
    first.accept(vec![incoming("1", "a")]).await.unwrap();
    first.close();
    assert!(matches!(first.accept(vec![incoming("2", "a")]).await, Err(JournalError::Stopped)));
    let (_, rec) = open(dir.path());
    assert_eq!(rec.unfinished.len(), 1, "what was accepted before the close is there");
}
