//! Arbitrary bytes as a config file: loading and validating must never panic,
//! and every diagnostic must point inside the text.
//!
//! Must not: assert anything about valid configs beyond well-formed diagnostics (unit tests do).
#![no_main]

use chela_core::config::paths::Environment;
use chela_core::config::{load_str, validate::validate};
use libfuzzer_sys::fuzz_target;

/// Lines as JSON5 counts them: LF, CR, CRLF, U+2028 and U+2029 end a line.
fn json5_lines(text: &str) -> u32 {
    let mut n = 1u32;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\u{2028}' | '\u{2029}' => n += 1,
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    n += 1;
                }
            }
            _ => {}
        }
    }
    n
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = json5_lines(&text);
    match load_str(&text, Some("fuzz.json5")) {
        Ok(loaded) => {
            let env = Environment { home: "/home/fuzz".into(), ..Default::default() };
            for d in validate(&loaded, &env).iter().chain(&loaded.warnings) {
                assert!(d.line <= lines, "diagnostic line {} beyond {lines}: {d}", d.line);
            }
            // Compiling the routing table must work for any loadable config.
            let _ = chela_core::routing::RouteTable::build(&loaded.config);
        }
        Err(e) => {
            let diags = e.diagnostics();
            assert!(!diags.is_empty());
            for d in &diags {
                assert!(d.line >= 1 && d.line <= lines, "diagnostic line {} beyond {lines}: {d}", d.line);
            }
        }
    }
});
