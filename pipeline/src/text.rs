//! Byte ranges in a file and their conversion to lines and columns.
//!
//! Every span in the model is a byte range into the file's text; lines and columns are computed
//! only at the edges (the terminal renderer, the language server), through [`LineIndex`].

use std::ops::Range;

/// A half-open byte range `start..end` into one file's text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TextRange {
    pub start: usize,
    pub end: usize,
}

impl TextRange {
    pub fn new(start: usize, end: usize) -> TextRange {
        TextRange { start, end: end.max(start) }
    }

    pub fn empty(at: usize) -> TextRange {
        TextRange { start: at, end: at }
    }

    pub fn len(self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(self) -> bool {
        self.start == self.end
    }

    pub fn contains(self, offset: usize) -> bool {
        self.start <= offset && offset <= self.end
    }

    pub fn as_range(self) -> Range<usize> {
        self.start..self.end
    }
}

/// A position as a person reads it: 1-based line, 1-based column counted in characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineCol {
    pub line: usize,
    pub col: usize,
}

/// Start offsets of the lines of one text.
#[derive(Clone, Debug)]
pub struct LineIndex {
    line_starts: Vec<usize>,
    len: usize,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(idx, _)| idx + 1));
        LineIndex { line_starts, len: text.len() }
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// 0-based line number holding `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(line) => line,
            Err(next) => next - 1,
        }
    }

    /// Byte range of a 0-based line, without its line terminator.
    pub fn line_range(&self, text: &str, line: usize) -> TextRange {
        let start = self.line_starts[line.min(self.line_starts.len() - 1)];
        let mut end = self.line_starts.get(line + 1).copied().unwrap_or(self.len);
        let bytes = text.as_bytes();
        while end > start && matches!(bytes.get(end - 1), Some(b'\n' | b'\r')) {
            end -= 1;
        }
        TextRange::new(start, end)
    }

    /// The 1-based line and 1-based character column of a byte offset.
    pub fn line_col(&self, text: &str, offset: usize) -> LineCol {
        let offset = clamp_to_char_boundary(text, offset);
        let line = self.line_of(offset);
        let start = self.line_starts[line];
        LineCol { line: line + 1, col: text[start..offset].chars().count() + 1 }
    }

    /// The byte offset of a 0-based line and a column counted in UTF-16 code units (the LSP
    /// default) or bytes (`utf8 == true`); past-the-end columns clamp to the end of the line.
    pub fn offset_of(&self, text: &str, line: usize, col: usize, utf8: bool) -> usize {
        if line >= self.line_starts.len() {
            return self.len;
        }
        let range = self.line_range(text, line);
        let line_text = &text[range.as_range()];
        if utf8 {
            return clamp_to_char_boundary(text, range.start + col.min(line_text.len()));
        }
        let mut units = 0;
        for (idx, ch) in line_text.char_indices() {
            if units >= col {
                return range.start + idx;
            }
            units += ch.len_utf16();
        }
        range.end
    }

    /// 0-based line and column of a byte offset, the column in UTF-16 units or bytes.
    pub fn lsp_position(&self, text: &str, offset: usize, utf8: bool) -> (usize, usize) {
        let offset = clamp_to_char_boundary(text, offset);
        let line = self.line_of(offset);
        let start = self.line_starts[line];
        let col = if utf8 { offset - start } else { text[start..offset].chars().map(char::len_utf16).sum() };
        (line, col)
    }
}

pub(crate) fn clamp_to_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_through_utf16_and_utf8() {
        let text = "a: é\nb: 😀x\n";
        let index = LineIndex::new(text);
        let x = text.find('x').unwrap();
        assert_eq!(index.line_col(text, x), LineCol { line: 2, col: 5 });
        assert_eq!(index.lsp_position(text, x, false), (1, 5));
        assert_eq!(index.lsp_position(text, x, true), (1, 7));
        assert_eq!(index.offset_of(text, 1, 5, false), x);
        assert_eq!(index.offset_of(text, 1, 7, true), x);
        assert_eq!(index.offset_of(text, 9, 0, false), text.len());
    }
}
