//! The callback from the IdP (`/{tenant}/callback`): take the transaction once; an upstream
//! error goes to the client as an OAuth error (with the IdP's own code) and to the log with
//! the IdP's correlation ids; otherwise exchange the IdP's code with the app's credentials and
//! redirect with the shim's own single-use code, `state` and `iss`.

use serde_json::{Map, Value};

use super::Logins;
use super::authorize::AuthorizeError;
use crate::config::Tenant;
use crate::crypto::Handle;
use crate::domain::{ApprovalStatus, ClientRecord};
use crate::oauth::approval::records::{Asker, Requester};
use crate::oauth::context::RequestCtx;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::minted::{SealedGrant, copied_claims, minted_resource};
use crate::oauth::params::Params;
use crate::oauth::records::{AuthCode, PendingAuthorization, Transaction};
use crate::oauth::upstream_errors::{idp_to_client, to_client};
use crate::store::StoreError;
use crate::upstream::error::{IdpChallenge, IdpError, UpstreamError};
use crate::upstream::id_token::{IdTokenUser, check_id_token};
use crate::upstream::tokens::{UpstreamGrant, UpstreamTokens};

/// How long the shim's authorization code may be redeemed.
pub(crate) const CODE_SECONDS: u64 = 60;
/// How long a used code is remembered, to recognise replays.
pub(crate) const CODE_MEMORY_SECONDS: u64 = 600;

/// Where the browser goes next.
pub(crate) enum CallbackOutcome {
    Redirect(String),
    Page {
        status: u16,
        message: String,
    },
    /// The application waits for an administrator (or was refused by one): a page says so,
    /// with a link that takes the refusal back to the application.
    Held(Held),
}

/// Why a sign-in was held back by the approval queue.
pub(crate) enum HeldWhy {
    /// The request waits (or was just made), under this reference.
    Waiting(String),
    /// The queue is full: no request could be made.
    QueueFull,
    /// This user has this many requests waiting already: no more could be made.
    TooManyOfYours(usize),
    /// An administrator denied the application.
    Denied,
}

/// A sign-in held back by the approval queue, for its page.
pub(crate) struct Held {
    pub(crate) why: HeldWhy,
    pub(crate) client_name: Option<String>,
    /// The application's redirect URI with `error=access_denied`.
    pub(crate) back: String,
}

/// A login's end: the shim's code, or held back by the approval queue.
enum Login {
    Code(Handle),
    Held {
        why: HeldWhy,
        client_name: Option<String>,
        error: OAuthError,
    },
}

impl Logins {
    /// `browser_binding` is the value of the transaction's cookie in the calling browser.
    pub(crate) async fn callback(
        &self,
        tenant: &Tenant,
        params: &Params,
        browser_binding: Option<&str>,
        ctx: &RequestCtx,
    ) -> CallbackOutcome {
        let now = ctx.now;
        let Some(state) = params.get("state") else {
            return page(
                400,
                "The identity provider's answer has no state. Start the sign-in again from your application.",
            );
        };
        let txn_id = Handle::presented(state);
        let txn = match self
            .take_transaction(tenant, &txn_id, browser_binding, now)
            .await
        {
            Ok(t) => t,
            Err(page) => return page,
        };
        let r = &txn.request;
        match self
            .complete_login(tenant, &txn_id, &txn, params, ctx)
            .await
        {
            Ok(Login::Held {
                why,
                client_name,
                error,
            }) => CallbackOutcome::Held(Held {
                why,
                client_name,
                back: AuthorizeError::location(
                    &r.redirect_uri,
                    r.state.as_deref(),
                    &error,
                    &tenant.issuer,
                ),
            }),
            Ok(Login::Code(code)) => {
                crate::metrics::metrics()
                    .logins
                    .with_label_values(&[tenant.id.as_str(), "completed"])
                    .inc();
                let mut query = vec![("code", code.expose())];
                if let Some(s) = &r.state {
                    query.push(("state", s));
                }
                query.push(("iss", &tenant.issuer));
                CallbackOutcome::Redirect(r.redirect_uri.with_query(&query))
            }
            Err(mut error) => {
                crate::metrics::metrics()
                    .logins
                    .with_label_values(&[tenant.id.as_str(), error.code.as_str()])
                    .inc();
                // An authorization response may carry only the codes of RFC 6749 §4.1.2.1
                // (plus RFC 8707's invalid_target and OpenID Connect's interaction codes); a
                // token-endpoint code from the IdP (invalid_grant, invalid_client, …) becomes
                // server_error, its description (with the IdP's own code) kept.
                if !allowed_in_authorization_response(error.code) {
                    error.code = ErrorCode::ServerError;
                }
                CallbackOutcome::Redirect(AuthorizeError::location(
                    &r.redirect_uri,
                    r.state.as_deref(),
                    &error,
                    &tenant.issuer,
                ))
            }
        }
    }

    /// Takes the transaction once. It is checked against this browser as it is taken and put
    /// back if the browser is another, so a forwarded IdP link neither completes a stranger's
    /// login nor burns the rightful one (unless the rightful browser arrives in the moment
    /// between the take and the put-back: it is then told to start again).
    async fn take_transaction(
        &self,
        tenant: &Tenant,
        txn_id: &Handle,
        browser_binding: Option<&str>,
        now: u64,
    ) -> Result<Transaction, CallbackOutcome> {
        let key = txn_id.key();
        let gone = || {
            page(
                400,
                "This sign-in was already completed or has expired. Start the sign-in again from your application.",
            )
        };
        let unreadable = |e: StoreError| {
            tracing::error!(tenant = %tenant.id, error = %e, "cannot read the transaction");
            match e {
                StoreError::Unavailable(_) => page(
                    503,
                    "The server cannot reach its storage right now. Wait a moment, then go back and try again.",
                ),
                _ => page(
                    500,
                    "The server could not complete the sign-in. The operator's log has the reason.",
                ),
            }
        };
        // Taken first, in one step, and put back if this is not its browser. Deferred: the
        // new code's durable write, or the error page, follows; a take lost in a crash of the
        // store only revives a transaction whose IdP code was spent or never came.
        let txn: Transaction = match self.records.deferred().take(&tenant.id, &key, now).await {
            Ok(Some(t)) => t,
            Ok(None) => return Err(gone()),
            Err(e) => return Err(unreadable(e)),
        };
        if browser_binding.is_some_and(|b| txn.browser_hash.matches(&Handle::presented(b))) {
            return Ok(txn);
        }
        tracing::warn!(target: "audit", event = "callback_wrong_browser", tenant = %tenant.id);
        let expires = Some(txn.created_at + super::authorize::TRANSACTION_SECONDS);
        if let Err(e) = self
            .records
            .insert_new(&tenant.id, &key, &txn, expires, now)
            .await
        {
            tracing::warn!(tenant = %tenant.id, error = %e, "a transaction taken by the wrong browser could not be put back; its sign-in must start again");
        }
        Err(page(
            400,
            "This sign-in was started in another browser. Start the sign-in again from your application, in this browser.",
        ))
    }

    /// The IdP's answer to the transaction: its error, or its code exchanged for tokens that
    /// are sealed behind a new code of the shim's own.
    async fn complete_login(
        &self,
        tenant: &Tenant,
        txn_id: &Handle,
        txn: &Transaction,
        params: &Params,
        ctx: &RequestCtx,
    ) -> Result<Login, OAuthError> {
        let now = ctx.now;
        let r = &txn.request;
        if let Some(error) = params.get("error") {
            let idp = IdpError {
                error: error.to_owned(),
                description: params.get("error_description").map(str::to_owned),
                correlation_id: params.get("correlation_id").map(str::to_owned),
                trace_id: params.get("trace_id").map(str::to_owned),
                challenge: IdpChallenge::of(
                    params.get("suberror").map(str::to_owned),
                    params.get("claims").map(str::to_owned),
                ),
            };
            UpstreamError::Idp(idp.clone()).log(&tenant.id, &r.app, "authorize");
            return Err(idp_to_client(&idp));
        }
        let Some(upstream_code) = params.get("code") else {
            return Err(OAuthError::new(
                ErrorCode::ServerError,
                "the identity provider answered with neither a code nor an error",
            ));
        };
        let (tokens, user) = self
            .exchange_upstream_code(tenant, txn_id, txn, upstream_code, now)
            .await?;
        if r.approval_pending
            && let Some(held) = self
                .held_for_approval(tenant, r, user.as_ref(), ctx)
                .await?
        {
            return Ok(held);
        }
        let subject = user.as_ref().map(|u| u.subject.clone());
        let code = self
            .issue_code(tenant, r, tokens, user.as_ref(), now)
            .await?;
        let claim = |f: fn(&IdTokenUser) -> &Option<String>| {
            user.as_ref().and_then(|u| f(u).clone()).unwrap_or_default()
        };
        tracing::info!(target: "audit", event = "login_completed", tenant = %tenant.id, client_id = %r.client_id, app = %r.app,
            subject = subject.as_deref().unwrap_or(""), tid = claim(|u| &u.tid), upn = claim(|u| &u.upn),
            resource = %r.resource);
        Ok(Login::Code(code))
    }

    /// For a request whose client waited for an administrator: the client as it is now, and
    /// if it still waits, the request queued (or counted again) with who asked. `None` when
    /// it was approved meanwhile and the login goes on.
    async fn held_for_approval(
        &self,
        tenant: &Tenant,
        r: &PendingAuthorization,
        user: Option<&IdTokenUser>,
        ctx: &RequestCtx,
    ) -> Result<Option<Login>, OAuthError> {
        let now = ctx.now;
        let Some(client) = self
            .registry
            .find(tenant, r.client_id.as_str(), ctx)
            .await?
        else {
            return Err(OAuthError::new(
                ErrorCode::AccessDenied,
                "the application is no longer registered",
            ));
        };
        let (why, description) = match client.approval {
            ApprovalStatus::Approved => return Ok(None),
            ApprovalStatus::Denied => {
                count_held(tenant, "denied");
                (
                    HeldWhy::Denied,
                    "an administrator of this server denied this application".to_owned(),
                )
            }
            ApprovalStatus::Pending => {
                self.ask_for_approval(
                    tenant,
                    &client,
                    requester_of(user),
                    ctx.caller.describe(),
                    now,
                )
                .await?
            }
        };
        Ok(Some(Login::Held {
            why,
            client_name: client.metadata.client_name.clone(),
            error: OAuthError::new(ErrorCode::AccessDenied, description),
        }))
    }

    /// Queues (or counts again) the request of a waiting client for the user who just signed
    /// in: why the sign-in is held, and the description the client gets with `access_denied`.
    async fn ask_for_approval(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        who: Requester,
        requester: Option<String>,
        now: u64,
    ) -> Result<(HeldWhy, String), OAuthError> {
        use crate::oauth::approval::{AskError, Asked};
        let asker = Asker {
            digest: self.signer.digest("approval requester", &who.subject),
            user: who,
            address: requester,
        };
        let (subject, upn) = (&asker.user.subject, &asker.user.upn);
        let asked = self
            .registry
            .approvals()
            .ask(tenant, client, &asker, now)
            .await;
        Ok(match asked {
            Ok(asked) => {
                let queued = matches!(asked, Asked::Queued { .. });
                count_held(tenant, if queued { "requested" } else { "repeated" });
                let reference = asked.reference().to_owned();
                tracing::info!(target: "audit", event = if queued { "approval_requested" } else { "approval_requested_again" },
                    tenant = %tenant.id, client_id = %client.client_id, cimd_host = client.cimd_host().unwrap_or(""),
                    reference = %reference, subject = %subject, upn = upn.as_deref().unwrap_or(""));
                let description = format!(
                    "an administrator of this server must approve this application before it can be used; the request is waiting (reference {reference})"
                );
                (HeldWhy::Waiting(reference), description)
            }
            Err(AskError::Full(waiting)) => {
                count_held(tenant, "queue_full");
                crate::metrics::metrics()
                    .approval
                    .queue_full
                    .with_label_values(&[tenant.id.as_str()])
                    .inc();
                tracing::warn!(target: "audit", event = "approval_queue_full", tenant = %tenant.id,
                    client_id = %client.client_id, waiting,
                    "a sign-in could not ask for approval: the queue is full; decide the waiting requests (`dcr-shim clients pending`) or raise [approval] max_pending");
                let description = "an administrator of this server must approve this application, and the queue of requests is full; try again later";
                (HeldWhy::QueueFull, description.to_owned())
            }
            Err(AskError::UserLimit(mine)) => {
                count_held(tenant, "user_limit");
                tracing::warn!(target: "audit", event = "approval_user_limit", tenant = %tenant.id,
                    client_id = %client.client_id, subject = %subject, waiting = mine,
                    "a user asked for approval of one application too many while their other requests wait");
                let description = format!(
                    "an administrator of this server must approve this application, and {mine} requests of this user wait already; try again once they are decided"
                );
                (HeldWhy::TooManyOfYours(mine), description)
            }
            Err(AskError::Store(e)) => return Err(e.into()),
        })
    }

    /// Exchanges the IdP's code with the app's credentials and the shim's PKCE verifier, and
    /// checks the ID token that came with it. Returns the tokens and who logged in.
    async fn exchange_upstream_code(
        &self,
        tenant: &Tenant,
        txn_id: &Handle,
        txn: &Transaction,
        upstream_code: &str,
        now: u64,
    ) -> Result<(UpstreamTokens, Option<IdTokenUser>), OAuthError> {
        let r = &txn.request;
        let at = self.upstreams.app(tenant, &r.app)?;
        let verifier = self
            .sealer
            .unseal(txn_id, &txn.sealed_verifier)
            .map_err(|_| OAuthError::server_error())?;
        let verifier = String::from_utf8_lossy(&verifier).into_owned();
        let callback = format!("{}/callback", tenant.issuer);
        let resource = crate::oauth::upstreams::upstream_resource(tenant, &r.resource);
        let tokens = self
            .upstreams
            .client()
            .token(
                &at,
                UpstreamGrant::AuthorizationCode {
                    code: upstream_code,
                    verifier: &verifier,
                    redirect_uri: &callback,
                },
                resource.as_deref(),
                now,
            )
            .await
            .map_err(|e| {
                e.log(&tenant.id, &r.app, "code exchange");
                to_client(&e)
            })?;
        let subject = match &tokens.id_token {
            Some(id_token) => Some(
                check_id_token(id_token, &at.endpoints.issuer, &at.app.client_id, Some(&txn.nonce), now)
                    .map_err(|why| {
                        tracing::error!(tenant = %tenant.id, app = %r.app, reason = %why, "the IdP's ID token failed validation");
                        OAuthError::server_error()
                    })?,
            ),
            None => None,
        };
        Ok((tokens, subject))
    }

    /// Stores the shim's own single-use code with the IdP's tokens sealed under it, and for a
    /// minted resource what its tokens say about the user (`minted.rs`).
    async fn issue_code(
        &self,
        tenant: &Tenant,
        r: &PendingAuthorization,
        tokens: UpstreamTokens,
        user: Option<&IdTokenUser>,
        now: u64,
    ) -> Result<Handle, OAuthError> {
        let mut grant = SealedGrant {
            tokens,
            claims: Map::new(),
            auth_time: None,
        };
        let minted = minted_resource(tenant, &r.resource);
        if let Some(resource) = minted {
            // RFC 9068 §2.2: `sub` is required, and only the ID token says who logged in.
            let Some(user) = user.filter(|u| !u.subject.is_empty()) else {
                tracing::error!(tenant = %tenant.id, app = %r.app, resource = %r.resource,
                    "the IdP sent no ID token with a subject, and a minted token needs one; the app must request the openid scope at the IdP");
                return Err(OAuthError::server_error());
            };
            grant.claims = copied_claims(resource, user, Some(&grant.tokens.access_token));
            grant.auth_time = Some(user.auth_time.unwrap_or(now));
        }
        let code = Handle::generate();
        let record = AuthCode {
            request: r.clone(),
            sealed_tokens: self
                .sealer
                .seal(&code, &serde_json::to_vec(&grant).unwrap_or_default()),
            subject: user.map(|u| u.subject.clone()),
            valid_until: now + CODE_SECONDS,
            used: false,
            family_id: None,
            minted: minted.is_some(),
        };
        let stored = self
            .records
            .insert_new(
                &tenant.id,
                &code.key(),
                &record,
                Some(now + CODE_MEMORY_SECONDS),
                now,
            )
            .await?;
        if !stored {
            tracing::error!(tenant = %tenant.id, "a new authorization code collided with a stored one");
            return Err(OAuthError::server_error());
        }
        Ok(code)
    }
}

/// Counts a sign-in held by the approval queue (`dcr_shim_approval_requests_total`).
fn count_held(tenant: &Tenant, outcome: &str) {
    crate::metrics::metrics()
        .approval
        .requests
        .with_label_values(&[tenant.id.as_str(), outcome])
        .inc();
}

/// Who asked, from the ID token (bounded, printable claims only).
fn requester_of(user: Option<&IdTokenUser>) -> Requester {
    let Some(user) = user else {
        return Requester::default();
    };
    let claim = |k: &str| {
        user.claims
            .get(k)
            .and_then(Value::as_str)
            .and_then(|v| crate::domain::text::recordable_claim(v).ok())
            .map(str::to_owned)
    };
    Requester {
        subject: user.subject.clone(),
        upn: user.upn.clone(),
        name: claim("name"),
        email: claim("email"),
    }
}

fn page(status: u16, message: &str) -> CallbackOutcome {
    CallbackOutcome::Page {
        status,
        message: message.to_owned(),
    }
}

fn allowed_in_authorization_response(code: ErrorCode) -> bool {
    use ErrorCode::*;
    matches!(
        code,
        InvalidRequest
            | UnauthorizedClient
            | AccessDenied
            | UnsupportedResponseType
            | InvalidScope
            | ServerError
            | TemporarilyUnavailable
            | InvalidTarget
            | InteractionRequired
            | LoginRequired
            | ConsentRequired
    )
}
