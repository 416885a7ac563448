//! Printing: diagnostics to stderr, data as text or JSON to stdout.

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
