//! Block outputs, tests and errors as MIME bundles and Jupyter errors. Pure.

use std::fmt::Write as _;

use pipeline::runrecord::{BlockError, TestResult};
use polars::prelude::{AnyValue, DataFrame};
use serde_json::{Value as Json, json};

use super::wire::{ErrorContent, MimeBundle};
use crate::engine::store::{Output, Value};

/// Rows shown of a data frame.
pub const HEAD_ROWS: usize = 10;

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn cell_text(value: AnyValue<'_>) -> String {
    match value {
        AnyValue::Null => "null".to_owned(),
        AnyValue::String(text) => text.to_owned(),
        AnyValue::StringOwned(text) => text.to_string(),
        other => other.to_string(),
    }
}

/// A frame as an HTML table (first rows, shape, column types) and its text twin.
pub fn frame(df: &DataFrame, title: &str) -> (String, String) {
    let head = df.head(Some(HEAD_ROWS));
    let mut html = String::new();
    let _ = write!(html, "<div class=\"wand-frame\"><p><b>{}</b> {} rows × {} columns</p>", escape(title), df.height(), df.width());
    html.push_str("<table class=\"dataframe\"><thead><tr>");
    for column in df.columns() {
        let _ = write!(html, "<th>{}<br/><small>{}</small></th>", escape(column.name()), escape(&column.dtype().to_string()));
    }
    html.push_str("</tr></thead><tbody>");
    for row in 0..head.height() {
        html.push_str("<tr>");
        for column in head.columns() {
            let text = column.get(row).map(cell_text).unwrap_or_default();
            let _ = write!(html, "<td>{}</td>", escape(&text));
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
    if df.height() > HEAD_ROWS {
        let _ = write!(html, "<p><small>first {HEAD_ROWS} of {} rows</small></p>", df.height());
    }
    html.push_str("</div>");
    let types: Vec<String> = df.columns().iter().map(|column| format!("{}: {}", column.name(), column.dtype())).collect();
    let text = format!("{title} {} rows × {} columns ({})\n{head}", df.height(), df.width(), types.join(", "));
    (html, text)
}

fn value_parts(value: &Value, title: &str) -> (String, String) {
    match value {
        Value::Frame(df) => frame(df, title),
        Value::Json(value) => {
            let text = serde_json::to_string_pretty(value).unwrap_or_default();
            (format!("<p><b>{}</b></p><pre>{}</pre>", escape(title), escape(&text)), format!("{title}\n{text}"))
        }
        Value::Opaque { repr } => (format!("<p><b>{}</b></p><pre>{}</pre>", escape(title), escape(repr)), format!("{title}\n{repr}")),
    }
}

/// What a block cell shows: a status line, each output, each test with its mark.
pub fn block_bundle(uuid: &str, status: &str, outputs: &[Output], tests: &[TestResult]) -> MimeBundle {
    let mut html = format!("<div class=\"wand-block\"><p><code>{}</code>: {}</p>", escape(uuid), escape(status));
    let mut text = format!("{uuid}: {status}\n");
    for (idx, output) in outputs.iter().enumerate() {
        let title = if outputs.len() == 1 { "output".to_owned() } else { format!("output_{idx}") };
        let (h, t) = value_parts(&output.value, &title);
        html.push_str(&h);
        text.push_str(&t);
        text.push('\n');
    }
    if !tests.is_empty() {
        html.push_str("<ul class=\"wand-tests\">");
        for test in tests {
            let line = test_line(test);
            let _ = write!(html, "<li>{}</li>", escape(&line));
            text.push_str(&line);
            text.push('\n');
        }
        html.push_str("</ul>");
    }
    html.push_str("</div>");
    let mut bundle = MimeBundle::new();
    bundle.insert("text/plain".into(), json!(text.trim_end()));
    bundle.insert("text/html".into(), json!(html));
    bundle
}

pub fn test_line(test: &TestResult) -> String {
    if test.passed {
        format!("✓ {}", test.name)
    } else {
        let line = test.failed_line.or(test.line).map(|it| format!(" (line {it})")).unwrap_or_default();
        let message = test.message.as_deref().filter(|it| !it.is_empty()).unwrap_or("assertion failed");
        format!("✗ {}{line}: {message}", test.name)
    }
}

/// A status-only bundle (stale marks, "running ...").
pub fn note_bundle(uuid: &str, note: &str) -> MimeBundle {
    let mut bundle = MimeBundle::new();
    bundle.insert("text/plain".into(), json!(format!("{uuid}: {note}")));
    bundle.insert(
        "text/html".into(),
        json!(format!("<div class=\"wand-block\"><p><code>{}</code>: {}</p></div>", escape(uuid), escape(note))),
    );
    bundle
}

/// A failed block as a Jupyter error; a failed test names the tests.
pub fn block_error(uuid: &str, file: Option<&str>, error: Option<&BlockError>, tests: &[TestResult]) -> ErrorContent {
    let failed: Vec<&TestResult> = tests.iter().filter(|test| !test.passed).collect();
    if !failed.is_empty() {
        let names: Vec<&str> = failed.iter().map(|test| test.name.as_str()).collect();
        let mut traceback: Vec<String> = failed.iter().map(|test| test_line(test)).collect();
        if let Some(file) = file {
            traceback.push(format!("in {file}"));
        }
        return ErrorContent { ename: "TestFailed".into(), evalue: format!("block {uuid}: failed tests: {}", names.join(", ")), traceback };
    }
    match error {
        Some(error) => {
            let mut traceback = error.traceback.clone();
            if traceback.is_empty() {
                traceback.push(format!("{}: {}", error.ename, error.evalue));
            }
            if let (Some(file), Some(line)) = (file, error.line) {
                traceback.push(format!("at {file}:{line}"));
            }
            ErrorContent { ename: error.ename.clone(), evalue: format!("block {uuid}: {}", error.evalue), traceback }
        }
        None => ErrorContent { ename: "BlockFailed".into(), evalue: format!("block {uuid} did not succeed"), traceback: vec![] },
    }
}

pub fn text_bundle(text: &str) -> MimeBundle {
    let mut bundle = MimeBundle::new();
    bundle.insert("text/plain".into(), Json::String(text.to_owned()));
    bundle
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::df;

    #[test]
    fn frames_show_shape_types_and_rows() {
        let df = df!("day" => ["a<b", "c"], "n" => [1i64, 2]).unwrap();
        let (html, text) = frame(&df, "output");
        assert!(html.contains("2 rows × 2 columns"), "{html}");
        assert!(html.contains("<td>a&lt;b</td>"), "{html}");
        assert!(html.contains("<small>i64</small>"), "{html}");
        assert!(text.contains("day: str"), "{text}");
    }

    #[test]
    fn failing_tests_name_themselves() {
        let tests = vec![
            TestResult { name: "test_ok".into(), passed: true, message: None, line: Some(3), failed_line: None },
            TestResult { name: "test_rows".into(), passed: false, message: Some("no rows".into()), line: Some(9), failed_line: Some(10) },
        ];
        let err = block_error("clean", Some("transformers/clean.py"), None, &tests);
        assert_eq!(err.evalue, "block clean: failed tests: test_rows");
        assert_eq!(err.traceback[0], "✗ test_rows (line 10): no rows");
    }
}
