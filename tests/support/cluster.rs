//! Helpers for tests that run against the real test cluster of `scripts/testenv up`.
//! Every wait here is bounded in time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runtime state of the test environment: `target/testenv/`.
pub fn testenv_dir() -> PathBuf {
    repo_root().join("target").join("testenv")
}

/// The admin kubeconfig written by `scripts/testenv up`; panics with what to do when it is missing.
pub fn kubeconfig() -> PathBuf {
    let path = testenv_dir().join("kubeconfig");
    assert!(
        path.is_file(),
        "{} is missing: run `scripts/testenv up` first (or `scripts/test`, which does)",
        path.display()
    );
    path
}

/// A value of `scripts/testenv`'s `NAME=value` lines, e.g. `K8S_VERSION`.
pub fn testenv_setting(name: &str) -> String {
    let script = std::fs::read_to_string(repo_root().join("scripts/testenv")).expect("read scripts/testenv");
    script
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .map(|v| v.split_whitespace().next().unwrap_or_default().to_string())
        .unwrap_or_else(|| panic!("{name} is not set in scripts/testenv"))
}

fn kubectl_bin() -> PathBuf {
    testenv_dir().join("bin").join("kubectl")
}

/// Runs kubectl against the test cluster: stdout on success, stderr on failure.
pub fn kubectl(args: &[&str]) -> Result<String, String> {
    kubectl_with_input(args, None)
}

pub fn kubectl_with_input(args: &[&str], input: Option<&str>) -> Result<String, String> {
    let kubeconfig = kubeconfig();
    let mut cmd = Command::new(kubectl_bin());
    cmd.arg("--kubeconfig").arg(&kubeconfig).arg("--request-timeout=30s").args(args);
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("running {}: {e}", kubectl_bin().display()))?;
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "kubectl {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ))
    }
}

/// kubectl that must succeed.
pub fn kubectl_ok(args: &[&str]) -> String {
    kubectl(args).unwrap_or_else(|e| panic!("{e}"))
}

/// `kubectl get ... -o json`, parsed.
pub fn kubectl_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&kubectl_ok(&all)).expect("kubectl printed JSON")
}

/// `kubectl apply -f -` of a YAML or JSON document.
pub fn apply(manifest: &str) {
    kubectl_with_input(&["apply", "-f", "-"], Some(manifest)).unwrap_or_else(|e| panic!("{e}"));
}

/// A namespace for one test, deleted (without waiting) when dropped.
pub struct TestNamespace(pub String);

impl TestNamespace {
    pub fn new(prefix: &str) -> Self {
        let name = format!("{prefix}-{}", std::process::id() % 100_000);
        let _ = kubectl(&["delete", "namespace", &name, "--wait=true", "--timeout=60s"]);
        kubectl_ok(&["create", "namespace", &name]);
        // Pods need the namespace's default ServiceAccount, made by its controller.
        super::wait_for("the namespace's default service account", Duration::from_secs(30), || {
            kubectl(&["-n", &name, "get", "serviceaccount", "default"]).ok()
        });
        TestNamespace(name)
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.0, "--wait=false"]);
    }
}

/// A plain HTTP/1.1 GET with bounded timeouts: (status code, body).
pub fn http_get_at(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let timeout = Duration::from_secs(5);
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:?}")))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((code, body))
}

/// Network namespace names of the process kubelet's Pods.
pub fn pod_netns_names() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("gantry-pod-"))
        .map(str::to_string)
        .collect()
}

/// The network namespace the process kubelet makes for a Pod UID.
pub fn pod_netns(uid: &str) -> String {
    let id: String = uid.chars().filter(|c| *c != '-').take(12).collect();
    format!("gantry-pod-{id}")
}

/// Whether a process with this pid exists.
pub fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Runs `scripts/testenv ARG`, panicking with its output when it fails.
pub fn testenv(arg: &str) -> String {
    let out =
        Command::new("bash").arg(repo_root().join("scripts/testenv")).arg(arg).output().expect("run scripts/testenv");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "scripts/testenv {arg} failed:\n{text}");
    text
}

/// A Deployment `name` of `gantry echo` Pods (ECHO_NAME = the Pod name, port 3000) behind a
/// Service `name` (port 80); returns once `replicas` Pods are Ready.
pub fn echo_deployment(ns: &str, name: &str, replicas: u32) {
    let labels = json!({"app": name});
    apply(
        &json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "terminationGracePeriodSeconds": 5,
                        "containers": [{
                            "name": "echo",
                            "image": "gantry:dev",
                            "args": ["echo", "--listen", "0.0.0.0:3000"],
                            "env": [{"name": "ECHO_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                            "ports": [{"name": "http", "containerPort": 3000}],
                            "readinessProbe": {"httpGet": {"path": "/ready", "port": 3000}, "periodSeconds": 1}
                        }]
                    }
                }
            }
        })
        .to_string(),
    );
    apply(
        &json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": 3000}]}
        })
        .to_string(),
    );
    super::wait_for("the echo pods to be ready", Duration::from_secs(120), || {
        let ready = ready_pods(ns, name);
        (ready.len() == replicas as usize).then_some(())
    });
}

/// The names of the Ready Pods labelled `app=APP` that are not being deleted.
pub fn ready_pods(ns: &str, app: &str) -> Vec<String> {
    let pods = kubectl_json(&["-n", ns, "get", "pods", "-l", &format!("app={app}")]);
    pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| {
            p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// A bare Pod `ratings` in `ns` running `gantry bookinfo ratings`; its object once the
/// container runs.
pub fn run_ratings_pod(ns: &str) -> Value {
    kubectl_ok(&[
        "-n",
        ns,
        "run",
        "ratings",
        "--image=gantry:dev",
        "--restart=Never",
        "--",
        "bookinfo",
        "ratings",
        "--listen",
        "0.0.0.0:9080",
    ]);
    super::wait_for("the pod to run", Duration::from_secs(60), || {
        let p = kubectl_json(&["-n", ns, "get", "pod", "ratings"]);
        (p["status"]["containerStatuses"][0]["state"]["running"].is_object()).then_some(p)
    })
}

/// The process id the process kubelet reports as a Pod's container id (`process://PID`).
pub fn container_pid(pod: &Value) -> u32 {
    pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .and_then(|id| id.strip_prefix("process://"))
        .and_then(|p| p.parse().ok())
        .expect("containerID process://PID")
}
