//! Reading a response body with a size cap, for every outbound fetch.

use futures_util::StreamExt;

#[derive(Debug)]
pub enum CappedReadError {
    /// The body is larger than the cap (by its Content-Length or as it streamed in).
    TooLarge(usize),
    Transport(reqwest::Error),
}

/// The whole body of `response`, refused as soon as it would exceed `max` bytes.
pub async fn read_capped(
    response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, CappedReadError> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(CappedReadError::TooLarge(max));
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(CappedReadError::Transport)?;
        if body.len() + chunk.len() > max {
            return Err(CappedReadError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
