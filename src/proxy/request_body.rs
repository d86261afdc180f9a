//! A request body on its way to an endpoint. Two questions are answered here: did the client
//! keep sending (a body that stalls for longer than the progress timeout ends in an error),
//! and, when a send fails, was it the client's doing (passive health must count only the
//! failures that the endpoint caused, or any client could take endpoints out of rotation with
//! broken bodies).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Sleep;

use super::body::{self, BoxError, ProxyBody};

/// The client sent no body data for longer than the progress timeout.
#[derive(Debug, thiserror::Error)]
#[error("the client sent no request body data for {0:?}")]
pub struct BodyTimeout(Duration);

/// A client's request body with a progress timeout: no wait for the client's next frame may
/// last longer than `timeout` (nginx's `client_body_timeout`). Only time spent waiting on the
/// client counts, not time in which the endpoint was not reading. The timer is made when the
/// body first has to wait, and re-armed only when it fires.
pub struct ClientBody {
    inner: Incoming,
    timeout: Duration,
    waiting_since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl ClientBody {
    pub fn new(inner: Incoming, timeout: Duration) -> Self {
        Self { inner, timeout, waiting_since: None, timer: None }
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.waiting_since = None;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(other) => {
                this.timer = None;
                Poll::Ready(other.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                let deadline = *this.waiting_since.get_or_insert_with(Instant::now) + this.timeout;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.into())));
                loop {
                    if timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    if Instant::now() >= deadline {
                        return Poll::Ready(Some(Err(BodyTimeout(this.timeout).into())));
                    }
                    // Armed during an earlier wait: this one ends later.
                    timer.as_mut().reset(deadline.into());
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// How far a request body got on its way to the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Still being sent (or the endpoint stopped reading it).
    Sending,
    /// Sent whole.
    Complete,
    /// The body's source failed: the client broke or reset it, or a mirror's copy was cut off.
    Failed,
    /// The client stopped sending it ([`BodyTimeout`]).
    TimedOut,
}

/// Where a tracked body reports its progress.
#[derive(Clone)]
pub struct Tracker(Option<Arc<AtomicU8>>);

impl Tracker {
    pub fn progress(&self) -> Progress {
        match self.0.as_ref().map(|p| p.load(Ordering::Relaxed)) {
            None | Some(1) => Progress::Complete,
            Some(0) => Progress::Sending,
            Some(2) => Progress::Failed,
            Some(_) => Progress::TimedOut,
        }
    }
}

/// The body with a tracker of its progress; a body that is already complete (a GET) is not
/// wrapped, so most requests pay nothing.
pub fn track(body: ProxyBody) -> (ProxyBody, Tracker) {
    if body.is_end_stream() {
        return (body, Tracker(None));
    }
    let progress = Arc::new(AtomicU8::new(0));
    let tracked = Tracked { inner: body, progress: Arc::clone(&progress) };
    (body::boxed(tracked), Tracker(Some(progress)))
}

struct Tracked {
    inner: ProxyBody,
    progress: Arc<AtomicU8>,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let reached = match &polled {
            Poll::Ready(None) => Some(Progress::Complete),
            Poll::Ready(Some(Err(error))) if error.is::<BodyTimeout>() => Some(Progress::TimedOut),
            Poll::Ready(Some(Err(_))) => Some(Progress::Failed),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => Some(Progress::Complete),
            _ => None,
        };
        if let Some(progress) = reached {
            let value = match progress {
                Progress::Sending => 0,
                Progress::Complete => 1,
                Progress::Failed => 2,
                Progress::TimedOut => 3,
            };
            self.progress.store(value, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn a_tracker_tells_complete_failed_and_unfinished_bodies_apart() {
        let (body, tracker) = track(body::full("x"));
        assert_eq!(tracker.progress(), Progress::Sending);
        body.collect().await.unwrap();
        assert_eq!(tracker.progress(), Progress::Complete);

        let (_, tracker) = track(body::empty());
        assert_eq!(tracker.progress(), Progress::Complete, "an empty body is complete from the start");

        let frames: Vec<Result<Frame<Bytes>, BoxError>> = vec![Ok(Frame::data(Bytes::from("a"))), Err("broken".into())];
        let (body, tracker) = track(body::boxed(http_body_util::StreamBody::new(futures_util::stream::iter(frames))));
        assert!(body.collect().await.is_err());
        assert_eq!(tracker.progress(), Progress::Failed);

        let timed_out: Vec<Result<Frame<Bytes>, BoxError>> = vec![Err(BodyTimeout(Duration::from_secs(1)).into())];
        let (body, tracker) =
            track(body::boxed(http_body_util::StreamBody::new(futures_util::stream::iter(timed_out))));
        assert!(body.collect().await.is_err());
        assert_eq!(tracker.progress(), Progress::TimedOut);
    }
}
