//! The `wand` command line: one function per subcommand, each a thin face over the libraries.

mod dag;
mod validate;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use pipeline::vfs::{find_root, DiskVfs, Root};

#[derive(Parser)]
#[command(name = "wand", version, about = "Tooling for Mage-format data pipelines: validate, draw, run, notebooks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a project's pipelines, block files, io_config.yaml and triggers.
    Validate {
        /// A project folder, a platform root, or any path inside a project.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Only this pipeline (its YAML files and the block files it uses).
        #[arg(long)]
        pipeline: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Draw a pipeline's DAG.
    Dag {
        /// The pipeline uuid (its folder name under `pipelines/`), or the path of its folder.
        pipeline: String,
        /// The project (any path inside it).
        #[arg(long, default_value = ".")]
        project: PathBuf,
        #[arg(long, value_enum, default_value_t = DagFormat::Mermaid)]
        format: DagFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Human,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum DagFormat {
    Mermaid,
    Dot,
    Svg,
}

/// Exit codes shared by the subcommands.
pub const EXIT_OK: i32 = 0;
pub const EXIT_FOUND_ERRORS: i32 = 1;
pub const EXIT_CANNOT_READ: i32 = 2;

pub fn main() -> i32 {
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Validate { path, pipeline, format } => validate::run(&path, pipeline.as_deref(), format),
        Command::Dag { pipeline, project, format, output } => dag::run(&project, &pipeline, format, output.as_deref()),
    };
    match res {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            EXIT_CANNOT_READ
        }
    }
}

/// The projects at `path`: the project it lies in, or every project of a platform root.
fn projects_at(path: &Path) -> anyhow::Result<(PathBuf, Vec<PathBuf>)> {
    let abs = std::path::absolute(path).map_err(|err| anyhow::format_err!("cannot read {}: {err}", path.display()))?;
    if !abs.exists() {
        anyhow::bail!("{} does not exist", path.display());
    }
    match find_root(&DiskVfs, &abs) {
        Some(Root::Project(root)) => Ok((root.clone(), vec![root])),
        Some(Root::Platform { root, projects }) => Ok((root, projects)),
        None => anyhow::bail!(
            "no Mage project at or above {}: a project is a folder with pipelines/<name>/metadata.yaml",
            path.display()
        ),
    }
}
