//! The MCP server's answer as the gateway passes it on: chunks that are ready together go out
//! as one (an event stream arrives one HTTP chunk per event, and each chunk passed on alone
//! would cost a write of its own), nothing waits for more than is ready, and an answer that
//! goes silent for longer than the resource's idle timeout is ended. The idle timer is re-armed
//! only when it fires, so a busy stream costs a clock read per chunk, not a timer.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use futures_util::stream::BoxStream;
use tokio::time::{Instant, Sleep};

/// The most bytes gathered into one chunk passed on.
const MAX_GATHERED: usize = 64 * 1024;

type Chunks = BoxStream<'static, Result<Bytes, reqwest::Error>>;

/// `inner`, gathered and ended after `idle` without a byte.
pub(crate) struct Relay {
    inner: Option<Chunks>,
    /// An error that came after bytes still to pass on: it ends the stream next.
    broken: Option<reqwest::Error>,
    idle: Duration,
    /// When the token the call came with expires: the answer ends then, so that a stream
    /// outlives neither the token nor (within its lifetime) a revocation.
    until: Instant,
    last_byte: Instant,
    timer: Pin<Box<Sleep>>,
    /// What has come and is not passed on yet: the first chunk, and the rest gathered after it.
    first: Option<Bytes>,
    more: Option<BytesMut>,
    /// Whether a chunk came since the stream last gave the MCP server's side a turn.
    fresh: bool,
}

impl Relay {
    /// `inner`, ended after `idle` without a byte or after `lifetime` in all.
    pub(crate) fn new(inner: Chunks, idle: Duration, lifetime: Duration) -> Self {
        let now = Instant::now();
        let until = now + lifetime;
        Self {
            inner: Some(inner),
            broken: None,
            idle,
            until,
            last_byte: now,
            timer: Box::pin(tokio::time::sleep_until((now + idle).min(until))),
            first: None,
            more: None,
            fresh: false,
        }
    }

    /// Whether the answer has gone silent for `idle` or reached its end of life (re-arming
    /// the timer if neither).
    fn over(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            let deadline = (self.last_byte + self.idle).min(self.until);
            if Instant::now() >= deadline {
                return true;
            }
            self.timer.as_mut().reset(deadline);
        }
    }
}

impl Relay {
    /// Adds `chunk` to what is held for the next chunk passed on; its size.
    fn hold(&mut self, chunk: Bytes) -> usize {
        self.fresh = true;
        match (&mut self.first, &mut self.more) {
            (None, _) => self.first = Some(chunk),
            (Some(f), None) => {
                let mut g = BytesMut::with_capacity((f.len() + chunk.len()).max(4096));
                g.extend_from_slice(f);
                g.extend_from_slice(&chunk);
                self.more = Some(g);
            }
            (Some(_), Some(g)) => g.extend_from_slice(&chunk),
        }
        self.more
            .as_ref()
            .map_or_else(|| self.first.as_ref().map_or(0, Bytes::len), BytesMut::len)
    }

    /// What is held, as one chunk, if anything.
    fn release(&mut self) -> Option<Bytes> {
        let out = self.more.take().map(BytesMut::freeze).or(self.first.take());
        self.first = None;
        self.fresh = false;
        out
    }
}

impl Stream for Relay {
    type Item = Result<Bytes, reqwest::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(e) = this.broken.take() {
            return Poll::Ready(Some(Err(e)));
        }
        if this.inner.is_none() {
            return Poll::Ready(this.release().map(Ok));
        }
        let ended = loop {
            let polled = match this.inner.as_mut() {
                Some(inner) => inner.as_mut().poll_next(cx),
                None => Poll::Ready(None),
            };
            match polled {
                Poll::Ready(Some(Ok(chunk))) => {
                    if this.hold(chunk) >= MAX_GATHERED {
                        break false;
                    }
                    // Polled again at once: the next chunk may be ready too.
                    continue;
                }
                Poll::Ready(Some(Err(e))) => {
                    if this.first.is_none() {
                        this.inner = None;
                        return Poll::Ready(Some(Err(e)));
                    }
                    // What came before the error goes out first; the error ends the stream then
                    // (an abrupt end, so that a cut JSON answer never looks whole).
                    this.broken = Some(e);
                    break true;
                }
                Poll::Ready(None) => break true,
                Poll::Pending if this.fresh => {
                    // The MCP server's connection task hands over one chunk at a time: give it
                    // a turn to decode what it has already read, and gather that too, before
                    // paying for a write. A turn that brings nothing sends what is held.
                    this.fresh = false;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Pending => break false,
            }
        };
        if ended {
            this.inner = None;
        }
        if let Some(chunk) = this.release() {
            this.last_byte = Instant::now();
            if this.last_byte >= this.until {
                // This chunk is the last: the token has expired.
                this.inner = None;
            }
            return Poll::Ready(Some(Ok(chunk)));
        }
        if ended {
            return Poll::Ready(None);
        }
        if this.over(cx) {
            if Instant::now() >= this.until {
                tracing::info!(
                    "a stream through the gateway reached the expiry of the token it was opened with; the gateway ended it"
                );
            } else {
                tracing::info!(
                    idle_seconds = this.idle.as_secs(),
                    "an MCP server's answer went silent for longer than the gateway's idle_timeout; the gateway ended it"
                );
            }
            this.inner = None;
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn chunks(parts: Vec<&'static [u8]>) -> Chunks {
        futures_util::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from_static(p)))).boxed()
    }

    #[tokio::test]
    async fn chunks_ready_together_go_out_as_one() {
        let mut relay = Relay::new(
            chunks(vec![b"a", b"b", b"c"]),
            Duration::from_secs(5),
            Duration::from_secs(60),
        );
        assert_eq!(
            relay.next().await.unwrap().unwrap(),
            Bytes::from_static(b"abc")
        );
        assert!(relay.next().await.is_none());
    }

    /// The MCP server's connection task hands over one chunk at a time (a channel of one):
    /// the relay gives it turns and passes on what it decoded in them together.
    #[tokio::test]
    async fn chunks_handed_over_one_at_a_time_still_go_out_together() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, reqwest::Error>>(1);
        tokio::spawn(async move {
            for _ in 0..10 {
                tx.send(Ok(Bytes::from_static(b"event\n"))).await.unwrap();
            }
        });
        let received = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let mut relay = Relay::new(
            received.boxed(),
            Duration::from_secs(5),
            Duration::from_secs(60),
        );
        let first = relay.next().await.unwrap().unwrap();
        assert_eq!(first.len(), 60, "all ten in one: {first:?}");
        assert!(relay.next().await.is_none());
    }

    #[tokio::test]
    async fn a_silent_answer_ends_after_the_idle_timeout_and_a_busy_one_does_not() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Bytes, reqwest::Error>>();
        let received = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let idle = Duration::from_millis(300);
        let mut relay = Relay::new(received.boxed(), idle, Duration::from_secs(60));
        for _ in 0..5 {
            tokio::time::sleep(idle / 3).await;
            tx.send(Ok(Bytes::from_static(b"event"))).unwrap();
            assert_eq!(
                relay.next().await.unwrap().unwrap(),
                Bytes::from_static(b"event")
            );
        }
        let started = Instant::now();
        assert!(
            relay.next().await.is_none(),
            "silent for the idle timeout: ended"
        );
        assert!(started.elapsed() >= idle);
        drop(tx);
    }

    #[tokio::test]
    async fn a_busy_stream_ends_when_its_token_expires() {
        let forever = futures_util::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Some((Ok(Bytes::from_static(b": ping\n\n")), ()))
        });
        let mut relay = Relay::new(
            forever.boxed(),
            Duration::from_secs(5),
            Duration::from_millis(200),
        );
        let started = Instant::now();
        let mut chunks = 0;
        while relay.next().await.is_some() {
            chunks += 1;
        }
        assert!(chunks > 1);
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "ended by the token, not the idle timeout"
        );
    }
}
