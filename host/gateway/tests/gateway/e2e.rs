//! The gateway end to end, over real HTTP on 127.0.0.1: a message enters
//! through the JavaScript webhook channel component, is routed to an agent
//! whose (offline, scripted) model calls the Python `word_count` component,
//! and the reply leaves through the same channel account and chat. Plugins
//! are the real components built from `plugins/` (`cargo xtask build-plugins`).

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common;

use chela_agent::Providers;
use chela_core::config::load_str;
use chela_core::config::paths::Environment;
use chela_gateway::{Gateway, GatewayOptions, Running};
use chela_plugin::{Limits, PluginEngine, Plugins};
use common::wasm;
use serde_json::{json, Value};

const CONFIG: &str = r#"{
  agents: { list: [
    { id: "work", default: true, workspace: "$DIR/ws-work", agentDir: "$DIR/agent-work", identity: { name: "Atlas" },
      tools: { allow: ["word_count", "echo"] } },
    { id: "support", workspace: "$DIR/ws-support", agentDir: "$DIR/agent-support", identity: { name: "Sage" },
      tools: { deny: ["word_count", "echo"] } },
  ] },
  bindings: [
    { agentId: "work", match: { channel: "webhook", accountId: "inbox" } },
    { agentId: "support", match: { channel: "webhook", accountId: "inbox", peer: { kind: "direct", id: "bob" } } },
    { agentId: "support", match: { channel: "webhook", accountId: "help" } },
  ],
  channels: { webhook: {
    dmPolicy: "allowlist", allowFrom: ["alice", "bob"],
    groupPolicy: "allowlist", groups: { "team-room": { requireMention: true }, "family": { requireMention: false } },
    accounts: { inbox: { webhookToken: "inbox-secret" }, help: { webhookToken: "${HELP_TOKEN}" },
                pair: { webhookToken: "pair-secret", dmPolicy: "pairing", allowFrom: [] } },
  } },
  broadcast: { "family": ["work", "support"] },
  gateway: { http: { endpoints: { chatCompletions: { enabled: true } } } },
}"#;

const SCRIPT: &str = r#"{ rules: [ { when: "count", tool: "word_count", arguments: { text: "{{message}}" }, reply: "Counted: {{result}}" } ] }"#;

struct Gw {
    dir: tempfile::TempDir,
    running: Option<Running>,
}

impl Gw {
    async fn start(plugins: &[&str], token: Option<&str>) -> Gw {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let pdir = root.join("state/plugins");
        std::fs::create_dir_all(&pdir).unwrap();
        for p in plugins {
            std::fs::copy(wasm(p), pdir.join(format!("{p}.wasm"))).unwrap();
        }
        for a in ["agent-work", "agent-support"] {
            std::fs::create_dir_all(root.join(a)).unwrap();
            std::fs::write(root.join(a).join("offline-script.json5"), SCRIPT).unwrap();
        }
        let text = CONFIG.replace("$DIR", &root.display().to_string());
        let cfg = Arc::new(load_str(&text, None).expect("config loads").config);
        let env = Environment {
            home: root.into(),
            state_dir: Some(root.join("state").display().to_string()),
            ..Default::default()
        };
        // Compiled components are cached next to the build output, so the
        // big Python/JS guests compile once per checkout, not once per test.
        let cache = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-plugin-cache");
        let engine = Arc::new(PluginEngine::new(Limits::default()).unwrap());
        let plugins = Arc::new(Plugins::new(engine, vec![pdir], Some(cache)));
        let mut options = GatewayOptions::loopback(0);
        options.plugin_scan = Duration::from_millis(100);
        options.auth_token = token.map(str::to_string);
        let vars = Arc::new(|k: &str| (k == "HELP_TOKEN").then(|| "help-secret".to_string()));
        let gw = Gateway::new(cfg, env, plugins, Providers::builtin(), options, vars).await.expect("gateway starts");
        let running = gw.serve().await.expect("listens");
        Gw { dir, running: Some(running) }
    }

    fn addr(&self) -> SocketAddr {
        self.running.as_ref().unwrap().addr
    }

    fn gateway(&self) -> &Arc<Gateway> {
        &self.running.as_ref().unwrap().gateway
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A request as the owner's client makes it: control-plane paths carry
    /// the gateway's token unless the test sets `authorization` itself, and
    /// bodies are JSON.
    async fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Value) -> (u16, Value) {
        let body = if body.is_null() { String::new() } else { body.to_string() };
        let url = format!("http://{}{path}", self.addr());
        let auth = format!("Bearer {}", self.gateway().control_token());
        let mut headers = headers.to_vec();
        if (path.starts_with("/api/") || path.starts_with("/v1/"))
            && !headers.iter().any(|(k, _)| *k == "authorization")
        {
            headers.push(("authorization", &auth));
        }
        if !headers.iter().any(|(k, _)| *k == "content-type") {
            headers.push(("content-type", "application/json"));
        }
        let a = chela_fakes::wire::request(method, &url, &headers, body.as_bytes()).await.expect("the gateway answers");
        (a.status, serde_json::from_str(&a.body).unwrap_or(Value::String(a.body)))
    }

    async fn post_message(&self, account: &str, token: &str, msg: Value) -> (u16, Value) {
        let auth = format!("Bearer {token}");
        self.call("POST", &format!("/channels/webhook/{account}/messages"), &[("authorization", &auth)], msg).await
    }

    /// Waits until the account's outbox holds more than `after` replies.
    async fn replies(&self, account: &str, token: &str, after: usize) -> Vec<Value> {
        let auth = format!("Bearer {token}");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, body) = self
                .call(
                    "GET",
                    &format!("/channels/webhook/{account}/outbox?after=0"),
                    &[("authorization", &auth)],
                    Value::Null,
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let msgs = body["messages"].as_array().cloned().unwrap_or_default();
            if msgs.len() > after {
                return msgs;
            }
            assert!(Instant::now() < deadline, "no reply in the outbox of {account}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> u64 {
        self.gateway().metrics.get(name, labels)
    }
}

fn dm(id: &str, from: &str, text: &str) -> Value {
    json!({"id": id, "chat": {"type": "direct", "id": from}, "from": {"id": from, "name": from}, "text": text})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_channel_to_agent_to_python_tool_and_back() {
    let gw = Gw::start(&["channel_webhook_js", "tool_word_count_py"], None).await;
    let (s, b) = gw.post_message("inbox", "inbox-secret", dm("m1", "alice", "count these three")).await;
    assert_eq!((s, &b["accepted"]), (202, &json!("m1")), "{b}");
    let out = gw.replies("inbox", "inbox-secret", 0).await;
    assert_eq!(out.len(), 1);
    let reply = &out[0];
    assert_eq!(reply["chat"], json!({"type": "direct", "id": "alice"}));
    assert_eq!(reply["replyTo"], "m1");
    let text = reply["text"].as_str().unwrap();
    assert!(text.starts_with("Counted: "), "{text}");
    let counted: Value = serde_json::from_str(&text["Counted: ".len()..]).unwrap();
    assert_eq!(counted["words"], 3, "the Python tool counted the words: {text}");
    assert_eq!(gw.counter("chela_tool_calls_total", &[("agent", "work"), ("tool", "word_count"), ("result", "ok")]), 1);

    // bob is bound to `support`, which is denied word_count: its model never sees it.
    gw.post_message("inbox", "inbox-secret", dm("m2", "bob", "count mine")).await;
    let out = gw.replies("inbox", "inbox-secret", 1).await;
    assert_eq!(out[1]["chat"]["id"], "bob");
    assert_eq!(out[1]["text"], "Sage: I have no tool `word_count` in this session.");

    // The session is in the agent's own store, under the key routing built.
    let index = std::fs::read_to_string(gw.path("state/agents/work/sessions/sessions.json")).unwrap();
    let index: Value = serde_json::from_str(&index).unwrap();
    assert_eq!(
        index["agent:work:main"]["deliveryContext"],
        json!({"channel": "webhook", "to": "alice", "accountId": "inbox"})
    );
    assert!(
        !gw.path("state/agents/support/sessions/sessions.json").exists() || {
            let s = std::fs::read_to_string(gw.path("state/agents/support/sessions/sessions.json")).unwrap();
            !s.contains("alice")
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_rejects_bad_input_and_routes_nothing() {
    let gw = Gw::start(&["channel_webhook_js"], None).await;
    let routed =
        || gw.counter("chela_messages_in_total", &[("channel", "webhook"), ("account", "inbox"), ("agent", "work")]);
    let (s, _) = gw.post_message("inbox", "wrong", dm("x1", "alice", "hi")).await;
    assert_eq!(s, 401);
    // The other account's token is no key to this one.
    let (s, _) = gw.post_message("inbox", "help-secret", dm("x2", "alice", "hi")).await;
    assert_eq!(s, 401);
    let (s, b) = gw.post_message("inbox", "inbox-secret", json!({"id": "x3", "text": "no chat"})).await;
    assert_eq!(s, 400, "{b}");
    assert!(b["error"].as_str().unwrap().contains("from.id") || b["error"].as_str().unwrap().contains("chat"), "{b}");
    let (s, _) = gw
        .call(
            "POST",
            "/channels/webhook/inbox/messages",
            &[("authorization", "Bearer inbox-secret")],
            Value::String("{not json".into()),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = gw.post_message("nope", "inbox-secret", dm("x4", "alice", "hi")).await;
    assert_eq!(s, 404);
    // A stranger's DM is dropped before routing (dmPolicy allowlist).
    let (s, _) = gw.post_message("inbox", "inbox-secret", dm("x5", "mallory", "hi")).await;
    assert_eq!(s, 202);
    // A group message without a mention is not answered; with one it is.
    let group = |id: &str, text: &str| json!({"id": id, "chat": {"type": "group", "id": "team-room"}, "from": {"id": "alice"}, "text": text});
    gw.post_message("inbox", "inbox-secret", group("g1", "just chatting")).await;
    gw.post_message("inbox", "inbox-secret", group("g2", "hey atlas, status?")).await;
    // Duplicate delivery: acknowledged alike (a retry after a lost answer is
    // fine), dropped by the journal's dedupe, processed once.
    let (s1, _) = gw.post_message("help", "help-secret", dm("d1", "alice", "once")).await;
    let (s2, _) = gw.post_message("help", "help-secret", dm("d1", "alice", "once")).await;
    assert_eq!((s1, s2), (202, 202));
    let dup = [("channel", "webhook"), ("account", "help"), ("reason", "duplicate")];
    assert_eq!(gw.counter("chela_messages_dropped_total", &dup), 1, "the repeat was dropped at intake");
    let help = gw.replies("help", "help-secret", 0).await;
    // g1 and g2 are one chat, run in order: once g2 is answered, g1 was decided.
    let inbox_after = gw.replies("inbox", "inbox-secret", 0).await;
    let inbox = inbox_after.clone();
    assert_eq!(help.len(), 1, "the duplicate was processed once");
    assert_eq!(inbox_after.len(), 1, "only the mentioned group message got a reply: {inbox_after:?}");
    assert_eq!(inbox[0]["chat"], json!({"type": "group", "id": "team-room"}));
    assert_eq!(routed(), 1);
    assert_eq!(
        gw.counter(
            "chela_messages_dropped_total",
            &[("channel", "webhook"), ("account", "inbox"), ("reason", "dm_policy")]
        ),
        1
    );
    assert_eq!(
        gw.counter(
            "chela_messages_dropped_total",
            &[("channel", "webhook"), ("account", "inbox"), ("reason", "no_mention")]
        ),
        1
    );
    let (_, metrics) = gw.call("GET", "/metrics", &[], Value::Null).await;
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(
        metrics.contains(r#"chela_messages_in_total{channel="webhook",account="inbox",agent="work"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"chela_channel_instance_memory_bytes{channel="webhook",account="inbox",lane="serve"}"#),
        "{metrics}"
    );
    // Where a turn's time went: the model and the store, per agent.
    for h in ["chela_model_seconds_count", "chela_store_seconds_count"] {
        assert!(metrics.contains(&format!(r#"{h}{{agent="work"}} 1"#)), "{h}: {metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_sender_gets_a_pairing_code_and_is_answered_once_approved() {
    let gw = Gw::start(&["channel_webhook_js"], None).await;
    gw.post_message("pair", "pair-secret", dm("p1", "zoe", "hi, can I talk to you?")).await;
    let out = gw.replies("pair", "pair-secret", 0).await;
    let text = out[0]["text"].as_str().unwrap();
    let code = text.split("pairing code is ").nth(1).and_then(|r| r.get(..8)).expect("a code");
    assert!(text.contains(&format!("chela pairing approve webhook {code}")), "{text}");
    // Asking again does not mint another code, and nothing reached an agent.
    gw.post_message("pair", "pair-secret", dm("p2", "zoe", "hello?")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gw.replies("pair", "pair-secret", 0).await.len(), 1);
    assert_eq!(
        gw.counter(
            "chela_messages_dropped_total",
            &[("channel", "webhook"), ("account", "pair"), ("reason", "pairing")]
        ),
        2
    );

    let pairing = chela_gateway::pairing::Pairing::new(&gw.path("state"));
    assert_eq!(pairing.approve("webhook", code).unwrap().id, "zoe");
    gw.post_message("pair", "pair-secret", dm("p3", "zoe", "now?")).await;
    let out = gw.replies("pair", "pair-secret", 1).await;
    assert!(out[1]["text"].as_str().unwrap().starts_with("Atlas (agent `work`) here."), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_compatible_chat_completions_run_a_normal_turn() {
    let gw = Gw::start(&["channel_webhook_js", "tool_word_count_py"], None).await;
    let (s, models) = gw.call("GET", "/v1/models", &[], Value::Null).await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["openclaw", "openclaw/default", "openclaw/work", "openclaw/support"]);
    let ask = |model: &str, text: &str, stream: bool| {
        json!({"model": model, "user": "u1", "stream": stream, "messages": [
            {"role": "system", "content": "ignored: the agent has its own persona"},
            {"role": "user", "content": [{"type": "text", "text": text}]}]})
    };
    let (s, r) = gw.call("POST", "/v1/chat/completions", &[], ask("chela:work", "count three more words", false)).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!((r["object"].as_str(), r["model"].as_str()), (Some("chat.completion"), Some("chela:work")));
    let content = r["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.starts_with("Counted: ") && content.contains("\"words\": 4"), "tools apply: {content}");
    assert!(r["usage"]["total_tokens"].as_u64().is_some_and(|t| t > 0));
    let (s, r) = gw
        .call("POST", "/v1/chat/completions", &[("x-openclaw-agent-id", "support")], ask("openclaw", "hi", true))
        .await;
    assert_eq!(s, 200);
    let sse = r.as_str().unwrap();
    assert!(sse.contains("\"object\":\"chat.completion.chunk\"") && sse.trim_end().ends_with("data: [DONE]"), "{sse}");
    // Role first, then the text in the pieces the model produced it in, then `stop`.
    let events: Vec<Value> = sse
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("each event is JSON"))
        .collect();
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant", "{sse}");
    let pieces: Vec<&str> = events.iter().filter_map(|e| e["choices"][0]["delta"]["content"].as_str()).collect();
    assert!(pieces.len() > 3, "streamed in pieces, not one block: {pieces:?}");
    let whole = pieces.concat();
    assert!(whole.contains("Sage (agent `support`) here.") && whole.ends_with(")."), "{whole}");
    assert_eq!(events.last().map(|e| e["choices"][0]["finish_reason"].clone()), Some(json!("stop")), "{sse}");
    let (s, r) = gw.call("POST", "/v1/chat/completions", &[], ask("chela:nobody", "hi", false)).await;
    assert_eq!((s, r["error"]["type"].as_str()), (404, Some("invalid_request_error")));
    let index = std::fs::read_to_string(gw.path("state/agents/work/sessions/sessions.json")).unwrap();
    assert!(index.contains("agent:work:openai:direct:u1"), "{index}");
}

/// The official `openai` Python SDK (PyPI, installed by `cargo xtask test`
/// into target/py-venv) against `/v1`: every model alias, streaming with and
/// without usage, OpenClaw's headers, and errors in OpenAI's shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_sdk_speaks_to_every_model_alias() {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/py-venv/bin/python");
    assert!(python.exists(), "{} is missing: `cargo xtask test` installs the openai SDK there", python.display());
    let gw = Gw::start(&["channel_webhook_js"], None).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/gateway/openai_sdk.py");
    let (base, token) = (format!("http://{}/v1", gw.addr()), gw.gateway().control_token().to_string());
    let out = tokio::process::Command::new(&python).arg(&script).arg(&base).arg(&token).output().await.unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the SDK script failed:\n{stdout}\n{stderr}");
    assert!(stdout.trim_end().ends_with("ok 35 checks"), "{stdout}");
    // `x-openclaw-model` ran that turn on the model asked for; the others on the agent's own.
    let sessions = gw.path("state/agents/work/sessions");
    let transcripts: Vec<String> = std::fs::read_dir(&sessions)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    let with = |m: &str| transcripts.iter().filter(|t| t.contains(m)).count();
    assert_eq!(with("\"model override\""), 1, "one session asked for the override");
    let overridden = transcripts.iter().find(|t| t.contains("\"model override\"")).unwrap();
    assert!(overridden.contains(r#""provider":"offline","model":"other""#), "{overridden}");
    assert_eq!(with(r#""model":"other""#), 1, "only that turn used it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_group_gets_an_answer_from_every_listed_agent() {
    let gw = Gw::start(&["channel_webhook_js"], None).await;
    let msg =
        json!({"id": "b1", "chat": {"type": "group", "id": "family"}, "from": {"id": "alice"}, "text": "dinner at 7?"});
    let (s, _) = gw.post_message("inbox", "inbox-secret", msg).await;
    assert_eq!(s, 202);
    let out = gw.replies("inbox", "inbox-secret", 1).await;
    let mut who: Vec<&str> = out.iter().map(|m| m["text"].as_str().unwrap().split(' ').next().unwrap()).collect();
    who.sort();
    assert_eq!(who, ["Atlas", "Sage"], "{out:?}");
    assert!(out.iter().all(|m| m["chat"]["id"] == "family" && m["replyTo"] == "b1"));
    assert_eq!(gw.counter("chela_routes_total", &[("matched_by", "broadcast"), ("agent", "support")]), 1);
    assert!(gw.path("state/agents/support/sessions/sessions.json").exists());
    let index = std::fs::read_to_string(gw.path("state/agents/work/sessions/sessions.json")).unwrap();
    assert!(index.contains("agent:work:webhook:group:family"), "{index}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_dropped_into_a_running_gateway_is_used_by_allowed_agents_only() {
    let gw = Gw::start(&["channel_webhook_js"], None).await;
    let ask = |agent: &'static str| {
        let gw = &gw;
        async move {
            let (s, b) = gw
                .call(
                    "POST",
                    "/api/v1/send",
                    &[],
                    json!({"agentId": agent, "text": "/tool echo {\"text\": \"hello\"}"}),
                )
                .await;
            assert_eq!(s, 200, "{b}");
            b
        }
    };
    let before = ask("work").await;
    assert_eq!(before["reply"], "Atlas: I have no tool `echo` in this session.");
    std::fs::copy(wasm("tool_echo"), gw.path("state/plugins/tool_echo.wasm")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let b = ask("work").await;
        if b["toolCalls"].as_array().is_some_and(|c| !c.is_empty()) {
            break b;
        }
        assert!(Instant::now() < deadline, "the dropped plugin was not picked up: {b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(after["reply"].as_str().unwrap().contains("hello"), "{after}");
    let denied = ask("support").await;
    assert_eq!(denied["reply"], "Sage: I have no tool `echo` in this session.");
    assert_eq!(denied["toolCalls"], json!([]));
    let (_, sessions) = gw.call("GET", "/api/v1/sessions?agentId=work", &[], Value::Null).await;
    assert_eq!(sessions["sessions"][0]["key"], "agent:work:main");
    let (_, hist) =
        gw.call("GET", "/api/v1/sessions/history?agentId=work&key=agent%3Awork%3Amain", &[], Value::Null).await;
    assert!(hist["messages"].as_array().is_some_and(|m| m.len() >= 5), "{hist}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api_auth_health_and_graceful_shutdown() {
    let mut gw = Gw::start(&["channel_webhook_js"], Some("ctl-token")).await;
    let (s, _) = gw.call("GET", "/healthz", &[], Value::Null).await;
    assert_eq!(s, 200);
    let (s, b) = gw.call("GET", "/readyz", &[], Value::Null).await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = gw.call("GET", "/api/v1/agents", &[("authorization", "")], Value::Null).await;
    assert_eq!(s, 401);
    let (s, b) = gw.call("GET", "/api/v1/agents", &[("authorization", "Bearer ctl-token")], Value::Null).await;
    assert_eq!((s, b["agents"].as_array().map(Vec::len)), (200, Some(2)), "{b}");
    let (s, b) = gw
        .call(
            "POST",
            "/api/v1/route",
            &[("authorization", "Bearer ctl-token")],
            json!({"channel": "webhook", "accountId": "inbox", "peer": {"kind": "direct", "id": "bob"}}),
        )
        .await;
    let route = &b["routes"][0];
    assert_eq!((s, &route["agentId"], &route["matchedBy"]), (200, &json!("support"), &json!("binding.peer")), "{b}");
    for _ in 0..10 {
        gw.call("GET", "/api/v1/agents", &[("authorization", "Bearer guess")], Value::Null).await;
    }
    let (s, _) = gw.call("GET", "/api/v1/agents", &[("authorization", "Bearer ctl-token")], Value::Null).await;
    assert_eq!(s, 429, "locked out after repeated failures");
    let addr = gw.addr();
    assert!(gw.running.take().unwrap().shutdown().await, "drained");
    assert!(TcpStream::connect(addr).is_err(), "no longer listening");
}

#[tokio::test]
async fn refuses_a_public_listener_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Arc::new(load_str("{}", None).unwrap().config);
    let env = Environment {
        home: dir.path().into(),
        state_dir: Some(dir.path().display().to_string()),
        ..Default::default()
    };
    let plugins = Arc::new(Plugins::new(Arc::new(PluginEngine::new(Limits::default()).unwrap()), vec![], None));
    let mut options = GatewayOptions::loopback(0);
    options.addr = "0.0.0.0:0".parse().unwrap();
    let err = Gateway::new(cfg, env, plugins, Providers::builtin(), options, Arc::new(|_: &str| None))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("without an auth token"), "{err}");
}

/// A channel adapter over the host's WebSocket capability: the platform is a
/// WebSocket server on loopback that checks the bearer token the host
/// substituted, pushes a message, and receives the reply on the same socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_channel_polls_routes_and_replies_over_the_socket() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use tokio_tungstenite::tungstenite::Message;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut replies) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut auth = String::new();
                // The callback's error type is tungstenite's own (a whole HTTP response).
                #[allow(clippy::result_large_err)]
                let check = |req: &Request, resp: Response| {
                    auth = req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, check).await else { return };
                if auth != "Bearer relay-secret" {
                    let _ = ws.close(None).await;
                    return;
                }
                let hello = json!({"id": "w1", "from": "carol", "text": "hello over the socket"});
                ws.send(Message::text(hello.to_string())).await.unwrap();
                while let Some(Ok(Message::Text(t))) = ws.next().await {
                    let _ = tx.send((auth.clone(), t.to_string()));
                }
            });
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let text = format!(
        r#"{{ agents: {{ list: [{{ id: "support", workspace: "{}/ws", identity: {{ name: "Sage" }} }}] }},
            plugins: {{ entries: {{ fixture_ws_channel: {{ maxMemoryMb: 16 }} }} }},
            channels: {{ wsrelay: {{ dmPolicy: "open", allowFrom: ["*"],
              accounts: {{ main: {{ url: "ws://127.0.0.1:{port}/socket", relayToken: "relay-secret" }} }} }} }} }}"#,
        root.display()
    );
    let running = common::serve(root, &text, &["fixture_ws_channel"]).await;
    let (auth, frame) = tokio::time::timeout(Duration::from_secs(30), replies.recv()).await.expect("a reply").unwrap();
    assert_eq!(auth, "Bearer relay-secret");
    let reply: Value = serde_json::from_str(&frame).unwrap();
    assert_eq!((reply["to"].as_str(), reply["replyTo"].as_str()), (Some("carol"), Some("w1")));
    assert!(reply["text"].as_str().unwrap().contains("“hello over the socket”"), "{reply}");

    // A channel call over its memory cap is named for what it is (the same
    // guarded call as a tool's), fails alone, and the adapter comes back.
    let url = |p: &str| format!("http://{}/channels/wsrelay/main{p}", running.addr);
    let hog = chela_fakes::wire::request("POST", &url("/hog"), &[], b"").await.expect("answered");
    assert_eq!(hog.status, 502, "{}", hog.body);
    assert!(hog.body.contains("exceeded its memory limit of 16777216 bytes"), "{}", hog.body);
    let after = chela_fakes::wire::request("POST", &url("/other"), &[], b"").await.expect("answered");
    assert_eq!(after.status, 404, "a fresh instance answers: {}", after.body);
    assert!(running.shutdown().await);
}
