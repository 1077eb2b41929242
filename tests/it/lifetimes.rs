//! How long a grant lasts (issue 22, item 17): an absolute lifetime from the login that no
//! refresh moves, and an idle lifetime that each refresh does.

use std::time::Duration;

use crate::binary::{dev_login, refresh_at};
use crate::helpers::DEV_TENANT as DEV;

/// Regression: a family's expiry moved 90 days ahead at every refresh, so an agent that kept
/// refreshing never signed in again, whatever the company's policy.
#[tokio::test]
async fn refreshing_does_not_outlast_the_absolute_lifetime() {
    let app = crate::helpers::spawn_app_with_tenants(|t| {
        std::fs::write(
            t.join("short.toml"),
            format!("{DEV}[grants]\nlifetime = \"4s\"\nidle_lifetime = \"3s\"\n"),
        )
        .unwrap();
    })
    .await;
    let handed = dev_login(&app.base, "short", false).await;
    let login = std::time::Instant::now();
    let mut token = handed.refresh_token.clone();
    // Refreshed every second: the idle lifetime never runs out, the absolute one does.
    let mut last_ok = Duration::ZERO;
    let refused_at = loop {
        tokio::time::sleep(Duration::from_millis(900)).await;
        match refresh_at(&app.base, "short", &handed, &token).await {
            Ok((_, next)) => {
                token = next;
                last_ok = login.elapsed();
            }
            Err(status) => break (status, login.elapsed()),
        }
        assert!(login.elapsed() < Duration::from_secs(10), "never refused");
    };
    assert_eq!(refused_at.0, 400);
    assert!(
        last_ok >= Duration::from_secs(2),
        "refreshes worked meanwhile: {last_ok:?}"
    );
    assert!(
        refused_at.1 <= Duration::from_secs(6),
        "refused by the absolute lifetime (4 s): {:?}",
        refused_at.1
    );
    app.stop().await;
}

#[tokio::test]
async fn an_unused_grant_ends_after_its_idle_lifetime() {
    let app = crate::helpers::spawn_app_with_tenants(|t| {
        std::fs::write(
            t.join("idle.toml"),
            format!("{DEV}[grants]\nlifetime = \"1h\"\nidle_lifetime = \"2s\"\n"),
        )
        .unwrap();
    })
    .await;
    let handed = dev_login(&app.base, "idle", false).await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(
        refresh_at(&app.base, "idle", &handed, &handed.refresh_token).await,
        Err(400)
    );
    app.stop().await;
}
