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
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    crate::helpers::write_tenants(tenants.path(), None);
    // 20 a minute: a budget the loop below spends in far less time than one refills (3 s).
    let shim = crate::binary::start_binary_with_args(
        data.path(),
        tenants.path(),
        &["--login-starts-per-minute", "20"],
    );
    let app = crate::helpers::TestApp::at(&shim.base);
    let client = Client::register(&app, "alpha", json!({})).await;
    // A fresh browser (and CSRF cookie) per form, as a flood would: the address's budget
    // still runs out, and the refusal says why.
    let mut refused = None;
    for n in 0..40 {
        let browser = Browser::new();
        let attempt = authorize_url(&app, "alpha", &client, "files.read", "cy");
        let Landing::Consent(page) = browser.go(&attempt.url, client.prefix()).await else {
            panic!("consent expected");
        };
        let issuer = app.issuer("alpha");
        match browser
            .consent(&issuer, &page, "approve", client.prefix())
            .await
        {
            Landing::Page(429, body) => {
                refused = Some((n, body));
                break;
            }
            // The dev IdP's login form: the login started.
            Landing::Page(200, _) | Landing::Client(_) => {}
            other => panic!("{other:?}"),
        }
    }
    let (n, body) = refused.expect("the address's budget runs out");
    assert!((20..25).contains(&n), "refused after {n}");
    assert!(body.contains("network address"), "{body}");
}

/// Regression (issue 22, item 15): 400,000 rate-limited registrations from distinct forwarded
/// addresses wrote two lines each (186 MB). Now each kind of refusal writes a bounded number of
/// full lines per interval and one line counting the rest, in the log and in the audit file,
/// where the counts add up to every refusal.
#[tokio::test]
async fn a_flood_of_refusals_writes_a_bounded_log_that_still_counts_them_all() {
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    std::fs::write(
        tenants.path().join("ceiling.toml"),
        format!("{}[registration]\nregistrations_per_minute = 100\ntenant_registrations_per_minute = 5\n", crate::helpers::DEV_TENANT),
    )
    .unwrap();
    let audit = data.path().join("audit.jsonl");
    let shim = crate::binary::start_binary_with_args(
        data.path(),
        tenants.path(),
        &[
            "--trusted-proxies",
            "127.0.0.1",
            "--audit-log",
            audit.to_str().unwrap(),
        ],
    );
    let http = reqwest::Client::new();
    let log_bytes_before: usize = shim.log.lock().unwrap().iter().map(|l| l.len() + 1).sum();
    let (mut refused, mut created) = (0u64, 0u64);
    for i in 0..2000u32 {
        let status = http
            .post(format!("{}/ceiling/register", shim.base))
            .header(
                "X-Forwarded-For",
                format!("198.18.{}.{}", i / 250, i % 250 + 1),
            )
            .json(&json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        match status {
            429 => refused += 1,
            201 => created += 1,
            other => panic!("{other}"),
        }
    }
    assert_eq!(created, 5);
    // The summaries come at the end of the interval.
    let summarized = |lines: &[String]| {
        lines
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["fields"]["kind"] == "registration_rate_limited"
                    || v["kind"] == "registration_rate_limited"
            })
            .map(|v| {
                v["fields"]["suppressed"]
                    .as_u64()
                    .or(v["suppressed"].as_u64())
                    .unwrap_or(0)
            })
            .sum::<u64>()
    };
    let mut waited = 0;
    while summarized(&shim.log.lock().unwrap()) == 0 && waited < 150 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    let log = shim.log.lock().unwrap().clone();
    let full = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| {
                l.contains("\"registration_rate_limited\"") && !l.contains("refusals_aggregated")
            })
            .count() as u64
    };
    assert!(full(&log) <= 20, "{} full lines", full(&log));
    assert_eq!(
        full(&log) + summarized(&log),
        refused,
        "every refusal is counted: {:#?}",
        &log[log.len().saturating_sub(5)..]
    );
    let log_bytes: usize = log.iter().map(|l| l.len() + 1).sum::<usize>() - log_bytes_before;
    assert!(
        log_bytes < 40 * 1024,
        "{log_bytes} bytes of log for {refused} refused requests"
    );
    // The audit file: the same bound, the same counts.
    let audit: Vec<String> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(full(&audit) <= 20);
    assert_eq!(full(&audit) + summarized(&audit), refused);
}
