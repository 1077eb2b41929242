//! The throughput ceiling of this machine for the benchmarks: an actix-web server built like
//! dcr-shim (same crate, profile, allocator, runtime and worker count) whose one route answers "hello".
//!
//!   cargo build --release --example hello
//!   target/release/examples/hello --listen 127.0.0.1:8090 --workers 2

use actix_web::{App, HttpResponse, HttpServer, web};
use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: std::net::SocketAddr,
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    HttpServer::new(|| {
        App::new().route(
            "/",
            web::get().to(|| async { HttpResponse::Ok().body("hello") }),
        )
    })
    .workers(args.workers)
    .bind(args.listen)?
    .run()
    .await
}
