//! The control API's config edits (the control page's Bindings page): a
//! binding added, changed or removed in the watched config file, the way `chela
//! agents bind` edits it — the text spliced so comments and layout stay,
//! the result checked by core against the config as it was (an edit that
//! adds an error is refused with each problem at its place in the new
//! text), the old text kept as `<file>.bak`, and the new config applied at
//! once.
//!
//! Must not: re-serialise the config, write a file the config does not
//! load from, or apply an edit core refused.

use std::sync::Arc;

use chela_core::config::edit::{append_to_array, remove_array_elements, set_member};
use chela_core::config::Diagnostic;
use hyper::StatusCode;
use serde_json::{json, Value as Json};

use crate::reply::{error, json, Reply};
use crate::Gateway;

/// The longest source line a problem carries.
const SOURCE_LINE_MAX: usize = 300;

/// `problems` as JSON, each with the text of its line: from `text` when it
/// is in the file being edited (the refused new text), else from its file.
pub(crate) fn problems_json(problems: &[Diagnostic], edited: Option<(&str, &str)>) -> Vec<Json> {
    let mut texts: std::collections::HashMap<String, Option<String>> = std::collections::HashMap::new();
    problems
        .iter()
        .map(|d| {
            let mut row = json!(d);
            if let Some(file) = &d.file {
                let text = match edited {
                    Some((f, t)) if f == file => Some(t.to_string()),
                    // The loader names only the config file and the files it includes.
                    _ => texts.entry(file.clone()).or_insert_with(|| std::fs::read_to_string(file).ok()).clone(),
                };
                let line = text.as_deref().and_then(|t| t.lines().nth((d.line as usize).checked_sub(1)?));
                if let Some(line) = line {
                    row["source"] = json!(line.chars().take(SOURCE_LINE_MAX).collect::<String>());
                }
            }
            row
        })
        .collect()
}

/// `GET /api/v1/bindings`: every binding with its tier and whether it can win.
pub(crate) fn list(gw: &Gateway) -> Reply {
    let snap = gw.snapshot();
    json(
        StatusCode::OK,
        &json!({
            "file": gw.config_path(),
            "tiers": chela_core::routing::MatchedBy::TIERS,
            "bindings": snap.routes.audit(&snap.config),
        }),
    )
}

/// What the page asks for.
pub(crate) enum Edit {
    /// Append `{agentId, match}`.
    Add { agent_id: String, matcher: Json },
    /// Remove `bindings[index]`.
    Remove { index: usize },
    /// Set `agentId` and `match` of `bindings[index]` (its other keys, such
    /// as `comment`, and the comments around it stay).
    Replace { index: usize, agent_id: String, matcher: Json },
}

/// Applies one edit to the watched file.
pub(crate) async fn apply(gw: &Arc<Gateway>, edit: Edit) -> Reply {
    let Some(path) = gw.config_path() else {
        return error(StatusCode::CONFLICT, "no config file is watched: the gateway was given its config directly");
    };
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot read {file}: {e}")),
    };
    let before = match chela_core::config::load_str(&text, Some(&file)) {
        Ok(l) => l,
        Err(e) => {
            return edit_refused(
                StatusCode::CONFLICT,
                &format!("{file} does not load as it is now; fix it first (see the Config page)"),
                &e.diagnostics(),
                None,
            )
        }
    };
    let edited = match &edit {
        Edit::Add { agent_id, matcher } => {
            let element = json!({ "agentId": agent_id, "match": matcher }).to_string();
            append_to_array(&text, &["bindings"], &element)
        }
        Edit::Remove { index } => remove_array_elements(&text, &["bindings"], &[*index]),
        Edit::Replace { index, agent_id, matcher } => {
            let at = index.to_string();
            set_member(&text, &["bindings", &at], "agentId", &json!(agent_id).to_string())
                .and_then(|t| set_member(&t, &["bindings", &at], "match", &matcher.to_string()))
        }
    };
    let new = match edited {
        Ok(n) => n,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    };
    let env = gw.env.clone();
    let after = match chela_core::config::validate::check_edit(&before, &new, &file, &env) {
        Ok(a) => a,
        Err(problems) => {
            return edit_refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the edit would make the config invalid; nothing was written",
                &problems,
                Some((&file, &new)),
            )
        }
    };
    let (p, old, written) = (path.clone(), text.clone(), new.clone());
    match tokio::task::spawn_blocking(move || crate::write_config(&p, Some(&old), &written)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot write {file}: {e}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
    tracing::info!(file = %file, "config edited through the control API");
    gw.apply_written(&path, after).await;
    list(gw)
}

fn edit_refused(status: StatusCode, message: &str, problems: &[Diagnostic], edited: Option<(&str, &str)>) -> Reply {
    json(status, &json!({ "error": message, "problems": problems_json(problems, edited) }))
}
