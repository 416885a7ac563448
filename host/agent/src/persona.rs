//! The system prompt: who the agent is, read from its workspace on every run
//! (an edit to SOUL.md applies to the next message), with the per-file and
//! total budgets of OpenClaw (reference §9). Every read goes through
//! `workspace_read` (beneath the workspace, regular files, size-capped).
//!
//! Must not: read outside the agent's workspace and the shared skills dir, or follow a link out of
//! them.

use std::path::{Path, PathBuf};

use crate::workspace_read::{ReadError, Workspace};

/// The most bytes read of one bootstrap or skill file (its char budget is applied after).
const MAX_FILE_BYTES: usize = 1 << 20;

/// Bootstrap files in load order.
pub const BOOTSTRAP_FILES: [&str; 8] =
    ["AGENTS.md", "SOUL.md", "TOOLS.md", "IDENTITY.md", "USER.md", "HEARTBEAT.md", "BOOTSTRAP.md", "MEMORY.md"];

/// What sub-agent and cron sessions get.
const MINIMAL_FILES: [&str; 5] = ["AGENTS.md", "TOOLS.md", "SOUL.md", "IDENTITY.md", "USER.md"];

/// Character budgets (`agents.defaults.bootstrapMaxChars` / `bootstrapTotalMaxChars`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub per_file: usize,
    pub total: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { per_file: 20_000, total: 150_000 }
    }
}

/// The smallest budget a truncated file keeps.
const MIN_KEEP: usize = 64;

/// Who the agent is, from config.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub agent_id: String,
    pub name: String,
    pub emoji: Option<String>,
}

/// One skill the prompt lists (`skills/<name>/SKILL.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skill {
    pub name: String,
    pub description: String,
    pub path: PathBuf,
}

/// Everything the system prompt is made from.
pub struct PromptInput<'a> {
    pub identity: &'a Identity,
    pub workspace: &'a Path,
    /// `<stateDir>/skills`, shared by all agents.
    pub shared_skills: &'a Path,
    /// `agents.list[].skills`: when set, only these.
    pub skill_filter: Option<&'a [String]>,
    pub tool_names: &'a [String],
    pub budget: Budget,
    /// Sub-agent and cron sessions get the minimal file set.
    pub minimal: bool,
    /// A scheduled run with `lightContext`: no workspace files at all.
    pub light: bool,
    pub now: &'a str,
}

pub fn system_prompt(input: &PromptInput<'_>) -> String {
    let id = input.identity;
    let mut out = String::new();
    let emoji = id.emoji.as_deref().map(|e| format!(" {e}")).unwrap_or_default();
    out.push_str(&format!(
        "You are {}{emoji}, the agent `{}` of a chela gateway. Answer as this persona.\n",
        id.name, id.agent_id
    ));
    out.push_str(&format!("\n# Workspace\nYour workspace is {} (the tools' /workspace).\n", input.workspace.display()));
    out.push_str("\n# Tooling\n");
    if input.tool_names.is_empty() {
        out.push_str("No tools are available in this session.\n");
    } else {
        out.push_str(&format!("Tools you may call: {}.\n", input.tool_names.join(", ")));
    }
    let skills = skills(input.workspace, input.shared_skills, input.skill_filter);
    if !skills.is_empty() {
        out.push_str("\n# Skills\nRead a skill's file before using it.\n");
        for s in &skills {
            out.push_str(&format!("- {}: {} ({})\n", s.name, s.description, s.path.display()));
        }
    }
    out.push_str("\n# Workspace Files (injected)\n");
    if input.light {
        out.push_str("[light context: the workspace files are not injected for this scheduled run]\n");
    } else {
        out.push_str(&workspace_files(input.workspace, input.budget, input.minimal));
    }
    out.push_str(&format!("\n# Current Date & Time\n{}\n", input.now));
    out
}

/// The injected files section: `## <FILE>` per file, budgets applied.
pub fn workspace_files(workspace: &Path, budget: Budget, minimal: bool) -> String {
    let names: &[&str] = if minimal { &MINIMAL_FILES } else { &BOOTSTRAP_FILES };
    let mut left = budget.total;
    let mut out = String::new();
    let ws = Workspace::open(workspace);
    for name in names {
        let mut rel = *name;
        let read = |rel: &str| match &ws {
            Ok(w) => w.read_text(rel, MAX_FILE_BYTES),
            Err(_) => Err(ReadError::Missing),
        };
        if *name == "MEMORY.md" && ws.as_ref().is_ok_and(|w| !w.exists("MEMORY.md") && w.exists("memory.md")) {
            rel = "memory.md";
        }
        let text = match read(rel) {
            Ok((t, _)) => strip_front_matter(&t).trim().to_string(),
            Err(ReadError::Missing) if *name == "BOOTSTRAP.md" => continue,
            Err(ReadError::Missing) => {
                out.push_str(&format!("## {name}\n[missing file: {name}]\n\n"));
                continue;
            }
            Err(why) => {
                tracing::warn!(workspace = %workspace.display(), file = rel, %why, "workspace file not read");
                out.push_str(&format!("## {name}\n[{why}]\n\n"));
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        let cap = budget.per_file.min(left);
        if cap < MIN_KEEP {
            out.push_str(&format!("## {name}\n[omitted: the workspace files' total budget is used up]\n\n"));
            continue;
        }
        let kept = truncate(&text, cap);
        left = left.saturating_sub(kept.chars().count());
        out.push_str(&format!("## {name}\n{kept}\n\n"));
    }
    out
}

/// Keeps about 70% from the head and 20% from the tail of a file longer than `cap` chars.
pub fn truncate(text: &str, cap: usize) -> String {
    let n = text.chars().count();
    if n <= cap {
        return text.to_string();
    }
    let head = cap * 7 / 10;
    let tail = cap * 2 / 10;
    let h: String = text.chars().take(head).collect();
    let t: String = text.chars().skip(n - tail).collect();
    format!("{h}\n[… {} chars truncated …]\n{t}", n - head - tail)
}

fn strip_front_matter(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("---\n") else { return text };
    match rest.find("\n---\n") {
        Some(i) => &rest[i + 5..],
        None => text,
    }
}

/// A `SKILL.md`'s `name:` and `description:` from its front matter.
fn skill_meta(text: &str) -> (Option<String>, Option<String>) {
    let Some(rest) = text.strip_prefix("---\n") else { return (None, None) };
    let front = rest.split("\n---").next().unwrap_or_default();
    let field = |k: &str| {
        front.lines().find_map(|l| l.strip_prefix(k)?.strip_prefix(':').map(|v| v.trim().trim_matches('"').to_string()))
    };
    (field("name"), field("description"))
}

/// Skills of the workspace, then shared ones not shadowed by a workspace skill.
pub fn skills(workspace: &Path, shared: &Path, filter: Option<&[String]>) -> Vec<Skill> {
    let mut out: Vec<Skill> = Vec::new();
    for root in [workspace.join("skills"), shared.to_path_buf()] {
        let Ok(dir) = Workspace::open(&root) else { continue };
        for sub in dir.subdirs(".") {
            let rel = format!("{sub}/SKILL.md");
            let Ok((text, _)) = dir.read_text(&rel, MAX_FILE_BYTES) else { continue };
            let file = root.join(&rel);
            let (name, description) = skill_meta(&text);
            let name = name.unwrap_or(sub);
            if out.iter().any(|s| s.name == name) || filter.is_some_and(|f| !f.contains(&name)) {
                continue;
            }
            out.push(Skill { name, description: description.unwrap_or_default(), path: file });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_in_order_with_missing_markers_and_budgets() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path();
        std::fs::write(w.join("SOUL.md"), "---\ntitle: x\n---\nWarm and brief.").unwrap();
        std::fs::write(w.join("AGENTS.md"), "Rules.").unwrap();
        std::fs::write(w.join("USER.md"), "").unwrap();
        std::fs::write(w.join("MEMORY.md"), "m".repeat(1000)).unwrap();
        let s = workspace_files(w, Budget { per_file: 200, total: 100_000 }, false);
        let agents = s.find("## AGENTS.md\nRules.").unwrap();
        let soul = s.find("## SOUL.md\nWarm and brief.").unwrap();
        assert!(agents < soul && !s.contains("title: x"));
        assert!(s.contains("[missing file: TOOLS.md]") && !s.contains("## USER.md") && !s.contains("BOOTSTRAP"));
        assert!(s.contains("[… 820 chars truncated …]"));
        let minimal = workspace_files(w, Budget::default(), true);
        assert!(!minimal.contains("MEMORY.md") && minimal.contains("## SOUL.md"));
        let tight = workspace_files(w, Budget { per_file: 20_000, total: 68 }, false);
        assert!(tight.contains("## SOUL.md\n[omitted"), "{tight}");
    }

    #[test]
    fn truncation_keeps_head_and_tail_on_char_boundaries() {
        let text = "é".repeat(50) + &"z".repeat(50);
        let t = truncate(&text, 10);
        assert!(t.starts_with("ééééééé\n[… 91 chars truncated …]\nzz"), "{t}");
    }

    #[test]
    fn workspace_skills_shadow_shared_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (w, shared) = (dir.path().join("w"), dir.path().join("shared"));
        for (root, name, desc) in
            [(&w.join("skills"), "deploy", "ours"), (&shared, "deploy", "theirs"), (&shared, "lint", "l")]
        {
            std::fs::create_dir_all(root.join(name)).unwrap();
            std::fs::write(root.join(name).join("SKILL.md"), format!("---\nname: {name}\ndescription: {desc}\n---\n"))
                .unwrap();
        }
        let s = skills(&w, &shared, None);
        assert_eq!(
            s.iter().map(|s| (s.name.as_str(), s.description.as_str())).collect::<Vec<_>>(),
            [("deploy", "ours"), ("lint", "l")]
        );
        assert_eq!(skills(&w, &shared, Some(&["lint".to_string()])).len(), 1);
    }
}
