//! The server's state: open documents (ropes over the disk), the projects of the workspace and
//! the last run of every pipeline. Changed only by document and file notifications, each
//! applied completely while the lock is held; never held across an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use pipeline::runrecord::{self, RunRecord};
use pipeline::vfs::{self, DiskVfs, OverlayVfs, Root, Vfs};
use pipeline::{Pipeline, Project};
use ropey::Rope;
use tower_lsp_server::ls_types::{self as lsp, Uri};

use crate::convert::{self, Encoding, RangeCache};

pub struct Document {
    pub rope: Rope,
    pub version: i32,
    /// The rope's text, refreshed after each change (the model reads `&str`).
    pub text: Arc<str>,
}

/// The last recorded run of one pipeline and when its file changed.
pub struct RunState {
    pub modified: Option<(SystemTime, u64)>,
    pub record: Option<RunRecord>,
}

#[derive(Default)]
pub struct Session {
    pub encoding: Encoding,
    pub folders: Vec<PathBuf>,
    pub documents: HashMap<PathBuf, Document>,
    pub overlay: BTreeMap<PathBuf, Arc<str>>,
    /// Projects by root. Pipelines whose YAML does not parse keep their last good model here.
    pub projects: BTreeMap<PathBuf, Project>,
    /// Diagnostics of pipelines whose YAML is broken (their model above is the last good one).
    pub broken: HashMap<(PathBuf, String), Vec<pipeline::Diagnostic>>,
    pub runs: HashMap<(PathBuf, String), RunState>,
    /// What the client was last sent, by file.
    pub published: HashMap<PathBuf, Vec<lsp::Diagnostic>>,
    /// True while the workspace index is being built off the message loop.
    pub indexing: bool,
    /// Whether the client lets the server register file watchers.
    pub dynamic_watch: bool,
}

/// One `publishDiagnostics` to send.
pub struct Publish {
    pub uri: Uri,
    pub diagnostics: Vec<lsp::Diagnostic>,
    pub version: Option<i32>,
}

/// Every project under the workspace folders: folders holding `pipelines/*/metadata.yaml`
/// (and the sub-projects of platform roots), loaded from disk.
pub fn discover(folders: &[PathBuf]) -> Vec<PathBuf> {
    let vfs = DiskVfs;
    let mut roots = Vec::new();
    for folder in folders {
        if let Some(Root::Project(root)) = vfs::find_root(&vfs, folder) {
            roots.push(root);
            continue;
        }
        walk(&vfs, folder, 0, &mut roots);
    }
    roots.sort();
    roots.dedup();
    roots
}

fn walk(vfs: &DiskVfs, dir: &Path, depth: usize, roots: &mut Vec<PathBuf>) {
    if depth > 6 {
        return;
    }
    if let Some(projects) = vfs::platform_projects(vfs, dir) {
        roots.extend(projects.into_iter().filter(|project| vfs::is_project_dir(vfs, project)));
    }
    if vfs::is_project_dir(vfs, dir) {
        roots.push(dir.to_path_buf());
        return;
    }
    for name in vfs.list_dir(dir) {
        if name.starts_with('.') || name == "node_modules" || name == "target" {
            continue;
        }
        let child = dir.join(&name);
        if vfs.is_dir(&child) {
            walk(vfs, &child, depth + 1, roots);
        }
    }
}

pub fn load(roots: &[PathBuf], overlay: &BTreeMap<PathBuf, Arc<str>>) -> Vec<Project> {
    let vfs = OverlayVfs { base: &DiskVfs, overlay };
    roots.iter().map(|root| pipeline::load::load_project(&vfs, root)).collect()
}

impl Session {
    pub fn text(&self, path: &Path) -> Option<Arc<str>> {
        if let Some(text) = self.overlay.get(path) {
            return Some(text.clone());
        }
        if let Some(source) = self.project_of(path).and_then(|(project, rel)| project.sources.get(rel)) {
            return Some(source.text.clone());
        }
        DiskVfs.read(path)
    }

    /// The project holding `path` (the deepest root above it) and the path relative to it.
    pub fn project_of<'a>(&self, path: &'a Path) -> Option<(&Project, &'a Path)> {
        let (_, project) = self.projects.iter().rev().find(|(root, _)| path.starts_with(root))?;
        Some((project, path.strip_prefix(&project.root).ok()?))
    }

    pub fn version(&self, path: &Path) -> Option<i32> {
        self.documents.get(path).map(|doc| doc.version)
    }

    /// Loads the project of a file outside the indexed ones (a file opened from elsewhere).
    pub fn ensure_project(&mut self, path: &Path) -> Option<PathBuf> {
        if let Some((project, _)) = self.project_of(path) {
            return Some(project.root.clone());
        }
        if self.indexing && self.folders.iter().any(|folder| path.starts_with(folder)) {
            return None;
        }
        let roots = match vfs::find_root(&DiskVfs, path)? {
            Root::Project(root) => vec![root],
            Root::Platform { projects, .. } => projects,
        };
        let found = roots.iter().find(|root| path.starts_with(root)).cloned();
        for project in load(&roots, &self.overlay) {
            self.insert_project(project);
        }
        found
    }

    pub fn insert_project(&mut self, project: Project) {
        let root = project.root.clone();
        self.broken.retain(|(of, _), _| *of != root);
        let uuids: Vec<String> = project.pipelines.keys().cloned().collect();
        self.projects.insert(root.clone(), project);
        for uuid in uuids {
            self.refresh_run(&root, &uuid);
        }
    }

    /// Re-reads what a changed file affects. Returns the root of the project it belongs to.
    pub fn file_changed(&mut self, path: &Path) -> Option<PathBuf> {
        if path.components().any(|it| it.as_os_str() == ".wand") && path.file_name().is_some_and(|name| name == "latest.json") {
            return self.run_file_changed(path);
        }
        let root = self.project_of(path)?.0.root.clone();
        let rel = path.strip_prefix(&root).ok()?.to_path_buf();
        let overlay = std::mem::take(&mut self.overlay);
        {
            let vfs = OverlayVfs { base: &DiskVfs, overlay: &overlay };
            let project = self.projects.get_mut(&root)?;
            let parts: Vec<&str> = rel.iter().filter_map(|it| it.to_str()).collect();
            match parts.as_slice() {
                ["metadata.yaml"] | ["io_config.yaml"] => pipeline::load::reload_project_files(&vfs, project),
                ["pipelines", uuid, "metadata.yaml" | "triggers.yaml"] => {
                    let uuid = (*uuid).to_owned();
                    let previous = project.pipelines.get(&uuid).cloned();
                    pipeline::load::reload_pipeline(&vfs, project, &uuid);
                    let key = (root.clone(), uuid.clone());
                    match (project.pipelines.get(&uuid), previous) {
                        // The YAML broke: keep the last good model for navigation and show only
                        // the syntax error.
                        (Some(new), Some(old)) if new.doc.is_none() && !old.blocks.is_empty() => {
                            self.broken.insert(key, new.load_diagnostics.clone());
                            let old = Pipeline { load_diagnostics: Vec::new(), ..old };
                            let files: Vec<PathBuf> = old.blocks.iter().filter_map(|block| block.file.clone()).collect();
                            project.pipelines.insert(uuid.clone(), old);
                            // Reloading forgot the files only the broken pipeline used.
                            for file in files {
                                if !project.sources.contains_key(&file) {
                                    pipeline::load::reload_source(&vfs, project, &file);
                                }
                            }
                        }
                        _ => {
                            self.broken.remove(&key);
                        }
                    }
                }
                _ => {
                    let used = project.sources.contains_key(&rel)
                        || project.pipelines.values().any(|p| p.blocks.iter().any(|b| b.file.as_deref() == Some(&*rel)));
                    if used {
                        pipeline::load::reload_source(&vfs, project, &rel);
                    }
                }
            }
        }
        self.overlay = overlay;
        if let ["pipelines", uuid, ..] = rel.iter().filter_map(|it| it.to_str()).collect::<Vec<_>>().as_slice() {
            let uuid = (*uuid).to_owned();
            self.refresh_run(&root, &uuid);
        }
        Some(root)
    }

    fn run_file_changed(&mut self, path: &Path) -> Option<PathBuf> {
        let keys: Vec<(PathBuf, String)> = self
            .projects
            .values()
            .flat_map(|project| {
                let dir = project.variables_dir();
                project
                    .pipelines
                    .keys()
                    .filter(move |uuid| runrecord::runs_dir(&dir, uuid).join("latest.json") == path)
                    .map(move |uuid| (project.root.clone(), uuid.clone()))
            })
            .collect();
        let mut root = None;
        for (of, uuid) in keys {
            self.refresh_run(&of, &uuid);
            root = Some(of);
        }
        root
    }

    /// Reads a pipeline's `latest.json` again when its modification time changed. Returns
    /// whether the record changed.
    pub fn refresh_run(&mut self, root: &Path, uuid: &str) -> bool {
        let Some(project) = self.projects.get(root) else { return false };
        let dir = project.variables_dir();
        let file = runrecord::runs_dir(&dir, uuid).join("latest.json");
        let modified = std::fs::metadata(&file).and_then(|meta| Ok((meta.modified()?, meta.len()))).ok();
        let key = (root.to_path_buf(), uuid.to_owned());
        if self.runs.get(&key).is_some_and(|state| state.modified == modified) {
            return false;
        }
        let record = modified.and_then(|_| runrecord::read_latest(&dir, uuid));
        self.runs.insert(key, RunState { modified, record });
        true
    }

    /// Polls every run record of a project (on open and save). Returns whether any changed.
    pub fn poll_runs(&mut self, root: &Path) -> bool {
        let uuids: Vec<String> = self.projects.get(root).map(|project| project.pipelines.keys().cloned().collect()).unwrap_or_default();
        let mut changed = false;
        for uuid in uuids {
            changed |= self.refresh_run(root, &uuid);
        }
        changed
    }

    pub fn run(&self, root: &Path, pipeline: &str) -> Option<&RunRecord> {
        self.runs.get(&(root.to_path_buf(), pipeline.to_owned()))?.record.as_ref()
    }

    /// Model diagnostics of a project: the checks, with broken pipelines showing only their
    /// syntax errors.
    pub fn model_diagnostics(&self, project: &Project) -> Vec<pipeline::Diagnostic> {
        let mut diagnostics = project.load_diagnostics.clone();
        for pipeline in project.pipelines.values() {
            match self.broken.get(&(project.root.clone(), pipeline.uuid.clone())) {
                Some(broken) => diagnostics.extend(broken.iter().cloned()),
                None => diagnostics.extend(pipeline::check::pipeline(project, pipeline)),
            }
        }
        pipeline::check::normalize(&mut diagnostics);
        diagnostics
    }

    /// Everything a project's files should show now, by absolute path.
    pub fn diagnostics(&self, project: &Project) -> BTreeMap<PathBuf, Vec<lsp::Diagnostic>> {
        let mut ranges = RangeCache::new(self.encoding, |path: &Path| self.text(path));
        let mut by_file: BTreeMap<PathBuf, Vec<lsp::Diagnostic>> = BTreeMap::new();
        for diagnostic in self.model_diagnostics(project) {
            let converted = ranges.diagnostic(&diagnostic);
            by_file.entry(diagnostic.file.clone()).or_default().push(converted);
        }
        for (file, diagnostic) in crate::handlers::runs::diagnostics(self, project, &mut ranges) {
            by_file.entry(file).or_default().push(diagnostic);
        }
        by_file
    }

    /// The notifications that bring the client up to date with the projects at `roots`:
    /// changed files only, and empty lists for files whose diagnostics went away.
    pub fn publish(&mut self, roots: &[PathBuf]) -> Vec<Publish> {
        self.publish_forcing(roots, &[])
    }

    /// [`Session::publish`], also sending `force`'s diagnostics when they did not change (a
    /// freshly opened document gets its list, empty or not).
    pub fn publish_forcing(&mut self, roots: &[PathBuf], force: &[PathBuf]) -> Vec<Publish> {
        let mut out = Vec::new();
        for file in force {
            self.published.remove(file);
        }
        for root in roots {
            let Some(project) = self.projects.get(root) else { continue };
            let now = self.diagnostics(project);
            let stale: Vec<PathBuf> =
                self.published.keys().filter(|file| file.starts_with(root) && !now.contains_key(*file)).cloned().collect();
            for file in stale {
                self.published.remove(&file);
                out.push(Publish { uri: convert::uri(&file), diagnostics: Vec::new(), version: self.version(&file) });
            }
            for file in force.iter().filter(|file| file.starts_with(root) && !now.contains_key(*file)) {
                out.push(Publish { uri: convert::uri(file), diagnostics: Vec::new(), version: self.version(file) });
            }
            for (file, diagnostics) in now {
                if self.published.get(&file) == Some(&diagnostics) {
                    continue;
                }
                out.push(Publish { uri: convert::uri(&file), diagnostics: diagnostics.clone(), version: self.version(&file) });
                self.published.insert(file, diagnostics);
            }
        }
        out
    }

    /// Every project, for a full refresh.
    pub fn roots(&self) -> Vec<PathBuf> {
        self.projects.keys().cloned().collect()
    }
}
