//! Embeds the Python worker (`python/wand_worker/`) and the `mage_ai` shim (`python/mage_ai/`)
//! into the `wand` binary, so an installed `wand` runs Python blocks anywhere.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, base: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.flatten().map(|entry| entry.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "__pycache__" {
                collect(&path, base, files);
            }
        } else if name.ends_with(".py") || name.ends_with(".typed") {
            let rel = path.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/");
            files.push((rel, path));
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let python = manifest.join("python");
    let mut files = Vec::new();
    for package in ["wand_worker", "mage_ai"] {
        println!("cargo:rerun-if-changed=python/{package}");
        collect(&python.join(package), &python, &mut files);
    }
    let mut out = String::from(
        "/// `(path relative to the worker folder, contents)` of every embedded Python file.\npub(crate) const WORKER_FILES: &[(&str, &str)] = &[\n",
    );
    for (rel, path) in &files {
        writeln!(out, "    ({rel:?}, include_str!({:?})),", path.to_string_lossy()).unwrap();
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("worker_files.rs");
    std::fs::write(dest, out).unwrap();
}
