//! `$include`: a config split across files, resolved as OpenClaw 2026.9.6
//! resolves it (`docs/gateway/config-secrets-env.md`, its `includes.ts`):
//! an object whose `$include` names one file is replaced by that file's
//! value; a list of files is deep-merged in order; sibling keys are merged
//! over what was included. Deep merge: objects member by member, arrays
//! concatenated, anything else replaced. Includes nest (paths relative to the
//! including file) up to 10 levels, may appear inside arrays, and must stay
//! inside the top-level config's directory, symlinks included; each file is
//! at most 2 MiB. Every position keeps its file (`Span::source`), so a
//! problem in an included file is reported in that file.
//!
//! Must not: read a file outside the config's directory, follow a cycle, or
//! decide what the merged config means (loading and validation do).

use std::path::{Component, Path, PathBuf};

use super::diagnostic::Diagnostic;
use super::source::{self, Member, Node, Value};

pub const INCLUDE_KEY: &str = "$include";
pub const MAX_INCLUDE_DEPTH: usize = 10;
pub const MAX_INCLUDE_BYTES: u64 = 2 * 1024 * 1024;

/// The files of one config: index 0 is the config file, then each included
/// file in the order it was first read (`Span::source` indexes this).
#[derive(Debug, Clone, Default)]
pub struct Files {
    pub paths: Vec<PathBuf>,
}

/// Whether `node` (anywhere inside) has an `$include`.
pub fn has_includes(node: &Node) -> bool {
    match &node.value {
        Value::Object(members) => members.iter().any(|m| m.key == INCLUDE_KEY || has_includes(&m.value)),
        Value::Array(items) => items.iter().any(has_includes),
        _ => false,
    }
}

/// `root` (parsed from `file`) with every `$include` replaced by what it
/// names; `files` gains each file read. An error is a diagnostic at the
/// `$include` that failed.
pub fn resolve(root: Node, file: &Path, files: &mut Files) -> Result<Node, Diagnostic> {
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let boundary =
        Boundary { real: std::fs::canonicalize(&dir).unwrap_or_else(|_| lexical(&dir)), lexical: lexical(&dir) };
    if files.paths.is_empty() {
        files.paths.push(file.to_path_buf());
    }
    let mut r = Resolver { boundary, files, chain: vec![lexical(file)] };
    r.process(root, file, "")
}

struct Boundary {
    lexical: PathBuf,
    real: PathBuf,
}

struct Resolver<'a> {
    boundary: Boundary,
    files: &'a mut Files,
    /// The files being included, outermost first (for cycles and depth).
    chain: Vec<PathBuf>,
}

/// `a/./b/../c` → `a/c`, without touching the file system.
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl Resolver<'_> {
    fn process(&mut self, node: Node, base: &Path, path: &str) -> Result<Node, Diagnostic> {
        let Node { value, span, end } = node;
        let value = match value {
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, n)| self.process(n, base, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(members) if members.iter().any(|m| m.key == INCLUDE_KEY) => {
                return self.include(members, span, end, base, path);
            }
            Value::Object(members) => Value::Object(
                members
                    .into_iter()
                    .map(|m| {
                        let at = join(path, &m.key);
                        Ok(Member { value: self.process(m.value, base, &at)?, ..m })
                    })
                    .collect::<Result<_, Diagnostic>>()?,
            ),
            v => v,
        };
        Ok(Node { value, span, end })
    }

    fn include(
        &mut self,
        members: Vec<Member>,
        span: source::Span,
        end: usize,
        base: &Path,
        path: &str,
    ) -> Result<Node, Diagnostic> {
        let (includes, siblings): (Vec<Member>, Vec<Member>) = members.into_iter().partition(|m| m.key == INCLUDE_KEY);
        // A repeated `$include` key: the last one wins, as for any key.
        let Some(directive) = includes.into_iter().last() else { return Ok(Node { value: Value::Null, span, end }) };
        let at = join(path, INCLUDE_KEY);
        let fail = |message: String| Diagnostic::error(at.clone(), directive.key_span, message);
        let names: Vec<(String, source::Span)> = match &directive.value.value {
            Value::String(s) => vec![(s.clone(), directive.value.span)],
            Value::Array(items) => items
                .iter()
                .map(|n| match &n.value {
                    Value::String(s) => Ok((s.clone(), n.span)),
                    _ => Err(Diagnostic::error(
                        at.clone(),
                        n.span,
                        format!("an `$include` list holds file names; this is a {}", n.type_name()),
                    )),
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(fail(format!(
                    "`$include` is a file name or a list of them, not a {}",
                    directive.value.type_name()
                )))
            }
        };
        let single = matches!(directive.value.value, Value::String(_));
        let mut included: Option<Node> = None;
        for (name, name_span) in names {
            let node = self.load(&name, name_span, base, &at, path)?;
            included = Some(match included {
                None if single => node,
                None => deep_merge(Node { value: Value::Object(Vec::new()), span, end }, node),
                Some(acc) => deep_merge(acc, node),
            });
        }
        let included = included.unwrap_or(Node { value: Value::Object(Vec::new()), span, end });
        if siblings.is_empty() {
            return Ok(included);
        }
        if !matches!(included.value, Value::Object(_)) {
            return Err(fail(format!(
                "keys beside `$include` need the included value to be an object; it is a {}",
                included.type_name()
            )));
        }
        let rest = self.process(Node { value: Value::Object(siblings), span, end }, base, path)?;
        Ok(deep_merge(included, rest))
    }

    /// Reads, parses and resolves one included file.
    fn load(
        &mut self,
        name: &str,
        at_span: source::Span,
        base: &Path,
        at: &str,
        path: &str,
    ) -> Result<Node, Diagnostic> {
        let fail = |message: String| Diagnostic::error(at.to_string(), at_span, message);
        if name.contains('\0') || name.len() >= 4096 {
            return Err(fail("an include path has no NUL bytes and fewer than 4096 characters".into()));
        }
        let dir = base.parent().unwrap_or(Path::new(""));
        let target = lexical(&dir.join(name));
        if !target.starts_with(&self.boundary.lexical) {
            return Err(fail(format!(
                "`{name}` is outside the config's directory ({}); includes stay inside it",
                self.boundary.lexical.display()
            )));
        }
        if let Ok(real) = std::fs::canonicalize(&target) {
            if !real.starts_with(&self.boundary.real) {
                return Err(fail(format!("`{name}` leads outside the config's directory through a symlink")));
            }
        }
        if self.chain.contains(&target) {
            let cycle: Vec<String> = self.chain.iter().chain([&target]).map(|p| p.display().to_string()).collect();
            return Err(fail(format!("circular `$include`: {}", cycle.join(" → "))));
        }
        if self.chain.len() > MAX_INCLUDE_DEPTH {
            return Err(fail(format!("more than {MAX_INCLUDE_DEPTH} levels of `$include` at `{name}`")));
        }
        let text = match std::fs::metadata(&target) {
            Ok(m) if m.len() > MAX_INCLUDE_BYTES => {
                return Err(fail(format!("`{name}` is {} bytes; an included file is at most 2 MiB", m.len())))
            }
            Ok(_) => std::fs::read_to_string(&target),
            Err(e) => Err(e),
        }
        .map_err(|e| fail(format!("cannot read included file `{name}` ({}): {e}", target.display())))?;
        let index = match self.files.paths.iter().position(|p| *p == target) {
            Some(i) => i,
            None => {
                self.files.paths.push(target.clone());
                self.files.paths.len() - 1
            }
        } as u32;
        let parsed = source::parse_source(&text, index).map_err(|e| {
            let mut d = Diagnostic::error("", e.span, format!("invalid JSON5 in included file: {}", e.message));
            d.source = index;
            d
        })?;
        self.chain.push(target.clone());
        let resolved = self.process(parsed.root, &target, path);
        self.chain.pop();
        resolved
    }
}

/// OpenClaw's `deepMerge` (arrays concatenated): `source` over `target`.
fn deep_merge(target: Node, source: Node) -> Node {
    match (target.value, source.value) {
        (Value::Object(mut into), Value::Object(from)) => {
            for m in from {
                match into.iter().rposition(|t| t.key == m.key) {
                    Some(i) => {
                        let placeholder = Node { value: Value::Null, span: source::Span::default(), end: 0 };
                        let old = std::mem::replace(&mut into[i].value, placeholder);
                        into[i].value = deep_merge(old, m.value);
                        into[i].key_span = m.key_span;
                    }
                    None => into.push(m),
                }
            }
            Node { value: Value::Object(into), span: target.span, end: target.end }
        }
        (Value::Array(mut into), Value::Array(from)) => {
            into.extend(from);
            Node { value: Value::Array(into), span: target.span, end: target.end }
        }
        (_, value) => Node { value, span: source.span, end: source.end },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path, files: &[(&str, &str)]) -> (Node, Files) {
        for (name, text) in files {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let main = dir.join(files[0].0);
        let root = source::parse(files[0].1).unwrap().root;
        let mut f = Files::default();
        let node = resolve(root, &main, &mut f).unwrap_or_else(|d| panic!("{d}"));
        (node, f)
    }

    #[test]
    fn single_list_and_sibling_includes_merge_as_openclaw_does() {
        let dir = tempfile::tempdir().unwrap();
        let (node, files) = tree(
            dir.path(),
            &[
                (
                    "openclaw.json",
                    r#"{ agents: { $include: "./agents.json5" },
                         broadcast: { $include: ["./a.json5", "./b.json5"], strategy: "sequential" },
                         tools: { $include: "t.json5", allow: ["read"] } }"#,
                ),
                ("agents.json5", r#"{ list: [{ id: "work", default: true }, { $include: "deep/ops.json5" }] }"#),
                ("deep/ops.json5", r#"{ id: "ops", workspace: "/w" }"#),
                ("a.json5", r#"{ "-1001": ["work"], strategy: "parallel" }"#),
                ("b.json5", r#"{ "-1002": ["ops"] }"#),
                ("t.json5", r#"{ allow: ["exec"], deny: ["write"] }"#),
            ],
        );
        let json = node.to_json();
        assert_eq!(
            json,
            serde_json::json!({
                "agents": {"list": [{"id": "work", "default": true}, {"id": "ops", "workspace": "/w"}]},
                "broadcast": {"-1001": ["work"], "strategy": "sequential", "-1002": ["ops"]},
                "tools": {"allow": ["exec", "read"], "deny": ["write"]},
            })
        );
        assert_eq!(files.paths.len(), 6);
        let ops = node.get("agents").unwrap().get("list").unwrap();
        let Value::Array(items) = &ops.value else { panic!() };
        assert_eq!(files.paths[items[1].span.source as usize].file_name().unwrap(), "ops.json5");
    }

    #[test]
    fn escapes_cycles_and_bad_values_are_errors_at_the_include() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("cfg");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(dir.path().join("outside.json5"), "{}").unwrap();
        std::fs::write(d.join("loop-a.json5"), r#"{ $include: "loop-b.json5" }"#).unwrap();
        std::fs::write(d.join("loop-b.json5"), r#"{ $include: "loop-a.json5" }"#).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("outside.json5"), d.join("link.json5")).unwrap();
        let run = |text: &str| {
            let root = source::parse(text).unwrap().root;
            resolve(root, &d.join("main.json5"), &mut Files::default()).map(|n| n.to_json()).map_err(|e| e.message)
        };
        assert!(run(r#"{ a: { $include: "../outside.json5" } }"#)
            .unwrap_err()
            .contains("outside the config's directory"));
        #[cfg(unix)]
        assert!(run(r#"{ a: { $include: "link.json5" } }"#).unwrap_err().contains("symlink"));
        assert!(run(r#"{ a: { $include: "loop-a.json5" } }"#).unwrap_err().contains("circular"));
        assert!(run(r#"{ a: { $include: 5 } }"#).unwrap_err().contains("file name"));
        assert!(run(r#"{ a: { $include: "missing.json5" } }"#).unwrap_err().contains("cannot read"));
        std::fs::write(d.join("list.json5"), "[1]").unwrap();
        assert!(run(r#"{ a: { $include: "list.json5", b: 1 } }"#).unwrap_err().contains("object"));
        assert_eq!(run(r#"{ a: { $include: "list.json5" } }"#).unwrap(), serde_json::json!({"a": [1]}));
    }
}
