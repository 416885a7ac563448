//! Shared by the gateway's integration tests: built components and a
//! gateway on 127.0.0.1:0 over a temporary state dir.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chela_agent::Providers;
use chela_core::config::load_str;
use chela_core::config::paths::Environment;
use chela_gateway::{Gateway, GatewayOptions, Running};
use chela_plugin::{Limits, PluginEngine, Plugins};

/// A built guest: Rust ones in target/wasm32-wasip2/release, others in target/polyglot.
pub fn wasm(name: &str) -> PathBuf {
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let rust = target.join("wasm32-wasip2/release").join(format!("{name}.wasm"));
    let p = if rust.exists() { rust } else { target.join("polyglot").join(format!("{name}.wasm")) };
    assert!(p.exists(), "{} is missing: run `cargo xtask build-plugins` first", p.display());
    p
}

/// The environment of a gateway whose OpenAI key is the fakes' `sk-test`.
pub fn openai_test_key() -> Arc<chela_core::config::EnvVars> {
    Arc::new(|k: &str| (k == "OPENAI_API_KEY").then(|| "sk-test".to_string()))
}

/// A gateway serving `config` with `plugins` in `<root>/state/plugins`; every
/// configured channel's adapter must be running.
pub async fn serve(root: &Path, config: &str, plugins: &[&str]) -> Running {
    serve_with_vars(root, config, plugins, Arc::new(|_: &str| None)).await
}

/// [`serve`] with environment variables (model keys): the providers are
/// the config's, as the binary builds them.
pub async fn serve_with_vars(
    root: &Path,
    config: &str,
    plugins: &[&str],
    vars: Arc<chela_core::config::EnvVars>,
) -> Running {
    serve_with_options(root, config, plugins, vars, GatewayOptions::loopback(0)).await
}

/// [`serve_with_vars`] with the listener's options (address, token).
pub async fn serve_with_options(
    root: &Path,
    config: &str,
    plugins: &[&str],
    vars: Arc<chela_core::config::EnvVars>,
    options: GatewayOptions,
) -> Running {
    let pdir = root.join("state/plugins");
    std::fs::create_dir_all(&pdir).unwrap();
    for p in plugins {
        std::fs::copy(wasm(p), pdir.join(format!("{p}.wasm"))).unwrap();
    }
    let cfg = Arc::new(load_str(config, None).expect("config loads").config);
    let env = Environment {
        home: root.into(),
        state_dir: Some(root.join("state").display().to_string()),
        ..Default::default()
    };
    let plugins = Arc::new(Plugins::new(Arc::new(PluginEngine::new(Limits::default()).unwrap()), vec![pdir], None));
    let providers = Providers::from_config(&cfg, vars.clone());
    let gw = Gateway::new(cfg, env, plugins, providers, options, vars).await.expect("gateway starts");
    assert!(gw.missing_channels().is_empty(), "{:?}", gw.missing_channels());
    gw.serve().await.expect("listens")
}

/// A request to the gateway at `base` as the webhook channel's `inbox`
/// account (its token), JSON in and out.
pub async fn inbox_call(base: &str, method: &str, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let headers = [("authorization", "Bearer inbox-secret"), ("content-type", "application/json")];
    let body = if body.is_null() { String::new() } else { body.to_string() };
    let a = chela_fakes::wire::request(method, &format!("{base}{path}"), &headers, body.as_bytes())
        .await
        .expect("the gateway answers");
    (a.status, serde_json::from_str(&a.body).unwrap_or(serde_json::Value::String(a.body)))
}

/// Sends `text` as `from` through the webhook channel's `inbox` account
/// (message id `m<n>`, `n` counted up) and returns the reply to it.
pub async fn say(base: &str, n: &mut usize, from: &str, text: &str) -> String {
    use serde_json::{json, Value};
    *n += 1;
    let msg =
        json!({"id": format!("m{n}"), "chat": {"type": "direct", "id": from}, "from": {"id": from}, "text": text});
    let (s, b) = inbox_call(base, "POST", "/channels/webhook/inbox/messages", &msg).await;
    assert_eq!(s, 202, "{b}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, b) = inbox_call(base, "GET", "/channels/webhook/inbox/outbox?after=0", &Value::Null).await;
        let msgs = b["messages"].as_array().cloned().unwrap_or_default();
        if let Some(m) = msgs.iter().find(|m| m["replyTo"] == format!("m{n}").as_str()) {
            return m["text"].as_str().unwrap_or_default().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no reply to {text:?}: {b}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Every transcript line of `agent`'s sessions under `root`'s state dir, as one text.
pub fn transcripts_text(root: &Path, agent: &str) -> String {
    let sessions = root.join(format!("state/agents/{agent}/sessions"));
    std::fs::read_dir(&sessions)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect()
}

/// Waits until the `inbox` account of the webhook channel has counted `n`
/// messages dropped for `reason` (a decision the gateway made, not a timeout).
pub async fn until_dropped(running: &Running, reason: &str, n: u64) {
    let labels = [("channel", "webhook"), ("account", "inbox"), ("reason", reason)];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while running.gateway.metrics.get("chela_messages_dropped_total", &labels) < n {
        assert!(std::time::Instant::now() < deadline, "fewer than {n} messages dropped for {reason}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Writes `agent`'s offline-model script (`<agentDir>/offline-script.json5`).
pub fn offline_script(root: &Path, agent: &str, script: &str) {
    let dir = root.join(format!("state/agents/{agent}/agent"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("offline-script.json5"), script).unwrap();
}

/// An offline script that answers a message containing `when` with `reply`, verbatim.
pub fn offline_reply(root: &Path, agent: &str, when: &str, reply: &str) {
    let rule = serde_json::json!({ "rules": [ { "when": when, "reply": reply } ] });
    offline_script(root, agent, &rule.to_string());
}

/// A three-paragraph answer (for block streaming: a paragraph each).
pub const PLAN: [&str; 3] = [
    "First, we gather what the team already knows and write it down in one place.",
    "Then we pick the two questions that matter most this month and give each one an owner.",
    "Last, we meet on Friday, look at what we learned, and decide what to stop doing.",
];

/// `config` (which lists its agents as `agents: { list: [`) with the
/// OpenAI fake at `openai_base` as provider and as the audio model of
/// `tools.media.models` (`whisper-1`).
pub fn with_transcription(config: &str, openai_base: &str) -> String {
    let out = config.replacen(
        "agents: { list: [",
        &format!(
            "models: {{ providers: {{ openai: {{ baseUrl: \"{openai_base}\" }} }} }}, tools: {{ media: {{ models: [ {{ provider: \"openai\", model: \"whisper-1\", capabilities: [\"audio\"] }} ] }} }}, agents: {{ list: ["
        ),
        1,
    );
    assert!(out.contains("whisper-1"), "the config lists no agents to add the model before: {config}");
    out
}

/// `config` with `agents.defaults.blockStreamingChunk` small enough for a paragraph per block.
pub fn with_paragraph_blocks(config: &str) -> String {
    let out = config.replacen(
        "agents: { list: [",
        "agents: { defaults: { blockStreamingChunk: { minChars: 40, maxChars: 200 } }, list: [",
        1,
    );
    assert!(out.contains("blockStreamingChunk"), "{config}");
    out
}
