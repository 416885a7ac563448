//! The four chat platforms of the demo, faked on loopback: the identities
//! (numbers, bots, workspace, guild) that `examples/multi-agent.json5` names,
//! and "say": a user writes on a platform, the platform delivers it to chela
//! the way the live service would (a signed WhatsApp webhook, a Telegram
//! update for long polling, a Slack Socket Mode envelope, a Discord Gateway
//! dispatch), and the replies chela's adapters send back are collected.
//!
//! The `chela-platforms` binary serves this on fixed ports for
//! `cargo xtask demo`; tests run it on free ports.
//!
//! Must not: know chela's internals; it talks to the gateway as the platforms do.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::discord::DiscordFake;
use crate::slack::{AppSpec, SlackFake};
use crate::telegram::TelegramFake;
use crate::whatsapp::WhatsAppFake;

/// The port of the control endpoint; the platforms listen on the next four.
pub const DEFAULT_PORT: u16 = 18790;

/// The Meta app's secret and the webhook verify token (`channels.whatsapp`).
pub const WHATSAPP_APP_SECRET: &str = "demo-whatsapp-app-secret";
pub const WHATSAPP_VERIFY_TOKEN: &str = "demo-verify-token";
/// WhatsApp business numbers: (account id, phone number id, display number, access token).
pub const WHATSAPP_NUMBERS: [(&str, &str, &str, &str); 2] = [
    ("biz", "100000000000001", "15550100001", "demo-wa-biz-token"),
    ("personal", "100000000000002", "15550100002", "demo-wa-personal-token"),
];
/// Telegram bots: (account id, bot token, bot id, username).
pub const TELEGRAM_BOTS: [(&str, &str, i64, &str); 2] = [
    ("default", "1000001:demo-pip-bot", 1_000_001, "pip_demo_bot"),
    ("helpdesk", "1000002:demo-sage-bot", 1_000_002, "sage_demo_bot"),
];
/// The Slack app installed in workspace `T0ACME`.
pub const SLACK_APP: AppSpec<'static> = AppSpec {
    app_id: "A0ACME",
    team_id: "T0ACME",
    bot_token: "xoxb-demo-acme",
    app_token: "xapp-1-demo-acme",
    signing_secret: "demo-slack-signing-secret",
    bot_user_id: "U0ATLAS",
};
pub const SLACK_CHANNEL: &str = "C0GENERAL";
/// The Discord bot and the company guild (with one text channel).
pub const DISCORD_TOKEN: &str = "MTEw.demo-discord-bot-token";
pub const DISCORD_BOT_ID: &str = "1100000000000000009";
pub const DISCORD_GUILD: &str = "1122334455";
pub const DISCORD_CHANNEL: &str = "1122334456";

/// The four platform fakes with the demo's identities.
pub struct Platforms {
    pub whatsapp: WhatsAppFake,
    pub telegram: TelegramFake,
    pub slack: SlackFake,
    pub discord: DiscordFake,
    /// Where chela's webhooks are (`http://host:port`), for WhatsApp's subscription.
    gateway: std::sync::Mutex<String>,
    subscribed: tokio::sync::Mutex<bool>,
}

/// A user's message: `channel` and the `account` it is written to, who
/// writes (`from`), where (`group`: a group, channel or chat id; none: a DM).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Say {
    pub channel: String,
    #[serde(default)]
    pub account: Option<String>,
    pub from: String,
    #[serde(default)]
    pub name: Option<String>,
    pub text: String,
    #[serde(default)]
    pub group: Option<String>,
    /// Discord member role ids.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Mention the bot (Slack `<@U…>`, Discord `<@id>`).
    #[serde(default)]
    pub mention: bool,
    /// How long to wait for a first reply (default 10 s).
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SayError {
    #[error("unknown channel `{0}`: one of whatsapp, telegram, slack, discord")]
    Channel(String),
    #[error("unknown {channel} account `{account}`: one of {known}")]
    Account { channel: String, account: String, known: String },
    #[error("`from` must be {0}")]
    From(&'static str),
    #[error("WhatsApp could not deliver to chela: {0}")]
    Webhook(String),
}

impl Platforms {
    /// Starts the platforms on `base_port + 1 ..= base_port + 4` (0: free ports);
    /// WhatsApp delivers its webhooks to `gateway`.
    pub async fn start(base_port: u16, gateway: &str) -> std::io::Result<Platforms> {
        let port = |n: u16| if base_port == 0 { 0 } else { base_port + n };
        let whatsapp = WhatsAppFake::start_on(WHATSAPP_APP_SECRET, port(1)).await?;
        for (_, id, display, token) in WHATSAPP_NUMBERS {
            whatsapp.add_number(id, display, token);
        }
        let telegram = TelegramFake::start_on(port(2)).await?;
        for (_, token, id, username) in TELEGRAM_BOTS {
            telegram.add_bot(token, id, username);
        }
        let slack = SlackFake::start_on(port(3)).await?;
        slack.add_app(SLACK_APP);
        slack.add_conversation(SLACK_APP.team_id, SLACK_CHANNEL, "channel", None);
        let discord = DiscordFake::start_on(port(4)).await?;
        discord.add_bot(DISCORD_TOKEN, DISCORD_BOT_ID, "chela", true);
        discord.add_guild(DISCORD_GUILD, &[DISCORD_CHANNEL], &[]);
        Ok(Platforms {
            whatsapp,
            telegram,
            slack,
            discord,
            gateway: std::sync::Mutex::new(gateway.trim_end_matches('/').to_string()),
            subscribed: tokio::sync::Mutex::new(false),
        })
    }

    /// Points WhatsApp's webhook subscription at chela (`http://host:port`);
    /// it is made again on the next WhatsApp message.
    pub async fn set_gateway(&self, url: &str) {
        *crate::wire::lock(&self.gateway) = url.trim_end_matches('/').to_string();
        *self.subscribed.lock().await = false;
    }

    /// The base URLs to configure: (whatsapp `graphApiBase`, telegram `apiRoot`,
    /// slack `apiBase`, discord `apiBase`).
    pub fn base_urls(&self) -> [String; 4] {
        [self.whatsapp.base_url(), self.telegram.api_root(), self.slack.api_base(), self.discord.api_base()]
    }

    /// Delivers `say` to chela as the platform would and returns the replies
    /// chela sent (each `{"channel", "account", "to", "text"}`): it waits for
    /// the first up to `waitMs`, then until none has come for 500 ms.
    pub async fn say(&self, say: &Say) -> Result<Vec<Value>, SayError> {
        let account = |known: Vec<&str>, default: &str| -> Result<String, SayError> {
            let a = say.account.clone().unwrap_or_else(|| default.to_string());
            if known.contains(&a.as_str()) {
                Ok(a)
            } else {
                Err(SayError::Account { channel: say.channel.clone(), account: a, known: known.join(", ") })
            }
        };
        let name = say.name.clone().unwrap_or_else(|| say.from.clone());
        let (account, before) = match say.channel.as_str() {
            "whatsapp" => {
                let a = account(WHATSAPP_NUMBERS.iter().map(|n| n.0).collect(), "biz")?;
                let (_, number, _, _) = WHATSAPP_NUMBERS.iter().find(|n| n.0 == a).copied().unwrap_or_default();
                let from = say.from.trim_start_matches('+');
                if from.is_empty() || !from.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(SayError::From("a phone number, e.g. +15550001111"));
                }
                self.subscribe_whatsapp().await?;
                let before = self.whatsapp.sent(number).len();
                let (_, status) =
                    self.whatsapp.user_message(number, (from, &name), &say.text, say.group.as_deref(), None).await;
                if status != Some(200) {
                    return Err(SayError::Webhook(format!("chela answered {status:?}")));
                }
                (a, before)
            }
            "telegram" => {
                let a = account(TELEGRAM_BOTS.iter().map(|b| b.0).collect(), "default")?;
                let token = bot_token(&a);
                let from: i64 = say.from.parse().map_err(|_| SayError::From("a Telegram user id, e.g. 111111111"))?;
                let chat = match &say.group {
                    Some(g) => {
                        let id: i64 = g.parse().map_err(|_| SayError::From("a numeric group id, e.g. -1001"))?;
                        self.telegram.add_group(id, "Demo group", &[]);
                        Some(id)
                    }
                    None => None,
                };
                let before = self.telegram.sent(token).len();
                self.telegram.user_message(token, chat, (from, &name), &say.text, Value::Null);
                (a, before)
            }
            "slack" => {
                let a = account(vec!["default"], "default")?;
                if !say.from.starts_with('U') {
                    return Err(SayError::From("a Slack user id, e.g. U0ALEX"));
                }
                let channel = match &say.group {
                    Some(c) => c.clone(),
                    None => {
                        let dm = format!("D{}", &say.from[1..]);
                        self.slack.add_conversation(SLACK_APP.team_id, &dm, "im", Some(&say.from));
                        dm
                    }
                };
                let text =
                    if say.mention { format!("<@{}> {}", SLACK_APP.bot_user_id, say.text) } else { say.text.clone() };
                let before = self.slack.sent(SLACK_APP.app_id).len();
                self.slack.user_message(SLACK_APP.app_id, &channel, &say.from, &text, None).await;
                (a, before)
            }
            "discord" => {
                let a = account(vec!["default"], "default")?;
                if say.from.is_empty() || !say.from.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(SayError::From("a Discord user id (digits), e.g. 1300000000000000001"));
                }
                let roles: Vec<&str> = say.roles.iter().map(String::as_str).collect();
                let before = self.discord.sent(DISCORD_TOKEN).len();
                self.discord.user_message(
                    DISCORD_TOKEN,
                    say.group.as_deref(),
                    (&say.from, &name),
                    &say.text,
                    &roles,
                    say.mention,
                );
                (a, before)
            }
            other => return Err(SayError::Channel(other.to_string())),
        };
        let first = Duration::from_millis(say.wait_ms.unwrap_or(10_000));
        let quiet = Duration::from_millis(500);
        let start = tokio::time::Instant::now();
        let mut seen = before;
        let mut last_change = start;
        loop {
            tokio::time::sleep(Duration::from_millis(25)).await;
            let now = self.replies(&say.channel, &account).len();
            if now != seen {
                seen = now;
                last_change = tokio::time::Instant::now();
            }
            let waited = start.elapsed();
            if (seen == before && waited >= first) || (seen > before && last_change.elapsed() >= quiet) {
                break;
            }
        }
        Ok(self.replies(&say.channel, &account).split_off(before.min(seen)))
    }

    /// Every reply chela sent through `channel`'s `account`, oldest first.
    pub fn replies(&self, channel: &str, account: &str) -> Vec<Value> {
        let out = |to: &Value, text: &Value| json!({"channel": channel, "account": account, "to": to, "text": text});
        match channel {
            "whatsapp" => {
                let number = WHATSAPP_NUMBERS.iter().find(|n| n.0 == account).map(|n| n.1).unwrap_or_default();
                self.whatsapp.sent(number).iter().map(|m| out(&m["to"], &m["text"]["body"])).collect()
            }
            "telegram" => {
                self.telegram.sent(bot_token(account)).iter().map(|m| out(&m["chat_id"], &m["text"])).collect()
            }
            "slack" => self.slack.sent(SLACK_APP.app_id).iter().map(|m| out(&m["channel"], &m["text"])).collect(),
            "discord" => self.discord.sent(DISCORD_TOKEN).iter().map(|(c, m)| out(&json!(c), &m["content"])).collect(),
            _ => Vec::new(),
        }
    }

    /// Meta's webhook subscription handshake with chela, once.
    async fn subscribe_whatsapp(&self) -> Result<(), SayError> {
        let mut done = self.subscribed.lock().await;
        if !*done {
            let gateway = crate::wire::lock(&self.gateway).clone();
            let url = format!("{gateway}/channels/whatsapp/{}/", WHATSAPP_NUMBERS[0].0);
            self.whatsapp.subscribe(&url, WHATSAPP_VERIFY_TOKEN).await.map_err(SayError::Webhook)?;
            *done = true;
        }
        Ok(())
    }
}

fn bot_token(account: &str) -> &'static str {
    TELEGRAM_BOTS.iter().find(|b| b.0 == account).map(|b| b.1).unwrap_or_default()
}
