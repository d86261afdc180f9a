//! File mode: YAML files and folders of them, watched for changes.
//!
//! A file is applied whole or not at all: when it cannot be read or any of its objects is
//! invalid, the objects it gave last time stay in force and the error is reported. A file
//! that disappears takes its objects with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;

use super::{SourceError, parse_documents};
use crate::index::{Index, Object};

/// The files named on the command line and what each last gave.
pub struct FileSource {
    paths: Vec<PathBuf>,
    last_good: BTreeMap<PathBuf, Parsed>,
}

/// A file's objects and warnings as last read, with the hash of the text they came from: a
/// file whose text is unchanged is not parsed again, so one edit among a thousand files costs
/// one parse. (The text is hashed rather than trusting size and modification time, which can
/// stay the same across a quick same-size edit.)
struct Parsed {
    hash: u64,
    objects: Vec<Object>,
    warnings: Vec<SourceError>,
}

/// The outcome of one load: the index to compile, errors that kept a file's last good
/// objects in force, and warnings (skipped kinds, duplicates).
pub struct Load {
    pub index: Index,
    pub errors: Vec<SourceError>,
    pub warnings: Vec<SourceError>,
}

impl FileSource {
    pub fn new(paths: Vec<PathBuf>) -> Self {
        Self { paths, last_good: BTreeMap::new() }
    }

    /// Reads the files that changed since the last load and builds the index.
    pub fn load(&mut self) -> Load {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let files = match yaml_files(&self.paths) {
            Ok(files) => files,
            Err(error) => {
                errors.push(error);
                // Cannot list a folder: keep every file as it was.
                self.last_good.keys().cloned().collect()
            }
        };
        self.last_good.retain(|file, _| files.contains(file));
        for file in &files {
            let text = match std::fs::read_to_string(file) {
                Ok(text) => text,
                Err(e) => {
                    errors.push(SourceError {
                        file: file.clone(),
                        document: None,
                        object: None,
                        message: format!("cannot read: {e}"),
                    });
                    continue;
                }
            };
            let hash = xxhash_rust::xxh3::xxh3_64(text.as_bytes());
            if let Some(parsed) = self.last_good.get(file).filter(|p| p.hash == hash) {
                warnings.extend(parsed.warnings.iter().cloned());
                continue;
            }
            match parse_file(file, &text) {
                Ok((objects, file_warnings)) => {
                    warnings.extend(file_warnings.iter().cloned());
                    self.last_good.insert(file.clone(), Parsed { hash, objects, warnings: file_warnings });
                }
                Err(file_errors) => errors.extend(file_errors),
            }
        }
        let mut index = Index::default();
        for (file, parsed) in &self.last_good {
            for object in &parsed.objects {
                if index.upsert(object.clone()) {
                    warnings.push(SourceError {
                        file: file.clone(),
                        document: None,
                        object: Some(format!("{} {}", object.kind(), object.key())),
                        message: "defined more than once; the last definition (by file name) wins".into(),
                    });
                }
            }
        }
        Load { index, errors, warnings }
    }

    /// Wakes `changed` whenever a file under the paths changes. The watcher stops when the
    /// returned value is dropped.
    pub fn watch(&self, changed: Arc<Notify>) -> notify::Result<notify::RecommendedWatcher> {
        let named: Vec<PathBuf> = self.paths.iter().filter(|p| !p.is_dir()).cloned().collect();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if !event.kind.is_access() && event.paths.iter().any(|p| loads(&named, p)) => {
                changed.notify_one()
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "file watch error"),
        })?;
        for path in &self.paths {
            // Editors replace files by renaming over them: watch the folder, not the file.
            let (target, mode) = if path.is_dir() {
                (path.as_path(), RecursiveMode::Recursive)
            } else {
                (
                    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")),
                    RecursiveMode::NonRecursive,
                )
            };
            watcher.watch(target, mode)?;
        }
        Ok(watcher)
    }
}

/// How long to wait after a change for more changes, so that a burst compiles once.
pub const DEBOUNCE: Duration = Duration::from_millis(10);

/// Whether a change at `path` can change what is loaded: a named file, a YAML file, or a folder
/// (one that is gone can no longer be asked; a path without an extension may have been one).
/// Anything else in a watched folder, such as a log file written there, is not reloaded for.
fn loads(named: &[PathBuf], path: &Path) -> bool {
    is_yaml(path)
        || named.iter().any(|n| n == path || n.file_name() == path.file_name())
        || path.is_dir()
        || (path.extension().is_none() && !path.exists())
}

fn is_yaml(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// Files named directly, and YAML files in named folders (recursively), sorted.
fn yaml_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SourceError> {
    let mut files = Vec::new();
    let mut pending: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            let entries = std::fs::read_dir(&path).map_err(|e| SourceError {
                file: path.clone(),
                document: None,
                object: None,
                message: format!("cannot list folder: {e}"),
            })?;
            for entry in entries.flatten() {
                let p = entry.path();
                if p.is_dir() || is_yaml(&p) {
                    pending.push(p);
                }
            }
        } else {
            files.push(path);
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// The objects of one file's text, or why the file as a whole is not applied.
fn parse_file(file: &Path, text: &str) -> Result<(Vec<Object>, Vec<SourceError>), Vec<SourceError>> {
    let error = |document, object, message| SourceError { file: file.to_path_buf(), document, object, message };
    let (objects, problems) = parse_documents(text).map_err(|e| vec![error(None, None, e)])?;
    let (skipped, invalid): (Vec<_>, Vec<_>) = problems.into_iter().partition(|p| p.skipped);
    let as_errors = |list: Vec<super::yaml::DocumentError>| -> Vec<SourceError> {
        list.into_iter().map(|p| error(Some(p.document), p.object, p.message)).collect()
    };
    if !invalid.is_empty() {
        return Err(as_errors(invalid));
    }
    Ok((objects, as_errors(skipped)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec: {}\n";

    #[test]
    fn a_broken_file_keeps_its_last_good_objects() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("routes.yaml");
        std::fs::write(&file, ROUTE).unwrap();
        let mut source = FileSource::new(vec![dir.path().to_path_buf()]);
        let first = source.load();
        assert!(first.errors.is_empty());
        assert_eq!(first.index.http_routes.len(), 1);

        std::fs::write(&file, "kind: [broken").unwrap();
        let second = source.load();
        assert_eq!(second.errors.len(), 1);
        assert_eq!(second.errors[0].file, file);
        assert_eq!(second.index.http_routes.len(), 1, "the last good route is kept");
    }

    #[test]
    fn one_invalid_object_keeps_the_whole_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.yaml");
        std::fs::write(&file, ROUTE).unwrap();
        let mut source = FileSource::new(vec![file.clone()]);
        source.load();
        let bad = format!(
            "{ROUTE}---\napiVersion: v1\nkind: Service\nmetadata: {{name: s}}\nspec: {{ports: [{{port: x}}]}}\n"
        );
        std::fs::write(&file, bad.replace("name: r", "name: r2")).unwrap();
        let load = source.load();
        assert_eq!(load.errors.len(), 1);
        assert_eq!(load.errors[0].object.as_deref(), Some("Service default/s"));
        assert!(load.index.http_routes.keys().any(|k| k.name == "r"), "old version still in force");
        assert!(!load.index.http_routes.keys().any(|k| k.name == "r2"), "nothing half-applied");
    }

    #[test]
    fn a_same_size_edit_is_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.yaml");
        std::fs::write(&file, ROUTE).unwrap();
        let mut source = FileSource::new(vec![file.clone()]);
        assert!(source.load().index.http_routes.keys().any(|k| k.name == "r"));
        std::fs::write(&file, ROUTE.replace("name: r}", "name: s}")).unwrap();
        let load = source.load();
        assert!(load.index.http_routes.keys().any(|k| k.name == "s"), "an edit of the same size is read");
        assert!(!load.index.http_routes.keys().any(|k| k.name == "r"));
    }

    #[test]
    fn only_changes_to_what_is_loaded_trigger_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gantry.log"), "a log line").unwrap();
        assert!(!loads(&[], &dir.path().join("gantry.log")), "a log file in the folder is no reason to reload");
        assert!(loads(&[], &dir.path().join("r.yml")));
        assert!(loads(&[dir.path().join("config")], &dir.path().join("config")), "a file named on the command line");
        assert!(loads(&[], dir.path()), "a folder");
    }

    #[test]
    fn a_removed_file_takes_its_objects_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.yml");
        std::fs::write(&file, ROUTE).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not yaml").unwrap();
        let mut source = FileSource::new(vec![dir.path().to_path_buf()]);
        assert_eq!(source.load().index.http_routes.len(), 1);
        std::fs::remove_file(&file).unwrap();
        let load = source.load();
        assert!(load.index.http_routes.is_empty());
        assert!(load.errors.is_empty());
    }
}
