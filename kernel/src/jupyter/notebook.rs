//! A pipeline as an `.ipynb` (nbformat 4.5): a `%pipeline` cell, then one cell per block in
//! topological order, markdown blocks as markdown cells. Pure.

use pipeline::{Language, Project};
use serde_json::{Value as Json, json};

use super::cells;
use super::install::{DISPLAY_NAME, KERNEL_NAME};

fn lines(text: &str) -> Json {
    // nbformat stores sources as lists of lines, each with its newline but the last.
    let mut out: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    if let Some(last) = out.last_mut()
        && last.ends_with('\n')
    {
        last.pop();
    }
    json!(out)
}

fn cell_id(n: usize, uuid: &str) -> String {
    let clean: String = uuid.chars().map(|ch| if ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' { ch } else { '-' }).collect();
    format!("{n:02}-{clean}").chars().take(64).collect()
}

pub fn notebook(project: &Project, pipeline_uuid: &str) -> anyhow::Result<Json> {
    let pipeline = project
        .pipelines
        .get(pipeline_uuid)
        .ok_or_else(|| anyhow::format_err!("no pipeline `{pipeline_uuid}` in {}", project.root.display()))?;
    let order = pipeline.dag.topo_order().map_err(|cycles| {
        anyhow::format_err!("the pipeline has a dependency cycle: {}", cycles.first().map(|it| it.join(" -> ")).unwrap_or_default())
    })?;
    let mut cells_out = vec![json!({
        "cell_type": "code", "id": cell_id(0, "pipeline"), "metadata": {}, "execution_count": null, "outputs": [],
        "source": lines(&format!("%pipeline {pipeline_uuid}")),
    })];
    for (idx, uuid) in order.into_iter().enumerate() {
        let Some(block) = pipeline.block(uuid) else { continue };
        let text = block.file.as_ref().and_then(|file| std::fs::read_to_string(project.abs(file)).ok()).unwrap_or_default();
        let id = cell_id(idx + 1, uuid);
        if block.language == Some(Language::Markdown) {
            cells_out
                .push(json!({"cell_type": "markdown", "id": id, "metadata": {"wand": {"block": uuid}}, "source": lines(text.trim_end())}));
            continue;
        }
        let source = format!("{}\n{}", cells::block_header(uuid), text.trim_end());
        cells_out.push(json!({
            "cell_type": "code", "id": id, "metadata": {"wand": {"block": uuid}}, "execution_count": null, "outputs": [],
            "source": lines(&source),
        }));
    }
    Ok(json!({
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": KERNEL_NAME, "display_name": DISPLAY_NAME, "language": "python"},
            "language_info": {"name": "wand", "mimetype": "text/x-python", "file_extension": ".py", "pygments_lexer": "python3",
                              "codemirror_mode": {"name": "python", "version": 3}},
            "wand": {"pipeline": pipeline_uuid},
        },
        "cells": cells_out,
    }))
}
