//! What a client's own update (RFC 7592) may not change behind the operator's or the user's back
//! (issue 22, items 1 and 6): an operator's mapping, and which redirect URIs the user approved.

use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{Browser, Client, Landing, authorize_url};
use crate::login::world;

/// A client registered with `redirect_uris`, and its registration access token.
async fn registered(
    app: &crate::helpers::TestApp,
    redirect_uris: &[&str],
    extra: Value,
) -> (Client, String) {
    let mut body = json!({
        "client_name": "Web Agent",
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, res) = app.register("contoso", &body).await;
    assert_eq!(status, 201, "{res}");
    let client = Client {
        id: res["client_id"].as_str().unwrap().to_owned(),
        secret: None,
        redirect_uri: redirect_uris[0].to_owned(),
    };
    let token = res["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    (client, token)
}

/// The client's own RFC 7592 update.
async fn update(app: &crate::helpers::TestApp, client: &Client, token: &str, body: Value) -> Value {
    let res = app
        .http
        .put(format!("{}/register/{}", app.issuer("contoso"), client.id))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn mapped_app(app: &crate::helpers::TestApp, client: &Client) -> Value {
    let path = format!("/tenants/contoso/clients/{}", client.id);
    let (_, shown) = app.admin_json(Method::GET, &path, None).await;
    shown["client"]["apps"].clone()
}

#[tokio::test]
async fn an_operators_remap_survives_the_clients_own_update() {
    let w = world().await;
    let (client, token) = registered(&w.app, &["http://127.0.0.1/cb"], json!({})).await;
    let path = format!("/tenants/contoso/clients/{}/app", client.id);
    let (status, body) = w
        .app
        .admin_json(Method::PUT, &path, Some(json!({"app": "basic-agents"})))
        .await;
    assert_eq!(status, 200, "{body}");
    let before = mapped_app(&w.app, &client).await;
    assert!(before.to_string().contains("basic-agents"), "{before}");

    // The client names a software_id that a mapping rule sends to another app.
    update(
        &w.app,
        &client,
        &token,
        json!({"client_id": client.id, "client_name": "Web Agent", "redirect_uris": ["http://127.0.0.1/cb"],
               "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none",
               "software_id": "cert-agent"}),
    )
    .await;
    assert_eq!(
        mapped_app(&w.app, &client).await,
        before,
        "the operator's choice is pinned"
    );

    // Without an operator's choice, the rules decide again (as before).
    let (free, free_token) = registered(&w.app, &["http://127.0.0.1/cb"], json!({})).await;
    update(
        &w.app,
        &free,
        &free_token,
        json!({"client_id": free.id, "redirect_uris": ["http://127.0.0.1/cb"],
               "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none",
               "software_id": "cert-agent"}),
    )
    .await;
    assert!(
        mapped_app(&w.app, &free)
            .await
            .to_string()
            .contains("cert-agents")
    );
    w.stop().await;
}

#[tokio::test]
async fn errors_go_only_to_a_redirect_uri_the_browser_approved() {
    let w = world().await;
    let approved = "https://agent.example/cb";
    let other = "https://agent.example/other";
    let (client, token) = registered(&w.app, &[approved, other], json!({})).await;
    let browser = Browser::new();
    let attempt = authorize_url(&w.app, "contoso", &client, "files.read", "cy");
    let Landing::Consent(page) = browser.go(&attempt.url, "https://agent.example/").await else {
        panic!("a new client asks for consent");
    };
    let landing = browser
        .consent(
            &w.app.issuer("contoso"),
            &page,
            "approve",
            "https://agent.example/",
        )
        .await;
    assert!(matches!(landing, Landing::Client(_)), "{landing:?}");

    // A refused request (plain PKCE) for the URI the user approved goes back to it…
    let bad = |redirect_uri: &str| {
        let mut client = Client {
            id: client.id.clone(),
            secret: None,
            redirect_uri: redirect_uri.to_owned(),
        };
        client.redirect_uri = redirect_uri.to_owned();
        authorize_url(&w.app, "contoso", &client, "files.read", "cy")
            .url
            .replace("code_challenge_method=S256", "code_challenge_method=plain")
    };
    let landing = browser.go(&bad(approved), "https://agent.example/").await;
    assert!(
        matches!(&landing, Landing::Client(url) if url.as_str().starts_with(approved)),
        "{landing:?}"
    );
    // …but not to another URI of the same client that the user never saw.
    let landing = browser.go(&bad(other), "https://agent.example/").await;
    assert!(
        matches!(landing, Landing::Page(400, _)),
        "an unapproved redirect URI gets the error on a page: {landing:?}"
    );

    // An update that adds a redirect URI drops the approval: consent again, and no error
    // redirect even to the URI approved before.
    update(
        &w.app,
        &client,
        &token,
        json!({"client_id": client.id, "client_name": "Web Agent",
               "redirect_uris": [approved, other, "https://agent.example/added"],
               "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none"}),
    )
    .await;
    let landing = browser.go(&bad(approved), "https://agent.example/").await;
    assert!(matches!(landing, Landing::Page(400, _)), "{landing:?}");
    let attempt = authorize_url(&w.app, "contoso", &client, "files.read", "cy");
    let landing = browser.go(&attempt.url, "https://agent.example/").await;
    assert!(
        matches!(landing, Landing::Consent(_)),
        "the approval given before the update is gone: {landing:?}"
    );
    w.stop().await;
}
