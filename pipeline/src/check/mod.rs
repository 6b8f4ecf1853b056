//! Validation: every check of a loaded project, as diagnostics.
//!
//! One module per family of checks. Each is a pure function of the model; [`project`] runs them
//! all and returns the diagnostics sorted and without repeats (a block file shared by several
//! pipelines is checked once per pipeline, and the same finding is shown once).

mod edges;
mod files;
mod triggers;

use crate::diagnostic::Diagnostic;
use crate::model::{Pipeline, Project};

/// Every diagnostic of the project: load problems and checks of every pipeline.
pub fn project(project: &Project) -> Vec<Diagnostic> {
    let mut diagnostics = project.load_diagnostics.clone();
    for pipeline in project.pipelines.values() {
        diagnostics.extend(self::pipeline(project, pipeline));
    }
    normalize(&mut diagnostics);
    diagnostics
}

/// The diagnostics of one pipeline: its files and the block files it uses.
pub fn pipeline(project: &Project, pipeline: &Pipeline) -> Vec<Diagnostic> {
    let mut diagnostics = pipeline.load_diagnostics.clone();
    edges::check(project, pipeline, &mut diagnostics);
    files::check(project, pipeline, &mut diagnostics);
    triggers::check(project, pipeline, &mut diagnostics);
    normalize(&mut diagnostics);
    diagnostics
}

/// Sorts by file and position and drops repeats.
pub fn normalize(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.sort_by(|a, b| (&a.file, a.range, a.code, &a.message).cmp(&(&b.file, b.range, b.code, &b.message)));
    diagnostics.dedup_by(|a, b| a.file == b.file && a.range == b.range && a.code == b.code && a.message == b.message);
}
