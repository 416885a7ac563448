// `webhook`: a generic JSON-webhook channel, written in JavaScript.
//
// A chela channel plugin (componentize-js, world `channel-plugin`), built by
// `cargo xtask build-plugins` into target/polyglot/channel_webhook_js.wasm.
// Any system that can POST JSON can talk to chela's agents through it:
//
//   POST /channels/webhook/<account>/messages   (Authorization: Bearer <webhookToken>)
//     {"id": "m-1", "chat": {"type": "direct", "id": "alice"}, "from": {"id": "alice", "name": "Alice"},
//      "text": "hello", "threadId"?: "t1", "parentChat"?: {...}, "replyTo"?: "m-0",
//      "guildId"?: "...", "teamId"?: "...", "roles"?: ["..."], "mentionsBot"?: false}
//     → 202 {"accepted": "m-1"}; the same id again is acknowledged alike and
//       dropped by the host, which journals and dedupes every event
//   GET /channels/webhook/<account>/outbox?after=N   (same token)
//     → 200 {"messages": [{"seq", "chat", "threadId", "replyTo", "text"}], "next": N}
//
// The token is the account's `webhookToken` setting: the host keeps it as a
// secret and this code only ever asks the host whether a presented token
// matches it (constant time). Replies wait in the account's outbox (the
// host's key-value state, kept per account) until fetched.
import { log } from 'chela:plugin/log@0.1.0';
import { get, compareAndSwap } from 'chela:plugin/kv@0.1.0';
import { exists, matches } from 'chela:plugin/secrets@0.1.0';

const OUTBOX_SLOTS = 256; // replies kept per account (a ring)
const KINDS = ['direct', 'group', 'channel'];
const enc = new TextEncoder();
const dec = new TextDecoder();

function respond(status, body) {
  return { status, headers: [['content-type', 'application/json']], body: enc.encode(JSON.stringify(body)) };
}

function readJson(key, fallback) {
  const raw = get(key);
  if (raw === undefined) return fallback;
  try { return JSON.parse(dec.decode(raw)); } catch { return fallback; }
}

// The outbox is a ring of OUTBOX_SLOTS replies, `outbox/<seq % OUTBOX_SLOTS>`,
// each holding its `seq`. Several instances may send for one account at once,
// so a reply claims its number and fills its slot in one compare-and-swap.
// `outbox-seq` is only a hint that may lag behind the ring (it is raised after
// the claim); the ring itself says where it ends.
function outboxTop() {
  let top = readJson('outbox-seq', 0);
  for (let n = 0; n < OUTBOX_SLOTS; n++) {
    const m = readJson(`outbox/${(top + 1) % OUTBOX_SLOTS}`, null);
    if (!m || m.seq !== top + 1) break;
    top += 1;
  }
  return top;
}

function append(entry) {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const seq = outboxTop() + 1;
    const key = `outbox/${seq % OUTBOX_SLOTS}`;
    const old = get(key); // the reply OUTBOX_SLOTS back, or nothing
    let taken = false;
    if (old !== undefined) {
      try { taken = JSON.parse(dec.decode(old)).seq >= seq; } catch { taken = false; }
    }
    if (!taken && compareAndSwap(key, old, enc.encode(JSON.stringify({ seq, ...entry })))) {
      raiseHint(seq);
      return seq;
    }
  }
  throw 'the outbox kept changing under this reply (1000 attempts)';
}

function raiseHint(seq) {
  for (;;) {
    const raw = get('outbox-seq');
    let current = 0;
    if (raw !== undefined) {
      try { current = Number(JSON.parse(dec.decode(raw))) || 0; } catch { current = 0; }
    }
    if (current >= seq) return;
    if (compareAndSwap('outbox-seq', raw, enc.encode(JSON.stringify(seq)))) return;
  }
}

function header(request, name) {
  const h = request.headers.find(([k]) => k.toLowerCase() === name);
  return h ? h[1] : undefined;
}

function authorized(request) {
  if (!exists('webhookToken')) return false; // no token configured: fail closed
  const auth = header(request, 'authorization') || '';
  const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
  return token.length > 0 && matches('webhookToken', token);
}

function peer(value, field) {
  if (typeof value !== 'object' || value === null) throw `\`${field}\` must be an object {type, id}`;
  if (!KINDS.includes(value.type)) throw `\`${field}.type\` must be one of ${KINDS.join(', ')}`;
  if (typeof value.id !== 'string' || value.id === '') throw `\`${field}.id\` must be a non-empty string`;
  return { kind: value.type, id: value.id };
}

const optString = (v, field) => {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw `\`${field}\` must be a string`;
  return v;
};

// Validates a posted message and turns it into an inbound event.
function toEvent(accountId, m, raw) {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw 'the body must be a JSON object';
  if (typeof m.id !== 'string' || m.id === '') throw '`id` must be a non-empty string';
  if (typeof m.text !== 'string') throw '`text` must be a string';
  if (typeof m.from !== 'object' || m.from === null || typeof m.from.id !== 'string') throw '`from.id` must be a string';
  const roles = m.roles ?? [];
  if (!Array.isArray(roles) || roles.some((r) => typeof r !== 'string')) throw '`roles` must be a list of strings';
  return {
    channel: 'webhook',
    accountId,
    peer: peer(m.chat, 'chat'),
    parentPeer: m.parentChat === undefined ? undefined : peer(m.parentChat, 'parentChat'),
    guildId: optString(m.guildId, 'guildId'),
    teamId: optString(m.teamId, 'teamId'),
    memberRoleIds: roles,
    threadId: optString(m.threadId, 'threadId'),
    senderId: m.from.id,
    senderName: optString(m.from.name, 'from.name'),
    messageId: m.id,
    text: m.text,
    mentionsBot: m.mentionsBot === true,
    replyToMessageId: optString(m.replyTo, 'replyTo'),
    raw,
  };
}

function receive(accountId, request) {
  let body;
  const raw = dec.decode(request.body);
  try { body = JSON.parse(raw); } catch (e) { return { response: respond(400, { error: `body is not JSON: ${e}` }), events: [] }; }
  let event;
  try { event = toEvent(accountId, body, raw); } catch (e) { return { response: respond(400, { error: String(e) }), events: [] }; }
  // A repeated id is the host's to drop: it journals the event before this
  // answer reaches the sender and dedupes by message id, so a retry after a
  // lost answer (or a crash) is never taken for new, nor lost.
  return { response: respond(202, { accepted: event.messageId }), events: [event] };
}

function outbox(request) {
  const query = request.pathWithQuery.split('?')[1] || '';
  const param = query.split('&').map((p) => p.split('=')).find(([k]) => k === 'after');
  const after = param ? Number(param[1]) : 0;
  if (!Number.isInteger(after) || after < 0) return respond(400, { error: '`after` must be a non-negative integer' });
  const next = outboxTop();
  const messages = [];
  for (let seq = Math.max(after + 1, next - OUTBOX_SLOTS + 1); seq <= next; seq++) {
    const m = readJson(`outbox/${seq % OUTBOX_SLOTS}`, null);
    if (m && m.seq === seq) messages.push(m);
  }
  return respond(200, { messages, next });
}

export const channelAdapter = {
  describe() {
    return { id: 'webhook', version: '0.1.0', textLimit: 4000, supportsThreads: true, httpHosts: [], needsPolling: false };
  },

  configureAccount(accountId, settings) {
    const s = JSON.parse(settings);
    const unknown = Object.keys(s).filter((k) => !['name', 'dmPolicy', 'allowFrom', 'groupPolicy', 'groupAllowFrom', 'groups', 'authDir'].includes(k));
    if (unknown.length > 0) throw `unknown setting(s) for the webhook channel: ${unknown.join(', ')} (the token is \`webhookToken\`)`;
    if (!exists('webhookToken')) log('warn', `webhook account ${accountId} has no webhookToken: every request will be refused`);
  },

  removeAccount(accountId) {
    // Nothing held in memory: every account's state is in its kv.
  },

  handleWebhook(accountId, request) {
    if (!authorized(request)) return { response: respond(401, { error: 'missing or wrong bearer token' }), events: [] };
    const path = request.pathWithQuery.split('?')[0];
    if (request.method === 'POST' && (path === '/messages' || path === '/messages/')) return receive(accountId, request);
    if (request.method === 'GET' && path === '/outbox') return { response: outbox(request), events: [] };
    return { response: respond(404, { error: `no route ${request.method} ${path}` }), events: [] };
  },

  poll(accountId) {
    return [];
  },

  send(message) {
    const chat = { type: message.peer.kind, id: message.peer.id };
    // The host sends a journaled reply again when a crash hid whether it
    // went out: the same reply to the same message in the same chat is that
    // retry, answered with the first delivery's id (the platform's idempotency).
    if (message.replyToMessageId !== undefined) {
      const last = outboxTop();
      for (let seq = last; seq > Math.max(0, last - OUTBOX_SLOTS); seq--) {
        const m = readJson(`outbox/${seq % OUTBOX_SLOTS}`, null);
        if (m && m.seq === seq && m.replyTo === message.replyToMessageId && m.text === message.text
            && m.chat.type === chat.type && m.chat.id === chat.id && m.threadId === message.threadId) {
          return { tag: 'sent', val: [String(seq)] };
        }
      }
    }
    try {
      const seq = append({ chat, threadId: message.threadId, replyTo: message.replyToMessageId, text: message.text });
      return { tag: 'sent', val: [String(seq)] };
    } catch (e) {
      return { tag: 'failed', val: `cannot store the reply in the outbox: ${e}` };
    }
  },
};
