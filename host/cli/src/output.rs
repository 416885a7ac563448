//! Printing: diagnostics to stderr, data as text or JSON to stdout.
//!
//! Must not: decide what is printed, only how.

use chela_core::config::Diagnostic;

pub fn print_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("{d}");
    }
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
        Some(chela_core::config::source::Value::Array(items)) => {
            items.get(index).and_then(|n| text.get(n.span.offset..n.end)).map(one_line).unwrap_or_default()
        }
        _ => String::new(),
    }
}
