//! Integration tests: the real app on port 0 with a fresh data directory.
//! One binary for all of them (faster builds). `TEST_LOG=1` shows the app's logs.

mod admin;
mod audit;
mod binary;
mod browser;
mod cimd;
mod cli;
mod confidential_cimd;
mod cors;
mod discovery;
mod durability;
mod fake_entra;
mod faults;
mod fetch_bounds;
mod floods;
mod healthcheck;
mod helpers;
mod hostile;
mod hygiene;
mod id_jag;
mod lifetimes;
mod login;
mod logs;
mod metrics;
mod minted;
mod personas;
mod pinned;
mod properties;
mod registration;
mod reload;
mod replicas;
mod restart;
mod ssrf;
mod store_suite;
mod tls_server;
mod upstream_tls;
