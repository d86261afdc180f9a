//! Prometheus metrics, registered once. Labels are bounded: route and backend names come from
//! the configuration, status codes are folded into classes.

use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    /// Requests by route (`namespace/name`, or `none` when nothing matched) and status class.
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub active_connections: IntGauge,
    /// Client connections closed at accept, by the limit they would have passed.
    pub connections_refused: IntCounterVec,
    /// Client connections Gantry closed because a deadline passed, by which.
    pub connections_closed: IntCounterVec,
    /// Requests refused for what the client sent, by reason.
    pub requests_refused: IntCounterVec,
    pub upstream_requests: IntCounterVec,
    pub upstream_connect_errors: IntCounterVec,
    pub upstream_in_flight: IntGaugeVec,
    /// Connections opened to endpoints; against the requests, it shows how well they are reused.
    pub upstream_connections: IntCounter,
    pub endpoint_ejections: IntCounterVec,
    /// Requests a backend turned away before any endpoint: `overloaded` or `no_endpoint`.
    pub upstream_rejected: IntCounterVec,
    pub config_reloads: IntCounter,
    pub config_reload_errors: IntCounter,
    pub compile_duration: Histogram,
    /// Files or objects rejected now, whose last good version keeps serving.
    pub rejected_inputs: IntGauge,
    /// Unix time of the last route table applied.
    pub last_apply: IntGauge,
    pub table_generation: IntGauge,
    /// Kubernetes mode: watch events and watch errors by kind.
    pub reflector_events: IntCounterVec,
    pub reflector_errors: IntCounterVec,
    /// Kubernetes mode: from a watch event to the table with it being served.
    pub convergence: Histogram,
    /// Kubernetes mode: status patches by kind and result.
    pub status_writes: IntCounterVec,
    pub infrastructure_writes: IntCounterVec,
    pub tls_handshakes: IntCounterVec,
    /// 1 while this replica holds the status-writer Lease.
    pub leader: IntGauge,
}

/// The process-wide metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let latency_buckets =
            vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        let m = Metrics {
            requests: IntCounterVec::new(
                Opts::new("gantry_requests_total", "Requests served, by route and status class"),
                &["route", "code_class"],
            )
            .expect("valid metric"),
            request_duration: HistogramVec::new(
                HistogramOpts::new("gantry_request_duration_seconds", "Time from request to response headers")
                    .buckets(latency_buckets),
                &["route"],
            )
            .expect("valid metric"),
            active_connections: IntGauge::new(
                "gantry_active_connections",
                "Downstream connections open now (WebSocket tunnels included)",
            )
            .expect("valid metric"),
            connections_refused: IntCounterVec::new(
                Opts::new(
                    "gantry_connections_refused_total",
                    "Client connections closed at accept: max_connections or max_connections_per_client",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            connections_closed: IntCounterVec::new(
                Opts::new(
                    "gantry_connections_closed_total",
                    "Client connections closed by a deadline: header_timeout, idle_timeout, send_timeout, tunnel_idle_timeout",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            requests_refused: IntCounterVec::new(
                Opts::new("gantry_requests_refused_total", "Requests refused for what the client sent, by reason"),
                &["reason"],
            )
            .expect("valid metric"),
            upstream_requests: IntCounterVec::new(
                Opts::new(
                    "gantry_upstream_requests_total",
                    "Requests sent to endpoints (balancer picks), by backend, endpoint and outcome",
                ),
                &["backend", "endpoint", "outcome"],
            )
            .expect("valid metric"),
            upstream_connect_errors: IntCounterVec::new(
                Opts::new("gantry_upstream_connect_errors_total", "Connections to endpoints that failed"),
                &["backend"],
            )
            .expect("valid metric"),
            upstream_connections: IntCounter::new(
                "gantry_upstream_connections_total",
                "Connections opened to endpoints (each worker thread keeps its own)",
            )
            .expect("valid metric"),
            upstream_in_flight: IntGaugeVec::new(
                Opts::new("gantry_upstream_in_flight_requests", "Requests waiting on a backend now"),
                &["backend"],
            )
            .expect("valid metric"),
            endpoint_ejections: IntCounterVec::new(
                Opts::new("gantry_endpoint_ejections_total", "Endpoints taken out of rotation by passive health"),
                &["backend", "endpoint"],
            )
            .expect("valid metric"),
            upstream_rejected: IntCounterVec::new(
                Opts::new("gantry_upstream_rejected_total", "Requests a backend turned away, by reason"),
                &["backend", "reason"],
            )
            .expect("valid metric"),
            config_reloads: IntCounter::new("gantry_config_reloads_total", "Route tables compiled and swapped in")
                .expect("valid metric"),
            config_reload_errors: IntCounter::new(
                "gantry_config_reload_errors_total",
                "Configuration loads that failed (the last good configuration kept serving)",
            )
            .expect("valid metric"),
            compile_duration: Histogram::with_opts(
                HistogramOpts::new("gantry_compile_duration_seconds", "Time to compile a route table")
                    .buckets(vec![0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]),
            )
            .expect("valid metric"),
            rejected_inputs: IntGauge::new(
                "gantry_config_rejected_inputs",
                "Configuration files or objects rejected now (their last good version keeps serving)",
            )
            .expect("valid metric"),
            last_apply: IntGauge::new(
                "gantry_config_last_apply_timestamp_seconds",
                "Unix time at which the last route table was applied",
            )
            .expect("valid metric"),
            table_generation: IntGauge::new("gantry_route_table_generation", "Route tables swapped in since start")
                .expect("valid metric"),
            reflector_events: IntCounterVec::new(
                Opts::new("gantry_reflector_events_total", "Watch events received from the API server, by kind"),
                &["kind"],
            )
            .expect("valid metric"),
            reflector_errors: IntCounterVec::new(
                Opts::new("gantry_reflector_errors_total", "Watch failures (retried with backoff), by kind"),
                &["kind"],
            )
            .expect("valid metric"),
            convergence: Histogram::with_opts(
                HistogramOpts::new(
                    "gantry_config_convergence_seconds",
                    "From an object's change arriving to the table with it being served",
                )
                .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            )
            .expect("valid metric"),
            status_writes: IntCounterVec::new(
                Opts::new("gantry_status_writes_total", "Status patches sent to the API server, by kind and result"),
                &["kind", "result"],
            )
            .expect("valid metric"),
            infrastructure_writes: IntCounterVec::new(
                Opts::new(
                    "gantry_infrastructure_writes_total",
                    "Services and EndpointSlices made for Gateways: applied, deleted or failed, by kind",
                ),
                &["kind", "result"],
            )
            .expect("valid metric"),
            tls_handshakes: IntCounterVec::new(
                Opts::new(
                    "gantry_tls_handshakes_total",
                    "TLS handshakes on HTTPS listeners, by outcome (ok, error, timeout)",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            leader: IntGauge::new("gantry_leader", "1 while this replica writes status (holds the Lease)")
                .expect("valid metric"),
            registry,
        };
        let r = &m.registry;
        for c in [
            Box::new(m.requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.request_duration.clone()),
            Box::new(m.active_connections.clone()),
            Box::new(m.connections_refused.clone()),
            Box::new(m.connections_closed.clone()),
            Box::new(m.requests_refused.clone()),
            Box::new(m.upstream_requests.clone()),
            Box::new(m.upstream_connect_errors.clone()),
            Box::new(m.upstream_in_flight.clone()),
            Box::new(m.upstream_connections.clone()),
            Box::new(m.endpoint_ejections.clone()),
            Box::new(m.upstream_rejected.clone()),
            Box::new(m.config_reloads.clone()),
            Box::new(m.config_reload_errors.clone()),
            Box::new(m.compile_duration.clone()),
            Box::new(m.rejected_inputs.clone()),
            Box::new(m.last_apply.clone()),
            Box::new(m.table_generation.clone()),
            Box::new(m.reflector_events.clone()),
            Box::new(m.reflector_errors.clone()),
            Box::new(m.convergence.clone()),
            Box::new(m.status_writes.clone()),
            Box::new(m.infrastructure_writes.clone()),
            Box::new(m.tls_handshakes.clone()),
            Box::new(m.leader.clone()),
        ] {
            r.register(c).expect("metric registered once");
        }
        m
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// `2xx`, `4xx`, ...: the bounded label for a status code.
const CODE_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn code_class_index(status: http::StatusCode) -> usize {
    match status.as_u16() {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

/// The handles one route rule counts its requests with, looked up in the registry on first
/// use: a request is then counted without hashing its label values.
#[derive(Debug, Default)]
pub struct RouteMetrics {
    requests: [OnceLock<IntCounter>; CODE_CLASSES.len()],
    duration: OnceLock<Histogram>,
}

impl RouteMetrics {
    /// Counts one request of `route` (the `route` label) that got `status` after `elapsed`.
    pub fn record(&self, route: &str, status: http::StatusCode, elapsed: Duration) {
        let class = code_class_index(status);
        self.requests[class].get_or_init(|| METRICS.requests.with_label_values(&[route, CODE_CLASSES[class]])).inc();
        self.duration
            .get_or_init(|| METRICS.request_duration.with_label_values(&[route]))
            .observe(elapsed.as_secs_f64());
    }
}

/// The handles of one backend's per-request metrics, looked up on first use.
#[derive(Debug, Default)]
pub struct BackendMetrics {
    in_flight: OnceLock<IntGauge>,
    /// `upstream_requests{outcome="response"}` by endpoint index.
    responses: Box<[OnceLock<IntCounter>]>,
}

impl BackendMetrics {
    pub fn new(endpoints: usize) -> Self {
        Self { in_flight: OnceLock::new(), responses: (0..endpoints).map(|_| OnceLock::new()).collect() }
    }

    pub fn in_flight(&self, backend: &str) -> &IntGauge {
        self.in_flight.get_or_init(|| METRICS.upstream_in_flight.with_label_values(&[backend]))
    }

    /// Counts a response from endpoint `index` (labelled `endpoint`); other outcomes are rare
    /// and go through `METRICS.upstream_requests` directly.
    pub fn response(&self, backend: &str, index: usize, endpoint: &str) {
        match self.responses.get(index) {
            Some(cell) => {
                cell.get_or_init(|| METRICS.upstream_requests.with_label_values(&[backend, endpoint, "response"])).inc()
            }
            None => METRICS.upstream_requests.with_label_values(&[backend, endpoint, "response"]).inc(),
        }
    }
}
