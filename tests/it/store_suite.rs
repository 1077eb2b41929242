//! The `Store` contract, run against every backend by the same tests: sled always, and
//! PostgreSQL when `DCR_SHIM_TEST_POSTGRES` names a server (a `postgres://` URL whose user may
//! create databases; `.ci/run` starts a throwaway one). Each test gets a store of its own: a
//! new sled directory, or a new database.

use std::sync::Arc;

use dcr_shim::store::{
    Durability, Entry, GroupWrite, PostgresLocation, PostgresStore, SledStore, Store,
};

/// A fresh store of each backend available, by name.
async fn backends() -> Vec<(&'static str, Arc<dyn Store>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sled: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).await.unwrap());
    let mut out = vec![("sled", sled, Some(dir))];
    if let Some(url) = fresh_postgres_database().await {
        let location = PostgresLocation::parse(&url, None).unwrap();
        let pg: Arc<dyn Store> = Arc::new(PostgresStore::open(&location, 1).await.unwrap());
        out.push(("postgres", pg, None));
    }
    out
}

/// A new, empty database on the server `DCR_SHIM_TEST_POSTGRES` names, as a URL.
pub async fn fresh_postgres_database() -> Option<String> {
    let base = std::env::var("DCR_SHIM_TEST_POSTGRES").ok()?;
    let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("DCR_SHIM_TEST_POSTGRES is set but the server does not answer");
    tokio::spawn(connection);
    let name = format!("dcr_test_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

fn entry(rev: u64, expires_at: Option<u64>) -> Entry {
    Entry {
        schema: 1,
        revision: rev,
        expires_at,
        payload: format!("{{\"rev\":{rev}}}").into_bytes(),
    }
}

const NOW: Durability = Durability::OnReturn;

#[tokio::test]
async fn insert_take_expiry_and_compare_and_swap() {
    for (name, s, _dir) in backends().await {
        assert!(
            s.insert_new(b"t/code/a", entry(1, Some(100)), 10, NOW)
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            !s.insert_new(b"t/code/a", entry(1, Some(100)), 10, NOW)
                .await
                .unwrap(),
            "{name}: a live record is not replaced"
        );
        let got = s.get(b"t/code/a", 10).await.unwrap().unwrap();
        assert_eq!(got, entry(1, Some(100)), "{name}: read back whole");
        assert!(
            s.take(b"t/code/a", 10, NOW).await.unwrap().is_some(),
            "{name}"
        );
        assert!(
            s.take(b"t/code/a", 10, NOW).await.unwrap().is_none(),
            "{name}: taken once"
        );

        assert!(
            s.insert_new(b"t/code/b", entry(1, Some(100)), 10, NOW)
                .await
                .unwrap()
        );
        assert!(
            s.get(b"t/code/b", 100).await.unwrap().is_none(),
            "{name}: expired at its time"
        );
        assert!(
            s.take(b"t/code/b", 100, NOW).await.unwrap().is_none(),
            "{name}: an expired record cannot be taken"
        );
        assert!(
            s.insert_new(b"t/code/b", entry(5, None), 100, NOW)
                .await
                .unwrap(),
            "{name}: an expired key is free"
        );
        assert_eq!(s.get(b"t/code/b", 100).await.unwrap().unwrap().revision, 5);

        assert!(
            s.insert_new(b"t/client/c", entry(1, Some(50)), 10, NOW)
                .await
                .unwrap()
        );
        assert!(
            !s.compare_and_swap(b"t/client/c", 7, entry(8, Some(500)), NOW)
                .await
                .unwrap(),
            "{name}: wrong revision"
        );
        assert!(
            s.compare_and_swap(b"t/client/c", 1, entry(2, Some(500)), NOW)
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            !s.compare_and_swap(b"t/client/c", 1, entry(3, Some(500)), NOW)
                .await
                .unwrap(),
            "{name}: the old revision is spent"
        );
        assert!(
            !s.compare_and_swap(b"t/client/none", 1, entry(2, None), NOW)
                .await
                .unwrap(),
            "{name}: nothing to swap"
        );
        assert!(
            s.get(b"t/client/c", 60).await.unwrap().is_some(),
            "{name}: the extended record outlives its old expiry"
        );

        assert!(s.remove(b"t/client/c", NOW).await.unwrap());
        assert!(!s.remove(b"t/client/c", NOW).await.unwrap(), "{name}");
        s.flush().await.unwrap();
        s.check_health().await.unwrap();
    }
}

#[tokio::test]
async fn scans_see_live_records_of_a_prefix_in_key_order() {
    for (name, s, _dir) in backends().await {
        for (key, expires_at) in [
            (&b"t1/client/b"[..], None),
            (b"t1/client/a", Some(1000)),
            (b"t1/client/x", Some(5)),
            (b"t1/code/a", None),
            (b"t2/client/a", None),
            (&[b't', b'1', b'/', 0xff][..], None),
        ] {
            assert!(
                s.insert_new(key, entry(1, expires_at), 1, NOW)
                    .await
                    .unwrap()
            );
        }
        let keys = |v: Vec<(Vec<u8>, Entry)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(
            keys(s.scan(b"t1/client/", 10, 100).await.unwrap()),
            vec![b"t1/client/a".to_vec(), b"t1/client/b".to_vec()],
            "{name}: live, in order, this prefix only"
        );
        assert_eq!(
            s.scan(b"t1/client/", 10, 1).await.unwrap().len(),
            1,
            "{name}: limit"
        );
        assert_eq!(
            s.scan(b"t1/", 10, 100).await.unwrap().len(),
            4,
            "{name}: 0xff keys too"
        );
        assert_eq!(
            s.scan(b"", 10, 100).await.unwrap().len(),
            5,
            "{name}: everything live"
        );
    }
}

#[tokio::test]
async fn sweeps_delete_expired_records_and_keep_the_rest() {
    for (name, s, _dir) in backends().await {
        for i in 0..25u64 {
            let expires_at = match i % 3 {
                0 => None,
                1 => Some(50),
                _ => Some(900),
            };
            let key = format!("t/code/{i:02}");
            assert!(
                s.insert_new(key.as_bytes(), entry(1, expires_at), 10, NOW)
                    .await
                    .unwrap()
            );
        }
        let mut removed = 0;
        for _ in 0..20 {
            let sweep = s.sweep_expired(100, 4).await.unwrap();
            assert!(
                sweep.removed <= 4 && sweep.examined <= 4,
                "{name}: at most the limit"
            );
            removed += sweep.removed;
            if sweep.pass_complete {
                break;
            }
        }
        assert_eq!(removed, 8, "{name}: every expired record, once");
        assert_eq!(s.scan(b"", 100, 100).await.unwrap().len(), 17, "{name}");
        assert_eq!(
            s.sweep_expired(100, 100).await.unwrap().removed,
            0,
            "{name}"
        );
        assert!(s.size_on_disk().await.unwrap() > 0, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_get_one_winner() {
    for (name, s, _dir) in backends().await {
        // insert_new: one of many.
        let wins = race(&s, |s, i| async move {
            s.insert_new(b"t/family/f", entry(i, None), 1, NOW)
                .await
                .unwrap()
        })
        .await;
        assert_eq!(wins, 1, "{name}: one insert");
        // compare_and_swap from the same revision: one of many.
        let current = s.get(b"t/family/f", 1).await.unwrap().unwrap().revision;
        let wins = race(&s, move |s, i| async move {
            s.compare_and_swap(b"t/family/f", current, entry(1000 + i, None), NOW)
                .await
                .unwrap()
        })
        .await;
        assert_eq!(wins, 1, "{name}: one swap");
        // take: one of many.
        assert!(
            s.insert_new(b"t/code/once", entry(1, None), 1, NOW)
                .await
                .unwrap()
        );
        let wins = race(&s, |s, _| async move {
            s.take(b"t/code/once", 1, NOW).await.unwrap().is_some()
        })
        .await;
        assert_eq!(wins, 1, "{name}: one take");
    }
}

fn insert(key: &[u8], e: Entry) -> GroupWrite {
    GroupWrite {
        key: key.to_vec(),
        expected_revision: None,
        entry: e,
    }
}

fn swap(key: &[u8], expected: u64, e: Entry) -> GroupWrite {
    GroupWrite {
        key: key.to_vec(),
        expected_revision: Some(expected),
        entry: e,
    }
}

/// A group of writes lands whole or not at all: a failed condition anywhere in it (first, last,
/// an insert over a live record, a swap from a moved revision, a swap of nothing) leaves every
/// record as it was; an expired record counts as free; of groups racing for one record, one
/// lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn write_groups_land_whole_or_not_at_all() {
    for (name, s, _dir) in backends().await {
        assert!(
            s.insert_new(b"t/family/f", entry(1, None), 10, NOW)
                .await
                .unwrap()
        );
        assert!(
            s.insert_new(b"t/code/old", entry(1, Some(5)), 1, NOW)
                .await
                .unwrap()
        );
        let untouched = |s: Arc<dyn Store>| async move {
            assert_eq!(
                s.get(b"t/family/f", 10).await.unwrap(),
                Some(entry(1, None))
            );
            assert!(s.get(b"t/refresh/new", 10).await.unwrap().is_none());
        };
        for (why, group) in [
            (
                "a swap from a revision the record left",
                vec![
                    insert(b"t/refresh/new", entry(1, None)),
                    swap(b"t/family/f", 7, entry(8, None)),
                ],
            ),
            (
                "an insert over a live record, first in the group",
                vec![
                    insert(b"t/family/f", entry(1, None)),
                    insert(b"t/refresh/new", entry(1, None)),
                ],
            ),
            (
                "a swap of a record that is not there",
                vec![
                    insert(b"t/refresh/new", entry(1, None)),
                    swap(b"t/family/none", 1, entry(2, None)),
                ],
            ),
        ] {
            assert!(
                !s.write_all(group, 10, NOW).await.unwrap(),
                "{name}: {why} refuses the group"
            );
            untouched(s.clone()).await;
        }
        assert!(
            s.write_all(
                vec![
                    insert(b"t/refresh/new", entry(1, None)),
                    swap(b"t/family/f", 1, entry(2, None)),
                    insert(b"t/code/old", entry(1, None)),
                ],
                10,
                NOW,
            )
            .await
            .unwrap(),
            "{name}: every condition holds (the expired record's key is free)"
        );
        assert_eq!(
            s.get(b"t/family/f", 10).await.unwrap(),
            Some(entry(2, None))
        );
        assert_eq!(
            s.get(b"t/refresh/new", 10).await.unwrap(),
            Some(entry(1, None))
        );
        assert_eq!(
            s.get(b"t/code/old", 10).await.unwrap(),
            Some(entry(1, None))
        );
        assert!(
            s.write_all(Vec::new(), 10, Durability::Deferred)
                .await
                .unwrap(),
            "{name}: an empty group"
        );

        // Racing groups that each move the family on and add a record of their own: one lands,
        // and only its own record exists.
        let wins = race(&s, |s, i| async move {
            let own = format!("t/refresh/r{i}").into_bytes();
            s.write_all(
                vec![
                    insert(&own, entry(1, None)),
                    swap(b"t/family/f", 2, entry(3, None)),
                ],
                10,
                NOW,
            )
            .await
            .unwrap()
        })
        .await;
        assert_eq!(wins, 1, "{name}: one group");
        let landed = s.scan(b"t/refresh/r", 10, 100).await.unwrap();
        assert_eq!(landed.len(), 1, "{name}: only the winner's record");
    }
}

/// Runs `f` 32 times at once; counts the `true`s.
async fn race<F, Fut>(s: &Arc<dyn Store>, f: F) -> usize
where
    F: Fn(Arc<dyn Store>, u64) -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let tasks: Vec<_> = (0..32).map(|i| tokio::spawn(f(s.clone(), i))).collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    wins
}

/// `dcr-shim store copy` from sled to PostgreSQL and back: every live record arrives whole,
/// expired ones stay behind, a second run copies nothing, and a record that differs in the
/// target is reported and left alone.
#[tokio::test]
async fn store_copy_moves_live_records_and_is_idempotent() {
    let Some(url) = fresh_postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sled_dir = dir.path().join("store");
    {
        let s = SledStore::open(&sled_dir).await.unwrap();
        let now = dcr_shim::app::unix_now();
        for i in 0..2500u64 {
            let key = format!("t/client/{i:05}");
            assert!(
                s.insert_new(key.as_bytes(), entry(i, None), now, NOW)
                    .await
                    .unwrap()
            );
        }
        assert!(
            s.insert_new(b"t/code/old", entry(1, Some(now - 1)), now - 10, NOW)
                .await
                .unwrap()
        );
        s.flush().await.unwrap();
    }
    let cli = |from: &str, to: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcr-shim"))
            .args(["store", "copy", "--from", from, "--to", to])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let sled_spec = format!("sled:{}", sled_dir.display());
    let said = cli(&sled_spec, &url);
    assert!(
        said.starts_with("2500 copied, 0 already there, 0 left"),
        "{said}"
    );
    let said = cli(&sled_spec, &url);
    assert!(
        said.starts_with("0 copied, 2500 already there"),
        "idempotent: {said}"
    );

    // One record changed in PostgreSQL, then copied back into a new sled store.
    let pg = PostgresStore::open(&PostgresLocation::parse(&url, None).unwrap(), 1)
        .await
        .unwrap();
    assert!(
        pg.compare_and_swap(b"t/client/00007", 7, entry(70, None), NOW)
            .await
            .unwrap()
    );
    assert!(
        pg.get(b"t/code/old", dcr_shim::app::unix_now())
            .await
            .unwrap()
            .is_none()
    );
    let said = cli(&sled_spec, &url);
    assert!(
        said.contains("1 left as they were") && said.contains("t/client/00007"),
        "{said}"
    );
    drop(pg);
    let back = dir.path().join("back");
    let said = cli(&url, &format!("sled:{}", back.display()));
    assert!(said.starts_with("2500 copied"), "{said}");
    let s = SledStore::open(&back).await.unwrap();
    let now = dcr_shim::app::unix_now();
    assert_eq!(
        s.get(b"t/client/00007", now)
            .await
            .unwrap()
            .unwrap()
            .revision,
        70
    );
    assert_eq!(
        s.get(b"t/client/02499", now).await.unwrap(),
        Some(entry(2499, None))
    );
}

/// The URL's own `options` reach every connection, deferred ones included (a search_path
/// that put the records elsewhere would otherwise send deferred writes to another table), and
/// a database where commits do not wait for the disk is refused rather than trusted.
#[tokio::test]
async fn postgres_keeps_the_urls_options_and_refuses_commits_that_do_not_wait() {
    let Some(url) = fresh_postgres_database().await else {
        return;
    };
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    admin.batch_execute("CREATE SCHEMA shim").await.unwrap();
    let in_schema = format!("{url}?options=-c%20search_path%3Dshim");
    let store = PostgresStore::open(&PostgresLocation::parse(&in_schema, None).unwrap(), 1)
        .await
        .unwrap();
    // A deferred write and a durable one both land in the schema the URL names.
    assert!(
        store
            .insert_new(b"t/x/deferred", entry(1, None), 10, Durability::Deferred)
            .await
            .unwrap()
    );
    assert!(
        store
            .insert_new(b"t/x/durable", entry(1, None), 10, Durability::OnReturn)
            .await
            .unwrap()
    );
    store.flush().await.unwrap();
    let rows = admin
        .query("SELECT count(*) FROM shim.dcr_records", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 2);

    let no_wait = format!("{url}?options=-c%20synchronous_commit%3Doff");
    let refused = PostgresStore::open(&PostgresLocation::parse(&no_wait, None).unwrap(), 1)
        .await
        .err()
        .expect("a store whose commits do not wait for the disk is refused");
    assert!(
        refused.to_string().contains("synchronous_commit is off"),
        "{refused}"
    );
}
