//! What the engine tells its views (the CLI, later the Jupyter kernel): plain data, no wire types.

use pipeline::runrecord::{BlockError, BlockStatus, RunStatus, TestResult};
use serde::Serialize;

/// One step of a run, in the order it happened.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EngineEvent {
    RunStarted {
        run_id: String,
        pipeline: String,
        blocks: Vec<String>,
    },
    /// The block is part of this run and waits for its upstream blocks.
    BlockQueued {
        block: String,
    },
    /// The block will run because its stored output is not fresh; `causes` say why.
    Stale {
        block: String,
        causes: Vec<String>,
    },
    BlockStarted {
        block: String,
        attempt: u32,
    },
    /// Text the block printed (`name` is `stdout` or `stderr`).
    Stream {
        block: String,
        name: String,
        text: String,
    },
    /// An attempt failed and another follows after `delay_s` seconds.
    BlockRetrying {
        block: String,
        attempt: u32,
        delay_s: f64,
        error: String,
    },
    BlockFinished {
        block: String,
        status: BlockStatus,
        attempts: u32,
        rows: Option<u64>,
        columns: Option<u64>,
        tests: Vec<TestResult>,
        error: Option<BlockError>,
        duration_s: f64,
    },
    /// A line the Python worker wrote to its own stderr (not a block's output).
    WorkerLog {
        text: String,
    },
    RunFinished {
        run_id: String,
        status: RunStatus,
        record: String,
    },
}
