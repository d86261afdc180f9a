//! Tests of the test cluster itself (`scripts/testenv up`): real etcd, kube-apiserver,
//! kube-controller-manager and kube-scheduler, and the process kubelet that runs Pods
//! of Gantry's image as local processes, each in its own network namespace.
//!
//! They need the cluster up: `scripts/test` brings it up first; when
//! `target/testenv/kubeconfig` is missing they fail saying to run `scripts/testenv up`.

mod support;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::{Value, json};
use support::*;

const NODE: &str = "gantry-node";
const POD_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 1);

fn in_pod_range(ip: Ipv4Addr) -> bool {
    let [a, b, c, d] = ip.octets();
    (a, b, c) == (10, 244, 0) && d > 1 && d < 255
}

fn pods(ns: &str, selector: &str) -> Vec<Value> {
    kubectl_json(&["-n", ns, "get", "pods", "-l", selector])["items"].as_array().cloned().unwrap_or_default()
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn pod_ip(pod: &Value) -> Ipv4Addr {
    pod["status"]["podIP"].as_str().and_then(|s| s.parse().ok()).expect("pod has an IPv4 podIP")
}

#[test]
fn version_reports_the_built_kubernetes_release() {
    let v: Value = serde_json::from_str(&kubectl_ok(&["get", "--raw", "/version"])).expect("JSON");
    let want = testenv_setting("K8S_VERSION");
    assert_eq!(v["gitVersion"], want.as_str(), "/version: {v}");
    let mut parts = want.trim_start_matches('v').split('.');
    assert_eq!(v["major"], parts.next().unwrap_or_default(), "/version: {v}");
    assert_eq!(v["minor"], parts.next().unwrap_or_default(), "/version: {v}");
}

#[test]
fn node_is_ready_with_the_bridge_address() {
    let node = kubectl_json(&["get", "node", NODE]);
    let conditions = node["status"]["conditions"].as_array().expect("conditions");
    assert!(conditions.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"), "node not Ready: {conditions:?}");
    let addresses = node["status"]["addresses"].as_array().expect("addresses");
    assert!(
        addresses.iter().any(|a| a["type"] == "InternalIP" && a["address"] == POD_GATEWAY.to_string().as_str()),
        "no InternalIP {POD_GATEWAY}: {addresses:?}"
    );
    for r in ["cpu", "memory", "pods"] {
        assert!(node["status"]["capacity"][r].is_string(), "no {r} capacity");
    }
    // The node Lease is renewed.
    kubectl_ok(&["-n", "kube-node-lease", "get", "lease", NODE]);
}

#[test]
fn deployment_pods_run_in_their_own_namespaces_and_back_their_service() {
    let ns = TestNamespace::new("testenv-ratings");
    let ns = ns.0.as_str();
    let labels = json!({"app": "ratings"});
    apply(
        &json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "ratings", "namespace": ns},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "terminationGracePeriodSeconds": 5,
                        "containers": [{
                            "name": "ratings",
                            "image": "gantry:dev",
                            "args": ["bookinfo", "ratings", "--listen", "0.0.0.0:9080"],
                            "ports": [{"name": "http", "containerPort": 9080}],
                            "env": [
                                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
                            ],
                            "readinessProbe": {
                                "httpGet": {"path": "/health", "port": 9080},
                                "periodSeconds": 1
                            }
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
            "metadata": {"name": "ratings", "namespace": ns},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 9080, "targetPort": 9080}]}
        })
        .to_string(),
    );

    // Ready through the real deployment/replicaset controllers, scheduler and the process kubelet.
    let ready = wait_for("3 ready ratings pods", Duration::from_secs(120), || {
        let p = pods(ns, "app=ratings");
        (p.len() == 3 && p.iter().all(is_ready)).then_some(p)
    });
    let ips: BTreeSet<Ipv4Addr> = ready.iter().map(pod_ip).collect();
    assert_eq!(ips.len(), 3, "each pod has its own IP: {ips:?}");
    for ip in &ips {
        assert!(in_pod_range(*ip), "{ip} is not in the pod range 10.244.0.0/24");
    }
    let netns = pod_netns_names();
    for p in &ready {
        assert_eq!(p["spec"]["nodeName"], NODE);
        let uid = p["metadata"]["uid"].as_str().expect("uid");
        assert!(netns.contains(&pod_netns(uid)), "no network namespace for pod {uid}: {netns:?}");
        assert!(process_exists(container_pid(p)), "no process for pod {uid}");
    }

    // The EndpointSlice controller lists exactly those IPs, and each answers from the host.
    let slice_ips = wait_for("the EndpointSlice to list the 3 pod IPs", Duration::from_secs(60), || {
        let slices = kubectl_json(&["-n", ns, "get", "endpointslices", "-l", "kubernetes.io/service-name=ratings"]);
        let got: BTreeSet<Ipv4Addr> = slices["items"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["conditions"]["ready"] == true)
            .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a.as_str().and_then(|s| s.parse().ok()))
            .collect();
        (got == ips).then_some(got)
    });
    for ip in &slice_ips {
        let (code, body) = http_get_at(SocketAddr::from((*ip, 9080)), "/health")
            .unwrap_or_else(|e| panic!("GET http://{ip}:9080/health: {e}"));
        assert_eq!(code, 200, "GET http://{ip}:9080/health: {body}");
    }

    // kubectl logs goes through the API server to the kubelet's :10250.
    let first = ready[0]["metadata"]["name"].as_str().expect("name");
    kubectl_ok(&["-n", ns, "logs", first]);

    // Scaling down removes two pods, their processes and their namespaces.
    kubectl_ok(&["-n", ns, "scale", "deployment/ratings", "--replicas=1"]);
    let left = wait_for("one ratings pod left", Duration::from_secs(60), || {
        let p = pods(ns, "app=ratings");
        (p.len() == 1).then_some(p)
    });
    let kept = left[0]["metadata"]["uid"].as_str().expect("uid");
    let netns = pod_netns_names();
    for p in ready.iter().filter(|p| p["metadata"]["uid"] != kept) {
        let uid = p["metadata"]["uid"].as_str().expect("uid");
        let pid = container_pid(p);
        wait_for("the removed pod's process to exit", Duration::from_secs(20), || (!process_exists(pid)).then_some(()));
        assert!(!netns.contains(&pod_netns(uid)), "namespace of removed pod {uid} is still there");
    }
    assert!(netns.contains(&pod_netns(kept)), "the kept pod lost its namespace");
}

#[test]
fn kubectl_logs_shows_a_pods_output() {
    let ns = TestNamespace::new("testenv-logs");
    let ns = ns.0.as_str();
    apply(
        &json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "help", "namespace": ns},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "gantry", "image": "example.com/team/gantry:dev", "args": ["--help"]}]
            }
        })
        .to_string(),
    );
    wait_for("the pod to succeed", Duration::from_secs(60), || {
        let p = kubectl_json(&["-n", ns, "get", "pod", "help"]);
        (p["status"]["phase"] == "Succeeded").then_some(())
    });
    let logs = kubectl_ok(&["-n", ns, "logs", "help", "-c", "gantry"]);
    assert!(logs.contains("Usage"), "gantry --help output not in logs: {logs:?}");
}

/// A bare Pod `name` of the Gateway API conformance suite's echo server, with the env its
/// manifests give it; its object once Ready.
fn run_echo_basic_pod(ns: &str, name: &str) -> Value {
    apply(
        &json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {
                "terminationGracePeriodSeconds": 5,
                "containers": [{
                    "name": name,
                    "image": "registry.k8s.io/gateway-api/conformance/echo-basic:v0.1.0",
                    "env": [
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}
                    ]
                }]
            }
        })
        .to_string(),
    );
    wait_for("the echo-basic pod to be ready", Duration::from_secs(60), || {
        let p = kubectl_json(&["-n", ns, "get", "pod", name]);
        is_ready(&p).then_some(p)
    })
}

/// GET http://ADDR/PATH until it answers 200 (a Pod is Ready as soon as its process runs,
/// which may be before it listens): the body.
fn echo_get(addr: SocketAddr, path: &str) -> String {
    wait_for(&format!("http://{addr}{path} to answer"), Duration::from_secs(10), || {
        http_get_at(addr, path).ok().filter(|(code, _)| *code == 200).map(|(_, body)| body)
    })
}

/// `secs` since the Unix epoch as RFC 3339 UTC, e.g. `2026-12-01T10:00:05Z`.
fn rfc3339_utc(secs: u64) -> String {
    // Days to a civil date in the proleptic Gregorian calendar, by 400-year eras.
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

#[test]
fn echo_basic_pod_answers_with_its_pod_name_and_namespace() {
    let ns = TestNamespace::new("testenv-echo-basic");
    let ns = ns.0.as_str();
    let pod = run_echo_basic_pod(ns, "echo-basic");
    let ip = pod_ip(&pod);
    assert!(in_pod_range(ip), "{ip} is not in the pod range");
    let body = echo_get(SocketAddr::from((ip, 3000)), "/some/path?x=1");
    let echoed: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    assert_eq!(echoed["pod"], "echo-basic", "{echoed}");
    assert_eq!(echoed["namespace"], ns, "{echoed}");
    assert_eq!(echoed["path"], "/some/path?x=1", "{echoed}");
}

#[test]
fn kubectl_logs_since_time_returns_only_later_lines_with_their_timestamps() {
    let ns = TestNamespace::new("testenv-since");
    let ns = ns.0.as_str();
    let pod = run_echo_basic_pod(ns, "echo-basic");
    let addr = SocketAddr::from((pod_ip(&pod), 3000));
    echo_get(addr, "/before");

    // sinceTime has whole seconds: cut at least a second after /before was logged, then
    // send /after once that second has begun.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
    let cut = now.as_secs() + 2;
    std::thread::sleep(Duration::from_secs(cut) + Duration::from_millis(200) - now);
    echo_get(addr, "/after");

    let logged = |path: &str| format!("Echoing back request made to {path} to client");
    let all = wait_for("both requests in the log", Duration::from_secs(10), || {
        let all = kubectl_ok(&["-n", ns, "logs", "echo-basic"]);
        (all.contains(&logged("/before")) && all.contains(&logged("/after"))).then_some(all)
    });
    let since_time = rfc3339_utc(cut);
    let since = kubectl_ok(&["-n", ns, "logs", "echo-basic", "--since-time", &since_time, "--timestamps"]);
    let lines: Vec<&str> = since.lines().collect();
    assert_eq!(lines.len(), 1, "--since-time={since_time}: {since:?}\nwhole log: {all:?}");
    let (stamp, text) = lines[0].split_once(' ').expect("<timestamp> <line>");
    assert!(text.starts_with(&logged("/after")), "{text:?}");
    // RFC 3339 with nanoseconds, UTC, not before the cut.
    assert_eq!(stamp.len(), "2026-12-01T10:00:05.123456789Z".len(), "{stamp}");
    assert!(stamp.ends_with('Z') && stamp.as_bytes()[19] == b'.', "{stamp}");
    assert!(stamp[..19] >= since_time[..19], "{stamp} is before --since-time={since_time}");
}

#[test]
fn pod_with_an_unknown_image_is_reported_failed() {
    let ns = TestNamespace::new("testenv-nginx");
    let ns = ns.0.as_str();
    apply(
        &json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "nginx", "namespace": ns},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "nginx", "image": "nginx:1.27"}]}
        })
        .to_string(),
    );
    let pod = wait_for("the pod to fail", Duration::from_secs(60), || {
        let p = kubectl_json(&["-n", ns, "get", "pod", "nginx"]);
        (p["status"]["phase"] == "Failed").then_some(p)
    });
    let message = pod["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(r#"image "nginx:1.27" is not runnable here"#), "unclear failure: {}", pod["status"]);
    let waiting = &pod["status"]["containerStatuses"][0]["state"]["waiting"];
    assert_eq!(waiting["reason"], "ImageNotRunnable", "{}", pod["status"]);
}

#[test]
fn pods_get_in_cluster_credentials_for_their_service_account() {
    let ns = TestNamespace::new("testenv-creds");
    let ns = ns.0.as_str();
    let pid = container_pid(&run_ratings_pod(ns));

    // The environment of an in-cluster client: the kubernetes Service on the bridge address.
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("read the process environment");
    let environ = String::from_utf8_lossy(&environ);
    let vars: Vec<&str> = environ.split('\0').collect();
    assert!(vars.contains(&"KUBERNETES_SERVICE_HOST=10.244.0.1"), "{vars:?}");
    assert!(vars.contains(&"KUBERNETES_SERVICE_PORT=6443"), "{vars:?}");

    // The files, seen through the process's own mount namespace (/proc/PID/root; an
    // absolute symlink such as /var/run -> /run would leave it, so resolve that here).
    let var_run = match std::fs::read_link("/var/run") {
        Ok(t) if t.is_absolute() => t,
        Ok(t) => std::path::Path::new("/var").join(t),
        Err(_) => "/var/run".into(),
    };
    let dir = format!("/proc/{pid}/root{}/secrets/kubernetes.io/serviceaccount", var_run.display());
    let namespace = wait_for("the service account files", Duration::from_secs(10), || {
        std::fs::read_to_string(format!("{dir}/namespace")).ok()
    });
    assert_eq!(namespace, ns);
    let token = std::fs::read_to_string(format!("{dir}/token")).expect("token file");

    // The token authenticates as the Pod's service account at the address the Pod uses.
    let out = std::process::Command::new(testenv_dir().join("bin/kubectl"))
        .args(["--kubeconfig", "/dev/null", "--server", "https://10.244.0.1:6443", "--request-timeout=30s"])
        .arg(format!("--certificate-authority={dir}/ca.crt"))
        .arg(format!("--token={}", token.trim()))
        .args(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"])
        .output()
        .expect("run kubectl");
    assert!(out.status.success(), "whoami: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("system:serviceaccount:{ns}:default"));
}

/// Whether `ip` lies in `cidr` (`a.b.c.d/n`), e.g. a range set in `scripts/testenv`.
fn in_cidr(ip: Ipv4Addr, cidr: &str) -> bool {
    let (base, bits) = cidr.split_once('/').expect("a.b.c.d/n");
    let base: Ipv4Addr = base.parse().expect("IPv4 range");
    let bits: u32 = bits.parse().expect("prefix length");
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    u32::from(ip) & mask == u32::from(base) & mask
}

/// A Service of type LoadBalancer; `extra` is merged into its spec.
fn load_balancer_service(ns: &str, name: &str, selector: Value, extra: Value) {
    let mut spec = json!({"type": "LoadBalancer", "selector": selector, "ports": [{"name": "http", "port": 8080, "targetPort": 3000}]});
    for (k, v) in extra.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    apply(
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": spec})
            .to_string(),
    );
}

/// The Service's status.loadBalancer.ingress, as JSON.
fn load_balancer_ingress(ns: &str, name: &str) -> Vec<Value> {
    let svc = kubectl_json(&["-n", ns, "get", "service", name]);
    svc["status"]["loadBalancer"]["ingress"].as_array().cloned().unwrap_or_default()
}

/// Waits for the Service's one load-balancer address.
fn wait_for_load_balancer_ip(ns: &str, name: &str) -> Ipv4Addr {
    wait_for(&format!("an address for Service {name}"), Duration::from_secs(30), || {
        match load_balancer_ingress(ns, name).as_slice() {
            [one] => one["ip"].as_str().and_then(|ip| ip.parse().ok()),
            _ => None,
        }
    })
}

#[test]
fn cluster_ip_and_load_balancer_address_answer_from_the_host() {
    let ns = TestNamespace::new("testenv-lb");
    let ns = ns.0.as_str();
    echo_deployment(ns, "echo", 1);
    let pod = ready_pods(ns, "echo").pop().expect("a ready echo pod");

    // The ClusterIP, through kube-proxy's rules (the host reaches the service range on the bridge).
    let svc = kubectl_json(&["-n", ns, "get", "service", "echo"]);
    let cluster_ip: Ipv4Addr = svc["spec"]["clusterIP"].as_str().and_then(|s| s.parse().ok()).expect("clusterIP");
    assert!(in_cidr(cluster_ip, &testenv_setting("SERVICE_CIDR")), "{cluster_ip}");
    let body = wait_for("the ClusterIP to answer", Duration::from_secs(30), || {
        http_get_at(SocketAddr::from((cluster_ip, 80)), "/").ok().filter(|(code, _)| *code == 200).map(|(_, b)| b)
    });
    assert!(body.contains(&pod), "answered by {pod}: {body}");

    // A LoadBalancer Service gets a VIP from the pool, which kube-proxy programs.
    load_balancer_service(ns, "echo-lb", json!({"app": "echo"}), json!({}));
    let ip = wait_for_load_balancer_ip(ns, "echo-lb");
    let pool = testenv_setting("LB_POOL");
    assert!(in_cidr(ip, &pool), "{ip} is not in the pool {pool}");
    assert_eq!(load_balancer_ingress(ns, "echo-lb")[0]["ipMode"], "VIP");
    let body = wait_for("the load-balancer address to answer", Duration::from_secs(30), || {
        http_get_at(SocketAddr::from((ip, 8080)), "/").ok().filter(|(code, _)| *code == 200).map(|(_, b)| b)
    });
    assert!(body.contains(&pod), "answered by {pod}: {body}");
}

#[test]
fn load_balancer_addresses_are_kept_apart_and_freed_on_delete() {
    let ns = TestNamespace::new("testenv-lbpool");
    let ns = ns.0.as_str();
    let none = json!({"app": "none"});
    load_balancer_service(ns, "first", none.clone(), json!({}));
    let ip = wait_for_load_balancer_ip(ns, "first");

    // Asking for an address another Service holds: no address, and a Warning Event says why.
    load_balancer_service(ns, "second", none.clone(), json!({"loadBalancerIP": ip.to_string()}));
    let events = wait_for("a Warning Event on the second Service", Duration::from_secs(30), || {
        let events =
            kubectl_json(&["-n", ns, "get", "events", "--field-selector", "involvedObject.name=second,type=Warning"]);
        let items = events["items"].as_array().cloned().unwrap_or_default();
        (!items.is_empty()).then_some(items)
    });
    let message = events[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("{ip} is in use by Service {ns}/first")), "{events:?}");
    assert!(load_balancer_ingress(ns, "second").is_empty());

    // A Service of another load-balancer class is not ours to serve.
    load_balancer_service(ns, "other-class", none, json!({"loadBalancerClass": "example.com/other"}));

    // Deleting the first Service frees its address: the second, waiting for it, gets it.
    kubectl_ok(&["-n", ns, "delete", "service", "first"]);
    assert_eq!(wait_for_load_balancer_ip(ns, "second"), ip);
    assert!(load_balancer_ingress(ns, "other-class").is_empty(), "a Service of another class got an address");
}

#[test]
fn pods_resolve_service_names_through_the_cluster_dns() {
    let dns_ip: Ipv4Addr = testenv_setting("DNS_IP").parse().expect("DNS_IP");
    let dns = SocketAddr::from((dns_ip, 53));

    // From the host, at the kube-dns ClusterIP: cluster names answer, other names are refused
    // (forwarded nowhere).
    let answer = wait_for("CoreDNS to answer", Duration::from_secs(30), || {
        dns_query_a(dns, "kubernetes.default.svc.cluster.local").ok()
    });
    assert_eq!(answer.rcode, DNS_NOERROR, "{answer:?}");
    assert_eq!(answer.addresses, [Ipv4Addr::new(10, 96, 0, 1)]);
    let outside = dns_query_a(dns, "example.com").expect("an answer");
    assert_eq!((outside.rcode, outside.addresses.len()), (DNS_REFUSED, 0), "{outside:?}");

    // From a Pod: productpage fetches the book's details from http://details.<ns>.svc.cluster.local,
    // a name its resolver must look up at the cluster DNS, then a ClusterIP that kube-proxy
    // sends on to the details Pod over the bridge.
    let ns = TestNamespace::new("testenv-dns");
    let ns = ns.0.as_str();
    let bookinfo_pod = |service: &str, env: Value| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": service, "namespace": ns, "labels": {"app": service}},
            "spec": {
                "terminationGracePeriodSeconds": 5,
                "containers": [{
                    "name": service, "image": "gantry:dev",
                    "args": ["bookinfo", service, "--listen", "0.0.0.0:9080"],
                    "env": env,
                    "readinessProbe": {"httpGet": {"path": "/health", "port": 9080}, "periodSeconds": 1}
                }]
            }
        })
        .to_string()
    };
    apply(&bookinfo_pod("details", json!([])));
    apply(
        &json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "details", "namespace": ns},
            "spec": {"selector": {"app": "details"}, "ports": [{"port": 9080, "targetPort": 9080}]}
        })
        .to_string(),
    );
    let details_url = format!("http://details.{ns}.svc.cluster.local:9080");
    apply(&bookinfo_pod("productpage", json!([{"name": "DETAILS_URL", "value": details_url}])));
    let productpage = wait_for("productpage and details to be ready", Duration::from_secs(60), || {
        let ready = ready_pods(ns, "productpage").len() + ready_pods(ns, "details").len() == 2;
        ready.then(|| kubectl_json(&["-n", ns, "get", "pod", "productpage"]))
    });

    // The resolver configuration the Pod's process sees (through its own mount namespace).
    let pid = container_pid(&productpage);
    let resolv = std::fs::read_to_string(format!("/proc/{pid}/root/etc/resolv.conf")).expect("the Pod's resolv.conf");
    assert!(resolv.contains(&format!("nameserver {dns_ip}")), "{resolv}");

    let at = SocketAddr::from((pod_ip(&productpage), 9080));
    let (code, body) = wait_for("productpage to fetch the details by name", Duration::from_secs(30), || {
        http_get_at(at, "/api/v1/products/0").ok().filter(|(code, _)| *code == 200)
    });
    assert_eq!(code, 200);
    assert!(body.contains("William Shakespeare"), "the details of book 0: {body}");
}
