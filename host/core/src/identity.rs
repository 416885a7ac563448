//! An agent's identity as its workspace's `IDENTITY.md` states it, read the
//! way OpenClaw 2026.9.6 reads it (`src/agents/identity-file.ts`): `- Label:
//! value` lines, labels case-insensitive, markdown emphasis stripped, the
//! template's placeholder text ignored; `Theme` wins over `Creature` over
//! `Vibe` for the theme. What `chela agents set-identity` copies into
//! `agents.*.identity`.
//!
//! Must not: read files (the caller hands it the text) or decide where the
//! identity is written.

use crate::config::schema::Identity;

/// The template's unfilled placeholders (compared after normalising).
const PLACEHOLDERS: [&str; 6] = [
    "not set yet",
    "pick something you like",
    "ai? robot? familiar? ghost in the machine? something weirder?",
    "how do you come across? sharp? warm? chaotic? calm?",
    "your signature - pick one that feels right",
    "workspace-relative path, http(s) url, or data uri",
];

fn trim_emphasis(s: &str) -> &str {
    s.trim_matches(|c: char| matches!(c, '*' | '_' | '`') || c.is_whitespace())
}

fn is_placeholder(value: &str) -> bool {
    let mut v = trim_emphasis(value).trim();
    if let Some(inner) = v.strip_prefix('(').and_then(|i| i.strip_suffix(')')) {
        v = inner.trim();
    }
    let v = v.replace(['\u{2013}', '\u{2014}'], "-").split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    PLACEHOLDERS.contains(&v.as_str())
}

/// The identity `IDENTITY.md` states; `None` when it states nothing.
pub fn parse_identity_markdown(text: &str) -> Option<Identity> {
    let (mut name, mut emoji, mut theme, mut creature, mut vibe, mut avatar) =
        (None, None, None, None, None, None::<String>);
    for line in text.lines() {
        let trimmed = line.trim();
        let cleaned = trimmed.strip_prefix('-').map(str::trim_start).unwrap_or(trimmed);
        let Some((label, value)) = cleaned.split_once(':') else { continue };
        let label = label.replace(['*', '_', '`'], "").trim().to_lowercase();
        let value = trim_emphasis(value);
        if value.is_empty() || is_placeholder(value) {
            continue;
        }
        let slot = match label.as_str() {
            "name" => &mut name,
            "emoji" => &mut emoji,
            "theme" => &mut theme,
            "creature" => &mut creature,
            "vibe" => &mut vibe,
            "avatar" => &mut avatar,
            _ => continue,
        };
        *slot = Some(value.to_string());
    }
    let theme = theme.or(creature).or(vibe);
    if name.is_none() && emoji.is_none() && theme.is_none() && avatar.is_none() {
        return None;
    }
    Some(Identity { name, theme, emoji, avatar })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_unfilled_states_nothing() {
        let template = "# IDENTITY.md - Who Am I?\n\n- **Name:**\n  _(pick something you like)_\n- **Creature:**\n  \
                        _(AI? robot? familiar? ghost in the machine? something weirder?)_\n- **Emoji:**\n";
        assert!(parse_identity_markdown(template).is_none());
        assert!(parse_identity_markdown("- Name: (pick something you like)").is_none());
    }

    #[test]
    fn filled_lines_are_read_with_emphasis_stripped_and_theme_preferred() {
        let text =
            "- **Name:** Ops Bot\n- Creature: a lobster\n- vibe: calm\n- **Emoji:** 🦞\n- Avatar: `avatars/ops.png`";
        let id = parse_identity_markdown(text).unwrap();
        assert_eq!(id.name.as_deref(), Some("Ops Bot"));
        assert_eq!(id.theme.as_deref(), Some("a lobster"), "creature beats vibe");
        assert_eq!(id.emoji.as_deref(), Some("🦞"));
        assert_eq!(id.avatar.as_deref(), Some("avatars/ops.png"));
        let themed = parse_identity_markdown("- Vibe: calm\n- Theme: space lobster").unwrap();
        assert_eq!(themed.theme.as_deref(), Some("space lobster"), "theme beats vibe");
    }
}
