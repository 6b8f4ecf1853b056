//! The one place where positions change representation: model byte offsets <-> LSP positions
//! (UTF-16 code units by default, bytes when the client agreed to UTF-8), incremental edits
//! onto a rope, paths <-> URIs, and model diagnostics -> LSP diagnostics.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pipeline::text::{LineIndex, TextRange};
use ropey::Rope;
use tower_lsp_server::ls_types::{self as lsp, Uri};

/// How the client counts columns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    #[default]
    Utf16,
    Utf8,
}

impl Encoding {
    /// UTF-8 when the client offers it, else the protocol's default UTF-16.
    pub fn negotiate(params: &lsp::InitializeParams) -> Encoding {
        let offered = params.capabilities.general.as_ref().and_then(|general| general.position_encodings.as_ref());
        if offered.is_some_and(|list| list.contains(&lsp::PositionEncodingKind::UTF8)) { Encoding::Utf8 } else { Encoding::Utf16 }
    }

    pub fn kind(self) -> lsp::PositionEncodingKind {
        match self {
            Encoding::Utf16 => lsp::PositionEncodingKind::UTF16,
            Encoding::Utf8 => lsp::PositionEncodingKind::UTF8,
        }
    }

    fn utf8(self) -> bool {
        self == Encoding::Utf8
    }
}

/// A text with its line index, for converting many offsets of one file.
pub struct Lines<'a> {
    pub text: &'a str,
    index: LineIndex,
    encoding: Encoding,
}

impl<'a> Lines<'a> {
    pub fn new(text: &'a str, encoding: Encoding) -> Lines<'a> {
        Lines { text, index: LineIndex::new(text), encoding }
    }

    pub fn position(&self, offset: usize) -> lsp::Position {
        let (line, col) = self.index.lsp_position(self.text, offset, self.encoding.utf8());
        lsp::Position::new(line as u32, col as u32)
    }

    pub fn range(&self, range: TextRange) -> lsp::Range {
        lsp::Range::new(self.position(range.start), self.position(range.end))
    }

    pub fn offset(&self, position: lsp::Position) -> usize {
        self.index.offset_of(self.text, position.line as usize, position.character as usize, self.encoding.utf8())
    }
}

/// The char index of an LSP position in a rope; columns past the end of a line clamp to it.
fn rope_char(rope: &Rope, position: lsp::Position, encoding: Encoding) -> usize {
    let line = position.line as usize;
    if line >= rope.len_lines() {
        return rope.len_chars();
    }
    let start = rope.line_to_char(line);
    let slice = rope.line(line);
    // The line without its terminator.
    let mut len_chars = slice.len_chars();
    while len_chars > 0 && matches!(slice.char(len_chars - 1), '\n' | '\r') {
        len_chars -= 1;
    }
    let slice = slice.slice(..len_chars);
    let col = position.character as usize;
    let chars = match encoding {
        Encoding::Utf16 => slice.utf16_cu_to_char(col.min(slice.len_utf16_cu())),
        Encoding::Utf8 => slice.byte_to_char(col.min(slice.len_bytes())),
    };
    start + chars
}

/// Applies one `didChange` content change to a rope: a range edit, or the whole text.
pub fn apply_change(rope: &mut Rope, change: &lsp::TextDocumentContentChangeEvent, encoding: Encoding) {
    match change.range {
        None => *rope = Rope::from_str(&change.text),
        Some(range) => {
            let start = rope_char(rope, range.start, encoding);
            let end = rope_char(rope, range.end, encoding).max(start);
            rope.remove(start..end);
            rope.insert(start, &change.text);
        }
    }
}

pub fn uri(path: &Path) -> Uri {
    Uri::from_file_path(path).unwrap_or_else(|| "file:///".parse().expect("a valid URI"))
}

pub fn path(uri: &Uri) -> Option<PathBuf> {
    uri.to_file_path().map(|path| path.into_owned())
}

/// Converts ranges of several files, reading each file's text once.
pub struct RangeCache<F> {
    encoding: Encoding,
    texts: F,
    cache: HashMap<PathBuf, (std::sync::Arc<str>, LineIndex)>,
}

impl<F: Fn(&Path) -> Option<std::sync::Arc<str>>> RangeCache<F> {
    pub fn new(encoding: Encoding, texts: F) -> RangeCache<F> {
        RangeCache { encoding, texts, cache: HashMap::new() }
    }

    pub fn range(&mut self, file: &Path, range: TextRange) -> lsp::Range {
        if !self.cache.contains_key(file) {
            let text = (self.texts)(file).unwrap_or_else(|| std::sync::Arc::from(""));
            let index = LineIndex::new(&text);
            self.cache.insert(file.to_path_buf(), (text, index));
        }
        let (text, index) = &self.cache[file];
        let utf8 = self.encoding.utf8();
        let pos = |offset| {
            let (line, col) = index.lsp_position(text, offset, utf8);
            lsp::Position::new(line as u32, col as u32)
        };
        lsp::Range::new(pos(range.start), pos(range.end))
    }

    pub fn location(&mut self, file: &Path, range: TextRange) -> lsp::Location {
        lsp::Location::new(uri(file), self.range(file, range))
    }

    /// A model diagnostic as the client sees it: code = the kebab name, help appended to the
    /// message, related places as `relatedInformation`.
    pub fn diagnostic(&mut self, diagnostic: &pipeline::Diagnostic) -> lsp::Diagnostic {
        let severity = match diagnostic.severity {
            pipeline::Severity::Error => lsp::DiagnosticSeverity::ERROR,
            pipeline::Severity::Warning => lsp::DiagnosticSeverity::WARNING,
            pipeline::Severity::Hint => lsp::DiagnosticSeverity::HINT,
        };
        let mut message = diagnostic.message.clone();
        if let Some(help) = &diagnostic.help {
            message.push_str("\nhelp: ");
            message.push_str(help);
        }
        let related: Vec<lsp::DiagnosticRelatedInformation> = diagnostic
            .related
            .iter()
            .map(|related| lsp::DiagnosticRelatedInformation {
                location: self.location(&related.file, related.range),
                message: related.message.clone(),
            })
            .collect();
        lsp::Diagnostic {
            range: self.range(&diagnostic.file, diagnostic.range),
            severity: Some(severity),
            code: Some(lsp::NumberOrString::String(diagnostic.code.as_str().to_owned())),
            source: Some("wand".to_owned()),
            message,
            related_information: if related.is_empty() { None } else { Some(related) },
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(sl: u32, sc: u32, el: u32, ec: u32, text: &str) -> lsp::TextDocumentContentChangeEvent {
        lsp::TextDocumentContentChangeEvent {
            range: Some(lsp::Range::new(lsp::Position::new(sl, sc), lsp::Position::new(el, ec))),
            range_length: None,
            text: text.into(),
        }
    }

    #[test]
    fn edits_count_utf16_units_by_default_and_bytes_for_utf8() {
        // 'é' is 1 UTF-16 unit and 2 bytes; '😀' is 2 UTF-16 units and 4 bytes.
        let mut rope = Rope::from_str("a: é😀x\nb\n");
        apply_change(&mut rope, &change(0, 6, 0, 7, "y"), Encoding::Utf16);
        assert_eq!(rope.to_string(), "a: é😀y\nb\n");
        let mut rope = Rope::from_str("a: é😀x\nb\n");
        apply_change(&mut rope, &change(0, 9, 0, 10, "y"), Encoding::Utf8);
        assert_eq!(rope.to_string(), "a: é😀y\nb\n");
        // Past the end of a line clamps to the line's end, never into the next line.
        let mut rope = Rope::from_str("ab\ncd\n");
        apply_change(&mut rope, &change(0, 99, 0, 99, "!"), Encoding::Utf16);
        assert_eq!(rope.to_string(), "ab!\ncd\n");
        apply_change(&mut rope, &change(5, 0, 5, 0, "z"), Encoding::Utf16);
        assert_eq!(rope.to_string(), "ab!\ncd\nz");
    }

    #[test]
    fn offsets_and_positions_round_trip() {
        let text = "x: 😀é\ny\n";
        for encoding in [Encoding::Utf16, Encoding::Utf8] {
            let lines = Lines::new(text, encoding);
            for (offset, _) in text.char_indices() {
                assert_eq!(lines.offset(lines.position(offset)), offset, "{encoding:?} {offset}");
            }
        }
        let lines = Lines::new(text, Encoding::Utf16);
        assert_eq!(lines.position(text.find('é').unwrap()), lsp::Position::new(0, 5));
        let lines = Lines::new(text, Encoding::Utf8);
        assert_eq!(lines.position(text.find('é').unwrap()), lsp::Position::new(0, 7));
    }
}
