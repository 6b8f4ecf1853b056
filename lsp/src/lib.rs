//! `wand-lsp`: a language server for Mage-format projects, on `tower-lsp-server`.
//!
//! - [`server`]: the `LanguageServer` impl (routing only) and the custom methods;
//! - [`session`]: open documents, the workspace's projects and last runs;
//! - [`handlers`]: pure functions of the session, one module per family of requests;
//! - [`convert`]: the only place positions change representation.
//!
//! Edits are applied strictly in order: [`serve`] runs the service with a concurrency level
//! of 1, and every state change is made under the lock before any `.await`.

pub mod convert;
pub mod handlers;
pub mod server;
pub mod session;

use tower_lsp_server::{ClientSocket, LspService, Server};

pub use server::Backend;

/// The service with Wand's custom methods.
pub fn service() -> (LspService<Backend>, ClientSocket) {
    LspService::build(Backend::new)
        .custom_method("wand/dag", Backend::dag)
        .custom_method("wand/documentText", Backend::document_text)
        .finish()
}

/// Serves one client over a pair of byte streams (stdio in the binary, a duplex pipe in tests).
pub async fn serve<I, O>(input: I, output: O)
where
    I: tokio::io::AsyncRead + Unpin,
    O: tokio::io::AsyncWrite,
{
    let (service, socket) = service();
    Server::new(input, output, socket).concurrency_level(1).serve(service).await;
}
