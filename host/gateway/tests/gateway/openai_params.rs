//! `/v1/chat/completions` sampling fields (OpenClaw's contract): checked at
//! the endpoint (out of range → 400, no model call) and forwarded to the
//! agent's provider, here the OpenAI fake, in the names its API uses.

use chela_fakes::openai::{OpenAiFake, Scripted};
use serde_json::{json, Value};

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_fields_are_checked_and_reach_the_provider() {
    let fake = OpenAiFake::start("sk-test").await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = format!(
        r#"{{
      models: {{ providers: {{ openai: {{ baseUrl: "{openai}" }} }} }},
      agents: {{ list: [ {{ id: "work", default: true, workspace: "{root}/ws", model: "openai/gpt-test" }} ] }},
      gateway: {{ http: {{ endpoints: {{ chatCompletions: {{ enabled: true }} }} }} }},
    }}"#,
        openai = fake.base_url(),
        root = root.display()
    );
    let vars = common::openai_test_key();
    let running = common::serve_with_vars(root, &config, &[], vars).await;
    let token = format!("Bearer {}", running.gateway.control_token());
    let ask = |extra: Value| {
        let mut body = json!({"model": "openclaw", "messages": [{"role": "user", "content": "hi"}]});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (url, token) = (format!("http://{}/v1/chat/completions", running.addr), token.clone());
        async move {
            let headers = [("authorization", token.as_str()), ("content-type", "application/json")];
            let a = chela_fakes::wire::request("POST", &url, &headers, body.to_string().as_bytes()).await.unwrap();
            (a.status, serde_json::from_str::<Value>(&a.body).unwrap_or(Value::String(a.body)))
        }
    };
    fake.script([Scripted::Text("sampled".into())]);
    let (s, r) = ask(json!({"temperature": 0.25, "top_p": 0.9, "max_completion_tokens": 50, "max_tokens": 10,
                            "stop": ["END"], "seed": 7, "presence_penalty": -0.5}))
    .await;
    assert_eq!((s, r["choices"][0]["message"]["content"].as_str()), (200, Some("sampled")), "{r}");
    let sent = &fake.requests()[0].1;
    assert_eq!(
        (&sent["temperature"], &sent["top_p"], &sent["max_completion_tokens"], &sent["stop"], &sent["seed"]),
        (&json!(0.25), &json!(0.9), &json!(50), &json!(["END"]), &json!(7)),
        "{sent}"
    );
    assert_eq!(sent["presence_penalty"], json!(-0.5));
    assert!(sent.get("max_tokens").is_none() && sent.get("frequency_penalty").is_none(), "{sent}");

    for (bad, field) in [
        (json!({"temperature": 3}), "temperature"),
        (json!({"top_p": -0.1}), "top_p"),
        (json!({"max_tokens": 0}), "max_tokens"),
        (json!({"max_completion_tokens": 5, "max_tokens": "x"}), "max_tokens"),
        (json!({"stop": ["a", "b", "c", "d", "e"]}), "stop"),
        (json!({"stop": [""]}), "stop"),
        (json!({"seed": 1.5}), "seed"),
    ] {
        let (s, r) = ask(bad.clone()).await;
        assert_eq!(s, 400, "{bad}: {r}");
        assert_eq!(r["error"]["type"], "invalid_request_error", "{r}");
        assert!(r["error"]["message"].as_str().unwrap().contains(field), "{bad}: {r}");
    }
    assert_eq!(fake.requests().len(), 1, "a refused request never reaches the model");
}
