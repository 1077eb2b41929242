//! Startup: load tenants, open the store, load keys, start background tasks and the HTTP server.
//! `start` is what `dcr-shim serve` and the integration tests both call.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};

use crate::admin::tokens::AdminTokens;
use crate::config::Settings;
use crate::crypto::{KeyError, Sealer, ServerKeys, Signer};
use crate::dev_idp::DevIdps;
use crate::minting::SigningKeys;
use crate::oauth::AuthServer;
use crate::oauth::registration::ClientRegistry;
use crate::oauth::serving::{GenerationParts, Serving};
use crate::reload::{Reloader, TenantSet, TenantSetError, fingerprint};
use crate::store::{
    Counted, PostgresLocation, PostgresStore, Records, SledStore, Store, StoreError,
};
use crate::upstream::UpstreamDirectory;
use crate::upstream::tokens::UpstreamClient;

pub use crate::http::state::{AppState, unix_now};

/// Why the shim did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tenants(#[from] TenantSetError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("cannot start the admin API: {0}")]
    Admin(String),
    #[error(transparent)]
    Secret(#[from] crate::secret_fingerprint::FingerprintError),
}

/// A running shim.
pub struct Running {
    /// The address actually bound (useful with port 0).
    pub addr: SocketAddr,
    /// The admin API's address, when it runs.
    pub admin_addr: Option<SocketAddr>,
    /// The admin API's tokens, read again on SIGHUP (`AdminTokens::reload`).
    pub admin_tokens: Option<web::Data<AdminTokens>>,
    admin: Option<ServerHandle>,
    pub state: web::Data<AppState>,
    /// Reads the tenant files again (SIGHUP, `--watch-tenants`, tests).
    pub reloader: Reloader,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    handle: ServerHandle,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Serves until the server stops (SIGINT/SIGTERM are handled by actix).
    pub async fn wait(mut self) -> std::io::Result<()> {
        let result = match self.server.take() {
            Some(server) => server
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e))),
            None => Ok(()),
        };
        self.abort_tasks();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        // The refusals counted since the last summary are not lost with the process.
        crate::log_budget::report();
        result
    }

    /// Stops serving and releases the store (so it can be opened again in the same process).
    pub async fn stop(mut self) {
        if let Some(admin) = &self.admin {
            admin.stop(true).await;
        }
        self.handle.stop(true).await;
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.abort_tasks();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }

    fn abort_tasks(&self) {
        self.state.upstreams().stop();
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Loads everything and starts serving on `settings.listen`.
pub async fn start(settings: Settings) -> Result<Running, StartError> {
    let listener =
        TcpListener::bind(settings.listen).map_err(|e| StartError::Listen(settings.listen, e))?;
    start_on(settings, listener).await
}

/// Like `start`, on a listener the caller bound (tests bind port 0 first to learn the URL).
pub async fn start_on(settings: Settings, listener: TcpListener) -> Result<Running, StartError> {
    // The data directory and the sled store in it hold the server secret and every grant:
    // owner only (0700), whatever the umask; the store's files are then out of others' reach
    // whatever modes sled gives them.
    crate::crypto::private_file::create_private_dir(&settings.data_dir)
        .map_err(|e| StartError::DataDir(settings.data_dir.display().to_string(), e))?;
    if let Some(dir) = settings.sled_dir() {
        crate::crypto::private_file::create_private_dir(&dir)
            .map_err(|e| StartError::DataDir(dir.display().to_string(), e))?;
    }
    let dev_idps = DevIdps::default();
    let seen = fingerprint(&settings.tenants_dir).await;
    let set = TenantSet::prepare(&settings, &dev_idps)?;
    let store = open_store(&settings).await?;
    let has_records = !store.scan(b"", unix_now(), 1).await?.is_empty();
    let keys = open_keys(&settings, has_records)?;
    crate::secret_fingerprint::check(store.as_ref(), &keys, settings.new_secret, unix_now())
        .await?;
    index_families(&settings, store.as_ref(), has_records).await?;
    let (state, reloader) = assemble(
        &settings,
        store,
        &keys,
        &dev_idps,
        UpstreamDirectory::default(),
        set,
    );
    let mut tasks = Vec::new();
    if settings.watch_tenants {
        tasks.push(tokio::spawn(reloader.clone().watch(seen, WATCH_INTERVAL)));
    }
    tasks.push(tokio::spawn(sweep_forever(state.clone())));
    tasks.push(tokio::spawn(crate::log_budget::report_forever()));
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Listen(settings.listen, e))?;
    let (admin_addr, admin, admin_tokens) = match serve_admin(&settings, state.clone())? {
        Some((addr, server, tokens)) => {
            let handle = server.handle();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = server.await {
                    tracing::error!(error = %e, "the admin API stopped");
                }
            }));
            (Some(addr), Some(handle), Some(tokens))
        }
        None => (None, None, None),
    };
    let server = serve(&settings, listener, state.clone(), dev_idps)?;
    let handle = server.handle();
    Ok(Running {
        addr,
        admin_addr,
        admin_tokens,
        admin,
        state,
        reloader,
        server: Some(tokio::spawn(server)),
        handle,
        tasks,
    })
}

/// The shared state over `store` serving `set`, and what reloads it.
fn assemble(
    settings: &Settings,
    store: Arc<dyn Store>,
    keys: &ServerKeys,
    dev_idps: &DevIdps,
    upstreams: UpstreamDirectory,
    set: TenantSet,
) -> (web::Data<AppState>, Reloader) {
    let records = Records::new(store);
    // Empty until the reloader installs `set` below, before anything is served: its IdP
    // caller loads no credential (the install loads them, once).
    let serving = Arc::new(Serving::new(GenerationParts {
        tenants: Vec::new(),
        public_url: settings.public_url.clone(),
        resolvers: HashMap::new(),
        upstream: UpstreamClient::new(set.http.clone(), &[], HashMap::new()),
    }));
    let registry = ClientRegistry::new(records.clone(), serving.clone());
    let auth = AuthServer::new(
        records.clone(),
        registry.clone(),
        upstreams.clone(),
        serving.clone(),
        Sealer::new(keys),
        Signer::new(keys),
        Arc::new(SigningKeys::new(records.clone(), keys)),
    );
    let state = web::Data::new(AppState::new(
        settings.clone(),
        serving,
        records,
        registry,
        upstreams,
        auth,
        crate::gateway::sessions::SessionBinding::new(Signer::new(keys)),
    ));
    let reloader = Reloader::new(settings.clone(), state.clone(), dev_idps.clone());
    reloader.install(set);
    (state, reloader)
}

/// The state over a data directory that no server holds, for the admin commands run offline
/// (`admin_cli.rs`): no listener, no background work, no call to any IdP. The store must exist, and is refused
/// while a server holds it. The offline commands seal, sign and open nothing (`keys rotate`,
/// which would, is refused offline by `admin_cli.rs`), so a throwaway key stands in for the
/// server secret, which need not be at hand.
pub async fn open_offline(settings: &Settings) -> Result<web::Data<AppState>, StartError> {
    let dir = settings.data_dir.join("store");
    if !dir.is_dir() {
        return Err(StartError::DataDir(
            settings.data_dir.display().to_string(),
            std::io::Error::new(std::io::ErrorKind::NotFound, "it holds no store"),
        ));
    }
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir).await?);
    let set = TenantSet::prepare(settings, &DevIdps::default())?;
    let keys = ServerKeys::throwaway();
    let (state, _) = assemble(
        settings,
        store,
        &keys,
        &DevIdps::default(),
        UpstreamDirectory::passive(),
        set,
    );
    Ok(state)
}

/// The store `settings` name: sled (the default), or PostgreSQL, which replicas share and so
/// must share the server secret too: it is then required as a file.
async fn open_store(settings: &Settings) -> Result<Arc<dyn Store>, StartError> {
    if let Some(dir) = settings.sled_dir() {
        return Ok(Arc::new(Counted(SledStore::open(&dir).await?)));
    }
    let url = settings
        .store
        .as_ref()
        .map(|s| s.as_str())
        .unwrap_or_default();
    let location = PostgresLocation::parse(url, settings.store_password_file.as_deref())
        .map_err(StoreError::Backend)?;
    if settings.secret.is_none() {
        return Err(StartError::Store(StoreError::Backend(
            "a PostgreSQL store needs --secret-file (or DCR_SHIM_SECRET): every replica must seal and sign with the same server secret".into(),
        )));
    }
    if location.plaintext_possible_to_remote() {
        tracing::warn!(store = %location.describe(), "the store URL allows a connection without TLS to another host (sslmode disable or prefer, the default): add sslmode=require (or verify-full) unless the network path is trusted");
    }
    // The runtimes that use the store: one per worker actix starts (one per core unless
    // told), the main one (the sweeper) and the admin listener's.
    let workers = settings.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let store = PostgresStore::open(&location, workers + 2).await?;
    tracing::info!(store = %location.describe(), "store: PostgreSQL");
    Ok(Arc::new(Counted(store)))
}

/// Makes sure grants can be found by user and client without reading them all
/// (`oauth/family_index.rs`): a new store is indexed from its first family, and a sled store
/// (which no other server writes) is indexed here once. A shared store written by an older
/// release waits for `dcr-shim store reindex`, since a replica of that release may still be
/// writing families without index entries; until then revocation reads every family, said here.
async fn index_families(
    settings: &Settings,
    store: &dyn Store,
    has_records: bool,
) -> Result<(), StoreError> {
    use crate::oauth::family_index;
    let now = unix_now();
    if family_index::is_indexed(store, now).await? {
        return Ok(());
    }
    if !has_records {
        return family_index::mark_indexed(store, now).await;
    }
    if settings.sled_dir().is_some() {
        let started = std::time::Instant::now();
        let done = family_index::reindex(store, now).await?;
        tracing::info!(
            families = done.families,
            entries_written = done.entries_written,
            seconds = started.elapsed().as_secs(),
            "grants indexed by user and client (once, for a store written by an older release)"
        );
        return Ok(());
    }
    tracing::warn!(
        "this store holds grants written by an older release, not indexed by user and client: revoking or listing a user's or a client's grants reads every grant of the tenant until `dcr-shim store reindex` is run, once every replica runs this release"
    );
    Ok(())
}

/// The data directory, created if needed, and the server secret in it (or given by file).
fn open_keys(settings: &Settings, has_records: bool) -> Result<ServerKeys, StartError> {
    Ok(ServerKeys::load(
        &settings.data_dir,
        settings.secret.as_ref(),
        settings.previous_secret.as_ref(),
        has_records,
        settings.new_secret,
    )?)
}

/// The HTTP server on `listener`, with the dev IdP's routes inside the same middleware. It
/// runs only while its future is polled: the caller gives it a task of its own.
fn serve(
    settings: &Settings,
    listener: TcpListener,
    state: web::Data<AppState>,
    dev_idps: DevIdps,
) -> Result<Server, StartError> {
    let dev_idps = web::Data::new(dev_idps);
    let mut server = HttpServer::new(move || {
        let dev_idps = dev_idps.clone();
        App::new().configure(|cfg| {
            crate::http::configure(cfg, state.clone(), |cfg| {
                cfg.app_data(dev_idps);
                crate::dev_idp::configure(cfg);
            })
        })
    })
    .listen(listener)
    .map_err(|e| StartError::Listen(settings.listen, e))?
    .shutdown_timeout(settings.shutdown_wait().as_secs().max(1));
    if let Some(n) = settings.workers {
        server = server.workers(n);
    }
    Ok(server.run())
}

/// The admin API on its own listener, when `--admin-listen` asks for it: only with a token
/// file (whatever the address, since its operations revoke users' access).
fn serve_admin(
    settings: &Settings,
    state: web::Data<AppState>,
) -> Result<Option<(SocketAddr, Server, web::Data<AdminTokens>)>, StartError> {
    let Some(listen) = settings.admin_listen else {
        return Ok(None);
    };
    let Some(token_file) = &settings.admin_token_file else {
        return Err(StartError::Admin(
            "--admin-listen needs --admin-token-file (a file of `<label> <token>` lines, mode 0600)".into(),
        ));
    };
    let tokens = web::Data::new(AdminTokens::load(token_file).map_err(StartError::Admin)?);
    let served_tokens = tokens.clone();
    if !listen.ip().is_loopback() {
        tracing::warn!(address = %listen, "the admin API listens on a non-loopback address without TLS: keep it on a private network, since its bearer tokens cross it in clear");
    }
    let listener = TcpListener::bind(listen).map_err(|e| StartError::Listen(listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Listen(listen, e))?;
    let hosts = web::Data::new(crate::admin::AdminHosts::new(&settings.admin_hosts));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(served_tokens.clone())
            .app_data(hosts.clone())
            .wrap(actix_web::middleware::from_fn(
                crate::admin::only_admin_hosts,
            ))
            .configure(crate::admin::configure)
    })
    .workers(1)
    .listen(listener)
    .map_err(|e| StartError::Listen(listen, e))?
    .shutdown_timeout(settings.shutdown_wait().as_secs().max(1))
    .run();
    Ok(Some((addr, server, tokens)))
}

/// How often `--watch-tenants` looks at the tenant files.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// How often the sweeper runs.
pub(crate) const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Deletes expired records (clients unused too long, stale codes and transactions) and
/// forgets idle rate-limit buckets.
async fn sweep_forever(state: web::Data<AppState>) {
    const BATCH: usize = 10_000;
    // At most this long of each minute goes to sweeping (a pass over a million records takes
    // about 4 s here), so expired records are reclaimed at least as fast as short-lived ones
    // (transactions, codes) can be created, without one long burst of work.
    const BUDGET: Duration = Duration::from_secs(6);
    // The first sweep waits a full interval: a server that is stopped right after it starts
    // (tests, a crash loop) then never has a sweep holding the store open on a blocking thread.
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + SWEEP_INTERVAL, SWEEP_INTERVAL);
    // The queue's gauge from the start, not only after its first change.
    state
        .registry()
        .approvals()
        .recount(&state.tenants(), unix_now())
        .await;
    loop {
        tick.tick().await;
        let (mut examined, mut removed) = (0, 0);
        let started = std::time::Instant::now();
        while started.elapsed() < BUDGET {
            match state
                .records()
                .backend()
                .sweep_expired(unix_now(), BATCH)
                .await
            {
                Ok(sweep) => {
                    examined += sweep.examined;
                    removed += sweep.removed;
                    if sweep.pass_complete {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "sweeper could not delete expired records");
                    break;
                }
            }
        }
        if removed > 0 {
            tracing::info!(removed, examined, "sweeper deleted expired records");
        }
        state.forget_idle_rate_limits();
        // Requests that expired leave the queue without a change of their own.
        state
            .registry()
            .approvals()
            .recount(&state.tenants(), unix_now())
            .await;
    }
}
