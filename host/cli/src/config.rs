//! `chela config get|set|unset|file|schema` (OpenClaw's `openclaw config`
//! verbs): one value by path (`a.b[0].c`, `models["openai/gpt-5"]`), read
//! with secrets redacted, or written in place with comments kept. A write
//! lands only when the new file loads and adds no validation error.
//!
//! Must not: re-serialise the whole config (core's `edit` splices the text)
//! or print a secret.

use std::process::ExitCode;

use anyhow::{bail, Result};
use chela_core::config::edit::{remove_array_elements, remove_member, set_member};
use chela_core::config::{load_str, openclaw_keys, source};
use serde_json::{json, Value as Json};

use crate::context::{new_errors, Context};
use crate::output::{print_diagnostics, print_json};

#[derive(clap::Subcommand, Debug)]
pub enum ConfigEdit {
    /// Print the value at PATH (secrets redacted).
    Get {
        path: String,
        #[arg(long)]
        json: bool,
    },
    /// Set PATH to VALUE (JSON5, else a plain string), comments kept.
    Set {
        path: String,
        value: String,
        /// VALUE must be strict JSON (no string fallback).
        #[arg(long)]
        strict_json: bool,
        #[arg(long)]
        json: bool,
    },
    /// Remove PATH, comments elsewhere kept.
    Unset {
        path: String,
        #[arg(long)]
        json: bool,
    },
    /// Print the config file's path.
    File {
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON schema of the config chela reads (OpenClaw 2026.9.6's).
    Schema {
        #[arg(long)]
        json: bool,
    },
}

/// `a.b[0]["c.d"]` → `a`, `b`, `0`, `c.d`.
pub fn segments(path: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = path.chars().peekable();
    let mut key = String::new();
    while let Some(c) = chars.next() {
        match c {
            '.' => out.extend((!key.is_empty()).then(|| std::mem::take(&mut key))),
            '[' => {
                out.extend((!key.is_empty()).then(|| std::mem::take(&mut key)));
                let mut inner = String::new();
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    inner.push(c);
                }
                let inner = inner.trim();
                let unquoted = inner
                    .strip_prefix('"')
                    .and_then(|i| i.strip_suffix('"'))
                    .or_else(|| inner.strip_prefix('\'').and_then(|i| i.strip_suffix('\'')));
                match unquoted {
                    Some(k) => out.push(k.to_string()),
                    None if inner.parse::<usize>().is_ok() => out.push(inner.to_string()),
                    None => bail!("`{path}`: `[{inner}]` is neither an index nor a quoted key"),
                }
            }
            c => key.push(c),
        }
    }
    out.extend((!key.is_empty()).then_some(key));
    if out.is_empty() {
        bail!("the config path is empty");
    }
    Ok(out)
}

/// Keys whose values are credentials.
fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["token", "secret", "password", "apikey", "privatekey"].iter().any(|s| k.contains(s))
}

/// A value with every credential replaced (an `${ENV}` reference is no secret).
fn redacted(key: Option<&str>, v: &Json) -> Json {
    match v {
        Json::String(s) if key.is_some_and(is_secret) && !(s.starts_with("${") && s.ends_with('}')) => {
            json!("<redacted>")
        }
        Json::Object(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), redacted(Some(k), v))).collect()),
        Json::Array(a) => Json::Array(a.iter().map(|v| redacted(key, v)).collect()),
        v => v.clone(),
    }
}

fn lookup<'a>(root: &'a Json, segs: &[String]) -> Option<&'a Json> {
    segs.iter().try_fold(root, |v, s| match v {
        Json::Array(a) => a.get(s.parse::<usize>().ok()?),
        v => v.get(s),
    })
}

pub fn run(ctx: &Context, cmd: ConfigEdit) -> Result<ExitCode> {
    let file = ctx.config_path.display().to_string();
    match cmd {
        ConfigEdit::File { json } => {
            if json {
                print_json(&json!({"path": file}));
            } else {
                println!("{file}");
            }
        }
        ConfigEdit::Schema { .. } => print_json(openclaw_keys::schema()),
        ConfigEdit::Get { path, json } => {
            let segs = segments(&path)?;
            let text = ctx.read_text()?.unwrap_or_else(|| "{}".into());
            let root = source::parse(&text).map_err(|e| anyhow::anyhow!("{file}: {e}"))?.root.to_json();
            let Some(value) = lookup(&root, &segs) else {
                if openclaw_keys::is_known_path(&segs.join(".")) {
                    bail!("`{path}` is not set in {file}: the default applies");
                }
                bail!("`{path}` is not a config path (`chela config schema` lists them)");
            };
            let value = redacted(segs.last().map(String::as_str), value);
            match (&value, json) {
                (_, true) => print_json(&value),
                (Json::String(s), false) => println!("{s}"),
                (v @ (Json::Object(_) | Json::Array(_)), false) => print_json(v),
                (v, false) => println!("{v}"),
            }
        }
        ConfigEdit::Set { path, value, strict_json, json } => {
            let parsed: Json = if strict_json {
                serde_json::from_str(&value).map_err(|e| anyhow::anyhow!("VALUE is not JSON: {e}"))?
            } else {
                source::parse(&value).map(|p| p.root.to_json()).unwrap_or(Json::String(value.clone()))
            };
            let segs = segments(&path)?;
            set_value(ctx, &segs, &parsed)?;
            if json {
                print_json(&json!({"path": path, "value": redacted(segs.last().map(String::as_str), &parsed)}));
            } else {
                println!("set {path} in {file}");
            }
        }
        ConfigEdit::Unset { path, json } => {
            let segs = segments(&path)?;
            let Some(text) = ctx.read_text()? else { bail!("no config at {file}") };
            let root = source::parse(&text).map_err(|e| anyhow::anyhow!("{file}: {e}"))?.root.to_json();
            if lookup(&root, &segs).is_none() {
                bail!("`{path}` is not set in {file}");
            }
            let (last, parent) = segs.split_last().unwrap_or((&segs[0], &[]));
            let parent: Vec<&str> = parent.iter().map(String::as_str).collect();
            let new = match (lookup(&root, &segs[..parent.len()]), last.parse::<usize>()) {
                (Some(Json::Array(_)), Ok(i)) => remove_array_elements(&text, &parent, &[i])?,
                _ => remove_member(&text, &parent, last)?,
            };
            commit(ctx, Some(&text), &text, &new)?;
            if json {
                print_json(&json!({"path": path, "removed": true}));
            } else {
                println!("removed {path} from {file}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Sets the value at `segs` (objects missing on the way are created), comments kept;
/// written only when the result loads and adds no validation error.
pub fn set_value(ctx: &Context, segs: &[String], value: &Json) -> Result<()> {
    let file = ctx.config_path.display().to_string();
    let old = ctx.read_text()?;
    let text = old.clone().unwrap_or_else(|| "{\n}\n".into());
    let root = source::parse(&text).map_err(|e| anyhow::anyhow!("{file}: {e}"))?.root.to_json();
    // The deepest existing object; what is missing below it is written as nested objects.
    let mut depth = segs.len() - 1;
    while depth > 0 && lookup(&root, &segs[..depth]).is_none() {
        depth -= 1;
    }
    let mut literal = value.clone();
    for key in segs[depth + 1..].iter().rev() {
        literal = json!({ key: literal });
    }
    let parent: Vec<&str> = segs[..depth].iter().map(String::as_str).collect();
    let new = set_member(&text, &parent, &segs[depth], &serde_json::to_string(&literal)?)?;
    commit(ctx, old.as_deref(), &text, &new)
}

/// Writes `new` when it loads and adds no validation error; else prints what it would break.
fn commit(ctx: &Context, old: Option<&str>, text: &str, new: &str) -> Result<()> {
    let file = ctx.config_path.display().to_string();
    let validate = |t: &str| {
        load_str(t, Some(&file)).map(|l| {
            let mut d = l.warnings.clone();
            d.extend(chela_core::config::validate::validate(&l, &ctx.env));
            d
        })
    };
    let before = validate(text).unwrap_or_default();
    let after = match validate(new) {
        Ok(d) => d,
        Err(e) => {
            print_diagnostics(&e.diagnostics());
            bail!("not written: the config would not load");
        }
    };
    let broken = new_errors(&before, &after);
    if !broken.is_empty() {
        print_diagnostics(&broken);
        bail!("not written: the change adds {} error(s)", broken.len());
    }
    ctx.write_config(old, new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_on_dots_and_brackets() {
        assert_eq!(segments("a.b[0].c").unwrap(), ["a", "b", "0", "c"]);
        assert_eq!(
            segments(r#"agents.defaults.models["openai/gpt-5.4"].alias"#).unwrap(),
            ["agents", "defaults", "models", "openai/gpt-5.4", "alias"]
        );
        assert!(segments("a[x]").is_err() && segments("").is_err());
    }

    #[test]
    fn secrets_are_redacted_but_env_references_shown() {
        let v = json!({"botToken": "123:abc", "accounts": {"ops": {"botToken": "${OPS_TOKEN}", "name": "Ops"}}});
        assert_eq!(
            redacted(None, &v),
            json!({"botToken": "<redacted>", "accounts": {"ops": {"botToken": "${OPS_TOKEN}", "name": "Ops"}}})
        );
    }
}
