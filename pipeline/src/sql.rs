//! References inside a SQL block's Jinja template: `{{ df_N }}`, `block_output('x')` and
//! `variables('x')`, with positions. Only the insides of `{{ ... }}` and `{% ... %}` are looked
//! at, token by token; the SQL itself is left to whoever runs it.

use crate::text::TextRange;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SqlTemplate {
    pub refs: Vec<SqlRef>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqlRefKind {
    /// `df_N`, 1-based: the N-th entry of `upstream_blocks`.
    Df(usize),
    /// `block_output('uuid')`.
    BlockOutput(String),
    /// `variables('name')`.
    Variable(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlRef {
    pub kind: SqlRefKind,
    /// The `df_N` word, or the quoted argument's text without its quotes.
    pub range: TextRange,
}

pub fn parse(text: &str) -> SqlTemplate {
    let mut refs = Vec::new();
    let mut from = 0;
    while let Some(open) = find_open(text, from) {
        let close_pat = if text.as_bytes()[open + 1] == b'{' { "}}" } else { "%}" };
        let inner_start = open + 2;
        let inner_end = text[inner_start..].find(close_pat).map_or(text.len(), |idx| inner_start + idx);
        scan_expression(text, inner_start, inner_end, &mut refs);
        from = (inner_end + 2).min(text.len());
    }
    SqlTemplate { refs }
}

fn find_open(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    (from..bytes.len().saturating_sub(1)).find(|&idx| bytes[idx] == b'{' && matches!(bytes[idx + 1], b'{' | b'%'))
}

fn scan_expression(text: &str, start: usize, end: usize, refs: &mut Vec<SqlRef>) {
    let bytes = text.as_bytes();
    let mut idx = start;
    while idx < end {
        let b = bytes[idx];
        if b == b'\'' || b == b'"' {
            idx = skip_string(bytes, idx, end);
            continue;
        }
        if !(b.is_ascii_alphabetic() || b == b'_') {
            idx += 1;
            continue;
        }
        let word_start = idx;
        while idx < end && (bytes[idx].is_ascii_alphanumeric() || bytes[idx] == b'_') {
            idx += 1;
        }
        let word = &text[word_start..idx];
        let preceded_by_dot = word_start > start && bytes[word_start - 1] == b'.';
        if preceded_by_dot {
            continue;
        }
        if let Some(n) = word.strip_prefix("df_").and_then(|digits| digits.parse::<usize>().ok()) {
            refs.push(SqlRef { kind: SqlRefKind::Df(n), range: TextRange::new(word_start, idx) });
        } else if word == "block_output" || word == "variables" {
            if let Some((arg, range)) = first_string_argument(text, idx, end) {
                let kind = if word == "block_output" { SqlRefKind::BlockOutput(arg) } else { SqlRefKind::Variable(arg) };
                refs.push(SqlRef { kind, range });
            }
        }
    }
}

fn skip_string(bytes: &[u8], open: usize, end: usize) -> usize {
    let quote = bytes[open];
    let mut idx = open + 1;
    while idx < end && bytes[idx] != quote {
        idx += if bytes[idx] == b'\\' { 2 } else { 1 };
    }
    (idx + 1).min(end.max(open + 1))
}

/// `( 'text'` right after a function name: the text and its range without quotes.
fn first_string_argument(text: &str, after_name: usize, end: usize) -> Option<(String, TextRange)> {
    let bytes = text.as_bytes();
    let mut idx = after_name;
    while idx < end && bytes[idx].is_ascii_whitespace() {
        idx += 1;
    }
    if bytes.get(idx) != Some(&b'(') {
        return None;
    }
    idx += 1;
    while idx < end && bytes[idx].is_ascii_whitespace() {
        idx += 1;
    }
    let quote = *bytes.get(idx).filter(|&&q| q == b'\'' || q == b'"')?;
    let value_start = idx + 1;
    let value_end = value_start + text[value_start..end].find(quote as char)?;
    Some((text[value_start..value_end].to_owned(), TextRange::new(value_start, value_end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_references_inside_templates_only() {
        let text = "SELECT df_9 FROM {{ df_1 }} JOIN {{df_2}} ON x = '{{ block_output(\"load\") }}'\n\
                    WHERE d > '{{ variables('start') }}' {% if 'df_7' %}{{ other.df_8 }}{% endif %}";
        let refs = parse(text).refs;
        let kinds: Vec<_> = refs.iter().map(|r| (r.kind.clone(), &text[r.range.as_range()])).collect();
        assert_eq!(
            kinds,
            [
                (SqlRefKind::Df(1), "df_1"),
                (SqlRefKind::Df(2), "df_2"),
                (SqlRefKind::BlockOutput("load".into()), "load"),
                (SqlRefKind::Variable("start".into()), "start"),
            ]
        );
    }
}
