//! JSON documents exdep keeps beside its data (the run state, the manifest), and single
//! objects written whole.

use datafusion::prelude::SessionContext;
use exdep_core::Location;
use object_store::{ObjectStoreExt, PutPayload};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::objects::Objects;

/// Reads a JSON document exdep wrote, if it exists.
pub async fn read_json<T: DeserializeOwned>(
    ctx: &SessionContext,
    location: &Location,
) -> Result<Option<T>> {
    match location.read_all(ctx).await {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| Error::Unreadable {
                location: location.to_string(),
                source,
            }),
        Err(error) if error.is_not_found() => Ok(None),
        Err(error) => Err(error),
    }
}

/// Writes `value` as a JSON document, replacing what was there.
pub async fn write_json<T: Serialize>(
    ctx: &SessionContext,
    location: &Location,
    value: &T,
) -> Result<()> {
    let json = serde_json::to_vec_pretty(value).map_err(|source| Error::Unwritable {
        location: location.to_string(),
        source,
    })?;
    write_object(ctx, location, json).await
}

/// Writes `bytes` as the object at `location`, replacing what was there.
pub async fn write_object(ctx: &SessionContext, location: &Location, bytes: Vec<u8>) -> Result<()> {
    location
        .store(ctx)?
        .put(&location.path()?, PutPayload::from(bytes))
        .await?;
    Ok(())
}
