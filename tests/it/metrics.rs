//! `/metrics` on the admin listener: Prometheus text that a Prometheus parser reads, with the
//! counters moving as a login and a refresh run.

use std::collections::HashMap;

use serde_json::json;

use crate::browser::{Browser, Client, login, redeem, refresh};
use crate::login::world;

/// Every sample of the exposition, by metric name and sorted labels; counters and gauges by
/// value, histograms by their count.
pub(crate) async fn scrape(app: &crate::helpers::TestApp) -> HashMap<String, f64> {
    let base = app.admin_base();
    let url = format!("{}/metrics", base.trim_end_matches("/admin/v1"));
    let res = app.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let parsed = prometheus_parse::Scrape::parse(lines).expect("a Prometheus parser reads it");
    let mut out = HashMap::new();
    for s in parsed.samples {
        let mut labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        labels.sort();
        let value = match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(h) => h.last().map(|b| b.count).unwrap_or(0.0),
            prometheus_parse::Value::Summary(_) => 0.0,
        };
        out.insert(format!("{}{{{}}}", s.metric, labels.join(",")), value);
    }
    out
}

fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, key: &str) -> f64 {
    after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn counters_move_as_a_login_and_a_refresh_run() {
    let w = world().await;
    let before = scrape(&w.app).await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &client, "mia").await;
    let (_, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    let (status, _) = refresh(
        &w.app,
        "contoso",
        &client,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let after = scrape(&w.app).await;
    for (key, at_least) in [
        ("dcr_shim_registrations_total{tenant=contoso}", 1.0),
        ("dcr_shim_logins_total{outcome=started,tenant=contoso}", 1.0),
        (
            "dcr_shim_logins_total{outcome=completed,tenant=contoso}",
            1.0,
        ),
        ("dcr_shim_refreshes_total{outcome=ok,tenant=contoso}", 1.0),
        (
            "dcr_shim_upstream_call_duration_seconds{call=code,tenant=contoso}",
            1.0,
        ),
        (
            "dcr_shim_upstream_call_duration_seconds{call=refresh,tenant=contoso}",
            1.0,
        ),
        (
            "dcr_shim_http_requests_total{route=/:tenant/token,status=200,tenant=contoso}",
            2.0,
        ),
        (
            "dcr_shim_http_request_duration_seconds{route=/:tenant/token,status=200,tenant=contoso}",
            2.0,
        ),
    ] {
        assert!(
            delta(&before, &after, key) >= at_least,
            "{key} moved by {}: {after:#?}",
            delta(&before, &after, key)
        );
    }
    // The registry is one per process, and the tests running beside this one start servers
    // with a tenant of the same name, each marking it down until its own discovery finishes:
    // the gauge is read again until this server's state shows.
    let mut up = after.get("dcr_shim_upstream_up{tenant=contoso}").copied();
    for _ in 0..50 {
        if up == Some(1.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        up = scrape(&w.app)
            .await
            .get("dcr_shim_upstream_up{tenant=contoso}")
            .copied();
    }
    assert_eq!(up, Some(1.0));
    // The store: every acknowledged write was flushed (sled; PostgreSQL commits each
    // statement), and its size is read at the scrape.
    if w.app.store.is_none() {
        assert!(delta(&before, &after, "dcr_shim_store_flush_duration_seconds{}") >= 1.0);
    }
    assert!(after["dcr_shim_store_size_bytes{}"] > 0.0, "{after:#?}");

    // An IdP refusal at refresh is counted by its AADSTS code.
    w.idp.revoke_all_refresh_tokens();
    let (_, tokens2) = {
        let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &client, "mia").await;
        redeem(&w.app, "contoso", &client, &code, &attempt).await
    };
    w.idp.revoke_all_refresh_tokens();
    let before = scrape(&w.app).await;
    let (status, _) = refresh(
        &w.app,
        "contoso",
        &client,
        tokens2["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    let after = scrape(&w.app).await;
    let key = "dcr_shim_upstream_errors_total{call=refresh,code=AADSTS700082,tenant=contoso}";
    // At least: a test beside this one may be refused the same way at the same time.
    assert!(delta(&before, &after, key) >= 1.0, "{after:#?}");
    assert!(
        delta(
            &before,
            &after,
            "dcr_shim_family_revocations_total{tenant=contoso}"
        ) >= 1.0
    );
    w.stop().await;
}

/// Regression (issue 22, item 13): the series alerts watch exist at zero from the start, so that
/// `increase()` sees the first replay or IdP failure; the build and the process are described.
#[tokio::test]
async fn alerting_series_exist_at_zero_from_the_start() {
    let app = crate::helpers::spawn_app_with_tenants(|t| {
        std::fs::write(t.join("zeroes.toml"), crate::helpers::DEV_TENANT).unwrap();
    })
    .await;
    let scraped = scrape(&app).await;
    let mut expected = vec![
        "dcr_shim_reuse_detected_total{tenant=zeroes}".to_owned(),
        "dcr_shim_family_revocations_total{tenant=zeroes}".to_owned(),
        "dcr_shim_registrations_total{tenant=zeroes}".to_owned(),
        "dcr_shim_upstream_failures_total{call=code,tenant=zeroes}".to_owned(),
        "dcr_shim_upstream_failures_total{call=refresh,tenant=zeroes}".to_owned(),
        "dcr_shim_upstream_errors_total{call=refresh,code=unreachable,tenant=zeroes}".to_owned(),
        "dcr_shim_logins_total{outcome=started,tenant=zeroes}".to_owned(),
        "dcr_shim_refreshes_total{outcome=ok,tenant=zeroes}".to_owned(),
        "dcr_shim_store_errors_total{kind=backend}".to_owned(),
        "dcr_shim_store_errors_total{kind=unavailable}".to_owned(),
        "dcr_shim_store_errors_total{kind=corrupt}".to_owned(),
    ];
    for limit in [
        "address",
        "tenant",
        "cimd_address",
        "login_address",
        "login_browser",
        "login_network",
    ] {
        expected.push(format!(
            "dcr_shim_rate_limited_total{{limit={limit},tenant=zeroes}}"
        ));
    }
    for outcome in [
        "fetched",
        "cache_hit",
        "refused",
        "remembered",
        "busy",
        "rate_limited",
    ] {
        expected.push(format!(
            "dcr_shim_cimd_resolutions_total{{outcome={outcome},tenant=zeroes}}"
        ));
    }
    for key in &expected {
        assert_eq!(scraped.get(key), Some(&0.0), "{key}: {scraped:#?}");
    }
    let build = scraped
        .iter()
        .find(|(k, _)| k.starts_with("dcr_shim_build_info{"))
        .expect("build info");
    assert_eq!(*build.1, 1.0);
    assert!(
        build
            .0
            .contains(&format!("version={}", env!("CARGO_PKG_VERSION"))),
        "{}",
        build.0
    );
    assert!(!build.0.contains("commit=,"), "{}", build.0);
    for process in [
        "process_cpu_seconds_total{}",
        "process_resident_memory_bytes{}",
        "process_open_fds{}",
        "process_max_fds{}",
    ] {
        assert!(
            scraped.get(process).is_some_and(|v| *v > 0.0),
            "{process}: {scraped:#?}"
        );
    }
    app.stop().await;
}
