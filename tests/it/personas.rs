//! Client personas: the registration, authorization and token requests that real MCP clients
//! send, replayed in their order and shape against the shim in front of the fake Entra
//! (`fake_entra.rs`, which refuses `resource`, `prompt=consent` from non-admins and an
//! `Origin` at its token endpoint). Each persona logs in and refreshes. Where a shape comes from
//! is cited at the persona; what no public source shows is marked as assumed.

use serde_json::{Value, json};
use url::Url;

use crate::browser::{Browser, Landing, param};
use crate::login::{FABRIKAM_ROOT, FILES, World, world_in};
use crate::tls_server::Canned;

/// A PKCE pair and state, as each client makes them.
struct Pkce {
    verifier: String,
    challenge: String,
}

impl Pkce {
    fn new() -> Self {
        let verifier = dcr_shim::crypto::random_token() + "-persona";
        let challenge = dcr_shim::crypto::pkce::s256(&verifier);
        Self {
            verifier,
            challenge,
        }
    }
}

/// One client's conversation with the shim.
struct Persona<'a> {
    w: &'a World,
    tenant: &'static str,
    browser: Browser,
    /// The browser origin a browser-based client's requests carry.
    origin: Option<&'static str>,
    /// The clients an administrator approved (when the tenants ask for approval).
    approved: std::cell::RefCell<std::collections::HashSet<String>>,
}

impl<'a> Persona<'a> {
    fn new(w: &'a World, tenant: &'static str) -> Self {
        Self {
            w,
            tenant,
            browser: Browser::new(),
            origin: None,
            approved: Default::default(),
        }
    }

    fn issuer(&self) -> String {
        self.w.app.issuer(self.tenant)
    }

    /// A CORS preflight as a browser sends it; asserts the shim allows the request.
    async fn preflight(&self, url: &str, method: &str, headers: &str) {
        let origin = self.origin.expect("preflights come from a browser origin");
        let res = self
            .w
            .app
            .http
            .request(reqwest::Method::OPTIONS, url)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", method)
            .header("Access-Control-Request-Headers", headers)
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success(),
            "preflight {url}: {}",
            res.status()
        );
        let h = |n: &str| {
            res.headers()
                .get(n)
                .map(|v| v.to_str().unwrap().to_ascii_lowercase())
                .unwrap_or_default()
        };
        assert_eq!(h("access-control-allow-origin"), "*", "{url}");
        assert!(h("access-control-allow-methods").contains(&method.to_ascii_lowercase()));
        for wanted in headers.split(',').map(str::trim) {
            assert!(
                h("access-control-allow-headers").contains(wanted),
                "{url}: {wanted} allowed"
            );
        }
    }

    /// The authorization server metadata, as the client fetches it.
    async fn metadata(&self, headers: &[(&str, &str)]) -> Value {
        let url = format!(
            "{}/.well-known/oauth-authorization-server/{}",
            self.w.app.base, self.tenant
        );
        let mut req = self.w.app.http.get(&url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(o) = self.origin {
            req = req.header("Origin", o);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200);
        if self.origin.is_some() {
            assert_eq!(res.headers()["access-control-allow-origin"], "*");
        }
        res.json().await.unwrap()
    }

    /// POSTs the client's registration body; returns the registered client.
    async fn register(&self, body: &Value) -> Value {
        let mut req = self
            .w
            .app
            .http
            .post(format!("{}/register", self.issuer()))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(o) = self.origin {
            req = req.header("Origin", o);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        if self.origin.is_some() {
            assert_eq!(res.headers()["access-control-allow-origin"], "*");
        }
        let registered: Value = res.json().await.unwrap();
        assert_eq!(status, 201, "{registered}");
        registered
    }

    /// Sends the authorization request with `params` in the client's order, approves the
    /// consent page if one is shown, and returns the code the client's redirect URI receives
    /// (checking that `state` comes back exactly as sent, and `iss`).
    async fn authorize(&self, params: &[(&str, &str)], redirect_prefix: &str) -> (String, bool) {
        let mut url = Url::parse(&format!("{}/authorize", self.issuer())).unwrap();
        url.query_pairs_mut().extend_pairs(params);
        let asked = self
            .ask_for_approval(url.as_str(), params, redirect_prefix)
            .await;
        let (landing, consented) = match self.browser.go(url.as_str(), redirect_prefix).await {
            Landing::Consent(page) => (
                self.browser
                    .consent(&self.issuer(), &page, "approve", redirect_prefix)
                    .await,
                true,
            ),
            other => (other, false),
        };
        let Landing::Client(back) = landing else {
            panic!("the login did not reach {redirect_prefix}: {landing:?}");
        };
        let sent_state = params.iter().find(|(k, _)| *k == "state").map(|(_, v)| *v);
        assert_eq!(
            param(&back, "state").as_deref(),
            sent_state,
            "state exactly as sent"
        );
        assert_eq!(param(&back, "iss"), Some(self.issuer()), "RFC 9207 iss");
        let code = param(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
        (code, consented || asked)
    }

    /// Where the tenants ask for approval, a client's first authorization request: the page
    /// that says an administrator must approve it, the user's sign-in, the refusal with a
    /// reference (and `access_denied` for the client behind its link), then an administrator's
    /// approval through the admin API. Returns whether it happened (the consent page was shown).
    async fn ask_for_approval(
        &self,
        url: &str,
        params: &[(&str, &str)],
        redirect_prefix: &str,
    ) -> bool {
        let client_id = params
            .iter()
            .find(|(k, _)| *k == "client_id")
            .map(|(_, v)| v.to_string())
            .unwrap();
        if !self.w.approval || !self.approved.borrow_mut().insert(client_id.clone()) {
            return false;
        }
        let Landing::Consent(page) = self.browser.go(url, redirect_prefix).await else {
            panic!("a client waiting for approval is shown the page first");
        };
        assert!(page.contains("needs an administrator"), "{page}");
        let landing = self
            .browser
            .consent(&self.issuer(), &page, "approve", redirect_prefix)
            .await;
        let Landing::Page(403, held) = landing else {
            panic!("the sign-in of a pending client is held: {landing:?}");
        };
        assert!(held.contains("REQ-"), "a reference to quote: {held}");
        assert!(held.contains("error=access_denied"), "{held}");
        let (status, decided) = self
            .w
            .app
            .admin_json(
                reqwest::Method::POST,
                &format!("/tenants/{}/approvals/approve", self.tenant),
                Some(json!({"client": client_id})),
            )
            .await;
        assert_eq!(status, 200, "{decided}");
        true
    }

    /// POSTs a token request with the client's fields, in its order, and its authentication.
    async fn token(&self, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Value {
        let mut req = self
            .w
            .app
            .http
            .post(format!("{}/token", self.issuer()))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish(),
            );
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        if let Some(o) = self.origin {
            req = req.header("Origin", o);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        if self.origin.is_some() {
            assert_eq!(res.headers()["access-control-allow-origin"], "*");
        }
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 200, "{form:?}: {body}");
        assert!(
            body["access_token"]
                .as_str()
                .is_some_and(|t| t.starts_with("entra-at."))
        );
        assert!(
            body["refresh_token"].as_str().is_some(),
            "a refresh token: {body}"
        );
        body
    }

    /// What the fake Entra was last asked at its authorize endpoint.
    fn upstream_authorize(&self) -> std::collections::HashMap<String, String> {
        let st = self.w.idp.state.lock().unwrap();
        st.authorize_requests.last().cloned().unwrap()
    }
}

/// A loopback port as a native client picks one.
fn port() -> u16 {
    crate::binary::free_port()
}

/// claude.ai's web connector: DCR as a public client with its https callback on claude.ai and
/// `scope=claudeai` (a scope no server defines), from Anthropic's backend (no Origin, no
/// preflight). Registration body and scope: anthropics/claude-ai-mcp#124 (the authorize log
/// line) and the registration bodies MCP servers quote in outline/outline#11484; the token
/// requests are not public and assumed to be a public client's (client_id in the body).
async fn claude_ai(approval: bool) {
    let w = world_in(approval).await;
    let p = Persona::new(&w, "contoso");
    const CALLBACK: &str = "https://claude.ai/api/mcp/auth_callback";
    let client = p
        .register(&json!({
            "client_name": "claudeai",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": "claudeai",
            "redirect_uris": [CALLBACK],
        }))
        .await;
    let id = client["client_id"].as_str().unwrap();
    let pkce = Pkce::new();
    let (code, consented) = p
        .authorize(
            &[
                ("response_type", "code"),
                ("client_id", id),
                ("redirect_uri", CALLBACK),
                ("code_challenge", &pkce.challenge),
                ("code_challenge_method", "S256"),
                ("state", "claude-state-1"),
                ("scope", "claudeai"),
                ("resource", FILES),
            ],
            CALLBACK,
        )
        .await;
    assert!(consented);
    let tokens = p
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", &pkce.verifier),
                ("client_id", id),
            ],
            None,
        )
        .await;
    assert_eq!(
        tokens["scope"], "files.read files.write",
        "claudeai dropped, the resource's scopes granted"
    );
    let refreshed = p
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("client_id", id),
            ],
            None,
        )
        .await;
    assert_eq!(refreshed["scope"], "files.read files.write");
    w.stop().await;
}

/// Claude Code: a client ID metadata document (served here at a test URL, with the fields of
/// `https://claude.ai/oauth/claude-code-client-metadata`: loopback redirect URIs without a
/// port, a public client), then the TypeScript SDK's requests with
/// `http://localhost:<port>/callback` (anthropics/claude-code#10439 shows the authorize URL in
/// the SDK's parameter order; typescript-sdk src/client/auth.ts `startAuthorization`,
/// `executeTokenRequest`: `resource` on the code exchange and the refresh, no `scope` on
/// refresh, `Accept: application/json`).
async fn claude_code_with_a_client_metadata_document(approval: bool) {
    let w = world_in(approval).await;
    let p = Persona::new(&w, "contoso");
    let id = w.docs.url("/oauth/claude-code-client-metadata");
    w.docs.set(
        "/oauth/claude-code-client-metadata",
        Canned::json(&json!({
            "client_id": id,
            "client_name": "Claude Code",
            "client_uri": "https://claude.ai",
            "redirect_uris": ["http://localhost/callback", "http://127.0.0.1/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })),
    );
    let callback = format!("http://localhost:{}/callback", port());
    let pkce = Pkce::new();
    let (code, _) = p
        .authorize(
            &[
                ("response_type", "code"),
                ("client_id", &id),
                ("code_challenge", &pkce.challenge),
                ("code_challenge_method", "S256"),
                ("redirect_uri", &callback),
                ("state", "cc-state"),
                ("scope", "files.read"),
                ("resource", FILES),
            ],
            &callback,
        )
        .await;
    let tokens = p
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &pkce.verifier),
                ("redirect_uri", &callback),
                ("resource", FILES),
                ("client_id", &id),
            ],
            None,
        )
        .await;
    assert_eq!(tokens["scope"], "files.read");
    p.token(
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("resource", FILES),
            ("client_id", &id),
        ],
        None,
    )
    .await;
    w.stop().await;
}

/// VS Code: DCR with four redirect URIs, `application_type` native and the device-code grant
/// beside the code grant; a login through the loopback flow (`http://127.0.0.1:<port>/`, a
/// standard-base64 `state` with `+`, `/` and `=`), then one through the https URL-handler flow
/// (`https://vscode.dev/redirect`, the state a `vscode://` URI). `client_id` always in the body,
/// `resource` exactly as the protected-resource metadata spells it, no `scope` on refresh.
/// Source: microsoft/vscode src/vs/base/common/oauth.ts `fetchDynamicRegistration` and
/// src/vs/workbench/api/{common,node}/extHostAuthentication.ts (`_createWithLoopbackServer`,
/// `_createWithUrlHandler`, `exchangeCodeForToken`, `exchangeRefreshTokenForToken`).
async fn vs_code(approval: bool) {
    let w = world_in(approval).await;
    let p = Persona::new(&w, "contoso");
    let client = p
        .register(&json!({
            "client_name": "Visual Studio Code",
            "client_uri": "https://code.visualstudio.com",
            "grant_types": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
            "response_types": ["code"],
            "redirect_uris": [
                "https://insiders.vscode.dev/redirect",
                "https://vscode.dev/redirect",
                "http://127.0.0.1/",
                "http://127.0.0.1:33418/",
            ],
            "scope": "files.read files.write",
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        }))
        .await;
    assert_eq!(
        client["grant_types"],
        json!(["authorization_code", "refresh_token"]),
        "the device-code grant is not offered here, so it is not registered"
    );
    let id = client["client_id"].as_str().unwrap();
    let loopback = format!("http://127.0.0.1:{}/", port());
    let url_handler_state =
        "vscode://dynamicauthprovider/127.0.0.1/authorize?nonce=0123456789abcdef0123456789abcdef";
    for (redirect, state) in [
        (loopback.as_str(), "q+Z/9kLmN0pQ8rS3tUv/wA=="),
        ("https://vscode.dev/redirect", url_handler_state),
    ] {
        let pkce = Pkce::new();
        let (code, _) = p
            .authorize(
                &[
                    ("client_id", id),
                    ("response_type", "code"),
                    ("code_challenge", &pkce.challenge),
                    ("code_challenge_method", "S256"),
                    ("scope", "files.read files.write"),
                    ("resource", FILES),
                    ("redirect_uri", redirect),
                    ("state", state),
                ],
                redirect,
            )
            .await;
        let tokens = p
            .token(
                &[
                    ("client_id", id),
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", redirect),
                    ("code_verifier", &pkce.verifier),
                    ("resource", FILES),
                ],
                None,
            )
            .await;
        assert_eq!(tokens["scope"], "files.read files.write");
        p.token(
            &[
                ("client_id", id),
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("resource", FILES),
            ],
            None,
        )
        .await;
    }
    w.stop().await;
}

/// Cursor: DCR with a `cursor://` private-use redirect beside an https and a loopback one and
/// no `application_type` (the body MCP servers quote as Cursor's, e.g. in
/// soflyy/agent-connector-for-wp#111); the login returns to the private-use URI. Its authorize
/// and token requests are not public: assumed to be the TypeScript SDK's.
async fn cursor(approval: bool) {
    let w = world_in(approval).await;
    let p = Persona::new(&w, "contoso");
    const CALLBACK: &str = "cursor://anysphere.cursor-mcp/oauth/callback";
    let client = p
        .register(&json!({
            "client_name": "Cursor",
            "redirect_uris": [
                CALLBACK,
                "https://www.cursor.com/agents/mcp/oauth/callback",
                "http://localhost:8787/callback",
            ],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    assert_eq!(
        client["application_type"], "native",
        "a private-use scheme is a native app's"
    );
    let id = client["client_id"].as_str().unwrap();
    let pkce = Pkce::new();
    let (code, _) = p
        .authorize(
            &[
                ("response_type", "code"),
                ("client_id", id),
                ("code_challenge", &pkce.challenge),
                ("code_challenge_method", "S256"),
                ("redirect_uri", CALLBACK),
                ("state", "cursor-state"),
                ("scope", "files.read"),
                ("resource", FILES),
            ],
            CALLBACK,
        )
        .await;
    let tokens = p
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &pkce.verifier),
                ("redirect_uri", CALLBACK),
                ("resource", FILES),
                ("client_id", id),
            ],
            None,
        )
        .await;
    p.token(
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("resource", FILES),
            ("client_id", id),
        ],
        None,
    )
    .await;
    w.stop().await;
}

/// ChatGPT: its client metadata document (the fields of `https://chatgpt.com/oauth/client.json`
/// as MCP servers quote it: https callback on chatgpt.com, `private_key_jwt` with a
/// `jwks_uri`, extra members this server ignores), served here at a test URL with a test key;
/// `offline_access` asked for. Whether ChatGPT signs assertions on the wire is not public: the
/// requests below do what its document declares.
async fn chatgpt(approval: bool) {
    let w = world_in(approval).await;
    let p = Persona::new(&w, "contoso");
    const CALLBACK: &str = "https://chatgpt.com/connector_platform_oauth_redirect";
    let id = w.docs.url("/oauth/client.json");
    w.docs.set(
        "/oauth/client.json",
        Canned::json(&json!({
            "client_id": id,
            "client_uri": "https://chatgpt.com/",
            "redirect_uris": [CALLBACK],
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_name": "ChatGPT",
            "logo_uri": "https://persistent.oaistatic.com/sonic/misc/openai-logo.png",
            "token_endpoint_auth_signing_alg": "RS256",
            "jwks_uri": w.docs.url("/oauth/jwks.json"),
        })),
    );
    w.docs.set(
        "/oauth/jwks.json",
        Canned::json(
            &serde_json::from_str::<Value>(
                &std::fs::read_to_string(
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("tests/fixtures/app-jwks.json"),
                )
                .unwrap(),
            )
            .unwrap(),
        ),
    );
    let pkce = Pkce::new();
    let (code, _) = p
        .authorize(
            &[
                ("client_id", &id),
                ("code_challenge", &pkce.challenge),
                ("code_challenge_method", "S256"),
                ("redirect_uri", CALLBACK),
                ("resource", FILES),
                ("response_type", "code"),
                ("scope", "files.read offline_access"),
                ("state", "chatgpt-state"),
            ],
            CALLBACK,
        )
        .await;
    let assertion = |jti: &str| signed_assertion(&id, &p.issuer(), jti);
    let first = assertion("chatgpt-1");
    let tokens = p
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", &pkce.verifier),
                ("client_id", &id),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &first),
            ],
            None,
        )
        .await;
    let second = assertion("chatgpt-2");
    p.token(
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", &id),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &second),
        ],
        None,
    )
    .await;
    w.stop().await;
}

/// An RFC 7523 client assertion signed with the test key (kid `app-key-1`).
fn signed_assertion(client_id: &str, aud: &str, jti: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(
        &std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/app-key.pem"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("app-key-1".into());
    let now = dcr_shim::app::unix_now();
    jsonwebtoken::encode(
        &header,
        &json!({"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 300, "jti": jti}),
        &key,
    )
    .unwrap()
}

/// MCP Inspector in direct mode, in a browser at `http://localhost:6274`: metadata with
/// `MCP-Protocol-Version` (preflighted), registration with a JSON body (preflighted), the
/// SDK's authorize request with every advertised scope (so `offline_access`, so the SDK adds
/// `prompt=consent`), and the token requests, which carry `Origin` but only safelisted headers
/// (no preflight). Source: modelcontextprotocol/inspector client/src/lib/auth.ts
/// (`InspectorOAuthClientProvider.clientMetadata`), typescript-sdk src/client/auth.ts.
async fn mcp_inspector_from_a_browser(approval: bool) {
    let w = world_in(approval).await;
    let mut p = Persona::new(&w, "contoso");
    p.origin = Some("http://localhost:6274");
    let meta_url = format!(
        "{}/.well-known/oauth-authorization-server/contoso",
        w.app.base
    );
    p.preflight(&meta_url, "GET", "mcp-protocol-version").await;
    let meta = p
        .metadata(&[
            ("MCP-Protocol-Version", "2025-11-25"),
            ("Accept", "application/json"),
        ])
        .await;
    let scopes = meta["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(scopes.contains("offline_access"));
    p.preflight(&format!("{}/register", p.issuer()), "POST", "content-type")
        .await;
    const CALLBACK: &str = "http://localhost:6274/oauth/callback";
    let client = p
        .register(&json!({
            "redirect_uris": [CALLBACK, "http://localhost:6274/oauth/callback/debug"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_name": "MCP Inspector",
            "client_uri": "https://github.com/modelcontextprotocol/inspector",
            "scope": scopes,
        }))
        .await;
    let id = client["client_id"].as_str().unwrap();
    let pkce = Pkce::new();
    let (code, consented) = p
        .authorize(
            &[
                ("response_type", "code"),
                ("client_id", id),
                ("code_challenge", &pkce.challenge),
                ("code_challenge_method", "S256"),
                ("redirect_uri", CALLBACK),
                ("state", "inspector-state"),
                ("scope", &scopes),
                ("prompt", "consent"),
                ("resource", FILES),
            ],
            CALLBACK,
        )
        .await;
    assert!(consented, "prompt=consent shows the shim's page");
    assert!(
        !p.upstream_authorize().contains_key("prompt"),
        "and never reaches Entra, where a non-admin would get AADSTS90094"
    );
    let tokens = p
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &pkce.verifier),
                ("redirect_uri", CALLBACK),
                ("resource", FILES),
                ("client_id", id),
            ],
            None,
        )
        .await;
    p.token(
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("resource", FILES),
            ("client_id", id),
        ],
        None,
    )
    .await;
    w.stop().await;
}

/// The TypeScript SDK against a path-less MCP server: `resource` is the protected-resource
/// metadata's URL serialized by a URL parser, so `https://mcp.fabrikam.example` goes out with a
/// trailing slash; `offline_access` in the scope makes the SDK add `prompt=consent`; `resource`
/// again on the code exchange and the refresh, no `scope` on refresh. Source:
/// typescript-sdk src/client/auth.ts `startAuthorization`, `selectResourceURL`,
/// `executeTokenRequest`, `refreshAuthorization`.
async fn typescript_sdk_with_a_path_less_server(approval: bool) {
    let w = world_in(approval).await;
    let p = Persona::new(&w, "fabrikam");
    let callback = format!("http://localhost:{}/callback", port());
    let client = p
        .register(&json!({
            "client_name": "My MCP client",
            "redirect_uris": [callback],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": "files.read offline_access",
        }))
        .await;
    let id = client["client_id"].as_str().unwrap();
    let resource = format!("{FABRIKAM_ROOT}/");
    let pkce = Pkce::new();
    let (code, _) = p
        .authorize(
            &[
                ("response_type", "code"),
                ("client_id", id),
                ("code_challenge", &pkce.challenge),
                ("code_challenge_method", "S256"),
                ("redirect_uri", &callback),
                ("state", "ts-state"),
                ("scope", "files.read offline_access"),
                ("prompt", "consent"),
                ("resource", &resource),
            ],
            &callback,
        )
        .await;
    let tokens = p
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &pkce.verifier),
                ("redirect_uri", &callback),
                ("resource", &resource),
                ("client_id", id),
            ],
            None,
        )
        .await;
    assert_eq!(tokens["scope"], "files.read");
    p.token(
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("resource", &resource),
            ("client_id", id),
        ],
        None,
    )
    .await;
    w.stop().await;
}

/// The Python SDK: registration without `token_endpoint_auth_method` (so a confidential
/// client with `client_secret_basic`), `resource` from a pydantic URL (a trailing slash on a
/// path-less server), no `prompt`, scope words joined by `+` (`urlencode`), HTTP Basic with
/// `client_id` also in the body, `resource` on the refresh. Source: python-sdk
/// src/mcp/client/auth/oauth2.py (`_perform_authorization_code_grant`,
/// `_exchange_token_authorization_code`, `_refresh_token`, `prepare_token_auth`) and
/// examples/clients/simple-auth-client.
async fn python_sdk_with_a_path_less_server(approval: bool) {
    let w = world_in(approval).await;
    let p = Persona::new(&w, "fabrikam");
    const CALLBACK: &str = "http://localhost:3030/callback";
    let client = p
        .register(&json!({
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_name": "Simple Auth Client",
            "scope": "files.read files.write",
        }))
        .await;
    let id = client["client_id"].as_str().unwrap();
    let secret = client["client_secret"]
        .as_str()
        .expect("a confidential client");
    let resource = format!("{FABRIKAM_ROOT}/");
    let pkce = Pkce::new();
    // `urlencode` writes spaces as '+', which the shim reads as a space.
    let mut url = Url::parse(&format!("{}/authorize", p.issuer())).unwrap();
    url.set_query(Some(&format!(
        "response_type=code&client_id={id}&redirect_uri={}&state=py-state&code_challenge={}&code_challenge_method=S256&resource={}&scope=files.read+files.write",
        urlencoding(CALLBACK),
        pkce.challenge,
        urlencoding(&resource)
    )));
    let asked = p
        .ask_for_approval(url.as_str(), &[("client_id", id)], CALLBACK)
        .await;
    let landing = match p.browser.go(url.as_str(), CALLBACK).await {
        Landing::Consent(page) => {
            p.browser
                .consent(&p.issuer(), &page, "approve", CALLBACK)
                .await
        }
        // Its consent was given when it asked for approval.
        other if asked => other,
        other => panic!("consent expected: {other:?}"),
    };
    let Landing::Client(back) = landing else {
        panic!("back at the client expected")
    };
    assert_eq!(param(&back, "state").as_deref(), Some("py-state"));
    let code = param(&back, "code").unwrap();
    let tokens = p
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("client_id", id),
                ("code_verifier", &pkce.verifier),
                ("resource", &resource),
            ],
            Some((id, secret)),
        )
        .await;
    assert_eq!(tokens["scope"], "files.read files.write");
    p.token(
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", id),
            ("resource", &resource),
        ],
        Some((id, secret)),
    )
    .await;
    w.stop().await;
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// claude.ai with its client metadata document (the fields of
/// `https://claude.ai/oauth/mcp-oauth-client-metadata` as MCP servers quote it, served here at a
/// test URL): it lists the JWT-bearer grant, which this server does not offer and ignores.
async fn claude_ai_with_its_client_metadata_document(approval: bool) {
    let w = world_in(approval).await;
    let p = Persona::new(&w, "contoso");
    const CALLBACK: &str = "https://claude.ai/api/mcp/auth_callback";
    let id = w.docs.url("/oauth/mcp-oauth-client-metadata");
    w.docs.set(
        "/oauth/mcp-oauth-client-metadata",
        Canned::json(&json!({
            "client_id": id,
            "client_name": "Claude",
            "client_uri": "https://claude.ai",
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:jwt-bearer"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })),
    );
    let pkce = Pkce::new();
    let (code, _) = p
        .authorize(
            &[
                ("response_type", "code"),
                ("client_id", &id),
                ("redirect_uri", CALLBACK),
                ("code_challenge", &pkce.challenge),
                ("code_challenge_method", "S256"),
                ("state", "claude-cimd"),
                ("scope", "claudeai"),
                ("resource", FILES),
            ],
            CALLBACK,
        )
        .await;
    let tokens = p
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", &pkce.verifier),
                ("client_id", &id),
            ],
            None,
        )
        .await;
    p.token(
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", &id),
        ],
        None,
    )
    .await;
    w.stop().await;
}

/// Every persona twice: as without approval, and with `[registration] approval = "admin"`,
/// where each is held at its first sign-in and logs in once an administrator approved it.
macro_rules! both_ways {
    ($($name:ident),* $(,)?) => {
        mod approval_off {
            $( #[tokio::test] async fn $name() { super::$name(false).await } )*
        }
        mod approval_on {
            $( #[tokio::test] async fn $name() { super::$name(true).await } )*
        }
    };
}

both_ways!(
    claude_ai,
    claude_code_with_a_client_metadata_document,
    vs_code,
    cursor,
    chatgpt,
    mcp_inspector_from_a_browser,
    typescript_sdk_with_a_path_less_server,
    python_sdk_with_a_path_less_server,
    claude_ai_with_its_client_metadata_document
);
