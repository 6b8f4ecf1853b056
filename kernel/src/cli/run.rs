//! `wand run`: runs a pipeline through the engine and shows its events: a progress line per
//! block on a terminal, plain lines otherwise, or one JSON event per line; then a summary.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use pipeline::runrecord::{BlockStatus, RunRecord, RunStatus};
use pipeline::vfs::DiskVfs;
use wand_engine::{EngineEvent, Mode, RunOptions};

use crate::engine as wand_engine;

use super::{EXIT_FOUND_ERRORS, EXIT_OK};

pub const EXIT_CANCELLED: i32 = 130;

pub(super) struct Args<'a> {
    pub project: &'a Path,
    pub pipeline: &'a str,
    pub vars: Option<&'a str>,
    pub mode: Mode,
    pub block: Option<&'a str>,
    pub run_tests: bool,
    pub json: bool,
}

pub(super) fn run(args: Args<'_>) -> anyhow::Result<i32> {
    let (base, roots) = super::projects_at(args.project)?;
    let project = roots
        .iter()
        .map(|root| pipeline::load::load_project(&DiskVfs, root))
        .find(|project| project.pipelines.contains_key(args.pipeline))
        .ok_or_else(|| anyhow::format_err!("no pipeline `{}` in {}", args.pipeline, base.display()))?;
    let vars = match args.vars {
        None => serde_json::Map::new(),
        Some(text) => match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => anyhow::bail!("--vars takes a JSON object, e.g. --vars '{{\"taxi_url\": \"data/x.csv\"}}'"),
        },
    };
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        ctrlc::set_handler(move || {
            if cancel.swap(true, Ordering::SeqCst) {
                // A second Ctrl-C: stop at once.
                std::process::exit(EXIT_CANCELLED);
            }
            eprintln!("\ncancelling: interrupting running blocks (Ctrl-C again to quit at once)");
        })?;
    }
    let options = RunOptions {
        vars,
        mode: args.mode,
        block: args.block.map(str::to_owned),
        run_tests: args.run_tests,
        cancel: cancel.clone(),
        ..RunOptions::default()
    };
    let mut view: Box<dyn View> = if args.json {
        Box::new(JsonView)
    } else if std::io::stderr().is_terminal() {
        Box::new(TtyView::default())
    } else {
        Box::new(PlainView)
    };
    let record = wand_engine::run(&project, args.pipeline, &options, &mut |event| view.event(event))?;
    view.done();
    if !args.json {
        print_summary(&record);
    }
    Ok(match record.status {
        RunStatus::Succeeded => EXIT_OK,
        RunStatus::Cancelled => EXIT_CANCELLED,
        _ => EXIT_FOUND_ERRORS,
    })
}

trait View {
    fn event(&mut self, event: &EngineEvent);
    fn done(&mut self) {}
}

struct JsonView;

impl View for JsonView {
    fn event(&mut self, event: &EngineEvent) {
        if let Ok(line) = serde_json::to_string(event) {
            println!("{line}");
        }
    }
}

fn status_word(status: BlockStatus) -> &'static str {
    match status {
        BlockStatus::Pending => "pending",
        BlockStatus::Running => "running",
        BlockStatus::Succeeded => "ok",
        BlockStatus::Failed => "FAILED",
        BlockStatus::Skipped => "skipped",
        BlockStatus::Reused => "fresh (reused)",
        BlockStatus::Cancelled => "cancelled",
    }
}

/// Lines describing a finished block's error and failing tests.
fn failure_lines(event: &EngineEvent) -> Vec<String> {
    let EngineEvent::BlockFinished { block, status, error, tests, .. } = event else { return Vec::new() };
    let mut lines = Vec::new();
    if *status == BlockStatus::Cancelled {
        return lines;
    }
    for test in tests.iter().filter(|test| !test.passed) {
        let line = test.failed_line.or(test.line).map(|it| format!(" (line {it})")).unwrap_or_default();
        lines.push(format!("  {block}: test {} failed{line}: {}", test.name, test.message.as_deref().unwrap_or("")));
    }
    if let Some(error) = error {
        for tb in &error.traceback {
            for line in tb.trim_end().lines() {
                lines.push(format!("  {line}"));
            }
        }
        let at = error.line.map(|it| format!(" (line {it})")).unwrap_or_default();
        lines.push(format!("  {block}: {}: {}{at}", error.ename, error.evalue));
    }
    lines
}

fn finished_line(event: &EngineEvent) -> Option<String> {
    let EngineEvent::BlockFinished { block, status, attempts, rows, columns, tests, duration_s, .. } = event else { return None };
    let mut parts = vec![status_word(*status).to_owned()];
    if matches!(status, BlockStatus::Succeeded | BlockStatus::Failed) {
        parts.push(format!("{duration_s:.1}s"));
    }
    if let (Some(rows), Some(columns)) = (rows, columns) {
        parts.push(format!("{rows} rows x {columns} cols"));
    }
    if !tests.is_empty() {
        parts.push(format!("{}/{} tests passed", tests.iter().filter(|it| it.passed).count(), tests.len()));
    }
    if *attempts > 1 {
        parts.push(format!("{attempts} attempts"));
    }
    Some(format!("{block}: {}", parts.join(", ")))
}

struct PlainView;

impl View for PlainView {
    fn event(&mut self, event: &EngineEvent) {
        match event {
            EngineEvent::RunStarted { run_id, pipeline, blocks } => eprintln!("run {run_id}: pipeline {pipeline}, {} blocks", blocks.len()),
            EngineEvent::Stale { block, causes } => eprintln!("{block}: stale ({})", causes.join("; ")),
            EngineEvent::BlockStarted { block, attempt } => {
                eprintln!("{block}: started{}", if *attempt > 1 { format!(" (attempt {attempt})") } else { String::new() })
            }
            EngineEvent::Stream { block, text, .. } => {
                for line in text.lines() {
                    eprintln!("{block} | {line}");
                }
            }
            EngineEvent::BlockRetrying { block, attempt, delay_s, error } => {
                eprintln!("{block}: attempt {attempt} failed ({error}); retrying in {delay_s:.1}s")
            }
            EngineEvent::BlockFinished { .. } => {
                if let Some(line) = finished_line(event) {
                    eprintln!("{line}");
                }
                for line in failure_lines(event) {
                    eprintln!("{line}");
                }
            }
            EngineEvent::WorkerLog { text } => eprintln!("worker: {text}"),
            EngineEvent::BlockQueued { .. } | EngineEvent::RunFinished { .. } => {}
        }
    }
}

#[derive(Default)]
struct TtyView {
    multi: Option<MultiProgress>,
    bars: HashMap<String, ProgressBar>,
}

impl TtyView {
    fn multi(&mut self) -> &MultiProgress {
        self.multi.get_or_insert_with(MultiProgress::new)
    }

    fn println(&mut self, text: String) {
        let _ = self.multi().println(text);
    }
}

impl View for TtyView {
    fn event(&mut self, event: &EngineEvent) {
        match event {
            EngineEvent::RunStarted { run_id, pipeline, .. } => self.println(format!("run {run_id}: pipeline {pipeline}")),
            EngineEvent::BlockQueued { block } => {
                let bar = self.multi().add(ProgressBar::new_spinner());
                bar.set_style(ProgressStyle::with_template("{spinner} {prefix:30} {msg}").unwrap());
                bar.set_prefix(block.clone());
                bar.set_message("queued");
                self.bars.insert(block.clone(), bar);
            }
            EngineEvent::Stale { block, causes } => {
                if let Some(bar) = self.bars.get(block) {
                    bar.set_message(format!("stale: {}", causes.join("; ")));
                }
            }
            EngineEvent::BlockStarted { block, attempt } => {
                if let Some(bar) = self.bars.get(block) {
                    bar.set_style(ProgressStyle::with_template("{spinner} {prefix:30} {msg} {elapsed}").unwrap());
                    bar.reset_elapsed();
                    bar.enable_steady_tick(Duration::from_millis(100));
                    bar.set_message(if *attempt > 1 { format!("running (attempt {attempt})") } else { "running".to_owned() });
                }
            }
            EngineEvent::Stream { block, text, .. } => {
                for line in text.lines() {
                    self.println(format!("{block} | {line}"));
                }
            }
            EngineEvent::BlockRetrying { block, attempt, delay_s, error } => {
                self.println(format!("{block}: attempt {attempt} failed ({error}); retrying in {delay_s:.1}s"))
            }
            EngineEvent::BlockFinished { block, status, .. } => {
                for line in failure_lines(event) {
                    self.println(line);
                }
                if let Some(bar) = self.bars.get(block) {
                    let mark = match status {
                        BlockStatus::Succeeded | BlockStatus::Reused => "✓",
                        BlockStatus::Failed => "✗",
                        _ => "-",
                    };
                    bar.set_style(ProgressStyle::with_template("{prefix:32} {msg}").unwrap());
                    bar.set_prefix(format!("{mark} {block}"));
                    let line = finished_line(event).unwrap_or_default();
                    bar.finish_with_message(line.split_once(": ").map_or(line.clone(), |it| it.1.to_owned()));
                }
            }
            EngineEvent::WorkerLog { text } => self.println(format!("worker: {text}")),
            EngineEvent::RunFinished { .. } => {}
        }
    }

    fn done(&mut self) {
        for bar in self.bars.values() {
            if !bar.is_finished() {
                bar.finish();
            }
        }
    }
}

fn print_summary(record: &RunRecord) {
    let secs = |block: &pipeline::runrecord::BlockRun| -> String {
        let parse = |text: &Option<String>| text.as_deref().and_then(|it| chrono::DateTime::parse_from_rfc3339(it).ok());
        match (parse(&block.started_at), parse(&block.finished_at)) {
            (Some(start), Some(end)) if matches!(block.status, BlockStatus::Succeeded | BlockStatus::Failed) => {
                format!("{:.1}s", (end - start).num_milliseconds() as f64 / 1000.0)
            }
            _ => "-".to_owned(),
        }
    };
    let rows: Vec<[String; 6]> = record
        .blocks
        .iter()
        .map(|block| {
            let tests = if block.tests.is_empty() {
                "-".to_owned()
            } else {
                format!("{}/{}", block.tests.iter().filter(|it| it.passed).count(), block.tests.len())
            };
            [
                block.uuid.clone(),
                status_word(block.status).to_owned(),
                block.attempts.to_string(),
                block.rows.map_or("-".to_owned(), |it| it.to_string()),
                secs(block),
                tests,
            ]
        })
        .collect();
    let header = ["block", "status", "attempts", "rows", "time", "tests"].map(str::to_owned);
    let mut widths = header.clone().map(|it| it.chars().count());
    for row in &rows {
        for (idx, cell) in row.iter().enumerate() {
            widths[idx] = widths[idx].max(cell.chars().count());
        }
    }
    let line =
        |row: &[String; 6]| row.iter().enumerate().map(|(idx, cell)| format!("{cell:<w$}", w = widths[idx])).collect::<Vec<_>>().join("  ");
    println!();
    println!("{}", line(&header).trim_end());
    for row in &rows {
        println!("{}", line(row).trim_end());
    }
    let status = match record.status {
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled => "cancelled",
        RunStatus::Running => "running",
    };
    println!("run {} {status}", record.run_id);
}
