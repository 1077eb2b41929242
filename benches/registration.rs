//! Registration throughput (every 201 durable), CIMD resolution latency, cold and cached, and
//! what a flood of refused registrations from distinct forwarded addresses writes to the log
//! and the audit file (bytes per refused request; the flood runs against the real binary, whose
//! JSON log and audit file are measured).
//!
//!   cargo bench --bench registration            # full run
//!   cargo bench --bench registration -- --smoke # a few iterations, to keep it from rotting
//!
//! The shim runs in this process (2 HTTP workers) with a fresh data directory; the load comes
//! from this process too, over loopback, 32 connections. Figures are printed as Markdown.

#[path = "../tests/it/tls_server.rs"]
#[allow(dead_code)]
mod tls_server;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dcr_shim::config::Settings;
use dcr_shim::config::server::parse_public_url;
use serde_json::json;
use tls_server::{Canned, DocServer};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let (registrations, concurrency, cimd_cold, cimd_cached) = if smoke {
        (64, 8, 4, 50)
    } else {
        (20_000, 32, 200, 20_000)
    };
    let flood = if smoke { 500 } else { 100_000 };

    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    let docs_dir = tempfile::tempdir().unwrap();
    let docs = DocServer::start(docs_dir.path()).await;
    std::fs::write(
        tenants.path().join("bench.toml"),
        format!(
            r#"upstream = {{ kind = "dev" }}
[[resources]]
uri = "https://mcp.example.com/mcp"
scopes = [{{ name = "mcp", upstream = "mcp" }}]
[registration]
registrations_per_minute = 1000000
[dev]
cimd_allow_loopback = true
cimd_extra_ca_file = {:?}
"#,
            docs.ca_file.display().to_string()
        ),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut settings = Settings::new(
        addr,
        parse_public_url(&format!("http://{addr}")).unwrap(),
        data.path().to_owned(),
        tenants.path().to_owned(),
    );
    settings.workers = Some(2);
    let running = dcr_shim::app::start_on(settings, listener).await.unwrap();

    // Registration throughput.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let url = Arc::new(format!("http://{addr}/bench/register"));
    let per_task = registrations / concurrency;
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let t = Instant::now();
                    let res = http
                        .post(url.as_str())
                        .json(&json!({"client_name": "bench", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 201);
                    let _ = res.bytes().await;
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let total = latencies.len();

    // CIMD: cold (a new document each time: fetch over TLS + validate) and cached.
    let tenant = running.state.tenant("bench").unwrap().clone();
    let registry = &running.state.registry();
    let now = dcr_shim::app::unix_now();
    let mut cold = Vec::new();
    // Charged to no address: the bench measures resolution, not the per-address budget.
    let operator = dcr_shim::oauth::context::RequestCtx::operator(now);
    for i in 0..cimd_cold {
        let path = format!("/agent-{i}.json");
        let client_id = docs.url(&path);
        docs.set(
            &path,
            Canned::json(&json!({"client_id": client_id, "client_name": "Agent", "redirect_uris": ["http://localhost/callback"]})),
        );
        let t = Instant::now();
        registry
            .find(&tenant, &client_id, &operator)
            .await
            .unwrap()
            .unwrap();
        cold.push(t.elapsed());
    }
    let cached_id = docs.url("/agent-0.json");
    let mut cached = Vec::new();
    for _ in 0..cimd_cached {
        let t = Instant::now();
        registry
            .find(&tenant, &cached_id, &operator)
            .await
            .unwrap()
            .unwrap();
        cached.push(t.elapsed());
    }
    cold.sort();
    cached.sort();
    running.stop().await;

    println!("| measurement | value |");
    println!("|---|---|");
    println!(
        "| registrations (durable 201s), {concurrency} connections | {total} in {:.2} s = **{:.0}/s** |",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    println!(
        "| registration latency p50 / p99 | {} / {} |",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99))
    );
    println!(
        "| CIMD resolution, cold (TLS fetch + validate), p50 / p99 of {} | {} / {} |",
        cold.len(),
        ms(percentile(&cold, 0.5)),
        ms(percentile(&cold, 0.99))
    );
    println!(
        "| CIMD resolution, cached, p50 / p99 of {} | {} / {} |",
        cached.len(),
        ms(percentile(&cached, 0.5)),
        ms(percentile(&cached, 0.99))
    );
    let flooded = refusal_flood(flood, concurrency).await;
    println!(
        "| a flood of {} refused registrations (429) from as many forwarded addresses, in {:.1} s: log bytes per refused request (JSON log at info) | {:.1} ({} bytes in all) |",
        flooded.refused,
        flooded.seconds,
        flooded.log_bytes as f64 / flooded.refused as f64,
        flooded.log_bytes
    );
    println!(
        "| the same flood: audit file bytes per refused request | {:.1} ({} bytes in all; the refusals it counts: {}) |",
        flooded.audit_bytes as f64 / flooded.refused as f64,
        flooded.audit_bytes,
        flooded.audit_counted
    );
}

/// What a flood wrote.
struct Flooded {
    refused: u64,
    seconds: f64,
    log_bytes: u64,
    audit_bytes: u64,
    /// Refusals the audit file accounts for: full events plus the counts of its summaries.
    audit_counted: u64,
}

/// `n` registrations from distinct forwarded addresses at a tenant whose ceiling is 5 a minute,
/// against the real binary behind a trusted proxy (this process); what it wrote to its log and
/// audit file, read after a graceful stop (which writes the last counts).
async fn refusal_flood(n: u32, concurrency: usize) -> Flooded {
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    std::fs::write(
        tenants.path().join("flood.toml"),
        "upstream = { kind = \"dev\" }\n[[resources]]\nuri = \"https://mcp.example.com/mcp\"\nscopes = [{ name = \"mcp\", upstream = \"mcp\" }]\n[registration]\nregistrations_per_minute = 100\ntenant_registrations_per_minute = 5\n",
    )
    .unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_path = data.path().join("stderr.jsonl");
    let audit_path = data.path().join("audit.jsonl");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dcr-shim"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
        ])
        .args(["--workers", "2", "--trusted-proxies", "127.0.0.1"])
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .arg("--tenants")
        .arg(tenants.path())
        .arg("--audit-log")
        .arg(&audit_path)
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = std::fs::metadata(&log_path).unwrap().len();
    let next = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, next, url) = (http.clone(), next.clone(), format!("{base}/flood/register"));
            tokio::spawn(async move {
                let mut refused = 0u64;
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        return refused;
                    }
                    let res = http
                        .post(&url)
                        .header("X-Forwarded-For", format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255))
                        .json(&json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
                        .send()
                        .await
                        .unwrap();
                    refused += u64::from(res.status() == 429);
                }
            })
        })
        .collect();
    let mut refused = 0;
    for t in tasks {
        refused += t.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let log_bytes = std::fs::metadata(&log_path).unwrap().len() - before;
    let audit = std::fs::read_to_string(&audit_path).unwrap_or_default();
    let audit_counted = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| match v["event"].as_str() {
            Some("registration_rate_limited") => 1,
            Some("refusals_aggregated") => v["suppressed"].as_u64().unwrap_or(0),
            _ => 0,
        })
        .sum();
    Flooded {
        refused,
        seconds,
        log_bytes,
        audit_bytes: audit.len() as u64,
        audit_counted,
    }
}
