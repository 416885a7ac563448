//! Per-call cost of a trivial Rust tool (fresh instance per call: pooling +
//! InstancePre), and the gateway's plugin-set cold start with a warm compile
//! cache and on a cache miss; a kv `set` in a scope of 256 values (the
//! `webhook` channel's outbox) against rewriting that scope's whole file, the
//! write path kv had before its log. Needs `cargo xtask build-plugins` first.
//! Run: `cargo bench -p chela-plugin --bench call`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chela_core::config::load_str;
use chela_core::config::paths::Environment;
use chela_core::policy::SessionKind;
use chela_plugin::capability::secrets::SecretStore;
use chela_plugin::{Limits, PluginEngine, Plugins};
use criterion::{criterion_group, criterion_main, Criterion};

const SET: [&str; 4] = ["tool_echo", "tool_read", "tool_write", "tool_web_fetch"];

fn wasm(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    assert!(p.exists(), "{} is missing: run `cargo xtask build-plugins`", p.display());
    p
}

fn plugin_dir(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    for n in names {
        std::fs::copy(wasm(n), dir.path().join("plugins").join(format!("{n}.wasm"))).unwrap();
    }
    dir
}

fn bench_call(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = plugin_dir(&["tool_echo"]);
    let engine = Arc::new(PluginEngine::new(Limits::default()).unwrap());
    println!("allocator: {}", if engine.pooling() { "pooling" } else { "on-demand" });
    let plugins = Plugins::new(engine, vec![dir.path().join("plugins")], Some(dir.path().join("cache")));
    rt.block_on(plugins.rescan());
    let cfg = load_str("{}", None).unwrap().config;
    let env = Environment {
        home: dir.path().into(),
        state_dir: Some(dir.path().display().to_string()),
        ..Default::default()
    };
    let secrets = |_: &str| Arc::new(SecretStore::default());
    let tools = plugins.link_agent(&cfg, &env, "main", &SessionKind::Main, &secrets);
    let echo = tools.get("echo").expect("echo linked");
    c.bench_function("tool_call/echo (instantiate + invoke + drop)", |b| {
        b.iter(|| rt.block_on(echo.invoke(&plugins, "agent:main:main", "c", r#"{"text":"hi"}"#)).unwrap())
    });
}

fn bench_cold_start(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = plugin_dir(&SET);
    let cache = dir.path().join("cache");
    let mut group = c.benchmark_group("cold_start");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    let load = |cache: Option<PathBuf>| {
        let engine = Arc::new(PluginEngine::new(Limits::default()).unwrap());
        let plugins = Plugins::new(engine, vec![dir.path().join("plugins")], cache);
        let report = rt.block_on(plugins.rescan());
        assert_eq!(report.loaded.len(), SET.len());
    };
    load(Some(cache.clone())); // warm the cache
    group.bench_function("4 plugins, warm compile cache (engine + load + describe)", |b| {
        b.iter(|| load(Some(cache.clone())))
    });
    group.bench_function("4 plugins, no cache (compile with Cranelift)", |b| b.iter(|| load(None)));
    group.finish();
}

fn bench_kv_set(c: &mut Criterion) {
    use chela_plugin::capability::kv::FileKv;
    let dir = tempfile::tempdir().unwrap();
    let kv = FileKv::open(dir.path(), chela_plugin::capability::kv::MAX_KEYS);
    let value = vec![b'x'; 200];
    for i in 0..256 {
        kv.set(format!("outbox/{i}"), value.clone()).unwrap();
    }
    let mut g = c.benchmark_group("kv");
    g.sample_size(30);
    let mut n = 0u32;
    g.bench_function("set: one fsynced log append (256 keys in scope)", |b| {
        b.iter(|| {
            n += 1;
            kv.set(format!("outbox/{}", n % 256), value.clone()).unwrap()
        })
    });
    // The same scope as one JSON file, replaced and fsynced: what each `set` cost before.
    let whole: std::collections::BTreeMap<String, String> =
        (0..256).map(|i| (format!("outbox/{i}"), hex::encode(&value))).collect();
    let body = serde_json::to_vec(&whole).unwrap();
    let file = dir.path().join("whole.json");
    g.bench_function("set before: replace the scope's whole file (256 keys)", |b| {
        b.iter(|| chela_durable::replace(&file, &body, chela_durable::Durability::Fsync).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench_call, bench_cold_start, bench_kv_set);
criterion_main!(benches);
