//! Black-box tests of how the gateway behaves in operation: reloads, bad input, upgrades,
//! HTTP/2, sockets, shutdown and the admin endpoint. Real `gantry` processes, real backends.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use support::*;

fn route(name: &str, path: &str, backend: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  parentRefs: [{{name: web}}]\n  rules:\n    - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]\n      backendRefs: [{{name: {backend}, port: 80}}]\n---\n"
    )
}

/// Gateway on one port, echo backends `a` and `b`, and the given routes.
struct Setup {
    gateway: Gateway,
    port: u16,
    base: String,
    _a: Echo,
    _b: Echo,
}

fn setup(routes: &str, extra_args: &[&str]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let a = echo(dir.path(), "a");
    let b = echo(dir.path(), "b");
    let port = free_port();
    let base = format!(
        "{}{}{}",
        gateway_yaml(&[port]),
        service_yaml("default", "a", &[a.address]),
        service_yaml("default", "b", &[b.address])
    );
    let gateway = Gateway::start_with(&format!("{base}{routes}"), extra_args);
    std::mem::forget(dir);
    Setup { gateway, port, base, _a: a, _b: b }
}

impl Setup {
    fn address(&self) -> SocketAddr {
        format!("127.0.0.1:{}", self.port).parse().unwrap()
    }

    fn get(&self, path: &str) -> Reply {
        http_get(&self.gateway.url(self.port, path))
    }
}

#[test]
fn a_rewritten_file_goes_live_within_a_second() {
    let s = setup(&route("r", "/", "a"), &[]);
    assert_eq!(s.get("/").backend(), "a");
    s.gateway.write_config(&format!("{}{}", s.base, route("r", "/", "b")));
    let written = Instant::now();
    wait_for("the new route", Duration::from_secs(1), || (s.get("/").backend() == "b").then_some(()));
    println!("file change to first request on the new route: {:?}", written.elapsed());
}

#[test]
fn a_broken_file_keeps_the_last_good_table_and_says_why() {
    let s = setup(&route("r", "/", "a"), &[]);
    let generation = s.gateway.generation();
    std::fs::write(s.gateway.config_file(), "apiVersion: v1\nkind: [unclosed").unwrap();
    s.gateway.wait_generation_after(generation);
    assert_eq!(s.get("/").backend(), "a", "the last good table keeps serving");
    let config = s.gateway.config();
    let errors = config["report"]["source_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0]["file"].as_str().unwrap().ends_with("config.yaml"));
    assert!(metric(&s.gateway.metrics(), "gantry_config_reload_errors_total") >= 1.0);
    assert_eq!(metric(&s.gateway.metrics(), "gantry_config_rejected_inputs"), 1.0);
    assert!(s.gateway.process.log_text().contains("configuration file rejected"));

    let generation = s.gateway.generation();
    s.gateway.write_config(&format!("{}{}", s.base, route("r", "/", "b")));
    s.gateway.wait_generation_after(generation);
    assert_eq!(s.get("/").backend(), "b");
    assert!(s.gateway.config()["report"]["source_errors"].as_array().unwrap().is_empty());
    assert_eq!(metric(&s.gateway.metrics(), "gantry_config_rejected_inputs"), 0.0);
}

#[test]
fn an_invalid_route_is_reported_and_leaves_valid_routes_alone() {
    let bad = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: bad, namespace: default}\nspec:\n  parentRefs: [{name: web}]\n  rules:\n    - matches: [{path: {type: RegularExpression, value: '/(unclosed'}}]\n      backendRefs: [{name: b, port: 80}]\n---\n";
    let s = setup(&format!("{}{bad}", route("good", "/good", "a")), &[]);
    assert_eq!(s.get("/good").backend(), "a");
    assert_eq!(s.get("/(unclosed").status, 404);
    let config = s.gateway.config();
    let accepted = config["report"]["status"]["http_routes"]["default/bad"]["parents"][0]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Accepted")
        .cloned()
        .unwrap();
    assert_eq!(accepted["status"], "False");
    assert_eq!(accepted["reason"], "UnsupportedValue");
    assert!(config["report"]["status"]["problems"].to_string().contains("unclosed"));
}

#[test]
fn oversized_and_malformed_requests_get_the_right_4xx() {
    let s = setup(&route("r", "/", "a"), &[]);
    let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(61 * 1024));
    assert!(raw(s.address(), big.as_bytes(), Duration::from_secs(5)).starts_with("HTTP/1.1 431"));
    let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    assert!(raw(s.address(), many.as_bytes(), Duration::from_secs(5)).starts_with("HTTP/1.1 431"));
    let under: String = (0..90).map(|i| format!("X-H{i}: v\r\n")).collect();
    let under = format!("GET / HTTP/1.1\r\nHost: x\r\n{under}Connection: close\r\n\r\n");
    assert!(raw(s.address(), under.as_bytes(), Duration::from_secs(5)).starts_with("HTTP/1.1 200"));
    // Not an HTTP/1.x request line: no HTTP/1.1 page a client of another protocol would misread.
    assert_eq!(raw(s.address(), b"NOT HTTP AT ALL\r\n\r\n", Duration::from_secs(5)), "");
    let two_lengths = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!";
    assert!(raw(s.address(), two_lengths, Duration::from_secs(5)).starts_with("HTTP/1.1 400"));
    let not_chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n";
    assert!(raw(s.address(), not_chunked, Duration::from_secs(5)).starts_with("HTTP/1.1 400"));
    let bad_escape = b"GET /a%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert!(raw(s.address(), bad_escape, Duration::from_secs(5)).starts_with("HTTP/1.1 400"));
}

/// RFC 9112 section 6.1: a request with both Transfer-Encoding and Content-Length is read by
/// Transfer-Encoding alone, its Content-Length is not forwarded, and the connection is closed
/// after the answer, so that bytes the two framings disagree on can never become a request.
#[test]
fn conflicting_framing_cannot_smuggle_a_second_request() {
    let s = setup(&route("r", "/", "a"), &[]);
    let smuggle = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let reply = raw(s.address(), smuggle, Duration::from_secs(5));
    assert_eq!(reply.matches("HTTP/1.1 ").count(), 1, "one answer, then the connection closed: {reply}");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let body = &reply[reply.find("\r\n\r\n").unwrap() + 4..];
    let echoed: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(echoed["body_bytes"], 0);
    assert!(echoed["headers"].get("content-length").is_none(), "{echoed}");
    assert!(!reply.contains("smuggled"));
}

#[test]
fn dot_segments_and_encoded_dots_cannot_bypass_a_route() {
    let s = setup(&format!("{}{}", route("public", "/public", "a"), route("admin", "/admin", "b")), &[]);
    for path in ["/public/../admin", "/public/%2e%2e/admin", "/public/.%2E/admin/", "//admin"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let reply = raw(s.address(), request.as_bytes(), Duration::from_secs(5));
        assert!(reply.starts_with("HTTP/1.1 200"), "{path}: {reply}");
        assert!(reply.contains("x-backend: b"), "{path} is the admin route: {reply}");
    }
}

#[test]
fn an_absolute_form_request_is_routed_by_its_uri_host() {
    let hosts = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: abs, namespace: default}\nspec:\n  parentRefs: [{name: web}]\n  hostnames: [abs.example]\n  rules: [{backendRefs: [{name: b, port: 80}]}]\n---\n";
    let s = setup(&format!("{}{hosts}", route("any", "/", "a")), &[]);
    let request = b"GET http://abs.example/x HTTP/1.1\r\nHost: abs.example\r\nConnection: close\r\n\r\n";
    let reply = raw(s.address(), request, Duration::from_secs(5));
    assert!(reply.starts_with("HTTP/1.1 200") && reply.contains("x-backend: b"), "{reply}");
    // A Host header that names another host is a request two parties could route apart.
    let request = b"GET http://abs.example/x HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n";
    let reply = raw(s.address(), request, Duration::from_secs(5));
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
}

#[test]
fn a_client_too_slow_to_send_its_headers_is_cut_off() {
    let s = setup(&route("r", "/", "a"), &["--header-read-timeout", "1s"]);
    let started = Instant::now();
    // Never finishes its headers.
    let reply = raw(s.address(), b"GET / HTTP/1.1\r\nHost: x\r\n", Duration::from_secs(8));
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(5), "the connection was closed after {waited:?}");
    assert!(!reply.contains("200"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrades_pass_through_both_ways() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend_address = backend.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = backend.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
                while let Some(Ok(message)) = ws.next().await {
                    if let Message::Text(text) = message {
                        let _ = ws.send(Message::text(format!("echo: {text}"))).await;
                    }
                }
            });
        }
    });
    let port = free_port();
    let config = format!(
        "{}{}{}",
        gateway_yaml(&[port]),
        service_yaml("default", "ws", &[backend_address]),
        route("ws", "/", "ws")
    );
    let gateway = tokio::task::spawn_blocking(move || Gateway::start(&config)).await.unwrap();
    let (mut ws, response) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/chat")).await.unwrap();
    assert_eq!(response.status(), 101);
    for i in 0..3 {
        ws.send(Message::text(format!("hello {i}"))).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(answer.into_text().unwrap().as_str(), format!("echo: hello {i}"));
    }
    ws.close(None).await.unwrap();
    drop(gateway);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_clients_are_served_and_h2c_backends_get_http2() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let dir = tempfile::tempdir().unwrap();
    let plain = echo(dir.path(), "plain");
    let h2 = echo(dir.path(), "h2");
    let port = free_port();
    let config = format!(
        "{}{}{}{}{}",
        gateway_yaml(&[port]),
        service_yaml("default", "plain", &[plain.address]),
        service_yaml_with("default", "h2", &[h2.address], Some("kubernetes.io/h2c")),
        route("plain", "/plain", "plain"),
        route("h2", "/h2", "h2")
    );
    let gateway = tokio::task::spawn_blocking(move || Gateway::start(&config)).await.unwrap();
    let client = Client::builder(TokioExecutor::new()).http2_only(true).build_http::<Empty<bytes::Bytes>>();
    for (path, upstream_version) in [("/plain", "HTTP/1.1"), ("/h2", "HTTP/2.0")] {
        let uri: http::Uri = format!("http://127.0.0.1:{port}{path}").parse().unwrap();
        let response = client.get(uri).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), http::Version::HTTP_2, "the client spoke h2c to the gateway");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let echoed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(echoed["version"], upstream_version, "{path}");
        assert_eq!(echoed["host"], format!("127.0.0.1:{port}"), "the Host header is kept");
    }
    drop(gateway);
}

#[test]
fn a_port_that_cannot_be_bound_is_reported_and_the_others_serve() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let a = echo(dir.path(), "a");
    let free = free_port();
    let config = format!(
        "{}{}{}",
        gateway_yaml(&[taken_port, free]),
        service_yaml("default", "a", &[a.address]),
        route("r", "/", "a")
    );
    let gateway = Gateway::start(&config);
    assert_eq!(http_get(&gateway.url(free, "/")).backend(), "a");
    let config = gateway.config();
    let errors = config["report"]["bind_errors"].as_object().unwrap();
    assert!(errors.contains_key(&format!("127.0.0.1:{taken_port}")), "{errors:?}");
    assert!(gateway.process.log_text().contains("cannot bind"));
}

fn gateway_with_address(name: &str, address: Option<&str>, port: u16, created: &str) -> String {
    let addresses = address.map(|a| format!("  addresses: [{{type: IPAddress, value: {a}}}]\n")).unwrap_or_default();
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: default, creationTimestamp: \"{created}\"}}\nspec:\n  gatewayClassName: gantry\n{addresses}  listeners: [{{name: http, protocol: HTTP, port: {port}}}]\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  parentRefs: [{{name: {name}}}]\n  rules: [{{backendRefs: [{{name: {name}, port: 80}}]}}]\n---\n"
    )
}

#[test]
fn two_gateways_share_a_port_on_their_own_addresses_and_a_clash_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let first = echo(dir.path(), "first");
    let second = echo(dir.path(), "second");
    let third = echo(dir.path(), "third");
    let fourth = echo(dir.path(), "fourth");
    let port = free_port();
    let mut config = gateway_yaml(&[]).replace("  listeners:\n", "  listeners: []\n");
    // "third" is older than "fourth", although it sorts after it by name.
    for (name, address, backend, created) in [
        ("first", Some("127.0.0.2"), &first, "2026-01-01T00:00:00Z"),
        ("second", Some("127.0.0.3"), &second, "2026-01-01T00:00:00Z"),
        ("third", None, &third, "2026-01-01T00:00:00Z"),
        ("fourth", None, &fourth, "2026-02-01T00:00:00Z"),
    ] {
        config.push_str(&gateway_with_address(name, address, port, created));
        config.push_str(&service_yaml("default", name, &[backend.address]));
    }
    let gateway = Gateway::start(&config);
    assert_eq!(http_get(&format!("http://127.0.0.2:{port}/")).backend(), "first");
    assert_eq!(http_get(&format!("http://127.0.0.3:{port}/")).backend(), "second");
    assert_eq!(http_get(&format!("http://127.0.0.1:{port}/")).backend(), "third", "the older Gateway keeps the socket");
    let status = gateway.config()["report"]["status"]["gateways"]["default/fourth"].to_string();
    assert!(status.contains("PortUnavailable"), "{status}");
}

#[test]
fn sigterm_finishes_requests_in_flight_then_exits_zero() {
    // Two workers and two connections: connections are dealt round-robin, so each worker has
    // a request in flight, and each drains its own.
    let mut s = setup(&route("r", "/", "a"), &["--drain-timeout", "10s", "--workers", "2"]);
    let url = s.gateway.url(s.port, "/?delay_ms=1500");
    let in_flight: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || http_get(&url))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let status = s.gateway.process.terminate(Duration::from_secs(10));
    for request in in_flight {
        assert_eq!(request.join().unwrap().status, 200, "every request in flight finished");
    }
    assert!(status.success(), "exit status {status}");
    assert!(std::net::TcpStream::connect(s.address()).is_err(), "no longer accepting");
}

#[test]
fn admin_endpoint_serves_health_readiness_config_and_metrics() {
    let s = setup(&route("r", "/", "a"), &[]);
    for _ in 0..3 {
        assert_eq!(s.get("/").status, 200);
    }
    assert_eq!(s.get("/").status, 200);
    let admin = s.gateway.admin;
    assert_eq!(http_get(&format!("http://{admin}/healthz")).status, 200);
    assert_eq!(http_get(&format!("http://{admin}/readyz")).status, 200);
    let metrics = s.gateway.metrics();
    for name in [
        "gantry_requests_total{code_class=\"2xx\",route=\"default/r\"} 4",
        "gantry_request_duration_seconds_bucket",
        "gantry_active_connections",
        "gantry_config_reloads_total 1",
        "gantry_config_reload_errors_total 0",
    ] {
        assert!(metrics.contains(name), "missing {name} in\n{metrics}");
    }
    let config = s.gateway.config();
    assert_eq!(config["table"]["sockets"][0]["address"], format!("127.0.0.1:{}", s.port));
    // A client that connects and says nothing is not kept (5 s header timeout).
    let started = Instant::now();
    assert_eq!(raw(admin, b"", Duration::from_secs(15)), "");
    assert!(started.elapsed() < Duration::from_secs(8), "held for {:?}", started.elapsed());
}

#[test]
fn a_dead_endpoint_answers_503_and_counts_connect_errors() {
    let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let port = free_port();
    let config =
        format!("{}{}{}", gateway_yaml(&[port]), service_yaml("default", "dead", &[dead]), route("r", "/", "dead"));
    let gateway = Gateway::start(&config);
    assert_eq!(http_get(&gateway.url(port, "/")).status, 503);
    let metrics = gateway.metrics();
    assert_eq!(metric(&metrics, "gantry_upstream_connect_errors_total{backend=\"default/dead:80\"}"), 1.0);
    assert_eq!(metric(&metrics, "gantry_requests_total{code_class=\"5xx\",route=\"default/r\"}"), 1.0);
}

/// 1,000 configuration swaps while wrk keeps 16 connections busy: no request may fail and no
/// connection may drop. Bounded: the swaps must finish within 90 s.
#[test]
fn a_thousand_swaps_under_load_fail_no_request() {
    let wrk = std::process::Command::new("wrk").arg("--version").output();
    assert!(wrk.is_ok(), "wrk is needed (scripts/test installs it: apt-get install wrk)");
    let with_header = |backend: &str, i: u32| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: default}}\nspec:\n  parentRefs: [{{name: web}}]\n  rules:\n    - filters: [{{type: ResponseHeaderModifier, responseHeaderModifier: {{set: [{{name: x-generation, value: \"{i}\"}}]}}}}]\n      backendRefs: [{{name: {backend}, port: 80}}]\n"
        )
    };
    let s = setup(&with_header("a", 0), &[]);
    let log = s.gateway.dir.path().join("wrk.txt");
    let mut load = std::process::Command::new("wrk")
        .args(["-t2", "-c16", "-d120s", &s.gateway.url(s.port, "/")])
        .stdout(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start wrk");
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let swaps: u32 = 1000;
    for i in 1..=swaps {
        let before = metric(&s.gateway.metrics(), "gantry_config_reloads_total");
        s.gateway.write_config(&format!("{}{}", s.base, with_header(if i % 2 == 0 { "a" } else { "b" }, i)));
        wait_for("the swap", Duration::from_secs(5), || {
            (metric(&s.gateway.metrics(), "gantry_config_reloads_total") > before).then_some(())
        });
        assert!(started.elapsed() < Duration::from_secs(90), "swaps took too long: {i} in {:?}", started.elapsed());
    }
    let elapsed = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    signal(&load, "INT");
    wait_for("wrk to report", Duration::from_secs(10), || load.try_wait().ok().flatten());
    let report = std::fs::read_to_string(&log).unwrap();
    println!("{swaps} swaps in {elapsed:?} under load:\n{report}");
    let generation = metric(&s.gateway.metrics(), "gantry_route_table_generation");
    assert!(generation >= f64::from(swaps + 1), "tables swapped: {generation}");
    assert!(report.contains("requests in"), "wrk ran: {report}");
    assert!(!report.contains("Non-2xx"), "every request answered 2xx: {report}");
    assert!(!report.contains("Socket errors"), "no connection dropped: {report}");
    assert_eq!(s.get("/").header("x-generation"), Some(&*swaps.to_string()), "the last table serves");
}

#[test]
fn gateways_on_one_port_each_get_a_pool_address_that_stays_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (echo(dir.path(), "first"), echo(dir.path(), "second"));
    let port = free_port();
    let mut config = gateway_yaml(&[]).replace("  listeners:\n", "  listeners: []\n");
    for (name, backend, created) in
        [("first", &first, "2026-01-01T00:00:00Z"), ("second", &second, "2026-02-01T00:00:00Z")]
    {
        config.push_str(&gateway_with_address(name, None, port, created));
        config.push_str(&service_yaml("default", name, &[backend.address]));
    }
    let gateway = Gateway::start_with(&config, &["--gateway-address-pool", "127.0.10.0/24"]);
    let address_of = |gateway: &Gateway, name: &str| {
        gateway.config()["report"]["status"]["gateways"][format!("default/{name}")]["addresses"][0]["value"]
            .as_str()
            .unwrap_or_else(|| panic!("Gateway {name} has an address"))
            .to_string()
    };
    let (a, b) = (address_of(&gateway, "first"), address_of(&gateway, "second"));
    assert!(a.starts_with("127.0.10.") && b.starts_with("127.0.10.") && a != b, "{a} {b}");
    assert_eq!(http_get(&format!("http://{a}:{port}/")).backend(), "first");
    assert_eq!(http_get(&format!("http://{b}:{port}/")).backend(), "second");

    // The older Gateway goes: the newer keeps its address (nothing moves under a client).
    let before = gateway.generation();
    let without_first: String =
        config.split("---\n").filter(|doc| !doc.contains("name: first")).collect::<Vec<_>>().join("---\n");
    gateway.write_config(&without_first);
    gateway.wait_generation_after(before);
    assert_eq!(address_of(&gateway, "second"), b);
    assert_eq!(http_get(&format!("http://{b}:{port}/")).backend(), "second");
}

#[test]
fn a_log_file_written_into_the_config_folder_causes_no_reload() {
    let s = setup(&route("r", "/", "a"), &[]);
    let reloads = || metric(&s.gateway.metrics(), "gantry_config_reloads_total");
    let before = reloads();
    let log = s.gateway.config_file().with_file_name("gantry.log");
    for i in 0..100 {
        std::fs::write(&log, format!("log line {i}\n")).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    // A YAML edit afterwards is still picked up: the watcher works, it only ignores the log.
    let generation = s.gateway.generation();
    s.gateway.write_config(&std::fs::read_to_string(s.gateway.config_file()).unwrap().replace("name: r,", "name: r2,"));
    s.gateway.wait_generation_after(generation);
    assert_eq!(reloads(), before + 1.0, "only the YAML edit reloaded");
}
