//! Checking a parsed tenant file: every field that can be wrong, each problem said with its
//! field and what to do, all of them at once.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use url::Url;

use super::entra_rules;
use super::problems::{CredentialFiles, Problems};
use super::tenant::{
    CredentialConfig, DevSettings, ResourceConfig, TenantConfig, UpstreamConfig, read_ca_file,
};
use crate::domain::is_loopback_host;
use crate::domain::scope::is_scope_token;

pub(crate) fn validate(c: &TenantConfig, public_url: &Url, p: &mut Problems) {
    validate_upstream(&c.upstream, public_url, p);
    validate_apps(c, p);
    validate_resources(c, p);
    validate_mapping(c, p);
    let mut issuers = HashSet::new();
    for (i, t) in c.trusted_issuers.iter().enumerate() {
        for (field, message) in t.problems(&c.resources, c.dev.cimd_allow_loopback) {
            p.add(&format!("trusted_issuers[{i}].{field}"), message);
        }
        if !issuers.insert(t.issuer.as_str()) {
            p.add(&format!("trusted_issuers[{i}].issuer"), "is listed twice");
        }
    }
    let entra = matches!(c.upstream, UpstreamConfig::Entra { .. });
    for (field, message) in
        super::downstream_api::problems(&c.downstream_apis, &c.apps, &c.resources, entra)
    {
        p.add(&field, message);
    }
    validate_registration(c, p);
    validate_dev(&c.dev, public_url, p);
    for (field, message) in c.grants.problems() {
        p.add(&format!("grants.{field}"), message);
    }
    for (i, r) in c.resources.iter().enumerate() {
        for (field, message) in r
            .gateway
            .iter()
            .flat_map(|g| g.problems(&r.uri, public_url))
        {
            p.add(&format!("resources[{i}].{field}"), message);
        }
    }
    validate_gateways(c, p);
    for (i, r) in c.resources.iter().enumerate() {
        if r.grant_lifetime.is_none() && r.grant_idle_lifetime.is_none() {
            continue;
        }
        let own = c.grants.overridden(r.grant_lifetime, r.grant_idle_lifetime);
        for (field, message) in own.problems() {
            p.add(&format!("resources[{i}].grant_{field}"), message);
        }
    }
}

/// The `[[resource_servers]]`, `[[machine_clients]]`, `[[trusted_issuers]]` and
/// `[[trusted_workloads]]` tables, reading their key files.
pub(crate) fn check_resource_servers(c: &mut TenantConfig, p: &mut Problems) {
    for (i, t) in c.trusted_issuers.iter_mut().enumerate() {
        if let Some((field, message)) = t.load_keys() {
            p.add(&format!("trusted_issuers[{i}].{field}"), message);
        }
    }
    let mut ids = HashSet::new();
    for (i, rs) in c.resource_servers.iter_mut().enumerate() {
        for (field, message) in rs.check(&c.resources, &mut ids) {
            p.add(&format!("resource_servers[{i}].{field}"), message);
        }
    }
    let loopback = c.dev.cimd_allow_loopback;
    for (i, m) in c.machine_clients.iter_mut().enumerate() {
        for (field, message) in m.check(&c.resources, &mut ids, &c.trusted_workloads, loopback) {
            p.add(&format!("machine_clients[{i}].{field}"), message);
        }
    }
    // The rules of one issuer share its keys: a token is checked with the keys of the rule its
    // claims match, so two clusters that both call themselves `https://kubernetes.default.svc`
    // must not be told apart by their rules' keys.
    for (i, w) in c.trusted_workloads.iter().enumerate() {
        let key_source = |x: &super::trusted_workload::TrustedWorkload| {
            (
                x.jwks_uri.clone(),
                x.jwks_file.clone(),
                x.algorithms.clone(),
            )
        };
        if c.trusted_workloads[..i]
            .iter()
            .any(|o| o.issuer == w.issuer && key_source(o) != key_source(w))
        {
            p.add(
                &format!("trusted_workloads[{i}].issuer"),
                "another rule of this issuer names other keys (jwks_uri, jwks_file) or algorithms: the rules of one issuer must share them",
            );
        }
    }
    let machines: Vec<&str> = c
        .machine_clients
        .iter()
        .map(|m| m.client_id.as_str())
        .collect();
    for (i, w) in c.trusted_workloads.iter_mut().enumerate() {
        for (field, message) in w.check(&machines, &c.trusted_issuers, loopback) {
            p.add(&format!("trusted_workloads[{i}].{field}"), message);
        }
    }
}

fn validate_upstream(u: &UpstreamConfig, public_url: &Url, p: &mut Problems) {
    if let Some(ca) = u.tls().and_then(|t| t.ca_file)
        && let Err(e) = read_ca_file(ca)
    {
        p.add("upstream.ca_file", e);
    }
    match u {
        UpstreamConfig::Entra {
            directory_id,
            authority,
            ..
        } => {
            entra_rules::directory_id(directory_id, p);
            check_url("upstream.authority", authority, p);
        }
        UpstreamConfig::Oidc {
            issuer,
            discovery_url,
            ..
        } => {
            check_url("upstream.issuer", issuer, p);
            if let Some(d) = discovery_url {
                check_url("upstream.discovery_url", d, p);
            }
        }
        UpstreamConfig::Dev { allow_non_loopback } => {
            if !is_loopback_host(public_url) && !allow_non_loopback {
                p.add("upstream.kind", format!("the built-in dev IdP logs anyone in without a password, so it runs only on a loopback public URL (this server's is {public_url}); use an `entra` or `oidc` upstream, or set upstream.allow_non_loopback = true for a demo"));
            }
        }
    }
}

fn validate_apps(c: &TenantConfig, p: &mut Problems) {
    let is_dev = matches!(c.upstream, UpstreamConfig::Dev { .. });
    if c.apps.is_empty() && !is_dev {
        p.add("apps", "at least one app (a static registration at the IdP) is required; add an [[apps]] table");
    }
    let mut names = HashSet::new();
    for (i, app) in c.apps.iter().enumerate() {
        let at = |f: &str| format!("apps[{i}].{f}");
        if app.name.is_empty() {
            p.add(&at("name"), "must not be empty");
        } else if crate::domain::text::has_control_or_bidi(&app.name) {
            p.add(
                &at("name"),
                "holds a control or bidirectional formatting character; use plain text",
            );
        } else if !names.insert(app.name.as_str()) {
            p.add(
                &at("name"),
                format!(
                    "'{}' is used by another app; app names must be unique",
                    app.name
                ),
            );
        }
        if app.client_id.trim().is_empty() {
            p.add(
                &at("client_id"),
                "must be the app's client id at the IdP (Entra: the Application (client) ID)",
            );
        } else if matches!(c.upstream, UpstreamConfig::Entra { .. }) {
            entra_rules::app_client_id(&app.client_id, &at("client_id"), p);
        }
        for (j, s) in app.scopes.iter().enumerate() {
            if !is_scope_token(s) {
                p.add(
                    &at(&format!("scopes[{j}]")),
                    format!("'{s}' is not a valid scope"),
                );
            } else if !c
                .resources
                .iter()
                .flat_map(|r| &r.scopes)
                .any(|rs| &rs.upstream == s)
            {
                p.add(
                    &at(&format!("scopes[{j}]")),
                    format!("'{s}' is not the upstream string of any resource's scope, so it can never be granted; list the `upstream` values of [[resources]] scopes this app may have"),
                );
            }
        }
        validate_credential(&app.credential, &at("credential"), p);
        if matches!(app.credential, CredentialConfig::ManagedIdentity { .. })
            && !matches!(c.upstream, UpstreamConfig::Entra { .. })
        {
            p.add(&at("credential.kind"), "managed_identity works with an `entra` upstream only: the identity's token (audience api://AzureADTokenExchange) would be handed to this IdP, which could present it to Entra as every app that trusts the identity");
        }
    }
}

fn validate_credential(cred: &CredentialConfig, at: &str, p: &mut Problems) {
    // What the credential reads (its files, its environment variable) is not looked at when
    // it need not exist yet (`CredentialFiles::Skip`); its shape always is.
    let reads = p.credential_files == CredentialFiles::Read;
    let readable = |path: &Path, field: &str, p: &mut Problems| {
        if reads {
            check_readable(path, &format!("{at}.{field}"), p);
        }
    };
    let private = |path: &Path, field: &str, what: &str, p: &mut Problems| {
        if reads {
            check_private(path, &format!("{at}.{field}"), what, p);
        }
    };
    match cred {
        CredentialConfig::ClientSecret {
            secret_env,
            secret_file,
            ..
        } => match (secret_env, secret_file) {
            (Some(var), None) => {
                if reads && std::env::var_os(var).is_none_or(|v| v.is_empty()) {
                    p.add(&format!("{at}.secret_env"), format!("the environment variable {var} is not set; set it to the app's client secret"));
                }
            }
            (None, Some(file)) => private(file, "secret_file", "the client secret file", p),
            _ => p.add(at, "give exactly one of secret_env (an environment variable name) or secret_file (a path); secrets are never written in tenant files"),
        },
        CredentialConfig::PrivateKeyJwt {
            certificate_file,
            key_file,
            ..
        } => {
            readable(certificate_file, "certificate_file", p);
            private(key_file, "key_file", "the private key file", p);
            if reads && certificate_file.exists() && key_file.exists() {
                // Parse now, so that a wrong key or certificate is reported by `check` and
                // stops `serve`, instead of failing the first login.
                if let Err(e) = crate::crypto::app_key::AppSigningKey::load(key_file, certificate_file) {
                    p.add(at, e);
                }
            }
        }
        CredentialConfig::Federated { assertion_file } => readable(assertion_file, "assertion_file", p),
        CredentialConfig::ManagedIdentity { endpoint, audience, client_id } => {
            if let Some(e) = endpoint
                && !url::Url::parse(e).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            {
                p.add(&format!("{at}.endpoint"), format!("'{e}' is not an http(s) URL; leave it out to use the platform's identity endpoint"));
            }
            if audience.as_deref().is_some_and(|a| a.trim().is_empty()) {
                p.add(&format!("{at}.audience"), "the audience is empty; leave it out for api://AzureADTokenExchange");
            }
            if client_id.as_deref().is_some_and(|c| c.trim().is_empty()) {
                p.add(&format!("{at}.client_id"), "the client id is empty; give the user-assigned identity's client id, or leave it out for the system-assigned identity");
            }
        }
        CredentialConfig::None => {}
    }
}

/// A file the tenant reads: there, not a directory, not empty.
fn check_readable(path: &Path, at: &str, p: &mut Problems) {
    match std::fs::metadata(path) {
        Err(e) => p.add(at, format!("cannot read {}: {e}", path.display())),
        Ok(m) if m.is_dir() => p.add(
            at,
            format!("{} is a directory: name the file inside it", path.display()),
        ),
        Ok(m) if m.len() == 0 => p.add(at, format!("{} is empty", path.display())),
        Ok(_) => {}
    }
}

/// A secret: readable, not a directory, not empty, and private (`crypto/private_file.rs`).
fn check_private(path: &Path, at: &str, what: &str, p: &mut Problems) {
    use crate::crypto::private_file::{describe, read_private};
    match read_private(path) {
        Err(e) => p.add(at, describe(what, path, &e)),
        Ok(text) if text.trim().is_empty() => {
            p.add(at, format!("{what} {} is empty", path.display()))
        }
        Ok(_) => {}
    }
}

fn validate_resources(c: &TenantConfig, p: &mut Problems) {
    if c.resources.is_empty() {
        p.add("resources", "at least one resource (an MCP server this tenant fronts) is required; add a [[resources]] table");
    }
    let defaults = c.resources.iter().filter(|r| r.default).count();
    if defaults > 1 {
        p.add(
            "resources",
            "more than one resource says default = true; mark exactly one",
        );
    }
    if defaults == 0 && c.resources.len() > 1 {
        p.add("resources", "several resources and none says default = true; mark the one used when a client names no resource");
    }
    let mut uris = HashSet::new();
    let mut names = HashSet::new();
    let entra = matches!(c.upstream, UpstreamConfig::Entra { .. });
    // The Entra API (identifier URI) of each resource so far, to refuse two on one API.
    let mut apis: Vec<(String, usize)> = Vec::new();
    for (i, r) in c.resources.iter().enumerate() {
        let at = |f: &str| format!("resources[{i}].{f}");
        if check_url(&at("uri"), r.uri.as_str(), p) && !uris.insert(r.uri.normalized()) {
            p.add(&at("uri"), "another resource has the same uri (compared after normalizing case, default port, an empty path and escapes)");
        }
        if r.scopes.is_empty() {
            p.add(&at("scopes"), "at least one scope is required");
        }
        if let Some(u) = &r.upstream_resource {
            if entra {
                entra_rules::no_upstream_resource(&at("upstream_resource"), p);
            } else {
                // RFC 8707 §2: an absolute URI without a fragment, of any scheme (api://… is usual).
                let ok = Url::parse(u).is_ok_and(|url| url.fragment().is_none());
                if !ok {
                    p.add(&at("upstream_resource"), format!("'{u}' must be an absolute URI without a fragment, such as api://mcp-files or https://api.example.com"));
                }
            }
        }
        for (field, message) in r.token_problems() {
            p.add(&at(field), message);
        }
        let entra_apis = validate_resource_scopes(i, r, entra, &mut names, p);
        if entra {
            entra_rules::resource_apis(c, i, &entra_apis, &mut apis, p);
        }
        entra_rules::sign_in_strengths(r, entra, &at("acr_values"), p);
        for (j, d) in r.default_scopes.iter().enumerate() {
            if !r.scopes.iter().any(|s| &s.name == d) {
                p.add(
                    &at(&format!("default_scopes[{j}]")),
                    format!("'{d}' is not one of this resource's scope names"),
                );
            }
        }
    }
}

/// The scopes of resource `i`: valid names, unique across the tenant, and upstream strings
/// Entra can use (fully qualified, not Microsoft Graph's). Returns the Entra APIs they belong to.
fn validate_resource_scopes<'c>(
    i: usize,
    r: &'c ResourceConfig,
    entra: bool,
    names: &mut HashSet<&'c str>,
    p: &mut Problems,
) -> HashSet<&'c str> {
    let mut entra_resources = HashSet::new();
    for (j, s) in r.scopes.iter().enumerate() {
        let at = |f: &str| format!("resources[{i}].scopes[{j}].{f}");
        if !is_scope_token(&s.name) {
            p.add(
                &at("name"),
                format!("'{}' is not a valid scope name", s.name),
            );
        } else if s.name == "offline_access" || s.name == "openid" {
            p.add(
                &at("name"),
                format!("'{}' is handled by the shim itself; do not list it", s.name),
            );
        } else if !names.insert(s.name.as_str()) {
            p.add(&at("name"), format!("'{}' is already used in this tenant; scope names must be unique across resources", s.name));
        }
        if !is_scope_token(&s.upstream) {
            p.add(
                &at("upstream"),
                format!("'{}' is not a valid scope", s.upstream),
            );
        } else if entra && let Some(api) = entra_rules::scope_api(&s.upstream, &at("upstream"), p) {
            entra_resources.insert(api);
        }
    }
    entra_resources
}

fn validate_mapping(c: &TenantConfig, p: &mut Problems) {
    for (i, rule) in c.mapping.iter().enumerate() {
        let at = |f: &str| format!("mapping[{i}].{f}");
        let is_dev_default = c.apps.is_empty() && matches!(c.upstream, UpstreamConfig::Dev { .. });
        if !is_dev_default && !c.apps.iter().any(|a| a.name == rule.app) {
            p.add(
                &at("app"),
                format!("'{}' is not the name of an app in this file", rule.app),
            );
        }
        for (j, r) in rule.resources.iter().enumerate() {
            if !c.resources.iter().any(|res| res.uri.matches(r)) {
                p.add(
                    &at(&format!("resources[{j}]")),
                    format!("'{r}' is not the uri of a resource in this file"),
                );
            }
        }
        if rule.software_ids.iter().any(|s| s.is_empty()) {
            p.add(&at("software_ids"), "must not contain an empty string");
        }
    }
}

fn validate_registration(c: &TenantConfig, p: &mut Problems) {
    let r = &c.registration;
    if !r.dcr && !r.cimd {
        p.add(
            "registration",
            "both dcr and cimd are off, so no client could ever log in; turn one on",
        );
    }
    if r.unused_client_lifetime < Duration::from_secs(3600) {
        p.add("registration.unused_client_lifetime", "must be at least 1h");
    }
    if r.tenant_registrations_per_minute == Some(0) {
        p.add(
            "registration.tenant_registrations_per_minute",
            "must be at least 1; turn registration off with dcr = false instead",
        );
    }
    for (i, entry) in r.cimd_approval.iter().enumerate() {
        if entry.hosts.is_empty() {
            p.add(
                &format!("registration.cimd_approval[{i}].hosts"),
                "is empty, so the entry applies to no client; list hosts or remove it",
            );
        }
    }
    if !r.cimd && !r.cimd_approval.is_empty() {
        p.add(
            "registration.cimd_approval",
            "applies to client metadata documents, which are off (cimd = false); remove it",
        );
    }
    if r.registrations_per_minute == 0 {
        p.add(
            "registration.registrations_per_minute",
            "must be at least 1; turn registration off with dcr = false instead",
        );
    }
}

fn validate_dev(d: &DevSettings, public_url: &Url, p: &mut Problems) {
    if d.cimd_allow_loopback && !is_loopback_host(public_url) {
        p.add("dev.cimd_allow_loopback", format!("turns off the protection against fetches of internal addresses, so it is refused on a public URL that is not loopback ({public_url}); remove it"));
    }
    if let Some(ca) = &d.cimd_extra_ca_file {
        match std::fs::read(ca) {
            Ok(pem) => {
                if reqwest::Certificate::from_pem(&pem).is_err() {
                    p.add(
                        "dev.cimd_extra_ca_file",
                        format!("{} is not a PEM certificate", ca.display()),
                    );
                }
            }
            Err(e) => p.add(
                "dev.cimd_extra_ca_file",
                format!("cannot read {}: {e}", ca.display()),
            ),
        }
    }
}

/// An absolute http(s) URL without fragment or userinfo; plain http only on a loopback host.
fn check_url(field: &str, raw: &str, p: &mut Problems) -> bool {
    let url = match Url::parse(raw) {
        Ok(u) => u,
        Err(e) => {
            p.add(field, format!("'{raw}' is not an absolute URL ({e})"));
            return false;
        }
    };
    if !crate::domain::is_https_or_loopback(&url) {
        p.add(
            field,
            format!("'{raw}' must use https (http is accepted only on a loopback host)"),
        );
        return false;
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        p.add(
            field,
            format!("'{raw}' must not contain a fragment or user information"),
        );
        return false;
    }
    true
}

/// The app that asks Entra for a passthrough resource's downstream token: one of the tenant's,
/// confidential (Entra refuses a public client's on-behalf-of request), the API's own
/// registration where the accepted audiences name it by application id, and the one the
/// downstream API is reached through, if the API names one.
fn on_behalf_of_problems(
    c: &TenantConfig,
    r: &ResourceConfig,
    api: &str,
    app: &str,
) -> Vec<(&'static str, String)> {
    let Some(found) = c.apps.iter().find(|a| a.name == app) else {
        return vec![(
            "on_behalf_of_app",
            format!("'{app}' is not one of the tenant's [[apps]]"),
        )];
    };
    let mut out = Vec::new();
    if matches!(found.credential, CredentialConfig::None) {
        out.push(("on_behalf_of_app", format!("'{app}' has no credential: Entra answers an on-behalf-of request only from a confidential app")));
    }
    let audiences = c.upstream.idp_token_audiences(r);
    let guids: Vec<&String> = audiences.iter().filter(|a| !a.contains("://")).collect();
    if !guids.is_empty()
        && !guids
            .iter()
            .any(|g| g.eq_ignore_ascii_case(&found.client_id))
    {
        out.push(("on_behalf_of_app", format!("'{app}' ({}) is not the API the callers' tokens are for ({}): Entra answers an on-behalf-of request only from the app a token was issued to", found.client_id, guids.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(", "))));
    }
    if let Some(only) = c
        .downstream_apis
        .iter()
        .find(|d| d.name == api)
        .and_then(|d| d.app.as_deref())
        .filter(|only| *only != app)
    {
        out.push((
            "on_behalf_of_app",
            format!("the downstream API '{api}' is reached through the app '{only}', not '{app}'"),
        ));
    }
    out
}

/// A gateway's `downstream_api` and `on_behalf_of_app` against the resource and the tenant.
fn downstream_problems(
    c: &TenantConfig,
    r: &ResourceConfig,
    g: &super::gateway::GatewayConfig,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let entra = matches!(c.upstream, UpstreamConfig::Entra { .. });
    match (&g.downstream_api, &g.on_behalf_of_app, r.is_minted()) {
        (None, Some(_), _) => out.push(("on_behalf_of_app", "names the app for a downstream_api, and there is none".to_owned())),
        (Some(_), Some(_), true) => out.push(("on_behalf_of_app", "a minted resource's downstream token is obtained with the login's IdP refresh token; remove on_behalf_of_app".to_owned())),
        (Some(api), None, true) if !r.exchange.contains(api) => out.push(("downstream_api", format!("'{api}' must also be in the resource's exchange list, so that its logins keep the IdP refresh token the token is obtained with"))),
        (Some(_), None, false) => out.push(("downstream_api", "a passthrough resource's downstream token is obtained on behalf of the caller's token: name the API's own app registration in on_behalf_of_app (Entra only)".to_owned())),
        (Some(_), Some(_), false) if !entra => out.push(("on_behalf_of_app", "the on-behalf-of flow is Entra's; with another IdP use a minted resource, whose downstream token comes from the login's refresh token".to_owned())),
        (Some(api), Some(app), false) => out.extend(on_behalf_of_problems(c, r, api, app)),
        _ => {}
    }
    if let Some(api) = &g.downstream_api
        && !c.downstream_apis.iter().any(|d| &d.name == api)
    {
        out.push((
            "downstream_api",
            format!("'{api}' is not one of the tenant's [[downstream_apis]]"),
        ));
    }
    out
}

/// What the gateway resources' tables say against the rest of the tenant file.
fn validate_gateways(c: &TenantConfig, p: &mut Problems) {
    // Two passthrough gateway resources that accept one audience would accept each other's
    // callers' tokens.
    let mut accepted: Vec<(usize, String)> = Vec::new();
    for (i, r) in c.resources.iter().enumerate() {
        if r.gateway.is_none() || r.is_minted() {
            continue;
        }
        let mut own = c.upstream.idp_token_audiences(r);
        own.sort();
        own.dedup();
        for aud in own {
            if let Some((other, _)) = accepted.iter().find(|(_, a)| *a == aud) {
                p.add(&format!("resources[{i}].gateway.idp_audiences"), format!("'{aud}' is also accepted by resources[{other}]: each would admit the other's callers; give each passthrough gateway resource an API of its own"));
            }
            accepted.push((i, aud));
        }
    }
    for (i, r) in c.resources.iter().enumerate() {
        if let Some(g) = &r.gateway {
            let audience = g
                .identity_audience
                .clone()
                .unwrap_or_else(|| g.backend.to_string());
            if c.resources
                .iter()
                .any(|other| other.uri.as_str() == audience)
            {
                p.add(&format!("resources[{i}].gateway.identity_audience"), format!("'{audience}' is a resource URI of this tenant: the identity JWT would carry that resource's audience; name the MCP server behind instead"));
            }
        }
        if let Some(g) = &r.gateway {
            let passthrough_problem = if r.is_minted() {
                (!g.idp_audiences.is_empty()).then(|| "applies only to a passthrough resource (the IdP's own tokens); a minted resource's tokens have the resource URI as audience".to_owned())
            } else if c.upstream.idp_token_audiences(r).is_empty() {
                Some("the gateway checks the IdP's access tokens for this resource's API, but their audience is not known: list it (Entra: the API's App ID URI and its application id) or give the scopes' API".to_owned())
            } else {
                None
            };
            if let Some(message) = passthrough_problem {
                p.add(&format!("resources[{i}].gateway.idp_audiences"), message);
            }
            for (field, message) in downstream_problems(c, r, g) {
                p.add(&format!("resources[{i}].gateway.{field}"), message);
            }
        }
        let rules: Vec<_> = r.gateway.iter().flat_map(|g| &g.rules).collect();
        for (claim, used) in [
            ("roles", rules.iter().any(|rule| !rule.roles.is_empty())),
            ("groups", rules.iter().any(|rule| !rule.groups.is_empty())),
        ] {
            // A passthrough token carries the IdP's own `roles` and `groups`.
            if used && r.is_minted() && !r.claims.values().any(|to| to == claim) {
                p.add(&format!("resources[{i}].gateway.rules"), format!("a rule names {claim}, but the resource's tokens carry no '{claim}' claim: copy it from the ID token (claims = {{ {claim} = \"{claim}\" }})"));
            }
        }
        let rule_scopes = rules.iter().flat_map(|rule| &rule.scopes);
        for scope in rule_scopes {
            if !r.scopes.iter().any(|s| &s.name == scope) {
                p.add(&format!("resources[{i}].gateway.rules"), format!("'{scope}' is not one of the resource's scopes (its scopes list names the ones clients may ask for)"));
            }
        }
    }
}
