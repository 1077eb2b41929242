//! Group commit: many writers that each need "my write is on disk" share one flush.
//!
//! Every caller takes a ticket after its write. One flush runs at a time; it first reads the
//! highest ticket handed out, so when it completes every write that took a ticket up to that
//! point is durable. Callers whose ticket it covers return at once; the others wait for the next
//! flush, which one of them starts. Under load this turns N concurrent fsyncs into a few.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::watch;

use super::StoreError;

/// What the flushes so far achieved.
#[derive(Clone, Default)]
struct Progress {
    /// Every ticket up to this one is durable.
    durable_through: u64,
    /// The last failed flush: the tickets it was meant to cover, and why it failed.
    failed: Option<(u64, String)>,
}

pub(crate) struct GroupCommit {
    flush: Arc<dyn Fn() -> Result<(), String> + Send + Sync>,
    tickets: AtomicU64,
    flushing: AtomicBool,
    progress: watch::Sender<Progress>,
}

impl GroupCommit {
    /// `flush` makes every write made before it was called durable; it may block.
    pub(crate) fn new(flush: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self {
            flush: Arc::new(flush),
            tickets: AtomicU64::new(0),
            flushing: AtomicBool::new(false),
            progress: watch::Sender::new(Progress::default()),
        })
    }

    /// Returns once every write this task made before the call is durable.
    pub(crate) async fn durable(self: &Arc<Self>) -> Result<(), StoreError> {
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let mut progress = self.progress.subscribe();
        loop {
            {
                let now = progress.borrow_and_update();
                if now.durable_through >= ticket {
                    return Ok(());
                }
                if let Some((covered, why)) = &now.failed
                    && *covered >= ticket
                {
                    return Err(StoreError::Backend(format!("flush failed: {why}")));
                }
            }
            if !self.flushing.swap(true, Ordering::AcqRel) {
                self.start_flush();
            }
            if progress.changed().await.is_err() {
                return Err(StoreError::Backend("the store closed".into()));
            }
        }
    }

    /// Runs one flush on a blocking thread, in a task of its own so that a caller that goes
    /// away (a dropped request) cannot leave the others waiting. If that task is dropped
    /// before the flush ends (its runtime shutting down), the guard still wakes the waiters,
    /// and one of them starts the next flush.
    fn start_flush(self: &Arc<Self>) {
        let mut outcome = Outcome {
            commit: self.clone(),
            covers: self.tickets.load(Ordering::SeqCst),
            result: None,
        };
        tokio::spawn(async move {
            let flush = outcome.commit.flush.clone();
            let started = std::time::Instant::now();
            let result = match tokio::task::spawn_blocking(move || flush()).await {
                Ok(result) => result,
                Err(e) => Err(format!("flush task failed: {e}")),
            };
            crate::metrics::metrics()
                .store
                .flush_seconds
                .observe(started.elapsed().as_secs_f64());
            outcome.finish(result);
        });
    }
}

/// Publishes how a flush ended when it is dropped, however that happens.
struct Outcome {
    commit: Arc<GroupCommit>,
    covers: u64,
    /// `None` if the flush was interrupted: nothing is known to be durable.
    result: Option<Result<(), String>>,
}

impl Outcome {
    fn finish(&mut self, result: Result<(), String>) {
        self.result = Some(result);
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        self.commit.flushing.store(false, Ordering::Release);
        let (covers, result) = (self.covers, self.result.take());
        self.commit.progress.send_modify(|p| match result {
            Some(Ok(())) => p.durable_through = p.durable_through.max(covers),
            Some(Err(why)) => p.failed = Some((covers, why)),
            None => {}
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_share_flushes_and_all_become_durable() {
        let flushes = Arc::new(AtomicUsize::new(0));
        let written = Arc::new(AtomicU64::new(0));
        let on_disk = Arc::new(AtomicU64::new(0));
        let commit = {
            let (flushes, written, on_disk) = (flushes.clone(), written.clone(), on_disk.clone());
            GroupCommit::new(move || {
                let upto = written.load(Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(2));
                on_disk.fetch_max(upto, Ordering::SeqCst);
                flushes.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
        };
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let (commit, written, on_disk) = (commit.clone(), written.clone(), on_disk.clone());
                tokio::spawn(async move {
                    let mine = written.fetch_add(1, Ordering::SeqCst) + 1;
                    commit.durable().await.unwrap();
                    assert!(
                        on_disk.load(Ordering::SeqCst) >= mine,
                        "returned before its write was flushed"
                    );
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert!(
            flushes.load(Ordering::SeqCst) < 200,
            "flushes were not shared"
        );
    }

    #[test]
    fn a_flush_whose_runtime_goes_away_does_not_stall_later_writers() {
        let calls = Arc::new(AtomicUsize::new(0));
        let commit = {
            let calls = calls.clone();
            GroupCommit::new(move || {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                }
                Ok(())
            })
        };
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        };
        // A writer on a runtime that is shut down while its flush is running.
        let dying = runtime();
        let _ = dying.block_on(async {
            tokio::time::timeout(std::time::Duration::from_millis(50), commit.durable()).await
        });
        drop(dying);
        // A later writer elsewhere still gets its flush.
        let done = runtime().block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(5), commit.durable()).await
        });
        assert!(
            matches!(done, Ok(Ok(()))),
            "the later writer was left waiting"
        );
    }

    #[tokio::test]
    async fn a_failed_flush_reaches_the_writers_it_covered() {
        let commit = GroupCommit::new(|| Err("disk full".into()));
        let err = commit.durable().await.unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
    }
}
