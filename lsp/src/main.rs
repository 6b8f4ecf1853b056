//! `wand-lsp`: the language server over stdio.

#[tokio::main]
async fn main() {
    if std::env::args().any(|arg| arg == "--version") {
        println!("wand-lsp {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    wand_lsp::serve(tokio::io::stdin(), tokio::io::stdout()).await;
}
