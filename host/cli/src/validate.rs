//! `chela config validate`: every syntax, schema and semantic problem, in one run.
//!
//! Must not: check anything itself; it prints what core's load and validate found.

use std::process::ExitCode;

use anyhow::Result;
use chela_core::config::validate::validate;
use chela_core::config::{load_str, Diagnostic};

use crate::context::Context;
use crate::output::{print_diagnostics_in, print_json};

/// `strict`: the OpenClaw settings chela ignores are errors.
pub fn run(ctx: &Context, json: bool, strict: bool) -> Result<ExitCode> {
    let file = ctx.config_path.display().to_string();
    let Some(text) = ctx.read_text()? else {
        anyhow::bail!("no config file at {file} (set --config or CHELA_CONFIG_PATH)");
    };
    let diagnostics: Vec<Diagnostic> = match load_str(&text, Some(&file)) {
        Ok(loaded) => {
            let mut all = loaded.warnings.clone();
            all.extend(validate(&loaded, &ctx.env));
            all.sort_by_key(|d| (d.line, d.column));
            all
        }
        Err(e) => e.diagnostics(),
    };
    let diagnostics: Vec<Diagnostic> =
        if strict { diagnostics.into_iter().map(Diagnostic::strict).collect() } else { diagnostics };
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    if json {
        print_json(&serde_json::json!({
            "file": file, "valid": errors == 0, "errors": errors, "warnings": warnings, "diagnostics": diagnostics,
        }));
    } else {
        print_diagnostics_in(&diagnostics, &text);
        if errors == 0 {
            println!("{file}: valid ({warnings} warning(s))");
        } else {
            println!("{file}: {errors} error(s), {warnings} warning(s)");
        }
    }
    Ok(if errors == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
