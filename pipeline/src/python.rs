//! Python block files read without running Python: decorated functions, their parameters and
//! the `@test` functions, with positions. Parsed with tree-sitter-python, which is error
//! tolerant: a file with a syntax error still yields the functions around it.

use std::cell::RefCell;

use tree_sitter::{Node, Parser};

use crate::text::TextRange;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PyModule {
    /// Functions defined at module level (also inside top-level `if`/`try`), in file order.
    pub functions: Vec<PyFunction>,
    /// Where tree-sitter found text it could not parse.
    pub syntax_errors: Vec<TextRange>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PyFunction {
    pub name: String,
    pub name_range: TextRange,
    /// From the first decorator (or `def`) to the end of the body.
    pub range: TextRange,
    pub decorators: Vec<Decorator>,
    pub params: Vec<Param>,
    /// The parenthesised parameter list.
    pub params_range: TextRange,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decorator {
    /// The decorator's name: `test` for `@test`, `@test()` and `@mage.test`.
    pub name: String,
    pub range: TextRange,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// A parameter that can be passed by position (with or without a default).
    Positional,
    KeywordOnly,
    VarArgs,
    KwArgs,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub kind: ParamKind,
    pub range: TextRange,
}

impl PyFunction {
    pub fn has_decorator(&self, names: &[&str]) -> bool {
        self.decorators.iter().any(|decorator| names.contains(&decorator.name.as_str()))
    }

    /// Mage's `num_args`: parameters that are neither `*args` nor `**kwargs`.
    pub fn n_args(&self) -> usize {
        self.params.iter().filter(|param| !matches!(param.kind, ParamKind::VarArgs | ParamKind::KwArgs)).count()
    }

    /// Mage's `has_var_args`: true when there is `*args` or `**kwargs`.
    pub fn has_var_args(&self) -> bool {
        self.n_args() != self.params.len()
    }

    pub fn has_kwargs(&self) -> bool {
        self.params.iter().any(|param| param.kind == ParamKind::KwArgs)
    }

    /// Positional parameters in order (Mage passes upstream outputs to these).
    pub fn positional(&self) -> impl Iterator<Item = &Param> {
        self.params.iter().filter(|param| param.kind == ParamKind::Positional)
    }
}

impl PyModule {
    /// The block function: the first function decorated with one of `names` (spec 4.1).
    pub fn block_function(&self, names: &[&str]) -> Option<&PyFunction> {
        self.functions.iter().find(|func| func.has_decorator(names))
    }

    pub fn tests(&self) -> impl Iterator<Item = &PyFunction> {
        self.functions.iter().filter(|func| func.has_decorator(&["test"]))
    }
}

thread_local! {
    static PARSER: RefCell<Parser> = RefCell::new({
        let mut parser = Parser::new();
        parser.set_language(&tree_sitter_python::LANGUAGE.into()).expect("tree-sitter-python matches the tree-sitter version");
        parser
    });
}

pub fn parse(text: &str) -> PyModule {
    let Some(tree) = PARSER.with(|parser| parser.borrow_mut().parse(text, None)) else {
        return PyModule::default();
    };
    let mut module = PyModule::default();
    let root = tree.root_node();
    if root.has_error() {
        collect_errors(root, &mut module.syntax_errors);
    }
    collect_functions(root, text, &mut module.functions);
    module
}

fn range(node: Node<'_>) -> TextRange {
    TextRange::new(node.start_byte(), node.end_byte())
}

fn collect_errors(node: Node<'_>, out: &mut Vec<TextRange>) {
    if node.is_error() || node.is_missing() {
        out.push(range(node));
        return;
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        if child.has_error() {
            collect_errors(child, out);
        }
    }
}

/// Walks statements, descending into `if`/`try`/`with` blocks but not into function or class
/// bodies: Mage's `exec` defines only what runs at module level.
fn collect_functions(node: Node<'_>, text: &str, out: &mut Vec<PyFunction>) {
    let mut cursor = node.walk();
    for child in node.named_children(&mut cursor) {
        match child.kind() {
            "function_definition" => out.extend(function(child, None, text)),
            "decorated_definition" => {
                if let Some(def) = child.child_by_field_name("definition").filter(|def| def.kind() == "function_definition") {
                    out.extend(function(def, Some(child), text));
                }
            }
            "class_definition" => {}
            _ => collect_functions(child, text, out),
        }
    }
}

fn function(def: Node<'_>, decorated: Option<Node<'_>>, text: &str) -> Option<PyFunction> {
    let name = def.child_by_field_name("name")?;
    let params = def.child_by_field_name("parameters")?;
    let mut decorators = Vec::new();
    if let Some(decorated) = decorated {
        let mut cursor = decorated.walk();
        for decorator in decorated.named_children(&mut cursor).filter(|it| it.kind() == "decorator") {
            if let Some(expr) = decorator.named_child(0) {
                decorators.push(Decorator { name: decorator_name(expr, text), range: range(decorator) });
            }
        }
    }
    Some(PyFunction {
        name: text[name.byte_range()].to_owned(),
        name_range: range(name),
        range: range(decorated.unwrap_or(def)),
        decorators,
        params: parameters(params, text),
        params_range: range(params),
    })
}

fn decorator_name(expr: Node<'_>, text: &str) -> String {
    match expr.kind() {
        "call" => expr.child_by_field_name("function").map(|func| decorator_name(func, text)).unwrap_or_default(),
        "attribute" => expr.child_by_field_name("attribute").map(|attr| text[attr.byte_range()].to_owned()).unwrap_or_default(),
        _ => text[expr.byte_range()].to_owned(),
    }
}

fn parameters(params: Node<'_>, text: &str) -> Vec<Param> {
    let mut out = Vec::new();
    let mut keyword_only = false;
    let mut cursor = params.walk();
    for param in params.named_children(&mut cursor) {
        let (kind, name_node) = match param.kind() {
            "identifier" => (ParamKind::Positional, Some(param)),
            "default_parameter" | "typed_default_parameter" => (ParamKind::Positional, param.child_by_field_name("name")),
            "typed_parameter" => match param.named_child(0) {
                Some(inner) if inner.kind() == "list_splat_pattern" => (ParamKind::VarArgs, inner.named_child(0)),
                Some(inner) if inner.kind() == "dictionary_splat_pattern" => (ParamKind::KwArgs, inner.named_child(0)),
                inner => (ParamKind::Positional, inner),
            },
            "list_splat_pattern" => (ParamKind::VarArgs, param.named_child(0)),
            "dictionary_splat_pattern" => (ParamKind::KwArgs, param.named_child(0)),
            "keyword_separator" => {
                keyword_only = true;
                continue;
            }
            _ => continue,
        };
        let kind = match kind {
            ParamKind::Positional if keyword_only => ParamKind::KeywordOnly,
            ParamKind::VarArgs => {
                keyword_only = true;
                ParamKind::VarArgs
            }
            other => other,
        };
        let name = name_node.map(|node| text[node.byte_range()].to_owned()).unwrap_or_default();
        out.push(Param { name, kind, range: range(param) });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_decorated_functions_and_parameters() {
        let text = r#"
if 'transformer' not in globals():
    from mage_ai.data_preparation.decorators import transformer

@transformer
def transform(data, other: int = 1, *args, key=None, **kwargs):
    def inner():
        pass
    return data

@test
def test_output(output, *args) -> None:
    assert output is not None

@mage.callback('success')
def cb(parent, **kwargs):
    pass
"#;
        let module = parse(text);
        assert!(module.syntax_errors.is_empty());
        let names: Vec<_> = module.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["transform", "test_output", "cb"]);
        let transform = module.block_function(&["transformer"]).unwrap();
        let kinds: Vec<_> = transform.params.iter().map(|p| (p.name.as_str(), p.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("data", ParamKind::Positional),
                ("other", ParamKind::Positional),
                ("args", ParamKind::VarArgs),
                ("key", ParamKind::KeywordOnly),
                ("kwargs", ParamKind::KwArgs)
            ]
        );
        assert_eq!(transform.n_args(), 3);
        assert!(transform.has_var_args());
        assert_eq!(module.tests().count(), 1);
        assert_eq!(module.functions[2].decorators[0].name, "callback");
        assert_eq!(&text[transform.name_range.as_range()], "transform");
    }

    #[test]
    fn syntax_errors_are_found_and_the_rest_still_parses() {
        let module = parse("@data_loader\ndef load(:\n    pass\n\n@test\ndef t(x):\n    assert x\n");
        assert!(!module.syntax_errors.is_empty());
        assert!(module.tests().next().is_some());
    }
}
