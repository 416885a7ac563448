// chela's control page: a client of the control API (`/api/v1`), nothing
// more. The gateway token is asked for once, kept in this tab's
// sessionStorage and sent as `Authorization: Bearer`; it never goes into a
// URL. Everything shown is built with DOM nodes and textContent, never
// innerHTML, so chat text in transcripts cannot become markup.

const TOKEN_KEY = "chela.token";
const main = document.getElementById("main");
const nav = document.getElementById("nav");

/** h("td", {class: "x"}, "text", node…): an element with attributes and children. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function show(...nodes) {
  main.replaceChildren(...nodes);
  main.focus();
}

class Refused extends Error {}

/** A control API call; a refused token sends the user back to the login. */
async function api(path, { method = "GET", body } = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) throw new Refused("not logged in");
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`/api/v1/${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (res.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    login("The gateway refused the token; log in again.");
    throw new Refused(data.error || "unauthorized");
  }
  return { ok: res.ok, status: res.status, data };
}

function table(id, columns, rows) {
  return h(
    "table",
    { id },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((cell) => h("td", {}, cell))))),
  );
}

function login(message) {
  nav.hidden = true;
  const error = h("p", { id: "login-error", class: "error", role: "alert" }, message || "");
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true });
  const form = h(
    "form",
    { class: "login", id: "login" },
    h("h1", {}, "Log in"),
    h("p", { class: "muted" }, "Paste the gateway token (", h("code", {}, "gateway.auth.token"), ", or ", h("code", {}, "<stateDir>/gateway.token"), ")."),
    h("label", {}, "Gateway token", input),
    h("button", { class: "primary", type: "submit" }, "Log in"),
    error,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const res = await fetch("/api/v1/agents", { headers: { authorization: `Bearer ${input.value.trim()}` } });
    if (res.ok) {
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      if (location.hash === "#/overview") render();
      else location.hash = "#/overview";
    } else {
      const data = await res.json().catch(() => ({}));
      error.textContent = res.status === 429 ? data.error || "Too many attempts; wait a minute." : "The gateway refused this token.";
    }
  });
  show(form);
  input.focus();
}

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** Bars per minute, stacked by key (agent or drop reason), with a legend. */
function chart(id, title, minutes, field) {
  const keys = [...new Set(minutes.flatMap((m) => Object.keys(m[field] || {})))].sort();
  const total = (m) => Object.values(m[field] || {}).reduce((a, b) => a + b, 0);
  const max = Math.max(1, ...minutes.map(total));
  const [w, hgt] = [600, 90];
  const bw = w / minutes.length;
  const colour = (i) => `hsl(${(i * 67) % 360} 60% 50%)`;
  const sum = keys.map((k) => [k, minutes.reduce((a, m) => a + (m[field]?.[k] || 0), 0)]);
  const label = `${title}: ${sum.map(([k, n]) => `${k} ${n}`).join(", ") || "none"} in the last ${minutes.length} minutes`;
  const bars = minutes.flatMap((m, i) => {
    let y = hgt;
    return keys
      .filter((k) => m[field]?.[k])
      .map((k) => {
        const bh = (m[field][k] / max) * (hgt - 4);
        y -= bh;
        return svg("rect", { x: i * bw + 1, y, width: Math.max(1, bw - 2), height: bh, fill: colour(keys.indexOf(k)) }, svg("title", {}, `${new Date(m.atMs).toLocaleTimeString()}: ${k} ${m[field][k]}`));
      });
  });
  return h(
    "figure",
    { id, class: "chart" },
    h("figcaption", {}, title, h("span", { class: "muted" }, ` (per minute, max ${max})`)),
    svg("svg", { viewBox: `0 0 ${w} ${hgt}`, role: "img", "aria-label": label, preserveAspectRatio: "none" }, svg("line", { x1: 0, y1: hgt - 0.5, x2: w, y2: hgt - 0.5, class: "axis" }), ...bars),
    h(
      "p",
      { class: "legend" },
      sum.length
        ? sum.map(([k, n]) => {
            // Through the CSSOM: the page's CSP allows no inline style attributes.
            const swatch = h("span", { class: "swatch" });
            swatch.style.background = colour(keys.indexOf(k));
            return h("span", {}, swatch, `${k}: ${n}`);
          })
        : "nothing yet",
    ),
  );
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

async function overview() {
  const [agents, channels, plugins, traffic] = await Promise.all([api("agents"), api("channels"), api("plugins"), api("traffic")]);
  const minutes = traffic.data.minutes || [];
  show(
    h("h1", {}, "Overview"),
    h("h2", {}, "Agents"),
    table(
      "agents",
      ["Agent", "Name", "Model", "Sandbox", "Tools", "Bindings", "Workspace"],
      (agents.data.agents || []).map((a) => [
        h("code", {}, a.id),
        [a.emoji ? `${a.emoji} ` : "", a.name || "—", a.default ? h("span", { class: "muted" }, " (default)") : ""],
        h("code", {}, a.model || "default"),
        a.sandbox || "off",
        a.toolProfile || "full",
        String(a.bindings),
        h("code", {}, a.workspace || ""),
      ]),
    ),
    h("h2", {}, "Traffic"),
    h("div", { class: "charts" }, chart("chart-in", "Messages in, by agent", minutes, "in"), chart("chart-dropped", "Dropped, by reason", minutes, "dropped")),
    h("h2", {}, "Channels"),
    table(
      "channels",
      ["Channel", "Account", "State", "Last message", "Detail"],
      (channels.data.channels || []).map((c) => [
        c.channel,
        c.account,
        h("span", { class: c.running ? "ok" : "error" }, c.state || (c.running ? "running" : "stopped")),
        age(c.lastEventAgeSeconds),
        c.lastError || "",
      ]),
    ),
    h("h2", {}, "Plugins"),
    table(
      "plugins",
      ["Plugin", "Kind", "Status", "Error"],
      (Array.isArray(plugins.data) ? plugins.data : []).map((p) => [
        h("code", {}, p.id),
        p.tool ? `tool ${p.tool}` : p.kind || "",
        h("span", { class: p.status === "ready" ? "ok" : "error" }, p.status),
        p.error || "",
      ]),
    ),
  );
}

/** A labelled text input, and a labelled chat-kind select. */
const textField = (name, label, attrs = {}) => h("label", {}, label, h("input", { name, ...attrs }));
const kindField = (name, label) =>
  h("label", {}, label, h("select", { name }, ["", "direct", "group", "channel"].map((k) => h("option", { value: k }, k || "—"))));

/** What a scope form (channel, account, peer, guild, team) says, as the API writes it; `roles` apart. */
function readScope(form) {
  const f = new FormData(form);
  const v = (k) => (f.get(k) || "").toString().trim();
  const scope = { channel: v("channel") };
  if (v("accountId")) scope.accountId = v("accountId");
  if (v("peerId")) scope.peer = { kind: v("peerKind") || "direct", id: v("peerId") };
  if (v("guildId")) scope.guildId = v("guildId");
  if (v("teamId")) scope.teamId = v("teamId");
  const roles = v("roles").split(",").map((s) => s.trim()).filter(Boolean);
  return { scope, roles, v };
}

function scopeText(s) {
  const parts = [`${s.channel || "(no channel)"}/${s.accountId}`];
  if (s.peer) parts.push(`peer ${s.peer.kind}:${s.peer.id}`);
  if (s.guildId) parts.push(`guild ${s.guildId}`);
  if (s.roles) parts.push(`roles ${s.roles.join(", ")}`);
  if (s.teamId) parts.push(`team ${s.teamId}`);
  return parts.join(" · ");
}

function problemList(problems) {
  return h(
    "ul",
    { class: "problems" },
    (problems || []).map((d) =>
      h("li", {}, h("code", {}, `${d.path} (line ${d.line}, column ${d.column})`), `: ${d.message}`, d.help ? ` — ${d.help}` : "", d.source !== undefined ? h("div", {}, h("code", { class: "source" }, d.source)) : null),
    ),
  );
}

async function bindingsPage(note) {
  const [res, agents] = await Promise.all([api("bindings"), api("agents")]);
  const order = res.data.tiers || [];
  const list = [...(res.data.bindings || [])].sort(
    (a, b) => (a.tier ? order.indexOf(a.tier) : 99) - (b.tier ? order.indexOf(b.tier) : 99) || a.index - b.index,
  );
  const status = h("div", { id: "binding-status", role: "status" }, note || "");
  const remove = async (b) => {
    const r = await api("bindings/remove", { method: "POST", body: { index: b.index } });
    if (r.ok) return bindingsPage(h("p", { class: "ok" }, `Removed bindings[${b.index}].`));
    status.replaceChildren(h("p", { class: "error", role: "alert" }, r.data.error || `HTTP ${r.status}`), problemList(r.data.problems));
  };
  const standing = (b) =>
    b.status === "active"
      ? h("span", { class: "ok" }, "active")
      : b.status === "shadowed"
        ? h("span", { class: "muted" }, `shadowed by bindings[${b.by}]`)
        : h("span", { class: "error" }, `dead: ${b.why}`);
  const rows = list.map((b) => [
    h("code", {}, `bindings[${b.index}]`),
    h("code", {}, b.tier || "—"),
    b.agentId || "—",
    scopeText(b.scope),
    standing(b),
    h(
      "span",
      {},
      h("button", { type: "button", "data-edit": b.index, onclick: () => edit(b) }, "Edit"),
      " ",
      h("button", { type: "button", "data-remove": b.index, onclick: () => remove(b) }, "Remove"),
    ),
  ]);
  const field = textField;
  // Editing bindings[editing] (the form then changes it in place), or adding one.
  let editing = null;
  const heading = h("h2", { id: "binding-form-title" }, "Add a binding");
  const submit = h("button", { class: "primary", type: "submit" }, "Add binding");
  const edit = (b) => {
    editing = b.index;
    heading.textContent = `Change bindings[${b.index}]`;
    submit.textContent = "Save binding";
    const set = (name, value) => (form.elements[name].value = value ?? "");
    set("agentId", b.agentId);
    set("channel", b.scope.channel);
    set("accountId", b.scope.accountId === "default" ? "" : b.scope.accountId);
    set("peerKind", b.scope.peer?.kind);
    set("peerId", b.scope.peer?.id);
    set("guildId", b.scope.guildId);
    set("roles", (b.scope.roles || []).join(", "));
    set("teamId", b.scope.teamId);
    form.elements.agentId.focus();
  };
  const form = h(
    "form",
    { class: "grid", id: "binding-form" },
    h("label", {}, "Agent", h("input", { name: "agentId", list: "agent-ids", required: true })),
    h("datalist", { id: "agent-ids" }, (agents.data.agents || []).map((a) => h("option", { value: a.id }))),
    field("channel", "Channel", { required: true }),
    field("accountId", "Account (empty: default, * every account)"),
    kindField("peerKind", "Peer kind"),
    field("peerId", "Peer id"),
    field("guildId", "Guild (Discord)"),
    field("roles", "Roles (comma separated)"),
    field("teamId", "Team (Slack)"),
    submit,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const { scope: match, roles, v } = readScope(form);
    if (roles.length) match.roles = roles;
    const r =
      editing === null
        ? await api("bindings/add", { method: "POST", body: { agentId: v("agentId"), match } })
        : await api("bindings/replace", { method: "POST", body: { index: editing, agentId: v("agentId"), match } });
    const done = editing === null ? "Added" : `Changed bindings[${editing}]`;
    if (r.ok) return bindingsPage(h("p", { class: "ok" }, `${done}: the config file is written (comments kept) and in force.`));
    status.replaceChildren(h("p", { class: "error", role: "alert" }, r.data.error || `HTTP ${r.status}`), problemList(r.data.problems));
  });
  show(
    h("h1", {}, "Bindings"),
    h("p", { class: "muted" }, "Most specific tier first; within a tier the first binding in the file wins. Edits go to ", h("code", {}, res.data.file || "(no watched file)"), "."),
    status,
    table("bindings", ["Binding", "Tier", "Agent", "Matches", "Standing", ""], rows),
    heading,
    form,
  );
}

function tierLine(t) {
  if (t.status === "skipped") return h("li", {}, h("code", {}, t.tier), ` — skipped: ${t.reason}`);
  const cands = t.candidates || [];
  const matched = cands.find((c) => !c.rejectedBecause);
  if (matched) return h("li", { class: "matched" }, h("code", {}, t.tier), ` — matched bindings[${matched.bindingIndex}]`);
  if (!cands.length) return h("li", {}, h("code", {}, t.tier), " — no binding here");
  return h(
    "li",
    {},
    h("code", {}, t.tier),
    " — no match: ",
    cands.map((c) => `bindings[${c.bindingIndex}] ${c.rejectedBecause}`).join("; "),
  );
}

function routePage() {
  const field = textField;
  const result = h("section", { id: "route-result", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "grid", id: "route-form" },
    field("channel", "Channel", { required: true, placeholder: "whatsapp" }),
    field("accountId", "Account", { placeholder: "default" }),
    kindField("peerKind", "Peer kind"),
    field("peerId", "Peer id"),
    kindField("parentKind", "Parent kind"),
    field("parentId", "Parent peer id"),
    field("guildId", "Guild (Discord)"),
    field("roles", "Member roles (comma separated)"),
    field("teamId", "Team (Slack)"),
    h("button", { class: "primary", type: "submit" }, "Explain"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const { scope: body, roles, v } = readScope(form);
    if (v("parentId")) body.parentPeer = { kind: v("parentKind") || "group", id: v("parentId") };
    if (roles.length) body.memberRoleIds = roles;
    const res = await api("route", { method: "POST", body });
    const tiers = h("ol", { class: "tiers", id: "tiers" }, (res.data.tiers || []).map(tierLine));
    if (!res.ok) {
      result.replaceChildren(h("p", { class: "error", role: "alert" }, res.data.error || `HTTP ${res.status}`), tiers);
      return;
    }
    const r = (res.data.routes || [])[0] || {};
    result.replaceChildren(
      h("h2", {}, "Route"),
      h(
        "dl",
        {},
        h("dt", {}, "Agent"),
        h("dd", { id: "route-agent" }, h("code", {}, r.agentId)),
        h("dt", {}, "Matched by"),
        h("dd", { id: "route-tier" }, h("code", {}, r.matchedBy)),
        h("dt", {}, "Session"),
        h("dd", {}, h("code", {}, r.sessionKey)),
      ),
      h("h2", {}, "Tiers, most specific first"),
      tiers,
    );
  });
  show(h("h1", {}, "Why does a message go to that agent?"), form, result);
}

function parts(content) {
  if (typeof content === "string") return [content];
  return (content || []).map((p) => {
    if (p.type === "text") return p.text;
    if (p.type === "toolCall") return h("div", { class: "tool" }, `⚙ ${p.name}(${JSON.stringify(p.arguments)})`);
    if (p.type === "thinking") return h("div", { class: "muted" }, "(thinking)");
    if (p.type === "image") return h("div", { class: "muted" }, "(image)");
    return h("div", { class: "muted" }, `(${p.type})`);
  });
}

async function transcript(agent, key) {
  const res = await api(`sessions/history?agentId=${encodeURIComponent(agent)}&key=${encodeURIComponent(key)}`);
  if (!res.ok) return show(h("p", { class: "error", role: "alert" }, res.data.error || `HTTP ${res.status}`));
  const ids = res.data.entryIds || [];
  const messages = (res.data.messages || []).map((m, i) => {
    if (ids.length && ids[i] === null) {
      return h("div", { class: "msg compaction" }, h("span", { class: "who" }, `compaction summary (${res.data.compactions} compaction${res.data.compactions === 1 ? "" : "s"}: older turns summarised)`), parts(m.content));
    }
    const who = m.role === "toolResult" ? `result of ${m.toolName}` : m.role;
    const usage = m.usage ? ` · ${m.usage.input ?? 0} in / ${m.usage.output ?? 0} out tokens` : "";
    return h("div", { class: `msg ${m.role}` }, h("span", { class: "who" }, who + usage), parts(m.content));
  });
  show(
    h("h1", {}, "Transcript"),
    h("p", {}, h("a", { href: `#/sessions/${encodeURIComponent(agent)}` }, "← sessions of ", agent), " · ", h("code", {}, key)),
    h("section", { id: "transcript" }, messages.length ? messages : h("p", { class: "muted" }, "No messages yet.")),
  );
}

async function sessions(agent) {
  const agents = (await api("agents")).data.agents || [];
  const chosen = agent || (agents.find((a) => a.default) || agents[0] || {}).id;
  const pick = h(
    "select",
    { id: "agent", onchange: (ev) => (location.hash = `#/sessions/${encodeURIComponent(ev.target.value)}`) },
    agents.map((a) => h("option", { value: a.id, selected: a.id === chosen }, a.name ? `${a.id} (${a.name})` : a.id)),
  );
  const list = chosen ? (await api(`sessions?agentId=${encodeURIComponent(chosen)}`)).data.sessions || [] : [];
  let newestFirst = true;
  const body = h("tbody");
  const fill = () => {
    list.sort((a, b) => ((b.entry?.updatedAt ?? 0) - (a.entry?.updatedAt ?? 0)) * (newestFirst ? 1 : -1));
    body.replaceChildren(
      ...list.map((s) =>
        h(
          "tr",
          { "data-updated": s.entry?.updatedAt ?? 0 },
          h("td", {}, h("a", { class: "row", href: `#/transcript/${encodeURIComponent(chosen)}/${encodeURIComponent(s.key)}` }, s.key)),
          h("td", {}, s.entry?.updatedAt ? new Date(s.entry.updatedAt).toLocaleString() : "—"),
          h("td", {}, s.entry?.chatType || ""),
        ),
      ),
    );
    sortButton.textContent = `Last activity ${newestFirst ? "↓" : "↑"}`;
    sortButton.setAttribute("aria-label", `Last activity, ${newestFirst ? "newest" : "oldest"} first; activate to reverse`);
  };
  const sortButton = h("button", { type: "button", class: "sort", onclick: () => { newestFirst = !newestFirst; fill(); } });
  fill();
  show(
    h("h1", {}, "Sessions"),
    h("label", {}, "Agent", pick),
    h("table", { id: "sessions" }, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Session"), h("th", { scope: "col", "aria-sort": "descending" }, sortButton), h("th", { scope: "col" }, "Chat"))), body),
  );
}

async function pairingPage(note) {
  const res = await api("pairing");
  const status = h("p", { id: "pairing-status", role: "status" }, note || "");
  const decide = async (row, approve) => {
    const r = await api(`pairing/${approve ? "approve" : "deny"}`, { method: "POST", body: { channel: row.channel, code: row.code } });
    const done = r.ok ? `${approve ? "Approved" : "Denied"} ${row.id} on ${row.channel}.` : r.data.error || `HTTP ${r.status}`;
    await pairingPage(done);
  };
  const rows = (res.data.pending || []).map((r) => [
    r.channel,
    r.accountId,
    h("code", {}, r.id),
    r.name || "—",
    h("code", { class: "code" }, r.code),
    new Date(r.createdAt).toLocaleTimeString(),
    h(
      "span",
      {},
      h("button", { class: "primary", type: "button", "data-code": r.code, onclick: () => decide(r, true) }, "Approve"),
      " ",
      h("button", { type: "button", "data-deny": r.code, onclick: () => decide(r, false) }, "Deny"),
    ),
  ]);
  show(
    h("h1", {}, "Pairing requests"),
    h("p", { class: "muted" }, "Unknown senders under ", h("code", {}, 'dmPolicy: "pairing"'), " get a code; approving one lets that sender talk to the account's agent. Codes expire after an hour."),
    status,
    rows.length ? table("pairing", ["Channel", "Account", "Sender", "Name", "Code", "Asked", ""], rows) : h("p", { id: "pairing-empty" }, "No pending requests."),
  );
}

async function configPage() {
  const res = await api("config");
  const r = res.data;
  const when = r.checkedAtMs ? new Date(r.checkedAtMs).toLocaleTimeString() : "";
  const status = !r.file
    ? h("p", { id: "config-status", class: "muted" }, "No config file is watched (the gateway was given its config directly).")
    : r.applied
      ? h("p", { id: "config-status", class: "ok" }, "In force: ", h("code", {}, r.file), ` (checked ${when}).`)
      : h("p", { id: "config-status", class: "error", role: "alert" }, "The last change to ", h("code", {}, r.file), ` was not applied (checked ${when}): the gateway keeps running the last good config. Fix the errors below and save again.`);
  const problems = r.problems || [];
  const rows = problems.map((d) => [
    h("span", { class: d.severity === "error" ? "error" : "muted" }, d.severity),
    h("code", {}, `${d.file || ""}:${d.line}:${d.column}`),
    h("code", {}, d.path || ""),
    h("span", {}, d.message, d.help ? h("div", { class: "muted" }, d.help) : null),
    d.source !== undefined ? h("code", { class: "source" }, d.source) : "",
  ]);
  show(
    h("h1", {}, "Config"),
    status,
    h("button", { id: "config-refresh", type: "button", onclick: () => configPage() }, "Check again"),
    rows.length ? table("problems", ["", "Where", "Field", "Problem", "Line"], rows) : h("p", { id: "no-problems" }, "No problems."),
  );
}

/** The live feed: server-sent events read with fetch (EventSource cannot send the token). */
let liveStream = null;

async function livePage() {
  const agents = (await api("agents")).data.agents || [];
  const agent = h("select", { id: "live-agent" }, h("option", { value: "" }, "every agent"), agents.map((a) => h("option", { value: a.id }, a.id)));
  const channels = [...new Set(((await api("channels")).data.channels || []).map((c) => c.channel))];
  const channel = h("select", { id: "live-channel" }, h("option", { value: "" }, "every channel"), channels.map((c) => h("option", { value: c }, c)));
  const body = h("tbody");
  const state = h("p", { id: "live-state", class: "muted", role: "status" }, "Connecting…");
  const connect = async () => {
    liveStream?.abort();
    state.textContent = "Connecting…";
    const controller = new AbortController();
    liveStream = controller;
    const params = new URLSearchParams();
    if (agent.value) params.set("agentId", agent.value);
    if (channel.value) params.set("channel", channel.value);
    const query = params.size ? `?${params}` : "";
    const res = await fetch(`/api/v1/events${query}`, {
      headers: { authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}` },
      signal: controller.signal,
    }).catch(() => null);
    if (!res || !res.ok) {
      state.textContent = "The live feed is not available.";
      return;
    }
    state.textContent = "Live: new events appear at the top.";
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ done: true }));
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
        if (!data) continue;
        if (block.startsWith("event: missed")) {
          body.prepend(h("tr", {}, h("td", { colspan: 5, class: "muted" }, `${data} events missed (the page read too slowly)`)));
          continue;
        }
        const ev = JSON.parse(data);
        body.prepend(
          h(
            "tr",
            { class: `live-${ev.kind}` },
            h("td", {}, new Date(ev.atMs).toLocaleTimeString()),
            h("td", { class: ev.kind === "dropped" ? "error" : "" }, ev.kind),
            h("td", {}, `${ev.channel}/${ev.account}`),
            h("td", {}, ev.agent || "—"),
            h("td", {}, ev.text || ev.reason || ""),
          ),
        );
        while (body.children.length > 200) body.lastChild.remove();
      }
    }
  };
  agent.addEventListener("change", connect);
  channel.addEventListener("change", connect);
  show(
    h("h1", {}, "Live"),
    h("div", { class: "grid" }, h("label", {}, "Agent", agent), h("label", {}, "Channel", channel)),
    state,
    h("table", { id: "live" }, h("thead", {}, h("tr", {}, ["Time", "What", "Channel/account", "Agent", "Text or reason"].map((c) => h("th", { scope: "col" }, c)))), body),
  );
  connect();
}

async function render() {
  if (!location.hash.startsWith("#/live")) {
    liveStream?.abort();
    liveStream = null;
  }
  if (!sessionStorage.getItem(TOKEN_KEY)) return login();
  nav.hidden = false;
  const [page, ...args] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  for (const a of nav.querySelectorAll("a")) a.toggleAttribute("aria-current", a.getAttribute("href") === `#/${page || "overview"}`);
  for (const a of nav.querySelectorAll("a[aria-current]")) a.setAttribute("aria-current", "page");
  try {
    if (page === "route") return routePage();
    if (page === "bindings") return await bindingsPage();
    if (page === "live") return await livePage();
    if (page === "pairing") return await pairingPage();
    if (page === "config") return await configPage();
    if (page === "sessions") return await sessions(args[0]);
    if (page === "transcript") return await transcript(args[0], args.slice(1).join("/"));
    return await overview();
  } catch (e) {
    if (!(e instanceof Refused)) show(h("p", { class: "error", role: "alert" }, `The page failed: ${e.message}`));
  }
}

document.getElementById("logout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  login("Logged out.");
});
window.addEventListener("hashchange", render);
render();
