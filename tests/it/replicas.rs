//! Two servers on one PostgreSQL database, as two replicas behind a load balancer: what one
//! acknowledges, the other serves. Runs when `DCR_SHIM_TEST_POSTGRES` names a server
//! (`.ci/run` starts one); skipped otherwise.

use serde_json::{Value, json};

use crate::binary::{dev_login, refresh_at, start_replica};
use crate::helpers::write_tenants;
use crate::store_suite::fresh_postgres_database;

#[tokio::test]
async fn a_login_on_one_replica_refreshes_on_the_other() {
    let Some(url) = fresh_postgres_database().await else {
        eprintln!("skipped: DCR_SHIM_TEST_POSTGRES is not set");
        return;
    };
    // One data directory for both (the dev IdP's key; the records are in the database), one
    // secret file, one public URL, as replicas behind one name.
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    write_tenants(tenants.path(), None);
    let secret = data.path().join("secret");
    std::fs::write(&secret, "ab".repeat(32)).unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let port = crate::binary::free_port();
    let public = format!("http://127.0.0.1:{port}");
    let args = ["--store", &url, "--secret-file", secret.to_str().unwrap()];
    let a = crate::binary::start_binary_on_with_args(port, data.path(), tenants.path(), &args);
    let b = start_replica(&public, data.path(), tenants.path(), &args);

    let handed = dev_login(&a.base, "alpha", true).await;
    // The other replica refreshes it. The same token again, on the first replica within the
    // retry grace, gets the same successor: one family, rotated once, seen by both.
    let (_, next) = refresh_at(&b.base, "alpha", &handed, &handed.refresh_token)
        .await
        .expect("the other replica knows the grant");
    let (_, again) = refresh_at(&a.base, "alpha", &handed, &handed.refresh_token)
        .await
        .expect("a retry within the grace");
    assert_eq!(again, next, "one successor, whichever replica is asked");
    let (_, third) = refresh_at(&a.base, "alpha", &handed, &next).await.unwrap();
    assert_ne!(third, next);

    // A client registered on one is the other's too.
    let http = reqwest::Client::new();
    let reg: Value = http
        .post(format!("{}/alpha/register", b.base))
        .json(&json!({"client_name": "Replicated", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let read = http
        .get(format!(
            "{}/alpha/register/{}",
            a.base,
            reg["client_id"].as_str().unwrap()
        ))
        .bearer_auth(reg["registration_access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
}

/// Without a shared secret a PostgreSQL store is refused: replicas would not open each other's
/// refresh tokens.
#[tokio::test]
async fn a_postgres_store_needs_a_secret_file() {
    let Some(url) = fresh_postgres_database().await else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    write_tenants(tenants.path(), None);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcr-shim"))
        .args(["serve", "--listen", "127.0.0.1:0", "--store", &url])
        .arg("--data-dir")
        .arg(data.path())
        .arg("--tenants")
        .arg(tenants.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs --secret-file"), "{err}");
    assert!(
        !err.contains("dcr@"),
        "the store URL stays out of messages: {err}"
    );
}
