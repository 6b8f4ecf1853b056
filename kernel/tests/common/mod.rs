//! Helpers shared by the kernel's integration tests.

use std::path::{Path, PathBuf};

/// The Python the worker runs with: `WAND_PYTHON`, else the workspace's `.venv` (made by
/// `scripts/setup`).
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("WAND_PYTHON").filter(|it| !it.is_empty()) {
        return PathBuf::from(python);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        venv.is_file(),
        "these tests need a Python with pandas and pyarrow: set WAND_PYTHON or run scripts/setup \
         (it makes .venv in the workspace)"
    );
    venv
}

/// Copies a project folder, leaving out what runs leave behind.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if [".mage_data", "output", "__pycache__"].iter().any(|skip| name == *skip) {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// A block of a generated pipeline: uuid, type, language, upstream uuids, extra YAML lines.
pub struct B<'a>(pub &'a str, pub &'a str, pub &'a str, pub &'a [&'a str], pub &'a str);

/// The `metadata.yaml` of pipeline `p` with `blocks` (downstream lists derived from the
/// upstream ones) followed by `tail` (more top-level keys).
pub fn pipeline_yaml(blocks: &[B<'_>], tail: &str) -> String {
    let mut yaml = String::from("blocks:\n");
    for B(uuid, block_type, language, upstream, extra) in blocks {
        let downstream: Vec<&str> = blocks.iter().filter(|b| b.3.contains(uuid)).map(|b| b.0).collect();
        yaml.push_str(&format!(
            "- uuid: {uuid}\n  type: {block_type}\n  language: {language}\n  upstream_blocks: [{}]\n  downstream_blocks: [{}]\n",
            upstream.join(", "),
            downstream.join(", ")
        ));
        for line in extra.lines().filter(|it| !it.trim().is_empty()) {
            yaml.push_str(&format!("  {line}\n"));
        }
    }
    yaml.push_str(&format!("name: p\ntype: python\n{tail}"));
    yaml
}
