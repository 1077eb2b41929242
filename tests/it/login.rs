//! The login flow end to end against a fake IdP that behaves like Entra.

use std::path::Path;

use serde_json::{Value, json};

use crate::browser::{
    Browser, Client, Landing, authorize_url, login, login_with_scope, param, redeem, refresh,
    token_request,
};
use crate::fake_entra::{
    self, APP_SECRET, CERT_APP, DIRECTORY, FED_APP, FED_ASSERTION, FakeEntra, MI_APP, NOCRED_APP,
    SECRET_APP,
};
use crate::helpers::{TestApp, spawn_app_with_tenants, write_private};
use crate::tls_server::{Canned, DocServer};

pub(crate) const FILES: &str = "https://mcp.contoso.example/files";
pub(crate) const FABRIKAM_ROOT: &str = "https://mcp.fabrikam.example";

pub(crate) struct World {
    pub app: TestApp,
    pub idp: FakeEntra,
    pub docs: DocServer,
    /// The tenants ask for an administrator's approval of new clients.
    pub approval: bool,
    _dir: tempfile::TempDir,
}

pub(crate) fn entra_tenant(authority: &str, secrets: &Path, ca: &Path, extra_apps: bool) -> String {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let path = |p: &Path| format!("{:?}", p.display().to_string());
    let mut t = format!(
        r#"display_name = "Contoso"
[upstream]
kind = "entra"
directory_id = "{DIRECTORY}"
authority = "{authority}"

[[apps]]
name = "agents"
client_id = "{SECRET_APP}"
credential = {{ kind = "client_secret", secret_file = {secret}, method = "post" }}
"#,
        secret = path(&secrets.join("secret")),
    );
    if extra_apps {
        t.push_str(&format!(
            r#"
[[apps]]
name = "basic-agents"
client_id = "{SECRET_APP}"
credential = {{ kind = "client_secret", secret_file = {secret}, method = "basic" }}
[[apps]]
name = "cert-agents"
client_id = "{CERT_APP}"
credential = {{ kind = "private_key_jwt", certificate_file = {cert}, key_file = {key}, algorithm = "PS256" }}
[[apps]]
name = "rs256-agents"
client_id = "{CERT_APP}"
credential = {{ kind = "private_key_jwt", certificate_file = {cert}, key_file = {key}, algorithm = "RS256" }}
[[apps]]
name = "fed-agents"
client_id = "{FED_APP}"
credential = {{ kind = "federated", assertion_file = {fed} }}
[[apps]]
name = "nocred-agents"
client_id = "{NOCRED_APP}"
credential = {{ kind = "none" }}
[[apps]]
name = "mi-agents"
client_id = "{MI_APP}"
credential = {{ kind = "managed_identity", client_id = "user-assigned-mi", endpoint = "{authority}/msi/imds" }}
[[mapping]]
app = "mi-agents"
software_ids = ["mi-agent"]
[[mapping]]
app = "basic-agents"
software_ids = ["basic-agent"]
[[mapping]]
app = "cert-agents"
software_ids = ["cert-agent"]
[[mapping]]
app = "rs256-agents"
software_ids = ["rs256-agent"]
[[mapping]]
app = "fed-agents"
software_ids = ["fed-agent"]
[[mapping]]
app = "nocred-agents"
software_ids = ["nocred-agent"]
"#,
            secret = path(&secrets.join("secret")),
            cert = path(&fixtures.join("app-cert.pem")),
            key = path(&secrets.join("app-key.pem")),
            fed = path(&secrets.join("federated-token")),
        ));
    }
    // fabrikam's MCP server sits at the root of its origin (the SDKs add a slash to it).
    let uri = if extra_apps { FILES } else { FABRIKAM_ROOT };
    t.push_str(&format!(
        r#"
[[resources]]
uri = "{uri}"
default = true
scopes = [
  {{ name = "files.read", upstream = "api://mcp-files/files.read", description = "Read your files" }},
  {{ name = "files.write", upstream = "api://mcp-files/files.write", description = "Change your files" }},
]
[registration]
cimd_trusted_hosts = ["trusted.localhost"]
registrations_per_minute = 1000
[dev]
cimd_allow_loopback = true
cimd_extra_ca_file = {ca}
"#,
        ca = path(ca)
    ));
    t
}

fn with_approval(tenant: String, approval: bool) -> String {
    if approval {
        tenant.replace("[registration]\n", "[registration]\napproval = \"admin\"\n")
    } else {
        tenant
    }
}

/// The apps' private key in `dir`, readable by its owner alone as the shim requires.
fn copy_app_key(dir: &Path) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let key = std::fs::read_to_string(fixtures.join("app-key.pem")).unwrap();
    write_private(&dir.join("app-key.pem"), &key);
}

pub(crate) async fn world() -> World {
    world_in(false).await
}

/// The world with `approval = "admin"` in both tenants when `approval`.
pub(crate) async fn world_in(approval: bool) -> World {
    let mut w = world_with(move |t| with_approval(t, approval)).await;
    w.approval = approval;
    w
}

/// The world with its tenant files passed through `edit` (text in, text out).
pub(crate) async fn world_with(edit: impl Fn(String) -> String + Send + 'static) -> World {
    let dir = tempfile::tempdir().unwrap();
    write_private(&dir.path().join("secret"), APP_SECRET);
    copy_app_key(dir.path());
    std::fs::write(dir.path().join("federated-token"), FED_ASSERTION).unwrap();
    let idp = fake_entra::start(dir.path().join("federated-token")).await;
    let docs = DocServer::start(dir.path()).await;
    let (authority, secrets, ca) = (
        idp.authority.clone(),
        dir.path().to_owned(),
        docs.ca_file.clone(),
    );
    let app = spawn_app_with_tenants(move |t| {
        std::fs::write(
            t.join("contoso.toml"),
            edit(entra_tenant(&authority, &secrets, &ca, true)),
        )
        .unwrap();
        std::fs::write(
            t.join("fabrikam.toml"),
            edit(entra_tenant(&authority, &secrets, &ca, false)),
        )
        .unwrap();
    })
    .await;
    app.wait_ready().await;
    World {
        app,
        idp,
        docs,
        approval: false,
        _dir: dir,
    }
}

impl World {
    pub async fn stop(self) {
        self.app.stop().await;
        self.idp.stop().await;
    }

    fn last_authorize(&self) -> std::collections::HashMap<String, String> {
        self.idp
            .state
            .lock()
            .unwrap()
            .authorize_requests
            .last()
            .cloned()
            .unwrap()
    }

    fn last_token_auth(&self) -> (String, String) {
        self.idp
            .state
            .lock()
            .unwrap()
            .token_auth
            .last()
            .cloned()
            .unwrap()
    }
}

#[tokio::test]
async fn full_dcr_login_with_consent_and_entra_translation() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let browser = Browser::new();
    let attempt = authorize_url(
        &w.app,
        "contoso",
        &client,
        "files.read offline_access",
        "alice@contoso.example",
    );
    let Landing::Consent(page) = browser.go(&attempt.url, client.prefix()).await else {
        panic!("consent page expected for a client not yet approved");
    };
    assert!(
        page.contains("Test Agent")
            && page.contains("Read your files")
            && page.contains("127.0.0.1")
    );
    assert!(
        w.idp.state.lock().unwrap().authorize_requests.is_empty(),
        "nothing reached the IdP before consent"
    );
    let Landing::Client(url) = browser
        .consent(&w.app.issuer("contoso"), &page, "approve", client.prefix())
        .await
    else {
        panic!("approval should end at the client");
    };
    assert_eq!(
        param(&url, "state").as_deref(),
        Some(attempt.state.as_str())
    );
    assert_eq!(param(&url, "iss"), Some(w.app.issuer("contoso")));
    let code = param(&url, "code").unwrap();

    // What the IdP saw: the static app, the shim's callback and PKCE, fully qualified scopes,
    // openid and offline_access added, no resource, the login hint passed through.
    let up = w.last_authorize();
    assert_eq!(up["client_id"], SECRET_APP);
    assert_eq!(
        up["redirect_uri"],
        format!("{}/contoso/callback", w.app.base)
    );
    assert_eq!(up["code_challenge_method"], "S256");
    assert_ne!(
        up["code_challenge"],
        dcr_shim::crypto::pkce::s256(&attempt.verifier),
        "the shim uses its own PKCE upstream"
    );
    assert_eq!(
        up["scope"],
        "openid api://mcp-files/files.read offline_access"
    );
    assert!(!up.contains_key("resource"));
    assert_eq!(up["login_hint"], "alice@contoso.example");

    let (status, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(
        tokens["access_token"]
            .as_str()
            .unwrap()
            .starts_with("entra-at.alice@contoso.example.api://mcp-files/files.read."),
        "passthrough of the IdP's access token"
    );
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "files.read");
    assert_eq!(tokens["expires_in"], 3599);
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert!(
        !rt.starts_with("entra-rt"),
        "the client gets the shim's own refresh token"
    );
    assert_eq!(
        w.last_token_auth(),
        (SECRET_APP.to_owned(), "client_secret_post".to_owned())
    );
    w.stop().await;
}

#[tokio::test]
async fn consent_is_remembered_per_browser_and_deny_returns_access_denied() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let browser = Browser::new();
    login(&w.app, &browser, "contoso", &client, "alice").await;

    // Same browser, same client: straight to the IdP.
    let again = authorize_url(&w.app, "contoso", &client, "files.read", "alice");
    assert!(
        matches!(
            browser.go(&again.url, client.prefix()).await,
            Landing::Client(_)
        ),
        "approval remembered"
    );

    // A repeated GET does not break the form already open in another tab.
    let other = Browser::new();
    let first = authorize_url(&w.app, "contoso", &client, "files.read", "bob");
    let Landing::Consent(page_one) = other.go(&first.url, client.prefix()).await else {
        panic!()
    };
    let Landing::Consent(_page_two) = other.go(&first.url, client.prefix()).await else {
        panic!()
    };
    assert!(matches!(
        other
            .consent(
                &w.app.issuer("contoso"),
                &page_one,
                "approve",
                client.prefix()
            )
            .await,
        Landing::Client(_)
    ));

    // A third browser denies.
    let denier = Browser::new();
    let attempt = authorize_url(&w.app, "contoso", &client, "files.read", "carol");
    let Landing::Consent(page) = denier.go(&attempt.url, client.prefix()).await else {
        panic!()
    };
    let before = w.idp.state.lock().unwrap().authorize_requests.len();
    let Landing::Client(url) = denier
        .consent(&w.app.issuer("contoso"), &page, "deny", client.prefix())
        .await
    else {
        panic!()
    };
    assert_eq!(param(&url, "error").as_deref(), Some("access_denied"));
    assert_eq!(
        param(&url, "state").as_deref(),
        Some(attempt.state.as_str())
    );
    assert_eq!(param(&url, "iss"), Some(w.app.issuer("contoso")));
    assert_eq!(
        w.idp.state.lock().unwrap().authorize_requests.len(),
        before,
        "a denial never reaches the IdP"
    );

    // A consent post without the browser's CSRF cookie is refused.
    let stranger = Browser::new();
    let landing = stranger
        .consent(&w.app.issuer("contoso"), &page, "approve", client.prefix())
        .await;
    assert!(
        matches!(landing, Landing::Page(400, ref body) if body.contains("CSRF")),
        "{landing:?}"
    );
    w.stop().await;
}

#[tokio::test]
async fn cimd_client_logs_in_without_registering() {
    let w = world().await;
    let client_id = w.docs.url("/agent.json");
    w.docs.set(
        "/agent.json",
        Canned::json(&json!({
            "client_id": client_id,
            "client_name": "Doc Agent",
            "redirect_uris": ["http://127.0.0.1/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        })),
    );
    let client = Client {
        id: client_id,
        secret: None,
        redirect_uri: "http://127.0.0.1:49152/cb".into(),
    };
    let browser = Browser::new();
    let attempt = authorize_url(
        &w.app,
        "contoso",
        &client,
        "files.read files.write offline_access",
        "dora",
    );
    let Landing::Consent(page) = browser.go(&attempt.url, client.prefix()).await else {
        panic!("consent expected")
    };
    assert!(
        page.contains("Doc Agent") && page.contains("Published by") && page.contains("localhost")
    );
    let Landing::Client(url) = browser
        .consent(&w.app.issuer("contoso"), &page, "approve", client.prefix())
        .await
    else {
        panic!()
    };
    let code = param(&url, "code").unwrap();
    let (status, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "files.read files.write");
    assert!(
        tokens["access_token"]
            .as_str()
            .unwrap()
            .starts_with("entra-at.dora.")
    );
    w.stop().await;
}

#[tokio::test]
async fn refresh_rotates_with_a_grace_window_and_reuse_revokes_the_family() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let browser = Browser::new();
    let (code, attempt) = login(&w.app, &browser, "contoso", &client, "erin").await;
    let (_, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    let rt1 = tokens["refresh_token"].as_str().unwrap().to_owned();

    let (status, second) = refresh(&w.app, "contoso", &client, &rt1).await;
    assert_eq!(status, 200, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2, "rotated");
    assert_ne!(
        second["access_token"], tokens["access_token"],
        "a fresh access token from the IdP"
    );
    assert_eq!(second["scope"], "files.read");
    // The IdP was asked with the original, fully qualified scopes (never a Graph audience).
    let (status, retry) = refresh(&w.app, "contoso", &client, &rt1).await;
    assert_eq!(status, 200, "a retry within the grace window succeeds");
    assert_eq!(
        retry["refresh_token"], second["refresh_token"],
        "and gets the same successor"
    );

    // Reuse after the grace window: the whole family is revoked.
    let tenant = w.app.tenant("contoso");
    let later =
        dcr_shim::app::unix_now() + dcr_shim::oauth::token::refresh::REFRESH_GRACE_SECONDS + 5;
    let form = dcr_shim::oauth::params::Params::parse(&format!(
        "grant_type=refresh_token&refresh_token={rt1}&client_id={}",
        client.id
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
        .token(&tenant, &form, &creds, &crate::helpers::operator(later))
        .await
        .unwrap_err();
    assert_eq!(err.code, dcr_shim::oauth::ErrorCode::InvalidGrant);
    let (status, body) = refresh(&w.app, "contoso", &client, &rt2).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"], "invalid_grant",
        "the successor died with the family"
    );
    w.stop().await;
}

#[tokio::test]
async fn upstream_invalid_grant_on_refresh_revokes_the_family() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &client, "frank").await;
    let (_, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    w.idp.revoke_all_refresh_tokens();
    let (status, body) = refresh(
        &w.app,
        "contoso",
        &client,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    crate::helpers::assert_described(&body, "AADSTS700082");
    w.stop().await;
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &client, "gina").await;
    let (status, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    assert_eq!(status, 200);
    let (status, replay) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    assert_eq!(
        (status, replay["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = refresh(
        &w.app,
        "contoso",
        &client,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        status, 400,
        "the refresh token from the first redemption is revoked"
    );
    w.stop().await;
}

#[tokio::test]
async fn wrong_verifier_redirect_uri_and_client_at_the_token_endpoint() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let other = Client::register(&w.app, "contoso", json!({})).await;
    let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &client, "hank").await;
    let bad_verifier = "x".repeat(50);
    type Case<'a> = (&'a Client, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            &client,
            vec![
                ("code_verifier", &bad_verifier),
                ("redirect_uri", &client.redirect_uri),
            ],
            "invalid_grant",
        ),
        (
            &client,
            vec![
                ("code_verifier", &attempt.verifier),
                ("redirect_uri", "http://127.0.0.1:49152/cbx"),
            ],
            "invalid_grant",
        ),
        (
            &client,
            vec![("redirect_uri", &client.redirect_uri)],
            "invalid_request",
        ),
        (
            &other,
            vec![
                ("code_verifier", &attempt.verifier),
                ("redirect_uri", &client.redirect_uri),
            ],
            "invalid_grant",
        ),
    ];
    for (who, extra, expected) in cases {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
        ];
        form.extend(extra);
        let (status, body) = token_request(&w.app, "contoso", who, &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(expected)),
            "{body}"
        );
    }
    // The failed attempts did not burn the code for its rightful owner.
    let (status, _) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    assert_eq!(status, 200);
    w.stop().await;
}

#[tokio::test]
async fn a_wrong_redirect_uri_at_authorize_gets_a_page_and_no_redirect() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let browser = Browser::new();
    for bad in [
        "http://127.0.0.1:49152/cbx",
        "https://evil.example/cb",
        "http://127.0.0.1:49152/cb#x",
        "http://localhost:49152/cb",
    ] {
        let mut wrong = client.clone();
        wrong.redirect_uri = bad.into();
        let attempt = authorize_url(&w.app, "contoso", &wrong, "files.read", "ivan");
        let res = w.app.http.get(&attempt.url).send().await.unwrap();
        assert_eq!(res.status(), 400, "{bad}");
        assert!(
            res.headers().get("location").is_none(),
            "{bad}: never redirect to an unvalidated URI"
        );
        assert_eq!(res.headers()["x-frame-options"], "DENY");
    }
    // Errors after the redirect URI is validated go back to it, with state and iss.
    let attempt = authorize_url(&w.app, "contoso", &client, "files.read", "ivan");
    let unknown_resource = format!(
        "{}&resource={}",
        attempt.url, "https%3A%2F%2Fevil.example%2Fapi"
    );
    let Landing::Client(url) = browser.go(&unknown_resource, client.prefix()).await else {
        panic!()
    };
    assert_eq!(param(&url, "error").as_deref(), Some("invalid_target"));
    assert_eq!(
        param(&url, "state").as_deref(),
        Some(attempt.state.as_str())
    );
    let plain = attempt
        .url
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    let Landing::Client(url) = browser.go(&plain, client.prefix()).await else {
        panic!()
    };
    assert_eq!(param(&url, "error").as_deref(), Some("invalid_request"));
    w.stop().await;
}

#[tokio::test]
async fn an_upstream_error_reaches_the_client_with_the_aadsts_code() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let browser = Browser::new();
    let attempt = authorize_url(
        &w.app,
        "contoso",
        &client,
        "files.read",
        "unassigned@contoso.example",
    );
    let Landing::Consent(page) = browser.go(&attempt.url, client.prefix()).await else {
        panic!()
    };
    let Landing::Client(url) = browser
        .consent(&w.app.issuer("contoso"), &page, "approve", client.prefix())
        .await
    else {
        panic!()
    };
    assert_eq!(param(&url, "error").as_deref(), Some("access_denied"));
    let description = param(&url, "error_description").unwrap();
    assert!(
        description.contains("AADSTS50105") && description.contains("not assigned"),
        "{description}"
    );
    assert_eq!(
        param(&url, "state").as_deref(),
        Some(attempt.state.as_str())
    );

    // A Web app without a credential: Entra's AADSTS7000218 at the code exchange.
    let nocred = Client::register(&w.app, "contoso", json!({"software_id": "nocred-agent"})).await;
    let attempt = authorize_url(&w.app, "contoso", &nocred, "files.read", "jane");
    let Landing::Consent(page) = browser.go(&attempt.url, nocred.prefix()).await else {
        panic!()
    };
    let Landing::Client(url) = browser
        .consent(&w.app.issuer("contoso"), &page, "approve", nocred.prefix())
        .await
    else {
        panic!()
    };
    assert_eq!(param(&url, "error").as_deref(), Some("server_error"));
    assert!(
        param(&url, "error_description")
            .unwrap()
            .contains("AADSTS7000218")
    );
    w.stop().await;
}

#[tokio::test]
async fn private_key_jwt_federated_and_basic_credentials_are_accepted_by_the_idp() {
    let w = world().await;
    let browser = Browser::new();
    for (software_id, app_id, how) in [
        ("cert-agent", CERT_APP, "private_key_jwt:PS256"),
        ("rs256-agent", CERT_APP, "private_key_jwt:RS256"),
        ("fed-agent", FED_APP, "federated"),
        ("basic-agent", SECRET_APP, "client_secret_basic"),
        ("mi-agent", MI_APP, "managed_identity"),
    ] {
        let client = Client::register(&w.app, "contoso", json!({"software_id": software_id})).await;
        let (code, attempt) = login(&w.app, &browser, "contoso", &client, "kim").await;
        assert_eq!(
            w.last_authorize()["client_id"],
            app_id,
            "{software_id} mapped to its app"
        );
        let (status, body) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
        assert_eq!(status, 200, "{software_id}: {body}");
        assert_eq!(w.last_token_auth(), (app_id.to_owned(), how.to_owned()));
    }
    w.stop().await;
}

#[tokio::test]
async fn confidential_clients_authenticate_and_tenants_are_isolated() {
    let w = world().await;
    let client = Client::register(
        &w.app,
        "contoso",
        json!({"token_endpoint_auth_method": "client_secret_basic"}),
    )
    .await;
    assert!(client.secret.is_some());
    let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &client, "lee").await;
    let mut wrong = client.clone();
    wrong.secret = Some("not-the-secret".into());
    let (status, body) = redeem(&w.app, "contoso", &wrong, &code, &attempt).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, _) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    assert_eq!(status, 200);

    // A client of contoso is unknown to fabrikam: a page at authorize, invalid_client at token.
    let attempt = authorize_url(&w.app, "fabrikam", &client, "files.read", "lee");
    let res = w.app.http.get(&attempt.url).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    assert!(res.text().await.unwrap().contains("not registered"));
    let (status, body) = redeem(&w.app, "fabrikam", &client, "whatever", &attempt).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    w.stop().await;
}

#[tokio::test]
async fn revocation_ends_the_refresh_family() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &client, "max").await;
    let (_, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let res = w
        .app
        .http
        .post(format!("{}/contoso/revoke", w.app.base))
        .form(&[
            ("token", rt),
            ("client_id", client.id.as_str()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, _) = refresh(&w.app, "contoso", &client, rt).await;
    assert_eq!(status, 400);
    // Unknown tokens are answered with success (RFC 7009 §2.2).
    let res = w
        .app
        .http
        .post(format!("{}/contoso/revoke", w.app.base))
        .form(&[("token", "nope"), ("client_id", client.id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = w
        .app
        .http
        .post(format!("{}/contoso/revoke", w.app.base))
        .form(&[("client_id", client.id.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["error"], "invalid_request");
    w.stop().await;
}

#[tokio::test]
async fn a_forwarded_idp_link_cannot_finish_the_login_in_another_browser() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let attacker = Browser::new();
    let attempt = authorize_url(
        &w.app,
        "contoso",
        &client,
        "files.read",
        "victim@contoso.example",
    );
    let Landing::Consent(page) = attacker.go(&attempt.url, client.prefix()).await else {
        panic!()
    };
    let upstream = attacker
        .consent_location(&w.app.issuer("contoso"), &page, "approve")
        .await;
    assert!(upstream.starts_with(&w.idp.authority));

    // The victim opens the forwarded link and signs in at the IdP: the shim refuses.
    let victim = Browser::new();
    let landing = victim.go(&upstream, client.prefix()).await;
    assert!(
        matches!(landing, Landing::Page(400, ref body) if body.contains("another browser")),
        "{landing:?}"
    );
    // The browser that consented can still finish (the refusal did not consume the transaction).
    assert!(matches!(
        attacker.go(&upstream, client.prefix()).await,
        Landing::Client(_)
    ));
    w.stop().await;
}

#[tokio::test]
async fn errors_for_unapproved_web_clients_are_shown_not_redirected() {
    let w = world().await;
    let client = Client::register(
        &w.app,
        "contoso",
        json!({"redirect_uris": ["https://phish.example/cb"]}),
    )
    .await;
    let mut web = client.clone();
    web.redirect_uri = "https://phish.example/cb".into();
    let browser = Browser::new();
    let attempt = authorize_url(&w.app, "contoso", &web, "files.read", "olga");
    let bad = attempt
        .url
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    let res = w.app.http.get(&bad).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(
        res.headers().get("location").is_none(),
        "no redirect to a client nobody approved"
    );
    // Once this browser approved the client, errors go back to it.
    let Landing::Consent(page) = browser.go(&attempt.url, "https://phish.example/").await else {
        panic!()
    };
    assert!(matches!(
        browser
            .consent(
                &w.app.issuer("contoso"),
                &page,
                "approve",
                "https://phish.example/"
            )
            .await,
        Landing::Client(_)
    ));
    let Landing::Client(url) = browser.go(&bad, "https://phish.example/").await else {
        panic!()
    };
    assert_eq!(param(&url, "error").as_deref(), Some("invalid_request"));
    w.stop().await;
}

#[tokio::test]
async fn an_approval_covers_only_what_was_shown() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let browser = Browser::new();
    login(&w.app, &browser, "contoso", &client, "pat").await;
    let read = authorize_url(&w.app, "contoso", &client, "files.read", "pat");
    assert!(
        matches!(
            browser.go(&read.url, client.prefix()).await,
            Landing::Client(_)
        ),
        "same scopes: no consent page"
    );
    let wider = authorize_url(&w.app, "contoso", &client, "files.read files.write", "pat");
    let Landing::Consent(page) = browser.go(&wider.url, client.prefix()).await else {
        panic!("a wider request must be approved again")
    };
    assert!(page.contains("Change your files"));
    assert!(matches!(
        browser
            .consent(&w.app.issuer("contoso"), &page, "approve", client.prefix())
            .await,
        Landing::Client(_)
    ));
    // Both approvals are remembered.
    assert!(matches!(
        browser.go(&wider.url, client.prefix()).await,
        Landing::Client(_)
    ));
    assert!(matches!(
        browser.go(&read.url, client.prefix()).await,
        Landing::Client(_)
    ));
    w.stop().await;
}

/// The TypeScript SDK adds `prompt=consent` whenever its scope has `offline_access`
/// (`@modelcontextprotocol/sdk` 1.32.2, `startAuthorization` in `src/client/auth.ts`; the e2e
/// suite's copy is `tests/e2e/node_modules/@modelcontextprotocol/sdk/dist/esm/client/auth.js`).
/// The shim's consent page answers
/// it; Entra never sees it, or it would show its own consent screen on every login and refuse
/// non-admins in directories that restrict user consent (AADSTS90094).
#[tokio::test]
async fn prompt_consent_shows_the_shims_page_and_never_reaches_entra() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let browser = Browser::new();
    login(&w.app, &browser, "contoso", &client, "sam").await;
    for (prompt, forwarded) in [
        ("consent", None),
        ("login consent", Some("login")),
        ("select_account", Some("select_account")),
    ] {
        let attempt = authorize_url(
            &w.app,
            "contoso",
            &client,
            "files.read offline_access",
            "sam",
        );
        let url = format!("{}&prompt={}", attempt.url, prompt.replace(' ', "%20"));
        let landing = match browser.go(&url, client.prefix()).await {
            Landing::Consent(page) => {
                assert!(prompt.contains("consent"), "{prompt}: no page expected");
                browser
                    .consent(&w.app.issuer("contoso"), &page, "approve", client.prefix())
                    .await
            }
            other => {
                assert!(!prompt.contains("consent"), "{prompt}: the page is shown");
                other
            }
        };
        assert!(
            matches!(landing, Landing::Client(_)),
            "{prompt}: {landing:?}"
        );
        assert_eq!(
            w.last_authorize().get("prompt").map(String::as_str),
            forwarded,
            "{prompt}"
        );
    }
    w.stop().await;
}

/// RFC 6749 §6: a refresh may ask for less than the family was granted, and never gets more.
/// Scopes are named as at `/authorize` (MCP names or upstream strings, any spacing).
#[tokio::test]
async fn a_refresh_grants_at_most_the_familys_scopes() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let (code, attempt) = login_with_scope(
        &w.app,
        &Browser::new(),
        "contoso",
        &client,
        "files.read files.write offline_access",
        "uma",
    )
    .await;
    let (status, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "files.read files.write");
    let mut rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    for (asked, granted) in [
        ("files.read", "files.read"),
        (
            "api://mcp-files/files.write   offline_access",
            "files.write",
        ),
        ("files.read files.admin claudeai", "files.read"),
        ("claudeai", "files.read files.write"),
        ("", "files.read files.write"),
    ] {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
        ];
        if !asked.is_empty() {
            form.push(("scope", asked));
        }
        let (status, body) = token_request(&w.app, "contoso", &client, &form).await;
        assert_eq!(status, 200, "{asked}: {body}");
        assert_eq!(body["scope"], granted, "{asked}");
        rt = body["refresh_token"].as_str().unwrap().to_owned();
    }
    w.stop().await;
}

/// OpenID Connect Core §3.1.2.6: `prompt=none` may show no page, so a client this browser has
/// not approved gets `consent_required`; once approved, `none` goes on to the IdP.
#[tokio::test]
async fn prompt_none_answers_consent_required_until_the_browser_approved() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let browser = Browser::new();
    let before = w.idp.state.lock().unwrap().authorize_requests.len();
    let attempt = authorize_url(&w.app, "contoso", &client, "files.read", "wes");
    let silent = format!("{}&prompt=none", attempt.url);
    let Landing::Client(url) = browser.go(&silent, client.prefix()).await else {
        panic!("the client must get an OAuth error")
    };
    assert_eq!(param(&url, "error").as_deref(), Some("consent_required"));
    assert_eq!(
        param(&url, "state").as_deref(),
        Some(attempt.state.as_str())
    );
    assert_eq!(param(&url, "iss"), Some(w.app.issuer("contoso")));
    assert_eq!(
        w.idp.state.lock().unwrap().authorize_requests.len(),
        before,
        "nothing reached the IdP"
    );
    login(&w.app, &browser, "contoso", &client, "wes").await;
    let attempt = authorize_url(&w.app, "contoso", &client, "files.read", "wes");
    let silent = format!("{}&prompt=none", attempt.url);
    let landing = browser.go(&silent, client.prefix()).await;
    assert!(matches!(landing, Landing::Client(_)), "{landing:?}");
    assert_eq!(
        w.last_authorize().get("prompt").map(String::as_str),
        Some("none")
    );
    w.stop().await;
}

/// A consent page that cannot be used to phish: a web client that calls itself something
/// official is shown by the host that will receive the sign-in, and its name is marked as its
/// own claim.
#[tokio::test]
async fn the_consent_page_leads_with_the_host_not_the_claimed_name() {
    let w = world().await;
    let claimed = "Microsoft Copilot (official, verified by IT)";
    let mut client = Client::register(
        &w.app,
        "contoso",
        json!({
            "client_name": claimed,
            "redirect_uris": ["https://login-microsoftonline.example/cb"],
        }),
    )
    .await;
    client.redirect_uri = "https://login-microsoftonline.example/cb".into();
    let attempt = authorize_url(&w.app, "contoso", &client, "files.read", "xia");
    let page = w.app.http.get(&attempt.url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    let heading = &page[page.find("<h1>").unwrap()..page.find("</h1>").unwrap()];
    assert!(
        heading.contains("login-microsoftonline.example"),
        "{heading}"
    );
    assert!(!heading.contains("Microsoft Copilot"), "{heading}");
    let name_at = page.find("Microsoft Copilot").unwrap();
    assert!(
        page[..name_at].ends_with("calls itself “<bdi>"),
        "the name is a claim, isolated so that no character in it reorders the page (issue 22, item 5)"
    );
    assert!(
        heading.contains("<bdi>login-microsoftonline.example</bdi>"),
        "{heading}"
    );
    assert!(page.contains("not verified"));
    w.stop().await;
}

/// A Conditional Access or CAE claims challenge completes only if the client's `claims`,
/// `max_age` and `acr_values` reach the IdP (OpenID Connect Core §3.1.2.1, §5.5); Entra takes
/// an authentication context among the `acr_values` in the `claims` request.
#[tokio::test]
async fn claims_max_age_and_acr_values_reach_the_idp() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let browser = Browser::new();
    login(&w.app, &browser, "contoso", &client, "yara").await;
    let claims = r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#;
    let attempt = authorize_url(&w.app, "contoso", &client, "files.read", "yara");
    let url = url::Url::parse_with_params(
        &attempt.url,
        &[
            ("claims", claims),
            ("max_age", "0"),
            ("acr_values", "c1 c2 urn:x"),
        ],
    )
    .unwrap();
    let landing = browser.go(url.as_str(), client.prefix()).await;
    assert!(matches!(landing, Landing::Client(_)), "{landing:?}");
    let sent = w.last_authorize();
    assert_eq!(
        sent.get("claims").map(String::as_str),
        Some(r#"{"access_token":{"acrs":{"essential":true,"values":["c1","c2"]}}}"#)
    );
    assert_eq!(sent.get("max_age").map(String::as_str), Some("0"));
    assert_eq!(sent.get("acr_values").map(String::as_str), Some("urn:x"));
    w.stop().await;
}

#[tokio::test]
async fn a_managed_identity_token_is_asked_for_once_and_reused() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({"software_id": "mi-agent"})).await;
    let browser = Browser::new();
    let mut refresh_token = String::new();
    for _ in 0..2 {
        let (code, attempt) = login(&w.app, &browser, "contoso", &client, "mo").await;
        let (status, body) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
        assert_eq!(status, 200, "{body}");
        refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    }
    let (status, body) = refresh(&w.app, "contoso", &client, &refresh_token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        w.idp.state.lock().unwrap().mi_requests,
        vec![("imds", Some("user-assigned-mi".to_owned()))],
        "one IMDS call for the user-assigned identity, then the cached token"
    );
    assert_eq!(
        w.last_token_auth(),
        (MI_APP.to_owned(), "managed_identity".to_owned())
    );
    w.stop().await;
}

/// The fake Entra and the real binary in front of it (one tenant, `contoso`, with the apps of
/// `entra_tenant` and `extra_toml` appended), started with `env`.
pub(crate) struct BinaryWorld {
    pub app: TestApp,
    pub idp: FakeEntra,
    pub shim: crate::binary::Shim,
    _docs: DocServer,
    _dir: tempfile::TempDir,
}

impl BinaryWorld {
    pub fn stop(self) {}
}

pub(crate) async fn world_on_binary() -> BinaryWorld {
    world_on_binary_with("", |_| Vec::new()).await
}

async fn world_on_binary_with(
    extra_toml: &str,
    env: impl FnOnce(&FakeEntra) -> Vec<(&'static str, String)>,
) -> BinaryWorld {
    let dir = tempfile::tempdir().unwrap();
    write_private(&dir.path().join("secret"), APP_SECRET);
    copy_app_key(dir.path());
    let idp = fake_entra::start(dir.path().join("federated-token")).await;
    let docs = DocServer::start(dir.path()).await;
    let tenants = dir.path().join("tenants");
    std::fs::create_dir(&tenants).unwrap();
    let mut tenant = entra_tenant(&idp.authority, dir.path(), &docs.ca_file, false);
    tenant.push_str(extra_toml);
    std::fs::write(tenants.join("contoso.toml"), tenant).unwrap();
    let env = env(&idp);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let shim = crate::binary::start_binary(&dir.path().join("data"), &tenants, &env);
    let app = TestApp::at(&shim.base).with_tenants(&tenants);
    app.wait_ready().await;
    BinaryWorld {
        app,
        idp,
        shim,
        _docs: docs,
        _dir: dir,
    }
}

/// On App Service and Container Apps the platform sets `IDENTITY_ENDPOINT` and
/// `IDENTITY_HEADER`; the binary, started with them, asks there (and not IMDS).
#[tokio::test]
async fn on_app_service_the_identity_endpoint_and_header_are_used() {
    let extra = format!(
        "[[apps]]\nname = \"mi-agents\"\nclient_id = \"{MI_APP}\"\ncredential = {{ kind = \"managed_identity\" }}\n[[mapping]]\napp = \"mi-agents\"\nsoftware_ids = [\"mi-agent\"]\n"
    );
    let w = world_on_binary_with(&extra, |idp| {
        vec![
            (
                "IDENTITY_ENDPOINT",
                format!("{}/msi/appservice", idp.authority),
            ),
            ("IDENTITY_HEADER", fake_entra::IDENTITY_HEADER.to_owned()),
        ]
    })
    .await;
    let (app, idp, shim) = (&w.app, &w.idp, &w.shim);
    let client = Client::register(app, "contoso", json!({"software_id": "mi-agent"})).await;
    let (code, attempt) = login(app, &Browser::new(), "contoso", &client, "ann").await;
    let (status, body) = redeem(app, "contoso", &client, &code, &attempt).await;
    assert_eq!(status, 200, "{body}");
    let st = idp.state.lock().unwrap();
    assert_eq!(
        st.mi_requests,
        vec![("app_service", None)],
        "the system-assigned identity, asked at App Service's endpoint"
    );
    assert_eq!(
        st.token_auth.last().unwrap(),
        &(MI_APP.to_owned(), "managed_identity".to_owned())
    );
    let log = shim.log.lock().unwrap().join("\n");
    assert!(
        !log.contains(fake_entra::IDENTITY_HEADER),
        "the identity header is never logged"
    );
    assert!(
        !log.contains("mi-app_service-"),
        "the identity's token is never logged"
    );
}

/// One approval cookie per tenant, however many clients a browser approves: the most recent
/// are remembered, the oldest forgotten, the header stays small, and the per-client cookies of
/// earlier versions are removed.
#[tokio::test]
async fn approvals_share_one_bounded_cookie_per_tenant() {
    let w = world().await;
    let browser = Browser::new();
    browser.set_cookie(&w.app.base, "dcr-consent-0123456789abcdef0123=old; Path=/");
    let mut clients = Vec::new();
    for i in 0..30 {
        let client = Client::register(
            &w.app,
            "contoso",
            json!({"client_name": format!("Agent {i}")}),
        )
        .await;
        login(&w.app, &browser, "contoso", &client, "pat").await;
        clients.push(client);
    }
    let header = browser.cookie_header(&w.app.base);
    assert!(
        !header.contains("dcr-consent-"),
        "the legacy cookie is gone: {header}"
    );
    assert_eq!(header.matches("dcr-approvals-").count(), 1, "{header}");
    assert!(header.len() < 3500, "{} bytes: {header}", header.len());

    for recent in &clients[20..] {
        assert!(
            !consent_shown(&w.app, &browser, recent).await,
            "a recent approval is remembered"
        );
    }
    assert!(
        consent_shown(&w.app, &browser, &clients[0]).await,
        "the oldest approval made room"
    );

    // Another tenant's approvals live in their own cookie and do not count against these.
    let other = Client::register(&w.app, "fabrikam", json!({})).await;
    login(&w.app, &browser, "fabrikam", &other, "pat").await;
    assert_eq!(
        browser
            .cookie_header(&w.app.base)
            .matches("dcr-approvals-")
            .count(),
        2
    );
    assert!(!consent_shown(&w.app, &browser, &clients[29]).await);
    w.stop().await;
}

/// Whether a login of `client` in `browser` stops at the consent page.
async fn consent_shown(app: &TestApp, browser: &Browser, client: &Client) -> bool {
    let attempt = authorize_url(app, "contoso", client, "files.read offline_access", "pat");
    matches!(
        browser.go(&attempt.url, client.prefix()).await,
        Landing::Consent(_)
    )
}

/// A Conditional Access authentication context: the MCP server answers `insufficient_claims`
/// with a claims challenge, the refresh is refused with it, and a new login that sends the
/// `claims` gets a token that passes.
#[tokio::test]
async fn a_claims_challenge_completes_with_a_new_login_that_sends_the_claims() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let browser = Browser::new();
    let (code, attempt) = login(&w.app, &browser, "contoso", &client, "cae").await;
    let (_, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    w.idp.require_claims("c1");
    let challenge = w
        .idp
        .check_access_token(tokens["access_token"].as_str().unwrap())
        .unwrap_err();
    assert!(challenge.contains("insufficient_claims"), "{challenge}");

    // The refresh is refused as RFC 6749 §5.2 says, with the claims for the next login.
    let (status, body) = refresh(
        &w.app,
        "contoso",
        &client,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.contains("AADSTS50076") && description.contains("acrs"),
        "{body}"
    );

    // The client decodes the challenge's claims and logs in again with them.
    let encoded = challenge
        .split("claims=\"")
        .nth(1)
        .unwrap()
        .trim_end_matches('"');
    let claims = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).unwrap(),
    )
    .unwrap();
    let attempt = authorize_url(
        &w.app,
        "contoso",
        &client,
        "files.read offline_access",
        "cae",
    );
    let url = url::Url::parse_with_params(&attempt.url, &[("claims", claims.as_str())]).unwrap();
    let Landing::Client(back) = browser.go(url.as_str(), client.prefix()).await else {
        panic!("the approved client goes straight through")
    };
    let code = param(&back, "code").unwrap();
    let (status, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    assert_eq!(status, 200, "{tokens}");
    w.idp
        .check_access_token(tokens["access_token"].as_str().unwrap())
        .expect("the new token carries the authentication context");
    let (status, body) = refresh(
        &w.app,
        "contoso",
        &client,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    w.stop().await;
}

/// An IdP that hands out no refresh token although the client registered for them: the
/// client gets none (never one that cannot work), and the log says why and what to change.
#[tokio::test]
async fn no_refresh_token_from_the_idp_means_none_for_the_client_and_a_log_line() {
    let w = world_on_binary().await;
    let (app, idp, shim) = (&w.app, &w.idp, &w.shim);
    idp.state.lock().unwrap().fault = Some(fake_entra::Fault::NoRefreshToken);
    let client = Client::register(app, "contoso", json!({})).await;
    let (code, attempt) = login(app, &Browser::new(), "contoso", &client, "ned").await;
    let (status, tokens) = redeem(app, "contoso", &client, &code, &attempt).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let log = shim.log.lock().unwrap().join("\n");
    assert!(
        log.contains("the IdP returned no refresh token")
            && log.contains("offline_access permission"),
        "{log}"
    );
}

/// Issue 23, item 6: `check --live` tries each Entra app's credential at the token endpoint
/// (client credentials, a token for the app itself): the shipped credentials of every kind are
/// accepted, a wrong secret shows as Entra's AADSTS code with what to fix, and fails the check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_live_tries_each_entra_credential() {
    let w = world().await;
    let tenants = tempfile::tempdir().unwrap();
    std::fs::copy(
        w.app.tenants_dir.join("contoso.toml"),
        tenants.path().join("contoso.toml"),
    )
    .unwrap();
    let wrong = tempfile::tempdir().unwrap();
    write_private(&wrong.path().join("secret"), "not-the-secret-at-all");
    std::fs::write(
        tenants.path().join("wrongco.toml"),
        entra_tenant(&w.idp.authority, wrong.path(), &w.docs.ca_file, false),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dcr-shim"))
        .args(["check", "--live", "--tenants"])
        .arg(tenants.path())
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a refused credential fails the check: {text}"
    );
    for app in [
        "agents",
        "basic-agents",
        "cert-agents",
        "rs256-agents",
        "fed-agents",
        "mi-agents",
    ] {
        assert!(
            text.contains(&format!("app '{app}': credential accepted by Entra")),
            "{app}: {text}"
        );
    }
    assert!(
        !text.contains("app 'nocred-agents': credential")
            && !text.contains("error: app 'nocred-agents'"),
        "no credential, nothing to try: {text}"
    );
    let refused = text
        .lines()
        .find(|l| l.contains("error: app 'agents': Entra refused its credential"))
        .unwrap_or_else(|| panic!("the wrong secret is not reported: {text}"));
    assert!(refused.contains("AADSTS7000215"), "{refused}");
    assert!(refused.contains("secret"), "what to fix: {refused}");
    w.stop().await;
}
