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
async fn readiness_names_the_tenant_whose_upstream_is_unreachable() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["store"], "ok");
    let unreachable = body["unreachable_upstreams"].as_array().unwrap();
    assert_eq!(unreachable.len(), 1, "{body}");
    assert_eq!(unreachable[0]["tenant"], "beta");
    // The shim still serves the unreachable tenant's metadata.
    assert_eq!(
        app.get("/.well-known/oauth-authorization-server/beta")
            .await
            .status(),
        200
    );
    app.stop().await;
}
