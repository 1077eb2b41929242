//! The CIMD fetch against hostile hosts: every special-use address, whether it comes from DNS
//! (here: fixed answers fed through the same resolver checks) or is written in the URL, is
//! refused before any connection; so are redirects, oversized, slow, non-JSON, foreign and
//! secret-bearing documents. Nothing refused is cached.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use dcr_shim::net::{FetchError, FetchPolicy, SafeFetcher};
use dcr_shim::oauth::cimd::{CimdError, CimdResolver};
use serde_json::json;
use url::Url;

use crate::helpers::spawn_app_with_ca;
use crate::tls_server::{Canned, DocServer};

const HOSTILE_ANSWERS: &[(&str, &[&str])] = &[
    ("loopback.test", &["127.0.0.1"]),
    ("loopback-high.test", &["127.255.0.9"]),
    ("v6-loopback.test", &["::1"]),
    ("ten.test", &["10.1.2.3"]),
    ("one-seventy-two.test", &["172.16.5.4"]),
    ("one-seventy-two-top.test", &["172.31.255.254"]),
    ("one-ninety-two.test", &["192.168.0.10"]),
    ("metadata.test", &["169.254.169.254"]),
    ("link-local.test", &["169.254.1.1"]),
    ("ula.test", &["fc00::1"]),
    ("ula-fd.test", &["fd00:ec2::254"]),
    ("v6-link-local.test", &["fe80::1"]),
    ("mapped.test", &["::ffff:127.0.0.1"]),
    ("mapped-metadata.test", &["::ffff:169.254.169.254"]),
    ("zero.test", &["0.0.0.0"]),
    ("unspecified-v6.test", &["::"]),
    ("cgnat.test", &["100.64.0.1"]),
    ("nat64-metadata.test", &["64:ff9b::a9fe:a9fe"]),
    ("multicast.test", &["224.0.0.251"]),
    ("broadcast.test", &["255.255.255.255"]),
    ("mixed.test", &["93.184.216.34", "10.0.0.1"]),
];

const HOSTILE_LITERALS: &[&str] = &[
    "https://127.0.0.1/c.json",
    "https://127.1/c.json",
    "https://2130706433/c.json",
    "https://0x7f000001/c.json",
    "https://[::1]/c.json",
    "https://[::ffff:127.0.0.1]/c.json",
    "https://[::ffff:a9fe:a9fe]/c.json",
    "https://169.254.169.254/latest/meta-data.json",
    "https://0.0.0.0/c.json",
    "https://[fe80::1]/c.json",
    "https://[fc00::1]/c.json",
    "https://10.0.0.1/c.json",
];

fn strict_fetcher() -> SafeFetcher {
    let hosts: HashMap<String, Vec<IpAddr>> = HOSTILE_ANSWERS
        .iter()
        .map(|(h, ips)| {
            (
                h.to_string(),
                ips.iter().map(|ip| ip.parse().unwrap()).collect(),
            )
        })
        .collect();
    SafeFetcher::new(FetchPolicy {
        static_hosts: Some(Arc::new(hosts)),
        ..FetchPolicy::default()
    })
    .unwrap()
}

#[tokio::test]
async fn special_use_addresses_are_never_fetched() {
    let fetcher = strict_fetcher();
    let mut cases = 0;
    for (host, _) in HOSTILE_ANSWERS {
        let url = Url::parse(&format!("https://{host}/client.json")).unwrap();
        let err = fetcher.get_json(&url).await.unwrap_err();
        assert!(
            matches!(err, FetchError::ForbiddenAddress(_)),
            "{host}: {err:?}"
        );
        cases += 1;
    }
    for literal in HOSTILE_LITERALS {
        let err = fetcher
            .get_json(&Url::parse(literal).unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(err, FetchError::ForbiddenAddress(_)),
            "{literal}: {err:?}"
        );
        cases += 1;
    }
    for plain in ["http://example.com/c.json", "ftp://example.com/c.json"] {
        let err = fetcher
            .get_json(&Url::parse(plain).unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::NotHttps), "{plain}: {err:?}");
        cases += 1;
    }
    eprintln!("SSRF address cases: {cases}");
}

#[tokio::test]
async fn the_resolver_refuses_them_too_and_remembers_the_refusal_briefly() {
    let dir = tempfile::tempdir().unwrap();
    let docs = DocServer::start(dir.path()).await;
    let app = spawn_app_with_ca(Some(&docs.ca_file)).await;
    let tenant = app.tenant("beta");
    let resolver = CimdResolver::for_tenant(&tenant, &strict_fetcher()).unwrap();
    let now = dcr_shim::app::unix_now();
    for (host, _) in HOSTILE_ANSWERS {
        let client_id = format!("https://{host}/client.json");
        for attempt in 0..2 {
            let err = resolver
                .resolve(&tenant, &client_id, &crate::helpers::operator(now))
                .await
                .unwrap_err();
            if attempt == 0 {
                assert!(
                    matches!(err, CimdError::Fetch(_, FetchError::ForbiddenAddress(_))),
                    "{host}: {err:?}"
                );
            } else {
                assert!(matches!(err, CimdError::Remembered(_)), "{host}: {err:?}");
            }
            let message = err.to_oauth().description;
            assert!(message.contains("special-use address"), "{message}");
            assert!(
                !message.contains("10.")
                    && !message.contains("127.")
                    && !message.contains("169.254"),
                "no internal address in: {message}"
            );
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn hostile_documents_are_refused_and_never_cached() {
    let dir = tempfile::tempdir().unwrap();
    let docs = DocServer::start(dir.path()).await;
    let app = spawn_app_with_ca(Some(&docs.ca_file)).await;
    let tenant = app.tenant("alpha");
    let registry = &app.state().registry();
    let now = dcr_shim::app::unix_now();
    let doc = |id: &str| json!({"client_id": id, "client_name": "A", "redirect_uris": ["http://localhost/cb"]});
    let mut cases: Vec<(String, &str)> = Vec::new();

    let redirect_target = "https://169.254.169.254/latest/meta-data.json";
    let p = "/redirect-to-metadata.json";
    docs.set(
        p,
        Canned {
            status: 307,
            headers: vec![("Location".into(), redirect_target.into())],
            body: vec![],
            trickle: false,
        },
    );
    cases.push((docs.url(p), "redirect"));
    let p = "/redirect-to-loopback.json";
    docs.set(
        p,
        Canned {
            status: 301,
            headers: vec![("Location".into(), "https://127.0.0.1/x.json".into())],
            body: vec![],
            trickle: false,
        },
    );
    cases.push((docs.url(p), "redirect"));
    let p = "/big.json";
    let mut big = doc(&docs.url(p));
    big["logo_uri"] = json!(format!("https://a.example/{}", "x".repeat(6000)));
    docs.set(
        p,
        Canned::json(&big).header("Cache-Control", "max-age=3600"),
    );
    cases.push((docs.url(p), "larger than"));
    let p = "/chunked-big.json";
    docs.set(
        p,
        Canned {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: vec![b' '; 64 * 1024],
            trickle: false,
        },
    );
    cases.push((docs.url(p), "larger than"));
    let p = "/slow.json";
    docs.set(
        p,
        Canned {
            trickle: true,
            ..Canned::json(&doc(&docs.url(p)))
        },
    );
    cases.push((docs.url(p), "did not answer within"));
    let p = "/text.json";
    docs.set(
        p,
        Canned::json(&doc(&docs.url(p))).header("Content-Type", "text/plain"),
    );
    cases.push((docs.url(p), "not served as JSON"));
    let p = "/array.json";
    docs.set(
        p,
        Canned {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: b"[1,2]".to_vec(),
            trickle: false,
        },
    );
    cases.push((docs.url(p), "not a JSON object"));
    let p = "/other.json";
    docs.set(
        p,
        Canned::json(&doc("https://attacker.example/client.json"))
            .header("Cache-Control", "max-age=3600"),
    );
    cases.push((docs.url(p), "not its own URL"));
    let p = "/secret.json";
    let mut secret = doc(&docs.url(p));
    secret["client_secret"] = json!("hunter2");
    docs.set(
        p,
        Canned::json(&secret).header("Cache-Control", "max-age=3600"),
    );
    cases.push((docs.url(p), "client secret"));
    let p = "/basic.json";
    let mut basic = doc(&docs.url(p));
    basic["token_endpoint_auth_method"] = json!("client_secret_basic");
    docs.set(
        p,
        Canned::json(&basic).header("Cache-Control", "max-age=3600"),
    );
    cases.push((docs.url(p), "shared secret"));
    let p = "/js.json";
    let mut js = doc(&docs.url(p));
    js["redirect_uris"] = json!(["javascript:alert(1)"]);
    docs.set(p, Canned::json(&js).header("Cache-Control", "max-age=3600"));
    cases.push((docs.url(p), "javascript"));
    let p = "/500.json";
    docs.set(
        p,
        Canned {
            status: 500,
            headers: vec![],
            body: b"oops".to_vec(),
            trickle: false,
        },
    );
    cases.push((docs.url(p), "HTTP 500"));

    for (url, why) in &cases {
        let before = docs.hits();
        for attempt in 0..2 {
            let err = registry
                .find(&tenant, url, &crate::helpers::operator(now))
                .await
                .unwrap_err();
            assert_eq!(err.code, dcr_shim::oauth::ErrorCode::InvalidClient, "{url}");
            assert!(
                err.description.contains(why),
                "{url} (attempt {attempt}): '{}' should say '{why}'",
                err.description
            );
        }
        assert_eq!(
            docs.hits(),
            before + 1,
            "{url}: a refused document is remembered for a few seconds (never cached as valid)"
        );
    }
    eprintln!("SSRF document cases: {}", cases.len());
    app.stop().await;
}
