//! Authorization server metadata at the three discovery URLs; health and readiness.

use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn metadata_at_all_three_urls_for_two_tenants() {
    let app = spawn_app().await;
    for tenant in ["alpha", "beta"] {
        let issuer = app.issuer(tenant);
        let urls = [
            format!("/.well-known/oauth-authorization-server/{tenant}"),
            format!("/.well-known/openid-configuration/{tenant}"),
            format!("/{tenant}/.well-known/openid-configuration"),
        ];
        for url in urls {
            let res = app.get(&url).await;
            assert_eq!(res.status(), 200, "{url}");
            let m: Value = res.json().await.unwrap();
            assert_eq!(
                m["issuer"],
                Value::String(issuer.clone()),
                "{url}: issuer is byte-identical"
            );
            assert_eq!(m["authorization_endpoint"], format!("{issuer}/authorize"));
            assert_eq!(m["token_endpoint"], format!("{issuer}/token"));
            assert_eq!(m["registration_endpoint"], format!("{issuer}/register"));
            assert_eq!(m["revocation_endpoint"], format!("{issuer}/revoke"));
            assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
            assert_eq!(
                m["code_challenge_methods_supported"],
                serde_json::json!(["S256"])
            );
            assert_eq!(m["authorization_response_iss_parameter_supported"], true);
            assert_eq!(m["client_id_metadata_document_supported"], true);
            let methods = m["token_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap();
            for method in ["none", "client_secret_basic", "client_secret_post"] {
                assert!(methods.iter().any(|v| v == method), "{method}");
            }
            let scopes = m["scopes_supported"].as_array().unwrap();
            for s in ["files.read", "files.write", "offline_access"] {
                assert!(scopes.iter().any(|v| v == s), "{url}: {s}");
            }
            let grants = m["grant_types_supported"].as_array().unwrap();
            assert!(grants.iter().any(|g| g == "authorization_code"));
            assert!(grants.iter().any(|g| g == "refresh_token"));
        }
    }
    // A tenant with CIMD off does not advertise it.
    let m: Value = app
        .get("/.well-known/oauth-authorization-server/limited")
        .await
        .json()
        .await
        .unwrap();
    assert!(m.get("client_id_metadata_document_supported").is_none());
    app.stop().await;
}

#[tokio::test]
async fn unknown_tenants_and_paths_get_json_404() {
    let app = spawn_app().await;
    for url in [
        "/.well-known/oauth-authorization-server/nope",
        "/.well-known/openid-configuration/nope",
        "/nope/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/ALPHA",
        "/.well-known/oauth-authorization-server/alpha/extra",
        "/nope/register",
        "/",
    ] {
        let res = app.get(url).await;
        assert_eq!(res.status(), 404, "{url}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "not_found", "{url}");
    }
    let res = app
        .http
        .post(format!("{}/nope/register", app.base))
        .json(&serde_json::json!({"redirect_uris": ["https://a.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn readiness_is_per_tenant_and_names_the_upstream_that_is_unreachable() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    // beta's IdP is unreachable: the server still serves (every other tenant stays in rotation).
    // The public probe says only that (issue 22, item 14: it listed every tenant, directory id
    // and DNS error to strangers)…
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ready"}));
    let res = app.get("/readyz/beta").await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "not_ready"}));
    assert_eq!(app.get("/readyz/alpha").await.status(), 200);
    assert_eq!(app.get("/readyz/nope").await.status(), 404);
    // …and the admin listener has the detail.
    let admin = app.admin_base().replace("/admin/v1", "");
    let res = reqwest::get(format!("{admin}/readyz")).await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["store"], "ok");
    let unreachable = body["unreachable_upstreams"].as_array().unwrap();
    assert_eq!(unreachable.len(), 1, "{body}");
    assert_eq!(unreachable[0]["tenant"], "beta");
    let beta = body["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "beta")
        .unwrap();
    assert_eq!(beta["upstream"], "unreachable", "{body}");
    let res = reqwest::get(format!("{admin}/readyz/beta")).await.unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    // The shim still serves the unreachable tenant's metadata.
    assert_eq!(
        app.get("/.well-known/oauth-authorization-server/beta")
            .await
            .status(),
        200
    );
    app.stop().await;
}

/// An IdP that is down at start and comes back: one warning when it goes, one info line when it
/// is back, nothing for the retries in between, and nothing at all for the probes.
#[tokio::test]
async fn an_upstream_going_and_coming_back_is_logged_once_and_probes_never() {
    let port = crate::binary::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    std::fs::write(
        tenants.path().join("corp.toml"),
        format!(
            r#"upstream = {{ kind = "oidc", issuer = "{issuer}" }}
[[apps]]
name = "a"
client_id = "a"
credential = {{ kind = "none" }}
[[resources]]
uri = "https://mcp.example.com/files"
scopes = [{{ name = "files.read", upstream = "files.read" }}]
"#
        ),
    )
    .unwrap();
    let shim = crate::binary::start_binary(data.path(), tenants.path(), &[]);
    let http = reqwest::Client::new();
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    for _ in 0..3 {
        let all = http
            .get(format!("{}/readyz", shim.base))
            .send()
            .await
            .unwrap();
        assert_eq!(all.status(), 200, "the server itself can serve");
        let corp = http
            .get(format!("{}/readyz/corp", shim.base))
            .send()
            .await
            .unwrap();
        assert_eq!(corp.status(), 503);
    }
    // The IdP comes up.
    let doc = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    let server = actix_web::HttpServer::new(move || {
        let doc = doc.clone();
        actix_web::App::new().route(
            "/.well-known/openid-configuration",
            actix_web::web::get().to(move || {
                let doc = doc.clone();
                async move { actix_web::HttpResponse::Ok().json(doc) }
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", port))
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    let mut back = false;
    for _ in 0..100 {
        let res = http
            .get(format!("{}/readyz/corp", shim.base))
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(back, "the tenant is back in rotation");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let log = shim.log.lock().unwrap().clone();
    let count = |needle: &str| log.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count("upstream discovery failed"), 1, "{log:#?}");
    assert_eq!(count("upstream discovered"), 1, "{log:#?}");
    assert_eq!(count("/readyz"), 0, "probes are not logged: {log:#?}");
    handle.stop(false).await;
}
