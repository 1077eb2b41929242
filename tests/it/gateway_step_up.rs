//! Step-up to a stronger sign-in through the gateway, with an Entra-like IdP whose Conditional
//! Access authentication context `c1` is satisfied only by a login that asks for it (a `claims`
//! request for `acrs`). Two ways in: a scope that stands for the strength (`files.delete`, the
//! scope challenge every MCP client follows), and a rule's own `acr_values`, answered with RFC
//! 9470's `insufficient_user_authentication` for clients that sign in again with `acr_values`.

use serde_json::{Value, json};

use crate::browser::{Browser, Client, authorize_url, login_through, login_with_scope, redeem};
use crate::gateway::{start_backend, tool_call};
use crate::login::{FILES, world_with};
use crate::minted::claims_of;

const HOST: &str = "files.stepup.test";
const RESOURCE: &str = "https://files.stepup.test/mcp";
const CALL_URL: &str = "http://files.stepup.test/mcp";

/// The contoso tenant's files resource, minted and served by the gateway for `backend`.
fn gateway_resource(tenant: String, backend: &str) -> String {
    if !tenant.contains(&format!("uri = \"{FILES}\"")) {
        return tenant;
    }
    tenant
        .replace(
            &format!("uri = \"{FILES}\"\ndefault = true\n"),
            &format!("uri = \"{RESOURCE}\"\ndefault = true\ntoken = \"minted\"\n"),
        )
        .replace(
            "description = \"Change your files\" },\n]",
            "description = \"Change your files\" },\n  { name = \"files.delete\", upstream = \"api://mcp-files/files.delete\", acr_values = [\"c1\"] },\n]",
        )
        .replace(
            "[registration]\n",
            &format!(
                "[resources.gateway]\nbackend = \"{backend}\"\nrules = [\n  {{ names = [\"delete_*\"], scopes = [\"files.delete\"] }},\n  {{ names = [\"wipe\"], acr_values = [\"c1\"] }},\n]\n[registration]\n"
            ),
        )
}

#[tokio::test]
async fn a_call_that_needs_a_stronger_sign_in_gets_it_through_a_scope_or_rfc_9470() {
    let (backend_url, backend) = start_backend().await;
    let w = world_with(move |t| gateway_resource(t, &backend_url)).await;
    let addr: std::net::SocketAddr = w.app.base.trim_start_matches("http://").parse().unwrap();
    let http = reqwest::Client::builder()
        .resolve(HOST, addr)
        .build()
        .unwrap();
    let call = |token: String, name: &'static str| {
        http.post(CALL_URL)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .bearer_auth(token)
            .body(tool_call(name).to_string())
            .send()
    };
    let last_claims_request = || -> Option<String> {
        let state = w.idp.state.lock().unwrap();
        state
            .authorize_requests
            .last()
            .unwrap()
            .get("claims")
            .cloned()
    };
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let browser = Browser::new();
    let (code, attempt) = login_with_scope(
        &w.app,
        &browser,
        "contoso",
        &client,
        "files.read offline_access",
        "ada",
    )
    .await;
    assert_eq!(
        last_claims_request(),
        None,
        "an ordinary login asks for no context"
    );
    let (_, plain) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    let plain = plain["access_token"].as_str().unwrap().to_owned();
    assert!(claims_of(&plain).get("acrs").is_none());

    // The tool behind the scope: a scope challenge, as for any scope.
    let res = call(plain.clone(), "delete_file").await.unwrap();
    assert_eq!(res.status(), 403);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"scope="files.read files.delete""#),
        "{challenge}"
    );
    // The tool whose rule names the strength: RFC 9470.
    let res = call(plain.clone(), "wipe").await.unwrap();
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with(r#"Bearer error="insufficient_user_authentication""#)
            && challenge.contains(r#"acr_values="c1""#)
            && challenge.contains("resource_metadata="),
        "{challenge}"
    );
    let seen_before = backend.seen.lock().unwrap().len();

    // The client asks for the scope, as MCP clients do: the login asks Entra for c1.
    let (code, attempt) = login_with_scope(
        &w.app,
        &browser,
        "contoso",
        &client,
        "files.read files.delete offline_access",
        "ada",
    )
    .await;
    let asked: Value = serde_json::from_str(&last_claims_request().unwrap()).unwrap();
    assert_eq!(
        asked["access_token"]["acrs"],
        json!({"essential": true, "value": "c1"})
    );
    let (_, stepped) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    let stepped = stepped["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims_of(&stepped)["acrs"], json!(["c1"]));
    let res = call(stepped.clone(), "delete_file").await.unwrap();
    assert_eq!(res.status(), 200);
    let res = call(stepped, "wipe").await.unwrap();
    assert_eq!(res.status(), 200, "the same sign-in satisfies the rule");

    // A client that reads RFC 9470's challenge signs in again with acr_values.
    let mut attempt = authorize_url(&w.app, "contoso", &client, "files.read", "ada");
    attempt.url = url::Url::parse_with_params(&attempt.url, &[("acr_values", "c1")])
        .unwrap()
        .to_string();
    let (code, attempt) = login_through(&w.app, &browser, "contoso", &client, attempt).await;
    let sent = w
        .idp
        .state
        .lock()
        .unwrap()
        .authorize_requests
        .last()
        .cloned()
        .unwrap();
    assert!(
        !sent.contains_key("acr_values"),
        "Entra gets the context as claims: {sent:?}"
    );
    assert!(sent["claims"].contains("\"acrs\""), "{sent:?}");
    let (_, strong) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    let strong = strong["access_token"].as_str().unwrap().to_owned();
    let res = call(strong, "wipe").await.unwrap();
    assert_eq!(res.status(), 200);
    let seen = backend.seen.lock().unwrap().len();
    assert_eq!(
        seen,
        seen_before + 3,
        "the refused calls never reached the MCP server"
    );
    w.stop().await;
}
