//! CORS for browser-based clients (MCP Inspector, web agents): preflight and
//! `Access-Control-Allow-Origin: *` on metadata, registration, token and revocation, nothing on
//! the pages a person sees.

use reqwest::Method;
use serde_json::json;

use crate::helpers::spawn_app;

const ORIGIN: &str = "http://localhost:6274";

#[tokio::test]
async fn browser_clients_can_read_metadata_register_and_redeem() {
    let app = spawn_app().await;
    // Preflights, as a browser sends them before a cross-origin POST with a JSON body or an
    // Authorization header, or a GET with MCP-Protocol-Version.
    for (path, method, headers) in [
        (
            "/.well-known/oauth-authorization-server/alpha",
            "GET",
            "mcp-protocol-version",
        ),
        ("/alpha/register", "POST", "content-type"),
        ("/alpha/token", "POST", "authorization,content-type"),
        ("/alpha/revoke", "POST", "authorization,content-type"),
    ] {
        let res = app
            .http
            .request(Method::OPTIONS, format!("{}{path}", app.base))
            .header("Origin", ORIGIN)
            .header("Access-Control-Request-Method", method)
            .header("Access-Control-Request-Headers", headers)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204, "{path}");
        let h = res.headers();
        assert_eq!(h["access-control-allow-origin"], "*", "{path}");
        assert!(
            h["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .contains(method),
            "{path}"
        );
        let allowed = h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        for header in headers.split(',') {
            assert!(allowed.contains(header), "{path}: {header} in {allowed}");
        }
        assert!(h.get("access-control-allow-credentials").is_none());
    }
    // The responses themselves, success and error alike.
    let metadata = app
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server/alpha",
            app.base
        ))
        .header("Origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), 200);
    assert_eq!(metadata.headers()["access-control-allow-origin"], "*");
    let registered = app
        .http
        .post(format!("{}/alpha/register", app.base))
        .header("Origin", ORIGIN)
        .json(&json!({"redirect_uris": ["http://localhost:6274/oauth/callback"], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    assert_eq!(registered.headers()["access-control-allow-origin"], "*");
    let refused = app
        .http
        .post(format!("{}/alpha/token", app.base))
        .header("Origin", ORIGIN)
        .form(&[("grant_type", "authorization_code"), ("client_id", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["access-control-allow-origin"], "*");
    assert!(
        refused.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("WWW-Authenticate")
    );
    app.stop().await;
}

#[tokio::test]
async fn the_pages_a_person_sees_never_answer_other_origins() {
    let app = spawn_app().await;
    for path in [
        "/alpha/authorize?client_id=nope",
        "/alpha/callback?state=x",
        "/alpha/consent",
    ] {
        let res = app
            .http
            .get(format!("{}{path}", app.base))
            .header("Origin", ORIGIN)
            .send()
            .await
            .unwrap();
        assert!(
            res.headers().get("access-control-allow-origin").is_none(),
            "{path}"
        );
        let pre = app
            .http
            .request(Method::OPTIONS, format!("{}{path}", app.base))
            .header("Origin", ORIGIN)
            .header("Access-Control-Request-Method", "POST")
            .send()
            .await
            .unwrap();
        assert_ne!(pre.status(), 204, "{path}");
        assert!(
            pre.headers().get("access-control-allow-origin").is_none(),
            "{path}"
        );
    }
    app.stop().await;
}
