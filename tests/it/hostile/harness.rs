//! What every hostile table uses: raw HTTP, cases and their checks, store snapshots, and
//! logins driven over the raw client.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use dcr_shim::app::unix_now;
use dcr_shim::domain::ClientRecord;
use dcr_shim::oauth::ErrorCode;
use dcr_shim::oauth::client_auth::ClientCredentials;
use dcr_shim::oauth::params::Params;
use dcr_shim::oauth::records::{AuthCode, Family, RefreshRecord, Transaction};
use dcr_shim::store::Record;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

use crate::browser::{Client, authorize_url, param, ticket_of};
use crate::helpers::TestApp;

/// Cases that currently fail because of a server defect (see the `// DEFECT:` comments).
pub(super) const SKIP: &[&str] = &[];

/// The loopback redirect URI every public test client uses at authorize time.
pub(super) const LOOPBACK: &str = "http://127.0.0.1:49152/cb";
/// The registered redirect URIs of the web (confidential) test client.
pub(super) const WEB_CB: &str = "https://app.example.com/cb";
pub(super) const WEB_Q: &str = "https://app.example.com/q?x=1";
/// An S256 PKCE challenge (RFC 7636 appendix B).
pub(super) const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

// ---------------------------------------------------------------------------------------------
// Raw HTTP

#[derive(Clone, Debug)]
pub(super) struct Req {
    pub(super) method: &'static str,
    pub(super) target: Vec<u8>,
    pub(super) headers: Vec<(String, Vec<u8>)>,
    pub(super) body: Vec<u8>,
}

pub(super) fn get(target: impl AsRef<[u8]>) -> Req {
    Req {
        method: "GET",
        target: target.as_ref().to_vec(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

pub(super) fn post(
    target: impl AsRef<[u8]>,
    content_type: Option<&str>,
    body: impl AsRef<[u8]>,
) -> Req {
    let mut r = get(target);
    r.method = "POST";
    r.body = body.as_ref().to_vec();
    if let Some(ct) = content_type {
        r = r.header("Content-Type", ct);
    }
    r
}

/// `body` sent with `Transfer-Encoding: chunked` in 4 KiB chunks (no Content-Length).
pub(super) fn chunked(target: &str, content_type: &str, body: &[u8]) -> Req {
    let mut encoded = Vec::new();
    for chunk in body.chunks(4096) {
        encoded.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        encoded.extend_from_slice(chunk);
        encoded.extend_from_slice(b"\r\n");
    }
    encoded.extend_from_slice(b"0\r\n\r\n");
    post(target, Some(content_type), encoded).header("Transfer-Encoding", "chunked")
}

pub(super) fn form(target: impl AsRef<[u8]>, body: impl AsRef<[u8]>) -> Req {
    post(target, Some("application/x-www-form-urlencoded"), body)
}

pub(super) fn json_post(target: impl AsRef<[u8]>, body: &Value) -> Req {
    post(target, Some("application/json"), body.to_string())
}

impl Req {
    pub(super) fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    pub(super) fn cookie(self, cookie: &str) -> Self {
        self.header("Cookie", cookie)
    }

    pub(super) fn with_method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }
}

#[derive(Debug)]
pub(super) struct Resp {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Resp {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(super) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub(super) fn location(&self) -> Option<&str> {
        self.header("location")
    }

    /// `name=value` of every cookie the response sets (or clears: empty value).
    pub(super) fn set_cookies(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| {
                let pair = v.split(';').next()?;
                let (n, v) = pair.split_once('=')?;
                Some((n.trim().to_owned(), v.trim().to_owned()))
            })
            .collect()
    }
}

pub(super) fn decode_chunked(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_line = String::from_utf8_lossy(&body[..end]);
        let size =
            usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        body = &body[end + 2..];
        if size == 0 || body.len() < size {
            return out;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[(size + 2).min(body.len())..];
    }
}

/// Sends one request as written and reads the whole answer; a hang fails the test.
pub(super) async fn send(app: &TestApp, req: &Req) -> Resp {
    let addr = app.base.strip_prefix("http://").unwrap().to_owned();
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let mut raw = Vec::new();
        raw.extend_from_slice(req.method.as_bytes());
        raw.push(b' ');
        raw.extend_from_slice(&req.target);
        raw.extend_from_slice(
            format!(" HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n").as_bytes(),
        );
        for (k, v) in &req.headers {
            raw.extend_from_slice(k.as_bytes());
            raw.extend_from_slice(b": ");
            raw.extend_from_slice(v);
            raw.extend_from_slice(b"\r\n");
        }
        let framed = req.headers.iter().any(|(k, _)| {
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
        });
        if !framed && (req.method != "GET" || !req.body.is_empty()) {
            raw.extend_from_slice(format!("Content-Length: {}\r\n", req.body.len()).as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        raw.extend_from_slice(&req.body);
        // The server may answer (413) and close before reading everything; that is fine.
        let _ = stream.write_all(&raw).await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        answer
    };
    let answer = tokio::time::timeout(Duration::from_secs(15), exchange)
        .await
        .unwrap_or_else(|_| panic!("the server hung on {req:?}"));
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no HTTP answer to {:?}: {:?}",
                String::from_utf8_lossy(&req.target),
                String::from_utf8_lossy(&answer)
            )
        });
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = answer[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = decode_chunked(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

// ---------------------------------------------------------------------------------------------
// Cases

#[derive(Clone, Debug)]
pub(super) enum Expect {
    /// A JSON error body: this status and this `error`.
    Json(u16, &'static str),
    /// An HTML error page with this status and no `Location`.
    Page(u16),
    /// A redirect (302/303) to the validated client redirect URI carrying `error`, with `iss`.
    Redirect(&'static str),
    /// This status, no error body, no `Location` (e.g. revocation's 200, a consent page).
    Status(u16),
    /// Refused before any handler ran (HTTP parser or router): this status, no `Location`.
    Bare(u16),
    /// An introspection's answer for a token that is not active: 200 `{"active": false}`.
    Inactive,
}

pub(super) struct Case {
    pub(super) name: String,
    pub(super) req: Req,
    pub(super) expect: Expect,
    /// Text that must not appear in the body (unescaped markup).
    pub(super) forbid: Option<String>,
}

pub(super) fn case(name: impl Into<String>, req: Req, expect: Expect) -> Case {
    Case {
        name: name.into(),
        req,
        expect,
        forbid: None,
    }
}

/// Where a response may point: the validated client targets and the tenant's own pages.
pub(super) struct Ctx {
    /// Prefixes a `Location` may start with.
    pub(super) safe: Vec<String>,
    /// The prefix a `Redirect` expectation must start with (the client's redirect URI).
    pub(super) redirect_prefix: String,
    /// The issuer expected in `iss` of redirected errors.
    pub(super) issuer: String,
}

/// What must hold for every response, whatever the case expects.
pub(super) fn assert_never(name: &str, res: &Resp, ctx: &Ctx) {
    assert!(
        res.status < 500,
        "{name}: server error {} {}",
        res.status,
        res.text()
    );
    if let Some(loc) = res.location() {
        assert!(
            ctx.safe.iter().any(|p| loc.starts_with(p.as_str())),
            "{name}: Location to an unvalidated URI: {loc}"
        );
        assert!(
            !loc.contains(|c: char| c.is_control() || c == ' '),
            "{name}: Location with raw control characters: {loc:?}"
        );
    }
}

pub(super) fn check(case: &Case, res: &Resp, ctx: &Ctx) {
    let name = case.name.as_str();
    assert_never(name, res, ctx);
    if let Some(forbid) = &case.forbid {
        assert!(
            !res.text().contains(forbid.as_str()),
            "{name}: body contains {forbid}"
        );
    }
    match &case.expect {
        Expect::Json(status, error) => {
            let body = res.json();
            assert_eq!(
                (res.status, body["error"].as_str()),
                (*status, Some(*error)),
                "{name}: {}",
                res.text()
            );
            assert!(
                res.location().is_none(),
                "{name}: JSON error with a Location"
            );
            assert_eq!(res.header("cache-control"), Some("no-store"), "{name}");
        }
        Expect::Page(status) => {
            assert_eq!(res.status, *status, "{name}: {}", res.text());
            assert!(
                res.location().is_none(),
                "{name}: error page with a Location"
            );
            assert!(
                res.header("content-type")
                    .is_some_and(|c| c.starts_with("text/html")),
                "{name}: not an HTML page: {:?} {}",
                res.header("content-type"),
                res.text()
            );
            assert_eq!(res.header("x-frame-options"), Some("DENY"), "{name}");
        }
        Expect::Redirect(error) => {
            assert!(
                matches!(res.status, 302 | 303),
                "{name}: {} {}",
                res.status,
                res.text()
            );
            let loc = res
                .location()
                .unwrap_or_else(|| panic!("{name}: no Location"));
            assert!(
                loc.starts_with(&ctx.redirect_prefix),
                "{name}: redirect to {loc}, expected {}",
                ctx.redirect_prefix
            );
            let url = Url::parse(loc).unwrap();
            assert_eq!(
                param(&url, "error").as_deref(),
                Some(*error),
                "{name}: {loc}"
            );
            assert_eq!(
                param(&url, "iss").as_deref(),
                Some(ctx.issuer.as_str()),
                "{name}"
            );
            assert!(
                param(&url, "code").is_none(),
                "{name}: a code with an error"
            );
        }
        Expect::Status(status) => {
            assert_eq!(res.status, *status, "{name}: {}", res.text());
            assert!(res.location().is_none(), "{name}: unexpected Location");
            assert!(res.json().get("error").is_none(), "{name}: {}", res.text());
        }
        Expect::Bare(status) => {
            assert_eq!(res.status, *status, "{name}: {}", res.text());
            assert!(res.location().is_none(), "{name}: unexpected Location");
        }
        Expect::Inactive => {
            assert_eq!(
                (res.status, res.json()),
                (200, json!({"active": false})),
                "{name}: {}",
                res.text()
            );
            assert_eq!(res.header("cache-control"), Some("no-store"), "{name}");
        }
    }
}

/// Runs a table; returns how many cases it has (skipped ones included).
pub(super) async fn run(app: &TestApp, ctx: &Ctx, cases: &[Case]) -> usize {
    let mut names = HashSet::new();
    for c in cases {
        assert!(
            names.insert(c.name.as_str()),
            "duplicate case name {}",
            c.name
        );
        if SKIP.contains(&c.name.as_str()) {
            eprintln!("skipped (known server defect): {}", c.name);
            continue;
        }
        let res = send(app, &c.req).await;
        check(c, &res, ctx);
    }
    cases.len()
}

pub(super) fn report(test: &str, counts: &[(&str, usize)]) -> usize {
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    let detail: Vec<String> = counts.iter().map(|(e, n)| format!("{e}={n}")).collect();
    eprintln!("hostile cases: {total} ({test}: {})", detail.join(", "));
    total
}

pub(super) fn count_prefix(cases: &[Case], prefix: &str) -> usize {
    cases.iter().filter(|c| c.name.starts_with(prefix)).count()
}

// ---------------------------------------------------------------------------------------------
// Store snapshots

/// Per tenant and record kind: how many records and the sum of their revisions (any update
/// changes it), plus used codes and revoked families.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Snapshot(BTreeMap<String, [u64; 12]>);

pub(super) async fn kind<R: Record>(
    app: &TestApp,
    tenant: &dcr_shim::domain::TenantId,
) -> Vec<dcr_shim::store::Versioned<R>> {
    app.state()
        .records()
        .list::<R>(tenant, unix_now(), 100_000)
        .await
        .unwrap()
}

pub(super) async fn snapshot(app: &TestApp) -> Snapshot {
    let mut out = BTreeMap::new();
    for t in app.state().tenants() {
        let clients = kind::<ClientRecord>(app, &t.id).await;
        let txns = kind::<Transaction>(app, &t.id).await;
        let codes = kind::<AuthCode>(app, &t.id).await;
        let refresh = kind::<RefreshRecord>(app, &t.id).await;
        let families = kind::<Family>(app, &t.id).await;
        let revs = |v: Vec<u64>| v.iter().sum::<u64>();
        out.insert(
            t.id.to_string(),
            [
                clients.len() as u64,
                revs(clients.iter().map(|r| r.revision).collect()),
                txns.len() as u64,
                revs(txns.iter().map(|r| r.revision).collect()),
                codes.len() as u64,
                revs(codes.iter().map(|r| r.revision).collect()),
                codes.iter().filter(|c| c.value.used).count() as u64,
                refresh.len() as u64,
                revs(refresh.iter().map(|r| r.revision).collect()),
                families.len() as u64,
                revs(families.iter().map(|r| r.revision).collect()),
                families.iter().filter(|f| f.value.revoked).count() as u64,
            ],
        );
    }
    Snapshot(out)
}

pub(super) async fn client_count(app: &TestApp, tenant: &str) -> usize {
    kind::<ClientRecord>(app, &app.tenant(tenant).id)
        .await
        .len()
}

// ---------------------------------------------------------------------------------------------
// Flows (alpha's built-in dev IdP), over the raw client with explicit cookies

pub(super) fn target_of(app: &TestApp, url: &str) -> String {
    url.strip_prefix(&app.base)
        .unwrap_or_else(|| panic!("{url} is not on {}", app.base))
        .to_owned()
}

/// A consent page for `client` at alpha: the ticket and the browser's CSRF cookie.
pub(super) struct Consent {
    pub(super) ticket: String,
    pub(super) csrf: String,
    pub(super) verifier: String,
    pub(super) state: String,
}

pub(super) async fn open_consent(app: &TestApp, client: &Client) -> Consent {
    open_consent_at(app, &At::alpha(), client).await
}

/// Where a login goes: the tenant, the scope asked for, the resource named (if any).
pub(super) struct At<'a> {
    pub(super) tenant: &'a str,
    pub(super) scope: &'a str,
    pub(super) resource: Option<&'a str>,
}

impl At<'static> {
    pub(super) fn alpha() -> Self {
        Self {
            tenant: "alpha",
            scope: "files.read offline_access",
            resource: None,
        }
    }
}

pub(super) async fn open_consent_at(app: &TestApp, at: &At<'_>, client: &Client) -> Consent {
    let mut attempt = authorize_url(app, at.tenant, client, at.scope, "alice");
    if let Some(r) = at.resource {
        attempt.url.push_str(&format!("&resource={}", enc(r)));
    }
    let res = send(app, &get(target_of(app, &attempt.url))).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let csrf = res
        .set_cookies()
        .into_iter()
        .find(|(k, _)| k == "dcr-csrf")
        .expect("csrf cookie")
        .1;
    Consent {
        ticket: ticket_of(&res.text()),
        csrf,
        verifier: attempt.verifier,
        state: attempt.state,
    }
}

/// A login waiting at the callback: its URL and the transaction cookie that binds it.
pub(super) struct Pending {
    pub(super) callback: String,
    pub(super) txn_cookie: (String, String),
    pub(super) verifier: String,
    pub(super) state: String,
}

pub(super) async fn pending_callback(app: &TestApp, client: &Client) -> Pending {
    pending_callback_at(app, &At::alpha(), client).await
}

pub(super) async fn pending_callback_at(app: &TestApp, at: &At<'_>, client: &Client) -> Pending {
    let consent = open_consent_at(app, at, client).await;
    let res = send(
        app,
        &form(
            format!("/{}/consent", at.tenant),
            format!("ticket={}&decision=approve", enc(&consent.ticket)),
        )
        .cookie(&format!("dcr-csrf={}", consent.csrf)),
    )
    .await;
    assert_eq!(res.status, 303, "{}", res.text());
    let txn_cookie = res
        .set_cookies()
        .into_iter()
        .find(|(k, _)| k.starts_with("dcr-txn-"))
        .expect("transaction cookie");
    let idp = Url::parse(res.location().unwrap()).unwrap();
    let mut fields: Vec<(String, String)> = idp.query_pairs().into_owned().collect();
    fields.push(("username".into(), "alice".into()));
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&fields)
        .finish();
    let res = send(app, &form(idp.path(), body)).await;
    assert_eq!(res.status, 303, "{}", res.text());
    Pending {
        callback: target_of(app, res.location().unwrap()),
        txn_cookie,
        verifier: consent.verifier,
        state: consent.state,
    }
}

/// Completes a login for `client` at alpha: the shim's code and the PKCE verifier.
pub(super) async fn login_code(app: &TestApp, client: &Client) -> (String, String) {
    login_code_at(app, &At::alpha(), client).await
}

pub(super) async fn login_code_at(app: &TestApp, at: &At<'_>, client: &Client) -> (String, String) {
    let p = pending_callback_at(app, at, client).await;
    let res = send(
        app,
        &get(&p.callback).cookie(&format!("{}={}", p.txn_cookie.0, p.txn_cookie.1)),
    )
    .await;
    assert_eq!(res.status, 302, "{}", res.text());
    let url = Url::parse(res.location().unwrap()).unwrap();
    assert!(url.as_str().starts_with(LOOPBACK));
    assert_eq!(param(&url, "state"), Some(p.state));
    (param(&url, "code").expect("code"), p.verifier)
}

/// Completes a login for the public `client` at alpha and redeems the code: its refresh token.
pub(super) async fn refresh_token_for(app: &TestApp, client: &Client) -> String {
    let (code, verifier) = login_code(app, client).await;
    redeem_for_refresh_token(app, client, &code, &verifier).await
}

/// Redeems the public `client`'s code at alpha: its refresh token.
pub(super) async fn redeem_for_refresh_token(
    app: &TestApp,
    client: &Client,
    code: &str,
    verifier: &str,
) -> String {
    let res = send(
        app,
        &form(
            "/alpha/token",
            qs(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", LOOPBACK),
                ("code_verifier", verifier),
                ("client_id", &client.id),
            ]),
        ),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["refresh_token"].as_str().unwrap().to_owned()
}

pub(super) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(super) fn qs(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub(super) fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

pub(super) async fn public_client(app: &TestApp, tenant: &str) -> Client {
    Client::register(app, tenant, json!({})).await
}

pub(super) async fn web_client(app: &TestApp) -> Client {
    let mut c = Client::register(
        app,
        "alpha",
        json!({
            "redirect_uris": [WEB_CB, WEB_Q],
            "token_endpoint_auth_method": "client_secret_basic",
        }),
    )
    .await;
    c.redirect_uri = WEB_CB.into();
    c
}

/// Token request through the protocol code at a chosen clock (time travel).
pub(super) async fn token_at(app: &TestApp, body: &str, now: u64) -> Result<Value, ErrorCode> {
    let tenant = app.tenant("alpha");
    app.state()
        .auth()
        .tokens()
        .token(
            &tenant,
            &Params::parse(body),
            &ClientCredentials {
                basic: None,
                dpop: None,
            },
            &crate::helpers::operator(now),
        )
        .await
        // The response as the HTTP layer serialises it.
        .map(|r| serde_json::to_value(r).expect("a token response serialises"))
        .map_err(|e| e.code)
}

pub(super) fn ctx_for(app: &TestApp, tenant: &str) -> Ctx {
    Ctx {
        safe: vec![
            LOOPBACK.to_owned(),
            format!("{}/{tenant}/dev-idp/authorize?", app.base),
        ],
        redirect_prefix: format!("{LOOPBACK}?"),
        issuer: app.issuer(tenant),
    }
}
