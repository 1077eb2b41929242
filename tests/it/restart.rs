//! Registrations survive a restart, in process and after SIGKILL of the real binary.

use serde_json::{Value, json};

use crate::binary::start_binary;
use crate::helpers::{spawn_app, write_tenants};

#[tokio::test]
async fn a_registered_client_survives_a_restart() {
    let mut app = spawn_app().await;
    let (status, body) = app
        .register("alpha", &json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
        .await;
    assert_eq!(status, 201);
    let id = body["client_id"].as_str().unwrap().to_owned();
    app.restart().await;
    let tenant = app.tenant("alpha");
    let found = app
        .state()
        .registry()
        .find(
            &tenant,
            &id,
            &crate::helpers::operator(dcr_shim::app::unix_now()),
        )
        .await
        .unwrap();
    assert_eq!(
        found.unwrap().metadata.redirect_uris[0].as_str(),
        "http://127.0.0.1/cb"
    );
    if app.store.is_none() {
        // Generated into the data directory; a PostgreSQL store has it from a file instead.
        assert!(std::fs::metadata(app.data_dir.join("server-secret")).is_ok());
    }
    app.stop().await;
}

#[tokio::test]
async fn registrations_acknowledged_before_sigkill_are_kept() {
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    write_tenants(tenants.path(), None);
    let http = reqwest::Client::new();
    let mut acknowledged = Vec::new();
    for _round in 0..3 {
        let mut shim = start_binary(data.path(), tenants.path(), &[]);
        for _ in 0..5 {
            let res = http
                .post(format!("{}/alpha/register", shim.base))
                .json(&json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
            acknowledged.push(
                res.json::<Value>().await.unwrap()["client_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        shim.child.kill().unwrap(); // SIGKILL: no chance to flush anything
        shim.child.wait().unwrap();
    }
    // Open the store the way the server does and check every acknowledged client.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let settings =
        crate::helpers::test_settings(addr, "http://127.0.0.1:8080", data.path(), tenants.path());
    let running = dcr_shim::app::start_on(settings, listener).await.unwrap();
    let tenant = running.state.tenant("alpha").unwrap().clone();
    for id in &acknowledged {
        let found = running
            .state
            .registry()
            .find(
                &tenant,
                id,
                &crate::helpers::operator(dcr_shim::app::unix_now()),
            )
            .await
            .unwrap();
        assert!(
            found.is_some(),
            "client {id} was acknowledged with 201 but is gone"
        );
    }
    running.stop().await;
}

/// A data directory with records whose server secret was deleted: the shim refuses to start
/// and says why and what to do, instead of making a new secret that would kill every refresh
/// token; `--new-secret` makes one on purpose.
#[tokio::test]
async fn a_lost_server_secret_is_not_replaced_silently() {
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    write_tenants(tenants.path(), None);
    let mut shim = start_binary(data.path(), tenants.path(), &[]);
    let res = reqwest::Client::new()
        .post(format!("{}/alpha/register", shim.base))
        .json(&json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    shim.kill();
    std::fs::remove_file(data.path().join("server-secret")).unwrap();
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_dcr-shim"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--public-url",
                "http://127.0.0.1:8080",
            ])
            .arg("--data-dir")
            .arg(data.path())
            .arg("--tenants")
            .arg(tenants.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("holds records but no server secret") && said.contains("--new-secret"),
        "{said}"
    );
    assert!(
        !data.path().join("server-secret").exists(),
        "no secret made behind the operator's back"
    );
    let shim =
        crate::binary::start_binary_with_args(data.path(), tenants.path(), &["--new-secret"]);
    drop(shim);
    assert!(data.path().join("server-secret").exists());
}

/// SIGTERM while a refresh waits on a slow IdP (7 s, longer than the 5 s the stop used to
/// wait): the refresh finishes, since the stop waits up to the upstream timeout plus a margin.
#[tokio::test]
async fn sigterm_lets_a_refresh_waiting_on_the_idp_finish() {
    let mut w = crate::login::world_on_binary().await;
    let client = crate::browser::Client::register(&w.app, "contoso", json!({})).await;
    let (code, attempt) = crate::browser::login(
        &w.app,
        &crate::browser::Browser::new(),
        "contoso",
        &client,
        "sam",
    )
    .await;
    let (status, tokens) =
        crate::browser::redeem(&w.app, "contoso", &client, &code, &attempt).await;
    assert_eq!(status, 200, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    w.idp.state.lock().unwrap().fault = Some(crate::fake_entra::Fault::VerySlow);
    let started = std::time::Instant::now();
    let refresh = {
        let app = crate::helpers::TestApp::at(&w.app.base);
        tokio::spawn(async move {
            crate::browser::refresh(&app, "contoso", &client, &refresh_token).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    let pid = w.shim.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let (status, body) = refresh.await.unwrap();
    assert_eq!(status, 200, "the refresh finished during the stop: {body}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(7));
    // Then the process ends, with its store closed and checkpointed for the next start.
    let mut exited = false;
    for _ in 0..100 {
        if matches!(w.shim.child.try_wait(), Ok(Some(_))) {
            exited = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(exited, "the process ends after SIGTERM");
    let log = w.shim.log.lock().unwrap().join("\n");
    assert!(
        log.contains("store checkpointed for a fast next start"),
        "the store was closed before the checkpoint: {log}"
    );
    w.stop();
}

/// A server secret replaced without `--previous-secret-file`: a refresh token issued under the
/// old one is `invalid_grant` (the client signs in again), and the log says why.
#[tokio::test]
async fn a_refresh_token_the_new_secret_cannot_open_is_invalid_grant_with_a_reason() {
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    write_tenants(tenants.path(), None);
    let port = crate::binary::free_port();
    let mut shim = crate::binary::start_binary_on(port, data.path(), tenants.path(), &[]);
    let handed = crate::binary::dev_login(&shim.base, "alpha", false).await;
    shim.kill();
    let secret = data.path().join("server-secret");
    crate::helpers::write_private(&secret, &"cd".repeat(32));
    // Regression (issue 22, item 12): the store knows the secret it was written with, and a
    // server with another one refuses to start, saying what to do…
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcr-shim"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data.path())
        .arg("--tenants")
        .arg(tenants.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not the one this store was written with")
            && stderr.contains("--previous-secret-file")
            && stderr.contains("--new-secret"),
        "{stderr}"
    );
    // …unless told to replace it on purpose: then what the old secret sealed is refused, with
    // a reason.
    let shim = crate::binary::start_binary_on_with_args(
        port,
        data.path(),
        tenants.path(),
        &["--new-secret"],
    );
    let refused =
        crate::binary::refresh_at(&shim.base, "alpha", &handed, &handed.refresh_token).await;
    assert_eq!(refused, Err(400));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let log = shim.log.lock().unwrap().join("\n");
    assert!(
        log.contains("sealed data cannot be opened") && log.contains("--previous-secret-file"),
        "{log}"
    );
}
