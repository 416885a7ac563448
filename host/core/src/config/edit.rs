//! Edits to config *text* that keep the user's comments and layout.
//!
//! `chela agents add/delete/bind/unbind` change a few entries of a file the
//! user wrote by hand. Re-serialising the whole config would drop every
//! comment, so these functions splice the source instead, using the node
//! positions from [`super::source`]. Each returns new text; callers re-load
//! it before writing, so an edit can never produce a file that does not load.
//!
//! Must not: write files (the CLI does, after re-loading the new text) or re-serialise the whole
//! config.

use super::source::{self, Node, Value};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EditError {
    #[error("the config text does not parse: {0}")]
    Syntax(String),
    #[error("`{0}` is not {1}")]
    WrongType(String, &'static str),
    #[error("`{path}` has no element {index}")]
    NoSuchElement { path: String, index: usize },
    #[error("`{0}` is read from an included file (`$include`): edit that file instead")]
    Included(String),
}

fn parse(text: &str) -> Result<Node, EditError> {
    source::parse(text).map(|p| p.root).map_err(|e| EditError::Syntax(e.to_string()))
}

/// Leading whitespace of the line that contains `offset`.
fn indent_at(text: &str, offset: usize) -> String {
    let line_start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    text[line_start..].chars().take_while(|c| *c == ' ' || *c == '\t').collect()
}

fn splice(text: &str, start: usize, end: usize, with: &str) -> String {
    let mut out = String::with_capacity(text.len() + with.len());
    out.push_str(&text[..start]);
    out.push_str(with);
    out.push_str(&text[end..]);
    out
}

/// Re-indents a multi-line snippet to sit at `indent`.
fn indented(snippet: &str, indent: &str) -> String {
    snippet
        .lines()
        .enumerate()
        .map(|(i, l)| if i == 0 { l.to_string() } else { format!("{indent}{l}") })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Adds `key: value` to the object `obj` (value is JSON5 text).
fn insert_member(text: &str, obj: &Node, key: &str, value: &str) -> Result<String, EditError> {
    let Value::Object(members) = &obj.value else { return Err(EditError::WrongType(key.into(), "an object")) };
    let key_text = if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') && !key.is_empty() {
        key.to_string()
    } else {
        serde_json::to_string(key).unwrap_or_default()
    };
    match members.last() {
        Some(last) => {
            let indent = indent_at(text, last.key_span.offset);
            let member = format!("\n{indent}{key_text}: {}", indented(value, &indent));
            // After the last member's comma and its line comment, so a comment stays with its member.
            let after = &text[last.value.end..];
            let gap = after.len() - after.trim_start_matches([' ', '\t']).len();
            let comma = after[gap..].starts_with(',');
            let past_comma = last.value.end + gap + usize::from(comma);
            let rest = &text[past_comma..];
            let spaces = rest.len() - rest.trim_start_matches([' ', '\t']).len();
            if !rest[spaces..].starts_with("//") {
                let with = if comma { member } else { format!(",{member}") };
                return Ok(splice(text, past_comma, past_comma, &with));
            }
            let line_end = past_comma + rest.find('\n').unwrap_or(rest.len());
            let text = splice(text, line_end, line_end, &member);
            Ok(if comma { text } else { splice(&text, last.value.end, last.value.end, ",") })
        }
        None => {
            let outer = indent_at(text, obj.span.offset);
            let indent = format!("{outer}  ");
            let with = format!("\n{indent}{key_text}: {}\n{outer}", indented(value, &indent));
            Ok(splice(text, obj.span.offset + 1, obj.end - 1, &with))
        }
    }
}

/// Appends `element` (JSON5 text) to the array at `path` (object keys),
/// creating the missing objects and the array on the way.
pub fn append_to_array(text: &str, path: &[&str], element: &str) -> Result<String, EditError> {
    let root = parse(text)?;
    refuse_included(&root, path)?;
    let mut node = &root;
    for (depth, key) in path.iter().enumerate() {
        match node.get(key) {
            Some(child) => node = child,
            None => {
                // Build the rest of the path as nested text and insert it here.
                let mut value = format!("[\n  {}\n]", indented(element, "  "));
                for k in path[depth + 1..].iter().rev() {
                    value = format!("{{\n  {k}: {}\n}}", indented(&value, "  "));
                }
                return insert_member(text, node, key, &value);
            }
        }
    }
    let Value::Array(items) = &node.value else { return Err(EditError::WrongType(path.join("."), "an array")) };
    match items.last() {
        Some(last) => {
            let indent = indent_at(text, last.span.offset);
            Ok(splice(text, last.end, last.end, &format!(",\n{indent}{}", indented(element, &indent))))
        }
        None => {
            let outer = indent_at(text, node.span.offset);
            let indent = format!("{outer}  ");
            Ok(splice(
                text,
                node.span.offset + 1,
                node.end - 1,
                &format!("\n{indent}{}\n{outer}", indented(element, &indent)),
            ))
        }
    }
}

fn array_at<'a>(root: &'a Node, path: &[&str]) -> Option<&'a Node> {
    let mut node = root;
    for key in path {
        node = node.get(key)?;
    }
    matches!(node.value, Value::Array(_)).then_some(node)
}

/// Removes the elements at `indexes` of the array at `path` (separators too).
pub fn remove_array_elements(text: &str, path: &[&str], indexes: &[usize]) -> Result<String, EditError> {
    let mut sorted = indexes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut text = text.to_string();
    for &index in sorted.iter().rev() {
        let root = parse(&text)?;
        refuse_included(&root, path)?;
        let not_array = || EditError::WrongType(path.join("."), "an array");
        let node = array_at(&root, path).ok_or_else(not_array)?;
        let Value::Array(items) = &node.value else { return Err(not_array()) };
        let Some(item) = items.get(index) else {
            return Err(EditError::NoSuchElement { path: path.join("."), index });
        };
        text = if items.len() == 1 {
            splice(&text, node.span.offset, node.end, "[]")
        } else if let Some(next) = items.get(index + 1) {
            splice(&text, item.span.offset, next.span.offset, "")
        } else {
            splice(&text, items[index - 1].end, item.end, "")
        };
    }
    Ok(text)
}

/// Sets `key` of the object at `path` (an array index may appear as a number
/// segment) to `value`, replacing an existing value or adding the member.
pub fn set_member(text: &str, path: &[&str], key: &str, value: &str) -> Result<String, EditError> {
    let root = parse(text)?;
    let node = node_at(&root, path)?;
    match node.get(key) {
        Some(existing) => Ok(splice(text, existing.span.offset, existing.end, value)),
        None => insert_member(text, node, key, value),
    }
}

/// The node at `path` (object keys; an array index may appear as a number segment).
fn node_at<'a>(root: &'a Node, path: &[&str]) -> Result<&'a Node, EditError> {
    refuse_included(root, path)?;
    let mut node = root;
    for seg in path {
        node = match (&node.value, seg.parse::<usize>()) {
            (Value::Array(items), Ok(i)) => {
                items.get(i).ok_or(EditError::NoSuchElement { path: path.join("."), index: i })?
            }
            _ => node.get(seg).ok_or_else(|| EditError::WrongType(path.join("."), "present"))?,
        };
    }
    Ok(node)
}

/// What an `$include` brings in is not in this text: an edit at or below an
/// object with `$include` would override or shadow it, so it is refused (as
/// OpenClaw refuses such writes). Walks `path` as far as the text has it.
fn refuse_included(root: &Node, path: &[&str]) -> Result<(), EditError> {
    let mut node = root;
    for depth in 0..=path.len() {
        if node.member(crate::config::include::INCLUDE_KEY).is_some() {
            return Err(EditError::Included(if depth == 0 { "the config".into() } else { path[..depth].join(".") }));
        }
        let Some(seg) = path.get(depth) else { break };
        let next = match (&node.value, seg.parse::<usize>()) {
            (Value::Array(items), Ok(i)) => items.get(i),
            _ => node.get(seg),
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    Ok(())
}

/// Where a key written at `start` ends: past its closing quote, or past its identifier.
fn key_end(text: &str, start: usize) -> usize {
    let rest = &text[start..];
    match rest.chars().next() {
        Some(q @ ('"' | '\'')) => {
            let mut escaped = false;
            for (i, c) in rest.char_indices().skip(1) {
                match c {
                    '\\' if !escaped => escaped = true,
                    c if c == q && !escaped => return start + i + 1,
                    _ => escaped = false,
                }
            }
            text.len()
        }
        _ => start + rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$')).unwrap_or(rest.len()),
    }
}

/// Renames the member `old` of the object at `path` to `new`, value, comments and layout kept.
pub fn rename_member(text: &str, path: &[&str], old: &str, new: &str) -> Result<String, EditError> {
    let root = parse(text)?;
    let member = node_at(&root, path)?.member(old).ok_or_else(|| EditError::WrongType(old.into(), "present"))?;
    let start = member.key_span.offset;
    Ok(splice(text, start, key_end(text, start), new))
}

/// Removes the member `key` of the object at `path` (with its comma, and its
/// line when nothing else is on it); comments elsewhere are kept.
pub fn remove_member(text: &str, path: &[&str], key: &str) -> Result<String, EditError> {
    let root = parse(text)?;
    let member = node_at(&root, path)?.member(key).ok_or_else(|| EditError::WrongType(key.into(), "present"))?;
    let mut start = member.key_span.offset;
    let mut end = member.value.end;
    let after = &text[end..];
    let gap = after.len() - after.trim_start_matches([' ', '\t']).len();
    if after[gap..].starts_with(',') {
        end += gap + 1;
    }
    // Alone on its line(s): take the line, indentation and newline with it.
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let rest = &text[end..];
    let trailing = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    if text[line_start..start].trim().is_empty() && rest[trailing..].starts_with('\n') {
        start = line_start;
        end += trailing + 1;
    }
    Ok(splice(text, start, end, ""))
}

#[cfg(test)]
mod tests {

    #[test]
    fn edits_under_an_include_are_refused() {
        let text = r#"{ agents: { $include: "./agents.json5" }, gateway: { port: 1 } }"#;
        let e = append_to_array(text, &["agents", "list"], "{ id: \"x\" }").unwrap_err();
        assert!(matches!(&e, EditError::Included(p) if p == "agents"), "{e}");
        assert!(matches!(set_member(text, &["agents"], "defaults", "{}"), Err(EditError::Included(_))));
        assert!(remove_member(text, &[], "agents").is_ok(), "removing the whole include is an edit of this file");
        assert!(set_member(text, &["gateway"], "port", "2").is_ok(), "other sections stay editable");
        let whole = r#"{ $include: "base.json5", gateway: {} }"#;
        assert!(
            matches!(set_member(whole, &["gateway"], "port", "2"), Err(EditError::Included(p)) if p == "the config")
        );
    }

    use super::*;

    fn loads(text: &str) -> serde_json::Value {
        source::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}")).root.to_json()
    }

    #[test]
    fn append_keeps_comments_and_creates_paths() {
        let text = "{\n  // my agents\n  agents: {\n    list: [\n      {id: 'a'}, // first\n    ],\n  },\n}\n";
        let out = append_to_array(text, &["agents", "list"], "{ id: \"b\" }").unwrap();
        assert!(out.contains("// my agents") && out.contains("// first"), "{out}");
        assert_eq!(loads(&out)["agents"]["list"][1]["id"], "b");

        let out = append_to_array(&out, &["bindings"], "{ agentId: \"b\", match: { channel: \"slack\" } }").unwrap();
        assert_eq!(loads(&out)["bindings"][0]["match"]["channel"], "slack");

        let out = append_to_array("{}", &["agents", "list"], "{ id: \"x\" }").unwrap();
        assert_eq!(loads(&out)["agents"]["list"][0]["id"], "x");
        let out = append_to_array("{agents: {list: []}}", &["agents", "list"], "{ id: \"x\" }").unwrap();
        assert_eq!(loads(&out)["agents"]["list"][0]["id"], "x");
    }

    #[test]
    fn remove_handles_first_middle_last_and_only() {
        let text = "{b: [1, 2, 3, 4,]}";
        assert_eq!(loads(&remove_array_elements(text, &["b"], &[0, 3]).unwrap())["b"], serde_json::json!([2, 3]));
        assert_eq!(loads(&remove_array_elements(text, &["b"], &[1, 2]).unwrap())["b"], serde_json::json!([1, 4]));
        assert_eq!(loads(&remove_array_elements("{b: [1]}", &["b"], &[0]).unwrap())["b"], serde_json::json!([]));
        assert!(remove_array_elements(text, &["b"], &[9]).is_err());
    }

    #[test]
    fn an_added_member_leaves_line_comments_with_their_members() {
        for text in ["{\n  a: 1, // one\n}\n", "{\n  a: 1 // one\n}\n", "{a: 1}"] {
            let out = set_member(text, &[], "b", "2").unwrap();
            assert_eq!(loads(&out), serde_json::json!({"a": 1, "b": 2}), "{out}");
            if text.contains("// one") {
                assert!(out.contains("a: 1, // one\n") || out.contains("a: 1, // one"), "{out}");
                assert!(out.lines().any(|l| l.trim() == "b: 2"), "{out}");
            }
        }
    }

    #[test]
    fn rename_and_remove_members_keep_comments() {
        let text = "{\n  agents: {\n    // who\n    list: [{ agentId: 'a' }, { \"agentId\": 'b', x: 1 }], // the team\n    bindings: [1], // old\n  },\n}\n";
        let out = rename_member(text, &["agents", "list", "0"], "agentId", "id").unwrap();
        let out = rename_member(&out, &["agents", "list", "1"], "agentId", "id").unwrap();
        assert_eq!(loads(&out)["agents"]["list"], serde_json::json!([{"id": "a"}, {"id": "b", "x": 1}]));
        let out = remove_member(&out, &["agents"], "bindings").unwrap();
        assert!(out.contains("// who") && out.contains("// the team") && !out.contains("bindings"), "{out}");
        assert_eq!(loads(&out)["agents"].as_object().unwrap().len(), 1);
        let inline = remove_member("{a: 1, b: 2}", &[], "a").unwrap();
        assert_eq!(loads(&inline), serde_json::json!({"b": 2}));
        let last = remove_member("{a: 1, b: 2}", &[], "b").unwrap();
        assert_eq!(loads(&last), serde_json::json!({"a": 1}));
    }

    #[test]
    fn set_member_replaces_or_adds() {
        let text = "{bindings: [{agentId: 'a', match: {channel: 'tg'}}]}";
        let out = set_member(text, &["bindings", "0", "match"], "accountId", "\"ops\"").unwrap();
        assert_eq!(loads(&out)["bindings"][0]["match"]["accountId"], "ops");
        let out = set_member(&out, &["bindings", "0", "match"], "accountId", "\"x\"").unwrap();
        assert_eq!(loads(&out)["bindings"][0]["match"]["accountId"], "x");
    }
}
