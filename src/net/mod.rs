//! Outbound HTTP that hostile input can steer: address policy and capped, redirect-free fetches.

pub mod capped;
pub mod fetch;
pub mod special_use;

pub use capped::{CappedReadError, read_capped};
pub use fetch::{FetchError, FetchPolicy, Fetched, SafeFetcher};
