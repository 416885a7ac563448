//! Printing: diagnostics to stderr, data as text or JSON to stdout.
//!
//! Must not: decide what is printed, only how.

use chela_core::config::Diagnostic;

pub fn print_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("{d}");
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
        Some(chela_core::config::source::Value::Array(items)) => {
            items.get(index).and_then(|n| text.get(n.span.offset..n.end)).map(one_line).unwrap_or_default()
        }
        _ => String::new(),
    }
}
