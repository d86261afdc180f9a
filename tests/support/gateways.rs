//! Gateways on the test cluster and what Gantry makes for each in Kubernetes mode: its status,
//! its Service (`<gateway>-gantry`) and that Service's EndpointSlice. Every wait is bounded.

use std::io::BufReader;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{kubeconfig, kubectl, kubectl_json, testenv_dir};

/// Whether `conditions` (a status.conditions list) has `kind` with status True.
pub fn conditions_true(conditions: &Value, kind: &str) -> bool {
    conditions.as_array().into_iter().flatten().any(|c| c["type"] == kind && c["status"] == "True")
}

/// (status, reason) of the condition `kind` in `object.status.conditions`.
pub fn condition_of(object: &Value, kind: &str) -> Option<(String, String)> {
    let c = object["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == kind)?;
    Some((c["status"].as_str()?.to_string(), c["reason"].as_str().unwrap_or_default().to_string()))
}

/// A Gateway with one HTTP listener and an HTTPRoute attached to it that sends `PathPrefix
/// path` to the Service `backend` (port 80).
pub fn gateway_with_route(ns: &str, gateway: &str, class: &str, port: u16, path: &str, backend: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: {gateway}, namespace: {ns}}}\nspec:\n  gatewayClassName: {class}\n  listeners: [{{name: http, protocol: HTTP, port: {port}}}]\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {gateway}, namespace: {ns}}}\nspec:\n  parentRefs: [{{name: {gateway}}}]\n  rules: [{{matches: [{{path: {{type: PathPrefix, value: {path}}}}}], backendRefs: [{{name: {backend}, port: 80}}]}}]\n"
    )
}

/// The name of the Service Gantry makes for a Gateway (names that are valid DNS labels).
pub fn gateway_service_name(gateway: &str) -> String {
    format!("{gateway}-gantry")
}

/// The Gateway's `status.addresses` values.
pub fn gateway_addresses(gateway: &Value) -> Vec<String> {
    gateway["status"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["value"].as_str().map(str::to_string))
        .collect()
}

/// Waits until the Gateway is Programmed with an address; returns its addresses. On timeout
/// the panic shows the Gateway's last status.
pub fn wait_programmed(ns: &str, gateway: &str, timeout: Duration) -> Vec<String> {
    let started = Instant::now();
    loop {
        let object = kubectl_json(&["-n", ns, "get", "gateway", gateway]);
        let addresses = gateway_addresses(&object);
        if conditions_true(&object["status"]["conditions"], "Programmed") && !addresses.is_empty() {
            return addresses;
        }
        assert!(
            started.elapsed() < timeout,
            "Gateway {ns}/{gateway} not Programmed with an address after {timeout:?}: {:#}",
            object["status"]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One endpoint of an EndpointSlice.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SliceEndpoint {
    pub address: String,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
}

fn endpoints_of(slice: &Value) -> Vec<SliceEndpoint> {
    let flag = |e: &Value, name: &str, default: bool| e["conditions"][name].as_bool().unwrap_or(default);
    slice["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| {
            let ready = flag(e, "ready", true);
            let (serving, terminating) = (flag(e, "serving", ready), flag(e, "terminating", false));
            e["addresses"].as_array().cloned().unwrap_or_default().into_iter().filter_map(move |a| {
                Some(SliceEndpoint { address: a.as_str()?.to_string(), ready, serving, terminating })
            })
        })
        .collect()
}

/// The endpoints of every EndpointSlice of the Service `ns/service`, sorted.
pub fn service_endpoints(ns: &str, service: &str) -> Vec<SliceEndpoint> {
    let selector = format!("kubernetes.io/service-name={service}");
    let slices = kubectl_json(&["-n", ns, "get", "endpointslices", "-l", &selector]);
    let mut endpoints: Vec<SliceEndpoint> =
        slices["items"].as_array().into_iter().flatten().flat_map(endpoints_of).collect();
    endpoints.sort();
    endpoints
}

/// The addresses of the Service's ready endpoints, sorted.
pub fn ready_addresses(ns: &str, service: &str) -> Vec<String> {
    service_endpoints(ns, service).into_iter().filter(|e| e.ready).map(|e| e.address).collect()
}

/// Whether `kubectl get KIND NAME` finds nothing.
pub fn is_gone(ns: &str, kind: &str, name: &str) -> bool {
    kubectl(&["-n", ns, "get", kind, name]).is_err_and(|e| e.contains("NotFound"))
}

/// Watches a namespace's EndpointSlices (`kubectl get --watch`) and notes when each version
/// of each slice was seen, to tell afterwards how long one slice took to follow another.
pub struct SliceWatch {
    child: Child,
    pub started: Instant,
    seen: Arc<Mutex<Vec<SliceVersion>>>,
}

/// A version of a slice as the watch saw it.
#[derive(Clone, Debug)]
pub struct SliceVersion {
    pub at: Duration,
    pub event: String,
    pub service: String,
    pub endpoints: Vec<SliceEndpoint>,
}

impl SliceWatch {
    pub fn start(ns: &str) -> SliceWatch {
        let mut child = Command::new(testenv_dir().join("bin/kubectl"))
            .arg("--kubeconfig")
            .arg(kubeconfig())
            .args(["-n", ns, "get", "endpointslices", "--watch", "--output-watch-events", "-o", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kubectl --watch");
        let stdout = child.stdout.take().expect("stdout");
        let started = Instant::now();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        std::thread::spawn(move || {
            for event in serde_json::Deserializer::from_reader(BufReader::new(stdout)).into_iter::<Value>() {
                let Ok(event) = event else { return };
                let object = &event["object"];
                let service = object["metadata"]["labels"]["kubernetes.io/service-name"].as_str().unwrap_or_default();
                let mut endpoints = endpoints_of(object);
                endpoints.sort();
                sink.lock().unwrap().push(SliceVersion {
                    at: started.elapsed(),
                    event: event["type"].as_str().unwrap_or_default().to_string(),
                    service: service.to_string(),
                    endpoints,
                });
            }
        });
        SliceWatch { child, started, seen }
    }

    /// Time since the watch started.
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn versions(&self) -> Vec<SliceVersion> {
        self.seen.lock().unwrap().clone()
    }

    /// The versions of the slices of `services`, one line each, with the time they were seen.
    pub fn timeline(&self, services: &[&str]) -> String {
        let short = |e: &SliceEndpoint| {
            let state = match (e.ready, e.serving, e.terminating) {
                (true, _, _) => "ready",
                (false, true, true) => "terminating",
                (false, false, true) => "terminating, not serving",
                (false, _, false) => "not ready",
            };
            format!("{} {state}", e.address)
        };
        self.versions()
            .iter()
            .filter(|v| services.contains(&v.service.as_str()))
            .map(|v| {
                let endpoints: Vec<String> = v.endpoints.iter().map(short).collect();
                format!("{:>8.3}s {} {}: [{}]\n", v.at.as_secs_f64(), v.event, v.service, endpoints.join(", "))
            })
            .collect()
    }
}

impl Drop for SliceWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
