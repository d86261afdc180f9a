//! What watches a client connection while hyper serves it: the socket wrapper that reports
//! reads and writes to the connection's state, and the future that drives the connection and
//! closes it when its phase's deadline passes (see `connection.rs`) or drains it on shutdown.
//!
//! The socket wrapper also checks the first line a client sends: an HTTP/1.x request line or
//! the HTTP/2 preface. Anything else (an invalid preface, a protocol Gantry does not speak) is
//! answered by closing the connection, not with an HTTP/1.1 error page that a client of
//! another protocol would misread (RFC 9113 section 3.4).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::connection::{ConnState, Deadline, Timeouts, Verdict, instant_of, now_ms};
use crate::metrics::METRICS;

pin_project_lite::pin_project! {
    /// A client socket that tells its connection's state about progress.
    pub struct Watched<T> {
        #[pin]
        io: T,
        state: Arc<ConnState>,
        first_line: FirstLine,
    }
}

impl<T> Watched<T> {
    pub fn new(io: T, state: Arc<ConnState>) -> Self {
        Self { io, state, first_line: FirstLine::default() }
    }
}

impl<T: AsyncRead> AsyncRead for Watched<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut this = self.project();
        let before = buf.filled().len();
        let polled = this.io.as_mut().poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && buf.filled().len() > before
        {
            if !this.first_line.done
                && let Err(error) = this.first_line.check(&buf.filled()[before..])
            {
                discard_pending(this.io, cx);
                return Poll::Ready(Err(error));
            }
            this.state.on_read();
        }
        polled
    }
}

impl<T: AsyncWrite> AsyncWrite for Watched<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.project();
        let polled = this.io.poll_write(cx, buf);
        report_write(this.state, &polled);
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let polled = this.io.poll_write_vectored(cx, bufs);
        report_write(this.state, &polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}

/// Reads and drops what the client has sent already (up to 64 KiB), so that closing the
/// socket sends a FIN rather than a reset (which unread data would cause).
fn discard_pending<T: AsyncRead>(mut io: Pin<&mut T>, cx: &mut Context<'_>) {
    let mut scratch = [0u8; 4096];
    for _ in 0..16 {
        let mut buf = ReadBuf::new(&mut scratch);
        match io.as_mut().poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) if !buf.filled().is_empty() => {}
            _ => return,
        }
    }
}

fn report_write(state: &ConnState, polled: &Poll<io::Result<usize>>) {
    match polled {
        Poll::Ready(Ok(_)) => state.on_write(),
        Poll::Pending => state.on_write_blocked(),
        Poll::Ready(Err(_)) => {}
    }
}

/// Checks the first line a client sends, byte by byte as it arrives, so that a client of
/// another protocol is cut off before hyper would answer it in HTTP/1.1: it must be an
/// HTTP/1.0 or HTTP/1.1 request line (`method SP target SP HTTP/1.x`, after optional empty
/// lines) or the first line of the HTTP/2 preface.
struct FirstLine {
    done: bool,
    line: Line,
    /// Bytes matched of the HTTP/2 preface's first line, while they match.
    preface: Option<usize>,
}

impl Default for FirstLine {
    fn default() -> Self {
        Self { done: false, line: Line::Start, preface: Some(0) }
    }
}

/// Where in an HTTP/1.x request line (RFC 9112 section 3) the bytes so far end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    /// Before the method; empty lines may come first.
    Start,
    Method,
    TargetStart,
    Target,
    /// This many bytes of `HTTP/1.` matched.
    Version(usize),
    Minor,
    AfterVersion,
    Cr,
    Done,
    Invalid,
}

const PREFACE_LINE: &[u8] = b"PRI * HTTP/2.0\r\n";
const HTTP1: &[u8] = b"HTTP/1.";

impl FirstLine {
    fn check(&mut self, bytes: &[u8]) -> io::Result<()> {
        for &b in bytes {
            if let Some(matched) = self.preface {
                self.preface = (PREFACE_LINE.get(matched) == Some(&b)).then_some(matched + 1);
            }
            self.line = self.line.next(b);
            if self.line == Line::Done || self.preface == Some(PREFACE_LINE.len()) {
                self.done = true;
                return Ok(());
            }
            if self.line == Line::Invalid && self.preface.is_none() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not an HTTP/1.x request line or the HTTP/2 preface",
                ));
            }
        }
        Ok(())
    }
}

impl Line {
    fn next(self, b: u8) -> Line {
        use Line::*;
        let token = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        match (self, b) {
            (Start, b'\r' | b'\n') => Start,
            (Start | Method, _) if token => Method,
            (Method, b' ') => TargetStart,
            (Target, b' ') => Version(0),
            (TargetStart | Target, _) if !b.is_ascii_control() && b != b' ' => Target,
            (Version(matched), _) if HTTP1.get(matched) == Some(&b) => {
                if matched + 1 == HTTP1.len() {
                    Minor
                } else {
                    Version(matched + 1)
                }
            }
            (Minor, b'0' | b'1') => AfterVersion,
            (AfterVersion, b'\r') => Cr,
            (AfterVersion | Cr, b'\n') => Done,
            _ => Invalid,
        }
    }
}

/// Runs the first-line check over a connection's first chunks (for the fuzz targets).
#[cfg(fuzzing)]
pub(super) fn first_line(chunks: &[&[u8]]) -> io::Result<bool> {
    let mut check = FirstLine::default();
    for chunk in chunks {
        check.check(chunk)?;
        if check.done {
            break;
        }
    }
    Ok(check.done)
}

/// A connection future that can be asked to finish gracefully.
pub trait Graceful: Future {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

/// How a supervised connection ended.
pub enum Ended<T> {
    /// It finished by itself.
    Finished(T),
    /// Gantry closed it: its phase's deadline passed.
    Closed(Deadline),
}

pin_project_lite::pin_project! {
    /// Drives a connection (or a tunnel) and closes it when its deadline passes. One timer per
    /// connection, re-armed only when it fires.
    pub struct Supervised<F> {
        #[pin]
        inner: F,
        #[pin]
        timer: Sleep,
        state: Arc<ConnState>,
        timeouts: Timeouts,
        draining: bool,
        tunnel_seen: (u64, u64),
    }
}

impl<F> Supervised<F> {
    pub fn new(inner: F, state: Arc<ConnState>, timeouts: Timeouts) -> Self {
        // The first look is at the earliest deadline a connection can have (the header
        // deadline, or a stall of its first response).
        let first = now_ms().saturating_add(timeouts.header.min(timeouts.send).as_millis() as u64);
        Self {
            inner,
            timer: tokio::time::sleep_until(instant_of(first)),
            state,
            timeouts,
            draining: false,
            tunnel_seen: (0, 0),
        }
    }
}

impl<F: Graceful> Future for Supervised<F> {
    type Output = Ended<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        this.state.waker.register(cx.waker());
        if !*this.draining && this.state.draining() {
            *this.draining = true;
            this.inner.as_mut().graceful_shutdown();
        }
        if let Poll::Ready(output) = this.inner.poll(cx) {
            return Poll::Ready(Ended::Finished(output));
        }
        while this.timer.as_mut().poll(cx).is_ready() {
            match this.state.check(now_ms(), this.timeouts, this.tunnel_seen) {
                Verdict::Close(reason) => {
                    METRICS.connections_closed.with_label_values(&[reason.label()]).inc();
                    return Poll::Ready(Ended::Closed(reason));
                }
                Verdict::RecheckAt(at) => this.timer.as_mut().reset(instant_of(at)),
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_line(chunks: &[&[u8]]) -> io::Result<bool> {
        let mut check = FirstLine::default();
        for chunk in chunks {
            check.check(chunk)?;
        }
        Ok(check.done)
    }

    #[test]
    fn http1_request_lines_and_the_http2_preface_pass() {
        assert!(first_line(&[b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"]).unwrap());
        assert!(first_line(&[b"GET /a", b"/b HTT", b"P/1.0\r", b"\n"]).unwrap());
        assert!(first_line(&[b"\r\n\r\nPOST /x HTTP/1.1\n"]).unwrap());
        assert!(first_line(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00"]).unwrap());
        assert!(!first_line(&[b"GET /still-coming"]).unwrap(), "undecided until the line ends");
        assert!(first_line(&[b"GET /\xc3\xbc HTTP/1.1\r\n"]).unwrap(), "bytes outside ASCII in the target");
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(10_000));
        assert!(first_line(&[long.as_bytes()]).unwrap());
    }

    #[test]
    fn anything_else_closes_the_connection() {
        for bad in [
            &b"INVALID CONNECTION PREFACE\r\n\r\n"[..],
            b"NOT HTTP AT ALL\r\n",
            b"GET /\r\n",
            b"GET / HTTP/2.0\r\n",
            b"xPRI * HTTP/2.0\r\n",
            b"GET / HTTP/1.1x\r\n",
            b"INVALID CONNECTION P",
            b"GET  / HTTP/1.1\r\n",
            b"GET /\x7f HTTP/1.1\r\n",
            b"PRI * HTTP/2.0 \r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n",
        ] {
            assert!(first_line(&[bad]).is_err(), "{bad:?}");
        }
    }
}
