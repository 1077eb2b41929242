//! Opening a store named on the command line, for the commands that work on a store directly.

use std::sync::Arc;

use super::{PostgresLocation, PostgresStore, SledStore, Store, StoreError};

/// Opens the store `spec` names: `sled:<dir>` or a `postgres://` URL (with its password in
/// `password_file`, if given). For the commands that work on a store directly (`store copy`);
/// the server opens its own in `app.rs`.
pub async fn open_spec(
    spec: &str,
    password_file: Option<&std::path::Path>,
) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(dir) = spec.strip_prefix("sled:") {
        return Ok(Arc::new(SledStore::open(std::path::Path::new(dir)).await?));
    }
    let location = PostgresLocation::parse(spec, password_file).map_err(StoreError::Backend)?;
    Ok(Arc::new(PostgresStore::open(&location, 1).await?))
}
