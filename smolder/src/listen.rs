//! The accept loop every listener runs (OTLP/gRPC, OTLP/HTTP, the API),
//! with the limits a server facing untrusted clients needs.
//!
//! `axum::serve` and tonic's server accept every connection and keep it as
//! long as the client likes: 20,000 idle connections exhaust the process's
//! file descriptors, and a client that sends half a body and stalls holds
//! its buffers forever. Here each listener
//!
//! * caps its open connections ([`ListenerLimits::max_connections`]):
//!   beyond the cap a new connection is accepted and closed at once (the
//!   ones already open keep being served) and counted in
//!   `smolder_connections_refused_total`;
//! * closes a connection on which nothing was read or written for
//!   [`ListenerLimits::idle_timeout`] — idle keep-alive connections, and
//!   clients stalled in the middle of a request;
//! * gives a client [`ListenerLimits::header_timeout`] to send a request's
//!   headers (HTTP/1; slowloris);
//! * bounds HTTP/2: concurrent streams per connection, the header list,
//!   and reset streams not yet accepted (the "rapid reset" attack);
//! * survives accept errors (out of file descriptors): it logs, waits a
//!   moment and goes on.
//!
//! Bodies are bounded where they are read (the API's body limit, the OTLP
//! receivers' size cap and memory budget), requests by the API's timeout.
//!
//! With TLS configured (tls.rs) each connection's handshake runs here too,
//! within the header timeout, before HTTP sees a byte: every listener gets
//! the same transport security, and a client that opens a connection and
//! never completes its handshake holds a slot no longer than one that never
//! sends its headers.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::tls::Tls;

/// Limits of one listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListenerLimits {
    /// Connections open at once; more are closed as they arrive.
    pub(crate) max_connections: usize,
    /// A connection with no bytes read or written for this long is closed.
    pub(crate) idle_timeout: Duration,
    /// Time to send a request's headers (HTTP/1).
    pub(crate) header_timeout: Duration,
    /// Concurrent HTTP/2 streams per connection.
    pub(crate) max_streams: u32,
}

/// Bytes of request headers accepted (HTTP/1 read buffer, HTTP/2 header
/// list): far above any real client's, far below what would hurt.
const MAX_HEADER_BYTES: usize = 64 << 10;

/// HTTP/2 streams a client may reset before the server has accepted them.
const MAX_PENDING_RESETS: usize = 32;

/// How long a stopping listener waits for its connections' requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Pause after an accept error (e.g. no file descriptor left) before the
/// next accept, so that the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ListenerLabel {
    listener: &'static str,
}

/// Connection counters of every listener.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListenerMetrics {
    open: Family<ListenerLabel, Gauge>,
    accepted: Family<ListenerLabel, Counter>,
    refused: Family<ListenerLabel, Counter>,
    idle_closed: Family<ListenerLabel, Counter>,
    handshake_failed: Family<ListenerLabel, Counter>,
}

impl ListenerMetrics {
    /// Counters registered in `registry`.
    pub(crate) fn new(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "connections_open",
            "Connections open, per listener",
            m.open.clone(),
        );
        registry.register(
            "connections_accepted",
            "Connections accepted, per listener",
            m.accepted.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed on arrival because the listener had max_connections open",
            m.refused.clone(),
        );
        registry.register(
            "connections_idle_closed",
            "Connections closed after idle_timeout without traffic",
            m.idle_closed.clone(),
        );
        registry.register(
            "tls_handshakes_failed",
            "TLS handshakes that failed or timed out (bad or missing client certificates, plain-text clients, scanners)",
            m.handshake_failed.clone(),
        );
        m
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a listener serves: a cloneable tower service of hyper requests.
pub(crate) trait HttpService<B>:
    tower::Service<
        http::Request<hyper::body::Incoming>,
        Response = http::Response<B>,
        Future: Send + 'static,
        Error: Into<BoxError>,
    > + Clone
    + Send
    + 'static
{
}

impl<S, B> HttpService<B> for S where
    S: tower::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<B>,
            Future: Send + 'static,
            Error: Into<BoxError>,
        > + Clone
        + Send
        + 'static
{
}

/// The body of its responses.
pub(crate) trait ResponseBody:
    http_body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static
{
}

impl<B> ResponseBody for B where
    B: http_body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static
{
}

/// Serves `service` on `listener` (over TLS when `tls` is given) until
/// `stop` turns true, then lets open connections finish their requests
/// (bounded by the caller).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve<S, B>(
    name: &'static str,
    listener: TcpListener,
    tls: Option<Arc<Tls>>,
    service: S,
    limits: ListenerLimits,
    metrics: ListenerMetrics,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()>
where
    S: HttpService<B>,
    B: ResponseBody,
{
    let label = ListenerLabel { listener: name };
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams)
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        // No server pings: their answers would count as traffic and keep
        // idle connections open; the idle timeout finds dead peers instead.
        .max_pending_accept_reset_streams(MAX_PENDING_RESETS);
    let builder = Arc::new(builder);
    let mut last_error_log: Option<Instant> = None;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!(listener = name, error = %e, "Accepting a connection failed; going on.");
                        last_error_log = Some(Instant::now());
                    }
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            metrics.refused.get_or_create(&label).inc();
            drop(stream);
            continue;
        };
        metrics.accepted.get_or_create(&label).inc();
        let _ = stream.set_nodelay(true);
        let (builder, service, metrics, label, stop, tls) = (
            Arc::clone(&builder),
            service.clone(),
            metrics.clone(),
            label.clone(),
            stop.clone(),
            tls.clone(),
        );
        tokio::spawn(async move {
            metrics.open.get_or_create(&label).inc();
            let activity = Activity::new();
            let stream = Tracked {
                inner: stream,
                activity: Arc::clone(&activity),
            };
            let connected = Connection {
                builder: &builder,
                peer,
                activity,
                limits,
                metrics: &metrics,
                label: &label,
            };
            match tls {
                None => connected.serve(stream, service, stop).await,
                Some(tls) => {
                    let handshake =
                        tokio::time::timeout(limits.header_timeout, handshake(&tls, stream));
                    match handshake.await {
                        Ok(Ok(stream)) => connected.serve(stream, service, stop).await,
                        Ok(Err(e)) => {
                            metrics.handshake_failed.get_or_create(&label).inc();
                            tracing::debug!(listener = name, %peer, error = %e, "TLS handshake failed.");
                        }
                        Err(_) => {
                            metrics.handshake_failed.get_or_create(&label).inc();
                            tracing::debug!(listener = name, %peer, "TLS handshake timed out.");
                        }
                    }
                }
            }
            metrics.open.get_or_create(&label).dec();
            drop(slot);
        });
    }
    // Let open connections finish their requests (each was told to close),
    // for a while: what they acknowledge must reach storage before it stops.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            open = limits.max_connections - slots.available_permits(),
            "Connections still open after the shutdown grace period; closing them."
        );
    }
    Ok(())
}

/// The first byte of a TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The answer to a plain-text HTTP request on a TLS listener.
const PLAIN_TEXT_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
content-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: 66\r\n\r\n\
This port speaks TLS: use https:// (gRPC: a TLS channel) instead.\n";

/// Completes the TLS handshake of a new connection. A client that speaks
/// plain-text HTTP to a TLS port (a common mistake in an exporter's
/// endpoint) gets a 400 saying so instead of an unreadable TLS alert.
async fn handshake(
    tls: &Tls,
    mut stream: Tracked,
) -> std::io::Result<tokio_rustls::server::TlsStream<Tracked>> {
    let mut first = [0u8; 1];
    let n = stream.inner.peek(&mut first).await?;
    if n == 1 && first[0] != TLS_HANDSHAKE_RECORD && first[0].is_ascii_uppercase() {
        use tokio::io::AsyncWriteExt as _;
        stream.write_all(PLAIN_TEXT_ANSWER).await?;
        stream.shutdown().await?;
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "plain-text HTTP on a TLS listener",
        ));
    }
    tls.acceptor().accept(stream).await
}

/// One accepted connection.
struct Connection<'a> {
    builder: &'a auto::Builder<TokioExecutor>,
    peer: SocketAddr,
    /// Its bytes read and written (below TLS).
    activity: Arc<Activity>,
    limits: ListenerLimits,
    metrics: &'a ListenerMetrics,
    label: &'a ListenerLabel,
}

impl Connection<'_> {
    /// Serves the connection until it ends, idles out or the server stops.
    async fn serve<I, S, B>(self, io: I, service: S, mut stop: watch::Receiver<bool>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: HttpService<B>,
        B: ResponseBody,
    {
        let Self {
            builder,
            peer,
            activity,
            limits,
            metrics,
            label,
        } = self;
        // Handlers (the audit log) see who is calling.
        let service = tower::ServiceExt::map_request(service, move |mut r: http::Request<_>| {
            r.extensions_mut().insert(crate::audit::Peer(peer));
            r
        });
        let io = TokioIo::new(io);
        let conn = builder.serve_connection_with_upgrades(io, TowerToHyperService::new(service));
        tokio::pin!(conn);
        let mut closing = false;
        let check = (limits.idle_timeout / 4).max(Duration::from_millis(100));
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(listener = label.listener, %peer, error = %e, "Connection ended with an error.");
                    }
                    return;
                }
                () = stopped(&mut stop), if !closing => {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = tokio::time::sleep(check) => {
                    if activity.idle() < limits.idle_timeout {
                        continue;
                    }
                    if closing {
                        // Asked to close and still silent: the peer is stalled
                        // in the middle of a request. Drop it.
                        return;
                    }
                    tracing::debug!(listener = label.listener, %peer, "Closing an idle connection.");
                    metrics.idle_closed.get_or_create(label).inc();
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                    activity.touch();
                }
            }
        }
    }
}

/// Completes once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// When a connection last read or wrote a byte.
#[derive(Debug)]
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// A stream that records its activity.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        poll
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves a one-route app on a loopback port with `limits`.
    async fn listener(
        limits: ListenerLimits,
    ) -> (SocketAddr, ListenerMetrics, watch::Sender<bool>) {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let metrics = ListenerMetrics::default();
        let (stop, stopped) = watch::channel(false);
        // Reads the whole body before it answers, as the OTLP receivers do.
        let app = axum::Router::new().route(
            "/",
            axum::routing::any(|_: axum::body::Bytes| async { "ok" }),
        );
        tokio::spawn(serve(
            "test",
            socket,
            None,
            app,
            limits,
            metrics.clone(),
            stopped,
        ));
        (addr, metrics, stop)
    }

    fn limits(idle: Duration, header: Duration) -> ListenerLimits {
        ListenerLimits {
            max_connections: 8,
            idle_timeout: idle,
            header_timeout: header,
            max_streams: 3,
        }
    }

    /// Reads until the server closes the connection; returns what it sent.
    async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
        let mut seen = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut seen))
            .await
            .expect("the server closes the connection")
            .ok();
        seen
    }

    fn idle_closed(metrics: &ListenerMetrics) -> u64 {
        metrics
            .idle_closed
            .get_or_create(&ListenerLabel { listener: "test" })
            .get()
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
        let idle = Duration::from_millis(300);
        let (addr, metrics, _stop) = listener(limits(idle, Duration::from_secs(30))).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let answered = Instant::now();
        let seen = read_to_close(&mut client).await;
        assert!(
            String::from_utf8_lossy(&seen).ends_with("ok"),
            "answered first"
        );
        assert!(answered.elapsed() >= idle, "kept open while not idle");
        assert_eq!(idle_closed(&metrics), 1);
    }

    #[tokio::test]
    async fn a_client_stalled_in_the_middle_of_a_body_is_dropped() {
        let idle = Duration::from_millis(300);
        let (addr, metrics, _stop) = listener(limits(idle, Duration::from_secs(30))).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\nten bytes.")
            .await
            .unwrap();
        let stalled = Instant::now();
        let seen = read_to_close(&mut client).await;
        assert!(seen.is_empty(), "no answer to a request never completed");
        assert!(stalled.elapsed() >= idle);
        assert_eq!(idle_closed(&metrics), 1);
    }

    #[tokio::test]
    async fn headers_sent_too_slowly_are_cut_at_the_header_timeout() {
        let header = Duration::from_millis(300);
        let (addr, _, _stop) = listener(limits(Duration::from_secs(600), header)).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        read_to_close(&mut client).await;
        assert!(started.elapsed() >= header);
        // Well before the idle timeout closes anything.
        assert!(started.elapsed() < Duration::from_secs(600));
    }

    #[tokio::test]
    async fn http2_advertises_the_stream_and_header_limits() {
        let (addr, _, _stop) =
            listener(limits(Duration::from_secs(600), Duration::from_secs(30))).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        // Connection preface and an empty SETTINGS frame.
        client
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
            .await
            .unwrap();
        // The server's first frame is its SETTINGS: 9-byte header, then
        // 6-byte (identifier, value) pairs.
        let mut header = [0u8; 9];
        client.read_exact(&mut header).await.unwrap();
        assert_eq!(header[3], 0x4, "a SETTINGS frame");
        let len =
            usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
        let mut payload = vec![0u8; len];
        client.read_exact(&mut payload).await.unwrap();
        let settings: std::collections::HashMap<u16, u32> = payload
            .chunks_exact(6)
            .map(|c| {
                (
                    u16::from_be_bytes([c[0], c[1]]),
                    u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                )
            })
            .collect();
        assert_eq!(
            settings.get(&0x3),
            Some(&3),
            "SETTINGS_MAX_CONCURRENT_STREAMS"
        );
        assert_eq!(
            settings.get(&0x6),
            Some(&(MAX_HEADER_BYTES as u32)),
            "SETTINGS_MAX_HEADER_LIST_SIZE"
        );
    }
}
