//! Protocol upgrades (WebSocket and others): the 101 answer goes back to the client, then the
//! two connections are joined byte for byte until either side closes.

use http::Request;
use http::header::{CONNECTION, UPGRADE};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::balance::Selection;

/// An HTTP/1.1 request asking to switch protocols.
pub fn is_upgrade<B>(request: &Request<B>) -> bool {
    request.version() == http::Version::HTTP_11
        && request.headers().contains_key(UPGRADE)
        && request
            .headers()
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Joins the client's and the backend's upgraded connections in a task of their own. The
/// selection keeps the endpoint counted as busy while the tunnel is open.
pub fn splice(client: OnUpgrade, backend: OnUpgrade, selection: Selection) {
    tokio::spawn(async move {
        let (client, backend) = match tokio::try_join!(client, backend) {
            Ok(pair) => pair,
            Err(error) => {
                tracing::debug!(%error, "upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut backend = TokioIo::new(backend);
        if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut backend).await {
            tracing::debug!(%error, "upgraded connection ended with an error");
        }
        drop(selection);
    });
}
