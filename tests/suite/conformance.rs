//! Runs every vector in `tests/conformance/` (copied into the repo with its
//! provenance README) through chela's routing and session-key code. Vectors
//! are produced by OpenClaw's own code; a failure names the vector and shows
//! expected vs actual.
//!
//! Must not: edit or skip a vector; a disagreement is a failure.

use std::path::PathBuf;

use chela_core::config::load_str;
use chela_core::config::schema::{DmScope, GroupScope};
use chela_core::routing::{RouteInput, RouteTable};
use chela_core::session_key as sk;
use serde_json::{json, Value};

fn shared(file: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A vector id value: string, number, `{"$bigint": "…"}`, or absent.
fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => o.get("$bigint").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// Routes one vector; returns its outcome in the vectors' shape.
fn run_route_vector(vector: &Value) -> Value {
    let text = serde_json::to_string(&vector["config"]).expect("config serializes");
    let loaded = match load_str(&text, None) {
        Ok(l) => l,
        Err(e) => return json!({"configError": e.diagnostics().iter().map(|d| d.to_string()).collect::<Vec<_>>()}),
    };
    let table = RouteTable::build(&loaded.config);
    let input = match RouteInput::from_json(&vector["input"]) {
        Ok(i) => i,
        Err(e) => return json!({"inputError": e}),
    };
    match table.resolve(&input) {
        Ok(r) => r.to_vector_json(),
        Err(e) => e.to_vector_json(),
    }
}

fn check_route_file(file: &str) {
    let vectors = shared(file);
    assert!(!vectors.is_empty(), "{file} has no vectors");
    let mut failures = Vec::new();
    for v in &vectors {
        let got = run_route_vector(v);
        let expect = &v["expect"];
        let ok = match expect.get("error") {
            Some(err) => got.get("error").is_some_and(|g| {
                g["name"] == err["name"] && g["code"] == err.get("code").cloned().unwrap_or(Value::Null)
            }),
            None => expect.as_object().is_some_and(|e| e.iter().all(|(k, want)| &got[k] == want)),
        };
        if !ok {
            failures.push(format!("{}\n    expect {}\n    got    {}", v["name"], expect, got));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors in {file} failed:\n{}",
        failures.len(),
        vectors.len(),
        failures.join("\n")
    );
}

#[test]
fn route_vectors() {
    check_route_file("route-vectors.json");
}

#[test]
fn route_random_sample() {
    check_route_file("route-random-sample.json");
}

#[test]
fn route_broken_configs() {
    check_route_file("route-broken-configs.json");
}

/// Reads a helper argument: `{"$undefined": true}` and null are absent.
fn arg_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
}

fn field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn undefined() -> Value {
    json!({"$undefined": true})
}

fn opt(v: Option<String>) -> Value {
    v.map(Value::String).unwrap_or_else(undefined)
}

/// Maps an OpenClaw helper name and its arguments to chela's function.
fn run_helper(name: &str, args: &[Value]) -> Result<Value, String> {
    let a0 = args.first();
    let o = a0.cloned().unwrap_or(Value::Null);
    Ok(match name {
        "normalizeAgentId" | "sanitizeAgentId" => {
            json!(chela_core::ids::normalize_agent_id(arg_str(a0)))
        }
        "normalizeAccountId" => json!(chela_core::ids::normalize_account_id(arg_str(a0))),
        "normalizeOptionalAccountId" => opt(chela_core::ids::normalize_optional_account_id(arg_str(a0))),
        "normalizeMainKey" => json!(chela_core::ids::normalize_main_key(arg_str(a0))),
        "buildAgentMainSessionKey" => {
            json!(sk::build_main_session_key(field(&o, "agentId").unwrap_or(""), field(&o, "mainKey")))
        }
        "buildAgentPeerSessionKey" | "buildAgentSessionKey" => {
            let (kind, id) = if name == "buildAgentSessionKey" {
                let p = o.get("peer").cloned().unwrap_or(Value::Null);
                (p.get("kind").and_then(Value::as_str).map(str::to_string), p.get("id").and_then(id_string))
            } else {
                (field(&o, "peerKind").map(str::to_string), o.get("peerId").and_then(id_string))
            };
            let links: Option<indexmap::IndexMap<String, Value>> =
                o.get("identityLinks").and_then(|l| serde_json::from_value(l.clone()).ok());
            let parts = sk::PeerKeyParts {
                agent_id: field(&o, "agentId").unwrap_or(""),
                channel: field(&o, "channel").unwrap_or(""),
                account_id: field(&o, "accountId"),
                peer_kind: kind.as_deref(),
                peer_id: id.as_deref().unwrap_or(""),
                dm_scope: field(&o, "dmScope").and_then(DmScope::parse).unwrap_or_default(),
                group_scope: field(&o, "groupScope").and_then(GroupScope::parse).unwrap_or_default(),
                identity_links: links.as_ref(),
                main_key: field(&o, "mainKey"),
            };
            if name == "buildAgentSessionKey" && kind.is_none() {
                json!(sk::build_main_session_key(parts.agent_id, parts.main_key))
            } else {
                json!(sk::build_peer_session_key(&parts))
            }
        }
        "buildGroupHistoryKey" => json!(sk::build_group_history_key(
            field(&o, "channel").unwrap_or(""),
            field(&o, "accountId"),
            field(&o, "peerKind").unwrap_or(""),
            field(&o, "peerId").unwrap_or(""),
        )),
        "resolveThreadSessionKeys" => {
            let key = sk::build_thread_session_key(
                field(&o, "baseSessionKey").unwrap_or(""),
                field(&o, "threadId"),
                o.get("useSuffix").and_then(Value::as_bool).unwrap_or(true),
            );
            let mut out = json!({"sessionKey": key});
            if let Some(p) = field(&o, "parentSessionKey") {
                out["parentSessionKey"] = json!(p);
            }
            out
        }
        "parseThreadSessionSuffix" => {
            let t = sk::parse_thread_session_suffix(arg_str(a0).unwrap_or(""));
            let mut out = json!({"baseSessionKey": t.base});
            if let Some(id) = t.thread_id {
                out["threadId"] = json!(id);
            }
            out
        }
        "parseAgentSessionKey" => match sk::parse_agent_session_key(arg_str(a0).unwrap_or("")) {
            Some(p) => json!({"agentId": p.agent_id, "rest": p.rest}),
            None => Value::Null,
        },
        "classifySessionKeyShape" => json!(sk::classify_session_key_shape(arg_str(a0))),
        "resolveAgentIdFromSessionKey" => {
            json!(sk::resolve_agent_id_from_session_key(arg_str(a0), arg_str(args.get(1))).map_err(|e| e.to_string())?)
        }
        "toAgentStoreSessionKey" => {
            json!(sk::to_agent_store_session_key(
                field(&o, "agentId").unwrap_or(""),
                field(&o, "requestKey"),
                field(&o, "mainKey")
            ))
        }
        "toAgentRequestSessionKey" => opt(sk::to_agent_request_session_key(arg_str(a0))),
        "getSubagentDepth" => json!(sk::subagent_depth(arg_str(a0))),
        "deriveSessionChatTypeFromKey" => match sk::derive_chat_type_from_key(arg_str(a0).unwrap_or("")) {
            Some(t) => json!(t.as_str()),
            None => json!("unknown"),
        },
        "deriveLastRoutePolicy" => json!(sk::derive_last_route_policy(
            field(&o, "sessionKey").unwrap_or(""),
            field(&o, "mainSessionKey").unwrap_or("")
        )),
        other => return Err(format!("no chela equivalent mapped for `{other}`")),
    })
}

#[test]
fn session_key_vectors() {
    let vectors = shared("session-key-vectors.json");
    assert!(!vectors.is_empty());
    let mut failures = Vec::new();
    for v in &vectors {
        let name = v["fn"].as_str().unwrap_or("");
        let args = v["args"].as_array().cloned().unwrap_or_default();
        let got = run_helper(name, &args);
        let ok = match (&got, v["expect"].get("error")) {
            (Err(msg), Some(err)) => err.get("message").is_none_or(|m| m == msg),
            (Ok(val), None) => val == &v["expect"]["result"],
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{} [{name}] args {}\n    expect {}\n    got    {:?}",
                v["name"],
                Value::Array(args),
                v["expect"],
                got
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} session-key vectors failed:\n{}",
        failures.len(),
        vectors.len(),
        failures.join("\n")
    );
}
