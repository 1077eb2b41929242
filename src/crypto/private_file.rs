//! Files that hold secrets the operator provides (the server secret, admin tokens, the store's
//! password): read only while their group and others cannot read them.

use std::path::Path;

/// Why a private file was not read.
#[derive(Debug)]
pub(crate) enum PrivateFileError {
    Read(std::io::Error),
    /// Its group or others may read it; the permission bits.
    Exposed(u32),
}

/// The text of `path`, refused if the file is readable beyond its owner.
pub(crate) fn read_private(path: &Path) -> Result<String, PrivateFileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(PrivateFileError::Read)?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(PrivateFileError::Exposed(mode & 0o777));
        }
    }
    std::fs::read_to_string(path).map_err(PrivateFileError::Read)
}

/// The message for an operator: `what` names the file's role ("the admin token file").
pub(crate) fn describe(what: &str, path: &Path, e: &PrivateFileError) -> String {
    match e {
        PrivateFileError::Read(e) => format!("cannot read {what} {}: {e}", path.display()),
        PrivateFileError::Exposed(mode) => format!(
            "{what} {} can be read by its group or others (mode {mode:o}); chmod 600",
            path.display()
        ),
    }
}
