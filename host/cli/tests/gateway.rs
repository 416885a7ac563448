//! `chela gateway` as a black box: the real binary on 127.0.0.1, with the
//! fakes of all four platforms and of the OpenAI API, real channel
//! components from `plugins/`, config and state in files. Only what a user
//! sees: platform messages in, replies recorded by the fakes, the control
//! API, the exit code.

use std::path::Path;
use std::time::{Duration, Instant};

use chela_fakes::discord::DiscordFake;
use chela_fakes::openai::{OpenAiFake, Scripted};
use chela_fakes::slack::{AppSpec, SlackFake};
use chela_fakes::telegram::TelegramFake;
use chela_fakes::whatsapp::WhatsAppFake;
use serde_json::Value;
use support::{chela, eventually, Gateway, WAIT};

mod support;

const HELP_BOT: &str = "222:BBB-help";
const DISCORD_BOT: &str = "MTEx.main-bot-token";
const GUILD: &str = "1200000000000000001";
const GENERAL: &str = "1200000000000000002";
const SALES: &str = "106540352242922";
const APP_SECRET: &str = "wa-app-secret";
const TOKEN: &str = "ctl-token";

struct Fakes {
    telegram: TelegramFake,
    slack: SlackFake,
    discord: DiscordFake,
    whatsapp: WhatsAppFake,
    openai: OpenAiFake,
}

impl Fakes {
    async fn start() -> Fakes {
        let telegram = TelegramFake::start().await;
        telegram.add_bot(HELP_BOT, 222, "sage_bot");
        telegram.add_group(-1001, "Family", &[]);
        let slack = SlackFake::start().await;
        slack.add_app(AppSpec {
            app_id: "A0ACME",
            team_id: "T0ACME",
            bot_token: "xoxb-acme",
            app_token: "xapp-1-acme",
            signing_secret: "acme-signing",
            bot_user_id: "U0BOTACME",
        });
        slack.add_conversation("T0ACME", "C0GENERAL", "channel", None);
        let discord = DiscordFake::start().await;
        discord.add_bot(DISCORD_BOT, "1100000000000000009", "ops", true);
        discord.add_guild(GUILD, &[GENERAL], &[]);
        let whatsapp = WhatsAppFake::start(APP_SECRET).await;
        whatsapp.add_number(SALES, "15550783881", "EAAG-sales");
        let openai = OpenAiFake::start("sk-fake-openai").await;
        Fakes { telegram, slack, discord, whatsapp, openai }
    }
}

/// The config, with WhatsApp's `sales` number bound to `sales_agent`.
fn config(root: &Path, f: &Fakes, sales_agent: &str) -> String {
    format!(
        r#"{{
  models: {{ providers: {{ openai: {{ baseUrl: "{openai}" }} }} }},
  agents: {{ list: [
    {{ id: "work", default: true, workspace: "{root}/ws-work", identity: {{ name: "Atlas" }} }},
    {{ id: "support", workspace: "{root}/ws-support", identity: {{ name: "Sage" }}, model: "openai/gpt-test" }},
    {{ id: "ops", workspace: "{root}/ws-ops", identity: {{ name: "Ops" }} }},
  ] }},
  bindings: [
    {{ agentId: "support", match: {{ channel: "telegram", accountId: "help" }} }},
    {{ agentId: "work", match: {{ channel: "slack", accountId: "acme" }} }},
    {{ agentId: "ops", match: {{ channel: "discord", accountId: "main" }} }},
    {{ agentId: "{sales_agent}", match: {{ channel: "whatsapp", accountId: "sales" }} }},
  ],
  broadcast: {{ "-1001": ["work", "ops"] }},
  channels: {{
    telegram: {{ dmPolicy: "pairing", groupPolicy: "open", groups: {{ "-1001": {{ requireMention: false }} }},
      accounts: {{ help: {{ botToken: "{HELP_BOT}", apiRoot: "{telegram}" }} }} }},
    slack: {{ dmPolicy: "open", allowFrom: ["*"], groupPolicy: "open", groups: {{ "*": {{ requireMention: true }} }},
      apiBase: "{slack}", accounts: {{ acme: {{ botToken: "xoxb-acme", appToken: "xapp-1-acme" }} }} }},
    discord: {{ dmPolicy: "open", allowFrom: ["*"], groupPolicy: "open", groups: {{ "*": {{ requireMention: true }} }},
      apiBase: "{discord}", accounts: {{ main: {{ token: "{DISCORD_BOT}" }} }} }},
    whatsapp: {{ dmPolicy: "open", allowFrom: ["*"], appSecret: "{APP_SECRET}", verifyToken: "let-me-in",
      graphApiBase: "{whatsapp}", accounts: {{ sales: {{ phoneNumberId: "{SALES}", accessToken: "EAAG-sales" }} }} }},
  }},
  gateway: {{ auth: {{ token: "{TOKEN}" }} }},
}}"#,
        root = root.display(),
        openai = f.openai.base_url(),
        telegram = f.telegram.api_root(),
        slack = f.slack.api_base(),
        discord = f.discord.api_base(),
        whatsapp = f.whatsapp.base_url(),
    )
}

fn telegram_text(m: &Value) -> String {
    m["text"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_platforms_pairing_mentions_broadcast_reload_limits_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let f = Fakes::start().await;
    let gw = Gateway::start(root, &config(root, &f, "work")).await;
    let hook = format!("http://{}/channels/whatsapp/sales/", gw.addr);
    f.whatsapp.subscribe(&hook, "let-me-in").await.expect("WhatsApp handshake");

    // Telegram, pairing: a stranger gets a code and reaches no agent…
    f.telegram.user_message(HELP_BOT, None, (4242, "Mia"), "hello?", Value::Null);
    let sent = f.telegram.wait_sent(HELP_BOT, 1, WAIT).await;
    let code_msg = telegram_text(&sent[0]);
    let code = code_msg.split("pairing code is ").nth(1).and_then(|r| r.get(..8)).expect("a code").to_string();
    assert!(f.openai.requests().is_empty(), "no model was asked");
    // …until the owner approves the code; then the bound agent (support, on the OpenAI fake) answers.
    let approve = chela(root, &gw.config).args(["pairing", "approve", "telegram", &code]).output().await.unwrap();
    assert!(approve.status.success(), "{}", String::from_utf8_lossy(&approve.stderr));
    f.openai.script([Scripted::Text("Sage here, via the model.".into())]);
    f.telegram.user_message(HELP_BOT, None, (4242, "Mia"), "hello again", Value::Null);
    let sent = f.telegram.wait_sent(HELP_BOT, 2, WAIT).await;
    assert_eq!(telegram_text(&sent[1]), "Sage here, via the model.");
    assert_eq!(sent[1]["chat_id"], 4242);
    assert_eq!(f.openai.requests().len(), 1);

    // Telegram, a broadcast group: both listed agents answer in the group.
    f.telegram.user_message(HELP_BOT, Some(-1001), (4242, "Mia"), "dinner at 8?", Value::Null);
    let sent = f.telegram.wait_sent(HELP_BOT, 4, WAIT).await;
    let mut who: Vec<String> =
        sent[2..].iter().map(|m| telegram_text(m).split(' ').next().unwrap_or("").into()).collect();
    who.sort();
    assert_eq!(who, ["Atlas", "Ops"], "{sent:?}");
    assert!(sent[2..].iter().all(|m| m["chat_id"] == -1001));

    // Slack (Socket Mode): no mention, no answer (but stored); a mention → `work`.
    f.slack.user_message("A0ACME", "C0GENERAL", "U0BO", "morning all", None).await;
    f.slack.user_message("A0ACME", "C0GENERAL", "U0BO", "<@U0BOTACME> status?", None).await;
    let sent = f.slack.wait_sent("A0ACME", 1, WAIT).await;
    assert!(sent[0]["text"].as_str().unwrap_or_default().starts_with("Atlas (agent `work`)"), "{}", sent[0]);
    assert!(sent[0]["text"].as_str().unwrap_or_default().contains("status?"), "{}", sent[0]);

    // Discord (Gateway + REST): a mention in a guild channel → `ops`, back in that channel.
    assert!(f.discord.wait_connected(DISCORD_BOT, WAIT).await);
    f.discord.user_message(DISCORD_BOT, Some(GENERAL), ("1300000000000000001", "kim"), "deploy?", &[], true);
    let sent = f.discord.wait_sent(DISCORD_BOT, 1, WAIT).await;
    assert_eq!(sent[0].0, GENERAL);
    assert!(sent[0].1["content"].as_str().unwrap_or_default().starts_with("Ops (agent `ops`)"), "{:?}", sent[0]);

    // WhatsApp (signed webhook): a DM → `work`, through the sales number.
    let (_, status) = f.whatsapp.user_message(SALES, ("15551234567", "Ana"), "price list?", None, None).await;
    assert_eq!(status, Some(200));
    let sent = f.whatsapp.wait_sent(SALES, 1, WAIT).await;
    assert!(sent[0]["text"]["body"].as_str().unwrap_or_default().starts_with("Atlas"), "{}", sent[0]);

    // Bindings edited while messages flow: nothing is lost, later ones reach `ops`.
    let mut accepted = 1;
    let moved_at = Instant::now();
    gw.edit(&config(root, &f, "ops"));
    let mut last = String::new();
    while moved_at.elapsed() < Duration::from_secs(10) {
        let (_, status) = f.whatsapp.user_message(SALES, ("15551234567", "Ana"), "still there?", None, None).await;
        assert_eq!(status, Some(200));
        accepted += 1;
        let sent = f.whatsapp.wait_sent(SALES, accepted, WAIT).await;
        last = sent[accepted - 1]["text"]["body"].as_str().unwrap_or_default().to_string();
        if last.starts_with("Ops") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(last.starts_with("Ops (agent `ops`)"), "the new binding never applied: {last}");
    assert_eq!(f.whatsapp.sent(SALES).len(), accepted, "every accepted message answered once");

    // An invalid edit changes nothing: still `ops`, still ready.
    gw.edit("{ agents: { list: [ { id: 42 } ] }");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    f.whatsapp.user_message(SALES, ("15551234567", "Ana"), "and now?", None, None).await;
    accepted += 1;
    let sent = f.whatsapp.wait_sent(SALES, accepted, WAIT).await;
    assert!(sent[accepted - 1]["text"]["body"].as_str().unwrap_or_default().starts_with("Ops"), "{:?}", sent.last());
    assert_eq!(gw.get("/readyz", &[]).await.status, 200);

    // The control API: wrong token → 401, then locked out (429); too big a body → 413.
    let ok = gw.get("/api/v1/agents", &[("authorization", &format!("Bearer {TOKEN}"))]).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(gw.get("/api/v1/agents", &[("authorization", "Bearer guess")]).await.status, 401);
    let mut locked = false;
    for _ in 0..20 {
        if gw.get("/api/v1/agents", &[("authorization", "Bearer guess")]).await.status == 429 {
            locked = true;
            break;
        }
    }
    assert!(locked, "repeated bad tokens are rate limited");
    let big = vec![b'x'; 2 << 20];
    assert_eq!(gw.post("/channels/whatsapp/sales/", &[], &big).await.status, 413);

    // SIGTERM during a burst: every message the gateway accepted is answered, exit 0.
    let before = f.whatsapp.sent(SALES).len();
    let mut ok_count = 0;
    for i in 0..20 {
        if i == 10 {
            gw.sigterm();
        }
        let (_, status) =
            f.whatsapp.user_message(SALES, ("15551234567", "Ana"), &format!("burst {i}"), None, None).await;
        if status == Some(200) {
            ok_count += 1;
        }
    }
    let mut gw = gw;
    let exit = tokio::time::timeout(WAIT, gw.child.wait()).await.expect("exits").unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(ok_count >= 10, "the first half was accepted: {ok_count}");
    let replies = f.whatsapp.sent(SALES).len() - before;
    assert_eq!(replies, ok_count, "accepted {ok_count} during shutdown, answered {replies}");
    eventually("nothing more arrives", || f.whatsapp.sent(SALES).len() - before == ok_count).await;
}

#[tokio::test]
async fn a_public_listener_without_a_token_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("chela.json5");
    std::fs::write(&config, "{}").unwrap();
    let out = chela(dir.path(), &config).args(["gateway", "--bind", "lan", "--port", "0"]).output().await.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("token"), "{err}");
}

/// `examples/multi-agent.json5` as the demo runs it, under `root`: its
/// workspaces copied, the platforms of `chela-platforms` on free ports in
/// place of the demo's fixed ones, the JavaScript webhook channel; the
/// gateway (the binary) and the platforms, running. Also the config text.
async fn demo_gateway(root: &Path) -> (chela_fakes::platforms::Platforms, Gateway, String) {
    use chela_fakes::platforms::Platforms;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for agent in ["personal", "work", "support"] {
        let to = root.join("examples/workspaces").join(agent);
        std::fs::create_dir_all(&to).unwrap();
        for f in std::fs::read_dir(repo.join("examples/workspaces").join(agent)).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
        }
    }
    let platforms = Platforms::start(0, "http://127.0.0.1:9").await.expect("platforms start");
    let mut text = std::fs::read_to_string(repo.join("examples/multi-agent.json5")).unwrap();
    let fixed =
        ["http://127.0.0.1:18791", "http://127.0.0.1:18792", "http://127.0.0.1:18793", "http://127.0.0.1:18794"];
    let urls = platforms.base_urls();
    for (fixed, actual) in fixed.iter().zip(&urls) {
        // The example names the demo ports; the platforms' base URLs extend them with the same paths.
        let actual = actual.replace("/api/v10", "").replace("/api", "");
        assert!(text.contains(fixed), "the example no longer points at {fixed}");
        text = text.replace(fixed, &actual);
    }
    text = text.replace("workspace: \"examples/", &format!("workspace: \"{}/examples/", root.display()));
    // The example also has the JavaScript webhook channel.
    let js = repo.join("target/polyglot/channel_webhook_js.wasm");
    assert!(js.exists(), "{} is missing: run `cargo xtask build-plugins` first", js.display());
    std::fs::create_dir_all(root.join("state/plugins")).unwrap();
    std::fs::copy(&js, root.join("state/plugins/channel_webhook_js.wasm")).unwrap();
    let gw = Gateway::start(root, &text).await;
    platforms.set_gateway(&format!("http://{}", gw.addr)).await;
    (platforms, gw, text)
}

/// A user's message on one of the demo platforms, waiting up to 20 s for the answer.
fn say(channel: &str, account: Option<&str>, from: &str, text: &str) -> chela_fakes::platforms::Say {
    chela_fakes::platforms::Say {
        channel: channel.into(),
        account: account.map(str::to_string),
        from: from.into(),
        name: None,
        text: text.into(),
        group: None,
        roles: Vec::new(),
        mention: false,
        wait_ms: Some(20_000),
    }
}

/// `examples/multi-agent.json5` as the demo runs it: the platforms of
/// `chela-platforms` (here on free ports), users writing on each of them,
/// and the agent each binding names answering through the right account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_config_answers_by_binding_on_the_four_demo_platforms() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (platforms, gw, _) = demo_gateway(root).await;

    let first = |replies: Vec<Value>| -> String {
        assert_eq!(replies.len(), 1, "{replies:?}");
        replies[0]["text"].as_str().unwrap_or_default().to_string()
    };
    // WhatsApp: the business number → work; family writing to it → personal (the peer binding wins).
    let r = platforms.say(&say("whatsapp", Some("biz"), "+15557770000", "price list?")).await.unwrap();
    assert!(first(r.clone()).contains("Atlas (agent `work`)"), "{r:?}");
    assert_eq!(r[0]["to"], "15557770000");
    let r = platforms.say(&say("whatsapp", Some("biz"), "+15550001111", "hi, it's Alex")).await.unwrap();
    assert!(first(r.clone()).contains("Pip (agent `personal`)"), "{r:?}");
    // The personal number is an allowlist: a stranger reaches no agent.
    let mut stranger = say("whatsapp", Some("personal"), "+15557770000", "who is this?");
    stranger.wait_ms = Some(1500);
    assert!(platforms.say(&stranger).await.unwrap().is_empty());
    // Telegram: the helpdesk bot → support; the default bot asks a stranger to pair.
    let r = platforms.say(&say("telegram", Some("helpdesk"), "111111111", "my order is late")).await.unwrap();
    assert!(first(r.clone()).contains("Sage (agent `support`)"), "{r:?}");
    let r = platforms.say(&say("telegram", Some("default"), "333333333", "hello")).await.unwrap();
    assert!(first(r.clone()).contains("pairing code"), "{r:?}");
    // Slack: the company workspace → work, in #general only when mentioned.
    let mut general = say("slack", None, "U0ALEX", "standup notes?");
    general.group = Some("C0GENERAL".into());
    general.wait_ms = Some(1500);
    assert!(platforms.say(&general).await.unwrap().is_empty(), "requireMention");
    general.mention = true;
    general.wait_ms = Some(20_000);
    let r = platforms.say(&general).await.unwrap();
    assert!(first(r.clone()).contains("Atlas (agent `work`)"), "{r:?}");
    assert_eq!(r[0]["to"], "C0GENERAL");
    // Discord: the guild → work; a member with the support role → support.
    assert!(platforms.discord.wait_connected(chela_fakes::platforms::DISCORD_TOKEN, WAIT).await);
    let mut guild = say("discord", None, "1300000000000000001", "deploy?");
    guild.group = Some(chela_fakes::platforms::DISCORD_CHANNEL.into());
    guild.mention = true;
    let r = platforms.say(&guild).await.unwrap();
    assert!(first(r.clone()).contains("Atlas (agent `work`)"), "{r:?}");
    guild.roles = vec!["998877".into()];
    let r = platforms.say(&guild).await.unwrap();
    assert!(first(r.clone()).contains("Sage (agent `support`)"), "{r:?}");
    assert_eq!(gw.get("/readyz", &[]).await.status, 200);
}

/// OpenClaw's default single-agent mode: a config with no `agents.list`
/// runs one agent, `main`, through `chela send` (with and without a
/// gateway) and through a channel; a binding to any other agent is refused
/// by validation, as the runtime would refuse it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_agent_mode_runs_main_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let bare = root.join("bare.json5");
    std::fs::write(&bare, "{}").unwrap();
    let offline = chela(root, &bare).args(["send", "--agent", "main", "hello offline"]).output().await.unwrap();
    let said = String::from_utf8_lossy(&offline.stdout).to_string();
    assert!(
        offline.status.success() && said.contains("agent `main`"),
        "{said}{}",
        String::from_utf8_lossy(&offline.stderr)
    );

    let text = r#"{ channels: { webhook: { dmPolicy: "open", allowFrom: ["*"], accounts: { inbox: { webhookToken: "inbox-secret" } } } } }"#;
    let gw = Gateway::start_with(root, text, &["channel_webhook_js"]).await;
    let via_gateway =
        chela(root, &gw.config).args(["send", "--agent", "main", "hello gateway"]).output().await.unwrap();
    assert!(via_gateway.status.success(), "{}", String::from_utf8_lossy(&via_gateway.stderr));
    let msg =
        r#"{"id":"m1","chat":{"type":"direct","id":"ana"},"from":{"id":"ana","name":"Ana"},"text":"hello channel"}"#;
    let auth = [("authorization", "Bearer inbox-secret"), ("content-type", "application/json")];
    let posted = gw.post("/channels/webhook/inbox/messages", &auth, msg.as_bytes()).await;
    assert!(posted.status < 300, "{} {}", posted.status, posted.body);
    let deadline = Instant::now() + WAIT;
    loop {
        let outbox = gw.get("/channels/webhook/inbox/outbox?after=0", &auth).await;
        if outbox.body.contains("hello channel") {
            assert!(outbox.body.contains("agent `main`"), "{}", outbox.body);
            break;
        }
        assert!(Instant::now() < deadline, "no reply from main: {}", outbox.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let stray = root.join("stray.json5");
    std::fs::write(&stray, r#"{ bindings: [ { agentId: "work", match: { channel: "webhook" } } ] }"#).unwrap();
    let out = chela(root, &stray).args(["config", "validate"]).output().await.unwrap();
    let t = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && t.contains("`work`") && t.contains("single-agent"), "{t}");
}

/// `chela route` prints what the gateway does: for a broadcast group in a
/// thread and a DM in a thread, the agents and session keys it predicts are
/// exactly the sessions the running gateway then creates (read back from
/// the stores), not a copy of the rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_prints_what_the_gateway_does_for_broadcast_and_threads() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let text = r#"{
      agents: { list: [ { id: "alpha", default: true }, { id: "beta" }, { id: "gamma" } ] },
      session: { dmScope: "per-channel-peer" },
      bindings: [ { agentId: "gamma", match: { channel: "webhook", accountId: "inbox", peer: { kind: "direct", id: "ana" } } } ],
      broadcast: { strategy: "sequential", "room-1": ["alpha", "beta"] },
      channels: { webhook: { dmPolicy: "open", allowFrom: ["*"], groupPolicy: "open",
        groups: { "*": { requireMention: false } }, accounts: { inbox: { webhookToken: "inbox-secret" } } } }
    }"#;
    let gw = Gateway::start_with(root, text, &["channel_webhook_js"]).await;
    let predict = |peer: &'static str, thread: &'static str| {
        let config = gw.config.clone();
        async move {
            let args =
                ["route", "--json", "--channel", "webhook", "--account", "inbox", "--peer", peer, "--thread", thread];
            let out = chela(root, &config).args(args).output().await.unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            let routes = v["routes"].as_array().cloned().unwrap_or_default();
            let pairs: Vec<(String, String)> = routes
                .iter()
                .map(|r| (r["agentId"].as_str().unwrap().to_string(), r["sessionKey"].as_str().unwrap().to_string()))
                .collect();
            (pairs, v)
        }
    };
    let (room, room_json) = predict("group:room-1", "T-7").await;
    assert_eq!(room_json["broadcast"], "sequential", "{room_json}");
    assert_eq!(room.len(), 2, "{room_json}");
    assert!(room.iter().all(|(_, k)| k.ends_with(":thread:t-7")), "{room:?}");
    let (ana, ana_json) = predict("direct:ana", "t-9").await;
    assert_eq!(ana_json["routes"][0]["agentId"], "gamma", "{ana_json}");
    assert_eq!(ana.len(), 1, "{ana_json}");

    let auth = [("authorization", "Bearer inbox-secret"), ("content-type", "application/json")];
    for msg in [
        r#"{"id":"g1","chat":{"type":"group","id":"room-1"},"from":{"id":"bob","name":"Bob"},"text":"hello room","threadId":"T-7"}"#,
        r#"{"id":"d1","chat":{"type":"direct","id":"ana"},"from":{"id":"ana","name":"Ana"},"text":"hello me","threadId":"t-9"}"#,
    ] {
        let posted = gw.post("/channels/webhook/inbox/messages", &auth, msg.as_bytes()).await;
        assert!(posted.status < 300, "{} {}", posted.status, posted.body);
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let outbox = gw.get("/channels/webhook/inbox/outbox?after=0", &auth).await;
        let v: Value = serde_json::from_str(&outbox.body).unwrap_or_default();
        if v["messages"].as_array().map_or(0, Vec::len) >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "not every turn replied: {}", outbox.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = chela(root, &gw.config).args(["sessions", "list", "--all-agents", "--json"]).output().await.unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut made: Vec<(String, String)> = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["agentId"].as_str().unwrap().to_string(), s["key"].as_str().unwrap().to_string()))
        .collect();
    made.sort();
    let mut predicted: Vec<(String, String)> = room.into_iter().chain(ana).collect();
    predicted.sort();
    assert_eq!(made, predicted, "chela route predicted {predicted:?}; the gateway made {made:?}");
}

/// The account's entry in `/readyz`.
async fn account_health(gw: &Gateway, channel: &str, account: &str) -> Value {
    let r = gw.get("/readyz", &[]).await;
    let body: Value = serde_json::from_str(&r.body).unwrap_or_default();
    body["accounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["channel"] == channel && a["account"] == account)
        .cloned()
        .unwrap_or_default()
}

/// A Telegram poller whose platform stops answering (`getUpdates` accepted,
/// never answered) is reported degraded in `/readyz` and `/metrics` while
/// the replica stays ready, is started over with a fresh connection, and
/// serves again once the platform answers. Another account of the same
/// adapter is served meanwhile, without waiting on the silent one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poller_whose_platform_stops_answering_is_restarted_and_reported() {
    const QUIET: &str = "333:CCC-quiet";
    const LIVELY: &str = "444:DDD-lively";
    let dir = tempfile::tempdir().unwrap();
    let telegram = TelegramFake::start().await;
    telegram.add_bot(QUIET, 333, "quiet_bot");
    telegram.add_bot(LIVELY, 444, "lively_bot");
    let api = telegram.api_root();
    let config = format!(
        r#"{{ channels: {{ telegram: {{ dmPolicy: "open", allowFrom: ["*"], accounts: {{
               quiet: {{ botToken: "{QUIET}", apiRoot: "{api}" }},
               lively: {{ botToken: "{LIVELY}", apiRoot: "{api}" }} }} }} }} }}"#
    );
    let gw = Gateway::start_with(dir.path(), &config, &["channel_telegram"]).await;
    telegram.user_message(QUIET, None, (71, "Ana"), "first", serde_json::json!({}));
    assert_eq!(telegram.wait_sent(QUIET, 1, WAIT).await.len(), 1, "served before it went silent");
    assert_eq!(account_health(&gw, "telegram", "quiet").await["state"], "up");

    telegram.stop_answering(QUIET);
    // Degraded within the call timeout (10 s) and a retry, restarted, the replica still ready.
    let deadline = Instant::now() + Duration::from_secs(40);
    let health = loop {
        let h = account_health(&gw, "telegram", "quiet").await;
        if h["state"] == "degraded" && h["restarts"].as_u64() >= Some(1) {
            break h;
        }
        assert!(Instant::now() < deadline, "the silent poller was not reported and restarted: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(health["lastError"].as_str().is_some_and(|e| e.contains("did not finish")), "{health}");
    let ready = gw.get("/readyz", &[]).await;
    assert_eq!(ready.status, 200, "one degraded account leaves the replica ready: {}", ready.body);
    assert!(ready.body.contains("telegram/quiet"), "{}", ready.body);
    let metrics = gw.get("/metrics", &[]).await.body;
    assert!(
        metrics.contains(r#"chela_channel_account_up{channel="telegram",account="quiet"} 0"#),
        "{}",
        metrics.lines().filter(|l| l.contains("account_up")).collect::<Vec<_>>().join("\n")
    );
    assert!(metrics.contains(r#"chela_channel_account_up{channel="telegram",account="lively"} 1"#));

    // The other account is served at once, even while a silent poll is held open.
    let polls = telegram.polls(QUIET);
    eventually("the restarted poller polls the silent platform again", || telegram.polls(QUIET) > polls).await;
    let asked = Instant::now();
    telegram.user_message(LIVELY, None, (72, "Bo"), "still there?", serde_json::json!({}));
    assert_eq!(telegram.wait_sent(LIVELY, 1, WAIT).await.len(), 1);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "the lively bot waited {:?} behind the silent one",
        asked.elapsed()
    );

    // Answering again: the restarted poller picks the account up, and it is up again.
    telegram.answer_again(QUIET);
    telegram.user_message(QUIET, None, (71, "Ana"), "back?", serde_json::json!({}));
    assert_eq!(telegram.wait_sent(QUIET, 2, Duration::from_secs(60)).await.len(), 2, "served again");
    let deadline = Instant::now() + WAIT;
    while account_health(&gw, "telegram", "quiet").await["state"] != "up" {
        assert!(Instant::now() < deadline, "never reported up again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Replies of one account do not queue behind each other: while Telegram
/// holds the reply to one chat open (a slow platform), the reply to another
/// chat of the same bot goes out (the account's serve lane is a pool).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reply_to_one_chat_does_not_hold_up_another_chat_of_the_account() {
    const BOT: &str = "555:EEE-busy";
    let dir = tempfile::tempdir().unwrap();
    let telegram = TelegramFake::start().await;
    telegram.add_bot(BOT, 555, "busy_bot");
    let api = telegram.api_root();
    let config = format!(
        r#"{{ plugins: {{ entries: {{ channel_telegram: {{ instancesPerAccount: 2 }} }} }},
             channels: {{ telegram: {{ dmPolicy: "open", allowFrom: ["*"],
               accounts: {{ default: {{ botToken: "{BOT}", apiRoot: "{api}" }} }} }} }} }}"#
    );
    let gw = Gateway::start_with(dir.path(), &config, &["channel_telegram"]).await;
    telegram.hold_sends_to(81);
    telegram.user_message(BOT, None, (81, "Slow"), "one", serde_json::json!({}));
    // The first reply is on its way and held by the platform.
    let deadline = Instant::now() + WAIT;
    let undelivered = |body: &str| -> f64 {
        let line = body.lines().find(|l| l.starts_with("chela_journal_undelivered_replies "));
        line.and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0.0)
    };
    while undelivered(&gw.get("/metrics", &[]).await.body) < 1.0 {
        assert!(Instant::now() < deadline, "the first reply never left");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let asked = Instant::now();
    telegram.user_message(BOT, None, (82, "Quick"), "two", serde_json::json!({}));
    let sent = telegram.wait_sent(BOT, 1, WAIT).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["chat_id"], 82);
    // Not after the held call's timeout (10 s) freed the only instance.
    assert!(asked.elapsed() < Duration::from_secs(5), "the reply waited {:?} behind the held one", asked.elapsed());
    telegram.release_sends();
    let sent = telegram.wait_sent(BOT, 2, WAIT).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[1]["chat_id"], 81);
}

/// A first start (empty compile cache) is ready and answers as soon as its
/// channel adapter runs, while a big tool component still compiles; a turn
/// that needs the tool waits for it rather than running without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_serves_before_its_tools_compile_and_a_turn_waits_for_them() {
    const BOT: &str = "666:FFF-first";
    let dir = tempfile::tempdir().unwrap();
    let telegram = TelegramFake::start().await;
    telegram.add_bot(BOT, 666, "first_bot");
    let api = telegram.api_root();
    let config = format!(
        r#"{{ gateway: {{ auth: {{ token: "{TOKEN}" }} }},
             channels: {{ telegram: {{ dmPolicy: "open", allowFrom: ["*"],
               accounts: {{ default: {{ botToken: "{BOT}", apiRoot: "{api}" }} }} }} }} }}"#
    );
    // Ready (start_with waits for /readyz) with the JavaScript tool (12 MB) still compiling.
    let gw = Gateway::start_with(dir.path(), &config, &["channel_telegram", "tool_slugify_js"]).await;
    let auth = [("authorization", format!("Bearer {TOKEN}"))];
    let auth: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let listed = gw.get("/api/v1/plugins", &auth).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let plugins: Value = serde_json::from_str(&listed.body).unwrap();
    let ids: Vec<&str> = plugins.as_array().into_iter().flatten().filter_map(|p| p["id"].as_str()).collect();
    assert!(ids.contains(&"channel_telegram"), "{ids:?}");
    assert!(!ids.contains(&"tool_slugify_js"), "ready only after the tool compiled: {ids:?}");

    // Asked for the tool before it is loaded: the turn waits, then calls it.
    telegram.user_message(BOT, None, (91, "Ana"), r#"/tool slugify {"text": "Hello, World"}"#, serde_json::json!({}));
    let sent = telegram.wait_sent(BOT, 1, Duration::from_secs(120)).await;
    assert_eq!(sent.len(), 1, "no reply");
    let text = sent[0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("`slugify` says: hello-world"), "{text}");
}

/// A config split with `$include`: the gateway serves what the included
/// file says, and an edit of that file (not of the main one) is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_included_file_is_served_and_its_edits_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let agents = |ids: &[&str]| {
        let list: Vec<String> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                format!("{{ id: \"{id}\", default: {}, workspace: \"{}/ws-{id}\" }}", i == 0, root.display())
            })
            .collect();
        format!("{{ list: [{}] }}", list.join(", "))
    };
    std::fs::write(root.join("agents.json5"), agents(&["work"])).unwrap();
    let gw = Gateway::start_with(
        root,
        &format!(r#"{{ agents: {{ $include: "./agents.json5" }}, gateway: {{ auth: {{ token: "{TOKEN}" }} }} }}"#),
        &[],
    )
    .await;
    let auth = format!("Bearer {TOKEN}");
    let ids = || async {
        let answer = gw.get("/api/v1/agents", &[("authorization", auth.as_str())]).await;
        let v: Value = serde_json::from_str(&answer.body).unwrap();
        v["agents"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(ids().await, ["work"]);
    // A newer mtime than the first write, whatever the file system's resolution.
    tokio::time::sleep(Duration::from_millis(20)).await;
    std::fs::write(root.join("agents.json5.tmp"), agents(&["work", "ops"])).unwrap();
    std::fs::rename(root.join("agents.json5.tmp"), root.join("agents.json5")).unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        if ids().await == ["work", "ops"] {
            break;
        }
        assert!(Instant::now() < deadline, "the edit of the included file was not applied: {:?}", ids().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The control page in a real browser, on the demo config and the demo
/// platforms: Debian's Chromium driven by playwright-core
/// (`tests/ui/browser.mjs`, both installed by `cargo xtask test`). The
/// script logs in (a wrong token first), sees the three agents, explains a
/// route, watches a WhatsApp user's message arrive and be answered on the
/// Live page and reads it in the transcript, approves a Telegram pairing
/// code, adds a binding (a bad one refused with its position first), sees a
/// broken config edit refused at its line, is sent back to the login by a
/// revoked token, and checks that a page on another origin cannot read the
/// API. Screenshots go to `docs/ui/`. This test then checks the effects
/// from outside: the paired user and the new binding's peer are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_page_works_in_a_real_browser_on_the_demo_config() {
    use std::sync::Arc;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ui = repo.join("tests/ui");
    assert!(
        ui.join("node_modules/playwright-core").is_dir() && Path::new("/usr/bin/chromium").exists(),
        "the browser test needs Chromium and playwright-core: `cargo xtask test` installs both"
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (platforms, gw, text) = demo_gateway(root).await;
    let platforms = Arc::new(platforms);
    let reply_text = |r: Vec<Value>| r.first().and_then(|m| m["text"].as_str()).unwrap_or_default().to_string();
    // A stranger asks the default Telegram bot to pair: the code the page approves.
    let r = platforms.say(&say("telegram", Some("default"), "333333333", "hello")).await.unwrap();
    let answer = reply_text(r);
    let code = answer.split("pairing code is ").nth(1).and_then(|r| r.split('.').next()).expect("a code").to_string();
    // An earlier conversation of `work`, so the Sessions page has an order to show.
    let r = platforms.say(&say("whatsapp", Some("biz"), "+15557771111", "an earlier question")).await.unwrap();
    assert!(reply_text(r).contains("agent `work`"));
    // The page says things as a WhatsApp user through this endpoint (what `chela-platforms` serves).
    let p = platforms.clone();
    let (say_addr, _say) = chela_fakes::wire::serve(move |req: hyper::Request<hyper::body::Incoming>| {
        let p = p.clone();
        async move {
            use http_body_util::BodyExt;
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let answer = match serde_json::from_slice::<chela_fakes::platforms::Say>(&body) {
                Ok(s) => match p.say(&s).await {
                    Ok(replies) => serde_json::json!({ "replies": replies }),
                    Err(e) => serde_json::json!({ "error": e.to_string() }),
                },
                Err(e) => serde_json::json!({ "error": e.to_string() }),
            };
            chela_fakes::wire::json_reply(200, &answer, &[])
        }
    })
    .await;
    let bad =
        text.replacen("bindings: [", "bindings: [\n    { agentId: \"ghost\", match: { channel: \"slack\" } },", 1);
    let bad_line = bad.lines().position(|l| l.contains("ghost")).unwrap() + 1;
    let token = std::fs::read_to_string(root.join("state/gateway.token")).unwrap().trim().to_string();
    let expect = serde_json::json!({
        "agents": ["personal", "work", "support"],
        "overview": { "firstAgentModel": "offline/persona" },
        "channel": "whatsapp",
        "route": {
            "input": { "channel": "whatsapp", "accountId": "biz", "peerId": "+15550001111" },
            "agent": "personal",
            "tier": "binding.peer",
        },
        "live": {
            "say": format!("http://{say_addr}/say"),
            "message": { "channel": "whatsapp", "account": "biz", "from": "+15557770000",
                         "text": "price list? <img src=x onerror=alert(1)>", "waitMs": 20000 },
            "agent": "work",
        },
        "session": {
            "agent": "work",
            "keyContains": "15557770000",
            "contains": ["price list? <img src=x onerror=alert(1)>", "Atlas"],
        },
        "pairing": { "channel": "telegram", "code": code, "sender": "333333333" },
        "bindings": {
            "tiers": [[0, "binding.account"], [2, "binding.peer"], [3, "binding.team"], [5, "binding.guild+roles"], [6, "binding.guild"]],
            "add": { "agent": "support", "channel": "whatsapp", "account": "biz", "peer": "+15559990000" },
            "comment": "// Most specific wins: peer",
            "changeTo": "work",
        },
        "config": { "file": gw.config, "bad": bad, "line": bad_line, "agent": "ghost" },
    });
    let shots = repo.join("docs/ui");
    std::fs::create_dir_all(&shots).unwrap();
    let out = tokio::process::Command::new("node")
        .arg(ui.join("browser.mjs"))
        .env("CHELA_URL", format!("http://{}/", gw.addr))
        .env("CHELA_TOKEN", &token)
        .env("CHELA_EXPECT", expect.to_string())
        .env("CHELA_SHOTS", &shots)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the browser checks failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("\"passed\":true"), "{stdout}");
    for page in ["login", "overview", "route", "live", "sessions", "transcript", "pairing", "bindings", "config"] {
        assert!(shots.join(format!("{page}.png")).is_file(), "screenshot of {page}");
    }
    // From outside: the binding added on the page routes the new peer to `support`…
    let r = platforms.say(&say("whatsapp", Some("biz"), "+15559990000", "hello?")).await.unwrap();
    assert!(reply_text(r.clone()).contains("Sage (agent `support`)"), "the new binding is in force: {r:?}");
    // …and the Telegram user approved on the page is answered, not asked to pair again.
    let r = platforms.say(&say("telegram", Some("default"), "333333333", "thanks")).await.unwrap();
    assert!(reply_text(r.clone()).contains("Pip (agent `personal`)"), "paired: {r:?}");
}
