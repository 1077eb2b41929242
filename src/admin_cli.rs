//! `dcr-shim clients …`, `dcr-shim grants …` and `dcr-shim keys …`: the admin API from a
//! shell, or offline over a data directory (except `keys rotate`, which needs the server's
//! secret to seal the new key). A table for people, `--json` for scripts; the exit code says whether the
//! server did it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::domain::text::escape_for_terminal;

/// Where the admin API is and how to authenticate to it, or the data directory to work on
/// when no server runs.
#[derive(Args, Debug)]
pub struct AdminConnection {
    /// Work on this data directory directly instead of through a server's admin API: only
    /// while no server holds it (a running server locks its store; then use --admin-url).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// With --data-dir: the directory of tenant files.
    #[arg(long, env = "DCR_SHIM_TENANTS", default_value = "./tenants")]
    tenants: PathBuf,
    /// With --data-dir: the server's public URL (each tenant's issuer derives from it).
    #[arg(long, env = "DCR_SHIM_PUBLIC_URL", default_value = "http://127.0.0.1:8080", value_parser = crate::config::server::parse_public_url)]
    public_url: url::Url,
    /// The admin API over the data directory, opened at the first call.
    #[arg(skip)]
    offline: tokio::sync::OnceCell<Offline>,
    /// The admin API's address (the server's --admin-listen).
    #[arg(
        long,
        env = "DCR_SHIM_ADMIN_URL",
        default_value = "http://127.0.0.1:9090"
    )]
    admin_url: String,
    /// An admin token (better: DCR_SHIM_ADMIN_TOKEN, or --admin-token-file).
    #[arg(long, env = "DCR_SHIM_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// A file whose first `<label> <token>` line (or bare token) is used.
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
    /// The tenant.
    #[arg(long)]
    tenant: String,
    /// Print the server's JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
pub enum ClientsCommand {
    /// Registered clients of the tenant.
    List {
        #[command(flatten)]
        conn: AdminConnection,
        /// Only clients mapped onto this app.
        #[arg(long)]
        app: Option<String>,
        /// Only clients whose name holds this text (in any case).
        #[arg(long)]
        name: Option<String>,
        /// At most this many (a last line says how many more match).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One client and its grants.
    Show {
        #[command(flatten)]
        conn: AdminConnection,
        client_id: String,
    },
    /// Delete a registered client; its grants are revoked.
    Delete {
        #[command(flatten)]
        conn: AdminConnection,
        client_id: String,
    },
    /// Clients waiting for an administrator's approval, the longest wait first.
    Pending {
        #[command(flatten)]
        conn: AdminConnection,
        /// At most this many (a last line says how many more wait).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Approve a waiting client (by client id or by the reference its user was shown), or
    /// every client of a CIMD host.
    Approve {
        #[command(flatten)]
        conn: AdminConnection,
        /// A client id, a client metadata document's URL, or a reference (REQ-…).
        #[arg(required_unless_present = "host", conflicts_with = "host")]
        client: Option<String>,
        /// Approve every client whose metadata document this host publishes.
        #[arg(long)]
        host: Option<String>,
        /// The app the client maps to, for every resource (default: the mapping rules').
        #[arg(long, conflicts_with = "host")]
        app: Option<String>,
    },
    /// Deny a client (by client id or reference): its users are told, its grants revoked, and
    /// for a CIMD client its host's other documents are refused too (unless the host had a
    /// decision); or deny every client of a CIMD host (except documents approved one by one).
    Deny {
        #[command(flatten)]
        conn: AdminConnection,
        /// A client id, a client metadata document's URL, or a reference (REQ-…).
        #[arg(required_unless_present = "host", conflicts_with = "host")]
        client: Option<String>,
        /// Deny every client whose metadata document this host publishes.
        #[arg(long)]
        host: Option<String>,
    },
    /// Map a client onto another app (for one resource, or all).
    Remap {
        #[command(flatten)]
        conn: AdminConnection,
        client_id: String,
        #[arg(long)]
        app: String,
        #[arg(long)]
        resource: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum GrantsCommand {
    /// Grants (refresh families) of the tenant, of a client or of a user.
    List {
        #[command(flatten)]
        conn: AdminConnection,
        /// Only this client's grants.
        #[arg(long, conflicts_with = "user")]
        client: Option<String>,
        /// The user's subject at the IdP (Entra `oid`, else `sub`).
        #[arg(long)]
        user: Option<String>,
        /// At most this many, the oldest first (a last line says how many more match).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Revoke one grant, every grant of a client, or every grant of a user.
    Revoke {
        #[command(flatten)]
        conn: AdminConnection,
        /// Every grant of this client.
        #[arg(long, conflicts_with_all = ["user", "grant"], required_unless_present_any = ["user", "grant"])]
        client: Option<String>,
        /// Every grant of this user (their subject at the IdP: Entra `oid`, else `sub`).
        #[arg(long, conflicts_with = "grant")]
        user: Option<String>,
        /// One grant, by the id `grants list` shows.
        #[arg(long)]
        grant: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// The tenant's keys for minted tokens, and which signs now.
    List {
        #[command(flatten)]
        conn: AdminConnection,
    },
    /// Publish a new signing key now; it signs after the propagation delay, and the key it
    /// replaces stays published until every token that key signed has expired.
    Rotate {
        #[command(flatten)]
        conn: AdminConnection,
        /// How long the new key is published before it signs: longer than your resource
        /// servers cache the JWKS.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        propagation: std::time::Duration,
        /// Remove the old keys from the JWKS at once, for a key that may have leaked: every
        /// token they signed is refused from then on (use with --propagation 0).
        #[arg(long)]
        drop_old: bool,
    },
}

fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

impl AdminConnection {
    fn token(&self) -> Result<String, String> {
        if let Some(t) = &self.admin_token {
            return Ok(t.clone());
        }
        let Some(path) = &self.admin_token_file else {
            return Err(
                "give the admin token: DCR_SHIM_ADMIN_TOKEN, --admin-token or --admin-token-file"
                    .into(),
            );
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .and_then(|l| l.split_whitespace().last())
            .map(str::to_owned)
            .ok_or_else(|| format!("{} holds no token", path.display()))
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        if let Some(dir) = &self.data_dir {
            let offline = self
                .offline
                .get_or_try_init(|| Offline::open(dir, &self.tenants, &self.public_url))
                .await?;
            let path = format!("/admin/v1/tenants/{}{path}", encode(&self.tenant));
            return offline.call(method.as_str(), &path, body).await;
        }
        let url = format!(
            "{}/admin/v1/tenants/{}{path}",
            self.admin_url.trim_end_matches('/'),
            encode(&self.tenant)
        );
        let mut req = reqwest::Client::new()
            .request(method, &url)
            .bearer_auth(self.token()?);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req
            .send()
            .await
            .map_err(|e| format!("cannot reach the admin API at {}: {e}", self.admin_url))?;
        let status = res.status().as_u16();
        let value: Value = res.json().await.unwrap_or(Value::Null);
        answer(status, value)
    }
}

/// The admin API run in this process over a data directory: the same handlers as a server's,
/// called without a listener, with a token made for the occasion. Its audit events go to
/// stderr as JSON lines, labelled `offline`.
pub struct Offline {
    state: actix_web::web::Data<crate::http::state::AppState>,
    tokens: actix_web::web::Data<crate::admin::tokens::AdminTokens>,
    token: crate::crypto::Handle,
}

impl std::fmt::Debug for Offline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Offline")
    }
}

impl Offline {
    async fn open(
        dir: &std::path::Path,
        tenants: &std::path::Path,
        public_url: &url::Url,
    ) -> Result<Self, String> {
        let _ = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .with_env_filter("audit=info")
            .try_init();
        let settings = crate::config::Settings::new(
            ([127, 0, 0, 1], 0).into(),
            public_url.clone(),
            dir.to_owned(),
            tenants.to_owned(),
        );
        let state = crate::app::open_offline(&settings).await.map_err(|e| {
            let e = e.to_string();
            if e.contains("could not acquire lock") {
                format!("{} is held by a running server; go through its admin API instead (--admin-url, as without --data-dir)", dir.display())
            } else {
                format!("cannot open {}: {e}", dir.display())
            }
        })?;
        let token = crate::crypto::Handle::generate();
        let tokens =
            actix_web::web::Data::new(crate::admin::tokens::AdminTokens::single("offline", &token));
        Ok(Self {
            state,
            tokens,
            token,
        })
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        use actix_web::test;
        let app = test::init_service(
            actix_web::App::new()
                .app_data(self.state.clone())
                .app_data(self.tokens.clone())
                .configure(crate::admin::configure),
        )
        .await;
        let method =
            actix_web::http::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut req = test::TestRequest::default()
            .method(method)
            .uri(path)
            .insert_header(("Authorization", format!("Bearer {}", self.token.expose())));
        if let Some(b) = body {
            req = req.set_json(b);
        }
        let res = test::call_service(&app, req.to_request()).await;
        let status = res.status();
        let value: Value =
            serde_json::from_slice(&test::read_body(res).await).unwrap_or(Value::Null);
        answer(status.as_u16(), value)
    }
}

/// A success's JSON, or the reason the admin API gave for a failure.
fn answer(status: u16, value: Value) -> Result<Value, String> {
    if (200..300).contains(&status) {
        Ok(value)
    } else {
        Err(format!(
            "the server answered {status}: {}",
            value["error_description"]
                .as_str()
                .unwrap_or("no reason given")
        ))
    }
}

fn finish(
    conn: &AdminConnection,
    result: Result<Value, String>,
    table: impl Fn(&Value),
) -> ExitCode {
    match result {
        Ok(v) if conn.json => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(v) => {
            table(&v);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dcr-shim: {}", escape_for_terminal(&e));
            ExitCode::FAILURE
        }
    }
}

/// A value for a table cell: what clients and IdPs wrote is escaped (`domain/text.rs`), so it
/// cannot move the cursor, recolour the terminal, forge a row or reorder a column.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => escape_for_terminal(s),
        Value::Null => "-".into(),
        other => escape_for_terminal(&other.to_string()),
    }
}

/// A Unix time as a date (UTC) for a table; `-` when absent.
fn date(v: &Value) -> String {
    match v.as_u64() {
        Some(secs) => humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
        )
        .to_string(),
        None => text(v),
    }
}

/// The line under a listing that did not show everything: how many more match, and how to see
/// them.
fn more_line(shown: usize, listing: &Value) {
    let total = listing["total"].as_u64().unwrap_or(shown as u64);
    let at_least = if listing["total_exact"] == false {
        "at least "
    } else {
        ""
    };
    if total > shown as u64 {
        println!(
            "… {at_least}{} more (of {at_least}{total}); raise --limit to see them",
            total - shown as u64
        );
    }
}

fn print_clients(clients: &[Value]) {
    println!(
        "{:<40} {:<24} {:<20} {:<9} APPS",
        "CLIENT_ID", "NAME", "LAST_USED", "STATUS"
    );
    for c in clients {
        let apps: Vec<String> = c["apps"]
            .as_object()
            .map(|m| m.values().map(text).collect())
            .unwrap_or_default();
        println!(
            "{:<40} {:<24} {:<20} {:<9} {}",
            text(&c["client_id"]),
            text(&c["metadata"]["client_name"]),
            date(&c["last_used_at"]),
            c["approval"].as_str().unwrap_or("approved"),
            apps.join(",")
        );
    }
}

/// The approval queue: the reference to quote, the client (its name is its own claim), who
/// asked first and how many since.
fn print_pending(pending: &[Value]) {
    println!(
        "{:<13} {:<40} {:<26} {:<28} {:<20} USERS",
        "REFERENCE", "CLIENT_ID", "NAME (CLAIMED)", "FIRST_ASKED_BY", "FIRST_ASKED"
    );
    for p in pending {
        let clients = p["clients"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let first = clients.first().unwrap_or(&Value::Null);
        let user = &p["first_user"];
        let asked_by = [&user["upn"], &user["email"], &user["subject"]]
            .into_iter()
            .find(|v| v.as_str().is_some_and(|s| !s.is_empty()))
            .map(text)
            .unwrap_or_else(|| "-".into());
        let mut client = text(&first["client_id"]);
        let others =
            clients.len().saturating_sub(1) as u64 + p["clients_not_listed"].as_u64().unwrap_or(0);
        if others > 0 {
            client.push_str(&format!(" (+{others} of {})", text(&p["cimd_host"])));
        }
        println!(
            "{:<13} {:<40} {:<26} {:<28} {:<20} {}",
            text(&p["reference"]),
            client,
            text(&first["claimed_name"]),
            asked_by,
            date(&p["first_requested_at"]),
            text(&p["users"])
        );
    }
}

fn print_grants(grants: &[Value]) {
    println!(
        "{:<44} {:<38} {:<24} {:<24} {:<20} REVOKED",
        "GRANT", "CLIENT_ID", "CLIENT", "USER", "CREATED"
    );
    for g in grants {
        println!(
            "{:<44} {:<38} {:<24} {:<24} {:<20} {}",
            text(&g["id"]),
            text(&g["client_id"]),
            text(&g["client_name"]),
            text(&g["user"]),
            date(&g["created_at"]),
            text(&g["revoked"])
        );
    }
}

pub async fn clients(cmd: ClientsCommand) -> ExitCode {
    use reqwest::Method;
    match cmd {
        ClientsCommand::List {
            conn,
            app,
            name,
            limit,
        } => {
            let mut path = format!("/clients?limit={limit}");
            if let Some(a) = &app {
                path.push_str(&format!("&app={}", encode(a)));
            }
            if let Some(n) = &name {
                path.push_str(&format!("&name={}", encode(n)));
            }
            let r = conn.call(Method::GET, &path, None).await;
            finish(&conn, r, |v| {
                let clients = v["clients"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                print_clients(clients);
                more_line(clients.len(), v);
            })
        }
        ClientsCommand::Show { conn, client_id } => {
            let r = conn
                .call(
                    Method::GET,
                    &format!("/clients/{}", encode(&client_id)),
                    None,
                )
                .await;
            finish(&conn, r, |v| {
                print_clients(std::slice::from_ref(&v["client"]));
                println!();
                print_grants(v["grants"].as_array().map(Vec::as_slice).unwrap_or(&[]));
            })
        }
        ClientsCommand::Delete { conn, client_id } => {
            let r = conn
                .call(
                    Method::DELETE,
                    &format!("/clients/{}", encode(&client_id)),
                    None,
                )
                .await;
            finish(&conn, r, |v| {
                println!(
                    "deleted {client_id}; {} grant(s) revoked",
                    text(&v["grants_revoked"])
                )
            })
        }
        ClientsCommand::Pending { conn, limit } => pending(&conn, limit).await,
        ClientsCommand::Approve {
            conn,
            client,
            host,
            app,
        } => approve(&conn, client, host, app).await,
        ClientsCommand::Deny { conn, client, host } => deny(&conn, client, host).await,
        ClientsCommand::Remap {
            conn,
            client_id,
            app,
            resource,
        } => {
            let body = json!({"app": app, "resource": resource});
            let r = conn
                .call(
                    Method::PUT,
                    &format!("/clients/{}/app", encode(&client_id)),
                    Some(body),
                )
                .await;
            finish(&conn, r, |v| {
                print_clients(std::slice::from_ref(&v["client"]))
            })
        }
    }
}

/// `clients pending`: the approval queue, the longest wait first.
async fn pending(conn: &AdminConnection, limit: usize) -> ExitCode {
    use reqwest::Method;
    let r = conn
        .call(Method::GET, &format!("/approvals?limit={limit}"), None)
        .await;
    finish(conn, r, |v| {
        let pending = v["pending"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        print_pending(pending);
        more_line(pending.len(), v);
    })
}

/// `clients approve`: a client (by id or reference, with its app) or a whole CIMD host.
async fn approve(
    conn: &AdminConnection,
    client: Option<String>,
    host: Option<String>,
    app: Option<String>,
) -> ExitCode {
    use reqwest::Method;
    let body = json!({"client": client, "host": host, "app": app});
    let r = conn
        .call(Method::POST, "/approvals/approve", Some(body))
        .await;
    finish(conn, r, |v| {
        if said_removed(v) {
            return;
        }
        let what = match (v["client_id"].as_str(), v["cimd_host"].as_str()) {
            (Some(id), _) => escape_for_terminal(id),
            (None, Some(host)) => format!("every client of {}", escape_for_terminal(host)),
            _ => "-".into(),
        };
        println!("approved {what}");
        if let Some(reference) = v["reference"].as_str() {
            println!("request {} settled", escape_for_terminal(reference));
        }
    })
}

/// Says so when a decision found its client deleted since it asked (its request removed).
fn said_removed(v: &Value) -> bool {
    let removed = v["decision"] == "removed";
    if removed {
        println!(
            "{} no longer exists; its request {} was removed",
            text(&v["client_id"]),
            text(&v["reference"])
        );
    }
    removed
}

/// `clients deny`: a client (by id or reference) or a whole CIMD host.
async fn deny(conn: &AdminConnection, client: Option<String>, host: Option<String>) -> ExitCode {
    use reqwest::Method;
    let r = conn
        .call(
            Method::POST,
            "/approvals/deny",
            Some(json!({"client": client, "host": host})),
        )
        .await;
    finish(conn, r, |v| {
        if said_removed(v) {
            return;
        }
        if v["decision"] == "host_denied" {
            println!(
                "denied every client of {} (except documents approved one by one)",
                text(&v["cimd_host"])
            );
            return;
        }
        println!(
            "denied {}; {} grant(s) revoked",
            text(&v["client_id"]),
            text(&v["grants_revoked"])
        );
        if let (Some(host), true) = (v["cimd_host"].as_str(), v["host_denied"] == true) {
            println!(
                "other documents of {} are refused too, unless approved one by one",
                escape_for_terminal(host)
            );
        }
    })
}

pub async fn grants(cmd: GrantsCommand) -> ExitCode {
    use reqwest::Method;
    match cmd {
        GrantsCommand::List {
            conn,
            client,
            user,
            limit,
        } => {
            let path = match (&client, &user) {
                (Some(c), _) => format!("/grants?limit={limit}&client={}", encode(c)),
                (_, Some(u)) => format!("/grants?limit={limit}&user={}", encode(u)),
                _ => format!("/grants?limit={limit}"),
            };
            let r = conn.call(Method::GET, &path, None).await;
            finish(&conn, r, |v| {
                let grants = v["grants"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                print_grants(grants);
                more_line(grants.len(), v);
            })
        }
        GrantsCommand::Revoke {
            conn,
            client,
            user,
            grant,
        } => {
            let r = match &grant {
                Some(g) => {
                    conn.call(Method::DELETE, &format!("/grants/{}", encode(g)), None)
                        .await
                }
                None => {
                    conn.call(
                        Method::POST,
                        "/grants/revoke",
                        Some(json!({"client": client, "user": user})),
                    )
                    .await
                }
            };
            // Revoking nothing is not success: a mistyped user or client id would otherwise
            // read as done.
            let r = r.and_then(|v| match v["revoked"].as_u64() {
                Some(0) => Err(match (&client, &user, &grant) {
                    (_, Some(u), _) => format!("no live grant of user {u} was found; nothing revoked (check the subject with `grants list`)"),
                    (Some(c), _, _) => format!("no live grant of client {c} was found; nothing revoked"),
                    _ => "nothing revoked".to_owned(),
                }),
                _ => Ok(v),
            });
            finish(&conn, r, |v| {
                println!("{} grant(s) revoked", text(&v["revoked"]));
                if v["grants_without_user"].as_u64().is_some_and(|n| n > 0) {
                    println!(
                        "note: {} live grant(s) of this tenant record no user (made before users were recorded, or by an IdP without ID tokens); revoke them by client",
                        text(&v["grants_without_user"])
                    );
                }
            })
        }
    }
}

pub async fn keys(cmd: KeysCommand) -> ExitCode {
    use reqwest::Method;
    match cmd {
        KeysCommand::List { conn } => {
            let r = conn.call(Method::GET, "/keys", None).await;
            finish(&conn, r, |v| {
                println!(
                    "{:<45} {:<9} {:>12} {:>14}",
                    "KID", "STATE", "SIGN FROM", "PUBLISH UNTIL"
                );
                for k in v["keys"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                    println!(
                        "{:<45} {:<9} {:>12} {:>14}",
                        text(&k["kid"]),
                        text(&k["state"]),
                        text(&k["sign_from"]),
                        text(&k["publish_until"])
                    );
                }
            })
        }
        KeysCommand::Rotate {
            conn,
            propagation,
            drop_old,
        } => {
            if conn.data_dir.is_some() {
                eprintln!(
                    "dcr-shim: keys rotate seals the new key with the server's secret, which only a running server holds; run it through the admin API (--admin-url)"
                );
                return ExitCode::FAILURE;
            }
            let body = json!({"propagation_seconds": propagation.as_secs(), "drop_old": drop_old});
            let r = conn.call(Method::POST, "/keys/rotate", Some(body)).await;
            finish(&conn, r, |v| {
                println!(
                    "new key {} signs from {} (unix time)",
                    text(&v["kid"]),
                    text(&v["sign_from"])
                );
                for r in v["retiring"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                    println!("key {} leaves the JWKS at {}", text(&r[0]), text(&r[1]));
                }
                for d in v["dropped"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                    println!("key {} removed from the JWKS", text(d));
                }
                if let Some(w) = v["warning"].as_str() {
                    eprintln!("warning: {w}");
                }
            })
        }
    }
}
