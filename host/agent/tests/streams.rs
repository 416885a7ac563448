//! Provider event streams as the network delivers them: cut at any byte
//! (inside a multi-byte character, inside a line) and with CRLF line
//! endings. Vietnamese, CJK and emoji replies must arrive byte-exact.

use std::sync::Arc;

use chela_agent::runtime::RuntimeParts;
use chela_agent::{AgentRuntime, Inbound, Origin, Providers};
use chela_core::config::load_str;
use chela_core::config::paths::Environment;
use chela_core::routing::SessionTarget;
use chela_core::snapshot::SnapshotCell;
use chela_fakes::wire::{ragged_pieces, serve_sse_pieces};
use chela_plugin::capability::secrets::SecretStore;
use chela_plugin::{Limits, PluginEngine, Plugins};
use serde_json::json;

const TEXT: &str = "Xin chào! Tiếng Việt: ắ ằ ẳ ẵ ặ — 中文字符，日本語のテキスト，한국어 — 🦀👩‍💻🎉 done.";

/// One turn of agent `work` on `model`, against a provider at `base` with a key.
async fn one_turn(provider: &str, base: &str, model: &str) -> chela_agent::TurnOutcome {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let text = format!(
        r#"{{ models: {{ providers: {{ {provider}: {{ baseUrl: "{base}" }} }} }},
             agents: {{ list: [ {{ id: "work", default: true, workspace: "{root}/ws", agentDir: "{root}/agent",
                                  model: "{model}" }} ] }} }}"#,
        root = root.display()
    );
    std::fs::create_dir_all(root.join("agent")).unwrap();
    std::fs::write(
        root.join("agent/auth-profiles.json"),
        json!({"version": 1, "profiles": {format!("{provider}:default"):
            {"type": "api_key", "provider": provider, "key": "sk-test"}}})
        .to_string(),
    )
    .unwrap();
    let cfg = Arc::new(load_str(&text, None).expect("config loads").config);
    let env = Environment {
        home: root.into(),
        state_dir: Some(root.join("state").display().to_string()),
        ..Default::default()
    };
    let no_env: Arc<chela_core::config::EnvVars> = Arc::new(|_: &str| None);
    let providers = Providers::from_config(&cfg, no_env);
    let plugins = Arc::new(Plugins::new(
        Arc::new(PluginEngine::new(Limits::default()).unwrap()),
        vec![root.join("no-plugins")],
        None,
    ));
    let secrets: Arc<chela_agent::runtime::SecretsFor> = Arc::new(|_: &str| Arc::new(SecretStore::default()));
    let rt = AgentRuntime::new(RuntimeParts::new(SnapshotCell::of(cfg.clone()), env, plugins, providers, secrets));
    let inbound = Inbound {
        target: SessionTarget::main(&cfg, "work"),
        text: "say it".into(),
        sender_id: None,
        origin: Origin::default(),
        extra_system: None,
        message_ref: None,
        model_override: None,
        sampling: None,
        scheduled: None,
        media: Vec::new(),
        delivery: None,
        live_tool_summaries: false,
        exec_tightening: Default::default(),
    };
    rt.run(&rt.snapshot(), inbound).await.expect("the turn finishes")
}

/// OpenAI's chunk stream of `TEXT`, three deltas, usage, `[DONE]`, with `eol` line endings.
fn openai_stream(eol: &str) -> Vec<u8> {
    let chars: Vec<char> = TEXT.chars().collect();
    let third = chars.len() / 3;
    let parts: Vec<String> =
        [&chars[..third], &chars[third..2 * third], &chars[2 * third..]].iter().map(|c| c.iter().collect()).collect();
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        let delta = if i == 0 { json!({"role": "assistant", "content": p}) } else { json!({"content": p}) };
        let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-test",
                           "choices": [{"index": 0, "delta": delta, "finish_reason": null}]});
        out.push_str(&format!("data: {chunk}{eol}{eol}"));
    }
    let last = json!({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
    out.push_str(&format!("data: {last}{eol}{eol}"));
    let usage = json!({"id": "c1", "object": "chat.completion.chunk", "choices": [],
                       "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}});
    out.push_str(&format!(": keep-alive comment{eol}data: {usage}{eol}{eol}data: [DONE]{eol}{eol}"));
    out.into_bytes()
}

/// Anthropic's Messages event stream of `TEXT` in two deltas, with `eol` line endings.
fn anthropic_stream(eol: &str) -> Vec<u8> {
    let mid = TEXT.char_indices().nth(TEXT.chars().count() / 2).map(|(i, _)| i).unwrap();
    let (a, b) = TEXT.split_at(mid);
    let events = [
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
            "model": "claude-test", "content": [], "stop_reason": null, "usage": {"input_tokens": 5, "output_tokens": 1}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        ("ping", json!({"type": "ping"})),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": a}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": b}}),
        ),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ];
    let mut out = String::new();
    for (name, data) in events {
        out.push_str(&format!("event: {name}{eol}data: {data}{eol}{eol}"));
    }
    out.into_bytes()
}

/// One turn against a provider serving `stream` cut every 1–3 bytes; the
/// provider must answer (no fallback) with exactly `TEXT`.
async fn streamed_turn(provider: &str, path: &str, model: &str, stream: Vec<u8>) -> chela_agent::TurnOutcome {
    let (addr, served, server) = serve_sse_pieces(ragged_pieces(&stream)).await;
    let out = one_turn(provider, &format!("http://{addr}{path}"), model).await;
    server.abort();
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1, "one request to the provider");
    assert_eq!(out.model, model, "the provider answered (no fallback)");
    out
}

#[tokio::test]
async fn an_openai_stream_cut_mid_character_or_with_crlf_gives_the_exact_text() {
    for eol in ["\n", "\r\n"] {
        let out = streamed_turn("openai", "/v1", "openai/gpt-test", openai_stream(eol)).await;
        assert_eq!(out.reply, TEXT, "line endings {eol:?}");
        assert_eq!((out.input_tokens, out.output_tokens), (5, 9), "usage read with {eol:?}");
    }
}

#[tokio::test]
async fn an_anthropic_stream_cut_mid_character_or_with_crlf_gives_the_exact_text() {
    for eol in ["\n", "\r\n"] {
        let out = streamed_turn("anthropic", "", "anthropic/claude-test", anthropic_stream(eol)).await;
        assert_eq!(out.reply, TEXT, "line endings {eol:?}");
        assert_eq!(out.output_tokens, 9, "usage read with {eol:?}");
    }
}
