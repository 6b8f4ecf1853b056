//! The Python worker client (protocol: `kernel/python/PROTOCOL.md`): finding an interpreter,
//! unpacking the embedded worker, spawning it, framing, and running blocks with timeouts,
//! interrupts and crash detection. A lost worker fails the request; the caller spawns a new one.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value as Json, json};

use super::store::{Output, Value, frame_to_ipc_stream};

include!(concat!(env!("OUT_DIR"), "/worker_files.rs"));

/// How long a block gets to stop after an interrupt before its worker is killed.
const INTERRUPT_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Frame {
    pub header: Json,
    pub payload: Vec<u8>,
}

pub fn write_frame(w: &mut impl Write, header: &Json, payload: &[u8]) -> std::io::Result<()> {
    let header = serde_json::to_vec(header)?;
    let mut buf = Vec::with_capacity(12 + header.len() + payload.len());
    buf.extend_from_slice(&(header.len() as u32).to_be_bytes());
    buf.extend_from_slice(&header);
    buf.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf)?;
    w.flush()
}

/// One frame, `None` at a clean end of stream between frames.
pub fn read_frame(r: &mut impl Read) -> std::io::Result<Option<Frame>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    let mut header = vec![0u8; u32::from_be_bytes(len) as usize];
    r.read_exact(&mut header)?;
    let mut plen = [0u8; 8];
    r.read_exact(&mut plen)?;
    let mut payload = vec![0u8; u64::from_be_bytes(plen) as usize];
    r.read_exact(&mut payload)?;
    let header = serde_json::from_slice(&header).map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))?;
    Ok(Some(Frame { header, payload }))
}

/// The interpreter for Python blocks: `WAND_PYTHON`, else the project's virtual environment
/// (`.venv`, `venv`, or a `.venv` in a folder above it), else `python3`.
pub fn find_python(project_root: &Path) -> PathBuf {
    if let Some(python) = std::env::var_os("WAND_PYTHON").filter(|it| !it.is_empty()) {
        return PathBuf::from(python);
    }
    let candidates = [project_root.join(".venv"), project_root.join("venv")]
        .into_iter()
        .chain(project_root.ancestors().skip(1).map(|dir| dir.join(".venv")));
    for venv in candidates {
        let python = venv.join("bin").join("python");
        if python.is_file() {
            return python;
        }
    }
    PathBuf::from("python3")
}

/// Writes the embedded worker files to a cache folder keyed by their hash; returns the folder
/// to put on `PYTHONPATH`.
pub fn worker_dir() -> anyhow::Result<PathBuf> {
    let mut hasher = blake3::Hasher::new();
    for (path, text) in WORKER_FILES {
        hasher.update(path.as_bytes());
        hasher.update(&[0]);
        hasher.update(text.as_bytes());
        hasher.update(&[0]);
    }
    let hash = hasher.finalize().to_hex()[..16].to_owned();
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|it| !it.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    unpack_worker(&cache, &hash)
}

fn unpack_worker(cache: &Path, hash: &str) -> anyhow::Result<PathBuf> {
    let dir = cache.join("wand").join(format!("worker-{hash}"));
    if dir.join(".complete").is_file() {
        return Ok(dir);
    }
    // Unique per call: threads of one process (a kernel, the tests) may unpack at the same time.
    static UNPACKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unpack = UNPACKS.fetch_add(1, Ordering::Relaxed);
    let tmp = cache.join("wand").join(format!("worker-{hash}.tmp-{}-{unpack}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    for (path, text) in WORKER_FILES {
        let dest = tmp.join(path);
        std::fs::create_dir_all(dest.parent().unwrap()).with_context(|| format!("cannot create {}", tmp.display()))?;
        std::fs::write(&dest, text).with_context(|| format!("cannot write {}", dest.display()))?;
    }
    std::fs::write(tmp.join(".complete"), "")?;
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another wand unpacked it first.
        let _ = std::fs::remove_dir_all(&tmp);
        if !dir.join(".complete").is_file() {
            anyhow::bail!("cannot unpack the Python worker into {}", dir.display());
        }
    }
    Ok(dir)
}

/// Frames the worker writes to Parquet files itself, in the background, while it already runs
/// its next request (`output_stored`, PROTOCOL.md 6.6.6). The reader thread reports them here,
/// so a block waits for its files without holding the worker.
#[derive(Default)]
pub struct StoredFiles {
    state: Mutex<FilesState>,
    changed: Condvar,
}

/// What became of a frame the worker was to write (`output_stored`).
#[derive(Debug)]
pub enum StoredFile {
    /// The file, and the shape of the table in it.
    Written { path: PathBuf, rows: u64, columns: u64 },
    /// Arrow could not convert the frame (a mixed-type object column, say): it stays in the
    /// worker only, like any value that is not a frame.
    Kept { repr: String, conversion_error: String },
}

#[derive(Default)]
struct FilesState {
    /// (request id, output index) -> what became of the frame, or why it was not written.
    reported: HashMap<(i64, u64), Result<StoredFile, String>>,
    /// Set when the worker is gone: files not reported by then never will be.
    lost: Option<String>,
}

impl StoredFiles {
    fn report(&self, header: &Json) {
        let (Some(id), Some(index)) = (header["id"].as_i64(), header["index"].as_u64()) else { return };
        let text = |field: &str| header[field].as_str().unwrap_or_default().to_owned();
        let outcome = if let Some(error) = header["error"].as_str() {
            Err(error.to_owned())
        } else if header["conversion_error"].is_string() {
            Ok(StoredFile::Kept { repr: text("repr"), conversion_error: text("conversion_error") })
        } else {
            Ok(StoredFile::Written {
                path: PathBuf::from(text("path")),
                rows: header["rows"].as_u64().unwrap_or_default(),
                columns: header["columns"].as_u64().unwrap_or_default(),
            })
        };
        self.state.lock().unwrap().reported.insert((id, index), outcome);
        self.changed.notify_all();
    }

    fn lose(&self, why: &str) {
        self.state.lock().unwrap().lost.get_or_insert_with(|| why.to_owned());
        self.changed.notify_all();
    }

    /// Waits until output `index` of request `id` is written (or found not convertible).
    /// Gives up when `cancel` is set (the file may still be written; the caller deletes its
    /// folder).
    pub fn wait(&self, id: i64, index: u64, cancel: &AtomicBool) -> anyhow::Result<StoredFile> {
        let mut state = self.state.lock().unwrap();
        loop {
            if let Some(outcome) = state.reported.remove(&(id, index)) {
                return outcome.map_err(|error| anyhow::format_err!("the Python worker could not write output {index}: {error}"));
            }
            if let Some(why) = &state.lost {
                anyhow::bail!("the Python worker was lost before it wrote output {index} ({why})");
            }
            if cancel.load(Ordering::SeqCst) {
                anyhow::bail!("the run was cancelled while output {index} was being written");
            }
            state = self.changed.wait_timeout(state, Duration::from_millis(50)).unwrap().0;
        }
    }
}

enum Incoming {
    Frame(Frame),
    Stderr(String),
    Closed(Option<String>),
}

/// What happened to a `run_block` request.
pub enum RunReply {
    /// `block_result` header and one `output` frame per output sent inline (the outputs the
    /// worker writes to files, with encoding `parquet`, are awaited through
    /// [`Worker::stored_files`] with the request's `id`).
    Done { id: i64, result: Json, outputs: Vec<Frame> },
    /// The worker died or broke the protocol; it must be replaced.
    Lost { message: String },
}

/// Why a request was interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupted {
    Cancelled,
    TimedOut,
}

pub struct Worker {
    /// `None` only while dropping.
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    incoming: Receiver<Incoming>,
    pub hello: Json,
    pub python: PathBuf,
    /// Value-store keys the worker holds (block uuids).
    pub keys: HashSet<String>,
    files: Arc<StoredFiles>,
    next_id: i64,
    lost: bool,
}

impl Worker {
    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("the child is taken only when the worker is dropped")
    }

    /// Spawns a worker and waits for its `hello`; fails with the exact fix when pandas or
    /// pyarrow are missing.
    pub fn spawn(python: &Path, worker_dir: &Path, log: &mut dyn FnMut(String)) -> anyhow::Result<Worker> {
        let mut child = Command::new(python)
            .args(["-u", "-m", "wand_worker"])
            .env("PYTHONPATH", worker_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a Ctrl-C in the terminal reaches wand, which interrupts
            // the worker through the protocol.
            .process_group(0)
            .spawn()
            .map_err(|err| anyhow::format_err!("cannot start the Python interpreter `{}`: {err}\n{}", python.display(), fix_hint()))?;
        let (tx, incoming) = mpsc::channel();
        let mut stdout = child.stdout.take().unwrap();
        let frames = tx.clone();
        let files = Arc::new(StoredFiles::default());
        let reported = files.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::with_capacity(1 << 16, &mut stdout);
            // Reads until the worker exits, even once nobody takes frames any more: a block may
            // still wait for a file the worker is writing.
            loop {
                match read_frame(&mut reader) {
                    Ok(Some(frame)) if frame.header["type"] == "output_stored" => reported.report(&frame.header),
                    Ok(Some(frame)) => {
                        let _ = frames.send(Incoming::Frame(frame));
                    }
                    Ok(None) => {
                        reported.lose("it exited");
                        let _ = frames.send(Incoming::Closed(None));
                        return;
                    }
                    Err(err) => {
                        reported.lose(&format!("its output broke the protocol: {err}"));
                        let _ = frames.send(Incoming::Closed(Some(err.to_string())));
                        return;
                    }
                }
            }
        });
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if tx.send(Incoming::Stderr(line)).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut worker = Worker {
            child: Some(child),
            stdin,
            incoming,
            hello: Json::Null,
            python: python.to_path_buf(),
            keys: HashSet::new(),
            files,
            next_id: 1,
            lost: false,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut stderr_text = String::new();
        loop {
            match worker.incoming.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Incoming::Frame(frame)) if frame.header["type"] == "hello" => {
                    worker.hello = frame.header;
                    stderr_text.lines().for_each(|line| log(line.to_owned()));
                    break;
                }
                Ok(Incoming::Frame(_)) => {}
                Ok(Incoming::Stderr(line)) => {
                    stderr_text.push_str(&line);
                    stderr_text.push('\n');
                }
                Ok(Incoming::Closed(_)) | Err(RecvTimeoutError::Disconnected) => {
                    let status = worker.child().wait().ok();
                    // Collect what it said before dying.
                    while let Ok(Incoming::Stderr(line)) = worker.incoming.recv_timeout(Duration::from_millis(200)) {
                        stderr_text.push_str(&line);
                        stderr_text.push('\n');
                    }
                    let missing: Vec<&str> = ["pandas", "pyarrow"]
                        .into_iter()
                        .filter(|name| stderr_text.contains(&format!("No module named '{name}'")))
                        .collect();
                    if !missing.is_empty() {
                        anyhow::bail!(
                            "the Python interpreter `{}` cannot import {}, which Python blocks need\n{}",
                            python.display(),
                            missing.join(" and "),
                            fix_hint()
                        );
                    }
                    anyhow::bail!(
                        "the Python worker (`{}`) exited before starting ({}):\n{}\n{}",
                        python.display(),
                        status.map_or("no status".to_owned(), |it| it.to_string()),
                        stderr_text.trim_end(),
                        fix_hint()
                    );
                }
                Err(RecvTimeoutError::Timeout) => anyhow::bail!("the Python worker (`{}`) did not start within 120 s", python.display()),
            }
        }
        let missing: Vec<&str> = ["pandas", "pyarrow"].into_iter().filter(|name| worker.hello[*name].is_null()).collect();
        if !missing.is_empty() {
            anyhow::bail!(
                "the Python interpreter `{}` cannot import {}, which Python blocks need\n{}",
                python.display(),
                missing.join(" and "),
                fix_hint()
            );
        }
        Ok(worker)
    }

    /// The files this worker writes for `run_block` requests that named an `output_dir`.
    pub fn stored_files(&self) -> Arc<StoredFiles> {
        self.files.clone()
    }

    pub fn is_alive(&mut self) -> bool {
        !self.lost && matches!(self.child().try_wait(), Ok(None))
    }

    fn send(&mut self, header: &Json, payload: &[u8]) -> std::io::Result<()> {
        match self.stdin.as_mut() {
            Some(stdin) => write_frame(stdin, header, payload),
            None => Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "worker stdin closed")),
        }
    }

    fn fresh_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    fn lose(&mut self, what: &str) -> String {
        self.lost = true;
        let _ = self.child().kill();
        let status = self.child().wait().map(|it| it.to_string()).unwrap_or_default();
        format!("the Python worker was lost {what} ({status}); a new worker runs the next block")
    }

    /// The worker's process id (`None` once it is being dropped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Empties the worker's value store (`delete_values`), for a new run in a kept worker.
    pub fn forget_values(&mut self, log: &mut dyn FnMut(String)) -> anyhow::Result<()> {
        let id = self.fresh_id();
        self.send(&json!({"type": "delete_values", "id": id}), &[])?;
        self.wait_ok(id, log)?;
        self.keys.clear();
        Ok(())
    }

    /// Tells a kept worker that run `run_id` is over: it forgets the run's `context` dict.
    pub fn end_run(&mut self, run_id: &str, log: &mut dyn FnMut(String)) -> anyhow::Result<()> {
        let id = self.fresh_id();
        self.send(&json!({"type": "end_run", "id": id, "run_id": run_id}), &[])?;
        self.wait_ok(id, log)
    }

    /// Stores a block's outputs in the worker under `key`.
    pub fn put_value(&mut self, key: &str, outputs: &[Output], log: &mut dyn FnMut(String)) -> anyhow::Result<()> {
        if outputs.is_empty() {
            let id = self.fresh_id();
            self.send(&json!({"type": "put_value", "id": id, "key": key, "encoding": "json", "index": 0, "count": 0}), &[])?;
            return self.wait_ok(id, log);
        }
        for (idx, output) in outputs.iter().enumerate() {
            let (encoding, payload) = match &output.value {
                Value::Frame(df) => ("arrow", frame_to_ipc_stream(df)?),
                Value::Json(value) => ("json", serde_json::to_vec(value)?),
                Value::Opaque { .. } => {
                    anyhow::bail!("the output of `{key}` is a Python object that the worker no longer holds; run `{key}` again")
                }
            };
            let id = self.fresh_id();
            let header = json!({"type": "put_value", "id": id, "key": key, "encoding": encoding, "index": idx, "count": outputs.len()});
            self.send(&header, &payload)?;
            self.wait_ok(id, log)?;
        }
        self.keys.insert(key.to_owned());
        Ok(())
    }

    fn wait_ok(&mut self, id: i64, log: &mut dyn FnMut(String)) -> anyhow::Result<()> {
        loop {
            match self.incoming.recv() {
                Ok(Incoming::Frame(frame)) if frame.header["id"] == id => {
                    return match frame.header["type"].as_str() {
                        Some("ok") => Ok(()),
                        _ => Err(anyhow::format_err!(
                            "the Python worker refused the request: {}",
                            frame.header["message"].as_str().unwrap_or("unknown error")
                        )),
                    };
                }
                Ok(Incoming::Frame(_)) => {}
                Ok(Incoming::Stderr(line)) => log(line),
                Ok(Incoming::Closed(_)) | Err(_) => anyhow::bail!(self.lose("while receiving a value")),
            }
        }
    }

    /// Runs one block. `request` holds the `run_block` fields (without `type` and `id`).
    pub fn run_block(
        &mut self,
        mut request: Json,
        on_stream: &mut dyn FnMut(&str, &str),
        log: &mut dyn FnMut(String),
        cancel: &AtomicBool,
        deadline: Option<Instant>,
    ) -> (RunReply, Option<Interrupted>) {
        let id = self.fresh_id();
        request["type"] = json!("run_block");
        request["id"] = json!(id);
        if let Err(err) = self.send(&request, &[]) {
            return (RunReply::Lost { message: self.lose(&format!("while sending the block ({err})")) }, None);
        }
        let mut interrupted: Option<(Interrupted, Instant)> = None;
        let mut result: Option<Json> = None;
        let mut outputs = Vec::new();
        loop {
            if let Some(result) = &result
                && outputs.len() >= inline_outputs(result)
            {
                break;
            }
            if result.is_none() && interrupted.is_none() {
                let why = if cancel.load(Ordering::SeqCst) {
                    Some(Interrupted::Cancelled)
                } else if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    Some(Interrupted::TimedOut)
                } else {
                    None
                };
                if let Some(why) = why {
                    self.interrupt();
                    interrupted = Some((why, Instant::now()));
                }
            }
            if let Some((why, since)) = interrupted
                && result.is_none()
                && since.elapsed() > INTERRUPT_GRACE
            {
                let message = self.lose("after it ignored an interrupt for 5 s");
                return (RunReply::Lost { message }, Some(why));
            }
            match self.incoming.recv_timeout(Duration::from_millis(50)) {
                Ok(Incoming::Frame(frame)) => {
                    if frame.header["id"] != id {
                        continue;
                    }
                    match frame.header["type"].as_str().unwrap_or_default() {
                        "stream" => {
                            on_stream(frame.header["name"].as_str().unwrap_or("stdout"), frame.header["text"].as_str().unwrap_or_default())
                        }
                        "input_request" => {
                            let _ = self.send(&json!({"type": "input_reply", "id": id, "value": null}), &[]);
                        }
                        "io_request" => {
                            // mage_ai.io in the block: the database work happens here (PROTOCOL.md 6.14).
                            let (reply, payload) = super::postgres::handle_io_request(&frame.header, &frame.payload, cancel);
                            let _ = self.send(&reply, &payload);
                        }
                        "block_result" => result = Some(frame.header),
                        "output" => outputs.push(frame),
                        "error" => {
                            let message = frame.header["message"].as_str().unwrap_or("unknown error").to_owned();
                            let result = json!({"status": "error", "outputs": [], "tests": [],
                                "error": {"ename": "WorkerError", "evalue": message, "traceback": [], "lineno": null}});
                            return (RunReply::Done { id, result, outputs: Vec::new() }, interrupted.map(|it| it.0));
                        }
                        _ => {}
                    }
                }
                Ok(Incoming::Stderr(line)) => log(line),
                Ok(Incoming::Closed(reason)) => {
                    let what = match reason {
                        Some(reason) => format!("while running the block: its output broke the protocol ({reason})"),
                        None => "while running the block".to_owned(),
                    };
                    let message = self.lose(&what);
                    return (RunReply::Lost { message }, interrupted.map(|it| it.0));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let message = self.lose("while running the block");
                    return (RunReply::Lost { message }, interrupted.map(|it| it.0));
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        (RunReply::Done { id, result: result.unwrap_or_default(), outputs }, interrupted.map(|it| it.0))
    }

    /// Interrupts the running request: SIGINT to the worker (its own process group, so nothing
    /// else gets it), which also wakes blocking calls such as `time.sleep`; the protocol's
    /// `interrupt` message when `kill` cannot be run.
    fn interrupt(&mut self) {
        let signalled = Command::new("kill")
            .args(["-s", "INT", &self.child().id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !signalled {
            let _ = self.send(&json!({"type": "interrupt"}), &[]);
        }
    }

    /// Lines the worker wrote to its stderr since the last call.
    pub fn drain_log(&mut self, log: &mut dyn FnMut(String)) {
        while let Ok(message) = self.incoming.try_recv() {
            match message {
                Incoming::Stderr(line) => log(line),
                Incoming::Closed(_) => self.lost = true,
                Incoming::Frame(_) => {}
            }
        }
    }
}

/// How many `output` messages follow a `block_result`: one per output not written to a file.
fn inline_outputs(result: &Json) -> usize {
    result["outputs"].as_array().map_or(0, |outputs| outputs.iter().filter(|it| it["encoding"] != "parquet").count())
}

impl Drop for Worker {
    /// Asks the worker to exit and reaps it on a thread of its own: a worker freeing large
    /// frames can take a while to exit, and nobody waits for that (a stuck one is killed after
    /// two seconds; when Wand itself exits first, the orphan finishes exiting on its own).
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = write_frame(&mut stdin, &json!({"type": "shutdown"}), &[]);
        }
        let Some(mut child) = self.child.take() else { return };
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        });
    }
}

fn fix_hint() -> String {
    "fix: create a virtual environment with pandas and pyarrow in the project folder:\n    \
     python3 -m venv .venv && .venv/bin/pip install pandas pyarrow\n\
     or point Wand at a Python that has them: WAND_PYTHON=/path/to/python wand run ..."
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &json!({"type": "ping", "id": 3}), b"abc").unwrap();
        let mut cursor = std::io::Cursor::new(buf);
        let frame = read_frame(&mut cursor).unwrap().unwrap();
        assert_eq!(frame.header, json!({"type": "ping", "id": 3}));
        assert_eq!(frame.payload, b"abc");
        assert!(read_frame(&mut cursor).unwrap().is_none());
    }

    #[test]
    fn threads_unpacking_the_worker_at_once_all_get_it() {
        let cache = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8).map(|_| scope.spawn(|| unpack_worker(cache.path(), "test").unwrap())).collect();
            handles.into_iter().map(|it| it.join().unwrap()).collect()
        });
        assert!(dirs.iter().all(|dir| dir == &dirs[0] && dir.join(".complete").is_file()));
        assert!(dirs[0].join("wand_worker/__main__.py").is_file());
        let left: Vec<_> = std::fs::read_dir(cache.path().join("wand")).unwrap().flatten().map(|it| it.file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("worker-test")], "temporary folders left behind");
    }

    #[test]
    fn embeds_the_worker_and_the_shim() {
        let names: Vec<&str> = WORKER_FILES.iter().map(|(path, _)| *path).collect();
        assert!(names.contains(&"wand_worker/__main__.py"), "{names:?}");
        assert!(names.contains(&"mage_ai/data_preparation/decorators.py"), "{names:?}");
    }
}
