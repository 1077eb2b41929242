//! An in-process IdP that behaves like Microsoft Entra ID where it matters to the shim:
//! static apps only; refuses `resource` (AADSTS9010010); refuses a token request without a
//! credential from a Web app (AADSTS7000218); one API per request (AADSTS28000); bare scopes
//! are Graph (AADSTS650053); refresh tokens only with offline_access; AADSTS error bodies with
//! trace and correlation ids; PKCE; `private_key_jwt` checked against the app's certificate
//! (`x5t#S256`, PS256/RS256, aud, iss = sub, exp) and federated assertions against a file.
//! It also plays Azure's managed identity endpoints (IMDS at `/msi/imds`, App Service at
//! `/msi/appservice`), whose tokens the managed-identity app accepts as its assertion.
//!
//! The user is chosen by `login_hint` (the shim passes it through); `unassigned` gets
//! AADSTS50105. The directory restricts user consent: `prompt=consent` for a user who is not
//! `admin…` gets AADSTS90094 ("needs admin approval"). With `require_claims`, a Conditional
//! Access authentication context is in force: access tokens carry `acrs` only when the login
//! sent the `claims` asking for it, `check_access_token` answers `insufficient_claims` (what an
//! MCP server in front of Entra says) until then, and refreshing a login without it is refused
//! with `interaction_required` and the claims challenge.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const DIRECTORY: &str = "11111111-2222-3333-4444-555555555555";
pub const SECRET_APP: &str = "aaaaaaaa-0000-0000-0000-000000000001";
pub const CERT_APP: &str = "aaaaaaaa-0000-0000-0000-000000000002";
pub const FED_APP: &str = "aaaaaaaa-0000-0000-0000-000000000003";
pub const NOCRED_APP: &str = "aaaaaaaa-0000-0000-0000-000000000004";
pub const MI_APP: &str = "aaaaaaaa-0000-0000-0000-000000000005";
/// What App Service puts in `IDENTITY_HEADER`.
pub const IDENTITY_HEADER: &str = "fake-app-service-identity-header";
pub const APP_SECRET: &str = "s3cret-value-for-tests";
pub const FED_ASSERTION: &str = "eyJ.federated-workload-identity-token.sig";
/// An API whose access tokens are JWTs (v2.0: `aud` the API's application id, here the
/// secret app's own, as for an app registration that exposes the API it calls), signed with
/// the key published at the discovery document's `jwks_uri`; other APIs' tokens are opaque.
pub const JWT_API: &str = "api://jwt-files";
/// What an on-behalf-of request for a caller's JWT access token gives (`entra-obo.{oid}.{scope}`).
pub const OBO_PREFIX: &str = "entra-obo.";

/// One issued code.
struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    scope: String,
    user: String,
    nonce: String,
    /// The authentication context the login's `claims` asked for.
    acrs: Option<String>,
}

/// A misbehaviour of the token endpoint, for the fault tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500 with an HTML body.
    Status500Html,
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with JSON that has no access_token.
    NoAccessToken,
    /// Answers after 3 s (longer than the shim's timeout in tests).
    Slow,
    /// Answers after 7 s (longer than a 5 s shutdown wait, shorter than the binary's 10 s
    /// upstream timeout).
    VerySlow,
    /// Hands out no refresh token even for `offline_access`, as for an app registration that
    /// lacks the offline_access permission.
    NoRefreshToken,
    /// Refuses refresh grants with this OAuth error and AADSTS description, as Entra does when
    /// a policy changed since the login (MFA, consent, assignment).
    RefreshRefused(&'static str, &'static str),
}

#[derive(Default)]
pub struct FakeState {
    pub fault: Option<Fault>,
    codes: HashMap<String, Code>,
    /// refresh token → (client_id, user, scope, acrs)
    refresh: HashMap<String, (String, String, String, Option<String>)>,
    /// An authentication context every access token must carry (Conditional Access).
    pub required_acrs: Option<String>,
    /// Every authorize request's parameters.
    pub authorize_requests: Vec<HashMap<String, String>>,
    /// (client_id, how it authenticated) for every successful token request.
    pub token_auth: Vec<(String, String)>,
    pub counter: u64,
    /// Managed identity tokens handed out (audience api://AzureADTokenExchange).
    mi_tokens: std::collections::HashSet<String>,
    /// (endpoint, user-assigned client id) of every managed identity token request answered.
    pub mi_requests: Vec<(&'static str, Option<String>)>,
    /// On-behalf-of requests answered: (the app that asked, the scope).
    pub obo_requests: Vec<(String, String)>,
}

#[derive(Clone)]
pub struct FakeEntra {
    pub authority: String,
    pub state: Arc<Mutex<FakeState>>,
    handle: actix_web::dev::ServerHandle,
    /// Apps alive in the server's workers (see `WorkerGuard`).
    live_workers: Arc<AtomicUsize>,
}

/// Held in each worker's app: counts the apps alive, so `stop` can wait for them to be dropped.
struct WorkerGuard(Arc<AtomicUsize>);

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl FakeEntra {
    /// Makes every refresh token issued so far invalid (as when a user's sessions are revoked).
    pub fn revoke_all_refresh_tokens(&self) {
        self.state.lock().unwrap().refresh.clear();
    }

    /// Puts a Conditional Access authentication context (`acrs` value) in force.
    pub fn require_claims(&self, acrs: &str) {
        self.state.lock().unwrap().required_acrs = Some(acrs.to_owned());
    }

    /// What an MCP server validating Entra's tokens answers: `Ok` or the `WWW-Authenticate`
    /// challenge with the claims the next login must send.
    pub fn check_access_token(&self, token: &str) -> Result<(), String> {
        let Some(acrs) = self.state.lock().unwrap().required_acrs.clone() else {
            return Ok(());
        };
        if token.ends_with(&format!(".acrs={acrs}")) {
            return Ok(());
        }
        Err(format!(
            "Bearer realm=\"\", error=\"insufficient_claims\", claims=\"{}\"",
            STANDARD.encode(claims_for(&acrs))
        ))
    }

    /// Stops the server and returns once its worker is gone, so that no connection the shim
    /// keeps alive is answered afterwards: a forced stop only signals the worker.
    pub async fn stop(&self) {
        self.handle.stop(false).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.live_workers.load(Ordering::SeqCst) > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the fake IdP did not stop"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

struct Ctx {
    authority: String,
    state: Arc<Mutex<FakeState>>,
    fed_assertion_file: std::path::PathBuf,
    x5t_s256: String,
    x5t_sha1: String,
    public_key: DecodingKey,
    signing_key: EncodingKey,
}

/// The `claims` request parameter that asks for authentication context `acrs`.
pub fn claims_for(acrs: &str) -> String {
    json!({"access_token": {"acrs": {"essential": true, "value": acrs}}}).to_string()
}

/// The `acrs` value a `claims` parameter asks for.
fn acrs_of(claims: Option<&String>) -> Option<String> {
    let v: Value = serde_json::from_str(claims?).ok()?;
    v["access_token"]["acrs"]["value"]
        .as_str()
        .map(str::to_owned)
}

fn aad_error(status: u16, error: &str, code: &str, text: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(json!({
        "error": error,
        "error_description": format!("{code}: {text}\r\nTrace ID: 0000-trace\r\nCorrelation ID: 1111-correlation\r\nTimestamp: 2026-11-26 00:00:00Z"),
        "error_codes": [code.trim_start_matches("AADSTS").parse::<u64>().unwrap_or(0)],
        "trace_id": "0000-trace",
        "correlation_id": "1111-correlation",
    }))
}

fn redirect_error(
    redirect_uri: &str,
    state: &str,
    error: &str,
    code: &str,
    text: &str,
) -> HttpResponse {
    let mut url = url::Url::parse(redirect_uri).unwrap();
    url.query_pairs_mut()
        .append_pair("error", error)
        .append_pair(
            "error_description",
            &format!("{code}: {text} Trace ID: 0000-trace Correlation ID: 1111-correlation"),
        )
        .append_pair("state", state);
    HttpResponse::Found()
        .insert_header(("Location", url.to_string()))
        .finish()
}

/// The API (resource) part of a fully qualified scope.
fn api_of(scope: &str) -> Option<&str> {
    scope.rsplit_once('/').map(|(api, _)| api)
}

fn check_scopes(scope: &str) -> Result<(), (&'static str, &'static str)> {
    let mut apis = std::collections::HashSet::new();
    for s in scope.split(' ') {
        match s {
            "openid" | "profile" | "email" | "offline_access" => {}
            s => match api_of(s) {
                Some(api) => {
                    apis.insert(api.to_owned());
                }
                None => {
                    return Err((
                        "AADSTS650053",
                        "The application asked for scope that doesn't exist on the resource '00000003-0000-0000-c000-000000000000' (Microsoft Graph).",
                    ));
                }
            },
        }
    }
    if apis.len() > 1 {
        return Err((
            "AADSTS28000",
            "Provided value for the input parameter scope is not valid because it contains more than one resource.",
        ));
    }
    Ok(())
}

async fn discovery(ctx: web::Data<Ctx>) -> HttpResponse {
    let base = format!("{}/{DIRECTORY}", ctx.authority);
    HttpResponse::Ok().json(json!({
        "issuer": format!("{base}/v2.0"),
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
    }))
}

async fn authorize(ctx: web::Data<Ctx>, req: HttpRequest) -> HttpResponse {
    let p: HashMap<String, String> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    ctx.state.lock().unwrap().authorize_requests.push(p.clone());
    let get = |k: &str| p.get(k).cloned().unwrap_or_default();
    let (redirect_uri, state) = (get("redirect_uri"), get("state"));
    if ![SECRET_APP, CERT_APP, FED_APP, NOCRED_APP, MI_APP].contains(&get("client_id").as_str()) {
        return HttpResponse::BadRequest()
            .body("AADSTS700016: Application not found in the directory");
    }
    if !redirect_uri.ends_with("/callback") {
        return HttpResponse::BadRequest()
            .body("AADSTS50011: The redirect URI specified in the request does not match");
    }
    if p.contains_key("resource") {
        return redirect_error(
            &redirect_uri,
            &state,
            "invalid_target",
            "AADSTS9010010",
            "The resource parameter provided in the request doesn't match with the requested scopes.",
        );
    }
    if let Err((code, text)) = check_scopes(&get("scope")) {
        return redirect_error(&redirect_uri, &state, "invalid_scope", code, text);
    }
    if get("code_challenge_method") != "S256" || get("code_challenge").is_empty() {
        return redirect_error(
            &redirect_uri,
            &state,
            "invalid_request",
            "AADSTS501491",
            "Invalid size of Code_Challenge parameter.",
        );
    }
    let user = p
        .get("login_hint")
        .cloned()
        .unwrap_or_else(|| "alice@contoso.example".into());
    if user.starts_with("unassigned") {
        return redirect_error(
            &redirect_uri,
            &state,
            "access_denied",
            "AADSTS50105",
            &format!(
                "The signed in user '{user}' is not assigned to a role for the application '{}'.",
                get("client_id")
            ),
        );
    }
    if get("prompt").split(' ').any(|p| p == "consent") && !user.starts_with("admin") {
        // The directory restricts user consent: only an admin may consent, even to an app the
        // tenant already consented to.
        return HttpResponse::Ok().body(format!(
            "Need admin approval. AADSTS90094: The grant requires admin permission. User '{user}' cannot consent."
        ));
    }
    let mut st = ctx.state.lock().unwrap();
    st.counter += 1;
    let code = format!("entra-code-{}", st.counter);
    st.codes.insert(
        code.clone(),
        Code {
            client_id: get("client_id"),
            redirect_uri: redirect_uri.clone(),
            challenge: get("code_challenge"),
            scope: get("scope"),
            user,
            nonce: get("nonce"),
            acrs: acrs_of(p.get("claims")),
        },
    );
    let mut url = url::Url::parse(&redirect_uri).unwrap();
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &state)
        .append_pair("session_state", "s");
    HttpResponse::Found()
        .insert_header(("Location", url.to_string()))
        .finish()
}

/// How the client authenticated, or the AADSTS error for it.
#[allow(clippy::result_large_err)]
fn authenticate(
    ctx: &Ctx,
    req: &HttpRequest,
    p: &HashMap<String, String>,
    token_endpoint: &str,
) -> Result<(String, String), HttpResponse> {
    if let Some(h) = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
    {
        let raw =
            String::from_utf8(STANDARD.decode(h.trim_start_matches("Basic ")).unwrap()).unwrap();
        let (id, secret) = raw.split_once(':').unwrap();
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .unwrap()
                .1
                .into_owned()
        };
        let (id, secret) = (decode(id), decode(secret));
        if id == SECRET_APP && secret == APP_SECRET {
            return Ok((id, "client_secret_basic".into()));
        }
        return Err(aad_error(
            401,
            "invalid_client",
            "AADSTS7000215",
            "Invalid client secret provided.",
        ));
    }
    let id = p.get("client_id").cloned().unwrap_or_default();
    if let Some(secret) = p.get("client_secret") {
        if id == SECRET_APP && secret == APP_SECRET {
            return Ok((id, "client_secret_post".into()));
        }
        return Err(aad_error(
            401,
            "invalid_client",
            "AADSTS7000215",
            "Invalid client secret provided.",
        ));
    }
    if let Some(assertion) = p.get("client_assertion") {
        if p.get("client_assertion_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        {
            return Err(aad_error(
                400,
                "invalid_request",
                "AADSTS700023",
                "client_assertion_type is wrong",
            ));
        }
        if id == FED_APP {
            let expected = std::fs::read_to_string(&ctx.fed_assertion_file).unwrap();
            return if assertion == expected.trim() {
                Ok((id, "federated".into()))
            } else {
                Err(aad_error(
                    401,
                    "invalid_client",
                    "AADSTS700024",
                    "Client assertion is not within its valid time range.",
                ))
            };
        }
        if id == MI_APP {
            return if ctx.state.lock().unwrap().mi_tokens.contains(assertion) {
                Ok((id, "managed_identity".into()))
            } else {
                Err(aad_error(
                    401,
                    "invalid_client",
                    "AADSTS700213",
                    "No matching federated identity record found for presented assertion.",
                ))
            };
        }
        if id == CERT_APP {
            let header = jsonwebtoken::decode_header(assertion).map_err(|_| {
                aad_error(
                    401,
                    "invalid_client",
                    "AADSTS700027",
                    "Client assertion failed signature validation.",
                )
            })?;
            // PS256 by `x5t#S256`; RS256, as Microsoft documents it, also by the SHA-1 `x5t`.
            let thumbprints_ok = header.x5t_s256.as_deref() == Some(ctx.x5t_s256.as_str())
                && (header.alg != Algorithm::RS256
                    || header.x5t.as_deref() == Some(ctx.x5t_sha1.as_str()));
            if !thumbprints_ok || !matches!(header.alg, Algorithm::PS256 | Algorithm::RS256) {
                return Err(aad_error(
                    401,
                    "invalid_client",
                    "AADSTS700027",
                    "The certificate with identifier used to sign the client assertion is not registered on application.",
                ));
            }
            let mut v = Validation::new(header.alg);
            v.set_audience(&[token_endpoint]);
            v.set_issuer(&[CERT_APP]);
            v.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
            let claims = jsonwebtoken::decode::<Value>(assertion, &ctx.public_key, &v)
                .map_err(|e| {
                    aad_error(
                        401,
                        "invalid_client",
                        "AADSTS700027",
                        &format!("Client assertion failed signature validation: {e}"),
                    )
                })?
                .claims;
            if claims["sub"] != CERT_APP || claims["jti"].as_str().is_none_or(str::is_empty) {
                return Err(aad_error(
                    401,
                    "invalid_client",
                    "AADSTS700027",
                    "sub or jti is wrong",
                ));
            }
            return Ok((id, format!("private_key_jwt:{:?}", header.alg)));
        }
    }
    Err(aad_error(
        401,
        "invalid_client",
        "AADSTS7000218",
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    ))
}

async fn token(ctx: web::Data<Ctx>, req: HttpRequest, body: String) -> HttpResponse {
    let fault = ctx.state.lock().unwrap().fault;
    match fault {
        Some(Fault::Status500Html) => {
            return HttpResponse::InternalServerError()
                .content_type("text/html")
                .body("<html>Service unavailable</html>");
        }
        Some(Fault::Garbage) => {
            return HttpResponse::Ok()
                .content_type("application/json")
                .body("{\"access_token\": tru");
        }
        Some(Fault::NoAccessToken) => {
            return HttpResponse::Ok().json(json!({"token_type": "Bearer", "expires_in": 3599}));
        }
        Some(Fault::Slow) => tokio::time::sleep(std::time::Duration::from_secs(3)).await,
        Some(Fault::VerySlow) => tokio::time::sleep(std::time::Duration::from_secs(7)).await,
        Some(Fault::RefreshRefused(..) | Fault::NoRefreshToken) | None => {}
    }
    let p: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let token_endpoint = format!("{}/{DIRECTORY}/oauth2/v2.0/token", ctx.authority);
    if req.headers().contains_key("origin") {
        return aad_error(
            400,
            "invalid_request",
            "AADSTS9002327",
            "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests.",
        );
    }
    let (client_id, how) = match authenticate(&ctx, &req, &p, &token_endpoint) {
        Ok(x) => x,
        Err(res) => return res,
    };
    if p.contains_key("resource") {
        return aad_error(
            400,
            "invalid_target",
            "AADSTS9010010",
            "The resource parameter provided in the request doesn't match with the requested scopes.",
        );
    }
    if p.get("grant_type").map(String::as_str)
        == Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return on_behalf_of(&ctx, &client_id, &p);
    }
    // Client credentials (what `check --live` asks): a token for the app, as Entra gives one
    // to any registered app for a resource's `.default` scope.
    if p.get("grant_type").map(String::as_str) == Some("client_credentials") {
        if !p.get("scope").is_some_and(|s| s.ends_with("/.default")) {
            return aad_error(
                400,
                "invalid_scope",
                "AADSTS1002012",
                "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
            );
        }
        return HttpResponse::Ok().json(json!({
            "token_type": "Bearer",
            "expires_in": 3599,
            "access_token": format!("app-token-for-{client_id}"),
        }));
    }
    let mut st = ctx.state.lock().unwrap();
    let (user, scope, nonce, acrs) = match p.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some(code) = st
                .codes
                .remove(p.get("code").map(String::as_str).unwrap_or_default())
            else {
                return aad_error(
                    400,
                    "invalid_grant",
                    "AADSTS70008",
                    "The provided authorization code or refresh token has expired.",
                );
            };
            let verifier = p.get("code_verifier").cloned().unwrap_or_default();
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if code.client_id != client_id
                || Some(&code.redirect_uri) != p.get("redirect_uri")
                || challenge != code.challenge
            {
                return aad_error(
                    400,
                    "invalid_grant",
                    "AADSTS501481",
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                );
            }
            (code.user, code.scope, Some(code.nonce), code.acrs)
        }
        Some("refresh_token") => {
            if let Some(Fault::RefreshRefused(error, description)) = fault {
                let (code, text) = description.split_once(": ").unwrap_or(("", description));
                return aad_error(400, error, code, text);
            }
            let Some((rt_client, user, scope, acrs)) = st
                .refresh
                .get(
                    p.get("refresh_token")
                        .map(String::as_str)
                        .unwrap_or_default(),
                )
                .cloned()
            else {
                return aad_error(
                    400,
                    "invalid_grant",
                    "AADSTS700082",
                    "The refresh token has expired due to inactivity.",
                );
            };
            if rt_client != client_id {
                return aad_error(
                    400,
                    "invalid_grant",
                    "AADSTS70000",
                    "The refresh token was issued to another client.",
                );
            }
            if let Some(requested) = p.get("scope")
                && let Err((code, text)) = check_scopes(requested)
            {
                return aad_error(400, "invalid_scope", code, text);
            }
            if let Some(required) = st.required_acrs.clone()
                && acrs.as_deref() != Some(required.as_str())
            {
                return HttpResponse::BadRequest().json(json!({
                    "error": "interaction_required",
                    "error_description": "AADSTS50076: Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access the resource.",
                    "suberror": "basic_action",
                    "claims": claims_for(&required),
                }));
            }
            // Entra's refresh tokens are good for any API the app may call: the access
            // token is for the scopes the refresh asks for.
            let scope = p.get("scope").cloned().unwrap_or(scope);
            (user, scope, None, acrs)
        }
        _ => {
            return aad_error(
                400,
                "unsupported_grant_type",
                "AADSTS70003",
                "The app requested an unsupported grant type.",
            );
        }
    };
    st.token_auth.push((client_id.clone(), how));
    st.counter += 1;
    let n = st.counter;
    let api_scopes: Vec<&str> = scope.split(' ').filter(|s| s.contains('/')).collect();
    let mut access_token = format!("entra-at.{user}.{}.{n}", api_scopes.join(","));
    if let Some(a) = &acrs {
        access_token.push_str(&format!(".acrs={a}"));
    }
    if api_scopes.first().and_then(|s| api_of(s)) == Some(JWT_API) {
        access_token = jwt_access_token(&ctx, &user, &client_id, &api_scopes, acrs.as_deref());
    }
    let mut body = json!({
        "token_type": "Bearer",
        "scope": api_scopes.join(" "),
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": access_token,
    });
    if scope.split(' ').any(|s| s == "offline_access") && fault != Some(Fault::NoRefreshToken) {
        let rt = format!("entra-rt-{n}");
        st.refresh.insert(
            rt.clone(),
            (client_id.clone(), user.clone(), scope.clone(), acrs.clone()),
        );
        body["refresh_token"] = json!(rt);
    }
    if let Some(nonce) = nonce.filter(|_| scope.split(' ').any(|s| s == "openid")) {
        let mut claims = json!({
            "iss": format!("{}/{DIRECTORY}/v2.0", ctx.authority), "aud": client_id, "sub": format!("sub-{user}"), "oid": format!("oid-{user}"),
            "tid": DIRECTORY, "nonce": nonce, "iat": 1, "exp": 4_102_444_800u64, "preferred_username": user,
        });
        // The authentication context the login satisfied, as an app that opted in to the
        // optional `acrs` claim in its ID tokens receives it.
        if let Some(a) = &acrs {
            claims["acrs"] = json!([a]);
        }
        body["id_token"] = json!(
            jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &ctx.signing_key)
                .unwrap()
        );
    }
    HttpResponse::Ok().json(body)
}

/// A v2.0 access token for `JWT_API`, as Entra signs one.
fn jwt_access_token(
    ctx: &Ctx,
    user: &str,
    client_id: &str,
    api_scopes: &[&str],
    acrs: Option<&str>,
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let scp: Vec<&str> = api_scopes
        .iter()
        .filter_map(|s| s.rsplit_once('/').map(|(_, name)| name))
        .collect();
    let mut claims = json!({
        "iss": format!("{}/{DIRECTORY}/v2.0", ctx.authority), "aud": SECRET_APP, "azp": client_id,
        "azpacr": "1", "oid": format!("oid-{user}"), "sub": format!("sub-{user}"), "tid": DIRECTORY,
        "scp": scp.join(" "), "ver": "2.0", "iat": now, "nbf": now, "exp": now + 3599,
        "preferred_username": user,
    });
    if let Some(a) = acrs {
        claims["acrs"] = json!([a]);
    }
    let header = Header {
        kid: Some("app-key-1".into()),
        typ: Some("JWT".into()),
        ..Header::new(Algorithm::RS256)
    };
    jsonwebtoken::encode(&header, &claims, &ctx.signing_key).unwrap()
}

/// Entra's on-behalf-of flow: the assertion must be an access token this IdP signed whose
/// audience is the app asking (AADSTS50013 otherwise).
fn on_behalf_of(ctx: &Ctx, client_id: &str, p: &HashMap<String, String>) -> HttpResponse {
    if p.get("requested_token_use").map(String::as_str) != Some("on_behalf_of") {
        return aad_error(
            400,
            "invalid_request",
            "AADSTS50027",
            "requested_token_use must be on_behalf_of.",
        );
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[client_id]);
    validation.set_issuer(&[format!("{}/{DIRECTORY}/v2.0", ctx.authority)]);
    let assertion = p.get("assertion").map(String::as_str).unwrap_or_default();
    let Ok(claims) = jsonwebtoken::decode::<Value>(assertion, &ctx.public_key, &validation) else {
        return aad_error(
            400,
            "invalid_grant",
            "AADSTS50013",
            "Assertion failed signature validation or its audience is not the app.",
        );
    };
    let scope = p.get("scope").cloned().unwrap_or_default();
    let Some(oid) = claims.claims["oid"]
        .as_str()
        .filter(|_| claims.claims.get("scp").is_some())
        .map(str::to_owned)
    else {
        return aad_error(
            400,
            "invalid_grant",
            "AADSTS50013",
            "An on-behalf-of assertion must be a user's delegated token.",
        );
    };
    ctx.state
        .lock()
        .unwrap()
        .obo_requests
        .push((client_id.to_owned(), scope.clone()));
    HttpResponse::Ok().json(json!({
        "token_type": "Bearer",
        "scope": scope,
        "expires_in": 3599,
        "access_token": format!("{OBO_PREFIX}{oid}.{scope}"),
    }))
}

/// The JWK Set of the key the access tokens of `JWT_API` are signed with.
async fn keys() -> HttpResponse {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    HttpResponse::Ok()
        .content_type("application/json")
        .body(std::fs::read_to_string(fixtures.join("app-jwks.json")).unwrap())
}

/// A managed identity token endpoint: IMDS (`Metadata: true`, api-version 2018-02-01,
/// `expires_in` and `expires_on` as strings) or App Service (`X-IDENTITY-HEADER`,
/// api-version 2019-08-01, `expires_on` as a string).
async fn managed_identity(ctx: web::Data<Ctx>, req: HttpRequest) -> HttpResponse {
    let q: HashMap<String, String> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let header = |name: &str| req.headers().get(name).and_then(|h| h.to_str().ok());
    let app_service = req.path().ends_with("/appservice");
    let (kind, version, allowed) = if app_service {
        (
            "app_service",
            "2019-08-01",
            header("x-identity-header") == Some(IDENTITY_HEADER),
        )
    } else {
        ("imds", "2018-02-01", header("metadata") == Some("true"))
    };
    if !allowed {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_request", "error_description": "Required metadata header not specified"}));
    }
    if q.get("api-version").map(String::as_str) != Some(version)
        || q.get("resource").map(String::as_str) != Some("api://AzureADTokenExchange")
    {
        return HttpResponse::BadRequest()
            .json(json!({"error": "invalid_resource", "error_description": format!("{q:?}")}));
    }
    let mut st = ctx.state.lock().unwrap();
    st.counter += 1;
    let token = format!("mi-{kind}-{}", st.counter);
    st.mi_tokens.insert(token.clone());
    st.mi_requests.push((kind, q.get("client_id").cloned()));
    let expires_on = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 86_400)
        .to_string();
    let mut body = json!({"access_token": token, "expires_on": expires_on, "resource": "api://AzureADTokenExchange", "token_type": "Bearer"});
    if !app_service {
        body["expires_in"] = json!("86399");
    }
    HttpResponse::Ok().json(body)
}

/// Starts the fake IdP on a loopback port. `fed_assertion_file` is where the test put the
/// federated token the shim must present for the federated app.
pub async fn start(fed_assertion_file: std::path::PathBuf) -> FakeEntra {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let cert = std::fs::read(fixtures.join("app-cert.pem")).unwrap();
    let der = pem::parse(&cert).unwrap();
    let x5t_s256 = URL_SAFE_NO_PAD.encode(Sha256::digest(der.contents()));
    let x5t_sha1 = URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(der.contents()));
    let public_key =
        DecodingKey::from_rsa_pem(&std::fs::read(fixtures.join("app-pub.pem")).unwrap()).unwrap();
    let signing_key =
        EncodingKey::from_rsa_pem(&std::fs::read(fixtures.join("app-key.pem")).unwrap()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let authority = format!("http://{}", listener.local_addr().unwrap());
    let state: Arc<Mutex<FakeState>> = Arc::default();
    let ctx = web::Data::new(Ctx {
        authority: authority.clone(),
        state: state.clone(),
        fed_assertion_file,
        x5t_s256,
        x5t_sha1,
        public_key,
        signing_key,
    });
    let live_workers = Arc::new(AtomicUsize::new(0));
    let live = live_workers.clone();
    let server = HttpServer::new(move || {
        live.fetch_add(1, Ordering::SeqCst);
        App::new()
            .app_data(web::Data::new(WorkerGuard(live.clone())))
            .app_data(ctx.clone())
            .route(
                "/{dir}/v2.0/.well-known/openid-configuration",
                web::get().to(discovery),
            )
            .route("/{dir}/oauth2/v2.0/authorize", web::get().to(authorize))
            .route("/{dir}/oauth2/v2.0/token", web::post().to(token))
            .route("/{dir}/discovery/v2.0/keys", web::get().to(keys))
            .route("/msi/imds", web::get().to(managed_identity))
            .route("/msi/appservice", web::get().to(managed_identity))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    FakeEntra {
        authority,
        state,
        handle,
        live_workers,
    }
}
