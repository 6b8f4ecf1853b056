//! What the kernel knows between cells: the bound project and pipeline, the scratch worker and
//! the worker block cells run in, the reactive mode. Runs cells and reports through a
//! [`Frontend`]; no Jupyter wire types beyond MIME bundles and the error triple (the protocol
//! lives in `kernel.rs`).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use pipeline::draw::{self, NodeState};
use pipeline::runrecord::BlockStatus;
use pipeline::vfs::{DiskStamp, DiskVfs, Root, StampedDiskVfs, find_root};
use pipeline::{BlockType, Language, Pipeline, Project};
use serde_json::{Value as Json, json};

use super::cells::{self, BlockCell, Cell, Magic};
use super::display;
use super::pipeline_yaml;
use super::scratch::{ExecOutcome, Interrupt, ScratchWorker};
use super::wire::{ErrorContent, MimeBundle};
use crate::engine::freshness::Freshness;
use crate::engine::store::{self, Output};
use crate::engine::{self, EngineEvent, Mode, RunOptions, WorkerSlot};

/// Where a cell's output goes.
pub trait Frontend {
    fn stream(&mut self, name: &str, text: &str);
    /// `update`: replace the displays with this id instead of adding one.
    fn display(&mut self, data: MimeBundle, display_id: Option<&str>, update: bool);
    fn result(&mut self, data: MimeBundle);
    /// Clears the cell's output (`wait`: when the next output arrives).
    fn clear_output(&mut self, wait: bool);
    /// Help for the user to read in the pager (`name?`), as IPython's `page` payload.
    fn page(&mut self, data: MimeBundle);
    /// Asks the user for a line (`None`: the frontend does not allow input).
    fn input(&mut self, prompt: &str, password: bool) -> Option<String>;
}

pub type CellResult = Result<(), ErrorContent>;

fn err(ename: &str, evalue: impl Into<String>) -> ErrorContent {
    let evalue = evalue.into();
    ErrorContent { ename: ename.to_owned(), traceback: vec![format!("{ename}: {evalue}")], evalue }
}

pub struct Session {
    cwd: PathBuf,
    project: Option<Project>,
    /// What loading `project` read, to skip re-reading an unchanged project before a cell.
    stamp: Option<DiskStamp>,
    pipeline: Option<String>,
    pub reactive: bool,
    scratch: Option<ScratchWorker>,
    /// The Python worker block cells run in, kept from one cell to the next.
    blocks_worker: WorkerSlot,
    /// Data version of each block output bound in the scratch namespace.
    bound: HashMap<String, String>,
    pub interrupt: Arc<Interrupt>,
}

impl Session {
    /// Binds to the pipeline the working directory implies: `pipelines/<uuid>/`, or the only
    /// pipeline of the project around it.
    pub fn new(cwd: PathBuf, interrupt: Arc<Interrupt>) -> Session {
        let mut session = Session {
            cwd,
            project: None,
            stamp: None,
            pipeline: None,
            reactive: true,
            scratch: None,
            blocks_worker: WorkerSlot::default(),
            bound: HashMap::new(),
            interrupt,
        };
        if let Some(root) = session.project_root() {
            let project = session.load(&root);
            let rel = session.cwd.strip_prefix(&root).ok().map(Path::to_path_buf).unwrap_or_default();
            let mut parts = rel.components().map(|it| it.as_os_str().to_string_lossy().into_owned());
            let inferred = match (parts.next().as_deref(), parts.next()) {
                (Some("pipelines"), Some(uuid)) if project.pipelines.contains_key(&uuid) => Some(uuid),
                _ if project.pipelines.len() == 1 => project.pipelines.keys().next().cloned(),
                _ => None,
            };
            session.pipeline = inferred;
            session.project = Some(project);
        }
        session
    }

    fn project_root(&self) -> Option<PathBuf> {
        match find_root(&DiskVfs, &self.cwd)? {
            Root::Project(root) => Some(root),
            Root::Platform { projects, .. } => projects.into_iter().find(|project| self.cwd.starts_with(project)),
        }
    }

    pub fn binding(&self) -> Option<(&Project, &str)> {
        Some((self.project.as_ref()?, self.pipeline.as_deref()?))
    }

    /// Reads the project at `root`, remembering what it read.
    fn load(&mut self, root: &Path) -> Project {
        let vfs = StampedDiskVfs::default();
        let project = pipeline::load::load_project(&vfs, root);
        self.stamp = Some(vfs.finish());
        project
    }

    /// Re-reads the project when a file or folder it was read from has changed since (an edit
    /// in another editor, a cell that saved a block), so every cell sees the files as they are.
    fn reload(&mut self) {
        if self.stamp.as_ref().is_some_and(|stamp| !stamp.changed()) {
            return;
        }
        if let Some(root) = self.project.as_ref().map(|project| project.root.clone()) {
            self.project = Some(self.load(&root));
        }
    }

    fn bound(&self) -> Result<(&Project, &Pipeline), ErrorContent> {
        let (Some(project), Some(uuid)) = (&self.project, &self.pipeline) else {
            let hint = if self.project.is_some() {
                "bind the notebook with %pipeline UUID (or %pipeline UUID --create)"
            } else {
                "start the kernel inside a Mage project (a folder with pipelines/<uuid>/metadata.yaml)"
            };
            return Err(err("NoPipeline", format!("this notebook is not bound to a pipeline: {hint}")));
        };
        let pipeline = project
            .pipelines
            .get(uuid)
            .ok_or_else(|| err("NoPipeline", format!("pipeline `{uuid}` is gone from {}", project.root.display())))?;
        Ok((project, pipeline))
    }

    pub fn execute(&mut self, code: &str, out: &mut dyn Frontend) -> CellResult {
        self.interrupt.reset();
        let cell = cells::parse(code).map_err(|message| err("UsageError", message))?;
        match cell {
            Cell::Block(cell) => self.block_cell(cell, out),
            Cell::Sql(query) => self.sql_cell(&query, out),
            Cell::Code { magics, python } => {
                for magic in magics {
                    self.magic(magic, out)?;
                }
                if let Some(name) = help_target(&python) {
                    match self.inspect(name, name.len()) {
                        Some(bundle) => out.page(bundle),
                        None => out.stream("stdout", &format!("Object `{name}` not found.\n")),
                    }
                    return Ok(());
                }
                if python.trim().is_empty() { Ok(()) } else { self.python_cell(&python, out) }
            }
        }
    }

    // ---- magics ------------------------------------------------------------------------------

    fn magic(&mut self, magic: Magic, out: &mut dyn Frontend) -> CellResult {
        match magic {
            Magic::Help => {
                let text: Vec<String> = cells::MAGICS.iter().map(|(_, help)| help.to_string()).collect();
                out.stream("stdout", &format!("{}\n", text.join("\n")));
                Ok(())
            }
            Magic::Reactive(mode) => {
                if let Some(on) = mode {
                    self.reactive = on;
                }
                let text = if self.reactive {
                    "reactive: on (stale descendants re-run at once)"
                } else {
                    "reactive: off (stale descendants are only marked)"
                };
                out.stream("stdout", &format!("{text}\n"));
                Ok(())
            }
            Magic::Pipeline { uuid, create } => self.bind(&uuid, create, out),
            Magic::Status => {
                self.reload();
                let (project, pipeline) = self.bound()?;
                let states = states(project, pipeline);
                let mut text = format!(
                    "pipeline {} ({} blocks, reactive {})\n",
                    pipeline.uuid,
                    pipeline.dag.len(),
                    if self.reactive { "on" } else { "off" }
                );
                let order = pipeline.dag.topo_order().unwrap_or_else(|_| pipeline.dag.uuids().collect());
                for uuid in order {
                    let (_, words) = &states[uuid];
                    text.push_str(&format!("  {uuid:<28} {words}\n"));
                }
                out.stream("stdout", &text);
                Ok(())
            }
            Magic::Dag => {
                self.reload();
                let (project, pipeline) = self.bound()?;
                let states: draw::States = states(project, pipeline).into_iter().map(|(uuid, (state, _))| (uuid, state)).collect();
                let mut bundle = MimeBundle::new();
                bundle.insert("image/svg+xml".into(), json!(draw::svg(pipeline, &states)));
                bundle.insert("text/plain".into(), json!(draw::mermaid(pipeline, &states)));
                out.display(bundle, None, false);
                Ok(())
            }
            Magic::Vars => {
                self.reload();
                let (project, pipeline) = self.bound()?;
                let mut text = format!("variables: {}\noutputs:\n", pipeline.variables());
                let vars_dir = project.variables_dir();
                for block in pipeline.dag_blocks() {
                    let dir = store::block_dir(&vars_dir, &pipeline.uuid, &block.uuid.value);
                    if let Some(provenance) = store::stored_provenance(&dir) {
                        let shape = provenance.rows.map(|rows| format!(" {rows}×{}", provenance.columns.unwrap_or(0))).unwrap_or_default();
                        text.push_str(&format!(
                            "  {} ({} output{}{shape})\n",
                            block.uuid.value,
                            provenance.n_outputs,
                            if provenance.n_outputs == 1 { "" } else { "s" }
                        ));
                    }
                }
                out.stream("stdout", &text);
                Ok(())
            }
            Magic::Run { changed } => {
                self.reload();
                let mode = if changed { Mode::Changed } else { Mode::All };
                let ran = self.engine_run(None, mode, out)?;
                if ran.values().all(|run| run.status == BlockStatus::Reused) {
                    out.stream("stdout", "nothing ran: every block's stored output is fresh\n");
                }
                self.refresh_displays(&ran, out);
                Ok(())
            }
        }
    }

    fn bind(&mut self, uuid: &str, create: bool, out: &mut dyn Frontend) -> CellResult {
        if self.project.is_none() {
            let root = self.project_root().ok_or_else(|| {
                err(
                    "NoProject",
                    format!("no Mage project at or above {} (a folder with pipelines/<uuid>/metadata.yaml)", self.cwd.display()),
                )
            })?;
            self.project = Some(self.load(&root));
        } else {
            self.reload();
        }
        let project = self.project.as_ref().unwrap();
        if !project.pipelines.contains_key(uuid) {
            if !create {
                let known: Vec<&str> = project.pipelines.keys().map(String::as_str).collect();
                return Err(err("NoPipeline", format!("no pipeline `{uuid}` (known: {}); add --create to make it", known.join(", "))));
            }
            if uuid.is_empty() || uuid.contains(['/', '\\', ' ']) {
                return Err(err("UsageError", format!("`{uuid}` is not a pipeline uuid (letters, digits, _ and -)")));
            }
            let dir = project.root.join("pipelines").join(uuid);
            std::fs::create_dir_all(&dir).map_err(|e| err("OSError", format!("cannot create {}: {e}", dir.display())))?;
            std::fs::write(dir.join("metadata.yaml"), pipeline_yaml::new_pipeline(uuid)).map_err(|e| err("OSError", e.to_string()))?;
            let _ = std::fs::write(dir.join("__init__.py"), "");
            out.stream("stdout", &format!("created pipeline {uuid} in {}\n", dir.display()));
            self.reload();
        }
        self.pipeline = Some(uuid.to_owned());
        out.stream("stdout", &format!("notebook bound to pipeline {uuid}\n"));
        Ok(())
    }

    // ---- block cells -------------------------------------------------------------------------

    /// Saves the cell (block file, metadata.yaml), then runs the block after its stale
    /// ancestors, then its stale descendants (reactive) or marks them (lazy).
    fn block_cell(&mut self, cell: BlockCell, out: &mut dyn Frontend) -> CellResult {
        self.reload();
        self.save_block(&cell, out)?;
        self.reload();
        let uuid = cell.uuid.clone();
        let ran = self.engine_run(Some(&uuid), Mode::All, out)?;
        let (project, pipeline) = self.bound()?;
        let (status, bundle, error) = block_view(project, pipeline, &uuid, ran.get(&uuid));
        let display_id = display_id(&pipeline.uuid, &uuid);
        out.display(bundle, Some(&display_id), false);
        let _ = status;
        if let Some(error) = error {
            return Err(error);
        }
        self.wave(&uuid, out);
        Ok(())
    }

    fn save_block(&mut self, cell: &BlockCell, out: &mut dyn Frontend) -> CellResult {
        let (project, pipeline) = self.bound()?;
        let root = project.root.clone();
        let metadata = root.join(&pipeline.metadata_path);
        let existing = pipeline.block(&cell.uuid);
        let write = |path: &Path, text: &str| -> CellResult {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| err("OSError", format!("cannot create {}: {e}", dir.display())))?;
            }
            store::write_atomic(path, text.as_bytes()).map_err(|e| err("OSError", format!("{e:#}")))
        };
        let body = if cell.body.ends_with('\n') || cell.body.is_empty() { cell.body.clone() } else { format!("{}\n", cell.body) };
        match (existing, cell.block_type) {
            (None, None) => {
                let known: Vec<&str> = pipeline.dag.uuids().collect();
                Err(err(
                    "NoBlock",
                    format!(
                        "no block `{}` in pipeline {} (known: {}); to create it, start the cell with its type, e.g. %%transformer {} --upstream ...",
                        cell.uuid,
                        pipeline.uuid,
                        known.join(", "),
                        cell.uuid
                    ),
                ))
            }
            (None, Some(block_type)) => {
                let language = cell.language.unwrap_or(Language::Python);
                let upstream = cell.upstream.clone().unwrap_or_default();
                let text = std::fs::read_to_string(&metadata).map_err(|e| err("OSError", e.to_string()))?;
                let new = pipeline_yaml::add_block(&text, &cell.uuid, block_type, language, &upstream, cell.profile.as_deref())
                    .map_err(|e| err("PipelineError", format!("{e:#}")))?;
                let file = root.join(block_type.dir()).join(format!("{}.{}", cell.uuid, language.extension()));
                if !body.trim().is_empty() || !file.exists() {
                    write(&file, &body)?;
                }
                write(&metadata, &new)?;
                out.stream(
                    "stdout",
                    &format!("created block {} ({}, {})\n", cell.uuid, block_type, file.strip_prefix(&root).unwrap_or(&file).display()),
                );
                Ok(())
            }
            (Some(block), wanted) => {
                if let Some(wanted) = wanted {
                    if block.block_type != Some(wanted) {
                        return Err(err(
                            "UsageError",
                            format!(
                                "block `{}` is a {}; changing a block's type is not supported (write %%block {} or a new uuid)",
                                cell.uuid,
                                block.block_type.map_or("?", BlockType::as_str),
                                cell.uuid
                            ),
                        ));
                    }
                    if let Some(language) = cell.language.filter(|it| Some(*it) != block.language) {
                        return Err(err(
                            "UsageError",
                            format!(
                                "block `{}` is written in {}; changing it to {language} is not supported",
                                cell.uuid,
                                block.language.map_or("?", Language::as_str)
                            ),
                        ));
                    }
                    if let Some(upstream) = &cell.upstream {
                        let text = std::fs::read_to_string(&metadata).map_err(|e| err("OSError", e.to_string()))?;
                        let new =
                            pipeline_yaml::set_upstream(&text, &cell.uuid, upstream).map_err(|e| err("PipelineError", format!("{e:#}")))?;
                        if new != text {
                            write(&metadata, &new)?;
                            out.stream("stdout", &format!("{}: upstream blocks now [{}]\n", cell.uuid, upstream.join(", ")));
                        }
                    }
                }
                if !body.trim().is_empty() {
                    let file = block
                        .file
                        .as_ref()
                        .ok_or_else(|| err("NoBlockFile", format!("block `{}` has no file Wand can write", cell.uuid)))?;
                    let path = root.join(file);
                    if std::fs::read_to_string(&path).ok().as_deref() != Some(body.as_str()) {
                        write(&path, &body)?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Runs the engine (one block after its stale ancestors, or the whole pipeline), printing
    /// a compact line per other block. Returns what happened to each block.
    fn engine_run(&mut self, target: Option<&str>, mode: Mode, out: &mut dyn Frontend) -> Result<HashMap<String, BlockRun>, ErrorContent> {
        let (project, pipeline) = self.bound()?;
        let options = RunOptions {
            mode,
            block: target.map(str::to_owned),
            run_tests: true,
            cancel: self.interrupt.cancel.clone(),
            worker: Some(self.blocks_worker.clone()),
            ..RunOptions::default()
        };
        let mut ran: HashMap<String, BlockRun> = HashMap::new();
        let mut sink = |event: &EngineEvent| match event {
            EngineEvent::Stale { block, causes } if Some(block.as_str()) != target => {
                out.stream("stdout", &format!("↻ {block}: {}\n", causes.join("; ")));
            }
            EngineEvent::Stream { block, name, text } if Some(block.as_str()) == target || target.is_none() => {
                out.stream(name, text);
            }
            EngineEvent::BlockRetrying { block, attempt, delay_s, error } => {
                out.stream("stderr", &format!("{block}: attempt {attempt} failed ({error}); retrying in {delay_s:.0} s\n"));
            }
            EngineEvent::BlockFinished { block, status, tests, error, duration_s, .. } => {
                if Some(block.as_str()) != target && *status != BlockStatus::Reused {
                    let mark = match status {
                        BlockStatus::Succeeded => "✓",
                        BlockStatus::Skipped => "–",
                        _ => "✗",
                    };
                    let why = error.as_ref().map(|e| format!(": {}: {}", e.ename, e.evalue)).unwrap_or_default();
                    out.stream("stdout", &format!("{mark} {block} {} {duration_s:.1}s{why}\n", status_word(*status)));
                }
                ran.insert(block.clone(), BlockRun { status: *status, tests: tests.clone(), error: error.clone() });
            }
            EngineEvent::WorkerLog { text } => tracing::info!(target: "wand::worker", "{text}"),
            _ => {}
        };
        let started = Instant::now();
        let res = engine::run(project, &pipeline.uuid, &options, &mut sink);
        tracing::debug!("engine run of {target:?} took {:?}", started.elapsed());
        let cancelled = self.interrupt.requested.load(std::sync::atomic::Ordering::SeqCst);
        match res {
            Ok(_) if cancelled => Err(err("KeyboardInterrupt", "interrupted")),
            Ok(_) => Ok(ran),
            Err(e) => Err(err("RunError", format!("{e:#}"))),
        }
    }

    /// After `uuid` changed: its descendants that had outputs and are now stale re-run
    /// (reactive) or are marked stale (lazy). An unchanged output stops the wave.
    fn wave(&mut self, uuid: &str, out: &mut dyn Frontend) {
        let Ok((_, pipeline)) = self.bound() else { return };
        let descendants: BTreeSet<String> = pipeline.dag.descendants(uuid).into_iter().map(str::to_owned).collect();
        let order: Vec<String> =
            pipeline.dag.topo_order().unwrap_or_default().into_iter().filter(|it| descendants.contains(*it)).map(str::to_owned).collect();
        for child in order {
            if self.interrupt.requested.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            self.reload();
            let Ok((project, pipeline)) = self.bound() else { return };
            let Some(block) = pipeline.block(&child) else { continue };
            if !block.block_type.is_some_and(BlockType::runs_in_pipeline) {
                continue;
            }
            let (stored, freshness) = engine::execute::block_freshness(project, pipeline, &child);
            if !stored {
                continue;
            }
            let Freshness::Stale(causes) = freshness else { continue };
            let causes: Vec<String> = causes.iter().map(ToString::to_string).collect();
            let id = display_id(&pipeline.uuid, &child);
            if !self.reactive {
                out.stream("stdout", &format!("◌ {child} is stale: {}\n", causes.join("; ")));
                out.display(
                    display::note_bundle(&child, &format!("stale ({}); run its cell or %run --changed", causes.join("; "))),
                    Some(&id),
                    true,
                );
                continue;
            }
            out.stream("stdout", &format!("↻ {child} (reactive): {}\n", causes.join("; ")));
            let ran = match self.engine_run(Some(&child), Mode::All, &mut Quiet(out)) {
                Ok(ran) => ran,
                Err(e) => {
                    out.stream("stderr", &format!("{child}: {}\n", e.evalue));
                    return;
                }
            };
            let Ok((project, pipeline)) = self.bound() else { return };
            let (status, bundle, _) = block_view(project, pipeline, &child, ran.get(&child));
            out.stream("stdout", &format!("  {child}: {status}\n"));
            out.display(bundle, Some(&id), true);
        }
    }

    fn refresh_displays(&mut self, ran: &HashMap<String, BlockRun>, out: &mut dyn Frontend) {
        let Ok((project, pipeline)) = self.bound() else { return };
        for (uuid, run) in ran {
            if run.status == BlockStatus::Reused {
                continue;
            }
            let (_, bundle, _) = block_view(project, pipeline, uuid, Some(run));
            out.display(bundle, Some(&display_id(&pipeline.uuid, uuid)), true);
        }
    }

    // ---- scratch cells -----------------------------------------------------------------------

    fn python(&self) -> PathBuf {
        let root = self.project.as_ref().map_or(self.cwd.clone(), |it| it.root.clone());
        engine::python::find_python(&root)
    }

    fn scratch(&mut self) -> Result<&mut ScratchWorker, ErrorContent> {
        if !self.scratch.as_mut().is_some_and(ScratchWorker::is_alive) {
            self.scratch = None;
            self.bound.clear();
            let worker = ScratchWorker::spawn(&self.python()).map_err(|e| err("WorkerError", format!("{e:#}")))?;
            self.scratch = Some(worker);
        }
        Ok(self.scratch.as_mut().unwrap())
    }

    /// Binds the stored outputs that changed since the last cell into the scratch namespace.
    fn sync_outputs(&mut self, out: &mut dyn Frontend) {
        let Some((project, pipeline)) = self.binding() else { return };
        let Some(pipeline) = project.pipelines.get(pipeline) else { return };
        let vars_dir = project.variables_dir();
        let mut todo = Vec::new();
        for block in pipeline.dag_blocks() {
            let dir = store::block_dir(&vars_dir, &pipeline.uuid, &block.uuid.value);
            if let Some(provenance) = store::stored_provenance(&dir)
                && self.bound.get(&block.uuid.value) != Some(&provenance.data_version)
            {
                todo.push((block.uuid.value.clone(), dir, provenance));
            }
        }
        for (uuid, dir, provenance) in todo {
            let outputs = match store::read_outputs(&dir, provenance.n_outputs) {
                Ok(outputs) => outputs,
                Err(e) => {
                    tracing::warn!("cannot read the outputs of {uuid}: {e:#}");
                    continue;
                }
            };
            let Ok(worker) = self.scratch() else { return };
            match worker.put_value(&uuid, &outputs) {
                Ok(()) => {
                    self.bound.insert(uuid, provenance.data_version);
                }
                Err(e) => out.stream("stderr", &format!("wand: {uuid} is not visible in scratch cells: {e:#}\n")),
            }
        }
    }

    fn python_cell(&mut self, code: &str, out: &mut dyn Frontend) -> CellResult {
        self.reload();
        self.scratch()?;
        self.sync_outputs(out);
        let interrupt = self.interrupt.clone();
        let worker = self.scratch()?;
        interrupt.pid.store(worker.pid(), std::sync::atomic::Ordering::SeqCst);
        let outcome = {
            let out_cell = std::cell::RefCell::new(&mut *out);
            worker.exec(
                code,
                &interrupt,
                &mut |name, text| out_cell.borrow_mut().stream(name, text),
                &mut |prompt, password| out_cell.borrow_mut().input(prompt, password),
                &mut |message| {
                    let mut out = out_cell.borrow_mut();
                    if message["type"] == "clear_output" {
                        out.clear_output(message["wait"].as_bool().unwrap_or(false));
                    } else if let Some(data) = message["data"].as_object() {
                        let update = message["update"].as_bool().unwrap_or(false);
                        out.display(data.clone(), message["display_id"].as_str(), update);
                    }
                },
            )
        };
        interrupt.pid.store(0, std::sync::atomic::Ordering::SeqCst);
        match outcome {
            ExecOutcome::Ok { data } => {
                if let Some(data) = data {
                    out.result(data);
                }
                Ok(())
            }
            ExecOutcome::Error { ename, evalue, traceback } => Err(ErrorContent { ename, evalue, traceback }),
            ExecOutcome::Lost { message } => {
                self.scratch = None;
                self.bound.clear();
                let ename = if interrupt.requested.load(std::sync::atomic::Ordering::SeqCst) { "KeyboardInterrupt" } else { "WorkerLost" };
                Err(err(ename, message))
            }
        }
    }

    fn sql_cell(&mut self, query: &str, out: &mut dyn Frontend) -> CellResult {
        self.reload();
        let (project, pipeline) = self.bound()?;
        let vars_dir = project.variables_dir();
        let mut inputs = Vec::new();
        for block in pipeline.dag_blocks() {
            let dir = store::block_dir(&vars_dir, &pipeline.uuid, &block.uuid.value);
            if let Some(provenance) = store::stored_provenance(&dir)
                && let Ok(input) = engine::sql::SqlInput::stored(block.uuid.value.clone(), &dir, provenance.n_outputs)
            {
                inputs.push(input);
            }
        }
        let globals = match pipeline.variables() {
            Json::Object(map) => map,
            _ => Default::default(),
        };
        let df = engine::sql::run("%%sql", &json!({}), query, &inputs, &globals).map_err(|e| err("SQLError", format!("{e:#}")))?;
        let (html, text) = display::frame(&df, "result");
        let mut bundle = MimeBundle::new();
        bundle.insert("text/plain".into(), json!(text));
        bundle.insert("text/html".into(), json!(html));
        out.result(bundle);
        Ok(())
    }

    // ---- completion and inspection -----------------------------------------------------------

    /// Completes magics, block uuids, upstream columns, then Python names from the worker.
    /// Offsets are in characters.
    pub fn complete(&mut self, code: &str, cursor: usize) -> (Vec<String>, usize, usize) {
        let chars: Vec<char> = code.chars().collect();
        let cursor = cursor.min(chars.len());
        let mut start = cursor;
        while start > 0 && (chars[start - 1].is_alphanumeric() || matches!(chars[start - 1], '_' | '%' | '/' | '-')) {
            start -= 1;
        }
        let token: String = chars[start..cursor].iter().collect();
        if token.starts_with('%') {
            let matches: Vec<String> =
                cells::MAGICS.iter().map(|(name, _)| name.to_string()).filter(|name| name.starts_with(&token)).collect();
            return (matches, start, cursor);
        }
        let mut matches: Vec<String> = Vec::new();
        if let Some((project, pipeline)) = self.binding()
            && let Some(pipeline) = project.pipelines.get(pipeline)
        {
            matches.extend(pipeline.dag.uuids().filter(|uuid| uuid.starts_with(&token) && !token.is_empty()).map(str::to_owned));
            // Columns of the upstream outputs of the block this cell is.
            if let Ok(Cell::Block(cell)) = cells::parse(code) {
                let upstream: Vec<String> =
                    cell.upstream.clone().unwrap_or_else(|| pipeline.dag.upstream(&cell.uuid).into_iter().map(str::to_owned).collect());
                for up in upstream {
                    for column in columns(project, &pipeline.uuid, &up) {
                        if column.starts_with(&token) && !matches.contains(&column) {
                            matches.push(column);
                        }
                    }
                }
            }
        }
        let mut python_start = start;
        if let Ok(worker) = self.scratch() {
            let prefix: String = chars[..cursor].iter().collect();
            if let Some((found, s, _)) = worker.complete(&prefix, cursor) {
                python_start = s;
                for name in found {
                    if !matches.contains(&name) {
                        matches.push(name);
                    }
                }
            }
        }
        if python_start != start {
            // Dotted completion: the worker's replacement range wins.
            let dotted: String = chars[python_start..start].iter().collect();
            matches = matches.into_iter().map(|it| if it.contains('.') { it } else { format!("{dotted}{it}") }).collect();
            start = python_start;
        }
        (matches, start, cursor)
    }

    /// On a block uuid: the block (type, edges, file, state and code); else the Python name
    /// at the cursor in the scratch namespace (type, value, signature, docstring).
    pub fn inspect(&mut self, code: &str, cursor: usize) -> Option<MimeBundle> {
        self.reload();
        if let Some(bundle) = self.inspect_block(code, cursor) {
            return Some(bundle);
        }
        let name = python_name_at(code, cursor)?;
        self.inspect_python(&name)
    }

    /// Asks the scratch worker about `name` through an `exec` (the worker protocol has no
    /// inspect request): the helper prints, returns nothing and deletes itself, so neither `_`
    /// nor the namespace changes.
    fn inspect_python(&mut self, name: &str) -> Option<MimeBundle> {
        self.scratch().ok()?;
        self.sync_outputs(&mut Discard);
        let code = format!("{INSPECT_PY}try:\n    __wand_inspect({})\nfinally:\n    del __wand_inspect\n", json!(name));
        let worker = self.scratch().ok()?;
        let (outcome, text) = worker.exec_capturing(&code);
        match outcome {
            ExecOutcome::Ok { .. } if !text.trim().is_empty() => Some(display::text_bundle(text.trim_end())),
            ExecOutcome::Lost { .. } => {
                self.scratch = None;
                self.bound.clear();
                None
            }
            ExecOutcome::Error { ename, evalue, .. } => {
                tracing::debug!("inspect {name}: {ename}: {evalue}");
                None
            }
            ExecOutcome::Ok { .. } => None,
        }
    }

    /// The execute_request's `user_expressions`, each evaluated in the scratch namespace:
    /// `{name: {status, data: {text/plain}, metadata}}` or the error triple. `_` is left alone.
    pub fn user_expressions(&mut self, expressions: &serde_json::Map<String, Json>) -> Json {
        let mut results = serde_json::Map::new();
        for (name, expression) in expressions {
            let Some(expression) = expression.as_str() else { continue };
            // A JSON string is a Python string literal.
            let code = format!("print(repr(eval({})), end='')\n", json!(expression));
            let (outcome, text) = match self.scratch() {
                Ok(worker) => worker.exec_capturing(&code),
                Err(error) => (ExecOutcome::Error { ename: error.ename, evalue: error.evalue, traceback: error.traceback }, String::new()),
            };
            let result = match outcome {
                ExecOutcome::Ok { .. } => json!({"status": "ok", "data": {"text/plain": text}, "metadata": {}}),
                ExecOutcome::Error { ename, evalue, traceback } => {
                    json!({"status": "error", "ename": ename, "evalue": evalue, "traceback": traceback})
                }
                ExecOutcome::Lost { message } => {
                    self.scratch = None;
                    self.bound.clear();
                    json!({"status": "error", "ename": "WorkerLost", "evalue": message, "traceback": []})
                }
            };
            results.insert(name.clone(), result);
        }
        Json::Object(results)
    }

    fn inspect_block(&self, code: &str, cursor: usize) -> Option<MimeBundle> {
        let chars: Vec<char> = code.chars().collect();
        let cursor = cursor.min(chars.len());
        let is_word = |ch: char| ch.is_alphanumeric() || matches!(ch, '_' | '/' | '-');
        let mut start = cursor;
        while start > 0 && is_word(chars[start - 1]) {
            start -= 1;
        }
        let mut end = cursor;
        while end < chars.len() && is_word(chars[end]) {
            end += 1;
        }
        let word: String = chars[start..end].iter().collect();
        let (project, pipeline) = self.binding()?;
        let pipeline = project.pipelines.get(pipeline)?;
        let block = pipeline.block(&word)?;
        let (_, state) = &states(project, pipeline)[&word];
        let file = block.file.as_ref().map(|it| it.display().to_string()).unwrap_or_else(|| "(no file)".into());
        let source = block.file.as_ref().and_then(|it| std::fs::read_to_string(project.root.join(it)).ok()).unwrap_or_default();
        let text = format!(
            "block {word}: {} ({}), {state}\nfile: {file}\nupstream: [{}]\ndownstream: [{}]\n\n{source}",
            block.block_type.map_or("?", BlockType::as_str),
            block.language.map_or("?", Language::as_str),
            pipeline.dag.upstream(&word).join(", "),
            pipeline.dag.downstream(&word).join(", "),
        );
        Some(display::text_bundle(&text))
    }
}

/// Defines `__wand_inspect(name)`, which prints what IPython's `obj?` shows, or nothing when the
/// name is not bound (a builtin also counts).
const INSPECT_PY: &str = r#"def __wand_inspect(name):
    import builtins, inspect
    head, *rest = name.split('.')
    if head in globals():
        obj = globals()[head]
    elif hasattr(builtins, head):
        obj = getattr(builtins, head)
    else:
        return
    for part in rest:
        obj = getattr(obj, part)
    lines = ['Type:      ' + type(obj).__name__]
    if not (inspect.isroutine(obj) or inspect.isclass(obj) or inspect.ismodule(obj)):
        text = repr(obj)
        lines.append('Value:     ' + (text if len(text) <= 500 else text[:500] + '...'))
    if callable(obj):
        try:
            lines.append('Signature: ' + name + str(inspect.signature(obj)))
        except (TypeError, ValueError):
            pass
    doc = inspect.getdoc(obj)
    if doc:
        lines.append('Docstring:\n' + doc)
    print('\n'.join(lines))
"#;

/// The dotted Python name at `cursor` (characters), or the one just before a `(` there.
fn python_name_at(code: &str, cursor: usize) -> Option<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut cursor = cursor.min(chars.len());
    let is_name = |ch: char| ch.is_alphanumeric() || matches!(ch, '_' | '.');
    let at_name = |at: usize| (at > 0 && is_name(chars[at - 1])) || (at < chars.len() && is_name(chars[at]));
    if !at_name(cursor) && cursor > 0 && chars[cursor - 1] == '(' {
        cursor -= 1;
    }
    let mut start = cursor;
    while start > 0 && is_name(chars[start - 1]) {
        start -= 1;
    }
    let mut end = cursor;
    while end < chars.len() && (chars[end].is_alphanumeric() || chars[end] == '_') {
        end += 1;
    }
    let name: String = chars[start..end].iter().collect();
    let valid = name.split('.').all(|part| part.chars().next().is_some_and(|ch| ch.is_alphabetic() || ch == '_'));
    valid.then_some(name)
}

/// `name` of a cell that is only `name?`, `name??` or `?name` (IPython's help syntax).
fn help_target(code: &str) -> Option<&str> {
    let code = code.trim();
    let name = code.strip_prefix('?').or_else(|| code.strip_suffix("??")).or_else(|| code.strip_suffix('?'))?.trim();
    let valid = !name.is_empty()
        && name.split('.').all(|part| {
            part.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_') && part.chars().all(|c| c.is_alphanumeric() || c == '_')
        });
    valid.then_some(name)
}

/// A frontend for work whose output nobody sees.
struct Discard;

impl Frontend for Discard {
    fn stream(&mut self, _: &str, _: &str) {}
    fn display(&mut self, _: MimeBundle, _: Option<&str>, _: bool) {}
    fn result(&mut self, _: MimeBundle) {}
    fn clear_output(&mut self, _: bool) {}
    fn page(&mut self, _: MimeBundle) {}
    fn input(&mut self, _: &str, _: bool) -> Option<String> {
        None
    }
}

/// Passes a nested run's block output on as nothing (the wave prints its own lines).
struct Quiet<'a>(&'a mut dyn Frontend);

impl Frontend for Quiet<'_> {
    fn stream(&mut self, name: &str, text: &str) {
        if text.starts_with(['↻', '✓', '✗', '–']) {
            self.0.stream(name, &format!("  {text}"));
        }
    }
    fn display(&mut self, data: MimeBundle, display_id: Option<&str>, update: bool) {
        self.0.display(data, display_id, update)
    }
    fn result(&mut self, _: MimeBundle) {}
    fn clear_output(&mut self, _: bool) {}
    fn page(&mut self, _: MimeBundle) {}
    fn input(&mut self, prompt: &str, password: bool) -> Option<String> {
        self.0.input(prompt, password)
    }
}

pub struct BlockRun {
    pub status: BlockStatus,
    pub tests: Vec<pipeline::runrecord::TestResult>,
    pub error: Option<pipeline::runrecord::BlockError>,
}

pub fn display_id(pipeline: &str, uuid: &str) -> String {
    format!("wand-block-{pipeline}-{uuid}")
}

fn status_word(status: BlockStatus) -> &'static str {
    match status {
        BlockStatus::Succeeded => "ran",
        BlockStatus::Reused => "reused",
        BlockStatus::Failed => "failed",
        BlockStatus::Skipped => "skipped",
        BlockStatus::Cancelled => "cancelled",
        _ => "pending",
    }
}

/// The status line, the display and the error of a block after a run.
fn block_view(project: &Project, pipeline: &Pipeline, uuid: &str, run: Option<&BlockRun>) -> (String, MimeBundle, Option<ErrorContent>) {
    let tests = run.map(|it| it.tests.as_slice()).unwrap_or_default();
    let status = run.map_or(BlockStatus::Pending, |it| it.status);
    let dir = store::block_dir(&project.variables_dir(), &pipeline.uuid, uuid);
    let outputs: Vec<Output> = match status {
        BlockStatus::Succeeded | BlockStatus::Reused => {
            store::read_provenance(&dir).and_then(|p| store::read_outputs(&dir, p.n_outputs).ok()).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let file = pipeline.block(uuid).and_then(|it| it.file.as_ref()).map(|it| it.display().to_string());
    let word = match status {
        BlockStatus::Succeeded => {
            let passed = tests.iter().filter(|it| it.passed).count();
            if tests.is_empty() { "ran".to_owned() } else { format!("ran, {passed}/{} tests passed", tests.len()) }
        }
        other => status_word(other).to_owned(),
    };
    let bundle = display::block_bundle(uuid, &word, &outputs, tests);
    let error = match status {
        BlockStatus::Succeeded | BlockStatus::Reused => None,
        BlockStatus::Cancelled => Some(err("KeyboardInterrupt", format!("block {uuid} was interrupted"))),
        _ => Some(display::block_error(uuid, file.as_deref(), run.and_then(|it| it.error.as_ref()), tests)),
    };
    (word, bundle, error)
}

/// Column names of a block's first stored output, when it is a frame.
fn columns(project: &Project, pipeline: &str, uuid: &str) -> Vec<String> {
    let dir = store::block_dir(&project.variables_dir(), pipeline, uuid);
    let Some(provenance) = store::read_provenance(&dir) else { return Vec::new() };
    match store::read_outputs(&dir, provenance.n_outputs.min(1)).ok().and_then(|mut it| it.pop()) {
        Some(Output { value: store::Value::Frame(df), .. }) => df.get_column_names().into_iter().map(|it| it.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// Every block's drawing state and a word for `%status`.
fn states(project: &Project, pipeline: &Pipeline) -> HashMap<String, (NodeState, String)> {
    let last: HashMap<String, BlockStatus> = pipeline::runrecord::read_latest(&project.variables_dir(), &pipeline.uuid)
        .map(|record| record.blocks.into_iter().map(|it| (it.uuid, it.status)).collect())
        .unwrap_or_default();
    pipeline
        .dag
        .uuids()
        .map(|uuid| {
            let runs = pipeline.block(uuid).and_then(|it| it.block_type).is_some_and(BlockType::runs_in_pipeline);
            let state = if !runs {
                (NodeState::NeverRun, "not run in pipelines".to_owned())
            } else if last.get(uuid) == Some(&BlockStatus::Failed) {
                (NodeState::Failed, "failed in the last run".to_owned())
            } else {
                match engine::execute::block_freshness(project, pipeline, uuid).1 {
                    Freshness::Fresh => (NodeState::Fresh, "fresh".to_owned()),
                    Freshness::Missing => (NodeState::NeverRun, "no stored output".to_owned()),
                    Freshness::Stale(causes) => {
                        (NodeState::Stale, format!("stale: {}", causes.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))
                    }
                }
            };
            (uuid.to_owned(), state)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{help_target, python_name_at};

    #[test]
    fn help_syntax_names_one_object() {
        assert_eq!(help_target("zip?"), Some("zip"));
        assert_eq!(help_target(" ?os.path \n"), Some("os.path"));
        assert_eq!(help_target("df.head??"), Some("df.head"));
        assert_eq!(help_target("x = 1?"), None);
        assert_eq!(help_target("?"), None);
        assert_eq!(help_target("a..b?"), None);
        assert_eq!(help_target("'what?'"), None);
    }

    #[test]
    fn python_names_at_the_cursor() {
        assert_eq!(python_name_at("zip", 3).as_deref(), Some("zip"));
        assert_eq!(python_name_at("x = df.head(", 12).as_deref(), Some("df.head"));
        assert_eq!(python_name_at("print(os.path)", 10).as_deref(), Some("os.path"));
        assert_eq!(python_name_at("print(os.path)", 8).as_deref(), Some("os"));
        assert_eq!(python_name_at("1 + 2", 5), None);
        assert_eq!(python_name_at("a..b", 4), None);
    }
}
