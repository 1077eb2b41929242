//! Reading tenant files: every `*.toml` of the directory parsed (TOML, then the schema of
//! `tenant.rs`), validated (`validate.rs`) and turned into the runtime `Tenant`, with every
//! problem reported at once.

use std::path::{Path, PathBuf};

use url::Url;

use super::problems::{CredentialFiles, Problem, Problems};
use super::tenant::{AppConfig, CredentialConfig, Tenant, TenantConfig, UpstreamConfig};
use super::validate::{check_resource_servers, validate};
use crate::domain::tenant_id::TenantId;

/// Loads every `*.toml` file directly inside `dir` (not its subdirectories).
pub fn load_tenants(dir: &Path, public_url: &Url) -> Result<Vec<Tenant>, Vec<Problem>> {
    load_tenants_with(dir, public_url, CredentialFiles::Read)
}

/// `load_tenants`, with the apps' credential files read or not.
pub fn load_tenants_with(
    dir: &Path,
    public_url: &Url,
    credential_files: CredentialFiles,
) -> Result<Vec<Tenant>, Vec<Problem>> {
    let mut problems = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            return Err(vec![Problem {
                file: dir.to_owned(),
                field: "(directory)".into(),
                message: format!(
                    "cannot read the tenants directory: {e}; pass --tenants or set DCR_SHIM_TENANTS"
                ),
            }]);
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        problems.push(Problem {
            file: dir.to_owned(),
            field: "(directory)".into(),
            message: "holds no tenant files; add one `<tenant-id>.toml` (see tenants/examples/)"
                .into(),
        });
    }
    let mut tenants = Vec::new();
    for file in files {
        match load_tenant_with(&file, public_url, credential_files) {
            Ok(t) => tenants.push(t),
            Err(mut p) => problems.append(&mut p),
        }
    }
    problems.extend(gateway_routes_clash(&tenants, public_url));
    if problems.is_empty() {
        Ok(tenants)
    } else {
        Err(problems)
    }
}

/// Gateway resources routed by path on this server's host whose first segment is a tenant's
/// id (its routes live there), or two gateway resources on one route.
fn gateway_routes_clash(tenants: &[Tenant], public_url: &Url) -> Vec<Problem> {
    use super::gateway::{GatewayConfig, Routing};
    let mut seen: std::collections::HashMap<Routing, String> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for t in tenants {
        for (i, r) in t.resources().iter().enumerate() {
            if r.gateway.is_none() {
                continue;
            }
            let Some(routing) = GatewayConfig::routing(&r.uri, public_url) else {
                continue;
            };
            let problem = |message: String| Problem {
                file: t.file.clone(),
                field: format!("resources[{i}].uri"),
                message,
            };
            if let Routing::Path(path) = &routing {
                let first = path
                    .trim_start_matches('/')
                    .split('/')
                    .next()
                    .unwrap_or_default();
                if let Some(owner) = tenants.iter().find(|o| o.id.as_str() == first) {
                    out.push(problem(format!("its path begins with /{first}, where the routes of the tenant '{}' are; give it a path of its own, such as /mcp{path}", owner.id)));
                }
            }
            match seen.get(&routing) {
                Some(other) => out.push(problem(format!("{other} is served on the same route; each gateway resource needs a route of its own"))),
                None => {
                    seen.insert(routing, format!("{} in {}", r.uri, t.file.display()));
                }
            }
        }
    }
    out
}

/// Parses and validates one tenant file.
pub fn load_tenant(file: &Path, public_url: &Url) -> Result<Tenant, Vec<Problem>> {
    load_tenant_with(file, public_url, CredentialFiles::Read)
}

fn load_tenant_with(
    file: &Path,
    public_url: &Url,
    credential_files: CredentialFiles,
) -> Result<Tenant, Vec<Problem>> {
    let mut problems = Problems::new(file);
    problems.credential_files = credential_files;
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let id = TenantId::parse(stem)
        .map_err(|e| {
            problems.add(
                "(file name)",
                format!("tenant id '{stem}' {e}; rename the file"),
            )
        })
        .ok();
    let text = std::fs::read_to_string(file)
        .map_err(|e| problems.add("(file)", format!("cannot be read: {e}")))
        .ok();
    let mut config = text.and_then(|text| parse_config(&text, &mut problems));
    if let Some(config) = &mut config {
        resolve_local_issuers(config, public_url);
        validate(config, public_url, &mut problems);
        check_resource_servers(config, &mut problems);
        let read = problems.credential_files == CredentialFiles::Read;
        for (field, message) in config.approval.load(read) {
            problems.add(&field, message);
        }
    }
    match (id, config) {
        (Some(id), Some(mut config)) if problems.list.is_empty() => {
            add_dev_app(&mut config);
            let issuer = format!("{}/{}", public_url.as_str().trim_end_matches('/'), id);
            Ok(Tenant::new(id, file.to_owned(), issuer, config))
        }
        _ => Err(problems.list),
    }
}

/// A trusted issuer written as a path (`/demo/dev-idp`) is one served by this server: it is
/// taken relative to the public URL, so that a tenant file trusting another tenant's dev IdP
/// follows `--public-url` instead of naming a host and port.
fn resolve_local_issuers(config: &mut TenantConfig, public_url: &Url) {
    let base = public_url.as_str().trim_end_matches('/');
    for t in &mut config.trusted_issuers {
        if t.issuer.starts_with('/') {
            t.issuer = format!("{base}{}", t.issuer);
        }
    }
}

/// Name and client id of the app a `dev` tenant gets when its file lists none.
pub(crate) const DEV_APP: &str = "dev";

fn add_dev_app(config: &mut TenantConfig) {
    if config.apps.is_empty() && matches!(config.upstream, UpstreamConfig::Dev { .. }) {
        config.apps.push(AppConfig {
            name: DEV_APP.to_owned(),
            client_id: DEV_APP.to_owned(),
            scopes: Vec::new(),
            credential: CredentialConfig::None,
        });
    }
}

fn parse_config(text: &str, problems: &mut Problems) -> Option<TenantConfig> {
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            problems.add(
                "(syntax)",
                format!("is not valid TOML: {}", e.to_string().trim()),
            );
            return None;
        }
    };
    match serde_path_to_error::deserialize::<_, TenantConfig>(table) {
        Ok(c) => Some(c),
        Err(e) => {
            let path = e.path().to_string();
            let field = if path == "." {
                "(top level)".to_owned()
            } else {
                path
            };
            let message = e.into_inner().to_string();
            let first_line = message.lines().next().unwrap_or_default().to_owned();
            problems.add(&field, first_line);
            None
        }
    }
}
