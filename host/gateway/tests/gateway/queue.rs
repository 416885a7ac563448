//! Queue modes through the gateway, as a chat user lives them (the
//! JavaScript webhook channel, the OpenAI fake holding its answers so a turn
//! stays in its model call while the next message arrives): `steer` puts the
//! new message into the running turn after its tool call, `followup` runs it
//! next, `collect` answers the waiting messages in one turn in OpenClaw's
//! prompt shape, `interrupt` and `/stop` abort the running turn, and a full
//! queue drops the oldest waiting message into a summary the next turn gets.
//! What each request to the model contained is read from the fake.

use std::time::{Duration, Instant};

use chela_fakes::openai::{OpenAiFake, Scripted};
use chela_gateway::Running;
use serde_json::{json, Value};

use crate::common;

const WAIT: Duration = Duration::from_secs(30);

struct Chat {
    running: Running,
    base: String,
    fake: OpenAiFake,
    _dir: tempfile::TempDir,
}

impl Chat {
    async fn start() -> Chat {
        Chat::start_with("").await
    }

    /// [`Chat::start`] with more top-level config (`key: value,` pairs).
    async fn start_with(extra: &str) -> Chat {
        let fake = OpenAiFake::start("sk-test").await;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let config = format!(
            r#"{{ {extra}
      models: {{ providers: {{ openai: {{ baseUrl: "{openai}" }} }} }},
      agents: {{ list: [ {{ id: "work", default: true, workspace: "{root}/ws", identity: {{ name: "Atlas" }},
                           model: "openai/gpt-test", tools: {{ allow: ["write"] }} }} ] }},
      channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
            openai = fake.base_url(),
            root = root.display()
        );
        let vars = common::openai_test_key();
        let running = common::serve_with_vars(root, &config, &["channel_webhook_js", "tool_write"], vars).await;
        let base = format!("http://{}", running.addr);
        Chat { running, base, fake, _dir: dir }
    }

    /// Sends message `id` from alice (accepted: 202).
    async fn send(&self, id: &str, text: &str) {
        self.send_from(id, "alice", text).await;
    }

    /// Sends message `id` from `who`'s direct chat (every DM shares the main
    /// session: `dmScope` is OpenClaw's default).
    async fn send_from(&self, id: &str, who: &str, text: &str) {
        let name = who[..1].to_uppercase() + &who[1..];
        let msg =
            json!({"id": id, "chat": {"type": "direct", "id": who}, "from": {"id": who, "name": name}, "text": text});
        let (s, b) = common::inbox_call(&self.base, "POST", "/channels/webhook/inbox/messages", &msg).await;
        assert_eq!(s, 202, "{b}");
    }

    async fn outbox(&self) -> Vec<Value> {
        let (_, b) =
            common::inbox_call(&self.base, "GET", "/channels/webhook/inbox/outbox?after=0", &Value::Null).await;
        b["messages"].as_array().cloned().unwrap_or_default()
    }

    /// The reply to message `id`, waiting for it.
    async fn reply_to(&self, id: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(m) = self.outbox().await.iter().find(|m| m["replyTo"] == id) {
                return m["text"].as_str().unwrap_or_default().to_string();
            }
            assert!(Instant::now() < deadline, "no reply to {id}: {:?}", self.outbox().await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The ids replied to, in the order the replies were sent.
    async fn replied(&self) -> Vec<String> {
        self.outbox().await.iter().filter_map(|m| m["replyTo"].as_str().map(str::to_string)).collect()
    }

    async fn until(&self, what: &str, done: impl Fn(&Chat) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Messages running or waiting in alice's session (collected and
    /// summarized ones included until their turn stores them).
    fn depth(&self) -> usize {
        self.running.gateway.runtime().queue_depths().iter().map(|(_, n)| n).sum()
    }

    /// The messages of model request `i` as (role, text).
    fn request(&self, i: usize) -> Vec<(String, String)> {
        let requests = self.fake.requests();
        let body = &requests[i].1;
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let text = match &m["content"] {
                    Value::String(s) => s.clone(),
                    Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(""),
                    _ => String::new(),
                };
                (m["role"].as_str().unwrap_or_default().to_string(), text)
            })
            .collect()
    }

    fn user_texts(&self, i: usize) -> Vec<String> {
        self.request(i).into_iter().filter(|(r, _)| r == "user").map(|(_, t)| t).collect()
    }

    /// Sets alice's queue mode with `/queue …` and checks the answer.
    async fn queue(&self, id: &str, args: &str, expect: &str) {
        self.send(id, &format!("/queue {args}")).await;
        let reply = self.reply_to(id).await;
        assert!(reply.contains(expect), "/queue {args}: {reply}");
    }

    /// Holds the model, sends `id` and waits until its turn is in its model call.
    async fn start_turn(&self, id: &str, text: &str) {
        self.fake.hold();
        let before = self.fake.requests().len();
        self.send(id, text).await;
        self.until("the turn's model call", |c| c.fake.requests().len() > before).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steer_puts_a_message_into_the_running_turn_after_its_tool_call() {
    let chat = Chat::start().await;
    chat.fake.script([
        Scripted::ToolCall { name: "write".into(), arguments: json!({"path": "trip.md", "content": "Lisbon"}) },
        Scripted::Text("Planned Lisbon, hotel included.".into()),
        Scripted::Text("You are welcome.".into()),
    ]);
    // The default mode is steer: no /queue needed.
    chat.start_turn("m1", "plan a trip to Lisbon").await;
    chat.send("m2", "and book a hotel too").await;
    chat.until("m2 offered to the running turn", |c| c.depth() == 2).await;
    chat.fake.release();
    assert_eq!(chat.reply_to("m1").await, "Planned Lisbon, hotel included.");
    // m2 came before the tool call started: the call gave way (paired with
    // OpenClaw's skip result) and the turn's next model call saw m2.
    let second = chat.request(1);
    let n = second.len();
    assert_eq!(second[n - 1], ("user".to_string(), "and book a hotel too".to_string()), "{second:?}");
    assert_eq!(second[n - 2].0, "tool", "{second:?}");
    assert!(second[n - 2].1.contains("Skipped to process an incoming message."), "{second:?}");
    assert_eq!(second[n - 3].0, "assistant", "{second:?}");
    assert!(!chat._dir.path().join("ws/trip.md").exists(), "the skipped tool did not run");
    assert_eq!(chat.fake.requests().len(), 2, "one turn answered both");
    chat.send("m3", "thanks").await;
    assert_eq!(chat.reply_to("m3").await, "You are welcome.");
    // Replies leave in order: had m2 been answered on its own, it would be before m3's.
    assert_eq!(chat.replied().await, ["m1", "m3"]);
    common::until_dropped(&chat.running, "queue", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followup_waits_for_the_running_turn_and_runs_next() {
    let chat = Chat::start().await;
    chat.queue("q", "followup debounce:0", "mode followup, debounce 0 ms").await;
    chat.fake.script([
        Scripted::ToolCall { name: "write".into(), arguments: json!({"path": "a.md", "content": "a"}) },
        Scripted::Text("first answer".into()),
        Scripted::Text("second answer".into()),
    ]);
    chat.start_turn("m1", "first question").await;
    chat.send("m2", "second question").await;
    chat.until("m2 waiting behind the turn", |c| c.depth() == 2).await;
    // /status is answered at once, beside the running turn, and shows the queue.
    chat.send("s", "/status").await;
    let status = chat.reply_to("s").await;
    assert!(status.contains("Queue: followup (2 running or waiting)"), "{status}");
    chat.fake.release();
    assert_eq!(chat.reply_to("m1").await, "first answer");
    assert_eq!(chat.reply_to("m2").await, "second answer");
    assert_eq!(chat.replied().await, ["q", "s", "m1", "m2"]);
    // Not steered: the turn's second call did not see m2; the next turn saw m1's answer first.
    assert_eq!(chat.user_texts(1), ["first question"]);
    assert_eq!(std::fs::read_to_string(chat._dir.path().join("ws/a.md")).unwrap(), "a", "its tool ran");
    let third = chat.request(2);
    let n = third.len();
    assert_eq!(third[n - 2], ("assistant".to_string(), "first answer".to_string()), "{third:?}");
    assert_eq!(third[n - 1], ("user".to_string(), "second question".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_answers_the_waiting_messages_in_one_turn() {
    let chat = Chat::start().await;
    chat.queue("q", "collect debounce:0", "mode collect").await;
    chat.fake.script([Scripted::Text("busy answer".into()), Scripted::Text("one answer for all".into())]);
    chat.start_turn("m1", "first").await;
    chat.send("m2", "second").await;
    chat.send("m3", "third").await;
    chat.send("m4", "fourth").await;
    chat.until("m3 and m4 collected with m2", |c| c.depth() == 4).await;
    chat.fake.release();
    assert_eq!(chat.reply_to("m2").await, "one answer for all");
    assert_eq!(chat.fake.requests().len(), 2, "one turn for the three waiting messages");
    let collected = chat.user_texts(1).pop().unwrap();
    assert_eq!(
        collected,
        "[Queued messages while agent was busy]\n\n---\nQueued #1 (from Alice)\nsecond\n\n---\nQueued #2 (from Alice)\nthird\n\n---\nQueued #3 (from Alice)\nfourth"
    );
    assert_eq!(chat.replied().await, ["q", "m1", "m2"]);
    // m3 and m4 are done once their batch's turn stored them.
    common::until_dropped(&chat.running, "queue", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_aborts_the_running_turn_and_runs_the_newest_message() {
    let chat = Chat::start().await;
    chat.queue("q", "interrupt", "mode interrupt").await;
    chat.fake.script([Scripted::Text("never delivered".into()), Scripted::Text("answer to the newest".into())]);
    chat.start_turn("m1", "write me an essay").await;
    chat.send("m2", "no, a haiku").await;
    chat.until("m2's turn in its model call", |c| c.fake.requests().len() == 2).await;
    chat.fake.release();
    assert_eq!(chat.reply_to("m2").await, "answer to the newest");
    assert_eq!(chat.replied().await, ["q", "m2"], "the interrupted turn sent nothing");
    // The newest turn's model call has both messages; the aborted one left no answer behind.
    assert_eq!(chat.user_texts(1), ["write me an essay", "no, a haiku"]);
    assert!(!chat.request(1).iter().any(|(_, t)| t == "never delivered"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_summarizes_what_it_drops_and_stop_clears_the_session() {
    let chat = Chat::start().await;
    chat.queue("q", "followup cap:1 drop:summarize debounce:0", "cap 1, drop summarize").await;
    chat.fake.script([
        Scripted::Text("first answer".into()),
        Scripted::Text("answer with the overflow".into()),
        Scripted::Text("never delivered".into()),
        Scripted::Text("after the stop".into()),
    ]);
    chat.start_turn("m1", "first").await;
    chat.send("m2", "second   message,\n dropped").await;
    chat.until("m2 waiting", |c| c.depth() == 2).await;
    chat.send("m3", "third").await;
    chat.until("m2 folded into the summary at the cap", |c| c.depth() == 3).await;
    chat.fake.release();
    assert_eq!(chat.reply_to("m1").await, "first answer");
    assert_eq!(chat.reply_to("m3").await, "answer with the overflow");
    assert_eq!(
        chat.user_texts(1).pop().unwrap(),
        "[Queue overflow] Dropped 1 message due to cap.\nSummary:\n- second message, dropped\n\nthird"
    );

    // /stop is answered beside the running turn: it aborts it and clears what waits.
    chat.start_turn("m4", "a long task").await;
    chat.send("m5", "and another").await;
    chat.until("m5 waiting", |c| c.depth() == 2).await;
    chat.send("s1", "/stop").await;
    assert_eq!(chat.reply_to("s1").await, "⚙️ Agent was aborted. Dropped 1 waiting message.");
    chat.fake.release();
    chat.send("m6", "still there?").await;
    assert_eq!(chat.reply_to("m6").await, "after the stop");
    assert_eq!(chat.replied().await, ["q", "m1", "m3", "s1", "m6"], "nothing for m2, m4 or m5");
    assert_eq!(chat.fake.requests().len(), 4);
    // m2 (summarized), m4 (aborted), m5 (cleared).
    common::until_dropped(&chat.running, "queue", 3).await;

    // /stop with nothing running; a malformed /queue gets its usage.
    chat.send("s2", "/stop").await;
    assert!(chat.reply_to("s2").await.starts_with("Nothing to stop"));
    chat.send("q2", "/queue sideways").await;
    let usage = chat.reply_to("q2").await;
    assert!(usage.contains("`sideways` is not a queue mode") && usage.contains("Usage: /queue"), "{usage}");
    chat.queue("q3", "default", "cleared. Queue: mode steer").await;
}

/// A message never borrows another sender's tool rights: in a session two
/// people share, bob (no `tools.elevated`) is not steered into the turn alice
/// (elevated) started — it waits its own turn, linked with bob's own rights —
/// and alice's tool call is not skipped for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_with_other_tool_rights_is_not_steered_into_the_running_turn() {
    let chat = Chat::start_with(r#"tools: { elevated: { enabled: true, allowFrom: { webhook: ["alice"] } } },"#).await;
    chat.fake.script([
        Scripted::ToolCall { name: "write".into(), arguments: json!({"path": "mine.md", "content": "alice"}) },
        Scripted::Text("alice's answer".into()),
        Scripted::Text("bob's answer".into()),
    ]);
    chat.start_turn("m1", "save my note").await;
    chat.send_from("m2", "bob", "and read it to me").await;
    chat.until("bob's message waiting", |c| c.depth() == 2).await;
    chat.fake.release();
    assert_eq!(chat.reply_to("m1").await, "alice's answer");
    assert_eq!(chat.reply_to("m2").await, "bob's answer");
    assert_eq!(std::fs::read_to_string(chat._dir.path().join("ws/mine.md")).unwrap(), "alice", "alice's tool ran");
    assert_eq!(chat.user_texts(1), ["save my note"], "bob's text did not enter alice's turn");
    assert_eq!(chat.user_texts(2).last().map(String::as_str), Some("and read it to me"));
}
