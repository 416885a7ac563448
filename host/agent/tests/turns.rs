//! Agent turns end to end: real config, real tool components (built from
//! `plugins/` by `cargo xtask build-plugins`), real files, the offline model.

use std::path::PathBuf;
use std::sync::Arc;

use chela_agent::runtime::RuntimeParts;
use chela_agent::store::{Message, SessionStore};
use chela_agent::{AgentRuntime, Inbound, Origin, Providers};
use chela_core::config::load_str;
use chela_core::config::paths::Environment;
use chela_core::config::schema::DmScope;
use chela_core::ids::ChatType;
use chela_core::routing::SessionTarget;
use chela_core::session_key::{PeerKeyParts, SessionKey};
use chela_core::snapshot::SnapshotCell;
use chela_plugin::capability::secrets::SecretStore;
use chela_plugin::{Limits, PluginEngine, Plugins};

fn wasm(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    assert!(p.exists(), "{} is missing: run `cargo xtask build-plugins` first", p.display());
    p
}

struct World {
    dir: tempfile::TempDir,
    runtime: Arc<AgentRuntime>,
    announced: Arc<std::sync::Mutex<Vec<chela_agent::Announcement>>>,
}

const CONFIG: &str = r#"{
  agents: { list: [
    { id: "work", default: true, workspace: "$DIR/ws-work", identity: { name: "Atlas" }, tools: { allow: ["read", "write"] } },
    { id: "support", workspace: "$DIR/ws-support", identity: { name: "Sage", emoji: "🛟" }, tools: { deny: ["write"] } },
  ] },
}"#;

impl World {
    async fn new(config: &str) -> World {
        World::with_plugins(config, &["tool_read", "tool_write"]).await
    }

    async fn with_plugins(config: &str, names: &[&str]) -> World {
        let dir = tempfile::tempdir().unwrap();
        let pdir = dir.path().join("plugins");
        std::fs::create_dir_all(&pdir).unwrap();
        for n in names {
            std::fs::copy(wasm(n), pdir.join(format!("{n}.wasm"))).unwrap();
        }
        let engine = Arc::new(PluginEngine::new(Limits::default()).unwrap());
        let plugins = Arc::new(Plugins::new(engine, vec![pdir], Some(dir.path().join("cache"))));
        assert!(plugins.rescan().await.failed.is_empty());
        let env = Environment {
            home: dir.path().into(),
            state_dir: Some(dir.path().join("state").display().to_string()),
            ..Default::default()
        };
        let text = config.replace("$DIR", &dir.path().display().to_string());
        let cfg = Arc::new(load_str(&text, None).expect("config loads").config);
        let secrets: Arc<chela_agent::runtime::SecretsFor> = Arc::new(|_: &str| Arc::new(SecretStore::default()));
        // Announcements (sub-agents reporting back) are collected for the test.
        let announced = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = announced.clone();
        let mut parts = RuntimeParts::new(SnapshotCell::of(cfg), env, plugins, Providers::builtin(), secrets);
        parts.announcer = Some(Arc::new(move |a: chela_agent::Announcement| sink.lock().unwrap().push(a)));
        let runtime = AgentRuntime::new(parts);
        World { dir, runtime, announced }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    async fn say(&self, agent: &str, peer: &str, text: &str) -> chela_agent::TurnOutcome {
        self.runtime.run(&self.runtime.snapshot(), inbound(&self.runtime, agent, peer, text)).await.expect("turn runs")
    }
}

/// A Telegram DM from `peer` to `agent`, in the per-channel-peer session core builds for it.
fn inbound(rt: &AgentRuntime, agent: &str, peer: &str, text: &str) -> Inbound {
    let cfg = rt.config();
    let key = SessionKey::peer(&PeerKeyParts {
        agent_id: agent,
        channel: "telegram",
        peer_kind: Some("direct"),
        peer_id: peer,
        dm_scope: DmScope::PerChannelPeer,
        ..PeerKeyParts::default()
    });
    Inbound {
        target: SessionTarget::of_key(&cfg, key, ChatType::Direct),
        text: text.into(),
        sender_id: Some(peer.into()),
        origin: Origin {
            provider: Some("telegram".into()),
            from: Some(format!("telegram:{peer}")),
            ..Origin::default()
        },
        extra_system: None,
        message_ref: None,
        model_override: None,
        sampling: None,
        scheduled: None,
        media: Vec::new(),
        delivery: None,
        live_tool_summaries: false,
        exec_tightening: Default::default(),
    }
}

/// A runtime on `text` (the config) with its providers built from the
/// config and `vars` (as the binary builds them), its state under `dir`,
/// and the tool components `tools` in `<dir>/plugins`.
async fn provider_runtime(
    dir: &std::path::Path,
    text: &str,
    vars: Arc<chela_core::config::EnvVars>,
    tools: &[&str],
) -> Arc<AgentRuntime> {
    let providers = Providers::from_config(&load_str(text, None).expect("config loads").config, vars);
    runtime_with(dir, text, providers, tools).await
}

/// [`provider_runtime`] with `providers` as given.
async fn runtime_with(dir: &std::path::Path, text: &str, providers: Providers, tools: &[&str]) -> Arc<AgentRuntime> {
    let pdir = dir.join("plugins");
    std::fs::create_dir_all(&pdir).unwrap();
    for t in tools {
        std::fs::copy(wasm(t), pdir.join(format!("{t}.wasm"))).unwrap();
    }
    let plugins = Arc::new(Plugins::new(Arc::new(PluginEngine::new(Limits::default()).unwrap()), vec![pdir], None));
    plugins.rescan().await;
    let cfg = Arc::new(load_str(text, None).expect("config loads").config);
    let env = Environment {
        home: dir.into(),
        state_dir: Some(dir.join("state").display().to_string()),
        ..Default::default()
    };
    let secrets: Arc<chela_agent::runtime::SecretsFor> = Arc::new(|_: &str| Arc::new(SecretStore::default()));
    AgentRuntime::new(RuntimeParts::new(SnapshotCell::of(cfg), env, plugins, providers, secrets))
}

fn no_vars() -> Arc<chela_core::config::EnvVars> {
    Arc::new(|_: &str| None)
}

fn transcript(store: &dyn SessionStore, key: &str) -> Vec<Message> {
    let entry = store.get(key).unwrap().expect("session exists");
    store.transcript(&entry).unwrap().messages.iter().map(|m| m.as_ref().clone()).collect()
}

#[tokio::test]
async fn an_allowed_tool_runs_a_denied_one_cannot() {
    let w = World::new(CONFIG).await;
    let args = r#"/tool write {"path": "note.txt", "content": "from the model"}"#;
    let out = w.say("work", "1", args).await;
    assert_eq!(out.tool_calls.len(), 1, "{out:?}");
    assert!(out.tool_calls[0].ok && out.reply.contains("wrote 14 bytes to note.txt"), "{out:?}");
    assert_eq!(std::fs::read_to_string(w.path("ws-work/note.txt")).unwrap(), "from the model");

    let out = w.say("support", "1", args).await;
    assert!(out.tool_calls.is_empty(), "the model never saw `write`: {out:?}");
    assert!(out.reply.contains("no tool `write`"), "{}", out.reply);
    assert!(!w.path("ws-support/note.txt").exists());

    // The transcript is pi-shaped: user, assistant(toolCall), toolResult, assistant(text).
    let store = w.runtime.store("work").unwrap();
    let roles: Vec<&str> = transcript(store.as_ref(), "agent:work:telegram:direct:1")
        .iter()
        .map(|m| match m {
            Message::User { .. } => "user",
            Message::Assistant { .. } => "assistant",
            Message::ToolResult { .. } => "toolResult",
        })
        .collect();
    assert_eq!(roles, ["user", "assistant", "toolResult", "assistant"]);
    let session_dir = w.path("state/agents/work/sessions");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(session_dir.join("sessions.json")).unwrap()).unwrap();
    let entry = &index["agent:work:telegram:direct:1"];
    assert_eq!(entry["origin"]["provider"], "telegram");
    assert!(entry["totalTokens"].as_u64().is_some_and(|t| t > 0));
    let first = std::fs::read_to_string(session_dir.join(format!("{}.jsonl", out_session(&index)))).unwrap();
    assert!(first.lines().next().unwrap().contains(r#""type":"session","version":3"#));
}

fn out_session(index: &serde_json::Value) -> String {
    index["agent:work:telegram:direct:1"]["sessionId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn persona_is_reread_every_turn_and_sessions_continue_until_reset() {
    let w = World::new(CONFIG).await;
    std::fs::create_dir_all(w.path("ws-support")).unwrap();
    std::fs::write(w.path("ws-support/SOUL.md"), "Patient and kind.\n").unwrap();
    let a = w.say("support", "7", "hello").await;
    assert!(a.reply.starts_with("🛟 Sage (agent `support`) here. Patient and kind."), "{}", a.reply);
    assert!(a.reply.contains("message 1 of this conversation"));
    std::fs::write(w.path("ws-support/SOUL.md"), "Terse.\n").unwrap();
    let b = w.say("support", "7", "again").await;
    assert!(b.reply.contains(" Terse. ") && b.reply.contains("message 2 of"), "{}", b.reply);
    assert_eq!(a.session_id, b.session_id);
    // Another sender is another session of the same agent.
    let other = w.say("support", "8", "hi").await;
    assert!(other.reply.contains("message 1 of") && other.session_id != a.session_id);

    let r = w.say("support", "7", "/new what now").await;
    assert!(r.reset && r.session_id != a.session_id);
    assert!(r.reply.contains("“what now” (message 1 of"), "{}", r.reply);
    let archived = std::fs::read_dir(w.path("state/agents/support/sessions"))
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with(&format!("{}.jsonl.reset.", a.session_id)));
    assert!(archived, "the old transcript is archived, not deleted");
    let bare = w.say("support", "7", "/reset").await;
    assert!(bare.reset && bare.reply == "New session started with Sage.", "{}", bare.reply);
}

#[tokio::test]
async fn turns_of_one_session_never_interleave() {
    let w = World::new(CONFIG).await;
    let rt = w.runtime.as_ref();
    let snap = rt.snapshot();
    let (a, b, c, d) = tokio::join!(
        rt.run(&snap, inbound(rt, "work", "9", "one")),
        rt.run(&snap, inbound(rt, "work", "9", "two")),
        rt.run(&snap, inbound(rt, "work", "9", "three")),
        rt.run(&snap, inbound(rt, "work", "9", "four")),
    );
    for (n, r) in [a, b, c, d].into_iter().enumerate() {
        assert!(r.unwrap().reply.contains(&format!("message {} of", n + 1)));
    }
    let store = rt.store("work").unwrap();
    let texts: Vec<String> =
        transcript(store.as_ref(), "agent:work:telegram:direct:9").iter().map(Message::text).collect();
    let users: Vec<&str> = texts.iter().step_by(2).map(String::as_str).collect();
    assert_eq!(users, ["one", "two", "three", "four"]);
    assert!(texts.iter().skip(1).step_by(2).all(|t| t.starts_with("Atlas")));
}

#[tokio::test]
async fn unknown_agent_and_bad_model_are_clear_errors() {
    let w = World::new(CONFIG).await;
    let err = w.runtime.run(&w.runtime.snapshot(), inbound(&w.runtime, "nobody", "1", "hi")).await.unwrap_err();
    assert_eq!(err.to_string(), "unknown agent `nobody`");
    let w = World::new(
        r#"{agents: {list: [{id: "a", workspace: "$DIR/a", model: {primary: "anthropic/claude", fallbacks: ["offline/persona"]}}, {id: "b", model: "nope"}]}}"#,
    )
    .await;
    let ok = w.runtime.run(&w.runtime.snapshot(), inbound(&w.runtime, "a", "1", "hi")).await.unwrap();
    assert_eq!(ok.model, "offline/persona", "fell back after the unavailable provider");
    let err = w.runtime.run(&w.runtime.snapshot(), inbound(&w.runtime, "b", "1", "hi")).await.unwrap_err().to_string();
    assert!(err.contains("model `nope` must be written `provider/model`"), "{err}");
}

const SESSIONS: &str = r#"{
  tools: { sessions: { visibility: "all" }, agentToAgent: { enabled: true, allow: ["work", "support"] } },
  agents: { list: [
    { id: "work", default: true, workspace: "$DIR/ws-work", identity: { name: "Atlas" } },
    { id: "support", workspace: "$DIR/ws-support", identity: { name: "Sage" } },
    { id: "ops", workspace: "$DIR/ws-ops", identity: { name: "Ops" } },
  ] },
}"#;

#[tokio::test]
async fn sessions_tools_see_and_message_only_what_policy_allows() {
    let w = World::with_plugins(SESSIONS, &["tool_sessions_list", "tool_sessions_history", "tool_sessions_send"]).await;
    w.say("support", "5", "my printer is on fire").await;
    w.say("ops", "6", "secret ops chatter").await;

    let listed = w.say("work", "1", "/tool sessions_list {}").await;
    assert!(listed.tool_calls.iter().all(|c| c.ok), "{listed:?}");
    assert!(listed.reply.contains("agent:support:telegram:direct:5"), "{}", listed.reply);
    assert!(!listed.reply.contains("agent:ops:"), "ops is not allowed agent-to-agent: {}", listed.reply);

    let hist = w.say("work", "1", r#"/tool sessions_history {"key": "agent:support:telegram:direct:5"}"#).await;
    assert!(hist.reply.contains("my printer is on fire"), "{}", hist.reply);
    let denied = w.say("work", "1", r#"/tool sessions_history {"key": "agent:ops:telegram:direct:6"}"#).await;
    assert!(denied.reply.contains("failed") && denied.reply.contains("not visible"), "{}", denied.reply);

    let sent = w
        .say(
            "work",
            "1",
            r#"/tool sessions_send {"key": "agent:support:telegram:direct:5", "text": "escalated by Atlas"}"#,
        )
        .await;
    assert!(sent.reply.contains(r#""status":"accepted""#), "{}", sent.reply);
    let store = w.runtime.store("support").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let texts: Vec<String> =
            transcript(store.as_ref(), "agent:support:telegram:direct:5").iter().map(Message::text).collect();
        if texts.iter().any(|t| t.contains("You said: “escalated by Atlas”")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "support never answered: {texts:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let to_ops =
        w.say("work", "1", r#"/tool sessions_send {"key": "agent:ops:telegram:direct:6", "text": "hi"}"#).await;
    assert!(to_ops.reply.contains("may not message agent `ops`"), "{}", to_ops.reply);
    // ops itself (not in agentToAgent.allow) sees only its own sessions.
    let ops = w.say("ops", "6", "/tool sessions_list {}").await;
    assert!(!ops.reply.contains("agent:support:") && !ops.reply.contains("agent:work:"), "{}", ops.reply);
}

fn user_turns(w: &World, agent: &str, key: &str) -> usize {
    let store = w.runtime.store(agent).unwrap();
    transcript(store.as_ref(), key).iter().filter(|m| matches!(m, Message::User { .. })).count()
}

/// `sessions_send` with a wait returns the target's reply; then the two
/// sessions answer each other, alternating, at most `maxPingPongTurns` times,
/// and not at all once one says `REPLY_SKIP`.
#[tokio::test]
async fn agent_to_agent_replies_are_capped_by_max_ping_pong_turns() {
    let config = SESSIONS.replacen("tools: {", "session: { agentToAgent: { maxPingPongTurns: 3 } },\n  tools: {", 1);
    let w = World::with_plugins(&config, &["tool_sessions_send"]).await;
    let (work, support) = ("agent:work:telegram:direct:1", "agent:support:telegram:direct:5");
    w.say("support", "5", "my printer is on fire").await;
    let send = format!(r#"/tool sessions_send {{"key": "{support}", "text": "status?", "timeoutSeconds": 30}}"#);
    let out = w.say("work", "1", &send).await;
    assert!(out.reply.contains(r#""status":"ok""#) && out.reply.contains("You said: “status?”"), "{}", out.reply);
    w.runtime.settle().await;
    // work: its own message + ping-pong replies 1 and 3; support: 2 own + the send + reply 2.
    assert_eq!(user_turns(&w, "work", work), 3);
    assert_eq!(user_turns(&w, "support", support), 3);
    let store = w.runtime.store("work").unwrap();
    let last = transcript(store.as_ref(), work).into_iter().rev().find(|m| matches!(m, Message::User { .. }));
    assert!(last.unwrap().text().contains("Sage"), "the requester hears the target's words");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path("state/agents/work/sessions/sessions.json")).unwrap())
            .unwrap();
    assert_eq!(index[work]["origin"]["provider"], "telegram", "a chat session keeps its chat origin");

    // REPLY_SKIP from the target: no exchange at all.
    let skip = World::with_plugins(&config, &["tool_sessions_send"]).await;
    let agent_dir = skip.path("state/agents/support/agent");
    std::fs::create_dir_all(&agent_dir).unwrap();
    std::fs::write(agent_dir.join("offline-script.json5"), "{rules: [{when: 'status', reply: 'REPLY_SKIP'}]}").unwrap();
    skip.say("support", "5", "my printer is on fire").await;
    skip.say("work", "1", &send).await;
    skip.runtime.settle().await;
    assert_eq!(user_turns(&skip, "work", work), 1);
    assert_eq!(user_turns(&skip, "support", support), 2);
}

const SUBAGENTS: &str = r#"{
  agents: { list: [
    { id: "work", default: true, workspace: "$DIR/ws-work", identity: { name: "Atlas" },
      subagents: { allowAgents: ["research"] }, tools: { deny: ["write"] } },
    { id: "research", workspace: "$DIR/ws-research", identity: { name: "Scout" },
      tools: { allow: ["read", "write", "sessions_spawn", "session_status"] } },
    { id: "ops", workspace: "$DIR/ws-ops", identity: { name: "Ops" } },
  ] },
}"#;

/// `sessions_spawn`: only agents in `subagents.allowAgents`; the child runs
/// in its own `subagent` session with the intersection of its tools and its
/// parent's (here: no `write`, no spawning); its result comes back to the
/// parent session, whose answer is announced to the parent's chat.
#[tokio::test]
async fn a_sub_agent_has_no_tool_its_parent_lacks_and_reports_back() {
    let plugins = ["tool_read", "tool_write", "tool_sessions_spawn", "tool_session_status"];
    let w = World::with_plugins(SUBAGENTS, &plugins).await;
    let announced = w.announced.clone();
    let parent = "agent:work:telegram:direct:1";

    let denied = w.say("work", "1", r#"/tool sessions_spawn {"task": "hi", "agentId": "ops"}"#).await;
    assert!(denied.reply.contains("may not spawn agent `ops`"), "{}", denied.reply);

    let task = r#"/tool write {\"path\": \"x.txt\", \"content\": \"y\"}"#;
    let out = w.say("work", "1", &format!(r#"/tool sessions_spawn {{"task": "{task}", "agentId": "research"}}"#)).await;
    assert!(out.reply.contains(r#""status":"accepted""#), "{}", out.reply);
    let child = out.reply.split("agent:research:subagent:").nth(1).expect("child key").split('"').next().unwrap();
    let child = format!("agent:research:subagent:{child}");
    let again = r#"/tool sessions_spawn {\"task\": \"deeper\"}"#;
    w.say("work", "1", &format!(r#"/tool sessions_spawn {{"task": "{again}", "agentId": "research"}}"#)).await;
    w.runtime.settle().await;

    let research = w.runtime.store("research").unwrap();
    let said: Vec<String> = transcript(research.as_ref(), &child).iter().map(Message::text).collect();
    assert!(said.iter().any(|t| t.contains("no tool `write`")), "the parent lacks write: {said:?}");
    assert!(!w.path("ws-research/x.txt").exists());
    let children: Vec<String> = research.list().unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(children.len(), 2, "{children:?}");
    for key in &children {
        let texts: Vec<String> = transcript(research.as_ref(), key).iter().map(Message::text).collect();
        assert!(!texts.iter().any(|t| t.contains("\"status\":\"accepted\"")), "a sub-agent spawned: {texts:?}");
    }

    let announced = std::mem::take(&mut *announced.lock().unwrap());
    assert_eq!(announced.len(), 2, "{announced:?}");
    assert!(announced.iter().all(|a| a.session_key == parent && a.text.contains("Atlas")), "{announced:?}");
    let work = w.runtime.store("work").unwrap();
    let heard: Vec<String> = transcript(work.as_ref(), parent).iter().map(Message::text).collect();
    assert!(heard.iter().any(|t| t.contains("[sub-agent `research`") && t.contains("no tool `write`")), "{heard:?}");

    let status = w.say("work", "1", &format!(r#"/tool session_status {{"key": "{child}"}}"#)).await;
    assert!(status.reply.contains(&format!(r#""spawnedBy":"{parent}""#)), "{}", status.reply);
    assert!(status.reply.contains(r#""agentId":"research""#), "{}", status.reply);
    let own = w.say("work", "1", "/tool session_status {}").await;
    assert!(
        own.reply.contains(r#""model":"offline/persona""#) && own.reply.contains(r#""spawnedBy":null"#),
        "{}",
        own.reply
    );
}

/// `/exec security=deny <task>` holds for the whole task: a sub-agent the
/// turn spawns runs without `exec` too, while one spawned from an ordinary
/// turn of the same session runs its command.
#[tokio::test]
async fn a_sub_agent_inherits_its_spawning_turns_exec_rules() {
    let config = r#"{
      agents: { list: [
        { id: "work", default: true, workspace: "$DIR/ws-work", identity: { name: "Atlas" },
          tools: { allow: ["exec", "sessions_spawn"] } },
      ] },
    }"#;
    let w = World::with_plugins(config, &["tool_exec", "tool_sessions_spawn"]).await;
    let spawn = |prefix: &str| {
        let task = r#"/tool exec {\"command\": \"echo child-ran-$((6*7))\"}"#;
        format!(r#"{prefix}/tool sessions_spawn {{"task": "{task}"}}"#)
    };
    let child_of = |reply: &str| -> String {
        let id = reply.split("agent:work:subagent:").nth(1).expect("child key").split('"').next().unwrap_or_default();
        format!("agent:work:subagent:{id}")
    };
    let store = w.runtime.store("work").unwrap();

    let free = w.say("work", "1", &spawn("")).await;
    assert!(free.reply.contains(r#""status":"accepted""#), "{}", free.reply);
    w.runtime.settle().await;
    let said: Vec<String> = transcript(store.as_ref(), &child_of(&free.reply)).iter().map(Message::text).collect();
    assert!(said.iter().any(|t| t.contains("child-ran-42")), "an ordinary turn's child runs commands: {said:?}");

    let denied = w.say("work", "1", &spawn("/exec security=deny ")).await;
    assert!(denied.reply.contains(r#""status":"accepted""#), "{}", denied.reply);
    w.runtime.settle().await;
    let said: Vec<String> = transcript(store.as_ref(), &child_of(&denied.reply)).iter().map(Message::text).collect();
    assert!(!said.iter().any(|t| t.contains("child-ran-42")), "the child ran a command its turn denied: {said:?}");
    assert!(said.iter().any(|t| t.contains("no tool `exec`")), "{said:?}");
}

/// `tools.elevated`: a sandboxed session runs commands on the host only for
/// senders both the global and the agent's `elevated` allow.
#[tokio::test]
async fn elevated_exec_leaves_the_sandbox_only_for_allowed_senders() {
    let config = r#"{
      tools: { elevated: { enabled: true, allowFrom: { telegram: ["42"] } } },
      agents: { list: [
        { id: "box", default: true, workspace: "$DIR/ws-box", sandbox: { mode: "all", workspaceAccess: "rw" } },
      ] },
    }"#;
    let w = World::with_plugins(config, &["tool_exec"]).await;
    // A host file outside the gateway's dirs and outside /tmp (host commands get a private /tmp;
    // the checkout itself may be under /tmp).
    let host = tempfile::tempdir_in("/var/tmp").unwrap();
    std::fs::write(host.path().join("outside.txt"), "host file").unwrap();
    let cat = |elevated: bool| {
        let cmd = format!("cat {} 2>/dev/null || echo not-here", host.path().join("outside.txt").display());
        format!(r#"/tool exec {{"command": "{cmd}", "elevated": {elevated}}}"#)
    };
    let stranger = w.say("box", "7", &cat(true)).await;
    assert!(stranger.reply.contains("elevated exec is not allowed"), "{}", stranger.reply);
    let owner = w.say("box", "42", &cat(true)).await;
    assert!(owner.reply.contains("host file"), "{}", owner.reply);
    // `/elevated off` takes the right away for this session; `/elevated on` gives it back;
    // a sender without the right cannot give it to themselves.
    assert_eq!(w.say("box", "42", "/elevated").await.reply, "Elevated: on (the default; /elevated on|off|ask|full).");
    assert!(w.say("box", "42", "/elevated off").await.reply.starts_with("Elevated off"));
    let off = w.say("box", "42", &cat(true)).await;
    assert!(off.reply.contains("elevated exec is not allowed"), "{}", off.reply);
    assert!(w.say("box", "42", "/elev: full").await.reply.starts_with("Elevated full"));
    assert!(w.say("box", "42", &cat(true)).await.reply.contains("host file"));
    let refused = w.say("box", "7", "/elevated on").await;
    assert!(refused.reply.starts_with("Elevated mode is not available to you here"), "{}", refused.reply);
    assert!(w.say("box", "7", &cat(true)).await.reply.contains("elevated exec is not allowed"));
    assert!(w.say("box", "42", "/exec").await.reply.starts_with("Exec: this session's commands run in the sandbox"));
    if chela_plugin::capability::process::bubblewrap().is_some() {
        let boxed = w.say("box", "42", &cat(false)).await;
        assert!(!boxed.reply.contains("host file"), "not elevated: sandboxed: {}", boxed.reply);
    }
}

/// The OpenAI-compatible provider against the OpenAI fake: streamed tool
/// calls run through the agent's linked tools; credentials are per agent.
#[tokio::test]
async fn openai_provider_streams_tool_calls_with_the_agents_own_key() {
    use chela_fakes::openai::{OpenAiFake, Scripted};
    let fake = OpenAiFake::start("sk-work").await;
    fake.script([
        Scripted::ToolCall { name: "read".into(), arguments: serde_json::json!({"path": "note.txt"}) },
        Scripted::Text("The note says: from disk".into()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let cfg_text = format!(
        r#"{{
  models: {{ providers: {{ openai: {{ baseUrl: "{base}" }} }} }},
  agents: {{ list: [
    {{ id: "work", default: true, workspace: "$DIR/ws-work", agentDir: "$DIR/agent-work", identity: {{ name: "Atlas" }},
      model: {{ primary: "openai/gpt-test", fallbacks: ["offline/persona"] }}, tools: {{ allow: ["read"] }} }},
    {{ id: "support", workspace: "$DIR/ws-support", agentDir: "$DIR/agent-support", identity: {{ name: "Sage" }},
      model: {{ primary: "openai/gpt-test", fallbacks: ["offline/persona"] }} }},
  ] }},
}}"#,
        base = fake.base_url()
    );
    let text = cfg_text.replace("$DIR", &dir.path().display().to_string());
    std::fs::create_dir_all(dir.path().join("agent-work")).unwrap();
    std::fs::write(
        dir.path().join("agent-work/auth-profiles.json"),
        r#"{"version": 1, "profiles": {"openai:default": {"type": "api_key", "provider": "openai", "key": "sk-work"}}}"#,
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("ws-work")).unwrap();
    std::fs::write(dir.path().join("ws-work/note.txt"), "from disk").unwrap();

    let rt = provider_runtime(dir.path(), &text, no_vars(), &["tool_read"]).await;

    let out = rt.run(&rt.snapshot(), inbound(&rt, "work", "1", "what does my note say?")).await.unwrap();
    assert_eq!(out.reply, "The note says: from disk");
    assert_eq!(out.model, "openai/gpt-test");
    assert_eq!((out.tool_calls.len(), out.tool_calls[0].ok), (1, true));
    assert_eq!((out.input_tokens, out.output_tokens), (22, 14), "usage of both rounds");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|(key, _)| key.as_deref() == Some("sk-work")));
    let first = &reqs[0].1;
    assert_eq!(first["model"], "gpt-test");
    assert_eq!(first["tools"][0]["function"]["name"], "read");
    assert!(first["messages"][0]["content"].as_str().unwrap().contains("You are Atlas"));
    let second = &reqs[1].1["messages"];
    let tool_msg = second.as_array().unwrap().iter().find(|m| m["role"] == "tool").expect("the tool result went back");
    assert_eq!(
        (tool_msg["tool_call_id"].as_str(), tool_msg["content"].as_str()),
        (Some("call_fake1"), Some("from disk"))
    );

    // `support` has no credential of its own: nothing is sent with work's key; it falls back.
    let out = rt.run(&rt.snapshot(), inbound(&rt, "support", "2", "hi")).await.unwrap();
    assert_eq!(out.model, "offline/persona");
    assert!(out.reply.starts_with("Sage (agent `support`) here."), "{}", out.reply);
    assert_eq!(fake.requests().len(), 2, "no request for an agent without a key");

    // A 429 from the provider moves on to the fallback too.
    fake.script([Scripted::Status(429)]);
    let out = rt.run(&rt.snapshot(), inbound(&rt, "work", "3", "again")).await.unwrap();
    assert_eq!(out.model, "offline/persona");
}

/// The Anthropic provider against the Anthropic fake: streamed `tool_use`
/// blocks run through the agent's tools; the result goes back as a
/// `tool_result` block; the key is the agent's own.
#[tokio::test]
async fn anthropic_provider_streams_tool_use_with_the_agents_own_key() {
    use chela_fakes::anthropic::{AnthropicFake, Scripted};
    let fake = AnthropicFake::start("sk-ant-api-work").await;
    fake.script([
        Scripted::ToolCall { name: "read".into(), arguments: serde_json::json!({"path": "todo.txt"}) },
        Scripted::Text("Your todo: ship it".into()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"{{
  models: {{ providers: {{ anthropic: {{ baseUrl: "{base}" }} }} }},
  agents: {{ list: [
    {{ id: "work", default: true, workspace: "$DIR/ws-work", agentDir: "$DIR/agent-work", identity: {{ name: "Atlas" }},
      model: {{ primary: "anthropic/claude-test", fallbacks: ["offline/persona"] }}, tools: {{ allow: ["read"] }} }},
    {{ id: "support", workspace: "$DIR/ws-support", agentDir: "$DIR/agent-support", identity: {{ name: "Sage" }},
      model: {{ primary: "anthropic/claude-test", fallbacks: ["offline/persona"] }} }},
  ] }},
}}"#,
        base = fake.base_url()
    )
    .replace("$DIR", &dir.path().display().to_string());
    std::fs::create_dir_all(dir.path().join("agent-work")).unwrap();
    std::fs::write(
        dir.path().join("agent-work/auth-profiles.json"),
        r#"{"version": 1, "profiles": {"anthropic:default": {"type": "api_key", "provider": "anthropic", "key": "sk-ant-api-work"}}}"#,
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("ws-work")).unwrap();
    std::fs::write(dir.path().join("ws-work/todo.txt"), "ship it").unwrap();
    let rt = provider_runtime(dir.path(), &text, no_vars(), &["tool_read"]).await;

    let out = rt.run(&rt.snapshot(), inbound(&rt, "work", "1", "what is on my todo?")).await.unwrap();
    assert_eq!((out.reply.as_str(), out.model.as_str()), ("Your todo: ship it", "anthropic/claude-test"));
    assert_eq!((out.tool_calls.len(), out.tool_calls[0].ok), (1, true));
    assert_eq!((out.input_tokens, out.output_tokens), (50, 18));
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs
        .iter()
        .all(|r| r.api_key.as_deref() == Some("sk-ant-api-work") && r.version.as_deref() == Some("2023-06-01")));
    let first = &reqs[0].body;
    assert_eq!((first["model"].as_str(), first["tools"][0]["name"].as_str()), (Some("claude-test"), Some("read")));
    assert!(first["system"].as_str().unwrap().contains("You are Atlas"));
    let msgs = reqs[1].body["messages"].as_array().unwrap().clone();
    let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user"], "roles alternate");
    assert_eq!(msgs[1]["content"][1]["type"], "tool_use");
    let result = &msgs[2]["content"][0];
    assert_eq!(
        (result["type"].as_str(), result["tool_use_id"].as_str(), result["content"].as_str()),
        (Some("tool_result"), Some("toolu_fake1"), Some("ship it"))
    );

    let out = rt.run(&rt.snapshot(), inbound(&rt, "support", "2", "hi")).await.unwrap();
    assert_eq!(out.model, "offline/persona", "no key of its own: falls back, sends nothing");
    assert_eq!(fake.requests().len(), 2);
}

/// Session pruning on the direct Anthropic API (`contextPruning.mode:
/// "cache-ttl"`, no `baseUrl`): an agent with an API key asks the server to
/// clear old tool results (the `clear_tool_uses_20250919` edit with its
/// beta), an agent with an OAuth/token profile does not (OpenClaw prunes
/// those requests in the gateway), and the token goes as a bearer.
#[tokio::test]
async fn server_side_pruning_is_asked_for_api_keys_only() {
    use chela_fakes::anthropic::{AnthropicFake, Scripted};
    for (profile, secret, server_side) in [("api_key", "sk-ant-api-work", true), ("token", "claude-setup-7", false)] {
        let fake = AnthropicFake::start(secret).await;
        fake.script([Scripted::Text("Hello.".into())]);
        let dir = tempfile::tempdir().unwrap();
        let text = r#"{
          agents: { defaults: { contextPruning: { mode: "cache-ttl" } }, list: [
            { id: "work", default: true, workspace: "$DIR/ws", agentDir: "$DIR/agent", model: "anthropic/claude-test" } ] },
        }"#
        .replace("$DIR", &dir.path().display().to_string());
        std::fs::create_dir_all(dir.path().join("agent")).unwrap();
        let field = if profile == "api_key" { "key" } else { "token" };
        let profiles = serde_json::json!({"version": 1, "profiles": {"anthropic:default":
            {"type": profile, "provider": "anthropic", field: secret}}});
        std::fs::write(dir.path().join("agent/auth-profiles.json"), profiles.to_string()).unwrap();
        // The config names Anthropic's own endpoint; the provider is pointed at the fake.
        let mut providers = Providers::builtin();
        providers.insert(Arc::new(chela_agent::model::anthropic::Anthropic::new(&fake.base_url(), no_vars())));
        let rt = runtime_with(dir.path(), &text, providers, &[]).await;
        let out = rt.run(&rt.snapshot(), inbound(&rt, "work", "1", "hi")).await.unwrap();
        assert_eq!(out.reply, "Hello.", "{profile}");
        let reqs = fake.requests();
        let req = reqs.last().expect("a request");
        let edit = &req.body["context_management"]["edits"][0];
        if server_side {
            assert_eq!(edit["type"], "clear_tool_uses_20250919", "{}", req.body);
            assert_eq!(edit["trigger"], serde_json::json!({"type": "input_tokens", "value": 60000}));
            assert!(req.betas.iter().any(|b| b == "context-management-2025-06-27"), "{:?}", req.betas);
            assert_eq!(req.api_key.as_deref(), Some(secret));
        } else {
            assert!(req.body.get("context_management").is_none(), "a token's request: {}", req.body);
            assert!(req.betas.is_empty(), "{:?}", req.betas);
            assert_eq!((req.bearer.as_deref(), req.api_key.as_deref()), (Some(secret), None), "a token is a bearer");
        }
    }
}

/// A turn for a platform message that already finished (a crash hid it
/// from the journal) is not run again: its stored reply is the answer and
/// the transcript does not grow. A different message runs as usual.
#[tokio::test]
async fn a_finished_turn_for_the_same_platform_message_is_answered_from_the_transcript() {
    let w = World::new(CONFIG).await;
    let mut first = inbound(&w.runtime, "work", "7", "hello there");
    first.message_ref = Some("telegram/default/direct:7/100".into());
    let a = w.runtime.run(&w.runtime.snapshot(), first.clone()).await.unwrap();
    let key = first.target.key.to_string();
    let store = w.runtime.store("work").unwrap();
    let before = transcript(store.as_ref(), &key).len();
    let b = w.runtime.run(&w.runtime.snapshot(), first.clone()).await.unwrap();
    assert_eq!(b.reply, a.reply, "the stored reply");
    assert_eq!(transcript(store.as_ref(), &key).len(), before, "nothing appended");

    let mut second = inbound(&w.runtime, "work", "7", "hello there");
    second.message_ref = Some("telegram/default/direct:7/101".into());
    let c = w.runtime.run(&w.runtime.snapshot(), second).await.unwrap();
    assert_eq!(transcript(store.as_ref(), &key).len(), before + 2, "a new message is a new turn");
    assert_ne!(c.reply, a.reply, "the offline model counts the turns: {}", c.reply);
}

/// A provider's `apiKey` in `models.providers.<id>` (OpenClaw's way for local
/// servers and custom endpoints): sent when the agent has no profile of its
/// own, read from a `${VAR}` reference too; the agent's own profile wins.
#[tokio::test]
async fn a_providers_configured_api_key_is_sent_after_the_agents_own_profile() {
    use chela_fakes::openai::{OpenAiFake, Scripted};
    let fake = OpenAiFake::start("lm-key").await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"{{
  models: {{ providers: {{ lmstudio: {{ baseUrl: "{base}", apiKey: "${{LM_KEY}}" }} }} }},
  agents: {{ list: [
    {{ id: "work", default: true, workspace: "$DIR/ws-work", agentDir: "$DIR/agent-work", model: "lmstudio/qwen" }},
    {{ id: "own", workspace: "$DIR/ws-own", agentDir: "$DIR/agent-own", model: "lmstudio/qwen" }},
  ] }},
}}"#,
        base = fake.base_url()
    )
    .replace("$DIR", &dir.path().display().to_string());
    std::fs::create_dir_all(dir.path().join("agent-own")).unwrap();
    std::fs::write(
        dir.path().join("agent-own/auth-profiles.json"),
        r#"{"version": 1, "profiles": {"lmstudio:me": {"type": "api_key", "provider": "lmstudio", "key": "own-key"}}}"#,
    )
    .unwrap();
    let vars: Arc<chela_core::config::EnvVars> = Arc::new(|k: &str| (k == "LM_KEY").then(|| "lm-key".to_string()));
    let rt = provider_runtime(dir.path(), &text, vars, &[]).await;
    fake.script([Scripted::Text("from the local model".into()), Scripted::Text("again".into())]);
    let out = rt.run(&rt.snapshot(), inbound(&rt, "work", "1", "hi")).await.unwrap();
    assert_eq!((out.reply.as_str(), out.model.as_str()), ("from the local model", "lmstudio/qwen"));
    // The fake knows only the configured key: `own`'s request is refused, but it was made with its own.
    let _ = rt.run(&rt.snapshot(), inbound(&rt, "own", "2", "hi")).await;
    let keys: Vec<Option<String>> = fake.requests().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, [Some("lm-key".to_string()), Some("own-key".to_string())]);
}

/// A provider that refuses the context as too long (OpenAI's 400
/// `context_length_exceeded`, from the fake's own limit): the session is
/// compacted by the same model and the request asked once more, smaller.
#[tokio::test]
async fn a_context_the_provider_refuses_as_too_long_is_compacted_and_asked_again() {
    use chela_fakes::openai::{OpenAiFake, Scripted};
    let fake = OpenAiFake::start("sk-work").await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"{{
  models: {{ providers: {{ openai: {{ baseUrl: "{base}", apiKey: "sk-work" }} }} }},
  agents: {{ defaults: {{ compaction: {{ keepRecentTokens: 50 }} }},
    list: [ {{ id: "work", default: true, workspace: "$DIR/ws", identity: {{ name: "Atlas" }}, model: "openai/gpt-test" }} ] }},
}}"#,
        base = fake.base_url()
    )
    .replace("$DIR", &dir.path().display().to_string());
    let rt = provider_runtime(dir.path(), &text, no_vars(), &[]).await;
    let long = "the plan has many parts and every one of them matters a great deal. ".repeat(20);
    for i in 0..4 {
        fake.script([Scripted::Text(format!("noted {i}"))]);
        rt.run(&rt.snapshot(), inbound(&rt, "work", "1", &format!("{i}: {long}"))).await.unwrap();
    }
    let sent_before = fake.requests().len();
    let largest = fake.requests().iter().map(|(_, b)| b["messages"].to_string().len() as u64 / 4).max().unwrap();
    // The next request would be larger than any so far: over the limit.
    fake.limit_context(largest + 50);
    fake.script([
        Scripted::Text("SUMMARY: four long plan messages".into()),
        Scripted::Text("answered after compacting".into()),
    ]);
    let out = rt.run(&rt.snapshot(), inbound(&rt, "work", "1", &format!("4: {long}"))).await.unwrap();
    assert_eq!(out.reply, "answered after compacting");
    let reqs = fake.requests();
    assert_eq!(reqs.len() - sent_before, 3, "refused, the summary, the retry");
    let summary_req = &reqs[sent_before + 1].1;
    assert!(summary_req["messages"][0]["content"].as_str().unwrap().contains("You compact a conversation"));
    let retry = reqs[sent_before + 2].1["messages"].to_string();
    assert!(
        retry.contains("SUMMARY: four long plan messages")
            && retry.len() < reqs[sent_before].1["messages"].to_string().len()
    );
    let store = rt.store("work").unwrap();
    let entry = store.get("agent:work:telegram:direct:1").unwrap().unwrap();
    assert_eq!(entry.compaction_count, Some(1));
    let file =
        std::fs::read_to_string(dir.path().join(format!("state/agents/work/sessions/{}.jsonl", entry.session_id)))
            .unwrap();
    assert_eq!(file.matches(r#""type":"compaction""#).count(), 1);
}

/// Only a chat message meets its session's queue mode: a caller of `run`
/// (the OpenAI endpoint, the control API) sent while a chat turn is in its
/// model call waits its turn and gets its own answer, and the chat turn's
/// tool call is not skipped for it (as it would be for a steered message).
#[tokio::test]
async fn an_api_turn_waits_and_keeps_its_own_answer_beside_a_chat_turn() {
    use chela_fakes::openai::{OpenAiFake, Scripted};
    let fake = OpenAiFake::start("sk-work").await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"{{
  models: {{ providers: {{ openai: {{ baseUrl: "{base}", apiKey: "sk-work" }} }} }},
  agents: {{ list: [ {{ id: "work", default: true, workspace: "$DIR/ws", model: "openai/gpt-test", tools: {{ allow: ["read"] }} }} ] }},
}}"#,
        base = fake.base_url()
    )
    .replace("$DIR", &dir.path().display().to_string());
    std::fs::create_dir_all(dir.path().join("ws")).unwrap();
    std::fs::write(dir.path().join("ws/note.txt"), "from disk").unwrap();
    let rt = provider_runtime(dir.path(), &text, no_vars(), &["tool_read"]).await;
    fake.script([
        Scripted::ToolCall { name: "read".into(), arguments: serde_json::json!({"path": "note.txt"}) },
        Scripted::Text("chat answer".into()),
        Scripted::Text("api answer".into()),
    ]);
    fake.hold();
    let snap = rt.snapshot();
    let chat = {
        let (rt, snap) = (rt.clone(), snap.clone());
        tokio::spawn(async move { rt.run_admitted(&snap, inbound(&rt, "work", "1", "read my note"), None, None).await })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while fake.requests().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the chat turn never reached its model");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let api = {
        let (rt, snap) = (rt.clone(), snap.clone());
        tokio::spawn(async move { rt.run(&snap, inbound(&rt, "work", "1", "and from the API?")).await })
    };
    while rt.queue_depth("agent:work:telegram:direct:1") < 2 {
        assert!(std::time::Instant::now() < deadline, "the API turn never took its place");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    fake.release();
    let chat = chat.await.unwrap().unwrap();
    let api = api.await.unwrap().unwrap();
    assert_eq!((chat.reply.as_str(), api.reply.as_str()), ("chat answer", "api answer"));
    assert_eq!((api.absorbed, chat.tool_calls.len(), chat.tool_calls[0].ok), (None, 1, true), "the tool ran");
    let second = fake.requests()[1].1["messages"].to_string();
    assert!(second.contains("from disk") && !second.contains("and from the API?"), "{second}");
}

/// A scheduled turn (a heartbeat, a cron job) runs in the session like any
/// other, but is not activity: it leaves `lastInteractionAt` alone, so it
/// never keeps an idle session fresh (OpenClaw's rule); `fresh_session`
/// starts a new session id first (an isolated job's run).
#[tokio::test]
async fn a_scheduled_turn_is_not_activity_and_a_fresh_one_starts_a_new_session() {
    let w = World::new(CONFIG).await;
    w.say("work", "7", "hello").await;
    let store = w.runtime.store("work").unwrap();
    let key = "agent:work:telegram:direct:7";
    let before = store.get(key).unwrap().unwrap();
    let mut scheduled = inbound(&w.runtime, "work", "7", "heartbeat poll");
    scheduled.sender_id = None;
    scheduled.scheduled = Some(chela_agent::Scheduled::default());
    w.runtime.run(&w.runtime.snapshot(), scheduled.clone()).await.expect("turn runs");
    let after = store.get(key).unwrap().unwrap();
    assert_eq!(after.session_id, before.session_id, "same session");
    assert!(after.updated_at >= before.updated_at);
    assert_eq!(after.last_interaction_at, before.last_interaction_at, "not counted as activity");
    scheduled.scheduled = Some(chela_agent::Scheduled { fresh_session: true, light_context: true });
    let out = w.runtime.run(&w.runtime.snapshot(), scheduled).await.expect("turn runs");
    assert!(out.reset, "{out:?}");
    assert_ne!(store.get(key).unwrap().unwrap().session_id, before.session_id, "a new session id");
}
