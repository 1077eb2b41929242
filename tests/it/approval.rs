//! Issue 24: no new agent without an administrator's yes. Clients of a tenant with
//! `[registration] approval = "admin"` are held after their user's sign-in at the IdP (the
//! fake Entra), queued with who asked, announced to a signed webhook (a receiver here that
//! checks the signature as docs/approval.md says), and decided through the CLI and the admin
//! API.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::admin::run_cli;
use crate::browser::{
    Browser, Client, Landing, authorize_url, login, param, redeem, refresh, token_request,
};
use crate::helpers::{ADMIN_TOKEN, write_private};
use crate::login::{World, world_with};
use crate::tls_server::Canned;

const WEBHOOK_KEY: &str = "0123456789abcdef0123456789abcdef-webhook-key";

/// One notification as the receiver got it.
#[derive(Clone, Debug)]
struct Received {
    headers: std::collections::HashMap<String, String>,
    body: Vec<u8>,
}

/// A webhook receiver: answers the statuses it is given in turn (then 200) and keeps what
/// it received. Plain HTTP/1.1 over TCP, one request per connection.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<Vec<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/approvals", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(Vec::<u16>::new()));
        let (r, a) = (received.clone(), answers.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, length) = loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break (0, 0);
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map(|v| v.trim().parse::<usize>().unwrap())
                            .unwrap_or(0);
                        break (i + 4, length);
                    }
                };
                if head_end == 0 {
                    continue;
                }
                while buf.len() < head_end + length {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let headers = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
                    .collect();
                r.lock().unwrap().push(Received {
                    headers,
                    body: buf[head_end..].to_vec(),
                });
                let status = {
                    let mut answers = a.lock().unwrap();
                    if answers.is_empty() {
                        200
                    } else {
                        answers.remove(0)
                    }
                };
                let _ = socket
                    .write_all(
                        format!(
                            "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            }
        });
        Self {
            url,
            received,
            answers,
            task,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `n` notifications arrived (deliveries run in the background).
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..200 {
            if self.received().len() >= n {
                return self.received();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{n} notifications expected, got {:?}", self.received());
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What docs/approval.md tells a receiver to do: the timestamp recent, the HMAC-SHA256 of
/// `{timestamp}.{body}` under the key equal (in constant time) to the header's, and the
/// body's (signed) delivery id not seen before.
fn verify(
    key: &str,
    r: &Received,
    now: u64,
    seen: &mut HashSet<String>,
) -> Result<Value, &'static str> {
    let timestamp: u64 = r
        .headers
        .get("x-dcr-shim-timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or("no timestamp")?;
    if now.abs_diff(timestamp) > 300 {
        return Err("stale timestamp");
    }
    let presented = r
        .headers
        .get("x-dcr-shim-signature")
        .and_then(|s| s.strip_prefix("v1="))
        .ok_or("no signature")?;
    let presented = hex_decode(presented).ok_or("signature is not hex")?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&r.body);
    mac.verify_slice(&presented).map_err(|_| "bad signature")?;
    let body: Value = serde_json::from_slice(&r.body).map_err(|_| "not JSON")?;
    let delivery = body["delivery"].as_str().ok_or("no delivery id")?;
    if r.headers.get("x-dcr-shim-delivery").map(String::as_str) != Some(delivery) {
        return Err("the delivery header is not the body's");
    }
    if !seen.insert(delivery.to_owned()) {
        return Err("replayed delivery");
    }
    Ok(body)
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The personas' world (the fake Entra, a CIMD host) with contoso asking for approval, the
/// queue settings `queue` and a webhook to `hook`.
async fn world(queue: &str, hook: Option<&Receiver>) -> World {
    let secrets = tempfile::tempdir().unwrap().keep();
    let key_file = secrets.join("webhook-key");
    write_private(&key_file, WEBHOOK_KEY);
    let webhook = hook
        .map(|h| {
            format!(
                "webhook_url = \"{}\"\nwebhook_secret_file = {:?}\n",
                h.url,
                key_file.display().to_string()
            )
        })
        .unwrap_or_default();
    let queue = queue.to_owned();
    world_with(move |t| {
        if !t.contains("name = \"cert-agents\"") {
            return t;
        }
        let t = t.replace("[registration]\n", "[registration]\napproval = \"admin\"\n");
        format!("{t}\n[approval]\n{queue}\n{webhook}")
    })
    .await
}

/// The admin API's approvals listing of contoso.
async fn pending(w: &World) -> Value {
    let (status, body) = w
        .app
        .admin_json(Method::GET, "/tenants/contoso/approvals", None)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Authorize → the approval page → sign in as `user` → held. Returns the held page.
async fn held(w: &World, client: &Client, user: &str) -> String {
    let browser = Browser::new();
    let attempt = authorize_url(&w.app, "contoso", client, "files.read offline_access", user);
    let Landing::Consent(page) = browser.go(&attempt.url, client.prefix()).await else {
        panic!("the approval page is shown first");
    };
    assert!(page.contains("needs an administrator"), "{page}");
    assert!(page.contains("Sign in and ask for approval"), "{page}");
    match browser
        .consent(&w.app.issuer("contoso"), &page, "approve", client.prefix())
        .await
    {
        Landing::Page(403, body) => body,
        other => panic!("held after the sign-in: {other:?}"),
    }
}

/// The reference on a held page.
fn reference_on(page: &str) -> String {
    let start = page.find("REQ-").expect("a reference on the page");
    page[start..start + 12].to_owned()
}

/// The link back to the application on a held page.
fn link_back(page: &str) -> url::Url {
    let start = page.find("href=\"").unwrap() + 6;
    let end = start + page[start..].find('"').unwrap();
    url::Url::parse(&page[start..end].replace("&amp;", "&")).unwrap()
}

type CliRun = std::pin::Pin<Box<dyn std::future::Future<Output = (bool, String, String)>>>;

/// `dcr-shim clients …` through the admin API of `w`'s server, for contoso.
fn cli(w: &World) -> impl Fn(&[&str]) -> CliRun + use<> {
    let url = w.app.admin_base().trim_end_matches("/admin/v1").to_owned();
    move |args: &[&str]| {
        let extra = ["--admin-url", url.as_str(), "--tenant", "contoso"];
        Box::pin(run_cli(args, &extra, Some(ADMIN_TOKEN)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_registered_client_is_held_after_sign_in_then_approved_through_the_cli() {
    let hook = Receiver::start().await;
    let w = world("", Some(&hook)).await;
    let client = Client::register(&w.app, "contoso", json!({"client_name": "Queue Agent", "software_id": "queue-agent", "software_version": "1.2.3"})).await;
    let (_, shown) = w
        .app
        .admin_json(
            Method::GET,
            &format!("/tenants/contoso/clients/{}", client.id),
            None,
        )
        .await;
    assert_eq!(shown["client"]["approval"], "pending", "{shown}");
    assert_eq!(
        pending(&w).await["total"],
        0,
        "registering alone queues nothing"
    );

    // The user signs in, then is told; the client gets access_denied behind the link.
    let page = held(&w, &client, "ann").await;
    let reference = reference_on(&page);
    let back = link_back(&page);
    assert!(back.as_str().starts_with(client.prefix()), "{back}");
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    assert!(
        param(&back, "error_description")
            .unwrap()
            .contains(&reference)
    );
    assert_eq!(param(&back, "iss"), Some(w.app.issuer("contoso")));

    // Nothing at the token endpoint meanwhile.
    let (status, body) = token_request(
        &w.app,
        "contoso",
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", "made-up-code"),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", "v".repeat(43).as_str()),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "unauthorized_client", "{body}");

    // A second user and the first again: one request, two users, three sign-ins.
    assert_eq!(reference_on(&held(&w, &client, "bob").await), reference);
    assert_eq!(reference_on(&held(&w, &client, "ann").await), reference);
    let listed = pending(&w).await;
    assert_eq!(listed["total"], 1, "{listed}");
    let request = &listed["pending"][0];
    assert_eq!(request["reference"], reference.as_str());
    assert_eq!(request["users"], 2);
    assert_eq!(request["requests"], 3);
    assert_eq!(request["first_user"]["subject"], "oid-ann");
    assert_eq!(request["first_user"]["upn"], "ann");
    assert_eq!(request["last_user"]["subject"], "oid-ann");
    assert_eq!(request["first_address"], "127.0.0.1");
    let listed_client = &request["clients"][0];
    assert_eq!(listed_client["client_id"], client.id.as_str());
    assert_eq!(listed_client["claimed_name"], "Queue Agent");
    assert_eq!(listed_client["software_id"], "queue-agent");
    assert_eq!(listed_client["software_version"], "1.2.3");
    assert_eq!(listed_client["redirect_uris"][0], "http://127.0.0.1/cb");
    assert!(request.get("user_digests").is_none());
    assert!(
        request["expires_at"].as_u64().unwrap()
            > request["first_requested_at"].as_u64().unwrap() + 29 * 24 * 3600
    );

    // The webhook was told once, signed.
    let got = hook.wait_for(1).await;
    let note = verify(
        WEBHOOK_KEY,
        &got[0],
        dcr_shim::app::unix_now(),
        &mut HashSet::new(),
    )
    .expect("a valid signature");
    assert_eq!(note["type"], "approval.requested");
    assert_eq!(note["tenant"], "contoso");
    assert_eq!(note["reference"], reference.as_str());
    assert_eq!(note["client"]["claimed_name"], "Queue Agent");
    assert_eq!(note["user"]["upn"], "ann");
    assert!(note["approve"].as_str().unwrap().contains(&reference));

    // Approved through the CLI by its reference; then the login completes.
    let run = cli(&w);
    let (ok, table, err) = run(&["clients", "pending"]).await;
    assert!(
        ok && table.contains(&reference) && table.contains("Queue Agent") && table.contains("ann"),
        "{table}{err}"
    );
    let (ok, said, err) = run(&["clients", "approve", &reference]).await;
    assert!(ok && said.contains(&client.id), "{said}{err}");
    assert_eq!(pending(&w).await["total"], 0);
    let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &client, "ann").await;
    let (status, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    assert_eq!(status, 200, "{tokens}");
    let (ok, list, _) = run(&["clients", "list"]).await;
    assert!(ok && list.contains("approved"), "{list}");
    // A decision that was made is not made twice.
    let (ok, _, err) = run(&["clients", "approve", &reference]).await;
    assert!(!ok && err.contains("no request"), "{err}");
    assert_eq!(hook.received().len(), 1, "one notification per request");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cimd_clients_are_queued_per_host_approved_one_by_one_and_a_denied_host_stays_denied() {
    let w = world("", None).await;
    let doc = |path: &str, name: &str| {
        let url = w.docs.url(path);
        w.docs.set(
            path,
            Canned::json(&json!({
                "client_id": url,
                "client_name": name,
                "redirect_uris": ["http://127.0.0.1/cb"],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
            })),
        );
        Client {
            id: url,
            secret: None,
            redirect_uri: "http://127.0.0.1:49152/cb".into(),
        }
    };
    let a = doc("/a.json", "Agent A");
    let b = doc("/b.json", "Agent B");
    let reference = reference_on(&held(&w, &a, "ann").await);
    assert_eq!(
        reference_on(&held(&w, &b, "bob").await),
        reference,
        "one request per host"
    );
    let listed = pending(&w).await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["pending"][0]["cimd_host"], "localhost");
    assert_eq!(listed["pending"][0]["clients"].as_array().unwrap().len(), 2);
    assert_eq!(
        listed["pending"][0]["clients"][0]["document"]["client_name"],
        "Agent A"
    );

    // A reference that names two clients is not enough to approve one of them.
    let run = cli(&w);
    let (ok, _, err) = run(&["clients", "approve", &reference]).await;
    assert!(!ok && err.contains("several clients"), "{err}");
    let (ok, said, err) = run(&["clients", "approve", &a.id, "--app", "cert-agents"]).await;
    assert!(ok, "{said}{err}");
    let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &a, "ann").await;
    assert_eq!(redeem(&w.app, "contoso", &a, &code, &attempt).await.0, 200);
    let (_, shown) = w
        .app
        .admin_json(
            Method::GET,
            &format!("/tenants/contoso/clients/{}", urlencoding(&a.id)),
            None,
        )
        .await;
    assert_eq!(
        shown["client"]["apps"][crate::login::FILES],
        "cert-agents",
        "{shown}"
    );
    let listed = pending(&w).await;
    assert_eq!(
        listed["pending"][0]["clients"].as_array().unwrap().len(),
        1,
        "B still waits"
    );

    // B denied: refused at once from then on, and so is any other document of its host.
    let (ok, said, err) = run(&["clients", "deny", &b.id]).await;
    assert!(
        ok && said.contains("other documents of localhost"),
        "{said}{err}"
    );
    assert_eq!(pending(&w).await["total"], 0);
    let c = doc("/c.json", "Agent C, asking again");
    for client in [&b, &c] {
        let attempt = authorize_url(&w.app, "contoso", client, "files.read", "ann");
        let Landing::Client(back) = Browser::new().go(&attempt.url, client.prefix()).await else {
            panic!("a loopback client is told at once");
        };
        assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
        assert!(
            param(&back, "error_description")
                .unwrap()
                .contains("denied")
        );
    }
    assert_eq!(
        pending(&w).await["total"],
        0,
        "a denied host cannot ask again"
    );
    // A is still approved: its own decision comes before its host's.
    let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &a, "ann").await;
    assert_eq!(redeem(&w.app, "contoso", &a, &code, &attempt).await.0, 200);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_cimd_host_is_approved() {
    let w = world("", None).await;
    let url = w.docs.url("/agent.json");
    w.docs.set(
        "/agent.json",
        Canned::json(&json!({
            "client_id": url,
            "client_name": "Host Agent",
            "redirect_uris": ["http://127.0.0.1/cb"],
            "token_endpoint_auth_method": "none",
        })),
    );
    let client = Client {
        id: url,
        secret: None,
        redirect_uri: "http://127.0.0.1:49152/cb".into(),
    };
    let reference = reference_on(&held(&w, &client, "ann").await);
    let run = cli(&w);
    let (ok, _, err) = run(&["clients", "approve", "--host", "https://localhost/"]).await;
    assert!(!ok && err.contains("not a host name"), "{err}");
    let (ok, said, err) = run(&["clients", "approve", "--host", "localhost"]).await;
    assert!(
        ok && said.contains("every client of localhost") && said.contains(&reference),
        "{said}{err}"
    );
    assert_eq!(pending(&w).await["total"], 0);
    let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &client, "ann").await;
    assert_eq!(
        redeem(&w.app, "contoso", &client, &code, &attempt).await.0,
        200
    );
    // Every decision is an audit event naming the admin: the admin API answers for it.
    let metrics = w
        .app
        .http
        .get(format!(
            "{}/metrics",
            w.app.admin_base().trim_end_matches("/admin/v1")
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The metrics are the process's: other tests' tenants are named contoso too.
    assert!(
        metric(
            &metrics,
            "dcr_shim_approval_decisions_total{decision=\"host_approved\",tenant=\"contoso\"}"
        ) >= 1.0,
        "{metrics}"
    );
    // Then the whole host denied: the document approved with it is refused from then on.
    let (ok, said, err) = run(&["clients", "deny", "--host", "localhost"]).await;
    assert!(
        ok && said.contains("denied every client of localhost"),
        "{said}{err}"
    );
    let attempt = authorize_url(&w.app, "contoso", &client, "files.read", "ann");
    let Landing::Client(back) = Browser::new().go(&attempt.url, client.prefix()).await else {
        panic!("a loopback client is told");
    };
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_is_capped_and_its_requests_expire() {
    let w = world("max_pending = 2\npending_lifetime = \"1h\"", None).await;
    let first = Client::register(&w.app, "contoso", json!({"client_name": "One"})).await;
    let second = Client::register(&w.app, "contoso", json!({"client_name": "Two"})).await;
    let third = Client::register(&w.app, "contoso", json!({"client_name": "Three"})).await;
    held(&w, &first, "ann").await;
    held(&w, &second, "ann").await;
    let listed = pending(&w).await;
    assert_eq!(
        (listed["total"].as_u64(), listed["max_pending"].as_u64()),
        (Some(2), Some(2))
    );
    let expires = listed["pending"][0]["expires_at"].as_u64().unwrap();
    assert_eq!(
        expires,
        listed["pending"][0]["first_requested_at"].as_u64().unwrap() + 3600
    );

    // Full: a third client's user is told, and new registrations are refused.
    let page = held(&w, &third, "ann").await;
    assert!(
        page.contains("queue") || page.contains("Too many requests"),
        "{page}"
    );
    assert!(!page.contains("REQ-"), "no request was made: {page}");
    let (status, body) = w
        .app
        .register("contoso", &json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    crate::helpers::assert_described(&body, "waiting for an administrator");
    let metrics = w
        .app
        .http
        .get(format!(
            "{}/metrics",
            w.app.admin_base().trim_end_matches("/admin/v1")
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The metrics are the process's: other tests' tenants are named contoso too.
    assert!(metrics.contains("dcr_shim_approval_pending{tenant=\"contoso\"}"));
    assert!(
        metric(
            &metrics,
            "dcr_shim_approval_requests_total{outcome=\"queue_full\",tenant=\"contoso\"}"
        ) >= 1.0
    );
    assert!(
        metric(
            &metrics,
            "dcr_shim_approval_queue_full_total{tenant=\"contoso\"}"
        ) >= 2.0
    );

    // An hour later the requests are gone and there is room again.
    let tenant = w.app.tenant("contoso");
    let approvals = w.app.state().registry().approvals();
    let later = dcr_shim::app::unix_now() + 3601;
    assert!(
        approvals
            .pending(&tenant, 10, later)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!approvals.is_full(&tenant, later).await.unwrap());
    w.stop().await;
}

/// Hostile: a flood of registrations queues nothing (only a directory user's sign-in does),
/// and a flood of documents from one host is one request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_cannot_fill_the_queue() {
    let w = world("max_pending = 5", None).await;
    for i in 0..40 {
        let (status, _) = w
            .app
            .register("contoso", &json!({"client_name": format!("Flood {i}"), "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
            .await;
        assert_eq!(status, 201);
    }
    assert_eq!(pending(&w).await["total"], 0);
    let mut reference = None;
    for i in 0..25 {
        let path = format!("/flood-{i}.json");
        let url = w.docs.url(&path);
        w.docs.set(
            &path,
            Canned::json(&json!({"client_id": url, "client_name": format!("Doc {i}"), "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"})),
        );
        let client = Client {
            id: url,
            secret: None,
            redirect_uri: "http://127.0.0.1:49152/cb".into(),
        };
        let r = reference_on(&held(&w, &client, "mallory").await);
        assert_eq!(reference.get_or_insert(r.clone()), &r);
    }
    let listed = pending(&w).await;
    assert_eq!(listed["total"], 1, "{listed}");
    let request = &listed["pending"][0];
    assert_eq!(request["clients"].as_array().unwrap().len(), 20);
    assert_eq!(request["clients_not_listed"], 5);
    assert_eq!(
        (request["users"].as_u64(), request["requests"].as_u64()),
        (Some(1), Some(25))
    );
    w.stop().await;
}

/// Hostile: a client denied after its login holds a code and a refresh token; neither is
/// worth anything from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_client_cannot_redeem_an_old_code_or_refresh() {
    let w = world("", None).await;
    let client = Client::register(&w.app, "contoso", json!({"client_name": "Turncoat"})).await;
    held(&w, &client, "ann").await;
    let (status, decided) = w
        .app
        .admin_json(
            Method::POST,
            "/tenants/contoso/approvals/approve",
            Some(json!({"client": client.id})),
        )
        .await;
    assert_eq!(status, 200, "{decided}");
    let sign_in = || async { login(&w.app, &Browser::new(), "contoso", &client, "ann").await };
    let (code, attempt) = sign_in().await;
    let (_, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    let (old_code, old_attempt) = sign_in().await;
    let (status, denied) = w
        .app
        .admin_json(
            Method::POST,
            "/tenants/contoso/approvals/deny",
            Some(json!({"client": client.id})),
        )
        .await;
    assert_eq!(status, 200, "{denied}");
    assert_eq!(denied["grants_revoked"], 1, "{denied}");
    let (status, body) = redeem(&w.app, "contoso", &client, &old_code, &old_attempt).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );
    let (status, body) = refresh(
        &w.app,
        "contoso",
        &client,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );
    // Its users are told at once.
    let attempt = authorize_url(&w.app, "contoso", &client, "files.read", "ann");
    let Landing::Client(back) = Browser::new().go(&attempt.url, client.prefix()).await else {
        panic!("a loopback client is told");
    };
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    // It cannot come back by registering again as itself; another name is a new request.
    let again = json!({"client_name": "Turncoat", "redirect_uris": ["http://127.0.0.1/cb"], "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none"});
    let (status, body) = w.app.register("contoso", &again).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_client_metadata");
    crate::helpers::assert_described(&body, "denied");
    let (status, other) = w
        .app
        .register("contoso", &json!({"client_name": "Turncoat 2", "redirect_uris": ["http://127.0.0.1/cb"], "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none"}))
        .await;
    assert_eq!(status, 201);
    // Nor by updating another registration into its look.
    let mut into = again.clone();
    into["client_id"] = other["client_id"].clone();
    let res = w
        .app
        .http
        .put(other["registration_client_uri"].as_str().unwrap())
        .bearer_auth(other["registration_access_token"].as_str().unwrap())
        .json(&into)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    crate::helpers::assert_described(&res.json::<Value>().await.unwrap(), "denied");
    // An administrator who changes their mind lets it register again.
    let (status, _) = w
        .app
        .admin_json(
            Method::POST,
            "/tenants/contoso/approvals/approve",
            Some(json!({"client": client.id})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(w.app.register("contoso", &again).await.0, 201);
    // Bad decisions get clear answers.
    for (body, needle) in [
        (json!({}), "either client"),
        (json!({"client": "x", "host": "y"}), "either client"),
        (json!({"client": client.id, "app": "nope"}), "no app named"),
        (json!({"client": "REQ-22222222"}), "no request"),
    ] {
        let (status, answer) = w
            .app
            .admin_json(
                Method::POST,
                "/tenants/contoso/approvals/approve",
                Some(body),
            )
            .await;
        assert_eq!(status, 400, "{answer}");
        crate::helpers::assert_described(&answer, needle);
    }
    w.stop().await;
}

/// Hostile: the webhook is retried when the receiver fails, and what a forger or a replayer
/// sends is refused by a receiver that checks as docs/approval.md says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_is_retried_and_cannot_be_forged_or_replayed() {
    let hook = Receiver::start().await;
    hook.answers.lock().unwrap().push(503);
    let w = world("", Some(&hook)).await;
    let client = Client::register(&w.app, "contoso", json!({"client_name": "Hooked"})).await;
    let reference = reference_on(&held(&w, &client, "ann").await);
    let got = hook.wait_for(2).await;
    let now = dcr_shim::app::unix_now();
    let mut seen = HashSet::new();
    let first = verify(WEBHOOK_KEY, &got[0], now, &mut seen).unwrap();
    // The retry is the same delivery: a receiver that took the first would skip it.
    assert_eq!(
        verify(WEBHOOK_KEY, &got[1], now, &mut seen),
        Err("replayed delivery")
    );
    assert_eq!(first["reference"], reference.as_str());

    // Replayed at once under another delivery header: the signed body says which it is.
    let mut forged = got[1].clone();
    forged
        .headers
        .insert("x-dcr-shim-delivery".into(), "new-id".into());
    assert_eq!(
        verify(WEBHOOK_KEY, &forged, now, &mut seen),
        Err("the delivery header is not the body's")
    );
    let forged = got[1].clone();
    // Forged: signed with another key, or the genuine body changed.
    assert_eq!(
        verify(
            "another key of 32 characters or more",
            &forged,
            now,
            &mut HashSet::new()
        ),
        Err("bad signature")
    );
    let mut changed = forged.clone();
    changed.body = String::from_utf8(changed.body)
        .unwrap()
        .replace("Hooked", "Trusted")
        .into_bytes();
    assert_eq!(
        verify(WEBHOOK_KEY, &changed, now, &mut HashSet::new()),
        Err("bad signature")
    );
    // Replayed later under a new timestamp: the signature covers the timestamp.
    let mut retimed = forged.clone();
    retimed
        .headers
        .insert("x-dcr-shim-timestamp".into(), (now + 1000).to_string());
    assert_eq!(
        verify(WEBHOOK_KEY, &retimed, now + 1000, &mut HashSet::new()),
        Err("bad signature")
    );
    // Replayed as it was, an hour later: stale.
    assert_eq!(
        verify(WEBHOOK_KEY, &forged, now + 3600, &mut HashSet::new()),
        Err("stale timestamp")
    );
    w.stop().await;
}

/// Hostile: what the client wrote reaches the pages escaped and the chat text defanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_supplied_text_is_escaped_on_pages_and_in_the_webhook() {
    let hook = Receiver::start().await;
    let w = world("", Some(&hook)).await;
    let name = "<img src=x onerror=alert(1)> [Approve me](https://evil.example) <!channel>";
    let client = Client::register(
        &w.app,
        "contoso",
        json!({"client_name": name, "software_id": "<b>x</b>"}),
    )
    .await;
    let page = held(&w, &client, "ann").await;
    assert!(!page.contains("<img") && page.contains("&lt;img"), "{page}");
    let got = hook.wait_for(1).await;
    let note = verify(
        WEBHOOK_KEY,
        &got[0],
        dcr_shim::app::unix_now(),
        &mut HashSet::new(),
    )
    .unwrap();
    assert_eq!(
        note["client"]["claimed_name"], name,
        "the JSON field is the client's own text"
    );
    let text = note["text"].as_str().unwrap();
    for c in ['<', '>', '[', ']', '(', ')', '!', '/', ':'] {
        assert!(!text.contains(c), "{c} in {text}");
    }
    w.stop().await;
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Hostile: an approved client that updates its registration (RFC 7592) into something else
/// waits again; a deleted client's request leaves the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_changes_itself_waits_again_and_a_deleted_one_leaves_the_queue() {
    let w = world("", None).await;
    let (status, registered) = w
        .app
        .register("contoso", &json!({"client_name": "Shapeshifter", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
        .await;
    assert_eq!(status, 201);
    let id = registered["client_id"].as_str().unwrap().to_owned();
    let token = registered["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let uri = registered["registration_client_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = Client {
        id: id.clone(),
        secret: None,
        redirect_uri: "http://127.0.0.1:49152/cb".into(),
    };
    held(&w, &client, "ann").await;
    let (status, _) = w
        .app
        .admin_json(
            Method::POST,
            "/tenants/contoso/approvals/approve",
            Some(json!({"client": id})),
        )
        .await;
    assert_eq!(status, 200);
    // Same name and redirect URIs: still approved.
    let update = |body: Value| {
        let (http, uri, token) = (w.app.http.clone(), uri.clone(), token.clone());
        async move {
            let res = http
                .put(&uri)
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = update(json!({"client_id": id, "client_name": "Shapeshifter", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none", "logo_uri": "https://example.com/logo.png"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        approval_of(&w, &id).await,
        Value::Null,
        "approved (the field is left out)"
    );
    // Another name and a new redirect URI: it waits for an administrator again.
    let (status, body) = update(json!({"client_id": id, "client_name": "Microsoft Teams", "redirect_uris": ["http://127.0.0.1/cb", "https://teams.example/cb"], "token_endpoint_auth_method": "none"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(approval_of(&w, &id).await, "pending");
    let first = reference_on(&held(&w, &client, "ann").await);
    // Waiting, it changes again: the request showed what it was, so it goes; the next
    // sign-in asks anew, with what it is now.
    let (status, body) = update(json!({"client_id": id, "client_name": "Microsoft Teams 2", "redirect_uris": ["http://127.0.0.1/cb", "https://teams.example/cb"], "token_endpoint_auth_method": "none"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(pending(&w).await["total"], 0, "the stale request is gone");
    let reference = reference_on(&held(&w, &client, "ann").await);
    assert_ne!(reference, first);
    assert_eq!(
        pending(&w).await["pending"][0]["clients"][0]["claimed_name"],
        "Microsoft Teams 2"
    );
    // It deletes itself: its request stays, counted against its user, until it is decided.
    let res = w
        .app
        .http
        .delete(&uri)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(pending(&w).await["total"], 1);
    let (status, answer) = w
        .app
        .admin_json(
            Method::POST,
            "/tenants/contoso/approvals/approve",
            Some(json!({"client": reference})),
        )
        .await;
    assert_eq!(
        (status, answer["decision"].as_str()),
        (200, Some("removed")),
        "{answer}"
    );
    assert_eq!(pending(&w).await["total"], 0);
    w.stop().await;
}

/// Hostile: one user cannot fill the queue for everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_may_have_only_so_many_requests_waiting() {
    let w = world("", None).await;
    for i in 0..10 {
        let c = Client::register(
            &w.app,
            "contoso",
            json!({"client_name": format!("Mine {i}")}),
        )
        .await;
        assert!(held(&w, &c, "mallory").await.contains("REQ-"));
    }
    let eleventh = Client::register(&w.app, "contoso", json!({"client_name": "One more"})).await;
    let page = held(&w, &eleventh, "mallory").await;
    assert!(
        !page.contains("REQ-") && page.contains("10 other requests waiting"),
        "{page}"
    );
    // Another user still can.
    assert!(held(&w, &eleventh, "ann").await.contains("REQ-"));
    assert_eq!(pending(&w).await["total"], 11);
    w.stop().await;
}

/// Decisions name a document client as it sends its id; other spellings are refused rather
/// than recorded where they would never match, and a host with a trailing dot is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_name_document_clients_exactly() {
    let w = world("", None).await;
    let url = w.docs.url("/exact.json");
    for spelling in [
        url.replace("https://localhost", "https://LOCALHOST"),
        url.replace("/exact.json", "/./exact.json"),
    ] {
        let (status, answer) = w
            .app
            .admin_json(
                Method::POST,
                "/tenants/contoso/approvals/deny",
                Some(json!({"client": spelling})),
            )
            .await;
        assert_eq!(status, 400, "{spelling}: {answer}");
        crate::helpers::assert_described(&answer, "exactly as the client sends it");
    }
    let dotted = url.replace("https://localhost", "https://localhost.");
    let attempt = authorize_url(
        &w.app,
        "contoso",
        &Client {
            id: dotted,
            secret: None,
            redirect_uri: "http://127.0.0.1:49152/cb".into(),
        },
        "files.read",
        "ann",
    );
    let Landing::Page(400, page) = Browser::new()
        .go(&attempt.url, "http://127.0.0.1:49152/")
        .await
    else {
        panic!("refused on a page");
    };
    assert!(page.contains("ends with a dot"), "{page}");
    w.stop().await;
}

/// A client's `approval` as the admin API shows it (absent when approved).
async fn approval_of(w: &World, id: &str) -> Value {
    w.app
        .admin_json(Method::GET, &format!("/tenants/contoso/clients/{id}"), None)
        .await
        .1["client"]["approval"]
        .clone()
}

/// The value of one series in a Prometheus text exposition.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}
