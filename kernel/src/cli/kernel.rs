//! `wand kernel -f CONNECTION_FILE` runs the Jupyter kernel; `wand kernel install` writes its
//! kernelspec.

use std::path::{Path, PathBuf};

use crate::jupyter::install::{self, Target};

use super::EXIT_OK;

pub(super) fn run(connection_file: &Path) -> anyhow::Result<i32> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WAND_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
    crate::jupyter::kernel::run(connection_file)?;
    Ok(EXIT_OK)
}

pub(super) fn install(user: bool, sys_prefix: bool, prefix: Option<PathBuf>) -> anyhow::Result<i32> {
    let target = match (prefix, sys_prefix, user) {
        (Some(prefix), _, _) => Target::Prefix(prefix),
        (None, true, _) => Target::SysPrefix,
        _ => Target::User,
    };
    let wand = std::env::current_exe()?.canonicalize()?;
    let dir = install::install(&target, &wand)?;
    println!("installed kernelspec wand in {}", dir.display());
    Ok(EXIT_OK)
}
