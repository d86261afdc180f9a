//! The Helm chart (`charts/gantry`) against the real test cluster (`scripts/testenv up`): lint,
//! template and schema; then `helm install` brings up the controller Pods for real (the process
//! kubelet runs them with the chart's ServiceAccount token and RBAC, never admin), Gateways of
//! the release's class serve through every replica, `helm upgrade` rolls the Pods under steady
//! requests, `helm uninstall` leaves nothing of the release behind, and bookinfo
//! (`manifests/bookinfo/kubernetes/`) works behind it.
//!
//! Each install uses a namespace and a GatewayClass/controllerName of its own, so runs and the
//! other test binaries never share a controller.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

fn chart() -> PathBuf {
    repo_root().join("charts/gantry")
}

/// Runs the test cluster's helm: stdout on success, stderr and stdout on failure.
fn helm(args: &[&str]) -> Result<String, String> {
    let out = Command::new(testenv_dir().join("bin/helm"))
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(args)
        .output()
        .map_err(|e| format!("running helm: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("helm {}: {}{stdout}", args.join(" "), String::from_utf8_lossy(&out.stderr)))
    }
}

fn helm_ok(args: &[&str]) -> String {
    helm(args).unwrap_or_else(|e| panic!("{e}"))
}

/// `helm template` of the chart with `--set` values.
fn template(sets: &[&str]) -> Result<String, String> {
    let chart = chart();
    let mut args = vec!["template", "gantry", chart.to_str().unwrap(), "--namespace", "gantry-system"];
    for set in sets {
        args.extend(["--set", set]);
    }
    helm(&args)
}

/// The rendered documents' `Kind/name`s.
fn kinds(rendered: &str) -> BTreeSet<String> {
    rendered
        .split("\n---")
        .filter_map(|doc| {
            let kind = doc.lines().find_map(|l| l.strip_prefix("kind: "))?;
            let name = doc.lines().find_map(|l| l.strip_prefix("  name: "))?;
            Some(format!("{kind}/{name}"))
        })
        .collect()
}

#[test]
fn the_charts_crds_are_the_top_level_crds_byte_for_byte() {
    let names = |dir: &Path| -> BTreeSet<String> {
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
    };
    let top = repo_root().join("crds");
    let charted = chart().join("crds");
    assert_eq!(names(&top), names(&charted), "charts/gantry/crds/ holds exactly the files of crds/");
    for name in names(&top) {
        let a = std::fs::read(top.join(&name)).unwrap();
        let b = std::fs::read(charted.join(&name)).unwrap();
        assert!(a == b, "charts/gantry/crds/{name} differs from crds/{name}: cp crds/{name} charts/gantry/crds/");
    }
}

#[test]
fn lint_and_template_pass_and_wrong_values_fail_with_the_schemas_message() {
    helm_ok(&["lint", "--strict", chart().to_str().unwrap()]);

    let default = template(&[]).unwrap();
    let made = kinds(&default);
    for want in [
        "ServiceAccount/gantry",
        "ClusterRole/gantry-system-gantry",
        "ClusterRoleBinding/gantry-system-gantry",
        "Role/gantry-leader-election",
        "RoleBinding/gantry-leader-election",
        "Service/gantry-metrics",
        "Deployment/gantry",
        "GatewayClass/gantry",
        "PodDisruptionBudget/gantry",
    ] {
        assert!(made.contains(want), "{want} is rendered by default: {made:?}");
    }
    assert!(!made.iter().any(|k| k.starts_with("ServiceMonitor/")), "no ServiceMonitor by default");
    assert!(!made.contains("Service/gantry"), "each Gateway gets a Service of its own; the chart makes none");
    for want in [
        "replicas: 2",
        "- controller",
        "--admin-address=0.0.0.0:9901",
        "--lease-namespace=gantry-system",
        "--controller-name=gantry.dev/gateway-controller",
        "--data-plane-service=gantry-system/gantry-metrics",
        "--gateway-service-type=LoadBalancer",
        "image: \"gantry:0.1.0\"",
        "runAsUser: 65532",
        "readOnlyRootFilesystem: true",
        "allowPrivilegeEscalation: false",
        "type: RuntimeDefault",
        "path: /healthz",
        "path: /readyz",
        "prometheus.io/scrape: \"true\"",
        // The Gateways' Services and their EndpointSlices are the controller's to write.
        "resources: [services]\n    verbs: [create, patch, update, delete]",
        "resources: [endpointslices]\n    verbs: [create, patch, update, delete]",
    ] {
        assert!(default.contains(want), "the default rendering has `{want}`:\n{default}");
    }
    // Data-plane ports are 10000 and up: no capability to bind low ports.
    assert!(!default.contains("NET_BIND_SERVICE") && default.contains("drop: [ALL]"));
    let pooled = template(&["gatewayServices.type=ClusterIP", "gatewayServices.addressPool=10.245.0.0/24"]).unwrap();
    assert!(
        pooled.contains("--gateway-service-type=ClusterIP") && pooled.contains("--gateway-address-pool=10.245.0.0/24")
    );

    // One data-plane Service for all Gateways, whose listeners bind their own ports.
    let shared = template(&["gatewayServices.enabled=false"]).unwrap();
    assert!(kinds(&shared).contains("Service/gantry") && shared.contains("type: LoadBalancer"));
    assert!(
        shared.contains("--gateway-address-service=gantry-system/gantry") && !shared.contains("--data-plane-service=")
    );
    assert!(!shared.contains("resources: [services]\n    verbs: [create"), "no write access to Services");
    // Its default data-plane port is 80: a listener there needs the capability.
    assert!(shared.contains("add: [NET_BIND_SERVICE]"));
    let high = template(&[
        "gatewayServices.enabled=false",
        "dataPlane.service.ports[0].name=http",
        "dataPlane.service.ports[0].port=8080",
    ])
    .unwrap();
    assert!(!high.contains("NET_BIND_SERVICE") && high.contains("drop: [ALL]"), "no capability for port 8080");
    let forced = template(&[
        "gatewayServices.enabled=false",
        "dataPlane.lowPorts=true",
        "dataPlane.service.ports[0].name=http",
        "dataPlane.service.ports[0].port=8080",
    ])
    .unwrap();
    assert!(forced.contains("add: [NET_BIND_SERVICE]"), "dataPlane.lowPorts adds it");

    let statik = template(&[
        "gatewayServices.enabled=false",
        "gatewayAddress.source=Static",
        "gatewayAddress.static={192.0.2.1,192.0.2.2}",
    ])
    .unwrap();
    assert!(statik.contains("--gateway-address=192.0.2.1,192.0.2.2") && !statik.contains("--gateway-address-service"));

    let single = template(&["replicas=1"]).unwrap();
    assert!(!kinds(&single).iter().any(|k| k.starts_with("PodDisruptionBudget/")), "no PDB for one replica");
    let monitored = template(&["serviceMonitor.enabled=true"]).unwrap();
    assert!(kinds(&monitored).contains("ServiceMonitor/gantry"));
    let unclassed = template(&["gatewayClass.create=false"]).unwrap();
    assert!(!kinds(&unclassed).iter().any(|k| k.starts_with("GatewayClass/")));

    for (set, message) in [
        ("replicas=two", "at '/replicas': got string, want integer"),
        ("dataPlane.service.type=Ingress", "value must be one of 'ClusterIP', 'NodePort', 'LoadBalancer'"),
        ("gatewayAddress.source=Dns", "value must be one of 'Service', 'Static'"),
        ("gatewayAddress.source=Static", "minItems: got 0, want 1"),
        ("gatewayServices.type=External", "value must be one of 'LoadBalancer', 'ClusterIP', 'NodePort'"),
        ("replica=2", "additional properties 'replica' not allowed"),
    ] {
        let error = template(&[set]).expect_err(set);
        assert!(error.contains(message), "--set {set} fails with `{message}`:\n{error}");
    }
}

/// A release `gantry` in a namespace of its own, with a GatewayClass and controllerName of
/// its own; uninstalled (and its namespace deleted) when dropped.
struct Release {
    ns: String,
    class: String,
}

impl Release {
    fn install(prefix: &str, sets: &[&str]) -> Release {
        let ns = format!("{prefix}-{}", std::process::id() % 100_000);
        let _ = helm(&["uninstall", "gantry", "-n", &ns, "--wait", "--timeout", "60s"]);
        let _ = kubectl(&["delete", "namespace", &ns, "--ignore-not-found", "--wait=true", "--timeout=60s"]);
        let release = Release { class: ns.clone(), ns };
        let mut values = vec![
            format!("gatewayClass.name={}", release.class),
            format!("gatewayClass.controllerName=gantry.dev/{}", release.class),
            // No load balancer here: `--wait` would wait for an ingress address forever.
            "dataPlane.service.type=ClusterIP".to_string(),
        ];
        values.extend(sets.iter().map(|s| s.to_string()));
        let chart = chart();
        let mut args = vec!["install", "gantry", chart.to_str().unwrap(), "-n", &release.ns, "--create-namespace"];
        args.extend(["--wait", "--timeout", "120s"]);
        for set in &values {
            args.extend(["--set", set]);
        }
        let started = Instant::now();
        helm_ok(&args);
        println!("helm install --wait into {}: {:?}", release.ns, started.elapsed());
        release
    }

    fn upgrade(&self, sets: &[&str]) {
        let chart = chart();
        let mut args = vec!["upgrade", "gantry", chart.to_str().unwrap(), "-n", &self.ns, "--reuse-values"];
        args.extend(["--wait", "--timeout", "120s"]);
        for set in sets {
            args.extend(["--set", set]);
        }
        helm_ok(&args);
    }

    /// The release's Pods that are Ready and not being deleted: (name, IP).
    fn ready_pods(&self) -> Vec<(String, String)> {
        let pods = kubectl_json(&["-n", &self.ns, "get", "pods", "-l", "app.kubernetes.io/instance=gantry"]);
        pods["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter(|p| conditions_true(&p["status"]["conditions"], "Ready"))
            .filter_map(|p| Some((p["metadata"]["name"].as_str()?.into(), p["status"]["podIP"].as_str()?.into())))
            .collect()
    }
}

/// The ready endpoints of a release's data-plane Service, from its EndpointSlices: where a
/// Service-aware client (kube-proxy, a load balancer) would send traffic right now.
fn ready_endpoints(ns: &str) -> Vec<String> {
    let slices = kubectl_json(&["-n", ns, "get", "endpointslices", "-l", "kubernetes.io/service-name=gantry"]);
    slices["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["conditions"]["ready"] == true)
        .filter_map(|e| e["addresses"][0].as_str().map(str::to_string))
        .collect()
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = helm(&["uninstall", "gantry", "-n", &self.ns, "--timeout", "60s"]);
        let _ = kubectl(&["delete", "gatewayclass", &self.class, "--ignore-not-found", "--wait=false"]);
        let _ = kubectl(&["delete", "namespace", &self.ns, "--ignore-not-found", "--wait=false"]);
    }
}

fn conditions_true(conditions: &Value, kind: &str) -> bool {
    conditions.as_array().into_iter().flatten().any(|c| c["type"] == kind && c["status"] == "True")
}

/// The Gateway's published addresses once it is Programmed.
fn gateway_addresses(ns: &str, name: &str) -> Vec<String> {
    wait_for("the Gateway to be Programmed with an address", Duration::from_secs(60), || {
        let gateway = kubectl_json(&["-n", ns, "get", "gateway", name]);
        let addresses: Vec<String> = gateway["status"]["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["value"].as_str().map(str::to_string))
            .collect();
        (conditions_true(&gateway["status"]["conditions"], "Programmed") && !addresses.is_empty()).then_some(addresses)
    })
}

fn echo_backend_at(url: &str) -> Option<String> {
    try_request("GET", url, &[], None).ok().filter(|r| r.status == 200).map(|r| r.backend())
}

const PORT: u16 = 8080;

#[test]
fn install_serves_through_every_replica_upgrade_rolls_without_failures_and_uninstall_cleans_up() {
    let release = Release::install(
        "helm-serve",
        &["dataPlane.service.ports[0].name=http", &format!("dataPlane.service.ports[0].port={PORT}")],
    );
    let ns = release.ns.clone();

    // The Pods run with the chart's ServiceAccount and prove its RBAC works: the class is
    // Accepted (a status write) and one replica holds the Lease (a Lease write).
    let pods = release.ready_pods();
    assert_eq!(pods.len(), 2, "two controller replicas by default: {pods:?}");
    let deployment = kubectl_json(&["-n", &ns, "get", "deployment", "gantry"]);
    assert_eq!(deployment["spec"]["template"]["spec"]["serviceAccountName"], "gantry");
    wait_for("the GatewayClass to be Accepted", Duration::from_secs(30), || {
        let class = kubectl_json(&["get", "gatewayclass", &release.class]);
        conditions_true(&class["status"]["conditions"], "Accepted").then_some(())
    });
    let holder = wait_for("a Lease holder", Duration::from_secs(30), || {
        kubectl_json(&["-n", &ns, "get", "lease", "gantry-status-writer"])["spec"]["holderIdentity"]
            .as_str()
            .map(str::to_string)
    });
    assert!(pods.iter().any(|(name, _)| *name == holder), "the Lease holder {holder} is one of {pods:?}");

    echo_deployment(&ns, "echo", 2);
    apply(&format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: web, namespace: {ns}}}\nspec:\n  gatewayClassName: {}\n  listeners: [{{name: http, protocol: HTTP, port: {PORT}}}]\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: echo, namespace: {ns}}}\nspec:\n  parentRefs: [{{name: web}}]\n  rules: [{{backendRefs: [{{name: echo, port: 80}}]}}]\n",
        release.class
    ));
    let addresses = gateway_addresses(&ns, "web");
    let pod_ips: BTreeSet<String> = pods.iter().map(|(_, ip)| ip.clone()).collect();
    assert!(addresses.iter().all(|a| pod_ips.contains(a)), "published {addresses:?}, Pods {pod_ips:?}");

    // Every replica serves, each spreading over both echo Pods.
    let echoes: BTreeSet<String> = ready_pods(&ns, "echo").into_iter().collect();
    for ip in &pod_ips {
        let url = format!("http://{ip}:{PORT}/hello");
        wait_for(&format!("the route to serve on {ip}"), Duration::from_secs(30), || echo_backend_at(&url));
        let seen: BTreeSet<String> = (0..10).filter_map(|_| echo_backend_at(&url)).collect();
        assert_eq!(seen, echoes, "the replica at {ip} serves the route over both echo Pods");
    }

    // `helm upgrade` with a new Pod annotation rolls both replicas (one at a time: maxSurge 1,
    // maxUnavailable 0) while a client keeps sending to the data-plane Service's ready
    // endpoints, read afresh from its EndpointSlices before each round.
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let stop = Arc::clone(&stop);
        let ns = ns.clone();
        std::thread::spawn(move || {
            let (mut served, mut raced, mut failures) = (0u32, Vec::new(), Vec::new());
            let mut ips_seen = BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                for ip in ready_endpoints(&ns) {
                    ips_seen.insert(ip.clone());
                    match try_request("GET", &format!("http://{ip}:{PORT}/rollout"), &[], None) {
                        Ok(r) if r.status == 200 => served += 1,
                        Ok(r) => failures.push(format!("{ip}: {}", r.status)),
                        // Refused by a Pod that was ready a moment ago: failed only if it is
                        // still a ready endpoint now.
                        Err(e) if ready_endpoints(&ns).contains(&ip) => failures.push(format!("{ip}: {e}")),
                        Err(e) => raced.push(format!("{ip}: {e}")),
                    }
                }
            }
            (served, raced, failures, ips_seen)
        })
    };
    let before: BTreeSet<String> = pods.iter().map(|(n, _)| n.clone()).collect();
    let started = Instant::now();
    release.upgrade(&["podAnnotations.rollout=second", "resources.requests.cpu=150m"]);
    let after = wait_for("the old Pods to be gone", Duration::from_secs(90), || {
        let pods = kubectl_json(&["-n", &ns, "get", "pods", "-l", "app.kubernetes.io/instance=gantry"]);
        let names: BTreeSet<String> = pods["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
            .collect();
        (names.is_disjoint(&before) && release.ready_pods().len() == 2).then_some(names)
    });
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let (served, raced, failures, ips_seen) = client.join().unwrap();
    println!(
        "helm upgrade rollout in {:?}: {served} served, {} refused by Pods already out of the EndpointSlice \
         ({raced:?}), {} failed, endpoint IPs seen {ips_seen:?}",
        started.elapsed(),
        raced.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "requests failed during the rollout: {failures:?}");
    assert!(served > 20, "the client kept sending during the rollout ({served})");
    let new_ips: BTreeSet<String> = release.ready_pods().into_iter().map(|(_, ip)| ip).collect();
    assert!(!new_ips.is_disjoint(&ips_seen), "the client reached the new Pods {after:?}");
    // The published address follows the new Pods.
    wait_for("the Gateway to publish the new Pods' addresses", Duration::from_secs(30), || {
        let published = gateway_addresses(&ns, "web");
        published.iter().all(|a| new_ips.contains(a)).then_some(())
    });
    let pod = kubectl_json(&["-n", &ns, "get", "deployment", "gantry"]);
    assert_eq!(pod["spec"]["template"]["metadata"]["annotations"]["rollout"], "second");

    // `helm uninstall` removes every object it made; the CRDs stay (Helm never deletes crds/).
    helm_ok(&["uninstall", "gantry", "-n", &ns, "--wait", "--timeout", "60s"]);
    wait_for("the controller Pods to be gone", Duration::from_secs(60), || {
        let pods = kubectl_json(&["-n", &ns, "get", "pods", "-l", "app.kubernetes.io/instance=gantry"]);
        pods["items"].as_array().is_some_and(|p| p.is_empty()).then_some(())
    });
    let left = kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "deployments,replicasets,services,serviceaccounts,roles,rolebindings,poddisruptionbudgets",
        "-l",
        "app.kubernetes.io/instance=gantry",
        "-o",
        "name",
    ]);
    assert!(left.trim().is_empty(), "left in the namespace after uninstall: {left}");
    assert!(kubectl(&["-n", &ns, "get", "service", "gantry"]).is_err());
    assert!(kubectl(&["-n", &ns, "get", "service", "gantry-metrics"]).is_err());
    assert!(kubectl(&["-n", &ns, "get", "serviceaccount", "gantry"]).is_err());
    let cluster_scoped = format!("{ns}-gantry");
    assert!(kubectl(&["get", "clusterrole", &cluster_scoped]).is_err(), "ClusterRole left");
    assert!(kubectl(&["get", "clusterrolebinding", &cluster_scoped]).is_err(), "ClusterRoleBinding left");
    assert!(kubectl(&["get", "gatewayclass", &release.class]).is_err(), "GatewayClass left");
    kubectl_ok(&["get", "crd", "backendpolicies.gantry.dev"]);
}

/// The version in a product page's "Reviews served by: <b>reviews-vN</b>".
fn reviews_version(page: &str) -> Option<String> {
    let start = page.find("<b>reviews-")? + "<b>".len();
    page[start..].split('<').next().map(str::to_string)
}

#[test]
fn bookinfo_manifests_work_behind_the_helm_installed_gateway() {
    // The chart's default data-plane port 80 (the Pods run as root here, so it binds).
    let release = Release::install("helm-bookinfo", &[]);
    let app_ns = format!("helm-bookinfo-app-{}", std::process::id() % 100_000);
    let _ = kubectl(&["delete", "namespace", &app_ns, "--ignore-not-found", "--wait=true", "--timeout=60s"]);
    let _cleanup = AppNamespace(app_ns.clone());

    // Where productpage reaches the gateway here: a data-plane Pod IP (the address the
    // controller publishes), since the in-cluster Service name has neither DNS nor kube-proxy.
    let gateway_ip = ready_endpoints(&release.ns).into_iter().next().expect("a ready data-plane endpoint");
    let dir = repo_root().join("manifests/bookinfo/kubernetes");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    // The test's only changes: its own namespace and class, and the gateway's address.
    let localise = |text: String| {
        text.replace("namespace: bookinfo\n", &format!("namespace: {app_ns}\n"))
            .replace("gatewayClassName: gantry\n", &format!("gatewayClassName: {}\n", release.class))
            .replace("gantry.gantry-system.svc.cluster.local", &gateway_ip)
    };
    apply(&read("namespace.yaml").replace("name: bookinfo\n", &format!("name: {app_ns}\n")));
    wait_for("the namespace's default service account", Duration::from_secs(30), || {
        kubectl(&["-n", &app_ns, "get", "serviceaccount", "default"]).ok()
    });
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "namespace.yaml")
        .collect();
    assert!(files.len() >= 3, "{files:?}");
    let all: Vec<String> = files.iter().map(|f| localise(read(f))).collect();
    apply(&all.join("\n---\n"));
    for app in ["productpage", "details", "reviews", "ratings"] {
        let want = if app == "reviews" {
            3
        } else if app == "ratings" {
            2
        } else {
            1
        };
        wait_for(&format!("{app} Pods to be ready"), Duration::from_secs(120), || {
            (ready_pods(&app_ns, app).len() == want).then_some(())
        });
    }
    let addresses = gateway_addresses(&app_ns, "bookinfo");
    let endpoints = ready_endpoints(&release.ns);
    assert!(addresses.iter().all(|a| endpoints.contains(a)), "published {addresses:?}, data plane {endpoints:?}");
    let policy = kubectl_json(&["-n", &app_ns, "get", "backendpolicy", "ratings"]);
    println!("BackendPolicy ratings status: {}", policy["status"]);

    let page_url = format!("http://{gateway_ip}:80/productpage");
    let load = |headers: &[(&str, &str)]| {
        try_request("GET", &page_url, headers, None).ok().filter(|r| r.status == 200).map(|r| r.body)
    };
    wait_for("a complete product page", Duration::from_secs(60), || {
        load(&[]).filter(|p| reviews_version(p).is_some() && !p.contains("currently unavailable"))
    });
    let mut versions = BTreeSet::new();
    for _ in 0..20 {
        let page = load(&[]).expect("the product page answers 200");
        assert!(!page.contains("currently unavailable"), "details and reviews reached through the gateway:\n{page}");
        versions.insert(reviews_version(&page).expect("a reviews version on the page"));
    }
    assert!(versions.len() > 1, "more than one reviews version over 20 loads: {versions:?}");
    for _ in 0..10 {
        let page = load(&[("end-user", "jason")]).expect("the product page answers 200");
        assert_eq!(reviews_version(&page).as_deref(), Some("reviews-v2"), "jason always sees v2");
    }
    println!("bookinfo at {page_url}: reviews versions {versions:?}; jason on v2");
}

/// Deletes the bookinfo namespace (without waiting) when dropped.
struct AppNamespace(String);

impl Drop for AppNamespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.0, "--ignore-not-found", "--wait=false"]);
    }
}
