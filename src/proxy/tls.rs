//! The TLS handshake of a connection on an HTTPS socket, bounded in time and counted.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::metrics::METRICS;
use crate::table::TlsSocket;

/// Completes the server side of the handshake within `timeout`; returns the stream and the
/// server name the client asked for (SNI), lower case.
pub async fn handshake<IO: AsyncRead + AsyncWrite + Unpin>(
    stream: IO,
    tls: &TlsSocket,
    timeout: Duration,
) -> std::io::Result<(TlsStream<IO>, Option<Box<str>>)> {
    let accepting = TlsAcceptor::from(std::sync::Arc::clone(&tls.config)).accept(stream);
    let outcome = match tokio::time::timeout(timeout, accepting).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(("error", error)),
        Err(_) => Err(("timeout", std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out"))),
    };
    match outcome {
        Ok(stream) => {
            METRICS.tls_handshakes.with_label_values(&["ok"]).inc();
            let sni = stream.get_ref().1.server_name().map(|name| name.to_ascii_lowercase().into_boxed_str());
            Ok((stream, sni))
        }
        Err((outcome, error)) => {
            METRICS.tls_handshakes.with_label_values(&[outcome]).inc();
            Err(error)
        }
    }
}
