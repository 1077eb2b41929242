//! Confidential document clients: a client metadata document with
//! `token_endpoint_auth_method = "private_key_jwt"` and its public keys (inline `jwks` or at
//! `jwks_uri`) authenticates at `/token` with a signed client assertion (RFC 7523). The shape
//! of the assertion is what the MCP TypeScript SDK's `createPrivateKeyJwtAuth` signs
//! (packages/client/src/client/authExtensions.ts: `iss` = `sub` = client id, `aud` the
//! authorization server's issuer, else the token endpoint; `exp` 300 s after `iat`; a `jti`).

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::browser::{Browser, Client, login};
use crate::login::world;
use crate::tls_server::Canned;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn jwks() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("app-jwks.json")).unwrap())
        .unwrap()
}

/// An assertion as the TypeScript SDK signs it, for `aud`.
fn assertion(client_id: &str, aud: &str, jti: &str) -> String {
    let key =
        EncodingKey::from_rsa_pem(&std::fs::read(fixtures().join("app-key.pem")).unwrap()).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("JWT".into());
    header.kid = Some("app-key-1".into());
    let now = now();
    let claims = json!({"iss": client_id, "sub": client_id, "aud": aud, "exp": now + 300, "iat": now, "jti": jti});
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// POSTs a token request authenticated by `assertion` (and no client_id, as RFC 7523 allows).
async fn token_with_assertion(
    http: &reqwest::Client,
    token_endpoint: &str,
    form: &[(&str, &str)],
    assertion: &str,
) -> (u16, Value) {
    let mut fields = form.to_vec();
    fields.push((
        "client_assertion_type",
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    ));
    fields.push(("client_assertion", assertion));
    let res = http
        .post(token_endpoint)
        .form(&fields)
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

fn document(client_id: &str, keys: Value) -> Value {
    let mut doc = json!({
        "client_id": client_id,
        "client_name": "Signed Agent",
        "redirect_uris": ["http://127.0.0.1/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "private_key_jwt",
    });
    doc.as_object_mut()
        .unwrap()
        .extend(keys.as_object().unwrap().clone());
    doc
}

#[tokio::test]
async fn a_private_key_jwt_document_client_logs_in_and_refreshes_with_assertions() {
    let w = world().await;
    let issuer = w.app.issuer("contoso");
    let token_endpoint = format!("{issuer}/token");
    let meta: Value = w
        .app
        .get("/.well-known/oauth-authorization-server/contoso")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        meta["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("private_key_jwt"))
    );
    assert!(
        meta["token_endpoint_auth_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("RS256"))
    );

    for (path, keys) in [
        ("/inline.json", json!({"jwks": jwks()})),
        (
            "/by-uri.json",
            json!({"jwks_uri": w.docs.url("/jwks.json")}),
        ),
    ] {
        let client_id = w.docs.url(path);
        w.docs.set(path, Canned::json(&document(&client_id, keys)));
        w.docs.set("/jwks.json", Canned::json(&jwks()));
        let client = Client {
            id: client_id.clone(),
            secret: None,
            redirect_uri: "http://127.0.0.1:49152/cb".into(),
        };
        let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &client, "sig").await;
        let redeem = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("code_verifier", attempt.verifier.as_str()),
        ];

        // Without an assertion, with a wrong audience, then as the SDK signs it.
        let (status, body) = w
            .app
            .http
            .post(&token_endpoint)
            .form(&[redeem.as_slice(), &[("client_id", client_id.as_str())]].concat())
            .send()
            .await
            .map(|r| (r.status().as_u16(), r))
            .unwrap();
        let body: Value = body.json().await.unwrap();
        assert_eq!(status, 401, "{path}: {body}");
        crate::helpers::assert_described(&body, "private_key_jwt");
        let wrong_aud = assertion(&client_id, "https://elsewhere.example/token", "a0");
        let (status, body) =
            token_with_assertion(&w.app.http, &token_endpoint, &redeem, &wrong_aud).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{body}"
        );
        crate::helpers::assert_described(&body, "aud");

        let first = assertion(&client_id, &issuer, &format!("{path}-1"));
        let (status, tokens) =
            token_with_assertion(&w.app.http, &token_endpoint, &redeem, &first).await;
        assert_eq!(status, 200, "{path}: {tokens}");
        let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
        let refresh = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
        ];

        // The same assertion again is a replay, whatever it is used for.
        let (status, body) =
            token_with_assertion(&w.app.http, &token_endpoint, &refresh, &first).await;
        assert_eq!(status, 401, "{body}");
        crate::helpers::assert_described(&body, "already used");

        // A fresh one, addressed to the token endpoint this time, refreshes.
        let second = assertion(&client_id, &token_endpoint, &format!("{path}-2"));
        let (status, body) =
            token_with_assertion(&w.app.http, &token_endpoint, &refresh, &second).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    w.stop().await;
}

#[tokio::test]
async fn documents_with_unusable_keys_are_refused() {
    let w = world().await;
    let mut private = jwks();
    private["keys"][0]["d"] = json!("c2VjcmV0");
    for (name, keys, says) in [
        ("none", json!({}), "jwks_uri"),
        (
            "both",
            json!({"jwks": jwks(), "jwks_uri": w.docs.url("/jwks.json")}),
            "not both",
        ),
        ("private", json!({"jwks": private}), "public keys only"),
        ("empty", json!({"jwks": {"keys": []}}), "1 to 10 keys"),
        (
            "symmetric",
            json!({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
            "private or shared",
        ),
    ] {
        let path = format!("/{name}.json");
        let client_id = w.docs.url(&path);
        w.docs.set(&path, Canned::json(&document(&client_id, keys)));
        let client = Client {
            id: client_id.clone(),
            secret: None,
            redirect_uri: "http://127.0.0.1:49152/cb".into(),
        };
        let attempt = crate::browser::authorize_url(&w.app, "contoso", &client, "files.read", "x");
        let res = w.app.http.get(&attempt.url).send().await.unwrap();
        assert_eq!(res.status(), 400, "{name}");
        let page = res.text().await.unwrap();
        assert!(page.contains(says), "{name}: {page}");
    }

    // A public document client cannot switch to assertions.
    let client_id = w.docs.url("/public.json");
    let mut doc = document(&client_id, json!({}));
    doc["token_endpoint_auth_method"] = json!("none");
    w.docs.set("/public.json", Canned::json(&doc));
    let (status, body) = token_with_assertion(
        &w.app.http,
        &format!("{}/token", w.app.issuer("contoso")),
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        &assertion(&client_id, &w.app.issuer("contoso"), "p1"),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    crate::helpers::assert_described(&body, "does not say private_key_jwt");
    w.stop().await;
}

/// An assertion naming a key the client never published makes the shim fetch the client's
/// `jwks_uri` again at most once a minute, however often a stranger sends one.
#[tokio::test]
async fn unknown_key_ids_cannot_make_the_shim_hammer_a_jwks_uri() {
    let w = world().await;
    let client_id = w.docs.url("/rotating.json");
    w.docs.set(
        "/rotating.json",
        Canned::json(&document(
            &client_id,
            json!({"jwks_uri": w.docs.url("/rotating-jwks.json")}),
        )),
    );
    w.docs.set("/rotating-jwks.json", Canned::json(&jwks()));
    let token_endpoint = format!("{}/token", w.app.issuer("contoso"));
    let key =
        EncodingKey::from_rsa_pem(&std::fs::read(fixtures().join("app-key.pem")).unwrap()).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("not-published".into());
    let now = now();
    let forged = jsonwebtoken::encode(
        &header,
        &json!({"iss": client_id, "sub": client_id, "aud": token_endpoint, "exp": now + 300, "jti": "x"}),
        &key,
    )
    .unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", "x")];
    let (status, _) = token_with_assertion(&w.app.http, &token_endpoint, &form, &forged).await;
    assert_eq!(status, 401);
    let hits = w.docs.hits();
    for _ in 0..10 {
        let (status, body) =
            token_with_assertion(&w.app.http, &token_endpoint, &form, &forged).await;
        assert_eq!(status, 401, "{body}");
    }
    assert_eq!(
        w.docs.hits(),
        hits,
        "no fetch for the next ten (document and keys cached, refetch spent)"
    );
    w.stop().await;
}

/// Keys that never come (`jwks_uri` answers 500, uncacheable) do not make every token request
/// a fetch: the failure is remembered like a refused document's.
#[tokio::test]
async fn a_failing_jwks_uri_is_not_fetched_on_every_token_request() {
    let w = world().await;
    let client_id = w.docs.url("/keyless.json");
    w.docs.set(
        "/keyless.json",
        Canned::json(&document(
            &client_id,
            json!({"jwks_uri": w.docs.url("/broken-jwks.json")}),
        ))
        .header("Cache-Control", "max-age=60"),
    );
    w.docs.set(
        "/broken-jwks.json",
        Canned {
            status: 500,
            ..Canned::json(&json!({}))
        },
    );
    let token_endpoint = format!("{}/token", w.app.issuer("contoso"));
    let form = [("grant_type", "refresh_token"), ("refresh_token", "x")];
    let junk = assertion(&client_id, &token_endpoint, "j1");
    let (status, _) = token_with_assertion(&w.app.http, &token_endpoint, &form, &junk).await;
    assert_eq!(status, 401);
    let hits = w.docs.hits();
    for i in 0..10 {
        let junk = assertion(&client_id, &token_endpoint, &format!("j{}", i + 2));
        let (status, body) = token_with_assertion(&w.app.http, &token_endpoint, &form, &junk).await;
        assert_eq!(status, 401, "{body}");
    }
    assert_eq!(w.docs.hits(), hits, "the failure is remembered");
    w.stop().await;
}
