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

/// The disk, remembering every path it was asked about and what that path was when asked, so a
/// caller can tell later, with a `stat` per path, whether anything a load read has changed
/// (the kernel re-reads the project before a cell only then).
#[derive(Debug, Default)]
pub struct StampedDiskVfs {
    seen: std::cell::RefCell<BTreeMap<PathBuf, Option<FileStamp>>>,
}

/// A path's metadata as far as change detection needs it (`None` in a stamp: it did not exist).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    inode: u64,
    is_file: bool,
    is_dir: bool,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        let meta = std::fs::metadata(path).ok()?;
        // A file replaced by a rename (as many editors save) is a new inode; the crate is
        // otherwise portable, so elsewhere the time and size have to do.
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some(FileStamp { modified: meta.modified().ok(), len: meta.len(), inode, is_file: meta.is_file(), is_dir: meta.is_dir() })
    }
}

/// What a [`StampedDiskVfs`] saw; see [`DiskStamp::changed`].
#[derive(Clone, Debug)]
pub struct DiskStamp {
    seen: BTreeMap<PathBuf, Option<FileStamp>>,
    /// Some path was modified so shortly before it was stamped that a later write could keep
    /// its modification time (file times tick in coarse steps): never trust such a stamp.
    racy: bool,
}

/// How recent a modification makes a stamp untrustworthy (as git's "racily clean" entries):
/// file systems with nanosecond times still advance them by the kernel's clock tick (up to 10 ms);
/// a time with no fraction of a second comes from one that keeps whole (or two) seconds.
fn racy_window(modified: std::time::SystemTime) -> std::time::Duration {
    let fine = modified.duration_since(std::time::UNIX_EPOCH).is_ok_and(|it| it.subsec_nanos() != 0);
    if fine { std::time::Duration::from_millis(50) } else { std::time::Duration::from_secs(2) }
}

impl StampedDiskVfs {
    /// Stats a path before it is read, so a write that lands after the read shows as a change.
    fn stamp(&self, path: &Path) -> Option<FileStamp> {
        let stamp = FileStamp::of(path);
        self.seen.borrow_mut().entry(path.to_path_buf()).or_insert(stamp);
        stamp
    }

    pub fn finish(self) -> DiskStamp {
        let now = std::time::SystemTime::now();
        let seen = self.seen.into_inner();
        let racy = seen.values().flatten().any(|stamp| {
            stamp.modified.is_none_or(|modified| now.duration_since(modified).map_or(true, |age| age < racy_window(modified)))
        });
        DiskStamp { seen, racy }
    }
}

impl DiskStamp {
    /// Whether any path seen is now different (created, deleted, written, replaced, a folder's
    /// entries added or removed), or the stamp was taken too close to a write to tell.
    pub fn changed(&self) -> bool {
        self.racy || self.seen.iter().any(|(path, stamp)| FileStamp::of(path) != *stamp)
    }
}

impl Vfs for StampedDiskVfs {
    fn read(&self, path: &Path) -> Option<Arc<str>> {
        self.stamp(path)?;
        DiskVfs.read(path)
    }

    fn is_file(&self, path: &Path) -> bool {
        self.stamp(path).is_some_and(|stamp| stamp.is_file)
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.stamp(path).is_some_and(|stamp| stamp.is_dir)
    }

    fn list_dir(&self, path: &Path) -> Vec<String> {
        self.stamp(path);
        DiskVfs.list_dir(path)
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

#[cfg(test)]
mod tests {
    use std::fs::{File, FileTimes};
    use std::time::{Duration, SystemTime};

    use super::*;

    /// Backdates a file or folder out of the racy window, as any file not written just now.
    fn age(path: &Path) {
        let old = SystemTime::now() - Duration::from_secs(60);
        File::open(path).unwrap().set_times(FileTimes::new().set_modified(old)).unwrap();
    }

    fn project() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("proj");
        std::fs::create_dir_all(root.join("pipelines/p")).unwrap();
        std::fs::create_dir_all(root.join("data_loaders")).unwrap();
        std::fs::write(root.join("pipelines/p/metadata.yaml"), "blocks:\n- uuid: load\n  type: data_loader\n").unwrap();
        std::fs::write(root.join("data_loaders/load.py"), "x = 1\n").unwrap();
        for path in ["pipelines/p/metadata.yaml", "data_loaders/load.py", "pipelines/p", "pipelines", "data_loaders", ""] {
            age(&root.join(path));
        }
        (dir, root)
    }

    fn stamp_of(root: &Path) -> DiskStamp {
        let vfs = StampedDiskVfs::default();
        crate::load::load_project(&vfs, root);
        vfs.finish()
    }

    #[test]
    fn a_stamp_of_untouched_files_is_unchanged() {
        let (_dir, root) = project();
        assert!(!stamp_of(&root).changed());
    }

    #[test]
    fn a_stamp_sees_edits_new_files_and_deletions() {
        let (_dir, root) = project();
        let edited = stamp_of(&root);
        std::fs::write(root.join("data_loaders/load.py"), "x = 2\n").unwrap();
        age(&root.join("data_loaders/load.py"));
        assert!(edited.changed(), "same length, new content and time");

        let (_dir, root) = project();
        let created = stamp_of(&root);
        std::fs::create_dir_all(root.join("pipelines/q")).unwrap();
        assert!(created.changed(), "a new pipeline folder");

        let (_dir, root) = project();
        let deleted = stamp_of(&root);
        std::fs::remove_file(root.join("data_loaders/load.py")).unwrap();
        age(&root.join("data_loaders"));
        assert!(deleted.changed(), "a deleted block file");
    }

    #[test]
    fn a_stamp_taken_right_after_a_write_is_never_trusted() {
        let set = |path: &Path, time: SystemTime| File::open(path).unwrap().set_times(FileTimes::new().set_modified(time)).unwrap();
        let (_dir, root) = project();
        // Written in the tick the stamp is taken in (a clock step ahead, so a slow machine
        // cannot age it out of the window before the stamp).
        set(&root.join("data_loaders/load.py"), SystemTime::now() + Duration::from_millis(500));
        assert!(stamp_of(&root).changed());
        // On a file system that keeps whole seconds, one second ago is still too close.
        let (_dir, root) = project();
        let whole =
            SystemTime::UNIX_EPOCH + Duration::from_secs(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() - 1);
        set(&root.join("data_loaders/load.py"), whole);
        assert!(stamp_of(&root).changed());
    }
}
