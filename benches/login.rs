//! A complete login through dcr-shim versus the same login directly at the same upstream, in
//! one run. The upstream is the in-process Entra-like IdP of the tests (`tests/it/fake_entra.rs`).
//!
//!   cargo bench --bench login             # 200 logins each way
//!   cargo bench --bench login -- --smoke  # 3
//!
//! Through the shim: metadata → registration → authorize → consent → IdP → callback → token →
//! refresh, with a fresh browser (so the consent page is shown) per login.
//! Directly: IdP discovery → authorize → token → refresh, with the IdP's static client.

#[path = "../tests/it/browser.rs"]
#[allow(dead_code)]
mod browser;
#[path = "../tests/it/fake_entra.rs"]
#[allow(dead_code)]
mod fake_entra;
#[path = "../tests/it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use browser::{Browser, Client, Landing, authorize_url, param, redeem, refresh};
use fake_entra::{APP_SECRET, DIRECTORY, SECRET_APP};
use serde_json::{Value, json};

#[derive(Default)]
struct Steps(Vec<(&'static str, Vec<Duration>)>);

impl Steps {
    fn add(&mut self, step: &'static str, d: Duration) {
        match self.0.iter_mut().find(|(s, _)| *s == step) {
            Some((_, v)) => v.push(d),
            None => self.0.push((step, vec![d])),
        }
    }

    fn p(&self, step: &str, q: f64) -> Duration {
        let mut v = self
            .0
            .iter()
            .find(|(s, _)| *s == step)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        v.sort();
        if v.is_empty() {
            Duration::ZERO
        } else {
            v[((v.len() - 1) as f64 * q).round() as usize]
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

async fn timed<T>(
    steps: &mut Steps,
    step: &'static str,
    f: impl std::future::Future<Output = T>,
) -> T {
    let t = Instant::now();
    let out = f.await;
    steps.add(step, t.elapsed());
    out
}

#[tokio::main]
async fn main() {
    let n = if std::env::args().any(|a| a == "--smoke") {
        3
    } else {
        200
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), APP_SECRET).unwrap();
    std::fs::write(dir.path().join("fed"), "unused").unwrap();
    let idp = fake_entra::start(dir.path().join("fed")).await;
    let tenant = format!(
        r#"[upstream]
kind = "entra"
directory_id = "{DIRECTORY}"
authority = "{}"
[[apps]]
name = "agents"
client_id = "{SECRET_APP}"
credential = {{ kind = "client_secret", secret_file = {:?}, method = "post" }}
[[resources]]
uri = "https://mcp.example/files"
scopes = [{{ name = "files.read", upstream = "api://mcp-files/files.read" }}]
[registration]
registrations_per_minute = 100000
"#,
        idp.authority,
        dir.path().join("secret").display().to_string()
    );
    let app =
        helpers::spawn_app_with_tenants(|t| std::fs::write(t.join("bench.toml"), tenant).unwrap())
            .await;
    app.wait_ready().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let mut shim = Steps::default();
    let mut direct = Steps::default();
    for _ in 0..n {
        // Through the shim.
        let total = Instant::now();
        timed(&mut shim, "metadata", async {
            let r = http
                .get(format!(
                    "{}/.well-known/oauth-authorization-server/bench",
                    app.base
                ))
                .send()
                .await
                .unwrap();
            r.bytes().await.unwrap();
        })
        .await;
        let client = timed(
            &mut shim,
            "register",
            Client::register(&app, "bench", json!({})),
        )
        .await;
        let browser = Browser::new();
        let attempt = authorize_url(&app, "bench", &client, "files.read offline_access", "alice");
        let landing = timed(&mut shim, "authorize + consent + IdP + callback", async {
            let Landing::Consent(page) = browser.go(&attempt.url, client.prefix()).await else {
                panic!("no consent page")
            };
            browser
                .consent(
                    &format!("{}/bench", app.base),
                    &page,
                    "approve",
                    client.prefix(),
                )
                .await
        })
        .await;
        let Landing::Client(url) = landing else {
            panic!("{landing:?}")
        };
        let code = param(&url, "code").unwrap();
        let (status, tokens) = timed(
            &mut shim,
            "token",
            redeem(&app, "bench", &client, &code, &attempt),
        )
        .await;
        assert_eq!(status, 200);
        let (status, _) = timed(
            &mut shim,
            "refresh",
            refresh(
                &app,
                "bench",
                &client,
                tokens["refresh_token"].as_str().unwrap(),
            ),
        )
        .await;
        assert_eq!(status, 200);
        shim.add("complete login", total.elapsed());

        // Directly at the IdP with its static client.
        let total = Instant::now();
        let base = format!("{}/{DIRECTORY}", idp.authority);
        timed(&mut direct, "metadata", async {
            let r = http
                .get(format!("{base}/v2.0/.well-known/openid-configuration"))
                .send()
                .await
                .unwrap();
            r.bytes().await.unwrap();
        })
        .await;
        direct.add("register", Duration::ZERO);
        let verifier = dcr_shim::oauth::registration::random_token();
        let redirect = "http://127.0.0.1:49152/callback";
        let code = timed(&mut direct, "authorize + consent + IdP + callback", async {
            let mut url = url::Url::parse(&format!("{base}/oauth2/v2.0/authorize")).unwrap();
            url.query_pairs_mut()
                .append_pair("response_type", "code")
                .append_pair("client_id", SECRET_APP)
                .append_pair("redirect_uri", redirect)
                .append_pair("scope", "openid api://mcp-files/files.read offline_access")
                .append_pair("state", "s")
                .append_pair("nonce", "n")
                .append_pair("code_challenge", &dcr_shim::oauth::pkce::s256(&verifier))
                .append_pair("code_challenge_method", "S256")
                .append_pair("login_hint", "alice");
            let r = http.get(url.as_str()).send().await.unwrap();
            let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
            param(&location, "code").unwrap()
        })
        .await;
        let token = |form: HashMap<&'static str, String>| {
            let http = http.clone();
            let url = format!("{base}/oauth2/v2.0/token");
            async move {
                http.post(url)
                    .form(&form)
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            }
        };
        let tokens = timed(
            &mut direct,
            "token",
            token(HashMap::from([
                ("grant_type", "authorization_code".to_owned()),
                ("code", code),
                ("redirect_uri", redirect.to_owned()),
                ("code_verifier", verifier.clone()),
                ("client_id", SECRET_APP.to_owned()),
                ("client_secret", APP_SECRET.to_owned()),
            ])),
        )
        .await;
        let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
        timed(
            &mut direct,
            "refresh",
            token(HashMap::from([
                ("grant_type", "refresh_token".to_owned()),
                ("refresh_token", rt),
                ("client_id", SECRET_APP.to_owned()),
                ("client_secret", APP_SECRET.to_owned()),
            ])),
        )
        .await;
        direct.add("complete login", total.elapsed());
    }
    app.stop().await;
    idp.stop().await;

    println!("{n} logins each way, in one run (ms; p50 / p95)\n");
    println!("| step | through dcr-shim | directly at the IdP | ratio (p50) |");
    println!("|---|---|---|---|");
    for step in [
        "metadata",
        "register",
        "authorize + consent + IdP + callback",
        "token",
        "refresh",
        "complete login",
    ] {
        let (s50, s95, d50, d95) = (
            shim.p(step, 0.5),
            shim.p(step, 0.95),
            direct.p(step, 0.5),
            direct.p(step, 0.95),
        );
        let ratio = if d50.is_zero() {
            "–".to_owned()
        } else {
            format!("{:.2}×", s50.as_secs_f64() / d50.as_secs_f64())
        };
        println!(
            "| {step} | {} / {} | {} / {} | {ratio} |",
            ms(s50),
            ms(s95),
            ms(d50),
            ms(d95)
        );
    }
}
