//! Server-wide settings: where to listen, the public URL, where data and tenants live.

use std::net::SocketAddr;
use std::path::PathBuf;

use url::Url;

pub use crate::crypto::keys::SecretSource;

/// The path prefix of a public URL: empty for `https://auth.example.com`, `/mcp-auth` for
/// `https://auth.example.com/mcp-auth` (routes, cookie paths and issuers live under it).
pub fn path_prefix(public_url: &Url) -> &str {
    public_url.path().trim_end_matches('/')
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Everything `serve` needs besides the tenant files.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    /// Scheme, host, port and optional path prefix (`path_prefix`) clients use to reach the
    /// shim.
    pub public_url: Url,
    pub data_dir: PathBuf,
    pub tenants_dir: PathBuf,
    /// The server secret's file or environment variable; default: `<data_dir>/server-secret`,
    /// made on first start.
    pub secret: Option<SecretSource>,
    /// The secret being rotated out; cookies and sealed data made with it are still accepted.
    pub previous_secret: Option<SecretSource>,
    /// HTTP worker threads; default: one per core.
    pub workers: Option<usize>,
    /// Total time allowed for one call to an IdP (discovery, token exchange, refresh).
    pub upstream_timeout: std::time::Duration,
    /// Let `dev` tenants run while listening on a non-loopback address (a container whose
    /// port is published only to the host's loopback).
    pub dev_idp_any_interface: bool,
    /// Make a new server secret although the data directory holds records (they become
    /// unreadable: every client signs in again).
    pub new_secret: bool,
    /// How long a stop waits for requests in flight; default: the upstream timeout plus
    /// `SHUTDOWN_MARGIN`, so that a login waiting on the IdP can finish.
    pub shutdown_timeout: Option<std::time::Duration>,
    /// Peers whose `Forwarded` / `X-Forwarded-For` headers name the client
    /// (`http/client_addr.rs`); from any other peer they are ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The header those proxies write.
    pub forwarded_header: ForwardedHeader,
    /// Where the admin API listens (`admin/mod.rs`); off when `None`.
    pub admin_listen: Option<SocketAddr>,
    /// The admin API's tokens (`admin/tokens.rs`); required with `admin_listen`.
    pub admin_token_file: Option<PathBuf>,
    /// Host names the admin listener answers besides IP literals (`admin/mod.rs`): a page
    /// that a DNS-rebinding attack points at the admin port names the attacker's host.
    pub admin_hosts: Vec<String>,
    /// Reload the tenant files when they change (`reload.rs`), besides on SIGHUP.
    pub watch_tenants: bool,
    /// Where the records live: `None` for the embedded sled store in `<data_dir>/store`,
    /// `sled:<dir>` for one elsewhere, or a `postgres://` URL (`store/postgres.rs`).
    pub store: Option<StoreSpec>,
    /// A file holding the PostgreSQL password (kept out of the URL and the environment).
    pub store_password_file: Option<PathBuf>,
    /// Logins one client address may start per minute (`http/login_limits.rs`).
    pub login_starts_per_minute: u32,
}

/// Logins one source address (an IPv6 /64) may start per minute by default
/// (`--login-starts-per-minute`, applied by `http/login_limits.rs`): generous, since a
/// company's users may all come through one NAT address. One browser (its CSRF cookie) may
/// start a tenth of it, one IPv6 /48 ten times it. At the default one address holds at most
/// 6,000 ten-minute transactions (about 8 MB).
pub const DEFAULT_LOGIN_STARTS_PER_MINUTE: u32 = 600;

impl Settings {
    /// Settings with every option at its default: `serve`'s defaults, for the offline admin
    /// commands, the tests and the benchmarks, which change the few they need.
    pub fn new(
        listen: SocketAddr,
        public_url: Url,
        data_dir: PathBuf,
        tenants_dir: PathBuf,
    ) -> Self {
        Self {
            listen,
            public_url,
            data_dir,
            tenants_dir,
            secret: None,
            previous_secret: None,
            workers: None,
            upstream_timeout: DEFAULT_UPSTREAM_TIMEOUT,
            dev_idp_any_interface: false,
            new_secret: false,
            shutdown_timeout: None,
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::default(),
            admin_listen: None,
            admin_token_file: None,
            admin_hosts: vec!["localhost".to_owned()],
            watch_tenants: false,
            store: None,
            store_password_file: None,
            login_starts_per_minute: DEFAULT_LOGIN_STARTS_PER_MINUTE,
        }
    }

    /// The sled directory, unless the store is PostgreSQL.
    pub fn sled_dir(&self) -> Option<PathBuf> {
        match &self.store {
            None => Some(self.data_dir.join("store")),
            Some(s) => s.as_str().strip_prefix("sled:").map(PathBuf::from),
        }
    }
}

/// `--store` as given. Its `Debug` leaves out a URL's password, so that settings printed for a
/// diagnosis do not carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreSpec(String);

impl StoreSpec {
    pub fn new(spec: impl Into<String>) -> Self {
        Self(spec.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                write!(f, "{:?}", url.as_str())
            }
            Ok(_) => write!(f, "{:?}", self.0),
            Err(_) => f.write_str("\"(a store spec that does not parse)\""),
        }
    }
}

/// Parses one `--trusted-proxies` entry: a CIDR or an address.
pub fn parse_trusted_proxy(raw: &str) -> Result<ipnet::IpNet, String> {
    let s = raw.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("'{s}' is not a CIDR (10.0.0.0/8, fd00::/8) or an address"))
}

/// Which header the trusted proxies write the client's address into (`http/client_addr.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ForwardedHeader {
    #[default]
    XForwardedFor,
    Forwarded,
}

/// Added to the upstream timeout for the default shutdown wait.
pub const SHUTDOWN_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

impl Settings {
    /// How long a stop waits for requests in flight.
    pub fn shutdown_wait(&self) -> std::time::Duration {
        self.shutdown_timeout
            .unwrap_or(self.upstream_timeout + SHUTDOWN_MARGIN)
    }
}

/// Default for `Settings::upstream_timeout`.
pub const DEFAULT_UPSTREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Checks a public URL: http(s), a host, a path prefix of plain segments or none, no query,
/// fragment or userinfo.
pub fn parse_public_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("'{raw}' is not an absolute URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("'{raw}' must be an http or https URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "'{raw}' must not have a query or fragment: tenants live at <public-url>/<tenant-id>"
        ));
    }
    // A path prefix (`/mcp-auth`): segments of unreserved characters only, since it becomes
    // part of routes, cookie paths and every issuer.
    let path = url.path().trim_end_matches('/');
    if !path.split('/').skip(1).all(|segment| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    }) || path.starts_with("/.well-known")
    {
        return Err(format!(
            "'{raw}' has a path that cannot be a prefix: give segments of letters, digits, '-', '.', '_' or '~', such as https://auth.example.com/mcp-auth"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("'{raw}' must not contain user information"));
    }
    if url.scheme() == "http" && !crate::domain::is_loopback_host(&url) {
        return Err(format!(
            "'{raw}' uses http on a host that is not loopback: codes and tokens would cross the network in clear and cookies could not be Secure; use the https URL clients reach (TLS may end at a proxy in front of the shim)"
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::{StoreSpec, parse_public_url};

    #[test]
    fn public_urls() {
        for (ok, prefix) in [
            ("http://127.0.0.1:8080", ""),
            ("http://localhost:8080/", ""),
            ("https://auth.example.com", ""),
            ("http://[::1]:9000", ""),
            ("https://auth.example.com/mcp-auth", "/mcp-auth"),
            ("https://auth.example.com/a/b.c/", "/a/b.c"),
        ] {
            let url = parse_public_url(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(super::path_prefix(&url), prefix, "{ok}");
        }
        for bad in [
            "http://auth.example.com",
            "https://auth.example.com/a//b",
            "https://auth.example.com/a%20b",
            "https://auth.example.com/.well-known",
            "https://auth.example.com/?q",
            "ftp://x",
            "https://u:p@auth.example.com",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_store_url_password_stays_out_of_debug() {
        let spec = StoreSpec::new("postgres://shim:s3cret@db:5432/dcr");
        assert_eq!(format!("{spec:?}"), "\"postgres://shim:***@db:5432/dcr\"");
        assert_eq!(spec.as_str(), "postgres://shim:s3cret@db:5432/dcr");
        assert_eq!(
            format!("{:?}", StoreSpec::new("sled:/data")),
            "\"sled:/data\""
        );
    }
}
