// OpenClaw's own resolver on the inputs of benches/resolve.rs (same config
// generator, same 64 rotating inputs). Run through ./run.sh.
const dir = process.argv[2];
const file = process.argv[3];
const { o: resolveAgentRoute } = await import(`${dir}/package/dist/${file}`);

const CHANNELS = ["whatsapp", "telegram", "slack", "discord"];

function config(n, uncached) {
  const list = [];
  for (let a = 0; a < 50; a++) list.push({ id: `agent-${a}`, default: a === 0 });
  const bindings = [];
  for (let i = 0; i < n; i++) {
    const channel = CHANNELS[i % 4];
    const agentId = `agent-${i % 50}`;
    const accountId = `acct-${i % 7}`;
    let match;
    switch (i % 6) {
      case 0: case 1: match = { channel, accountId, peer: { kind: "direct", id: `user-${i}` } }; break;
      case 2: match = { channel, accountId: "*", peer: { kind: "group", id: `room-${i}` } }; break;
      case 3: match = { channel, guildId: `guild-${i}`, roles: [`role-${i % 5}`] }; break;
      case 4: match = { channel, teamId: `team-${i}` }; break;
      default: match = { channel, accountId };
    }
    bindings.push({ agentId, match });
  }
  // identityLinks present disables OpenClaw's route cache (see spec §3.9).
  const session = uncached ? { dmScope: "per-channel-peer", identityLinks: { nobody: ["x:0"] } } : { dmScope: "per-channel-peer" };
  return { agents: { list }, session, bindings };
}

function inputs(n) {
  const out = [];
  for (let k = 0; k < 64; k++) {
    const i = (k * 7919) % Math.max(n, 1);
    const channel = CHANNELS[i % 4];
    const accountId = `acct-${i % 7}`;
    switch (k % 5) {
      case 0: out.push({ channel, accountId, peer: { kind: "direct", id: `user-${i}` } }); break;
      case 1: out.push({ channel, accountId, peer: { kind: "channel", id: "thread-1" }, parentPeer: { kind: "group", id: `room-${i}` } }); break;
      case 2: out.push({ channel, peer: { kind: "channel", id: "c1" }, guildId: `guild-${i}`, memberRoleIds: [`role-${i % 5}`, "other"] }); break;
      case 3: out.push({ channel, teamId: `team-${i}`, peer: { kind: "direct", id: "u" } }); break;
      default: out.push({ channel, accountId: "nobody", peer: { kind: "direct", id: "stranger" } });
    }
  }
  return out;
}

for (const uncached of [false, true]) {
  for (const n of [10, 100, 1000, 10000]) {
    const cfg = config(n, uncached);
    const ins = inputs(n).map((x) => ({ cfg, ...x }));
    for (const x of ins) resolveAgentRoute(x); // warm-up, and every input must resolve
    const iters = 200000;
    const samples = [];
    for (let s = 0; s < 15; s++) {
      const t0 = process.hrtime.bigint();
      for (let j = 0; j < iters; j++) resolveAgentRoute(ins[j & 63]);
      samples.push(Number(process.hrtime.bigint() - t0) / iters);
    }
    samples.sort((a, b) => a - b);
    console.log(`openclaw ${uncached ? "uncached" : "cached  "} bindings=${String(n).padStart(5)} median ${samples[7].toFixed(0)} ns/op`);
  }
}
