//! A gateway resource whose MCP server calls a downstream API on the user's behalf: the
//! gateway obtains the IdP's token for that API with the login's IdP refresh token (as token
//! exchange does) and sends it with each call, kept per login until shortly before it expires.

use serde_json::json;

use crate::browser::{Client, dev_login};
use crate::gateway::{start_backend, tool_call};
use crate::helpers::spawn_app_with_tenants;
use crate::minted::claims_of;

const HOST: &str = "files.downstream.test";
const RESOURCE: &str = "https://files.downstream.test/mcp";
const CALL_URL: &str = "http://files.downstream.test/mcp";

fn tenant_file(backend: &str) -> String {
    format!(
        r#"upstream = {{ kind = "dev" }}

[[resources]]
uri = "{RESOURCE}"
default = true
token = "minted"
exchange = ["reports"]
scopes = [{{ name = "files.read", upstream = "api://files/files.read" }}]

[resources.gateway]
backend = "{backend}"
downstream_api = "reports"

[[downstream_apis]]
name = "reports"
uri = "api://reports"
scopes = ["api://reports/reports.read"]
"#
    )
}

#[tokio::test]
async fn the_mcp_server_gets_a_token_for_its_downstream_api_on_the_users_behalf() {
    let (backend_url, backend) = start_backend().await;
    let app = spawn_app_with_tenants(|dir| {
        std::fs::write(dir.join("ds.toml"), tenant_file(&backend_url)).unwrap();
    })
    .await;
    app.wait_ready().await;
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let http = reqwest::Client::builder()
        .resolve(HOST, addr)
        .build()
        .unwrap();
    let call = |token: String| {
        http.post(CALL_URL)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .header("X-Dcr-Shim-Downstream-Token", "forged-by-the-client")
            .bearer_auth(token)
            .body(tool_call("echo").to_string())
            .send()
    };
    let downstream_seen = || -> String {
        let seen = backend.seen.lock().unwrap();
        let last = seen.last().unwrap();
        last.header("x-dcr-shim-downstream-token")
            .unwrap()
            .to_owned()
    };

    let client = Client::register(&app, "ds", json!({})).await;
    let tokens = dev_login(&app, "ds", &client, "files.read offline_access", "ada").await;
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let res = call(token.clone()).await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let first = downstream_seen();
    assert_ne!(
        first, "forged-by-the-client",
        "the client's copy never passes"
    );
    let api_claims = claims_of(&first);
    assert_eq!(
        api_claims["aud"], "api://reports",
        "the IdP's token for the API"
    );
    assert_eq!(api_claims["sub"], "ada", "on the user's behalf");
    assert_eq!(api_claims["scope"], "api://reports/reports.read");
    // The next call of the login reuses it: the IdP is not asked per call.
    let res = call(token.clone()).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(downstream_seen(), first);

    // A login from before the resource reached the API kept no IdP refresh token for it: its
    // user signs in again.
    let file = app.tenants_dir.join("ds.toml");
    let without = tenant_file(&backend_url)
        .replace("exchange = [\"reports\"]\n", "")
        .replace("downstream_api = \"reports\"\n", "");
    std::fs::write(&file, without).unwrap();
    app.reload().await.unwrap();
    let before = dev_login(&app, "ds", &client, "files.read offline_access", "bob").await;
    std::fs::write(&file, tenant_file(&backend_url)).unwrap();
    app.reload().await.unwrap();
    let calls = backend.seen.lock().unwrap().len();
    let res = call(before["access_token"].as_str().unwrap().to_owned())
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
    assert_eq!(
        backend.seen.lock().unwrap().len(),
        calls,
        "nothing reached the MCP server"
    );
}
