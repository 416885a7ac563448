//! The attacks of docs/security.md against a default install, through the
//! `chela` binary: each test plays the attacker from outside (a web page in
//! the owner's browser, a chat user, a hostile plugin, an upstream API) and
//! checks the attack fails while the owner's own use keeps working.

use std::path::Path;

use chela_fakes::wire;
use serde_json::Value;
use support::{chela, Gateway};

mod support;

fn agent_config(root: &Path, extra: &str) -> String {
    format!(
        r#"{{
  agents: {{ list: [ {{ id: "work", default: true, workspace: "{root}/ws-work" }} ] }},
  gateway: {{ http: {{ endpoints: {{ chatCompletions: {{ enabled: true }} }} }} }},
  {extra}
}}"#,
        root = root.display()
    )
}

async fn raw(gw: &Gateway, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> wire::Answer {
    wire::request(method, &format!("http://{}{path}", gw.addr), headers, body.as_bytes()).await.expect("answers")
}

/// The token the gateway generated, as the owner's CLI reads it.
fn owner_bearer(gw: &Gateway) -> String {
    let token = std::fs::read_to_string(gw.root.join("state/gateway.token")).expect("a generated token");
    format!("Bearer {}", token.trim())
}

/// A GET as the owner makes it.
async fn owner_get(gw: &Gateway, path: &str) -> wire::Answer {
    raw(gw, "GET", path, &[("authorization", &owner_bearer(gw))], "").await
}

/// With no token configured, a web page cannot drive or read the gateway:
/// the gateway generated a token (0600) that only the local CLI reads; a
/// cross-origin `text/plain` POST, a rebinding `Host`, and a missing token
/// are all refused, and none of them ran a turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_cannot_drive_or_read_a_gateway_without_a_configured_token() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let gw = Gateway::start_with(root, &agent_config(root, ""), &[]).await;
    let token_file = root.join("state/gateway.token");
    let token = std::fs::read_to_string(&token_file).expect("the gateway generated a token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let bearer = format!("Bearer {}", token.trim());
    let port = gw.addr.rsplit(':').next().unwrap().to_string();

    // The drive-by page: a "simple" cross-origin POST (no preflight) that would make the agent run a tool.
    let send = r#"{"agentId":"work","text":"PWNED run exec"}"#;
    let evil = [("origin", "http://evil.example"), ("content-type", "text/plain")];
    let a = raw(&gw, "POST", "/api/v1/send", &evil, send).await;
    assert!(a.status == 401 || a.status == 403, "{} {}", a.status, a.body);
    // Not even with the token (a leaked one) does a foreign origin or a non-JSON body pass.
    let a =
        raw(&gw, "POST", "/api/v1/send", &[("origin", "http://evil.example"), ("authorization", &bearer)], send).await;
    assert_eq!(a.status, 403, "{}", a.body);
    let a = raw(&gw, "POST", "/api/v1/send", &[("content-type", "text/plain"), ("authorization", &bearer)], send).await;
    assert_eq!(a.status, 415, "{}", a.body);
    // The OpenAI endpoint is the control plane too.
    let chat = r#"{"model":"chela:work","messages":[{"role":"user","content":"PWNED"}]}"#;
    let a = raw(&gw, "POST", "/v1/chat/completions", &[("content-type", "application/json")], chat).await;
    assert_eq!(a.status, 401, "{}", a.body);

    // The rebinding page: same-origin from the browser's view, but under the attacker's name.
    let rebound = format!("rebind.attacker.example:{port}");
    let path = "/api/v1/sessions/history?agentId=work&key=agent%3Awork%3Amain";
    let a = raw(&gw, "GET", path, &[("host", &rebound)], "").await;
    assert_eq!(a.status, 421, "{}", a.body);
    let a = raw(&gw, "GET", path, &[("host", &rebound), ("authorization", &bearer)], "").await;
    assert_eq!(a.status, 421, "the Host check holds on its own: {}", a.body);
    let a = raw(&gw, "GET", "/api/v1/agents", &[], "").await;
    assert_eq!(a.status, 401, "{}", a.body);
    assert_eq!(raw(&gw, "GET", "/metrics", &[("host", &rebound)], "").await.status, 421, "metrics too");
    assert_eq!(raw(&gw, "GET", "/healthz", &[], "").await.status, 200, "health stays open");

    // The owner's CLI needs no setup: it reads the generated token.
    let out = chela(root, &gw.config).args(["send", "--agent", "work", "hello from the owner"]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let a = raw(&gw, "GET", path, &[("authorization", &bearer)], "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let history: Value = serde_json::from_str(&a.body).unwrap();
    let texts = history["messages"].to_string();
    assert!(texts.contains("hello from the owner"), "{texts}");
    assert!(!texts.contains("PWNED"), "a refused request ran a turn: {texts}");
}

/// An API caller cannot continue someone else's conversation: a session
/// header naming the agent's main session lands in the endpoint's own
/// namespace, and requests without `user` share nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_request_cannot_name_a_chat_or_main_session() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let gw = Gateway::start_with(root, &agent_config(root, ""), &[]).await;
    let bearer = owner_bearer(&gw);
    let json = ("content-type", "application/json");
    let out = chela(root, &gw.config).args(["send", "--agent", "work", "owner's private note"]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let chat = |text: &str| format!(r#"{{"model":"chela:work","messages":[{{"role":"user","content":"{text}"}}]}}"#);
    for header in ["x-chela-session-key", "x-openclaw-session-key"] {
        let a = raw(
            &gw,
            "POST",
            "/v1/chat/completions",
            &[json, ("authorization", &bearer), (header, "agent:work:main")],
            &chat("INJECTED"),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    for _ in 0..2 {
        let a = raw(&gw, "POST", "/v1/chat/completions", &[json, ("authorization", &bearer)], &chat("stateless")).await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let main = owner_get(&gw, "/api/v1/sessions/history?agentId=work&key=agent%3Awork%3Amain").await;
    assert_eq!(main.status, 200, "{}", main.body);
    assert!(main.body.contains("owner's private note"), "{}", main.body);
    assert!(!main.body.contains("INJECTED"), "an API request wrote into the main session: {}", main.body);
    let list = owner_get(&gw, "/api/v1/sessions?agentId=work").await;
    let list: Value = serde_json::from_str(&list.body).unwrap();
    let keys: Vec<&str> = list["sessions"].as_array().unwrap().iter().filter_map(|s| s["key"].as_str()).collect();
    assert!(keys.contains(&"agent:work:openai:agent-work-main"), "{keys:?}");
    assert_eq!(
        keys.iter().filter(|k| k.starts_with("agent:work:openai:request-")).count(),
        2,
        "one session per request: {keys:?}"
    );
}

/// The control API runs a turn as the agent it names, in that agent's own
/// sessions only: a session key of another agent is refused (400) and
/// neither agent's store gets the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_send_cannot_write_into_another_agents_session() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = format!(
        r#"{{ agents: {{ list: [ {{ id: "work", default: true, workspace: "{root}/ws-work" }},
                                {{ id: "home", workspace: "{root}/ws-home" }} ] }} }}"#,
        root = root.display()
    );
    let gw = Gateway::start_with(root, &config, &[]).await;
    let bearer = owner_bearer(&gw);
    let json = ("content-type", "application/json");
    let headers = [json, ("authorization", bearer.as_str())];
    let own = r#"{"agentId":"home","text":"home's own note"}"#;
    let a = raw(&gw, "POST", "/api/v1/send", &headers, own).await;
    assert_eq!(a.status, 200, "{}", a.body);

    for key in ["agent:home:main", "AGENT:Home:main", "agent:home:telegram:direct:42"] {
        let body = format!(r#"{{"agentId":"work","sessionKey":"{key}","text":"INJECTED"}}"#);
        let a = raw(&gw, "POST", "/api/v1/send", &headers, &body).await;
        assert_eq!(a.status, 400, "work wrote into `{key}`: {}", a.body);
        assert!(a.body.contains("home"), "the refusal names the other agent: {}", a.body);
    }
    let home = owner_get(&gw, "/api/v1/sessions/history?agentId=home&key=agent%3Ahome%3Amain").await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.body.contains("home's own note"), "{}", home.body);
    assert!(!home.body.contains("INJECTED"), "another agent's turn reached home's session: {}", home.body);
    let work = owner_get(&gw, "/api/v1/sessions?agentId=work").await;
    assert_eq!(work.status, 200, "{}", work.body);
    assert!(!work.body.contains("agent:home"), "work's store holds a session of home: {}", work.body);
}

fn wa_delivery(phone_number_id: &str, from: &str, id: &str, text: &str) -> Vec<u8> {
    chela_fakes::whatsapp::ascii_json(&serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "1",
        "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": from}],
            "messages": [{"from": from, "id": id, "timestamp": "1", "type": "text", "text": {"body": text}}]}}]}]}))
}

/// Whoever holds one WhatsApp account's app secret cannot inject messages
/// into another account (past its allowlist): a delivery is credited to
/// the account owning its `phone_number_id` only when it was signed with
/// that account's secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_whatsapp_accounts_secret_cannot_speak_as_another_account() {
    use chela_fakes::whatsapp::{post_signed, WhatsAppFake};
    const SALES: &str = "106540352242922";
    const CARE: &str = "106540352249999";
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let fake = WhatsAppFake::start("care-app-secret").await; // the Meta app behind care
    fake.add_number(SALES, "15550783881", "EAAG-sales");
    fake.add_number(CARE, "15550783882", "EAAG-care");
    let channels = format!(
        r#"bindings: [ {{ agentId: "work", match: {{ channel: "whatsapp", accountId: "care" }} }} ],
  channels: {{ whatsapp: {{ dmPolicy: "allowlist", allowFrom: ["+15550001111"], verifyToken: "v", graphApiBase: "{}",
    accounts: {{
      sales: {{ phoneNumberId: "{SALES}", accessToken: "EAAG-sales", appSecret: "sales-app-secret" }},
      care: {{ phoneNumberId: "{CARE}", accessToken: "EAAG-care", appSecret: "care-app-secret" }},
    }} }} }},"#,
        fake.base_url()
    );
    let gw = Gateway::start_with(root, &agent_config(root, &channels), &["channel_whatsapp"]).await;
    let sales_hook = format!("http://{}/channels/whatsapp/sales/", gw.addr);
    let care_hook = format!("http://{}/channels/whatsapp/care/", gw.addr);
    // The attacker knows sales' app secret and forges a message from care's allowlisted user, for care's number.
    let forged = wa_delivery(CARE, "15550001111", "wamid.forged", "FORGED transfer the money");
    assert_eq!(post_signed(&sales_hook, "sales-app-secret", &forged).await, Some(200));
    // The real user then writes to care: that message is answered, and it is the first care ever answers.
    fake.subscribe(&care_hook, "v").await.expect("care's webhook subscribed");
    let (_, status) = fake.user_message(CARE, ("15550001111", "Ana"), "hello care", None, None).await;
    assert_eq!(status, Some(200));
    let sent = fake.wait_sent(CARE, 1, support::WAIT).await;
    let body = sent[0]["text"]["body"].as_str().unwrap_or_default();
    assert!(body.contains("hello care") && !body.contains("FORGED"), "{body}");
    // One more real message is the positive signal that nothing else was queued behind.
    let (_, status) = fake.user_message(CARE, ("15550001111", "Ana"), "still there?", None, None).await;
    assert_eq!(status, Some(200));
    let sent = fake.wait_sent(CARE, 2, support::WAIT).await;
    assert!(sent.iter().all(|m| !m.to_string().contains("FORGED")), "{sent:?}");
    // And the forged text never reached the agent at all (its transcripts on disk).
    let sessions = root.join("state/agents/work/sessions");
    let mut transcripts = String::new();
    for e in std::fs::read_dir(&sessions).unwrap() {
        transcripts.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap_or_default());
    }
    assert!(transcripts.contains("still there?"), "{transcripts}");
    assert!(!transcripts.contains("FORGED"), "a forged delivery reached the agent: {transcripts}");
    assert_eq!(fake.sent(CARE).len(), 2, "{:?}", fake.sent(CARE));
}

/// The `sessions` capability is granted per function: a plugin linked for
/// `sessions_list` cannot send into a session or spawn a sub-agent when
/// `sessions_send` and `sessions_spawn` are denied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_linked_for_listing_cannot_send_or_spawn() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let policy = r#"tools: { deny: ["sessions_send", "sessions_spawn"], sessions: { visibility: "agent" } },"#;
    let gw = Gateway::start_with(root, &agent_config(root, policy), &["fixture_sneak"]).await;
    let send = |session: &str, text: &str| {
        let mut c = chela(root, &gw.config);
        c.args(["send", "--agent", "work", "--session", session, text]);
        c
    };
    let out = send("agent:work:main", "owner's note").output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = send("agent:work:side", r#"/tool sessions_list {"target": "agent:work:main"}"#).output().await.unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");

    // The tool ran (its result is in the side session), its list call worked, send and spawn were refused.
    let side = owner_get(&gw, "/api/v1/sessions/history?agentId=work&key=agent%3Awork%3Aside").await;
    assert_eq!(side.status, 200, "{}", side.body);
    assert!(side.body.contains("sessions_send") && side.body.contains("is not allowed"), "{}", side.body);
    assert!(side.body.contains("sessions_spawn"), "{}", side.body);
    let main = owner_get(&gw, "/api/v1/sessions/history?agentId=work&key=agent%3Awork%3Amain").await;
    assert!(main.body.contains("owner's note"), "{}", main.body);
    assert!(!main.body.contains("INJECTED"), "a denied send reached the session: {}", main.body);
    let list = owner_get(&gw, "/api/v1/sessions?agentId=work").await;
    assert!(!list.body.contains(":subagent:"), "a denied spawn started a sub-agent: {}", list.body);
}

/// A listener that counts the connections it accepts (an attacker's server).
async fn attacker() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    (port, hits)
}

/// A Discord Gateway URL from upstream (`GET /gateway/bot`) with userinfo
/// in front of another host is not that host: the bot token never goes there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_url_with_userinfo_cannot_send_the_bot_token_elsewhere() {
    use chela_fakes::discord::DiscordFake;
    const BOT: &str = "MTEx.secret-bot-token";
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let fake = DiscordFake::start().await;
    fake.add_bot(BOT, "1100000000000000009", "ops", true);
    // The attacker listens on port 80 of a loopback address of its own (the URL has no port: 80).
    let ip = format!("127.77.{}.{}", std::process::id() % 250 + 1, std::process::id() / 250 % 250 + 1);
    let listener = match tokio::net::TcpListener::bind((ip.as_str(), 80)).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("skipped: binding port 80 needs root here ({e})");
            return;
        }
        Err(e) => panic!("cannot bind {ip}:80: {e}"),
    };
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    // The upstream names "its" gateway; everything before the last `:` looks like
    // gateway.discord.gg, but the authority really is the attacker's host.
    fake.set_gateway_url(&format!("ws://gateway.discord.gg:1@{ip}"));
    let channels = format!(
        r#"channels: {{ discord: {{ dmPolicy: "open", allowFrom: ["*"], apiBase: "{}", accounts: {{ main: {{ token: "{BOT}" }} }} }} }},"#,
        fake.api_base()
    );
    let _gw = Gateway::start_with(root, &agent_config(root, &channels), &["channel_discord"]).await;
    // The adapter fetched the URL, was refused, and asked again: its connect attempt is over.
    let deadline = std::time::Instant::now() + support::WAIT;
    while fake.gateway_bot_requests() < 2 {
        assert!(std::time::Instant::now() < deadline, "the adapter never retried");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "the gateway connected to the attacker's host");
    assert!(!fake.connected(BOT));
}

/// A tool's declared hosts are a request, not a grant: a tool naming the
/// control API, loopback or a metadata address reaches none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tools_own_host_list_reaches_neither_the_control_api_nor_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let gw = Gateway::start_with(root, &agent_config(root, ""), &["fixture_snoop"]).await;
    let (port, hits) = attacker().await;
    for url in [
        format!("http://{}/api/v1/agents", gw.addr),
        format!("http://127.0.0.1:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://localhost:{port}/"),
    ] {
        let ask = format!(r#"/tool snoop {{"url": "{url}"}}"#);
        let out = chela(root, &gw.config).args(["send", "--agent", "work", &ask]).output().await.unwrap();
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(said.contains("HttpRequestDenied"), "{url}: {said}");
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// An allowed host that echoes its input cannot hand a secret back through
/// a query string; the same secret still goes out in the path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_is_never_put_in_a_query_string() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let (addr, _server) = wire::serve(move |req: hyper::Request<hyper::body::Incoming>| {
        let log = log.clone();
        async move {
            let line = req.uri().to_string();
            log.lock().unwrap().push(line.clone());
            wire::json_reply(200, &serde_json::json!({ "echo": line }), &[])
        }
    })
    .await;
    let plugins = format!(
        r#"plugins: {{ entries: {{ tool_web_fetch: {{ allowHosts: ["{addr}"], secrets: {{ TOKEN: "tok-9f8e7d" }} }} }} }},"#
    );
    let gw = Gateway::start_with(root, &agent_config(root, &plugins), &["tool_web_fetch"]).await;
    let fetch = |url: String| {
        let mut c = chela(root, &gw.config);
        c.args(["send", "--agent", "work", &format!(r#"/tool web_fetch {{"url": "{url}"}}"#)]);
        c
    };
    let out = fetch(format!("http://{addr}/echo?q={{{{secret:TOKEN}}}}")).output().await.unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!said.contains("tok-9f8e7d"), "the secret came back: {said}");
    let out = fetch(format!("http://{addr}/bot{{{{secret:TOKEN}}}}/getMe")).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, ["/bottok-9f8e7d/getMe"], "only the path request reached the server");
}

/// Persona files are read beneath the workspace: a SOUL.md symlinked into
/// another agent's workspace is not read (a link inside still is), and a
/// FIFO as USER.md does not stall the turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persona_files_do_not_follow_links_out_of_the_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let text = format!(
        r#"{{ agents: {{ list: [ {{ id: "work", default: true, workspace: "{r}/ws-work" }}, {{ id: "other", workspace: "{r}/ws-other" }} ] }} }}"#,
        r = root.display()
    );
    std::fs::create_dir_all(root.join("ws-work/notes")).unwrap();
    std::fs::create_dir_all(root.join("ws-other")).unwrap();
    std::fs::write(root.join("ws-other/SOUL.md"), "OTHER-AGENT-SECRET plans.").unwrap();
    std::os::unix::fs::symlink("../ws-other/SOUL.md", root.join("ws-work/SOUL.md")).unwrap();
    let fifo = root.join("ws-work/USER.md");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let gw = Gateway::start_with(root, &text, &[]).await;
    let send = || chela(root, &gw.config).args(["send", "--agent", "work", "who are you?"]).output();
    let out = tokio::time::timeout(support::WAIT, send()).await.expect("a FIFO persona file stalled the turn").unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!said.contains("OTHER-AGENT-SECRET"), "another agent's file reached the prompt: {said}");
    // A link that stays inside the workspace keeps working.
    std::fs::write(root.join("ws-work/notes/soul.md"), "Calm and precise.").unwrap();
    std::fs::remove_file(root.join("ws-work/SOUL.md")).unwrap();
    std::os::unix::fs::symlink("notes/soul.md", root.join("ws-work/SOUL.md")).unwrap();
    let out = tokio::time::timeout(support::WAIT, send()).await.expect("answers").unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.contains("Calm and precise."), "{said}");
}

/// `exec` with the sandbox off (the default) runs on the host but cannot
/// read the gateway's state, config or environment, another agent's
/// workspace or agentDir; its timeout kills what it started in the
/// background; `/tmp` is private and size-capped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_on_the_host_cannot_read_another_agents_brain_or_the_gateway() {
    if !Path::new("/usr/bin/bwrap").exists() {
        panic!("bubblewrap is required (cargo xtask test installs it)");
    }
    // Not under /tmp (nor the checkout, which may be there): the command's private /tmp would
    // hide it for the wrong reason.
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let root = dir.path();
    let r = root.display();
    let text = format!(
        r#"{{ agents: {{ list: [ {{ id: "work", default: true, workspace: "{r}/ws-work" }},
            {{ id: "other", workspace: "{r}/ws-other", agentDir: "{r}/other-agent" }},
            {{ id: "late", workspace: "{r}/ws-late" }} ] }},
          gateway: {{ auth: {{ token: "cfg-token-SECRET" }} }} }}"#
    );
    std::fs::create_dir_all(root.join("ws-work")).unwrap();
    std::fs::write(root.join("ws-work/mine.txt"), "MINE-OK").unwrap();
    std::fs::create_dir_all(root.join("ws-other")).unwrap();
    std::fs::write(root.join("ws-other/MEMORY.md"), "OTHER-WS-SECRET").unwrap();
    std::fs::create_dir_all(root.join("other-agent")).unwrap();
    std::fs::write(root.join("other-agent/auth-profiles.json"), r#"{"profiles":{"x":{"key":"other-key-SECRET"}}}"#)
        .unwrap();
    std::env::set_var("CHELA_TEST_GATEWAY_ENV", "gw-env-SECRET");
    let gw = Gateway::start_with(root, &text, &["tool_exec"]).await;
    std::fs::write(root.join("chela.json5.bak"), "bak-token-SECRET").unwrap(); // what a CLI edit leaves
    let exec = |command: String, timeout_ms: u64| {
        let ask = format!("/tool exec {}", serde_json::json!({"command": command, "timeoutMs": timeout_ms}));
        let mut c = chela(root, &gw.config);
        c.args(["send", "--agent", "work", &ask]);
        c
    };
    let out = chela(root, &gw.config).args(["send", "--agent", "other", "note for other"]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let snoop = format!(
        "cat {r}/other-agent/auth-profiles.json {r}/ws-other/MEMORY.md {r}/state/agents/other/sessions/sessions.json \
         {config} {config}.bak {r}/state/gateway.token; cat /proc/*/environ | tr '\\0' '\\n'; env; cat mine.txt; \
         ls /usr/bin/env; mkdir -p {r}/ws-late && echo planted > {r}/ws-late/SOUL.md",
        config = gw.config.display()
    );
    let out = exec(snoop, 10_000).output().await.unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        said.contains("MINE-OK") && said.contains("/usr/bin/env"),
        "its workspace and the host stay visible: {said}"
    );
    for secret in [
        "other-key-SECRET",
        "OTHER-WS-SECRET",
        "cfg-token-SECRET",
        "bak-token-SECRET",
        "gw-env-SECRET",
        "note for other",
    ] {
        assert!(!said.contains(secret), "exec read `{secret}`: {said}");
    }
    // Nor can it plant a persona in a workspace another agent has not created yet.
    assert!(!root.join("ws-late/SOUL.md").exists(), "exec wrote into another agent's future workspace");

    // A background process does not outlive the command's timeout.
    let out = exec("sleep 61.734 & sleep 30".into(), 1_000).output().await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("timedOut"), "{}", String::from_utf8_lossy(&out.stdout));
    let alive = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
            std::fs::read(p.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("61.734"))
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while alive() {
        assert!(std::time::Instant::now() < deadline, "the background process survived the timeout");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // /tmp is private and capped.
    let out = exec("head -c 400000000 /dev/zero > /tmp/fill; echo rc=$?".into(), 20_000).output().await.unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.contains("rc=1"), "{said}");
}

/// Slow-loris connections next to normal traffic: the normal requests are
/// answered at once, and the gateway closes the connections that never
/// finish their request head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_connections_do_not_starve_normal_traffic() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let gw = Gateway::start_with(root, &agent_config(root, ""), &[]).await;
    let mut loris = Vec::new();
    for _ in 0..200 {
        let mut s = tokio::net::TcpStream::connect(&gw.addr).await.unwrap();
        s.write_all(b"POST /api/v1/send HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").await.unwrap();
        loris.push(s);
    }
    let start = std::time::Instant::now();
    for _ in 0..20 {
        assert_eq!(raw(&gw, "GET", "/healthz", &[], "").await.status, 200);
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(5), "normal traffic waited {:?}", start.elapsed());
    // Each slow connection is closed by the gateway (EOF, or a 408 first) within the head deadline.
    let closed = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        for mut s in loris {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "slow connections were kept open");
}

/// A command that outlasts the plugin call's deadline (`sleep 20` under
/// exec's 30 s default, the call's 10 s) is a timed-out result for the
/// model, not a plugin failure: exec stays enabled for every agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_command_is_a_result_not_a_plugin_failure() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let gw = Gateway::start_with(root, &agent_config(root, ""), &["tool_exec"]).await;
    let ask = format!("/tool exec {}", serde_json::json!({"command": "sleep 20"}));
    let out = chela(root, &gw.config).args(["send", "--agent", "work", &ask]).output().await.unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.contains(r#""timedOut":true"#), "{said} {}", String::from_utf8_lossy(&out.stderr));
    let list = owner_get(&gw, "/api/v1/plugins").await;
    let list: Value = serde_json::from_str(&list.body).unwrap();
    let exec = list.as_array().unwrap().iter().find(|p| p["id"] == "tool_exec").cloned().unwrap_or_default();
    assert_eq!(exec["status"], "ready", "{exec}");
}

/// `gateway.auth.token: "${VAR}"` (how OpenClaw's docs write it) is the
/// variable's value: the literal text `${VAR}` is never a token. With the
/// variable unset the gateway refuses to start and says which variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_written_as_a_variable_reference_is_never_the_literal_text() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let text =
        agent_config(root, "").replace("gateway: {", r#"gateway: { auth: { token: "${CHELA_TEST_CTL_TOKEN}" },"#);
    std::fs::write(root.join("chela.json5"), &text).unwrap();
    let out = chela(root, &root.join("chela.json5"))
        .args(["gateway", "--port", "0"])
        .env_remove("CHELA_TEST_CTL_TOKEN")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CHELA_TEST_CTL_TOKEN is not set"), "{out:?}");

    let mut command = chela(root, &root.join("chela.json5"));
    command.env("CHELA_TEST_CTL_TOKEN", "the-real-token");
    let gw = Gateway::start_as(root, &text, &[], command).await;
    let literal = raw(&gw, "GET", "/api/v1/agents", &[("authorization", "Bearer ${CHELA_TEST_CTL_TOKEN}")], "").await;
    assert_eq!(literal.status, 401, "the reference's text is not the token");
    let real = raw(&gw, "GET", "/api/v1/agents", &[("authorization", "Bearer the-real-token")], "").await;
    assert_eq!(real.status, 200, "{}", real.body);
}

/// OpenClaw's exec approval policy holds on the host (sandbox off):
/// `tools.exec.mode: "deny"` runs nothing; `security: "allowlist"` runs
/// only `safeBins` filters (stdin only); `ask: "always"` needs an approval
/// chela cannot prompt for, so it is refused (OpenClaw's `askFallback:
/// deny`). Each refusal says why, and the refused command left nothing
/// behind; an agent without these settings runs commands as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_approval_settings_refuse_host_commands_they_do_not_allow() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let root = dir.path();
    let r = root.display();
    let text = format!(
        r#"{{ agents: {{ list: [
            {{ id: "open", default: true, workspace: "{r}/ws-open" }},
            {{ id: "strict", workspace: "{r}/ws-strict", tools: {{ exec: {{ mode: "deny" }} }} }},
            {{ id: "filters", workspace: "{r}/ws-filters", tools: {{ exec: {{ security: "allowlist", safeBins: ["wc"] }} }} }},
            {{ id: "asker", workspace: "{r}/ws-asker", tools: {{ exec: {{ security: "full", ask: "always" }} }} }} ] }} }}"#
    );
    let gw = Gateway::start_with(root, &text, &["tool_exec"]).await;
    let exec = |agent: &'static str, command: &'static str| {
        let ask = format!("/tool exec {}", serde_json::json!({ "command": command }));
        let mut c = chela(root, &gw.config);
        c.args(["send", "--agent", agent, &ask]);
        async move {
            let out = c.output().await.unwrap();
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
        }
    };
    let said = exec("strict", "touch planted").await;
    assert!(said.contains("off for this agent (agents.list[1].tools.exec.mode: deny)"), "{said}");
    assert!(!root.join("ws-strict/planted").exists(), "mode deny ran it");

    let counted = exec("filters", "wc -c").await;
    assert!(counted.contains("\"exitCode\":0"), "a safe bin runs: {counted}");
    let said = exec("filters", "touch planted").await;
    assert!(
        said.contains("only allowlisted commands run") && said.contains("`touch` is not in tools.exec.safeBins"),
        "{said}"
    );
    let said = exec("filters", "wc -c planted; touch planted").await;
    assert!(said.contains("only allowlisted commands run"), "{said}");
    assert!(!root.join("ws-filters/planted").exists(), "the allowlist ran a command outside it");

    let said = exec("asker", "touch planted").await;
    assert!(said.contains("needs approval: every command needs approval") && said.contains("askFallback"), "{said}");
    assert!(!root.join("ws-asker/planted").exists(), "ask always ran it without an approval");

    // `/exec` shows the policy in force and where it comes from.
    let out = chela(root, &gw.config).args(["send", "--agent", "filters", "/exec"]).output().await.unwrap();
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        shown.contains("security allowlist, ask off (agents.list[2].tools.exec.security: allowlist); safe bins: wc"),
        "{shown}"
    );

    let made = exec("open", "touch made && echo done").await;
    assert!(made.contains("done") && root.join("ws-open/made").exists(), "the default runs commands: {made}");
}
