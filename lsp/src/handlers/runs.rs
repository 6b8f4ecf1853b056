//! The last run of each pipeline, as the engine recorded it: failing `@test` functions and
//! failed blocks as diagnostics, and the `wand/dag` request.

use std::path::PathBuf;

use pipeline::Project;
use pipeline::runrecord::{BlockStatus, RunRecord};
use serde::{Deserialize, Serialize};
use tower_lsp_server::ls_types::{self as lsp, Uri};

use crate::convert::{self, RangeCache};
use crate::session::Session;

/// Diagnostics from the last run records of a project's pipelines: `failed-test` on the test
/// function, `block-failed` on the block's entry in the pipeline file.
pub fn diagnostics(
    session: &Session,
    project: &Project,
    ranges: &mut RangeCache<impl Fn(&std::path::Path) -> Option<std::sync::Arc<str>>>,
) -> Vec<(PathBuf, lsp::Diagnostic)> {
    let mut out = Vec::new();
    for pipeline in project.pipelines.values() {
        let Some(record) = session.run(&project.root, &pipeline.uuid) else { continue };
        for run in &record.blocks {
            let block = pipeline.block(&run.uuid);
            let rel = run.file.clone().or_else(|| block.and_then(|block| block.file.clone()));
            if let Some(rel) = &rel {
                let module = project.source(rel).and_then(|source| source.python.as_ref());
                for test in run.tests.iter().filter(|test| !test.passed) {
                    let file = project.abs(rel);
                    let range = match module.and_then(|module| module.tests().find(|func| func.name == test.name)) {
                        Some(func) => ranges.range(&file, func.name_range),
                        None => {
                            let line = test.line.unwrap_or(1).saturating_sub(1);
                            lsp::Range::new(lsp::Position::new(line, 0), lsp::Position::new(line, 0))
                        }
                    };
                    let mut message = format!("test `{}` failed in the last run of pipeline `{}`", test.name, pipeline.uuid);
                    if let Some(text) = &test.message {
                        message.push_str(": ");
                        message.push_str(text);
                    }
                    let related = test.failed_line.map(|line| {
                        let at = lsp::Position::new(line.saturating_sub(1), 0);
                        vec![lsp::DiagnosticRelatedInformation {
                            location: lsp::Location::new(convert::uri(&file), lsp::Range::new(at, at)),
                            message: "failed here".into(),
                        }]
                    });
                    out.push((file, diagnostic(range, "failed-test", message, related)));
                }
            }
            if run.status == BlockStatus::Failed {
                let Some(block) = block else { continue };
                let file = project.abs(&pipeline.metadata_path);
                let what = run.error.as_ref().map_or_else(String::new, |error| format!(": {}: {}", error.ename, error.evalue));
                let message = format!("block `{}` failed in the last run{what}", run.uuid);
                out.push((file.clone(), diagnostic(ranges.range(&file, block.uuid.range), "block-failed", message, None)));
            }
        }
    }
    out
}

fn diagnostic(range: lsp::Range, code: &str, message: String, related: Option<Vec<lsp::DiagnosticRelatedInformation>>) -> lsp::Diagnostic {
    lsp::Diagnostic {
        range,
        severity: Some(lsp::DiagnosticSeverity::ERROR),
        code: Some(lsp::NumberOrString::String(code.to_owned())),
        source: Some("wand".to_owned()),
        message,
        related_information: related,
        ..Default::default()
    }
}

/// The state of a block in a run record, as `wand/dag` names it.
pub fn state(record: Option<&RunRecord>, uuid: &str) -> String {
    let Some(record) = record else { return "not_run".to_owned() };
    let Some(run) = record.blocks.iter().find(|run| run.uuid == uuid) else { return "not_run".to_owned() };
    let failing_test = run.tests.iter().any(|test| !test.passed);
    let text = serde_json::to_value(run.status).ok().and_then(|value| value.as_str().map(str::to_owned)).unwrap_or_default();
    if failing_test && run.status == BlockStatus::Succeeded { "test_failed".to_owned() } else { text }
}

#[derive(Debug, Deserialize)]
pub struct DagParams {
    pub uri: Option<Uri>,
    pub project: Option<Uri>,
    pub pipeline: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DagNode {
    pub uuid: String,
    #[serde(rename = "type")]
    pub block_type: Option<String>,
    pub language: Option<String>,
    pub file: Option<Uri>,
    pub state: String,
}

#[derive(Debug, Serialize)]
pub struct DagEdge {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Serialize)]
pub struct DagResult {
    pub pipeline: String,
    pub nodes: Vec<DagNode>,
    pub edges: Vec<DagEdge>,
}

/// `wand/dag`: a pipeline's graph with each block's state in the last run.
pub fn dag(session: &Session, params: &DagParams) -> Option<DagResult> {
    let (project, uuid) = if let Some(uri) = &params.uri {
        let path = convert::path(uri)?;
        let (project, rel) = session.project_of(&path)?;
        let uuid = match pipeline::cursor::pipeline_of_file(project, rel) {
            Some(pipeline) => pipeline.uuid.clone(),
            None => match rel.iter().map(|it| it.to_str()).collect::<Vec<_>>().as_slice() {
                [Some("pipelines"), Some(uuid), ..] => (*uuid).to_owned(),
                _ => project.users_of_file(rel).next()?.0.uuid.clone(),
            },
        };
        (project, uuid)
    } else {
        let root = convert::path(params.project.as_ref()?)?;
        (session.projects.get(&root)?, params.pipeline.clone()?)
    };
    let pipeline = project.pipelines.get(&uuid)?;
    let record = session.run(&project.root, &uuid);
    let nodes = pipeline
        .dag_blocks()
        .map(|block| DagNode {
            uuid: block.uuid.value.clone(),
            block_type: block.block_type.map(|it| it.as_str().to_owned()),
            language: block.language.map(|it| it.as_str().to_owned()),
            file: block.file.as_ref().map(|rel| convert::uri(&project.abs(rel))),
            state: state(record, &block.uuid.value),
        })
        .collect();
    let edges = pipeline.dag.edges().map(|(from, to)| DagEdge { from: from.to_owned(), to: to.to_owned() }).collect();
    Some(DagResult { pipeline: uuid, nodes, edges })
}
