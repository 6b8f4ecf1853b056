//! The kernel's event loop (evcxr's shape, style.md 4.1): one task per receiving socket,
//! execution on a blocking thread behind a mutex, iopub written by whoever publishes under one
//! lock, so its order is the order things happened. Bad messages are logged and dropped;
//! nothing a client sends ends the loop.
//!
//! Start-up does the least it can before the sockets answer: read the connection file, bind,
//! spawn the loops. The project is read afterwards on a blocking thread, so kernel_info,
//! heartbeats and control requests are answered while it loads; the requests that use the
//! session (execute, complete, inspect) wait for the load.

use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use zeromq::{PubSocket, RepSocket, RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

use super::cells;
use super::scratch::Interrupt;
use super::session::{Frontend, Session};
use super::wire::{self, DisplayData, ErrorContent, ExecuteResult, Message, MimeBundle, Signer, Transient};

#[derive(Debug, Deserialize)]
pub struct ConnectionInfo {
    pub ip: String,
    pub transport: String,
    pub shell_port: u16,
    pub iopub_port: u16,
    pub stdin_port: u16,
    pub control_port: u16,
    pub hb_port: u16,
    #[serde(default)]
    pub key: String,
    #[serde(default = "default_scheme")]
    pub signature_scheme: String,
}

fn default_scheme() -> String {
    "hmac-sha256".to_owned()
}

impl ConnectionInfo {
    fn endpoint(&self, port: u16) -> String {
        format!("{}://{}:{port}", self.transport, self.ip)
    }
}

/// Shared by the socket tasks.
struct Kernel {
    session_id: String,
    signer: Signer,
    /// Messages are sent by whoever publishes them, in the order of the calls: the shell and
    /// control tasks await the lock, a cell's blocking thread blocks on it (`publish_blocking`).
    /// Sending from the publisher saves a wake-up of a socket task per message.
    iopub: tokio::sync::Mutex<PubSocket>,
    runtime: tokio::runtime::Handle,
    stdin: UnboundedSender<StdinRequest>,
    /// Loaded by a blocking task `serve` starts once the loops run; whoever touches it first
    /// (that task, or a request that came sooner) loads it, the others wait.
    session: LazyLock<Mutex<Session>, LoadSession>,
    interrupt: Arc<Interrupt>,
    execution_count: Mutex<u32>,
    /// This session's cells: `(execution_count, code, the execute_result's text/plain)`.
    history: Mutex<Vec<(u32, String, Option<String>)>>,
}

/// Reads the project the kernel was started in (YAML, block files through tree-sitter).
type LoadSession = Box<dyn FnOnce() -> Mutex<Session> + Send>;

struct StdinRequest {
    message: Message,
    reply: std::sync::mpsc::Sender<Option<String>>,
}

pub fn run(connection_file: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(connection_file).map_err(|err| anyhow::format_err!("cannot read {}: {err}", connection_file.display()))?;
    let info: ConnectionInfo =
        serde_json::from_str(&text).map_err(|err| anyhow::format_err!("{} is not a connection file: {err}", connection_file.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(serve(info))
}

async fn serve(info: ConnectionInfo) -> anyhow::Result<()> {
    let signer = Signer::new(&info.signature_scheme, &info.key)?;
    let mut shell = RouterSocket::new();
    shell.bind(&info.endpoint(info.shell_port)).await?;
    let mut control = RouterSocket::new();
    control.bind(&info.endpoint(info.control_port)).await?;
    let mut iopub = PubSocket::new();
    iopub.bind(&info.endpoint(info.iopub_port)).await?;
    let mut stdin = RouterSocket::new();
    stdin.bind(&info.endpoint(info.stdin_port)).await?;
    let mut heartbeat = RepSocket::new();
    heartbeat.bind(&info.endpoint(info.hb_port)).await?;
    tracing::info!("wand kernel listening on {}:{}", info.ip, info.shell_port);

    let (stdin_tx, stdin_rx) = unbounded_channel();
    let interrupt = Arc::new(Interrupt::default());
    let cwd = std::env::current_dir()?;
    let load: LoadSession = {
        let interrupt = interrupt.clone();
        Box::new(move || Mutex::new(Session::new(cwd, interrupt)))
    };
    let kernel = Arc::new(Kernel {
        session_id: uuid::Uuid::new_v4().to_string(),
        signer: signer.clone(),
        iopub: tokio::sync::Mutex::new(iopub),
        runtime: tokio::runtime::Handle::current(),
        stdin: stdin_tx,
        session: LazyLock::new(load),
        interrupt,
        execution_count: Mutex::new(0),
        history: Mutex::new(Vec::new()),
    });

    tokio::spawn(async move {
        loop {
            match heartbeat.recv().await {
                Ok(ping) => {
                    let _ = heartbeat.send(ping).await;
                }
                Err(err) => tracing::warn!("heartbeat: {err}"),
            }
        }
    });
    tokio::spawn(stdin_loop(stdin, stdin_rx, signer.clone()));
    tokio::spawn(exit_with_parent(kernel.interrupt.clone()));
    kernel.publish_status(None, "starting").await;
    {
        let kernel = kernel.clone();
        tokio::spawn(async move { control_loop(kernel, control).await });
    }
    {
        let kernel = kernel.clone();
        tokio::task::spawn_blocking(move || {
            LazyLock::force(&kernel.session);
        });
    }
    // Spawned onto a runtime worker rather than run by `block_on` on the main thread, which
    // the runtime would have to wake from another thread for every request (measured: 0.06 ms
    // less per execute round trip).
    tokio::spawn(shell_loop(kernel, shell)).await?;
    Ok(())
}

/// Ends the kernel when the process that started it (a Jupyter server, a notebook client) is
/// gone without a shutdown_request, as ipykernel's parent poller does; its workers follow when
/// their stdin closes.
async fn exit_with_parent(interrupt: Arc<Interrupt>) {
    let parent = std::os::unix::process::parent_id();
    if parent == 1 {
        return;
    }
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if std::os::unix::process::parent_id() != parent {
            tracing::info!("the parent process {parent} is gone; exiting");
            interrupt.fire();
            std::process::exit(0);
        }
    }
}

async fn stdin_loop(mut socket: RouterSocket, mut rx: UnboundedReceiver<StdinRequest>, signer: Signer) {
    while let Some(request) = rx.recv().await {
        let Some(zmq) = to_zmq(wire::encode(&request.message, &signer)) else { continue };
        if let Err(err) = socket.send(zmq).await {
            tracing::warn!("stdin: {err}");
            let _ = request.reply.send(None);
            continue;
        }
        loop {
            let Ok(zmq) = socket.recv().await else {
                let _ = request.reply.send(None);
                break;
            };
            match wire::decode(zmq.into_vec(), &signer) {
                Ok(reply) if reply.msg_type() == "input_reply" => {
                    let value = serde_json::from_value::<wire::InputReply>(reply.content).map(|it| it.value).ok();
                    let _ = request.reply.send(value);
                    break;
                }
                Ok(other) => tracing::warn!("stdin: ignoring {}", other.msg_type()),
                Err(err) => tracing::warn!("stdin: dropped a message: {err}"),
            }
        }
    }
}

fn to_zmq(frames: Vec<Bytes>) -> Option<ZmqMessage> {
    ZmqMessage::try_from(frames).ok()
}

async fn recv(socket: &mut RouterSocket, signer: &Signer, channel: &str) -> Option<Message> {
    loop {
        let zmq = match socket.recv().await {
            Ok(zmq) => zmq,
            Err(err) => {
                tracing::warn!("{channel}: {err}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        match wire::decode(zmq.into_vec(), signer) {
            Ok(message) => return Some(message),
            Err(err) => tracing::warn!("{channel}: dropped a message: {err}"),
        }
    }
}

async fn send(socket: &mut RouterSocket, signer: &Signer, message: &Message) {
    if let Some(zmq) = to_zmq(wire::encode(message, signer))
        && let Err(err) = socket.send(zmq).await
    {
        tracing::warn!("cannot send {}: {err}", message.msg_type());
    }
}

impl Kernel {
    async fn publish(&self, mut message: Message) {
        message.identities = vec![Bytes::from(format!("kernel.{}", message.header.msg_type))];
        let Some(zmq) = to_zmq(wire::encode(&message, &self.signer)) else { return };
        if let Err(err) = self.iopub.lock().await.send(zmq).await {
            tracing::warn!("iopub: {err}");
        }
    }

    /// [`Kernel::publish`] from a thread outside the runtime's workers (a cell's).
    fn publish_blocking(&self, message: Message) {
        self.runtime.block_on(self.publish(message));
    }

    async fn publish_status(&self, parent: Option<&Message>, state: &str) {
        let content = wire::Status { execution_state: state };
        let message = match parent {
            Some(parent) => Message::child(parent, &self.session_id, "status", content),
            None => Message::orphan(&self.session_id, "status", content),
        };
        self.publish(message).await;
    }

    fn reply(&self, parent: &Message, msg_type: &str, content: Json) -> Message {
        Message::child(parent, &self.session_id, msg_type, content)
    }
}

async fn control_loop(kernel: Arc<Kernel>, mut socket: RouterSocket) {
    loop {
        let Some(request) = recv(&mut socket, &kernel.signer, "control").await else { continue };
        kernel.publish_status(Some(&request), "busy").await;
        match request.msg_type() {
            "shutdown_request" => {
                let restart =
                    serde_json::from_value::<wire::ShutdownRequest>(request.content.clone()).map(|it| it.restart).unwrap_or(false);
                kernel.interrupt.fire();
                let reply = kernel.reply(&request, "shutdown_reply", json!({"status": "ok", "restart": restart}));
                send(&mut socket, &kernel.signer, &reply).await;
                kernel.publish_status(Some(&request), "idle").await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                tracing::info!("shutdown requested");
                std::process::exit(0);
            }
            "interrupt_request" => {
                kernel.interrupt.fire();
                let reply = kernel.reply(&request, "interrupt_reply", json!({"status": "ok"}));
                send(&mut socket, &kernel.signer, &reply).await;
            }
            "kernel_info_request" => {
                let reply = kernel.reply(&request, "kernel_info_reply", wire::kernel_info_reply());
                send(&mut socket, &kernel.signer, &reply).await;
            }
            other => tracing::warn!("control: unsupported {other}"),
        }
        kernel.publish_status(Some(&request), "idle").await;
    }
}

async fn shell_loop(kernel: Arc<Kernel>, mut socket: RouterSocket) {
    loop {
        let Some(request) = recv(&mut socket, &kernel.signer, "shell").await else { continue };
        kernel.publish_status(Some(&request), "busy").await;
        let reply = handle_shell(&kernel, &request).await;
        let failed = reply.as_ref().is_some_and(|(msg_type, content)| msg_type == "execute_reply" && content["status"] == "error");
        // Taken before the reply goes out: what a client sends after seeing it is not queued.
        let queued = if failed && request.content["stop_on_error"].as_bool().unwrap_or(true) {
            take_queued(&kernel, &mut socket).await
        } else {
            Vec::new()
        };
        if let Some((msg_type, content)) = reply {
            let reply = kernel.reply(&request, &msg_type, content);
            send(&mut socket, &kernel.signer, &reply).await;
        }
        kernel.publish_status(Some(&request), "idle").await;
        for request in queued {
            kernel.publish_status(Some(&request), "busy").await;
            let reply = if request.msg_type() == "execute_request" {
                let count = *kernel.execution_count.lock().unwrap_or_else(|p| p.into_inner());
                Some((
                    "execute_reply".to_owned(),
                    json!({"status": "aborted", "execution_count": count, "user_expressions": {}, "payload": []}),
                ))
            } else {
                handle_shell(&kernel, &request).await
            };
            if let Some((msg_type, content)) = reply {
                let reply = kernel.reply(&request, &msg_type, content);
                send(&mut socket, &kernel.signer, &reply).await;
            }
            kernel.publish_status(Some(&request), "idle").await;
        }
    }
}

/// The requests already waiting behind a failed cell whose request asked `stop_on_error`
/// ("Run All"): their execute requests are answered `aborted` without running, as ipykernel
/// does; other requests are served as usual.
async fn take_queued(kernel: &Kernel, socket: &mut RouterSocket) -> Vec<Message> {
    let mut queued = Vec::new();
    while let Ok(Some(request)) = tokio::time::timeout(ABORT_WINDOW, recv(socket, &kernel.signer, "shell")).await {
        queued.push(request);
    }
    queued
}

/// How long the kernel waits for one more queued request (they are in the socket already).
const ABORT_WINDOW: Duration = Duration::from_millis(5);

fn cursor_args(content: &Json) -> Option<(String, usize, u8)> {
    let args: wire::CodeAtCursor = serde_json::from_value(content.clone()).ok()?;
    let len = args.code.chars().count();
    Some((args.code, args.cursor_pos.unwrap_or(len), args.detail_level))
}

async fn handle_shell(kernel: &Arc<Kernel>, request: &Message) -> Option<(String, Json)> {
    let reply = |msg_type: &str, content: Json| Some((msg_type.to_owned(), content));
    match request.msg_type() {
        "kernel_info_request" => reply("kernel_info_reply", wire::kernel_info_reply()),
        "execute_request" => {
            let Ok(args) = serde_json::from_value::<wire::ExecuteRequest>(request.content.clone()) else {
                tracing::warn!("shell: execute_request without code");
                return reply(
                    "execute_reply",
                    json!({"status": "error", "ename": "BadRequest", "evalue": "execute_request without code", "traceback": [], "execution_count": 0, "user_expressions": {}}),
                );
            };
            let count = {
                let mut count = kernel.execution_count.lock().unwrap();
                if args.store_history && !args.silent {
                    *count += 1;
                }
                *count
            };
            if !args.silent {
                kernel
                    .publish(kernel.reply(request, "execute_input", json!(wire::ExecuteInput { code: &args.code, execution_count: count })))
                    .await;
            }
            let (kernel2, parent) = (kernel.clone(), request.clone());
            let record = args.store_history && !args.silent;
            let code = record.then(|| args.code.clone());
            let (outcome, result_text) = tokio::task::spawn_blocking(move || {
                let mut frontend = CellFrontend {
                    kernel: &kernel2,
                    parent: &parent,
                    count,
                    silent: args.silent,
                    allow_stdin: args.allow_stdin,
                    result_text: None,
                    payload: Vec::new(),
                };
                let mut session = kernel2.session.lock().unwrap_or_else(|poison| poison.into_inner());
                let outcome = session.execute(&args.code, &mut frontend).map(|()| session.user_expressions(&args.user_expressions));
                (outcome.map(|expressions| (expressions, frontend.payload)), frontend.result_text)
            })
            .await
            .unwrap_or_else(|panic| {
                (
                    Err(ErrorContent {
                        ename: "InternalError".into(),
                        evalue: format!("the kernel failed while running the cell: {panic}"),
                        traceback: vec![],
                    }),
                    None,
                )
            });
            if let Some(code) = code {
                kernel.history.lock().unwrap_or_else(|p| p.into_inner()).push((count, code, result_text));
            }
            match outcome {
                Ok((user_expressions, payload)) => reply("execute_reply", wire::execute_reply_ok(count, user_expressions, payload)),
                Err(error) => {
                    if !args.silent {
                        kernel.publish(kernel.reply(request, "error", json!(error))).await;
                    }
                    reply("execute_reply", wire::execute_reply_error(count, &error))
                }
            }
        }
        "complete_request" => {
            let Some((code, cursor, _)) = cursor_args(&request.content) else {
                return reply("complete_reply", json!({"status": "error", "ename": "BadRequest", "evalue": "", "traceback": []}));
            };
            let kernel2 = kernel.clone();
            let (matches, start, end) =
                tokio::task::spawn_blocking(move || kernel2.session.lock().unwrap_or_else(|p| p.into_inner()).complete(&code, cursor))
                    .await
                    .unwrap_or((Vec::new(), cursor, cursor));
            reply("complete_reply", json!({"status": "ok", "matches": matches, "cursor_start": start, "cursor_end": end, "metadata": {}}))
        }
        "inspect_request" => {
            let Some((code, cursor, _)) = cursor_args(&request.content) else {
                return reply("inspect_reply", json!({"status": "ok", "found": false, "data": {}, "metadata": {}}));
            };
            let kernel2 = kernel.clone();
            let found =
                tokio::task::spawn_blocking(move || kernel2.session.lock().unwrap_or_else(|p| p.into_inner()).inspect(&code, cursor))
                    .await
                    .ok()
                    .flatten();
            match found {
                Some(data) => reply("inspect_reply", json!({"status": "ok", "found": true, "data": data, "metadata": {}})),
                None => reply("inspect_reply", json!({"status": "ok", "found": false, "data": {}, "metadata": {}})),
            }
        }
        "is_complete_request" => {
            let code = serde_json::from_value::<wire::IsCompleteRequest>(request.content.clone()).map(|it| it.code).unwrap_or_default();
            let status = cells::is_complete(&code);
            if status == "incomplete" {
                reply("is_complete_reply", json!({"status": status, "indent": "    "}))
            } else {
                reply("is_complete_reply", json!({"status": status}))
            }
        }
        "history_request" => {
            let history = kernel.history.lock().unwrap_or_else(|p| p.into_inner());
            reply("history_reply", json!({"status": "ok", "history": history_entries(&history, &request.content)}))
        }
        "comm_info_request" => reply("comm_info_reply", json!({"status": "ok", "comms": {}})),
        "comm_open" => {
            if let Ok(open) = serde_json::from_value::<wire::CommOpen>(request.content.clone()) {
                kernel.publish(kernel.reply(request, "comm_close", json!({"comm_id": open.comm_id, "data": {}}))).await;
            }
            None
        }
        "comm_msg" | "comm_close" => None,
        // Clients may send these on shell too (older protocol versions).
        "shutdown_request" => {
            kernel.interrupt.fire();
            tokio::spawn(async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                std::process::exit(0);
            });
            reply("shutdown_reply", json!({"status": "ok", "restart": false}))
        }
        other => {
            tracing::warn!("shell: unsupported message type {other}");
            None
        }
    }
}

/// The session number of this kernel's cells in history replies (IPython numbers sessions from 1;
/// 0 and this number both mean the current one).
const HISTORY_SESSION: i64 = 1;

/// A `history_request` answered from this session's cells (`tail`, `range`, `search` with a
/// glob pattern, `unique` and `n`, as IPython does); earlier sessions are not kept.
fn history_entries(history: &[(u32, String, Option<String>)], request: &Json) -> Vec<Json> {
    let output = request["output"].as_bool().unwrap_or(false);
    let n = request["n"].as_u64().map(|it| it as usize);
    let entry = |(count, code, result): &(u32, String, Option<String>)| {
        if output { json!([HISTORY_SESSION, count, [code, result]]) } else { json!([HISTORY_SESSION, count, code]) }
    };
    let last = |items: Vec<&(u32, String, Option<String>)>, n: Option<usize>| -> Vec<Json> {
        let skip = n.map_or(0, |n| items.len().saturating_sub(n));
        items.into_iter().skip(skip).map(entry).collect()
    };
    match request["hist_access_type"].as_str().unwrap_or("tail") {
        "tail" => last(history.iter().collect(), Some(n.unwrap_or(10))),
        "range" => {
            let session = request["session"].as_i64().unwrap_or(0);
            if session != 0 && session != HISTORY_SESSION {
                return Vec::new();
            }
            let start = request["start"].as_u64().unwrap_or(0);
            let stop = request["stop"].as_u64();
            history
                .iter()
                .filter(|(count, ..)| u64::from(*count) >= start && stop.is_none_or(|stop| u64::from(*count) < stop))
                .map(entry)
                .collect()
        }
        "search" => {
            let pattern = request["pattern"].as_str().unwrap_or("*");
            let unique = request["unique"].as_bool().unwrap_or(false);
            let mut found: Vec<&(u32, String, Option<String>)> = history.iter().filter(|(_, code, _)| glob(pattern, code)).collect();
            if unique {
                // The latest of each input.
                let mut seen = std::collections::HashSet::new();
                found.reverse();
                found.retain(|(_, code, _)| seen.insert(code.as_str()));
                found.reverse();
            }
            last(found, n)
        }
        _ => Vec::new(),
    }
}

/// fnmatch-style `*` and `?` over the whole text.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            pi += 1;
            mark = ti;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A cell's outputs as iopub messages.
struct CellFrontend<'a> {
    kernel: &'a Kernel,
    parent: &'a Message,
    count: u32,
    silent: bool,
    allow_stdin: bool,
    /// The text of the cell's execute_result, for the history.
    result_text: Option<String>,
    /// The execute_reply's payloads (`page`).
    payload: Vec<Json>,
}

impl Frontend for CellFrontend<'_> {
    fn stream(&mut self, name: &str, text: &str) {
        if self.silent || text.is_empty() {
            return;
        }
        let name = if name == "stderr" { "stderr" } else { "stdout" };
        self.kernel.publish_blocking(self.kernel.reply(self.parent, "stream", json!(wire::Stream { name, text })));
    }

    fn display(&mut self, data: MimeBundle, display_id: Option<&str>, update: bool) {
        if self.silent {
            return;
        }
        let msg_type = if update && display_id.is_some() { "update_display_data" } else { "display_data" };
        let content = DisplayData { data, metadata: json!({}), transient: display_id.map(|id| Transient { display_id: id.to_owned() }) };
        self.kernel.publish_blocking(self.kernel.reply(self.parent, msg_type, json!(content)));
    }

    fn result(&mut self, data: MimeBundle) {
        self.result_text = data.get("text/plain").and_then(Json::as_str).map(str::to_owned);
        if self.silent {
            return;
        }
        let content = ExecuteResult { execution_count: self.count, data, metadata: json!({}) };
        self.kernel.publish_blocking(self.kernel.reply(self.parent, "execute_result", json!(content)));
    }

    fn page(&mut self, data: MimeBundle) {
        self.payload.push(json!({ "source": "page", "data": data, "start": 0 }));
    }

    fn clear_output(&mut self, wait: bool) {
        if self.silent {
            return;
        }
        self.kernel.publish_blocking(self.kernel.reply(self.parent, "clear_output", json!({ "wait": wait })));
    }

    fn input(&mut self, prompt: &str, password: bool) -> Option<String> {
        if !self.allow_stdin {
            return None;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let message = self.kernel.reply(self.parent, "input_request", json!(wire::InputRequest { prompt, password }));
        self.kernel.stdin.send(StdinRequest { message, reply: tx }).ok()?;
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(value) => return value,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if self.kernel.interrupt.requested.load(std::sync::atomic::Ordering::SeqCst) {
                        return None;
                    }
                }
                Err(_) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history() -> Vec<(u32, String, Option<String>)> {
        vec![(1, "6 * 7".into(), Some("42".into())), (2, "x = 1".into(), None), (3, "6 * 7".into(), Some("42".into()))]
    }

    #[test]
    fn history_tail_range_search() {
        let h = history();
        assert_eq!(
            history_entries(&h, &json!({"hist_access_type": "tail", "n": 2, "output": false})),
            vec![json!([1, 2, "x = 1"]), json!([1, 3, "6 * 7"])]
        );
        assert_eq!(history_entries(&h, &json!({"hist_access_type": "tail", "n": 1, "output": true})), vec![json!([1, 3, ["6 * 7", "42"]])]);
        assert_eq!(
            history_entries(&h, &json!({"hist_access_type": "range", "session": 1, "start": 2, "stop": 3})),
            vec![json!([1, 2, "x = 1"])]
        );
        assert_eq!(history_entries(&h, &json!({"hist_access_type": "range", "session": -1, "start": 1})), Vec::<Json>::new());
        assert_eq!(history_entries(&h, &json!({"hist_access_type": "search", "pattern": "6*"})).len(), 2);
        assert_eq!(
            history_entries(&h, &json!({"hist_access_type": "search", "pattern": "6*", "unique": true})),
            vec![json!([1, 3, "6 * 7"])]
        );
        assert_eq!(history_entries(&h, &json!({"hist_access_type": "search", "pattern": "*", "n": 1})), vec![json!([1, 3, "6 * 7"])]);
    }

    #[test]
    fn globs() {
        assert!(glob("6*", "6 * 7"));
        assert!(glob("*=*", "x = 1"));
        assert!(glob("?", "x"));
        assert!(!glob("6*", "x = 6"));
        assert!(!glob("a?c", "ac"));
    }
}
