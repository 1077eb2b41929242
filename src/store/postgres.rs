//! The PostgreSQL backend of `Store`, for several replicas sharing one database. One table of
//! records keyed like sled's; every statement commits on its own. A durable write commits with
//! `synchronous_commit = on` (it returns once its WAL is flushed). A deferred write (a request
//! that writes several records and flushes once before it answers) commits on a connection
//! with `synchronous_commit = off`: visible to every replica at once, on disk with the next
//! WAL flush. `flush` then commits a transaction that writes WAL (a transactional logical
//! message, which leaves no row behind) with `synchronous_commit = on`; PostgreSQL flushes WAL
//! in order, so that covers every commit before it, this replica's and any other's. A crash of
//! the database may lose a suffix of the deferred commits that no flush covered yet, never part
//! of one. Atomicity comes from single statements: `INSERT … ON CONFLICT … WHERE` for
//! insert-if-absent-or-expired, `UPDATE … WHERE revision = …` for compare-and-swap and
//! `DELETE … RETURNING` for take-once, each of which PostgreSQL serializes per row.
//!
//! Versioned migrations are embedded and applied at start inside one transaction holding an
//! advisory lock, so that replicas starting together apply each once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use super::{Durability, Entry, GroupWrite, Store, StoreError, Sweep};
use crate::crypto::private_file::{describe, read_private};

/// The migrations, in order; each runs once, in the transaction that records it.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE dcr_records (
        key bytea PRIMARY KEY,
        schema integer NOT NULL,
        revision bigint NOT NULL,
        expires_at bigint,
        payload bytea NOT NULL
    );
    CREATE INDEX dcr_records_expiry ON dcr_records (expires_at) WHERE expires_at IS NOT NULL;",
    ),
    // `Store::write_all` in one statement: inserts (no expected revision) and
    // compare-and-swaps, in order; the first whose condition fails raises GROUP_REFUSED, which
    // undoes the whole statement.
    (
        2,
        "CREATE FUNCTION dcr_write_all(keys bytea[], expected bigint[], schemas integer[],
            revisions bigint[], expiries bigint[], payloads bytea[], at bigint)
        RETURNS void LANGUAGE plpgsql AS $$
        DECLARE
            written integer;
        BEGIN
            IF cardinality(expected) <> cardinality(keys)
                OR cardinality(schemas) <> cardinality(keys)
                OR cardinality(revisions) <> cardinality(keys)
                OR cardinality(expiries) <> cardinality(keys)
                OR cardinality(payloads) <> cardinality(keys) THEN
                RAISE EXCEPTION 'dcr_write_all: arrays of different lengths';
            END IF;
            FOR i IN 1 .. cardinality(keys) LOOP
                IF expected[i] IS NULL THEN
                    INSERT INTO dcr_records (key, schema, revision, expires_at, payload)
                    VALUES (keys[i], schemas[i], revisions[i], expiries[i], payloads[i])
                    ON CONFLICT (key) DO UPDATE SET schema = EXCLUDED.schema,
                        revision = EXCLUDED.revision, expires_at = EXCLUDED.expires_at,
                        payload = EXCLUDED.payload
                    WHERE dcr_records.expires_at IS NOT NULL AND dcr_records.expires_at <= at;
                ELSE
                    UPDATE dcr_records SET schema = schemas[i], revision = revisions[i],
                        expires_at = expiries[i], payload = payloads[i]
                    WHERE key = keys[i] AND revision = expected[i];
                END IF;
                GET DIAGNOSTICS written = ROW_COUNT;
                IF written = 0 THEN
                    RAISE EXCEPTION 'write % of the group: its condition does not hold', i
                        USING ERRCODE = 'DCR01';
                END IF;
            END LOOP;
        END
        $$;",
    ),
];

/// The SQLSTATE `dcr_write_all` raises when a condition of the group does not hold.
const GROUP_REFUSED: &str = "DCR01";

/// The advisory lock taken while migrating (any fixed number no other application uses).
const MIGRATION_LOCK: i64 = 0x6463_725f_7368_696d; // "dcr_shim"

/// Connections per replica for reads and durable writes, shared out among the runtimes that
/// use the store, at least 2 each.
const POOL_SIZE: usize = 30;
const POOL_SIZE_PER_RUNTIME: usize = 2;

/// Connections per replica for deferred writes (`synchronous_commit = off`), shared out the
/// same way, at least 1 each.
const DEFERRED_POOL_SIZE: usize = 10;
const DEFERRED_POOL_SIZE_PER_RUNTIME: usize = 1;

/// What `flush` runs: a transactional logical message writes a WAL record and needs a
/// transaction id, so its commit waits for the WAL flush; it is allowed to every role and at
/// every `wal_level`, and changes no table.
const FLUSH_SQL: &str = "SELECT pg_logical_emit_message(true, 'dcr-shim', '')";

/// How long a request waits for a connection, or for one to be made: a database that does
/// not answer makes requests fail quickly instead of piling up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one statement may take before the store counts as unreachable.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the store is and how to reach it.
#[derive(Clone)]
pub struct PostgresLocation {
    config: tokio_postgres::Config,
    /// Extra CA certificates for the database's TLS certificate (`sslrootcert=` in the URL).
    root_cert: Option<PathBuf>,
}

impl std::fmt::Debug for PostgresLocation {
    /// Host, port and database only: never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl PostgresLocation {
    /// Parses a `postgres://` URL. `sslmode` is `disable`, `prefer` or `require`; `verify-ca`
    /// and `verify-full` are read as `require`, which with this client always verifies the
    /// certificate chain and the host name. `sslrootcert=<file>` names the CAs to trust
    /// instead of the bundled roots. A password in
    /// `password_file` replaces one in the URL.
    pub fn parse(url: &str, password_file: Option<&Path>) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|_| {
            "the store URL is not a URL; write postgres://user@host:5432/dbname".to_owned()
        })?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err("the store URL must start with postgres://".into());
        }
        let mut root_cert = None;
        let mut kept = parsed.clone();
        kept.set_query(None);
        {
            let mut query = kept.query_pairs_mut();
            for (k, v) in parsed.query_pairs() {
                match (k.as_ref(), v.as_ref()) {
                    ("sslrootcert", file) => root_cert = Some(PathBuf::from(file)),
                    ("sslmode", "verify-ca" | "verify-full") => {
                        query.append_pair("sslmode", "require");
                    }
                    _ => {
                        query.append_pair(&k, &v);
                    }
                }
            }
        }
        // The query was re-encoded as a form, where a space is `+`; PostgreSQL's URL syntax
        // reads `+` as itself (`options=-c search_path=x` must keep its space). A `+` of the
        // original was encoded as %2B, so every `+` in the query is a space.
        let text = match kept.as_str().split_once('?') {
            Some((base, "")) => base.to_owned(),
            Some((base, query)) => format!("{base}?{}", query.replace('+', "%20")),
            None => kept.as_str().to_owned(),
        };
        let mut config: tokio_postgres::Config = text
            .parse()
            .map_err(|e| format!("the store URL is not a PostgreSQL connection URL: {e}"))?;
        if let Some(file) = password_file {
            let password =
                read_private(file).map_err(|e| describe("the store password file", file, &e))?;
            config.password(password.trim_end_matches(['\r', '\n']));
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        // A database that drops off the network without closing its connections is noticed in
        // seconds, not after TCP's retransmissions (about 15 minutes).
        config.keepalives_idle(Duration::from_secs(15));
        config.tcp_user_timeout(STATEMENT_TIMEOUT);
        config.application_name("dcr-shim");
        Ok(Self { config, root_cert })
    }

    /// Whether TLS may be skipped (`sslmode` `disable` or `prefer`, the default) although the
    /// server is not on this host: then someone on the path could read or change records.
    pub fn plaintext_possible_to_remote(&self) -> bool {
        let remote = self.config.get_hosts().iter().any(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => {
                !(name == "localhost"
                    || name
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback()))
            }
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(_) => false,
        });
        remote && self.config.get_ssl_mode() != tokio_postgres::config::SslMode::Require
    }

    /// `postgres://host:port/dbname`, for logs.
    pub fn describe(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let db = self.config.get_dbname().unwrap_or("");
        format!("postgres://{host}:{port}/{db}")
    }
}

pub struct PostgresStore {
    /// Each runtime's own connections. A connection's I/O runs on the runtime that opened it,
    /// and actix runs one single-threaded runtime per worker thread: a connection shared by
    /// all workers would hand most statements from one thread to another and back.
    pools: std::sync::Mutex<HashMap<RuntimeKey, Arc<ThreadPools>>>,
    make: PoolMaker,
    /// Whether deferred writes go to connections with `synchronous_commit = off`; not when
    /// `flush` cannot be run (then every write is durable on return).
    deferred_ready: bool,
}

/// Which runtime a caller runs on: a single-threaded runtime by its thread; every thread of
/// a multi-threaded runtime (the main one) shares one set of connections.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum RuntimeKey {
    Thread(ThreadId),
    MultiThreaded,
}

impl RuntimeKey {
    fn current() -> Self {
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::CurrentThread) => {
                Self::Thread(std::thread::current().id())
            }
            _ => Self::MultiThreaded,
        }
    }
}

/// One runtime's connections.
struct ThreadPools {
    durable: Pool,
    deferred: Pool,
}

/// What a thread's pools are made from.
struct PoolMaker {
    durable: tokio_postgres::Config,
    deferred: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    durable_size: usize,
    deferred_size: usize,
}

impl PoolMaker {
    fn pools(&self) -> Result<ThreadPools, StoreError> {
        Ok(ThreadPools {
            durable: connection_pool(self.durable.clone(), self.tls.clone(), self.durable_size)?,
            deferred: connection_pool(self.deferred.clone(), self.tls.clone(), self.deferred_size)?,
        })
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("PostgreSQL: {e}"))
}

/// `tokio_postgres::Error`'s `Display` is terse ("db error"); its source says what happened.
/// What may pass if the request is tried again is `Unavailable`: the connection refused,
/// closed or timed out, and the server's own transient refusals (SQLSTATE classes 08
/// connection, 53 resources, 57 shutting down or starting; 40001/40P01 serialization and
/// deadlock; 25006 a standby after a failover). Anything else (a constraint, a type mismatch)
/// is a fault that a retry would repeat: `Backend`.
fn pg(e: tokio_postgres::Error) -> StoreError {
    let source = std::error::Error::source(&e);
    let text = match source {
        Some(source) => format!("PostgreSQL: {e}: {source}"),
        None => format!("PostgreSQL: {e}"),
    };
    let transient = match e.code() {
        Some(code) => {
            let code = code.code();
            ["08", "53", "57"]
                .iter()
                .any(|class| code.starts_with(class))
                || matches!(code, "40001" | "40P01" | "25006")
        }
        None => {
            e.is_closed()
                || source.is_some_and(|s| s.is::<std::io::Error>())
                || text.contains("timeout")
        }
    };
    if transient {
        StoreError::Unavailable(text)
    } else {
        StoreError::Backend(text)
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg(e),
        deadpool_postgres::PoolError::Timeout(_) => {
            StoreError::Unavailable("PostgreSQL: no connection within 5 s".into())
        }
        other => backend(other),
    }
}

/// The first key after every key that starts with `prefix` (`None`: no such key).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn entry_of(row: &tokio_postgres::Row) -> Result<Entry, StoreError> {
    let schema: i32 = row.try_get(0).map_err(pg)?;
    let revision: i64 = row.try_get(1).map_err(pg)?;
    let expires_at: Option<i64> = row.try_get(2).map_err(pg)?;
    Ok(Entry {
        schema: u16::try_from(schema).map_err(backend)?,
        revision: u64::try_from(revision).map_err(backend)?,
        expires_at: expires_at.map(|t| u64::try_from(t).unwrap_or(0)),
        payload: row.try_get(3).map_err(pg)?,
    })
}

/// `u64` seconds and revisions as PostgreSQL's `bigint`.
fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl PostgresStore {
    /// Connects, and applies the migrations this version has and the database lacks.
    /// `runtimes`: how many runtimes will use the store (the server's workers, its main
    /// runtime, the admin listener's), among which the connections are shared out.
    pub async fn open(location: &PostgresLocation, runtimes: usize) -> Result<Self, StoreError> {
        let tls = tls_connector(location.root_cert.as_deref())?;
        // Added to what the URL's `options` says (a search_path, a role), not instead of it.
        let mut deferred = location.config.clone();
        deferred.options(format!(
            "{} -c synchronous_commit=off",
            location.config.get_options().unwrap_or_default()
        ));
        let runtimes = runtimes.max(1);
        let make = PoolMaker {
            durable: location.config.clone(),
            deferred,
            tls,
            durable_size: (POOL_SIZE / runtimes).max(POOL_SIZE_PER_RUNTIME),
            deferred_size: (DEFERRED_POOL_SIZE / runtimes).max(DEFERRED_POOL_SIZE_PER_RUNTIME),
        };
        make.pools()?;
        let mut store = Self {
            pools: Default::default(),
            make,
            deferred_ready: false,
        };
        store.migrate().await?;
        if store
            .synchronous_commit(Durability::OnReturn)
            .await?
            .as_deref()
            == Some("off")
        {
            return Err(backend(
                "synchronous_commit is off for this role, database or URL, so a write the store acknowledged could be lost if PostgreSQL crashes; set it to on (the default)",
            ));
        }
        store.deferred_ready = true;
        let deferred_usable = async {
            store.execute(FLUSH_SQL, &[]).await?;
            let level = store.synchronous_commit(Durability::Deferred).await?;
            store
                .query_as(
                    Durability::Deferred,
                    "SELECT 1 FROM dcr_records LIMIT 0",
                    &[],
                )
                .await?;
            Ok::<_, StoreError>(level.as_deref() == Some("off"))
        };
        match deferred_usable.await {
            Ok(true) => {}
            Ok(false) => {
                store.deferred_ready = false;
                tracing::warn!(
                    "the store's deferred connections do not get synchronous_commit = off (a connection pooler that drops the options parameter?), so every write waits for its own commit to reach the disk (slower logins)"
                );
            }
            Err(e) => {
                store.deferred_ready = false;
                tracing::warn!(error = %e,
                    "the store cannot flush PostgreSQL's WAL on demand or use its deferred connections, so every write waits for its own commit to reach the disk (slower logins); let the database role run pg_logical_emit_message");
            }
        }
        Ok(store)
    }

    /// `synchronous_commit` as a connection of this durability sees it.
    async fn synchronous_commit(
        &self,
        durability: Durability,
    ) -> Result<Option<String>, StoreError> {
        let rows = self
            .query_as(durability, "SHOW synchronous_commit", &[])
            .await?;
        Ok(rows.first().and_then(|r| r.try_get::<_, String>(0).ok()))
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool_for(Durability::OnReturn)?
            .get()
            .await
            .map_err(pool_error)
    }

    /// This runtime's pool for a statement of this durability.
    fn pool_for(&self, durability: Durability) -> Result<Pool, StoreError> {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        let mine = match pools.entry(RuntimeKey::current()) {
            std::collections::hash_map::Entry::Occupied(e) => e.get().clone(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(Arc::new(self.make.pools()?)).clone()
            }
        };
        Ok(match durability {
            Durability::Deferred if self.deferred_ready => mine.deferred.clone(),
            _ => mine.durable.clone(),
        })
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS dcr_schema_migrations (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await
        .map_err(pg)?;
        let applied: Vec<i32> = tx
            .query("SELECT version FROM dcr_schema_migrations", &[])
            .await
            .map_err(pg)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if let Some(newer) = applied.iter().find(|v| **v > MIGRATIONS.len() as i32) {
            return Err(backend(format!(
                "the database has schema version {newer}, newer than this dcr-shim knows ({}); run the newer version",
                MIGRATIONS.len()
            )));
        }
        for (version, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            tx.batch_execute(sql).await.map_err(pg)?;
            tx.execute(
                "INSERT INTO dcr_schema_migrations (version) VALUES ($1)",
                &[version],
            )
            .await
            .map_err(pg)?;
            tracing::info!(version, "store schema migrated");
        }
        tx.commit().await.map_err(pg)
    }

    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        self.write(Durability::OnReturn, sql, params).await
    }

    /// A statement that writes, committed as `durability` says.
    async fn write(
        &self,
        durability: Durability,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        bounded(async {
            let (client, statement) = self.prepared(durability, sql).await?;
            client.execute(&statement, params).await.map_err(pg)
        })
        .await
    }

    /// A connection of this runtime's pool for `durability`, and `sql` prepared on it (once
    /// per connection).
    async fn prepared(
        &self,
        durability: Durability,
        sql: &str,
    ) -> Result<(deadpool_postgres::Client, tokio_postgres::Statement), StoreError> {
        let client = self.pool_for(durability)?.get().await.map_err(pool_error)?;
        let statement = client.prepare_cached(sql).await.map_err(pg)?;
        Ok((client, statement))
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        self.query_as(Durability::OnReturn, sql, params).await
    }

    /// A query (that may write, as `DELETE … RETURNING` does), committed as `durability` says.
    async fn query_as(
        &self,
        durability: Durability,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        bounded(async {
            let (client, statement) = self.prepared(durability, sql).await?;
            client.query(&statement, params).await.map_err(pg)
        })
        .await
    }
}

/// Makes the pool's connections, and drives each one on a task that logs what the server
/// sends unasked: a NOTICE (`relation … already exists, skipping` at every start, from the
/// idempotent schema statements) at debug, where the driver would log it at info through the
/// `log` crate, with the source paths of the machine that built the binary.
struct NoticesAtDebug {
    tls: tokio_postgres_rustls::MakeRustlsConnect,
}

impl deadpool_postgres::Connect for NoticesAtDebug {
    fn connect(
        &self,
        pg_config: &tokio_postgres::Config,
    ) -> futures_util::future::BoxFuture<
        '_,
        Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>,
    > {
        let (tls, pg_config) = (self.tls.clone(), pg_config.clone());
        Box::pin(async move {
            let (client, mut connection) = pg_config.connect(tls).await?;
            let task = tokio::spawn(async move {
                // Polling the messages drives the connection, as awaiting it would.
                let mut messages =
                    futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
                    match message {
                        Ok(tokio_postgres::AsyncMessage::Notice(n)) => {
                            tracing::debug!(
                                severity = n.severity(),
                                message = n.message(),
                                "PostgreSQL said"
                            );
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "a PostgreSQL connection of the store ended");
                            return;
                        }
                    }
                }
            });
            Ok((client, task))
        })
    }
}

/// A pool of at most `size` connections made with `config`.
fn connection_pool(
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    size: usize,
) -> Result<Pool, StoreError> {
    let manager = Manager::from_connect(
        config,
        NoticesAtDebug { tls },
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        // The connection used last is taken first: its server process is the one still warm,
        // where first-in-first-out would cycle every statement through all the idle ones.
        .queue_mode(deadpool_postgres::QueueMode::Lifo)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(CONNECT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(backend)
}

/// `work`, or `Unavailable` if it takes longer than `STATEMENT_TIMEOUT` (with the connection
/// wait): a database that stops answering fails requests quickly instead of holding them.
async fn bounded<T>(
    work: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(CONNECT_TIMEOUT + STATEMENT_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "PostgreSQL: no answer within 15 s".into(),
            ))
        })
}

impl PostgresStore {
    /// Live records with keys from `from` (inclusive) to `end` (exclusive; `None`: the last),
    /// in key order, up to `limit`. Two statements rather than one with an optional bound, so
    /// that each reads an index range that ends where its keys do.
    async fn live_from(
        &self,
        from: &[u8],
        end: Option<&[u8]>,
        now: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match end {
            Some(end) => {
                self.query(
                    "SELECT schema, revision, expires_at, payload, key FROM dcr_records
                     WHERE key >= $1 AND key < $2 AND (expires_at IS NULL OR expires_at > $3)
                     ORDER BY key LIMIT $4",
                    &[&from, &end, &big(now), &limit],
                )
                .await?
            }
            None => {
                self.query(
                    "SELECT schema, revision, expires_at, payload, key FROM dcr_records
                     WHERE key >= $1 AND (expires_at IS NULL OR expires_at > $2)
                     ORDER BY key LIMIT $3",
                    &[&from, &big(now), &limit],
                )
                .await?
            }
        };
        rows.iter()
            .map(|r| Ok((r.try_get::<_, Vec<u8>>(4).map_err(pg)?, entry_of(r)?)))
            .collect()
    }
}

/// TLS for `sslmode=prefer|require`: the bundled roots, or only `root_cert`'s CAs.
fn tls_connector(
    root_cert: Option<&Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    match root_cert {
        // As in libpq: the file's CAs, and only they.
        Some(file) => {
            let pem = std::fs::read(file)
                .map_err(|e| backend(format!("cannot read sslrootcert {}: {e}", file.display())))?;
            use rustls_pki_types::pem::PemObject;
            for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
                let cert =
                    cert.map_err(|e| backend(format!("sslrootcert {}: {e}", file.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| backend(format!("sslrootcert {}: {e}", file.display())))?;
            }
            if roots.is_empty() {
                return Err(backend(format!(
                    "sslrootcert {} holds no PEM certificate",
                    file.display()
                )));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(backend)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[async_trait]
impl Store for PostgresStore {
    async fn insert_new(
        &self,
        key: &[u8],
        entry: Entry,
        now: u64,
        durability: Durability,
    ) -> Result<bool, StoreError> {
        // Written when the key is free or holds an expired record.
        let written = self
            .write(
                durability,
                "INSERT INTO dcr_records (key, schema, revision, expires_at, payload)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (key) DO UPDATE SET schema = EXCLUDED.schema,
                    revision = EXCLUDED.revision, expires_at = EXCLUDED.expires_at,
                    payload = EXCLUDED.payload
                 WHERE dcr_records.expires_at IS NOT NULL AND dcr_records.expires_at <= $6",
                &[
                    &key,
                    &i32::from(entry.schema),
                    &big(entry.revision),
                    &entry.expires_at.map(big),
                    &entry.payload,
                    &big(now),
                ],
            )
            .await?;
        Ok(written == 1)
    }

    async fn compare_and_swap(
        &self,
        key: &[u8],
        expected_revision: u64,
        entry: Entry,
        durability: Durability,
    ) -> Result<bool, StoreError> {
        let written = self
            .write(
                durability,
                "UPDATE dcr_records SET schema = $3, revision = $4, expires_at = $5, payload = $6
                 WHERE key = $1 AND revision = $2",
                &[
                    &key,
                    &big(expected_revision),
                    &i32::from(entry.schema),
                    &big(entry.revision),
                    &entry.expires_at.map(big),
                    &entry.payload,
                ],
            )
            .await?;
        Ok(written == 1)
    }

    async fn write_all(
        &self,
        writes: Vec<GroupWrite>,
        now: u64,
        durability: Durability,
    ) -> Result<bool, StoreError> {
        let keys: Vec<&[u8]> = writes.iter().map(|w| w.key.as_slice()).collect();
        let expected: Vec<Option<i64>> = writes
            .iter()
            .map(|w| w.expected_revision.map(big))
            .collect();
        let schemas: Vec<i32> = writes.iter().map(|w| i32::from(w.entry.schema)).collect();
        let revisions: Vec<i64> = writes.iter().map(|w| big(w.entry.revision)).collect();
        let expiries: Vec<Option<i64>> =
            writes.iter().map(|w| w.entry.expires_at.map(big)).collect();
        let payloads: Vec<&[u8]> = writes.iter().map(|w| w.entry.payload.as_slice()).collect();
        bounded(async {
            let (client, statement) = self
                .prepared(
                    durability,
                    "SELECT dcr_write_all($1, $2, $3, $4, $5, $6, $7)",
                )
                .await?;
            match client
                .execute(
                    &statement,
                    &[
                        &keys,
                        &expected,
                        &schemas,
                        &revisions,
                        &expiries,
                        &payloads,
                        &big(now),
                    ],
                )
                .await
            {
                Ok(_) => Ok(true),
                Err(e) if e.code().is_some_and(|c| c.code() == GROUP_REFUSED) => Ok(false),
                Err(e) => Err(pg(e)),
            }
        })
        .await
    }

    async fn get(&self, key: &[u8], now: u64) -> Result<Option<Entry>, StoreError> {
        let rows = self
            .query(
                "SELECT schema, revision, expires_at, payload FROM dcr_records
                 WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2)",
                &[&key, &big(now)],
            )
            .await?;
        rows.first().map(entry_of).transpose()
    }

    async fn take(
        &self,
        key: &[u8],
        now: u64,
        durability: Durability,
    ) -> Result<Option<Entry>, StoreError> {
        let rows = self
            .query_as(
                durability,
                "DELETE FROM dcr_records WHERE key = $1
                 RETURNING schema, revision, expires_at, payload",
                &[&key],
            )
            .await?;
        // Removing an expired record changes nothing a reader could see.
        Ok(rows
            .first()
            .map(entry_of)
            .transpose()?
            .filter(|e| e.is_live(now)))
    }

    async fn remove(&self, key: &[u8], durability: Durability) -> Result<bool, StoreError> {
        let removed = self
            .write(
                durability,
                "DELETE FROM dcr_records WHERE key = $1",
                &[&key],
            )
            .await?;
        Ok(removed > 0)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // Always run, even with no deferred write of this replica's since the last flush: a
        // caller may be about to answer with what another replica wrote deferred (a refresh's
        // grace retry), and that must be on disk first.
        if self.deferred_ready {
            self.execute(FLUSH_SQL, &[]).await?;
        }
        Ok(())
    }

    async fn scan(
        &self,
        prefix: &[u8],
        now: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>, StoreError> {
        self.live_from(prefix, prefix_end(prefix).as_deref(), now, limit)
            .await
    }

    async fn scan_after(
        &self,
        after: &[u8],
        now: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>, StoreError> {
        // The first key after `after` in byte order is `after` followed by a zero byte.
        self.live_from(&[after, &[0]].concat(), None, now, limit)
            .await
    }

    async fn sweep_expired(&self, now: u64, limit: usize) -> Result<Sweep, StoreError> {
        // Replicas sweeping at once skip each other's rows, so each record is deleted once.
        let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
        let removed = self
            .execute(
                "DELETE FROM dcr_records WHERE key IN (
                    SELECT key FROM dcr_records WHERE expires_at <= $1
                    ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
                &[&big(now), &limit_sql],
            )
            .await?;
        let removed = usize::try_from(removed).unwrap_or(usize::MAX);
        Ok(Sweep {
            examined: removed,
            removed,
            pass_complete: removed < limit,
        })
    }

    async fn check_health(&self) -> Result<(), StoreError> {
        self.query("SELECT 1", &[]).await.map(drop)
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn size_on_disk(&self) -> Result<u64, StoreError> {
        let rows = self
            .query("SELECT pg_total_relation_size('dcr_records')", &[])
            .await?;
        let bytes: i64 = rows.first().map(|r| r.get(0)).unwrap_or(0);
        Ok(u64::try_from(bytes).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_are_the_next_key_after_the_prefix() {
        assert_eq!(prefix_end(b"t/a"), Some(b"t/b".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn store_urls_keep_their_password_out_of_descriptions() {
        let l = PostgresLocation::parse(
            "postgres://shim:s3cret@db.internal:6543/auth?sslmode=verify-full",
            None,
        )
        .unwrap();
        assert_eq!(l.describe(), "postgres://db.internal:6543/auth");
        assert!(!format!("{l:?}").contains("s3cret"));
        assert_eq!(
            l.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert!(PostgresLocation::parse("mysql://x", None).is_err());
    }
}
