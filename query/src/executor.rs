//! Where queries run: a tokio runtime of their own, apart from the one that
//! serves HTTP, gRPC and ingest.
//!
//! DataFusion plans and runs a query with deep recursion (a `1+1+…` of a
//! few thousand terms overflows a 2 MiB stack) and with long stretches of
//! synchronous work (a regular expression over a large string, a filter
//! evaluated over a batch). On the I/O runtime, the first aborts the process
//! and the second stalls every connection served by that worker, `/healthz`
//! included. So every query — the SQL API, SLO rollups, causes, searches —
//! runs here (as InfluxDB 3 runs DataFusion on a dedicated executor): worker
//! threads with large stacks (reserved address space, touched only when
//! used), and a caller on the I/O runtime that only waits for the answer,
//! gives up after the timeout, and aborts the task (which stops at its next
//! batch). A panic in a query ends that query's task with an error; the
//! runtime and the process go on.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt as _;
use tokio::runtime::{Handle, Runtime};

use crate::{Error, Result};
use smolder_common::sync::lock;

/// Stack of each query thread: room for the planner's recursion on any
/// statement the sandbox admits (see [`crate::sandbox`]).
pub const QUERY_STACK_BYTES: usize = 64 << 20;

/// The query runtime.
pub struct Executor {
    handle: Handle,
    /// Kept to shut it down without blocking when the engine is dropped
    /// (dropping a runtime inside another one would panic).
    runtime: Mutex<Option<Runtime>>,
    panics: AtomicU64,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").finish_non_exhaustive()
    }
}

impl Executor {
    /// A runtime of `threads` workers (at least one).
    pub fn new(threads: usize) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("smolder-query")
            .thread_stack_size(QUERY_STACK_BYTES)
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("starting the query runtime: {e}")))?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
            panics: AtomicU64::new(0),
        })
    }

    /// Queries that panicked since start.
    pub fn panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    /// Runs `work` on the query runtime and waits at most `timeout` for it.
    /// On timeout the task is aborted (it stops at its next await point) and
    /// the caller gets [`Error::Timeout`] at once; a panic becomes
    /// [`Error::Panicked`] with its message.
    pub async fn run<T, F>(&self, what: &str, timeout: Duration, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        let task = self.handle.spawn(AssertUnwindSafe(work).catch_unwind());
        let abort = task.abort_handle();
        let joined = match tokio::time::timeout(timeout, task).await {
            Ok(joined) => joined,
            Err(_) => {
                abort.abort();
                return Err(Error::Timeout(timeout));
            }
        };
        match joined {
            Ok(Ok(result)) => result,
            Ok(Err(payload)) => {
                self.panics.fetch_add(1, Ordering::Relaxed);
                let message = panic_message(payload.as_ref());
                tracing::error!(what, panic = %message, "A query panicked; it fails, the server goes on.");
                Err(Error::Panicked(message))
            }
            Err(e) if e.is_cancelled() => Err(Error::Timeout(timeout)),
            Err(e) => Err(Error::Internal(format!("query task: {e}"))),
        }
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        if let Some(runtime) = lock(&self.runtime).take() {
            runtime.shutdown_background();
        }
    }
}

/// The text of a panic's payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic without a message".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_query_is_an_error_and_the_runtime_goes_on() {
        let executor = Executor::new(1).unwrap();
        let err = executor
            .run("test", Duration::from_secs(5), async {
                if true {
                    panic!("byte array offset overflow");
                }
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Panicked(m) if m.contains("offset overflow")),
            "{err}"
        );
        assert_eq!(executor.panics(), 1);
        let answer = executor
            .run("test", Duration::from_secs(5), async { Ok(42) })
            .await
            .unwrap();
        assert_eq!(answer, 42);
    }

    #[tokio::test]
    async fn a_query_past_its_timeout_is_aborted_at_its_next_await() {
        let executor = Executor::new(1).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let err = executor
            .run("test", Duration::from_millis(50), async move {
                // Holds `tx` until the task is dropped by the abort.
                let _tx = tx;
                std::future::pending::<()>().await;
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Timeout(_)), "{err}");
        // The sender is dropped once the aborted task is gone.
        assert!(rx.await.is_err());
    }

    #[tokio::test]
    async fn deep_recursion_fits_in_a_query_thread() {
        fn depth(n: u32) -> u32 {
            // Over 1 KiB of stack per level, over 5 MiB in all: more than a
            // tokio worker's default 2 MiB.
            let pad = std::hint::black_box([0u8; 1024]);
            if n == 0 {
                u32::from(pad[0])
            } else {
                depth(n - 1) + 1 + u32::from(std::hint::black_box(pad)[1])
            }
        }
        let executor = Executor::new(1).unwrap();
        let answer = executor
            .run("test", Duration::from_secs(30), async { Ok(depth(5_000)) })
            .await
            .unwrap();
        assert_eq!(answer, 5_000);
    }
}
