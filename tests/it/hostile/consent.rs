//! Hostile input at `POST /{tenant}/consent`.

use dcr_shim::app::unix_now;
use serde_json::json;

use super::harness::*;
use crate::helpers::spawn_app;

#[tokio::test]
async fn hostile_consent() {
    let app = spawn_app().await;
    let ctx = ctx_for(&app, "alpha");
    let client = public_client(&app, "alpha").await;
    let mine = open_consent(&app, &client).await;
    let other = open_consent(&app, &client).await;
    assert_ne!(mine.csrf, other.csrf, "two browsers, two CSRF cookies");
    let limited_client = public_client(&app, "limited").await;
    let before = snapshot(&app).await;

    let body = |ticket: &str, decision: &str| format!("ticket={}&decision={decision}", enc(ticket));
    let my_cookie = format!("dcr-csrf={}", mine.csrf);
    let c = |name: &str, req: Req| case(format!("consent: {name}"), req, Expect::Page(400));
    let mut tampered = mine.ticket.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let mut last = mine.ticket.clone();
    let tail = last.pop().unwrap();
    last.push(if tail == 'A' { 'B' } else { 'A' });
    let cases = vec![
        c(
            "approve without the CSRF cookie",
            form("/alpha/consent", body(&mine.ticket, "approve")),
        ),
        c(
            "deny without the CSRF cookie",
            form("/alpha/consent", body(&mine.ticket, "deny")),
        ),
        c(
            "another browser's CSRF cookie",
            form("/alpha/consent", body(&mine.ticket, "approve"))
                .cookie(&format!("dcr-csrf={}", other.csrf)),
        ),
        c(
            "another request's ticket",
            form("/alpha/consent", body(&other.ticket, "approve")).cookie(&my_cookie),
        ),
        c(
            "empty CSRF cookie",
            form("/alpha/consent", body(&mine.ticket, "approve")).cookie("dcr-csrf="),
        ),
        c(
            "garbage CSRF cookie",
            form("/alpha/consent", body(&mine.ticket, "approve")).cookie("dcr-csrf=%FF%00<>"),
        ),
        c(
            "tampered ticket (middle)",
            form("/alpha/consent", body(&tampered, "approve")).cookie(&my_cookie),
        ),
        c(
            "tampered ticket (last character)",
            form("/alpha/consent", body(&last, "approve")).cookie(&my_cookie),
        ),
        c(
            "truncated ticket",
            form(
                "/alpha/consent",
                body(&mine.ticket[..mine.ticket.len() - 5], "approve"),
            )
            .cookie(&my_cookie),
        ),
        c(
            "ticket with appended data",
            form(
                "/alpha/consent",
                body(&format!("{}.x", mine.ticket), "approve"),
            )
            .cookie(&my_cookie),
        ),
        c(
            "empty ticket",
            form("/alpha/consent", "ticket=&decision=approve").cookie(&my_cookie),
        ),
        c(
            "no ticket",
            form("/alpha/consent", "decision=approve").cookie(&my_cookie),
        ),
        c(
            "huge ticket",
            form("/alpha/consent", body(&"A".repeat(30_000), "approve")).cookie(&my_cookie),
        ),
        c(
            "ticket repeated",
            form(
                "/alpha/consent",
                format!(
                    "{}&ticket={}",
                    body(&mine.ticket, "approve"),
                    enc(&mine.ticket)
                ),
            )
            .cookie(&my_cookie),
        ),
        c(
            "decision repeated",
            form(
                "/alpha/consent",
                format!("{}&decision=deny", body(&mine.ticket, "approve")),
            )
            .cookie(&my_cookie),
        ),
        c(
            "no decision",
            form("/alpha/consent", format!("ticket={}", enc(&mine.ticket))).cookie(&my_cookie),
        ),
        c(
            "unknown decision",
            form("/alpha/consent", body(&mine.ticket, "maybe")).cookie(&my_cookie),
        ),
        c(
            "uppercase decision",
            form("/alpha/consent", body(&mine.ticket, "APPROVE")).cookie(&my_cookie),
        ),
        c(
            "ticket posted to another tenant",
            form("/limited/consent", body(&mine.ticket, "approve")).cookie(&my_cookie),
        ),
        c(
            "JSON body",
            json_post(
                "/alpha/consent",
                &json!({"ticket": mine.ticket, "decision": "approve"}),
            )
            .cookie(&my_cookie),
        ),
        c(
            "no content type",
            post("/alpha/consent", None, body(&mine.ticket, "approve")).cookie(&my_cookie),
        ),
        c(
            "oversized form",
            form(
                "/alpha/consent",
                format!(
                    "{}&pad={}",
                    body(&mine.ticket, "approve"),
                    "x".repeat(33 * 1024)
                ),
            )
            .cookie(&my_cookie),
        ),
        c(
            "non-UTF-8 form",
            form(
                "/alpha/consent",
                [body(&mine.ticket, "approve").as_bytes(), b"&x=\xff\xfe"].concat(),
            )
            .cookie(&my_cookie),
        ),
        case(
            "consent: unknown tenant",
            form("/nope/consent", body(&mine.ticket, "approve")).cookie(&my_cookie),
            Expect::Page(404),
        ),
        case(
            "consent: GET",
            get("/alpha/consent").cookie(&my_cookie),
            Expect::Json(405, "invalid_request"),
        ),
    ];
    let mut total = run(&app, &ctx, &cases).await;
    assert_eq!(snapshot(&app).await, before, "no transaction started");

    // Deny for a web client this browser never approved: a page, not a redirect to it.
    let web = web_client(&app).await;
    let web_consent = open_consent(&app, &web).await;
    let deny = vec![case(
        "consent: deny for an unapproved web client",
        form("/alpha/consent", body(&web_consent.ticket, "deny"))
            .cookie(&format!("dcr-csrf={}", web_consent.csrf)),
        Expect::Page(403),
    )];
    total += run(&app, &ctx, &deny).await;
    let _ = limited_client;

    // Expired ticket (time travel through the protocol code).
    let tenant = app.tenant("alpha");
    let auth = app.state().auth().logins();
    let now = unix_now();
    assert!(
        auth.open_consent_ticket(&tenant, &mine.ticket, Some(&mine.csrf), now)
            .is_ok()
    );
    assert!(
        matches!(
            auth.open_consent_ticket(
                &tenant,
                &mine.ticket,
                Some(&mine.csrf),
                now + dcr_shim::oauth::consent::TICKET_SECONDS + 1
            ),
            Err(dcr_shim::oauth::consent::ConsentError::Expired)
        ),
        "consent: expired ticket"
    );
    total += 1;

    // The real form still works for its own browser: the refusals changed nothing.
    let res = send(
        &app,
        &form("/alpha/consent", body(&mine.ticket, "approve")).cookie(&my_cookie),
    )
    .await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert!(
        res.location()
            .unwrap()
            .starts_with(&format!("{}/alpha/dev-idp/authorize?", app.base))
    );
    report("consent", &[("consent", total)]);
    app.stop().await;
}
