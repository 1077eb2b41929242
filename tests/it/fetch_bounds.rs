//! Outbound document fetches cannot be turned into a flood: against a loopback host that
//! accepts connections and never answers, many concurrent resolutions of distinct URLs open at
//! most the per-host bound of connections (the rest are refused at once as
//! `temporarily_unavailable`), many of one URL share one fetch, and the server keeps answering
//! meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::helpers::spawn_app;

/// A host that accepts every connection and never says a word; counts connections.
async fn silent_host() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (port, accepted)
}

/// `n` concurrent authorization requests for the client ids `ids(i)`; returns how many got
/// the quick busy refusal.
async fn storm(app: &crate::helpers::TestApp, n: usize, ids: impl Fn(usize) -> String) -> usize {
    // New connections only: a storm's slow answers come after the fetch timeout (5 s), as long
    // as the server keeps an idle connection, so a pooled one could be closed by the server
    // just as it is reused.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..n {
        let url = format!(
            "{}/alpha/authorize?response_type=code&client_id={}&redirect_uri=http%3A%2F%2Flocalhost%2Fcb&code_challenge={}&code_challenge_method=S256",
            app.base,
            url::form_urlencoded::byte_serialize(ids(i).as_bytes()).collect::<String>(),
            "x".repeat(43)
        );
        let http = http.clone();
        tasks.push(tokio::spawn(async move {
            let res = http.get(url).send().await.unwrap();
            assert_ne!(res.status(), 200);
            res.text()
                .await
                .unwrap()
                .contains("try again in a few seconds")
        }));
    }
    let mut busy = 0;
    for t in tasks {
        busy += usize::from(t.await.unwrap());
    }
    busy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_host_gets_a_bounded_number_of_connections() {
    let app = spawn_app().await;
    let (port, accepted) = silent_host().await;

    // 200 distinct documents on the silent host, while the server keeps answering.
    let probe = {
        let (http, base) = (app.http.clone(), app.base.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let started = Instant::now();
            let res = http
                .get(format!(
                    "{base}/.well-known/oauth-authorization-server/alpha"
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            started.elapsed()
        })
    };
    let busy = storm(&app, 200, |i| {
        format!("http://127.0.0.1:{port}/clients/{i}.json")
    })
    .await;
    let answered_in = probe.await.unwrap();
    let opened = accepted.load(Ordering::SeqCst);
    assert!(
        opened <= 4,
        "at most 4 connections to one host, got {opened}"
    );
    assert!(busy >= 196, "the rest refused at once as busy: {busy}");
    assert!(
        answered_in < Duration::from_secs(2),
        "metadata answered in {answered_in:?} meanwhile"
    );

    // 200 resolutions of one and the same document share one fetch; its failure is then
    // remembered for a few seconds.
    let before = accepted.load(Ordering::SeqCst);
    storm(&app, 200, |_| {
        format!("http://127.0.0.1:{port}/clients/same.json")
    })
    .await;
    let opened = accepted.load(Ordering::SeqCst) - before;
    assert!(
        opened <= 1,
        "one fetch for one URL, got {opened} connections"
    );
    storm(&app, 5, |_| {
        format!("http://127.0.0.1:{port}/clients/same.json")
    })
    .await;
    assert_eq!(
        accepted.load(Ordering::SeqCst) - before,
        opened,
        "remembered, not fetched again"
    );
    app.stop().await;
}

/// Each client address has its own budget of document fetches per minute; cache hits are
/// free, and another address is not held back by the first one's spending.
#[tokio::test]
async fn document_fetches_are_limited_per_client_address() {
    let dir = tempfile::tempdir().unwrap();
    let docs = crate::tls_server::DocServer::start(dir.path()).await;
    let ca = docs.ca_file.clone();
    let app = crate::helpers::spawn_app_with_tenants(move |t| {
        std::fs::write(
            t.join("metered.toml"),
            format!(
                "upstream = {{ kind = \"dev\" }}\n[[resources]]\nuri = \"https://mcp.example.com/files\"\nscopes = [{{ name = \"files.read\", upstream = \"files.read\" }}]\n[registration]\ncimd_fetches_per_minute = 3\n[dev]\ncimd_allow_loopback = true\ncimd_extra_ca_file = {:?}\n",
                ca.display().to_string()
            ),
        )
        .unwrap();
    })
    .await;
    let doc = |i: usize| {
        let url = docs.url(&format!("/agent-{i}.json"));
        docs.set(
            &format!("/agent-{i}.json"),
            crate::tls_server::Canned::json(&serde_json::json!({
                "client_id": url,
                "client_name": "Metered",
                "redirect_uris": ["http://localhost/callback"],
                "token_endpoint_auth_method": "none",
            }))
            .header("Cache-Control", "max-age=60"),
        );
        url
    };
    let authorize = |client_id: String| {
        let url = format!(
            "{}/metered/authorize?response_type=code&client_id={}&redirect_uri=http%3A%2F%2Flocalhost%2Fcallback&code_challenge={}&code_challenge_method=S256",
            app.base,
            url::form_urlencoded::byte_serialize(client_id.as_bytes()).collect::<String>(),
            "x".repeat(43)
        );
        let http = app.http.clone();
        async move {
            let res = http.get(url).send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    for i in 0..3 {
        let (status, page) = authorize(doc(i)).await;
        assert_eq!(status, 200, "fetch {i} is within the budget: {page}");
    }
    let (status, page) = authorize(doc(3)).await;
    assert_eq!(status, 503, "{page}");
    assert!(
        page.contains("too many client metadata documents"),
        "{page}"
    );
    assert_eq!(docs.hits(), 3, "the refused resolution fetched nothing");
    // Cached documents cost nothing.
    let (status, _) = authorize(doc(0)).await;
    assert_eq!(status, 200);
    // Another address has its own budget.
    let tenant = app.tenant("metered");
    let other = "10.1.2.3".parse().unwrap();
    let ctx = dcr_shim::oauth::context::RequestCtx {
        now: dcr_shim::app::unix_now(),
        caller: dcr_shim::oauth::context::Caller::Address(other),
        request_id: None,
    };
    let found = app
        .state()
        .registry()
        .find(&tenant, &doc(3), &ctx)
        .await
        .unwrap();
    assert!(found.is_some());
    assert_eq!(docs.hits(), 4);
    app.stop().await;
}
