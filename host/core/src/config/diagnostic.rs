//! Problems found in a config file, each with where it is and what to do.
//!
//! Loading and validation collect *all* problems into a list instead of
//! stopping at the first, so `chela config validate` can show them in one run.
//!
//! Must not: decide what is a problem (loading and validation do); it only carries and renders
//! them.

use std::fmt;

use super::source::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One problem: severity, location (file, line, column, field path), message, hint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The config file, when the text came from one.
    pub file: Option<String>,
    pub line: u32,
    pub column: u32,
    /// Field path in OpenClaw's spelling, e.g. `agents.list[2].workspace`.
    pub path: String,
    pub message: String,
    /// A fix to try ("did you mean `workspace`?", an equivalent snippet…).
    pub help: Option<String>,
    /// An OpenClaw setting chela does not implement (ignored; an error
    /// under `config validate --strict`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unimplemented: bool,
    /// The config file number the position is in (`Span::source`); the
    /// loader names that file in `file`.
    #[serde(skip)]
    pub source: u32,
}

impl Diagnostic {
    pub fn error(path: impl Into<String>, span: Span, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, path, span, message)
    }

    pub fn warning(path: impl Into<String>, span: Span, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, path, span, message)
    }

    fn new(severity: Severity, path: impl Into<String>, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            file: None,
            line: span.line,
            column: span.column,
            path: path.into(),
            message: message.into(),
            help: None,
            unimplemented: false,
            source: span.source,
        }
    }

    /// Marks an OpenClaw setting chela does not implement.
    pub fn unimplemented(mut self) -> Self {
        self.unimplemented = true;
        self
    }

    /// The same problem as an error (`--strict` on an ignored setting).
    pub fn strict(mut self) -> Self {
        if self.unimplemented {
            self.severity = Severity::Error;
        }
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if let Some(file) = &self.file {
            write!(f, "{file}:")?;
        }
        write!(f, "{}:{}: {sev}", self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, " at `{}`", self.path)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(help) = &self.help {
            for (i, line) in help.lines().enumerate() {
                if i == 0 {
                    write!(f, "\n  help: {line}")?;
                } else {
                    write!(f, "\n        {line}")?;
                }
            }
        }
        Ok(())
    }
}

/// The nearest known name to a misspelt one, if any is close enough.
pub fn suggest<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = unknown.to_lowercase();
    known
        .into_iter()
        .map(|k| (k, strsim::jaro_winkler(&lower, &k.to_lowercase())))
        .filter(|(_, score)| *score >= 0.82)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(suggest("worspace", ["workspace", "agentDir", "model"]), Some("workspace"));
        assert_eq!(suggest("agentdir", ["workspace", "agentDir"]), Some("agentDir"));
        assert_eq!(suggest("zzzz", ["workspace", "agentDir"]), None);
    }

    #[test]
    fn display_names_file_line_column_and_path() {
        let mut d = Diagnostic::error("agents.list[0].id", Span { offset: 0, line: 3, column: 7, source: 0 }, "bad")
            .with_help("fix it");
        d.file = Some("chela.json".into());
        assert_eq!(d.to_string(), "chela.json:3:7: error at `agents.list[0].id`: bad\n  help: fix it");
    }
}
