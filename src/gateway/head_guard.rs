//! A whole-request deadline and a size cap on every request head, below
//! Pingora. Pingora's only guards on a head are 60 s of silence per read and
//! a 1 MiB cap (a buffer that grows to 2 MiB): a client that trickles a
//! header line every few seconds holds its connection, and that much memory,
//! for as long as it likes. Pingora reads the head before any `ProxyHttp`
//! phase runs and has no setting for a whole-head deadline, so the guard
//! sits in the one place that sees those reads, the connection itself:
//!
//! - `Guarded` wraps each accepted connection in a `GuardedStream`, and
//!   marks the start of each request on it before Pingora reads the head;
//! - while a head is being read, the stream's reads fail once
//!   `server.request_header_timeout` has passed since the head began (since
//!   the connection was accepted, for its first request; since the first
//!   byte, for later ones on a kept-alive connection, whose idle wait stays
//!   Pingora's keep-alive timeout) or once more than
//!   `server.max_request_header_bytes` arrived;
//! - the proxy calls `head_received` when Pingora has parsed the head
//!   (`early_request_filter`); from then on the body and a WebSocket flow
//!   unhindered. Where nothing says so (the admin listener) the limits keep
//!   applying to the whole request.
//!
//! A client cut off mid-head is sent `408` (or `431` when too large) when
//! the socket takes it at once, then closed. Never logs request bytes.
//!
//! On a TLS listener the handshake happens here too, before the stream is
//! wrapped, and counts against the first head's deadline (`tls::handshake`).
//! An HTTP/2 connection's guard covers the handshake and the connection
//! preface; after that its requests arrive as frames that Pingora's HTTP/2
//! server bounds itself (header list size, streams per connection, idle
//! timeout), set from the same limits in `server.rs`.

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::TlsRef;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use pingora::server::ShutdownWatch;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::state::Shared;
use crate::config::ClientLimits;
use crate::metrics::{CutOff, METRICS};

const TIMED_OUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
/// `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, what every HTTP/2 client sends first.
const H2_PREFACE_LEN: usize = 24;
const TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// How far the head of the current request has come.
struct HeadProgress {
    /// The `generation` this progress belongs to.
    generation: u64,
    bytes: usize,
    /// When the head must be complete; `None` until its first byte.
    deadline: Option<Pin<Box<Sleep>>>,
}

/// A connection whose request heads must arrive whole, in time and within
/// the size cap.
pub struct GuardedStream {
    inner: Stream,
    limits: ClientLimits,
    /// True while a head is being read.
    reading_head: AtomicBool,
    /// Requests begun on this connection; each new one starts a new head.
    generation: AtomicU64,
    head: HeadProgress,
    /// A limit was broken: counted and answered once.
    refused: bool,
    /// HTTP/2: the guard ends once this many bytes (the preface) arrived.
    guard_ends_after: Option<usize>,
}

impl GuardedStream {
    /// Wraps a connection just accepted: its first head is timed from now.
    pub fn new(inner: Stream, limits: ClientLimits) -> Self {
        Self::accepted_at(inner, limits, Instant::now())
    }

    /// Wraps a connection accepted at `accepted` (before its TLS
    /// handshake): its first head is timed from then.
    pub fn accepted_at(inner: Stream, limits: ClientLimits, accepted: Instant) -> Self {
        let deadline = Box::pin(tokio::time::sleep_until(
            accepted + limits.request_header_timeout,
        ));
        let guard_ends_after =
            matches!(inner.selected_alpn_proto(), Some(ALPN::H2)).then_some(H2_PREFACE_LEN);
        GuardedStream {
            inner,
            limits,
            reading_head: AtomicBool::new(true),
            generation: AtomicU64::new(0),
            head: HeadProgress {
                generation: 0,
                bytes: 0,
                deadline: Some(deadline),
            },
            refused: false,
            guard_ends_after,
        }
    }

    /// A request begins on this connection. The first one was timed from
    /// the accept; a later one from its first byte.
    fn request_begins(&self) {
        if self.reading_head.swap(true, Ordering::AcqRel) && self.head.bytes == 0 {
            // the connection's first request, still before any byte
            return;
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Pingora has parsed this request's head: the rest flows unhindered.
    fn head_done(&self) {
        self.reading_head.store(false, Ordering::Release);
    }

    /// Starts a fresh head if a new request began since the last read.
    fn sync_generation(&mut self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.head.generation != generation {
            self.head = HeadProgress {
                generation,
                bytes: 0,
                deadline: None,
            };
        }
    }

    /// Fails the read; tells the client why when it already sent part of
    /// a head and the socket takes the answer at once.
    fn refuse(&mut self, cx: &mut Context<'_>, limit: CutOff, why: String) -> io::Error {
        let (answer, kind) = match limit {
            CutOff::HeadTooLarge => (TOO_LARGE, io::ErrorKind::InvalidData),
            _ => (TIMED_OUT, io::ErrorKind::TimedOut),
        };
        if !self.refused {
            self.refused = true;
            METRICS.cut_off(limit);
            // An HTTP/2 client would read an HTTP/1.1 answer as garbage.
            if self.head.bytes > 0 && self.guard_ends_after.is_none() {
                let _ = Pin::new(&mut self.inner).poll_write(cx, answer);
            }
        }
        io::Error::new(kind, why)
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.reading_head.load(Ordering::Acquire) {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        this.sync_generation();
        let max = this.limits.max_request_header_bytes;
        if this.head.bytes > max {
            let why = format!("request head larger than {max} bytes");
            return Poll::Ready(Err(this.refuse(cx, CutOff::HeadTooLarge, why)));
        }
        // Polled first, so the task wakes at the deadline even when the
        // client sends nothing more.
        if let Some(deadline) = this.head.deadline.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                let t = this.limits.request_header_timeout;
                let why = format!("request head not complete within {t:?}");
                return Poll::Ready(Err(this.refuse(cx, CutOff::HeadTimeout, why)));
            }
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            this.head.bytes += n;
            if this.head.deadline.is_none() {
                let at = Instant::now() + this.limits.request_header_timeout;
                this.head.deadline = Some(Box::pin(tokio::time::sleep_until(at)));
            }
            if this.head.bytes > max {
                let why = format!("request head larger than {max} bytes");
                return Poll::Ready(Err(this.refuse(cx, CutOff::HeadTooLarge, why)));
            }
            if this.guard_ends_after.is_some_and(|n| this.head.bytes >= n) {
                this.head_done();
            }
        }
        read
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl std::fmt::Debug for GuardedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedStream")
            .field("inner", &self.inner)
            .field("reading_head", &self.reading_head)
            .finish_non_exhaustive()
    }
}

// Everything else is the connection's own.

#[async_trait]
impl Shutdown for GuardedStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await;
    }
}

impl UniqueID for GuardedStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for GuardedStream {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for GuardedStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for GuardedStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest);
    }
}

impl GetSocketDigest for GuardedStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest);
    }
}

#[async_trait]
impl Peek for GuardedStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

fn guarded(session: &ServerSession) -> Option<&GuardedStream> {
    session
        .stream()
        .and_then(|s| s.as_any().downcast_ref::<GuardedStream>())
}

/// Pingora has parsed the head of this request (call it from the first
/// phase that runs after the head, `early_request_filter`).
pub fn head_received(session: &ServerSession) {
    if let Some(stream) = guarded(session) {
        stream.head_done();
    }
}

/// An HTTP app whose connections are guarded; serve it in place of `app`.
pub struct Guarded<A> {
    inner: Arc<EachRequest<A>>,
    shared: Arc<Shared>,
    /// On a TLS listener: the handshake, done inside the guard's deadline.
    tls: Option<Arc<crate::tls::handshake::TlsHandshake>>,
}

impl<A> Guarded<A> {
    /// Limits are read from the config in force when a connection opens.
    pub fn new(app: A, shared: Arc<Shared>) -> Self {
        Guarded {
            inner: Arc::new(EachRequest(Arc::new(app))),
            shared,
            tls: None,
        }
    }

    /// Serves TLS: each connection's handshake first.
    pub fn with_tls(mut self, tls: Arc<crate::tls::handshake::TlsHandshake>) -> Self {
        self.tls = Some(tls);
        self
    }
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> ServerApp for Guarded<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let limits = self.shared.snapshot.load().settings.server.client_limits;
        let accepted = Instant::now();
        let stream = match &self.tls {
            Some(tls) => {
                let deadline = accepted + limits.request_header_timeout;
                tls.accept(stream, deadline).await?
            }
            None => stream,
        };
        let stream: Stream = Box::new(GuardedStream::accepted_at(stream, limits, accepted));
        self.inner.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.0.http_cleanup().await;
    }
}

/// Marks the start of each request on its connection, before Pingora reads
/// the head; otherwise the app's own.
struct EachRequest<A>(Arc<A>);

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> HttpServerApp for EachRequest<A> {
    /// Not an `async fn`: the app's own future is returned as it is. An
    /// async wrapper boxed a second future around it and moved the server
    /// session into it and out again on every request: 3.3k of the 27k
    /// instructions the gateway added to a public request (callgrind).
    fn process_new_http<'app, 'watch, 'future>(
        self: &'app Arc<Self>,
        session: ServerSession,
        shutdown: &'watch ShutdownWatch,
    ) -> Pin<Box<dyn Future<Output = Option<ReusedHttpStream>> + Send + 'future>>
    where
        'app: 'future,
        'watch: 'future,
        Self: 'future,
    {
        if let Some(stream) = guarded(&session) {
            stream.request_begins();
        }
        self.0.process_new_http(session, shutdown)
    }

    fn h2_options(&self) -> Option<pingora::protocols::http::v2::server::H2Options> {
        self.0.h2_options()
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        self.0.server_options()
    }

    async fn http_cleanup(&self) {
        self.0.http_cleanup().await;
    }
}
