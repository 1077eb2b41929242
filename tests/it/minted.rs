//! Minted access tokens (`token = "minted"`): claims and signature against the JWKS, one
//! resource's token refused by another's verifier, refresh, key rotation, and introspection by
//! the tenant's resource servers.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::browser::{Browser, Client, authorize_url, login_through, redeem, refresh};
use crate::fake_entra::{self, APP_SECRET, DIRECTORY, FED_ASSERTION, FakeEntra, SECRET_APP};
use crate::helpers::{TestApp, spawn_app_with_tenants, write_private};

const FILES: &str = "https://mcp.northwind.example/files";
const MAIL: &str = "https://mcp.northwind.example/mail";
const REPORTS: &str = "https://reports.northwind.example";
const FILES_SERVER_SECRET: &str = "files-server-secret-0123456789";

struct World {
    app: TestApp,
    idp: FakeEntra,
    /// The mail resource server's private key (it authenticates with private_key_jwt).
    mail_server_key: EncodingKey,
    _dir: tempfile::TempDir,
}

/// A P-256 key pair: the private key for signing, the public one as a JWK Set.
pub(crate) fn ec_key(kid: &str) -> (EncodingKey, Value) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])}]});
    (EncodingKey::from_ec_der(pkcs8.as_ref()), jwks)
}

fn northwind(authority: &str, dir: &Path) -> String {
    let secret_hash: String = Sha256::digest(FILES_SERVER_SECRET.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        r#"display_name = "Northwind"
[upstream]
kind = "entra"
directory_id = "{DIRECTORY}"
authority = "{authority}"

[[apps]]
name = "agents"
client_id = "{SECRET_APP}"
credential = {{ kind = "client_secret", secret_file = {secret:?}, method = "post" }}

# Two MCP servers on one Entra API: allowed, since each receives tokens for itself alone.
[[resources]]
uri = "{FILES}"
default = true
token = "minted"
token_lifetime = "10m"
claims = {{ preferred_username = "email", tid = "tid" }}
exchange = ["reports"]
scopes = [{{ name = "files.read", upstream = "api://mcp-tools/files.read" }}]

[[resources]]
uri = "{MAIL}"
token = "minted"
scopes = [{{ name = "mail.read", upstream = "api://mcp-tools/mail.read" }}]

[[resource_servers]]
client_id = "files-server"
secret_sha256 = "{secret_hash}"
resources = ["{FILES}"]

[[resource_servers]]
client_id = "mail-server"
jwks_file = {jwks:?}
resources = ["{MAIL}"]

[[downstream_apis]]
name = "reports"
uri = "{REPORTS}"
scopes = ["api://reports/reports.read", "api://reports/reports.write"]
app = "agents"

[registration]
registrations_per_minute = 1000
"#,
        secret = dir.join("secret").display().to_string(),
        jwks = dir.join("mail-server.jwks").display().to_string(),
    )
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    write_private(&dir.path().join("secret"), APP_SECRET);
    std::fs::write(dir.path().join("federated-token"), FED_ASSERTION).unwrap();
    let (mail_server_key, jwks) = ec_key("mail-1");
    std::fs::write(dir.path().join("mail-server.jwks"), jwks.to_string()).unwrap();
    let idp = fake_entra::start(dir.path().join("federated-token")).await;
    let (authority, files) = (idp.authority.clone(), dir.path().to_owned());
    let app = spawn_app_with_tenants(move |t| {
        std::fs::write(t.join("northwind.toml"), northwind(&authority, &files)).unwrap();
    })
    .await;
    app.wait_ready().await;
    World {
        app,
        idp,
        mail_server_key,
        _dir: dir,
    }
}

impl World {
    async fn stop(self) {
        self.app.stop().await;
        self.idp.stop().await;
    }

    /// A login for `resource` with `scope`; the token response.
    async fn login(&self, client: &Client, resource: &str, scope: &str, user: &str) -> Value {
        let mut attempt = authorize_url(&self.app, "northwind", client, scope, user);
        attempt.url.push_str(&format!(
            "&resource={}",
            url::form_urlencoded::byte_serialize(resource.as_bytes()).collect::<String>()
        ));
        let (code, attempt) =
            login_through(&self.app, &Browser::new(), "northwind", client, attempt).await;
        let (status, tokens) = redeem(&self.app, "northwind", client, &code, &attempt).await;
        assert_eq!(status, 200, "{tokens}");
        tokens
    }

    async fn jwks(&self) -> JwkSet {
        let meta: Value = self
            .app
            .get("/.well-known/oauth-authorization-server/northwind")
            .await
            .json()
            .await
            .unwrap();
        let uri = meta["jwks_uri"].as_str().expect("jwks_uri in the metadata");
        assert_eq!(uri, format!("{}/jwks", self.app.issuer("northwind")));
        let res = self.app.http.get(uri).send().await.unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// RFC 7009 revocation of `token` by the public client `client_id`; the status.
    async fn revoke(&self, client_id: &str, token: &str) -> u16 {
        self.app
            .http
            .post(format!("{}/revoke", self.app.issuer("northwind")))
            .form(&[("token", token), ("client_id", client_id)])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn introspect(&self, token: &str, auth: Auth<'_>) -> (u16, Value) {
        let url = format!("{}/introspect", self.app.issuer("northwind"));
        // What resource servers' introspection clients send: the hint too (RFC 7662 §2.1).
        let mut form = vec![
            ("token", token.to_owned()),
            ("token_type_hint", "access_token".to_owned()),
        ];
        let mut req = self.app.http.post(&url);
        match auth {
            Auth::None => {}
            Auth::Basic(id, secret) => req = req.basic_auth(id, Some(secret)),
            Auth::Post(id, secret) => {
                form.push(("client_id", id.into()));
                form.push(("client_secret", secret.into()));
            }
            Auth::Assertion(key, aud) => form.extend(assertion_form(key, aud)),
        }
        let res = req.form(&form).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

enum Auth<'a> {
    None,
    Basic(&'a str, &'a str),
    Post(&'a str, &'a str),
    Assertion(&'a EncodingKey, &'a str),
}

/// The mail server's `private_key_jwt` authentication (RFC 7523 §2.2) for `aud`.
fn assertion_form(key: &EncodingKey, aud: &str) -> [(&'static str, String); 2] {
    let now = dcr_shim::app::unix_now();
    let claims = json!({"iss": "mail-server", "sub": "mail-server", "aud": aud,
        "iat": now, "exp": now + 120, "jti": dcr_shim::crypto::random_token()});
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("mail-1".into());
    [
        (
            "client_assertion",
            jsonwebtoken::encode(&header, &claims, key).unwrap(),
        ),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
        ),
    ]
}

/// A JWT's header and claims, read without checking anything.
pub(crate) fn jwt_parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let mut next =
        || serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap();
    (next(), next())
}

/// A JWT's claims, read without checking anything.
pub(crate) fn claims_of(token: &str) -> Value {
    jwt_parts(token).1
}

/// A JSON value as one base64url segment of a JWT.
pub(crate) fn segment(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn header_of(token: &str) -> Value {
    jwt_parts(token).0
}

/// What a resource server at `audience` does with a bearer token: RFC 9068 §4 with the JWKS.
fn validate(jwks: &JwkSet, issuer: &str, audience: &str, token: &str) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    if header.typ.as_deref() != Some("at+jwt") {
        return Err("typ".into());
    }
    let jwk = jwks
        .find(header.kid.as_deref().ok_or("kid")?)
        .ok_or("unknown kid")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut v = Validation::new(Algorithm::ES256);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .map(|d| d.claims)
        .map_err(|e| format!("{:?}", e.kind()))
}

#[tokio::test]
async fn a_minted_token_carries_the_login_and_only_its_resource_accepts_it() {
    let w = world().await;
    let issuer = w.app.issuer("northwind");
    let client = Client::register(&w.app, "northwind", json!({})).await;
    let tokens = w
        .login(&client, FILES, "files.read offline_access", "erin")
        .await;
    let at = tokens["access_token"].as_str().unwrap();
    assert!(
        !at.starts_with("entra-at."),
        "the IdP's token is not handed out"
    );
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 600);
    let header = header_of(at);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");

    let jwks = w.jwks().await;
    let claims = validate(&jwks, &issuer, FILES, at).expect("the files server accepts it");
    assert_eq!(claims["iss"], issuer);
    assert_eq!(claims["aud"], FILES);
    assert_eq!(claims["sub"], "oid-erin", "Entra's oid, stable across apps");
    assert_eq!(claims["client_id"], client.id);
    assert_eq!(claims["scope"], "files.read");
    assert_eq!(
        claims["email"], "erin",
        "preferred_username copied as email"
    );
    assert_eq!(claims["tid"], DIRECTORY);
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 600);
    assert!(claims["auth_time"].as_u64().is_some());
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 32));
    assert!(claims["sid"].as_str().is_some());
    // The mail server, on the same Entra API, refuses the files server's token.
    assert_eq!(
        validate(&jwks, &issuer, MAIL, at).unwrap_err(),
        "InvalidAudience"
    );

    // A refresh asks the IdP again and mints a new token of the same login.
    let calls = w.idp.state.lock().unwrap().counter;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let (status, second) = refresh(&w.app, "northwind", &client, rt).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        w.idp.state.lock().unwrap().counter,
        calls + 1,
        "refreshed upstream"
    );
    let again = validate(
        &jwks,
        &issuer,
        FILES,
        second["access_token"].as_str().unwrap(),
    )
    .expect("the refreshed token verifies");
    assert_eq!(again["sid"], claims["sid"]);
    assert_eq!(again["sub"], claims["sub"]);
    assert_eq!(again["email"], "erin", "copied claims survive the refresh");
    assert_eq!(again["auth_time"], claims["auth_time"]);
    assert_ne!(again["jti"], claims["jti"]);

    // A login for the other resource gets a token for it alone.
    let mail = w.login(&client, MAIL, "mail.read", "erin").await;
    let mail_at = mail["access_token"].as_str().unwrap();
    let mail_claims = validate(&jwks, &issuer, MAIL, mail_at).expect("the mail server accepts");
    assert_eq!(mail_claims["scope"], "mail.read");
    assert!(mail_claims.get("email").is_none(), "mail copies no claims");
    assert!(validate(&jwks, &issuer, FILES, mail_at).is_err());
    w.stop().await;
}

#[tokio::test]
async fn introspection_needs_a_resource_server_and_tells_active_from_inactive() {
    let w = world().await;
    let client = Client::register(&w.app, "northwind", json!({})).await;
    let tokens = w
        .login(&client, FILES, "files.read offline_access", "frank")
        .await;
    let at = tokens["access_token"].as_str().unwrap();

    // No, wrong and right credentials.
    let (status, body) = w.introspect(at, Auth::None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, _) = w.introspect(at, Auth::Basic("files-server", "wrong")).await;
    assert_eq!(status, 401);
    let (status, _) = w.introspect(at, Auth::Basic(&client.id, "")).await;
    assert_eq!(status, 401, "an MCP client is not a resource server");
    let (status, body) = w
        .introspect(at, Auth::Basic("files-server", FILES_SERVER_SECRET))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], true);
    assert_eq!(body["sub"], "oid-frank");
    assert_eq!(body["aud"], FILES);
    assert_eq!(body["client_id"], client.id);
    assert_eq!(body["scope"], "files.read");
    assert_eq!(body["token_type"], "Bearer");
    let (_, body) = w
        .introspect(at, Auth::Post("files-server", FILES_SERVER_SECRET))
        .await;
    assert_eq!(body["active"], true, "client_secret_post too");

    // The mail server may not look at the files server's tokens; it authenticates with a key.
    let introspect = format!("{}/introspect", w.app.issuer("northwind"));
    let (status, body) = w
        .introspect(at, Auth::Assertion(&w.mail_server_key, &introspect))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"active": false}));
    let mail = w.login(&client, MAIL, "mail.read", "frank").await;
    let (_, body) = w
        .introspect(
            mail["access_token"].as_str().unwrap(),
            Auth::Assertion(&w.mail_server_key, &introspect),
        )
        .await;
    assert_eq!(body["active"], true);
    let (wrong_key, _) = ec_key("mail-1");
    let (status, _) = w
        .introspect(at, Auth::Assertion(&wrong_key, &introspect))
        .await;
    assert_eq!(status, 401, "an assertion signed with another key");

    // Foreign and malformed tokens are inactive.
    let ours = Auth::Basic("files-server", FILES_SERVER_SECRET);
    for foreign in ["entra-at.frank.x.1", "not.a.jwt", "a"] {
        let (status, body) = w
            .introspect(foreign, Auth::Basic("files-server", FILES_SERVER_SECRET))
            .await;
        assert_eq!(
            (status, &body),
            (200, &json!({"active": false})),
            "{foreign}"
        );
    }
    let (status, body) = w.introspect("", ours).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // Expired: introspected past its exp.
    let tenant = w.app.tenant("northwind");
    let form = dcr_shim::oauth::params::Params::parse(&format!(
        "token={at}&client_id=files-server&client_secret={FILES_SERVER_SECRET}"
    ));
    let creds = dcr_shim::oauth::client_auth::ClientCredentials {
        basic: None,
        dpop: None,
    };
    let later = dcr_shim::app::unix_now() + 601;
    let body = w
        .app
        .state()
        .auth()
        .tokens()
        .introspect(&tenant, &form, &creds, &crate::helpers::operator(later))
        .await
        .unwrap();
    assert_eq!(body, json!({"active": false}));

    // Revoked: the client revokes its refresh token, which ends the login at once.
    assert_eq!(
        w.revoke(&client.id, tokens["refresh_token"].as_str().unwrap())
            .await,
        200
    );
    let (_, body) = w
        .introspect(at, Auth::Basic("files-server", FILES_SERVER_SECRET))
        .await;
    assert_eq!(body, json!({"active": false}), "the login was revoked");
    w.stop().await;
}

#[tokio::test]
async fn a_key_rotation_publishes_first_signs_later_and_retires_the_old_key() {
    let w = world().await;
    let issuer = w.app.issuer("northwind");
    let tenant = w.app.tenant("northwind");
    let client = Client::register(&w.app, "northwind", json!({})).await;
    let tokens = w
        .login(&client, FILES, "files.read offline_access", "gina")
        .await;
    let before = tokens["access_token"].as_str().unwrap().to_owned();
    let old_kid = header_of(&before)["kid"].as_str().unwrap().to_owned();

    // Through the admin API, as `dcr-shim keys rotate` does: published now, signs in an hour.
    let res = w
        .app
        .admin(reqwest::Method::POST, "/tenants/northwind/keys/rotate")
        .json(&json!({"propagation_seconds": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let rotation: Value = res.json().await.unwrap();
    let new_kid = rotation["kid"].as_str().unwrap().to_owned();
    let sign_from = rotation["sign_from"].as_u64().unwrap();
    let retire_at = rotation["retiring"][0][1].as_u64().unwrap();
    assert_eq!(rotation["retiring"][0][0], old_kid);
    let jwks = w.jwks().await;
    assert!(jwks.find(&new_kid).is_some() && jwks.find(&old_kid).is_some());

    // During the propagation delay the old key still signs.
    let (status, during) = refresh(
        &w.app,
        "northwind",
        &client,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{during}");
    let during_at = during["access_token"].as_str().unwrap();
    assert_eq!(header_of(during_at)["kid"], old_kid);
    validate(&jwks, &issuer, FILES, during_at).unwrap();

    // After it, the new key signs; tokens of both verify until the old key retires.
    let after_time = sign_from + 1;
    let form = dcr_shim::oauth::params::Params::parse(&format!(
        "grant_type=refresh_token&refresh_token={}&client_id={}",
        during["refresh_token"].as_str().unwrap(),
        client.id
    ));
    let creds = dcr_shim::oauth::client_auth::ClientCredentials {
        basic: None,
        dpop: None,
    };
    let after = w
        .app
        .state()
        .auth()
        .tokens()
        .token(
            &tenant,
            &form,
            &creds,
            &crate::helpers::operator(after_time),
        )
        .await
        .unwrap();
    let after = serde_json::to_value(after).unwrap();
    let after_at = after["access_token"].as_str().unwrap();
    assert_eq!(header_of(after_at)["kid"], new_kid);
    validate(&jwks, &issuer, FILES, after_at).unwrap();
    // No token the old key signed outlives its place in the JWKS.
    let during_exp = validate(&jwks, &issuer, FILES, during_at).unwrap()["exp"]
        .as_u64()
        .unwrap();
    assert!(during_exp < retire_at);
    let at_retirement = w.app.state().auth().jwks(&tenant, retire_at).await.unwrap();
    let kids: Vec<&str> = at_retirement["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [new_kid.as_str()], "the old key has left the JWKS");

    // The listing says which key does what.
    let res = w
        .app
        .admin(reqwest::Method::GET, "/tenants/northwind/keys")
        .send()
        .await
        .unwrap();
    let listed: Value = res.json().await.unwrap();
    let states: Vec<(&str, &str)> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [(old_kid.as_str(), "retiring"), (new_kid.as_str(), "next")]
    );
    w.stop().await;
}

#[test]
fn minted_resources_may_share_an_entra_api_and_passthrough_ones_may_not() {
    let dir = tempfile::tempdir().unwrap();
    write_private(&dir.path().join("secret"), APP_SECRET);
    let (_, jwks) = ec_key("k");
    std::fs::write(dir.path().join("mail-server.jwks"), jwks.to_string()).unwrap();
    let public = url::Url::parse("https://auth.example.com").unwrap();
    let file = dir.path().join("northwind.toml");
    let text = northwind("https://login.example.com", dir.path());
    std::fs::write(&file, &text).unwrap();
    let tenant = dcr_shim::config::load_tenant(&file, &public).expect("loads");
    let summary = tenant.resources()[0].token_summary(
        &tenant.issuer,
        "entra",
        dcr_shim::config::token_mode::TokenSigningAlg::ES256,
    );
    assert!(
        summary.contains("minted") && summary.contains(FILES),
        "{summary}"
    );

    // The mail resource back to passthrough: the shared API is refused.
    let passthrough = text.replacen(
        "uri = \"https://mcp.northwind.example/mail\"\ntoken = \"minted\"\n",
        "uri = \"https://mcp.northwind.example/mail\"\n",
        1,
    );
    std::fs::write(&file, passthrough).unwrap();
    let problems = dcr_shim::config::load_tenant(&file, &public).unwrap_err();
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(
        text.iter()
            .any(|p| p.contains("api://mcp-tools") && p.contains("minted")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|p| p.contains("resource_servers[1].resources") && p.contains("passthrough")),
        "a resource server of a passthrough resource is refused: {text:?}"
    );
}

impl World {
    /// A token exchange request by the files server (or `auth`), with `extra` parameters.
    async fn exchange(
        &self,
        subject: &str,
        extra: &[(&str, &str)],
        auth: Auth<'_>,
    ) -> (u16, Value) {
        let mut form = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange".to_owned(),
            ),
            ("subject_token", subject.to_owned()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token".to_owned(),
            ),
        ];
        form.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let mut req = self
            .app
            .http
            .post(format!("{}/token", self.app.issuer("northwind")));
        match auth {
            Auth::Basic(id, secret) => req = req.basic_auth(id, Some(secret)),
            Auth::Post(id, secret) => {
                form.push(("client_id", id.to_owned()));
                if !secret.is_empty() {
                    form.push(("client_secret", secret.to_owned()));
                }
            }
            Auth::Assertion(key, aud) => form.extend(assertion_form(key, aud)),
            Auth::None => {}
        }
        let res = req.form(&form).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn a_resource_server_exchanges_a_minted_token_for_a_downstream_api() {
    let w = world().await;
    let files_server = || Auth::Basic("files-server", FILES_SERVER_SECRET);
    let client = Client::register(&w.app, "northwind", json!({})).await;
    let tokens = w
        .login(&client, FILES, "files.read offline_access", "hana")
        .await;
    let at = tokens["access_token"].as_str().unwrap();

    let (status, body) = w
        .exchange(at, &[("resource", REPORTS)], files_server())
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(body["token_type"], "Bearer");
    let downstream = body["access_token"].as_str().unwrap();
    assert!(
        downstream
            .starts_with("entra-at.hana.api://reports/reports.read,api://reports/reports.write."),
        "the IdP's token for the reports API, on hana's behalf: {downstream}"
    );
    assert!(body.get("refresh_token").is_none());
    let (status, body) = w
        .exchange(
            at,
            &[
                ("audience", "reports"),
                ("scope", "api://reports/reports.read"),
            ],
            files_server(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "api://reports/reports.read");

    // The client's own refresh still works after exchanges used the login's IdP token.
    let (status, refreshed) = refresh(
        &w.app,
        "northwind",
        &client,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");

    // Refusals, each with its own code.
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "a downstream API not configured",
            vec![("resource", "https://other.example")],
            400,
            "invalid_target",
        ),
        ("no API named", vec![], 400, "invalid_request"),
        (
            "a scope beyond the API",
            vec![("audience", "reports"), ("scope", "api://reports/admin")],
            400,
            "invalid_scope",
        ),
        (
            "an actor token",
            vec![("audience", "reports"), ("actor_token", "x")],
            400,
            "invalid_request",
        ),
    ];
    for (what, extra, status, error) in cases {
        let (s, body) = w.exchange(at, &extra, files_server()).await;
        assert_eq!(
            (s, body["error"].as_str()),
            (status, Some(error)),
            "{what}: {body}"
        );
    }
    // RFC 8693 §2.2.2: an unacceptable subject token is invalid_request.
    let (s, body) = w
        .exchange("not-a-token", &[("audience", "reports")], files_server())
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    // A token of the mail resource: not the files server's to exchange.
    let mail = w.login(&client, MAIL, "mail.read", "hana").await;
    let mail_at = mail["access_token"].as_str().unwrap();
    let (s, body) = w
        .exchange(mail_at, &[("audience", "reports")], files_server())
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    // The mail server may exchange its own tokens, but its resource reaches no API.
    let token_endpoint = format!("{}/token", w.app.issuer("northwind"));
    let (s, body) = w
        .exchange(
            mail_at,
            &[("audience", "reports")],
            Auth::Assertion(&w.mail_server_key, &token_endpoint),
        )
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_target")),
        "{body}"
    );
    crate::helpers::assert_described(&body, "exchange");
    // A registered client is not a resource server.
    let (s, body) = w
        .exchange(at, &[("audience", "reports")], Auth::Post(&client.id, ""))
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    // Expired.
    let tenant = w.app.tenant("northwind");
    let form = dcr_shim::oauth::params::Params::parse(&format!(
        "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token={at}&subject_token_type=urn:ietf:params:oauth:token-type:access_token&audience=reports&client_id=files-server&client_secret={FILES_SERVER_SECRET}"
    ));
    let creds = dcr_shim::oauth::client_auth::ClientCredentials {
        basic: None,
        dpop: None,
    };
    let err = w
        .app
        .state()
        .auth()
        .tokens()
        .token(
            &tenant,
            &form,
            &creds,
            &crate::helpers::operator(dcr_shim::app::unix_now() + 3600),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, dcr_shim::oauth::ErrorCode::InvalidRequest);
    assert!(err.description.contains("expired"), "{}", err.description);
    // Revoked: the login ends, and with it the exchanges.
    let second = refreshed["access_token"].as_str().unwrap();
    assert_eq!(
        w.revoke(&client.id, refreshed["refresh_token"].as_str().unwrap())
            .await,
        200
    );
    let (s, body) = w
        .exchange(second, &[("audience", "reports")], files_server())
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    w.stop().await;
}

#[tokio::test]
async fn a_client_revokes_its_minted_access_token_and_a_deleted_client_exchanges_nothing() {
    let w = world().await;
    let files_server = || Auth::Basic("files-server", FILES_SERVER_SECRET);
    // A client registered without the refresh_token grant: its access token is all it holds.
    let client = Client::register(
        &w.app,
        "northwind",
        json!({"grant_types": ["authorization_code"]}),
    )
    .await;
    let tokens = w.login(&client, FILES, "files.read", "ivan").await;
    assert!(tokens.get("refresh_token").is_none());
    let at = tokens["access_token"].as_str().unwrap();
    let (_, body) = w.introspect(at, files_server()).await;
    assert_eq!(body["active"], true);
    // Another client cannot revoke it; its own client can (RFC 7009 §2.1).
    let other = Client::register(&w.app, "northwind", json!({})).await;
    assert_eq!(w.revoke(&other.id, at).await, 200);
    let (_, body) = w.introspect(at, files_server()).await;
    assert_eq!(
        body["active"], true,
        "another client's revocation does nothing"
    );
    assert_eq!(w.revoke(&client.id, at).await, 200);
    let (_, body) = w.introspect(at, files_server()).await;
    assert_eq!(body, json!({"active": false}), "revoked by its client");

    // A deleted client's tokens are inactive, and exchange nothing.
    let tokens = w
        .login(&other, FILES, "files.read offline_access", "ivan")
        .await;
    let at = tokens["access_token"].as_str().unwrap();
    let res = w
        .app
        .admin(
            reqwest::Method::DELETE,
            &format!("/tenants/northwind/clients/{}", other.id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, body) = w.introspect(at, files_server()).await;
    assert_eq!(body, json!({"active": false}));
    let (s, body) = w
        .exchange(at, &[("audience", "reports")], files_server())
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    w.stop().await;
}

/// What resource servers' HTTP clients send, beyond the RFC examples: a form content type with
/// a charset (Spring's introspector, axios, fetch with URLSearchParams), a repeated parameter,
/// the API's URI as `audience`, and a path-less URI with the slash URL parsers add.
#[tokio::test]
async fn resource_servers_are_answered_in_the_shapes_their_clients_send() {
    let w = world().await;
    let client = Client::register(&w.app, "northwind", json!({})).await;
    let tokens = w
        .login(&client, FILES, "files.read offline_access", "ines")
        .await;
    let at = tokens["access_token"].as_str().unwrap();
    let introspect = |body: String| {
        w.app
            .http
            .post(format!("{}/introspect", w.app.issuer("northwind")))
            .basic_auth("files-server", Some(FILES_SERVER_SECRET))
            .header(
                "Content-Type",
                "application/x-www-form-urlencoded;charset=UTF-8",
            )
            .body(body)
            .send()
    };

    let res = introspect(format!("token={at}&token_type_hint=access_token"))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["active"], true, "{body}");
    // What the SDKs' introspection verifiers read besides `active`.
    assert_eq!(body["exp"], jwt_parts(at).1["exp"]);
    assert_eq!(body["iss"], w.app.issuer("northwind"));

    let res = introspect(format!("token={at}&token={at}")).await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");

    let files_server = || Auth::Basic("files-server", FILES_SERVER_SECRET);
    for extra in [
        vec![("audience", REPORTS)],
        vec![("resource", "https://reports.northwind.example/")],
        vec![("resource", REPORTS), ("audience", "reports")],
    ] {
        let (status, body) = w.exchange(at, &extra, files_server()).await;
        assert_eq!(status, 200, "{extra:?}: {body}");
    }
    w.stop().await;
}

/// The northwind file with the files resource alone (`extra` lines in its table): no mail
/// resource, no exchange, no resource servers.
fn files_alone(original: &str, extra: &str) -> String {
    let head = &original[..original.find("[[resources]]").unwrap()];
    format!(
        "{head}[[resources]]\nuri = \"{FILES}\"\n{extra}scopes = [{{ name = \"files.read\", upstream = \"api://mcp-tools/files.read\" }}]\n"
    )
}

/// Regression (issue 22, item 3): a grant outlives neither its resource nor its token mode.
/// A resource deleted from the tenant file, or turned from minted to passthrough, refuses the
/// refresh with `invalid_grant` and revokes the family (it answered 200 with the IdP's own
/// token); passthrough to minted is a migration, and the next refresh mints.
#[tokio::test]
async fn a_grant_outlives_neither_its_resource_nor_its_token_mode() {
    let w = world().await;
    let client = Client::register(&w.app, "northwind", json!({})).await;
    let files_tokens = w
        .login(&client, FILES, "files.read offline_access", "ana")
        .await;
    let mail_tokens = w
        .login(&client, MAIL, "mail.read offline_access", "ana")
        .await;
    let path = w.app.tenants_dir.join("northwind.toml");
    let original = std::fs::read_to_string(&path).unwrap();
    let rt = |t: &Value| t["refresh_token"].as_str().unwrap().to_owned();

    // The mail resource is deleted: its refresh is refused and its family revoked.
    let mail_table = format!(
        "[[resources]]\nuri = \"{MAIL}\"\ntoken = \"minted\"\nscopes = [{{ name = \"mail.read\", upstream = \"api://mcp-tools/mail.read\" }}]\n"
    );
    assert!(original.contains(&mail_table));
    let without_mail = original
        .replace(&mail_table, "")
        .replace(
            "[[resource_servers]]\nclient_id = \"mail-server\"\njwks_file",
            "[[resource_servers]]\nclient_id = \"mail-server-gone\"\njwks_file",
        )
        .replace(
            &format!("resources = [\"{MAIL}\"]"),
            &format!("resources = [\"{FILES}\"]"),
        );
    std::fs::write(&path, &without_mail).unwrap();
    w.app
        .reload()
        .await
        .expect("the file without the mail resource loads");
    let (status, body) = refresh(&w.app, "northwind", &client, &rt(&mail_tokens)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    crate::helpers::assert_described(&body, "no longer served");
    // The family is revoked: with the resource back, the token still does not work.
    std::fs::write(&path, &original).unwrap();
    w.app.reload().await.unwrap();
    let (status, _) = refresh(&w.app, "northwind", &client, &rt(&mail_tokens)).await;
    assert_eq!(status, 400, "revoked, not merely refused");

    // The files resource turns passthrough (alone on its Entra API, as passthrough requires):
    // a minted grant does not become a passthrough one.
    std::fs::write(&path, files_alone(&original, "")).unwrap();
    w.app.reload().await.expect("the passthrough file loads");
    let (status, body) = refresh(&w.app, "northwind", &client, &rt(&files_tokens)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    crate::helpers::assert_described(&body, "minted");

    // Passthrough to minted is a migration: a passthrough grant's next refresh mints.
    let passthrough_tokens = w
        .login(&client, FILES, "files.read offline_access", "bo")
        .await;
    let minted = |t: &Value| {
        jsonwebtoken::decode_header(t["access_token"].as_str().unwrap())
            .is_ok_and(|h| h.alg == Algorithm::ES256)
    };
    assert!(!minted(&passthrough_tokens), "the IdP's own token");
    std::fs::write(&path, &original).unwrap();
    w.app.reload().await.unwrap();
    let (status, body) = refresh(&w.app, "northwind", &client, &rt(&passthrough_tokens)).await;
    assert_eq!(status, 200, "{body}");
    assert!(minted(&body), "minted by the shim now: {body}");
    w.stop().await;
}

/// A code for a resource the tenant file dropped between the login and the redemption is
/// `invalid_grant`, and spent.
#[tokio::test]
async fn a_code_for_a_removed_resource_is_refused_and_spent() {
    let w = world().await;
    let client = Client::register(&w.app, "northwind", json!({})).await;
    let mut attempt = authorize_url(&w.app, "northwind", &client, "mail.read", "cy");
    attempt.url.push_str(&format!(
        "&resource={}",
        url::form_urlencoded::byte_serialize(MAIL.as_bytes()).collect::<String>()
    ));
    let (code, attempt) =
        login_through(&w.app, &Browser::new(), "northwind", &client, attempt).await;
    let path = w.app.tenants_dir.join("northwind.toml");
    let original = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, files_alone(&original, "token = \"minted\"\n")).unwrap();
    w.app.reload().await.unwrap();
    let (status, body) = redeem(&w.app, "northwind", &client, &code, &attempt).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    std::fs::write(&path, &original).unwrap();
    w.app.reload().await.unwrap();
    let (status, _) = redeem(&w.app, "northwind", &client, &code, &attempt).await;
    assert_eq!(status, 400, "the code was spent");
    w.stop().await;
}

/// Issue 24: the tokens of a client that waits for an administrator again (approval turned on,
/// then the client made itself look different) are inactive and exchange nothing, though its
/// login was never revoked.
#[tokio::test]
async fn a_client_waiting_for_approval_again_holds_tokens_that_count_for_nothing() {
    let w = world().await;
    let files_server = || Auth::Basic("files-server", FILES_SERVER_SECRET);
    let (status, registered) = w
        .app
        .register(
            "northwind",
            &json!({"client_name": "Before", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}),
        )
        .await;
    assert_eq!(status, 201);
    let client = Client {
        id: registered["client_id"].as_str().unwrap().to_owned(),
        secret: None,
        redirect_uri: "http://127.0.0.1:49152/cb".into(),
    };
    let tokens = w
        .login(&client, FILES, "files.read offline_access", "ivan")
        .await;
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(w.introspect(at, files_server()).await.1["active"], true);

    // Approval turned on: the client registered before stays approved.
    let file = w.app.tenants_dir.join("northwind.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("[registration]\n", "[registration]\napproval = \"admin\"\n"),
    )
    .unwrap();
    w.app.reload().await.unwrap();
    assert_eq!(w.introspect(at, files_server()).await.1["active"], true);

    // It updates itself into something else: it waits, and its tokens count for nothing.
    let res = w
        .app
        .http
        .put(registered["registration_client_uri"].as_str().unwrap())
        .bearer_auth(registered["registration_access_token"].as_str().unwrap())
        .json(&json!({"client_id": client.id, "client_name": "After", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        w.introspect(at, files_server()).await.1,
        json!({"active": false})
    );
    let (s, body) = w
        .exchange(at, &[("audience", "reports")], files_server())
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    crate::helpers::assert_described(&body, "waits for an administrator");
    w.stop().await;
}
