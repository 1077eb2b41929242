//! Records the commit the binary is built from, for the `dcr_shim_build_info` metric:
//! `DCR_SHIM_COMMIT` when the build sets it (a container build without `.git`), else what git
//! says, else `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=DCR_SHIM_COMMIT");
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
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
