//! Diagnostics as people read them: rustc's layout (`error[code]: message`, `--> file:line:col`,
//! the source line, carets, `= help:`), and as JSON for tools. The CLI and the snapshot tests
//! both use this, so the tests check exactly what users see.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Severity};
use crate::text::{LineIndex, TextRange};

/// Reads a file's text for rendering (the project's files are usually already in memory).
pub type ReadText<'a> = &'a dyn Fn(&Path) -> Option<Arc<str>>;

/// How a path is shown: relative to `base` when it lies below it.
pub fn display_path(path: &Path, base: &Path) -> String {
    path.strip_prefix(base).unwrap_or(path).display().to_string()
}

pub struct Styles {
    pub color: bool,
}

impl Styles {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
    }
}

/// `file:line:col` of the start of a range.
pub fn location(path: &Path, base: &Path, text: Option<&str>, range: TextRange) -> String {
    match text {
        Some(text) => {
            let at = LineIndex::new(text).line_col(text, range.start);
            format!("{}:{}:{}", display_path(path, base), at.line, at.col)
        }
        None => display_path(path, base),
    }
}

pub fn human(diagnostic: &Diagnostic, base: &Path, read: ReadText<'_>, styles: &Styles) -> String {
    let mut out = String::new();
    let (color, label) = match diagnostic.severity {
        Severity::Error => ("1;31", "error"),
        Severity::Warning => ("1;33", "warning"),
        Severity::Hint => ("1;36", "hint"),
    };
    let _ = writeln!(
        out,
        "{}{}",
        styles.paint(color, &format!("{label}[{}]", diagnostic.code)),
        styles.paint("1", &format!(": {}", diagnostic.message))
    );
    let text = read(&diagnostic.file);
    let gutter_width;
    match text.as_deref() {
        Some(text) => {
            let index = LineIndex::new(text);
            let start = index.line_col(text, diagnostic.range.start);
            let line_no = start.line.to_string();
            gutter_width = line_no.len();
            let pad = " ".repeat(gutter_width);
            let _ =
                writeln!(out, "{pad}{} {}:{}:{}", styles.paint("1;34", "-->"), display_path(&diagnostic.file, base), start.line, start.col);
            let line_range = index.line_range(text, start.line - 1);
            let line = &text[line_range.as_range()];
            let _ = writeln!(out, "{pad} {}", styles.paint("1;34", "|"));
            let _ = writeln!(out, "{} {} {}", styles.paint("1;34", &line_no), styles.paint("1;34", "|"), line.replace('\t', "    "));
            let caret_start = line[..diagnostic.range.start - line_range.start].replace('\t', "    ").chars().count();
            let end = diagnostic.range.end.min(line_range.end).max(diagnostic.range.start);
            let width = text[diagnostic.range.start..end].chars().count().max(1);
            let _ =
                writeln!(out, "{pad} {} {}{}", styles.paint("1;34", "|"), " ".repeat(caret_start), styles.paint(color, &"^".repeat(width)));
        }
        None => {
            gutter_width = 1;
            let _ = writeln!(out, "  {} {}", styles.paint("1;34", "-->"), display_path(&diagnostic.file, base));
        }
    }
    let pad = " ".repeat(gutter_width);
    for related in &diagnostic.related {
        let text = read(&related.file);
        let _ = writeln!(
            out,
            "{pad} {} note: {} ({})",
            styles.paint("1;34", "="),
            related.message,
            location(&related.file, base, text.as_deref(), related.range)
        );
    }
    if let Some(help) = &diagnostic.help {
        let _ = writeln!(out, "{pad} {} help: {help}", styles.paint("1;34", "="));
    }
    out
}

/// The diagnostics as a JSON array: positions 1-based, columns in characters.
pub fn json(diagnostics: &[Diagnostic], base: &Path, read: ReadText<'_>) -> serde_json::Value {
    let position = |path: &Path, range: TextRange| -> serde_json::Value {
        match read(path) {
            Some(text) => {
                let index = LineIndex::new(&text);
                let start = index.line_col(&text, range.start);
                let end = index.line_col(&text, range.end);
                serde_json::json!({"line": start.line, "column": start.col, "end_line": end.line, "end_column": end.col})
            }
            None => serde_json::json!({}),
        }
    };
    serde_json::Value::Array(
        diagnostics
            .iter()
            .map(|diagnostic| {
                let mut value = serde_json::json!({
                    "file": display_path(&diagnostic.file, base),
                    "severity": diagnostic.severity.as_str(),
                    "code": diagnostic.code.as_str(),
                    "message": diagnostic.message,
                    "help": diagnostic.help,
                    "related": diagnostic.related.iter().map(|related| {
                        let mut value = serde_json::json!({"file": display_path(&related.file, base), "message": related.message});
                        merge(&mut value, position(&related.file, related.range));
                        value
                    }).collect::<Vec<_>>(),
                });
                merge(&mut value, position(&diagnostic.file, diagnostic.range));
                value
            })
            .collect(),
    )
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (Some(into), serde_json::Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

/// `N errors, M warnings` for a summary line.
pub fn summary(diagnostics: &[Diagnostic]) -> String {
    let count = |severity| diagnostics.iter().filter(|it| it.severity == severity).count();
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!("{}, {}", plural(errors, "error"), plural(warnings, "warning"))
}
