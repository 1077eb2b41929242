//! Hostile input at `POST /{tenant}/revoke` (RFC 7009).

use serde_json::json;

use super::harness::*;
use crate::helpers::spawn_app;

#[tokio::test]
async fn hostile_revoke() {
    let app = spawn_app().await;
    let ctx = ctx_for(&app, "alpha");
    let owner = public_client(&app, "alpha").await;
    let stranger = public_client(&app, "alpha").await;
    let web = web_client(&app).await;
    let secret = web.secret.clone().unwrap();
    let (code, verifier) = login_code(&app, &owner).await;
    let rt = redeem_for_refresh_token(&app, &owner, &code, &verifier).await;
    let before = snapshot(&app).await;

    let v = |name: &str, body: String, expect: Expect| {
        case(
            format!("revoke: {name}"),
            form("/alpha/revoke", body),
            expect,
        )
    };
    let good = qs(&[
        ("token", &rt),
        ("client_id", &owner.id),
        ("token_type_hint", "refresh_token"),
    ]);
    let cases = vec![
        case(
            "revoke: JSON body",
            json_post(
                "/alpha/revoke",
                &json!({"token": rt, "client_id": owner.id}),
            ),
            Expect::Json(415, "invalid_request"),
        ),
        case(
            "revoke: no content type",
            post("/alpha/revoke", None, good.clone()),
            Expect::Json(415, "invalid_request"),
        ),
        case(
            "revoke: oversized form",
            form(
                "/alpha/revoke",
                format!("{good}&pad={}", "x".repeat(16 * 1024)),
            ),
            Expect::Json(413, "invalid_request"),
        ),
        case(
            "revoke: non-UTF-8 form",
            form("/alpha/revoke", [good.as_bytes(), b"&x=\xff"].concat()),
            Expect::Json(400, "invalid_request"),
        ),
        v(
            "no token",
            qs(&[("client_id", &owner.id)]),
            Expect::Json(400, "invalid_request"),
        ),
        v(
            "empty token",
            qs(&[("token", ""), ("client_id", &owner.id)]),
            Expect::Json(400, "invalid_request"),
        ),
        v(
            "token repeated",
            format!("{good}&token=x"),
            Expect::Json(400, "invalid_request"),
        ),
        v(
            "client_id repeated",
            format!("{good}&client_id={}", stranger.id),
            Expect::Json(400, "invalid_request"),
        ),
        v(
            "no client_id",
            qs(&[("token", &rt)]),
            Expect::Json(401, "invalid_client"),
        ),
        v(
            "unknown client",
            qs(&[("token", &rt), ("client_id", "nope")]),
            Expect::Json(401, "invalid_client"),
        ),
        v(
            "public client with a secret",
            qs(&[
                ("token", &rt),
                ("client_id", &owner.id),
                ("client_secret", "x"),
            ]),
            Expect::Json(401, "invalid_client"),
        ),
        case(
            "revoke: Basic not base64",
            form("/alpha/revoke", good.clone()).header("Authorization", "Basic %%%"),
            Expect::Json(401, "invalid_client"),
        ),
        case(
            "revoke: Basic with a wrong secret",
            form("/alpha/revoke", qs(&[("token", &rt)]))
                .header("Authorization", basic(&web.id, "wrong")),
            Expect::Json(401, "invalid_client"),
        ),
        case(
            "revoke: Basic and client_secret together",
            form(
                "/alpha/revoke",
                qs(&[("token", &rt), ("client_secret", &secret)]),
            )
            .header("Authorization", basic(&web.id, &secret)),
            Expect::Json(400, "invalid_request"),
        ),
        // Answered with success, but another client's token is left alone (RFC 7009 §2.1).
        v(
            "another client's refresh token",
            qs(&[("token", &rt), ("client_id", &stranger.id)]),
            Expect::Status(200),
        ),
        case(
            "revoke: another (confidential) client's refresh token",
            form("/alpha/revoke", qs(&[("token", &rt)]))
                .header("Authorization", basic(&web.id, &secret)),
            Expect::Status(200),
        ),
        v(
            "unknown token",
            qs(&[("token", "nope"), ("client_id", &owner.id)]),
            Expect::Status(200),
        ),
        v(
            "huge token",
            qs(&[("token", &"t".repeat(15_000)), ("client_id", &owner.id)]),
            Expect::Status(200),
        ),
        v(
            "token with a NUL",
            format!("token=a%00b&client_id={}", owner.id),
            Expect::Status(200),
        ),
        v(
            "the authorization code as token",
            qs(&[("token", &code), ("client_id", &owner.id)]),
            Expect::Status(200),
        ),
        case(
            "revoke: unknown tenant",
            form("/nope/revoke", good.clone()),
            Expect::Json(404, "not_found"),
        ),
        case(
            "revoke: GET",
            get("/alpha/revoke"),
            Expect::Json(405, "invalid_request"),
        ),
    ];
    let total = run(&app, &ctx, &cases).await;
    assert_eq!(snapshot(&app).await, before, "nothing revoked or changed");
    // And the refresh token still works for its owner.
    let res = send(
        &app,
        &form(
            "/alpha/token",
            qs(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", &owner.id),
            ]),
        ),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    report("revoke", &[("revoke", total)]);
    app.stop().await;
}
