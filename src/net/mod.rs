//! Outbound HTTP that hostile input can steer: address policy and capped, redirect-free fetches.

pub mod fetch;
pub mod special_use;

pub use fetch::{FetchError, FetchPolicy, Fetched, SafeFetcher};
