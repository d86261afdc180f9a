//! The Helm chart (`charts/gantry`) against the real test cluster (`scripts/testenv up`): lint,
//! template and schema; then `helm install --wait` as the README writes it brings up the
//! controller Pods for real (the process kubelet runs them with the chart's ServiceAccount token
//! and RBAC, never admin). Every Gateway of the release's class gets a Service of its own with
//! an address of the cluster's load-balancer pool, through which both replicas serve it; two
//! Gateways on port 80 live side by side; `helm upgrade` rolls the Pods under steady requests
//! to a Gateway's address without a failed request; `helm uninstall` leaves nothing of the
//! release behind; and bookinfo (`manifests/bookinfo/kubernetes/`) works behind it, its Pods
//! calling the gateway by its cluster DNS name.
//!
//! Each install uses a namespace and a GatewayClass/controllerName of its own (see `Release`),
//! so runs, the other test binaries and other installations on the shared cluster never share
//! a controller.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::*;

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

/// The Gateways' listener port here: the README's.
const PORT: u16 = 80;

/// The test cluster's load-balancer pool (`LB_POOL` of `scripts/testenv`).
fn lb_pool() -> ipnet::IpNet {
    testenv_setting("LB_POOL").parse().expect("LB_POOL is a CIDR")
}

/// The echo Pod that answered `url`, for 200 answers only.
fn echo_backend_at(url: &str) -> Option<String> {
    try_request("GET", url, &[], None).ok().filter(|r| r.status == 200).map(|r| r.backend())
}

/// `gantry_requests_total` summed over its series, from a Pod's admin endpoint.
fn requests_served(pod_ip: &str) -> f64 {
    let text = request("GET", &format!("http://{pod_ip}:9901/metrics"), &[], None).body;
    text.lines()
        .filter(|l| l.starts_with("gantry_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Checks the Service Gantry made for the Gateway `ns/gateway` (in the Gateway's namespace,
/// owned by it, labelled as Gantry's, of the chart's default type, no selector, the listener
/// port mapped onto a data-plane port) and that its load-balancer address is the Gateway's;
/// returns the data-plane port.
fn check_gateway_service(ns: &str, gateway: &str, address: &str) -> u16 {
    let object = kubectl_json(&["-n", ns, "get", "gateway", gateway]);
    let service = kubectl_json(&["-n", ns, "get", "service", &gateway_service_name(gateway)]);
    let (meta, spec) = (&service["metadata"], &service["spec"]);
    assert_eq!(spec["type"], "LoadBalancer", "{service:#}");
    assert!(spec["selector"].is_null(), "no selector: Gantry writes the endpoints: {service:#}");
    assert_eq!(meta["labels"]["gateway.networking.k8s.io/gateway-name"], gateway);
    assert_eq!(meta["labels"]["app.kubernetes.io/managed-by"], "gantry");
    let owner = &meta["ownerReferences"][0];
    assert_eq!(owner["kind"], "Gateway");
    assert_eq!(owner["name"], gateway);
    assert_eq!(owner["uid"], object["metadata"]["uid"], "owned by the Gateway: {service:#}");
    let ports = spec["ports"].as_array().cloned().unwrap_or_default();
    assert_eq!(ports.len(), 1, "one port per listener port: {ports:?}");
    assert_eq!(ports[0]["port"], PORT);
    let target = ports[0]["targetPort"].as_u64().expect("a numeric targetPort") as u16;
    assert!((10000..=29999).contains(&target), "data-plane port {target}");
    assert_eq!(service["status"]["loadBalancer"]["ingress"][0]["ip"], address);
    target
}

#[test]
fn every_gateway_gets_an_address_of_its_own_served_by_every_replica_through_upgrade_and_uninstall() {
    let release = Release::install("helm-serve", &[]);
    let ns = release.ns.clone();

    // The Pods run with the chart's ServiceAccount and prove its RBAC works: the class is
    // Accepted (a status write, in `install`) and one replica holds the Lease (a Lease write).
    let pods = release.ready_pods();
    assert_eq!(pods.len(), 2, "two controller replicas by default: {pods:?}");
    let deployment = kubectl_json(&["-n", &ns, "get", "deployment", "gantry"]);
    assert_eq!(deployment["spec"]["template"]["spec"]["serviceAccountName"], "gantry");
    let holder = wait_for("a Lease holder", Duration::from_secs(30), || {
        kubectl_json(&["-n", &ns, "get", "lease", "gantry-status-writer"])["spec"]["holderIdentity"]
            .as_str()
            .map(str::to_string)
    });
    assert!(pods.iter().any(|(name, _)| *name == holder), "the Lease holder {holder} is one of {pods:?}");
    let pod_ips: BTreeSet<String> = pods.iter().map(|(_, ip)| ip.clone()).collect();

    // Two Gateways on port 80 in one namespace, each with a route of its own.
    echo_deployment(&ns, "echo", 2);
    let applied = Instant::now();
    apply(&gateway_with_route(&ns, "web", &release.class, PORT, "/web", "echo"));
    apply(&gateway_with_route(&ns, "other", &release.class, PORT, "/other", "echo"));
    let web = wait_programmed(&ns, "web", Duration::from_secs(30));
    let other = wait_programmed(&ns, "other", Duration::from_secs(30));
    println!("two Gateways applied to both Programmed with an address: {:?}", applied.elapsed());
    let (web, other) = (web[0].clone(), other[0].clone());
    assert_ne!(web, other, "each Gateway has an address of its own");
    for address in [&web, &other] {
        assert!(lb_pool().contains(&address.parse::<std::net::IpAddr>().unwrap()), "{address} is in the pool");
    }
    let web_port = check_gateway_service(&ns, "web", &web);
    let other_port = check_gateway_service(&ns, "other", &other);
    assert_ne!(web_port, other_port, "each (Gateway, port) has a data-plane port of its own");

    // Both data-plane Pods are the Gateway's endpoints, on its data-plane port.
    let listed = wait_for("the Gateway's EndpointSlice to list both Pods", Duration::from_secs(30), || {
        let ready: BTreeSet<String> = ready_addresses(&ns, "web-gantry").into_iter().collect();
        (ready == pod_ips).then_some(ready)
    });
    let slice = kubectl_json(&["-n", &ns, "get", "endpointslice", "web-gantry"]);
    assert_eq!(slice["ports"][0]["port"], web_port, "{slice:#}");
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Gateway");
    println!("web: {web}:{PORT} -> data-plane port {web_port} on {listed:?}; other: {other}:{PORT} -> {other_port}");

    // From the host, through the load-balancer address: both echo Pods answer, both replicas
    // serve (each one's request counter moves), and each Gateway serves only its own routes.
    let echoes: BTreeSet<String> = ready_pods(&ns, "echo").into_iter().collect();
    let url = format!("http://{web}:{PORT}/web/hello");
    wait_for("the Gateway's address to serve the route", Duration::from_secs(30), || echo_backend_at(&url));
    let before: Vec<f64> = pod_ips.iter().map(|ip| requests_served(ip)).collect();
    let seen: BTreeSet<String> = (0..40).filter_map(|_| echo_backend_at(&url)).collect();
    assert_eq!(seen, echoes, "the route spreads over both echo Pods");
    let after: Vec<f64> = pod_ips.iter().map(|ip| requests_served(ip)).collect();
    assert!(before.iter().zip(&after).all(|(b, a)| a > b), "both replicas served: {before:?} -> {after:?}");
    assert_eq!(request("GET", &format!("http://{other}:{PORT}/other/x"), &[], None).status, 200);
    assert_eq!(request("GET", &format!("http://{web}:{PORT}/other/x"), &[], None).status, 404);
    assert_eq!(request("GET", &format!("http://{other}:{PORT}/web/x"), &[], None).status, 404);
    // Each replica on its own, at the data-plane port.
    for ip in &pod_ips {
        let direct = format!("http://{ip}:{web_port}/web/direct");
        let seen: BTreeSet<String> = (0..10).filter_map(|_| echo_backend_at(&direct)).collect();
        assert_eq!(seen, echoes, "the replica at {ip} serves the route over both echo Pods");
    }

    // Deleting a Gateway removes its Service and EndpointSlice; the other keeps serving.
    kubectl_ok(&["-n", &ns, "delete", "gateway", "other"]);
    wait_for("the deleted Gateway's Service and EndpointSlice to go", Duration::from_secs(30), || {
        (is_gone(&ns, "service", "other-gantry") && is_gone(&ns, "endpointslice", "other-gantry")).then_some(())
    });
    assert!(echo_backend_at(&url).is_some());

    rollout_under_steady_requests(&release, &web);

    // Deleting the last Gateway, then `helm uninstall`, leaves nothing of the release; the CRDs
    // stay (Helm never deletes crds/).
    kubectl_ok(&["-n", &ns, "delete", "gateway", "web"]);
    wait_for("the Gateway's Service and EndpointSlice to go", Duration::from_secs(30), || {
        (is_gone(&ns, "service", "web-gantry") && is_gone(&ns, "endpointslice", "web-gantry")).then_some(())
    });
    helm_ok(&["uninstall", "gantry", "-n", &ns, "--wait", "--timeout", "60s"]);
    wait_for("the controller Pods to be gone", Duration::from_secs(60), || {
        release.pod_names().is_empty().then_some(())
    });
    let left = kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "deployments,replicasets,services,endpointslices,serviceaccounts,roles,rolebindings,poddisruptionbudgets",
        "-l",
        "app.kubernetes.io/instance=gantry",
        "-o",
        "name",
    ]);
    assert!(left.trim().is_empty(), "left in the namespace after uninstall: {left}");
    let gateway_services = kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "services,endpointslices",
        "-l",
        "app.kubernetes.io/managed-by=gantry",
        "-o",
        "name",
    ]);
    assert!(gateway_services.trim().is_empty(), "Gateway Services left: {gateway_services}");
    for (kind, name) in [("service", "gantry-metrics"), ("serviceaccount", "gantry"), ("deployment", "gantry")] {
        assert!(is_gone(&ns, kind, name), "{kind} {name} left");
    }
    let cluster_scoped = format!("{ns}-gantry");
    assert!(kubectl(&["get", "clusterrole", &cluster_scoped]).is_err(), "ClusterRole left");
    assert!(kubectl(&["get", "clusterrolebinding", &cluster_scoped]).is_err(), "ClusterRoleBinding left");
    assert!(kubectl(&["get", "gatewayclass", &release.class]).is_err(), "GatewayClass left");
    kubectl_ok(&["get", "crd", "backendpolicies.gantry.dev"]);
}

/// `helm upgrade` with a new Pod annotation rolls both replicas (one at a time: maxSurge 1,
/// maxUnavailable 0) while a client keeps sending requests to the Gateway's load-balancer
/// address, each on a new connection, so that kube-proxy picks a Pod from the Gateway's
/// EndpointSlice for every one. Gantry must move that slice along with the Pods' readiness;
/// no request may fail. The slices' versions are watched meanwhile, so that a failure shows how
/// far the Gateway's slice lagged behind the data-plane Pods'.
fn rollout_under_steady_requests(release: &Release, address: &str) {
    let ns = release.ns.clone();
    let watch = SliceWatch::start(&ns);
    let clock = watch.started;
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let stop = Arc::clone(&stop);
        let url = format!("http://{address}:{PORT}/web/rollout");
        std::thread::spawn(move || {
            let (mut served, mut failures) = (0u32, Vec::new());
            // Bounded: the rollout's own waits end the test long before.
            while !stop.load(Ordering::Relaxed) && clock.elapsed() < Duration::from_secs(300) {
                let at = clock.elapsed();
                match try_request("GET", &url, &[], None) {
                    Ok(r) if r.status == 200 => served += 1,
                    Ok(r) => failures.push(format!("{:.3}s: status {}", at.as_secs_f64(), r.status)),
                    Err(e) => failures.push(format!("{:.3}s: {e}", at.as_secs_f64())),
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            (served, failures)
        })
    };
    let before = release.pod_names();
    std::thread::sleep(Duration::from_secs(1));
    let upgrade_started = clock.elapsed();
    release.upgrade(&["podAnnotations.rollout=second"]);
    let upgraded = clock.elapsed();
    let new_ips = wait_for("the old Pods to be gone", Duration::from_secs(90), || {
        let ready = release.ready_pods();
        (release.pod_names().is_disjoint(&before) && ready.len() == 2)
            .then(|| ready.into_iter().map(|(_, ip)| ip).collect::<BTreeSet<String>>())
    });
    wait_for("the Gateway's EndpointSlice to list the new Pods", Duration::from_secs(30), || {
        (ready_addresses(&ns, "web-gantry").into_iter().collect::<BTreeSet<_>>() == new_ips).then_some(())
    });
    let converged = clock.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let (served, failures) = client.join().unwrap();
    let timeline = watch.timeline(&["gantry-metrics", "web-gantry"]);
    println!(
        "helm upgrade from {:.3}s, --wait returned at {:.3}s, the Gateway's slice listed only the new Pods at \
         {:.3}s; {served} requests served, {} failed {failures:?}\nEndpointSlices:\n{timeline}",
        upgrade_started.as_secs_f64(),
        upgraded.as_secs_f64(),
        converged.as_secs_f64(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "requests to the Gateway's address failed during the rollout: {failures:?}\nEndpointSlices:\n{timeline}\n\
         controller logs:\n{}",
        release.logs(40)
    );
    assert!(served > 50, "the client kept sending during the rollout ({served})");
    let deployment = kubectl_json(&["-n", &ns, "get", "deployment", "gantry"]);
    assert_eq!(deployment["spec"]["template"]["metadata"]["annotations"]["rollout"], "second");
}

/// The version in a product page's "Reviews served by: <b>reviews-vN</b>".
fn reviews_version(page: &str) -> Option<String> {
    let start = page.find("<b>reviews-")? + "<b>".len();
    page[start..].split('<').next().map(str::to_string)
}

/// `manifests/bookinfo/kubernetes/` copied into `to`, moved into namespace `ns` and onto the
/// GatewayClass `class` (the productpage's calls then go to the Gateway's Service by its DNS
/// name in `ns`). Nothing else changes; a replacement that no longer finds its text fails.
fn localised_bookinfo(to: &Path, ns: &str, class: &str) {
    let dir = repo_root().join("manifests/bookinfo/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    let mut replaced = [0usize; 4];
    for file in files {
        let mut text = std::fs::read_to_string(&file).unwrap();
        for (i, (from, to)) in [
            ("\n  name: bookinfo\n", format!("\n  name: {ns}\n")),
            ("namespace: bookinfo\n", format!("namespace: {ns}\n")),
            ("gatewayClassName: gantry\n", format!("gatewayClassName: {class}\n")),
            (".bookinfo.svc.cluster.local", format!(".{ns}.svc.cluster.local")),
        ]
        .iter()
        .enumerate()
        {
            // The Namespace object's name only; the Gateway `bookinfo` keeps its name.
            if i == 0 && !text.contains("kind: Namespace") {
                continue;
            }
            replaced[i] += text.matches(from).count();
            text = text.replace(from, to);
        }
        std::fs::write(to.join(file.file_name().unwrap()), text).unwrap();
    }
    assert!(replaced.iter().all(|n| *n > 0), "the manifests changed; replacements made: {replaced:?}");
}

#[test]
fn bookinfo_manifests_work_behind_the_helm_installed_gateway() {
    let release = Release::install("helm-bookinfo", &[]);
    // The README's commands, with the namespace `bookinfo` and the class `gantry` replaced by
    // this test's own (other installations and runs share the cluster): `kubectl apply -f` of
    // the folder, the namespace made first by `00-namespace.yaml`.
    let app_ns = format!("helm-bookinfo-app-{}", std::process::id() % 100_000);
    let _ = kubectl(&["delete", "namespace", &app_ns, "--ignore-not-found", "--wait=true", "--timeout=60s"]);
    let _cleanup = AppNamespace(app_ns.clone());
    let manifests = tempfile::tempdir().unwrap();
    localised_bookinfo(manifests.path(), &app_ns, &release.class);
    let started = Instant::now();
    kubectl_ok(&["apply", "-f", manifests.path().to_str().unwrap()]);
    kubectl_ok(&["-n", &app_ns, "wait", "--for=condition=Available", "deployment", "--all", "--timeout=120s"]);
    kubectl_ok(&["-n", &app_ns, "wait", "--for=condition=Programmed", "gateway/bookinfo", "--timeout=60s"]);
    let gateway =
        kubectl_ok(&["-n", &app_ns, "get", "gateway", "bookinfo", "-o", "jsonpath={.status.addresses[0].value}"]);
    println!("bookinfo applied to Available and Programmed at {gateway}: {:?}", started.elapsed());
    assert!(lb_pool().contains(&gateway.parse::<std::net::IpAddr>().unwrap()), "{gateway} is in the pool");

    // The README's loop: the product page through the Gateway's address; productpage reaches
    // details and reviews through the Gateway's Service by name (cluster DNS, kube-proxy).
    let page_url = format!("http://{gateway}/productpage");
    let load = |headers: &[(&str, &str)]| {
        try_request("GET", &page_url, headers, None).ok().filter(|r| r.status == 200).map(|r| r.body)
    };
    wait_for("a complete product page", Duration::from_secs(30), || {
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
    let policy = kubectl_json(&["-n", &app_ns, "get", "backendpolicy", "ratings"]);
    assert_eq!(condition_of(&policy, "Accepted").map(|c| c.0).as_deref(), Some("True"), "{:#}", policy["status"]);
    println!("bookinfo at {page_url}: reviews versions {versions:?}; jason on v2");
}

/// Deletes the bookinfo namespace (without waiting) when dropped.
struct AppNamespace(String);

impl Drop for AppNamespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.0, "--ignore-not-found", "--wait=false"]);
    }
}
