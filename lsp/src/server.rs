//! The `LanguageServer` implementation: routing only. Notifications that change state lock the
//! session, apply the change completely and collect what to publish, unlock, then send; requests
//! lock, run a pure handler, unlock. The lock is never held across an `.await`. Requests first
//! wait for the workspace index, so an early request is answered from the whole workspace, not
//! from an empty one.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use ropey::Rope;
use serde::{Deserialize, Serialize};
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::notification::Notification;
use tower_lsp_server::ls_types::{self as lsp, Uri};
use tower_lsp_server::{Client, LanguageServer};

use crate::convert::{self, Encoding};
use crate::handlers::{assist, nav, runs};
use crate::session::{self, Document, Publish, Session};

pub struct Backend {
    client: Client,
    session: Arc<Mutex<Session>>,
    /// True once the workspace index is built (or was never going to be: no `initialized`).
    indexed: Arc<tokio::sync::watch::Sender<bool>>,
}

/// How long a request waits for the index before it is answered from what is loaded.
const INDEX_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// `wand/indexReady`: sent once the workspace index is built and its diagnostics published.
pub enum IndexReady {}

#[derive(Debug, Serialize, Deserialize)]
pub struct IndexReadyParams {
    pub projects: Vec<Uri>,
}

impl Notification for IndexReady {
    type Params = IndexReadyParams;
    const METHOD: &'static str = "wand/indexReady";
}

#[derive(Debug, Deserialize)]
pub struct TextParams {
    pub uri: Uri,
}

#[derive(Debug, Serialize)]
pub struct TextResult {
    pub version: Option<i32>,
    pub text: Option<String>,
}

const WATCHED: &[&str] = &[
    "**/metadata.yaml",
    "**/triggers.yaml",
    "**/io_config.yaml",
    "**/settings.yaml",
    "**/*.py",
    "**/*.sql",
    "**/*.r",
    "**/.wand/runs/latest.json",
];

impl Backend {
    pub fn new(client: Client) -> Backend {
        Backend { client, session: Arc::new(Mutex::new(Session::default())), indexed: Arc::new(tokio::sync::watch::Sender::new(false)) }
    }

    fn lock(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The session once the workspace index is built: what requests read.
    async fn indexed(&self) -> MutexGuard<'_, Session> {
        let mut ready = self.indexed.subscribe();
        let _ = tokio::time::timeout(INDEX_WAIT, ready.wait_for(|done| *done)).await;
        self.lock()
    }

    async fn send(&self, publishes: Vec<Publish>) {
        send(&self.client, publishes).await;
    }

    /// `wand/dag`: the pipeline graph with the last run's block states.
    pub async fn dag(&self, params: runs::DagParams) -> Result<Option<runs::DagResult>> {
        Ok(runs::dag(&*self.indexed().await, &params))
    }

    /// `wand/documentText`: the server's copy of an open document (for tests and debugging).
    pub async fn document_text(&self, params: TextParams) -> Result<TextResult> {
        let session = self.lock();
        let path = convert::path(&params.uri);
        let doc = path.as_ref().and_then(|path| session.documents.get(path));
        Ok(TextResult { version: doc.map(|doc| doc.version), text: doc.map(|doc| doc.rope.to_string()) })
    }

    /// Re-reads `path` and returns the notifications for its project.
    fn changed(session: &mut Session, path: &std::path::Path) -> Vec<Publish> {
        match session.file_changed(path) {
            Some(root) => session.publish(&[root]),
            None => Vec::new(),
        }
    }
}

async fn send(client: &Client, publishes: Vec<Publish>) {
    for publish in publishes {
        client.publish_diagnostics(publish.uri, publish.diagnostics, publish.version).await;
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: lsp::InitializeParams) -> Result<lsp::InitializeResult> {
        let encoding = Encoding::negotiate(&params);
        let mut folders: Vec<PathBuf> = params.workspace_folders.iter().flatten().filter_map(|folder| convert::path(&folder.uri)).collect();
        #[allow(deprecated)]
        if folders.is_empty() {
            folders.extend(params.root_uri.as_ref().and_then(convert::path));
        }
        let dynamic_watch = params
            .capabilities
            .workspace
            .as_ref()
            .and_then(|workspace| workspace.did_change_watched_files.as_ref())
            .and_then(|watch| watch.dynamic_registration)
            .unwrap_or(false);
        {
            let mut session = self.lock();
            session.encoding = encoding;
            session.folders = folders;
            session.indexing = true;
            session.dynamic_watch = dynamic_watch;
        }
        let sync = lsp::TextDocumentSyncOptions {
            open_close: Some(true),
            change: Some(lsp::TextDocumentSyncKind::INCREMENTAL),
            save: Some(lsp::TextDocumentSyncSaveOptions::Supported(true)),
            ..Default::default()
        };
        Ok(lsp::InitializeResult {
            offset_encoding: None,
            server_info: Some(lsp::ServerInfo { name: "wand-lsp".into(), version: Some(env!("CARGO_PKG_VERSION").into()) }),
            capabilities: lsp::ServerCapabilities {
                position_encoding: Some(encoding.kind()),
                text_document_sync: Some(lsp::TextDocumentSyncCapability::Options(sync)),
                definition_provider: Some(lsp::OneOf::Left(true)),
                references_provider: Some(lsp::OneOf::Left(true)),
                rename_provider: Some(lsp::OneOf::Right(lsp::RenameOptions {
                    prepare_provider: Some(true),
                    work_done_progress_options: Default::default(),
                })),
                document_symbol_provider: Some(lsp::OneOf::Left(true)),
                code_lens_provider: Some(lsp::CodeLensOptions { resolve_provider: Some(false) }),
                hover_provider: Some(lsp::HoverProviderCapability::Simple(true)),
                completion_provider: Some(lsp::CompletionOptions {
                    trigger_characters: Some(vec![" ".into(), "[".into(), ",".into(), "-".into(), "{".into(), ":".into()]),
                    ..Default::default()
                }),
                code_action_provider: Some(lsp::CodeActionProviderCapability::Options(lsp::CodeActionOptions {
                    code_action_kinds: Some(vec![lsp::CodeActionKind::QUICKFIX]),
                    ..Default::default()
                })),
                ..Default::default()
            },
        })
    }

    async fn initialized(&self, _: lsp::InitializedParams) {
        let (folders, dynamic_watch) = {
            let session = self.lock();
            (session.folders.clone(), session.dynamic_watch)
        };
        if dynamic_watch {
            let client = self.client.clone();
            tokio::spawn(async move {
                let watchers = WATCHED
                    .iter()
                    .map(|glob| lsp::FileSystemWatcher { glob_pattern: lsp::GlobPattern::String((*glob).to_owned()), kind: None })
                    .collect();
                let options = lsp::DidChangeWatchedFilesRegistrationOptions { watchers };
                let registration = lsp::Registration {
                    id: "wand-watch".into(),
                    method: "workspace/didChangeWatchedFiles".into(),
                    register_options: serde_json::to_value(options).ok(),
                };
                let _ = client.register_capability(vec![registration]).await;
            });
        }
        let client = self.client.clone();
        let state = self.session.clone();
        let indexed = self.indexed.clone();
        // The index is built off the message loop; documents opened meanwhile are laid over it.
        tokio::spawn(async move {
            let overlay = state.lock().unwrap_or_else(|it| it.into_inner()).overlay.clone();
            let projects = tokio::task::spawn_blocking(move || {
                let roots = session::discover(&folders);
                session::load(&roots, &overlay)
            })
            .await
            .unwrap_or_default();
            let (publishes, roots) = {
                let mut session = state.lock().unwrap_or_else(|it| it.into_inner());
                for project in projects {
                    session.insert_project(project);
                }
                session.indexing = false;
                let open: Vec<PathBuf> = session.documents.keys().cloned().collect();
                for path in &open {
                    session.ensure_project(path);
                    session.file_changed(path);
                }
                let roots = session.roots();
                // Documents opened while indexing get their lists now, empty ones included.
                (session.publish_forcing(&roots, &open), roots)
            };
            indexed.send_replace(true);
            send(&client, publishes).await;
            let projects = roots.iter().map(|root| convert::uri(root)).collect();
            client.send_notification::<IndexReady>(IndexReadyParams { projects }).await;
        });
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    async fn did_open(&self, params: lsp::DidOpenTextDocumentParams) {
        let publishes = {
            let mut session = self.lock();
            let Some(path) = convert::path(&params.text_document.uri) else { return };
            let text: Arc<str> = Arc::from(params.text_document.text.as_str());
            session
                .documents
                .insert(path.clone(), Document { rope: Rope::from_str(&text), version: params.text_document.version, text: text.clone() });
            session.overlay.insert(path.clone(), text);
            match session.ensure_project(&path) {
                Some(root) => {
                    session.poll_runs(&root);
                    session.file_changed(&path);
                    // The client shows diagnostics for the version it opened: send this file's again.
                    session.publish_forcing(&[root], &[path])
                }
                None => Vec::new(),
            }
        };
        self.send(publishes).await;
    }

    async fn did_change(&self, params: lsp::DidChangeTextDocumentParams) {
        let publishes = {
            let mut session = self.lock();
            let Some(path) = convert::path(&params.text_document.uri) else { return };
            let encoding = session.encoding;
            let Some(doc) = session.documents.get_mut(&path) else { return };
            for change in &params.content_changes {
                convert::apply_change(&mut doc.rope, change, encoding);
            }
            doc.version = params.text_document.version;
            doc.text = Arc::from(doc.rope.to_string());
            let text = doc.text.clone();
            session.overlay.insert(path.clone(), text);
            if session.indexing { Vec::new() } else { Backend::changed(&mut session, &path) }
        };
        self.send(publishes).await;
    }

    async fn did_save(&self, params: lsp::DidSaveTextDocumentParams) {
        let publishes = {
            let mut session = self.lock();
            let Some(path) = convert::path(&params.text_document.uri) else { return };
            match session.project_of(&path).map(|(project, _)| project.root.clone()) {
                Some(root) if session.poll_runs(&root) => session.publish(&[root]),
                _ => Vec::new(),
            }
        };
        self.send(publishes).await;
    }

    async fn did_close(&self, params: lsp::DidCloseTextDocumentParams) {
        let publishes = {
            let mut session = self.lock();
            let Some(path) = convert::path(&params.text_document.uri) else { return };
            session.documents.remove(&path);
            session.overlay.remove(&path);
            Backend::changed(&mut session, &path)
        };
        self.send(publishes).await;
    }

    async fn did_change_watched_files(&self, params: lsp::DidChangeWatchedFilesParams) {
        let publishes = {
            let mut session = self.lock();
            let mut roots = Vec::new();
            for change in &params.changes {
                let Some(path) = convert::path(&change.uri) else { continue };
                if session.documents.contains_key(&path) && change.typ == lsp::FileChangeType::CHANGED {
                    continue;
                }
                let root = match session.file_changed(&path) {
                    Some(root) => Some(root),
                    // A new project, or a pipeline folder appearing in one.
                    None if path.file_name().is_some_and(|name| name == "metadata.yaml") => session.ensure_project(&path),
                    None => None,
                };
                roots.extend(root);
            }
            roots.sort();
            roots.dedup();
            session.publish(&roots)
        };
        self.send(publishes).await;
    }

    async fn goto_definition(&self, params: lsp::GotoDefinitionParams) -> Result<Option<lsp::GotoDefinitionResponse>> {
        Ok(nav::definition(&*self.indexed().await, &params))
    }

    async fn references(&self, params: lsp::ReferenceParams) -> Result<Option<Vec<lsp::Location>>> {
        Ok(nav::references(&*self.indexed().await, &params))
    }

    async fn prepare_rename(&self, params: lsp::TextDocumentPositionParams) -> Result<Option<lsp::PrepareRenameResponse>> {
        Ok(nav::prepare_rename(&*self.indexed().await, &params))
    }

    async fn rename(&self, params: lsp::RenameParams) -> Result<Option<lsp::WorkspaceEdit>> {
        nav::rename(&*self.indexed().await, &params).map_err(Error::invalid_params)
    }

    async fn document_symbol(&self, params: lsp::DocumentSymbolParams) -> Result<Option<lsp::DocumentSymbolResponse>> {
        Ok(nav::document_symbols(&*self.indexed().await, &params))
    }

    async fn code_lens(&self, params: lsp::CodeLensParams) -> Result<Option<Vec<lsp::CodeLens>>> {
        Ok(nav::code_lens(&*self.indexed().await, &params))
    }

    async fn completion(&self, params: lsp::CompletionParams) -> Result<Option<lsp::CompletionResponse>> {
        Ok(assist::completion(&*self.indexed().await, &params))
    }

    async fn hover(&self, params: lsp::HoverParams) -> Result<Option<lsp::Hover>> {
        Ok(assist::hover(&*self.indexed().await, &params))
    }

    async fn code_action(&self, params: lsp::CodeActionParams) -> Result<Option<lsp::CodeActionResponse>> {
        Ok(assist::code_actions(&*self.indexed().await, &params))
    }
}
