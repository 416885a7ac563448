//! Compaction through the gateway, as a chat user lives it (the JavaScript
//! webhook channel, the offline model, a 16,000-token window): a long
//! session is summarised into a `compaction` entry in OpenClaw's transcript
//! shape while the file keeps every message; the memory flush runs first as
//! a private turn that writes `memory/` through the agent's own `write`
//! tool and leaves no trace in the transcript; the model then sees the
//! summary and the recent tail; `/status` counts compactions; `/compact
//! <focus>` summarises on demand; a summary model that cannot answer leaves
//! the conversation as it was and says so.

use chela_fakes::openai::{OpenAiFake, Scripted};
use serde_json::Value;

use crate::common;
use common::say;

fn transcript_lines(root: &std::path::Path) -> Vec<Value> {
    let sessions = root.join("state/agents/work/sessions");
    let mut lines = Vec::new();
    for e in std::fs::read_dir(&sessions).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "jsonl") {
            let text = std::fs::read_to_string(e.path()).unwrap();
            lines.extend(text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()));
        }
    }
    lines
}

fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

/// A gateway whose agent `work` (the offline model, webhook account
/// `inbox`, `agent`'s extra fields) compacts with `compaction` (fields of
/// `agents.defaults.compaction`), summaries written by the OpenAI fake as
/// `openai/gpt-test` unless `compaction` names another model; `plugins`
/// beside the webhook channel.
async fn summarising_gateway(
    compaction: &str,
    agent: &str,
    plugins: &[&str],
) -> (OpenAiFake, tempfile::TempDir, chela_gateway::Running) {
    let fake = OpenAiFake::start("sk-test").await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let sep = if compaction.is_empty() { "" } else { "," };
    let config = format!(
        r#"{{
      models: {{ providers: {{ openai: {{ baseUrl: "{openai}" }} }} }},
      agents: {{
        defaults: {{ compaction: {{ keepRecentTokens: 10, model: "openai/gpt-test"{sep} {compaction} }} }},
        list: [ {{ id: "work", default: true, workspace: "{root}/ws", identity: {{ name: "Atlas" }}, {agent} }} ] }},
      channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
        openai = fake.base_url(),
        root = root.display()
    );
    let plugins: Vec<&str> = std::iter::once("channel_webhook_js").chain(plugins.iter().copied()).collect();
    let running = common::serve_with_vars(root, &config, &plugins, common::openai_test_key()).await;
    (fake, dir, running)
}

/// "… (message N of this conversation)." → N.
fn turn_number(reply: &str) -> usize {
    let at = reply.rfind("(message ").expect("an offline persona reply");
    reply[at + 9..].split_whitespace().next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_session_is_compacted_after_a_memory_flush_and_keeps_its_history_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("agent")).unwrap();
    std::fs::write(
        root.join("agent/offline-script.json5"),
        r#"{ rules: [{ when: "Pre-compaction memory flush", tool: "write",
                       arguments: { path: "memory/flush.md", content: "noted before compaction" } }] }"#,
    )
    .unwrap();
    let config = format!(
        r#"{{
      models: {{ providers: {{ offline: {{ models: [{{ id: "persona", name: "persona", contextWindow: 16000 }}] }} }} }},
      agents: {{
        defaults: {{ compaction: {{ keepRecentTokens: 1500, notifyUser: true, memoryFlush: {{ softThresholdTokens: 1500 }} }} }},
        list: [ {{ id: "work", default: true, workspace: "{root}/ws", agentDir: "{root}/agent",
                  identity: {{ name: "Atlas" }}, tools: {{ allow: ["write"] }} }} ] }},
      channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
        root = root.display()
    );
    let running = common::serve(root, &config, &["channel_webhook_js", "tool_write"]).await;
    let base = format!("http://{}", running.addr);
    let mut n = 0;

    assert!(
        say(&base, &mut n, "alice", "/compact")
            .await
            .starts_with("Nothing to compact: this session has no messages yet"),
        "an empty session"
    );
    let filler = "the itinerary needs trains, hotels and a museum pass; ".repeat(18); // ~1,000 characters
    let mut sent = 0;
    let compacted_reply = loop {
        sent += 1;
        assert!(sent <= 60, "no compaction after {sent} long messages");
        let reply = say(&base, &mut n, "alice", &format!("request {sent}: {filler}")).await;
        if reply.starts_with("🧹 Compacted:") {
            break reply;
        }
        assert!(!reply.contains("Compaction failed"), "{reply}");
        assert_eq!(turn_number(&reply), sent, "no compaction yet: the model sees every message");
    };
    assert!(sent > 3, "the window is not full at once: {sent}");
    assert!(compacted_reply.contains("compaction 1 of this session"), "{compacted_reply}");
    // The model answered from the summary and the recent tail: fewer user messages than were sent.
    let seen = turn_number(&compacted_reply);
    assert!(seen < sent, "the model saw {seen} of {sent} user messages after compacting");

    // The memory flush ran before, through the agent's own tool, and privately.
    assert_eq!(std::fs::read_to_string(root.join("ws/memory/flush.md")).unwrap(), "noted before compaction");
    let lines = transcript_lines(root);
    let all_text = serde_json::to_string(&lines).unwrap();
    assert!(!all_text.contains("Pre-compaction memory flush"), "the flush never enters the transcript");
    assert!(!all_text.contains("noted before compaction"), "nor does its tool call");

    // OpenClaw's shape; the whole history stays on disk.
    let compactions = of_type(&lines, "compaction");
    assert_eq!(compactions.len(), 1);
    let c = compactions[0];
    let first_kept = c["firstKeptEntryId"].as_str().unwrap();
    let kept = lines.iter().position(|l| l["id"] == first_kept).expect("firstKeptEntryId names an entry");
    assert_eq!(lines[kept]["type"], "message");
    assert!(c["tokensBefore"].as_u64().unwrap() > c["tokensAfter"].as_u64().unwrap(), "{c}");
    assert!(c["summary"].as_str().unwrap().contains("First request: “request 1:"), "{c}");
    let users = of_type(&lines, "message").iter().filter(|l| l["message"]["role"] == "user").count();
    assert_eq!(users, sent, "every user message is still in the file");

    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("state/agents/work/sessions/sessions.json")).unwrap())
            .unwrap();
    let entry = index.as_object().unwrap().values().next().unwrap();
    assert_eq!((entry["compactionCount"].as_u64(), entry["memoryFlushCompactionCount"].as_u64()), (Some(1), Some(0)));
    assert!(entry["memoryFlushAt"].as_i64().is_some(), "{entry}");

    let status = say(&base, &mut n, "alice", "/status").await;
    assert!(status.contains("🧹 Compactions: 1"), "{status}");

    // On demand, with the operator's focus; the summary re-distils the previous one.
    let manual = say(&base, &mut n, "alice", "/compact keep the <budget> in view").await;
    assert!(manual.starts_with("🧹 Compacted:") && manual.contains("compaction 2 of this session"), "{manual}");
    let lines = transcript_lines(root);
    let compactions = of_type(&lines, "compaction");
    assert_eq!(compactions.len(), 2);
    let summary = compactions[1]["summary"].as_str().unwrap();
    assert!(summary.contains("Focus: keep the &lt;budget&gt; in view"), "the focus is data: {summary}");
    assert!(summary.contains("First request: “request 1:"), "carried over: {summary}");
    let after = say(&base, &mut n, "alice", "and now?").await;
    // The summary, the tail /compact kept, and this message: still far fewer than were sent.
    assert!(turn_number(&after) <= seen + 1 && turn_number(&after) < sent, "{after} ({seen} seen, {sent} sent)");
    drop(running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_model_that_cannot_answer_leaves_the_conversation_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = format!(
        r#"{{
      agents: {{
        defaults: {{ compaction: {{ keepRecentTokens: 10, model: "nosuch/summariser" }} }},
        list: [ {{ id: "work", default: true, workspace: "{root}/ws", identity: {{ name: "Atlas" }} }} ] }},
      channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
        root = root.display()
    );
    let running = common::serve(root, &config, &["channel_webhook_js"]).await;
    let base = format!("http://{}", running.addr);
    let mut n = 0;
    for i in 0..3 {
        let _ = say(&base, &mut n, "alice", &format!("message {i}")).await;
    }
    let before = transcript_lines(root).len();
    let failed = say(&base, &mut n, "alice", "/compact").await;
    assert!(
        failed.starts_with("Compaction failed (agents.defaults.compaction.model `nosuch/summariser`: provider `nosuch` is not configured")
            && failed.ends_with("the conversation is unchanged."),
        "{failed}"
    );
    let lines = transcript_lines(root);
    assert_eq!((lines.len(), of_type(&lines, "compaction").len()), (before, 0), "nothing was written");
    let next = say(&base, &mut n, "alice", "still there?").await;
    assert_eq!(turn_number(&next), 4, "the whole conversation is still what the model sees: {next}");
    drop(running);
}

/// `compaction.mode: "safeguard"` (OpenClaw's quality guard): the summary
/// must have OpenClaw's five sections, keep the exact identifiers it was
/// given and reflect the latest ask. One that fails is asked for again once
/// (`qualityGuard.maxRetries` 1) with the reasons; when that fails too, the
/// compaction stops, nothing is written and the chat is told why. A summary
/// that passes is stored. The summariser is the OpenAI fake
/// (`compaction.model`), the agent the offline model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_safeguard_summary_that_fails_its_audit_is_asked_again_then_refused() {
    let (fake, dir, running) = summarising_gateway(r#"mode: "safeguard""#, "", &[]).await;
    let root = dir.path();
    let base = format!("http://{}", running.addr);
    let mut n = 0;
    let _ = say(&base, &mut n, "alice", "deploy build 4f9a2c1d from /srv/app/releases").await;
    let _ = say(&base, &mut n, "alice", "then tell ops about the payments backlog").await;
    let _ = say(&base, &mut n, "alice", "and one more thing").await;
    let before = transcript_lines(root).len();

    let vague = "We talked about deploying.";
    fake.script([Scripted::Text(vague.into()), Scripted::Text(vague.into())]);
    let failed = say(&base, &mut n, "alice", "/compact").await;
    assert!(
        failed.starts_with("Compaction failed (the summary failed the quality audit (missing_section:## Decisions")
            && failed.contains("missing_identifiers:4f9a2c1d,/srv/app/releases")
            && failed.contains("after 2 attempts); the conversation is unchanged."),
        "{failed}"
    );
    let asked: Vec<String> = fake.requests().iter().map(|(_, b)| b["messages"].to_string()).collect();
    assert_eq!(asked.len(), 2, "one attempt and one retry");
    assert!(asked[0].contains("## Pending user asks") && asked[0].contains("preserve literal values exactly"));
    assert!(asked[1].contains("Your previous summary failed the quality audit (missing_section:## Decisions"));
    let lines = transcript_lines(root);
    assert_eq!((lines.len(), of_type(&lines, "compaction").len()), (before, 0), "nothing was written");

    let good = "## Decisions\nDeploy build 4f9a2c1d.\n## Open TODOs\nTell ops.\n## Constraints/Rules\nNone.\n\
                ## Pending user asks\nTell ops about the payments backlog, and one more thing.\n## Exact identifiers\n/srv/app/releases";
    fake.script([Scripted::Text(good.into())]);
    let done = say(&base, &mut n, "alice", "/compact").await;
    assert!(done.starts_with("🧹 Compacted:"), "{done}");
    let lines = transcript_lines(root);
    let stored = of_type(&lines, "compaction");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["summary"], good);
    assert!(running.shutdown().await);
}

/// `recentTurnsPreserve` (safeguard mode): the last turn of what `/compact`
/// summarises is not sent to the summariser but stored verbatim after the
/// summary, under OpenClaw's `## Recent turns preserved verbatim`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safeguard_compaction_keeps_the_recent_turns_verbatim_beside_the_summary() {
    let (fake, dir, running) = summarising_gateway(r#"mode: "safeguard", recentTurnsPreserve: 1"#, "", &[]).await;
    let root = dir.path();
    let base = format!("http://{}", running.addr);
    let mut n = 0;
    let _ = say(&base, &mut n, "alice", "deploy build 4f9a2c1d today").await;
    let _ = say(&base, &mut n, "alice", "then book the harbour ferry for nine").await;
    let _ = say(&base, &mut n, "alice", "and water the plants").await;

    let summary = "## Decisions\nDeploy build 4f9a2c1d.\n## Open TODOs\nDeploy.\n## Constraints/Rules\nNone.\n\
                   ## Pending user asks\nDeploy today.\n## Exact identifiers\n4f9a2c1d";
    fake.script([Scripted::Text(summary.into())]);
    let done = say(&base, &mut n, "alice", "/compact").await;
    assert!(done.starts_with("🧹 Compacted:"), "{done}");
    let asked = fake.requests();
    assert_eq!(asked.len(), 1, "one summary request");
    let sent = asked[0].1["messages"].to_string();
    // The kept tail (`keepRecentTokens: 10`) is the last answer; before it,
    // the last user turn is preserved and the two before it summarised.
    assert!(sent.contains("deploy build 4f9a2c1d") && sent.contains("harbour ferry"), "older turns: {sent}");
    assert!(!sent.contains("water the plants"), "the preserved turn is not sent to the summariser: {sent}");

    let lines = transcript_lines(root);
    let stored = of_type(&lines, "compaction");
    assert_eq!(stored.len(), 1);
    let text = stored[0]["summary"].as_str().unwrap_or_default();
    let section = text.strip_prefix(summary).unwrap_or_else(|| panic!("the summary first: {text}"));
    assert!(
        section == "\n\n## Recent turns preserved verbatim\n- User: and water the plants",
        "only the last turn, verbatim: {section}"
    );
    assert!(running.shutdown().await);
}

/// `compaction.timeoutSeconds`: a summariser that does not answer in time
/// (the OpenAI fake held) fails the compaction, says why, and leaves the
/// conversation as it was; the next message is answered as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_request_past_its_timeout_fails_the_compaction_and_changes_nothing() {
    let (fake, dir, running) = summarising_gateway("timeoutSeconds: 1", "", &[]).await;
    let root = dir.path();
    let base = format!("http://{}", running.addr);
    let mut n = 0;
    for i in 0..3 {
        let _ = say(&base, &mut n, "alice", &format!("message {i}")).await;
    }
    let before = transcript_lines(root).len();
    fake.script([Scripted::Text("A summary that comes too late.".into())]);
    fake.hold();
    let started = std::time::Instant::now();
    let failed = say(&base, &mut n, "alice", "/compact").await;
    let waited = started.elapsed();
    fake.release();
    assert_eq!(
        failed,
        "Compaction failed (the summary request took longer than compaction.timeoutSeconds (1 s) and was stopped); \
         the conversation is unchanged."
    );
    assert!(waited >= std::time::Duration::from_secs(1), "it waited its timeout: {waited:?}");
    assert_eq!(fake.requests().len(), 1, "the summary was asked for");
    let lines = transcript_lines(root);
    assert_eq!((lines.len(), of_type(&lines, "compaction").len()), (before, 0), "nothing was written");
    let next = say(&base, &mut n, "alice", "still there?").await;
    assert_eq!(turn_number(&next), 4, "the whole conversation is still what the model sees: {next}");
    assert!(running.shutdown().await);
}

/// `memoryFlush.forceFlushTranscriptBytes`: once the history the model sees
/// holds that many bytes the memory flush runs, though the context is far
/// from its budget (the default 200,000-token window) and nothing is compacted;
/// below it, it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_flush_is_forced_by_transcript_bytes_without_a_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("agent")).unwrap();
    std::fs::write(
        root.join("agent/offline-script.json5"),
        r#"{ rules: [{ when: "Pre-compaction memory flush", tool: "write",
                       arguments: { path: "memory/flush.md", content: "noted early" } }] }"#,
    )
    .unwrap();
    let config = format!(
        r#"{{
      agents: {{
        defaults: {{ compaction: {{ memoryFlush: {{ forceFlushTranscriptBytes: "1kb" }} }} }},
        list: [ {{ id: "work", default: true, workspace: "{root}/ws", agentDir: "{root}/agent",
                  identity: {{ name: "Atlas" }}, tools: {{ allow: ["write"] }} }} ] }},
      channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }} }},
    }}"#,
        root = root.display()
    );
    let running = common::serve(root, &config, &["channel_webhook_js", "tool_write"]).await;
    let base = format!("http://{}", running.addr);
    let mut n = 0;
    let flushed = root.join("ws/memory/flush.md");
    let _ = say(&base, &mut n, "alice", "hello").await;
    assert!(!flushed.exists(), "a short history is not flushed");
    let mut turns = 1;
    while !flushed.exists() {
        assert!(turns < 12, "no flush after {turns} turns of ~200 bytes");
        let _ =
            say(&base, &mut n, "alice", &format!("note {turns}: {}", "pack the tent and the stove. ".repeat(4))).await;
        turns += 1;
    }
    assert!(turns >= 3, "flushed only once the history reached 1 KiB (after {turns} turns)");
    assert_eq!(std::fs::read_to_string(&flushed).unwrap(), "noted early");
    let lines = transcript_lines(root);
    assert!(of_type(&lines, "compaction").is_empty(), "nothing was compacted");
    assert!(running.shutdown().await);
}

/// With `notifyUser`, a memory flush that fails (its model answers 500) is
/// OpenClaw's degraded notice before the reply, which still comes; without
/// `notifyUser` it stays silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_memory_flush_is_a_notice_and_the_reply_goes_on() {
    for notify in [true, false] {
        let compaction = format!(
            r#"notifyUser: {notify}, memoryFlush: {{ model: "openai/gpt-test", forceFlushTranscriptBytes: 300 }}"#
        );
        let (fake, _dir, running) =
            summarising_gateway(&compaction, r#"tools: { allow: ["write"] }"#, &["tool_write"]).await;
        let base = format!("http://{}", running.addr);
        let mut n = 0;
        let _ = say(&base, &mut n, "alice", &"a long first message to fill the history. ".repeat(4)).await;
        fake.script([Scripted::Status(500)]);
        let reply = say(&base, &mut n, "alice", "and the second").await;
        assert_eq!(fake.requests().len(), 1, "the flush asked its model once");
        let notice = "⚠️ Memory maintenance temporarily failed; continuing your reply.\n\n";
        assert_eq!(reply.starts_with(notice), notify, "{reply}");
        assert!(reply.contains("Atlas") && reply.contains("and the second"), "the reply still comes: {reply}");
        assert!(running.shutdown().await);
    }
}

/// `compaction.thinkingLevel`: summary requests ask for that level (OpenAI's
/// `reasoning_effort`), `inherit` for the session's own (`/think`), and
/// unset they ask for none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_requests_think_as_compaction_thinking_level_says() {
    for (level, think, expected) in
        [(Some("high"), None, Some("high")), (Some("inherit"), Some("medium"), Some("medium")), (None, None, None)]
    {
        let thinking = level.map(|l| format!("thinkingLevel: \"{l}\"")).unwrap_or_default();
        let (fake, _dir, running) = summarising_gateway(&thinking, "", &[]).await;
        let base = format!("http://{}", running.addr);
        let mut n = 0;
        if let Some(t) = think {
            let set = say(&base, &mut n, "alice", &format!("/think {t}")).await;
            assert!(set.contains(t), "{set}");
        }
        for i in 0..3 {
            let _ = say(&base, &mut n, "alice", &format!("message {i}")).await;
        }
        fake.script([Scripted::Text("The summary.".into())]);
        let done = say(&base, &mut n, "alice", "/compact").await;
        assert!(done.starts_with("🧹 Compacted:"), "{done}");
        let asked = fake.requests();
        assert_eq!(asked.len(), 1, "{level:?}");
        assert_eq!(asked[0].1["reasoning_effort"].as_str(), expected, "{level:?}: {}", asked[0].1);
        assert!(running.shutdown().await);
    }
}
