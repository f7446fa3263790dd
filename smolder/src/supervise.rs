//! Background tasks that outlive their own panics.
//!
//! A bug in one SLO tick, flush or delivery round must not end the process
//! (an observability service that one stored definition keeps killing
//! cannot be run). Each background task runs here: a panic is caught,
//! logged once with the task's name, counted in
//! `smolder_task_panics_total{task}`, and the task goes on with its next
//! round (a periodic task) or is started again after a pause (a long-lived
//! one). Request handlers get the same from the HTTP layer's panic layer.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TaskLabel {
    task: &'static str,
}

/// Panics caught, by task.
#[derive(Debug, Default)]
pub(crate) struct Panics(Family<TaskLabel, Counter>);

impl Panics {
    /// The counters, registered as `smolder_task_panics_total`.
    pub(crate) fn register(registry: &mut Registry) -> Arc<Self> {
        let panics = Arc::new(Self::default());
        registry.register(
            "task_panics",
            "Panics caught in background tasks and request handlers, by task",
            panics.0.clone(),
        );
        panics
    }

    /// Logs and counts a panic of `task`.
    pub(crate) fn record(&self, task: &'static str, message: &str) {
        tracing::error!(task, panic = %message, "A task panicked; it goes on.");
        self.count(task, 1);
    }

    /// Adds panics counted elsewhere (the query runtime's).
    pub(crate) fn count(&self, task: &'static str, n: u64) {
        self.0.get_or_create(&TaskLabel { task }).inc_by(n);
    }

    /// Panics of `task` so far.
    pub(crate) fn get(&self, task: &'static str) -> u64 {
        self.0.get_or_create(&TaskLabel { task }).get()
    }
}

/// Runs `round` every `period` until `stop` completes; a round that panics
/// is recorded and the next one runs on time. Rounds that overrun are not
/// made up for.
pub(crate) async fn periodically<F, Fut>(
    task: &'static str,
    period: Duration,
    stop: impl Future<Output = ()>,
    panics: &Panics,
    mut round: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => {
                if let Err(payload) = AssertUnwindSafe(round()).catch_unwind().await {
                    panics.record(task, &smolder_query::executor::panic_message(payload.as_ref()));
                }
            }
        }
    }
}

/// Runs `round(instant)` at every multiple of `period` since the Unix epoch
/// by `clock` (the SLO tick's grid: a backtest replays the same instants)
/// until `stop` completes. A round that panics is recorded; rounds that
/// overrun skip the instants they missed.
pub(crate) async fn on_grid<F, Fut>(
    task: &'static str,
    period: Duration,
    clock: &dyn smolder_common::clock::Clock,
    stop: impl Future<Output = ()>,
    panics: &Panics,
    mut round: F,
) where
    F: FnMut(i64) -> Fut,
    Fut: Future<Output = ()>,
{
    let every = i64::try_from(period.as_nanos()).unwrap_or(i64::MAX).max(1);
    tokio::pin!(stop);
    loop {
        let now = clock.now_ns();
        let next = (now.div_euclid(every) + 1).saturating_mul(every);
        let wait = Duration::from_nanos(u64::try_from(next - now).unwrap_or(0));
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(wait) => {
                // Woken a hair early by the timer's rounding: still `next`.
                let instant = clock.now_ns().max(next).div_euclid(every) * every;
                if let Err(payload) = AssertUnwindSafe(round(instant)).catch_unwind().await {
                    panics.record(task, &smolder_query::executor::panic_message(payload.as_ref()));
                }
            }
        }
    }
}

/// Runs the long-lived task `start()` until it returns; if it panics, it
/// is recorded and started again after `pause`.
pub(crate) async fn restarting<F, Fut>(
    task: &'static str,
    pause: Duration,
    panics: &Panics,
    start: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        match AssertUnwindSafe(start()).catch_unwind().await {
            Ok(()) => return,
            Err(payload) => {
                panics.record(
                    task,
                    &smolder_query::executor::panic_message(payload.as_ref()),
                );
                tokio::time::sleep(pause).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_round_that_panics_is_counted_and_the_next_round_runs() {
        let panics = Panics::default();
        let rounds = AtomicU32::new(0);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let stop = async move {
            let _ = rx.await;
        };
        let run = periodically("test", Duration::from_secs(1), stop, &panics, || async {
            let n = rounds.fetch_add(1, Ordering::SeqCst);
            assert!(n != 1, "the second round fails");
        });
        let driver = async {
            while rounds.load(Ordering::SeqCst) < 4 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            tx.send(()).unwrap();
        };
        tokio::join!(run, driver);
        assert_eq!(panics.get("test"), 1);
        assert!(rounds.load(Ordering::SeqCst) >= 4);
    }

    #[tokio::test]
    async fn grid_rounds_run_at_multiples_of_the_period() {
        let panics = Panics::default();
        let seen = std::sync::Mutex::new(Vec::new());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let stop = async move {
            let _ = rx.await;
        };
        let clock = smolder_common::clock::SystemClock;
        let period = Duration::from_millis(50);
        let tx = std::sync::Mutex::new(Some(tx));
        on_grid("test", period, &clock, stop, &panics, |at| {
            let mut seen = seen.lock().unwrap();
            seen.push(at);
            if seen.len() == 3
                && let Some(tx) = tx.lock().unwrap().take()
            {
                tx.send(()).unwrap();
            }
            async {}
        })
        .await;
        let seen = seen.into_inner().unwrap();
        assert!(seen.len() >= 3, "{seen:?}");
        for at in &seen {
            assert_eq!(at % 50_000_000, 0, "{at} is on the 50 ms grid");
        }
        assert!(seen.windows(2).all(|w| w[1] > w[0]), "{seen:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_lived_task_that_panics_is_started_again() {
        let panics = Panics::default();
        let starts = AtomicU32::new(0);
        restarting("test", Duration::from_secs(1), &panics, || async {
            let n = starts.fetch_add(1, Ordering::SeqCst);
            assert!(n >= 2, "the first two runs fail");
        })
        .await;
        assert_eq!(starts.load(Ordering::SeqCst), 3);
        assert_eq!(panics.get("test"), 2);
    }
}
