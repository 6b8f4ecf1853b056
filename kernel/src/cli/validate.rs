//! `wand validate`: diagnostics the way rustc prints them, or as JSON.

use std::io::IsTerminal;
use std::path::Path;

use pipeline::render::{self, Styles};
use pipeline::vfs::{DiskVfs, Vfs};
use pipeline::{Diagnostic, Severity};

use super::{EXIT_FOUND_ERRORS, EXIT_OK, Format};

pub(super) fn run(path: &Path, only: Option<&str>, format: Format) -> anyhow::Result<i32> {
    let (base, roots) = super::projects_at(path)?;
    let cwd = std::env::current_dir().unwrap_or(base.clone());
    let display_base = if base.starts_with(&cwd) { cwd } else { base.clone() };
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let mut found_pipeline = only.is_none();
    for root in &roots {
        let project = pipeline::load::load_project(&DiskVfs, root);
        match only {
            None => diagnostics.extend(pipeline::check::project(&project)),
            Some(uuid) => {
                if let Some(pipeline) = project.pipelines.get(uuid) {
                    found_pipeline = true;
                    diagnostics.extend(pipeline::check::pipeline(&project, pipeline));
                }
            }
        }
    }
    if !found_pipeline {
        anyhow::bail!("no pipeline `{}` in {}", only.unwrap_or_default(), base.display());
    }
    pipeline::check::normalize(&mut diagnostics);
    let read = |path: &Path| DiskVfs.read(path);
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&render::json(&diagnostics, &display_base, &read))?),
        Format::Human => {
            let styles = Styles { color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() };
            for diagnostic in &diagnostics {
                println!("{}", render::human(diagnostic, &display_base, &read, &styles));
            }
            let n_pipelines = roots.len();
            if diagnostics.is_empty() {
                println!("{}: no problems found ({} project{})", base.display(), n_pipelines, if n_pipelines == 1 { "" } else { "s" });
            } else {
                println!("{}", render::summary(&diagnostics));
            }
        }
    }
    Ok(if diagnostics.iter().any(|it| it.severity == Severity::Error) { EXIT_FOUND_ERRORS } else { EXIT_OK })
}
