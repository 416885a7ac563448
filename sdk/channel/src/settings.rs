//! Account settings as the host hands them over (JSON, credentials already
//! taken out), checked the same way by every adapter.
//!
//! Must not: read secrets (they are not in the settings) or accept an unknown setting silently.

use serde_json::Value;

/// Parses `settings` and refuses a key outside `known`, naming the known
/// ones (`secrets`: the credential settings, which the host keeps).
pub fn parse_settings(settings: &str, known: &[&str], secrets: &[&str]) -> Result<Value, String> {
    let s: Value = serde_json::from_str(settings).map_err(|e| format!("settings are not JSON: {e}"))?;
    if !s.is_object() {
        return Err("settings must be an object".into());
    }
    if let Some(unknown) = s.as_object().into_iter().flatten().map(|(k, _)| k).find(|k| !known.contains(&k.as_str())) {
        let all: Vec<&str> = secrets.iter().chain(known).copied().collect();
        return Err(format!("unknown setting `{unknown}` (known: {})", all.join(", ")));
    }
    Ok(s)
}

/// The http(s) URL in setting `key` (else `default`), without a trailing `/`.
pub fn base_url(s: &Value, key: &str, default: &str) -> Result<String, String> {
    let url = s[key].as_str().unwrap_or(default).trim_end_matches('/').to_string();
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url)
    } else {
        Err(format!("`{key}` must be an http(s) URL, not `{url}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_bad_urls_are_named() {
        let err = parse_settings(r#"{"apiRoot": "x", "aipRoot": "y"}"#, &["apiRoot"], &["botToken"]).unwrap_err();
        assert_eq!(err, "unknown setting `aipRoot` (known: botToken, apiRoot)");
        assert!(parse_settings("[]", &[], &[]).is_err());
        let s = parse_settings(r#"{"apiRoot": "http://127.0.0.1:9/"}"#, &["apiRoot"], &[]).unwrap();
        assert_eq!(base_url(&s, "apiRoot", "https://d").unwrap(), "http://127.0.0.1:9");
        assert_eq!(base_url(&s, "other", "https://d").unwrap(), "https://d");
        let bad = parse_settings(r#"{"apiRoot": "ftp://x"}"#, &["apiRoot"], &[]).unwrap();
        assert!(base_url(&bad, "apiRoot", "https://d").unwrap_err().contains("`apiRoot`"));
    }
}
