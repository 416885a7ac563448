// The control page in a real headless Chromium (Debian's `chromium`,
// driven by playwright-core), against a running gateway. Started by the
// Rust test `the_control_page_works_in_a_real_browser_on_the_demo_config`
// (`host/cli/tests/gateway.rs`: the binary on the demo config with the demo
// platforms), which passes:
//   CHELA_URL        the page (the gateway's origin and base path)
//   CHELA_TOKEN      the gateway token
//   CHELA_EXPECT     JSON: what the page must show, and how to act as a user
//                    (agents, route, live, session, pairing, bindings, config)
//   CHELA_SHOTS      where to save one screenshot per page (docs/ui)
// Exits 0 when every check passed; otherwise prints the failed check and exits 1.

import { chromium } from "playwright-core";
import http from "node:http";
import fs from "node:fs";
import assert from "node:assert/strict";

const url = process.env.CHELA_URL;
const token = process.env.CHELA_TOKEN;
const expect = JSON.parse(process.env.CHELA_EXPECT || "{}");
const shots = process.env.CHELA_SHOTS;
const executablePath = process.env.CHELA_CHROMIUM || "/usr/bin/chromium";

const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
const step = (name) => console.log(`ok - ${name}`);
const shot = async (page, name) => {
  if (shots) await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
};

try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 }, colorScheme: "light" });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // A CSP violation is logged as a console error: the page must not cause any.
  // (Refusals the checks provoke — 401, 422 — are logged too; they are expected.)
  const expected = /^Failed to load resource: the server responded with a status of 4(01|22)/;
  page.on("console", (m) => m.type() === "error" && !expected.test(m.text()) && errors.push(m.text()));

  await page.goto(url);
  await page.waitForSelector("#login");
  await shot(page, "login");
  await page.fill("#token", "not-the-token");
  await page.click("#login button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#login-error")?.textContent.includes("refused"));
  assert.equal(await page.evaluate(() => sessionStorage.getItem("chela.token")), null, "a refused token is not kept");
  step("a wrong token is refused and not kept");

  await page.fill("#token", token);
  await page.click("#login button[type=submit]");
  await page.waitForSelector("#agents tbody tr");
  const agents = await page.$$eval("#agents tbody tr td:first-child", (tds) => tds.map((td) => td.textContent));
  assert.deepEqual(agents.sort(), [...expect.agents].sort(), "the agents of the config");
  assert.ok(!page.url().includes(token), "the token never goes into the URL");
  const channels = await page.$$eval("#channels tbody tr", (rows) => rows.map((r) => r.textContent));
  assert.ok(channels.some((r) => r.includes(expect.channel)), `channel ${expect.channel} listed: ${channels}`);
  await shot(page, "overview");
  step("logged in: the overview lists every agent and channel");

  await page.click('nav a[href="#/route"]');
  await page.waitForSelector("#route-form");
  for (const [name, value] of Object.entries(expect.route.input)) await page.fill(`#route-form [name=${name}]`, value);
  await page.click("#route-form button[type=submit]");
  await page.waitForSelector("#route-agent");
  assert.equal((await page.textContent("#route-agent")).trim(), expect.route.agent);
  assert.equal((await page.textContent("#route-tier")).trim(), expect.route.tier);
  const matched = await page.textContent("#tiers li.matched");
  assert.ok(matched.includes(expect.route.tier), `the matched tier is marked: ${matched}`);
  await shot(page, "route");
  step(`route explanation: ${expect.route.agent} by ${expect.route.tier}`);


  // Live: a message that arrives while the page is open shows up, and its answer.
  await page.click('nav a[href="#/live"]');
  await page.waitForFunction(() => document.querySelector("#live-state")?.textContent.startsWith("Live"));
  // Only this channel's events (the stream is asked again with the filter).
  await page.selectOption("#live-channel", expect.live.message.channel);
  await page.waitForFunction(() => document.querySelector("#live-state")?.textContent.startsWith("Live"));
  // As a user of the platform (the platform fakes deliver it to the gateway).
  const sent = await fetch(expect.live.say, { method: "POST", body: JSON.stringify(expect.live.message) });
  const said = await sent.json();
  assert.ok(said.replies?.length, `the user got an answer: ${JSON.stringify(said)}`);
  await page.waitForSelector("#live tr.live-in");
  await page.waitForSelector("#live tr.live-out");
  const inRow = await page.textContent("#live tr.live-in");
  assert.ok(inRow.includes(expect.live.message.text) && inRow.includes(expect.live.agent), `the inbound row: ${inRow}`);
  await shot(page, "live");
  step("live: the message and its answer appear as they happen");

  await page.click('nav a[href="#/sessions"]');
  await page.selectOption("#agent", expect.session.agent);
  const link = `#sessions a:has-text("${expect.session.keyContains}")`;
  await page.waitForSelector(link);
  // Sorted by last activity, newest first; the header turns the order around.
  const order = () => page.$$eval("#sessions tbody tr", (rows) => rows.map((r) => Number(r.dataset.updated)));
  const newest = await order();
  assert.ok(newest.length >= 2, `several sessions to order: ${newest}`);
  assert.deepEqual(newest, [...newest].sort((x, y) => y - x), "newest first");
  await page.click("#sessions th button");
  const oldest = await order();
  assert.deepEqual(oldest, [...newest].reverse(), "oldest first after a click");
  await shot(page, "sessions");
  await page.click(link);
  await page.waitForSelector("#transcript .msg");
  const transcript = await page.textContent("#transcript");
  for (const text of expect.session.contains) assert.ok(transcript.includes(text), `transcript has “${text}”: ${transcript}`);
  // Chat text is shown as text: a message carrying markup makes no element.
  assert.equal(await page.$$eval("#transcript img, #transcript script", (n) => n.length), 0, "markup in a message stays text");
  await shot(page, "transcript");
  step("sessions and the transcript, markup shown as text");

  // The Overview's traffic chart counts the messages so far, by agent.
  await page.click('nav a[href="#/overview"]');
  await page.waitForSelector("#chart-in svg");
  const legend = await page.textContent("#chart-in .legend");
  assert.ok(legend.includes(`${expect.live.agent}:`), `messages in by agent: ${legend}`);
  const agentRow = await page.textContent("#agents tbody tr:first-child");
  assert.ok(agentRow.includes(expect.overview.firstAgentModel), `the agent's model: ${agentRow}`);
  await shot(page, "overview");
  step("overview: traffic by agent and each agent's model");

  await page.click('nav a[href="#/pairing"]');
  await page.waitForSelector(`#pairing button[data-code="${expect.pairing.code}"]`);
  const row = await page.textContent("#pairing tbody");
  assert.ok(row.includes(expect.pairing.sender), `the pending request names its sender: ${row}`);
  await shot(page, "pairing");
  await page.click(`#pairing button[data-code="${expect.pairing.code}"]`);
  await page.waitForFunction(() => document.querySelector("#pairing-status")?.textContent.startsWith("Approved"));
  assert.equal(await page.$(`#pairing button[data-code="${expect.pairing.code}"]`), null, "no longer pending");
  step("pairing: the request approved from the page");

  // Bindings: tiers and standing; an edit refused with its position; an edit applied.
  await page.click('nav a[href="#/bindings"]');
  await page.waitForSelector("#bindings tbody tr");
  const listed = await page.$$eval("#bindings tbody tr", (rows) => rows.map((r) => r.textContent));
  for (const [index, tier] of expect.bindings.tiers) {
    assert.ok(listed.some((r) => r.includes(`bindings[${index}]`) && r.includes(tier) && r.includes("active")), `bindings[${index}] in ${tier}: ${listed}`);
  }
  const add = async (fields) => {
    for (const [name, value] of Object.entries(fields)) {
      if (name === "peerKind") await page.selectOption("#binding-form [name=peerKind]", value);
      else await page.fill(`#binding-form [name=${name}]`, value);
    }
    await page.click("#binding-form button[type=submit]");
  };
  const b = expect.bindings.add;
  await add({ agentId: "ghost", channel: b.channel, accountId: b.account, peerKind: "direct", peerId: b.peer });
  await page.waitForSelector("#binding-status [role=alert]");
  const refusal = await page.textContent("#binding-status");
  assert.ok(refusal.includes("nothing was written") && refusal.includes(".agentId (line "), `refused with its position: ${refusal}`);
  await shot(page, "bindings-refused");
  await add({ agentId: b.agent, channel: b.channel, accountId: b.account, peerKind: "direct", peerId: b.peer });
  await page.waitForFunction(() => document.querySelector("#binding-status")?.textContent.startsWith("Added"));
  const after = await page.$$eval("#bindings tbody tr", (rows) => rows.map((r) => r.textContent));
  assert.ok(after.some((r) => r.includes(`peer direct:${b.peer}`) && r.includes("binding.peer")), `the new binding: ${after}`);
  assert.ok(fs.readFileSync(expect.config.file, "utf8").includes(expect.bindings.comment), "the file's comments are kept");
  await shot(page, "bindings");
  // One more, then removed again from its row.
  await add({ agentId: b.agent, channel: b.channel, accountId: b.account, peerKind: "direct", peerId: "+15550000042" });
  await page.waitForFunction(() => [...document.querySelectorAll("#bindings tbody tr")].some((r) => r.textContent.includes("+15550000042")));
  const index = await page.$$eval("#bindings tbody tr", (rows) => {
    const row = rows.find((r) => r.textContent.includes("+15550000042"));
    return row.querySelector("button[data-remove]").dataset.remove;
  });
  // Changed in place: another agent for the same peer.
  await page.click(`#bindings button[data-edit="${index}"]`);
  assert.equal(await page.inputValue("#binding-form [name=peerId]"), "+15550000042", "the form holds the binding");
  await page.fill("#binding-form [name=agentId]", expect.bindings.changeTo);
  await page.click("#binding-form button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#binding-status")?.textContent.startsWith("Changed"));
  const changed = await page.$$eval("#bindings tbody tr", (rows) => rows.find((r) => r.textContent.includes("+15550000042"))?.textContent);
  assert.ok(changed.includes(expect.bindings.changeTo) && changed.includes(`bindings[${index}]`), `changed in place: ${changed}`);
  await page.click(`#bindings button[data-remove="${index}"]`);
  await page.waitForFunction(() => document.querySelector("#binding-status")?.textContent.startsWith("Removed"));
  const left = await page.textContent("#bindings tbody");
  assert.ok(!left.includes("+15550000042") && left.includes(b.peer), `removed, the other kept: ${left}`);
  assert.ok(!fs.readFileSync(expect.config.file, "utf8").includes("+15550000042"), "removed from the file");
  step("bindings: a bad edit refused at its position, good ones written, changed and removed");

  // Config: the file in force, then an edit that breaks it, shown with its line and not applied.
  await page.click('nav a[href="#/config"]');
  await page.waitForFunction(() => document.querySelector("#config-status")?.textContent.startsWith("In force"));
  fs.writeFileSync(expect.config.file, expect.config.bad);
  for (let tries = 0; ; tries++) {
    await page.click("#config-refresh");
    await page.waitForTimeout(300);
    if ((await page.textContent("#config-status")).includes("was not applied")) break;
    assert.ok(tries < 50, "the refused edit shows within 15 s");
  }
  const problem = await page.textContent("#problems tbody");
  assert.ok(problem.includes(expect.config.agent), `the problem names the unknown agent: ${problem}`);
  assert.ok(problem.includes(`:${expect.config.line}:`), `the problem names line ${expect.config.line}: ${problem}`);
  await shot(page, "config");
  step("config: a refused edit is shown with its position and source line");

  // A token that stops working sends the user back to the login.
  await page.evaluate(() => sessionStorage.setItem("chela.token", "revoked"));
  await page.click('nav a[href="#/overview"]');
  await page.waitForFunction(() => document.querySelector("#login-error")?.textContent.includes("log in again"));
  step("a refused token shows the login again");
  assert.deepEqual(errors, [], "no script errors or CSP violations");

  // A page on another origin cannot use the API, even holding the token.
  const evil = http.createServer((_, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<!doctype html><title>elsewhere</title>");
  });
  await new Promise((r) => evil.listen(0, "127.0.0.1", r));
  const other = await context.newPage();
  await other.goto(`http://127.0.0.1:${evil.address().port}/`);
  const api = new URL("/api/v1/agents", url).href;
  const outcome = await other.evaluate(
    async ({ api, token }) => {
      const out = {};
      try {
        const r = await fetch(api, { headers: { authorization: `Bearer ${token}` } });
        out.read = `answered ${r.status}`;
      } catch (e) {
        out.read = "blocked";
      }
      return out;
    },
    { api, token },
  );
  assert.equal(outcome.read, "blocked", "a cross-origin page cannot read the API");
  evil.close();
  step("another origin cannot use the API");
  console.log(JSON.stringify({ passed: true, crossOrigin: outcome }));
} catch (e) {
  console.error(`not ok - ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
