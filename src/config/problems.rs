//! What is wrong with a tenant file, as validation finds it: each problem with its file, its
//! field and what to do (`validate.rs`, `entra_rules.rs`).

use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong with a tenant file: which file, which field, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub(crate) file: PathBuf,
    pub(crate) field: String,
    pub(crate) message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.file.display(),
            self.field,
            self.message
        )
    }
}

/// Whether the apps' credential files (secrets, keys, certificates, tokens) are read while
/// validating: always to serve; not for `entra plan`, which is written before they exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialFiles {
    Read,
    Skip,
}

pub(crate) struct Problems {
    file: PathBuf,
    pub(crate) list: Vec<Problem>,
    pub(crate) credential_files: CredentialFiles,
}

impl Problems {
    pub(crate) fn new(file: &Path) -> Self {
        Self {
            file: file.to_owned(),
            list: Vec::new(),
            credential_files: CredentialFiles::Read,
        }
    }

    pub(crate) fn add(&mut self, field: &str, message: impl Into<String>) {
        self.list.push(Problem {
            file: self.file.clone(),
            field: field.to_owned(),
            message: message.into(),
        });
    }
}
