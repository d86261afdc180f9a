//! Black-box tests of HTTPS listeners in file mode: the real `gantry run`, certificates made by
//! openssl, Secrets in the YAML, and curl as the client (SNI with `--resolve`, verification
//! against one certificate at a time with `--cacert`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

/// A self-signed certificate (its own CA) for `names`, as PEM files in `dir`.
struct Certificate {
    crt: PathBuf,
    key: PathBuf,
}

fn certificate(dir: &Path, label: &str, names: &[&str]) -> Certificate {
    let crt = dir.join(format!("{label}.crt"));
    let key = dir.join(format!("{label}.key"));
    let san: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args(["-subj", &format!("/CN={}", names[0]), "-addext", &format!("subjectAltName={}", san.join(","))])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl made a certificate");
    Certificate { crt, key }
}

/// A `kubernetes.io/tls` Secret with the certificate, as file mode reads it.
fn secret_yaml(name: &str, cert: &Certificate) -> String {
    let indent = |path: &Path| -> String {
        std::fs::read_to_string(path).unwrap().lines().map(|l| format!("    {l}\n")).collect()
    };
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: default}}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}---\n",
        indent(&cert.crt),
        indent(&cert.key)
    )
}

/// A Gateway `web` with HTTPS listeners on `port` (hostname -> Secret), an HTTP listener on
/// `plain`, and one route to the echo backend `app` for every hostname.
fn config(port: u16, plain: u16, listeners: &[(&str, &str)], backend: &Echo) -> String {
    let mut yaml = gateway_yaml(&[plain]);
    for (i, (hostname, secret)) in listeners.iter().enumerate() {
        yaml = yaml.replace(
            "  listeners:\n",
            &format!(
                "  listeners:\n    - name: https-{i}\n      protocol: HTTPS\n      port: {port}\n      hostname: \"{hostname}\"\n      tls: {{certificateRefs: [{{name: {secret}}}]}}\n      allowedRoutes: {{namespaces: {{from: All}}}}\n"
            ),
        );
    }
    yaml.push_str(&service_yaml("default", "app", &[backend.address]));
    yaml.push_str("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: app, namespace: default}\nspec:\n  parentRefs: [{name: web}]\n  rules: [{backendRefs: [{name: app, port: 80}]}]\n---\n");
    yaml
}

/// curl over HTTPS to `host` (as SNI and Host) at 127.0.0.1:`port`, trusting only `ca`.
/// Returns (exit code, HTTP status, body).
fn curl(host: &str, port: u16, ca: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "5", "--resolve", &format!("{host}:{port}:127.0.0.1"), "--cacert"])
        .arg(ca)
        .args(["-w", "\n%{http_code}"])
        .args(extra)
        .arg(format!("https://{host}:{port}/"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (out.status.code().unwrap_or(-1), status.to_string(), body.to_string())
}

struct Setup {
    gateway: Gateway,
    port: u16,
    dir: tempfile::TempDir,
    a: Certificate,
    b: Certificate,
    _backend: Echo,
}

/// Two HTTPS listeners on one port: `a.example.com` and `*.b.example.com`, each with its own
/// certificate.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let backend = echo(dir.path(), "app");
    let a = certificate(dir.path(), "a", &["a.example.com"]);
    let b = certificate(dir.path(), "b", &["*.b.example.com"]);
    let (port, plain) = (free_port(), free_port());
    let mut yaml = config(port, plain, &[("a.example.com", "a"), ("*.b.example.com", "b")], &backend);
    yaml.push_str(&secret_yaml("a", &a));
    yaml.push_str(&secret_yaml("b", &b));
    let gateway = Gateway::start(&yaml);
    Setup { gateway, port, dir, a, b, _backend: backend }
}

#[test]
fn the_certificate_is_chosen_by_sni_and_requests_reach_the_backend_over_tls() {
    let s = setup();
    let (code, status, body) = curl("a.example.com", s.port, &s.a.crt, &[]);
    assert_eq!((code, status.as_str()), (0, "200"), "{body}");
    let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["headers"]["x-forwarded-proto"][0], "https");
    // The wildcard listener presents its own certificate; A's does not verify for it.
    assert_eq!(curl("x.b.example.com", s.port, &s.b.crt, &[]).1, "200");
    assert_ne!(curl("x.b.example.com", s.port, &s.a.crt, &[]).0, 0, "B's name is served with B's certificate");
    // HTTP/2 by ALPN: curl's own -w replaces the status line, so what comes back is the version.
    let (code, version, _) =
        curl("a.example.com", s.port, &s.a.crt, &["--http2", "-o", "/dev/null", "-w", "%{http_version}"]);
    assert_eq!((code, version.as_str()), (0, "2"), "ALPN chose h2");
    let metrics = s.gateway.metrics();
    assert_eq!(metric(&metrics, "gantry_tls_handshakes_total{outcome=\"ok\"}"), 3.0);
    assert_eq!(metric(&metrics, "gantry_tls_handshakes_total{outcome=\"error\"}"), 1.0, "the client refused A for B");
}

#[test]
fn a_host_of_another_listener_than_the_sni_is_misdirected() {
    let s = setup();
    let (code, status, _) = curl("a.example.com", s.port, &s.a.crt, &["-H", "Host: x.b.example.com"]);
    assert_eq!((code, status.as_str()), (0, "421"));
}

#[test]
fn an_unknown_sni_or_plain_http_fails_fast_and_cleanly() {
    let s = setup();
    // No listener covers other.test and none is without hostname: no certificate fits.
    assert_ne!(curl("other.test", s.port, &s.a.crt, &["-k"]).0, 0);
    // Plain HTTP to the TLS port: closed, not left hanging.
    let started = Instant::now();
    let out = Command::new("curl")
        .args(["-s", "--max-time", "5", &format!("http://127.0.0.1:{}/", s.port)])
        .output()
        .expect("curl runs");
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(2), "closed at once, not after a timeout");
    assert!(metric(&s.gateway.metrics(), "gantry_tls_handshakes_total{outcome=\"error\"}") >= 2.0);
}

#[test]
fn a_rotated_certificate_is_presented_within_a_second() {
    let s = setup();
    assert_eq!(curl("a.example.com", s.port, &s.a.crt, &[]).1, "200");
    let renewed = certificate(s.dir.path(), "a2", &["a.example.com"]);
    let yaml = std::fs::read_to_string(s.gateway.config_file()).unwrap();
    let old = secret_yaml("a", &s.a);
    assert!(yaml.contains(&old));
    let written = Instant::now();
    s.gateway.write_config(&yaml.replace(&old, &secret_yaml("a", &renewed)));
    let served = wait_for("the renewed certificate", Duration::from_secs(3), || {
        (curl("a.example.com", s.port, &renewed.crt, &[]).1 == "200").then(Instant::now)
    });
    assert!(served - written < Duration::from_secs(1), "rotated in {:?}", served - written);
    assert_ne!(curl("a.example.com", s.port, &s.a.crt, &[]).0, 0, "the old certificate is no longer presented");
}

#[test]
fn a_broken_secret_is_reported_and_only_its_listener_stops() {
    let dir = tempfile::tempdir().unwrap();
    let backend = echo(dir.path(), "app");
    let a = certificate(dir.path(), "a", &["a.example.com"]);
    let (port, plain) = (free_port(), free_port());
    let mut yaml = config(port, plain, &[("a.example.com", "a")], &backend);
    yaml.push_str(&secret_yaml("a", &a).replace("-----BEGIN PRIVATE KEY-----", "-----BEGIN NONSENSE-----"));
    let gateway = Gateway::start(&yaml);
    let status = gateway.config()["report"]["status"]["gateways"]["default/web"].to_string();
    assert!(status.contains("InvalidCertificateRef"), "{status}");
    assert!(status.contains("Secret default/a: tls.key is not a PEM private key"), "{status}");
    assert!(!status.contains("NONSENSE"), "no key material in the status");
    assert_eq!(http_get(&gateway.url(plain, "/")).status, 200, "the HTTP listener still serves");
    assert_ne!(curl("a.example.com", port, &a.crt, &[]).0, 0, "the HTTPS listener is not served");
}

/// h2spec over TLS (ALPN `h2`), every case including the strict ones, against a listener
/// without hostname (h2spec sends no SNI for an IP address).
#[test]
fn h2spec_passes_every_case_over_tls() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/h2spec");
    let built = Command::new(&script).arg("path").output().expect("run scripts/h2spec");
    assert!(built.status.success(), "scripts/h2spec: {}", String::from_utf8_lossy(&built.stderr));
    let dir = tempfile::tempdir().unwrap();
    let backend = echo(dir.path(), "app");
    let cert = certificate(dir.path(), "any", &["localhost"]);
    let (port, plain) = (free_port(), free_port());
    let mut yaml = config(port, plain, &[], &backend).replace(
        "  listeners:\n",
        &format!("  listeners:\n    - name: https\n      protocol: HTTPS\n      port: {port}\n      tls: {{certificateRefs: [{{name: any}}]}}\n      allowedRoutes: {{namespaces: {{from: All}}}}\n"),
    );
    yaml.push_str(&secret_yaml("any", &cert));
    let _gateway = Gateway::start(&yaml);
    let run = Command::new(&script)
        .args(["-t", "-k", "-h", "127.0.0.1", "-p", &port.to_string(), "-o", "3", "--strict"])
        .output()
        .expect("run h2spec");
    let report = String::from_utf8_lossy(&run.stdout);
    let summary = report.lines().rev().find(|l| l.contains("tests,")).unwrap_or_default();
    println!("h2spec over TLS: {summary}");
    let counts: Vec<u32> = summary.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect();
    assert!(matches!(counts[..], [total, passed, 0, 0] if total == passed && total >= 146), "{report}");
}
