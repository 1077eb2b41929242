//! The `dcr-shim` command line: `serve`, `check`, the admin commands and `healthcheck`.

#![deny(clippy::too_many_arguments, clippy::too_many_lines)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use dcr_shim::config::server::{SecretSource, parse_public_url};
use dcr_shim::config::{LogFormat, Settings, load_tenants};
use dcr_shim::reload::Reloader;

/// glibc's allocator was a fifth of the CPU under registration load (sled copies tree nodes on
/// every write); mimalloc handles these many small, short-lived allocations far better.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An OAuth authorization server that gives MCP clients Dynamic Client Registration and
/// Client ID Metadata Documents in front of Entra ID or any OpenID Connect provider.
/// What `--version` prints: the release and the commit it was built from (`build.rs`).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("DCR_SHIM_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(name = "dcr-shim", version = VERSION)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Validate every tenant file, report every problem, and try to reach each upstream.
    Check(CheckArgs),
    /// Registered clients, through a running server's admin API (docs/operations.md).
    #[command(subcommand)]
    Clients(dcr_shim::admin_cli::ClientsCommand),
    /// Grants (refresh families), through a running server's admin API.
    #[command(subcommand)]
    Grants(dcr_shim::admin_cli::GrantsCommand),
    /// Signing keys of minted tokens, through a running server's admin API.
    #[command(subcommand)]
    Keys(dcr_shim::admin_cli::KeysCommand),
    /// Work on a store directly, with no server using it.
    #[command(subcommand)]
    Store(StoreCommand),
    /// What Microsoft Entra needs for the tenant files, as code to review and run.
    #[command(subcommand)]
    Entra(EntraCommand),
    /// Exit 0 if the server on this host answers /healthz (or /readyz), else 1: for a container
    /// HEALTHCHECK, where there is no curl.
    Healthcheck(HealthcheckArgs),
}

#[derive(Subcommand)]
enum EntraCommand {
    /// Write what the Entra admin must create for an Entra tenant (its APIs with their scopes
    /// and v2 tokens; each app's redirect URI, delegated permissions with admin consent and
    /// credential) as an Azure CLI script or Terraform, to standard output.
    Plan {
        #[command(flatten)]
        common: CommonArgs,
        /// The tenant (its file's name without .toml); may be left out when only one tenant
        /// is on Entra.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, value_enum, default_value_t = dcr_shim::config::entra_plan::PlanFormat::Az)]
        format: dcr_shim::config::entra_plan::PlanFormat,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy every live record from one store into another (sled to PostgreSQL, or back for a
    /// backup). Idempotent: records already there are counted, never overwritten. Stop the
    /// servers using either store first.
    Copy {
        /// sled:<dir> (a data directory's store is <data-dir>/store) or postgres://…
        #[arg(long)]
        from: String,
        /// sled:<dir> or postgres://… (created, or migrated, as needed)
        #[arg(long)]
        to: String,
        /// The PostgreSQL password of --from.
        #[arg(long)]
        from_password_file: Option<PathBuf>,
        /// The PostgreSQL password of --to.
        #[arg(long)]
        to_password_file: Option<PathBuf>,
    },
    /// Index every grant by user and by client, then mark the store indexed, so that revoking
    /// or listing a user's or a client's grants reads only theirs. For a PostgreSQL store
    /// written by an older release: run it once every replica runs this release (it is safe
    /// while they serve). A sled store is indexed by the server itself at its next start.
    Reindex {
        /// sled:<dir> (stop the server first) or postgres://…
        #[arg(long)]
        store: String,
        /// The PostgreSQL password of --store.
        #[arg(long)]
        store_password_file: Option<PathBuf>,
    },
}

#[derive(Args)]
struct HealthcheckArgs {
    /// The server's listen address, as given to `serve` (an unspecified address such as
    /// 0.0.0.0 is asked on loopback).
    #[arg(long, env = "DCR_SHIM_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Ask /readyz (the server can serve) instead of /healthz (the process answers).
    #[arg(long)]
    ready: bool,
    /// How long to wait for the answer.
    #[arg(long, default_value = "3s", value_parser = parse_timeout)]
    timeout: std::time::Duration,
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Also try each Entra app's credential at Entra's token endpoint (a client-credentials
    /// request for a token to the app itself): a wrong or expired secret, an unknown app or an
    /// untrusted certificate shows as its AADSTS code with what to fix.
    #[arg(long)]
    live: bool,
}

#[derive(Args)]
struct CommonArgs {
    /// Directory of tenant files (`<tenant-id>.toml`; subdirectories are not read).
    #[arg(long, env = "DCR_SHIM_TENANTS", default_value = "./tenants")]
    tenants: PathBuf,
    /// The URL clients use to reach the shim, optionally with a path prefix
    /// (https://auth.example.com/mcp-auth); each tenant's issuer is `<public-url>/<tenant-id>`.
    #[arg(long, env = "DCR_SHIM_PUBLIC_URL", default_value = "http://127.0.0.1:8080", value_parser = parse_public_url)]
    public_url: url::Url,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Address and port to listen on.
    #[arg(long, env = "DCR_SHIM_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory for the store and the generated server secret.
    #[arg(long, env = "DCR_SHIM_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// File with the server secret (64 hex digits); default: generated once into the data
    /// directory. The environment variable DCR_SHIM_SECRET may hold the 64 hex digits instead
    /// (docs/operations.md says what that trades away).
    #[arg(long, env = "DCR_SHIM_SECRET_FILE")]
    secret_file: Option<PathBuf>,
    /// File with the previous server secret, still accepted while rotating (or
    /// DCR_SHIM_PREVIOUS_SECRET, the digits themselves).
    #[arg(long, env = "DCR_SHIM_PREVIOUS_SECRET_FILE")]
    previous_secret_file: Option<PathBuf>,
    /// Make a new server secret although the data directory holds records whose secret is
    /// gone (without it the shim refuses to start: every client would have to sign in again).
    #[arg(long)]
    new_secret: bool,
    /// How long SIGTERM waits for requests in flight, e.g. 20s (default: the upstream timeout
    /// plus 5 s, so that a login waiting on the IdP can finish).
    #[arg(long, env = "DCR_SHIM_SHUTDOWN_TIMEOUT", value_parser = parse_timeout)]
    shutdown_timeout: Option<std::time::Duration>,
    /// Proxies in front of the shim (CIDRs or addresses, comma-separated): from these peers the
    /// client address is read from Forwarded / X-Forwarded-For, for rate limits, audit and logs.
    #[arg(long, env = "DCR_SHIM_TRUSTED_PROXIES", value_parser = dcr_shim::config::server::parse_trusted_proxy, value_delimiter = ',')]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// The header the trusted proxies write the client's address into; the other one is never
    /// read (proxies pass it through from the client).
    #[arg(long, env = "DCR_SHIM_FORWARDED_HEADER", value_enum, default_value_t = dcr_shim::config::server::ForwardedHeader::XForwardedFor)]
    forwarded_header: dcr_shim::config::server::ForwardedHeader,
    /// Logins (each a ten-minute transaction in the store) one client address may start per
    /// minute (an IPv6 /64; ten times it per /48); one browser may start a tenth of it (at least 1).
    /// Refusals answer 429 with a page that says why and count in rate_limited_total.
    #[arg(long, env = "DCR_SHIM_LOGIN_STARTS_PER_MINUTE", default_value_t = dcr_shim::http::login_limits::DEFAULT_PER_SOURCE_PER_MINUTE, value_parser = clap::value_parser!(u32).range(1..))]
    login_starts_per_minute: u32,
    /// Address of the admin API (off unless given; keep it on loopback or a private network).
    #[arg(long, env = "DCR_SHIM_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// File of admin API tokens, one `<label> <token>` per line, mode 0600; required with
    /// --admin-listen. Read again on SIGHUP (a file that does not parse keeps the old tokens).
    #[arg(long, env = "DCR_SHIM_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// Host names the admin listener answers, comma-separated, besides IP literals (a
    /// scraper by pod IP always works): add the admin Service's name (e.g.
    /// dcr-shim-admin,dcr-shim-admin.auth.svc). Any other Host gets 421, so that a web page
    /// a DNS-rebinding attack points at the admin port cannot read it.
    #[arg(
        long,
        env = "DCR_SHIM_ADMIN_HOSTS",
        value_delimiter = ',',
        default_value = "localhost"
    )]
    admin_hosts: Vec<String>,
    /// Where the records live: sled:<dir> (default: <data-dir>/store) or a postgres:// URL
    /// for several replicas sharing one database (then --secret-file is required). The URL's
    /// password is better kept in --store-password-file.
    #[arg(long, env = "DCR_SHIM_STORE", hide_env_values = true)]
    store: Option<String>,
    /// A file holding the PostgreSQL password.
    #[arg(long, env = "DCR_SHIM_STORE_PASSWORD_FILE")]
    store_password_file: Option<PathBuf>,
    /// Reload the tenant files whenever they change (checked every 2 s), as SIGHUP does: an
    /// invalid set is refused whole and the running one stays.
    #[arg(long, env = "DCR_SHIM_WATCH_TENANTS")]
    watch_tenants: bool,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "DCR_SHIM_WORKERS", value_parser = parse_workers)]
    workers: Option<usize>,
    /// Time allowed for one call to an IdP, e.g. 10s.
    #[arg(long, env = "DCR_SHIM_UPSTREAM_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    upstream_timeout: std::time::Duration,
    /// Let `dev` tenants (whose IdP logs anyone in) run while listening on a non-loopback
    /// address; only for a container whose port is published to the host's loopback.
    #[arg(long, env = "DCR_SHIM_DEV_IDP_ANY_INTERFACE")]
    dev_idp_any_interface: bool,
    /// Log format.
    #[arg(long, env = "DCR_SHIM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    /// Also write the audit events as JSON lines to this file (reopened on SIGHUP, for log
    /// rotation).
    #[arg(long, env = "DCR_SHIM_AUDIT_LOG")]
    audit_log: Option<PathBuf>,
    /// Write the process id to this file once listening (removed at a clean stop), for
    /// `kill -HUP $(cat FILE)` aimed at this server alone.
    #[arg(long, env = "DCR_SHIM_PID_FILE")]
    pid_file: Option<PathBuf>,
}

/// SIGHUP reloads the tenant files and the admin tokens, and reopens the audit log (for
/// logrotate).
#[cfg(unix)]
async fn on_sighup(
    mut hangups: tokio::signal::unix::Signal,
    audit: Option<dcr_shim::audit_log::AuditFile>,
    reloader: Reloader,
    admin_tokens: Option<actix_web::web::Data<dcr_shim::admin::tokens::AdminTokens>>,
) {
    while hangups.recv().await.is_some() {
        if let Some(tokens) = &admin_tokens {
            tokens.reload();
        }
        match audit.as_ref().map(|a| a.reopen()) {
            Some(Ok(())) => tracing::info!("audit log reopened"),
            Some(Err(e)) => tracing::error!(error = %e, "audit log not reopened"),
            None => {}
        }
        // Logged and counted inside.
        let _ = reloader.reload().await;
    }
}

fn parse_workers(raw: &str) -> Result<usize, String> {
    match raw.parse::<usize>() {
        Ok(n) if (1..=512).contains(&n) => Ok(n),
        _ => Err("must be a number from 1 to 512".into()),
    }
}

fn parse_timeout(raw: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(raw) {
        Ok(d) if d.is_zero() => Err("must be longer than zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// Logs to stderr (filtered by `RUST_LOG`, default info), with `audit` the audit events as JSON
/// lines into their own file as well, and spans to an OTLP collector when the `OTEL_*`
/// environment asks for it (`telemetry.rs`); an error names the variable to fix.
fn init_logging(
    format: LogFormat,
    audit: Option<dcr_shim::audit_log::AuditFile>,
) -> Result<(), String> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let stderr = match format {
        LogFormat::Human => stderr.with_filter(filter).boxed(),
        // The request span once (`span`), not again in a list of every span (`spans`).
        LogFormat::Json => stderr
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .with_filter(filter)
            .boxed(),
    };
    let audit = audit.map(|file| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(file)
            .with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target("audit", tracing::Level::INFO),
            )
    });
    let traces = dcr_shim::telemetry::layer()?;
    tracing_subscriber::registry()
        .with(stderr)
        .with(audit)
        .with(traces)
        .init();
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => serve(*args).await,
        Command::Check(args) => check(args).await,
        Command::Clients(cmd) => dcr_shim::admin_cli::clients(cmd).await,
        Command::Grants(cmd) => dcr_shim::admin_cli::grants(cmd).await,
        Command::Keys(cmd) => dcr_shim::admin_cli::keys(cmd).await,
        Command::Entra(EntraCommand::Plan {
            common,
            tenant,
            format,
        }) => entra_plan(&common, tenant.as_deref(), format),
        Command::Healthcheck(args) => healthcheck(args).await,
        Command::Store(StoreCommand::Copy {
            from,
            to,
            from_password_file,
            to_password_file,
        }) => store_copy(&from, &to, from_password_file, to_password_file).await,
        Command::Store(StoreCommand::Reindex {
            store,
            store_password_file,
        }) => store_reindex(&store, store_password_file).await,
    }
}

async fn store_reindex(spec: &str, password_file: Option<PathBuf>) -> ExitCode {
    let store = match dcr_shim::store::open_spec(spec, password_file.as_deref()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dcr-shim store reindex: {e}");
            return ExitCode::FAILURE;
        }
    };
    match dcr_shim::oauth::family_index::reindex(&*store, dcr_shim::app::unix_now()).await {
        Ok(done) => {
            println!(
                "{} grant(s) of {} tenant(s) indexed ({} index entries written); the store is marked indexed",
                done.families,
                done.tenants.len(),
                done.entries_written
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dcr-shim store reindex: {e}; the store is not marked indexed, run it again");
            ExitCode::FAILURE
        }
    }
}

async fn store_copy(
    from: &str,
    to: &str,
    from_password_file: Option<PathBuf>,
    to_password_file: Option<PathBuf>,
) -> ExitCode {
    use dcr_shim::store::open_spec;
    // Never the spec itself: a URL may hold a password.
    let describe = |spec: &str| {
        if spec.starts_with("sled:") {
            return spec.to_owned();
        }
        match dcr_shim::store::PostgresLocation::parse(spec, None) {
            Ok(l) => l.describe(),
            Err(_) => "(a store URL that does not parse; not shown, it may hold a password)".into(),
        }
    };
    let opened = async {
        let source = open_spec(from, from_password_file.as_deref())
            .await
            .map_err(|e| format!("--from {}: {e}", describe(from)))?;
        let target = open_spec(to, to_password_file.as_deref())
            .await
            .map_err(|e| format!("--to {}: {e}", describe(to)))?;
        Ok::<_, String>((source, target))
    };
    let (source, target) = match opened.await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dcr-shim store copy: {e}");
            return ExitCode::FAILURE;
        }
    };
    match dcr_shim::store::copy(&*source, &*target, dcr_shim::app::unix_now()).await {
        Ok(done) => {
            println!(
                "{} copied, {} already there, {} left as they were (different in the target)",
                done.copied, done.present, done.differing
            );
            for key in &done.differing_keys {
                println!("  different: {key}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dcr-shim store copy: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn healthcheck(args: HealthcheckArgs) -> ExitCode {
    let mut addr = args.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let url = format!(
        "http://{addr}/{}",
        if args.ready { "readyz" } else { "healthz" }
    );
    let answer = match reqwest::Client::builder()
        .timeout(args.timeout)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(http) => http.get(&url).send().await,
        Err(e) => {
            eprintln!("dcr-shim healthcheck: {e}");
            return ExitCode::FAILURE;
        }
    };
    match answer {
        Ok(res) if res.status().is_success() => ExitCode::SUCCESS,
        Ok(res) => {
            eprintln!("dcr-shim healthcheck: {url} answered {}", res.status());
            ExitCode::FAILURE
        }
        Err(e) => {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why = format!("{why}: {s}");
                source = s.source();
            }
            eprintln!("dcr-shim healthcheck: {url}: {why}");
            ExitCode::FAILURE
        }
    }
}

/// The server secret's source: the file given, or the environment variable `var` holding the
/// digits themselves; both at once is a mistake said at start.
fn secret_source(file: Option<PathBuf>, var: &'static str) -> Result<Option<SecretSource>, String> {
    let value = match std::env::var(var) {
        Ok(v) if v.trim().is_empty() => {
            return Err(format!(
                "{var} is set but empty: give the server secret's 64 hex digits, or unset it"
            ));
        }
        Ok(v) => Some(v),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(format!(
                "{var} is not text: give the server secret's 64 hex digits"
            ));
        }
    };
    match (file, value) {
        (Some(path), Some(_)) => Err(format!(
            "both {var} and the file {} give the server secret: keep one",
            path.display()
        )),
        (Some(path), None) => Ok(Some(SecretSource::File(path))),
        (None, Some(value)) => Ok(Some(SecretSource::Environment {
            name: var,
            value: std::sync::Arc::new(value.into()),
        })),
        (None, None) => Ok(None),
    }
}

async fn serve(args: ServeArgs) -> ExitCode {
    let audit = match start_logging(&args) {
        Ok(audit) => audit,
        Err(e) => {
            eprintln!("dcr-shim: not started: {e}");
            return ExitCode::FAILURE;
        }
    };
    // First, so that every report of a start names the build it came from.
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        commit = env!("DCR_SHIM_COMMIT"),
        "dcr-shim starting"
    );
    // Listened for before anything starts: SIGHUP's default action would end the process.
    #[cfg(unix)]
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    let pid_file = args.pid_file.clone();
    let settings = match server_settings(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dcr-shim: not started: {e}");
            return ExitCode::FAILURE;
        }
    };
    let running = match dcr_shim::app::start(settings.clone()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dcr-shim: not started: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Holds the server's state (through the reloader): stopped before the store is
    // checkpointed, which needs the store closed.
    #[cfg(unix)]
    let sighup = match hangups {
        Ok(hangups) => Some(tokio::spawn(on_sighup(
            hangups,
            audit,
            running.reloader.clone(),
            running.admin_tokens.clone(),
        ))),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; neither the tenant files nor the audit log can be reloaded by signal");
            None
        }
    };
    for t in running.state.tenants() {
        tracing::info!(tenant = %t.id, issuer = %t.issuer, upstream = t.upstream().kind(), "tenant loaded");
    }
    if let Some(path) = &pid_file
        && let Err(e) = write_pid_file(path)
    {
        eprintln!(
            "dcr-shim: not started: cannot write the pid file {}: {e}",
            path.display()
        );
        return ExitCode::FAILURE;
    }
    announce(&running, &settings);
    let served = running.wait().await;
    if let Some(path) = &pid_file {
        let _ = std::fs::remove_file(path);
    }
    #[cfg(unix)]
    if let Some(task) = sighup {
        task.abort();
        let _ = task.await;
    }
    stopped(served, &settings).await
}

/// After the server stopped: the spans still buffered sent, and the store checkpointed after
/// a clean stop.
async fn stopped(served: std::io::Result<()>, settings: &Settings) -> ExitCode {
    // The export runs on this runtime, which a blocking wait here would hold up.
    let _ = tokio::task::spawn_blocking(dcr_shim::telemetry::shutdown).await;
    match served {
        Ok(()) => {
            if let Some(sled_dir) = settings.sled_dir() {
                checkpoint(&sled_dir).await;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dcr-shim: server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Opens the audit log, if one is asked for, and starts logging; the audit file is returned
/// for SIGHUP to reopen.
fn start_logging(args: &ServeArgs) -> Result<Option<dcr_shim::audit_log::AuditFile>, String> {
    let audit = args
        .audit_log
        .as_deref()
        .map(dcr_shim::audit_log::AuditFile::open)
        .transpose()
        .map_err(|e| e.to_string())?;
    init_logging(args.log_format, audit.clone()).map_err(|e| e.to_string())?;
    Ok(audit)
}

/// The server's settings from its arguments, with its secrets read.
fn server_settings(args: ServeArgs) -> Result<Settings, String> {
    let secret = secret_source(args.secret_file, "DCR_SHIM_SECRET")?;
    let previous_secret = secret_source(args.previous_secret_file, "DCR_SHIM_PREVIOUS_SECRET")?;
    Ok(Settings {
        listen: args.listen,
        public_url: args.common.public_url,
        data_dir: args.data_dir,
        tenants_dir: args.common.tenants,
        secret,
        previous_secret,
        workers: args.workers,
        upstream_timeout: args.upstream_timeout,
        dev_idp_any_interface: args.dev_idp_any_interface,
        new_secret: args.new_secret,
        shutdown_timeout: args.shutdown_timeout,
        trusted_proxies: args.trusted_proxies,
        forwarded_header: args.forwarded_header,
        admin_listen: args.admin_listen,
        admin_token_file: args.admin_token_file,
        admin_hosts: args.admin_hosts,
        watch_tenants: args.watch_tenants,
        store: args.store.map(dcr_shim::config::server::StoreSpec::new),
        store_password_file: args.store_password_file,
        login_starts_per_minute: args.login_starts_per_minute,
    })
}

/// The log lines of a start once serving: the listeners, the exporter.
fn announce(running: &dcr_shim::app::Running, settings: &Settings) {
    tracing::info!(address = %running.addr, public_url = %settings.public_url, data_dir = %settings.data_dir.display(), "dcr-shim listening");
    if let Some(admin) = running.admin_addr {
        tracing::info!(address = %admin, "admin API listening");
    }
    if dcr_shim::telemetry::enabled() {
        tracing::info!("OpenTelemetry: exporting spans over OTLP (the OTEL_* environment)");
    }
}

/// Checkpoints the sled store after a clean stop, so that the next start need not replay its
/// log.
async fn checkpoint(sled_dir: &std::path::Path) {
    let started = std::time::Instant::now();
    match dcr_shim::store::SledStore::checkpoint(sled_dir).await {
        Ok(()) => tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            "store checkpointed for a fast next start"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "store not checkpointed; the next start replays its log")
        }
    }
}

/// Whether the tenant's IdP can be discovered (and with `live`, its apps' credentials are
/// accepted), said on standard output. Returns whether a problem was found.
async fn check_upstream(t: &dcr_shim::config::Tenant, live: bool) -> bool {
    let http = match dcr_shim::upstream::http::tenant_http_client(
        t,
        dcr_shim::config::server::DEFAULT_UPSTREAM_TIMEOUT,
    ) {
        Ok(h) => h,
        Err(e) => {
            println!("  error: {e}");
            return true;
        }
    };
    match dcr_shim::upstream::discovery::discover(t.upstream(), &http).await {
        Ok(m) => {
            println!("  upstream reachable: issuer {}", m.issuer().as_str());
            live && probe(t, &http, m.token_endpoint().map(|u| u.as_str())).await
        }
        Err(e @ dcr_shim::upstream::discovery::DiscoveryError::Certificate(_)) => {
            println!(
                "  error: the IdP's TLS certificate is not trusted ({e}); if a private CA or a TLS-inspecting proxy issued it, set upstream.ca_file to that CA's PEM file, or upstream.roots = \"system\" to trust this machine's store"
            );
            true
        }
        Err(e) if live => {
            // Asked to try the credentials, and they could not be tried: not a pass.
            println!(
                "  error: upstream not reachable now ({e}), so --live could not try the apps' credentials; serve will keep retrying"
            );
            true
        }
        Err(e) => {
            println!("  warning: upstream not reachable now ({e}); serve will keep retrying");
            false
        }
    }
}

/// Each `private_key_jwt` app's certificate: valid until when, a warning within 30 days of
/// its end, an error once it has ended. Returns whether one has ended.
fn report_certificates(t: &dcr_shim::config::Tenant) -> bool {
    use dcr_shim::crypto::app_key::CertificateDeadline;
    let now = dcr_shim::app::unix_now();
    let mut expired = false;
    for (app, expiry) in t.certificate_expiries() {
        // An unreadable pair is already a problem of the tenant file.
        let Ok(not_after) = expiry else { continue };
        let date = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(not_after),
        );
        match CertificateDeadline::of(not_after, now) {
            CertificateDeadline::Ended => {
                println!(
                    "  error: app '{app}': its certificate expired at {date}; Entra refuses its client assertions (AADSTS700027). Make a new key and certificate, upload the certificate to the app registration (Certificates & secrets), and point certificate_file and key_file at them"
                );
                expired = true;
            }
            CertificateDeadline::Near { days } => println!(
                "  warning: app '{app}': its certificate expires at {date}, in {days} days; upload a new one to the app registration before then and point certificate_file and key_file at it"
            ),
            CertificateDeadline::Later => {
                println!("  app '{app}': certificate valid until {date}")
            }
        }
    }
    expired
}

/// `entra plan`: the plan of the one Entra tenant named (or the only one there is).
fn entra_plan(
    args: &CommonArgs,
    tenant: Option<&str>,
    format: dcr_shim::config::entra_plan::PlanFormat,
) -> ExitCode {
    // The apps' secrets and keys need not exist yet: the plan is what makes them usable.
    let tenants = match dcr_shim::config::load_tenants_with(
        &args.tenants,
        &args.public_url,
        dcr_shim::config::CredentialFiles::Skip,
    ) {
        Ok(t) => t,
        Err(problems) => {
            eprintln!(
                "{} problem(s) found (dcr-shim check says more):",
                problems.len()
            );
            for p in &problems {
                eprintln!("  {p}");
            }
            return ExitCode::FAILURE;
        }
    };
    let entra: Vec<_> = tenants
        .iter()
        .filter(|t| t.upstream().kind() == "entra")
        .collect();
    let chosen = match tenant {
        Some(id) => tenants.iter().find(|t| t.id.to_string() == id),
        None if entra.len() == 1 => entra.first().copied(),
        None => {
            let ids: Vec<String> = entra.iter().map(|t| t.id.to_string()).collect();
            eprintln!(
                "dcr-shim: name the tenant with --tenant ({} on Entra here: {})",
                ids.len(),
                if ids.is_empty() {
                    "none".to_owned()
                } else {
                    ids.join(", ")
                }
            );
            return ExitCode::FAILURE;
        }
    };
    let Some(t) = chosen else {
        eprintln!(
            "dcr-shim: no tenant file {}.toml in {}",
            tenant.unwrap_or_default(),
            args.tenants.display()
        );
        return ExitCode::FAILURE;
    };
    match dcr_shim::config::entra_plan::entra_plan(t, format) {
        Ok(plan) => {
            print!("{plan}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dcr-shim: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes this process's id to `path` through a new temporary file renamed over it, so that a
/// link placed at `path` is replaced, never followed.
fn write_pid_file(path: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("pid.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    writeln!(file, "{}", std::process::id())?;
    std::fs::rename(&tmp, path)
}

/// `check --live` for one tenant: each Entra app's credential tried at `token_endpoint`.
/// Returns whether one failed.
async fn probe(
    t: &dcr_shim::config::Tenant,
    http: &reqwest::Client,
    token_endpoint: Option<&str>,
) -> bool {
    if t.upstream().kind() != "entra" {
        println!(
            "  --live: only Entra apps are probed (this upstream is {})",
            t.upstream().kind()
        );
        return false;
    }
    let Some(endpoint) = token_endpoint else {
        println!("  error: the IdP's metadata names no token endpoint to probe");
        return true;
    };
    let mut failed = false;
    for p in
        dcr_shim::upstream::probe::probe_credentials(t, http, endpoint, dcr_shim::app::unix_now())
            .await
    {
        match p.outcome {
            Ok(()) => println!("  app '{}': credential accepted by Entra", p.app),
            Err(why) => {
                println!(
                    "  error: app '{}': Entra refused its credential: {why}",
                    p.app
                );
                failed = true;
            }
        }
    }
    failed
}

async fn check(args: CheckArgs) -> ExitCode {
    let CheckArgs { common: args, live } = args;
    let tenants = match load_tenants(&args.tenants, &args.public_url) {
        Ok(t) => t,
        Err(problems) => {
            eprintln!("{} problem(s) found:", problems.len());
            for p in &problems {
                eprintln!("  {p}");
            }
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for t in &tenants {
        println!(
            "{}: tenant '{}', issuer {}, upstream {}",
            t.file.display(),
            t.id,
            t.issuer,
            t.upstream().kind()
        );
        for r in t.resources() {
            println!(
                "  {}",
                r.token_summary(&t.issuer, t.upstream().kind(), t.token_signing_alg())
            );
            println!("    {}", t.grant_lifetimes(r).summary());
            if let Some(line) = r.gateway_summary(&args.public_url) {
                println!("    {line}");
            }
        }
        for line in t.access_summary() {
            println!("  {line}");
        }
        failed |= report_certificates(t);
        for line in dcr_shim::config::entra_checklist::entra_checklist(t) {
            println!("  {line}");
        }
        if !dcr_shim::upstream::provider::Provider::of(t).is_built_in() {
            failed |= check_upstream(t, live).await;
        }
    }
    if failed {
        println!("problems found; serve would not log anyone in through the tenants above");
        return ExitCode::FAILURE;
    }
    println!("{} tenant(s) OK", tenants.len());
    ExitCode::SUCCESS
}
