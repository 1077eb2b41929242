//! A passthrough gateway resource: the client holds the IdP's own access token, and the
//! gateway checks it the way an API checks Entra's (the IdP's keys, issuer, the API's
//! audience, one of the tenant's apps) before the call reaches the MCP server, which still
//! never sees it. The IdP here is the built-in dev IdP, whose access tokens are JWTs signed
//! with keys it publishes; Entra's own shapes (v1.0 and v2.0 issuers, `appid`/`azp`, `scp`)
//! are covered by the unit tests of `upstream/access_token.rs`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};

use crate::browser::{Client, dev_login};
use crate::gateway::{start_backend, tool_call};
use crate::helpers::spawn_app_with_tenants;

const HOST: &str = "api.passthrough.test";
const RESOURCE: &str = "https://api.passthrough.test/mcp";
const CALL_URL: &str = "http://api.passthrough.test/mcp";

fn tenant_file(backend: &str, resource: &str) -> String {
    format!(
        r#"upstream = {{ kind = "dev" }}

[[resources]]
uri = "{resource}"
default = true
scopes = [
  {{ name = "files.read", upstream = "api://files/files.read" }},
  {{ name = "files.write", upstream = "api://files/files.write" }},
]

[resources.gateway]
backend = "{backend}"
rules = [{{ methods = ["tools/call"], names = ["delete*"], scopes = ["files.write"] }}]
"#
    )
}

fn forged(token: &str, change: impl FnOnce(&mut Value, &mut Value)) -> String {
    let mut parts = token.split('.');
    let decode = |part: Option<&str>| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part.unwrap()).unwrap()).unwrap()
    };
    let (mut header, mut claims) = (decode(parts.next()), decode(parts.next()));
    let signature = parts.next().unwrap().to_owned();
    change(&mut header, &mut claims);
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.{signature}", encode(&header), encode(&claims))
}

#[tokio::test]
async fn the_idps_own_token_for_the_api_is_checked_at_the_gateway_and_never_passed_on() {
    let (backend_url, backend) = start_backend().await;
    let app = spawn_app_with_tenants(|dir| {
        std::fs::write(dir.join("pt.toml"), tenant_file(&backend_url, RESOURCE)).unwrap();
        // Another tenant with an IdP of its own.
        std::fs::write(
            dir.join("pt2.toml"),
            tenant_file(&backend_url, "https://api2.passthrough.test/mcp"),
        )
        .unwrap();
    })
    .await;
    app.wait_ready().await;
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let http = reqwest::Client::builder()
        .resolve(HOST, addr)
        .build()
        .unwrap();
    let call = |token: &str, name: &str| {
        http.post(CALL_URL)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .bearer_auth(token)
            .body(tool_call(name).to_string())
            .send()
    };
    let client = Client::register(&app, "pt", json!({})).await;
    let tokens = dev_login(&app, "pt", &client, "files.read", "ada").await;
    let token = tokens["access_token"].as_str().unwrap();
    let idp_claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        idp_claims["iss"],
        format!("{}/dev-idp", app.issuer("pt")),
        "the client holds the IdP's own token"
    );

    let res = call(token, "echo").await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let seen = backend.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        seen.header("authorization"),
        None,
        "the token is not passed on"
    );
    let identity = seen.header("x-dcr-shim-identity").unwrap();
    let header = jsonwebtoken::decode_header(identity).unwrap();
    let jwks: JwkSet = app.get("/pt/jwks").await.json().await.unwrap();
    let key = DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[&backend_url]);
    validation.set_issuer(&[app.issuer("pt")]);
    let identity = jsonwebtoken::decode::<Value>(identity, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(identity["sub"], "ada");
    assert_eq!(
        identity["client_id"], idp_claims["client_id"],
        "the app the IdP issued it to"
    );
    assert_eq!(
        identity["scope"], "files.read",
        "the resource's own scope names"
    );
    assert_eq!(identity["resource"], RESOURCE);

    // A covered call needs its scope: the client steps up as with a minted token.
    let res = call(token, "delete_file").await.unwrap();
    assert_eq!(res.status(), 403);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );

    let calls = backend.seen.lock().unwrap().len();
    let other = Client::register(&app, "pt2", json!({})).await;
    let foreign = dev_login(&app, "pt2", &other, "files.read", "ada").await;
    let mut refused = vec![
        (
            "another tenant's IdP",
            foreign["access_token"].as_str().unwrap().to_owned(),
        ),
        (
            "a changed audience",
            forged(token, |_, c| c["aud"] = json!("api://elsewhere")),
        ),
        (
            "a longer life",
            forged(token, |_, c| c["exp"] = json!(4_102_444_800u64)),
        ),
        ("alg none", forged(token, |h, _| h["alg"] = json!("none"))),
        (
            "a shared-key token",
            forged(token, |h, _| h["alg"] = json!("HS256")),
        ),
        (
            "an unknown key",
            forged(token, |h, _| h["kid"] = json!("not-a-key")),
        ),
        ("not a JWT", "opaque-token".to_owned()),
    ];
    // The shim's own kinds of token are not the IdP's.
    refused.push((
        "a refresh token",
        tokens["refresh_token"].as_str().unwrap_or("x").to_owned(),
    ));
    refused.push((
        "the identity JWT",
        seen.header("x-dcr-shim-identity").unwrap().to_owned(),
    ));
    for (what, token) in refused {
        let res = call(&token, "echo").await.unwrap();
        assert_eq!(res.status(), 401, "{what}");
        let challenge = res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{what}: {challenge}"
        );
    }
    assert_eq!(
        backend.seen.lock().unwrap().len(),
        calls,
        "no refused call reached the MCP server"
    );
}

/// The contoso tenant's files resource as a passthrough gateway resource on Entra's JWT API,
/// whose MCP server gets a token for the reports API on the caller's behalf (on-behalf-of).
fn entra_passthrough(tenant: String, backend: &str) -> String {
    use crate::fake_entra::{JWT_API, SECRET_APP};
    use crate::login::FILES;
    if !tenant.contains(&format!("uri = \"{FILES}\"")) {
        return tenant;
    }
    tenant
        .replace(
            &format!("uri = \"{FILES}\"\n"),
            &format!("uri = \"{ENTRA_RESOURCE}\"\n"),
        )
        .replace("api://mcp-files/", &format!("{JWT_API}/"))
        .replace(
            "[registration]\n",
            &format!(
                r#"[resources.gateway]
backend = "{backend}"
idp_audiences = ["{SECRET_APP}"]
downstream_api = "reports"
on_behalf_of_app = "agents"
[[downstream_apis]]
name = "reports"
scopes = ["api://reports/reports.read"]
[registration]
"#
            ),
        )
}

const ENTRA_HOST: &str = "files.entra-pt.test";
const ENTRA_RESOURCE: &str = "https://files.entra-pt.test/mcp";

#[tokio::test]
async fn entras_own_v2_token_passes_the_gateway_and_its_backend_gets_a_token_on_behalf_of_the_user()
{
    use crate::browser::{Browser, login_with_scope, redeem};
    use crate::fake_entra::{OBO_PREFIX, SECRET_APP};
    let (backend_url, backend) = start_backend().await;
    let w = crate::login::world_with(move |t| entra_passthrough(t, &backend_url)).await;
    let addr: std::net::SocketAddr = w.app.base.trim_start_matches("http://").parse().unwrap();
    let http = reqwest::Client::builder()
        .resolve(ENTRA_HOST, addr)
        .build()
        .unwrap();
    let call = |token: String| {
        http.post(format!("http://{ENTRA_HOST}/mcp"))
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .bearer_auth(token)
            .body(tool_call("echo").to_string())
            .send()
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
    let (status, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    assert_eq!(status, 200, "{tokens}");
    let entra_token = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        jsonwebtoken::decode_header(&entra_token)
            .unwrap()
            .kid
            .as_deref(),
        Some("app-key-1"),
        "the client holds Entra's own JWT"
    );

    for _ in 0..2 {
        let res = call(entra_token.clone()).await.unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }
    let seen = backend.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(
        seen.header("x-dcr-shim-downstream-token"),
        Some(format!("{OBO_PREFIX}oid-ada.api://reports/reports.read").as_str()),
        "the reports API's token, for the same user"
    );
    let obo = w.idp.state.lock().unwrap().obo_requests.clone();
    assert_eq!(
        obo,
        [(
            SECRET_APP.to_owned(),
            "api://reports/reports.read".to_owned()
        )],
        "asked once by the API's own app, then kept"
    );
    let identity = seen.header("x-dcr-shim-identity").unwrap();
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(identity.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "oid-ada", "Entra's oid");
    assert_eq!(claims["client_id"], SECRET_APP, "the app registration");
    assert_eq!(claims["scope"], "files.read");

    // Entra's token with its audience or app changed is not one Entra signed.
    let calls = backend.seen.lock().unwrap().len();
    for forged_token in [
        forged(&entra_token, |_, c| c["aud"] = json!("api://elsewhere")),
        forged(&entra_token, |_, c| {
            c["azp"] = json!("cccccccc-0000-0000-0000-000000000009")
        }),
    ] {
        assert_eq!(call(forged_token).await.unwrap().status(), 401);
    }
    assert_eq!(backend.seen.lock().unwrap().len(), calls);
    w.stop().await;
}

/// Settings that would fail at every call, or widen who passes, are refused by `check`.
#[test]
fn check_refuses_gateway_settings_that_would_fail_at_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let other_api = "11111111-aaaa-bbbb-cccc-000000000001";
    let file = dir.path().join("t.toml");
    std::fs::write(
        &file,
        format!(
            r#"[upstream]
kind = "entra"
directory_id = "11111111-2222-3333-4444-555555555555"
[[apps]]
name = "agents"
client_id = "aaaaaaaa-0000-0000-0000-000000000001"
credential = {{ kind = "none" }}
[[apps]]
name = "public"
client_id = "aaaaaaaa-0000-0000-0000-000000000002"
credential = {{ kind = "none" }}

[[resources]]
uri = "https://a.test/mcp"
default = true
scopes = [{{ name = "a.read", upstream = "api://a/a.read" }}]
[resources.gateway]
backend = "http://a.internal/mcp"
idp_audiences = ["{other_api}", "{other_api}"]
downstream_api = "reports"
on_behalf_of_app = "public"

[[resources]]
uri = "https://b.test/mcp"
scopes = [{{ name = "b.read", upstream = "api://b/b.read" }}]
[resources.gateway]
backend = "http://b.internal/mcp"
idp_audiences = ["{other_api}"]
downstream_api = "reports"

[[resources]]
uri = "https://c.test/mcp"
token = "minted"
exchange = ["reports"]
scopes = [{{ name = "c.read", upstream = "api://c/c.read", acr_values = ["c1 c2", "urn:mfa"] }}]
[resources.gateway]
backend = "http://c.internal/mcp"
downstream_api = "reports"
on_behalf_of_app = "agents"

[[downstream_apis]]
name = "reports"
scopes = ["api://reports/reports.read"]
app = "agents"
"#
        ),
    )
    .unwrap();
    let public = url::Url::parse("https://auth.example.com").unwrap();
    let problems = dcr_shim::config::load_tenant(&file, &public).unwrap_err();
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    for (field, words) in [
        ("resources[0].gateway.on_behalf_of_app", "no credential"),
        (
            "resources[0].gateway.on_behalf_of_app",
            "not the API the callers' tokens are for",
        ),
        (
            "resources[0].gateway.on_behalf_of_app",
            "reached through the app 'agents'",
        ),
        (
            "resources[1].gateway.idp_audiences",
            "also accepted by resources[0]",
        ),
        (
            "resources[1].gateway.downstream_api",
            "name the API's own app registration",
        ),
        (
            "resources[2].gateway.on_behalf_of_app",
            "remove on_behalf_of_app",
        ),
        (
            "resources[2].acr_values",
            "'c1 c2' is not a sign-in strength",
        ),
        (
            "resources[2].acr_values",
            "'urn:mfa' is not a Conditional Access authentication context",
        ),
    ] {
        assert!(
            text.iter().any(|p| p.contains(field) && p.contains(words)),
            "{field}: {words}\n{text:#?}"
        );
    }
    assert!(
        !text
            .iter()
            .any(|p| p.contains("resources[0].gateway.idp_audiences")),
        "an audience listed twice by one resource is not a clash: {text:#?}"
    );
}
