//! Hostile tokens at `POST /{tenant}/introspect` and at the token exchange: forged
//! algorithms and keys, tampered claims, another tenant's token, and an exchange for an API
//! the token's resource may not reach. Every one is inactive, or `invalid_grant` /
//! `invalid_target`, and nothing is stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::harness::*;
use crate::helpers::{spawn_app_with_tenants, write_tenants};
use crate::minted::{ec_key, jwt_parts as parts, segment};

const RS_SECRET: &str = "hostile-rs-secret-0123456789";
const FILES: &str = "https://mcp.example.com/files";
const OTHER: &str = "https://mcp.example.com/other";

/// A dev tenant of two minted resources, signing with `alg`.
fn minted_tenant(alg: &str) -> String {
    let hash: String = Sha256::digest(RS_SECRET.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        r#"upstream = {{ kind = "dev" }}
token_signing_alg = "{alg}"
[[resources]]
uri = "{FILES}"
default = true
token = "minted"
exchange = ["reports"]
scopes = [{{ name = "files.read", upstream = "files.read" }}]
[[resources]]
uri = "{OTHER}"
token = "minted"
scopes = [{{ name = "other.read", upstream = "other.read" }}]
[[resource_servers]]
client_id = "rs"
secret_sha256 = "{hash}"
resources = ["{FILES}", "{OTHER}"]
[[downstream_apis]]
name = "reports"
uri = "https://reports.example.com"
scopes = ["reports.read"]
[registration]
registrations_per_minute = 1000
"#
    )
}

/// A token signed by `key` with `header`, carrying `claims`.
fn signed(header: &Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(header, claims, key).unwrap()
}

#[tokio::test]
async fn hostile_minted_tokens() {
    let app = spawn_app_with_tenants(|dir| {
        write_tenants(dir, None);
        std::fs::write(dir.join("alpha.toml"), minted_tenant("ES256")).unwrap();
        // Another tenant, signing with RS256: its tokens verify nowhere else.
        std::fs::write(dir.join("gamma.toml"), minted_tenant("RS256")).unwrap();
    })
    .await;
    let ctx = ctx_for(&app, "alpha");
    let redeem = |tenant: &'static str, code: String, verifier: String, client: String| {
        let app = &app;
        async move {
            let res = send(
                app,
                &form(
                    format!("/{tenant}/token"),
                    qs(&[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", LOOPBACK),
                        ("code_verifier", &verifier),
                        ("client_id", &client),
                    ]),
                ),
            )
            .await;
            assert_eq!(res.status, 200, "{}", res.text());
            res.json()["access_token"].as_str().unwrap().to_owned()
        }
    };
    let owner = public_client(&app, "alpha").await;
    let at = |tenant, scope, resource| At {
        tenant,
        scope,
        resource,
    };
    let files = at("alpha", "files.read", None);
    let (code, verifier) = login_code_at(&app, &files, &owner).await;
    let good = redeem("alpha", code, verifier, owner.id.clone()).await;
    let other = at("alpha", "other.read", Some(OTHER));
    let (code, verifier) = login_code_at(&app, &other, &owner).await;
    let other_resource = redeem("alpha", code, verifier, owner.id.clone()).await;
    let gamma_client = public_client(&app, "gamma").await;
    let (code, verifier) =
        login_code_at(&app, &at("gamma", "files.read", None), &gamma_client).await;
    let foreign_tenant = redeem("gamma", code, verifier, gamma_client.id.clone()).await;
    assert_eq!(parts(&foreign_tenant).0["alg"], "RS256");
    // Its own tenant's introspection takes it (RS256 end to end).
    let res = send(
        &app,
        &form("/gamma/introspect", qs(&[("token", &foreign_tenant)]))
            .header("Authorization", basic("rs", RS_SECRET)),
    )
    .await;
    assert_eq!(res.json()["active"], true, "{}", res.text());

    let (header, claims) = parts(&good);
    let kid = header["kid"].as_str().unwrap().to_owned();
    let jwks: Value = send(&app, &get("/alpha/jwks")).await.json();
    let jwk = jwks["keys"][0].clone();
    assert_eq!(jwk["kid"], kid.as_str());

    // alg none, with the real kid: no signature at all.
    let none = format!(
        "{}.{}.",
        segment(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
        segment(&claims)
    );
    // HS256 keyed with the public key, as the JWK text and as the raw point: an old
    // algorithm-confusion attack on verifiers that take the algorithm from the token.
    let mut hs = Header::new(Algorithm::HS256);
    hs.typ = Some("at+jwt".into());
    hs.kid = Some(kid.clone());
    let hs_jwk = signed(
        &hs,
        &claims,
        &EncodingKey::from_secret(jwk.to_string().as_bytes()),
    );
    let point = [
        &[4u8][..],
        &URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap(),
        &URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap(),
    ]
    .concat();
    let hs_point = signed(&hs, &claims, &EncodingKey::from_secret(&point));
    // An attacker's own P-256 key, under the tenant's kid and under a kid of its own.
    let (attacker, _) = ec_key("attacker-key");
    let mut es = Header::new(Algorithm::ES256);
    es.typ = Some("at+jwt".into());
    es.kid = Some(kid.clone());
    let forged_kid = signed(&es, &claims, &attacker);
    es.kid = Some("attacker-key".into());
    let own_kid = signed(&es, &claims, &attacker);
    es.kid = None;
    let no_kid = signed(&es, &claims, &attacker);
    // The real signature over tampered claims: a longer life, another audience, another user.
    let tamper = |field: &str, value: Value| {
        let mut c = claims.clone();
        c[field] = value;
        let sig = good.rsplit('.').next().unwrap();
        format!("{}.{}.{sig}", good.split('.').next().unwrap(), segment(&c))
    };
    let longer = tamper("exp", json!(claims["exp"].as_u64().unwrap() + 86_400));
    let other_aud = tamper("aud", json!(OTHER));
    let other_sub = tamper("sub", json!("mallory"));
    // The real token with its typ changed: an ID token or a logout token is not an access token.
    let retyped = {
        let mut h = header.clone();
        h["typ"] = json!("JWT");
        let rest: Vec<&str> = good.splitn(2, '.').collect();
        format!("{}.{}", segment(&h), rest[1])
    };

    let introspect = |name: &str, token: &str| {
        case(
            format!("introspect: {name}"),
            form("/alpha/introspect", qs(&[("token", token)]))
                .header("Authorization", basic("rs", RS_SECRET)),
            Expect::Inactive,
        )
    };
    let exchange = |name: &str, token: &str, api: &str, error: &'static str| {
        case(
            format!("exchange: {name}"),
            form(
                "/alpha/token",
                qs(&[
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:token-exchange",
                    ),
                    ("subject_token", token),
                    (
                        "subject_token_type",
                        "urn:ietf:params:oauth:token-type:access_token",
                    ),
                    ("audience", api),
                ]),
            )
            .header("Authorization", basic("rs", RS_SECRET)),
            Expect::Json(400, error),
        )
    };
    let hostile = [
        ("alg none", none.as_str()),
        ("HS256 keyed with the JWK", hs_jwk.as_str()),
        ("HS256 keyed with the public point", hs_point.as_str()),
        (
            "an attacker's key under the tenant's kid",
            forged_kid.as_str(),
        ),
        ("an attacker's key under its own kid", own_kid.as_str()),
        ("an attacker's key without kid", no_kid.as_str()),
        ("a longer exp", longer.as_str()),
        ("another aud", other_aud.as_str()),
        ("another sub", other_sub.as_str()),
        ("typ JWT", retyped.as_str()),
        ("a token of another tenant", foreign_tenant.as_str()),
        ("three dots", "a.b.c"),
        ("empty segments", ".."),
        ("one huge segment", &"A".repeat(12_000)),
    ];
    let mut cases = Vec::new();
    for (name, token) in hostile {
        cases.push(introspect(name, token));
        cases.push(exchange(name, token, "reports", "invalid_request"));
    }
    cases.push(exchange(
        "a token whose resource may reach no API",
        &other_resource,
        "reports",
        "invalid_target",
    ));
    cases.push(exchange(
        "an API not configured",
        &good,
        "https://evil.example.com",
        "invalid_target",
    ));
    let before = snapshot(&app).await;
    run(&app, &ctx, &cases).await;
    assert_eq!(snapshot(&app).await, before, "nothing was stored");

    // The sound token is active, and exchanges for the API its resource may reach.
    let res = send(
        &app,
        &form("/alpha/introspect", qs(&[("token", &good)]))
            .header("Authorization", basic("rs", RS_SECRET)),
    )
    .await;
    assert_eq!(res.json()["active"], true, "{}", res.text());
    let res = send(
        &app,
        &form(
            "/alpha/token",
            qs(&[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token", &good),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
                ("audience", "reports"),
            ]),
        )
        .header("Authorization", basic("rs", RS_SECRET)),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let (_, downstream) = parts(res.json()["access_token"].as_str().unwrap());
    assert_eq!(
        downstream["aud"], "https://reports.example.com",
        "the dev IdP's token for the API"
    );
    assert_eq!(downstream["sub"], "alice");
    report(
        "minted tokens",
        &[
            ("introspect", count_prefix(&cases, "introspect:")),
            ("exchange", count_prefix(&cases, "exchange:")),
        ],
    );
    app.stop().await;
}
