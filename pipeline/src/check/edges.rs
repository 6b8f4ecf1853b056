//! The pipeline file's own consistency: duplicate uuids, unknown and one-sided edges, cycles.

use std::collections::{HashMap, HashSet};

use crate::diagnostic::{Code, Diagnostic};
use crate::model::{Block, Pipeline, Project, Section};

pub(super) fn check(project: &Project, pipeline: &Pipeline, diagnostics: &mut Vec<Diagnostic>) {
    let file = project.abs(&pipeline.metadata_path);
    duplicates(&file, pipeline, diagnostics);
    unknown(&file, pipeline, diagnostics);
    asymmetric(&file, pipeline, diagnostics);
    cycles(&file, pipeline, diagnostics);
}

/// `duplicate-uuid`: uuids are unique across blocks, callbacks, conditionals and widgets.
fn duplicates(file: &std::path::Path, pipeline: &Pipeline, diagnostics: &mut Vec<Diagnostic>) {
    let mut first: HashMap<&str, &Block> = HashMap::new();
    for block in &pipeline.blocks {
        match first.get(block.uuid.value.as_str()) {
            None => {
                first.insert(&block.uuid.value, block);
            }
            Some(original) => diagnostics.push(
                Diagnostic::new(
                    Code::DuplicateUuid,
                    file,
                    block.uuid.range,
                    format!(
                        "duplicate block uuid `{}` (in `{}`, first in `{}`)",
                        block.uuid.value,
                        block.section.key(),
                        original.section.key()
                    ),
                )
                .help("Mage refuses to load a pipeline with two blocks of one uuid; rename or remove one")
                .related(file, original.uuid.range, "first defined here"),
            ),
        }
    }
}

/// `unknown-upstream` / `unknown-downstream`: edges to uuids that are not in the pipeline.
fn unknown(file: &std::path::Path, pipeline: &Pipeline, diagnostics: &mut Vec<Diagnostic>) {
    let known: HashSet<&str> = pipeline.blocks.iter().map(|block| block.uuid.value.as_str()).collect();
    for block in &pipeline.blocks {
        for (list, code, key) in
            [(&block.upstream, Code::UnknownUpstream, "upstream_blocks"), (&block.downstream, Code::UnknownDownstream, "downstream_blocks")]
        {
            for edge in list.iter().filter(|edge| !known.contains(edge.value.as_str())) {
                diagnostics.push(
                    Diagnostic::new(code, file, edge.range, format!("unknown block `{}` in `{key}` of `{}`", edge.value, block.uuid.value))
                        .help(format!("Mage silently drops this edge; {}", suggest_uuid(&edge.value, pipeline))),
                );
            }
        }
    }
}

fn suggest_uuid(text: &str, pipeline: &Pipeline) -> String {
    let hint = crate::load::suggest(text, pipeline.blocks.iter().map(|block| block.uuid.value.as_str()));
    if hint.starts_with("did you mean") { hint } else { "remove it or add the block to the pipeline".to_owned() }
}

/// `asymmetric-edge`: `downstream_blocks` must mirror the `upstream_blocks` lists (spec 2.5).
/// Only between entries of `blocks`: callbacks and conditionals attach through their own
/// upstream lists and are never listed downstream.
fn asymmetric(file: &std::path::Path, pipeline: &Pipeline, diagnostics: &mut Vec<Diagnostic>) {
    let blocks: HashMap<&str, &Block> =
        pipeline.blocks.iter().filter(|block| block.section == Section::Blocks).map(|block| (block.uuid.value.as_str(), block)).collect();
    for block in pipeline.blocks.iter().filter(|block| block.section == Section::Blocks) {
        for edge in &block.upstream {
            let Some(parent) = blocks.get(edge.value.as_str()) else { continue };
            if parent.downstream.iter().any(|it| it.value == block.uuid.value) {
                continue;
            }
            let anchor = parent.node.entry("downstream_blocks").map_or(parent.uuid.range, |entry| entry.key.range);
            diagnostics.push(
                Diagnostic::new(
                    Code::AsymmetricEdge,
                    file,
                    anchor,
                    format!(
                        "`{}` lists `{}` upstream, but `downstream_blocks` of `{}` does not list `{}`",
                        block.uuid.value, parent.uuid.value, parent.uuid.value, block.uuid.value
                    ),
                )
                .help(format!(
                    "add `{}` to `downstream_blocks` of `{}`: `mage run` reaches blocks only through `downstream_blocks`",
                    block.uuid.value, parent.uuid.value
                ))
                .related(file, edge.range, "upstream edge written here"),
            );
        }
        for edge in &block.downstream {
            let Some(child) = blocks.get(edge.value.as_str()) else { continue };
            if child.upstream.iter().any(|it| it.value == block.uuid.value) {
                continue;
            }
            diagnostics.push(
                Diagnostic::new(
                    Code::AsymmetricEdge,
                    file,
                    edge.range,
                    format!(
                        "`{}` lists `{}` downstream, but `upstream_blocks` of `{}` does not list `{}`",
                        block.uuid.value, child.uuid.value, child.uuid.value, block.uuid.value
                    ),
                )
                .help(format!(
                    "`upstream_blocks` decides the order: add `{}` to `upstream_blocks` of `{}` or remove this entry",
                    block.uuid.value, child.uuid.value
                )),
            );
        }
    }
}

/// `dependency-cycle`: reported on the edge that closes the cycle, naming every block on it.
fn cycles(file: &std::path::Path, pipeline: &Pipeline, diagnostics: &mut Vec<Diagnostic>) {
    for cycle in pipeline.dag.cycles() {
        let first = &cycle[0];
        let last = &cycle[cycle.len() - 1];
        let Some(block) = pipeline.dag_blocks().find(|block| &block.uuid.value == first) else { continue };
        let range = block.upstream.iter().find(|edge| &edge.value == last).map_or(block.uuid.range, |edge| edge.range);
        let path: Vec<&str> = cycle.iter().chain(std::iter::once(first)).map(String::as_str).collect();
        let mut diagnostic = Diagnostic::new(Code::DependencyCycle, file, range, format!("dependency cycle: {}", path.join(" -> ")))
            .help("a pipeline is a DAG: remove one of these upstream edges");
        for pair in cycle.windows(2) {
            if let Some(child) = pipeline.dag_blocks().find(|it| it.uuid.value == pair[1]) {
                if let Some(edge) = child.upstream.iter().find(|edge| edge.value == pair[0]) {
                    diagnostic = diagnostic.related(file, edge.range, format!("`{}` depends on `{}`", pair[1], pair[0]));
                }
            }
        }
        diagnostics.push(diagnostic);
    }
}
