//! Machine clients (`[[machine_clients]]`) and the client credentials grant, in the shapes the
//! MCP TypeScript SDK's `PrivateKeyJwtProvider` and `ClientCredentialsProvider` send: an
//! assertion with no `client_id` parameter, no `kid`, `typ` JWT and the issuer as audience; a
//! Basic header whose parts are not form-encoded. The token is for the machine itself, and
//! passes the gateway while the tenant file names the client.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::browser::Client;
use crate::gateway::{start_backend, tool_call};
use crate::helpers::{TestApp, spawn_app_with_tenants};
use crate::minted::claims_of;

const HOST: &str = "files.machines.test";
const RESOURCE: &str = "https://files.machines.test/mcp";
const OTHER: &str = "https://other.machines.test/mcp";
const SECRET: &str = "basic-agent-secret-0123456789_abc";

fn tenant_file(backend: &str, with_machines: bool) -> String {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let machines = format!(
        r#"
[[machine_clients]]
client_id = "report-agent"
name = "Nightly report agent"
jwks_file = "{jwks}"
resources = ["{RESOURCE}"]
scopes = ["files.read"]

[[machine_clients]]
client_id = "basic-agent"
secret_sha256 = "{hash}"
resources = ["{RESOURCE}", "{OTHER}"]
"#,
        jwks = fixtures.join("app-jwks.json").display(),
        hash = Sha256::digest(SECRET.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    );
    format!(
        r#"upstream = {{ kind = "dev" }}

[[resources]]
uri = "{RESOURCE}"
default = true
token = "minted"
default_scopes = ["files.read"]
scopes = [
  {{ name = "files.read", upstream = "api://files/files.read" }},
  {{ name = "files.write", upstream = "api://files/files.write" }},
]
[resources.gateway]
backend = "{backend}"

[[resources]]
uri = "{OTHER}"
token = "minted"
scopes = [{{ name = "other.read", upstream = "api://other/other.read" }}]
{}"#,
        if with_machines {
            machines
        } else {
            String::new()
        }
    )
}

fn assertion(app: &TestApp, change: impl FnOnce(&mut Value, &mut Header)) -> String {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let key =
        EncodingKey::from_rsa_pem(&std::fs::read(fixtures.join("app-key.pem")).unwrap()).unwrap();
    let now = dcr_shim::app::unix_now();
    // What PrivateKeyJwtProvider signs: typ JWT, no kid, the issuer as audience.
    let mut header = Header {
        typ: Some("JWT".into()),
        ..Header::new(Algorithm::RS256)
    };
    let mut claims = json!({
        "iss": "report-agent", "sub": "report-agent", "aud": app.issuer("mc"),
        "iat": now, "exp": now + 300, "jti": format!("{now}-{}", dcr_shim::crypto::random_token()),
    });
    change(&mut claims, &mut header);
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

async fn token(app: &TestApp, form: &[(&str, &str)], basic: Option<&str>) -> (u16, Value) {
    let mut req = app
        .http
        .post(format!("{}/mc/token", app.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish(),
        );
    if let Some(b) = basic {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(b);
        req = req.header("Authorization", format!("Basic {encoded}"));
    }
    let res = req.send().await.unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

const JWT_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[tokio::test]
async fn a_machine_client_gets_a_token_for_itself_with_its_key_or_its_secret() {
    let (backend_url, backend) = start_backend().await;
    let app = spawn_app_with_tenants(|dir| {
        std::fs::write(dir.join("mc.toml"), tenant_file(&backend_url, true)).unwrap();
    })
    .await;
    app.wait_ready().await;
    let meta: Value = app
        .get("/.well-known/oauth-authorization-server/mc")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        meta["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("client_credentials"))
    );
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

    // private_key_jwt, as the SDK sends it: no client_id, resource and scope from the PRM.
    let signed = assertion(&app, |_, _| {});
    let (status, body) = token(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion", &signed),
            ("client_assertion_type", JWT_TYPE),
            ("resource", RESOURCE),
            ("scope", "files.read"),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "files.read");
    assert!(
        body.get("refresh_token").is_none(),
        "no refresh token (RFC 6749 §4.4.3)"
    );
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "report-agent");
    assert_eq!(
        claims["client_id"], "report-agent",
        "client_id = sub: no user"
    );
    assert_eq!(claims["aud"], RESOURCE);
    assert!(claims.get("sid").is_none() && claims.get("auth_time").is_none());
    let machine_token = body["access_token"].as_str().unwrap().to_owned();

    // The same assertion again, and assertions that are not the client's.
    let (status, body) = token(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion", &signed),
            ("client_assertion_type", JWT_TYPE),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "replayed: {body}"
    );
    let issuer = app.issuer("mc");
    for (what, bad) in [
        (
            "another audience",
            assertion(&app, |c, _| c["aud"] = json!("https://elsewhere.example")),
        ),
        ("expired", assertion(&app, |c, _| c["exp"] = json!(1_000))),
        (
            "another client",
            assertion(&app, |c, _| {
                c["iss"] = json!("basic-agent");
                c["sub"] = json!("basic-agent");
            }),
        ),
        (
            "the issuer with a slash",
            assertion(&app, |c, _| c["aud"] = json!(format!("{issuer}/"))),
        ),
        // The MCP conformance suite's authorization server (auth/client-credentials-jwt)
        // checks that iss and sub both name the client.
        (
            "iss not the client",
            assertion(&app, |c, _| c["iss"] = json!("someone-else")),
        ),
    ] {
        let (status, body) = token(
            &app,
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion", &bad),
                ("client_assertion_type", JWT_TYPE),
            ],
            None,
        )
        .await;
        if what == "the issuer with a slash" {
            assert_eq!(status, 200, "{what}: {body}");
        } else {
            assert_eq!(
                (status, body["error"].as_str()),
                (401, Some("invalid_client")),
                "{what}: {body}"
            );
        }
    }
    // An assertion of another type fails authentication: 401 invalid_client, as the
    // conformance suite's authorization server answers it.
    let (status, body) = token(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion", &assertion(&app, |_, _| {})),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            ),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );

    // A secret in a Basic header the SDK does not form-encode; scopes the client may not have.
    let basic = format!("basic-agent:{SECRET}");
    let (status, body) = token(
        &app,
        &[("grant_type", "client_credentials"), ("resource", OTHER)],
        Some(&basic),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["scope"], "other.read",
        "the resource's scopes when none are asked for"
    );
    let (status, body) = token(&app, &[("grant_type", "client_credentials")], Some(&basic)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target")),
        "two resources, none named: {body}"
    );
    let (status, body) = token(
        &app,
        &[("grant_type", "client_credentials"), ("resource", RESOURCE)],
        Some("basic-agent:wrong"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    for (form, error) in [
        (vec![("scope", "files.write")], "invalid_scope"),
        (vec![("resource", OTHER)], "invalid_target"),
    ] {
        let signed = assertion(&app, |_, _| {});
        let mut full = vec![
            ("grant_type", "client_credentials"),
            ("client_assertion", signed.as_str()),
            ("client_assertion_type", JWT_TYPE),
        ];
        full.extend(form);
        let (status, body) = token(&app, &full, None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{body}"
        );
    }
    // A client that registered itself is no machine client.
    let registered = Client::register(
        &app,
        "mc",
        json!({"token_endpoint_auth_method": "client_secret_basic"}),
    )
    .await;
    let (status, body) = token(
        &app,
        &[("grant_type", "client_credentials")],
        Some(&format!(
            "{}:{}",
            registered.id,
            registered.secret.clone().unwrap_or_default()
        )),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );

    // The machine's token at the gateway: the MCP server is told who, while the file says so.
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let http = reqwest::Client::builder()
        .resolve(HOST, addr)
        .build()
        .unwrap();
    let call = || {
        http.post(format!("http://{HOST}/mcp"))
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .bearer_auth(&machine_token)
            .body(tool_call("echo").to_string())
            .send()
    };
    assert_eq!(call().await.unwrap().status(), 200);
    let identity = backend
        .seen
        .lock()
        .unwrap()
        .last()
        .unwrap()
        .header("x-dcr-shim-identity")
        .unwrap()
        .to_owned();
    let identity = claims_of(&identity);
    assert_eq!(
        (identity["sub"].as_str(), identity["client_id"].as_str()),
        (Some("report-agent"), Some("report-agent"))
    );
    std::fs::write(
        app.tenants_dir.join("mc.toml"),
        tenant_file(&backend_url, false),
    )
    .unwrap();
    app.reload().await.unwrap();
    assert_eq!(
        call().await.unwrap().status(),
        401,
        "the client is gone from the tenant file"
    );
    let (status, body) = token(&app, &[("grant_type", "client_credentials")], Some(&basic)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type")),
        "{body}"
    );
}
