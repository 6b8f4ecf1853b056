//! The `wand` command line: one function per subcommand, each a thin face over the libraries.

mod dag;
mod kernel;
mod notebook;
mod run;
mod validate;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use pipeline::vfs::{DiskVfs, Root, find_root};

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
    /// Run a pipeline: every block, or only what changed (--changed), or what failed last time
    /// (--resume). Outputs go to Mage's variables dir; a run record goes beside them.
    Run {
        /// The project (any path inside it).
        project: PathBuf,
        /// The pipeline uuid (its folder name under `pipelines/`).
        pipeline: String,
        /// Runtime variables as a JSON object, merged over the pipeline's `variables`
        /// (Mage's `--runtime-vars`).
        #[arg(long, value_name = "JSON")]
        vars: Option<String>,
        /// Run only blocks whose code, configuration or inputs changed since their stored output.
        #[arg(long, conflicts_with = "resume")]
        changed: bool,
        /// Re-run the blocks that failed or were skipped in the last run; reuse the others' outputs.
        #[arg(long)]
        resume: bool,
        /// Run this block, after its ancestors that are stale or have no stored output.
        #[arg(long, value_name = "BLOCK")]
        block: Option<String>,
        /// Run the blocks' @test functions. On by default (Mage's `mage run` defaults to --no-test).
        #[arg(long, overrides_with = "no_test")]
        test: bool,
        /// Do not run @test functions.
        #[arg(long = "no-test", overrides_with = "test")]
        no_test: bool,
        /// Print one JSON event per line instead of progress and a summary.
        #[arg(long)]
        json: bool,
    },
    /// The Jupyter kernel: `wand kernel -f CONNECTION_FILE` (what Jupyter starts), or
    /// `wand kernel install` to write its kernelspec.
    Kernel {
        /// The connection file Jupyter passes.
        #[arg(short = 'f', long = "connection-file")]
        connection_file: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<KernelAction>,
    },
    /// Write a pipeline as an `.ipynb` notebook for the `wand` kernel.
    Notebook {
        /// The pipeline uuid (its folder name under `pipelines/`).
        pipeline: String,
        /// The project (any path inside it).
        #[arg(long, default_value = ".")]
        project: PathBuf,
        /// The notebook to write (default: `<project>/<pipeline>.ipynb`).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum KernelAction {
    /// Write the `wand` kernelspec (default: for this user).
    Install {
        /// In the user's Jupyter data dir (the default).
        #[arg(long)]
        user: bool,
        /// In the Python environment's prefix ($VIRTUAL_ENV, or WAND_PYTHON's sys.prefix).
        #[arg(long)]
        sys_prefix: bool,
        /// Under PREFIX/share/jupyter.
        #[arg(long)]
        prefix: Option<PathBuf>,
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
        Command::Run { project, pipeline, vars, changed, resume, block, test: _, no_test, json } => run::run(run::Args {
            project: &project,
            pipeline: &pipeline,
            vars: vars.as_deref(),
            mode: if changed {
                crate::engine::Mode::Changed
            } else if resume {
                crate::engine::Mode::Resume
            } else {
                crate::engine::Mode::All
            },
            block: block.as_deref(),
            run_tests: !no_test,
            json,
        }),
        Command::Kernel { connection_file, action } => match (action, connection_file) {
            (Some(KernelAction::Install { user, sys_prefix, prefix }), _) => kernel::install(user, sys_prefix, prefix),
            (None, Some(file)) => kernel::run(&file),
            (None, None) => {
                eprintln!("error: `wand kernel` needs -f CONNECTION_FILE (Jupyter passes it), or `wand kernel install`");
                return EXIT_CANNOT_READ;
            }
        },
        Command::Notebook { pipeline, project, output } => notebook::run(&project, &pipeline, output.as_deref()),
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
        None => anyhow::bail!("no Mage project at or above {}: a project is a folder with pipelines/<name>/metadata.yaml", path.display()),
    }
}
