//! DPoP-bound tokens (RFC 9449): a token request's proof binds the minted token (`cnf.jkt`,
//! `token_type: DPoP`) and a public client's refresh token; the gateway takes a bound token
//! only in the DPoP scheme with a fresh proof of its key for that call; each rule refuses its
//! breach (no proof, a replayed proof, another key, another URL or method, a proof made for
//! another token), and a tenant that wants nonces gives and checks them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::browser::{Client, authorize_url, dev_code, dev_code_through};
use crate::gateway::{start_backend, tool_call};
use crate::helpers::{TestApp, spawn_app_with_tenants};
use crate::minted::claims_of;
use crate::minted::ec_key;

const HOST: &str = "files.dpop.test";
const FILES: &str = "https://files.dpop.test/mcp";
const STRICT: &str = "https://strict.dpop.test/mcp";
const SECRET: &str = "dpop-agent-secret-0123456789_abcdef";
const RS_SECRET: &str = "dpop-files-server-secret-0123456789";

fn tenant_file(backend: &str, nonce: bool) -> String {
    let hash = |s: &str| {
        Sha256::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    format!(
        r#"upstream = {{ kind = "dev" }}
[[resources]]
uri = "{FILES}"
default = true
token = "minted"
scopes = [{{ name = "files.read", upstream = "files.read" }}]
[resources.gateway]
backend = "{backend}"

[[resources]]
uri = "{STRICT}"
token = "minted"
dpop = "required"
scopes = [{{ name = "strict.read", upstream = "strict.read" }}]
[resources.gateway]
backend = "{backend}"

[[machine_clients]]
client_id = "dpop-agent"
secret_sha256 = "{agent}"
resources = ["{FILES}", "{STRICT}"]

[[resource_servers]]
client_id = "files-server"
secret_sha256 = "{rs}"
resources = ["{FILES}"]

[dpop]
require_nonce = {nonce}
"#,
        agent = hash(SECRET),
        rs = hash(RS_SECRET),
    )
}

/// A DPoP key: signs proofs, and its public JWK goes in their header.
struct Key {
    signing: EncodingKey,
    jwk: Value,
}

impl Key {
    fn new() -> Self {
        let (signing, jwks) = ec_key("unused");
        let mut jwk = jwks["keys"][0].clone();
        let o = jwk.as_object_mut().unwrap();
        for k in ["kid", "alg", "use"] {
            o.remove(k);
        }
        Self { signing, jwk }
    }

    /// RFC 7638 thumbprint, computed here independently of the shim.
    fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            self.jwk["x"].as_str().unwrap(),
            self.jwk["y"].as_str().unwrap()
        );
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    fn proof(&self, change: impl FnOnce(&mut Value, &mut Header)) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(serde_json::from_value(self.jwk.clone()).unwrap());
        let mut claims = json!({"jti": dcr_shim::crypto::random_token(), "htm": "POST",
            "iat": dcr_shim::app::unix_now()});
        change(&mut claims, &mut header);
        jsonwebtoken::encode(&header, &claims, &self.signing).unwrap()
    }

    /// A proof with a header written by hand (members a typed JWK would drop).
    fn raw_proof(&self, header: &Value, claims: &Value) -> String {
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let signing_input = format!("{}.{}", b64(header), b64(claims));
        let signature =
            jsonwebtoken::crypto::sign(signing_input.as_bytes(), &self.signing, Algorithm::ES256)
                .unwrap();
        format!("{signing_input}.{signature}")
    }

    /// A proof for a token request to `issuer`.
    fn for_token(&self, issuer: &str) -> String {
        let htu = format!("{issuer}/token");
        self.proof(|c, _| c["htu"] = json!(htu))
    }

    /// A proof for a call to `url` with `token`.
    fn for_call(&self, url: &str, token: &str) -> String {
        let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        self.proof(|c, _| {
            c["htu"] = json!(url);
            c["ath"] = json!(ath);
        })
    }
}

struct World {
    app: TestApp,
    backend: actix_web::web::Data<crate::gateway::Backend>,
    http: reqwest::Client,
}

async fn world(nonce: bool) -> World {
    let (backend_url, backend) = start_backend().await;
    let app = spawn_app_with_tenants(|dir| {
        std::fs::write(dir.join("dp.toml"), tenant_file(&backend_url, nonce)).unwrap();
    })
    .await;
    app.wait_ready().await;
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let http = reqwest::Client::builder()
        .resolve(HOST, addr)
        .resolve("strict.dpop.test", addr)
        .build()
        .unwrap();
    World { app, backend, http }
}

impl World {
    fn issuer(&self) -> String {
        self.app.issuer("dp")
    }

    /// A token request with `proofs` as DPoP headers: (status, body, DPoP-Nonce).
    async fn token(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
        proofs: &[&str],
    ) -> (u16, Value, Option<String>) {
        let mut req = self
            .app
            .http
            .post(format!("{}/token", self.issuer()))
            .form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        for p in proofs {
            req = req.header("DPoP", *p);
        }
        let res = req.send().await.unwrap();
        let nonce = res
            .headers()
            .get("dpop-nonce")
            .map(|v| v.to_str().unwrap().to_owned());
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
            nonce,
        )
    }

    /// The machine client's token for `resource`, bound by `proof` if any.
    async fn machine_token(&self, resource: &str, proof: Option<&str>) -> (u16, Value) {
        let proofs: Vec<&str> = proof.into_iter().collect();
        let (status, body, _) = self
            .token(
                &[("grant_type", "client_credentials"), ("resource", resource)],
                Some(("dpop-agent", SECRET)),
                &proofs,
            )
            .await;
        (status, body)
    }

    /// A tool call to `url` with `authorization` and the proofs given: (status, body, headers).
    async fn call(
        &self,
        url: &str,
        authorization: &str,
        proofs: &[&str],
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let plain = url.replace("https://", "http://");
        let mut req = self
            .http
            .post(plain)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .header("Authorization", authorization)
            .body(tool_call("echo").to_string());
        for p in proofs {
            req = req.header("DPoP", *p);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        (status, res.json().await.unwrap_or(Value::Null), headers)
    }

    fn seen(&self) -> usize {
        self.backend.seen.lock().unwrap().len()
    }
}

fn challenge(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_bound_token_passes_the_gateway_only_with_a_fresh_proof_of_its_key_for_that_call() {
    let w = world(false).await;
    let meta: Value = w
        .app
        .get("/.well-known/oauth-authorization-server/dp")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        meta["dpop_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("ES256"))
    );
    let prm: Value = w
        .http
        .get("http://strict.dpop.test/.well-known/oauth-protected-resource/mcp")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["dpop_bound_access_tokens_required"], true, "{prm}");

    let key = Key::new();
    let (status, body) = w
        .machine_token(FILES, Some(&key.for_token(&w.issuer())))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims_of(&token)["cnf"]["jkt"], key.thumbprint());

    // The call with its proof passes; the MCP server gets the call, never the token.
    let good = key.for_call(FILES, &token);
    let (status, body, _) = w.call(FILES, &format!("DPoP {token}"), &[&good]).await;
    assert_eq!(status, 200, "{body}");
    let passed = w.seen();
    assert_eq!(passed, 1);

    let other = Key::new();
    let (other_token_status, other_body) = w
        .machine_token(FILES, Some(&other.for_token(&w.issuer())))
        .await;
    assert_eq!(other_token_status, 200);
    let other_token = other_body["access_token"].as_str().unwrap().to_owned();
    let dpop = format!("DPoP {token}");
    let table: Vec<(&str, String, Vec<String>, &str, &str)> = vec![
        (
            "no proof",
            dpop.clone(),
            vec![],
            "invalid_dpop_proof",
            "no DPoP proof",
        ),
        (
            "the proof replayed",
            dpop.clone(),
            vec![good.clone()],
            "invalid_dpop_proof",
            "used before",
        ),
        (
            "as a bearer token",
            format!("Bearer {token}"),
            vec![key.for_call(FILES, &token)],
            "invalid_token",
            "DPoP-bound",
        ),
        (
            "a proof by another key",
            dpop.clone(),
            vec![other.for_call(FILES, &token)],
            "invalid_dpop_proof",
            "another key",
        ),
        (
            "a proof for another URL",
            dpop.clone(),
            vec![key.for_call("https://files.dpop.test/other", &token)],
            "invalid_dpop_proof",
            "htu",
        ),
        (
            "a proof for another method",
            dpop.clone(),
            vec![key.proof(|c, _| {
                c["htm"] = json!("GET");
                c["htu"] = json!(FILES);
                c["ath"] = json!(URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())));
            })],
            "invalid_dpop_proof",
            "htm",
        ),
        (
            "a proof made for another token of the same key",
            dpop.clone(),
            vec![key.for_call(FILES, &other_token)],
            "invalid_dpop_proof",
            "ath",
        ),
        (
            "a proof with no ath",
            dpop.clone(),
            vec![key.proof(|c, _| c["htu"] = json!(FILES))],
            "invalid_dpop_proof",
            "no ath",
        ),
        (
            "an old proof",
            dpop.clone(),
            vec![key.proof(|c, _| {
                c["htu"] = json!(FILES);
                c["iat"] = json!(dcr_shim::app::unix_now() - 900);
            })],
            "invalid_dpop_proof",
            "iat",
        ),
        (
            "a method with a line break (never a broken header)",
            dpop.clone(),
            vec![key.proof(|c, _| {
                c["htm"] = json!("PO\nST");
                c["htu"] = json!(FILES);
            })],
            "invalid_dpop_proof",
            "htm",
        ),
        (
            "two proofs",
            dpop.clone(),
            vec![key.for_call(FILES, &token), key.for_call(FILES, &token)],
            "invalid_dpop_proof",
            "more than one",
        ),
        (
            "an unbound scheme for a bound token's sibling",
            format!("DPoP {}", "x.y.z"),
            vec![key.for_call(FILES, "x.y.z")],
            "invalid_token",
            "",
        ),
    ];
    for (what, authorization, proofs, error, needle) in &table {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let (status, body, headers) = w.call(FILES, authorization, &proofs).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["error"], *error, "{what}: {body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap_or_default()
                .contains(needle),
            "{what}: {body}"
        );
        if *error != "invalid_token" || authorization.starts_with("Bearer") {
            let c = challenge(&headers);
            assert!(
                c.starts_with("DPoP ") && c.contains("algs=") && c.contains("resource_metadata="),
                "{what}: {c}"
            );
        }
    }
    assert_eq!(w.seen(), passed, "nothing refused reached the MCP server");

    // Introspection says how the token is presented, and to which key it is bound.
    let res = w
        .app
        .http
        .post(format!("{}/introspect", w.issuer()))
        .basic_auth("files-server", Some(RS_SECRET))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    let intro: Value = res.json().await.unwrap();
    assert_eq!(
        (intro["active"].as_bool(), intro["token_type"].as_str()),
        (Some(true), Some("DPoP")),
        "{intro}"
    );
    assert_eq!(intro["cnf"]["jkt"], key.thumbprint());
}

#[tokio::test]
async fn the_token_endpoint_checks_each_rule_of_a_proof_and_spends_it() {
    let w = world(false).await;
    let key = Key::new();
    let issuer = w.issuer();
    let htu = format!("{issuer}/token");
    let mut private = key.jwk.clone();
    private["d"] = json!("c2VjcmV0");
    let table: Vec<(&str, String, &str)> =
        vec![
        (
            "another endpoint",
            key.proof(|c, _| c["htu"] = json!(format!("{issuer}/introspect"))),
            "htu",
        ),
        (
            "another method",
            key.proof(|c, _| {
                c["htu"] = json!(htu);
                c["htm"] = json!("GET");
            }),
            "htm",
        ),
        (
            "typ JWT",
            key.proof(|c, h| {
                c["htu"] = json!(htu);
                h.typ = Some("JWT".into());
            }),
            "typ",
        ),
        (
            "a private key in the header",
            key.raw_proof(
                &json!({"alg": "ES256", "typ": "dpop+jwt", "jwk": private}),
                &json!({"jti": "j-d", "htm": "POST", "htu": htu, "iat": dcr_shim::app::unix_now()}),
            ),
            "private",
        ),
        (
            "no jti",
            key.proof(|c, _| {
                c["htu"] = json!(htu);
                c.as_object_mut().unwrap().remove("jti");
            }),
            "jti",
        ),
        (
            "from the future",
            key.proof(|c, _| {
                c["htu"] = json!(htu);
                c["iat"] = json!(dcr_shim::app::unix_now() + 600);
            }),
            "iat",
        ),
        (
            "a signature by another key",
            {
                let p = key.proof(|c, _| c["htu"] = json!(htu));
                let o = Key::new().for_token(&issuer);
                let parts: Vec<&str> = p.split('.').collect();
                format!("{}.{}.{}", parts[0], parts[1], o.split('.').nth(2).unwrap())
            },
            "signature",
        ),
        ("garbage", "not-a-proof".to_owned(), "DPoP proof is"),
        // The conformance suite's authorization server refuses an htu with a query.
        ("an htu with a query", key.proof(|c, _| c["htu"] = json!(format!("{htu}?x=1"))), "query"),
    ];
    for (what, proof, needle) in &table {
        let (status, body) = w.machine_token(FILES, Some(proof)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{what}: {body}"
        );
        assert!(
            body["error_description"].as_str().unwrap().contains(needle),
            "{what}: {body}"
        );
    }
    // HS256 and none, made by hand.
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let claims =
        json!({"jti": "j-none", "htm": "POST", "htu": htu, "iat": dcr_shim::app::unix_now()});
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "dpop+jwt", "jwk": key.jwk})),
        b64(&claims)
    );
    let (_, body) = w.machine_token(FILES, Some(&none)).await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("alg 'none'"),
        "{body}"
    );

    // A proof is spent once the client is authenticated: a request with a wrong secret spends
    // nothing, and the same proof then works once, and only once.
    let proof = key.for_token(&issuer);
    let (status, body, _) = w
        .token(
            &[("grant_type", "client_credentials"), ("resource", FILES)],
            Some(("dpop-agent", "a-wrong-secret")),
            &[&proof],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    assert_eq!(w.machine_token(FILES, Some(&proof)).await.0, 200);
    let (status, body) = w.machine_token(FILES, Some(&proof)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("used before")
    );
    // Two proofs in one request.
    let (_, body, _) = w
        .token(
            &[("grant_type", "client_credentials"), ("resource", FILES)],
            Some(("dpop-agent", SECRET)),
            &[&key.for_token(&issuer), &key.for_token(&issuer)],
        )
        .await;
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");

    // A resource that wants bound tokens: none without a proof; bound with one. Without a
    // proof, the other resource's token stays a bearer token.
    let (status, body) = w.machine_token(STRICT, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
    let (status, body) = w.machine_token(STRICT, Some(&key.for_token(&issuer))).await;
    assert_eq!(
        (status, body["token_type"].as_str()),
        (200, Some("DPoP")),
        "{body}"
    );
    let (status, body) = w.machine_token(FILES, None).await;
    assert_eq!(
        (status, body["token_type"].as_str()),
        (200, Some("Bearer")),
        "{body}"
    );
    let bearer = body["access_token"].as_str().unwrap().to_owned();
    assert!(claims_of(&bearer).get("cnf").is_none());
    // An unbound token: as Bearer it passes, as DPoP it is refused.
    let (status, _, _) = w.call(FILES, &format!("Bearer {bearer}"), &[]).await;
    assert_eq!(status, 200);
    let (status, body, _) = w
        .call(
            FILES,
            &format!("DPoP {bearer}"),
            &[&key.for_call(FILES, &bearer)],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token")),
        "{body}"
    );
}

#[tokio::test]
async fn a_tenant_that_wants_nonces_gives_them_and_refuses_proofs_without_one() {
    let w = world(true).await;
    let key = Key::new();
    let issuer = w.issuer();
    let form = [("grant_type", "client_credentials"), ("resource", FILES)];
    let basic = Some(("dpop-agent", SECRET));
    let (status, body, nonce) = w.token(&form, basic, &[&key.for_token(&issuer)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce")),
        "{body}"
    );
    let nonce = nonce.expect("a DPoP-Nonce header with use_dpop_nonce");
    let htu = format!("{issuer}/token");
    let with_nonce = |n: &str| {
        let n = n.to_owned();
        key.proof(|c, _| {
            c["htu"] = json!(htu);
            c["nonce"] = json!(n);
        })
    };
    let (status, body, fresh) = w.token(&form, basic, &[&with_nonce(&nonce)]).await;
    assert_eq!(
        (status, body["token_type"].as_str()),
        (200, Some("DPoP")),
        "{body}"
    );
    assert!(fresh.is_some(), "a fresh nonce rides on the answer");
    let (status, body, _) = w.token(&form, basic, &[&with_nonce("forged.nonce")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce")),
        "{body}"
    );
    let token = body_token(&w, &key, &nonce).await;

    // The gateway: a proof without the nonce gets the challenge and a nonce; with it, passes.
    let (status, body, headers) = w
        .call(
            FILES,
            &format!("DPoP {token}"),
            &[&key.for_call(FILES, &token)],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("use_dpop_nonce")),
        "{body}"
    );
    assert!(challenge(&headers).contains("error=\"use_dpop_nonce\""));
    let rs_nonce = headers
        .get("dpop-nonce")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
    let proof = key.proof(|c, _| {
        c["htu"] = json!(FILES);
        c["ath"] = json!(ath);
        c["nonce"] = json!(rs_nonce);
    });
    let (status, body, _) = w.call(FILES, &format!("DPoP {token}"), &[&proof]).await;
    assert_eq!(status, 200, "{body}");
}

/// A bound token got with `nonce`.
async fn body_token(w: &World, key: &Key, nonce: &str) -> String {
    let htu = format!("{}/token", w.issuer());
    let proof = key.proof(|c, _| {
        c["htu"] = json!(htu);
        c["nonce"] = json!(nonce);
    });
    let (status, body) = w.machine_token(FILES, Some(&proof)).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_public_clients_refresh_token_is_bound_to_its_key_and_a_confidential_clients_is_not() {
    let w = world(false).await;
    let key = Key::new();
    let issuer = w.issuer();
    let public = Client::register(&w.app, "dp", json!({})).await;
    let (code, attempt) =
        dev_code(&w.app, "dp", &public, "files.read offline_access", "dora").await;
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", public.redirect_uri.as_str()),
        ("code_verifier", attempt.verifier.as_str()),
        ("client_id", public.id.as_str()),
    ];
    let (status, body, _) = w.token(&redeem, None, &[&key.for_token(&issuer)]).await;
    assert_eq!(
        (status, body["token_type"].as_str()),
        (200, Some("DPoP")),
        "{body}"
    );
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.thumbprint()
    );
    let refresh = body["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    let refresh_with = |rt: String, proof: Option<String>| {
        let public_id = public.id.clone();
        let w = &w;
        async move {
            let proofs: Vec<&str> = proof.as_deref().into_iter().collect();
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
                ("client_id", public_id.as_str()),
            ];
            w.token(&form, None, &proofs).await.1
        }
    };
    // Without a proof, and with another key's: refused, and the token is not spent.
    let body = refresh_with(refresh.clone(), None).await;
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
    let body = refresh_with(refresh.clone(), Some(Key::new().for_token(&issuer))).await;
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("another DPoP key")
    );
    let body = refresh_with(refresh, Some(key.for_token(&issuer))).await;
    assert_eq!(body["token_type"], "DPoP", "{body}");
    // The successor is bound too.
    let next = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        refresh_with(next, None).await["error"],
        "invalid_dpop_proof"
    );

    // A confidential client's refresh token is bound to the client already: it refreshes
    // without a proof, and gets a bearer token then.
    let confidential = Client::register(
        &w.app,
        "dp",
        json!({"token_endpoint_auth_method": "client_secret_basic"}),
    )
    .await;
    let (code, attempt) = dev_code(
        &w.app,
        "dp",
        &confidential,
        "files.read offline_access",
        "dora",
    )
    .await;
    let secret = confidential.secret.clone().unwrap();
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", confidential.redirect_uri.as_str()),
        ("code_verifier", attempt.verifier.as_str()),
    ];
    let (status, body, _) = w
        .token(
            &redeem,
            Some((&confidential.id, &secret)),
            &[&key.for_token(&issuer)],
        )
        .await;
    assert_eq!(
        (status, body["token_type"].as_str()),
        (200, Some("DPoP")),
        "{body}"
    );
    let rt = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, body, _) = w
        .token(
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
            Some((&confidential.id, &secret)),
            &[],
        )
        .await;
    assert_eq!(
        (status, body["token_type"].as_str()),
        (200, Some("Bearer")),
        "{body}"
    );
}

#[tokio::test]
async fn a_code_bound_to_a_key_at_authorize_is_redeemed_only_with_a_proof_of_it() {
    let w = world(false).await;
    let issuer = w.issuer();
    let key = Key::new();
    let public = Client::register(&w.app, "dp", json!({})).await;
    let code_for = |jkt: String| {
        let mut attempt = authorize_url(&w.app, "dp", &public, "files.read", "dora");
        attempt.url = format!("{}&dpop_jkt={jkt}", attempt.url);
        dev_code_through(&w.app, "dp", &public, attempt, "dora")
    };
    let (code, attempt) = code_for(key.thumbprint()).await;
    let redeem = |proof: Option<String>| {
        let (code, verifier, public) = (code.clone(), attempt.verifier.clone(), &public);
        let w = &w;
        async move {
            let proofs: Vec<&str> = proof.as_deref().into_iter().collect();
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", public.redirect_uri.as_str()),
                ("code_verifier", verifier.as_str()),
                ("client_id", public.id.as_str()),
            ];
            w.token(&form, None, &proofs).await.1
        }
    };
    // Without a proof, and with another key's: refused, and the code is not spent.
    let body = redeem(None).await;
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
    let body = redeem(Some(Key::new().for_token(&issuer))).await;
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("dpop_jkt")
    );
    let body = redeem(Some(key.for_token(&issuer))).await;
    assert_eq!(body["token_type"], "DPoP", "{body}");
    // A dpop_jkt that is not a thumbprint is refused at /authorize.
    let mut bad = authorize_url(&w.app, "dp", &public, "files.read", "dora");
    bad.url = format!("{}&dpop_jkt=not-a-thumbprint", bad.url);
    let res = w.app.http.get(&bad.url).send().await.unwrap();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(location.contains("error=invalid_request"), "{location}");
}
