//! What is under the cursor: a site in a pipeline file or a block file, by byte offset.
//!
//! The language server asks this for go-to-definition, references, rename, hover and
//! completion; it is a pure function of the model, so it lives here and not in the server.

use std::path::{Path, PathBuf};

use crate::model::{Pipeline, Project};
use crate::sql::SqlRefKind;
use crate::text::TextRange;

/// A place in a project file that names something.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// The file, relative to the project root.
    pub file: PathBuf,
    /// The range of the name under the cursor (a uuid without quotes, `df_N`, a parameter).
    pub range: TextRange,
    pub kind: SiteKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SiteKind {
    /// A uuid in `upstream_blocks` (or `downstream_blocks` when `downstream`) of block `of`.
    Edge { pipeline: String, of: String, uuid: String, downstream: bool },
    /// The `uuid:` value of a block entry.
    BlockUuid { pipeline: String, uuid: String },
    /// The value of `configuration.data_provider_profile` of block `block`.
    Profile { pipeline: String, block: String, name: String },
    /// `{{ df_N }}` in a SQL block file (1-based).
    SqlDf(usize),
    /// The quoted argument of `block_output('uuid')` in a SQL block file.
    SqlBlockOutput(String),
    /// The `index`-th (0-based) positional parameter of a Python block's function.
    Param { index: usize, name: String },
    /// The name of a Python block's decorated function.
    BlockFunction { name: String },
}

/// The pipeline whose `metadata.yaml` is `rel`.
pub fn pipeline_of_file<'a>(project: &'a Project, rel: &Path) -> Option<&'a Pipeline> {
    project.pipelines.values().find(|pipeline| pipeline.metadata_path == rel)
}

/// Strips the quotes of a quoted YAML scalar's range, so that the range covers the text only.
fn unquoted(text: Option<&str>, range: TextRange) -> TextRange {
    let Some(text) = text else { return range };
    let bytes = text.as_bytes();
    if range.len() >= 2 && range.end <= bytes.len() {
        let (first, last) = (bytes[range.start], bytes[range.end - 1]);
        if (first == b'"' || first == b'\'') && first == last {
            return TextRange::new(range.start + 1, range.end - 1);
        }
    }
    range
}

/// The site at byte `offset` of the file `rel` (relative to the project root). `text` is the
/// file's current text, used only to strip quotes off YAML ranges.
pub fn site_at(project: &Project, rel: &Path, offset: usize, text: Option<&str>) -> Option<Site> {
    let site = |range: TextRange, kind: SiteKind| Some(Site { file: rel.to_path_buf(), range, kind });
    if let Some(pipeline) = pipeline_of_file(project, rel) {
        for block in &pipeline.blocks {
            if block.uuid.range.contains(offset) {
                let range = unquoted(text, block.uuid.range);
                return site(range, SiteKind::BlockUuid { pipeline: pipeline.uuid.clone(), uuid: block.uuid.value.clone() });
            }
            for (list, downstream) in [(&block.upstream, false), (&block.downstream, true)] {
                if let Some(edge) = list.iter().find(|edge| edge.range.contains(offset)) {
                    let kind = SiteKind::Edge {
                        pipeline: pipeline.uuid.clone(),
                        of: block.uuid.value.clone(),
                        uuid: edge.value.clone(),
                        downstream,
                    };
                    return site(unquoted(text, edge.range), kind);
                }
            }
            if let Some(node) = block.config("data_provider_profile").filter(|node| node.range.contains(offset)) {
                let name = node.as_str()?.to_owned();
                return site(
                    unquoted(text, node.range),
                    SiteKind::Profile { pipeline: pipeline.uuid.clone(), block: block.uuid.value.clone(), name },
                );
            }
        }
        return None;
    }
    let source = project.source(rel)?;
    if let Some(template) = &source.sql {
        let reference = template.refs.iter().find(|reference| reference.range.contains(offset))?;
        return match &reference.kind {
            SqlRefKind::Df(n) => site(reference.range, SiteKind::SqlDf(*n)),
            SqlRefKind::BlockOutput(uuid) => site(reference.range, SiteKind::SqlBlockOutput(uuid.clone())),
            SqlRefKind::Variable(_) => None,
        };
    }
    let module = source.python.as_ref()?;
    let decorators: Vec<&str> =
        project.users_of_file(rel).filter_map(|(_, block)| block.block_type).flat_map(|ty| ty.decorators().iter().copied()).collect();
    let func = module.block_function(&decorators)?;
    if func.name_range.contains(offset) {
        return site(func.name_range, SiteKind::BlockFunction { name: func.name.clone() });
    }
    let (index, param) = func.positional().enumerate().find(|(_, param)| param.range.contains(offset))?;
    site(param.range, SiteKind::Param { index, name: param.name.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::MemVfs;

    #[test]
    fn sites_in_yaml_sql_and_python() {
        let mut vfs = MemVfs::default();
        let root = Path::new("/p");
        let yaml = "blocks:\n- uuid: load\n  type: data_loader\n  downstream_blocks: [\"t\"]\n- uuid: t\n  type: transformer\n  upstream_blocks: [load]\n- uuid: q\n  type: transformer\n  language: sql\n  upstream_blocks: [load]\n";
        vfs.insert("/p/pipelines/etl/metadata.yaml", yaml);
        vfs.insert("/p/data_loaders/load.py", "@data_loader\ndef load():\n    return 1\n");
        vfs.insert("/p/transformers/t.py", "@transformer\ndef transform(data, *args):\n    return data\n");
        vfs.insert("/p/transformers/q.sql", "select * from {{ df_1 }} join {{ block_output('load') }}\n");
        let project = crate::load::load_project(&vfs, root);
        let rel = Path::new("pipelines/etl/metadata.yaml");
        let at = |needle: &str, nth: usize| yaml.match_indices(needle).nth(nth).unwrap().0 + 1;
        let site = site_at(&project, rel, at("\"t\"", 0), Some(yaml)).unwrap();
        assert_eq!(&yaml[site.range.as_range()], "t");
        assert!(matches!(site.kind, SiteKind::Edge { downstream: true, ref uuid, .. } if uuid == "t"));
        let site = site_at(&project, rel, at("load]", 0), Some(yaml)).unwrap();
        assert!(matches!(site.kind, SiteKind::Edge { downstream: false, ref of, .. } if of == "t"));
        let site = site_at(&project, rel, at("load\n", 0), Some(yaml)).unwrap();
        assert!(matches!(site.kind, SiteKind::BlockUuid { ref uuid, .. } if uuid == "load"));
        let py = Path::new("transformers/t.py");
        let site = site_at(&project, py, 31, None).unwrap();
        assert_eq!(site.kind, SiteKind::Param { index: 0, name: "data".into() });
        let sql = Path::new("transformers/q.sql");
        assert_eq!(site_at(&project, sql, 18, None).unwrap().kind, SiteKind::SqlDf(1));
        assert_eq!(site_at(&project, sql, 48, None).unwrap().kind, SiteKind::SqlBlockOutput("load".into()));
    }
}
