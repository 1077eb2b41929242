//! What an `entra` upstream requires of a tenant file beyond its shape, each rule with the
//! AADSTS error it prevents: ids as GUIDs, no RFC 8707 `resource` parameter, scopes fully
//! qualified and not Microsoft Graph's, one API per resource, `.default` alone, and no Entra
//! API shared by two resources where a passthrough token would be valid at both.
//! `validate.rs` asks these at the places of the fields they concern (problems keep the file's
//! order); `entra_checklist.rs` and `entra_plan.rs` say what the portal needs.

use std::collections::HashSet;

use super::problems::Problems;
use super::schema::TenantConfig;

/// Scopes every OpenID provider knows, Entra included, that name no API.
const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// A GUID in its usual text form (8-4-4-4-12 hex digits), as Entra writes ids.
fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `upstream.directory_id`: one directory, by its GUID.
pub(super) fn directory_id(directory_id: &str, p: &mut Problems) {
    if matches!(directory_id, "common" | "organizations" | "consumers") {
        p.add("upstream.directory_id", "multi-tenant endpoints are not supported; give the directory id of the tenant whose users log in");
    } else if !is_guid(directory_id) {
        // A verified domain reaches the same endpoints, but Entra's discovery document and
        // tokens name the directory by its GUID, so the issuer would never match.
        p.add("upstream.directory_id", format!("'{}' is not a GUID: give the directory (tenant) id, e.g. 72f988bf-86f1-41af-91ab-2d7cd011db47 (Entra admin center → Overview → Tenant ID); a domain name is not accepted, since Entra's tokens name the directory by its id", directory_id.escape_debug()));
    }
}

/// Whether `value` names a Conditional Access authentication context (`c1`…`c99`), the sign-in
/// strengths Entra can be asked for.
pub(crate) fn is_auth_context(value: &str) -> bool {
    value.strip_prefix('c').is_some_and(|n| {
        (1..=2).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0')
    })
}

/// A resource's sign-in strengths (its scopes' and its gateway rules' `acr_values`): words of
/// printable ASCII (RFC 9470 lists them space-separated in a quoted string) and, with Entra,
/// authentication contexts, which it is asked for; any other value would never be met.
pub(super) fn sign_in_strengths(
    resource: &super::resource::ResourceConfig,
    entra: bool,
    at: &str,
    p: &mut Problems,
) {
    let rules = resource
        .gateway
        .iter()
        .flat_map(|g| &g.rules)
        .flat_map(|r| &r.acr_values);
    let scopes = resource.scopes.iter().flat_map(|s| &s.acr_values);
    for v in scopes.chain(rules) {
        let word = !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if !word {
            p.add(at, format!("'{}' is not a sign-in strength: a word of printable ASCII without quotes or backslashes", v.escape_debug()));
        } else if entra && !is_auth_context(v) {
            p.add(at, format!("'{}' is not a Conditional Access authentication context: Entra's sign-in strengths are named c1 to c99 (Entra admin center → Conditional Access → Authentication contexts)", v.escape_debug()));
        }
    }
}

/// An app's `client_id`: the Application (client) ID, a GUID.
pub(super) fn app_client_id(client_id: &str, at: &str, p: &mut Problems) {
    if !is_guid(client_id) {
        p.add(at, format!("'{}' is not a GUID: give the app registration's Application (client) ID from its Overview page, not its display name", client_id.escape_debug()));
    }
}

/// A resource's `upstream_resource`: Entra refuses the parameter.
pub(super) fn no_upstream_resource(at: &str, p: &mut Problems) {
    p.add(at, "Entra rejects the resource parameter (AADSTS9010010); express the API through fully qualified scopes and remove this field");
}

/// The API an upstream scope string belongs to (`api://files/files.read` → `api://files`);
/// none for an OpenID scope, and a problem for a Graph scope or a bare one.
pub(super) fn scope_api<'s>(upstream: &'s str, at: &str, p: &mut Problems) -> Option<&'s str> {
    if OIDC_SCOPES.contains(&upstream) {
        return None;
    }
    let graph = upstream.starts_with("https://graph.microsoft.com/")
        || upstream.starts_with("00000003-0000-0000-c000-000000000000/");
    match upstream.rsplit_once('/') {
        _ if graph => {
            p.add(at, format!("'{upstream}' is a Microsoft Graph scope: a passthrough token for it has Graph as its audience, which no MCP server can accept as its own; expose the MCP server's own API in its app registration and use its scopes"));
            None
        }
        Some((api, _)) if !api.is_empty() => Some(api),
        _ => {
            p.add(at, format!("'{upstream}' is a bare scope, which Entra reads as Microsoft Graph (AADSTS650053); write it fully qualified, e.g. api://<app-id>/{upstream}"));
            None
        }
    }
}

/// Resource `i`'s scopes belong to one API (`apis_of_resource`), which no earlier resource
/// (`apis`, with their index) shares unless both are minted, and `.default` stands alone.
pub(super) fn resource_apis(
    c: &TenantConfig,
    i: usize,
    apis_of_resource: &HashSet<&str>,
    apis: &mut Vec<(String, usize)>,
    p: &mut Problems,
) {
    let r = &c.resources[i];
    let at = format!("resources[{i}].scopes");
    if apis_of_resource.len() > 1 {
        p.add(&at, "Entra issues a token for one resource per request (AADSTS28000); all upstream scopes of one MCP resource must belong to the same API");
    }
    // Minted tokens name the resource itself as their audience, so minted resources may
    // share an API; a passthrough resource's token is valid wherever its API is.
    for api in apis_of_resource {
        let clash = apis.iter().find(|(a, other)| {
            a.eq_ignore_ascii_case(api) && !(r.is_minted() && c.resources[*other].is_minted())
        });
        if let Some((_, other)) = clash {
            p.add(&at, format!("the Entra API '{api}' is also resources[{other}]'s, and the IdP's access token (audience {api}) would be valid at both MCP servers; give each MCP server an API of its own (an app registration with its own identifier URI), or set token = \"minted\" on both so that each receives tokens for itself alone"));
        }
        apis.push(((*api).to_owned(), i));
    }
    if r.scopes.iter().any(|s| s.upstream.ends_with("/.default")) && r.scopes.len() > 1 {
        p.add(&at, "'.default' cannot be combined with named scopes of the same API (AADSTS70011); use either .default alone or named scopes");
    }
}
