//! TLS of a socket whose listeners are HTTPS: the rustls configuration the data plane
//! handshakes with, and which listener a server name belongs to.
//!
//! The certificate is chosen by SNI, from the most specific listener hostname that covers it
//! (exact, then the longest wildcard, then a listener without hostname); among that listener's
//! certificates, the first whose key the client can verify. A client that sends no SNI, or an
//! SNI that no listener covers, gets the certificate of a listener without hostname if there is
//! one; otherwise the handshake fails (`unrecognized_name`), as no certificate is right for it.

use std::sync::{Arc, LazyLock};

use rustls::ServerConfig;
use rustls::server::{ClientHello, ProducesTickets, ResolvesServerCert, StoresServerSessions};
use rustls::sign::CertifiedKey;
use serde::{Serialize, Serializer};

use super::hosts::{HostKey, HostMap};

/// Session resumption state shared by every configuration, so that swapping in a new table
/// does not make every client do a full handshake again.
static SESSIONS: LazyLock<Arc<dyn StoresServerSessions>> =
    LazyLock::new(|| rustls::server::ServerSessionMemoryCache::new(64 * 1024));
static TICKETS: LazyLock<Option<Arc<dyn ProducesTickets>>> =
    LazyLock::new(|| rustls::crypto::ring::Ticketer::new().ok());

pub struct TlsSocket {
    pub config: Arc<ServerConfig>,
    /// Listener hostnames on this socket, to the listener's position in `hostnames`.
    listeners: HostMap<usize>,
    hostnames: Vec<HostKey>,
}

impl TlsSocket {
    /// `listeners`: each HTTPS listener's hostname and certificates.
    pub fn new(listeners: Vec<(HostKey, Vec<Arc<CertifiedKey>>)>) -> Result<Self, rustls::Error> {
        let hostnames: Vec<HostKey> = listeners.iter().map(|(h, _)| h.clone()).collect();
        let resolver = SniResolver { certificates: HostMap::new(listeners) };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config.session_storage = Arc::clone(&SESSIONS);
        if let Some(ticketer) = TICKETS.as_ref() {
            config.ticketer = Arc::clone(ticketer);
        }
        let positions = hostnames.iter().cloned().enumerate().map(|(i, h)| (h, i));
        Ok(Self { config: Arc::new(config), listeners: HostMap::new(positions), hostnames })
    }

    /// The listener a server name (SNI or Host; empty for none) belongs to.
    pub fn listener_of(&self, name: &str) -> Option<usize> {
        self.listeners.lookup(name).copied()
    }
}

impl std::fmt::Debug for TlsSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSocket").field("listeners", &self.hostnames).finish_non_exhaustive()
    }
}

/// `/config` shows which hostnames have certificates, never the certificates or keys.
impl Serialize for TlsSocket {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.hostnames.serialize(serializer)
    }
}

#[derive(Debug)]
struct SniResolver {
    certificates: HostMap<Vec<Arc<CertifiedKey>>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let candidates = self.certificates.lookup(hello.server_name().unwrap_or(""))?;
        let schemes = hello.signature_schemes();
        candidates.iter().find(|c| c.key.choose_scheme(schemes).is_some()).or(candidates.first()).cloned()
    }
}
