//! A scripted browser and OAuth client for login tests: follows redirects until it reaches
//! the client's redirect URI, keeps cookies, and submits the consent form.

use serde_json::{Value, json};
use url::Url;

use crate::helpers::TestApp;

/// Where a navigation ended.
#[derive(Debug)]
pub enum Landing {
    /// Redirected to the client's redirect URI.
    Client(Url),
    /// The consent page.
    Consent(String),
    /// Some other page (an error page).
    Page(u16, String),
}

pub struct Browser {
    http: reqwest::Client,
    jar: std::sync::Arc<reqwest::cookie::Jar>,
}

impl Browser {
    pub fn new() -> Self {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        Self {
            http: reqwest::Client::builder()
                .cookie_provider(jar.clone())
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar,
        }
    }

    /// The `Cookie` header this browser sends to `url`.
    pub fn cookie_header(&self, url: &str) -> String {
        use reqwest::cookie::CookieStore;
        self.jar
            .cookies(&Url::parse(url).unwrap())
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    /// Stores a cookie as if `url` had set it.
    pub fn set_cookie(&self, url: &str, cookie: &str) {
        self.jar.add_cookie_str(cookie, &Url::parse(url).unwrap());
    }

    async fn follow(&self, mut res: reqwest::Response, client_prefix: &str) -> Landing {
        for _ in 0..10 {
            let status = res.status().as_u16();
            if matches!(status, 302 | 303) {
                let location = res.headers()["location"].to_str().unwrap().to_owned();
                if location.starts_with(client_prefix) {
                    return Landing::Client(Url::parse(&location).unwrap());
                }
                res = self.http.get(&location).send().await.unwrap();
                continue;
            }
            let body = res.text().await.unwrap();
            if status == 200 && body.contains("name=\"ticket\"") {
                return Landing::Consent(body);
            }
            return Landing::Page(status, body);
        }
        panic!("too many redirects");
    }

    pub async fn go(&self, url: &str, client_prefix: &str) -> Landing {
        let res = self.http.get(url).send().await.unwrap();
        self.follow(res, client_prefix).await
    }

    /// POSTs a form and returns the redirect target, unfollowed.
    pub async fn post_form_location(&self, url: &str, form: &[(String, String)]) -> String {
        let res = self.http.post(url).form(form).send().await.unwrap();
        assert!(
            matches!(res.status().as_u16(), 302 | 303),
            "{}",
            res.status()
        );
        res.headers()["location"].to_str().unwrap().to_owned()
    }

    /// Submits the consent form and returns where the server sends the browser, unfollowed.
    pub async fn consent_location(&self, issuer: &str, page: &str, decision: &str) -> String {
        let res = self
            .http
            .post(format!("{issuer}/consent"))
            .form(&[("ticket", ticket_of(page).as_str()), ("decision", decision)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        res.headers()["location"].to_str().unwrap().to_owned()
    }

    /// Submits the consent form with `decision` ("approve" or "deny").
    pub async fn consent(
        &self,
        issuer: &str,
        page: &str,
        decision: &str,
        client_prefix: &str,
    ) -> Landing {
        let res = self
            .http
            .post(format!("{issuer}/consent"))
            .form(&[("ticket", ticket_of(page).as_str()), ("decision", decision)])
            .send()
            .await
            .unwrap();
        self.follow(res, client_prefix).await
    }
}

pub fn ticket_of(page: &str) -> String {
    let start = page.find("name=\"ticket\" value=\"").unwrap() + "name=\"ticket\" value=\"".len();
    let end = start + page[start..].find('"').unwrap();
    page[start..end].replace("&amp;", "&")
}

/// A registered client as its software would hold it.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: String,
    pub secret: Option<String>,
    /// What the authorization request sends (a loopback port of its choosing).
    pub redirect_uri: String,
}

impl Client {
    /// Registers a public loopback client (with `extra` metadata merged in).
    pub async fn register(app: &TestApp, tenant: &str, extra: Value) -> Self {
        let mut body = json!({
            "client_name": "Test Agent",
            "redirect_uris": ["http://127.0.0.1/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (status, res) = app.register(tenant, &body).await;
        assert_eq!(status, 201, "{res}");
        Self {
            id: res["client_id"].as_str().unwrap().to_owned(),
            secret: res["client_secret"].as_str().map(str::to_owned),
            redirect_uri: "http://127.0.0.1:49152/cb".into(),
        }
    }

    pub fn prefix(&self) -> &str {
        "http://127.0.0.1:49152/"
    }
}

/// One authorization request's PKCE pair and state.
pub struct Attempt {
    pub verifier: String,
    pub state: String,
    pub url: String,
}

pub fn authorize_url(
    app: &TestApp,
    tenant: &str,
    client: &Client,
    scope: &str,
    login_hint: &str,
) -> Attempt {
    let verifier = dcr_shim::crypto::random_token() + "-pkce";
    let challenge = dcr_shim::crypto::pkce::s256(&verifier);
    let state = dcr_shim::crypto::random_token();
    let mut url = Url::parse(&format!("{}/{tenant}/authorize", app.base)).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.id)
        .append_pair("redirect_uri", &client.redirect_uri)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", &state)
        .append_pair("scope", scope)
        .append_pair("login_hint", login_hint);
    Attempt {
        verifier,
        state,
        url: url.into(),
    }
}

/// Query parameter of a URL.
pub fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Runs authorize → (consent approve) → IdP → callback and returns the shim's code.
pub async fn login(
    app: &TestApp,
    browser: &Browser,
    tenant: &str,
    client: &Client,
    login_hint: &str,
) -> (String, Attempt) {
    login_with_scope(
        app,
        browser,
        tenant,
        client,
        "files.read offline_access",
        login_hint,
    )
    .await
}

/// `login` asking for `scope`.
pub async fn login_with_scope(
    app: &TestApp,
    browser: &Browser,
    tenant: &str,
    client: &Client,
    scope: &str,
    login_hint: &str,
) -> (String, Attempt) {
    let attempt = authorize_url(app, tenant, client, scope, login_hint);
    login_through(app, browser, tenant, client, attempt).await
}

/// The browser's way through `attempt` (consenting when asked) back to the client: its code.
pub async fn login_through(
    app: &TestApp,
    browser: &Browser,
    tenant: &str,
    client: &Client,
    attempt: Attempt,
) -> (String, Attempt) {
    let landing = match browser.go(&attempt.url, client.prefix()).await {
        Landing::Consent(page) => {
            browser
                .consent(&app.issuer(tenant), &page, "approve", client.prefix())
                .await
        }
        other => other,
    };
    let Landing::Client(url) = landing else {
        panic!("login did not reach the client: {landing:?}");
    };
    assert_eq!(
        param(&url, "state").as_deref(),
        Some(attempt.state.as_str()),
        "state carried through"
    );
    assert_eq!(param(&url, "iss"), Some(app.issuer(tenant)), "RFC 9207 iss");
    let code = param(&url, "code").unwrap_or_else(|| panic!("no code in {url}"));
    (code, attempt)
}

/// POSTs to the token endpoint with the client's authentication.
pub async fn token_request(
    app: &TestApp,
    tenant: &str,
    client: &Client,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    fields.push(("client_id", &client.id));
    let mut req = app.http.post(format!("{}/{tenant}/token", app.base));
    if let Some(secret) = &client.secret {
        req = req.basic_auth(&client.id, Some(secret));
        fields.retain(|(k, _)| *k != "client_id");
    }
    let res = req.form(&fields).send().await.unwrap();
    let status = res.status().as_u16();
    assert_eq!(
        res.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    (status, res.json().await.unwrap_or(Value::Null))
}

pub async fn redeem(
    app: &TestApp,
    tenant: &str,
    client: &Client,
    code: &str,
    attempt: &Attempt,
) -> (u16, Value) {
    token_request(
        app,
        tenant,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", &attempt.verifier),
        ],
    )
    .await
}

pub async fn refresh(
    app: &TestApp,
    tenant: &str,
    client: &Client,
    refresh_token: &str,
) -> (u16, Value) {
    token_request(
        app,
        tenant,
        client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// The hidden fields of a form page (the dev IdP's sign-in form), unescaped.
pub fn hidden_fields(page: &str) -> Vec<(String, String)> {
    let unescape = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    page.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|rest| {
            let (name, rest) = rest.split_once('"').unwrap();
            let value = rest
                .split_once("value=\"")
                .unwrap()
                .1
                .split_once('"')
                .unwrap()
                .0;
            (unescape(name), unescape(value))
        })
        .collect()
}

/// A login through the dev IdP's sign-in form as `user`, consenting: the client's tokens.
pub async fn dev_login(
    app: &TestApp,
    tenant: &str,
    client: &Client,
    scope: &str,
    user: &str,
) -> Value {
    let (code, attempt) = dev_code(app, tenant, client, scope, user).await;
    let (status, tokens) = redeem(app, tenant, client, &code, &attempt).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

/// `dev_login` up to the code the client receives, not redeemed.
pub async fn dev_code(
    app: &TestApp,
    tenant: &str,
    client: &Client,
    scope: &str,
    user: &str,
) -> (String, Attempt) {
    let attempt = authorize_url(app, tenant, client, scope, user);
    dev_code_through(app, tenant, client, attempt, user).await
}

/// `dev_code` for an authorization request made already (with parameters of the test's own).
pub async fn dev_code_through(
    app: &TestApp,
    tenant: &str,
    client: &Client,
    attempt: Attempt,
    user: &str,
) -> (String, Attempt) {
    let browser = Browser::new();
    let Landing::Consent(page) = browser.go(&attempt.url, client.prefix()).await else {
        panic!("consent page expected")
    };
    let upstream = browser
        .consent_location(&app.issuer(tenant), &page, "approve")
        .await;
    let Landing::Page(200, form) = browser.go(&upstream, client.prefix()).await else {
        panic!("dev sign-in form expected")
    };
    let mut fields = hidden_fields(&form);
    fields.push(("username".into(), user.into()));
    let location = browser.post_form_location(&upstream, &fields).await;
    let Landing::Client(back) = browser.go(&location, client.prefix()).await else {
        panic!("the callback should reach the client")
    };
    (param(&back, "code").unwrap(), attempt)
}
