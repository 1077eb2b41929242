//! Client ID Metadata Documents, resolved against a local TLS server.

use serde_json::json;

use crate::helpers::spawn_app_with_ca;
use crate::tls_server::{Canned, DocServer};
use dcr_shim::domain::ClientSource;
use dcr_shim::oauth::ErrorCode;

fn document(client_id: &str) -> serde_json::Value {
    json!({
        "client_id": client_id,
        "client_name": "Test Agent",
        "redirect_uris": ["http://localhost/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    })
}

#[tokio::test]
async fn resolves_caches_and_maps_a_document_client() {
    let dir = tempfile::tempdir().unwrap();
    let docs = DocServer::start(dir.path()).await;
    let app = spawn_app_with_ca(Some(&docs.ca_file)).await;
    let tenant = app.tenant("alpha");
    let url = docs.url("/agent.json");
    docs.set(
        "/agent.json",
        Canned::json(&document(&url)).header("Cache-Control", "max-age=60"),
    );

    let now = dcr_shim::app::unix_now();
    let client = app
        .state()
        .registry()
        .find(&tenant, &url, &crate::helpers::operator(now))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.client_id, url);
    assert_eq!(
        client.source,
        ClientSource::Cimd {
            host: "localhost".into()
        }
    );
    assert_eq!(client.metadata.client_name.as_deref(), Some("Test Agent"));
    assert_eq!(client.apps["https://mcp.example.com/files"], "dev");
    assert!(
        client
            .metadata
            .find_redirect_uri("http://localhost:51234/callback")
            .is_some()
    );
    assert_eq!(docs.hits(), 1);

    app.state()
        .registry()
        .find(&tenant, &url, &crate::helpers::operator(now))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(docs.hits(), 1, "served from the cache");

    // no-store documents are fetched every time.
    let fresh = docs.url("/fresh.json");
    docs.set(
        "/fresh.json",
        Canned::json(&document(&fresh)).header("Cache-Control", "no-store"),
    );
    app.state()
        .registry()
        .find(&tenant, &fresh, &crate::helpers::operator(now))
        .await
        .unwrap()
        .unwrap();
    app.state()
        .registry()
        .find(&tenant, &fresh, &crate::helpers::operator(now))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(docs.hits(), 3);
    app.stop().await;
}

#[tokio::test]
async fn refuses_bad_documents_and_remembers_failures_only_briefly() {
    let dir = tempfile::tempdir().unwrap();
    let docs = DocServer::start(dir.path()).await;
    let app = spawn_app_with_ca(Some(&docs.ca_file)).await;
    let tenant = app.tenant("alpha");
    let now = dcr_shim::app::unix_now();
    let registry = &app.state().registry();

    let mismatch = docs.url("/mismatch.json");
    docs.set(
        "/mismatch.json",
        Canned::json(&document("https://elsewhere.example.com/client.json")),
    );
    let redirect = docs.url("/redirect.json");
    docs.set(
        "/redirect.json",
        Canned {
            status: 302,
            headers: vec![("Location".into(), mismatch.clone())],
            body: vec![],
            trickle: false,
        },
    );
    let big = docs.url("/big.json");
    let mut big_doc = document(&big);
    big_doc["client_name"] = json!("x".repeat(6000));
    docs.set("/big.json", Canned::json(&big_doc));
    let secret = docs.url("/secret.json");
    let mut secret_doc = document(&secret);
    secret_doc["client_secret"] = json!("s3cret");
    docs.set("/secret.json", Canned::json(&secret_doc));
    let html = docs.url("/html.json");
    docs.set(
        "/html.json",
        Canned::json(&document(&html)).header("Content-Type", "text/html"),
    );
    let not_json = docs.url("/notjson.json");
    docs.set(
        "/notjson.json",
        Canned {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: b"<html>".to_vec(),
            trickle: false,
        },
    );
    let slow = docs.url("/slow.json");
    docs.set(
        "/slow.json",
        Canned {
            trickle: true,
            ..Canned::json(&document(&slow))
        },
    );

    let cases = [
        (mismatch.clone(), "not its own URL"),
        (redirect, "redirect"),
        (big, "larger than"),
        (secret, "client secret"),
        (html, "not served as JSON"),
        (not_json, "not a JSON object"),
        (docs.url("/missing.json"), "HTTP 404"),
        (slow, "did not answer within"),
        (docs.url("/"), "must have a path"),
        (
            format!("https://localhost:{}/a/../b.json", docs.port),
            "canonical",
        ),
    ];
    for (i, (url, why)) in cases.iter().enumerate() {
        let err = registry
            .find(&tenant, url, &crate::helpers::operator(now))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidClient, "{url}");
        assert!(
            err.description.contains(why),
            "{url}: '{}' should say '{why}'",
            err.description
        );
        if i == 0 {
            // Fixed at once, the document is still refused from memory for a few seconds.
            docs.set("/mismatch.json", Canned::json(&document(&mismatch)));
            let again = registry
                .find(&tenant, url, &crate::helpers::operator(now))
                .await
                .unwrap_err();
            assert!(
                again.description.contains(why) && again.description.contains("not fetched again"),
                "{}",
                again.description
            );
        }
    }
    // Remembered, never cached: after the memory lapses, the fixed document resolves.
    tokio::time::sleep(
        dcr_shim::oauth::cimd::FAILURE_MEMORY + std::time::Duration::from_millis(300),
    )
    .await;
    assert!(
        registry
            .find(&tenant, &mismatch, &crate::helpers::operator(now))
            .await
            .is_ok()
    );
    app.stop().await;
}

#[tokio::test]
async fn refuses_loopback_and_private_addresses_without_the_dev_switch() {
    let dir = tempfile::tempdir().unwrap();
    let docs = DocServer::start(dir.path()).await;
    let app = spawn_app_with_ca(Some(&docs.ca_file)).await;
    // beta trusts the test CA but has no dev loopback switch.
    let tenant = app.tenant("beta");
    let now = dcr_shim::app::unix_now();
    let url = docs.url("/agent.json");
    docs.set("/agent.json", Canned::json(&document(&url)));
    let cases = [
        url,
        format!("https://127.0.0.1:{}/agent.json", docs.port),
        "https://[::1]/agent.json".to_owned(),
        "https://169.254.169.254/latest/meta-data.json".to_owned(),
        "https://10.0.0.1/agent.json".to_owned(),
        "https://192.168.1.10/agent.json".to_owned(),
        "https://[::ffff:127.0.0.1]/agent.json".to_owned(),
        "http://localhost/agent.json".to_owned(),
    ];
    for url in &cases {
        let err = app
            .state()
            .registry()
            .find(&tenant, url, &crate::helpers::operator(now))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidClient, "{url}");
        assert!(
            err.description.contains("special-use address") || err.description.contains("https"),
            "{url}: {}",
            err.description
        );
    }
    assert_eq!(docs.hits(), 0, "nothing reached the loopback server");
    // CIMD turned off: refused before any fetch.
    let limited = app.tenant("limited");
    let err = app
        .state()
        .registry()
        .find(
            &limited,
            &docs.url("/agent.json"),
            &crate::helpers::operator(now),
        )
        .await
        .unwrap_err();
    assert!(err.description.contains("does not accept"));
    app.stop().await;
}
