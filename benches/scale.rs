//! Scale: many registered clients across 10 tenants. Reports the data directory size, resident
//! memory, registration and `/authorize` lookup latency at 1 k versus N clients, start-up time
//! with N clients, the time for the sweeper to expire 100 k clients, and the time to revoke one
//! user's grants among N grants (refresh families) of one tenant, through the admin API, with
//! the grants indexed by user and, as a store written by an older release is until
//! `store reindex`, without.
//!
//!   cargo bench --bench scale                       # N = 1,000,000
//!   cargo bench --bench scale -- --clients 200000
//!   cargo bench --bench scale -- --smoke            # N = 2,000, 1,000 expiring
//!   cargo bench --bench scale -- --postgres postgres://user@host:port/db
//!                                 # the same on PostgreSQL, in a new database made there (and
//!                                 # dropped at the end); the role must be allowed to create one
//!
//! Clients are written in process through the store's typed layer (the same durable insert the
//! registration endpoint uses) by 64 concurrent tasks; latencies, start-up and resident memory
//! are measured on the real `dcr-shim` binary serving that data directory (or database).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dcr_shim::app::{Running, start_on, unix_now};
use dcr_shim::config::Settings;
use dcr_shim::config::server::{StoreSpec, parse_public_url};
use dcr_shim::domain::ClientRecord;
use dcr_shim::store::{Durability, Entry, GroupWrite, SledStore, Store, open_spec};
use serde_json::json;

const TENANTS: usize = 10;

fn rss_mib_of(status_file: &str) -> f64 {
    let status = std::fs::read_to_string(status_file).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn pct(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// Where the clients are kept: sled in the data directory, or a PostgreSQL database (with the
/// server secret replicas share).
struct Backend {
    postgres: Option<(String, std::path::PathBuf)>,
}

impl Backend {
    /// `serve`'s options for this backend.
    fn args(&self) -> Vec<std::ffi::OsString> {
        match &self.postgres {
            None => Vec::new(),
            Some((url, secret)) => vec![
                "--store".into(),
                url.into(),
                "--secret-file".into(),
                secret.into(),
            ],
        }
    }

    /// After a fill: on PostgreSQL, the vacuum and statistics that autovacuum would have
    /// made long before a deployment reached this many clients, and a checkpoint of the
    /// gigabyte of WAL a fill of minutes leaves behind, so that the latencies measured next
    /// are those of the steady state, not of autovacuum and the checkpointer catching up with
    /// the fill. sled has no such step.
    fn settle(&self) {
        if let Some((url, _)) = &self.postgres {
            psql(url, "VACUUM ANALYZE dcr_records");
            psql(url, "CHECKPOINT");
        }
    }

    /// Bytes the clients take: the data directory, or the database.
    fn size(&self, data: &std::path::Path) -> u64 {
        match &self.postgres {
            None => dir_size(data),
            Some((url, _)) => psql(url, "SELECT pg_database_size(current_database())")
                .trim()
                .parse()
                .unwrap(),
        }
    }
}

/// Runs one statement with `psql` and returns what it printed.
fn psql(url: &str, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([url, "-qAtc", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn start(
    data: &std::path::Path,
    tenants: &std::path::Path,
    port: u16,
    backend: &Backend,
) -> Running {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut settings = Settings::new(
        addr,
        parse_public_url(&format!("http://{addr}")).unwrap(),
        data.to_owned(),
        tenants.to_owned(),
    );
    settings.workers = Some(2);
    if let Some((url, secret)) = &backend.postgres {
        settings.store = Some(StoreSpec::new(url.clone()));
        settings.secret = Some(dcr_shim::config::server::SecretSource::File(secret.clone()));
    }
    start_on(settings, listener).await.unwrap()
}

/// A client written by `populate`: its tenant's index and its id.
type Written = (usize, String);

/// Writes `count` clients spread over the tenants, 64 writers at a time, with the ids
/// registration gives. Returns every `keep_every`-th of them, for lookups. On PostgreSQL the
/// writes are deferred (each its own commit, none waiting for the disk) and flushed once at
/// the end: the same rows, written in a fraction of the time 1 M durable commits take.
async fn populate(
    running: &Running,
    backend: &Backend,
    from: usize,
    count: usize,
    expires_in: u64,
    keep_every: usize,
) -> Vec<Written> {
    let records = match backend.postgres {
        None => running.state.records().clone(),
        Some(_) => running.state.records().deferred(),
    };
    let template: ClientRecord = {
        let tenant = running.state.tenant("t0").unwrap();
        let body = json!({"client_name": "scale", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"});
        running
            .state
            .registry()
            .register(
                &tenant,
                &body,
                &dcr_shim::oauth::context::RequestCtx::operator(unix_now()),
            )
            .await
            .unwrap()
            .record
    };
    let template = Arc::new(template);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(from));
    let end = from + count;
    let kept = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (records, template, next, kept) = (
                records.clone(),
                template.clone(),
                next.clone(),
                kept.clone(),
            );
            let tenants: Vec<_> = running
                .state
                .tenants()
                .iter()
                .map(|t| t.id.clone())
                .collect();
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= end {
                        return;
                    }
                    let mut c = (*template).clone();
                    c.client_id = dcr_shim::domain::ClientId::generate();
                    if i % keep_every == 0 {
                        kept.lock()
                            .unwrap()
                            .push((i % TENANTS, c.client_id.to_string()));
                    }
                    let now = unix_now();
                    records
                        .insert_new(
                            &tenants[i % TENANTS],
                            &c.client_id.clone(),
                            &c,
                            Some(now + expires_in),
                            now,
                        )
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    records.flush().await.unwrap();
    std::mem::take(&mut *kept.lock().unwrap())
}

/// p50/p99 of registrations and of `/authorize` lookups of existing clients, over HTTP.
async fn latencies(
    base: &str,
    existing: &[Written],
    samples: usize,
) -> (Duration, Duration, Duration, Duration) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The first requests pay for the connection and a cold start; they are not counted.
    let warm_up = samples / 10;
    let mut reg = Vec::new();
    for i in 0..samples + warm_up {
        let t = Instant::now();
        let res = http
            .post(format!("{base}/t{}/register", i % TENANTS))
            .json(&json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        if i >= warm_up {
            reg.push(t.elapsed());
        }
    }
    if std::env::var_os("SCALE_DEBUG").is_some() {
        let mut worst: Vec<(usize, Duration)> = reg.iter().copied().enumerate().collect();
        worst.sort_by_key(|w| std::cmp::Reverse(w.1));
        eprintln!("slowest registrations (index, time): {:?}", &worst[..15]);
    }
    let mut look = Vec::new();
    for k in 0..samples {
        let (tenant, id) = &existing[(k * 7919) % existing.len()];
        let url = format!(
            "{base}/t{tenant}/authorize?response_type=code&client_id={id}&redirect_uri=http://127.0.0.1:5000/cb&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=s"
        );
        let t = Instant::now();
        let res = http.get(url).send().await.unwrap();
        assert_eq!(res.status(), 200, "consent page for an existing client");
        let _ = res.bytes().await;
        look.push(t.elapsed());
    }
    (
        pct(&mut reg, 0.5),
        pct(&mut reg, 0.99),
        pct(&mut look, 0.5),
        pct(&mut look, 0.99),
    )
}

/// The real server binary on the same data, so that start-up and resident memory are its own.
struct Server {
    child: std::process::Child,
    started_in: Duration,
}

impl Server {
    async fn spawn(
        data: &std::path::Path,
        tenants: &std::path::Path,
        port: u16,
        backend: &Backend,
    ) -> Server {
        Self::spawn_with(data, tenants, port, backend, &[]).await
    }

    /// `spawn` with `extra` options for `serve`.
    async fn spawn_with(
        data: &std::path::Path,
        tenants: &std::path::Path,
        port: u16,
        backend: &Backend,
        extra: &[std::ffi::OsString],
    ) -> Server {
        let started = Instant::now();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_dcr-shim"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--public-url", &format!("http://127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data)
            .arg("--tenants")
            .arg(tenants)
            .args(["--workers", "2"])
            .args(backend.args())
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start dcr-shim");
        let http = reqwest::Client::new();
        let health = format!("http://127.0.0.1:{port}/healthz");
        loop {
            if let Ok(res) = http.get(&health).send().await
                && res.status().is_success()
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "dcr-shim did not start"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Server {
            child,
            started_in: started.elapsed(),
        }
    }

    fn rss_mib(&self) -> f64 {
        rss_mib_of(&format!("/proc/{}/status", self.child.id()))
    }

    fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Writes `count` refresh families of tenant t0 straight into the store, as an older release
/// did (no index entries): ten per crowd user, and three for each of `targets` target users.
async fn write_families(store: &dyn Store, count: usize, targets: usize) {
    let now = unix_now();
    let mut writes = Vec::new();
    let family = |subject: String| {
        serde_json::to_vec(&json!({"client_id": "scale-client", "revoked": false, "created_at": now, "subject": subject}))
            .unwrap()
    };
    let total = count + 3 * targets;
    for i in 0..total {
        let subject = if i < count {
            format!("crowd-{}", i % (count / 10).max(1))
        } else {
            format!("target-{}", (i - count) / 3)
        };
        writes.push(GroupWrite {
            key: format!("t0/family/f{i:08}").into_bytes(),
            expected_revision: None,
            entry: Entry {
                schema: 1,
                revision: 1,
                expires_at: Some(now + 24 * 3600),
                payload: family(subject),
            },
        });
        if writes.len() == 5000 || i + 1 == total {
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

/// The time of each `POST …/grants/revoke` for target users `from..to`, on the admin API at
/// `admin`, asserting that each revokes the user's three grants.
async fn revocations(admin: &str, token: &str, from: usize, to: usize) -> Vec<Duration> {
    let http = reqwest::Client::new();
    let mut times = Vec::new();
    for k in from..to {
        let t = Instant::now();
        let res = http
            .post(format!("{admin}/admin/v1/tenants/t0/grants/revoke"))
            .bearer_auth(token)
            .json(&json!({"user": format!("target-{k}")}))
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = res.json().await.unwrap();
        times.push(t.elapsed());
        assert_eq!(body["revoked"], 3, "{body}");
    }
    times
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let n: usize = args
        .iter()
        .position(|a| a == "--clients")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 2_000 } else { 1_000_000 });
    let expiring = if smoke { 1_000 } else { 100_000 };
    // A p99 of 10,000 is the 100th slowest: a few hiccups of shared cores move it less than
    // they moved the 30th slowest of 3,000.
    let samples = if smoke { 50 } else { 10_000 };
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    let server_url = args
        .iter()
        .position(|a| a == "--postgres")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let backend = Backend {
        postgres: server_url.as_ref().map(|server| {
            let db = format!("scale_{}", std::process::id());
            psql(server, &format!("CREATE DATABASE {db}"));
            let mut url = url::Url::parse(server).unwrap();
            url.set_path(&format!("/{db}"));
            let secret = data.path().join("server-secret");
            std::fs::write(&secret, "a".repeat(64)).unwrap();
            std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            (url.to_string(), secret)
        }),
    };
    for t in 0..TENANTS {
        std::fs::write(
            tenants.path().join(format!("t{t}.toml")),
            "upstream = { kind = \"dev\" }\n[[resources]]\nuri = \"https://mcp.example/mcp\"\nscopes = [{ name = \"mcp\", upstream = \"mcp\" }]\n[registration]\nregistrations_per_minute = 1000000\n",
        )
        .unwrap();
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let year = 365 * 24 * 3600;

    // Clients are written in process (fast, through the same durable insert registration
    // uses); everything measured over HTTP is measured on the real binary.
    let running = start(data.path(), tenants.path(), port, &backend).await;
    let mut existing = populate(&running, &backend, 0, 1_000, year, 1).await;
    running.stop().await;
    backend.settle();
    let server = Server::spawn(data.path(), tenants.path(), port, &backend).await;
    let small = latencies(&base, &existing, samples).await;
    server.stop();

    let running = start(data.path(), tenants.path(), port, &backend).await;
    let t = Instant::now();
    existing.extend(
        populate(
            &running,
            &backend,
            1_000,
            n - 1_000,
            year,
            (n / 1_000).max(1),
        )
        .await,
    );
    let fill = t.elapsed();
    running.stop().await;
    backend.settle();
    let size = backend.size(data.path());

    let server = Server::spawn(data.path(), tenants.path(), port, &backend).await;
    let startup = server.started_in;
    let rss_started = server.rss_mib();
    let large = latencies(&base, &existing, samples).await;
    let rss_serving = server.rss_mib();
    server.stop();
    let server = Server::spawn(data.path(), tenants.path(), port, &backend).await;
    let startup_again = server.started_in;
    server.stop();

    // Expiry: clients that expire in one second, then one full pass of the sweeper over the
    // store opened on its own (the server's own sweeper would share the pass).
    let running = start(data.path(), tenants.path(), port, &backend).await;
    populate(&running, &backend, n, expiring, 1, usize::MAX).await;
    running.stop().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let store: Arc<dyn Store> = match &backend.postgres {
        None => Arc::new(SledStore::open(&data.path().join("store")).await.unwrap()),
        Some((url, _)) => open_spec(url, None).await.unwrap(),
    };
    let t = Instant::now();
    let (mut swept, mut examined) = (0, 0);
    loop {
        let sweep = store.sweep_expired(unix_now(), 10_000).await.unwrap();
        swept += sweep.removed;
        examined += sweep.examined;
        if sweep.pass_complete {
            break;
        }
    }
    let sweep = t.elapsed();

    // Grants: `families` refresh families of one tenant, written as an older release wrote
    // them; revoking one user's grants reads every family until the store is indexed, then
    // only the user's.
    let families = if smoke { 2_000 } else { n };
    let (unindexed_samples, indexed_samples) = if smoke { (2, 20) } else { (3, 200) };
    write_families(
        store.as_ref(),
        families,
        unindexed_samples + indexed_samples,
    )
    .await;
    store
        .remove(b"_server/families-indexed", Durability::OnReturn)
        .await
        .unwrap();
    drop(store);
    backend.settle();
    let token = "scale-bench-admin-token-0123456789abcdef";
    let token_file = data.path().join("admin-tokens");
    std::fs::write(&token_file, format!("bench {token}\n")).unwrap();
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let admin_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let admin = format!("http://127.0.0.1:{admin_port}");
    let admin_args: Vec<std::ffi::OsString> = vec![
        "--admin-listen".into(),
        format!("127.0.0.1:{admin_port}").into(),
        "--admin-token-file".into(),
        token_file.clone().into(),
    ];
    // A sled store is indexed by the server at its start; the unindexed walk is measured on
    // PostgreSQL, whose servers wait for `store reindex`, and on sled before that start, in
    // process.
    let mut unindexed = if let Some((url, _)) = &backend.postgres {
        let server =
            Server::spawn_with(data.path(), tenants.path(), port, &backend, &admin_args).await;
        let times = revocations(&admin, token, 0, unindexed_samples).await;
        server.stop();
        let store = open_spec(url, None).await.unwrap();
        let t = Instant::now();
        dcr_shim::oauth::family_index::reindex(store.as_ref(), unix_now())
            .await
            .unwrap();
        eprintln!(
            "store reindex of {families} grants: {:.1} s",
            t.elapsed().as_secs_f64()
        );
        times
    } else {
        let store = SledStore::open(&data.path().join("store")).await.unwrap();
        let mut times = Vec::new();
        for k in 0..unindexed_samples {
            let t = Instant::now();
            let mut found = 0;
            let mut after = b"t0/family/".to_vec();
            loop {
                let page = store.scan_after(&after, unix_now(), 1000).await.unwrap();
                let Some((last, _)) = page.last() else { break };
                after = last.clone();
                let mut left = false;
                for (key, entry) in &page {
                    if !key.starts_with(b"t0/family/") {
                        left = true;
                        break;
                    }
                    let f: serde_json::Value = serde_json::from_slice(&entry.payload).unwrap();
                    found += usize::from(f["subject"] == format!("target-{k}"));
                }
                if left || page.len() < 1000 {
                    break;
                }
            }
            assert_eq!(found, 3);
            times.push(t.elapsed());
        }
        times
    };
    let server = Server::spawn_with(data.path(), tenants.path(), port, &backend, &admin_args).await;
    let mut indexed = revocations(
        &admin,
        token,
        unindexed_samples,
        unindexed_samples + indexed_samples,
    )
    .await;
    server.stop();
    if let (Some(server), Some((url, _))) = (&server_url, &backend.postgres) {
        let db = url::Url::parse(url)
            .unwrap()
            .path()
            .trim_start_matches('/')
            .to_owned();
        psql(server, &format!("DROP DATABASE {db} WITH (FORCE)"));
    }
    let (place, written_by) = match &backend.postgres {
        None => ("data directory", "durable writers"),
        Some(_) => (
            "database (pg_database_size)",
            "writers (deferred commits, one flush)",
        ),
    };

    println!(
        "{n} clients across {TENANTS} tenants; written by 64 {written_by} in {:.1} s ({:.0}/s)\n",
        fill.as_secs_f64(),
        (n - 1_000) as f64 / fill.as_secs_f64()
    );
    println!("| measurement | at 1 k clients | at {n} clients | ratio |");
    println!("|---|---|---|---|");
    let ratio = |a: Duration, b: Duration| format!("{:.2}×", b.as_secs_f64() / a.as_secs_f64());
    for (name, a, b) in [
        ("registration p50", small.0, large.0),
        ("registration p99", small.1, large.1),
        ("/authorize lookup p50", small.2, large.2),
        ("/authorize lookup p99", small.3, large.3),
    ] {
        println!("| {name} | {} | {} | {} |", ms(a), ms(b), ratio(a, b));
    }
    println!();
    println!("| measurement (the dcr-shim process) | value |");
    println!("|---|---|");
    println!("| {place} | {:.0} MiB |", size as f64 / 1024.0 / 1024.0);
    if backend.postgres.is_none() {
        println!(
            "| start-up with {n} clients after a graceful stop (exec to /healthz answering) | {} |",
            ms(startup_again)
        );
        println!(
            "| start-up with {n} clients written since the last start, without a graceful stop (log replay, as after a crash) | {} |",
            ms(startup)
        );
    } else {
        println!(
            "| start-up with {n} clients (exec to /healthz answering; first / second start) | {} / {} |",
            ms(startup),
            ms(startup_again)
        );
    }
    println!("| resident memory right after that start-up | {rss_started:.0} MiB |");
    println!("| resident memory after serving the latency samples | {rss_serving:.0} MiB |");
    println!(
        "| revoke one user's grants among {families} grants of a tenant, indexed (p50 / p99 of {indexed_samples}, admin API) | {} / {} |",
        ms(pct(&mut indexed, 0.5)),
        ms(pct(&mut indexed, 0.99))
    );
    println!(
        "| the same unindexed, as a store an older release wrote until `store reindex` (median of {unindexed_samples}; {}) | {} |",
        if backend.postgres.is_some() {
            "admin API"
        } else {
            "the walk alone, in process"
        },
        ms(pct(&mut unindexed, 0.5))
    );
    println!(
        "| sweeper: one pass over {examined} records, expiring {swept} clients | {:.2} s |",
        sweep.as_secs_f64()
    );

    let size_mib = size as f64 / 1024.0 / 1024.0;
    let rss = rss_started.max(rss_serving);
    let times = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
    println!();
    println!("| target at {n} clients | measured | met |");
    println!("|---|---|---|");
    for (target, measured, met) in [
        (
            "p99 registration ≤ 2× its value at 1 k",
            format!("{:.2}×", times(small.1, large.1)),
            times(small.1, large.1) <= 2.0,
        ),
        (
            "p99 `/authorize` lookup ≤ 2× its value at 1 k",
            format!("{:.2}×", times(small.3, large.3)),
            times(small.3, large.3) <= 2.0,
        ),
        (
            "resident memory ≤ 256 MiB",
            format!("{rss:.0} MiB"),
            rss <= 256.0,
        ),
        (
            "data directory ≤ 1 GiB",
            format!("{size_mib:.0} MiB"),
            size_mib <= 1024.0,
        ),
        (
            if backend.postgres.is_none() {
                "start-up ≤ 2 s (after a graceful stop / after a crash)"
            } else {
                "start-up ≤ 2 s (second / first start)"
            },
            format!("{} / {}", ms(startup_again), ms(startup)),
            startup_again.max(startup) <= Duration::from_secs(2),
        ),
    ]
    .into_iter()
    // The data directory's bound is sled's; on PostgreSQL the records are the database's.
    .filter(|(target, _, _)| backend.postgres.is_none() || !target.starts_with("data directory"))
    {
        println!(
            "| {target} | {measured} | {} |",
            if met { "yes" } else { "**no**" }
        );
    }
}
