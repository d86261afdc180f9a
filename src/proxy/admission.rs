//! Connection limits, checked at accept: a global one, so that the process keeps file
//! descriptors for its upstream connections, its admin endpoint and its configuration, and
//! one per client IP address, so that one client cannot take them all. A refused connection
//! is closed at once, before a byte is read.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Why a connection was refused (a bounded label of `gantry_connections_refused_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    MaxConnections,
    MaxConnectionsPerClient,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::MaxConnections => "max_connections",
            Refusal::MaxConnectionsPerClient => "max_connections_per_client",
        }
    }
}

/// Counts open client connections, in total and per client address.
pub struct Admission {
    max_total: usize,
    max_per_client: usize,
    total: AtomicUsize,
    /// Keyed by client addresses: the std hasher, whose keys a client cannot choose to collide.
    per_client: Mutex<HashMap<IpAddr, usize>>,
}

impl Admission {
    pub fn new(max_total: usize, max_per_client: usize) -> Self {
        Self { max_total, max_per_client, total: AtomicUsize::new(0), per_client: Mutex::default() }
    }

    /// A permit for one more connection from `client`, held until the connection closes.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Result<Permit, Refusal> {
        let client = client.to_canonical();
        if self.total.fetch_add(1, Ordering::Relaxed) >= self.max_total {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::MaxConnections);
        }
        let mut per_client = self.per_client.lock().unwrap_or_else(|e| e.into_inner());
        let count = per_client.entry(client).or_insert(0);
        if *count >= self.max_per_client {
            drop(per_client);
            self.total.fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::MaxConnectionsPerClient);
        }
        *count += 1;
        Ok(Permit { admission: Arc::clone(self), client })
    }

    /// Connections open now.
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

/// One admitted connection; dropping it gives the place back.
pub struct Permit {
    admission: Arc<Admission>,
    client: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut per_client = self.admission.per_client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = per_client.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                per_client.remove(&self.client);
            }
        }
        drop(per_client);
        self.admission.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Raises the soft limit on open files to the hard limit (as Go programs do at start), and
/// returns the limit in force.
pub fn raise_open_files_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(error) => {
                tracing::warn!(%error, soft, hard, "cannot raise the open files limit");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(error) => {
            tracing::warn!(%error, "cannot read the open files limit");
            1024
        }
    }
}

/// The default global limit: half the open files limit (each client connection may need an
/// upstream one), less a reserve for everything else.
pub fn default_max_connections(open_files: u64) -> usize {
    (open_files.saturating_sub(256) / 2).clamp(64, 1 << 20) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_has_its_own_share_and_all_share_the_total() {
        let admission = Arc::new(Admission::new(3, 2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = admission.admit(a).unwrap();
        let a2 = admission.admit(a).unwrap();
        assert_eq!(admission.admit(a).err(), Some(Refusal::MaxConnectionsPerClient));
        let b1 = admission.admit(b).unwrap();
        assert_eq!(admission.admit(b).err(), Some(Refusal::MaxConnections));
        assert_eq!(admission.open(), 3);
        drop(a1);
        let _b2 = admission.admit(b).unwrap();
        drop((a2, b1));
        assert_eq!(admission.open(), 1);
        assert_eq!(admission.per_client.lock().unwrap().len(), 1, "clients with no connection are forgotten");
    }

    #[test]
    fn an_ipv4_client_on_a_dual_stack_socket_is_one_client() {
        let admission = Arc::new(Admission::new(10, 1));
        let _v4 = admission.admit("192.0.2.1".parse().unwrap()).unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(admission.admit(mapped).err(), Some(Refusal::MaxConnectionsPerClient));
    }

    #[test]
    fn the_default_total_leaves_room_for_upstream_connections() {
        assert_eq!(default_max_connections(1024), 384);
        assert_eq!(default_max_connections(524_288), 262_016);
        assert_eq!(default_max_connections(100), 64);
    }
}
