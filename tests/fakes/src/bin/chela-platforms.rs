//! `chela-platforms`: WhatsApp, Telegram, Slack and Discord faked on
//! loopback with the identities `examples/multi-agent.json5` names, so the
//! demo gateway can be talked to "as a WhatsApp number" or "as a Slack
//! user" without any account or network:
//!
//! ```sh
//! curl -s localhost:18790/say -d '{"channel":"whatsapp","account":"biz","from":"+15550001111","text":"hi"}'
//! ```
//!
//! Options: `--port P` (control endpoint; the platforms use P+1..P+4,
//! default 18790) and `--gateway URL` (where chela listens, default
//! `http://127.0.0.1:18789`).
//!
//! Must not: be part of chela; it only fakes the platforms for the demo.

use std::process::ExitCode;
use std::sync::Arc;

use chela_fakes::platforms::{Platforms, Say, DEFAULT_PORT};
use chela_fakes::wire::{self, json_reply, Reply};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Request;
use serde_json::json;

const HELP: &str =
    "POST /say {\"channel\": \"whatsapp\"|\"telegram\"|\"slack\"|\"discord\", \"account\"?, \"from\", \"text\", \
\"group\"?, \"roles\"?, \"mention\"?, \"name\"?, \"waitMs\"?} -> {\"replies\": [...]}; \
GET /replies?channel=C&account=A -> everything chela sent there";

#[tokio::main]
async fn main() -> ExitCode {
    let mut port = DEFAULT_PORT;
    let mut gateway = "http://127.0.0.1:18789".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--port", Some(p)) => match p.parse() {
                Ok(p) => port = p,
                Err(_) => return fail(&format!("--port: `{p}` is not a port number")),
            },
            ("--gateway", Some(g)) => gateway = g,
            _ => return fail(&format!("unknown argument `{a}` (options: --port P, --gateway URL)")),
        }
    }
    let platforms = match Platforms::start(port, &gateway).await {
        Ok(p) => Arc::new(p),
        Err(e) => return fail(&format!("cannot listen on 127.0.0.1:{}..{}: {e}", port + 1, port + 4)),
    };
    let p = platforms.clone();
    let (addr, server) = match wire::serve_on(port, move |req| control(p.clone(), req)).await {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot listen on 127.0.0.1:{port}: {e}")),
    };
    let [wa, tg, sl, dc] = platforms.base_urls();
    eprintln!(
        "chela-platforms: WhatsApp {wa}, Telegram {tg}, Slack {sl}, Discord {dc}; say things on http://{addr}/say"
    );
    tokio::select! {
        _ = server => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    ExitCode::SUCCESS
}

fn fail(message: &str) -> ExitCode {
    eprintln!("chela-platforms: {message}");
    ExitCode::from(2)
}

async fn control(platforms: Arc<Platforms>, req: Request<Incoming>) -> Reply {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    match (method.as_str(), path.as_str()) {
        ("POST", "/say") => {
            let say: Say = match serde_json::from_slice(&body) {
                Ok(s) => s,
                Err(e) => return json_reply(400, &json!({"error": format!("the body: {e}"), "usage": HELP}), &[]),
            };
            match platforms.say(&say).await {
                Ok(replies) => json_reply(200, &json!({"replies": replies}), &[]),
                Err(e) => json_reply(400, &json!({"error": e.to_string()}), &[]),
            }
        }
        ("GET", "/replies") => {
            let param = |k: &str| {
                query.split('&').find_map(|kv| kv.strip_prefix(k)?.strip_prefix('=')).unwrap_or_default().to_string()
            };
            json_reply(200, &json!({"replies": platforms.replies(&param("channel"), &param("account"))}), &[])
        }
        _ => json_reply(404, &json!({"error": format!("no {method} {path}"), "usage": HELP}), &[]),
    }
}
