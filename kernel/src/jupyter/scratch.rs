//! The Python worker that runs scratch cells (`exec` in its scratch namespace), completes
//! names, and forwards `input()` to the notebook. Block cells run through the engine instead.
//!
//! The engine's `python::Worker` has no `exec`/`complete` and answers `input()` with EOF, so
//! this is a second, small client of the same protocol (`kernel/python/PROTOCOL.md`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::engine::python::{Frame, read_frame, worker_dir, write_frame};
use crate::engine::store::{Output, Value, frame_to_ipc_stream};

/// How long code gets to stop after SIGINT before its worker is killed and replaced.
pub const INTERRUPT_GRACE: Duration = Duration::from_millis(1500);

/// Shared with the control channel: who to interrupt, and whether an interrupt is pending.
#[derive(Default)]
pub struct Interrupt {
    /// The worker's pid while it runs a request (0: none).
    pub pid: AtomicU32,
    pub requested: AtomicBool,
    /// Set for engine runs (the engine interrupts its own worker and kills it after a grace).
    pub cancel: Arc<AtomicBool>,
}

impl Interrupt {
    pub fn fire(&self) {
        self.requested.store(true, Ordering::SeqCst);
        self.cancel.store(true, Ordering::SeqCst);
        let pid = self.pid.load(Ordering::SeqCst);
        if pid != 0 {
            // A pid we spawned; the worker turns SIGINT into KeyboardInterrupt in user code.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGINT);
        }
    }

    pub fn reset(&self) {
        self.requested.store(false, Ordering::SeqCst);
        self.cancel.store(false, Ordering::SeqCst);
    }
}

enum Incoming {
    Frame(Frame),
    Closed,
}

pub enum ExecOutcome {
    Ok {
        data: Option<serde_json::Map<String, Json>>,
    },
    Error {
        ename: String,
        evalue: String,
        traceback: Vec<String>,
    },
    /// The worker died (crash, `os._exit`, killed after an ignored interrupt).
    Lost {
        message: String,
    },
}

pub struct ScratchWorker {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Incoming>,
    next_id: i64,
    lost: bool,
    pub hello: Json,
}

impl ScratchWorker {
    pub fn spawn(python: &Path) -> anyhow::Result<ScratchWorker> {
        let dir = worker_dir()?;
        let mut child = Command::new(python)
            .args(["-u", "-m", "wand_worker"])
            .env("PYTHONPATH", &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| anyhow::format_err!("cannot start the Python interpreter `{}`: {err}", python.display()))?;
        let (tx, incoming) = mpsc::channel();
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut reader = BufReader::with_capacity(1 << 16, &mut stdout);
            loop {
                match read_frame(&mut reader) {
                    Ok(Some(frame)) => {
                        if tx.send(Incoming::Frame(frame)).is_err() {
                            return;
                        }
                    }
                    _ => {
                        let _ = tx.send(Incoming::Closed);
                        return;
                    }
                }
            }
        });
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                tracing::info!(target: "wand::worker", "{line}");
            }
        });
        let stdin = child.stdin.take().unwrap();
        let mut worker = ScratchWorker { child, stdin, incoming, next_id: 0, lost: false, hello: Json::Null };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match worker.incoming.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Incoming::Frame(frame)) if frame.header["type"] == "hello" => {
                    worker.hello = frame.header;
                    return Ok(worker);
                }
                Ok(Incoming::Frame(_)) => {}
                Ok(Incoming::Closed) | Err(_) => {
                    let status = worker.child.wait().map(|it| it.to_string()).unwrap_or_default();
                    anyhow::bail!(
                        "the Python worker (`{}`) exited before starting ({status}); it needs pandas and pyarrow \
                         (set WAND_PYTHON to an interpreter that has them)",
                        python.display()
                    );
                }
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_alive(&mut self) -> bool {
        !self.lost && matches!(self.child.try_wait(), Ok(None))
    }

    fn fresh_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    fn send(&mut self, header: &Json, payload: &[u8]) -> bool {
        write_frame(&mut self.stdin, header, payload).is_ok()
    }

    fn lose(&mut self, what: &str) -> String {
        self.lost = true;
        let _ = self.child.kill();
        let status = self.child.wait().map(|it| it.to_string()).unwrap_or_default();
        format!("the Python worker was lost {what} ({status}); a new one starts with the next cell (scratch variables are gone)")
    }

    /// Waits for the final reply to `id`, passing streams and input requests on. After an
    /// interrupt the worker gets [`INTERRUPT_GRACE`] to answer, then it is killed.
    fn wait(
        &mut self,
        id: i64,
        interrupt: &Interrupt,
        on_stream: &mut dyn FnMut(&str, &str),
        on_input: &mut dyn FnMut(&str, bool) -> Option<String>,
        on_display: &mut dyn FnMut(&Json),
    ) -> Result<Frame, String> {
        let mut interrupted_at: Option<Instant> = None;
        loop {
            if interrupted_at.is_none() && interrupt.requested.load(Ordering::SeqCst) {
                interrupted_at = Some(Instant::now());
            }
            if interrupted_at.is_some_and(|at| at.elapsed() > INTERRUPT_GRACE) {
                return Err(self.lose("after it ignored an interrupt"));
            }
            match self.incoming.recv_timeout(Duration::from_millis(20)) {
                Ok(Incoming::Frame(frame)) => {
                    if frame.header["id"] != id {
                        continue;
                    }
                    match frame.header["type"].as_str().unwrap_or_default() {
                        "stream" => {
                            on_stream(frame.header["name"].as_str().unwrap_or("stdout"), frame.header["text"].as_str().unwrap_or_default())
                        }
                        "input_request" => {
                            let prompt = frame.header["prompt"].as_str().unwrap_or_default().to_owned();
                            let value = on_input(&prompt, frame.header["password"].as_bool().unwrap_or(false));
                            if !self.send(&json!({"type": "input_reply", "id": id, "value": value}), &[]) {
                                return Err(self.lose("while answering input()"));
                            }
                        }
                        // `display()` and `clear_output()` in scratch code (PROTOCOL.md 6.15).
                        "display" | "clear_output" => on_display(&frame.header),
                        "io_request" => {
                            // mage_ai.io in scratch code: the database work happens on the Rust
                            // side, as for blocks (PROTOCOL.md 6.14).
                            let (reply, payload) =
                                crate::engine::postgres::handle_io_request(&frame.header, &frame.payload, &interrupt.requested);
                            if !self.send(&reply, &payload) {
                                return Err(self.lose("while answering a mage_ai.io request"));
                            }
                        }
                        _ => return Ok(frame),
                    }
                }
                Ok(Incoming::Closed) | Err(RecvTimeoutError::Disconnected) => return Err(self.lose("while running the cell")),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    pub fn exec(
        &mut self,
        code: &str,
        interrupt: &Interrupt,
        on_stream: &mut dyn FnMut(&str, &str),
        on_input: &mut dyn FnMut(&str, bool) -> Option<String>,
        on_display: &mut dyn FnMut(&Json),
    ) -> ExecOutcome {
        let id = self.fresh_id();
        if !self.send(&json!({"type": "exec", "id": id, "code": code}), &[]) {
            return ExecOutcome::Lost { message: self.lose("while sending the cell") };
        }
        match self.wait(id, interrupt, on_stream, on_input, on_display) {
            Err(message) => ExecOutcome::Lost { message },
            Ok(frame) => {
                let header = frame.header;
                if header["type"] == "exec_result" && header["status"] == "ok" {
                    let data = header["execute_result"]["data"].as_object().cloned();
                    return ExecOutcome::Ok { data };
                }
                let error = if header["type"] == "exec_result" { &header["error"] } else { &header };
                ExecOutcome::Error {
                    ename: error["ename"].as_str().unwrap_or("Exception").to_owned(),
                    evalue: error["evalue"].as_str().or(error["message"].as_str()).unwrap_or_default().to_owned(),
                    traceback: error["traceback"]
                        .as_array()
                        .map(|lines| lines.iter().filter_map(|it| it.as_str().map(str::to_owned)).collect())
                        .unwrap_or_default(),
                }
            }
        }
    }

    /// Runs `code` for the kernel's own use (inspect, user_expressions): no input, no
    /// displays, no interrupt; returns what it printed to stdout.
    pub fn exec_capturing(&mut self, code: &str) -> (ExecOutcome, String) {
        let mut text = String::new();
        let outcome = self.exec(
            code,
            &Interrupt::default(),
            &mut |stream, chunk| {
                if stream == "stdout" {
                    text.push_str(chunk)
                }
            },
            &mut |_, _| None,
            &mut |_| {},
        );
        (outcome, text)
    }

    /// `(matches, cursor_start, cursor_end)` in characters.
    pub fn complete(&mut self, code: &str, cursor_pos: usize) -> Option<(Vec<String>, usize, usize)> {
        let id = self.fresh_id();
        if !self.send(&json!({"type": "complete", "id": id, "code": code, "cursor_pos": cursor_pos}), &[]) {
            return None;
        }
        let interrupt = Interrupt::default();
        let frame = self.wait(id, &interrupt, &mut |_, _| {}, &mut |_, _| None, &mut |_| {}).ok()?;
        let header = frame.header;
        let matches = header["matches"].as_array()?.iter().filter_map(|it| it.as_str().map(str::to_owned)).collect();
        Some((matches, header["cursor_start"].as_u64()? as usize, header["cursor_end"].as_u64()? as usize))
    }

    /// Binds a block's outputs in the scratch namespace (under its uuid, when an identifier).
    pub fn put_value(&mut self, key: &str, outputs: &[Output]) -> anyhow::Result<()> {
        let interrupt = Interrupt::default();
        let mut sends: Vec<(Json, Vec<u8>)> = Vec::new();
        if outputs.is_empty() {
            sends.push((json!({"type": "put_value", "key": key, "encoding": "json", "index": 0, "count": 0}), Vec::new()));
        }
        for (idx, output) in outputs.iter().enumerate() {
            let (encoding, payload) = match &output.value {
                Value::Frame(df) => ("arrow", frame_to_ipc_stream(df)?),
                Value::Json(value) => ("json", serde_json::to_vec(value)?),
                Value::Opaque { .. } => anyhow::bail!("the output of `{key}` is a Python object Wand cannot pass on"),
            };
            sends.push((json!({"type": "put_value", "key": key, "encoding": encoding, "index": idx, "count": outputs.len()}), payload));
        }
        for (mut header, payload) in sends {
            let id = self.fresh_id();
            header["id"] = json!(id);
            if !self.send(&header, &payload) {
                anyhow::bail!(self.lose("while sending a value"));
            }
            let frame = self.wait(id, &interrupt, &mut |_, _| {}, &mut |_, _| None, &mut |_| {}).map_err(|it| anyhow::format_err!(it))?;
            if frame.header["type"] != "ok" {
                anyhow::bail!("the worker refused the output of `{key}`: {}", frame.header["message"].as_str().unwrap_or("unknown error"));
            }
        }
        Ok(())
    }
}

impl Drop for ScratchWorker {
    fn drop(&mut self) {
        let _ = write_frame(&mut self.stdin, &json!({"type": "shutdown"}), &[]);
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
