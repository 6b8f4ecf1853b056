//! Run records: what the engine writes after each run and the language server reads.
//!
//! This on-disk format is the one deliberate link between `kernel` and `lsp` (neither depends
//! on the other). One JSON file per run under
//! `<variables dir>/pipelines/<pipeline>/.wand/runs/<run id>.json`, plus `latest.json`, a copy
//! of the newest, so readers need no directory listing. `version` changes when a field changes
//! meaning; readers ignore unknown fields.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub version: u32,
    pub run_id: String,
    pub pipeline_uuid: String,
    /// Absolute path of the project.
    pub project: PathBuf,
    /// RFC 3339 times.
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: RunStatus,
    pub blocks: Vec<BlockRun>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Not run because an upstream block failed.
    Skipped,
    /// Not run because its stored output was fresh.
    Reused,
    Cancelled,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockRun {
    pub uuid: String,
    pub status: BlockStatus,
    pub attempts: u32,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Rows and columns of a DataFrame output (the first output).
    pub rows: Option<u64>,
    pub columns: Option<u64>,
    /// The block file relative to the project, as run.
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub tests: Vec<TestResult>,
    pub error: Option<BlockError>,
    /// Seconds the last attempt spent inside the block's own functions (its tests included),
    /// as the Python worker measured them: the rest of the block's time is Wand's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_s: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// The test function's name.
    pub name: String,
    pub passed: bool,
    /// The assertion message (or exception text) when it failed.
    pub message: Option<String>,
    /// 1-based line of the test's `def` in the block file.
    pub line: Option<u32>,
    /// 1-based line of the failing statement, when known.
    pub failed_line: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockError {
    pub ename: String,
    pub evalue: String,
    #[serde(default)]
    pub traceback: Vec<String>,
    /// 1-based line in the block file, when the error came from it.
    pub line: Option<u32>,
}

/// The folder of a pipeline's run records under a variables dir.
pub fn runs_dir(variables_dir: &Path, pipeline_uuid: &str) -> PathBuf {
    variables_dir.join("pipelines").join(pipeline_uuid).join(".wand").join("runs")
}

/// The newest record of a pipeline, if any run was recorded and it parses.
pub fn read_latest(variables_dir: &Path, pipeline_uuid: &str) -> Option<RunRecord> {
    let text = std::fs::read_to_string(runs_dir(variables_dir, pipeline_uuid).join("latest.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes `record` as `<run id>.json` and `latest.json` under [`runs_dir`], each through a
/// temporary file and a rename so readers never see a half-written file. Returns the path of
/// the run's own file.
pub fn write(variables_dir: &Path, record: &RunRecord) -> std::io::Result<PathBuf> {
    let dir = runs_dir(variables_dir, &record.pipeline_uuid);
    std::fs::create_dir_all(&dir)?;
    let text = serde_json::to_string_pretty(record).map_err(std::io::Error::other)?;
    let own = dir.join(format!("{}.json", record.run_id));
    for path in [&own, &dir.join("latest.json")] {
        let tmp = dir.join(format!(".{}.{}.tmp", path.file_name().unwrap_or_default().to_string_lossy(), std::process::id()));
        std::fs::write(&tmp, &text)?;
        std::fs::rename(&tmp, path)?;
    }
    Ok(own)
}
