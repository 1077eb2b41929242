//! What one source can make the server store or write (issue 22, items 15 and 16): a consent
//! form starts one login, and logins started are bounded per address and per browser.

use serde_json::json;

use crate::browser::{Browser, Client, Landing, authorize_url};
use crate::login::world;

#[tokio::test]
async fn a_consent_form_is_submitted_once() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let browser = Browser::new();
    let attempt = authorize_url(&w.app, "contoso", &client, "files.read", "cy");
    let Landing::Consent(page) = browser.go(&attempt.url, client.prefix()).await else {
        panic!("consent expected");
    };
    let issuer = w.app.issuer("contoso");
    let first = browser.consent_location(&issuer, &page, "approve").await;
    assert!(!first.starts_with(&issuer), "to the IdP: {first}");
    let transactions = |app: &crate::helpers::TestApp| {
        let store = app.state().records().backend().clone();
        async move {
            store
                .scan(b"contoso/txn/", dcr_shim::app::unix_now(), 1000)
                .await
                .unwrap()
                .len()
        }
    };
    let stored = transactions(&w.app).await;
    assert_eq!(stored, 1, "the approval started one login");
    // The same form again, with its cookie: refused, and nothing more is stored.
    let again = browser
        .consent(&issuer, &page, "approve", client.prefix())
        .await;
    let Landing::Page(400, body) = again else {
        panic!("a second submission is refused: {again:?}");
    };
    assert!(body.contains("already submitted"), "{body}");
    assert_eq!(transactions(&w.app).await, stored, "no second transaction");
    w.stop().await;
}

#[tokio::test]
async fn logins_started_from_one_address_are_bounded() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    // A fresh browser (and CSRF cookie) per form, as a flood would: the address's budget
    // (600 a minute by default) still runs out, and the refusal says why.
    let mut refused = None;
    for n in 0..700 {
        let browser = Browser::new();
        let attempt = authorize_url(&w.app, "contoso", &client, "files.read", "cy");
        let Landing::Consent(page) = browser.go(&attempt.url, client.prefix()).await else {
            panic!("consent expected");
        };
        if let Landing::Page(status, body) = browser
            .consent(&w.app.issuer("contoso"), &page, "deny", client.prefix())
            .await
        {
            panic!("a denial is not limited: {status} {body}");
        }
        let Landing::Consent(page) = browser.go(&attempt.url, client.prefix()).await else {
            panic!("consent expected");
        };
        let res = browser
            .consent(&w.app.issuer("contoso"), &page, "approve", client.prefix())
            .await;
        if let Landing::Page(429, body) = res {
            refused = Some((n, body));
            break;
        }
    }
    let (n, body) = refused.expect("the address's budget runs out");
    // The budget, plus what refilled (one every 100 ms) while the loop ran.
    assert!(
        n >= dcr_shim::http::login_limits::DEFAULT_PER_SOURCE_PER_MINUTE as usize,
        "{n}"
    );
    assert!(body.contains("network address"), "{body}");
    w.stop().await;
}
