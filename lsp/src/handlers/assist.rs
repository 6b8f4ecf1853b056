//! Completion, hover and code actions. Code actions are minimal text edits computed from the
//! model's spans; a file is never re-serialised.

use std::collections::HashMap;
use std::path::Path;

use pipeline::cursor;
use pipeline::diagnostic::Code;
use pipeline::model::{Block, BlockStatus, BlockType, ExecutorType, Language, Section};
use pipeline::text::TextRange;
use pipeline::yaml::Node;
use pipeline::{Pipeline, Project};
use tower_lsp_server::ls_types::{self as lsp};

use crate::convert::{self, Lines};
use crate::handlers::nav::{At, targets};
use crate::session::Session;

const BLOCK_KEYS: &[&str] = &[
    "uuid",
    "name",
    "type",
    "language",
    "upstream_blocks",
    "downstream_blocks",
    "configuration",
    "executor_type",
    "executor_config",
    "status",
    "color",
    "retry_config",
    "timeout",
    "has_callback",
    "all_upstream_blocks_executed",
    "content",
];
const CONFIG_KEYS: &[&str] = &[
    "data_provider",
    "data_provider_profile",
    "data_provider_schema",
    "data_provider_table",
    "export_write_policy",
    "file_path",
    "file_source",
    "use_raw_sql",
    "dynamic",
    "reduce_output",
];

fn item(label: &str, kind: lsp::CompletionItemKind, detail: Option<String>) -> lsp::CompletionItem {
    lsp::CompletionItem { label: label.to_owned(), kind: Some(kind), detail, ..Default::default() }
}

/// The block entry of a pipeline file that `offset` falls in (the last one starting before it).
fn block_at(pipeline: &Pipeline, offset: usize) -> Option<&Block> {
    pipeline.blocks.iter().filter(|block| block.node.range.start <= offset).max_by_key(|block| block.node.range.start)
}

/// Uuids that may be added to `upstream_blocks` (or `downstream_blocks`) of `block` without
/// creating a cycle or repeating an entry.
fn edge_candidates<'p>(pipeline: &'p Pipeline, block: Option<&Block>, downstream: bool) -> Vec<&'p Block> {
    let Some(block) = block else { return pipeline.dag_blocks().collect() };
    let uuid = block.uuid.value.as_str();
    let listed: Vec<&str> = if downstream { &block.downstream } else { &block.upstream }.iter().map(|it| it.value.as_str()).collect();
    let forbidden: Vec<&str> = if downstream { pipeline.dag.ancestors(uuid) } else { pipeline.dag.descendants(uuid) };
    pipeline
        .dag_blocks()
        .filter(|other| {
            other.uuid.value != uuid && !listed.contains(&other.uuid.value.as_str()) && !forbidden.contains(&other.uuid.value.as_str())
        })
        .collect()
}

pub fn completion(session: &Session, params: &lsp::CompletionParams) -> Option<lsp::CompletionResponse> {
    let position = &params.text_document_position;
    let at = At::new(session, &position.text_document.uri)?;
    let offset = at.offset(position.position);
    let text = &at.text[..];
    let line_start = text[..offset].rfind('\n').map_or(0, |idx| idx + 1);
    let line = &text[line_start..offset];
    let value = |kind, values: Vec<(String, Option<String>)>| {
        Some(lsp::CompletionResponse::Array(values.into_iter().map(|(label, detail)| item(&label, kind, detail)).collect()))
    };
    if let Some(pipeline) = cursor::pipeline_of_file(at.project, &at.rel) {
        let block = block_at(pipeline, offset);
        let trimmed = line.trim_start();
        let item_text = trimmed.strip_prefix("- ").unwrap_or(trimmed);
        let uuids = |downstream: bool| {
            let list = edge_candidates(pipeline, block, downstream)
                .into_iter()
                .map(|b| (b.uuid.value.clone(), b.block_type.map(|ty| ty.as_str().to_owned())))
                .collect();
            value(lsp::CompletionItemKind::REFERENCE, list)
        };
        if let Some((key, _)) = item_text.split_once(':') {
            let key = key.trim();
            let enum_values = |all: Vec<&str>| all.into_iter().map(|it| (it.to_owned(), None)).collect::<Vec<_>>();
            return match key {
                "type" => value(lsp::CompletionItemKind::ENUM_MEMBER, enum_values(BlockType::ALL.iter().map(|it| it.as_str()).collect())),
                "language" => {
                    value(lsp::CompletionItemKind::ENUM_MEMBER, enum_values(Language::ALL.iter().map(|it| it.as_str()).collect()))
                }
                "status" => {
                    value(lsp::CompletionItemKind::ENUM_MEMBER, enum_values(BlockStatus::ALL.iter().map(|it| it.as_str()).collect()))
                }
                "executor_type" => {
                    value(lsp::CompletionItemKind::ENUM_MEMBER, enum_values(ExecutorType::ALL.iter().map(|it| it.as_str()).collect()))
                }
                "data_provider_profile" => {
                    let profiles = at
                        .project
                        .io_config
                        .iter()
                        .flat_map(|io| io.profiles.iter().map(|it| (it.value.clone(), Some("io_config.yaml profile".to_owned()))))
                        .collect();
                    value(lsp::CompletionItemKind::VALUE, profiles)
                }
                "upstream_blocks" => uuids(false),
                "downstream_blocks" => uuids(true),
                _ => None,
            };
        }
        if trimmed.starts_with('-') {
            // A list item: the list is the nearest key line above, at the same or lower indent.
            let indent = line.len() - trimmed.len();
            let key = text[..line_start].lines().rev().find_map(|above| {
                let above_trimmed = above.trim_start();
                let above_indent = above.len() - above_trimmed.len();
                if above_trimmed.is_empty() || above_trimmed.starts_with('#') || (above_indent == indent && above_trimmed.starts_with('-'))
                {
                    return None;
                }
                Some(above_trimmed.trim_start_matches("- ").split(':').next().unwrap_or_default().trim().to_owned())
            });
            return match key.as_deref() {
                Some("upstream_blocks") => uuids(false),
                Some("downstream_blocks") => uuids(true),
                _ => None,
            };
        }
        if item_text.chars().all(|ch| ch.is_alphanumeric() || ch == '_') {
            let in_config = block
                .and_then(|block| block.configuration.as_ref())
                .is_some_and(|config| config.range.start <= offset && offset <= config.range.end + 1)
                && line.len() - trimmed.len() > 2;
            let keys = if in_config { CONFIG_KEYS } else { BLOCK_KEYS };
            return value(lsp::CompletionItemKind::PROPERTY, keys.iter().map(|key| ((*key).to_owned(), None)).collect());
        }
        return None;
    }
    // SQL: inside an open `{{`.
    let source = at.project.source(&at.rel)?;
    source.sql.as_ref()?;
    let open = text[..offset].rfind("{{")?;
    if text[open..offset].contains("}}") {
        return None;
    }
    let mut items: Vec<lsp::CompletionItem> = Vec::new();
    for (pipeline, block) in at.project.users_of_file(&at.rel) {
        for (idx, uuid) in pipeline.dag.upstream(&block.uuid.value).into_iter().enumerate() {
            let label = format!("df_{}", idx + 1);
            if !items.iter().any(|it| it.label == label && it.detail.as_deref() == Some(uuid)) {
                items.push(item(&label, lsp::CompletionItemKind::VARIABLE, Some(uuid.to_owned())));
            }
            let output = format!("block_output('{uuid}')");
            if !items.iter().any(|it| it.label == output) {
                items.push(item(&output, lsp::CompletionItemKind::FUNCTION, Some(format!("output of {uuid}"))));
            }
        }
    }
    Some(lsp::CompletionResponse::Array(items))
}

pub fn hover(session: &Session, params: &lsp::HoverParams) -> Option<lsp::Hover> {
    let position = &params.text_document_position_params;
    let at = At::new(session, &position.text_document.uri)?;
    let site = at.site(position.position)?;
    let (pipeline, block) = targets(at.project, &at.rel, &site.kind).into_iter().next()?;
    let markdown = describe(session, at.project, pipeline, block);
    Some(lsp::Hover {
        contents: lsp::HoverContents::Markup(lsp::MarkupContent { kind: lsp::MarkupKind::Markdown, value: markdown }),
        range: Some(at.lines().range(site.range)),
    })
}

fn describe(session: &Session, project: &Project, pipeline: &Pipeline, block: &Block) -> String {
    let uuid = block.uuid.value.as_str();
    let list = |items: Vec<&str>| {
        if items.is_empty() { "none".to_owned() } else { items.iter().map(|it| format!("`{it}`")).collect::<Vec<_>>().join(", ") }
    };
    let users: Vec<&str> = match &block.file {
        Some(rel) => project.users_of_file(rel).map(|(pipeline, _)| pipeline.uuid.as_str()).collect(),
        None => vec![pipeline.uuid.as_str()],
    };
    let mut out = format!(
        "**{uuid}** ({} block, {})\n\n- file: {}\n- upstream: {}\n- downstream: {}\n- pipelines: {}\n",
        block.block_type.map_or("unknown", |ty| ty.as_str()),
        block.language.map_or("unknown language", |it| it.as_str()),
        block.file.as_ref().map_or("none".to_owned(), |rel| format!("`{}`", rel.display())),
        list(pipeline.dag.upstream(uuid)),
        list(pipeline.dag.downstream(uuid)),
        list(users),
    );
    let record = session.run(&project.root, &pipeline.uuid);
    let state = crate::handlers::runs::state(record, uuid);
    out.push_str(&format!("- last run: {}", state.replace('_', " ")));
    if let Some(run) = record.and_then(|record| record.blocks.iter().find(|run| run.uuid == uuid)) {
        if let (Some(rows), Some(columns)) = (run.rows, run.columns) {
            out.push_str(&format!(" ({rows} rows x {columns} columns)"));
        }
        if let Some(error) = &run.error {
            out.push_str(&format!("\n  `{}: {}`", error.ename, error.evalue));
        }
    }
    out.push('\n');
    out
}

// ---- code actions ---------------------------------------------------------------------------

/// Edits for one file, in byte ranges of its current text.
type Edits = Vec<(TextRange, String)>;

fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map_or(0, |idx| idx + 1)
}

fn line_end(text: &str, offset: usize) -> usize {
    text[offset..].find('\n').map_or(text.len(), |idx| offset + idx)
}

fn is_flow(text: &str, node: &Node) -> bool {
    text.as_bytes().get(node.range.start) == Some(&b'[')
}

/// Deletes one item of a YAML list.
fn remove_item(text: &str, list: &Node, index: usize) -> (TextRange, String) {
    let items = list.as_seq().unwrap_or_default();
    let item = &items[index];
    if !is_flow(text, list) {
        let start = line_start(text, item.range.start);
        let end = (line_end(text, item.range.end) + 1).min(text.len());
        return (TextRange::new(start, end), String::new());
    }
    if items.len() == 1 {
        return (list.range, "[]".to_owned());
    }
    match items.get(index + 1) {
        Some(next) => (TextRange::new(item.range.start, next.range.start), String::new()),
        None => (TextRange::new(items[index - 1].range.end, item.range.end), String::new()),
    }
}

/// Adds uuids to the list under `key` of a block entry, creating the key when it is missing.
fn add_items(text: &str, block: &Block, key: &str, add: &[&str], removed: &[usize], out: &mut Edits) {
    if add.is_empty() {
        return;
    }
    match block.node.entry(key) {
        Some(entry) => match entry.value.as_seq() {
            Some(items) if is_flow(text, &entry.value) => {
                let kept: Vec<&Node> = items.iter().enumerate().filter(|(idx, _)| !removed.contains(idx)).map(|(_, it)| it).collect();
                match kept.last() {
                    Some(last) if removed.is_empty() => out.push((TextRange::empty(last.range.end), format!(", {}", add.join(", ")))),
                    _ => {
                        let all: Vec<String> = kept
                            .iter()
                            .map(|it| text[it.range.as_range()].to_owned())
                            .chain(add.iter().map(|it| (*it).to_owned()))
                            .collect();
                        out.retain(|(range, _)| !(entry.value.range.start <= range.start && range.end <= entry.value.range.end));
                        out.push((entry.value.range, format!("[{}]", all.join(", "))));
                    }
                }
            }
            Some(items) if !items.is_empty() => {
                let first = &items[0];
                let prefix = text[line_start(text, first.range.start)..first.range.start].to_owned();
                let lines: String = add.iter().map(|uuid| format!("\n{prefix}{uuid}")).collect();
                match items.iter().enumerate().rev().find(|(idx, _)| !removed.contains(idx)) {
                    Some((_, last)) => out.push((TextRange::empty(line_end(text, last.range.end)), lines)),
                    None => out.push((TextRange::empty(line_end(text, entry.key.range.end)), lines)),
                }
            }
            _ => {
                let end = line_end(text, entry.key.range.end);
                out.push((TextRange::new(entry.key.range.end, end), format!(": [{}]", add.join(", "))));
            }
        },
        None => {
            let uuid_key = block.node.entry("uuid").map_or(block.uuid.range, |entry| entry.key.range);
            let indent = " ".repeat(uuid_key.start - line_start(text, uuid_key.start));
            out.push((TextRange::empty(line_end(text, block.uuid.range.end)), format!("\n{indent}{key}: [{}]", add.join(", "))));
        }
    }
}

/// The edits that make every `downstream_blocks` list mirror the `upstream_blocks` lists.
fn agree_edits(text: &str, pipeline: &Pipeline) -> Edits {
    let mut out = Edits::new();
    let blocks: Vec<&Block> = pipeline.blocks.iter().filter(|block| block.section == Section::Blocks).collect();
    for block in &blocks {
        let uuid = block.uuid.value.as_str();
        let wanted: Vec<&str> = blocks
            .iter()
            .filter(|child| child.upstream.iter().any(|edge| edge.value == uuid))
            .map(|child| child.uuid.value.as_str())
            .collect();
        let listed: Vec<&str> = block.downstream.iter().map(|it| it.value.as_str()).collect();
        let known = |name: &str| blocks.iter().any(|b| b.uuid.value == name);
        let list = block.node.get("downstream_blocks");
        let mut removed = Vec::new();
        if let Some(list) = list.filter(|list| list.as_seq().is_some()) {
            for (idx, item) in list.as_seq().unwrap_or_default().iter().enumerate() {
                let name = item.as_str().unwrap_or_default();
                if known(name) && !wanted.contains(&name) {
                    removed.push(idx);
                    out.push(remove_item(text, list, idx));
                }
            }
        }
        let add: Vec<&str> = wanted.iter().copied().filter(|name| !listed.contains(name)).collect();
        add_items(text, block, "downstream_blocks", &add, &removed, &mut out);
    }
    out
}

fn block_template(block_type: BlockType, language: Language, uuid: &str, n_upstream: usize) -> String {
    if language == Language::Sql {
        return if n_upstream > 0 {
            format!("-- {uuid}: reads its first upstream block as df_1\nSELECT *\nFROM {{{{ df_1 }}}}\n")
        } else {
            format!("-- {uuid}\nSELECT 1 AS value\n")
        };
    }
    if language != Language::Python {
        return String::new();
    }
    let Some(decorator) = block_type.decorators().first() else { return String::new() };
    let mut params: Vec<String> =
        (0..n_upstream).map(|idx| if idx == 0 { "data".to_owned() } else { format!("data_{}", idx + 1) }).collect();
    params.push("*args".into());
    params.push("**kwargs".into());
    let (name, body) = match block_type {
        BlockType::DataLoader => ("load_data", "    \"\"\"Load the data this pipeline starts from.\"\"\"\n    return {}".to_owned()),
        BlockType::Transformer => (
            "transform",
            format!(
                "    \"\"\"Transform the output of the upstream block.\"\"\"\n    return {}",
                if n_upstream > 0 { "data" } else { "None" }
            ),
        ),
        BlockType::DataExporter => ("export_data", "    \"\"\"Write the upstream output to its destination.\"\"\"\n    pass".to_owned()),
        BlockType::Sensor => ("check_condition", "    \"\"\"Return True when the pipeline may go on.\"\"\"\n    return True".to_owned()),
        BlockType::Conditional => ("evaluate_condition", "    return True".to_owned()),
        BlockType::Callback => ("callback", "    pass".to_owned()),
        _ => ("run", "    return None".to_owned()),
    };
    let mut out = format!(
        "if '{decorator}' not in globals():\n    from mage_ai.data_preparation.decorators import {decorator}\nif 'test' not in globals():\n    from mage_ai.data_preparation.decorators import test\n\n\n@{decorator}\ndef {name}({}):\n{body}\n",
        params.join(", ")
    );
    if block_type.is_custom_execution() {
        out.push_str("\n\n@test\ndef test_output(output, *args) -> None:\n    \"\"\"Checks the block's output after each run.\"\"\"\n    assert output is not None, 'The output is undefined'\n");
    }
    out
}

fn edit_of(session: &Session, file: &Path, edits: Edits) -> lsp::DocumentChangeOperation {
    let text = session.text(file).unwrap_or_default();
    let lines = Lines::new(&text, session.encoding);
    lsp::DocumentChangeOperation::Edit(lsp::TextDocumentEdit {
        text_document: lsp::OptionalVersionedTextDocumentIdentifier { uri: convert::uri(file), version: session.version(file) },
        edits: edits.into_iter().map(|(range, new)| lsp::OneOf::Left(lsp::TextEdit::new(lines.range(range), new))).collect(),
    })
}

fn action(title: String, diagnostic: Option<lsp::Diagnostic>, changes: Vec<lsp::DocumentChangeOperation>) -> lsp::CodeActionOrCommand {
    lsp::CodeActionOrCommand::CodeAction(lsp::CodeAction {
        title,
        kind: Some(lsp::CodeActionKind::QUICKFIX),
        diagnostics: diagnostic.map(|it| vec![it]),
        edit: Some(lsp::WorkspaceEdit { document_changes: Some(lsp::DocumentChanges::Operations(changes)), ..Default::default() }),
        ..Default::default()
    })
}

pub fn code_actions(session: &Session, params: &lsp::CodeActionParams) -> Option<lsp::CodeActionResponse> {
    let at = At::new(session, &params.text_document.uri)?;
    let lines = at.lines();
    let wanted = TextRange::new(lines.offset(params.range.start), lines.offset(params.range.end));
    let text = &at.text[..];
    let mut ranges = at.ranges();
    let mut out = Vec::new();
    let mut agree_offered: HashMap<String, bool> = HashMap::new();
    for diagnostic in session.model_diagnostics(at.project) {
        if diagnostic.file != at.path || diagnostic.range.end < wanted.start || diagnostic.range.start > wanted.end {
            continue;
        }
        let lsp_diagnostic = ranges.diagnostic(&diagnostic);
        let pipeline = cursor::pipeline_of_file(at.project, &at.rel);
        match diagnostic.code {
            Code::AsymmetricEdge => {
                let Some(pipeline) = pipeline else { continue };
                if agree_offered.insert(pipeline.uuid.clone(), true).is_some() {
                    continue;
                }
                let edits = agree_edits(text, pipeline);
                if !edits.is_empty() {
                    out.push(action(
                        "Make downstream_blocks agree with upstream_blocks".into(),
                        Some(lsp_diagnostic),
                        vec![edit_of(session, &at.path, edits)],
                    ));
                }
            }
            Code::UnknownUpstream | Code::UnknownDownstream => {
                let Some(pipeline) = pipeline else { continue };
                let key = if diagnostic.code == Code::UnknownUpstream { "upstream_blocks" } else { "downstream_blocks" };
                for block in &pipeline.blocks {
                    let Some(list) = block.node.get(key) else { continue };
                    let Some(index) = list.as_seq().unwrap_or_default().iter().position(|item| item.range == diagnostic.range) else {
                        continue;
                    };
                    let name = list.as_seq().unwrap_or_default()[index].as_str().unwrap_or_default().to_owned();
                    let edit = remove_item(text, list, index);
                    out.push(action(
                        format!("Remove `{name}` from `{key}` of `{}`", block.uuid.value),
                        Some(lsp_diagnostic.clone()),
                        vec![edit_of(session, &at.path, vec![edit])],
                    ));
                }
            }
            Code::MissingBlockFile => {
                let Some(pipeline) = pipeline else { continue };
                let Some(block) = pipeline.blocks.iter().find(|block| {
                    block.uuid.range == diagnostic.range || block.config("file_path").is_some_and(|node| node.range == diagnostic.range)
                }) else {
                    continue;
                };
                let (Some(rel), Some(ty), Some(language)) = (&block.file, block.block_type, block.language) else { continue };
                let file = at.project.abs(rel);
                let template = block_template(ty, language, &block.uuid.value, pipeline.dag.upstream(&block.uuid.value).len());
                let uri = convert::uri(&file);
                let create = lsp::DocumentChangeOperation::Op(lsp::ResourceOp::Create(lsp::CreateFile {
                    uri: uri.clone(),
                    options: Some(lsp::CreateFileOptions { overwrite: Some(false), ignore_if_exists: Some(true) }),
                    annotation_id: None,
                }));
                let insert = lsp::DocumentChangeOperation::Edit(lsp::TextDocumentEdit {
                    text_document: lsp::OptionalVersionedTextDocumentIdentifier { uri, version: None },
                    edits: vec![lsp::OneOf::Left(lsp::TextEdit::new(lsp::Range::default(), template))],
                });
                out.push(action(format!("Create `{}` from a {ty} template", rel.display()), Some(lsp_diagnostic), vec![create, insert]));
            }
            Code::MissingBlockFunction => {
                let Some(module) = at.project.source(&at.rel).and_then(|source| source.python.as_ref()) else { continue };
                let Some(ty) = at.project.users_of_file(&at.rel).find_map(|(_, block)| block.block_type) else { continue };
                let Some(decorator) = ty.decorators().first() else { continue };
                let Some(func) = module.functions.iter().find(|func| func.name_range == diagnostic.range).or(module.functions.first())
                else {
                    continue;
                };
                let mut edits = vec![(TextRange::empty(func.range.start), format!("@{decorator}\n"))];
                if !text.contains(&format!("import {decorator}")) {
                    let guard =
                        format!("if '{decorator}' not in globals():\n    from mage_ai.data_preparation.decorators import {decorator}\n");
                    edits.insert(0, (TextRange::empty(0), guard));
                }
                out.push(action(
                    format!("Add `@{decorator}` to `{}`", func.name),
                    Some(lsp_diagnostic),
                    vec![edit_of(session, &at.path, edits)],
                ));
            }
            _ => {}
        }
    }
    Some(out)
}
