//! The project model: what a Mage project is once its files are read.
//!
//! Mage's words for Mage's things: a project holds pipelines; a pipeline lists blocks wired by
//! `upstream_blocks`; a block is a file. Every value that came from a file keeps the byte range
//! it came from, so checks can point at it. Nothing here does IO (see [`crate::vfs`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dag::Dag;
use crate::diagnostic::Diagnostic;
use crate::python::PyModule;
use crate::sql::SqlTemplate;
use crate::text::TextRange;
use crate::yaml;

macro_rules! mage_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)* _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

mage_enum! {
    /// `BlockType` in Mage's `models/constants.py` (spec 2.4).
    BlockType {
        DataLoader = "data_loader",
        Transformer = "transformer",
        DataExporter = "data_exporter",
        Custom = "custom",
        Sensor = "sensor",
        Scratchpad = "scratchpad",
        Markdown = "markdown",
        Chart = "chart",
        Dbt = "dbt",
        Callback = "callback",
        Conditional = "conditional",
        Extension = "extension",
        GlobalDataProduct = "global_data_product",
        DynamicChild = "dynamic_child",
        Hook = "hook",
        Group = "group",
        Pipeline = "pipeline",
    }
}

mage_enum! {
    /// `BlockLanguage`; a block without `language` is Python.
    Language {
        Python = "python",
        Sql = "sql",
        R = "r",
        Yaml = "yaml",
        Markdown = "markdown",
    }
}

mage_enum! {
    /// `BlockStatus`, written by notebook runs.
    BlockStatus {
        Executed = "executed",
        Failed = "failed",
        NotExecuted = "not_executed",
        Updated = "updated",
    }
}

mage_enum! {
    /// `ExecutorType` of a block.
    ExecutorType {
        LocalPython = "local_python",
        LocalPythonForce = "local_python_force",
        K8s = "k8s",
        Ecs = "ecs",
        GcpCloudRun = "gcp_cloud_run",
        AzureContainerInstance = "azure_container_instance",
        Pyspark = "pyspark",
    }
}

impl BlockType {
    /// The folder holding blocks of this type: the type plus `s`, except `custom` (spec 3.1).
    pub fn dir(self) -> String {
        match self {
            BlockType::Custom => "custom".to_owned(),
            other => format!("{}s", other.as_str()),
        }
    }

    /// The type whose folder is `dir`, the reverse of [`BlockType::dir`].
    pub fn from_dir(dir: &str) -> Option<BlockType> {
        BlockType::ALL.iter().copied().find(|ty| ty.dir() == dir)
    }

    /// Types whose Python file is called through a decorated function with argument checks
    /// (`CUSTOM_EXECUTION_BLOCK_TYPES`).
    pub fn is_custom_execution(self) -> bool {
        matches!(
            self,
            BlockType::Chart
                | BlockType::Custom
                | BlockType::DataExporter
                | BlockType::DataLoader
                | BlockType::Dbt
                | BlockType::Extension
                | BlockType::GlobalDataProduct
                | BlockType::Sensor
                | BlockType::Transformer
        )
    }

    /// Whether pipeline runs execute blocks of this type.
    pub fn runs_in_pipeline(self) -> bool {
        !matches!(self, BlockType::Chart | BlockType::Markdown | BlockType::Scratchpad)
    }

    /// The decorator names Mage looks for in a Python file of this type.
    pub fn decorators(self) -> &'static [&'static str] {
        match self {
            BlockType::DataLoader => &["data_loader"],
            BlockType::Transformer => &["transformer"],
            BlockType::DataExporter => &["data_exporter"],
            BlockType::Custom => &["custom"],
            BlockType::Sensor => &["sensor"],
            BlockType::Conditional => &["condition"],
            BlockType::Callback => &["callback", "on_success", "on_failure"],
            _ => &[],
        }
    }
}

impl Language {
    pub fn extension(self) -> &'static str {
        match self {
            Language::Python => "py",
            Language::Sql => "sql",
            Language::R => "r",
            Language::Yaml => "yaml",
            Language::Markdown => "md",
        }
    }

    pub fn from_extension(ext: &str) -> Option<Language> {
        Language::ALL.iter().copied().find(|lang| lang.extension() == ext)
    }
}

/// A text taken from a file, with where it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub range: TextRange,
}

/// Which list of the pipeline file a block entry sits in (spec 2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Section {
    Blocks,
    Callbacks,
    Conditionals,
    Widgets,
    Extension(String),
}

impl Section {
    pub fn key(&self) -> &str {
        match self {
            Section::Blocks => "blocks",
            Section::Callbacks => "callbacks",
            Section::Conditionals => "conditionals",
            Section::Widgets => "widgets",
            Section::Extension(name) => name,
        }
    }
}

/// One block entry of a pipeline's metadata.yaml. Ranges are into that file.
#[derive(Clone, Debug)]
pub struct Block {
    pub uuid: Spanned<String>,
    pub section: Section,
    /// `None` when `type` is missing or not one of Mage's types (a diagnostic says which).
    pub block_type: Option<BlockType>,
    /// `None` when `language` is not one of Mage's languages; absent means Python.
    pub language: Option<Language>,
    pub upstream: Vec<Spanned<String>>,
    pub downstream: Vec<Spanned<String>>,
    /// The `configuration` mapping, every key kept.
    pub configuration: Option<yaml::Node>,
    /// The whole entry, every key kept (unknown and Pro-only ones too).
    pub node: yaml::Node,
    /// Where the block's code lives, relative to the project root, once resolved (spec 3.3);
    /// `None` for blocks without a file (inline `content`, global data products) or a path
    /// that escapes the project.
    pub file: Option<PathBuf>,
}

impl Block {
    pub fn name(&self) -> &str {
        self.node.get("name").and_then(yaml::Node::as_str).unwrap_or(&self.uuid.value)
    }

    pub fn config(&self, key: &str) -> Option<&yaml::Node> {
        self.configuration.as_ref()?.get(key)
    }

    pub fn config_str(&self, key: &str) -> Option<&str> {
        self.config(key).and_then(yaml::Node::as_str)
    }

    /// Whether this block is a node of the DAG (charts are not, spec 2.1).
    pub fn in_dag(&self) -> bool {
        self.section != Section::Widgets
    }

    pub fn upstream_uuids(&self) -> impl Iterator<Item = &str> {
        self.upstream.iter().map(|it| it.value.as_str())
    }
}

/// `pipelines/<uuid>/metadata.yaml`, lowered.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// The folder name, which is the pipeline's identity (spec 2.1).
    pub uuid: String,
    /// `pipelines/<uuid>/metadata.yaml`, relative to the project root.
    pub metadata_path: PathBuf,
    /// The parsed file; `None` when it does not parse (then `blocks` is empty).
    pub doc: Option<yaml::Node>,
    pub blocks: Vec<Block>,
    pub dag: Dag,
    pub triggers: Option<Triggers>,
    /// Diagnostics found while reading this pipeline's files.
    pub load_diagnostics: Vec<Diagnostic>,
}

impl Pipeline {
    pub fn name(&self) -> &str {
        self.doc.as_ref().and_then(|doc| doc.get("name")).and_then(yaml::Node::as_str).unwrap_or(&self.uuid)
    }

    pub fn block(&self, uuid: &str) -> Option<&Block> {
        self.blocks.iter().find(|block| block.uuid.value == uuid)
    }

    /// The pipeline's `variables:` as JSON (an empty object when absent).
    pub fn variables(&self) -> serde_json::Value {
        self.doc
            .as_ref()
            .and_then(|doc| doc.get("variables"))
            .map(yaml::Node::to_json)
            .filter(serde_json::Value::is_object)
            .unwrap_or_else(|| serde_json::Value::Object(Default::default()))
    }

    /// Blocks that are nodes of the DAG, in file order.
    pub fn dag_blocks(&self) -> impl Iterator<Item = &Block> {
        self.blocks.iter().filter(|block| block.in_dag())
    }
}

/// `pipelines/<uuid>/triggers.yaml`.
#[derive(Clone, Debug)]
pub struct Triggers {
    pub path: PathBuf,
    pub doc: Option<yaml::Node>,
}

/// `io_config.yaml`: profile names with their spans. Values stay as written (templates are
/// rendered by whoever connects, never here).
#[derive(Clone, Debug)]
pub struct IoConfig {
    pub path: PathBuf,
    pub doc: Option<yaml::Node>,
    pub profiles: Vec<Spanned<String>>,
}

impl IoConfig {
    pub fn profile(&self, name: &str) -> Option<&yaml::Node> {
        self.doc.as_ref()?.get(name)
    }
}

/// What a block file holds, read without running it.
#[derive(Clone, Debug)]
pub struct BlockSource {
    pub text: Arc<str>,
    pub python: Option<PyModule>,
    pub sql: Option<SqlTemplate>,
}

/// A Mage project: a folder with `pipelines/*/metadata.yaml` (and usually a `metadata.yaml`
/// and an `io_config.yaml`).
#[derive(Clone, Debug)]
pub struct Project {
    /// Absolute path of the project folder.
    pub root: PathBuf,
    /// The platform root holding `settings.yaml`, when the project is a sub-project (spec 1.1).
    pub platform_root: Option<PathBuf>,
    /// The project `metadata.yaml`, when present and parsable.
    pub config: Option<yaml::Node>,
    pub io_config: Option<IoConfig>,
    pub pipelines: BTreeMap<String, Pipeline>,
    /// Every block file that was read, by path relative to the root.
    pub sources: BTreeMap<PathBuf, Arc<BlockSource>>,
    /// Diagnostics of project-level files (io_config.yaml, metadata.yaml).
    pub load_diagnostics: Vec<Diagnostic>,
}

impl Project {
    /// The folder name, which Python code imports the project as (spec 1.1).
    pub fn name(&self) -> String {
        self.root.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
    }

    pub fn abs(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    pub fn source(&self, rel: &Path) -> Option<&BlockSource> {
        self.sources.get(rel).map(|it| &**it)
    }

    /// The pipelines that use the block file `rel`, with the entries that point at it.
    pub fn users_of_file<'a>(&'a self, rel: &'a Path) -> impl Iterator<Item = (&'a Pipeline, &'a Block)> + 'a {
        self.pipelines.values().flat_map(move |pipeline| {
            pipeline.blocks.iter().filter(move |block| block.file.as_deref() == Some(rel)).map(move |block| (pipeline, block))
        })
    }

    /// The block a file is by Mage's reverse mapping (spec 3.1): its first folder gives the type,
    /// the rest without extension the uuid, the extension the language.
    pub fn block_of_path(rel: &Path) -> Option<(BlockType, String, Language)> {
        let mut components = rel.components();
        let dir = components.next()?.as_os_str().to_str()?;
        let block_type = BlockType::from_dir(dir)?;
        let rest = components.as_path();
        let language = Language::from_extension(rest.extension()?.to_str()?)?;
        let uuid = rest.with_extension("").to_str()?.replace('\\', "/");
        Some((block_type, uuid, language))
    }
}

impl Project {
    /// Where Mage keeps this project's outputs (spec 7.1): `$MAGE_DATA_DIR`, else the project's
    /// `variables_dir` (`~` expanded), else `~/.mage_data`; an absolute folder other than the
    /// project gets the project's name appended, a relative one is taken from the project root.
    pub fn variables_dir(&self) -> PathBuf {
        let home = || std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"));
        let configured = std::env::var_os("MAGE_DATA_DIR").map(PathBuf::from).or_else(|| {
            let text = self.config.as_ref()?.get("variables_dir")?.as_str()?.trim().to_owned();
            if text.is_empty() || text.contains("{{") {
                return None;
            }
            Some(match text.strip_prefix('~') {
                Some(rest) => home().join(rest.trim_start_matches('/')),
                None => PathBuf::from(text),
            })
        });
        let dir = configured.unwrap_or_else(|| home().join(".mage_data"));
        if dir.is_relative() {
            self.root.join(dir)
        } else if dir == self.root {
            dir
        } else {
            dir.join(self.name())
        }
    }
}
