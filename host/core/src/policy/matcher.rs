//! One allow/deny policy as a matcher (reference spec §10.4): groups expanded,
//! names normalised, `*` globs anchored; deny always wins; an empty allowlist
//! allows everything; `apply_patch` rides on an allowed `exec`.
//!
//! Must not: know which stage it belongs to or any agent's config.

use super::catalog::ToolCatalog;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    Glob(Vec<String>),
}

impl Pattern {
    fn compile(p: String) -> Pattern {
        if p.contains('*') {
            Pattern::Glob(p.split('*').map(str::to_string).collect())
        } else {
            Pattern::Exact(p)
        }
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Exact(p) => p == name,
            Pattern::Glob(parts) => glob_match(parts, name),
        }
    }
}

/// Anchored match of `a*b*c` given as `["a", "b", "c"]`.
fn glob_match(parts: &[String], name: &str) -> bool {
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return true;
    };
    if parts.len() == 1 {
        return first == name;
    }
    if !name.starts_with(first.as_str()) || name.len() < first.len() + last.len() || !name.ends_with(last.as_str()) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid.as_str()) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// Compiled allow/deny lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolMatcher {
    allow: Vec<Pattern>,
    deny: Vec<Pattern>,
}

impl ToolMatcher {
    pub fn new(allow: &[String], deny: &[String], catalog: &ToolCatalog) -> ToolMatcher {
        let compile = |list: &[String]| -> Vec<Pattern> {
            list.iter().flat_map(|e| catalog.expand(e)).map(Pattern::compile).collect()
        };
        ToolMatcher { allow: compile(allow), deny: compile(deny) }
    }

    pub fn denies(&self, name: &str) -> bool {
        self.deny.iter().any(|p| p.matches(name))
    }

    /// Whether the allowlist names `name` (an empty one names everything),
    /// without the rule that `apply_patch` rides on `exec`.
    pub fn allow_list_matches(&self, name: &str) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|p| p.matches(name))
    }

    pub fn allows(&self, name: &str) -> bool {
        if self.denies(name) {
            return false;
        }
        self.allow_list_matches(name) || (name == "apply_patch" && self.allow_list_matches("exec"))
    }

    /// True when the allowlist names no built-in tool at all (only plugin or
    /// unknown names): OpenClaw drops such a list so core tools stay available.
    pub fn allowlist_names_no_core_tool(&self, catalog: &ToolCatalog) -> bool {
        !self.allow.is_empty()
            && !catalog.names().filter(|n| catalog.is_core(n)).any(|n| self.allow.iter().any(|p| p.matches(n)))
    }

    pub fn without_allowlist(mut self) -> ToolMatcher {
        self.allow.clear();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(allow: &[&str], deny: &[&str]) -> ToolMatcher {
        let s = |l: &[&str]| l.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        ToolMatcher::new(&s(allow), &s(deny), &ToolCatalog::core())
    }

    #[test]
    fn deny_wins_and_empty_allow_allows() {
        let p = m(&[], &["exec"]);
        assert!(!p.allows("exec"));
        assert!(p.allows("read"));
        assert!(!m(&["exec"], &["bash"]).allows("exec"), "aliases normalise in deny lists too");
    }

    #[test]
    fn groups_globs_and_apply_patch() {
        let p = m(&["group:fs", "sessions_*"], &[]);
        assert!(p.allows("edit") && p.allows("sessions_send") && !p.allows("exec"));
        assert!(m(&["bash"], &[]).allows("apply_patch"), "apply_patch follows exec");
        assert!(!m(&["bash"], &["apply-patch"]).allows("apply_patch"));
        assert!(m(&["*"], &[]).allows("anything"));
        assert!(glob_match(&["a".into(), "c".into(), "e".into()], "abcde"));
        assert!(!glob_match(&["ab".into(), "ba".into()], "aba"));
    }
}
