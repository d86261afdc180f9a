//! One client connection's state, from accept to close: what it is doing now (waiting for a
//! request's head, idle between requests, busy, or upgraded to a tunnel), which deadline that
//! puts on it, and its place among the worker's open connections, which a drain walks.
//!
//! Deadlines are lazy: the request path only writes a phase and a time into atomics (all on the
//! worker's one thread, so they are never contended); the connection's supervisor
//! (`supervise.rs`) reads them when its single timer fires and re-arms it if the connection
//! moved on meanwhile. No timer is set or reset per request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;
use http::HeaderValue;
use tokio::sync::Notify;

use super::admission::Permit;
use crate::metrics::METRICS;

/// How long a connection may spend in each phase.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// From accept, or from the first byte of a later HTTP/1.1 request, to its complete head.
    pub header: Duration,
    /// Between requests: from the end of one response to the start of the next request.
    pub idle: Duration,
    /// A write to the client that cannot proceed (the client does not read) for this long.
    pub send: Duration,
    /// An upgraded connection (WebSocket) with no byte either way for this long.
    pub tunnel_idle: Duration,
}

/// What the connection is doing; decides which deadline applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    /// Waiting for a request's head: the first request, or an HTTP/1.1 request whose first
    /// bytes arrived.
    Head = 0,
    /// Between HTTP/1.1 requests; the next byte read starts a head.
    Idle = 1,
    /// Between HTTP/2 requests; frames (pings, window updates) keep arriving while idle, so
    /// reading does not start a head.
    IdleMultiplexed = 2,
    /// At least one request in flight.
    Busy = 3,
    /// Switched protocols (a WebSocket); the tunnel's idle deadline applies.
    Tunnel = 4,
}

impl Phase {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => Phase::Head,
            1 => Phase::Idle,
            2 => Phase::IdleMultiplexed,
            3 => Phase::Busy,
            _ => Phase::Tunnel,
        }
    }
}

/// The deadline a connection passed when Gantry closed it (a bounded label of
/// `gantry_connections_closed_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deadline {
    Header,
    Idle,
    Send,
    TunnelIdle,
}

impl Deadline {
    pub fn label(self) -> &'static str {
        match self {
            Deadline::Header => "header_timeout",
            Deadline::Idle => "idle_timeout",
            Deadline::Send => "send_timeout",
            Deadline::TunnelIdle => "tunnel_idle_timeout",
        }
    }
}

/// What the supervisor does when its timer fires.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Close(Deadline),
    /// Look again at this time (milliseconds of [`now_ms`]).
    RecheckAt(u64),
}

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Milliseconds since the process's clock epoch, at least 1 (0 means "never" below).
pub fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64 + 1
}

/// The `Instant` of a time in milliseconds of [`now_ms`].
pub fn instant_of(ms: u64) -> tokio::time::Instant {
    (*EPOCH + Duration::from_millis(ms.saturating_sub(1))).into()
}

/// Shared by the connection's task, its I/O, its requests and its tunnel, if any.
pub struct ConnState {
    phase: AtomicU8,
    in_flight: AtomicU32,
    /// When the current phase began (ms of `now_ms`).
    since: AtomicU64,
    /// Reads and writes that moved bytes: a tunnel with no change is idle.
    activity: AtomicU64,
    /// When a write to the client started waiting for the client to read; 0 when none waits.
    write_blocked_since: AtomicU64,
    draining: AtomicBool,
    /// The task that drives the connection (or, once upgraded, its tunnel): woken to drain.
    pub(super) waker: AtomicWaker,
    _open: Open,
}

impl ConnState {
    pub fn draining(&self) -> bool {
        self.draining.load(Relaxed)
    }

    /// Bytes came from the client.
    pub fn on_read(&self) {
        self.activity.store(self.activity.load(Relaxed).wrapping_add(1), Relaxed);
        if self.phase.load(Relaxed) == Phase::Idle as u8 {
            self.enter(Phase::Head);
        }
    }

    /// A write to the client went through.
    pub fn on_write(&self) {
        self.activity.store(self.activity.load(Relaxed).wrapping_add(1), Relaxed);
        if self.write_blocked_since.load(Relaxed) != 0 {
            self.write_blocked_since.store(0, Relaxed);
        }
    }

    /// A write to the client has to wait for the client to read.
    pub fn on_write_blocked(&self) {
        if self.write_blocked_since.load(Relaxed) == 0 {
            self.write_blocked_since.store(now_ms(), Relaxed);
        }
    }

    /// A request arrived; the connection is busy until the returned guard (kept with the
    /// response body) is dropped.
    pub fn request_started(self: &Arc<Self>, multiplexed: bool) -> RequestGuard {
        self.in_flight.store(self.in_flight.load(Relaxed) + 1, Relaxed);
        if self.phase.load(Relaxed) != Phase::Tunnel as u8 {
            self.phase.store(Phase::Busy as u8, Relaxed);
        }
        RequestGuard { state: Arc::clone(self), multiplexed }
    }

    /// The connection switched protocols: from now on it is a tunnel.
    pub fn upgraded(&self) {
        self.enter(Phase::Tunnel);
    }

    fn enter(&self, phase: Phase) {
        self.phase.store(phase as u8, Relaxed);
        self.since.store(now_ms(), Relaxed);
    }

    /// Whether the connection overran its phase's deadline at `now`; if not, when to look
    /// again. `seen` is the supervisor's memory of the tunnel's activity: (count, when seen).
    pub fn check(&self, now: u64, timeouts: &Timeouts, seen: &mut (u64, u64)) -> Verdict {
        let phase = Phase::from_u8(self.phase.load(Relaxed));
        let since = self.since.load(Relaxed);
        let after = |start: u64, limit: Duration| start.saturating_add(limit.as_millis() as u64);
        let stalled = match self.write_blocked_since.load(Relaxed) {
            0 => None,
            blocked => Some(after(blocked, timeouts.send)),
        };
        if let Some(deadline) = stalled
            && now >= deadline
            && matches!(phase, Phase::Busy | Phase::Tunnel)
        {
            return Verdict::Close(Deadline::Send);
        }
        let (deadline, reason) = match phase {
            Phase::Head => (after(since, timeouts.header), Deadline::Header),
            Phase::Idle | Phase::IdleMultiplexed => (after(since, timeouts.idle), Deadline::Idle),
            Phase::Busy => {
                // Requests bound themselves (route timeouts, the body progress timeout); only
                // a client that stops reading is looked after here.
                return Verdict::RecheckAt(stalled.unwrap_or_else(|| after(now, timeouts.send)));
            }
            Phase::Tunnel => {
                let activity = self.activity.load(Relaxed);
                if activity != seen.0 || seen.1 == 0 {
                    *seen = (activity, now);
                }
                // Looked at four times per period: closed between 1 and 1.25 periods of silence.
                let quarter = after(now, timeouts.tunnel_idle / 4);
                let idle_deadline = after(seen.1, timeouts.tunnel_idle);
                if now >= idle_deadline {
                    return Verdict::Close(Deadline::TunnelIdle);
                }
                let next = idle_deadline.min(quarter).min(stalled.unwrap_or(u64::MAX));
                return Verdict::RecheckAt(next);
            }
        };
        if now >= deadline { Verdict::Close(reason) } else { Verdict::RecheckAt(deadline) }
    }
}

/// Keeps the connection busy while a response is being sent.
pub struct RequestGuard {
    state: Arc<ConnState>,
    multiplexed: bool,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let state = &self.state;
        let left = state.in_flight.load(Relaxed).saturating_sub(1);
        state.in_flight.store(left, Relaxed);
        if left == 0 && state.phase.load(Relaxed) == Phase::Busy as u8 {
            state.enter(if self.multiplexed { Phase::IdleMultiplexed } else { Phase::Idle });
        }
    }
}

/// What every request on a connection knows about it.
#[derive(Clone)]
pub struct Connection {
    /// The table's socket address this connection was accepted on.
    pub socket: SocketAddr,
    pub peer: SocketAddr,
    /// The peer's IP address as text, made once per connection: `X-Forwarded-For`.
    pub peer_ip: HeaderValue,
    /// The peer is a proxy whose forwarding headers are believed.
    pub trusted: bool,
    pub state: Arc<ConnState>,
    /// Set when the connection came over TLS: the server name it asked for (SNI), if any.
    pub tls: Option<Option<Arc<str>>>,
}

impl Connection {
    pub fn new(socket: SocketAddr, peer: SocketAddr, trusted: bool, state: Arc<ConnState>) -> Self {
        let peer_ip =
            HeaderValue::try_from(peer.ip().to_canonical().to_string()).expect("an IP address is a valid header value");
        Self { socket, peer, peer_ip, trusted, state, tls: None }
    }

    /// The connection came over TLS, asking for server name `sni`.
    pub fn with_tls(mut self, sni: Option<Box<str>>) -> Self {
        self.tls = Some(sni.map(Arc::from));
        self
    }

    /// `https` over TLS, else `http`: what `X-Forwarded-Proto` and redirects say.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

/// A worker's open connections (tunnels included), for draining them.
#[derive(Default)]
pub struct Registry {
    open: Mutex<HashMap<u64, Weak<ConnState>>>,
    next_id: AtomicU64,
    draining: AtomicBool,
    drained: Notify,
}

/// A connection's membership in its registry, its connection permit and its share of the
/// `gantry_active_connections` gauge, all given back when its last user is gone.
struct Open {
    registry: Arc<Registry>,
    id: u64,
    _permit: Permit,
}

impl Drop for Open {
    fn drop(&mut self) {
        METRICS.active_connections.dec();
        let mut open = self.registry.open.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(&self.id);
        if open.is_empty() && self.registry.draining.load(Relaxed) {
            self.registry.drained.notify_waiters();
        }
    }
}

impl Registry {
    /// A newly accepted connection, waiting for its first request's head.
    pub fn open(self: &Arc<Self>, permit: Permit) -> Arc<ConnState> {
        let id = self.next_id.fetch_add(1, Relaxed);
        METRICS.active_connections.inc();
        let state = Arc::new(ConnState {
            phase: AtomicU8::new(Phase::Head as u8),
            in_flight: AtomicU32::new(0),
            since: AtomicU64::new(now_ms()),
            activity: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(0),
            draining: AtomicBool::new(self.draining.load(Relaxed)),
            waker: AtomicWaker::new(),
            _open: Open { registry: Arc::clone(self), id, _permit: permit },
        });
        self.open.lock().unwrap_or_else(|e| e.into_inner()).insert(id, Arc::downgrade(&state));
        state
    }

    /// Asks every open connection to finish what it is doing and close (tunnels run on until
    /// their ends close them), and returns once all are closed.
    pub async fn drain(&self) {
        self.draining.store(true, Relaxed);
        let drained = self.drained.notified();
        tokio::pin!(drained);
        drained.as_mut().enable();
        let open: Vec<Arc<ConnState>> = {
            let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            if open.is_empty() {
                return;
            }
            open.values().filter_map(Weak::upgrade).collect()
        };
        for state in open {
            state.draining.store(true, Relaxed);
            state.waker.wake();
        }
        drained.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::admission::Admission;

    const TIMEOUTS: Timeouts = Timeouts {
        header: Duration::from_secs(10),
        idle: Duration::from_secs(60),
        send: Duration::from_secs(30),
        tunnel_idle: Duration::from_secs(300),
    };

    fn state() -> Arc<ConnState> {
        let admission = Arc::new(Admission::new(10, 10));
        let permit = admission.admit("192.0.2.1".parse().unwrap()).unwrap();
        Arc::new(Registry::default()).open(permit)
    }

    fn check(state: &ConnState, at: u64) -> Verdict {
        state.check(at, &TIMEOUTS, &mut (0, 0))
    }

    #[test]
    fn the_first_request_must_arrive_within_the_header_timeout() {
        let s = state();
        let start = s.since.load(Relaxed);
        assert_eq!(check(&s, start + 1), Verdict::RecheckAt(start + 10_000));
        assert_eq!(check(&s, start + 10_000), Verdict::Close(Deadline::Header));
    }

    #[test]
    fn a_connection_between_requests_has_the_idle_timeout_until_a_byte_arrives() {
        let s = state();
        drop(s.request_started(false));
        let idle_since = s.since.load(Relaxed);
        assert_eq!(check(&s, idle_since), Verdict::RecheckAt(idle_since + 60_000));
        s.on_read();
        let head_since = s.since.load(Relaxed);
        assert_eq!(check(&s, head_since), Verdict::RecheckAt(head_since + 10_000), "a head started");
    }

    #[test]
    fn http2_frames_between_requests_do_not_start_a_head() {
        let s = state();
        drop(s.request_started(true));
        s.on_read();
        let since = s.since.load(Relaxed);
        assert_eq!(check(&s, since), Verdict::RecheckAt(since + 60_000));
    }

    #[test]
    fn a_busy_connection_is_closed_only_when_the_client_stops_reading() {
        let s = state();
        let guard = s.request_started(false);
        let now = now_ms();
        assert_eq!(check(&s, now + 3_600_000), Verdict::RecheckAt(now + 3_600_000 + 30_000));
        s.on_write_blocked();
        let blocked = s.write_blocked_since.load(Relaxed);
        assert_eq!(check(&s, blocked + 29_999), Verdict::RecheckAt(blocked + 30_000));
        assert_eq!(check(&s, blocked + 30_000), Verdict::Close(Deadline::Send));
        s.on_write();
        assert!(matches!(check(&s, blocked + 30_000), Verdict::RecheckAt(_)));
        drop(guard);
    }

    #[test]
    fn a_tunnel_is_closed_after_a_silent_period() {
        let s = state();
        let _guard = s.request_started(false);
        s.upgraded();
        let mut seen = (0, 0);
        let t0 = now_ms();
        assert!(matches!(s.check(t0, &TIMEOUTS, &mut seen), Verdict::RecheckAt(_)));
        s.on_read();
        assert!(matches!(s.check(t0 + 200_000, &TIMEOUTS, &mut seen), Verdict::RecheckAt(_)), "activity seen");
        assert!(matches!(s.check(t0 + 499_999, &TIMEOUTS, &mut seen), Verdict::RecheckAt(_)));
        assert_eq!(s.check(t0 + 500_000, &TIMEOUTS, &mut seen), Verdict::Close(Deadline::TunnelIdle));
    }

    #[tokio::test]
    async fn a_drain_waits_for_every_connection_and_tunnel() {
        let admission = Arc::new(Admission::new(10, 10));
        let registry = Arc::new(Registry::default());
        let a = registry.open(admission.admit("192.0.2.1".parse().unwrap()).unwrap());
        let tunnel = Arc::clone(&a);
        let drain = tokio::spawn({
            let registry = Arc::clone(&registry);
            async move { registry.drain().await }
        });
        tokio::task::yield_now().await;
        assert!(a.draining());
        drop(a);
        tokio::task::yield_now().await;
        assert!(!drain.is_finished(), "the tunnel still holds the connection open");
        drop(tunnel);
        tokio::time::timeout(Duration::from_secs(1), drain).await.unwrap().unwrap();
        assert_eq!(admission.open(), 0, "the permit was given back");
    }
}
