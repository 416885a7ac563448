//! Model credentials of one agent: `<agentDir>/auth-profiles.json`
//! (reference §12, version 1: `api_key` / `token` / `oauth` profiles, `order`
//! and `lastGood` per provider), then the provider's `apiKey` in
//! `models.providers.<id>` (a literal such as a local server's `"lmstudio"`,
//! `"${VAR}"`, or OpenClaw's env SecretRef `{source: "env", id}`), then the
//! provider's environment variable (`OPENAI_API_KEY`, `<PROVIDER>_API_KEY`).
//! Never another agent's file.
//!
//! Must not: read another agent's agentDir or send a credential to any provider but its own.

use std::path::Path;

use serde_json::Value;

/// What kind of secret: providers send API keys and tokens differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    ApiKey,
    /// A `token` or an OAuth `access` token (sent as a bearer).
    Token,
}

/// A credential and where it came from (for logs; never the value).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub secret: String,
    pub kind: CredentialKind,
    pub source: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("kind", &self.kind).field("source", &self.source).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct AuthFileError {
    pub path: String,
    pub message: String,
}

fn secret_of(profile: &Value, now_ms: i64) -> Option<(String, CredentialKind)> {
    let expired = profile["expires"].as_i64().is_some_and(|e| e <= now_ms);
    let (field, kind) = match profile["type"].as_str()? {
        "api_key" => ("key", CredentialKind::ApiKey),
        "token" if !expired => ("token", CredentialKind::Token),
        "oauth" if !expired => ("access", CredentialKind::Token),
        _ => return None,
    };
    profile[field].as_str().map(|s| (s.to_string(), kind))
}

/// The credential for `provider`: the profiles in `order[provider]` (else
/// `lastGood`, else every profile of that provider in file order), skipping
/// expired tokens and profiles in cooldown; then the environment.
pub fn credential(
    agent_dir: &Path,
    provider: &str,
    env: &dyn Fn(&str) -> Option<String>,
    now_ms: i64,
) -> Result<Option<Credential>, AuthFileError> {
    credential_with(agent_dir, provider, None, env, now_ms)
}

/// The provider's configured `apiKey` (`models.providers.<id>.apiKey`), read:
/// a literal, a whole `${VAR}`, or `{source: "env", id: "VAR"}`. OpenClaw's
/// file, exec and store SecretRefs are not read (`None`).
pub fn configured_key(value: &Value, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let key = match value {
        Value::String(s) => chela_core::config::plugin_entry::resolve_env_ref(s, env),
        Value::Object(o) if o.get("source").and_then(Value::as_str) == Some("env") => env(o.get("id")?.as_str()?),
        _ => None,
    };
    key.filter(|k| !k.trim().is_empty())
}

/// [`credential`], with the provider's configured `apiKey` between the
/// agent's profiles and the environment.
pub fn credential_with(
    agent_dir: &Path,
    provider: &str,
    configured: Option<&Value>,
    env: &dyn Fn(&str) -> Option<String>,
    now_ms: i64,
) -> Result<Option<Credential>, AuthFileError> {
    let path = agent_dir.join("auth-profiles.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let file: Value = serde_json::from_str(&text)
            .map_err(|e| AuthFileError { path: path.display().to_string(), message: e.to_string() })?;
        let profiles = file["profiles"].as_object().cloned().unwrap_or_default();
        let mut names: Vec<String> = file["order"][provider]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        if names.is_empty() {
            names.extend(file["lastGood"][provider].as_str().map(str::to_string));
            names.extend(profiles.iter().filter(|(_, p)| p["provider"] == provider).map(|(k, _)| k.clone()));
        }
        for name in names {
            let Some(p) = profiles.get(&name).filter(|p| p["provider"] == provider) else { continue };
            let cooling = file["usageStats"][&name]["cooldownUntil"].as_i64().is_some_and(|c| c > now_ms);
            if cooling {
                continue;
            }
            if let Some((secret, kind)) = secret_of(p, now_ms) {
                return Ok(Some(Credential { secret, kind, source: format!("{} ({name})", path.display()) }));
            }
        }
    }
    if let Some(secret) = configured.and_then(|v| configured_key(v, env)) {
        return Ok(Some(Credential {
            secret,
            kind: CredentialKind::ApiKey,
            source: format!("models.providers.{provider}.apiKey"),
        }));
    }
    let var = format!("{}_API_KEY", provider.to_ascii_uppercase().replace('-', "_"));
    Ok(env(&var).filter(|v| !v.is_empty()).map(|secret| Credential {
        secret,
        kind: CredentialKind::ApiKey,
        source: format!("${var}"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_expiry_cooldown_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("auth-profiles.json"),
            r#"{"version": 1, "profiles": {
                "openai:old": {"type": "token", "provider": "openai", "token": "t-old", "expires": 1},
                "openai:busy": {"type": "api_key", "provider": "openai", "key": "k-busy"},
                "openai:main": {"type": "api_key", "provider": "openai", "key": "k-main"},
                "anthropic:me": {"type": "oauth", "provider": "anthropic", "access": "a-1", "refresh": "r", "expires": 9999999999999}},
              "order": {"openai": ["openai:old", "openai:busy", "openai:main"]},
              "usageStats": {"openai:busy": {"cooldownUntil": 9999999999999}}}"#,
        )
        .unwrap();
        let no_env = |_: &str| None;
        let c = credential(dir.path(), "openai", &no_env, 1000).unwrap().unwrap();
        assert_eq!(c.secret, "k-main");
        assert!(!format!("{c:?}").contains("k-main"), "Debug never shows the value");
        let oauth = credential(dir.path(), "anthropic", &no_env, 1000).unwrap().unwrap();
        assert_eq!((oauth.secret.as_str(), oauth.kind), ("a-1", CredentialKind::Token));
        let env = |k: &str| (k == "OLLAMA_API_KEY").then(|| "from-env".to_string());
        assert_eq!(credential(dir.path(), "ollama", &env, 1000).unwrap().unwrap().secret, "from-env");
        assert!(credential(dir.path(), "groq", &no_env, 1000).unwrap().is_none());
        // The provider's configured apiKey: after the agent's profiles, before the environment.
        let key = |v: serde_json::Value| credential_with(dir.path(), "groq", Some(&v), &env, 1000).unwrap().unwrap();
        assert_eq!(key(serde_json::json!("lmstudio")).secret, "lmstudio");
        assert_eq!(key(serde_json::json!("lmstudio")).source, "models.providers.groq.apiKey");
        let from_ref = credential_with(dir.path(), "groq", Some(&serde_json::json!("${OLLAMA_API_KEY}")), &env, 1000);
        assert_eq!(from_ref.unwrap().unwrap().secret, "from-env");
        let secret_ref = serde_json::json!({"source": "env", "provider": "default", "id": "OLLAMA_API_KEY"});
        assert_eq!(key(secret_ref).secret, "from-env");
        let profile_first = credential_with(dir.path(), "openai", Some(&serde_json::json!("cfg")), &no_env, 1000);
        assert_eq!(profile_first.unwrap().unwrap().secret, "k-main", "the agent's own profile wins");
        std::fs::write(dir.path().join("auth-profiles.json"), "{oops").unwrap();
        assert!(credential(dir.path(), "openai", &no_env, 1000)
            .unwrap_err()
            .to_string()
            .contains("auth-profiles.json"));
    }
}
