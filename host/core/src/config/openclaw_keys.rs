//! OpenClaw's own config schema, for the keys chela's typed schema does not
//! have. A key OpenClaw 2026.9.6 defines loads with a warning that chela
//! ignores it (an error under `config validate --strict`), and its value is
//! still checked against OpenClaw's schema: a wrong type is an error whether
//! chela implements the key or not. A key neither knows stays an error.
//!
//! The schema is generated data: `openclaw_schema.json` is what
//! `openclaw config schema` prints for the pinned release, without its
//! annotations, with its regexes in Rust's dialect and without the `$ref`s
//! that do not resolve inside it (embedded plugin schemas: unchecked);
//! `cargo xtask openclaw-schema` regenerates it.
//!
//! Must not: overrule the typed schema (`schema.rs`): it is consulted only
//! for keys that schema does not know, and for the sections chela keeps as
//! opaque JSON.

use std::sync::LazyLock;

use serde_json::{json, Value as Json};

use super::de::Elsewhere;
use super::diagnostic::Diagnostic;
use super::source::{Member, Node, Value};

/// The OpenClaw release the schema comes from.
pub const OPENCLAW_VERSION: &str = "2026.9.6";

static SCHEMA: LazyLock<Json> =
    LazyLock::new(|| serde_json::from_str(include_str!("openclaw_schema.json")).unwrap_or(Json::Null));

#[derive(Debug, Clone, Copy, PartialEq)]
enum Segment<'a> {
    Key(&'a str),
    Index,
}

/// `agents.list[3].heartbeat` → key `agents`, key `list`, an index, key `heartbeat`.
fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while !rest.is_empty() {
            out.push(Segment::Index);
            rest = rest.split_once('[').map_or("", |(_, r)| r);
        }
    }
    out
}

/// A schema and the alternatives it allows (`anyOf`, `oneOf`, `allOf`), flattened.
fn alternatives<'a>(schema: &'a Json, out: &mut Vec<&'a Json>) {
    out.push(schema);
    for k in ["anyOf", "oneOf", "allOf"] {
        for alt in schema.get(k).and_then(Json::as_array).into_iter().flatten() {
            alternatives(alt, out);
        }
    }
}

/// What `schema` says about its member `key`, if it allows one.
fn member_schema<'a>(schema: &'a Json, key: &str) -> Option<&'a Json> {
    if let Some(s) = schema.get("properties").and_then(|p| p.get(key)) {
        return Some(s);
    }
    for (pattern, s) in schema.get("patternProperties").and_then(Json::as_object).into_iter().flatten() {
        if regex::Regex::new(pattern).is_ok_and(|r| r.is_match(key)) {
            return Some(s);
        }
    }
    match schema.get("additionalProperties") {
        Some(s @ Json::Object(_)) => Some(s),
        _ => None,
    }
}

/// The schemas OpenClaw allows at `path` (one per matching alternative).
/// The roster's list form (`agents.list[N]`, which OpenClaw 2026.9.6 keeps
/// only as a legacy shape) has the schema of an `agents.entries` entry.
fn schemas_at(path: &str) -> Vec<&'static Json> {
    let mut segs = segments(path);
    if segs.starts_with(&[Segment::Key("agents"), Segment::Key("list"), Segment::Index]) {
        segs.splice(1..3, [Segment::Key("entries"), Segment::Key("*")]);
    }
    let mut nodes = vec![&*SCHEMA];
    for segment in segs {
        let mut next = Vec::new();
        for node in nodes {
            let mut alts = Vec::new();
            alternatives(node, &mut alts);
            for alt in alts {
                let child = match segment {
                    Segment::Key(k) => member_schema(alt, k),
                    Segment::Index => alt.get("items").filter(|i| i.is_object()),
                };
                next.extend(child);
            }
        }
        if next.is_empty() {
            return next;
        }
        nodes = next;
    }
    nodes
}

/// OpenClaw's schema for the whole config (what `chela config schema` prints).
pub fn schema() -> &'static Json {
    &SCHEMA
}

/// Whether OpenClaw's schema allows a value at `path` (dots and `[i]`).
pub fn is_known_path(path: &str) -> bool {
    !schemas_at(path).is_empty()
}

/// The keys OpenClaw defines in the object at `path` (for "did you mean").
pub fn keys_at(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for s in schemas_at(path) {
        let mut alts = Vec::new();
        alternatives(s, &mut alts);
        for alt in alts {
            for k in alt.get("properties").and_then(Json::as_object).into_iter().flat_map(|p| p.keys()) {
                if !out.contains(k) {
                    out.push(k.clone());
                }
            }
        }
    }
    out
}

/// A key chela's typed schema does not have, at `path`: known to OpenClaw
/// (a warning that chela ignores it, plus any type errors in its value), or
/// unknown to both.
pub fn classify(path: &str, member: &Member) -> Elsewhere {
    let found = schemas_at(path);
    let schema = match found.as_slice() {
        [] => return Elsewhere::Unknown { openclaw_keys: keys_at(parent(path)) },
        [one] => (*one).clone(),
        many => json!({ "anyOf": many }),
    };
    let mut out = vec![ignored(path, member)];
    out.extend(value_errors(path, &member.value, &schema, false));
    Elsewhere::OpenClaw(out)
}

/// The warning for an OpenClaw setting chela does not implement, with what chela does instead.
fn ignored(path: &str, member: &Member) -> Diagnostic {
    let d = Diagnostic::warning(
        path,
        member.key_span,
        format!("`{}` is an OpenClaw {OPENCLAW_VERSION} setting chela does not implement; ignored", member.key),
    )
    .unimplemented();
    match super::instead::instead(path) {
        Some(what) => d.with_help(format!("instead: {what}")),
        None => d,
    }
}

/// Sections chela keeps as JSON but reads only in part: the members it
/// reads. Any other member OpenClaw defines there is ignored, with a warning.
const READ_IN_PART: &[(&str, &[&str])] = &[
    ("messages", &["groupChat", "queue", "ackReaction", "ackReactionScope", "responsePrefix", "statusReactions"]),
    ("env", &["vars"]),
];

fn unread_members(path: &str, node: &Node) -> Vec<Diagnostic> {
    let (Some((_, read)), Value::Object(members)) = (READ_IN_PART.iter().find(|(p, _)| *p == path), &node.value) else {
        return Vec::new();
    };
    members
        .iter()
        .filter(|m| !read.contains(&m.key.as_str()))
        .map(|m| {
            let at = format!("{path}.{}", m.key);
            ignored(&at, m)
        })
        .collect()
}

/// Wrong types in a value chela keeps as opaque JSON (`models`, `tools.exec`…),
/// and the members of a section chela reads in part that it does not read:
/// OpenClaw's schema for it, type errors only (chela reads these itself and
/// may allow more values, e.g. `tools.exec.host: "unconfined"`, or fewer keys).
pub fn check_opaque(path: &str, node: &Node) -> Vec<Diagnostic> {
    let mut out = unread_members(path, node);
    out.extend(match schemas_at(path).as_slice() {
        [] => Vec::new(),
        [one] => value_errors(path, node, one, true),
        many => value_errors(path, node, &json!({ "anyOf": many }), true),
    });
    out
}

fn parent(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    }
}

/// `node` checked against `schema`: one error per problem, at the exact
/// place in the file. `types_only` keeps type errors only.
fn value_errors(path: &str, node: &Node, schema: &Json, types_only: bool) -> Vec<Diagnostic> {
    use jsonschema::error::ValidationErrorKind as Kind;
    let Ok(validator) = jsonschema::draft7::new(schema) else {
        return Vec::new();
    };
    let value = node.to_json();
    let mut out = Vec::new();
    for e in validator.iter_errors(&value) {
        if types_only && !matches!(e.kind(), Kind::Type { .. }) {
            continue;
        }
        let mut at = node;
        let mut where_ = path.to_string();
        for seg in e.instance_path().iter() {
            match seg {
                jsonschema::paths::LocationSegment::Property(k) => {
                    where_ = super::de::join_key(&where_, &k);
                    if let Some(n) = at.get(&k) {
                        at = n;
                    }
                }
                jsonschema::paths::LocationSegment::Index(i) => {
                    where_ = format!("{where_}[{i}]");
                    if let Value::Array(items) = &at.value {
                        if let Some(n) = items.get(i) {
                            at = n;
                        }
                    }
                }
            }
        }
        out.push(Diagnostic::error(where_, at.span, format!("{e} (OpenClaw {OPENCLAW_VERSION}'s schema)")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_walk_objects_maps_and_arrays() {
        assert!(!schemas_at("agents.defaults.heartbeat").is_empty());
        assert!(!schemas_at("agents.list[4].heartbeat").is_empty());
        assert!(!schemas_at("channels.telegram.accounts.work.streaming").is_empty());
        assert!(!schemas_at("agents.entries.work.heartbeat").is_empty());
        assert!(schemas_at("agents.defaults.heartbeet").is_empty());
        assert!(keys_at("agents.defaults").iter().any(|k| k == "heartbeat"));
        // Every section of the schema compiles as draft 7 (tuple `items` included).
        for (name, section) in SCHEMA["properties"].as_object().expect("properties") {
            let compiled = jsonschema::draft7::new(section);
            assert!(compiled.is_ok(), "{name}: {:?}", compiled.err().map(|e| e.to_string()));
        }
    }
}
