//! Hostile input at The built-in dev IdP's pages.

use serde_json::json;
use url::Url;

use super::harness::*;
use crate::helpers::spawn_app;

#[tokio::test]
async fn hostile_dev_idp() {
    let app = spawn_app().await;
    let ctx = ctx_for(&app, "alpha");
    let client = public_client(&app, "alpha").await;
    // A real upstream request, as the shim sends it after consent.
    let consent = open_consent(&app, &client).await;
    let res = send(
        &app,
        &form(
            "/alpha/consent",
            format!("ticket={}&decision=approve", enc(&consent.ticket)),
        )
        .cookie(&format!("dcr-csrf={}", consent.csrf)),
    )
    .await;
    assert_eq!(res.status, 303);
    let idp = Url::parse(res.location().unwrap()).unwrap();
    let good: Vec<(String, String)> = idp.query_pairs().into_owned().collect();
    let before = snapshot(&app).await;
    let with = |changes: &[(&str, Option<&str>)]| -> String {
        let mut pairs = good.clone();
        for (k, v) in changes {
            match v {
                Some(v) => pairs
                    .iter_mut()
                    .filter(|(pk, _)| pk == k)
                    .for_each(|p| p.1 = (*v).to_owned()),
                None => pairs.retain(|(pk, _)| pk != k),
            }
        }
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish()
    };
    let g = |name: &str, changes: &[(&str, Option<&str>)]| {
        case(
            format!("dev-idp: GET {name}"),
            get(format!("/alpha/dev-idp/authorize?{}", with(changes))),
            Expect::Page(400),
        )
    };
    let p = |name: &str, changes: &[(&str, Option<&str>)], user: &str| {
        case(
            format!("dev-idp: POST {name}"),
            form(
                "/alpha/dev-idp/authorize",
                format!("{}&username={}", with(changes), enc(user)),
            ),
            Expect::Page(400),
        )
    };
    let mut cases = vec![
        g("no client_id", &[("client_id", None)]),
        g("unknown client_id", &[("client_id", Some("evil"))]),
        g(
            "redirect_uri elsewhere",
            &[("redirect_uri", Some("https://evil.example/cb"))],
        ),
        g(
            "redirect_uri of another tenant",
            &[(
                "redirect_uri",
                Some(&format!("{}/limited/callback", app.base)),
            )],
        ),
        g(
            "redirect_uri with a suffix",
            &[(
                "redirect_uri",
                Some(&format!("{}/alpha/callbackx", app.base)),
            )],
        ),
        g("response_type token", &[("response_type", Some("token"))]),
        g("no code_challenge", &[("code_challenge", None)]),
        g(
            "code_challenge_method plain",
            &[("code_challenge_method", Some("plain"))],
        ),
        g(
            "short code_challenge",
            &[("code_challenge", Some(&CHALLENGE[..42]))],
        ),
        g("no state", &[("state", None)]),
        p(
            "redirect_uri elsewhere",
            &[("redirect_uri", Some("https://evil.example/cb"))],
            "alice",
        ),
        p(
            "javascript redirect_uri",
            &[("redirect_uri", Some("javascript:alert(1)"))],
            "alice",
        ),
        p("empty user name", &[], ""),
        p("65-character user name", &[], &"u".repeat(65)),
        p("user name with markup", &[], "<script>alert(1)</script>"),
        p("user name with a newline", &[], "alice\r\nbob"),
        p("non-ASCII user name", &[], "\u{430}lice"),
        p("no code_challenge", &[("code_challenge", None)], "alice"),
        case(
            "dev-idp: POST JSON body",
            json_post("/alpha/dev-idp/authorize", &json!({"username": "alice"})),
            Expect::Page(400),
        ),
        case(
            "dev-idp: POST oversized form",
            form(
                "/alpha/dev-idp/authorize",
                format!("{}&username=alice&pad={}", with(&[]), "x".repeat(17 * 1024)),
            ),
            Expect::Page(400),
        ),
        case(
            "dev-idp: POST non-UTF-8 form",
            form(
                "/alpha/dev-idp/authorize",
                [with(&[]).as_bytes(), b"&username=al\xffice"].concat(),
            ),
            Expect::Page(400),
        ),
        case(
            "dev-idp: login form at a tenant without a dev IdP",
            get(format!("/beta/dev-idp/authorize?{}", with(&[]))),
            Expect::Page(404),
        ),
        case(
            "dev-idp: login at a tenant without a dev IdP",
            form(
                "/beta/dev-idp/authorize",
                format!("{}&username=alice", with(&[])),
            ),
            Expect::Page(404),
        ),
        case(
            "dev-idp: login form at an unknown tenant",
            get(format!("/nope/dev-idp/authorize?{}", with(&[]))),
            Expect::Page(404),
        ),
        case(
            "dev-idp: jwks at a tenant without a dev IdP",
            get("/beta/dev-idp/jwks"),
            Expect::Json(404, "not_found"),
        ),
        case(
            "dev-idp: jwks at an unknown tenant",
            get("/nope/dev-idp/jwks"),
            Expect::Json(404, "not_found"),
        ),
        case(
            "dev-idp: jwks with a traversal tenant",
            get("/%2e%2e/dev-idp/jwks"),
            Expect::Json(404, "not_found"),
        ),
        case(
            "dev-idp: metadata at a tenant without a dev IdP",
            get("/beta/dev-idp/.well-known/openid-configuration"),
            Expect::Json(404, "not_found"),
        ),
        case(
            "dev-idp: metadata at an uppercase tenant",
            get("/ALPHA/dev-idp/.well-known/openid-configuration"),
            Expect::Json(404, "not_found"),
        ),
        // Over HTTP the token endpoint offers only what an enterprise IdP does for EMA
        // (`dev_idp/enterprise.rs`); the code and refresh grants stay in process.
        case(
            "dev-idp: the code grant is not offered over HTTP",
            form(
                "/alpha/dev-idp/token",
                "grant_type=authorization_code&code=x&client_id=dev",
            ),
            Expect::Json(400, "unsupported_grant_type"),
        ),
        case(
            "dev-idp: refresh is not offered over HTTP",
            form(
                "/alpha/dev-idp/token",
                "grant_type=refresh_token&refresh_token=x&client_id=dev",
            ),
            Expect::Json(400, "unsupported_grant_type"),
        ),
        case(
            "dev-idp: password grant without a client",
            form(
                "/alpha/dev-idp/token",
                "grant_type=password&username=a&scope=openid",
            ),
            Expect::Json(401, "invalid_client"),
        ),
        case(
            "dev-idp: password grant with markup as the user",
            form(
                "/alpha/dev-idp/token",
                "grant_type=password&username=%3Cb%3E&client_id=dev&scope=openid",
            ),
            Expect::Json(400, "invalid_request"),
        ),
        case(
            "dev-idp: password grant without openid",
            form(
                "/alpha/dev-idp/token",
                "grant_type=password&username=a&client_id=dev",
            ),
            Expect::Json(400, "invalid_scope"),
        ),
        case(
            "dev-idp: an ID-JAG for a forged ID token",
            form(
                "/alpha/dev-idp/token",
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid-jag&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token&subject_token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.&audience=x&resource=y&client_id=dev",
            ),
            Expect::Json(400, "invalid_grant"),
        ),
        case(
            "dev-idp: token at a tenant without a dev IdP",
            form(
                "/beta/dev-idp/token",
                "grant_type=password&username=a&client_id=dev&scope=openid",
            ),
            Expect::Json(404, "not_found"),
        ),
    ];
    let mut xss = case(
        "dev-idp: GET markup in state is escaped",
        get(format!(
            "/alpha/dev-idp/authorize?{}",
            with(&[("state", Some("\"><script>alert(1)</script>"))])
        )),
        Expect::Status(200),
    );
    xss.forbid = Some("<script>alert(1)".into());
    cases.push(xss);
    let total = run(&app, &ctx, &cases).await;
    assert_eq!(snapshot(&app).await, before, "nothing stored or changed");
    report("dev-idp", &[("dev-idp", total)]);
    app.stop().await;
}
