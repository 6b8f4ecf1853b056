//! Reading a project: files through a [`Vfs`], YAML into the model, with diagnostics for what
//! does not fit. Loading never fails: a broken file gives a partial model and diagnostics.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::dag::Dag;
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{
    Block, BlockSource, BlockStatus, BlockType, ExecutorType, IoConfig, Language, Pipeline, Project, Section, Spanned, Triggers,
};
use crate::text::TextRange;
use crate::vfs::{Vfs, platform_root_of};
use crate::yaml::{self, Node};

/// Loads the project at `root` (an absolute path) with every pipeline and block file.
pub fn load_project(vfs: &dyn Vfs, root: &Path) -> Project {
    let mut project = Project {
        root: root.to_path_buf(),
        platform_root: platform_root_of(vfs, root),
        config: None,
        io_config: None,
        pipelines: BTreeMap::new(),
        sources: BTreeMap::new(),
        load_diagnostics: Vec::new(),
    };
    reload_project_files(vfs, &mut project);
    for name in vfs.list_dir(&root.join("pipelines")) {
        if vfs.is_file(&root.join("pipelines").join(&name).join("metadata.yaml")) {
            let pipeline = load_pipeline(vfs, &project, &name);
            project.pipelines.insert(name, pipeline);
        }
    }
    reload_sources(vfs, &mut project);
    project
}

/// Re-reads the project `metadata.yaml` and `io_config.yaml`.
pub fn reload_project_files(vfs: &dyn Vfs, project: &mut Project) {
    project.load_diagnostics.clear();
    let metadata = project.root.join("metadata.yaml");
    if let Some(text) = vfs.read(&metadata) {
        project.config = parse_rendered(&metadata, &text, &mut project.load_diagnostics);
    }
    let io_path = project.root.join("io_config.yaml");
    project.io_config = vfs.read(&io_path).map(|text| {
        let doc = parse_rendered(&io_path, &text, &mut project.load_diagnostics);
        let profiles = doc
            .as_ref()
            .and_then(Node::as_map)
            .unwrap_or_default()
            .iter()
            .filter(|entry| entry.key.scalar() != Some("version") && entry.value.as_map().is_some())
            .filter_map(|entry| Some(Spanned { value: entry.key.as_str()?.to_owned(), range: entry.key.range }))
            .collect();
        IoConfig { path: PathBuf::from("io_config.yaml"), doc, profiles }
    });
}

/// Reloads one pipeline (its metadata.yaml and triggers.yaml) and the block files it uses.
pub fn reload_pipeline(vfs: &dyn Vfs, project: &mut Project, uuid: &str) {
    if vfs.is_file(&project.root.join("pipelines").join(uuid).join("metadata.yaml")) {
        let pipeline = load_pipeline(vfs, project, uuid);
        project.pipelines.insert(uuid.to_owned(), pipeline);
    } else {
        project.pipelines.remove(uuid);
    }
    reload_sources(vfs, project);
}

/// Re-reads one block file (after an edit), or forgets it when it is gone.
pub fn reload_source(vfs: &dyn Vfs, project: &mut Project, rel: &Path) {
    let language = project.users_of_file(rel).find_map(|(_, block)| block.language);
    match vfs.read(&project.root.join(rel)) {
        Some(text) => {
            project.sources.insert(rel.to_path_buf(), Arc::new(block_source(text, language)));
        }
        None => {
            project.sources.remove(rel);
        }
    }
}

/// Reads the block files that pipelines point at and that are not read yet; forgets the ones no
/// pipeline uses any more.
fn reload_sources(vfs: &dyn Vfs, project: &mut Project) {
    let mut wanted: BTreeMap<PathBuf, Option<Language>> = BTreeMap::new();
    for block in project.pipelines.values().flat_map(|pipeline| &pipeline.blocks) {
        if let Some(file) = &block.file {
            wanted.entry(file.clone()).or_insert(block.language);
        }
    }
    project.sources.retain(|path, _| wanted.contains_key(path));
    for (rel, language) in wanted {
        if project.sources.contains_key(&rel) {
            continue;
        }
        if let Some(text) = vfs.read(&project.root.join(&rel)) {
            project.sources.insert(rel, Arc::new(block_source(text, language)));
        }
    }
}

fn block_source(text: Arc<str>, language: Option<Language>) -> BlockSource {
    let (python, sql) = match language {
        Some(Language::Python) => (Some(crate::python::parse(&text)), None),
        Some(Language::Sql) => (None, Some(crate::sql::parse(&text))),
        _ => (None, None),
    };
    BlockSource { text, python, sql }
}

/// Parses a file that Mage renders with Jinja before reading it: templates are masked first.
fn parse_rendered(path: &Path, text: &str, diagnostics: &mut Vec<Diagnostic>) -> Option<Node> {
    let masked = if text.contains("{{") || text.contains("{%") { yaml::mask_jinja(text) } else { text.to_owned() };
    parse_yaml(path, &masked, diagnostics)
}

fn parse_yaml(path: &Path, text: &str, diagnostics: &mut Vec<Diagnostic>) -> Option<Node> {
    let (doc, error) = yaml::parse(text);
    if let Some(error) = error {
        let end = text[error.offset..].chars().next().map_or(error.offset, |ch| error.offset + ch.len_utf8());
        diagnostics.push(
            Diagnostic::new(Code::YamlSyntax, path, TextRange::new(error.offset, end), format!("YAML syntax error: {}", error.message))
                .help("Mage cannot load this file until it parses"),
        );
        return None;
    }
    doc
}

fn load_pipeline(vfs: &dyn Vfs, project: &Project, uuid: &str) -> Pipeline {
    let metadata_path = PathBuf::from("pipelines").join(uuid).join("metadata.yaml");
    let abs = project.root.join(&metadata_path);
    let mut diagnostics = Vec::new();
    let text = vfs.read(&abs).unwrap_or_default();
    let doc = parse_yaml(&abs, &text, &mut diagnostics);
    let mut blocks = Vec::new();
    if diagnostics.is_empty() {
        match doc.as_ref().filter(|doc| doc.as_map().is_some()) {
            Some(doc) => lower_blocks(&abs, doc, &mut blocks, &mut diagnostics),
            None => diagnostics.push(
                Diagnostic::new(
                    Code::InvalidPipeline,
                    &abs,
                    doc.as_ref().map_or(TextRange::empty(0), |doc| doc.range),
                    "invalid pipeline config: the file is not a mapping",
                )
                .help("a pipeline's metadata.yaml is a mapping with at least a `blocks` list"),
            ),
        }
    }
    resolve_files(vfs, project, &abs, &mut blocks, &mut diagnostics);
    let dag =
        Dag::build(blocks.iter().filter(|block| block.in_dag()).map(|block| (block.uuid.value.as_str(), block.upstream_uuids().collect())));
    let triggers_path = PathBuf::from("pipelines").join(uuid).join("triggers.yaml");
    let triggers = vfs.read(&project.root.join(&triggers_path)).map(|text| {
        let doc = parse_yaml(&project.root.join(&triggers_path), &text, &mut diagnostics);
        Triggers { path: triggers_path, doc }
    });
    Pipeline { uuid: uuid.to_owned(), metadata_path, doc, blocks, dag, triggers, load_diagnostics: diagnostics }
}

fn lower_blocks(file: &Path, doc: &Node, blocks: &mut Vec<Block>, diagnostics: &mut Vec<Diagnostic>) {
    for section in [Section::Blocks, Section::Callbacks, Section::Conditionals, Section::Widgets] {
        if let Some(list) = doc.get(section.key()) {
            lower_list(file, list, &section, blocks, diagnostics);
        }
    }
    if let Some(extensions) = doc.get("extensions").and_then(Node::as_map) {
        for entry in extensions {
            let (Some(name), Some(list)) = (entry.key.as_str(), entry.value.get("blocks")) else { continue };
            lower_list(file, list, &Section::Extension(name.to_owned()), blocks, diagnostics);
        }
    }
}

fn lower_list(file: &Path, list: &Node, section: &Section, blocks: &mut Vec<Block>, diagnostics: &mut Vec<Diagnostic>) {
    if list.is_null() {
        return;
    }
    let Some(items) = list.as_seq() else {
        diagnostics.push(Diagnostic::new(Code::InvalidPipeline, file, list.range, format!("`{}` must be a list of blocks", section.key())));
        return;
    };
    for item in items {
        if item.as_map().is_none() {
            diagnostics.push(Diagnostic::new(
                Code::InvalidPipeline,
                file,
                item.range,
                "a block entry must be a mapping with `uuid` and `type`",
            ));
            continue;
        }
        if let Some(block) = lower_block(file, item, section, diagnostics) {
            blocks.push(block);
        }
    }
}

/// The range of an entry's first line, where a missing key is reported.
fn head_range(node: &Node) -> TextRange {
    node.as_map()
        .and_then(|entries| entries.first())
        .map_or(node.range, |first| TextRange::new(first.key.range.start, first.value.range.end))
}

fn lower_block(file: &Path, node: &Node, section: &Section, diagnostics: &mut Vec<Diagnostic>) -> Option<Block> {
    let Some(uuid_node) = node.get("uuid").filter(|uuid| uuid.as_str().is_some_and(|text| !text.is_empty())) else {
        diagnostics.push(
            Diagnostic::new(Code::MissingUuid, file, head_range(node), "block entry has no `uuid`")
                .help("Mage refuses to load a pipeline with a block without uuid; add `uuid: <name of the block file>`"),
        );
        return None;
    };
    let uuid = Spanned { value: uuid_node.as_str().unwrap_or_default().to_owned(), range: uuid_node.range };
    let block_type = match node.get("type").filter(|it| !it.is_null()) {
        None => {
            diagnostics.push(
                Diagnostic::new(Code::MissingType, file, head_range(node), format!("block `{}` has no `type`", uuid.value))
                    .help(format!("Mage refuses to load it; add a type such as `type: transformer` (one of {})", list(BlockType::ALL))),
            );
            None
        }
        Some(value) => {
            let text = value.scalar().unwrap_or_default();
            let parsed = BlockType::parse(text);
            if parsed.is_none() {
                diagnostics.push(
                    Diagnostic::new(
                        Code::InvalidBlockType,
                        file,
                        value.range,
                        format!("invalid block type `{text}` of block `{}`", uuid.value),
                    )
                    .help(suggest(text, BlockType::ALL.iter().map(|it| it.as_str()))),
                );
            }
            parsed
        }
    };
    let language = match node.get("language").filter(|it| !it.is_null()) {
        None => Some(Language::Python),
        Some(value) => {
            let text = value.scalar().unwrap_or_default();
            let parsed = Language::parse(text);
            if parsed.is_none() {
                diagnostics.push(
                    Diagnostic::new(
                        Code::InvalidLanguage,
                        file,
                        value.range,
                        format!("invalid language `{text}` of block `{}`", uuid.value),
                    )
                    .help(format!(
                        "Mage loads it but fails when the block runs; {}",
                        suggest(text, Language::ALL.iter().map(|it| it.as_str()))
                    )),
                );
            }
            parsed
        }
    };
    check_enum(file, node, "status", Code::InvalidStatus, &uuid.value, BlockStatus::ALL.iter().map(|it| it.as_str()), diagnostics);
    check_enum(
        file,
        node,
        "executor_type",
        Code::InvalidExecutorType,
        &uuid.value,
        ExecutorType::ALL.iter().map(|it| it.as_str()),
        diagnostics,
    );
    if uuid_escapes(&uuid.value) {
        diagnostics.push(
            Diagnostic::new(Code::PathEscapesProject, file, uuid.range, format!("block uuid `{}` leaves the project folder", uuid.value))
                .help("a uuid names a file under the block type's folder: no `..`, no leading `/`"),
        );
    }
    Some(Block {
        upstream: uuid_list(node.get("upstream_blocks")),
        downstream: uuid_list(node.get("downstream_blocks")),
        configuration: node.get("configuration").filter(|it| it.as_map().is_some()).cloned(),
        node: node.clone(),
        section: section.clone(),
        block_type,
        language,
        uuid,
        file: None,
    })
}

fn check_enum<'a>(
    file: &Path,
    node: &Node,
    key: &str,
    code: Code,
    uuid: &str,
    allowed: impl Iterator<Item = &'a str> + Clone,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let Some(value) = node.get(key).filter(|it| !it.is_null()) else { return };
    let text = value.scalar().unwrap_or_default();
    if text.contains("{{") || allowed.clone().any(|it| it == text) {
        return;
    }
    diagnostics.push(
        Diagnostic::new(code, file, value.range, format!("invalid {} `{text}` of block `{uuid}`", key.replace('_', " ")))
            .help(suggest(text, allowed)),
    );
}

fn uuid_list(node: Option<&Node>) -> Vec<Spanned<String>> {
    let Some(items) = node.and_then(Node::as_seq) else { return Vec::new() };
    items.iter().filter_map(|item| Some(Spanned { value: item.as_str()?.to_owned(), range: item.range })).collect()
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items.iter().map(|it| format!("`{it}`")).collect::<Vec<_>>().join(", ")
}

/// "did you mean" for a misspelt value, else the list of allowed values.
pub(crate) fn suggest<'a>(text: &str, allowed: impl Iterator<Item = &'a str>) -> String {
    let allowed: Vec<&str> = allowed.collect();
    let best = allowed.iter().map(|candidate| (edit_distance(text, candidate), *candidate)).min();
    match best {
        Some((distance, candidate)) if distance <= 2.max(text.len() / 3) => format!("did you mean `{candidate}`?"),
        _ => format!("expected one of {}", list(&allowed)),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb)).min(row[j] + 1).min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

/// Whether a relative path written in a project file is absolute or climbs out of the folder
/// it is relative to.
pub(crate) fn escapes(path: &str) -> bool {
    if path.starts_with('/') || path.starts_with('\\') || Path::new(path).is_absolute() {
        return true;
    }
    let mut depth = 0i32;
    for component in Path::new(path).components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

/// A uuid names a file below its type's folder: any `..` in it is a way out.
fn uuid_escapes(uuid: &str) -> bool {
    escapes(uuid) || Path::new(uuid).components().any(|component| component == Component::ParentDir)
}

/// Block-to-file resolution (spec 3.3): replica, platform `file_source.path`,
/// `configuration.file_path`, then the default `<type>s/<uuid>.<ext>`.
fn resolve_files(vfs: &dyn Vfs, project: &Project, file: &Path, blocks: &mut [Block], diagnostics: &mut Vec<Diagnostic>) {
    let own: Vec<Option<PathBuf>> = blocks.iter().map(|block| own_file(vfs, project, file, block, diagnostics)).collect();
    for idx in 0..blocks.len() {
        let replicated = blocks[idx]
            .node
            .get("replicated_block")
            .and_then(Node::as_str)
            .and_then(|of| blocks.iter().position(|other| other.uuid.value == of));
        blocks[idx].file = match replicated {
            Some(of) if of != idx => own[of].clone(),
            _ => own[idx].clone(),
        };
    }
}

fn own_file(vfs: &dyn Vfs, project: &Project, file: &Path, block: &Block, diagnostics: &mut Vec<Diagnostic>) -> Option<PathBuf> {
    let block_type = block.block_type?;
    // An unknown language has no file extension: Mage fails on it, and so does the diagnostic.
    block.language?;
    if block_type == BlockType::GlobalDataProduct || block.node.get("content").and_then(Node::as_str).is_some() {
        return None;
    }
    if let Some(platform) = &project.platform_root {
        if let Some(path) = block.config("file_source").and_then(|source| source.get("path")).and_then(Node::as_str) {
            let abs = platform.join(path);
            if let Ok(rel) = abs.strip_prefix(&project.root) {
                return Some(rel.to_path_buf());
            }
        }
    }
    if let Some(node) = block.config("file_path").filter(|it| !it.is_null()) {
        let path = node.as_str().unwrap_or_default();
        let abs = Path::new(path);
        if abs.is_absolute() {
            if let Ok(rel) = abs.strip_prefix(&project.root) {
                return Some(rel.to_path_buf());
            }
        }
        if escapes(path) {
            diagnostics.push(
                Diagnostic::new(
                    Code::PathEscapesProject,
                    file,
                    node.range,
                    format!("`file_path` of block `{}` points outside the project", block.uuid.value),
                )
                .help("write the path relative to the project folder, without `..`"),
            );
            return None;
        }
        return Some(absolutize(vfs, project, path));
    }
    // dbt blocks name their model through `file_source.path` even outside a platform (spec 3.4).
    if block_type == BlockType::Dbt {
        if let Some(path) = block.config("file_source").and_then(|source| source.get("path")).and_then(Node::as_str) {
            if !escapes(path) {
                return Some(absolutize(vfs, project, path));
            }
        }
    }
    if uuid_escapes(&block.uuid.value) {
        return None;
    }
    let language = block.language.unwrap_or(Language::Python);
    Some(PathBuf::from(block_type.dir()).join(format!("{}.{}", block.uuid.value, language.extension())))
}

/// Mage's `add_absolute_path` for a relative path: a leading project folder name is dropped;
/// a path whose first folder is not in the project but is under `dbt/` goes there.
fn absolutize(vfs: &dyn Vfs, project: &Project, path: &str) -> PathBuf {
    let path = Path::new(path);
    let name = project.name();
    if let Ok(rest) = path.strip_prefix(&name) {
        if !name.is_empty() {
            return rest.to_path_buf();
        }
    }
    let first = path.components().next().map(|it| it.as_os_str().to_owned()).unwrap_or_default();
    if !vfs.is_dir(&project.root.join(&first))
        && !vfs.is_file(&project.root.join(path))
        && vfs.is_dir(&project.root.join("dbt").join(&first))
    {
        return Path::new("dbt").join(path);
    }
    path.to_path_buf()
}
