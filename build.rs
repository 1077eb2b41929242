//! Records the commit the binary is built from, for the `dcr_shim_build_info` metric:
//! `DCR_SHIM_COMMIT` when the build sets it (a container build without `.git`), else what git
//! says, else `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=DCR_SHIM_COMMIT");
    // Where git keeps HEAD and the branches: in a worktree (`.git` is then a file) HEAD is in
    // the worktree's own directory and the branches in the common one. Without these lines a
    // build after a new commit would keep reporting the old one.
    let git_path = |arg: &str| {
        let out = Command::new("git").args(["rev-parse", arg]).output().ok()?;
        out.status
            .success()
            .then(|| std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    };
    let (git_dir, common_dir) = (git_path("--git-dir"), git_path("--git-common-dir"));
    let watched = [
        git_dir.as_ref().map(|d| d.join("HEAD")),
        common_dir.as_ref().map(|d| d.join("refs/heads")),
        common_dir.as_ref().map(|d| d.join("packed-refs")),
    ];
    for path in watched.into_iter().flatten().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let commit = std::env::var("DCR_SHIM_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        })
        .filter(|c| c.chars().all(|ch| ch.is_ascii_alphanumeric()) && !c.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=DCR_SHIM_COMMIT={commit}");
}
