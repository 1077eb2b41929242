//! Scale: many registered clients across 10 tenants. Reports the data directory size, resident
//! memory, registration and `/authorize` lookup latency at 1 k versus N clients, start-up time
//! with N clients, and the time for the sweeper to expire 100 k clients.
//!
//!   cargo bench --bench scale                       # N = 1,000,000
//!   cargo bench --bench scale -- --clients 200000
//!   cargo bench --bench scale -- --smoke            # N = 2,000, 1,000 expiring
//!
//! Clients are written through the store's typed layer (the same durable insert the
//! registration endpoint uses) by 64 concurrent tasks; latencies are measured over HTTP.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dcr_shim::app::{Running, start_on, unix_now};
use dcr_shim::config::Settings;
use dcr_shim::config::server::{DEFAULT_UPSTREAM_TIMEOUT, parse_public_url};
use dcr_shim::domain::ClientRecord;
use serde_json::json;

const TENANTS: usize = 10;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
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

async fn start(data: &std::path::Path, tenants: &std::path::Path, port: u16) -> Running {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = Settings {
        listen: addr,
        public_url: parse_public_url(&format!("http://{addr}")).unwrap(),
        data_dir: data.to_owned(),
        tenants_dir: tenants.to_owned(),
        secret_file: None,
        previous_secret_file: None,
        workers: Some(2),
        upstream_timeout: DEFAULT_UPSTREAM_TIMEOUT,
        dev_idp_any_interface: false,
    };
    start_on(settings, listener).await.unwrap()
}

/// Writes `count` clients spread over the tenants, 64 writers at a time.
async fn populate(running: &Running, from: usize, count: usize, expires_in: u64) {
    let template: ClientRecord = {
        let tenant = running.state.tenant("t0").unwrap();
        let body = json!({"client_name": "scale", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"});
        running
            .state
            .registry
            .register(tenant, &body, unix_now())
            .await
            .unwrap()
            .record
    };
    let template = Arc::new(template);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(from));
    let end = from + count;
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (records, template, next) = (
                running.state.records.clone(),
                template.clone(),
                next.clone(),
            );
            let tenants: Vec<_> = running.state.tenants.iter().map(|t| t.id.clone()).collect();
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= end {
                        return;
                    }
                    let mut c = (*template).clone();
                    c.client_id =
                        format!("{:08x}-scale-{i:010}", i.wrapping_mul(2_654_435_761) as u32);
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
}

/// p50/p99 of registrations and of `/authorize` lookups of existing clients, over HTTP.
async fn latencies(
    base: &str,
    existing: usize,
    samples: usize,
) -> (Duration, Duration, Duration, Duration) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut reg = Vec::new();
    for i in 0..samples {
        let t = Instant::now();
        let res = http
            .post(format!("{base}/t{}/register", i % TENANTS))
            .json(&json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        reg.push(t.elapsed());
    }
    let mut look = Vec::new();
    for k in 0..samples {
        let i = (k * 7919) % existing;
        let id = format!("{:08x}-scale-{i:010}", i.wrapping_mul(2_654_435_761) as u32);
        let url = format!(
            "{base}/t{}/authorize?response_type=code&client_id={id}&redirect_uri=http://127.0.0.1:5000/cb&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=s",
            i % TENANTS
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
    let samples = if smoke { 50 } else { 1_000 };
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
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
    let running = start(data.path(), tenants.path(), port).await;
    let base = format!("http://127.0.0.1:{port}");
    let year = 365 * 24 * 3600;

    populate(&running, 0, 1_000, year).await;
    let small = latencies(&base, 1_000, samples).await;
    let t = Instant::now();
    populate(&running, 1_000, n - 1_000, year).await;
    let fill = t.elapsed();
    let large = latencies(&base, n, samples).await;
    let rss_running = rss_mib();
    running.stop().await;
    let size = dir_size(data.path());

    let t = Instant::now();
    let running = start(data.path(), tenants.path(), port).await;
    let startup = t.elapsed();
    let rss_restarted = rss_mib();

    // Expiry: clients that expire in one second, then the sweeper's batches.
    populate(&running, n, expiring, 1).await;
    let later = unix_now() + 2;
    let t = Instant::now();
    let mut swept = 0;
    loop {
        let k = running
            .state
            .records
            .backend()
            .sweep_expired(later, 10_000)
            .await
            .unwrap();
        swept += k;
        if k < 10_000 {
            break;
        }
    }
    let sweep = t.elapsed();
    running.stop().await;

    println!(
        "{n} clients across {TENANTS} tenants; written by 64 durable writers in {:.1} s ({:.0}/s)\n",
        fill.as_secs_f64(),
        (n - 1_000) as f64 / fill.as_secs_f64()
    );
    println!("| measurement | at 1 k clients | at {n} clients | ratio |");
    println!("|---|---|---|---|");
    let ratio = |a: Duration, b: Duration| format!("{:.2}×", b.as_secs_f64() / a.as_secs_f64());
    println!(
        "| registration p50 | {} | {} | {} |",
        ms(small.0),
        ms(large.0),
        ratio(small.0, large.0)
    );
    println!(
        "| registration p99 | {} | {} | {} |",
        ms(small.1),
        ms(large.1),
        ratio(small.1, large.1)
    );
    println!(
        "| /authorize lookup p50 | {} | {} | {} |",
        ms(small.2),
        ms(large.2),
        ratio(small.2, large.2)
    );
    println!(
        "| /authorize lookup p99 | {} | {} | {} |",
        ms(small.3),
        ms(large.3),
        ratio(small.3, large.3)
    );
    println!();
    println!("| measurement | value |");
    println!("|---|---|");
    println!(
        "| data directory | {:.1} MiB |",
        size as f64 / 1024.0 / 1024.0
    );
    println!(
        "| resident memory, serving at {n} clients (includes the load generator) | {rss_running:.0} MiB |"
    );
    println!(
        "| start-up with {n} clients (store open to serving) | {} |",
        ms(startup)
    );
    println!("| resident memory right after start-up | {rss_restarted:.0} MiB |");
    println!(
        "| sweeper: expire {swept} clients | {:.2} s |",
        sweep.as_secs_f64()
    );
}
