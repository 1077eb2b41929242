//! `dcr-shim healthcheck`, the container's HEALTHCHECK: exit 0 while the server answers,
//! 1 when it does not, asking loopback when the listen address is unspecified.

use std::process::Command;

use crate::binary::{free_port, start_binary};

fn healthcheck(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dcr-shim"))
        .arg("healthcheck")
        .args(args)
        .env_remove("DCR_SHIM_LISTEN")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn healthcheck_exits_zero_only_while_the_server_answers() {
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    crate::helpers::write_tenants(tenants.path(), None);
    // A data directory that does not exist yet (a first start) is made.
    let shim = start_binary(&data.path().join("new"), tenants.path(), &[]);
    let port = shim.base.rsplit(':').next().unwrap().to_owned();
    let (ok, err) = healthcheck(&["--listen", &format!("0.0.0.0:{port}")]);
    assert!(ok, "healthy: {err}");
    // /readyz is 200 although tenant beta's IdP is unreachable: the server can serve.
    let (ok, err) = healthcheck(&["--listen", &format!("127.0.0.1:{port}"), "--ready"]);
    assert!(ok, "ready: {err}");
    drop(shim);

    let (ok, err) = healthcheck(&["--listen", &format!("127.0.0.1:{}", free_port())]);
    assert!(!ok);
    assert!(
        err.contains("dcr-shim healthcheck: http://127.0.0.1:"),
        "{err}"
    );
}
