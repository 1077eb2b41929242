//! `AdminError`: why an operator's change (the admin API, the CLI) was refused. Its own file,
//! so that every service an operator acts on can answer with it without importing the others.

use crate::store::StoreError;

/// Why an operator's change was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminError {
    #[error("no such client in this tenant")]
    UnknownClient,
    #[error("no such grant in this tenant")]
    UnknownGrant,
    #[error("no app named '{0}' in this tenant")]
    UnknownApp(String),
    #[error("no resource '{0}' in this tenant")]
    UnknownResource(String),
    #[error("the client changed while it was being updated; try again")]
    Conflict,
    /// The request cannot be done as asked; the text says why and what to do instead.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
