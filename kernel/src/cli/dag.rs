//! `wand dag`: a pipeline's graph as Mermaid, DOT or SVG.

use std::path::Path;

use pipeline::draw;
use pipeline::vfs::DiskVfs;

use super::{DagFormat, EXIT_OK};

pub(super) fn run(project: &Path, pipeline_arg: &str, format: DagFormat, output: Option<&Path>) -> anyhow::Result<i32> {
    // A path to a pipeline folder works as well as a uuid.
    let as_path = Path::new(pipeline_arg);
    let (start, uuid) = if as_path.join("metadata.yaml").is_file() {
        let abs = std::path::absolute(as_path)?;
        let uuid = abs.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        (abs, uuid)
    } else {
        (project.to_path_buf(), pipeline_arg.to_owned())
    };
    let (_, roots) = super::projects_at(&start)?;
    let project = roots
        .iter()
        .map(|root| pipeline::load::load_project(&DiskVfs, root))
        .find(|project| project.pipelines.contains_key(&uuid))
        .ok_or_else(|| anyhow::format_err!("no pipeline `{uuid}` in {}", start.display()))?;
    let pipeline = &project.pipelines[&uuid];
    let states = draw::States::new();
    let text = match format {
        DagFormat::Mermaid => draw::mermaid(pipeline, &states),
        DagFormat::Dot => draw::dot(pipeline, &states),
        DagFormat::Svg => draw::svg(pipeline, &states),
    };
    match output {
        Some(path) => std::fs::write(path, text).map_err(|err| anyhow::format_err!("cannot write {}: {err}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(EXIT_OK)
}
