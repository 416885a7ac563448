//! The inbound pipeline, measured: one agent turn (offline model, store
//! appends with fsync), a turn that calls a Rust tool component, and one
//! webhook event through the JavaScript channel component (access, routing,
//! turn, reply into the adapter). Also prints the channel instance's memory.
//! Run: `cargo bench -p chela-gateway --bench pipeline` (after `cargo xtask build-plugins`).

use std::path::PathBuf;
use std::sync::Arc;

use chela_agent::{Inbound, Origin, Providers};
use chela_core::config::load_str;
use chela_core::config::paths::Environment;
use chela_core::ids::ChatType;
use chela_core::routing::SessionTarget;
use chela_core::session_key::{ApiCaller, SessionKey};
use chela_gateway::{Gateway, GatewayOptions};
use chela_plugin::channel::{InboundEvent, Peer, PeerKind};
use chela_plugin::{Limits, PluginEngine, Plugins};
use criterion::{criterion_group, criterion_main, Criterion};

fn wasm(name: &str) -> PathBuf {
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let rust = target.join("wasm32-wasip2/release").join(format!("{name}.wasm"));
    if rust.exists() {
        rust
    } else {
        target.join("polyglot").join(format!("{name}.wasm"))
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pdir = root.join("state/plugins");
    std::fs::create_dir_all(&pdir).unwrap();
    for p in ["channel_webhook_js", "tool_echo"] {
        std::fs::copy(wasm(p), pdir.join(format!("{p}.wasm"))).expect("run `cargo xtask build-plugins` first");
    }
    let text = format!(
        r#"{{ agents: {{ list: [{{ id: "work", workspace: "{0}/ws", tools: {{ allow: ["echo"] }} }}] }},
            channels: {{ webhook: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{ inbox: {{ webhookToken: "t" }} }} }} }} }}"#,
        root.display()
    );
    let cfg = Arc::new(load_str(&text, None).unwrap().config);
    let env = Environment {
        home: root.into(),
        state_dir: Some(root.join("state").display().to_string()),
        ..Default::default()
    };
    let cache = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-plugin-cache");
    let plugins =
        Arc::new(Plugins::new(Arc::new(PluginEngine::new(Limits::default()).unwrap()), vec![pdir], Some(cache)));
    let gw = rt
        .block_on(Gateway::new(
            cfg,
            env,
            plugins,
            Providers::builtin(),
            GatewayOptions::loopback(0),
            Arc::new(|_: &str| None),
        ))
        .unwrap();
    let channel = gw.channel("webhook").expect("webhook channel running");

    let mut n = 0u64;
    let mut turn = |text: &str| {
        n += 1;
        // A fresh session per iteration: the transcript does not grow across samples.
        let key = SessionKey::api("work", ApiCaller::User(&format!("bench-{n}")));
        Inbound {
            target: SessionTarget::of_key(&gw.config(), key, ChatType::Direct),
            text: text.into(),
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
        }
    };
    let mut g = c.benchmark_group("pipeline");
    g.bench_function("turn_offline_model", |b| {
        b.iter(|| rt.block_on(gw.runtime().run(&gw.snapshot(), turn("hello"))).unwrap())
    });
    g.bench_function("turn_with_rust_tool_call", |b| {
        b.iter(|| rt.block_on(gw.runtime().run(&gw.snapshot(), turn(r#"/tool echo {"text": "hi"}"#))).unwrap())
    });
    let mut m = 0u64;
    g.bench_function("webhook_event_through_js_channel", |b| {
        b.iter(|| {
            m += 1;
            let ev = InboundEvent {
                channel: "webhook".into(),
                account_id: "inbox".into(),
                peer: Peer { kind: PeerKind::Direct, id: format!("user{m}") },
                parent_peer: None,
                guild_id: None,
                team_id: None,
                member_role_ids: vec![],
                thread_id: None,
                sender_id: format!("user{m}"),
                sender_name: None,
                message_id: format!("m{m}"),
                text: "hello".into(),
                mentions_bot: false,
                reply_to_message_id: None,
                raw: String::new(),
                attachments: vec![],
                sender_is_bot: false,
            };
            let out = rt.block_on(gw.handle_event(channel.clone(), ev));
            assert!(matches!(out, chela_gateway::Outcome::Replied { .. }), "{out:?}");
        })
    });
    g.finish();
    for (lane, bytes) in channel.memory_bytes() {
        println!("webhook (JavaScript) channel, {lane:?}: {:.1} MiB linear memory", bytes as f64 / (1 << 20) as f64);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
