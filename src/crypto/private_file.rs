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

/// Creates the directory `path` readable by the owner alone (0700, whatever the umask), if it
/// does not exist; an existing one is left as it is, with a warning when its group or others
/// may read it (an operator may have chosen that; the shim does not take it back).
pub(crate) fn create_private_dir(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{mode:o}"),
                    "the directory holding the server secret and the store can be read by its group or others; chmod 700 it");
            }
        }
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(path)?;
        // The umask may have taken the owner's bits too: set them exactly.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    builder.create(path)
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
