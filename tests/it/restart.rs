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
        .find(&tenant, &id, dcr_shim::app::unix_now())
        .await
        .unwrap();
    assert_eq!(
        found.unwrap().metadata.redirect_uris[0].as_str(),
        "http://127.0.0.1/cb"
    );
    assert!(std::fs::metadata(app.data_dir.join("server-secret")).is_ok());
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
            .find(&tenant, id, dcr_shim::app::unix_now())
            .await
            .unwrap();
        assert!(
            found.is_some(),
            "client {id} was acknowledged with 201 but is gone"
        );
    }
    running.stop().await;
}
