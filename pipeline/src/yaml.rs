//! A YAML tree that remembers where every node is.
//!
//! Mage loads its YAML with PyYAML and keeps no positions; Wand needs the byte range of every
//! key and value to point at mistakes, so it builds its own small tree from `saphyr-parser`'s
//! event stream (which carries spans). Parsing never fails: a syntax error comes back next to
//! whatever could be built, as a value, never as a panic.
//!
//! Scalars keep their text; typed access ([`Node::as_bool`], [`Node::to_json`]) follows
//! PyYAML's YAML 1.1 rules, because that is how Mage reads the same file.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::text::TextRange;

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub range: TextRange,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    Scalar { value: String, plain: bool },
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: Node,
    pub value: Node,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub offset: usize,
    pub message: String,
}

/// Parses the first document of `text`. `None` means the text is empty or broken before any
/// node could be built.
pub fn parse(text: &str) -> (Option<Node>, Option<SyntaxError>) {
    let mut builder = Builder { offsets: CharOffsets::new(text), text, stack: Vec::new(), anchors: HashMap::new(), root: None };
    let mut error = None;
    for event in Parser::new_from_str(text) {
        match event {
            Ok((event, span)) => {
                if builder.event(event, span) {
                    break;
                }
            }
            Err(err) => {
                let offset = builder.offsets.byte(err.marker().index());
                error = Some(SyntaxError { offset, message: err.info().to_owned() });
                break;
            }
        }
    }
    (builder.root, error)
}

struct Frame {
    start: usize,
    flow: bool,
    items: Vec<Node>,
    is_map: bool,
    anchor: usize,
}

struct Builder<'a> {
    offsets: CharOffsets,
    text: &'a str,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
}

impl Builder<'_> {
    /// Feeds one event; returns true when the first document is complete.
    fn event(&mut self, event: Event<'_>, span: Span) -> bool {
        let start = self.offsets.byte(span.start.index());
        let end = self.offsets.byte(span.end.index());
        match event {
            Event::Scalar(value, style, anchor, _tag) => {
                let plain = matches!(style, ScalarStyle::Plain);
                let node = Node { kind: NodeKind::Scalar { value: value.into_owned(), plain }, range: TextRange::new(start, end) };
                self.push(node, anchor)
            }
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .unwrap_or(Node { kind: NodeKind::Scalar { value: String::new(), plain: true }, range: TextRange::new(start, end) });
                self.push(node, 0)
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                let is_map = matches!(event, Event::MappingStart(..));
                let flow = matches!(self.text.as_bytes().get(start), Some(b'[' | b'{'));
                self.stack.push(Frame { start, flow, items: Vec::new(), is_map, anchor });
                false
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else { return false };
                let end = if frame.flow { end } else { frame.items.last().map_or(end.max(frame.start), |last| last.range.end) };
                let range = TextRange::new(frame.start, end);
                let kind = if frame.is_map {
                    let mut entries = Vec::with_capacity(frame.items.len() / 2);
                    let mut items = frame.items.into_iter();
                    while let (Some(key), Some(value)) = (items.next(), items.next()) {
                        entries.push(Entry { key, value });
                    }
                    NodeKind::Map(entries)
                } else {
                    NodeKind::Seq(frame.items)
                };
                self.push(Node { kind, range }, frame.anchor)
            }
            Event::DocumentEnd => self.root.is_some(),
            _ => false,
        }
    }

    fn push(&mut self, node: Node, anchor: usize) -> bool {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            Some(frame) => {
                frame.items.push(node);
                false
            }
            None => {
                self.root = Some(node);
                true
            }
        }
    }
}

/// saphyr reports positions in characters; the model speaks bytes.
struct CharOffsets {
    /// Byte offset of every character, or empty when the text is ASCII (offsets are equal).
    bytes: Vec<usize>,
    len: usize,
}

impl CharOffsets {
    fn new(text: &str) -> CharOffsets {
        let bytes = if text.is_ascii() { Vec::new() } else { text.char_indices().map(|(idx, _)| idx).collect() };
        CharOffsets { bytes, len: text.len() }
    }

    fn byte(&self, char_index: usize) -> usize {
        if self.bytes.is_empty() { char_index.min(self.len) } else { self.bytes.get(char_index).copied().unwrap_or(self.len) }
    }
}

impl Node {
    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.kind {
            NodeKind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// The text of a scalar, also for a YAML null written as text (`null`, `~`).
    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The text of a scalar that is not null.
    pub fn as_str(&self) -> Option<&str> {
        if self.is_null() { None } else { self.scalar() }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { value, plain: true } if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    pub fn as_bool(&self) -> Option<bool> {
        match &self.kind {
            NodeKind::Scalar { value, plain: true } => yaml11_bool(value),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match &self.kind {
            NodeKind::Scalar { value, plain: true } => value.replace('_', "").parse().ok(),
            _ => None,
        }
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.as_map()?.iter().find(|entry| entry.key.scalar() == Some(key))
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|entry| &entry.value)
    }

    /// The node as JSON, scalars typed as PyYAML's `full_load` would type them.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Scalar { value, plain: false } => Value::String(value.clone()),
            NodeKind::Scalar { value, plain: true } => {
                if self.is_null() {
                    Value::Null
                } else if let Some(flag) = yaml11_bool(value) {
                    Value::Bool(flag)
                } else if let Some(int) = self.as_i64() {
                    Value::from(int)
                } else if let Some(float) = yaml11_float(value) {
                    serde_json::Number::from_f64(float).map_or_else(|| Value::String(value.clone()), Value::Number)
                } else {
                    Value::String(value.clone())
                }
            }
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|entry| {
                        let key = match entry.key.to_json() {
                            Value::String(key) => key,
                            other => other.to_string(),
                        };
                        (key, entry.value.to_json())
                    })
                    .collect(),
            ),
        }
    }
}

fn yaml11_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn yaml11_float(text: &str) -> Option<f64> {
    let looks_numeric = text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-' | b'_'))
        && text.bytes().any(|b| b.is_ascii_digit());
    if looks_numeric {
        return text.replace('_', "").parse().ok();
    }
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" => Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        _ => None,
    }
}

/// Replaces every Jinja `{{ ... }}` and `{% ... %}` with a same-length plain word, so that a file
/// Mage renders before parsing (io_config.yaml, the project metadata.yaml) parses with its
/// positions intact.
pub fn mask_jinja(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        let close: &[u8] = match (bytes[idx], bytes.get(idx + 1)) {
            (b'{', Some(b'{')) => b"}}",
            (b'{', Some(b'%')) => b"%}",
            _ => {
                out.push(bytes[idx]);
                idx += 1;
                continue;
            }
        };
        let Some(len) = bytes[idx + 2..].windows(2).position(|pair| pair == close) else {
            out.extend_from_slice(&bytes[idx..]);
            break;
        };
        let end = idx + 2 + len + 2;
        // Byte for byte, so multi-byte characters inside the template keep the length too.
        out.extend(bytes[idx..end].iter().map(|&b| if b == b'\n' { b'\n' } else { b'x' }));
        idx = end;
    }
    String::from_utf8(out).expect("only whole templates are replaced, by ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_point_at_keys_and_values() {
        let text = "blocks:\n- uuid: load\n  upstream_blocks: [a, \"b\"]\nname: é x\n";
        let (root, error) = parse(text);
        assert_eq!(error, None);
        let root = root.unwrap();
        let block = &root.get("blocks").unwrap().as_seq().unwrap()[0];
        let uuid = block.get("uuid").unwrap();
        assert_eq!(&text[uuid.range.as_range()], "load");
        let upstream = block.get("upstream_blocks").unwrap();
        assert_eq!(&text[upstream.range.as_range()], "[a, \"b\"]");
        assert_eq!(&text[upstream.as_seq().unwrap()[1].range.as_range()], "\"b\"");
        assert_eq!(&text[root.get("name").unwrap().range.as_range()], "é x");
        assert_eq!(&text[block.range.as_range()], "uuid: load\n  upstream_blocks: [a, \"b\"]");
    }

    #[test]
    fn syntax_errors_have_offsets() {
        let (_, error) = parse("a: [1, 2\nb: 3\n");
        assert!(error.is_some());
        let (_, error) = parse("a: b: c\n");
        assert_eq!(error.unwrap().offset, 4);
    }

    #[test]
    fn scalars_are_typed_like_pyyaml() {
        let (root, _) = parse("a: yes\nb: '5'\nc: 5\nd: ~\ne: 1.5\nf: 2024-01-01\n");
        let json = root.unwrap().to_json();
        assert_eq!(json.to_string(), r#"{"a":true,"b":"5","c":5,"d":null,"e":1.5,"f":"2024-01-01"}"#);
    }

    #[test]
    fn jinja_is_masked_without_moving_anything() {
        let text = "dev:\n  PORT: {{ env_var('PORT') }}\n  HOST: \"{{ env_var('é') }}\"\n";
        let masked = mask_jinja(text);
        assert_eq!(masked.len(), text.len());
        let (root, error) = parse(&masked);
        assert_eq!(error, None);
        let port = root.unwrap().get("dev").unwrap().get("PORT").unwrap().range;
        assert_eq!(&text[port.as_range()], "{{ env_var('PORT') }}");
    }
}
