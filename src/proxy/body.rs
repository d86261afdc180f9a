//! Bodies the proxy streams: one boxed type for everything it sends, a tee for mirrors, and a
//! wrapper that holds a value until the body is done.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use tokio::sync::mpsc;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response the proxy returns and every request it sends.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

pub fn empty() -> ProxyBody {
    http_body_util::Empty::new().map_err(|never| match never {}).boxed_unsync()
}

pub fn full(text: impl Into<Bytes>) -> ProxyBody {
    http_body_util::Full::new(text.into()).map_err(|never| match never {}).boxed_unsync()
}

pub fn boxed<B>(body: B) -> ProxyBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// Passes a body through and offers a copy of each data frame to a mirror. The mirror never
/// slows the main request: when its queue is full, the mirror is cut off (its copy ends with
/// an error) and the main body goes on.
pub struct Tee {
    inner: ProxyBody,
    copy: Option<mpsc::Sender<Result<Frame<Bytes>, BoxError>>>,
    /// Set when the whole body went to the copy; a copy that ends without it was cut off.
    complete: Arc<AtomicBool>,
}

/// Frames a mirror may lag behind the main request before it is given up.
const MIRROR_QUEUE: usize = 16;

impl Tee {
    /// The main body and the mirror's copy.
    pub fn split(inner: ProxyBody) -> (Tee, ProxyBody) {
        let (tx, mut rx) = mpsc::channel(MIRROR_QUEUE);
        let complete = Arc::new(AtomicBool::new(false));
        let done = Arc::clone(&complete);
        let mut reported = false;
        let stream = futures_util::stream::poll_fn(move |cx| match rx.poll_recv(cx) {
            Poll::Ready(None) if !done.load(Ordering::Acquire) && !reported => {
                reported = true;
                Poll::Ready(Some(Err::<Frame<Bytes>, BoxError>("the mirror fell behind and was cut off".into())))
            }
            other => other,
        });
        (Tee { inner, copy: Some(tx), complete }, boxed(http_body_util::StreamBody::new(stream)))
    }
}

impl Body for Tee {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(frame) = &polled {
            match frame {
                Some(Ok(frame)) => {
                    if let (Some(tx), Some(data)) = (&self.copy, frame.data_ref())
                        && tx.try_send(Ok(Frame::data(data.clone()))).is_err()
                    {
                        // Full or gone: the mirror loses its copy, never the client.
                        self.copy = None;
                    }
                }
                Some(Err(_)) => {
                    if let Some(tx) = self.copy.take() {
                        let _ = tx.try_send(Err("the original request body failed".into()));
                    }
                }
                None => {
                    // Complete only if the copy was never cut off on the way.
                    if self.copy.take().is_some() {
                        self.complete.store(true, Ordering::Release);
                    }
                }
            }
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
    use super::*;

    #[tokio::test]
    async fn tee_copies_frames_to_the_mirror() {
        let (main, copy) = Tee::split(full("payload"));
        let main = boxed(main).collect().await.unwrap().to_bytes();
        let copy = copy.collect().await.unwrap().to_bytes();
        assert_eq!(main, "payload");
        assert_eq!(copy, "payload");
    }

    #[tokio::test]
    async fn a_stalled_mirror_never_blocks_the_main_body() {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> =
            (0..MIRROR_QUEUE * 4).map(|i| Ok(Frame::data(Bytes::from(i.to_string())))).collect();
        let source = boxed(http_body_util::StreamBody::new(futures_util::stream::iter(frames)));
        let (main, copy) = Tee::split(source);
        // The mirror's copy is never read while the main body is consumed whole.
        let main = boxed(main).collect().await.unwrap().to_bytes();
        assert!(main.len() > MIRROR_QUEUE);
        assert!(copy.collect().await.is_err(), "the mirror's copy ends in an error, not a short body");
    }
}

pin_project_lite::pin_project! {
    /// A body that keeps a value alive until the body is done, such as the balancer's
    /// selection, so that an endpoint counts as busy until its response has been streamed.
    pub struct Guarded<B, G> {
        #[pin]
        inner: B,
        guard: Option<G>,
    }
}

impl<B, G> Guarded<B, G> {
    pub fn new(inner: B, guard: G) -> Self {
        Self { inner, guard: Some(guard) }
    }
}

impl<B: Body, G> Body for Guarded<B, G> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.guard.take();
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
