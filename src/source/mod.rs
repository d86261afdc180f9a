//! Sources turn the outside world into index objects: YAML files (`file`) or the Kubernetes
//! API (`k8s`). Nothing downstream knows which one it was.

pub mod file;
pub mod k8s;
mod yaml;

use std::path::PathBuf;

use serde::Serialize;

pub use yaml::parse_documents;

/// Something a source could not read, shown in the logs and on `/config`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceError {
    pub file: PathBuf,
    /// 1-based index of the YAML document in the file, when the error is about one document.
    pub document: Option<usize>,
    /// `Kind namespace/name` when known.
    pub object: Option<String>,
    pub message: String,
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(d) = self.document {
            write!(f, " (document {d})")?;
        }
        if let Some(o) = &self.object {
            write!(f, " {o}")?;
        }
        write!(f, ": {}", self.message)
    }
}
