//! Wrong credentials, per platform: each fake refuses them with the
//! platform's own error, and the adapter reports that error (naming it)
//! instead of failing silently or routing anything.

use crate::common;

use std::time::Duration;

use chela_fakes::discord::DiscordFake;
use chela_fakes::slack::{AppSpec, SlackFake};
use chela_fakes::telegram::TelegramFake;
use chela_fakes::whatsapp::WhatsAppFake;
use chela_plugin::channel::{Delivery, OutboundMessage, Peer, PeerKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_adapter_names_the_platforms_refusal() {
    let telegram = TelegramFake::start().await;
    telegram.add_bot("111:right", 111, "right_bot");
    let slack = SlackFake::start().await;
    slack.add_app(AppSpec {
        app_id: "A1",
        team_id: "T1",
        bot_token: "xoxb-right",
        app_token: "xapp-right",
        signing_secret: "s",
        bot_user_id: "U0BOT",
    });
    let discord = DiscordFake::start().await;
    discord.add_bot("right-token", "1100000000000000009", "bot", true);
    let whatsapp = WhatsAppFake::start("app-secret").await;
    whatsapp.add_number("1065", "15550001111", "EAAG-right");

    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"{{
  agents: {{ list: [{{ id: "work", default: true, workspace: "{root}/ws" }}] }},
  channels: {{
    telegram: {{ botToken: "111:wrong", apiRoot: "{tg}" }},
    slack: {{ botToken: "xoxb-wrong", appToken: "xapp-right", apiBase: "{sl}" }},
    discord: {{ token: "wrong-token", apiBase: "{dc}" }},
    whatsapp: {{ phoneNumberId: "1065", accessToken: "EAAG-wrong", appSecret: "app-secret", verifyToken: "v",
                graphApiBase: "{wa}" }},
  }},
}}"#,
        root = dir.path().display(),
        tg = telegram.api_root(),
        sl = slack.api_base(),
        dc = discord.api_base(),
        wa = whatsapp.base_url(),
    );
    let plugins = ["channel_telegram", "channel_slack", "channel_discord", "channel_whatsapp"];
    let gw = common::serve(dir.path(), &config, &plugins).await;
    let channel = |id: &str| gw.gateway.channel(id).expect("adapter running");

    let err = channel("telegram").poll("default").await.unwrap_err().to_string();
    assert!(err.contains("401") && err.contains("Unauthorized"), "{err}");
    let err = channel("slack").poll("default").await.unwrap_err().to_string();
    assert!(err.contains("invalid_auth"), "{err}");
    let err = channel("discord").poll("default").await.unwrap_err().to_string();
    assert!(err.contains("401"), "{err}");
    let reply = OutboundMessage {
        account_id: "default".into(),
        peer: Peer { kind: PeerKind::Direct, id: "16505551234".into() },
        thread_id: None,
        reply_to_message_id: None,
        text: "hi".into(),
        attachments: vec![],
        identity: None,
    };
    match channel("whatsapp").send(reply).await.expect("the adapter answers") {
        Delivery::Failed(why) => assert!(why.contains("190") && why.contains("access token"), "{why}"),
        other => panic!("expected a failed delivery, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(telegram.sent("111:right").is_empty() && slack.sent("A1").is_empty());
    assert!(discord.counts("right-token") == (0, 0, 0), "never identified with a wrong token");
    assert!(gw.shutdown().await);
}
