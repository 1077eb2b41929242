//! Files that hold secrets the operator provides (the server secret, admin tokens, the store's
//! password, app client secrets): read only while no one but their owner, and at most the
//! group this process runs in, can read them.
//!
//! A Kubernetes Secret volume mounts each key as a root-owned file (a symlink into `..data/`)
//! with the volume's `defaultMode` and the pod's `fsGroup` as its group: `0440` with the
//! process in that group is the tightest mode such a volume offers, so it is accepted. A file
//! others may read or write, or whose group may write it, or whose group-read reaches a group
//! this process is not in, is refused with what was found and what is accepted.

use std::path::Path;

/// Why a private file was not read.
#[derive(Debug)]
pub(crate) enum PrivateFileError {
    Read(std::io::Error),
    /// A directory where a file was expected (a Secret volume's mount point instead of the
    /// key's file inside it).
    Directory,
    /// Someone besides the owner (and the process's own group) may read or change it.
    Exposed(Exposure),
}

/// What made a file too open: its mode, owner and group, and which rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exposure {
    pub mode: u32,
    pub owner: u32,
    pub group: u32,
    pub why: &'static str,
    /// The process's effective group and supplementary groups, as checked.
    pub own_groups: Vec<u32>,
}

impl std::fmt::Display for Exposure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let groups: Vec<String> = self.own_groups.iter().map(u32::to_string).collect();
        write!(
            f,
            "mode {:04o}, owner uid {}, group gid {}: {}. Accepted: readable by its owner alone (0600, 0400), or by its owner and group (0640, 0440) when the group is one of this process's groups (gid {}) and the owner root or this process's user, as a Kubernetes Secret volume with defaultMode 0440 and the pod's fsGroup mounts it (every member of that group can read it then)",
            self.mode,
            self.owner,
            self.group,
            self.why,
            groups.join(", ")
        )
    }
}

/// The text of `path` (after symlinks: a Secret volume's files are links into `..data/`),
/// refused if it is exposed (see the module's rules). The mode is checked before the file is
/// opened (so that a file this process may not open is still refused with its mode and owner)
/// and again on the open file (so that a link swapped in between changes nothing).
pub(crate) fn read_private(path: &Path) -> Result<String, PrivateFileError> {
    use std::io::Read;
    check(&std::fs::metadata(path).map_err(PrivateFileError::Read)?)?;
    let mut file = std::fs::File::open(path).map_err(PrivateFileError::Read)?;
    check(&file.metadata().map_err(PrivateFileError::Read)?)?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(PrivateFileError::Read)?;
    Ok(text)
}

/// Whether a file of this metadata may hold a secret.
fn check(meta: &std::fs::Metadata) -> Result<(), PrivateFileError> {
    if meta.is_dir() {
        return Err(PrivateFileError::Directory);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let own_groups = own_groups();
        let owner_trusted = meta.uid() == 0 || meta.uid() == rustix::process::geteuid().as_raw();
        let mode = meta.mode() & 0o7777;
        if let Some(why) = exposure(mode, meta.gid(), &own_groups, owner_trusted) {
            return Err(PrivateFileError::Exposed(Exposure {
                mode,
                owner: meta.uid(),
                group: meta.gid(),
                why,
                own_groups,
            }));
        }
    }
    Ok(())
}

/// The rule a file of `mode` and group `gid` breaks, if any, for a process in `own_groups`.
/// Group-read is accepted only from a file root or this process owns (`owner_trusted`): any
/// other owner could rewrite it.
fn exposure(mode: u32, gid: u32, own_groups: &[u32], owner_trusted: bool) -> Option<&'static str> {
    if mode & 0o002 != 0 {
        Some("others may change it")
    } else if mode & 0o004 != 0 {
        Some("others may read it")
    } else if mode & 0o001 != 0 {
        Some("others may execute it")
    } else if mode & 0o020 != 0 {
        Some("its group may change it")
    } else if mode & 0o040 != 0 && !own_groups.contains(&gid) {
        Some("its group may read it and this process is not in that group")
    } else if mode & 0o040 != 0 && !owner_trusted {
        Some("its group may read it and its owner is neither root nor this process's user")
    } else if mode & 0o010 != 0 {
        Some("its group may execute it")
    } else {
        None
    }
}

/// The effective group and the supplementary groups of this process.
#[cfg(unix)]
fn own_groups() -> Vec<u32> {
    let mut groups = vec![rustix::process::getegid().as_raw()];
    // getgroups fails only with more groups than the kernel allows, never here; without the
    // list, a group-readable file is refused (the safe side), and the message says which.
    for g in rustix::process::getgroups().unwrap_or_default() {
        if !groups.contains(&g.as_raw()) {
            groups.push(g.as_raw());
        }
    }
    groups
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
        PrivateFileError::Directory => format!(
            "{what} {} is a directory: name the file inside it (for a Kubernetes Secret volume, the mount path and the key)",
            path.display()
        ),
        PrivateFileError::Exposed(exposure) => format!(
            "{what} {} is too open ({exposure}); chmod 600 it, or 440 with its group set to this process's group",
            path.display()
        ),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_modes_a_secret_volume_gives_are_accepted_only_in_its_group() {
        let ours = [10001, 2000];
        assert_eq!(exposure(0o600, 0, &ours, true), None);
        assert_eq!(exposure(0o400, 0, &ours, true), None);
        // A Secret volume with defaultMode 0440 and fsGroup 2000 (root-owned files).
        assert_eq!(exposure(0o440, 2000, &ours, true), None);
        assert_eq!(exposure(0o640, 2000, &ours, true), None);
        let refused = |mode, gid, trusted| exposure(mode, gid, &ours, trusted).unwrap_or_default();
        assert!(refused(0o440, 3000, true).contains("not in that group"));
        // Group-readable, owned by someone who could rewrite it.
        assert!(refused(0o440, 2000, false).contains("owner"));
        assert_eq!(exposure(0o600, 0, &ours, false), None);
        // Kubernetes' default mode for a Secret volume: readable by anyone.
        assert_eq!(refused(0o644, 2000, true), "others may read it");
        assert_eq!(refused(0o444, 2000, true), "others may read it");
        assert_eq!(refused(0o602, 0, true), "others may change it");
        assert_eq!(refused(0o460, 2000, true), "its group may change it");
    }

    #[test]
    fn a_refusal_says_what_was_found_and_what_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_private(&path).unwrap_err();
        let text = describe("the server secret", &path, &e);
        assert!(text.contains("mode 0644"), "{text}");
        assert!(text.contains("owner uid"), "{text}");
        assert!(text.contains("others may read it"), "{text}");
        assert!(text.contains("0440"), "{text}");

        // The file's own group is the process's: group-read is accepted.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o440)).unwrap();
        assert_eq!(read_private(&path).unwrap(), "x");

        let e = read_private(dir.path()).unwrap_err();
        assert!(describe("the server secret", dir.path(), &e).contains("is a directory"));
    }

    /// A Secret volume's layout: the key is a symlink to `..data/<key>`, `..data` a symlink to
    /// a timestamped directory; the mode checked is the file's, not the link's.
    #[test]
    fn a_secret_volume_layout_is_read_through_its_links() {
        let dir = tempfile::tempdir().unwrap();
        let stamped = dir.path().join("..2026_12_07_12_00_00.1");
        std::fs::create_dir(&stamped).unwrap();
        std::fs::write(stamped.join("server-secret"), "s").unwrap();
        std::fs::set_permissions(
            stamped.join("server-secret"),
            std::fs::Permissions::from_mode(0o440),
        )
        .unwrap();
        std::os::unix::fs::symlink(&stamped, dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/server-secret", dir.path().join("server-secret"))
            .unwrap();
        assert_eq!(
            read_private(&dir.path().join("server-secret")).unwrap(),
            "s"
        );
    }
}
