//! Blocks against their files: the file exists, is the one `file_source` names, has its
//! decorated function with the right number of parameters, and its SQL template refers to
//! upstream blocks and io_config profiles that exist.

use std::path::Path;

use crate::diagnostic::{Code, Diagnostic};
use crate::model::{Block, BlockSource, BlockType, Language, Pipeline, Project};
use crate::python::PyModule;
use crate::sql::SqlRefKind;
use crate::text::TextRange;
use crate::yaml::Node;

pub(super) fn check(project: &Project, pipeline: &Pipeline, diagnostics: &mut Vec<Diagnostic>) {
    let yaml_file = project.abs(&pipeline.metadata_path);
    for block in &pipeline.blocks {
        profile(project, &yaml_file, block, diagnostics);
        let Some(rel) = &block.file else { continue };
        file_source(project, &yaml_file, block, rel, diagnostics);
        let Some(source) = project.source(rel) else {
            let anchor = block.config("file_path").map_or(block.uuid.range, |node| node.range);
            diagnostics.push(
                Diagnostic::new(
                    Code::MissingBlockFile,
                    &yaml_file,
                    anchor,
                    format!("block `{}` has no file: `{}` does not exist", block.uuid.value, rel.display()),
                )
                .help(format!("create `{}` (Mage loads the pipeline but fails when the block runs)", rel.display())),
            );
            continue;
        };
        let block_file = project.abs(rel);
        if let Some(module) = &source.python {
            python(pipeline, &yaml_file, &block_file, block, module, diagnostics);
        }
        if block.language == Some(Language::Sql) {
            sql(pipeline, &yaml_file, &block_file, block, source, diagnostics);
        }
    }
}

/// `file-source-mismatch`: outside a platform Mage ignores `file_source.path`; a value naming
/// another file than the one Mage uses is stale and misleads readers.
fn file_source(project: &Project, yaml_file: &Path, block: &Block, rel: &Path, diagnostics: &mut Vec<Diagnostic>) {
    if project.platform_root.is_some() || block.block_type == Some(BlockType::Dbt) || block.config("file_path").is_some() {
        return;
    }
    let Some(node) = block.config("file_source").and_then(|source| source.get("path")) else { return };
    let Some(path) = node.as_str() else { return };
    let name = project.name();
    let written = Path::new(path).strip_prefix(&name).unwrap_or(Path::new(path));
    if written != rel {
        diagnostics.push(
            Diagnostic::new(
                Code::FileSourceMismatch,
                yaml_file,
                node.range,
                format!("`file_source.path` of block `{}` names `{path}`, but Mage runs `{}`", block.uuid.value, rel.display()),
            )
            .help(format!("outside a project platform Mage ignores `file_source.path`; set it to `{}` or remove it", rel.display())),
        );
    }
}

/// `unknown-profile`: `data_provider_profile` must name a profile of io_config.yaml.
fn profile(project: &Project, yaml_file: &Path, block: &Block, diagnostics: &mut Vec<Diagnostic>) {
    let Some(node) = block.config("data_provider_profile") else { return };
    let Some(name) = node.as_str() else { return };
    if name.contains("{{") {
        return;
    }
    let message = match &project.io_config {
        None => format!("block `{}` uses io_config profile `{name}`, but the project has no io_config.yaml", block.uuid.value),
        Some(io) if io.profiles.iter().any(|profile| profile.value == name) => return,
        Some(_) => format!("io_config profile `{name}` of block `{}` is not in io_config.yaml", block.uuid.value),
    };
    let known: Vec<&str> = project.io_config.iter().flat_map(|io| io.profiles.iter().map(|it| it.value.as_str())).collect();
    let help =
        if known.is_empty() { "add the profile to io_config.yaml".to_owned() } else { crate::load::suggest(name, known.into_iter()) };
    diagnostics.push(Diagnostic::new(Code::UnknownProfile, yaml_file, node.range, message).help(help));
}

/// Python block files: syntax, the decorated function and its parameter count (spec 4.1, 4.2).
fn python(pipeline: &Pipeline, yaml_file: &Path, block_file: &Path, block: &Block, module: &PyModule, diagnostics: &mut Vec<Diagnostic>) {
    if let Some(&error) = module.syntax_errors.first() {
        diagnostics.push(
            Diagnostic::new(Code::PythonSyntax, block_file, error, "Python syntax error")
                .help("Mage fails when it runs this block; fix the code here"),
        );
    }
    let Some(block_type) = block.block_type else { return };
    if !block_type.is_custom_execution()
        || matches!(block_type, BlockType::Chart | BlockType::Dbt | BlockType::Extension | BlockType::GlobalDataProduct)
    {
        return;
    }
    let decorators = block_type.decorators();
    let Some(func) = module.block_function(decorators) else {
        let anchor = module.functions.first().map_or(TextRange::empty(0), |func| func.name_range);
        diagnostics.push(
            Diagnostic::new(
                Code::MissingBlockFunction,
                block_file,
                anchor,
                format!("block `{}` has no function decorated with `@{}`", block.uuid.value, decorators[0]),
            )
            .help(format!("Mage runs the first function decorated with `@{}`; add the decorator to the block's function", decorators[0]))
            .related(yaml_file, block.uuid.range, format!("`{}` is a {} block", block.uuid.value, block_type)),
        );
        return;
    };
    let upstream = pipeline.dag.upstream(&block.uuid.value);
    if upstream.iter().any(|uuid| pipeline.block(uuid).and_then(|parent| parent.config("dynamic")).and_then(Node::as_bool) == Some(true)) {
        return;
    }
    let (n_args, n_inputs) = (func.n_args(), upstream.len());
    let message = if n_args > n_inputs {
        let at_least = if func.has_var_args() { "at least " } else { "" };
        format!(
            "`{}` expects {at_least}{n_args} argument{} but block `{}` has {n_inputs} upstream block{} in pipeline `{}`",
            func.name,
            plural(n_args),
            block.uuid.value,
            plural(n_inputs),
            pipeline.uuid
        )
    } else if n_args < n_inputs && !func.has_var_args() {
        format!(
            "`{}` takes {n_args} argument{} but block `{}` has {n_inputs} upstream block{} in pipeline `{}`",
            func.name,
            plural(n_args),
            block.uuid.value,
            plural(n_inputs),
            pipeline.uuid
        )
    } else {
        return;
    };
    let upstream_node = block.node.get("upstream_blocks").map_or(block.uuid.range, |node| node.range);
    diagnostics.push(
        Diagnostic::new(Code::ArgumentCount, block_file, func.params_range, message)
            .help("Mage passes one positional argument per upstream block, in `upstream_blocks` order; add `*args` to accept more")
            .related(yaml_file, upstream_node, "upstream blocks listed here"),
    );
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// SQL templates: `{{ df_N }}` within the upstream blocks, `block_output('x')` of an upstream block.
fn sql(pipeline: &Pipeline, yaml_file: &Path, block_file: &Path, block: &Block, source: &BlockSource, diagnostics: &mut Vec<Diagnostic>) {
    let Some(template) = &source.sql else { return };
    let upstream = pipeline.dag.upstream(&block.uuid.value);
    let upstream_node = block.node.get("upstream_blocks").map_or(block.uuid.range, |node| node.range);
    for reference in &template.refs {
        match &reference.kind {
            SqlRefKind::Df(n) if *n == 0 || *n > upstream.len() => diagnostics.push(
                Diagnostic::new(
                    Code::DfOutOfRange,
                    block_file,
                    reference.range,
                    format!(
                        "`df_{n}` but block `{}` has {} upstream block{} in pipeline `{}`",
                        block.uuid.value,
                        upstream.len(),
                        plural(upstream.len()),
                        pipeline.uuid
                    ),
                )
                .help("`df_N` is the N-th entry of `upstream_blocks`, counted from 1")
                .related(yaml_file, upstream_node, "upstream blocks listed here"),
            ),
            SqlRefKind::BlockOutput(uuid) if !upstream.contains(&uuid.as_str()) => {
                let what = if pipeline.block(uuid).is_some() { "is not an upstream block of" } else { "is not a block of the pipeline of" };
                diagnostics.push(
                    Diagnostic::new(
                        Code::UnknownBlockOutput,
                        block_file,
                        reference.range,
                        format!("`block_output('{uuid}')`: `{uuid}` {what} `{}` (pipeline `{}`)", block.uuid.value, pipeline.uuid),
                    )
                    .help(format!("add `{uuid}` to `upstream_blocks` of `{}`", block.uuid.value))
                    .related(yaml_file, upstream_node, "upstream blocks listed here"),
                );
            }
            _ => {}
        }
    }
}
