//! Issue 23, item 3: a public URL with a path (`https://auth.contoso.com/mcp-auth`): the
//! tenants' routes, issuers and cookies under it, the metadata where RFC 8414 puts it (the path
//! inserted after `/.well-known/oauth-authorization-server`), the probes at the root.

use serde_json::Value;

use crate::binary::{dev_login, free_port, start_binary_serving};

#[tokio::test]
async fn a_public_url_with_a_path_serves_everything_under_it() {
    let data = tempfile::tempdir().unwrap();
    let tenants = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tenants");
    let port = free_port();
    let root = format!("http://127.0.0.1:{port}");
    let public = format!("{root}/mcp-auth");
    let shim = start_binary_serving(port, &public, data.path(), &tenants, &[]);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap() }
    };

    // RFC 8414 §3.1: the issuer's path after the well-known segment.
    let res = get(format!(
        "{root}/.well-known/oauth-authorization-server/mcp-auth/demo"
    ))
    .await;
    assert_eq!(res.status(), 200);
    let metadata: Value = res.json().await.unwrap();
    assert_eq!(metadata["issuer"], format!("{public}/demo"));
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
    ] {
        assert!(
            metadata[endpoint]
                .as_str()
                .unwrap()
                .starts_with(&format!("{public}/demo/")),
            "{endpoint}: {metadata}"
        );
    }
    assert_eq!(
        get(format!(
            "{root}/.well-known/openid-configuration/mcp-auth/demo"
        ))
        .await
        .status(),
        200
    );
    assert_eq!(
        get(format!("{public}/demo/.well-known/openid-configuration"))
            .await
            .status(),
        200
    );
    // Not without the prefix, and the probes at the root.
    assert_eq!(
        get(format!(
            "{root}/.well-known/oauth-authorization-server/demo"
        ))
        .await
        .status(),
        404
    );
    assert_eq!(get(format!("{root}/demo/jwks")).await.status(), 404);
    assert_eq!(get(format!("{root}/healthz")).await.status(), 200);
    assert_eq!(get(format!("{root}/readyz/demo")).await.status(), 200);

    // A browser-based client's preflight under the prefix.
    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("{public}/demo/register"))
        .header("origin", "https://inspector.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");

    // Cookies are scoped to the prefix.
    let client: Value = http
        .post(format!("{public}/demo/register"))
        .json(&serde_json::json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let authorize = get(format!(
        "{public}/demo/authorize?response_type=code&client_id={}&redirect_uri=http://127.0.0.1/cb&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        client["client_id"].as_str().unwrap()
    ))
    .await;
    assert_eq!(authorize.status(), 200);
    let cookies: Vec<&str> = authorize
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        !cookies.is_empty() && cookies.iter().all(|c| c.contains("Path=/mcp-auth")),
        "{cookies:?}"
    );

    // A whole login through the dev IdP, whose issuer is under the prefix too.
    let handed = dev_login(&public, "demo", false).await;
    assert!(!handed.refresh_token.is_empty());
    drop(shim);
}
