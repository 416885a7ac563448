//! The `*** Begin Patch` format: parsing and applying hunks (plain Rust,
//! unit-tested natively).
//!
//! Must not: touch files; it parses and applies to text only.

#[derive(Debug, PartialEq)]
pub struct Hunk {
    /// The `@@ …` header text: a line to find before the hunk (may be empty).
    pub anchor: String,
    /// Lines the file has here (context and removed).
    pub old: Vec<String>,
    /// Lines it should have (context and added).
    pub new: Vec<String>,
    /// `*** End of File`: the hunk is at the end.
    pub at_end: bool,
}

#[derive(Debug, PartialEq)]
pub enum Op {
    Add { path: String, content: String },
    Delete { path: String },
    Update { path: String, move_to: Option<String>, hunks: Vec<Hunk> },
}

fn path_of(rest: &str, line_no: usize) -> Result<String, String> {
    let p = rest.trim();
    if p.is_empty() {
        return Err(format!("line {line_no}: a file operation without a path"));
    }
    Ok(p.to_string())
}

/// Parses a whole patch; errors name the line.
pub fn parse(input: &str) -> Result<Vec<Op>, String> {
    let lines: Vec<&str> = input.trim().lines().collect();
    if lines.first().map(|l| l.trim()) != Some("*** Begin Patch") {
        return Err("the patch must start with `*** Begin Patch`".into());
    }
    if lines.last().map(|l| l.trim()) != Some("*** End Patch") {
        return Err("the patch must end with `*** End Patch`".into());
    }
    let body = &lines[1..lines.len() - 1];
    let mut ops = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let n = i + 2; // 1-based, after the Begin line
        let line = body[i];
        if let Some(rest) = line.strip_prefix("*** Add File: ") {
            let path = path_of(rest, n)?;
            let mut content = String::new();
            i += 1;
            while i < body.len() && !body[i].starts_with("*** ") {
                let l = body[i]
                    .strip_prefix('+')
                    .ok_or_else(|| format!("line {}: lines of an added file start with `+`: `{}`", i + 2, body[i]))?;
                content.push_str(l);
                content.push('\n');
                i += 1;
            }
            ops.push(Op::Add { path, content });
        } else if let Some(rest) = line.strip_prefix("*** Delete File: ") {
            ops.push(Op::Delete { path: path_of(rest, n)? });
            i += 1;
        } else if let Some(rest) = line.strip_prefix("*** Update File: ") {
            let path = path_of(rest, n)?;
            i += 1;
            let mut move_to = None;
            if let Some(to) = body.get(i).and_then(|l| l.strip_prefix("*** Move to: ")) {
                move_to = Some(path_of(to, i + 2)?);
                i += 1;
            }
            let mut hunks: Vec<Hunk> = Vec::new();
            while i < body.len() && (!body[i].starts_with("*** ") || body[i].trim() == "*** End of File") {
                let l = body[i];
                if let Some(anchor) = l.strip_prefix("@@") {
                    hunks.push(Hunk { anchor: anchor.trim().to_string(), old: vec![], new: vec![], at_end: false });
                } else if l.trim() == "*** End of File" {
                    if let Some(h) = hunks.last_mut() {
                        h.at_end = true;
                    }
                } else {
                    if hunks.is_empty() {
                        hunks.push(Hunk { anchor: String::new(), old: vec![], new: vec![], at_end: false });
                    }
                    let h = hunks.last_mut().expect("pushed above");
                    match l.chars().next() {
                        Some('+') => h.new.push(l[1..].to_string()),
                        Some('-') => h.old.push(l[1..].to_string()),
                        Some(' ') => {
                            h.old.push(l[1..].to_string());
                            h.new.push(l[1..].to_string());
                        }
                        None => {
                            h.old.push(String::new());
                            h.new.push(String::new());
                        }
                        _ => return Err(format!("line {}: a hunk line starts with ` `, `-` or `+`: `{l}`", i + 2)),
                    }
                }
                i += 1;
            }
            if hunks.iter().all(|h| h.old.is_empty() && h.new.is_empty()) {
                return Err(format!("line {n}: `*** Update File: {path}` has no changes"));
            }
            ops.push(Op::Update { path, move_to, hunks });
        } else if line.trim().is_empty() {
            i += 1;
        } else {
            return Err(format!(
                "line {n}: expected `*** Add File:`, `*** Update File:` or `*** Delete File:`, not `{line}`"
            ));
        }
    }
    if ops.is_empty() {
        return Err("the patch changes nothing".into());
    }
    Ok(ops)
}

/// Where `needle` occurs in `hay` at or after `from`, under one of three
/// comparisons (exact, trailing whitespace ignored, surrounding whitespace ignored).
fn find(hay: &[&str], needle: &[String], from: usize, at_end: bool) -> Option<usize> {
    let comparisons: [fn(&str, &str) -> bool; 3] =
        [|a, b| a == b, |a, b| a.trim_end() == b.trim_end(), |a, b| a.trim() == b.trim()];
    for same in comparisons {
        let fits = |start: usize| needle.iter().enumerate().all(|(k, n)| same(hay[start + k], n));
        if needle.len() > hay.len() {
            return None;
        }
        let last = hay.len() - needle.len();
        if at_end {
            if last >= from && fits(last) {
                return Some(last);
            }
            continue;
        }
        if let Some(s) = (from..=last).find(|s| fits(*s)) {
            return Some(s);
        }
    }
    None
}

/// Applies hunks in order; an error says which hunk did not fit.
pub fn apply(text: &str, hunks: &[Hunk]) -> Result<String, String> {
    let trailing_newline = text.ends_with('\n') || text.is_empty();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut cursor = 0;
    for (n, h) in hunks.iter().enumerate() {
        let view: Vec<&str> = lines.iter().map(String::as_str).collect();
        if !h.anchor.is_empty() {
            let anchor = [h.anchor.clone()];
            match find(&view, &anchor, cursor, false) {
                Some(at) => cursor = at + 1,
                None => return Err(format!("hunk {}: cannot find the line `{}`", n + 1, h.anchor)),
            }
        }
        let at = if h.old.is_empty() {
            if h.at_end {
                lines.len()
            } else {
                cursor
            }
        } else {
            find(&view, &h.old, cursor, h.at_end).ok_or_else(|| {
                format!(
                    "hunk {}: the lines it changes are not in the file (expected `{}`…); read the file and retry",
                    n + 1,
                    h.old.first().map(String::as_str).unwrap_or_default()
                )
            })?
        };
        lines.splice(at..at + h.old.len(), h.new.iter().cloned());
        cursor = at + h.new.len();
    }
    let mut out = lines.join("\n");
    if trailing_newline && !out.is_empty() {
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_add_update_move_delete() {
        let p = "*** Begin Patch\n*** Add File: a.md\n+one\n+two\n*** Update File: b.py\n*** Move to: c.py\n@@ def f():\n-    return 1\n+    return 2\n*** Delete File: d.txt\n*** End Patch";
        let ops = parse(p).unwrap();
        assert_eq!(ops[0], Op::Add { path: "a.md".into(), content: "one\ntwo\n".into() });
        match &ops[1] {
            Op::Update { path, move_to, hunks } => {
                assert_eq!((path.as_str(), move_to.as_deref()), ("b.py", Some("c.py")));
                assert_eq!(hunks[0].anchor, "def f():");
                assert_eq!(hunks[0].old, ["    return 1"]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(ops[2], Op::Delete { path: "d.txt".into() });
    }

    #[test]
    fn bad_patches_name_the_problem() {
        assert!(parse("hello").unwrap_err().contains("Begin Patch"));
        assert!(parse("*** Begin Patch\n*** Frob: x\n*** End Patch").unwrap_err().contains("line 2"));
        assert!(parse("*** Begin Patch\n*** Add File: x\nno plus\n*** End Patch").unwrap_err().contains("line 3"));
        assert!(parse("*** Begin Patch\n*** End Patch").unwrap_err().contains("nothing"));
    }

    #[test]
    fn applies_with_context_anchors_and_whitespace_tolerance() {
        let text = "def f():\n    return 1\n\ndef g():\n    return 1\n";
        let ops =
            parse("*** Begin Patch\n*** Update File: x\n@@ def g():\n-    return 1\n+    return 3\n*** End Patch")
                .unwrap();
        let Op::Update { hunks, .. } = &ops[0] else { panic!() };
        assert_eq!(apply(text, hunks).unwrap(), "def f():\n    return 1\n\ndef g():\n    return 3\n");
        // Trailing spaces in the model's copy still fit.
        let hunks = vec![Hunk {
            anchor: String::new(),
            old: vec!["def f():  ".into()],
            new: vec!["def h():".into()],
            at_end: false,
        }];
        assert!(apply(text, &hunks).unwrap().starts_with("def h():\n"));
        // A hunk that does not fit fails, naming it.
        let hunks = vec![Hunk { anchor: String::new(), old: vec!["nope".into()], new: vec![], at_end: false }];
        assert!(apply(text, &hunks).unwrap_err().contains("hunk 1"));
        // Appending at the end of the file.
        let hunks = vec![Hunk { anchor: String::new(), old: vec![], new: vec!["# end".into()], at_end: true }];
        assert!(apply(text, &hunks).unwrap().ends_with("return 1\n# end\n"));
    }
}
