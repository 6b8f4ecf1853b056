//! Navigation: definition, references, rename, document symbols and code lenses. Each is a
//! pure function of the session, called with the lock held and no `.await` inside.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pipeline::cursor::{self, Site, SiteKind};
use pipeline::model::Block;
use pipeline::sql::SqlRefKind;
use pipeline::text::TextRange;
use pipeline::{Pipeline, Project};
use tower_lsp_server::ls_types::{self as lsp, Uri};

use crate::convert::{self, Lines, RangeCache};
use crate::session::Session;

/// A request's document: its project, path and current text.
pub struct At<'a> {
    pub session: &'a Session,
    pub project: &'a Project,
    pub path: PathBuf,
    pub rel: PathBuf,
    pub text: Arc<str>,
}

impl<'a> At<'a> {
    pub fn new(session: &'a Session, uri: &Uri) -> Option<At<'a>> {
        let path = convert::path(uri)?;
        let (project, rel) = session.project_of(&path)?;
        let rel = rel.to_path_buf();
        let text = session.text(&path)?;
        Some(At { session, project, path, rel, text })
    }

    pub fn lines(&self) -> Lines<'_> {
        Lines::new(&self.text, self.session.encoding)
    }

    pub fn offset(&self, position: lsp::Position) -> usize {
        self.lines().offset(position)
    }

    pub fn site(&self, position: lsp::Position) -> Option<Site> {
        cursor::site_at(self.project, &self.rel, self.offset(position), Some(&self.text))
    }

    pub fn ranges(&self) -> RangeCache<impl Fn(&Path) -> Option<Arc<str>> + 'a> {
        let session = self.session;
        RangeCache::new(session.encoding, move |path: &Path| session.text(path))
    }
}

/// The blocks a site refers to, in every pipeline where that makes sense: `(pipeline, block)`.
pub fn targets<'p>(project: &'p Project, rel: &'p Path, site: &SiteKind) -> Vec<(&'p Pipeline, &'p Block)> {
    let mut out = Vec::new();
    match site {
        SiteKind::Edge { pipeline, uuid, .. } | SiteKind::BlockUuid { pipeline, uuid } => {
            if let Some(pipeline) = project.pipelines.get(pipeline) {
                out.extend(pipeline.block(uuid).map(|block| (pipeline, block)));
            }
        }
        SiteKind::SqlDf(n) => {
            for (pipeline, block) in project.users_of_file(rel) {
                let upstream = pipeline.dag.upstream(&block.uuid.value);
                if let Some(target) = n.checked_sub(1).and_then(|idx| upstream.get(idx)).and_then(|uuid| pipeline.block(uuid)) {
                    out.push((pipeline, target));
                }
            }
        }
        SiteKind::Param { index, .. } => {
            for (pipeline, block) in project.users_of_file(rel) {
                let upstream = pipeline.dag.upstream(&block.uuid.value);
                if let Some(target) = upstream.get(*index).and_then(|uuid| pipeline.block(uuid)) {
                    out.push((pipeline, target));
                }
            }
        }
        SiteKind::SqlBlockOutput(uuid) => {
            for (pipeline, _) in project.users_of_file(rel) {
                out.extend(pipeline.block(uuid).map(|block| (pipeline, block)));
            }
        }
        SiteKind::BlockFunction { .. } => out.extend(project.users_of_file(rel)),
        SiteKind::Profile { .. } => {}
    }
    out
}

/// Where a block's code starts: the decorated function's name, else the top of the file.
fn block_target(project: &Project, block: &Block) -> Option<(PathBuf, TextRange)> {
    let rel = block.file.as_ref()?;
    project.source(rel)?;
    let range = project
        .source(rel)
        .and_then(|source| source.python.as_ref())
        .and_then(|module| module.block_function(block.block_type.map_or(&[][..], |ty| ty.decorators())))
        .map_or(TextRange::empty(0), |func| func.name_range);
    Some((project.abs(rel), range))
}

pub fn definition(session: &Session, params: &lsp::GotoDefinitionParams) -> Option<lsp::GotoDefinitionResponse> {
    let position = &params.text_document_position_params;
    let at = At::new(session, &position.text_document.uri)?;
    let site = at.site(position.position);
    let mut ranges = at.ranges();
    let lines = at.lines();
    let mut links: Vec<lsp::LocationLink> = Vec::new();
    let mut push =
        |links: &mut Vec<lsp::LocationLink>, origin: Option<lsp::Range>, file: PathBuf, range: TextRange, full: Option<TextRange>| {
            let selection = ranges.range(&file, range);
            let target_range = full.map_or(selection, |full| ranges.range(&file, full));
            let uri = convert::uri(&file);
            if !links.iter().any(|link| link.target_uri == uri && link.target_selection_range == selection) {
                links.push(lsp::LocationLink {
                    origin_selection_range: origin,
                    target_uri: uri,
                    target_range,
                    target_selection_range: selection,
                });
            }
        };
    match site {
        Some(Site { kind: SiteKind::Profile { name, .. }, range, .. }) => {
            let io = at.project.io_config.as_ref()?;
            let profile = io.profiles.iter().find(|profile| profile.value == name)?;
            push(&mut links, Some(lines.range(range)), at.project.abs(&io.path), profile.range, None);
        }
        Some(Site { kind: kind @ SiteKind::BlockFunction { .. }, range, .. }) => {
            for (pipeline, block) in targets(at.project, &at.rel, &kind) {
                push(
                    &mut links,
                    Some(lines.range(range)),
                    at.project.abs(&pipeline.metadata_path),
                    block.uuid.range,
                    Some(block.node.range),
                );
            }
        }
        Some(Site { kind, range, .. }) => {
            for (pipeline, block) in targets(at.project, &at.rel, &kind) {
                match block_target(at.project, block) {
                    Some((file, selection)) => push(&mut links, Some(lines.range(range)), file, selection, None),
                    // No file yet: the block's entry is the best there is.
                    None => push(
                        &mut links,
                        Some(lines.range(range)),
                        at.project.abs(&pipeline.metadata_path),
                        block.uuid.range,
                        Some(block.node.range),
                    ),
                }
            }
        }
        None => {
            // Anywhere else in a block file: its entries in the pipelines that use it.
            for (pipeline, block) in at.project.users_of_file(&at.rel) {
                push(&mut links, None, at.project.abs(&pipeline.metadata_path), block.uuid.range, Some(block.node.range));
            }
        }
    }
    if links.is_empty() { None } else { Some(lsp::GotoDefinitionResponse::Link(links)) }
}

/// The block uuid a site names (for references and rename), with the pipelines to search.
fn uuid_at(at: &At<'_>, site: &Site) -> Option<String> {
    match &site.kind {
        SiteKind::Edge { uuid, .. } | SiteKind::BlockUuid { uuid, .. } | SiteKind::SqlBlockOutput(uuid) => Some(uuid.clone()),
        kind @ (SiteKind::SqlDf(_) | SiteKind::Param { .. } | SiteKind::BlockFunction { .. }) => {
            targets(at.project, &at.rel, kind).first().map(|(_, block)| block.uuid.value.clone())
        }
        SiteKind::Profile { .. } => None,
    }
}

/// Every place in the project that names block `uuid`: `(file, range, is_declaration)`.
pub fn occurrences(project: &Project, uuid: &str, text_of: &dyn Fn(&Path) -> Option<Arc<str>>) -> Vec<(PathBuf, TextRange, bool)> {
    let mut out = Vec::new();
    for pipeline in project.pipelines.values() {
        let file = project.abs(&pipeline.metadata_path);
        let text = text_of(&file);
        let unquote = |range: TextRange| unquoted(text.as_deref(), range);
        for block in &pipeline.blocks {
            if block.uuid.value == uuid {
                out.push((file.clone(), unquote(block.uuid.range), true));
            }
            for edge in block.upstream.iter().chain(&block.downstream).filter(|edge| edge.value == uuid) {
                out.push((file.clone(), unquote(edge.range), false));
            }
        }
    }
    for (rel, source) in &project.sources {
        let Some(template) = &source.sql else { continue };
        for reference in &template.refs {
            if matches!(&reference.kind, SqlRefKind::BlockOutput(name) if name == uuid) {
                out.push((project.abs(rel), reference.range, false));
            }
        }
    }
    out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    out.dedup();
    out
}

fn unquoted(text: Option<&str>, range: TextRange) -> TextRange {
    let Some(bytes) = text.map(str::as_bytes) else { return range };
    if range.len() >= 2
        && range.end <= bytes.len()
        && matches!(bytes[range.start], b'"' | b'\'')
        && bytes[range.start] == bytes[range.end - 1]
    {
        return TextRange::new(range.start + 1, range.end - 1);
    }
    range
}

pub fn references(session: &Session, params: &lsp::ReferenceParams) -> Option<Vec<lsp::Location>> {
    let position = &params.text_document_position;
    let at = At::new(session, &position.text_document.uri)?;
    let uuid = match at.site(position.position) {
        Some(site) => uuid_at(&at, &site)?,
        None => at.project.users_of_file(&at.rel).next()?.1.uuid.value.clone(),
    };
    let mut ranges = at.ranges();
    let text_of = |path: &Path| session.text(path);
    let locations = occurrences(at.project, &uuid, &text_of)
        .into_iter()
        .filter(|(_, _, declaration)| params.context.include_declaration || !declaration)
        .map(|(file, range, _)| ranges.location(&file, range))
        .collect();
    Some(locations)
}

pub fn prepare_rename(session: &Session, params: &lsp::TextDocumentPositionParams) -> Option<lsp::PrepareRenameResponse> {
    let at = At::new(session, &params.text_document.uri)?;
    let site = at.site(params.position)?;
    if !matches!(site.kind, SiteKind::Edge { .. } | SiteKind::BlockUuid { .. } | SiteKind::SqlBlockOutput(_)) {
        return None;
    }
    Some(lsp::PrepareRenameResponse::Range(at.lines().range(site.range)))
}

/// Renames a block uuid: every pipeline entry and edge, every `block_output('…')`, and the
/// block file when it has the default name, as one workspace edit.
pub fn rename(session: &Session, params: &lsp::RenameParams) -> Result<Option<lsp::WorkspaceEdit>, String> {
    let position = &params.text_document_position;
    let Some(at) = At::new(session, &position.text_document.uri) else { return Ok(None) };
    let Some(site) = at.site(position.position) else { return Ok(None) };
    let Some(old) = uuid_at(&at, &site) else { return Ok(None) };
    let new = params.new_name.trim();
    if new.is_empty() || new.contains(['/', '\\', ' ', ':', '\'', '"']) || new == ".." {
        return Err(format!("`{new}` is not a valid block uuid"));
    }
    if at.project.pipelines.values().any(|pipeline| pipeline.block(new).is_some()) {
        return Err(format!("a block `{new}` already exists"));
    }
    let mut ranges = at.ranges();
    let text_of = |path: &Path| session.text(path);
    let mut edits: BTreeMap<PathBuf, Vec<lsp::TextEdit>> = BTreeMap::new();
    for (file, range, _) in occurrences(at.project, &old, &text_of) {
        let range = ranges.range(&file, range);
        edits.entry(file).or_default().push(lsp::TextEdit::new(range, new.to_owned()));
    }
    let mut changes: Vec<lsp::DocumentChangeOperation> = edits
        .into_iter()
        .map(|(file, edits)| {
            lsp::DocumentChangeOperation::Edit(lsp::TextDocumentEdit {
                text_document: lsp::OptionalVersionedTextDocumentIdentifier { uri: convert::uri(&file), version: session.version(&file) },
                edits: edits.into_iter().map(lsp::OneOf::Left).collect(),
            })
        })
        .collect();
    // The file moves with the uuid when it is at Mage's default place for it.
    let mut renamed = Vec::new();
    for pipeline in at.project.pipelines.values() {
        let Some(block) = pipeline.block(&old) else { continue };
        let (Some(rel), Some(ty), Some(language)) = (&block.file, block.block_type, block.language) else { continue };
        let default = PathBuf::from(ty.dir()).join(format!("{old}.{}", language.extension()));
        if *rel == default && !renamed.contains(rel) && session.text(&at.project.abs(rel)).is_some() {
            renamed.push(rel.clone());
            let target = PathBuf::from(ty.dir()).join(format!("{new}.{}", language.extension()));
            changes.push(lsp::DocumentChangeOperation::Op(lsp::ResourceOp::Rename(lsp::RenameFile {
                old_uri: convert::uri(&at.project.abs(rel)),
                new_uri: convert::uri(&at.project.abs(&target)),
                options: None,
                annotation_id: None,
            })));
        }
    }
    Ok(Some(lsp::WorkspaceEdit { document_changes: Some(lsp::DocumentChanges::Operations(changes)), ..Default::default() }))
}

#[allow(deprecated)]
fn symbol(
    name: String,
    detail: Option<String>,
    kind: lsp::SymbolKind,
    range: lsp::Range,
    selection: lsp::Range,
    children: Option<Vec<lsp::DocumentSymbol>>,
) -> lsp::DocumentSymbol {
    lsp::DocumentSymbol { name, detail, kind, tags: None, deprecated: None, range, selection_range: selection, children }
}

pub fn document_symbols(session: &Session, params: &lsp::DocumentSymbolParams) -> Option<lsp::DocumentSymbolResponse> {
    let at = At::new(session, &params.text_document.uri)?;
    let lines = at.lines();
    let mut out = Vec::new();
    if let Some(pipeline) = cursor::pipeline_of_file(at.project, &at.rel) {
        for block in &pipeline.blocks {
            let detail = format!("{} ({})", block.block_type.map_or("?", |ty| ty.as_str()), block.language.map_or("?", |it| it.as_str()));
            let kind = if block.section.key() == "blocks" { lsp::SymbolKind::FUNCTION } else { lsp::SymbolKind::EVENT };
            let range = lines
                .range(TextRange::new(block.node.range.start.min(block.uuid.range.start), block.node.range.end.max(block.uuid.range.end)));
            out.push(symbol(block.uuid.value.clone(), Some(detail), kind, range, lines.range(block.uuid.range), None));
        }
    } else if let Some(module) = at.project.source(&at.rel).and_then(|source| source.python.as_ref()) {
        for func in &module.functions {
            let detail = func.decorators.first().map(|decorator| format!("@{}", decorator.name));
            out.push(symbol(
                func.name.clone(),
                detail,
                lsp::SymbolKind::FUNCTION,
                lines.range(func.range),
                lines.range(func.name_range),
                None,
            ));
        }
    } else {
        return None;
    }
    Some(lsp::DocumentSymbolResponse::Nested(out))
}

/// Over a block's function: its neighbours and last run in each pipeline that uses the file.
pub fn code_lens(session: &Session, params: &lsp::CodeLensParams) -> Option<Vec<lsp::CodeLens>> {
    let at = At::new(session, &params.text_document.uri)?;
    let lines = at.lines();
    let source = at.project.source(&at.rel)?;
    let mut out = Vec::new();
    for (pipeline, block) in at.project.users_of_file(&at.rel) {
        let range =
            match source.python.as_ref().and_then(|module| module.block_function(block.block_type.map_or(&[][..], |ty| ty.decorators()))) {
                Some(func) => lines.range(func.name_range),
                None => lines.range(TextRange::empty(0)),
            };
        let list = |uuids: Vec<&str>| if uuids.is_empty() { "none".to_owned() } else { uuids.join(", ") };
        let state = crate::handlers::runs::state(session.run(&at.project.root, &pipeline.uuid), &block.uuid.value);
        let title = format!(
            "{}: upstream {} · downstream {} · last run: {}",
            pipeline.uuid,
            list(pipeline.dag.upstream(&block.uuid.value)),
            list(pipeline.dag.downstream(&block.uuid.value)),
            state.replace('_', " ")
        );
        let arguments = serde_json::json!({ "uri": convert::uri(&at.project.abs(&pipeline.metadata_path)), "block": block.uuid.value });
        out.push(lsp::CodeLens {
            range,
            command: Some(lsp::Command { title, command: "wand.showDag".into(), arguments: Some(vec![arguments]) }),
            data: None,
        });
    }
    Some(out)
}
