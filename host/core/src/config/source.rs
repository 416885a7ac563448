//! JSON5 text → a tree of [`Node`]s that remember where they came from.
//!
//! The config loader needs the line and column of *every* value, not only of
//! syntax errors, so that a semantic problem ("bindings[3].agentId names an
//! unknown agent") can point into the file. Generic JSON5 crates deserialize
//! straight into serde types and forget positions; they also recurse without a
//! depth bound, so a hostile 100k-deep `[[[[…` would overflow the stack. This
//! reader is iterative over containers up to [`MAX_DEPTH`] and never panics.
//!
//! It implements the JSON5 grammar (spec 1.0.0): comments, trailing commas,
//! unquoted identifier keys, single-quoted strings, escapes incl. line
//! continuations, hex numbers, leading/trailing decimal points, explicit `+`,
//! `Infinity` and `NaN`.
//!
//! Must not: recurse per nesting level, panic on any input, or know the config's schema.

use std::fmt;

use crate::ids::is_js_whitespace;

/// Containers nested deeper than this are rejected; real configs use < 10.
pub const MAX_DEPTH: usize = 128;

/// A position in the source text (1-based line and column, in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub offset: usize,
    pub line: u32,
    pub column: u32,
    /// Which file of the config the position is in: 0 the config file
    /// itself, else an `$include`d one (`Loaded::files`).
    pub source: u32,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A number as written; integers stay exact so ids like `1468834856187203680` survive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i64),
    UInt(u64),
    Float(f64),
}

impl Number {
    /// The number as JavaScript's `String(n)` would print it (for numeric ids).
    pub fn to_js_string(self) -> String {
        match self {
            Number::Int(i) => i.to_string(),
            Number::UInt(u) => u.to_string(),
            Number::Float(f) if f.is_nan() => "NaN".into(),
            Number::Float(f) if f.is_infinite() => {
                if f > 0.0 {
                    "Infinity".into()
                } else {
                    "-Infinity".into()
                }
            }
            Number::Float(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            Number::Float(f) => f.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Node>),
    Object(Vec<Member>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
    /// Byte offset just past the value (after the closing bracket of a container).
    pub end: usize,
}

impl Node {
    /// A short name of the value's JSON type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    /// The member of an object by key (the last one wins, as in JSON5.parse).
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Object(members) => members.iter().rev().find(|m| m.key == key).map(|m| &m.value),
            _ => None,
        }
    }

    pub fn member(&self, key: &str) -> Option<&Member> {
        match &self.value {
            Value::Object(members) => members.iter().rev().find(|m| m.key == key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Converts to `serde_json::Value` (for opaque sections and the route input).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(Number::Int(i)) => J::from(*i),
            Value::Number(Number::UInt(u)) => J::from(*u),
            Value::Number(Number::Float(f)) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or(J::Null),
            Value::String(s) => J::String(s.clone()),
            Value::Array(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Object(members) => {
                let mut map = serde_json::Map::new();
                for m in members {
                    map.insert(m.key.clone(), m.value.to_json());
                }
                J::Object(map)
            }
        }
    }
}

/// A syntax error with its position.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{span}: {message}")]
pub struct SyntaxError {
    pub message: String,
    pub span: Span,
}

/// A key that appeared twice in one object (JSON5.parse keeps the last one).
#[derive(Debug, Clone, PartialEq)]
pub struct DuplicateKey {
    pub key: String,
    pub first: Span,
    pub second: Span,
}

#[derive(Debug)]
pub struct Parsed {
    pub root: Node,
    pub duplicates: Vec<DuplicateKey>,
}

/// Parses a whole JSON5 document.
pub fn parse(text: &str) -> Result<Parsed, SyntaxError> {
    parse_source(text, 0)
}

/// [`parse`] for the config's file number `source` (its spans say so).
pub fn parse_source(text: &str, source: u32) -> Result<Parsed, SyntaxError> {
    let mut p = Parser { src: text, pos: 0, line: 1, col: 1, duplicates: Vec::new(), source };
    p.skip_trivia()?;
    let root = p.parse_value()?;
    p.skip_trivia()?;
    if p.pos < p.src.len() {
        return Err(p.error_here("unexpected text after the end of the document"));
    }
    Ok(Parsed { root, duplicates: p.duplicates })
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    line: u32,
    col: u32,
    duplicates: Vec<DuplicateKey>,
    source: u32,
}

/// An open container on the explicit stack (containers are not parsed recursively).
enum Frame {
    Array { span: Span, items: Vec<Node> },
    Object { span: Span, members: Vec<Member>, pending: Option<(String, Span)> },
}

fn is_ident_start(c: char) -> bool {
    c == '$' || c == '_' || c.is_alphabetic()
}

fn is_ident_part(c: char) -> bool {
    is_ident_start(c) || c.is_alphanumeric() || c == '\u{200C}' || c == '\u{200D}'
}

impl<'a> Parser<'a> {
    fn span(&self) -> Span {
        Span { offset: self.pos, line: self.line, column: self.col, source: self.source }
    }

    fn error_here(&self, message: impl Into<String>) -> SyntaxError {
        SyntaxError { message: message.into(), span: self.span() }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.src[self.pos..].chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        match c {
            '\n' | '\u{2028}' | '\u{2029}' => {
                self.line += 1;
                self.col = 1;
            }
            '\r' => {
                if self.peek() != Some('\n') {
                    self.line += 1;
                    self.col = 1;
                }
            }
            _ => self.col += 1,
        }
        Some(c)
    }

    fn skip_trivia(&mut self) -> Result<(), SyntaxError> {
        loop {
            match self.peek() {
                Some(c) if is_js_whitespace(c) => {
                    self.bump();
                }
                Some('/') if self.peek2() == Some('/') => {
                    while let Some(c) = self.peek() {
                        if matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}') {
                            break;
                        }
                        self.bump();
                    }
                }
                Some('/') if self.peek2() == Some('*') => {
                    let start = self.span();
                    self.bump();
                    self.bump();
                    loop {
                        match self.bump() {
                            None => {
                                return Err(SyntaxError { message: "unterminated block comment".into(), span: start })
                            }
                            Some('*') if self.peek() == Some('/') => {
                                self.bump();
                                break;
                            }
                            _ => {}
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// Parses one value; containers are handled with an explicit stack.
    fn parse_value(&mut self) -> Result<Node, SyntaxError> {
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            // Parse the next value start (scalar or opening of a container).
            self.skip_trivia()?;
            let start = self.span();
            let mut done: Option<Node> = match self.peek() {
                Some('{') => {
                    self.bump();
                    if stack.len() >= MAX_DEPTH {
                        return Err(SyntaxError {
                            message: format!("nesting deeper than {MAX_DEPTH} levels"),
                            span: start,
                        });
                    }
                    stack.push(Frame::Object { span: start, members: Vec::new(), pending: None });
                    self.skip_trivia()?;
                    if self.peek() == Some('}') {
                        self.bump();
                        match stack.pop() {
                            Some(Frame::Object { span, members, .. }) => {
                                Some(Node { value: Value::Object(members), span, end: self.pos })
                            }
                            _ => unreachable_frame(start)?,
                        }
                    } else {
                        let (key, key_span) = self.parse_key()?;
                        self.expect_colon()?;
                        if let Some(Frame::Object { pending, .. }) = stack.last_mut() {
                            *pending = Some((key, key_span));
                        }
                        None
                    }
                }
                Some('[') => {
                    self.bump();
                    if stack.len() >= MAX_DEPTH {
                        return Err(SyntaxError {
                            message: format!("nesting deeper than {MAX_DEPTH} levels"),
                            span: start,
                        });
                    }
                    stack.push(Frame::Array { span: start, items: Vec::new() });
                    self.skip_trivia()?;
                    if self.peek() == Some(']') {
                        self.bump();
                        match stack.pop() {
                            Some(Frame::Array { span, items }) => {
                                Some(Node { value: Value::Array(items), span, end: self.pos })
                            }
                            _ => unreachable_frame(start)?,
                        }
                    } else {
                        None
                    }
                }
                Some(_) => Some(self.parse_scalar()?),
                None => return Err(self.error_here("unexpected end of input, expected a value")),
            };

            // Attach finished values to their parents, closing containers as we go.
            while let Some(node) = done.take() {
                let Some(frame) = stack.last_mut() else {
                    return Ok(node);
                };
                match frame {
                    Frame::Array { items, .. } => {
                        items.push(node);
                        self.skip_trivia()?;
                        match self.peek() {
                            Some(',') => {
                                self.bump();
                                self.skip_trivia()?;
                                if self.peek() == Some(']') {
                                    self.bump();
                                    done = close(&mut stack, self.pos);
                                }
                            }
                            Some(']') => {
                                self.bump();
                                done = close(&mut stack, self.pos);
                            }
                            _ => return Err(self.error_here("expected `,` or `]` in array")),
                        }
                    }
                    Frame::Object { members, pending, .. } => {
                        let (key, key_span) = pending.take().unwrap_or_default();
                        if let Some(prev) = members.iter().find(|m| m.key == key) {
                            self.duplicates.push(DuplicateKey {
                                key: key.clone(),
                                first: prev.key_span,
                                second: key_span,
                            });
                        }
                        members.push(Member { key, key_span, value: node });
                        self.skip_trivia()?;
                        match self.peek() {
                            Some(',') => {
                                self.bump();
                                self.skip_trivia()?;
                                if self.peek() == Some('}') {
                                    self.bump();
                                    done = close(&mut stack, self.pos);
                                } else {
                                    let (k, ks) = self.parse_key()?;
                                    self.expect_colon()?;
                                    if let Some(Frame::Object { pending, .. }) = stack.last_mut() {
                                        *pending = Some((k, ks));
                                    }
                                }
                            }
                            Some('}') => {
                                self.bump();
                                done = close(&mut stack, self.pos);
                            }
                            _ => return Err(self.error_here("expected `,` or `}` in object")),
                        }
                    }
                }
            }
        }
    }

    fn expect_colon(&mut self) -> Result<(), SyntaxError> {
        self.skip_trivia()?;
        if self.peek() == Some(':') {
            self.bump();
            Ok(())
        } else {
            Err(self.error_here("expected `:` after object key"))
        }
    }

    fn parse_key(&mut self) -> Result<(String, Span), SyntaxError> {
        let span = self.span();
        match self.peek() {
            Some(q @ ('"' | '\'')) => Ok((self.parse_string(q)?, span)),
            Some(c) if is_ident_start(c) || c == '\\' => Ok((self.parse_identifier()?, span)),
            _ => Err(self.error_here("expected an object key (a string or an identifier)")),
        }
    }

    fn parse_identifier(&mut self) -> Result<String, SyntaxError> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c == '\\' {
                self.bump();
                if self.bump() != Some('u') {
                    return Err(self.error_here("only \\u escapes are allowed in identifiers"));
                }
                out.push(self.parse_hex_char(4)?);
            } else if is_ident_part(c) {
                self.bump();
                out.push(c);
            } else {
                break;
            }
        }
        Ok(out)
    }

    fn parse_hex_char(&mut self, digits: usize) -> Result<char, SyntaxError> {
        let mut v: u32 = 0;
        for _ in 0..digits {
            let d = self
                .peek()
                .and_then(|c| c.to_digit(16))
                .ok_or_else(|| self.error_here("invalid hexadecimal escape"))?;
            self.bump();
            v = v * 16 + d;
        }
        // Surrogate pairs (\uD83D\uDE00) are joined; a lone surrogate becomes U+FFFD.
        if (0xD800..0xDC00).contains(&v) && self.src[self.pos..].starts_with("\\u") {
            let save = (self.pos, self.line, self.col);
            self.bump();
            self.bump();
            let mut low: u32 = 0;
            let mut ok = true;
            for _ in 0..4 {
                match self.peek().and_then(|c| c.to_digit(16)) {
                    Some(d) => {
                        self.bump();
                        low = low * 16 + d;
                    }
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok && (0xDC00..0xE000).contains(&low) {
                let c = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or('\u{FFFD}'));
            }
            (self.pos, self.line, self.col) = save;
        }
        Ok(char::from_u32(v).unwrap_or('\u{FFFD}'))
    }

    fn parse_string(&mut self, quote: char) -> Result<String, SyntaxError> {
        let start = self.span();
        self.bump();
        let mut out = String::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(SyntaxError { message: "unterminated string".into(), span: start });
            };
            match c {
                c if c == quote => return Ok(out),
                '\\' => {
                    let Some(e) = self.bump() else {
                        return Err(SyntaxError { message: "unterminated string".into(), span: start });
                    };
                    match e {
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{C}'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'v' => out.push('\u{B}'),
                        '0' if !self.peek().is_some_and(|c| c.is_ascii_digit()) => out.push('\0'),
                        'x' => out.push(self.parse_hex_char(2)?),
                        'u' => out.push(self.parse_hex_char(4)?),
                        '\r' => {
                            if self.peek() == Some('\n') {
                                self.bump();
                            }
                        }
                        '\n' | '\u{2028}' | '\u{2029}' => {}
                        d if d.is_ascii_digit() => {
                            return Err(self.error_here("octal escapes are not allowed in JSON5"))
                        }
                        other => out.push(other),
                    }
                }
                '\n' | '\r' => {
                    return Err(SyntaxError {
                        message: "unterminated string (line break inside a string; use \\n)".into(),
                        span: start,
                    })
                }
                other => out.push(other),
            }
        }
    }

    fn parse_scalar(&mut self) -> Result<Node, SyntaxError> {
        let span = self.span();
        let value = match self.peek() {
            Some(q @ ('"' | '\'')) => Value::String(self.parse_string(q)?),
            Some(c) if c == '-' || c == '+' || c == '.' || c.is_ascii_digit() => Value::Number(self.parse_number()?),
            Some(c) if is_ident_start(c) => {
                let word = self.parse_identifier()?;
                match word.as_str() {
                    "null" => Value::Null,
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "Infinity" => Value::Number(Number::Float(f64::INFINITY)),
                    "NaN" => Value::Number(Number::Float(f64::NAN)),
                    _ => {
                        return Err(SyntaxError {
                            message: format!("unexpected word `{word}` (strings need quotes)"),
                            span,
                        })
                    }
                }
            }
            Some(c) => return Err(self.error_here(format!("unexpected character `{c}`"))),
            None => return Err(self.error_here("unexpected end of input")),
        };
        Ok(Node { value, span, end: self.pos })
    }

    fn parse_number(&mut self) -> Result<Number, SyntaxError> {
        let start = self.span();
        let mut negative = false;
        if let Some(s @ ('+' | '-')) = self.peek() {
            negative = s == '-';
            self.bump();
        }
        let rest = &self.src[self.pos..];
        if rest.starts_with("Infinity") {
            for _ in 0..8 {
                self.bump();
            }
            return Ok(Number::Float(if negative { f64::NEG_INFINITY } else { f64::INFINITY }));
        }
        if rest.starts_with("NaN") {
            for _ in 0..3 {
                self.bump();
            }
            return Ok(Number::Float(f64::NAN));
        }
        if rest.starts_with("0x") || rest.starts_with("0X") {
            self.bump();
            self.bump();
            let digits_start = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                self.bump();
            }
            let digits = &self.src[digits_start..self.pos];
            return match u64::from_str_radix(digits, 16) {
                Ok(v) if negative => {
                    Ok(i64::try_from(v).map(|i| Number::Int(-i)).unwrap_or(Number::Float(-(v as f64))))
                }
                Ok(v) => Ok(Number::UInt(v)),
                Err(_) => Err(SyntaxError { message: "invalid hexadecimal number".into(), span: start }),
            };
        }
        let body_start = self.pos;
        let mut is_float = false;
        while let Some(c) = self.peek() {
            match c {
                '0'..='9' => {}
                '.' | 'e' | 'E' => is_float = true,
                '+' | '-' if matches!(self.src[..self.pos].chars().last(), Some('e' | 'E')) => {}
                _ => break,
            }
            self.bump();
        }
        let body = &self.src[body_start..self.pos];
        let bad = || SyntaxError { message: format!("invalid number `{body}`"), span: start };
        if body.is_empty() || body == "." {
            return Err(bad());
        }
        if !is_float {
            if body.len() > 1 && body.starts_with('0') {
                return Err(SyntaxError { message: "numbers may not have leading zeros".into(), span: start });
            }
            if negative {
                if let Ok(v) = format!("-{body}").parse::<i64>() {
                    return Ok(Number::Int(v));
                }
            } else if let Ok(v) = body.parse::<u64>() {
                return Ok(match i64::try_from(v) {
                    Ok(i) => Number::Int(i),
                    Err(_) => Number::UInt(v),
                });
            }
        }
        let text = if body.ends_with('.') { format!("{body}0") } else { body.to_string() };
        let text = if text.starts_with('.') { format!("0{text}") } else { text };
        let v: f64 = text.parse().map_err(|_| bad())?;
        Ok(Number::Float(if negative { -v } else { v }))
    }
}

fn close(stack: &mut Vec<Frame>, end: usize) -> Option<Node> {
    match stack.pop()? {
        Frame::Array { span, items } => Some(Node { value: Value::Array(items), span, end }),
        Frame::Object { span, members, .. } => Some(Node { value: Value::Object(members), span, end }),
    }
}

fn unreachable_frame(span: Span) -> Result<Option<Node>, SyntaxError> {
    Err(SyntaxError { message: "internal parser error: container stack out of step".into(), span })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> serde_json::Value {
        parse(text).expect("parses").root.to_json()
    }

    #[test]
    fn reads_json5_features() {
        let got = v("// c\n{a: 1, 'b': \"x\\ny\", c: [+1, .5, 5., 0x1F, -Infinity,], /* d */ $e_1: null,}");
        assert_eq!(got["a"], 1);
        assert_eq!(got["b"], "x\ny");
        assert_eq!(got["c"][0], 1);
        assert_eq!(got["c"][1], 0.5);
        assert_eq!(got["c"][2], 5.0);
        assert_eq!(got["c"][3], 31);
        assert!(got["c"][4].is_null(), "non-finite floats have no JSON form");
        assert!(got["$e_1"].is_null());
    }

    #[test]
    fn keeps_big_integers_exact() {
        let p = parse("{id: 1468834856187203680}").unwrap();
        match p.root.get("id").unwrap().value {
            Value::Number(n) => assert_eq!(n.to_js_string(), "1468834856187203680"),
            ref other => panic!("not a number: {other:?}"),
        }
    }

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        let p = parse("{\n  agents: {\n    list: [ {id: 'x'} ]\n  }\n}").unwrap();
        let list = p.root.get("agents").unwrap().get("list").unwrap();
        assert_eq!((list.span.line, list.span.column), (3, 11));
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let e = parse("{\n  a: 1,\n  b: ,\n}").unwrap_err();
        assert_eq!((e.span.line, e.span.column), (3, 6));
        let e = parse("{a: 'open").unwrap_err();
        assert!(e.message.contains("unterminated string"), "{e}");
        let e = parse("{a: tru}").unwrap_err();
        assert!(e.message.contains("tru"), "{e}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = "[".repeat(100_000);
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("nesting deeper"), "{e}");
    }

    #[test]
    fn duplicate_keys_are_reported_and_last_wins() {
        let p = parse("{a: 1, a: 2}").unwrap();
        assert_eq!(p.duplicates.len(), 1);
        assert_eq!(p.root.to_json()["a"], 2);
    }

    #[test]
    fn surrogate_pairs_join() {
        assert_eq!(v(r#"{"s": "\uD83D\uDE00"}"#)["s"], "😀");
    }
}
