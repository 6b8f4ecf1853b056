//! The only way the model reads files.
//!
//! Loading goes through the [`Vfs`] trait, so the same code reads a project from disk (the CLI,
//! the kernel), from disk overlaid with a client's unsaved buffers (the language server) or
//! from memory (tests). [`DiskVfs`] is the one place that touches the file system.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub trait Vfs {
    /// The text of a file, `None` when it does not exist or is not UTF-8.
    fn read(&self, path: &Path) -> Option<Arc<str>>;
    fn is_file(&self, path: &Path) -> bool;
    fn is_dir(&self, path: &Path) -> bool;
    /// Names of the entries of a folder, sorted; empty when it is not a folder.
    fn list_dir(&self, path: &Path) -> Vec<String>;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct DiskVfs;

impl Vfs for DiskVfs {
    fn read(&self, path: &Path) -> Option<Arc<str>> {
        std::fs::read_to_string(path).ok().map(Arc::from)
    }

    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn list_dir(&self, path: &Path) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(path) else { return Vec::new() };
        let mut names: Vec<String> = entries.filter_map(|entry| entry.ok()?.file_name().into_string().ok()).collect();
        names.sort();
        names
    }
}

/// Files held in memory, by absolute path. Folders exist when a file lies below them.
#[derive(Clone, Debug, Default)]
pub struct MemVfs {
    pub files: BTreeMap<PathBuf, Arc<str>>,
}

impl MemVfs {
    pub fn insert(&mut self, path: impl Into<PathBuf>, text: &str) {
        self.files.insert(path.into(), Arc::from(text));
    }
}

impl Vfs for MemVfs {
    fn read(&self, path: &Path) -> Option<Arc<str>> {
        self.files.get(path).cloned()
    }

    fn is_file(&self, path: &Path) -> bool {
        self.files.contains_key(path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.files.range(path.to_path_buf()..).next().is_some_and(|(file, _)| file.starts_with(path) && file != path)
    }

    fn list_dir(&self, path: &Path) -> Vec<String> {
        let mut names: Vec<String> = self
            .files
            .keys()
            .filter_map(|file| file.strip_prefix(path).ok()?.components().next())
            .filter_map(|first| first.as_os_str().to_str().map(str::to_owned))
            .collect();
        names.dedup();
        names
    }
}

/// Files a client has open, laid over another [`Vfs`] (the language server's view).
pub struct OverlayVfs<'a> {
    pub base: &'a dyn Vfs,
    pub overlay: &'a BTreeMap<PathBuf, Arc<str>>,
}

impl Vfs for OverlayVfs<'_> {
    fn read(&self, path: &Path) -> Option<Arc<str>> {
        self.overlay.get(path).cloned().or_else(|| self.base.read(path))
    }

    fn is_file(&self, path: &Path) -> bool {
        self.overlay.contains_key(path) || self.base.is_file(path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.base.is_dir(path)
    }

    fn list_dir(&self, path: &Path) -> Vec<String> {
        self.base.list_dir(path)
    }
}

/// What a path belongs to: a project, or a platform root listing sub-projects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Root {
    Project(PathBuf),
    Platform { root: PathBuf, projects: Vec<PathBuf> },
}

/// Whether `dir` is a Mage project: it holds `pipelines/*/metadata.yaml`, or a project
/// `metadata.yaml` beside an `io_config.yaml` (spec 1.1).
pub fn is_project_dir(vfs: &dyn Vfs, dir: &Path) -> bool {
    if dir.parent().and_then(Path::file_name).is_some_and(|name| name == "pipelines") {
        return false;
    }
    let pipelines = dir.join("pipelines");
    if vfs.list_dir(&pipelines).iter().any(|name| vfs.is_file(&pipelines.join(name).join("metadata.yaml"))) {
        return true;
    }
    vfs.is_file(&dir.join("metadata.yaml")) && vfs.is_file(&dir.join("io_config.yaml"))
}

/// The sub-projects a platform root's `settings.yaml` lists, when it lists any.
pub fn platform_projects(vfs: &dyn Vfs, dir: &Path) -> Option<Vec<PathBuf>> {
    let text = vfs.read(&dir.join("settings.yaml"))?;
    let (doc, _) = crate::yaml::parse(&crate::yaml::mask_jinja(&text));
    let projects = doc?.get("projects")?.as_map()?.iter().filter_map(|entry| entry.key.as_str().map(|name| dir.join(name))).collect();
    Some(projects)
}

/// Finds the project (or platform root) that `path` lies in, searching upward.
pub fn find_root(vfs: &dyn Vfs, path: &Path) -> Option<Root> {
    let start = if vfs.is_file(path) { path.parent()? } else { path };
    if let Some(projects) = platform_projects(vfs, start) {
        return Some(Root::Platform { root: start.to_path_buf(), projects });
    }
    start.ancestors().find(|dir| is_project_dir(vfs, dir)).map(|dir| Root::Project(dir.to_path_buf()))
}

/// The platform root above a project, if one lists it.
pub fn platform_root_of(vfs: &dyn Vfs, project: &Path) -> Option<PathBuf> {
    let parent = project.parent()?;
    parent
        .ancestors()
        .find(|dir| platform_projects(vfs, dir).is_some_and(|projects| projects.iter().any(|it| project.starts_with(it))))
        .map(Path::to_path_buf)
}
