//! `--audit-log PATH`: the audit events (target `audit`) as JSON lines in a file of their own,
//! one line per event written whole, reopened on SIGHUP so that logrotate can move it away.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

/// The audit file, shared by the log layer and the SIGHUP handler.
#[derive(Clone)]
pub struct AuditFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

/// Opens for appending, never through a symlink, and makes the file readable by its owner only
/// (also when it existed already, e.g. made by logrotate with another mode).
fn open(path: &Path) -> std::io::Result<File> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(std::io::Error::other("it is a symbolic link"));
    }
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(file)
}

impl AuditFile {
    pub fn open(path: &Path) -> Result<Self, String> {
        let file =
            open(path).map_err(|e| format!("cannot open the audit log {}: {e}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// Opens the path again (after a rotation moved the old file away).
    pub fn reopen(&self) -> Result<(), String> {
        let file = open(&self.path)
            .map_err(|e| format!("cannot reopen the audit log {}: {e}", self.path.display()))?;
        *self.file.lock().unwrap_or_else(|p| p.into_inner()) = file;
        Ok(())
    }
}

/// One event's bytes, written to the file in one piece when the event is done.
pub struct EventWriter {
    file: Arc<Mutex<File>>,
    buffer: Vec<u8>,
}

impl Write for EventWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // An audit line that cannot be written is lost, never half-written over another.
        let _ = file.write_all(&self.buffer);
    }
}

impl<'a> MakeWriter<'a> for AuditFile {
    type Writer = EventWriter;

    fn make_writer(&'a self) -> Self::Writer {
        EventWriter {
            file: self.file.clone(),
            buffer: Vec::with_capacity(512),
        }
    }
}
