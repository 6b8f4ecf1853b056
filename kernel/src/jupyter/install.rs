//! The kernelspec: `kernels/wand/kernel.json` where `jupyter kernelspec install` puts it.

use std::path::{Path, PathBuf};

use serde_json::json;

#[derive(Clone, Debug)]
pub enum Target {
    /// `~/.local/share/jupyter` (or `$JUPYTER_DATA_DIR`, `$XDG_DATA_HOME/jupyter`).
    User,
    /// The Python environment's prefix: `$VIRTUAL_ENV`, else `WAND_PYTHON`'s `sys.prefix`.
    SysPrefix,
    Prefix(PathBuf),
}

pub const KERNEL_NAME: &str = "wand";
pub const DISPLAY_NAME: &str = "Wand (Mage pipelines)";

pub fn kernel_json(wand: &Path) -> serde_json::Value {
    json!({
        "argv": [wand.display().to_string(), "kernel", "-f", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "python",
        "interrupt_mode": "message",
        "metadata": {"debugger": false},
    })
}

fn data_dir(target: &Target) -> anyhow::Result<PathBuf> {
    let nonempty = |name: &str| std::env::var_os(name).filter(|it| !it.is_empty()).map(PathBuf::from);
    Ok(match target {
        Target::User => match nonempty("JUPYTER_DATA_DIR") {
            Some(dir) => dir,
            None => match nonempty("XDG_DATA_HOME") {
                Some(dir) => dir.join("jupyter"),
                None => nonempty("HOME").ok_or_else(|| anyhow::format_err!("HOME is not set"))?.join(".local/share/jupyter"),
            },
        },
        Target::SysPrefix => {
            let prefix = match nonempty("VIRTUAL_ENV") {
                Some(prefix) => prefix,
                None => {
                    let python = nonempty("WAND_PYTHON").unwrap_or_else(|| PathBuf::from("python3"));
                    let out = std::process::Command::new(&python)
                        .args(["-c", "import sys; print(sys.prefix)"])
                        .output()
                        .map_err(|err| anyhow::format_err!("cannot run {} to find sys.prefix: {err}", python.display()))?;
                    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
                }
            };
            prefix.join("share/jupyter")
        }
        Target::Prefix(prefix) => std::path::absolute(prefix)?.join("share/jupyter"),
    })
}

/// Writes the kernelspec; returns its folder.
pub fn install(target: &Target, wand: &Path) -> anyhow::Result<PathBuf> {
    let dir = data_dir(target)?.join("kernels").join(KERNEL_NAME);
    std::fs::create_dir_all(&dir).map_err(|err| anyhow::format_err!("cannot create {}: {err}", dir.display()))?;
    let text = serde_json::to_string_pretty(&kernel_json(wand))?;
    std::fs::write(dir.join("kernel.json"), text + "\n").map_err(|err| anyhow::format_err!("cannot write {}: {err}", dir.display()))?;
    Ok(dir)
}
