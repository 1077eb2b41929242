//! Hostile input at `POST /{tenant}/token`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use dcr_shim::app::unix_now;
use dcr_shim::oauth::ErrorCode;
use serde_json::json;

use super::harness::*;
use crate::helpers::spawn_app;

#[tokio::test]
async fn hostile_token() {
    let app = spawn_app().await;
    let ctx = ctx_for(&app, "alpha");
    let owner = public_client(&app, "alpha").await;
    let stranger = public_client(&app, "alpha").await;
    let web = web_client(&app).await;
    let secret = web.secret.clone().unwrap();
    let (code, verifier) = login_code(&app, &owner).await;
    let before = snapshot(&app).await;

    let redeem = |extra: &[(&str, &str)]| -> String {
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", LOOPBACK),
            ("code_verifier", verifier.as_str()),
            ("client_id", owner.id.as_str()),
        ];
        for (k, v) in extra {
            if let Some(p) = pairs.iter_mut().find(|(pk, _)| pk == k) {
                p.1 = v;
            } else {
                pairs.push((k, v));
            }
        }
        pairs.retain(|(_, v)| *v != "<drop>");
        qs(&pairs)
    };
    let t = |name: &str, body: String, status: u16, error: &'static str| {
        case(
            format!("token: {name}"),
            form("/alpha/token", body),
            Expect::Json(status, error),
        )
    };
    let ir = |name: &str, body: String| t(name, body, 400, "invalid_request");
    let ig = |name: &str, body: String| t(name, body, 400, "invalid_grant");
    let ic = |name: &str, body: String| t(name, body, 401, "invalid_client");
    let ug = |name: &str, grant: &str| {
        t(
            &format!("grant_type {name}"),
            qs(&[("grant_type", grant), ("client_id", &owner.id)]),
            400,
            "unsupported_grant_type",
        )
    };
    // Appended once to a body that has it, twice to one that has not: always repeated.
    let dup = |p: &str, v: &str| {
        let base = redeem(&[]);
        let once = format!("&{p}={}", enc(v));
        let has = base.split('&').any(|kv| kv.starts_with(&format!("{p}=")));
        let body = if has {
            format!("{base}{once}")
        } else {
            format!("{base}{once}{once}")
        };
        ir(&format!("{p} repeated"), body)
    };
    let good = redeem(&[]);
    let with_basic = |name: &str, body: String, auth: &str, status: u16, error: &'static str| {
        case(
            format!("token: {name}"),
            form("/alpha/token", body).header("Authorization", auth),
            Expect::Json(status, error),
        )
    };
    let web_body = qs(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", WEB_CB),
        ("code_verifier", &verifier),
    ]);
    let long_verifier = "a".repeat(129);
    let cases = vec![
        // Transport.
        case(
            "token: JSON body",
            post(
                "/alpha/token",
                Some("application/json"),
                json!({"grant_type": "authorization_code"}).to_string(),
            ),
            Expect::Json(415, "invalid_request"),
        ),
        case(
            "token: no content type",
            post("/alpha/token", None, good.clone()),
            Expect::Json(415, "invalid_request"),
        ),
        case(
            "token: multipart body",
            post(
                "/alpha/token",
                Some("multipart/form-data; boundary=x"),
                "--x--",
            ),
            Expect::Json(415, "invalid_request"),
        ),
        case(
            "token: text/plain body",
            post("/alpha/token", Some("text/plain"), good.clone()),
            Expect::Json(415, "invalid_request"),
        ),
        case(
            "token: oversized form",
            form(
                "/alpha/token",
                format!("{good}&pad={}", "x".repeat(16 * 1024)),
            ),
            Expect::Json(413, "invalid_request"),
        ),
        case(
            "token: oversized form sent chunked",
            chunked(
                "/alpha/token",
                "application/x-www-form-urlencoded",
                format!("{good}&pad={}", "x".repeat(40 * 1024)).as_bytes(),
            ),
            Expect::Json(413, "invalid_request"),
        ),
        case(
            "token: non-UTF-8 form",
            form("/alpha/token", [good.as_bytes(), b"&x=\xff"].concat()),
            Expect::Json(400, "invalid_request"),
        ),
        ir("empty body", String::new()),
        ir("garbage form", "%%%&&&===".into()),
        ir("no grant_type", redeem(&[("grant_type", "<drop>")])),
        ir("empty grant_type", redeem(&[("grant_type", "")])),
        // Unsupported grants.
        ug("password", "password"),
        ug("client_credentials", "client_credentials"),
        ug("implicit", "implicit"),
        ug(
            "device_code",
            "urn:ietf:params:oauth:grant-type:device_code",
        ),
        ug("jwt-bearer", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ug(
            "token-exchange",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ug("in another case", "Authorization_Code"),
        ug("huge", &"g".repeat(10_000)),
        // Every repeated parameter.
        dup("grant_type", "authorization_code"),
        dup("code", &code),
        dup("code_verifier", &verifier),
        dup("redirect_uri", LOOPBACK),
        dup("client_id", &owner.id),
        dup("resource", "https://mcp.example.com/files"),
        dup("scope", "files.read"),
        ir(
            "client_secret repeated",
            format!("{}&client_secret=a&client_secret=a", redeem(&[])),
        ),
        // Client authentication.
        ic("no client_id", redeem(&[("client_id", "<drop>")])),
        ic(
            "unknown client_id",
            redeem(&[("client_id", "00000000-0000-0000-0000-000000000000")]),
        ),
        ic(
            "huge client_id",
            redeem(&[("client_id", &"c".repeat(10_000))]),
        ),
        ic(
            "client_id with NUL",
            format!("{}&client_id=a%00b", redeem(&[("client_id", "<drop>")])),
        ),
        ic(
            "public client sending a client_secret",
            redeem(&[("client_secret", "guess")]),
        ),
        // Some clients send HTTP Basic with an empty password for a public client: that is
        // client_id alone, so this unknown code is the error, not the authentication.
        with_basic(
            "public client sending Basic with an empty password",
            redeem(&[("client_id", "<drop>"), ("code", "unknown-code")]),
            &basic(&owner.id, ""),
            400,
            "invalid_grant",
        ),
        with_basic(
            "public client sending Basic with a secret",
            redeem(&[("client_id", "<drop>")]),
            &basic(&owner.id, "guess"),
            401,
            "invalid_client",
        ),
        with_basic(
            "Basic not base64",
            good.clone(),
            "Basic !!!not-base64!!!",
            401,
            "invalid_client",
        ),
        with_basic(
            "Basic without a colon",
            good.clone(),
            &format!("Basic {}", STANDARD.encode(&owner.id)),
            401,
            "invalid_client",
        ),
        with_basic(
            "Basic with non-UTF-8 bytes",
            good.clone(),
            &format!("Basic {}", STANDARD.encode(b"\xff\xfe:\xfd")),
            401,
            "invalid_client",
        ),
        with_basic(
            "Basic with no credentials",
            good.clone(),
            "Basic ",
            401,
            "invalid_client",
        ),
        with_basic(
            "Bearer instead of Basic",
            good.clone(),
            "Bearer abc",
            401,
            "invalid_client",
        ),
        with_basic(
            "Basic with a wrong secret",
            web_body.clone(),
            &basic(&web.id, "wrong"),
            401,
            "invalid_client",
        ),
        with_basic(
            "Basic with the secret one character off",
            web_body.clone(),
            &basic(&web.id, &format!("{}x", &secret[..secret.len() - 1])),
            401,
            "invalid_client",
        ),
        with_basic(
            "Basic with an empty secret",
            web_body.clone(),
            &basic(&web.id, ""),
            401,
            "invalid_client",
        ),
        with_basic(
            "Basic and client_secret together",
            format!("{web_body}&client_secret={}", enc(&secret)),
            &basic(&web.id, &secret),
            400,
            "invalid_request",
        ),
        with_basic(
            "Basic and a different client_id",
            format!("{web_body}&client_id={}", owner.id),
            &basic(&web.id, &secret),
            400,
            "invalid_request",
        ),
        ic(
            "confidential client without a secret",
            format!("{web_body}&client_id={}", web.id),
        ),
        ic(
            "confidential client with a wrong client_secret",
            format!("{web_body}&client_id={}&client_secret=wrong", web.id),
        ),
        // The authorization code.
        ir("no code", redeem(&[("code", "<drop>")])),
        ig("unknown code", redeem(&[("code", "not-a-code")])),
        ig("huge code", redeem(&[("code", &"c".repeat(15_000))])),
        ig(
            "code with a NUL",
            format!("{}&code=a%00b", redeem(&[("code", "<drop>")])),
        ),
        ig(
            "code used by another client",
            redeem(&[("client_id", &stranger.id)]),
        ),
        with_basic(
            "code used by another (confidential) client",
            web_body.clone(),
            &basic(&web.id, &secret),
            400,
            "invalid_grant",
        ),
        ig(
            "redirect_uri one character longer",
            redeem(&[("redirect_uri", "http://127.0.0.1:49152/cbx")]),
        ),
        ig(
            "redirect_uri with another port",
            redeem(&[("redirect_uri", "http://127.0.0.1:49153/cb")]),
        ),
        ig(
            "redirect_uri with a trailing slash",
            redeem(&[("redirect_uri", "http://127.0.0.1:49152/cb/")]),
        ),
        ig(
            "redirect_uri evil",
            redeem(&[("redirect_uri", "https://evil.example/cb")]),
        ),
        ir("no redirect_uri", redeem(&[("redirect_uri", "<drop>")])),
        t(
            "another resource",
            redeem(&[("resource", "https://evil.example/api")]),
            400,
            "invalid_target",
        ),
        ir("no code_verifier", redeem(&[("code_verifier", "<drop>")])),
        ig(
            "wrong code_verifier",
            redeem(&[("code_verifier", &"v".repeat(43))]),
        ),
        ig(
            "code_verifier too short",
            redeem(&[("code_verifier", &verifier[..42])]),
        ),
        ig(
            "code_verifier too long",
            redeem(&[("code_verifier", &long_verifier)]),
        ),
        ig(
            "code_verifier invalid charset",
            redeem(&[(
                "code_verifier",
                &format!("{}+", &verifier[..verifier.len() - 1]),
            )]),
        ),
        ig(
            "code_verifier is the challenge",
            redeem(&[("code_verifier", CHALLENGE)]),
        ),
        ig(
            "code_verifier with a space",
            redeem(&[(
                "code_verifier",
                &format!("{} ", &verifier[..verifier.len() - 1]),
            )]),
        ),
        ig(
            "code_verifier huge",
            redeem(&[("code_verifier", &"v".repeat(12_000))]),
        ),
        // Refresh with nothing to refresh.
        ir(
            "refresh without refresh_token",
            qs(&[("grant_type", "refresh_token"), ("client_id", &owner.id)]),
        ),
        ig(
            "refresh with an unknown token",
            qs(&[
                ("grant_type", "refresh_token"),
                ("client_id", &owner.id),
                ("refresh_token", "nope"),
            ]),
        ),
        ig(
            "refresh with the authorization code",
            qs(&[
                ("grant_type", "refresh_token"),
                ("client_id", &owner.id),
                ("refresh_token", &code),
            ]),
        ),
        case(
            "token: unknown tenant",
            form("/nope/token", good.clone()),
            Expect::Json(404, "not_found"),
        ),
    ];
    let mut total = run(&app, &ctx, &cases).await;
    assert_eq!(
        snapshot(&app).await,
        before,
        "no failed request burned the code or stored anything"
    );

    // Expired for the protocol clock, not burned: a request at now + 120 s is refused ...
    assert_eq!(
        token_at(&app, &good, unix_now() + 120).await.unwrap_err(),
        ErrorCode::InvalidGrant,
        "token: code after expiry"
    );
    total += 1;
    assert_eq!(snapshot(&app).await, before);

    // ... and the owner redeems it now.
    let res = send(&app, &form("/alpha/token", good.clone())).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let tokens = res.json();
    let rt1 = tokens["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();

    // Refresh token abuse that must not change it.
    let rt_before = snapshot(&app).await;
    let r = |extra: &[(&str, &str)]| {
        let mut pairs = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", rt1.as_str()),
            ("client_id", owner.id.as_str()),
        ];
        pairs.extend_from_slice(extra);
        qs(&pairs)
    };
    let refresh_cases = vec![
        ig(
            "refresh token used by another client",
            qs(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt1),
                ("client_id", &stranger.id),
            ]),
        ),
        // A refresh asking for more than the family has gets the family's scopes (RFC 6749
        // §6), not an error: `login::a_refresh_grants_at_most_the_familys_scopes`.
        t(
            "refresh for another resource",
            r(&[("resource", "https://evil.example/api")]),
            400,
            "invalid_target",
        ),
        ir("refresh_token repeated", r(&[("refresh_token", &rt1)])),
        ic(
            "refresh by a public client with a secret",
            r(&[("client_secret", "x")]),
        ),
        ig(
            "refresh token one character off",
            qs(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &format!("{}x", &rt1[..rt1.len() - 1])),
                ("client_id", &owner.id),
            ]),
        ),
    ];
    total += run(&app, &ctx, &refresh_cases).await;
    assert_eq!(
        snapshot(&app).await,
        rt_before,
        "refused refreshes changed nothing"
    );

    // The code replayed: invalid_grant, and the refresh token it produced is revoked.
    let replay = vec![
        ig("code replayed by its owner", good.clone()),
        ig(
            "code replayed by another client",
            redeem(&[("client_id", &stranger.id)]),
        ),
    ];
    total += run(&app, &ctx, &replay).await;
    let res = send(&app, &form("/alpha/token", r(&[]))).await;
    assert_eq!(
        (res.status, res.json()["error"].as_str()),
        (400, Some("invalid_grant")),
        "token: refresh after the code replay"
    );
    total += 1;

    // Grace window: a fresh login, rotate once, retry within the window, then reuse after it.
    let a = refresh_token_for(&app, &owner).await;
    let refresh_body = |rt: &str| {
        qs(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", &owner.id),
        ])
    };
    let first = send(&app, &form("/alpha/token", refresh_body(&a))).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let b = first.json()["refresh_token"].as_str().unwrap().to_owned();
    let retry = send(&app, &form("/alpha/token", refresh_body(&a))).await;
    assert_eq!(
        retry.status, 200,
        "token: refresh replayed inside the grace window"
    );
    assert_eq!(
        retry.json()["refresh_token"].as_str(),
        Some(b.as_str()),
        "the same successor"
    );
    total += 1;
    let later = unix_now() + dcr_shim::oauth::token::refresh::REFRESH_GRACE_SECONDS + 1;
    assert_eq!(
        token_at(&app, &refresh_body(&a), later).await.unwrap_err(),
        ErrorCode::InvalidGrant,
        "token: refresh replayed after the grace window"
    );
    total += 1;
    let res = send(&app, &form("/alpha/token", refresh_body(&b))).await;
    assert_eq!(
        (res.status, res.json()["error"].as_str()),
        (400, Some("invalid_grant")),
        "token: successor after the family was revoked"
    );
    total += 1;
    report("token", &[("token", total)]);
    app.stop().await;
}
