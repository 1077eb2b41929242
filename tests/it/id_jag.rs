//! The ID-JAG grant (Enterprise-Managed Authorization): each validation rule with a failing
//! and a passing case, keys from a file and from a discovered `jwks_uri`, the metadata, and the
//! grant as the operator sees it.

use std::path::Path;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::browser::Client;
use crate::helpers::{TestApp, spawn_app_with_tenants_on};
use crate::minted::{ec_key, jwt_parts, segment};
use crate::tls_server::{Canned, DocServer};

const FILES: &str = "https://mcp.acme.example/files";
const LEGACY: &str = "https://mcp.acme.example/legacy";
const FILE_ISSUER: &str = "https://idp.acme.example";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

struct World {
    app: TestApp,
    docs: DocServer,
    /// The key of the issuer whose JWK Set is a file (kid "file-1").
    file_key: EncodingKey,
    /// The key of the issuer found by discovery on the document server (kid "uri-1").
    uri_key: EncodingKey,
    uri_jwks: Value,
    allowed: Client,
    other: Client,
    public: Client,
    dir: tempfile::TempDir,
}

fn tenant(jwks_file: &Path, uri_issuer: &str, ca: &Path, clients: &[&str]) -> String {
    let clients = serde_json::to_string(clients).unwrap();
    let issuers = if clients == "[]" {
        String::new()
    } else {
        format!(
            r#"
[[trusted_issuers]]
issuer = "{FILE_ISSUER}"
jwks_file = {jwks:?}
algorithms = ["ES256"]
subject_claim = "email"
clients = {clients}

[[trusted_issuers]]
issuer = "{uri_issuer}"
clients = {clients}
max_lifetime = "5m"
"#,
            jwks = jwks_file.display().to_string()
        )
    };
    format!(
        r#"upstream = {{ kind = "dev" }}
# The agents' app may have files.read, never files.write.
[[apps]]
name = "dev"
client_id = "dev"
scopes = ["files.read", "legacy.read"]
credential = {{ kind = "none" }}
[[resources]]
uri = "{FILES}"
default = true
token = "minted"
scopes = [
  {{ name = "files.read", upstream = "files.read" }},
  {{ name = "files.write", upstream = "files.write" }},
]
default_scopes = ["files.read"]
[[resources]]
uri = "{LEGACY}"
scopes = [{{ name = "legacy.read", upstream = "legacy.read" }}]
{issuers}
[registration]
registrations_per_minute = 1000
[dev]
cimd_allow_loopback = true
cimd_extra_ca_file = {ca:?}
"#,
        ca = ca.display().to_string()
    )
}

async fn world() -> World {
    world_on(crate::helpers::it_store().await).await
}

async fn world_on(store: Option<String>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let docs = DocServer::start(dir.path()).await;
    let (file_key, file_jwks) = ec_key("file-1");
    let (uri_key, uri_jwks) = ec_key("uri-1");
    let jwks_file = dir.path().join("acme-idp.jwks");
    std::fs::write(&jwks_file, file_jwks.to_string()).unwrap();
    let uri_issuer = docs.url("");
    // As long as real IdPs' documents are (Keycloak's and Okta's list dozens of claims, scopes
    // and algorithms): over the 5 KiB a client metadata document may have.
    let supported: Vec<String> = (0..300)
        .map(|i| format!("https://idp.example/claims/{i:03}"))
        .collect();
    docs.set(
        "/.well-known/openid-configuration",
        Canned::json(&json!({"issuer": uri_issuer, "jwks_uri": docs.url("/keys"),
            "claims_supported": supported})),
    );
    docs.set("/keys", Canned::json(&uri_jwks));
    let uri_jwks_kept = uri_jwks.clone();
    let (ca, jf, ui) = (docs.ca_file.clone(), jwks_file.clone(), uri_issuer.clone());
    let app = spawn_app_with_tenants_on(store, move |t| {
        std::fs::write(t.join("acme.toml"), tenant(&jf, &ui, &ca, &[])).unwrap();
    })
    .await;
    let confidential = json!({"redirect_uris": ["https://agent.acme.example/cb"],
        "token_endpoint_auth_method": "client_secret_basic", "grant_types": ["authorization_code"]});
    let allowed = Client::register(&app, "acme", confidential.clone()).await;
    let other = Client::register(&app, "acme", confidential).await;
    let public = Client::register(&app, "acme", json!({})).await;
    // Registered first, then named in the tenant file: the operator's order.
    std::fs::write(
        app.tenants_dir.join("acme.toml"),
        tenant(
            &jwks_file,
            &uri_issuer,
            &docs.ca_file,
            &[&allowed.id, &public.id],
        ),
    )
    .unwrap();
    app.reload()
        .await
        .expect("the tenant file with trusted issuers loads");
    World {
        app,
        docs,
        file_key,
        uri_key,
        uri_jwks: uri_jwks_kept,
        allowed,
        other,
        public,
        dir,
    }
}

fn now() -> u64 {
    dcr_shim::app::unix_now()
}

impl World {
    fn issuer(&self) -> String {
        self.app.issuer("acme")
    }

    /// The claims of a sound assertion from the file issuer for the allowed client.
    fn claims(&self) -> Value {
        let now = now();
        json!({"iss": FILE_ISSUER, "sub": "u-123", "email": "alice@acme.example", "aud": self.issuer(),
            "client_id": self.allowed.id, "resource": FILES, "scope": "files.read files.write",
            "iat": now, "exp": now + 300, "jti": dcr_shim::crypto::random_token()})
    }

    fn sign(&self, claims: &Value) -> String {
        sign_with(&self.file_key, "file-1", "oauth-id-jag+jwt", claims)
    }

    /// A jwt-bearer token request by `client` (Basic, as the TypeScript SDK sends it).
    async fn grant(
        &self,
        client: &Client,
        assertion: &str,
        extra: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut form = vec![("grant_type", JWT_BEARER), ("assertion", assertion)];
        form.extend_from_slice(extra);
        let mut req = self.app.http.post(format!("{}/token", self.issuer()));
        req = match &client.secret {
            Some(s) => req.basic_auth(&client.id, Some(s)),
            None => {
                form.push(("client_id", &client.id));
                req
            }
        };
        let res = req.form(&form).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn refused(&self, what: &str, claims_or_token: Either, needle: &str) {
        let assertion = match claims_or_token {
            Either::Claims(c) => self.sign(&c),
            Either::Token(t) => t,
        };
        let (status, body) = self.grant(&self.allowed, &assertion, &[]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{what}: {body}"
        );
        let why = body["error_description"].as_str().unwrap_or_default();
        assert!(
            why.contains(needle),
            "{what}: '{why}' should mention '{needle}'"
        );
    }
}

enum Either {
    Claims(Value),
    Token(String),
}

fn sign_with(key: &EncodingKey, kid: &str, typ: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    header.typ = Some(typ.into());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// `claims` with `field` set to `value`, or removed when `value` is null.
pub(crate) fn with(mut claims: Value, field: &str, value: Value) -> Value {
    if value.is_null() {
        claims.as_object_mut().unwrap().remove(field);
    } else {
        claims[field] = value;
    }
    claims
}

#[tokio::test]
async fn a_sound_assertion_gets_a_minted_token_and_each_rule_refuses_its_breach() {
    let w = world().await;
    // Passing: a minted token for the assertion's resource, the user of subject_claim, the
    // scopes both sides name, no refresh token.
    let good = w.claims();
    let (status, body) = w
        .grant(&w.allowed, &w.sign(&good), &[("scope", "files.read")])
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "no refresh token for an ID-JAG grant"
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "files.read");
    let at = body["access_token"].as_str().unwrap();
    let claims = jwt_parts(at).1;
    assert_eq!(claims["aud"], FILES);
    assert_eq!(claims["sub"], "alice@acme.example", "subject_claim = email");
    assert_eq!(claims["client_id"], w.allowed.id);
    assert_eq!(claims["iss"], w.issuer());
    // Regression (issue 22, items 17 and 18): how the user logged in, for resource servers
    // that apply their own rule, and which IdP vouched for a login without a browser.
    assert_eq!(claims["idp"], FILE_ISSUER, "an ID-JAG login names its IdP");
    assert!(claims.get("amr").is_none(), "none given, none made up");
    let with_amr = with(w.claims(), "amr", json!(["pwd", "mfa"]));
    let (status, body) = w
        .grant(&w.allowed, &w.sign(&with_amr), &[("scope", "files.read")])
        .await;
    assert_eq!(status, 200, "{body}");
    let claims = jwt_parts(body["access_token"].as_str().unwrap()).1;
    assert_eq!(claims["amr"], json!(["pwd", "mfa"]));

    let c = || w.claims();
    let now = now();
    let none = format!(
        "{}.{}.",
        segment(&json!({"alg": "none", "typ": "oauth-id-jag+jwt", "kid": "file-1"})),
        segment(&c())
    );
    // HS256 keyed with the issuer's public key file.
    let mut hs = Header::new(Algorithm::HS256);
    hs.typ = Some("oauth-id-jag+jwt".into());
    hs.kid = Some("file-1".into());
    let public = std::fs::read(w.dir.path().join("acme-idp.jwks")).unwrap();
    let hs_token = jsonwebtoken::encode(&hs, &c(), &EncodingKey::from_secret(&public)).unwrap();
    let (attacker, _) = ec_key("x");
    let token =
        |key: &EncodingKey, kid: &str, typ: &str| Either::Token(sign_with(key, kid, typ, &c()));
    let claims = |field: &str, value: Value| Either::Claims(with(c(), field, value));
    let times =
        |iat: u64, exp: u64| Either::Claims(with(with(c(), "iat", json!(iat)), "exp", json!(exp)));
    let cases = [
        ("typ", token(&w.file_key, "file-1", "JWT"), "typ"),
        ("alg none", Either::Token(none), "alg none"),
        (
            "HS256 with the public key",
            Either::Token(hs_token),
            "HS256",
        ),
        (
            "unknown kid",
            token(&w.file_key, "file-9", "oauth-id-jag+jwt"),
            "kid",
        ),
        (
            "forged signature",
            token(&attacker, "file-1", "oauth-id-jag+jwt"),
            "signature",
        ),
        (
            "untrusted issuer",
            claims("iss", json!("https://evil.example")),
            "not trusted",
        ),
        (
            "wrong aud",
            claims("aud", json!("https://other.example/acme")),
            "aud",
        ),
        (
            "two audiences",
            claims("aud", json!([w.issuer(), "https://other.example"])),
            "aud",
        ),
        (
            "client_id mismatch",
            claims("client_id", json!(w.other.id)),
            "client_id",
        ),
        (
            "foreign resource",
            claims("resource", json!("https://mcp.other.example")),
            "resource",
        ),
        (
            "passthrough resource",
            claims("resource", json!(LEGACY)),
            "passthrough",
        ),
        ("expired", times(now - 400, now - 100), "expired"),
        (
            "not yet valid",
            times(now + 600, now + 800),
            "not valid yet",
        ),
        (
            "too long-lived",
            claims("exp", json!(now + 3600)),
            "longer than",
        ),
        ("no sub", claims("sub", Value::Null), "sub"),
        ("no jti", claims("jti", Value::Null), "jti"),
        ("no subject claim", claims("email", Value::Null), "email"),
        // Regression (issue 22, item 7): the subject is recorded, logged and listed.
        (
            "a subject with a line break",
            claims("email", json!("alice@acme.example\nevent=forged")),
            "control",
        ),
        (
            "a subject with a right-to-left override",
            claims("email", json!("alice\u{202E}moc.emca@")),
            "bidirectional",
        ),
        (
            "an oversized subject",
            claims("email", json!(format!("{}@acme.example", "a".repeat(300)))),
            "longer than 256",
        ),
        (
            "oversized",
            claims("pad", json!("x".repeat(9000))),
            "larger than",
        ),
    ];
    for (what, assertion, needle) in cases {
        w.refused(what, assertion, needle).await;
    }

    // The shape the MCP conformance tool's EMA scenario sends: no kid in the header (any key of
    // the issuer that fits the algorithm is tried), no scope claim, Basic authentication.
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("oauth-id-jag+jwt".into());
    let bare =
        jsonwebtoken::encode(&header, &with(c(), "scope", Value::Null), &w.file_key).unwrap();
    let (status, body) = w.grant(&w.allowed, &bare, &[]).await;
    assert_eq!(
        (status, body["scope"].as_str()),
        (200, Some("files.read")),
        "{body}"
    );

    // Replayed jti: the second use is refused.
    let once = w.sign(&c());
    assert_eq!(w.grant(&w.allowed, &once, &[]).await.0, 200);
    let (status, body) = w.grant(&w.allowed, &once, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    crate::helpers::assert_described(&body, "jti");

    // files.write, which the assertion allows and the client's app may not have: dropped,
    // and when it is all that was asked, invalid_scope.
    let (status, body) = w.grant(&w.allowed, &w.sign(&c()), &[]).await;
    assert_eq!(
        (status, body["scope"].as_str()),
        (200, Some("files.read")),
        "{body}"
    );
    let (status, body) = w
        .grant(&w.allowed, &w.sign(&c()), &[("scope", "files.write")])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
    // A scope beyond the resource: invalid_scope.
    let (status, body) = w
        .grant(
            &w.allowed,
            &w.sign(&with(c(), "scope", json!("admin"))),
            &[],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
    // A client the issuer's table does not name, with an assertion made out to it: refused
    // before its assertion is read.
    let theirs = with(c(), "client_id", json!(w.other.id));
    let (status, body) = w.grant(&w.other, &w.sign(&theirs), &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );
    // A public client, even one the table names.
    let public = with(c(), "client_id", json!(w.public.id));
    let (status, body) = w.grant(&w.public, &w.sign(&public), &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );
    // No assertion at all.
    let (status, body) = w.grant(&w.allowed, "", &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    w.app.stop().await;
}

/// The `resource` the TypeScript SDK's CrossAppAccessProvider sends with its grant: the same
/// as the assertion's (in another spelling of the URI, too), or alone when the assertion names
/// none (the draft makes the claim optional); a different one is refused.
#[tokio::test]
async fn the_requests_resource_goes_with_the_assertions() {
    let w = world().await;
    let aud = |body: &Value| jwt_parts(body["access_token"].as_str().unwrap()).1["aud"].clone();
    for (what, claims, resource) in [
        ("the same resource", w.claims(), FILES),
        (
            "the same resource, host in capitals and its default port",
            w.claims(),
            "https://MCP.acme.example:443/files",
        ),
        (
            "only the request names it",
            with(w.claims(), "resource", Value::Null),
            FILES,
        ),
    ] {
        let (status, body) = w
            .grant(&w.allowed, &w.sign(&claims), &[("resource", resource)])
            .await;
        assert_eq!(status, 200, "{what}: {body}");
        assert_eq!(aud(&body), FILES, "{what}");
    }
    let (status, body) = w
        .grant(&w.allowed, &w.sign(&w.claims()), &[("resource", LEGACY)])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let why = body["error_description"].as_str().unwrap_or_default();
    assert!(why.contains("differs"), "{why}");
    w.app.stop().await;
}

#[tokio::test]
async fn keys_come_from_discovery_and_follow_the_issuers_rotation() {
    let w = world().await;
    let issuer = w.docs.url("");
    let claims = || with(w.claims(), "iss", json!(issuer));
    let uri_jwks = w.uri_jwks.clone();
    // The issuer says its set may not be cached: it is asked at each grant.
    w.docs.set(
        "/keys",
        Canned::json(&uri_jwks).header("cache-control", "no-store"),
    );
    let (status, body) = w
        .grant(
            &w.allowed,
            &sign_with(&w.uri_key, "uri-1", "oauth-id-jag+jwt", &claims()),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // It rotates: the new key works at once, the old one no longer does.
    let (rotated, jwks) = ec_key("uri-2");
    w.docs.set(
        "/keys",
        Canned::json(&jwks).header("cache-control", "no-store"),
    );
    let (status, body) = w
        .grant(
            &w.allowed,
            &sign_with(&rotated, "uri-2", "oauth-id-jag+jwt", &claims()),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = w
        .grant(
            &w.allowed,
            &sign_with(&w.uri_key, "uri-1", "oauth-id-jag+jwt", &claims()),
            &[],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    crate::helpers::assert_described(&body, "kid");
    // Regression (issue 22, item 18): a set that says `no-store` is still kept a minute, not
    // fetched at every grant.
    let fetches = w.docs.hits();
    for _ in 0..3 {
        let (status, _) = w
            .grant(
                &w.allowed,
                &sign_with(&rotated, "uri-2", "oauth-id-jag+jwt", &claims()),
                &[],
            )
            .await;
        assert_eq!(status, 200);
    }
    assert_eq!(w.docs.hits(), fetches, "served from the cache");
    w.app.stop().await;
}

/// A set as large as Entra's (certificate chains in x5c) and with more keys than a client's
/// may have, and the issuer's own lifetime limit.
#[tokio::test]
async fn a_large_key_set_and_the_issuers_own_lifetime_limit() {
    let w = world().await;
    let issuer = w.docs.url("");
    let claims = || with(w.claims(), "iss", json!(issuer));
    let (big_key, big) = ec_key("uri-3");
    let mut keys = big["keys"].as_array().unwrap().clone();
    for i in 0..15 {
        keys.push(
            json!({"kty": "RSA", "use": "sig", "kid": format!("old-{i}"), "e": "AQAB",
            "n": "x".repeat(342), "x5c": ["A".repeat(1100)]}),
        );
    }
    w.docs.set(
        "/keys",
        Canned::json(&json!({ "keys": keys })).header("cache-control", "no-store"),
    );
    let (status, body) = w
        .grant(
            &w.allowed,
            &sign_with(&big_key, "uri-3", "oauth-id-jag+jwt", &claims()),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // This issuer's lifetime limit is its own (5 minutes).
    let long = with(claims(), "exp", json!(now() + 420));
    let (status, body) = w
        .grant(
            &w.allowed,
            &sign_with(&big_key, "uri-3", "oauth-id-jag+jwt", &long),
            &[],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    crate::helpers::assert_described(&body, "300 s");
    w.app.stop().await;
}

#[tokio::test]
async fn the_metadata_offers_the_grant_and_the_operator_sees_and_revokes_it_by_user() {
    let w = world().await;
    let meta: Value = w
        .app
        .get("/.well-known/oauth-authorization-server/acme")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        meta["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(JWT_BEARER))
    );
    assert_eq!(
        meta["authorization_grant_profiles_supported"],
        json!(["urn:ietf:params:oauth:grant-profile:id-jag"])
    );
    let text = meta.to_string();
    assert!(
        !text.contains("idp.acme.example"),
        "trusted issuers are not disclosed"
    );
    let (status, _) = w.grant(&w.allowed, &w.sign(&w.claims()), &[]).await;
    assert_eq!(status, 200);
    let listed: Value = w
        .app
        .admin(
            reqwest::Method::GET,
            "/tenants/acme/grants?user=alice@acme.example",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let grant = &listed["grants"][0];
    assert_eq!(grant["kind"], "id-jag");
    assert_eq!(grant["issuer"], FILE_ISSUER);
    assert_eq!(grant["client_id"], w.allowed.id);
    let res = w
        .app
        .admin(reqwest::Method::POST, "/tenants/acme/grants/revoke")
        .json(&json!({"user": "alice@acme.example"}))
        .send()
        .await
        .unwrap();
    let revoked: Value = res.json().await.unwrap();
    assert_eq!(revoked["revoked"], 1);
    w.app.stop().await;
}

#[tokio::test]
async fn a_jti_spent_on_one_server_is_refused_by_another_on_the_same_database() {
    let Some(url) = crate::store_suite::fresh_postgres_database().await else {
        eprintln!("skipped: DCR_SHIM_TEST_POSTGRES is not set");
        return;
    };
    let w = world_on(Some(url.clone())).await;
    let file = std::fs::read_to_string(w.app.tenants_dir.join("acme.toml")).unwrap();
    let replica = spawn_app_with_tenants_on(Some(url), move |t| {
        std::fs::write(t.join("acme.toml"), file).unwrap();
    })
    .await;
    let claims = w.claims();
    let (status, body) = w.grant(&w.allowed, &w.sign(&claims), &[]).await;
    assert_eq!(status, 200, "{body}");
    // The same jti at the other server: its client is known there, the jti spent. (Replicas
    // share one public URL; these two test servers each have their own, so the copy names the
    // other's issuer as its audience.)
    let at_replica = |claims: &Value| {
        let assertion = w.sign(&with(claims.clone(), "aud", json!(replica.issuer("acme"))));
        replica
            .http
            .post(format!("{}/acme/token", replica.base))
            .basic_auth(&w.allowed.id, w.allowed.secret.as_deref())
            .form(&[
                ("grant_type", JWT_BEARER),
                ("assertion", assertion.as_str()),
            ])
            .send()
    };
    let res = at_replica(&claims).await.unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    crate::helpers::assert_described(&body, "jti");
    // A fresh assertion works there too.
    let res = at_replica(&w.claims()).await.unwrap();
    assert_eq!(res.status(), 200);
    replica.stop().await;
    w.app.stop().await;
}

#[tokio::test]
async fn the_dev_idp_serves_as_the_enterprise_idp_of_a_local_zero_touch_login() {
    const RESOURCE: &str = "http://127.0.0.1:3000/mcp";
    let ema = |trusted: &str| {
        format!(
            r#"upstream = {{ kind = "dev" }}
[[resources]]
uri = "{RESOURCE}"
default = true
token = "minted"
scopes = [{{ name = "mcp.read", upstream = "mcp.read" }}]
{trusted}
[dev]
cimd_allow_loopback = true
"#
        )
    };
    let home = format!(
        "upstream = {{ kind = \"dev\" }}\n[[resources]]\nuri = \"{RESOURCE}\"\nscopes = [{{ name = \"mcp.read\", upstream = \"mcp.read\" }}]\n"
    );
    let first = ema("");
    let app = spawn_app_with_tenants_on(None, move |t| {
        std::fs::write(t.join("home.toml"), home).unwrap();
        std::fs::write(t.join("ema.toml"), first).unwrap();
    })
    .await;
    let agent = Client::register(
        &app,
        "ema",
        json!({"redirect_uris": ["https://agent.example.com/cb"],
            "token_endpoint_auth_method": "client_secret_basic", "grant_types": ["authorization_code"]}),
    )
    .await;
    let idp = format!("{}/home/dev-idp", app.base);
    std::fs::write(
        app.tenants_dir.join("ema.toml"),
        ema(&format!(
            "[[trusted_issuers]]\nissuer = \"{idp}\"\nalgorithms = [\"ES256\"]\nclients = [\"{}\"]\n",
            agent.id
        )),
    )
    .unwrap();
    app.reload().await.expect("reloads");
    let post = |url: String, form: Vec<(&'static str, String)>| {
        let http = app.http.clone();
        async move {
            let res = http.post(url).form(&form).send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    // 1. The user's ID token from the dev IdP (its sign-in form, without a browser).
    let (status, body) = post(
        format!("{idp}/token"),
        vec![
            ("grant_type", "password".into()),
            ("username", "alice".into()),
            ("client_id", "dev".into()),
            ("scope", "openid".into()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id_token = body["id_token"].as_str().unwrap().to_owned();
    // 2. Exchanged for an ID-JAG addressed to tenant ema, for the agent.
    let exchange = |subject: String| {
        post(
            format!("{idp}/token"),
            vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange".into(),
                ),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:id-jag".into(),
                ),
                ("subject_token", subject),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:id_token".into(),
                ),
                ("audience", app.issuer("ema")),
                ("resource", RESOURCE.into()),
                ("client_id", agent.id.clone()),
            ],
        )
    };
    let (status, body) = exchange("not-an-id-token".into()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = exchange(id_token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:id-jag"
    );
    let jag = body["access_token"].as_str().unwrap().to_owned();
    // 3. The agent's zero-touch login at the tenant.
    let res = app
        .http
        .post(format!("{}/token", app.issuer("ema")))
        .basic_auth(&agent.id, agent.secret.as_deref())
        .form(&[
            ("grant_type", JWT_BEARER),
            ("assertion", jag.as_str()),
            ("resource", RESOURCE),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let claims = jwt_parts(body["access_token"].as_str().unwrap()).1;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], RESOURCE);
    assert_eq!(claims["scope"], "mcp.read");
    app.stop().await;
}
