//! A minimal MCP server for the gateway benchmark (`benches/gateway.rs`), so that the backend's
//! own cost does not hide the gateway's: built like dcr-shim (same crates, allocator, runtime),
//! it answers Streamable HTTP without sessions. `tools/call` of `echo` answers JSON at once;
//! of `stream` an event stream of `count` progress notifications and the result; any other
//! request an empty result. `GET` opens an event stream that stays idle (a comment every 25 s),
//! as a server's stream for notifications does.
//!
//!   cargo build --release --example mcp_backend
//!   target/release/examples/mcp_backend --listen 127.0.0.1:8091 --workers 2

use actix_web::{App, HttpResponse, HttpServer, web};
use bytes::Bytes;
use clap::Parser;
use futures_util::StreamExt;
use serde_json::{Value, json};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8091")]
    listen: std::net::SocketAddr,
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

async fn post(body: web::Bytes) -> HttpResponse {
    let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = message["id"].clone();
    if message["params"]["name"] == "stream" {
        let count = message["params"]["arguments"]["count"]
            .as_u64()
            .unwrap_or(10);
        // A progress message of `size` characters, as a tool reporting what it does sends.
        let size = message["params"]["arguments"]["size"].as_u64().unwrap_or(0);
        let text = "x".repeat(usize::try_from(size).unwrap_or(0));
        let events = futures_util::stream::iter(1..=count)
            .map(move |i| {
                Bytes::from(format!(
                    "event: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{{\"progressToken\":1,\"progress\":{i},\"message\":\"{text}\"}}}}\n\n"
                ))
            })
            .chain(futures_util::stream::once(async move {
                Bytes::from(format!(
                    "event: message\ndata: {}\n\n",
                    json!({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": "done"}]}})
                ))
            }))
            .map(Ok::<_, actix_web::Error>);
        return HttpResponse::Ok()
            .content_type("text/event-stream")
            .streaming(events);
    }
    if message.get("id").is_none() {
        return HttpResponse::Accepted().finish();
    }
    let result = match message["method"].as_str() {
        Some("initialize") => json!({
            "protocolVersion": message["params"]["protocolVersion"].as_str().unwrap_or("2025-11-25"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "bench-backend", "version": "1"},
        }),
        Some("tools/list") => json!({"tools": [
            {"name": "echo", "inputSchema": {"type": "object"}},
            {"name": "stream", "inputSchema": {"type": "object", "properties": {"count": {"type": "integer"}}}},
        ]}),
        Some("tools/call") => {
            json!({"content": [{"type": "text", "text": message["params"]["arguments"].to_string()}]})
        }
        _ => json!({}),
    };
    HttpResponse::Ok().json(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

async fn get() -> HttpResponse {
    let comments = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(std::time::Duration::from_secs(25)).await;
        Some((
            Ok::<_, actix_web::Error>(Bytes::from_static(b": idle\n\n")),
            (),
        ))
    });
    let opened = futures_util::stream::once(async {
        Ok::<_, actix_web::Error>(Bytes::from_static(b": open\n\n"))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .streaming(opened.chain(comments))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    HttpServer::new(|| {
        App::new()
            .route("/mcp", web::post().to(post))
            .route("/mcp", web::get().to(get))
    })
    .workers(args.workers)
    .max_connections(100_000)
    .backlog(4096)
    .bind(args.listen)?
    .run()
    .await
}
