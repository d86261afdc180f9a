//! Protocol upgrades. Only WebSocket passes (RFC 6455: an HTTP/1.1 GET with `Upgrade:
//! websocket` and `Connection: upgrade`, to an HTTP/1.1 backend); every other upgrade, `h2c`
//! above all, is stripped with the `Connection` tokens that name it, and is forwarded as a
//! plain request. A backend that answers 101 to anything but a WebSocket request that asked
//! for it gets the client a 502, never a tunnel: through a tunnel the client could send
//! requests for any path straight to that backend, past every route.
//!
//! A WebSocket that the backend accepts joins the two connections byte for byte until either
//! side closes, or until the tunnel is idle for too long or the client stops reading.

use http::header::{CONNECTION, UPGRADE};
use http::{Method, Request, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::connection::{ConnState, Timeouts};
use super::supervise::{Ended, Graceful, Supervised};
use crate::balance::Selection;

/// Whether the request is a WebSocket handshake that may pass.
pub fn is_websocket<B>(request: &Request<B>) -> bool {
    request.version() == http::Version::HTTP_11
        && request.method() == Method::GET
        && upgrades_to_websocket(request.headers())
        && request
            .headers()
            .get_all(CONNECTION)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
}

/// Whether the backend's 101 switches to what the client asked for: WebSocket.
pub fn accepts_websocket<B>(response: &Response<B>) -> bool {
    upgrades_to_websocket(response.headers())
}

/// Exactly one Upgrade field, naming exactly `websocket`.
fn upgrades_to_websocket(headers: &http::HeaderMap) -> bool {
    let mut upgrades = headers.get_all(UPGRADE).iter();
    matches!((upgrades.next(), upgrades.next()), (Some(value), None) if value.as_bytes().trim_ascii().eq_ignore_ascii_case(b"websocket"))
}

/// Joins the client's and the backend's upgraded connections in a task of their own. The
/// selection keeps the endpoint counted as busy, and `state` the client connection counted as
/// open (for limits and drains), while the tunnel lasts.
pub fn splice(
    client: OnUpgrade,
    backend: OnUpgrade,
    selection: Selection,
    state: std::sync::Arc<ConnState>,
    timeouts: Timeouts,
) {
    state.upgraded();
    tokio::spawn(async move {
        let (client, backend) = match tokio::try_join!(client, backend) {
            Ok(pair) => pair,
            Err(error) => {
                tracing::debug!(%error, "upgrade failed");
                return;
            }
        };
        let tunnel = Tunnel(Box::pin(async move {
            let mut client = TokioIo::new(client);
            let mut backend = TokioIo::new(backend);
            tokio::io::copy_bidirectional(&mut client, &mut backend).await
        }));
        match Supervised::new(tunnel, state, timeouts).await {
            Ended::Finished(Ok(_)) => {}
            Ended::Finished(Err(error)) => tracing::debug!(%error, "upgraded connection ended with an error"),
            Ended::Closed(reason) => tracing::debug!(reason = reason.label(), "upgraded connection closed"),
        }
        drop(selection);
    });
}

type Copy = std::pin::Pin<Box<dyn Future<Output = std::io::Result<(u64, u64)>> + Send>>;

/// The byte-for-byte copy of a tunnel. A drain lets it run: tunnels end when their ends close
/// them (or when the drain timeout ends the process).
struct Tunnel(Copy);

impl Future for Tunnel {
    type Output = std::io::Result<(u64, u64)>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl Graceful for Tunnel {
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method(method).uri("/chat");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn only_websocket_upgrades_pass() {
        let ws = [("connection", "keep-alive, Upgrade"), ("upgrade", "WebSocket")];
        assert!(is_websocket(&request(Method::GET, &ws)));
        for upgrade in ["h2c", "websocket, h2c", "h2c, websocket", "TLS/1.2", "websocket2", ""] {
            let headers = [("connection", "Upgrade, HTTP2-Settings"), ("upgrade", upgrade)];
            assert!(!is_websocket(&request(Method::GET, &headers)), "{upgrade:?}");
        }
        assert!(!is_websocket(&request(Method::POST, &ws)), "a WebSocket handshake is a GET");
        assert!(!is_websocket(&request(Method::GET, &[("upgrade", "websocket")])), "Connection must name it");
        let twice = [("connection", "upgrade"), ("upgrade", "websocket"), ("upgrade", "h2c")];
        assert!(!is_websocket(&request(Method::GET, &twice)), "one Upgrade field only");
        let mut http10 = request(Method::GET, &ws);
        *http10.version_mut() = http::Version::HTTP_10;
        assert!(!is_websocket(&http10));
    }

    #[test]
    fn a_backend_must_switch_to_websocket() {
        let response = |upgrade: &str| Response::builder().status(101).header(UPGRADE, upgrade).body(()).unwrap();
        assert!(accepts_websocket(&response("websocket")));
        assert!(!accepts_websocket(&response("h2c")));
        assert!(!accepts_websocket(&Response::builder().status(101).body(()).unwrap()));
    }
}
