//! `resolve` cost by number of bindings (10 … 10,000), inputs shaped like the
//! conformance vectors: a mix of peer, parent-peer, guild+roles, team,
//! account and default outcomes. Run: `cargo bench -p chela-core --bench resolve`.

use chela_core::config::load_str;
use chela_core::routing::{PeerRef, RouteInput, RouteTable};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const CHANNELS: [&str; 4] = ["whatsapp", "telegram", "slack", "discord"];

/// A config with `n` bindings spread over channels, accounts and tiers.
fn config(n: usize) -> String {
    let mut agents = String::new();
    for a in 0..50 {
        agents.push_str(&format!("{{id: 'agent-{a}', default: {}}},", a == 0));
    }
    let mut bindings = String::new();
    for i in 0..n {
        let ch = CHANNELS[i % 4];
        let agent = format!("agent-{}", i % 50);
        let acct = format!("acct-{}", i % 7);
        let m = match i % 6 {
            0 | 1 => format!("channel: '{ch}', accountId: '{acct}', peer: {{kind: 'direct', id: 'user-{i}'}}"),
            2 => format!("channel: '{ch}', accountId: '*', peer: {{kind: 'group', id: 'room-{i}'}}"),
            3 => format!("channel: '{ch}', guildId: 'guild-{i}', roles: ['role-{}']", i % 5),
            4 => format!("channel: '{ch}', teamId: 'team-{i}'"),
            _ => format!("channel: '{ch}', accountId: '{acct}'"),
        };
        bindings.push_str(&format!("{{agentId: '{agent}', match: {{{m}}}}},\n"));
    }
    format!("{{agents: {{list: [{agents}]}}, session: {{dmScope: 'per-channel-peer'}}, bindings: [{bindings}]}}")
}

/// Inputs that hit each tier, plus misses that fall through to the default.
fn inputs(n: usize) -> Vec<RouteInput> {
    let mut out = Vec::new();
    for k in 0..64 {
        let i = (k * 7919) % n.max(1);
        let ch = CHANNELS[i % 4].to_string();
        let acct = Some(format!("acct-{}", i % 7));
        out.push(match k % 5 {
            0 => RouteInput {
                channel: ch,
                account_id: acct,
                peer: Some(PeerRef::new("direct", format!("user-{i}"))),
                ..Default::default()
            },
            1 => RouteInput {
                channel: ch,
                account_id: acct,
                peer: Some(PeerRef::new("channel", "thread-1")),
                parent_peer: Some(PeerRef::new("group", format!("room-{i}"))),
                ..Default::default()
            },
            2 => RouteInput {
                channel: ch,
                peer: Some(PeerRef::new("channel", "c1")),
                guild_id: Some(format!("guild-{i}")),
                member_role_ids: vec![format!("role-{}", i % 5), "other".into()],
                ..Default::default()
            },
            3 => RouteInput {
                channel: ch,
                team_id: Some(format!("team-{i}")),
                peer: Some(PeerRef::new("direct", "u")),
                ..Default::default()
            },
            _ => RouteInput {
                channel: ch,
                account_id: Some("nobody".into()),
                peer: Some(PeerRef::new("direct", "stranger")),
                ..Default::default()
            },
        });
    }
    out
}

fn bench_resolve(c: &mut Criterion) {
    let mut group = c.benchmark_group("resolve");
    group.throughput(Throughput::Elements(1));
    for n in [10usize, 100, 1_000, 10_000] {
        let loaded = load_str(&config(n), None).expect("bench config loads");
        let table = RouteTable::build(&loaded.config);
        let inputs = inputs(n);
        // Every input must resolve; a broken bench config would measure errors.
        assert!(inputs.iter().all(|i| table.resolve(i).is_ok()));
        let mut k = 0usize;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                k = (k + 1) % inputs.len();
                std::hint::black_box(table.resolve(std::hint::black_box(&inputs[k])))
            })
        });
    }
    group.finish();
}

fn bench_build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build_table");
    for n in [1_000usize, 10_000] {
        let loaded = load_str(&config(n), None).expect("bench config loads");
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| b.iter(|| RouteTable::build(&loaded.config)));
    }
    group.finish();
}

fn bench_load(c: &mut Criterion) {
    let text = config(10_000);
    let mut group = c.benchmark_group("load_config");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(20);
    group.bench_function("10000_bindings", |b| b.iter(|| load_str(std::hint::black_box(&text), None).map(|_| ())));
    group.finish();
}

criterion_group!(benches, bench_resolve, bench_build, bench_load);
criterion_main!(benches);
