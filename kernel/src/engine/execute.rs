//! The scheduler: runs a plan over the pipeline DAG (`upstream_blocks` are the truth).
//!
//! A block starts once all its upstream blocks succeeded (or reused their outputs); independent
//! blocks run on threads, at most `max_parallel` at once (Python blocks share the run's one
//! worker, so they run one at a time; SQL blocks run beside them). A failed block marks its
//! descendants skipped while other branches go on. Retries follow Mage's `retry_config`
//! (spec 8.3), `timeout` interrupts a block, cancellation (Ctrl-C) interrupts the running
//! blocks and records the run as cancelled. The run record is rewritten after every block.
//!
//! Storing a block's outputs (decoding the worker's Arrow stream, writing Parquet, hashing) is
//! off the critical path: as soon as a block's function returned, its thread reports the
//! outputs ready and stores them while, in a run of every block, its downstream blocks already
//! start (a Python block's inputs are still in the worker's memory). Whatever needs a stored
//! output (a SQL block's input, a provenance's input versions) waits for it; modes that decide
//! from freshness (`--changed`, `--resume`, `--block`) start a block only after its upstream
//! blocks are stored, so early cutoff sees their data versions.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use pipeline::model::Section;
use pipeline::runrecord::{self, BlockError, BlockRun, BlockStatus, RunRecord, RunStatus, TestResult};
use pipeline::{BlockType, Language, Project};
use serde_json::{Map, Value as Json, json};

use super::event::EngineEvent;
use super::freshness::{self, Freshness, PROVENANCE_VERSION, Provenance};
use super::plan::{self, Decision, Mode};
use super::python::{self, Interrupted, RunReply, Worker};
use super::store::{self, Output, Value};
use super::{postgres, sql};

#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Runtime variables (`--vars`), merged over the pipeline's `variables`.
    pub vars: Map<String, Json>,
    pub mode: Mode,
    /// Run this block after its ancestors that are stale or missing.
    pub block: Option<String>,
    pub run_tests: bool,
    /// The Python interpreter; `None`: [`python::find_python`].
    pub python: Option<PathBuf>,
    pub max_parallel: usize,
    /// Set to cancel the run (Ctrl-C).
    pub cancel: Arc<AtomicBool>,
    /// Where the caller keeps a Python worker from one run to the next (the kernel: one worker
    /// for its life). `None`: the run starts its own and stops it at the end.
    pub worker: Option<WorkerSlot>,
}

/// A Python worker kept between runs. A run takes the worker it finds (when it is alive and
/// runs the same Python) and leaves it in the slot at the end, its value store emptied at
/// both ends: every input comes from the stored outputs as in a run of its own. What stays is
/// the process with its imports (pandas: 0.3 s of a worker's start) and the user's modules.
#[derive(Clone, Default)]
pub struct WorkerSlot(Arc<Mutex<Option<Worker>>>);

impl std::fmt::Debug for WorkerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pid = self.0.try_lock().ok().and_then(|worker| worker.as_ref().and_then(Worker::pid));
        f.debug_tuple("WorkerSlot").field(&pid).finish()
    }
}

impl WorkerSlot {
    /// The process id of the worker in the slot, if there is one.
    pub fn pid(&self) -> Option<u32> {
        self.0.lock().unwrap().as_ref().and_then(Worker::pid)
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            vars: Map::new(),
            mode: Mode::All,
            block: None,
            run_tests: true,
            python: None,
            max_parallel: std::thread::available_parallelism().map_or(2, |it| it.get()),
            cancel: Arc::new(AtomicBool::new(false)),
            worker: None,
        }
    }
}

/// `retry_config` (spec 8.3).
#[derive(Clone, Debug, PartialEq)]
pub struct RetryConfig {
    pub retries: u32,
    pub delay: f64,
    pub max_delay: f64,
    pub exponential_backoff: bool,
}

impl RetryConfig {
    /// The project's `retry_config` with the block's keys over it.
    pub fn merged(project: &Json, block: &Json) -> RetryConfig {
        let get = |key: &str| block.get(key).filter(|it| !it.is_null()).or_else(|| project.get(key).filter(|it| !it.is_null()));
        RetryConfig {
            retries: get("retries").and_then(Json::as_u64).unwrap_or(0) as u32,
            delay: get("delay").and_then(Json::as_f64).unwrap_or(5.0),
            max_delay: get("max_delay").and_then(Json::as_f64).unwrap_or(60.0),
            exponential_backoff: get("exponential_backoff").and_then(Json::as_bool).unwrap_or(true),
        }
    }

    /// The pause before attempt `attempt + 1` after `attempt` failed, or `None` to give up.
    /// `waited`: seconds already spent waiting between attempts.
    pub fn next_delay(&self, attempt: u32, waited: f64) -> Option<f64> {
        if attempt > self.retries {
            return None;
        }
        let delay = if self.exponential_backoff { self.delay * 2f64.powi(attempt as i32 - 1) } else { self.delay };
        if delay > 0.0 && waited + delay > self.max_delay {
            return None;
        }
        Some(delay)
    }
}

/// A block as the scheduler runs it (owned, so threads can hold it).
#[derive(Clone, Debug)]
struct Spec {
    uuid: String,
    block_type: Option<BlockType>,
    language: Option<Language>,
    file: Option<PathBuf>,
    text: Option<String>,
    configuration: Json,
    upstream: Vec<String>,
    retry: RetryConfig,
    timeout: Option<f64>,
    code_version: String,
}

struct Shared {
    root: PathBuf,
    /// The blocks of this run.
    scope: BTreeSet<String>,
    vars_dir: PathBuf,
    pipeline: String,
    run_id: String,
    globals: Map<String, Json>,
    run_tests: bool,
    cancel: Arc<AtomicBool>,
    python: PathBuf,
    worker_dir: Mutex<Option<PathBuf>>,
    worker: WorkerSlot,
    outputs: Mutex<HashMap<String, Arc<Vec<Output>>>>,
    provenance: Mutex<HashMap<String, Provenance>>,
    /// Blocks of this run whose outputs are being stored, or could not be; see [`wait_stored`].
    storing: Mutex<HashMap<String, Storing>>,
    stored: Condvar,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Storing {
    Writing,
    Failed,
}

enum Msg {
    Event(EngineEvent),
    /// The block's function returned and its outputs are in memory; they are being stored.
    Ready(String),
    Done(String, Outcome),
}

struct Outcome {
    status: BlockStatus,
    attempts: u32,
    started_at: String,
    finished_at: String,
    rows: Option<u64>,
    columns: Option<u64>,
    tests: Vec<TestResult>,
    error: Option<BlockError>,
    duration_s: f64,
    user_s: Option<f64>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn new_run_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{}-{}-{n}", chrono::Utc::now().format("%Y%m%dT%H%M%S%3f"), std::process::id())
}

fn error(ename: &str, evalue: impl Into<String>) -> BlockError {
    BlockError { ename: ename.to_owned(), evalue: evalue.into(), traceback: Vec::new(), line: None }
}

/// Whether `mage run` executes this block: blocks of the `blocks` list (and extensions) whose
/// type runs in pipelines; callbacks and conditionals are not run by `mage run` (spec 4.6).
fn is_runnable(block: &pipeline::Block) -> bool {
    matches!(block.section, Section::Blocks | Section::Extension(_))
        && block.block_type.is_none_or(BlockType::runs_in_pipeline)
        && block.language != Some(Language::Markdown)
}

/// A block's source text (the loaded project's copy, else the file) and its configuration.
fn block_source(project: &Project, block: &pipeline::Block) -> (Option<String>, Json) {
    let text = block.file.as_ref().and_then(|file| {
        project.source(file).map(|source| source.text.to_string()).or_else(|| std::fs::read_to_string(project.abs(file)).ok())
    });
    let configuration = block.configuration.as_ref().map(|it| it.to_json()).unwrap_or_else(|| json!({}));
    (text, configuration)
}

/// What a block is, for freshness; `globals`: the pipeline's variables with the run's `--vars`
/// over them.
fn block_code_version(block: &pipeline::Block, text: Option<&str>, configuration: &Json, globals: &Json) -> String {
    freshness::code_version(
        block.block_type.map_or("", |it| it.as_str()),
        block.language.map_or("", |it| it.as_str()),
        configuration,
        text.unwrap_or_default(),
        globals,
    )
}

/// Whether a block has stored outputs, and how fresh they are, as a run without `--vars`
/// would decide it now (the kernel's `%status`, its DAG and its lazy mode ask).
pub fn block_freshness(project: &Project, pipeline: &pipeline::Pipeline, uuid: &str) -> (bool, Freshness) {
    let vars_dir = project.variables_dir();
    let stored = |uuid: &str| store::stored_provenance(&store::block_dir(&vars_dir, &pipeline.uuid, uuid));
    let Some(block) = pipeline.block(uuid) else { return (false, Freshness::Missing) };
    let own = stored(uuid);
    let (text, configuration) = block_source(project, block);
    let code_version = block_code_version(block, text.as_deref(), &configuration, &pipeline.variables());
    let inputs: Vec<(String, Option<String>)> =
        pipeline.dag.upstream(uuid).into_iter().map(|up| (up.to_owned(), stored(up).map(|it| it.data_version))).collect();
    (own.is_some(), freshness::freshness(own.as_ref(), &code_version, &inputs))
}

/// Runs a pipeline. `Err` only when the run cannot start (unknown pipeline, cycle, no usable
/// Python); block failures are in the returned record.
pub fn run(project: &Project, pipeline_uuid: &str, options: &RunOptions, sink: &mut dyn FnMut(&EngineEvent)) -> anyhow::Result<RunRecord> {
    let pipeline = project
        .pipelines
        .get(pipeline_uuid)
        .ok_or_else(|| anyhow::format_err!("no pipeline `{pipeline_uuid}` in {}", project.root.display()))?;
    let runnable: BTreeSet<String> =
        pipeline.dag_blocks().filter(|block| is_runnable(block)).map(|block| block.uuid.value.clone()).collect();
    let scope: Vec<String> = plan::scope(&pipeline.dag, &runnable, options.block.as_deref())
        .map_err(|err| anyhow::format_err!("{err}"))?
        .into_iter()
        .map(str::to_owned)
        .collect();
    let vars_dir = project.variables_dir();

    // Global variables (spec 4.3, 8.1): pipeline variables < runtime variables.
    let mut globals = match pipeline.variables() {
        Json::Object(map) => map,
        _ => Map::new(),
    };
    globals.extend(options.vars.clone());
    let hashed_globals = Json::Object(globals.clone());
    let env = match std::env::var("ENV").as_deref() {
        Ok(env @ ("prod" | "production" | "staging" | "test")) => {
            if env == "production" {
                "prod".to_owned()
            } else {
                env.to_owned()
            }
        }
        _ => "dev".to_owned(),
    };
    globals.entry("env").or_insert(json!(env));
    globals.entry("execution_date").or_insert(json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)));

    let project_retry = project.config.as_ref().and_then(|config| config.get("retry_config")).map(|it| it.to_json()).unwrap_or(Json::Null);
    let mut specs: HashMap<String, Spec> = HashMap::new();
    for uuid in &scope {
        let block = pipeline.block(uuid).expect("scope holds pipeline blocks");
        let (text, configuration) = block_source(project, block);
        let block_retry = block.node.get("retry_config").map(|it| it.to_json()).unwrap_or(Json::Null);
        let timeout = block.node.get("timeout").and_then(|it| it.to_json().as_f64()).filter(|it| *it > 0.0);
        let code_version = block_code_version(block, text.as_deref(), &configuration, &hashed_globals);
        specs.insert(
            uuid.clone(),
            Spec {
                uuid: uuid.clone(),
                block_type: block.block_type,
                language: block.language,
                file: block.file.clone(),
                text,
                configuration,
                upstream: pipeline.dag.upstream(uuid).into_iter().map(str::to_owned).collect(),
                retry: RetryConfig::merged(&project_retry, &block_retry),
                timeout,
                code_version,
            },
        );
    }

    let last_run: HashMap<String, BlockStatus> = runrecord::read_latest(&vars_dir, pipeline_uuid)
        .map(|record| record.blocks.into_iter().map(|block| (block.uuid, block.status)).collect())
        .unwrap_or_default();
    let stored: HashMap<String, Provenance> = pipeline
        .dag_blocks()
        .filter_map(|block| {
            let provenance = store::stored_provenance(&store::block_dir(&vars_dir, pipeline_uuid, &block.uuid.value))?;
            Some((block.uuid.value.clone(), provenance))
        })
        .collect();

    let run_id = new_run_id();
    let shared = Arc::new(Shared {
        root: project.root.clone(),
        scope: scope.iter().cloned().collect(),
        vars_dir: vars_dir.clone(),
        pipeline: pipeline_uuid.to_owned(),
        run_id: run_id.clone(),
        globals,
        run_tests: options.run_tests,
        cancel: options.cancel.clone(),
        python: options.python.clone().unwrap_or_else(|| python::find_python(&project.root)),
        worker_dir: Mutex::new(None),
        worker: options.worker.clone().unwrap_or_default(),
        outputs: Mutex::new(HashMap::new()),
        provenance: Mutex::new(stored.clone()),
        storing: Mutex::new(HashMap::new()),
        stored: Condvar::new(),
    });

    // When every block runs, check the Python environment before running anything. In the
    // other modes most blocks are usually reused: the worker then starts with the first Python
    // block that runs (see `run_python`), so a run with nothing to do never pays for it.
    let runs_everything = options.mode == Mode::All && options.block.is_none();
    {
        let mut log = |line: String| sink(&EngineEvent::WorkerLog { text: line });
        let mut worker = shared.worker.0.lock().unwrap();
        if let Some(kept) = worker.as_mut()
            && !(kept.python == shared.python && kept.is_alive() && kept.forget_values(&mut log).is_ok())
        {
            *worker = None;
        }
        if worker.is_none() && runs_everything && scope.iter().any(|uuid| specs[uuid].language == Some(Language::Python)) {
            *worker = Some(spawn_worker(&shared, &mut log)?);
        }
    }

    let mut record = RunRecord {
        version: runrecord::VERSION,
        run_id: run_id.clone(),
        pipeline_uuid: pipeline_uuid.to_owned(),
        project: project.root.clone(),
        started_at: now(),
        finished_at: None,
        status: RunStatus::Running,
        blocks: scope
            .iter()
            .map(|uuid| BlockRun {
                uuid: uuid.clone(),
                status: BlockStatus::Pending,
                attempts: 0,
                started_at: None,
                finished_at: None,
                rows: None,
                columns: None,
                file: specs[uuid].file.clone(),
                tests: Vec::new(),
                error: None,
                user_s: None,
            })
            .collect(),
    };
    let index: HashMap<String, usize> = scope.iter().enumerate().map(|(idx, uuid)| (uuid.clone(), idx)).collect();
    let record_path = runrecord::write(&vars_dir, &record)?;
    sink(&EngineEvent::RunStarted { run_id: run_id.clone(), pipeline: pipeline_uuid.to_owned(), blocks: scope.clone() });
    for uuid in &scope {
        sink(&EngineEvent::BlockQueued { block: uuid.clone() });
    }

    let (tx, rx) = mpsc::channel::<Msg>();
    // Blocks holding a slot (running their function), and block threads still alive (also
    // those storing outputs).
    let mut running = 0usize;
    let mut alive = 0usize;
    // Blocks whose outputs are in memory; in a run of every block, their downstream may start.
    let mut ready: BTreeSet<String> = BTreeSet::new();
    let with_target = options.block.is_some();
    let max_parallel = options.max_parallel.max(1);
    loop {
        let cancelled = options.cancel.load(Ordering::SeqCst);
        let mut changed = false;
        // One pass in topological order settles every block whose upstream blocks are done.
        for uuid in &scope {
            let idx = index[uuid];
            if record.blocks[idx].status != BlockStatus::Pending {
                continue;
            }
            if cancelled {
                finish(&mut record.blocks[idx], BlockStatus::Cancelled, None, sink);
                continue;
            }
            let spec = &specs[uuid];
            let upstream: Vec<BlockStatus> =
                spec.upstream.iter().filter_map(|up| index.get(up)).map(|&up| record.blocks[up].status).collect();
            if upstream.iter().any(|status| matches!(status, BlockStatus::Failed | BlockStatus::Skipped | BlockStatus::Cancelled)) {
                finish(&mut record.blocks[idx], BlockStatus::Skipped, None, sink);
                continue;
            }
            let available = |up: &String| {
                let status = index.get(up).map(|&up| record.blocks[up].status);
                matches!(status, Some(BlockStatus::Succeeded | BlockStatus::Reused)) || (runs_everything && ready.contains(up))
            };
            if !spec.upstream.iter().filter(|up| index.contains_key(*up)).all(available) {
                continue;
            }
            let inputs: Vec<(String, Option<String>)> = {
                let known = shared.provenance.lock().unwrap();
                spec.upstream.iter().map(|up| (up.clone(), known.get(up).map(|it| it.data_version.clone()))).collect()
            };
            let freshness = freshness::freshness(stored.get(uuid), &spec.code_version, &inputs);
            let decision = plan::decide(
                options.mode,
                options.block.as_deref() == Some(uuid.as_str()),
                with_target,
                &freshness,
                last_run.get(uuid).copied(),
                stored.contains_key(uuid),
            );
            match decision {
                Decision::Reuse => {
                    let provenance = &stored[uuid];
                    record.blocks[idx].rows = provenance.rows;
                    record.blocks[idx].columns = provenance.columns;
                    finish(&mut record.blocks[idx], BlockStatus::Reused, None, sink);
                }
                Decision::Run => {
                    if running >= max_parallel {
                        continue;
                    }
                    if options.mode != Mode::All || with_target {
                        let causes = match &freshness {
                            Freshness::Missing => vec!["no stored output".to_owned()],
                            Freshness::Stale(causes) => causes.iter().map(ToString::to_string).collect(),
                            Freshness::Fresh => vec![],
                        };
                        if !causes.is_empty() {
                            sink(&EngineEvent::Stale { block: uuid.clone(), causes });
                        }
                    }
                    record.blocks[idx].status = BlockStatus::Running;
                    record.blocks[idx].started_at = Some(now());
                    running += 1;
                    alive += 1;
                    changed = true;
                    let (shared, spec, tx) = (shared.clone(), spec.clone(), tx.clone());
                    std::thread::spawn(move || {
                        let outcome = run_with_retries(&shared, &spec, &tx);
                        let _ = tx.send(Msg::Done(spec.uuid.clone(), outcome));
                    });
                }
            }
        }
        if alive == 0 && record.blocks.iter().all(|block| block.status != BlockStatus::Pending) {
            break;
        }
        if changed {
            // Readers (the language server) see which blocks are running.
            runrecord::write(&vars_dir, &record)?;
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Msg::Event(event)) => sink(&event),
            Ok(Msg::Ready(uuid)) => {
                running -= 1;
                ready.insert(uuid);
            }
            Ok(Msg::Done(uuid, outcome)) => {
                if !ready.contains(&uuid) {
                    running -= 1;
                }
                alive -= 1;
                let block = &mut record.blocks[index[&uuid]];
                block.attempts = outcome.attempts;
                block.started_at = Some(outcome.started_at);
                block.rows = outcome.rows;
                block.columns = outcome.columns;
                block.tests = outcome.tests;
                block.status = outcome.status;
                block.error = outcome.error;
                block.finished_at = Some(outcome.finished_at);
                block.user_s = outcome.user_s;
                emit_finished(block, outcome.duration_s, sink);
                runrecord::write(&vars_dir, &record)?;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => unreachable!("the scheduler holds a sender"),
        }
    }
    // Events sent just before the last Done.
    while let Ok(Msg::Event(event)) = rx.try_recv() {
        sink(&event);
    }
    {
        let mut worker = shared.worker.0.lock().unwrap();
        if options.worker.is_none() {
            drop(worker.take());
        } else if let Some(kept) = worker.as_mut() {
            // Kept for the next run, without this run's values: they would hold memory until
            // then, and the next run takes its inputs from the stored outputs anyway.
            let mut log = |line: String| sink(&EngineEvent::WorkerLog { text: line });
            if kept.forget_values(&mut log).and_then(|()| kept.end_run(&run_id, &mut log)).is_err() {
                *worker = None;
            }
        }
    }
    store::clean_staging(&vars_dir, pipeline_uuid, &run_id);
    record.finished_at = Some(now());
    record.status = if options.cancel.load(Ordering::SeqCst) {
        RunStatus::Cancelled
    } else if record.blocks.iter().any(|block| matches!(block.status, BlockStatus::Failed | BlockStatus::Skipped | BlockStatus::Cancelled))
    {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    runrecord::write(&vars_dir, &record)?;
    sink(&EngineEvent::RunFinished { run_id, status: record.status, record: record_path.display().to_string() });
    Ok(record)
}

fn finish(block: &mut BlockRun, status: BlockStatus, duration_s: Option<f64>, sink: &mut dyn FnMut(&EngineEvent)) {
    block.status = status;
    emit_finished(block, duration_s.unwrap_or(0.0), sink);
}

fn emit_finished(block: &BlockRun, duration_s: f64, sink: &mut dyn FnMut(&EngineEvent)) {
    sink(&EngineEvent::BlockFinished {
        block: block.uuid.clone(),
        status: block.status,
        attempts: block.attempts,
        rows: block.rows,
        columns: block.columns,
        tests: block.tests.clone(),
        error: block.error.clone(),
        duration_s,
    });
}

fn spawn_worker(shared: &Shared, log: &mut dyn FnMut(String)) -> anyhow::Result<Worker> {
    let dir = {
        let mut dir = shared.worker_dir.lock().unwrap();
        if dir.is_none() {
            *dir = Some(python::worker_dir()?);
        }
        dir.clone().unwrap()
    };
    Worker::spawn(&shared.python, &dir, log)
}

/// What one attempt gave.
struct Attempt {
    outputs: Option<Produced>,
    tests: Vec<TestResult>,
    error: Option<BlockError>,
    cancelled: bool,
    /// Time inside the block's own functions (Python blocks).
    user_s: Option<f64>,
}

/// What a successful attempt produced, before it is stored.
enum Produced {
    /// Outputs already decoded (SQL blocks).
    Outputs(Vec<Output>),
    /// A Python block's outputs, described by `metas`: frames the worker is writing to files in
    /// `staging` (awaited through `files` with the request `id`), and the other values as it
    /// sent them (`frames`: JSON, opaque).
    Worker { id: i64, metas: Vec<Json>, frames: Vec<python::Frame>, files: Arc<python::StoredFiles>, staging: PathBuf },
}

fn run_with_retries(shared: &Shared, spec: &Spec, tx: &Sender<Msg>) -> Outcome {
    let started_at = now();
    let start = Instant::now();
    let mut attempt = 0u32;
    let mut waited = 0.0;
    loop {
        attempt += 1;
        let _ = tx.send(Msg::Event(EngineEvent::BlockStarted { block: spec.uuid.clone(), attempt }));
        let result = run_once(shared, spec, tx);
        let mut outcome = Outcome {
            status: BlockStatus::Failed,
            attempts: attempt,
            started_at: started_at.clone(),
            finished_at: String::new(),
            rows: None,
            columns: None,
            tests: result.tests,
            error: result.error,
            duration_s: 0.0,
            user_s: result.user_s,
        };
        if result.cancelled {
            outcome.status = BlockStatus::Cancelled;
        } else if let Some(produced) = result.outputs {
            // Storing is not retried: running the block's code again would not help it.
            shared.storing.lock().unwrap().insert(spec.uuid.clone(), Storing::Writing);
            let _ = tx.send(Msg::Ready(spec.uuid.clone()));
            let stored = store_outputs(shared, spec, produced, tx);
            let mut storing = shared.storing.lock().unwrap();
            match stored {
                Ok((rows, columns)) => {
                    storing.remove(&spec.uuid);
                    outcome.status = BlockStatus::Succeeded;
                    outcome.rows = rows;
                    outcome.columns = columns;
                }
                Err(err) => {
                    storing.insert(spec.uuid.clone(), Storing::Failed);
                    outcome.error = Some(error("OutputError", format!("cannot store the outputs of {}: {err:#}", spec.uuid)));
                }
            }
            drop(storing);
            shared.stored.notify_all();
            outcome.finished_at = now();
            outcome.duration_s = start.elapsed().as_secs_f64();
            return outcome;
        }
        let retry = match outcome.status {
            BlockStatus::Failed if !shared.cancel.load(Ordering::SeqCst) => spec.retry.next_delay(attempt, waited),
            _ => None,
        };
        let Some(delay) = retry else {
            outcome.finished_at = now();
            outcome.duration_s = start.elapsed().as_secs_f64();
            return outcome;
        };
        let message = outcome.error.as_ref().map(|err| format!("{}: {}", err.ename, err.evalue)).unwrap_or_default();
        let _ = tx.send(Msg::Event(EngineEvent::BlockRetrying { block: spec.uuid.clone(), attempt, delay_s: delay, error: message }));
        let until = Instant::now() + Duration::from_secs_f64(delay);
        while Instant::now() < until && !shared.cancel.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())));
        }
        waited += delay;
        if shared.cancel.load(Ordering::SeqCst) {
            return Outcome { status: BlockStatus::Cancelled, finished_at: now(), duration_s: start.elapsed().as_secs_f64(), ..outcome };
        }
    }
}

/// Waits until the outputs of `uuid` are stored, if this run is storing them. `Err` when they
/// could not be.
fn wait_stored(shared: &Shared, uuid: &str) -> anyhow::Result<()> {
    let mut storing = shared.storing.lock().unwrap();
    loop {
        match storing.get(uuid) {
            None => return Ok(()),
            Some(Storing::Failed) => anyhow::bail!("the outputs of upstream block `{uuid}` could not be stored"),
            Some(Storing::Writing) => storing = shared.stored.wait(storing).unwrap(),
        }
    }
}

/// Writes outputs to the variables dir with their provenance, and keeps them for downstream
/// blocks. Returns the first output's shape.
fn store_outputs(shared: &Shared, spec: &Spec, produced: Produced, tx: &Sender<Msg>) -> anyhow::Result<(Option<u64>, Option<u64>)> {
    let (outputs, staging) = match produced {
        Produced::Outputs(outputs) => (Ok(outputs.into_iter().map(store::Pending::Value).collect()), None),
        Produced::Worker { id, metas, frames, files, staging } => {
            (worker_outputs(shared, spec, id, &metas, frames, &files, tx), Some(staging))
        }
    };
    let stored = outputs.and_then(|outputs| install(shared, spec, outputs));
    if let Some(staging) = staging {
        let _ = std::fs::remove_dir_all(staging);
    }
    stored
}

/// A Python block's outputs in order: the files the worker wrote (waiting for each), and the
/// values it sent.
fn worker_outputs(
    shared: &Shared,
    spec: &Spec,
    id: i64,
    metas: &[Json],
    frames: Vec<python::Frame>,
    files: &python::StoredFiles,
    tx: &Sender<Msg>,
) -> anyhow::Result<Vec<store::Pending>> {
    let mut on_stream = |name: &str, text: &str| {
        let _ = tx.send(Msg::Event(EngineEvent::Stream { block: spec.uuid.clone(), name: name.to_owned(), text: text.to_owned() }));
    };
    let mut frames = frames.into_iter();
    let mut outputs = Vec::new();
    for meta in metas {
        if meta["encoding"] == "parquet" {
            let index = meta["index"].as_u64().unwrap_or_default();
            outputs.push(match files.wait(id, index, &shared.cancel)? {
                python::StoredFile::Written { path, rows, columns } => {
                    store::Pending::File { path, mage_type: meta["mage_type"].as_str().map(str::to_owned), rows, columns }
                }
                python::StoredFile::Kept { repr, conversion_error } => {
                    on_stream("stderr", &not_stored_note(index, &conversion_error));
                    store::Pending::Value(Output { value: Value::Opaque { repr }, mage_type: Some("custom_object".to_owned()) })
                }
            });
        } else {
            let frame = frames.next().context("the worker sent fewer outputs than it announced")?;
            outputs.push(store::Pending::Value(convert_output(frame, &mut on_stream)));
        }
    }
    Ok(outputs)
}

/// Moves or writes a block's outputs into the variables dir with their provenance, and keeps
/// those held in memory for downstream blocks. Returns the first output's shape.
fn install(shared: &Shared, spec: &Spec, outputs: Vec<store::Pending>) -> anyhow::Result<(Option<u64>, Option<u64>)> {
    // The data versions of the upstream outputs this block read (stored before this one).
    let mut inputs = Vec::new();
    for up in &spec.upstream {
        wait_stored(shared, up)?;
        let version = shared.provenance.lock().unwrap().get(up).map(|it| it.data_version.clone()).unwrap_or_default();
        inputs.push((up.clone(), version));
    }
    let dir = store::block_dir(&shared.vars_dir, &shared.pipeline, &spec.uuid);
    let shape = outputs.first().and_then(store::Pending::shape);
    let n_outputs = outputs.len();
    let data_version = store::write_outputs(&dir, &outputs)?;
    // Frames the worker wrote are read back from their files when needed (SQL scans them).
    let in_memory: Option<Vec<Output>> = outputs
        .into_iter()
        .map(|it| match it {
            store::Pending::Value(output) => Some(output),
            store::Pending::File { .. } => None,
        })
        .collect();
    let provenance = Provenance {
        version: PROVENANCE_VERSION,
        code_version: spec.code_version.clone(),
        fingerprint: freshness::fingerprint(&spec.code_version, &inputs),
        input_versions: inputs,
        data_version,
        run_id: shared.run_id.clone(),
        finished_at: now(),
        n_outputs,
        rows: shape.map(|it| it.0),
        columns: shape.map(|it| it.1),
    };
    store::write_provenance(&dir, &provenance)?;
    shared.provenance.lock().unwrap().insert(spec.uuid.clone(), provenance);
    if let Some(outputs) = in_memory {
        shared.outputs.lock().unwrap().insert(spec.uuid.clone(), Arc::new(outputs));
    }
    Ok((shape.map(|it| it.0), shape.map(|it| it.1)))
}

/// A block's outputs: from this run, or read back from the variables dir.
fn outputs_of(shared: &Shared, uuid: &str) -> anyhow::Result<Arc<Vec<Output>>> {
    wait_stored(shared, uuid)?;
    if let Some(outputs) = shared.outputs.lock().unwrap().get(uuid) {
        return Ok(outputs.clone());
    }
    if !shared.scope.contains(uuid) {
        // A block pipeline runs do not execute (markdown, chart): no outputs, as in Mage.
        return Ok(Arc::new(Vec::new()));
    }
    let n = shared.provenance.lock().unwrap().get(uuid).map(|it| it.n_outputs);
    let Some(n) = n else { anyhow::bail!("block `{uuid}` has no stored output") };
    let outputs = Arc::new(store::read_outputs(&store::block_dir(&shared.vars_dir, &shared.pipeline, uuid), n)?);
    shared.outputs.lock().unwrap().insert(uuid.to_owned(), outputs.clone());
    Ok(outputs)
}

/// An upstream block as a SQL block reads it: from memory when this run holds its outputs,
/// else from the variables dir, scanned lazily unless `eager`.
fn sql_input(shared: &Shared, uuid: &str, eager: bool) -> anyhow::Result<sql::SqlInput> {
    wait_stored(shared, uuid)?;
    let held = shared.outputs.lock().unwrap().get(uuid).cloned();
    if let Some(outputs) = held {
        return Ok(sql::SqlInput::new(uuid.to_owned(), outputs));
    }
    let n = shared.provenance.lock().unwrap().get(uuid).map(|it| it.n_outputs);
    match n {
        Some(n) if !eager && shared.scope.contains(uuid) => {
            sql::SqlInput::stored(uuid.to_owned(), &store::block_dir(&shared.vars_dir, &shared.pipeline, uuid), n)
        }
        _ => Ok(sql::SqlInput::new(uuid.to_owned(), outputs_of(shared, uuid)?)),
    }
}

fn failed(err: BlockError) -> Attempt {
    Attempt { outputs: None, tests: Vec::new(), error: Some(err), cancelled: false, user_s: None }
}

/// An attempt the run's cancellation stopped before it started.
fn cancelled() -> Attempt {
    Attempt { cancelled: true, ..failed(error("KeyboardInterrupt", "cancelled")) }
}

fn run_once(shared: &Shared, spec: &Spec, tx: &Sender<Msg>) -> Attempt {
    let Some(text) = spec.text.as_deref() else {
        let file = spec.file.as_ref().map_or("<none>".to_owned(), |it| it.display().to_string());
        return failed(error("FileNotFoundError", format!("block file {file} of block {} does not exist", spec.uuid)));
    };
    match (spec.language, spec.block_type) {
        (_, None) => failed(error("Exception", format!("block {} has no valid type", spec.uuid))),
        (Some(Language::Sql), Some(_)) => run_sql(shared, spec, text, tx),
        (Some(Language::Python), Some(_)) => run_python(shared, spec, tx),
        (language, _) => failed(error(
            "NotImplementedError",
            format!("not supported yet: {} blocks (block {})", language.map_or("unknown-language", |it| it.as_str()), spec.uuid),
        )),
    }
}

/// Runs a SQL block on a thread of its own, so a timeout or a cancellation ends the block
/// (polars cannot be stopped midway: the query finishes in the background and is dropped).
fn run_sql(shared: &Shared, spec: &Spec, text: &str, events: &Sender<Msg>) -> Attempt {
    // A Postgres block uploads its inputs, so it needs them whole; polars scans stored ones.
    let eager = postgres::is_postgres(&spec.configuration);
    let mut inputs = Vec::new();
    for up in &spec.upstream {
        match sql_input(shared, up, eager) {
            Ok(input) => inputs.push(input),
            Err(err) => return failed(error("Exception", format!("{err:#}"))),
        }
    }
    let (tx, rx) = mpsc::channel();
    let (uuid, configuration, text, globals) = (spec.uuid.clone(), spec.configuration.clone(), text.to_owned(), shared.globals.clone());
    let (root, pipeline, events, cancel) = (shared.root.clone(), shared.pipeline.clone(), events.clone(), shared.cancel.clone());
    std::thread::spawn(move || {
        let result = if postgres::is_postgres(&configuration) {
            let block = postgres::SqlBlock {
                root: &root,
                pipeline: &pipeline,
                uuid: &uuid,
                configuration: &configuration,
                text: &text,
                inputs: &inputs,
                globals: &globals,
                cancel,
            };
            postgres::run_sql_block(&block).map(|(df, messages)| {
                for text in messages {
                    let _ = events.send(Msg::Event(EngineEvent::Stream {
                        block: uuid.clone(),
                        name: "stdout".into(),
                        text: format!("{text}\n"),
                    }));
                }
                df
            })
        } else {
            sql::run(&uuid, &configuration, &text, &inputs, &globals)
        };
        let _ = tx.send(result);
    });
    let deadline = spec.timeout.map(|secs| Instant::now() + Duration::from_secs_f64(secs));
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Ok(df)) => {
                let outputs = vec![Output { value: Value::Frame(df), mage_type: Some("dataframe".into()) }];
                return Attempt {
                    outputs: Some(Produced::Outputs(outputs)),
                    tests: Vec::new(),
                    error: None,
                    cancelled: false,
                    user_s: None,
                };
            }
            Ok(Err(err)) => return failed(error("SQLError", format!("{err:#}"))),
            Err(RecvTimeoutError::Disconnected) => return failed(error("SQLError", "the SQL thread panicked")),
            Err(RecvTimeoutError::Timeout) => {}
        }
        if shared.cancel.load(Ordering::SeqCst) {
            return cancelled();
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return failed(error("TimeoutError", format!("block {} timed out after {} s", spec.uuid, spec.timeout.unwrap_or_default())));
        }
    }
}

fn run_python(shared: &Shared, spec: &Spec, tx: &Sender<Msg>) -> Attempt {
    let mut log = |line: String| {
        let _ = tx.send(Msg::Event(EngineEvent::WorkerLog { text: line }));
    };
    let mut guard = shared.worker.0.lock().unwrap();
    if shared.cancel.load(Ordering::SeqCst) {
        return cancelled();
    }
    if !guard.as_mut().is_some_and(Worker::is_alive) {
        *guard = None;
        match spawn_worker(shared, &mut log) {
            Ok(worker) => *guard = Some(worker),
            Err(err) => return failed(error("WorkerError", format!("{err:#}"))),
        }
    }
    let worker = guard.as_mut().unwrap();
    worker.drain_log(&mut log);
    for up in &spec.upstream {
        if worker.keys.contains(up) {
            continue;
        }
        let res = outputs_of(shared, up).and_then(|outputs| worker.put_value(up, &outputs, &mut log));
        if let Err(err) = res {
            return failed(error("Exception", format!("cannot pass the output of `{up}` to block {}: {err:#}", spec.uuid)));
        }
    }
    let file = spec.file.as_ref().map(|file| shared.root.join(file)).unwrap_or_default();
    // The worker writes the block's frames to Parquet files here itself (PROTOCOL.md 6.6.6).
    let staging = store::staging_dir(&shared.vars_dir, &shared.pipeline, &shared.run_id, &spec.uuid);
    let _ = std::fs::remove_dir_all(&staging);
    let request = json!({
        "block_uuid": spec.uuid,
        "block_type": spec.block_type.map(|it| it.as_str()),
        "file_path": file,
        "project_path": shared.root,
        "pipeline_uuid": shared.pipeline,
        "upstream_keys": spec.upstream,
        "global_vars": shared.globals,
        "configuration": spec.configuration,
        "run_tests": shared.run_tests,
        "run_id": shared.run_id,
        "output_dir": staging,
    });
    let deadline = spec.timeout.map(|secs| Instant::now() + Duration::from_secs_f64(secs));
    let block = spec.uuid.clone();
    let mut on_stream = |name: &str, text: &str| {
        let _ = tx.send(Msg::Event(EngineEvent::Stream { block: block.clone(), name: name.to_owned(), text: text.to_owned() }));
    };
    let mut log2 = |line: String| {
        let _ = tx.send(Msg::Event(EngineEvent::WorkerLog { text: line }));
    };
    let (reply, interrupted) = worker.run_block(request, &mut on_stream, &mut log2, &shared.cancel, deadline);
    let cancelled = interrupted == Some(Interrupted::Cancelled);
    let timed_out = || error("TimeoutError", format!("block {} timed out after {} s", spec.uuid, spec.timeout.unwrap_or_default()));
    match reply {
        RunReply::Lost { message } => {
            *guard = None;
            let err = if interrupted == Some(Interrupted::TimedOut) { timed_out() } else { error("WorkerLost", message) };
            Attempt { outputs: None, tests: Vec::new(), error: Some(err), cancelled, user_s: None }
        }
        RunReply::Done { id, result, outputs } => {
            let tests = result["tests"].as_array().map(|tests| tests.iter().map(test_result).collect()).unwrap_or_default();
            if result["status"] == "ok" {
                worker.keys.insert(spec.uuid.clone());
                let metas = result["outputs"].as_array().cloned().unwrap_or_default();
                let produced = Produced::Worker { id, metas, frames: outputs, files: worker.stored_files(), staging };
                return Attempt {
                    outputs: Some(produced),
                    tests,
                    error: None,
                    cancelled: false,
                    user_s: result["duration_user_s"].as_f64(),
                };
            }
            worker.keys.remove(&spec.uuid);
            let err = if interrupted == Some(Interrupted::TimedOut) {
                timed_out()
            } else {
                let e = &result["error"];
                BlockError {
                    ename: e["ename"].as_str().unwrap_or("Exception").to_owned(),
                    evalue: e["evalue"].as_str().unwrap_or_default().to_owned(),
                    traceback: e["traceback"]
                        .as_array()
                        .map(|lines| lines.iter().filter_map(|it| it.as_str().map(str::to_owned)).collect())
                        .unwrap_or_default(),
                    line: e["lineno"].as_u64().map(|it| it as u32),
                }
            };
            Attempt { outputs: None, tests, error: Some(err), cancelled, user_s: result["duration_user_s"].as_f64() }
        }
    }
}

fn test_result(test: &Json) -> TestResult {
    TestResult {
        name: test["name"].as_str().unwrap_or_default().to_owned(),
        passed: test["passed"].as_bool().unwrap_or(false),
        message: test["message"].as_str().map(str::to_owned),
        line: test["lineno"].as_u64().map(|it| it as u32),
        failed_line: test["assert_lineno"].as_u64().map(|it| it as u32),
    }
}

/// Told on the block's stderr when one of its frames stays in the worker only.
fn not_stored_note(index: u64, conversion_error: &str) -> String {
    format!(
        "wand: output {index} cannot be converted to Arrow ({conversion_error}); it is kept in the Python worker for downstream Python blocks, not stored\n"
    )
}

fn convert_output(frame: python::Frame, on_stream: &mut dyn FnMut(&str, &str)) -> Output {
    let header = frame.header;
    let mage_type = header["mage_type"].as_str().map(str::to_owned);
    if let Some(conversion_error) = header["conversion_error"].as_str() {
        on_stream("stderr", &not_stored_note(header["index"].as_u64().unwrap_or_default(), conversion_error));
    }
    let value = match header["encoding"].as_str() {
        Some("arrow") => match store::frame_from_ipc_stream(&frame.payload) {
            Ok(df) => Value::Frame(df),
            Err(err) => {
                on_stream(
                    "stderr",
                    &format!("wand: cannot read output {} as a polars frame ({err:#}); it stays in the worker only\n", header["index"]),
                );
                Value::Opaque { repr: header["python_type"].as_str().unwrap_or_default().to_owned() }
            }
        },
        Some("json") => match serde_json::from_slice(&frame.payload) {
            Ok(value) => Value::Json(value),
            Err(_) => Value::Opaque { repr: String::from_utf8_lossy(&frame.payload).into_owned() },
        },
        _ => Value::Opaque { repr: header["repr"].as_str().unwrap_or_default().to_owned() },
    };
    Output { value, mage_type }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_config_merges_and_backs_off() {
        let project = json!({"retries": 3, "delay": 1, "max_delay": 10});
        let block = json!({"retries": 2, "exponential_backoff": true});
        let retry = RetryConfig::merged(&project, &block);
        assert_eq!(retry, RetryConfig { retries: 2, delay: 1.0, max_delay: 10.0, exponential_backoff: true });
        assert_eq!(retry.next_delay(1, 0.0), Some(1.0));
        assert_eq!(retry.next_delay(2, 1.0), Some(2.0));
        assert_eq!(retry.next_delay(3, 3.0), None);
        let slow = RetryConfig { retries: 5, delay: 5.0, max_delay: 12.0, exponential_backoff: true };
        assert_eq!(slow.next_delay(2, 5.0), None, "5 + 10 > 12");
        assert_eq!(RetryConfig::merged(&Json::Null, &Json::Null).retries, 0);
    }
}
