//! Printing: diagnostics to stderr (with a source snippet on a terminal),
//! data as text or JSON to stdout.
//!
//! Must not: decide what is printed, only how.

use std::io::IsTerminal;

use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};
use chela_core::config::diagnostic::Severity;
use chela_core::config::Diagnostic;

pub fn print_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("{d}");
    }
}

/// [`print_diagnostics`] for problems in `text`: on a terminal each with its
/// source line and a caret under what it is about (coloured unless
/// `NO_COLOR`); elsewhere one plain `file:line:column: …` line each, which
/// editors and scripts read.
pub fn print_diagnostics_in(diags: &[Diagnostic], text: &str) {
    if !std::io::stderr().is_terminal() {
        return print_diagnostics(diags);
    }
    let colour = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    for d in diags {
        // A problem in an `$include`d file is about another text: its plain line.
        match d.source {
            0 => eprintln!("{}\n", render_snippet(d, text, colour)),
            _ => eprintln!("{d}"),
        }
    }
}

/// Byte offset of a 1-based line and character column in `text`.
fn offset_of(text: &str, line: u32, column: u32) -> Option<usize> {
    let start = if line <= 1 { 0 } else { text.match_indices('\n').nth(line as usize - 2).map(|(i, _)| i + 1)? };
    let rest = &text[start..];
    let within = rest.char_indices().nth(column.saturating_sub(1) as usize).map_or(rest.len(), |(i, _)| i);
    Some(start + within)
}

/// The extent of the token at `at`: a quoted string, else a run of name characters, else one character.
fn token_end(text: &str, at: usize) -> usize {
    let rest = &text[at..];
    let mut chars = rest.char_indices();
    match chars.next() {
        None => at,
        Some((_, q @ ('"' | '\''))) => {
            let mut escaped = false;
            for (i, c) in chars {
                match c {
                    '\\' if !escaped => escaped = true,
                    c if c == q && !escaped => return at + i + c.len_utf8(),
                    '\n' => return at + i,
                    _ => escaped = false,
                }
            }
            text.len()
        }
        Some((_, c)) if c.is_alphanumeric() || matches!(c, '_' | '$' | '-' | '.') => {
            let end = rest
                .char_indices()
                .find(|(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | '$' | '-' | '.')))
                .map_or(rest.len(), |(i, _)| i);
            at + end
        }
        Some((_, c)) => at + c.len_utf8(),
    }
}

/// One diagnostic as rustc shows an error: the message, `--> file:line:column`,
/// the source line with the field underlined, then the help.
pub fn render_snippet(d: &Diagnostic, text: &str, colour: bool) -> String {
    let Some(start) = offset_of(text, d.line, d.column) else { return d.to_string() };
    let end = token_end(text, start).max(start);
    let level = match d.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let mut snippet = Snippet::source(text).line_start(1).fold(true).annotation(
        AnnotationKind::Primary.span(start..end).label((!d.path.is_empty()).then(|| format!("at `{}`", d.path))),
    );
    if let Some(file) = &d.file {
        snippet = snippet.path(file.as_str());
    }
    let mut group = level.primary_title(d.message.as_str()).element(snippet);
    if let Some(help) = &d.help {
        group = group.element(Level::HELP.message(help.as_str()));
    }
    let renderer = if colour { Renderer::styled() } else { Renderer::plain() };
    renderer.render(&[group]).to_string()
}

/// Load warnings for commands that only use the config: each problem on its
/// own line, the OpenClaw settings chela ignores grouped on one (`chela
/// config validate` lists them one by one).
pub fn print_load_warnings(diags: &[Diagnostic]) {
    let (ignored, others): (Vec<&Diagnostic>, Vec<&Diagnostic>) = diags.iter().partition(|d| d.unimplemented);
    for d in others {
        eprintln!("{d}");
    }
    if !ignored.is_empty() {
        let keys: Vec<&str> = ignored.iter().map(|d| d.path.as_str()).collect();
        eprintln!(
            "warning: {} OpenClaw setting(s) chela does not implement are ignored: {} (`chela config validate` lists them)",
            keys.len(),
            keys.join(", ")
        );
    }
}

pub fn print_json(value: &serde_json::Value) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot print JSON: {e}"),
    }
}

/// A source snippet on one line (for showing a binding as written).
pub fn one_line(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.replace(", }", " }").replace(", ]", " ]").replace(",}", "}").replace(",]", "]")
}

/// A binding as the user wrote it (from the config text), on one line.
pub fn binding_source(loaded: &chela_core::config::Loaded, text: &str, index: usize) -> String {
    match loaded.source.get("bindings").map(|b| &b.value) {
        Some(chela_core::config::source::Value::Array(items)) => match items.get(index) {
            // Written in an `$include`d file, not in `text`.
            Some(n) if n.span.source != 0 => {
                let file = loaded.files.get(n.span.source as usize).map(String::as_str).unwrap_or("an included file");
                format!("(in {file}:{})", n.span.line)
            }
            Some(n) => text.get(n.span.offset..n.end).map(one_line).unwrap_or_default(),
            None => String::new(),
        },
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chela_core::config::load_str;

    #[test]
    fn a_snippet_shows_the_line_and_underlines_the_field() {
        let text = "{\n  agents: {\n    list: [{ id: \"a\", worspace: \"/w\" }],\n  },\n}\n";
        let err = load_str(text, Some("c.json5")).unwrap_err();
        let d = err.diagnostics().into_iter().find(|d| d.message.contains("worspace")).expect("the typo is reported");
        let shown = render_snippet(&d, text, false);
        assert!(shown.contains("--> c.json5:3:"), "{shown}");
        assert!(shown.contains("list: [{ id: \"a\", worspace: \"/w\" }],"), "{shown}");
        let caret = shown.lines().find(|l| l.contains('^')).unwrap_or_else(|| panic!("no caret: {shown}"));
        let source = shown.lines().find(|l| l.contains("worspace: ")).unwrap();
        assert_eq!(caret.find('^'), source.find("worspace"), "the caret sits under the key:\n{shown}");
        assert_eq!(caret.matches('^').count(), "worspace".len(), "{shown}");
        assert!(shown.contains("workspace"), "the help is kept: {shown}");
    }

    #[test]
    fn positions_past_the_text_fall_back_to_the_plain_line() {
        let d = Diagnostic::error(
            "x",
            chela_core::config::source::Span { offset: 0, line: 9, column: 1, source: 0 },
            "gone",
        );
        assert_eq!(render_snippet(&d, "{}", false), d.to_string());
    }
}
