// Route vectors for broken configs, answered by OpenClaw's own routing code.
//
//   node route-oracle.mjs <openclaw package dir> <out.json> [count] [seed]
//
// Generates seeded random configs of the kinds OpenClaw routes although its
// validator would refuse them — roster entries without an `id` (or a blank
// one), bindings without an `agentId`, peers with an empty id or no kind —
// mixed with well-formed agents and bindings, and random inputs; runs each
// through `resolveAgentRoute` from the installed openclaw package; writes the
// vectors in tests/conformance's shape. Where OpenClaw throws
// AgentSelectionRequired only because no default agent is marked, the vector
// (none, or several, marked) records that as `openclaw_expect` and expects
// chela's documented default (the first marked, else the first listed),
// computed by OpenClaw on the config with only that entry marked: the
// deviation tests/conformance/README.md names.
// `cargo xtask route-oracle` runs it (installing OpenClaw first).
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [pkg, out, countArg, seedArg] = process.argv.slice(2);
const count = Number(countArg ?? 600);
let state = Number(seedArg ?? 20261203) >>> 0;

const dist = join(pkg, "dist");
const file = readdirSync(dist).find((f) => /^resolve-route-[\w-]+\.mjs$/.test(f));
if (!file) throw new Error(`no resolve-route-*.mjs in ${dist}`);
const mod = await import(pathToFileURL(join(dist, file)).href);
// The bundle exports resolveAgentRoute under a minified name: find it by shape.
const resolveAgentRoute = Object.values(mod).find((f) => typeof f === "function" && f.name === "resolveAgentRoute");
if (!resolveAgentRoute) throw new Error(`resolveAgentRoute not exported by ${file}`);

// mulberry32: small, seeded, reproducible.
function rand() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const chance = (p) => rand() < p;

const AGENT_IDS = ["work", "home", "Support", "ops_2", "main"];
const CHANNELS = ["whatsapp", "telegram", "slack", "discord"];
const ACCOUNTS = [undefined, "default", "biz", "*"];
const PEERS = ["+1000", "c1", "g1", "u2"];

function agentEntry(i) {
  const e = {};
  const r = rand();
  if (r < 0.2) {
    // no id at all
  } else if (r < 0.3) e.id = pick(["", "  "]);
  else e.id = AGENT_IDS[i % AGENT_IDS.length];
  if (chance(0.15)) e.default = true;
  if (chance(0.3)) e.name = `Agent ${i}`;
  return e;
}

function peer() {
  const r = rand();
  if (r < 0.25) return { kind: pick(["direct", "group", "channel"]), id: pick(["", "  "]) };
  if (r < 0.35) return { id: pick(PEERS) };
  if (r < 0.45) return { kind: pick(["direct", "group"]), id: "*" };
  return { kind: pick(["direct", "group", "channel", "dm"]), id: pick(PEERS) };
}

function binding(ids) {
  const b = {};
  const r = rand();
  if (r < 0.25) {
    // no agentId
  } else if (r < 0.35) b.agentId = pick(["", " "]);
  else b.agentId = pick(ids.length ? ids : AGENT_IDS);
  const match = { channel: pick(CHANNELS) };
  const account = pick(ACCOUNTS);
  if (account !== undefined) match.accountId = account;
  if (chance(0.5)) match.peer = peer();
  if (chance(0.15)) match.guildId = "g1";
  if (chance(0.1)) match.teamId = "t1";
  if (match.guildId && chance(0.5)) match.roles = ["r1"];
  b.match = match;
  return b;
}

function config() {
  const n = Math.floor(rand() * 4);
  const entries = Array.from({ length: n }, (_, i) => agentEntry(i));
  const ids = entries.map((e) => e.id).filter((id) => typeof id === "string" && id.trim());
  const cfg = {};
  if (n > 0 || chance(0.3)) cfg.agents = { list: entries };
  cfg.bindings = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => binding(ids));
  cfg.session = {};
  return cfg;
}

function input() {
  const inp = { channel: pick(CHANNELS), accountId: pick(["default", "biz"]) };
  if (chance(0.8)) inp.peer = { kind: pick(["direct", "group", "channel"]), id: pick(PEERS) };
  if (chance(0.15)) inp.parentPeer = { kind: "group", id: pick(PEERS) };
  if (chance(0.2)) inp.guildId = "g1";
  if (chance(0.1)) inp.teamId = "t1";
  if (inp.guildId && chance(0.5)) inp.memberRoleIds = ["r1"];
  return inp;
}

function route(cfg, inp) {
  try {
    const r = resolveAgentRoute({ cfg: structuredClone(cfg), ...structuredClone(inp) });
    const keys = ["agentId", "channel", "accountId", "dmScope", "groupScope", "sessionKey", "mainSessionKey", "lastRoutePolicy", "matchedBy"];
    return Object.fromEntries(keys.map((k) => [k, r[k]]));
  } catch (e) {
    return { error: { name: e.name, code: e.code ?? null, message: e.message } };
  }
}

/** chela's default agent entry where OpenClaw finds none (no entry, or several, marked `default`):
 * the first marked, else the first listed; `undefined` where OpenClaw's own rule applies. */
function chelaDefault(cfg) {
  const list = (cfg.agents?.list ?? []).filter((e) => e !== null && typeof e === "object");
  const marked = list.filter((e) => e.default === true);
  if (marked.length === 1 || list.length === 0) return undefined;
  return marked[0] ?? list[0];
}

const vectors = [];
for (let i = 0; vectors.length < count; i++) {
  const cfg = config();
  const inp = input();
  let expect = route(cfg, inp);
  const v = { name: `broken-${String(i).padStart(4, "0")}`, config: cfg, input: inp };
  const first = chelaDefault(cfg);
  if (expect.error?.name === "AgentSelectionRequiredError" && first) {
    const marked = structuredClone(cfg);
    const at = cfg.agents.list.indexOf(first);
    marked.agents.list.forEach((e, i) => {
      if (i === at) e.default = true;
      else delete e.default;
    });
    v.openclaw_expect = expect;
    v.chela_note = "chela's documented default agent (the first listed) where OpenClaw 2026.9.6 throws";
    expect = route(marked, inp);
  }
  v.expect = expect;
  vectors.push(v);
}
// One vector per line: small, and a regenerated file diffs by vector.
writeFileSync(out, "[\n" + vectors.map((v) => JSON.stringify(v)).join(",\n") + "\n]\n");
console.error(`wrote ${vectors.length} vectors to ${out}`);
