//! The parts of a running server, started in order and stopped in the
//! reverse order.
//!
//! `serve::start` lists the components: the storage maintenance first, then
//! the SLO ticks, alerting, the re-reading of tokens and the configuration
//! reload on SIGHUP, and the three listeners last. Stopping walks the list backwards, so the listeners stop
//! accepting (and drain what is in flight) before anything they feed stops,
//! and the store — stopped last — persists the buffer once nothing can write
//! to it any more. Each component has its own stop signal; a component that
//! ends on its own (a listener that failed) stops the server.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What a component waits on to stop.
pub(crate) type Stop = watch::Receiver<bool>;

/// Completes when `stop` is signalled.
pub(crate) async fn stopped(mut stop: Stop) {
    let _ = stop.wait_for(|s| *s).await;
}

/// How long stopping a component may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drain {
    /// Within the shutdown grace period; after it the task is aborted.
    Grace,
    /// Until it finishes (the final flush of the store).
    Complete,
}

struct Component {
    name: &'static str,
    drain: Drain,
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// The started components, in start order.
#[derive(Default)]
pub(crate) struct Components(Vec<Component>);

impl Components {
    /// Starts a component: `run` gets its stop signal and runs until it.
    pub(crate) fn start<F, Fut>(&mut self, name: &'static str, drain: Drain, run: F)
    where
        F: FnOnce(Stop) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(run(rx));
        tracing::debug!(component = name, "Started.");
        self.0.push(Component {
            name,
            drain,
            stop,
            task,
        });
    }

    /// Runs until `stop` completes or a component ends on its own, then
    /// stops every component in the reverse order of their start; components
    /// that drain within the grace period share `grace`.
    pub(crate) async fn run_until(
        mut self,
        stop: impl Future<Output = ()>,
        grace: Duration,
    ) -> anyhow::Result<()> {
        let ended = {
            let tasks = self.0.iter_mut().map(|c| &mut c.task);
            tokio::select! {
                () = stop => None,
                (result, i, _) = futures::future::select_all(tasks) => Some((i, result)),
            }
        };
        let mut failure = None;
        if let Some((i, result)) = ended {
            let c = self.0.remove(i);
            let error = match result {
                Ok(Ok(())) => anyhow::anyhow!("{} stopped unexpectedly", c.name),
                Ok(Err(e)) => e.context(format!("{} failed", c.name)),
                Err(e) => anyhow::Error::new(e).context(format!("{} panicked", c.name)),
            };
            tracing::error!("{error:#}; stopping the server.");
            failure = Some(error);
        }
        let deadline = Instant::now() + grace;
        for c in self.0.into_iter().rev() {
            let _ = c.stop.send(true);
            let mut task = c.task;
            let result = match c.drain {
                Drain::Complete => (&mut task).await,
                Drain::Grace => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if let Ok(r) = tokio::time::timeout(left, &mut task).await {
                        r
                    } else {
                        tracing::warn!(
                            component = c.name,
                            ?grace,
                            "Shutdown grace period over; stopping it."
                        );
                        task.abort();
                        continue;
                    }
                }
            };
            match result.with_context(|| format!("{} panicked", c.name)) {
                Ok(Ok(())) => tracing::debug!(component = c.name, "Stopped."),
                Ok(Err(e)) | Err(e) => {
                    tracing::error!(component = c.name, "Stopping failed: {e:#}");
                    failure.get_or_insert(e);
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn recorder(
        log: &Arc<Mutex<Vec<&'static str>>>,
        name: &'static str,
    ) -> impl FnOnce(Stop) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>
    {
        let log = Arc::clone(log);
        move |stop| {
            Box::pin(async move {
                stopped(stop).await;
                log.lock().unwrap().push(name);
                Ok(())
            })
        }
    }

    #[tokio::test]
    async fn components_stop_in_the_reverse_order_of_their_start() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut c = Components::default();
        c.start("store", Drain::Complete, recorder(&log, "store"));
        c.start("ticks", Drain::Grace, recorder(&log, "ticks"));
        c.start("listener", Drain::Grace, recorder(&log, "listener"));
        c.run_until(async {}, Duration::from_secs(5)).await.unwrap();
        assert_eq!(*log.lock().unwrap(), ["listener", "ticks", "store"]);
    }

    #[tokio::test]
    async fn a_component_that_ends_stops_the_others_and_is_reported() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut c = Components::default();
        c.start("store", Drain::Complete, recorder(&log, "store"));
        c.start("listener", Drain::Grace, |_| async {
            anyhow::bail!("the socket went away")
        });
        let err = c
            .run_until(std::future::pending(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("listener failed: the socket went away"));
        assert_eq!(*log.lock().unwrap(), ["store"]);
    }

    #[tokio::test]
    async fn a_component_that_outlasts_the_grace_period_is_aborted_and_the_rest_still_stop() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut c = Components::default();
        c.start("store", Drain::Complete, recorder(&log, "store"));
        c.start("stuck", Drain::Grace, |_| async {
            std::future::pending::<()>().await;
            Ok(())
        });
        c.run_until(async {}, Duration::from_millis(50))
            .await
            .unwrap();
        assert_eq!(*log.lock().unwrap(), ["store"]);
    }
}
