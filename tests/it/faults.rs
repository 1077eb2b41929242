//! Upstream faults: the IdP down, slow, answering 500, garbage or no access token, or naming the
//! wrong issuer. The client gets `temporarily_unavailable` or `server_error` quickly (never a
//! hang), nothing is left half-used, and the refresh family survives an IdP outage.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::browser::{Browser, Client, Landing, authorize_url, login, param, redeem, refresh};
use crate::fake_entra::Fault;
use crate::login::world;

/// Runs authorize → consent → IdP → callback and returns the error the client receives.
async fn callback_error(w: &crate::login::World, client: &Client) -> (String, String) {
    let browser = Browser::new();
    let attempt = authorize_url(&w.app, "contoso", client, "files.read", "quinn");
    let Landing::Consent(page) = browser.go(&attempt.url, client.prefix()).await else {
        panic!("consent expected")
    };
    let started = Instant::now();
    let landing = browser
        .consent(&w.app.issuer("contoso"), &page, "approve", client.prefix())
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no hang: {:?}",
        started.elapsed()
    );
    let Landing::Client(url) = landing else {
        panic!("the client must get an OAuth error: {landing:?}")
    };
    assert_eq!(
        param(&url, "state").as_deref(),
        Some(attempt.state.as_str())
    );
    assert_eq!(param(&url, "iss"), Some(w.app.issuer("contoso")));
    (
        param(&url, "error").unwrap(),
        param(&url, "error_description").unwrap(),
    )
}

#[tokio::test]
async fn token_endpoint_faults_reach_the_client_as_oauth_errors() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let cases = [
        (Fault::Status500Html, "temporarily_unavailable"),
        (Fault::Garbage, "temporarily_unavailable"),
        (Fault::NoAccessToken, "temporarily_unavailable"),
        (Fault::Slow, "temporarily_unavailable"),
    ];
    for (fault, expected) in cases {
        w.idp.state.lock().unwrap().fault = Some(fault);
        let (error, description) = callback_error(&w, &client).await;
        assert_eq!(error, expected, "{fault:?}: {description}");
    }
    // Once the IdP behaves again, the same client logs in: nothing was left half-used.
    w.idp.state.lock().unwrap().fault = None;
    let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &client, "quinn").await;
    let (status, _) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    assert_eq!(status, 200);
    eprintln!("fault cases (callback): {}", cases.len());
    w.stop().await;
}

#[tokio::test]
async fn refresh_during_an_outage_fails_softly_and_keeps_the_family() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &client, "ruth").await;
    let (_, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    for fault in [
        Fault::Status500Html,
        Fault::Garbage,
        Fault::NoAccessToken,
        Fault::Slow,
    ] {
        w.idp.state.lock().unwrap().fault = Some(fault);
        let started = Instant::now();
        let (status, body) = refresh(&w.app, "contoso", &client, &rt).await;
        assert!(started.elapsed() < Duration::from_secs(5), "no hang");
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("temporarily_unavailable")),
            "{fault:?}: {body}"
        );
    }
    w.idp.state.lock().unwrap().fault = None;
    let (status, body) = refresh(&w.app, "contoso", &client, &rt).await;
    assert_eq!(status, 200, "the refresh token survived the outage: {body}");
    w.stop().await;
}

#[tokio::test]
async fn the_idp_down_at_callback_and_at_refresh() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &client, "sam").await;
    let (_, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    // Consent, then the IdP goes away before the callback's code exchange.
    let browser = Browser::new();
    let attempt = authorize_url(&w.app, "contoso", &client, "files.read", "sam");
    let Landing::Consent(page) = browser.go(&attempt.url, client.prefix()).await else {
        panic!()
    };
    let upstream = browser
        .consent_location(&w.app.issuer("contoso"), &page, "approve")
        .await;
    let idp_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&upstream)
        .send()
        .await
        .unwrap();
    let callback = idp_redirect.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    w.idp.stop().await;
    let Landing::Client(url) = browser.go(&callback, client.prefix()).await else {
        panic!()
    };
    assert_eq!(
        param(&url, "error").as_deref(),
        Some("temporarily_unavailable")
    );
    // The transaction was used once; a replay of the callback is a page, not a second attempt.
    let Landing::Page(400, _) = browser.go(&callback, client.prefix()).await else {
        panic!("replayed callback")
    };
    let (status, body) = refresh(
        &w.app,
        "contoso",
        &client,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    w.app.stop().await;
}

#[tokio::test]
async fn an_upstream_with_the_wrong_issuer_is_not_ready_and_logins_fail_softly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fed"), "x").unwrap();
    let idp = crate::fake_entra::start(dir.path().join("fed")).await;
    let authority = idp.authority.clone();
    let app = crate::helpers::spawn_app_with_tenants(move |t| {
        std::fs::write(
            t.join("wrong.toml"),
            format!(
                r#"[upstream]
kind = "entra"
directory_id = "99999999-9999-9999-9999-999999999999"
authority = "{authority}"
[[apps]]
name = "a"
client_id = "aaaaaaaa-0000-0000-0000-00000000000a"
credential = {{ kind = "none" }}
[[resources]]
uri = "https://mcp.example/files"
scopes = [{{ name = "files.read", upstream = "api://mcp-files/files.read" }}]
"#
            ),
        )
        .unwrap();
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let admin = app.admin_base().replace("/admin/v1", "");
    let ready: serde_json::Value = reqwest::get(format!("{admin}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["unreachable_upstreams"][0]["tenant"], "wrong");
    assert!(
        ready["unreachable_upstreams"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("names issuer"),
        "{ready}"
    );
    let client = Client::register(&app, "wrong", json!({})).await;
    let browser = Browser::new();
    let attempt = authorize_url(&app, "wrong", &client, "files.read", "tom");
    let Landing::Consent(page) = browser.go(&attempt.url, client.prefix()).await else {
        panic!()
    };
    let Landing::Client(url) = browser
        .consent(&app.issuer("wrong"), &page, "approve", client.prefix())
        .await
    else {
        panic!()
    };
    assert_eq!(
        param(&url, "error").as_deref(),
        Some("temporarily_unavailable")
    );
    app.stop().await;
    idp.stop().await;
}

/// A policy that changed since the login (MFA now required, consent withdrawn, the user
/// unassigned) refuses the refresh at Entra. At the token endpoint the client must get
/// `invalid_grant` (RFC 6749 §5.2), which makes it log in again; `interaction_required` and the
/// like mean nothing there. The AADSTS code and the advice stay in the description.
#[tokio::test]
async fn an_upstream_refusal_at_refresh_is_invalid_grant_with_the_idps_code() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let cases = [
        (
            "invalid_grant",
            "AADSTS50076: Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access the resource.",
        ),
        (
            "invalid_grant",
            "AADSTS65001: The user or administrator has not consented to use the application.",
        ),
        (
            "interaction_required",
            "AADSTS50079: Due to a configuration change made by your administrator, you must enroll in multi-factor authentication.",
        ),
        (
            "invalid_grant",
            "AADSTS50105: The signed in user is not assigned to a role for the application.",
        ),
        (
            "invalid_grant",
            "AADSTS53003: Access has been blocked by Conditional Access policies.",
        ),
    ];
    for (error, description) in cases {
        w.idp.state.lock().unwrap().fault = None;
        let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &client, "vic").await;
        let (_, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
        let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
        w.idp.state.lock().unwrap().fault = Some(Fault::RefreshRefused(error, description));
        let (status, body) = refresh(&w.app, "contoso", &client, &rt).await;
        let aadsts = description.split(':').next().unwrap();
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{aadsts}: {body}"
        );
        assert!(
            body["error_description"].as_str().unwrap().contains(aadsts),
            "{aadsts}: {body}"
        );
    }
    w.stop().await;
}
