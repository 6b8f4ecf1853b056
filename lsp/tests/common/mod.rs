//! An in-process client for `wand-lsp`: the real server (`wand_lsp::serve`, concurrency 1)
//! over a pair of in-memory pipes, JSON-RPC framing by hand, real files in a temp dir.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

pub struct Client {
    out: mpsc::UnboundedSender<String>,
    incoming: mpsc::UnboundedReceiver<Value>,
    /// Messages received while waiting for something else.
    stash: VecDeque<Value>,
    next_id: i64,
    pub root: PathBuf,
    _dir: tempfile::TempDir,
}

fn frame(value: &Value) -> String {
    let body = value.to_string();
    format!("Content-Length: {}\r\n\r\n{body}", body.len())
}

/// Copies an example project of the repository into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("examples").join(name)
}

pub fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A small project with two pipelines sharing two blocks, a SQL block and io_config profiles.
pub fn shop(root: &Path) {
    write(root, "metadata.yaml", "project_type: standalone\nvariables_dir: .mage_data\n");
    write(root, "io_config.yaml", "version: 0.1.1\ndefault:\n  POSTGRES_HOST: localhost\ndev:\n  POSTGRES_HOST: db\n");
    write(root, "pipelines/etl/metadata.yaml", ETL);
    write(root, "pipelines/report/metadata.yaml", REPORT);
    write(
        root,
        "data_loaders/load_orders.py",
        "@data_loader\ndef load_data(*args, **kwargs):\n    return [1, 2]\n\n\n@test\ndef test_output(output, *args):\n    assert output is not None\n",
    );
    write(root, "transformers/clean_orders.py", CLEAN);
    write(root, "transformers/summary.sql", "-- totals é 😀\nSELECT count(*) FROM {{ df_1 }} JOIN {{ block_output('clean_orders') }}\n");
}

pub const ETL: &str = "blocks:
- uuid: load_orders
  type: data_loader
  language: python
  upstream_blocks: []
  downstream_blocks: [clean_orders]
- uuid: clean_orders
  type: transformer
  language: python
  upstream_blocks: [load_orders]
  downstream_blocks: [summary]
- uuid: summary
  type: transformer
  language: sql
  upstream_blocks: [clean_orders]
  downstream_blocks: []
  configuration:
    data_provider_profile: dev
name: etl
";

pub const REPORT: &str = "blocks:
- uuid: load_orders
  type: data_loader
  upstream_blocks: []
  downstream_blocks:
  - clean_orders
- uuid: clean_orders
  type: transformer
  upstream_blocks:
  - load_orders
  downstream_blocks: []
name: report
";

pub const CLEAN: &str = "@transformer\ndef transform(orders, *args, **kwargs):\n    return orders\n\n\n@test\ndef test_not_empty(output, *args):\n    assert len(output) > 0, 'no rows'\n";

#[derive(Default)]
pub struct Options {
    pub utf8: bool,
    pub dynamic_watch: bool,
    /// Return right after `initialized`, without waiting for `wand/indexReady`.
    pub early: bool,
}

impl Client {
    /// Starts a server on a temp dir filled by `fill`, initializes it and waits for the index.
    pub async fn start(fill: impl FnOnce(&Path), options: Options) -> Client {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fill(&root);
        let (client_io, server_io) = tokio::io::duplex(1 << 22);
        let (server_read, server_write) = tokio::io::split(server_io);
        tokio::spawn(wand_lsp::serve(server_read, server_write));
        let (mut read, mut write) = tokio::io::split(client_io);
        let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(text) = out_rx.recv().await {
                if write.write_all(text.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
        let (tx, incoming) = mpsc::unbounded_channel();
        let reply = out.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(&mut read);
            loop {
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(value) = line.strip_prefix("Content-Length: ") {
                        length = value.parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).await.unwrap();
                let message: Value = serde_json::from_slice(&body).unwrap();
                // Requests from the server (registerCapability, applyEdit...) get an empty result.
                if message.get("method").is_some() && message.get("id").is_some() {
                    let _ = reply.send(frame(&json!({"jsonrpc": "2.0", "id": message["id"], "result": null})));
                }
                if tx.send(message).is_err() {
                    return;
                }
            }
        });
        let mut client = Client { out, incoming, stash: VecDeque::new(), next_id: 0, root: root.clone(), _dir: dir };
        let mut capabilities = json!({
            "textDocument": {"publishDiagnostics": {"relatedInformation": true}, "definition": {"linkSupport": true}},
            "workspace": {"workspaceEdit": {"documentChanges": true, "resourceOperations": ["create", "rename"]}}
        });
        if options.utf8 {
            capabilities["general"] = json!({"positionEncodings": ["utf-8", "utf-16"]});
        }
        if options.dynamic_watch {
            capabilities["workspace"]["didChangeWatchedFiles"] = json!({"dynamicRegistration": true});
        }
        let uri = client.uri("");
        let result = client
            .request(
                "initialize",
                json!({"processId": null, "rootUri": uri, "capabilities": capabilities, "workspaceFolders": [{"uri": uri, "name": "ws"}]}),
            )
            .await;
        let expected = if options.utf8 { "utf-8" } else { "utf-16" };
        assert_eq!(result["capabilities"]["positionEncoding"], expected);
        client.notify("initialized", json!({}));
        if !options.early {
            client.notification("wand/indexReady").await;
        }
        client
    }

    pub fn uri(&self, rel: &str) -> String {
        let path = if rel.is_empty() { self.root.clone() } else { self.root.join(rel) };
        format!("file://{}", path.display())
    }

    pub fn notify(&self, method: &str, params: Value) {
        self.out.send(frame(&json!({"jsonrpc": "2.0", "method": method, "params": params}))).unwrap();
    }

    async fn next(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(30), self.incoming.recv())
            .await
            .expect("timed out waiting for the server")
            .expect("server gone")
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.out.send(frame(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))).unwrap();
        loop {
            let message = self.next().await;
            if message.get("method").is_none() && message["id"] == id {
                if let Some(error) = message.get("error") {
                    return json!({"error": error});
                }
                return message["result"].clone();
            }
            self.stash.push_back(message);
        }
    }

    /// The next notification (or server request) of `method`, in arrival order.
    pub async fn notification(&mut self, method: &str) -> Value {
        if let Some(idx) = self.stash.iter().position(|message| message["method"] == method) {
            return self.stash.remove(idx).unwrap()["params"].clone();
        }
        loop {
            let message = self.next().await;
            if message["method"] == method {
                return message["params"].clone();
            }
            self.stash.push_back(message);
        }
    }

    /// Waits for the next `publishDiagnostics` of the file `rel`.
    pub async fn diagnostics(&mut self, rel: &str) -> Value {
        let uri = self.uri(rel);
        if let Some(idx) =
            self.stash.iter().position(|message| message["method"] == "textDocument/publishDiagnostics" && message["params"]["uri"] == uri)
        {
            return self.stash.remove(idx).unwrap()["params"].clone();
        }
        loop {
            let message = self.next().await;
            if message["method"] == "textDocument/publishDiagnostics" && message["params"]["uri"] == uri {
                return message["params"].clone();
            }
            self.stash.push_back(message);
        }
    }

    /// Drops stashed diagnostics (those published before the step a test looks at).
    pub fn forget_diagnostics(&mut self) {
        self.stash.retain(|message| message["method"] != "textDocument/publishDiagnostics");
    }

    /// Every `publishDiagnostics` received so far (stashed), latest per file.
    pub fn take_diagnostics(&mut self) -> std::collections::BTreeMap<String, Value> {
        let mut out = std::collections::BTreeMap::new();
        let mut rest = VecDeque::new();
        for message in self.stash.drain(..) {
            if message["method"] == "textDocument/publishDiagnostics" {
                out.insert(message["params"]["uri"].as_str().unwrap().to_owned(), message["params"]["diagnostics"].clone());
            } else {
                rest.push_back(message);
            }
        }
        self.stash = rest;
        out
    }

    pub fn open(&self, rel: &str, language: &str) -> String {
        let text = std::fs::read_to_string(self.root.join(rel)).unwrap();
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": self.uri(rel), "languageId": language, "version": 1, "text": text}}),
        );
        text
    }

    pub fn change_all(&self, rel: &str, version: i32, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": self.uri(rel), "version": version}, "contentChanges": [{"text": text}]}),
        );
    }

    /// Replaces the server's temp dir with `<root>` in a JSON value, for snapshots.
    pub fn redact(&self, value: &Value) -> Value {
        let text = value
            .to_string()
            .replace(&format!("file://{}", self.root.display()), "file://<root>")
            .replace(&self.root.display().to_string(), "<root>");
        serde_json::from_str(&text).unwrap()
    }

    pub async fn shutdown(mut self) {
        self.request("shutdown", Value::Null).await;
        self.notify("exit", Value::Null);
    }
}

/// Position of the `nth` occurrence of `needle` in `text`, plus `delta` characters, in UTF-16.
pub fn pos(text: &str, needle: &str, nth: usize, delta: usize) -> Value {
    let offset = text.match_indices(needle).nth(nth).unwrap_or_else(|| panic!("{needle} #{nth}")).0;
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let col: usize = before[before.rfind('\n').map_or(0, |idx| idx + 1)..].chars().map(char::len_utf16).sum();
    json!({"line": line, "character": col + delta})
}

/// Applies LSP text edits (UTF-16 positions) to a text.
pub fn apply_edits(text: &str, edits: &[Value]) -> String {
    let offset = |position: &Value| {
        let line = position["line"].as_u64().unwrap() as usize;
        let character = position["character"].as_u64().unwrap() as usize;
        let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
        let mut units = 0;
        for (idx, ch) in text[start..].char_indices() {
            if units >= character || ch == '\n' {
                return start + idx;
            }
            units += ch.len_utf16();
        }
        text.len()
    };
    let mut edits: Vec<(usize, usize, String, usize)> = edits
        .iter()
        .enumerate()
        .map(|(idx, edit)| {
            (offset(&edit["range"]["start"]), offset(&edit["range"]["end"]), edit["newText"].as_str().unwrap().to_owned(), idx)
        })
        .collect();
    edits.sort_by_key(|edit| std::cmp::Reverse((edit.0, edit.3)));
    let mut out = text.to_owned();
    for (start, end, new, _) in edits {
        out.replace_range(start..end, &new);
    }
    out
}
