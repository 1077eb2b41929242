//! Workload identity federation (`[[trusted_workloads]]`): a Kubernetes-style service-account
//! token (RS256, `kid`, no `typ`, keys found by the discovery a cluster publishes at
//! `/.well-known/openid-configuration` and `/openid/v1/jwks`) and a GitHub-Actions-style token
//! (`typ` JWT, its own audience, `repository` and `ref` claims, keys from a file) get minted
//! tokens as machine clients; every rule refuses its breach with nothing spent; an ID-JAG never
//! passes as a workload's token, nor the reverse.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::browser::Client;
use crate::helpers::{TestApp, spawn_app_with_tenants_on};
use crate::id_jag::with;
use crate::minted::claims_of;
use crate::minted::ec_key;
use crate::tls_server::{Canned, DocServer};

const FILES: &str = "https://mcp.contoso.example/files";
const REPORTS: &str = "https://mcp.contoso.example/reports";
const GITHUB: &str = "https://token.actions.githubusercontent.com";
/// An audience of the shim's own, asked for by the workflow (GitHub's default audience, the
/// owner's URL, is refused by `check`: other services accept it too).
const GITHUB_AUDIENCE: &str = "https://shim.contoso.example/github-agents";
const JAG_ISSUER: &str = "https://idp.contoso.example";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const K8S_SUBJECT: &str = "system:serviceaccount:agents:report-agent";
const RS_SECRET: &str = "files-server-secret-0123456789abcdef";

struct World {
    app: TestApp,
    /// The cluster's service-account issuer (the document server's URL).
    cluster: String,
    cluster_key: EncodingKey,
    github_key: EncodingKey,
    jag_key: EncodingKey,
    /// A registered confidential client the ID-JAG issuer is trusted for.
    jag_client: Client,
    _docs: DocServer,
    _dir: tempfile::TempDir,
}

fn tenant(
    cluster: &str,
    dir: &std::path::Path,
    ca: &std::path::Path,
    jag_clients: &[&str],
) -> String {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    format!(
        r#"upstream = {{ kind = "dev" }}
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
uri = "{REPORTS}"
token = "minted"
scopes = [{{ name = "reports.read", upstream = "reports.read" }}]

# Credentials of their own: none. Their platforms' tokens are.
[[machine_clients]]
client_id = "report-agent"
resources = ["{FILES}"]
scopes = ["files.read"]
[[machine_clients]]
client_id = "ci-agent"
resources = ["{FILES}", "{REPORTS}"]
# One with a key, that no workload becomes.
[[machine_clients]]
client_id = "keyed-agent"
jwks_file = "{app_jwks}"
resources = ["{FILES}"]
# The files MCP server, which introspects.
[[resource_servers]]
client_id = "files-server"
secret_sha256 = "{rs_hash}"
resources = ["{FILES}"]
# One whose keys are published at a URL it controls.
[[machine_clients]]
client_id = "published-agent"
jwks_uri = "{cluster}/agents/published/jwks"
resources = ["{FILES}"]

[[trusted_workloads]]
issuer = "{cluster}"
subject = "{K8S_SUBJECT}"
machine_client = "report-agent"
algorithms = ["RS256"]
# The kubelet hands the pod one token until it renews it.
single_use = false

[[trusted_workloads]]
issuer = "{GITHUB}"
audience = "{GITHUB_AUDIENCE}"
subject = "repo:contoso/agent:*"
claims = {{ repository = "contoso/agent", ref = "refs/heads/main" }}
machine_client = "ci-agent"
jwks_file = "{github_jwks}"
algorithms = ["ES256"]
max_lifetime = "10m"

[[trusted_issuers]]
issuer = "{JAG_ISSUER}"
jwks_file = "{jag_jwks}"
algorithms = ["ES256"]
clients = {jag_clients}

[registration]
registrations_per_minute = 1000
[dev]
cimd_allow_loopback = true
cimd_extra_ca_file = "{ca}"
"#,
        app_jwks = fixtures.join("app-jwks.json").display(),
        github_jwks = dir.join("github.jwks").display(),
        jag_jwks = dir.join("jag.jwks").display(),
        jag_clients = serde_json::to_string(jag_clients).unwrap(),
        rs_hash = {
            use sha2::Digest;
            sha2::Sha256::digest(RS_SECRET.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        },
        ca = ca.display(),
    )
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let docs = DocServer::start(dir.path()).await;
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let cluster = docs.url("");
    // What a cluster publishes (`kubectl get --raw /.well-known/openid-configuration`).
    docs.set(
        "/.well-known/openid-configuration",
        Canned::json(
            &json!({"issuer": cluster, "jwks_uri": docs.url("/openid/v1/jwks"),
            "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"]}),
        ),
    );
    let jwks: Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("app-jwks.json")).unwrap()).unwrap();
    docs.set("/openid/v1/jwks", Canned::json(&jwks));
    docs.set("/agents/published/jwks", Canned::json(&jwks));
    let cluster_key =
        EncodingKey::from_rsa_pem(&std::fs::read(fixtures.join("app-key.pem")).unwrap()).unwrap();
    let (github_key, github_jwks) = ec_key("gh-1");
    std::fs::write(dir.path().join("github.jwks"), github_jwks.to_string()).unwrap();
    let (jag_key, jag_jwks) = ec_key("jag-1");
    std::fs::write(dir.path().join("jag.jwks"), jag_jwks.to_string()).unwrap();
    let (c, d, ca) = (cluster.clone(), dir.path().to_owned(), docs.ca_file.clone());
    let app = spawn_app_with_tenants_on(crate::helpers::it_store().await, move |t| {
        std::fs::write(t.join("wl.toml"), tenant(&c, &d, &ca, &[])).unwrap();
    })
    .await;
    let jag_client = Client::register(
        &app,
        "wl",
        json!({"redirect_uris": ["https://agent.contoso.example/cb"],
            "token_endpoint_auth_method": "client_secret_basic", "grant_types": ["authorization_code"]}),
    )
    .await;
    std::fs::write(
        app.tenants_dir.join("wl.toml"),
        tenant(&cluster, dir.path(), &docs.ca_file, &[&jag_client.id]),
    )
    .unwrap();
    app.reload().await.expect("the tenant with workloads loads");
    World {
        app,
        cluster,
        cluster_key,
        github_key,
        jag_key,
        jag_client,
        _docs: docs,
        _dir: dir,
    }
}

fn now() -> u64 {
    dcr_shim::app::unix_now()
}

impl World {
    fn issuer(&self) -> String {
        self.app.issuer("wl")
    }

    /// A projected service-account token's claims, as the kubelet asks the API server for them.
    fn k8s_claims(&self) -> Value {
        let now = now();
        json!({"iss": self.cluster, "sub": K8S_SUBJECT, "aud": [self.issuer()],
            "iat": now, "nbf": now, "exp": now + 3600, "jti": dcr_shim::crypto::random_token(),
            "kubernetes.io": {"namespace": "agents", "serviceaccount": {"name": "report-agent", "uid": "7f1c"},
                "pod": {"name": "report-agent-5d9f", "uid": "a41e"}}})
    }

    fn k8s(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("app-key-1".into());
        jsonwebtoken::encode(&header, claims, &self.cluster_key).unwrap()
    }

    /// A GitHub Actions OIDC token's claims for a workflow run on main.
    fn github_claims(&self) -> Value {
        let now = now();
        json!({"iss": GITHUB, "sub": "repo:contoso/agent:ref:refs/heads/main", "aud": GITHUB_AUDIENCE,
            "repository": "contoso/agent", "repository_owner": "contoso", "ref": "refs/heads/main",
            "workflow": "nightly", "job_workflow_ref": "contoso/agent/.github/workflows/nightly.yml@refs/heads/main",
            "runner_environment": "github-hosted", "iat": now, "nbf": now - 5, "exp": now + 300,
            "jti": dcr_shim::crypto::random_token()})
    }

    fn github(&self, claims: &Value) -> String {
        sign_es256(&self.github_key, "gh-1", Some("JWT"), claims)
    }

    async fn grant(&self, assertion: &str, extra: &[(&str, &str)]) -> (u16, Value) {
        let mut form = vec![("grant_type", JWT_BEARER), ("assertion", assertion)];
        form.extend_from_slice(extra);
        let res = self
            .app
            .http
            .post(format!("{}/token", self.issuer()))
            .form(&form)
            .send()
            .await
            .unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }

    /// The admin API's listing of the tenant's machine clients.
    async fn machine_clients(&self) -> Value {
        self.app
            .admin(reqwest::Method::GET, "/tenants/wl/machine-clients")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Whether the files server's introspection finds `token` active.
    async fn active(&self, token: &str) -> Option<bool> {
        let v: Value = self
            .app
            .http
            .post(format!("{}/introspect", self.issuer()))
            .basic_auth("files-server", Some(RS_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["active"].as_bool()
    }

    /// Refused with `code`, a description containing `needle`.
    async fn refused(
        &self,
        what: &str,
        assertion: &str,
        extra: &[(&str, &str)],
        code: &str,
        needle: &str,
    ) {
        let (status, body) = self.grant(assertion, extra).await;
        let expected = if code == "invalid_client" { 401 } else { 400 };
        assert_eq!(
            (status, body["error"].as_str()),
            (expected, Some(code)),
            "{what}: {body}"
        );
        let why = body["error_description"].as_str().unwrap_or_default();
        assert!(
            why.contains(needle),
            "{what}: '{why}' should mention '{needle}'"
        );
    }
}

fn sign_es256(key: &EncodingKey, kid: &str, typ: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    header.typ = typ.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

#[tokio::test]
async fn a_service_account_token_and_a_github_token_get_machine_tokens() {
    let w = world().await;
    let meta: Value = w
        .app
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server/wl",
            w.app.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        meta["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(JWT_BEARER)),
        "{meta}"
    );

    // Kubernetes: keys by the cluster's discovery; the client's only resource by default.
    let (status, body) = w.grant(&w.k8s(&w.k8s_claims()), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "files.read");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(
        (claims["sub"].as_str(), claims["client_id"].as_str()),
        (Some("report-agent"), Some("report-agent"))
    );
    assert_eq!(claims["aud"], FILES);
    assert!(
        claims.get("sid").is_none() && claims.get("auth_time").is_none(),
        "{claims}"
    );
    // The same projected token again (single_use = false): taken, as the kubelet expects.
    let projected = w.k8s(&w.k8s_claims());
    assert_eq!(w.grant(&projected, &[]).await.0, 200);
    assert_eq!(w.grant(&projected, &[]).await.0, 200);

    // GitHub: its own audience, its claims, the client id the SDK sends, a resource named.
    let (status, body) = w
        .grant(
            &w.github(&w.github_claims()),
            &[
                ("client_id", "ci-agent"),
                ("resource", REPORTS),
                ("scope", "reports.read"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(
        (claims["sub"].as_str(), claims["aud"].as_str()),
        (Some("ci-agent"), Some(REPORTS))
    );
    assert_eq!(claims["scope"], "reports.read");
}

#[tokio::test]
async fn each_rule_refuses_its_breach_and_spends_nothing() {
    let w = world().await;
    let k = w.k8s_claims();
    let g = w.github_claims();
    let now = now();
    // A refusal after the signature (a scope, a resource) leaves the jti unspent: the same
    // token passes next.
    let sound = w.github(&g);
    w.refused(
        "a scope the client may not have",
        &sound,
        &[("scope", "files.admin"), ("resource", FILES)],
        "invalid_scope",
        "none of the scopes",
    )
    .await;
    w.refused(
        "a resource the client may not reach",
        &sound,
        &[("resource", "https://elsewhere.example/mcp")],
        "invalid_target",
        "may not get tokens",
    )
    .await;
    let (status, body) = w.grant(&sound, &[("resource", FILES)]).await;
    assert_eq!(status, 200, "{body}");
    w.refused(
        "a replay",
        &sound,
        &[("resource", FILES)],
        "invalid_grant",
        "already used",
    )
    .await;

    let (other_key, _) = ec_key("gh-1");
    let table: Vec<(&str, String, &str)> = vec![
        (
            "forged: another key under the same kid",
            sign_es256(&other_key, "gh-1", Some("JWT"), &g),
            "signature does not verify",
        ),
        (
            "expired",
            w.github(&with(
                with(g.clone(), "exp", json!(now - 120)),
                "iat",
                json!(now - 400),
            )),
            "expired",
        ),
        (
            "not yet valid",
            w.github(&with(g.clone(), "nbf", json!(now + 600))),
            "not valid yet",
        ),
        (
            "too long a life",
            w.github(&with(g.clone(), "exp", json!(now + 3600))),
            "longer than",
        ),
        (
            "the tenant's issuer where the rule names its own audience",
            w.github(&with(g.clone(), "aud", json!(w.issuer()))),
            "aud must be",
        ),
        (
            "another tenant's audience",
            w.k8s(&with(
                k.clone(),
                "aud",
                json!(["https://shim.example/other"]),
            )),
            "aud must be",
        ),
        (
            "another repository",
            w.github(&with(g.clone(), "repository", json!("contoso/fork"))),
            "no [[trusted_workloads]] rule",
        ),
        (
            "another branch",
            w.github(&with(g.clone(), "ref", json!("refs/heads/feature"))),
            "no [[trusted_workloads]] rule",
        ),
        (
            "another service account",
            w.k8s(&with(
                k.clone(),
                "sub",
                json!("system:serviceaccount:agents:other"),
            )),
            "no [[trusted_workloads]] rule",
        ),
        (
            "an issuer not trusted",
            w.github(&with(
                g.clone(),
                "iss",
                json!("https://token.actions.example"),
            )),
            "not trusted for workloads",
        ),
        (
            "no exp",
            w.github(&with(g.clone(), "exp", Value::Null)),
            "exp is missing",
        ),
        (
            "a typ of another kind",
            sign_es256(&w.github_key, "gh-1", Some("at+jwt"), &g),
            "typ is 'at+jwt'",
        ),
        (
            "an unknown kid",
            sign_es256(&w.github_key, "gh-2", Some("JWT"), &g),
            "kid 'gh-2'",
        ),
        ("garbage", "not.a.jwt".to_owned(), "the assertion is"),
    ];
    for (what, assertion, needle) in &table {
        w.refused(what, assertion, &[], "invalid_grant", needle)
            .await;
    }
    // alg none and HS256, made by hand.
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&k));
    w.refused("alg none", &none, &[], "invalid_grant", "alg none")
        .await;
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &k,
        &EncodingKey::from_secret(b"k"),
    )
    .unwrap();
    w.refused("HS256", &hs, &[], "invalid_grant", "HS256").await;
    // An RS256 rule refuses ES256 even from a key it would find.
    w.refused(
        "an algorithm the rule does not trust",
        &sign_es256(&w.github_key, "app-key-1", None, &k),
        &[],
        "invalid_grant",
        "not among the algorithms",
    )
    .await;

    // The client id: one no rule makes, and one another rule makes.
    w.refused(
        "a client no workload becomes",
        &w.k8s(&w.k8s_claims()),
        &[("client_id", "keyed-agent")],
        "unauthorized_client",
        "no [[trusted_workloads]] rule",
    )
    .await;
    w.refused(
        "another workload's client",
        &w.k8s(&w.k8s_claims()),
        &[("client_id", "ci-agent")],
        "invalid_grant",
        "for client 'ci-agent'",
    )
    .await;
    w.refused(
        "no assertion",
        "",
        &[],
        "invalid_request",
        "assertion is required",
    )
    .await;

    // None of those spent the sound tokens' jtis: they pass.
    let (status, body) = w.grant(&w.k8s(&k), &[]).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn an_id_jag_never_passes_as_a_workload_token_nor_the_reverse() {
    let w = world().await;
    let now = now();
    let jag_claims = json!({"iss": JAG_ISSUER, "sub": "u-1", "aud": w.issuer(), "client_id": w.jag_client.id,
        "resource": FILES, "iat": now, "exp": now + 300, "jti": dcr_shim::crypto::random_token()});
    let jag = sign_es256(&w.jag_key, "jag-1", Some("oauth-id-jag+jwt"), &jag_claims);
    let secret = w.jag_client.secret.clone().unwrap();
    let with_client = |assertion: &str| {
        w.app
            .http
            .post(format!("{}/token", w.issuer()))
            .basic_auth(&w.jag_client.id, Some(&secret))
            .form(&[("grant_type", JWT_BEARER), ("assertion", assertion)])
    };

    // An ID-JAG without its client's credentials: the ID-JAG rules apply, which want them.
    let (status, body) = w.grant(&jag, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    // The same ID-JAG with its typ stripped (so re-signed by its issuer): the workload rules,
    // which do not trust the ID-JAG issuer.
    let stripped = sign_es256(&w.jag_key, "jag-1", None, &jag_claims);
    w.refused(
        "an ID-JAG issuer's token as a workload's",
        &stripped,
        &[],
        "invalid_grant",
        "not trusted for workloads",
    )
    .await;
    // A workload token with the ID-JAG typ, presented by the client: the ID-JAG rules, which
    // do not trust the workload issuer.
    let g = with(w.github_claims(), "client_id", json!(w.jag_client.id));
    let as_jag = sign_es256(&w.github_key, "gh-1", Some("oauth-id-jag+jwt"), &g);
    let res = with_client(&as_jag).send().await.unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("is not trusted by this tenant"),
        "{body}"
    );
    // A workload's own token with client credentials: refused, never mixed.
    let res = with_client(&w.github(&w.github_claims()))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
    // The ID-JAG itself still works for its client.
    let res = with_client(&jag).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
}

#[tokio::test]
async fn a_machine_client_whose_keys_are_at_a_jwks_uri_gets_tokens_with_them() {
    let w = world().await;
    let assertion = |kid: &str| {
        let now = now();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        header.typ = Some("JWT".into());
        let claims = json!({"iss": "published-agent", "sub": "published-agent", "aud": w.issuer(),
            "iat": now, "exp": now + 300, "jti": dcr_shim::crypto::random_token()});
        jsonwebtoken::encode(&header, &claims, &w.cluster_key).unwrap()
    };
    let grant = |a: String| {
        w.app
            .http
            .post(format!("{}/token", w.issuer()))
            .form(&[
                ("grant_type", "client_credentials".to_owned()),
                ("client_assertion", a),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ),
            ])
            .send()
    };
    let res = grant(assertion("app-key-1")).await.unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["sub"],
        "published-agent"
    );
    // A key the published set lacks (fetched again once, then refused).
    let res = grant(assertion("rotated-away")).await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
}

#[tokio::test]
async fn the_operator_lists_machine_clients_and_a_disabled_one_gets_nothing() {
    let w = world().await;
    let listed = w.machine_clients().await;
    let by_id = |id: &str| {
        listed["machine_clients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["client_id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        by_id("report-agent")["credential"],
        "workload identity only"
    );
    assert_eq!(
        by_id("report-agent")["workloads"][0]["subject"],
        K8S_SUBJECT
    );
    assert_eq!(
        by_id("keyed-agent")["credential"],
        "private_key_jwt (jwks_file)"
    );
    assert_eq!(
        by_id("published-agent")["credential"],
        "private_key_jwt (jwks_uri)"
    );
    assert_eq!(by_id("ci-agent")["disabled"], false);

    // A token from before, then the client disabled: no new token, and the old one stops
    // counting at the reload.
    let (status, body) = w.grant(&w.k8s(&w.k8s_claims()), &[]).await;
    assert_eq!(status, 200, "{body}");
    let held = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(w.active(&held).await, Some(true));
    let file = w.app.tenants_dir.join("wl.toml");
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "client_id = \"report-agent\"\n",
        "client_id = \"report-agent\"\ndisabled = true\n",
    );
    std::fs::write(&file, text).unwrap();
    w.app.reload().await.unwrap();
    w.refused(
        "a disabled client's workload",
        &w.k8s(&w.k8s_claims()),
        &[],
        "unauthorized_client",
        "disabled",
    )
    .await;
    let listed = w.machine_clients().await;
    assert!(
        listed["machine_clients"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["client_id"] == "report-agent" && m["disabled"] == true)
    );
    assert_eq!(
        w.active(&held).await,
        Some(false),
        "a disabled client's token"
    );
}

#[tokio::test]
async fn check_refuses_a_workload_rule_that_lets_too_much_in() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        format!(
            r#"upstream = {{ kind = "dev" }}
[[resources]]
uri = "{FILES}"
token = "minted"
scopes = [{{ name = "files.read", upstream = "files.read" }}]
[[machine_clients]]
client_id = "lonely"
resources = ["{FILES}"]
[[trusted_workloads]]
issuer = "{GITHUB}"
subject = "*"
audience = "api://AzureADTokenExchange"
machine_client = "nobody"
[[trusted_issuers]]
issuer = "{GITHUB}"
"#
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcr-shim"))
        .args(["check", "--tenants"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    for needle in [
        "machine_clients[0].secret_sha256",
        "trusted_workloads[0].subject",
        "trusted_workloads[0].audience",
        "trusted_workloads[0].machine_client",
        "trusted_workloads[0].issuer: is also a trusted ID-JAG issuer",
    ] {
        assert!(text.contains(needle), "'{needle}' in {text}");
    }
}
