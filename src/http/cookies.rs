//! Every cookie the shim sets, named and dressed in one place: HttpOnly, SameSite=Lax, the
//! public URL's path (`/`, or the prefix of a public URL with a path), and on an https public
//! URL `Secure` with the `__Host-` prefix (RFC 6265bis §4.1.3.2: such a cookie is host-only and
//! cannot be set by a sibling domain). `__Host-` requires `Path=/`, so under a path prefix the
//! cookies are `__Secure-` and scoped to the prefix; they are then not host-only, and the
//! shim shares its origin with whatever else the host serves (docs/operations.md).
//!
//! | cookie | value | lifetime |
//! |---|---|---|
//! | `dcr-csrf` | a `Handle`; the consent ticket holds its key | 24 h |
//! | `dcr-approvals-{hash of tenant}` | signed approvals of the browser's recent clients | 30 days |
//!
//! Earlier versions set one `dcr-consent-{hash}` cookie per client; approving a client expires
//! those (`legacy_approval_names`).
//! | `dcr-txn-{16 hex of the transaction key}` | a `Handle` binding the upstream login to this browser | 10 min |

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};

use crate::crypto::{Handle, sha256_hex};
use crate::domain::TenantId;
use crate::oauth::authorize::TRANSACTION_SECONDS;
use crate::oauth::consent::APPROVAL_SECONDS;

/// How long the CSRF cookie lives; a consent form opened within it can be submitted.
const CSRF_SECONDS: i64 = 24 * 3600;

/// Cookie names and attributes for one server.
#[derive(Clone, Debug)]
pub(crate) struct Cookies {
    /// The public URL is https: `Secure`, and a name prefix.
    secure: bool,
    /// The public URL's path: `/`, or its prefix (`/mcp-auth`).
    path: String,
}

impl Cookies {
    /// `path`: the public URL's path prefix, empty for none.
    pub(crate) fn new(secure: bool, path: &str) -> Self {
        Self {
            secure,
            path: if path.is_empty() {
                "/".to_owned()
            } else {
                path.to_owned()
            },
        }
    }

    fn prefix(&self) -> &'static str {
        match (self.secure, self.path.as_str()) {
            (false, _) => "",
            (true, "/") => "__Host-",
            (true, _) => "__Secure-",
        }
    }

    /// Whether the cookies are scoped to the whole host (`Path=/`), so that no other service
    /// under a path of the same host sets them.
    pub(crate) fn host_only(&self) -> bool {
        self.path == "/"
    }

    pub(crate) fn csrf_name(&self) -> String {
        format!("{}dcr-csrf", self.prefix())
    }

    /// The approval cookie of one tenant.
    pub(crate) fn approval_name(&self, tenant: &TenantId) -> String {
        let id = &sha256_hex(tenant.as_str())[..16];
        format!("{}dcr-approvals-{id}", self.prefix())
    }

    /// The per-client approval cookies of earlier versions among a request's cookies.
    pub(crate) fn legacy_approval_names<'a>(
        &self,
        names: impl Iterator<Item = &'a str>,
    ) -> Vec<String> {
        let legacy = format!("{}dcr-consent-", self.prefix());
        names
            .filter(|n| n.starts_with(&legacy))
            .map(str::to_owned)
            .collect()
    }

    /// The cookie that binds one transaction to the browser that started it.
    pub(crate) fn transaction_name(&self, txn_id: &Handle) -> String {
        format!("{}dcr-txn-{}", self.prefix(), &txn_id.key().as_str()[..16])
    }

    pub(crate) fn csrf(&self, value: &Handle) -> Cookie<'static> {
        self.build(self.csrf_name(), value.expose().to_owned(), CSRF_SECONDS)
    }

    pub(crate) fn approval(&self, name: String, value: String) -> Cookie<'static> {
        self.build(name, value, APPROVAL_SECONDS as i64)
    }

    pub(crate) fn transaction(&self, txn_id: &Handle, binding: &Handle) -> Cookie<'static> {
        self.build(
            self.transaction_name(txn_id),
            binding.expose().to_owned(),
            TRANSACTION_SECONDS as i64,
        )
    }

    /// A cookie that removes `name`, with the attributes it was set with (a `__Host-` cookie is
    /// only replaced by one that is also Secure).
    pub(crate) fn expired(&self, name: String) -> Cookie<'static> {
        self.build(name, String::new(), 0)
    }

    fn build(&self, name: String, value: String, max_age: i64) -> Cookie<'static> {
        let mut c = Cookie::new(name, value);
        c.set_path(self.path.clone());
        c.set_http_only(true);
        c.set_same_site(SameSite::Lax);
        c.set_secure(self.secure);
        c.set_max_age(CookieDuration::seconds(max_age));
        c
    }
}
