//! Normalisation of agent, account, channel, peer and main-key ids.
//!
//! These follow OpenClaw exactly (reference spec §1), including JavaScript's
//! notion of whitespace: `trim()` there strips U+FEFF and U+00A0, which
//! Rust's `str::trim` treats differently. Every other module calls these; no
//! id is compared or put in a key without going through here.
//!
//! Must not: allocate ids or know about any config section; it only normalises what it is given.

pub const DEFAULT_AGENT_ID: &str = "main";
pub const DEFAULT_MAIN_KEY: &str = "main";
pub const DEFAULT_ACCOUNT_ID: &str = "default";

/// Longest agent or account id kept (longer ones are truncated).
const MAX_ID_CHARS: usize = 64;

/// JavaScript's `String.prototype.trim` whitespace set.
pub fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}' | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}' | '\u{FEFF}'
    )
}

/// JavaScript's `trim()`.
pub fn js_trim(s: &str) -> &str {
    s.trim_matches(is_js_whitespace)
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
}

/// `^[a-z0-9][a-z0-9_-]{0,63}$`, case-insensitively.
fn is_canonical_id(t: &str) -> bool {
    let mut chars = t.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && t.len() <= MAX_ID_CHARS
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Lowercases, collapses runs of other characters to `-`, strips `-` at both
/// ends, truncates to 64 characters (which may leave a trailing `-`).
fn sanitize(t: &str) -> String {
    let lower = t.to_lowercase();
    let mut out = String::with_capacity(lower.len());
    let mut in_run = false;
    for c in lower.chars() {
        if is_id_char(c) {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    let stripped = out.trim_matches('-');
    stripped.chars().take(MAX_ID_CHARS).collect()
}

/// An id as written by a user, reduced to the canonical agent id (`"Bot Main"` → `bot-main`).
pub fn normalize_agent_id(value: Option<&str>) -> String {
    let t = js_trim(value.unwrap_or(""));
    if t.is_empty() {
        return DEFAULT_AGENT_ID.to_string();
    }
    if is_canonical_id(t) {
        return t.to_ascii_lowercase();
    }
    let s = sanitize(t);
    if s.is_empty() {
        DEFAULT_AGENT_ID.to_string()
    } else {
        s
    }
}

/// Whether `value` is already a valid agent id (no normalisation needed beyond case).
pub fn is_valid_agent_id(value: &str) -> bool {
    let t = js_trim(value);
    !t.is_empty() && is_canonical_id(t)
}

fn is_prototype_key(s: &str) -> bool {
    matches!(s, "__proto__" | "constructor" | "prototype")
}

/// The canonical account id, or `None` for blank, invalid or prototype-like input.
pub fn normalize_optional_account_id(value: Option<&str>) -> Option<String> {
    let t = js_trim(value.unwrap_or(""));
    if t.is_empty() || is_prototype_key(&t.to_lowercase()) {
        return None;
    }
    let s = if is_canonical_id(t) { t.to_ascii_lowercase() } else { sanitize(t) };
    if s.is_empty() || is_prototype_key(&s) {
        None
    } else {
        Some(s)
    }
}

/// The canonical account id; missing or invalid input is the `default` account.
pub fn normalize_account_id(value: Option<&str>) -> String {
    normalize_optional_account_id(value).unwrap_or_else(|| DEFAULT_ACCOUNT_ID.to_string())
}

/// `session.mainKey`: trimmed, lowercased, `main` when empty.
pub fn normalize_main_key(value: Option<&str>) -> String {
    let t = js_trim(value.unwrap_or(""));
    if t.is_empty() {
        DEFAULT_MAIN_KEY.to_string()
    } else {
        t.to_lowercase()
    }
}

/// Channel ids are only trimmed and lowercased (no alias table in routing).
pub fn normalize_channel(value: &str) -> String {
    js_trim(value).to_lowercase()
}

/// Peer, guild and team ids: trimmed; matching on them is case-sensitive.
pub fn normalize_binding_id(value: &str) -> String {
    js_trim(value).to_string()
}

/// The three chat kinds OpenClaw knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatType {
    Direct,
    Group,
    Channel,
}

impl ChatType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChatType::Direct => "direct",
            ChatType::Group => "group",
            ChatType::Channel => "channel",
        }
    }

    /// `group` and `channel` peers match each other in bindings.
    pub fn matches(self, other: ChatType) -> bool {
        self == other || (self != ChatType::Direct && other != ChatType::Direct)
    }
}

/// `dm`→direct, `supergroup`→group; anything unknown is `None`.
pub fn normalize_chat_type(raw: &str) -> Option<ChatType> {
    match js_trim(raw).to_lowercase().as_str() {
        "direct" | "dm" => Some(ChatType::Direct),
        "group" | "supergroup" => Some(ChatType::Group),
        "channel" => Some(ChatType::Channel),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_ids() {
        assert_eq!(normalize_agent_id(Some("Bot Main")), "bot-main");
        assert_eq!(normalize_agent_id(Some("../../../etc/passwd")), "etc-passwd");
        assert_eq!(normalize_agent_id(Some("")), "main");
        assert_eq!(normalize_agent_id(Some("\u{FEFF} Work\u{A0}")), "work");
        assert_eq!(normalize_agent_id(Some("Über")), "ber");
        assert!(!is_valid_agent_id(&"a".repeat(65)));
        assert_eq!(normalize_agent_id(Some(&"a".repeat(70))).len(), 64);
    }

    #[test]
    fn agent_id_normalisation_is_not_idempotent_like_openclaw() {
        // Truncation after stripping may leave a trailing `-`; a second pass strips it.
        let once = normalize_agent_id(Some(&format!("_{}-x", "a".repeat(62))));
        assert_eq!(once, format!("_{}-", "a".repeat(62)));
        assert_eq!(normalize_agent_id(Some(&once)), format!("_{}", "a".repeat(62)));
    }

    #[test]
    fn account_ids() {
        assert_eq!(normalize_account_id(Some(" Bot Main ")), "bot-main");
        assert_eq!(normalize_account_id(Some("__proto__")), "default");
        assert_eq!(normalize_account_id(Some("_prod")), "_prod");
        assert_eq!(normalize_optional_account_id(Some(" !!! ")), None);
    }

    #[test]
    fn chat_types() {
        assert_eq!(normalize_chat_type(" DM "), Some(ChatType::Direct));
        assert_eq!(normalize_chat_type("supergroup"), Some(ChatType::Group));
        assert_eq!(normalize_chat_type("thread"), None);
        assert!(ChatType::Group.matches(ChatType::Channel));
        assert!(!ChatType::Direct.matches(ChatType::Group));
    }
}
