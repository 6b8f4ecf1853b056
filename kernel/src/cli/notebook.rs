//! `wand notebook PIPELINE`: the pipeline as an `.ipynb` for the `wand` kernel.

use std::path::Path;

use pipeline::vfs::DiskVfs;

use super::EXIT_OK;

pub(super) fn run(project: &Path, pipeline: &str, output: Option<&Path>) -> anyhow::Result<i32> {
    let (base, roots) = super::projects_at(project)?;
    let project = roots
        .iter()
        .map(|root| pipeline::load::load_project(&DiskVfs, root))
        .find(|project| project.pipelines.contains_key(pipeline))
        .ok_or_else(|| anyhow::format_err!("no pipeline `{pipeline}` in {}", base.display()))?;
    let notebook = crate::jupyter::notebook::notebook(&project, pipeline)?;
    let path = match output {
        Some(path) => path.to_path_buf(),
        None => project.root.join(format!("{pipeline}.ipynb")),
    };
    std::fs::write(&path, serde_json::to_string_pretty(&notebook)? + "\n")
        .map_err(|err| anyhow::format_err!("cannot write {}: {err}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(EXIT_OK)
}
