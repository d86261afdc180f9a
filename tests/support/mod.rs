//! Helpers shared by the black-box tests: the real `gantry` binary, real backends on
//! loopback, and small clients. Every wait here is bounded.
#![allow(dead_code, unused_imports)] // each test binary uses a different part of this module

mod cluster;
mod dns;
mod gateways;
mod helm;
pub use cluster::*;
pub use dns::*;
pub use gateways::*;
pub use helm::*;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const GANTRY: &str = env!("CARGO_BIN_EXE_gantry");

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Polls `check` until it returns Some, or panics with `what` after `timeout`. Every 10 ms
/// for the first second (what a measurement needs), then every 100 ms, then every 250 ms
/// after 5 s, so that long waits on kubectl do not keep both cores busy starting kubectl.
pub fn wait_for<T>(what: &str, timeout: Duration, check: impl FnMut() -> Option<T>) -> T {
    wait_with(what, timeout, check, |waited| match waited.as_millis() {
        0..1000 => Duration::from_millis(10),
        1000..5000 => Duration::from_millis(100),
        _ => Duration::from_millis(250),
    })
}

/// Like `wait_for`, polling every `interval` however long it takes (for a measurement whose
/// start is itself a wait).
pub fn wait_for_every<T>(what: &str, timeout: Duration, interval: Duration, check: impl FnMut() -> Option<T>) -> T {
    wait_with(what, timeout, check, |_| interval)
}

fn wait_with<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
    interval: impl Fn(Duration) -> Duration,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        let waited = started.elapsed();
        assert!(waited < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(interval(waited));
    }
}

fn wait_listening(address: SocketAddr, child: &mut Child, what: &str) {
    wait_for(what, Duration::from_secs(20), || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early with {status}");
        }
        TcpStream::connect_timeout(&address, Duration::from_millis(100)).ok().map(|_| ())
    });
}

/// A child process killed when dropped.
pub struct Process {
    pub child: Child,
    pub log: PathBuf,
}

impl Process {
    fn spawn(args: &[&str], log: PathBuf) -> Process {
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(GANTRY)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("start gantry");
        Process { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        signal(&self.child, "TERM");
        wait_for("the process to exit", timeout, || self.child.try_wait().ok().flatten())
    }
}

pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real `gantry echo` backend on loopback.
pub struct Echo {
    pub address: SocketAddr,
    pub name: String,
    pub process: Process,
}

pub fn echo(dir: &Path, name: &str) -> Echo {
    echo_with(dir, name, &[])
}

pub fn echo_with(dir: &Path, name: &str, extra_args: &[&str]) -> Echo {
    let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("address");
    let listen = address.to_string();
    let mut args = vec!["echo", "--listen", &listen, "--name", name];
    args.extend_from_slice(extra_args);
    let mut process = Process::spawn(&args, dir.join(format!("echo-{name}-{}.log", address.port())));
    wait_listening(address, &mut process.child, "the echo backend");
    Echo { address, name: name.to_string(), process }
}

/// `gantry run` on a folder of YAML, with its data plane on 127.0.0.1.
pub struct Gateway {
    pub dir: tempfile::TempDir,
    pub admin: SocketAddr,
    pub process: Process,
}

impl Gateway {
    /// Writes `config.yaml` and starts the gateway; returns once `/readyz` answers 200.
    pub fn start(config: &str) -> Gateway {
        Self::start_with(config, &[])
    }

    pub fn start_with(config: &str, extra_args: &[&str]) -> Gateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_dir = dir.path().join("config");
        std::fs::create_dir(&config_dir).expect("config dir");
        std::fs::write(config_dir.join("config.yaml"), config).expect("write config");
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("address");
        let mut args = vec![
            "run",
            "--config",
            config_dir.to_str().expect("utf-8 path"),
            "--bind-address",
            "127.0.0.1",
            "--admin-address",
        ];
        let admin_text = admin.to_string();
        args.push(&admin_text);
        args.extend_from_slice(extra_args);
        let mut process = Process::spawn(&args, dir.path().join("gantry.log"));
        wait_listening(admin, &mut process.child, "the gateway's admin endpoint");
        let gateway = Gateway { dir, admin, process };
        wait_for("the gateway to be ready", Duration::from_secs(10), || {
            (http_get(&format!("http://{admin}/readyz")).status == 200).then_some(())
        });
        gateway
    }

    pub fn config_file(&self) -> PathBuf {
        self.dir.path().join("config").join("config.yaml")
    }

    /// Replaces the configuration atomically (write then rename, as editors do).
    pub fn write_config(&self, config: &str) {
        let temp = self.dir.path().join("config.yaml.tmp");
        std::fs::write(&temp, config).expect("write config");
        std::fs::rename(&temp, self.config_file()).expect("rename config");
    }

    pub fn config(&self) -> serde_json::Value {
        let body = http_get(&format!("http://{}/config", self.admin)).body;
        serde_json::from_str(&body).expect("/config is JSON")
    }

    pub fn generation(&self) -> u64 {
        self.config()["report"]["generation"].as_u64().expect("generation")
    }

    /// Waits until a table newer than `generation` is applied.
    pub fn wait_generation_after(&self, generation: u64) {
        wait_for("a new route table", Duration::from_secs(10), || (self.generation() > generation).then_some(()));
    }

    pub fn metrics(&self) -> String {
        http_get(&format!("http://{}/metrics", self.admin)).body
    }

    pub fn url(&self, port: u16, path: &str) -> String {
        format!("http://127.0.0.1:{port}{path}")
    }
}

/// A response, with everything a test looks at.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The echo backend's description of the request it received.
    pub fn echoed(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not an echo answer ({e}): {}", self.body))
    }

    pub fn backend(&self) -> String {
        self.echoed()["backend"].as_str().unwrap_or_default().to_string()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(15)))
        .build()
        .into()
}

pub fn http_get(url: &str) -> Reply {
    request("GET", url, &[], None)
}

/// Sends a request; a transport error panics with the URL.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
    try_request(method, url, headers, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

pub fn try_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<Reply, ureq::Error> {
    let mut builder = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let agent = agent();
    let response = match body {
        Some(body) => agent.run(builder.body(body.to_string()).expect("request"))?,
        None => agent.run(builder.body(()).expect("request"))?,
    };
    let status = response.status().as_u16();
    let headers =
        response.headers().iter().map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string())).collect();
    let body = response.into_body().read_to_string().unwrap_or_default();
    Ok(Reply { status, headers, body })
}

/// The value of one series in Prometheus text, 0 when absent.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines().find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0.0)
}

/// Writes raw bytes to a socket and returns all that comes back until the server closes the
/// connection or `timeout` passes: for requests no well-behaved client would send.
pub fn raw(address: SocketAddr, bytes: &[u8], timeout: Duration) -> String {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(timeout)).expect("timeout");
    let _ = stream.write_all(bytes);
    let mut out = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The YAML of a GatewayClass `gantry` and a Gateway `web` in `default` with one HTTP listener
/// per port.
pub fn gateway_yaml(ports: &[u16]) -> String {
    let listeners: String = ports
        .iter()
        .map(|p| format!("    - name: http-{p}\n      protocol: HTTP\n      port: {p}\n      allowedRoutes: {{namespaces: {{from: All}}}}\n"))
        .collect();
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {{name: gantry}}\nspec:\n  controllerName: gantry.dev/gateway-controller\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: web, namespace: default}}\nspec:\n  gatewayClassName: gantry\n  listeners:\n{listeners}---\n"
    )
}

/// A Service `name` (port 80) in `namespace` with an EndpointSlice listing `endpoints`.
pub fn service_yaml(namespace: &str, name: &str, endpoints: &[SocketAddr]) -> String {
    service_yaml_with(namespace, name, endpoints, None)
}

pub fn service_yaml_with(namespace: &str, name: &str, endpoints: &[SocketAddr], app_protocol: Option<&str>) -> String {
    let mut out = String::new();
    let app = app_protocol.map(|p| format!("\n      appProtocol: {p}")).unwrap_or_default();
    out.push_str(&format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  ports:\n    - name: http\n      port: 80{app}\n---\n"
    ));
    for (i, endpoint) in endpoints.iter().enumerate() {
        out.push_str(&format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}-{i}\n  namespace: {namespace}\n  labels: {{kubernetes.io/service-name: {name}}}\naddressType: IPv4\nports: [{{name: http, port: {}}}]\nendpoints: [{{addresses: [\"{}\"]}}]\n---\n",
            endpoint.port(),
            endpoint.ip()
        ));
    }
    out
}
