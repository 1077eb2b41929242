//! Revocation and listings reach every grant (issue 22, item 2): they stopped at 100,000
//! families, revoked ones included, and reported success. Here a tenant holds more than that,
//! first as an older release wrote them (no index: every family is read), then indexed by
//! `store reindex` (only the user's or client's are read).

use dcr_shim::store::{Durability, Entry, GroupWrite};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// More families than the old cap, so that what sorts last was never reached.
const FAMILIES: usize = 120_000;

/// Writes `n` families of tenant alpha as an older release did (no index entries): ids
/// `{prefix}{i}`, for `user` and client `client`.
async fn old_families(app: &TestApp, prefix: &str, n: usize, user: &str, client: &str) {
    let store = app.state().records().backend().clone();
    let now = dcr_shim::app::unix_now();
    let mut writes = Vec::new();
    for i in 0..n {
        let family =
            json!({"client_id": client, "revoked": false, "created_at": now, "subject": user});
        writes.push(GroupWrite {
            key: format!("alpha/family/{prefix}{i:07}").into_bytes(),
            expected_revision: None,
            entry: Entry {
                schema: 1,
                revision: 1,
                expires_at: Some(now + 3600),
                payload: serde_json::to_vec(&family).unwrap(),
            },
        });
        if writes.len() == 5000 || i + 1 == n {
            let batch = std::mem::take(&mut writes);
            assert!(
                store
                    .write_all(batch, now, Durability::Deferred)
                    .await
                    .unwrap()
            );
        }
    }
    store.flush().await.unwrap();
}

async fn revoke_user(app: &TestApp, user: &str) -> Value {
    let (status, body) = app
        .admin_json(
            Method::POST,
            "/tenants/alpha/grants/revoke",
            Some(json!({"user": user})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn revocation_reaches_every_grant_past_a_hundred_thousand() {
    let app = spawn_app().await;
    let store = app.state().records().backend().clone();
    let now = dcr_shim::app::unix_now();
    // A store an older release wrote: not marked indexed.
    store
        .remove(b"_server/families-indexed", Durability::OnReturn)
        .await
        .unwrap();
    old_families(&app, "a", FAMILIES, "oid-crowd", "client-crowd").await;
    // Sorted after every other family: beyond the old cap.
    old_families(&app, "y", 2, "oid-mid", "client-mid").await;
    old_families(&app, "z", 3, "oid-last", "client-last").await;

    let revoked = revoke_user(&app, "oid-last").await;
    assert_eq!(revoked["revoked"], 3, "{revoked}");
    let (_, listed) = app
        .admin_json(Method::GET, "/tenants/alpha/grants?user=oid-last", None)
        .await;
    assert_eq!(listed["total"], 3, "{listed}");
    assert!(
        listed["grants"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["revoked"] == true)
    );
    // A listing of everything says it is cut.
    let (_, all) = app
        .admin_json(Method::GET, "/tenants/alpha/grants?limit=10", None)
        .await;
    assert_eq!(all["truncated"], true);
    assert_eq!(all["total"], FAMILIES + 5);

    // Indexed: the lookups read only the user's or client's.
    let done = dcr_shim::oauth::family_index::reindex(store.as_ref(), now)
        .await
        .unwrap();
    assert_eq!(done.families as usize, FAMILIES + 5);
    assert!(
        dcr_shim::oauth::family_index::is_indexed(store.as_ref(), now)
            .await
            .unwrap()
    );
    let (_, by_client) = app
        .admin_json(
            Method::POST,
            "/tenants/alpha/grants/revoke",
            Some(json!({"client": "client-mid"})),
        )
        .await;
    assert_eq!(by_client["revoked"], 2);
    assert_eq!(
        revoke_user(&app, "oid-last").await["revoked"],
        0,
        "already revoked"
    );
    app.stop().await;
}

/// A grant written by this release is indexed in the same write as the family: revoking its
/// user finds it through the index at once.
#[tokio::test]
async fn a_new_grant_is_found_through_the_index() {
    let w = crate::login::world().await;
    let client = crate::browser::Client::register(&w.app, "contoso", json!({})).await;
    let (code, attempt) = crate::browser::login(
        &w.app,
        &crate::browser::Browser::new(),
        "contoso",
        &client,
        "ivy",
    )
    .await;
    let (status, _) = crate::browser::redeem(&w.app, "contoso", &client, &code, &attempt).await;
    assert_eq!(status, 200);
    let keys: Vec<String> = w
        .app
        .state()
        .records()
        .backend()
        .scan(b"contoso/fam-", dcr_shim::app::unix_now(), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| String::from_utf8(k).unwrap())
        .collect();
    assert_eq!(keys.len(), 2, "one entry by user, one by client: {keys:?}");
    let (_, revoked) = w
        .app
        .admin_json(
            Method::POST,
            "/tenants/contoso/grants/revoke",
            Some(json!({"user": "oid-ivy"})),
        )
        .await;
    assert_eq!(revoked["revoked"], 1);
    w.stop().await;
}

/// A sled store written by an older release is indexed by the server at its next start (no
/// other server can be writing it); a shared one waits for `store reindex`.
#[tokio::test]
async fn a_server_indexes_an_old_sled_store_at_start() {
    let mut app = spawn_app().await;
    let store = app.state().records().backend().clone();
    store
        .remove(b"_server/families-indexed", Durability::OnReturn)
        .await
        .unwrap();
    old_families(&app, "o", 10, "oid-old", "client-old").await;
    drop(store);
    app.restart().await;
    let store = app.state().records().backend().clone();
    let indexed =
        dcr_shim::oauth::family_index::is_indexed(store.as_ref(), dcr_shim::app::unix_now())
            .await
            .unwrap();
    assert_eq!(indexed, !store.is_shared(), "sled: indexed at start");
    assert_eq!(revoke_user(&app, "oid-old").await["revoked"], 10);
    app.stop().await;
}
