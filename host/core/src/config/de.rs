//! A serde `Deserializer` over the spanned JSON5 tree that reports every
//! problem, not just the first.
//!
//! Why not plain `deny_unknown_fields`: serde stops at the first error. Here
//! `deserialize_struct` sees the struct's field list, so unknown keys are
//! recorded (with a "did you mean") and skipped, and a value that fails to
//! deserialize is recorded with its path and position and then dropped, so
//! the walk goes on. The partial value is thrown away whenever an error was
//! recorded; callers only see a config that deserialized cleanly.
//!
//! Must not: know any particular section of the schema; it only walks the tree serde asks for.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use super::diagnostic::{suggest, Diagnostic};
use super::source::{Member, Node, Number, Span, Value};

/// Collected diagnostics, shared by every nested deserializer of one run.
#[derive(Default)]
pub struct Sink {
    pub diagnostics: RefCell<Vec<Diagnostic>>,
    /// Asked about a key a struct does not have (path and member); without
    /// it such a key is an error.
    pub elsewhere: Option<fn(&str, &Member) -> Elsewhere>,
    /// Asked about a value the schema takes untyped (opaque JSON), once per
    /// outermost such value (path and node); its diagnostics are recorded.
    pub untyped: Option<fn(&str, &Node) -> Vec<Diagnostic>>,
    in_untyped: std::cell::Cell<bool>,
}

/// What [`Sink::elsewhere`] knows of a key the struct does not have.
pub enum Elsewhere {
    /// Defined elsewhere (OpenClaw's schema): these diagnostics instead of
    /// "unknown key".
    OpenClaw(Vec<Diagnostic>),
    /// Unknown there too; the keys it does know at that place, for "did you mean".
    Unknown { openclaw_keys: Vec<String> },
}

impl Sink {
    /// A sink that asks `elsewhere` about unknown keys and `untyped` about untyped values.
    pub fn consulting(elsewhere: fn(&str, &Member) -> Elsewhere, untyped: fn(&str, &Node) -> Vec<Diagnostic>) -> Sink {
        Sink { elsewhere: Some(elsewhere), untyped: Some(untyped), ..Sink::default() }
    }

    fn push(&self, d: Diagnostic) {
        self.diagnostics.borrow_mut().push(d);
    }

    fn error_count(&self) -> usize {
        self.diagnostics.borrow().iter().filter(|d| d.is_error()).count()
    }

    fn has_error_under(&self, path: &str) -> bool {
        self.diagnostics.borrow().iter().any(|d| {
            d.is_error()
                && (d.path == path
                    || d.path.strip_prefix(path).is_some_and(|r| r.starts_with('.') || r.starts_with('[')))
        })
    }
}

/// How [`DeError::Reported`] reads: a wrapper generic over the deserializer
/// (`lenient`) can tell it apart from an error not recorded yet only this way.
const REPORTED: &str = "(already reported)";

/// The error type the deserializer hands serde. `Reported` means "already in
/// the sink", so parents skip the value without reporting it twice.
#[derive(Debug)]
pub enum DeError {
    Reported,
    Message(String),
    MissingField(&'static str),
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeError::Reported => f.write_str(REPORTED),
            DeError::Message(m) => f.write_str(m),
            DeError::MissingField(name) => write!(f, "missing required field `{name}`"),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::Message(msg.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::MissingField(field)
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let list = expected.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ");
        let mut msg = format!("unknown value `{variant}`, expected one of {list}");
        if let Some(s) = suggest(variant, expected.iter().copied()) {
            msg.push_str(&format!(" (did you mean `{s}`?)"));
        }
        DeError::Message(msg)
    }
}

/// Deserializes `T` from `node`, recording problems in `sink`. `None` when any
/// error was recorded for this subtree.
pub fn from_node<'de, T: de::Deserialize<'de>>(node: &'de Node, path: &str, sink: &'de Sink) -> Option<T> {
    let before = sink.error_count();
    let de = NodeDeserializer { node, path: path.to_string(), sink };
    let result = T::deserialize(de).ok();
    if sink.error_count() > before {
        None
    } else {
        result
    }
}

/// `deserialize_with` adapter: a failed value whose problems are recorded
/// becomes `T::default()` so its siblings are still checked. An error a
/// type's own `Deserialize` raised (not recorded yet) goes up to the member
/// holding the value, which records it there (`Map::next_value_seed`): a
/// wrong value never vanishes silently.
pub fn lenient<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: de::Deserializer<'de>,
    T: de::Deserialize<'de> + Default,
{
    match T::deserialize(d) {
        Ok(v) => Ok(v),
        Err(e) if e.to_string() == REPORTED => Ok(T::default()),
        Err(e) => Err(e),
    }
}

/// `deserialize_with` adapter for lists whose elements are checked one by one.
pub fn lenient_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: de::Deserializer<'de>,
    T: de::Deserialize<'de>,
{
    struct Item<T>(Option<T>);
    impl<'de, T: de::Deserialize<'de>> de::Deserialize<'de> for Item<T> {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            Ok(Item(T::deserialize(d).ok()))
        }
    }
    let items: Vec<Item<T>> = de::Deserialize::deserialize(d)?;
    Ok(items.into_iter().filter_map(|i| i.0).collect())
}

fn report(sink: &Sink, e: &DeError, path: &str, span: Span) {
    match e {
        DeError::Reported => {}
        DeError::Message(m) => sink.push(Diagnostic::error(path, span, m.clone())),
        DeError::MissingField(name) => {
            let field_path = join_key(path, name);
            if !sink.has_error_under(&field_path) {
                sink.push(Diagnostic::error(path, span, format!("missing required field `{name}`")));
            }
        }
    }
}

pub fn join_key(path: &str, key: &str) -> String {
    let simple = !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '$');
    match (path.is_empty(), simple) {
        (true, true) => key.to_string(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{key:?}]"),
    }
}

struct NodeDeserializer<'a> {
    node: &'a Node,
    path: String,
    sink: &'a Sink,
}

impl<'a> NodeDeserializer<'a> {
    /// Records `e` at this node (unless already recorded) and returns `Reported`.
    fn fail(&self, e: DeError) -> DeError {
        report(self.sink, &e, &self.path, self.node.span);
        DeError::Reported
    }

    fn invalid(&self, expected: &str) -> DeError {
        self.fail(DeError::Message(format!("expected {expected}, found {}", self.node.type_name())))
    }

    /// The members as serde sees them: a key written twice only once, its
    /// last value (JSON5's rule; the parser already warned about it).
    fn map(&self, members: Vec<&'a Member>) -> Map<'a> {
        let mut seen = std::collections::HashSet::new();
        let mut last: Vec<&'a Member> = members.into_iter().rev().filter(|m| seen.insert(m.key.as_str())).collect();
        last.reverse();
        Map { members: last, index: 0, path: self.path.clone(), sink: self.sink }
    }

    fn seq(&self, items: &'a [Node]) -> Seq<'a> {
        Seq { items, index: 0, path: self.path.clone(), sink: self.sink }
    }
}

impl<'de> de::Deserializer<'de> for NodeDeserializer<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let outermost = !self.sink.in_untyped.replace(true);
        if outermost {
            if let Some(check) = self.sink.untyped {
                check(&self.path, self.node).into_iter().for_each(|d| self.sink.push(d));
            }
        }
        let r = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(Number::Int(i)) => visitor.visit_i64(*i),
            Value::Number(Number::UInt(u)) => visitor.visit_u64(*u),
            Value::Number(Number::Float(f)) => visitor.visit_f64(*f),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => visitor.visit_seq(self.seq(items)),
            Value::Object(members) => visitor.visit_map(self.map(members.iter().collect())),
        };
        if outermost {
            self.sink.in_untyped.set(false);
        }
        r.map_err(|e| self.fail(e))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.value {
            Value::Null => visitor.visit_none().map_err(|e| self.fail(e)),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::String(s) => visitor.visit_borrowed_str(s).map_err(|e| self.fail(e)),
            _ => Err(self.invalid("a string")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.value {
            Value::Bool(b) => visitor.visit_bool(b).map_err(|e| self.fail(e)),
            _ => Err(self.invalid("true or false")),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Array(items) => visitor.visit_seq(self.seq(items)).map_err(|e| self.fail(e)),
            _ => Err(self.invalid("an array")),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Object(members) => visitor.visit_map(self.map(members.iter().collect())).map_err(|e| self.fail(e)),
            _ => Err(self.invalid("an object")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let Value::Object(members) = &self.node.value else {
            return Err(self.invalid("an object"));
        };
        let mut known = Vec::with_capacity(members.len());
        for m in members {
            if fields.contains(&m.key.as_str()) {
                known.push(m);
            } else {
                let path = join_key(&self.path, &m.key);
                let elsewhere = self.sink.elsewhere.map(|f| f(&path, m));
                let others = match elsewhere {
                    Some(Elsewhere::OpenClaw(diagnostics)) => {
                        diagnostics.into_iter().for_each(|d| self.sink.push(d));
                        continue;
                    }
                    Some(Elsewhere::Unknown { openclaw_keys }) => openclaw_keys,
                    None => Vec::new(),
                };
                let mut d = Diagnostic::error(path, m.key_span, format!("unknown key `{}`", m.key));
                let candidates = fields.iter().copied().chain(others.iter().map(String::as_str));
                if let Some(s) = suggest(&m.key, candidates) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                } else if !fields.is_empty() {
                    d = d.with_help(format!("known keys here: {}", fields.join(", ")));
                }
                self.sink.push(d);
            }
        }
        visitor.visit_map(self.map(known)).map_err(|e| self.fail(e))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()).map_err(|e| self.fail(e)),
            _ => Err(self.invalid("a string")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char
        bytes byte_buf unit unit_struct tuple tuple_struct identifier
    }
}

struct Seq<'a> {
    items: &'a [Node],
    index: usize,
    path: String,
    sink: &'a Sink,
}

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.get(self.index) else {
            return Ok(None);
        };
        let path = format!("{}[{}]", self.path, self.index);
        self.index += 1;
        let at = (path.clone(), node.span);
        seed.deserialize(NodeDeserializer { node, path, sink: self.sink }).map(Some).map_err(|e| self.reported(e, at))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.index)
    }
}

impl Seq<'_> {
    /// See `Map::next_value_seed`: an element's own error, recorded at it.
    fn reported(&self, e: DeError, (path, span): (String, Span)) -> DeError {
        report(self.sink, &e, &path, span);
        DeError::Reported
    }
}

struct Map<'a> {
    members: Vec<&'a Member>,
    index: usize,
    path: String,
    sink: &'a Sink,
}

impl<'de> MapAccess<'de> for Map<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some(m) = self.members.get(self.index) else {
            return Ok(None);
        };
        seed.deserialize(m.key.as_str().into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some(m) = self.members.get(self.index) else {
            return Err(DeError::Message("value without a key".into()));
        };
        self.index += 1;
        let path = join_key(&self.path, &m.key);
        let at = (path.clone(), m.value.span);
        seed.deserialize(NodeDeserializer { node: &m.value, path, sink: self.sink }).map_err(|e| {
            // An error a type's own `Deserialize` raised (`Broadcast`, an
            // untagged enum) is recorded here, at its member; else a lenient
            // parent would drop it and the value would silently vanish.
            report(self.sink, &e, &at.0, at.1);
            DeError::Reported
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.members.len() - self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::source::parse;

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Item {
        id: String,
        #[serde(default)]
        count: Option<u32>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default, deserialize_with = "lenient_vec")]
        items: Vec<Item>,
        #[serde(default, deserialize_with = "lenient")]
        name: Option<String>,
    }

    #[test]
    fn a_key_written_twice_takes_its_last_value_as_the_parser_warned() {
        let root = parse(r#"{ id: "first", id: "second" }"#).unwrap().root;
        let sink = Sink::default();
        let item: Option<Item> = from_node(&root, "", &sink);
        assert_eq!(item.map(|i| i.id).as_deref(), Some("second"));
        assert!(sink.diagnostics.into_inner().is_empty());
    }

    #[test]
    fn collects_every_problem_with_paths_and_positions() {
        let text =
            "{\n items: [\n  {id: 'a', cuont: 1},\n  {id: 2},\n  {count: 'x', id: 'c'},\n ],\n name: 5,\n nmae: 'x'\n}";
        let parsed = parse(text).unwrap();
        let sink = Sink::default();
        let doc: Option<Doc> = from_node(&parsed.root, "", &sink);
        assert!(doc.is_none());
        let diags = sink.diagnostics.into_inner();
        let got: Vec<(String, u32, u32)> = diags.iter().map(|d| (d.path.clone(), d.line, d.column)).collect();
        assert_eq!(
            got,
            vec![
                ("nmae".to_string(), 8, 2),
                ("items[0].cuont".to_string(), 3, 13),
                ("items[1].id".to_string(), 4, 8),
                ("items[2].count".to_string(), 5, 11),
                ("name".to_string(), 7, 8),
            ],
            "{diags:#?}"
        );
        assert_eq!(diags[1].help.as_deref(), Some("did you mean `count`?"));
        assert_eq!(diags[0].help.as_deref(), Some("did you mean `name`?"));
    }

    #[test]
    fn missing_required_field_is_reported_once() {
        let parsed = parse("{items: [{}]}").unwrap();
        let sink = Sink::default();
        let _: Option<Doc> = from_node(&parsed.root, "", &sink);
        let diags = sink.diagnostics.into_inner();
        assert_eq!(diags.len(), 1, "{diags:#?}");
        assert_eq!(diags[0].path, "items[0]");
        assert!(diags[0].message.contains("`id`"));
    }

    #[test]
    fn clean_input_deserializes() {
        let parsed = parse("{items: [{id: 'a', count: 2}], name: 'n'}").unwrap();
        let sink = Sink::default();
        let doc: Doc = from_node(&parsed.root, "", &sink).expect("clean");
        assert_eq!((doc.items[0].id.as_str(), doc.items[0].count), ("a", Some(2)));
        assert_eq!(doc.name.as_deref(), Some("n"));
    }
}
