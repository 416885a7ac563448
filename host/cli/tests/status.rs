//! `chela status`, `chela health`, `chela channels status [--probe]` and
//! `chela doctor [--probe]` as a black box: the real binary, real channel
//! components from `plugins/`, and the platform fakes on 127.0.0.1 that
//! accept one token per bot and refuse every other one as the platforms do.

use std::path::Path;
use std::process::Output;

use chela_fakes::discord::DiscordFake;
use chela_fakes::slack::{AppSpec, SlackFake};
use chela_fakes::telegram::TelegramFake;
use chela_fakes::whatsapp::WhatsAppFake;
use serde_json::Value;
use support::{chela, Gateway};

mod support;

const TG_GOOD: &str = "111:good-token";
const DISCORD_GOOD: &str = "MTEx.good-bot";
const NUMBER: &str = "106540352242922";
const OTHER_NUMBER: &str = "106540352242923";

struct Fakes {
    telegram: TelegramFake,
    slack: SlackFake,
    discord: DiscordFake,
    whatsapp: WhatsAppFake,
}

async fn fakes() -> Fakes {
    let telegram = TelegramFake::start().await;
    telegram.add_bot(TG_GOOD, 111, "good_bot");
    let slack = SlackFake::start().await;
    slack.add_app(AppSpec {
        app_id: "A0ACME",
        team_id: "T0ACME",
        bot_token: "xoxb-good",
        app_token: "xapp-1-good",
        signing_secret: "acme-signing",
        bot_user_id: "U0BOTACME",
    });
    let discord = DiscordFake::start().await;
    discord.add_bot(DISCORD_GOOD, "1100000000000000009", "goodbot", true);
    let whatsapp = WhatsAppFake::start("wa-secret").await;
    whatsapp.add_number(NUMBER, "15550783881", "EAAG-good");
    whatsapp.add_number(OTHER_NUMBER, "15550783882", "EAAG-other");
    Fakes { telegram, slack, discord, whatsapp }
}

/// Per channel an account whose token the platform knows (`good`) and one
/// it does not (`bad`); Telegram also has one without a token (`empty`), a
/// disabled one and one with a misspelt setting (`typo`); every channel
/// carries OpenClaw options its adapter does not implement (`historyLimit`,
/// `linkPreview`…), which must not get an account refused; the webhook
/// channel's adapter (JavaScript, built against the WIT without
/// `channel-probe`) has no probe.
fn config(root: &Path, f: &Fakes) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!(
        r#"{{
  agents: {{ list: [ {{ id: "work", default: true, workspace: "{root}/ws-work", identity: {{ emoji: "🛠" }} }},
                     {{ id: "ops", workspace: "{root}/ws-ops" }} ] }},
  channels: {{
    telegram: {{ apiRoot: "{telegram}", historyLimit: 50, linkPreview: false, accounts: {{
      good: {{ botToken: "{TG_GOOD}" }}, bad: {{ botToken: "999:unknown" }}, empty: {{ name: "no token" }},
      off: {{ enabled: false, botToken: "{TG_GOOD}" }}, typo: {{ botToken: "{TG_GOOD}", aipRoot: "x" }} }} }},
    slack: {{ apiBase: "{slack}", textChunkLimit: 3000, accounts: {{
      good: {{ botToken: "xoxb-good", appToken: "xapp-1-good" }},
      bad: {{ botToken: "xoxb-revoked", appToken: "xapp-1-good" }} }} }},
    discord: {{ apiBase: "{discord}", historyLimit: 20, accounts: {{ good: {{ token: "{DISCORD_GOOD}" }}, bad: {{ token: "MTEx.revoked" }} }} }},
    whatsapp: {{ appSecret: "wa-secret", verifyToken: "v", graphApiBase: "{whatsapp}", mediaMaxMb: 50, accounts: {{
      good: {{ phoneNumberId: "{NUMBER}", accessToken: "EAAG-good" }},
      bad: {{ phoneNumberId: "{OTHER_NUMBER}", accessToken: "EAAG-expired" }} }} }},
    webhook: {{ accounts: {{ inbox: {{ webhookToken: "inbox-secret" }} }} }},
  }},
  gateway: {{ port: {port}, auth: {{ token: "ctl" }} }},
}}"#,
        root = root.display(),
        telegram = f.telegram.api_root(),
        slack = f.slack.api_base(),
        discord = f.discord.api_base(),
        whatsapp = f.whatsapp.base_url(),
    )
}

const COMPONENTS: [&str; 5] =
    ["channel_telegram", "channel_slack", "channel_discord", "channel_whatsapp", "channel_webhook_js"];

async fn run(root: &Path, args: &[&str]) -> Output {
    chela(root, &root.join("chela.json5")).args(args).output().await.expect("chela runs")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn row<'a>(rows: &'a Value, channel: &str, account: &str) -> &'a Value {
    rows.as_array()
        .and_then(|r| r.iter().find(|r| r["channel"] == channel && r["account"] == account))
        .unwrap_or_else(|| panic!("no row for {channel}/{account} in {rows:#}"))
}

fn install(root: &Path, text: &str) {
    let plugins = root.join("state/plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for c in COMPONENTS {
        std::fs::copy(support::component(c), plugins.join(format!("{c}.wasm"))).unwrap();
    }
    std::fs::write(root.join("chela.json5"), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_ask_each_platform_through_its_adapter_and_doctor_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let f = fakes().await;
    install(root, &config(root, &f));

    // Without --probe: the adapters judge the settings; a missing token is an error, a wrong one is not seen.
    let out = run(root, &["doctor", "--json"]).await;
    let report = json_of(&out);
    let channel_findings: Vec<&Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["check"] == "channels").collect();
    let finding = |needle: &str| {
        channel_findings
            .iter()
            .find(|f| f["message"].as_str().unwrap_or("").starts_with(needle))
            .unwrap_or_else(|| panic!("no finding {needle}: {channel_findings:#?}"))
    };
    assert_eq!(finding("telegram/empty ")["level"], "error");
    assert!(finding("telegram/empty ")["message"].as_str().unwrap().contains("botToken"), "{channel_findings:#?}");
    assert_eq!(finding("telegram/bad ")["level"], "ok", "not probed: a present token is all doctor can see");
    assert!(
        !channel_findings.iter().any(|f| f["message"].as_str().unwrap().starts_with("telegram/off ")),
        "disabled accounts are not checked"
    );
    assert!(!out.status.success(), "an error finding fails doctor");

    // --probe: the platform's verdict, through the adapter.
    let out = run(root, &["channels", "status", "--probe", "--json"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status = json_of(&out);
    assert_eq!(status["source"], "config", "no gateway runs");
    let rows = &status["channels"];
    for channel in ["telegram", "slack", "discord", "whatsapp"] {
        let good = &row(rows, channel, "good")["probe"];
        assert_eq!(good["ok"], true, "{channel}/good: {good}");
        let bad = &row(rows, channel, "bad")["probe"];
        assert_eq!(bad["ok"], false, "{channel}/bad: {bad}");
        assert_eq!(bad["stage"], "probe", "{channel}/bad was refused by the platform, not the adapter: {bad}");
    }
    assert!(row(rows, "telegram", "good")["probe"]["detail"].as_str().unwrap().contains("@good_bot"));
    assert!(row(rows, "slack", "bad")["probe"]["detail"].as_str().unwrap().contains("invalid_auth"));
    assert!(row(rows, "whatsapp", "bad")["probe"]["detail"].as_str().unwrap().contains("190"));
    assert!(row(rows, "discord", "good")["probe"]["detail"].as_str().unwrap().contains("goodbot"));
    let typo = &row(rows, "telegram", "typo")["probe"];
    assert_eq!(typo["ok"], false, "{typo}");
    assert!(typo["detail"].as_str().unwrap().contains("unknown setting `aipRoot`"), "a typo is still refused: {typo}");
    let empty = &row(rows, "telegram", "empty")["probe"];
    assert_eq!((&empty["ok"], &empty["stage"]), (&Value::Bool(false), &Value::from("settings")), "{empty}");
    let webhook = &row(rows, "webhook", "inbox")["probe"];
    assert!(webhook["ok"].is_null(), "an adapter without channel-probe loads and says so: {webhook}");
    assert_eq!(row(rows, "telegram", "off")["state"], "disabled");

    // doctor --probe: the same verdicts as findings.
    let report = json_of(&run(root, &["doctor", "--probe", "--json"]).await);
    let messages: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "channels")
        .map(|f| (f["level"].as_str().unwrap().to_string(), f["message"].as_str().unwrap().to_string()))
        .collect();
    for channel in ["telegram", "slack", "discord", "whatsapp"] {
        assert!(
            messages.iter().any(|(l, m)| l == "ok" && m.starts_with(&format!("{channel}/good probe"))),
            "{messages:#?}"
        );
        assert!(
            messages.iter().any(|(l, m)| l == "error" && m.starts_with(&format!("{channel}/bad probe"))),
            "{messages:#?}"
        );
    }
    assert!(messages.iter().any(|(l, m)| l == "warn" && m.starts_with("webhook/inbox probe")), "{messages:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_health_and_channels_status_read_the_gateway_and_fall_back_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let f = fakes().await;
    let text = config(root, &f);
    install(root, &text);

    // No gateway: health fails, status and channels status say they read the config.
    let out = run(root, &["health"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no gateway answers"), "{out:?}");
    let status = json_of(&run(root, &["status", "--json"]).await);
    assert_eq!(status["gateway"]["reachable"], false);
    assert_eq!(status["source"], "config");
    assert_eq!(status["config"]["errors"], 0, "{status:#}");
    assert_eq!(status["defaultAgent"], "work");
    assert_eq!(row(&status["channels"], "telegram", "good")["state"], "configured");
    assert_eq!(row(&status["channels"], "telegram", "off")["state"], "disabled");
    let agents = status["agents"].as_array().unwrap();
    assert_eq!(agents.iter().map(|a| a["id"].as_str().unwrap()).collect::<Vec<_>>(), ["work", "ops"]);
    assert_eq!(agents[0]["sessions"], 0);
    assert_eq!(agents[0]["emoji"], "🛠");

    let gw = Gateway::start_as_installed(root).await;
    let health = json_of(&run(root, &["health", "--json"]).await);
    assert_eq!(health["ok"], true);
    assert_eq!(health["ready"], false, "telegram/empty is refused, so the replica is not ready: {health:#}");
    assert_eq!(health["defaultAgent"], "work");
    let channels = &health["channels"];
    let empty = row(channels, "telegram", "empty");
    assert_eq!(empty["state"], "refused");
    assert!(empty["lastError"].as_str().unwrap().contains("botToken"), "{empty}");
    assert_eq!(row(channels, "telegram", "off")["state"], "disabled");
    assert_eq!(row(channels, "telegram", "good")["running"], true, "{channels:#}");
    assert_eq!(row(channels, "webhook", "inbox")["delivery"], "webhook");
    assert!(health["plugins"].as_array().unwrap().len() >= COMPONENTS.len());
    assert!(health["uptimeSeconds"].as_f64().unwrap() >= 0.0);

    let status = json_of(&run(root, &["status", "--json"]).await);
    assert_eq!(status["gateway"]["reachable"], true, "{status:#}");
    assert_eq!(status["source"], "gateway");
    assert_eq!(row(&status["channels"], "telegram", "empty")["state"], "refused");

    let only = json_of(&run(root, &["channels", "status", "--channel", "Telegram", "--json"]).await);
    assert_eq!(only["source"], "gateway");
    let rows = only["channels"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "the five telegram accounts only: {rows:#?}");
    assert!(rows.iter().all(|r| r["channel"] == "telegram"));
    let unknown = run(root, &["channels", "status", "--channel", "irc"]).await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no channel `irc`"), "{unknown:?}");

    // Text output names the gateway and every account.
    let text_out = run(root, &["health"]).await;
    let shown = String::from_utf8_lossy(&text_out.stdout);
    assert!(shown.contains(&format!("http://{}", gw.addr)) || shown.contains("gateway: http://"), "{shown}");
    assert!(shown.contains("telegram/empty") && shown.contains("refused"), "{shown}");
    drop(gw);
}
