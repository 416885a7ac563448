//! OpenClaw's own documented config examples (collected into
//! `tests/fixtures/openclaw-docs/` by its `collect.mjs`: each one accepted by
//! `openclaw config validate` of the pinned release) load in chela. Keys
//! OpenClaw defines and chela does not implement load with a warning and
//! are errors under `--strict`; typos and wrong types stay errors.
//!
//! Must not: skip an example; one that does not load is a failure naming it.

use std::path::PathBuf;

use chela_core::config::{load_str, Diagnostic};

fn examples() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/openclaw-docs");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json5"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    out.sort();
    out
}

fn errors(text: &str, name: &str) -> Vec<Diagnostic> {
    match load_str(text, Some(name)) {
        Ok(_) => Vec::new(),
        Err(e) => e.diagnostics().into_iter().filter(Diagnostic::is_error).collect(),
    }
}

#[test]
fn every_documented_openclaw_config_example_loads() {
    let examples = examples();
    assert!(examples.len() >= 40, "only {} examples in tests/fixtures/openclaw-docs", examples.len());
    let refused: Vec<String> = examples
        .iter()
        .filter_map(|(name, text)| {
            let e = errors(text, name);
            (!e.is_empty()).then(|| e.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))
        })
        .collect();
    assert!(refused.is_empty(), "{} of {} examples refused:\n{}", refused.len(), examples.len(), refused.join("\n"));
}

#[test]
fn strict_refuses_the_examples_that_use_settings_chela_ignores() {
    let mut ignoring = 0;
    for (name, text) in examples() {
        let loaded = load_str(&text, Some(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ignored: Vec<&Diagnostic> = loaded.warnings.iter().filter(|d| d.unimplemented).collect();
        if !ignored.is_empty() {
            ignoring += 1;
            assert!(ignored.iter().all(|d| (*d).clone().strict().is_error()), "{name}");
            assert!(ignored.iter().all(|d| d.message.contains("chela does not implement")), "{name}: {ignored:?}");
        }
    }
    assert!(ignoring > 0, "no example uses a setting chela ignores: the strict check proves nothing");
}

#[test]
fn typos_stay_errors_with_a_suggestion_from_either_schema() {
    // Unknown to both: a typo of a key chela implements, and of one only OpenClaw has.
    let e = errors(r#"{ agents: { defaults: { worksapce: "/w", heartbeet: { every: "30m" } } } }"#, "typo.json5");
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(e[0].help.as_deref(), Some("did you mean `workspace`?"), "{e:?}");
    assert_eq!(e[1].help.as_deref(), Some("did you mean `heartbeat`?"), "{e:?}");
    let e = errors(r#"{ telemtry: {} }"#, "top.json5");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].help.as_deref(), Some("did you mean `telemetry`?"), "{e:?}");
}

#[test]
fn wrong_types_are_errors_even_under_keys_chela_ignores() {
    let text = "{ agents: { defaults: {\n  contextLimits: \"now and then\",\n} } }";
    let e = errors(text, "types.json5");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].path.as_str(), e[0].line), ("agents.defaults.contextLimits", 2), "{e:?}");
    assert!(e[0].message.contains("OpenClaw"), "{e:?}");
    // Deeper: the wrong value is named at its own place.
    let text = "{ agents: { defaults: { contextLimits: {\n  memoryGetMaxChars: \"lots\",\n} } } }";
    let e = errors(text, "deep.json5");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].path.as_str(), e[0].line), ("agents.defaults.contextLimits.memoryGetMaxChars", 2), "{e:?}");
    // In a section chela keeps as opaque JSON.
    let e = errors(r#"{ models: { providers: "ollama" } }"#, "opaque.json5");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].path, "models.providers", "{e:?}");
}

#[test]
fn context_pruning_settings_are_read_and_checked() {
    // The documented example is read, not ignored.
    let text = r#"{ agents: { defaults: { contextPruning: { mode: "cache-ttl", ttl: "1h",
        tools: { allow: [], deny: [] }, hardClear: { enabled: true, placeholder: "[Old tool result content cleared]" } } } } }"#;
    let loaded = load_str(text, Some("pruning.json5")).expect("loads");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    // A mode chela does not know is an error at its line; a ttl OpenClaw
    // could not read either is a warning (both fall back to 5m).
    let text = "{ agents: { defaults: { contextPruning: {\n  mode: \"sometimes\",\n  ttl: \"soon\",\n} } } }";
    let loaded = load_str(text, Some("bad.json5")).expect("loads: the checks are semantic");
    let found = chela_core::config::validate::validate(&loaded, &chela_core::config::paths::Environment::default());
    let at = |sev: bool| -> Vec<(&str, u32)> {
        found.iter().filter(|d| d.is_error() == sev).map(|d| (d.path.as_str(), d.line)).collect()
    };
    assert_eq!(at(true), [("agents.defaults.contextPruning.mode", 2)], "{found:?}");
    assert_eq!(at(false), [("agents.defaults.contextPruning.ttl", 3)], "{found:?}");
    assert!(found.iter().any(|d| d.message.contains("the default 5m is used")), "{found:?}");
}

#[test]
fn compaction_modes_and_identifier_policies_are_checked() {
    let text = "{ agents: { defaults: { compaction: {\n  mode: \"thorough\",\n  identifierPolicy: \"loose\",\n  qualityGuard: { enabled: true, maxRetries: 2 },\n  recentTurnsPreserve: 13,\n  timeoutSeconds: 0,\n  thinkingLevel: \"deep\",\n} } } }";
    let loaded = load_str(text, Some("compaction.json5")).expect("loads: the checks are semantic");
    assert!(loaded.warnings.is_empty(), "every key is read: {:?}", loaded.warnings);
    let found = chela_core::config::validate::validate(&loaded, &chela_core::config::paths::Environment::default());
    let errors: Vec<(&str, u32)> = found.iter().filter(|d| d.is_error()).map(|d| (d.path.as_str(), d.line)).collect();
    assert_eq!(
        errors,
        [
            ("agents.defaults.compaction.mode", 2),
            ("agents.defaults.compaction.identifierPolicy", 3),
            ("agents.defaults.compaction.thinkingLevel", 7),
            ("agents.defaults.compaction.timeoutSeconds", 6),
            ("agents.defaults.compaction.recentTurnsPreserve", 5)
        ],
        "{found:?}"
    );
}
