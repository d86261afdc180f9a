//! Gantry under a real Prometheus (Debian's `prometheus` package, started here as a child
//! process): it scrapes a real gateway, and the queries the README, the dashboard and the
//! alerts rely on answer with the right route and backend labels. Also checks the shipped
//! Grafana dashboard and PrometheusRule with Prometheus's own parser and `promtool`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

const INSTALL: &str = "apt-get update && apt-get install -y prometheus";

/// Panics with the install command when `binary` (from Debian's `prometheus`) is missing.
fn require(binary: &str) {
    if let Err(error) = Command::new(binary).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        panic!(
            "`{binary}` cannot be run ({error}); install Debian's Prometheus package, which brings \
             `prometheus` and `promtool`, as root: `{INSTALL}`"
        );
    }
}

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// One sample of an instant vector: its labels and value.
type Sample = (BTreeMap<String, String>, f64);

/// A real Prometheus on loopback, scraping `targets` every second; killed when dropped.
struct Prometheus {
    address: SocketAddr,
    process: Process,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(targets: &[SocketAddr]) -> Prometheus {
        require("prometheus");
        let dir = tempfile::tempdir().expect("temp dir");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: gantry\n    metrics_path: /metrics\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).expect("write prometheus.yml");
        let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("address");
        let log = dir.path().join("prometheus.log");
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("start prometheus");
        let mut process = Process { child, log };
        wait_for("Prometheus to be ready", Duration::from_secs(60), || {
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("prometheus exited early with {status}:\n{}", process.log_text());
            }
            let ready = try_request("GET", &format!("http://{address}/-/ready"), &[], None).ok()?;
            (ready.status == 200).then_some(())
        });
        Prometheus { address, process, _dir: dir }
    }

    /// `/api/v1/query`: the instant vector as (labels, value), or Prometheus's error
    /// (`bad_data: ...` for an expression that does not parse).
    fn query(&self, expr: &str) -> Result<Vec<Sample>, String> {
        let encoded = percent_encoding::utf8_percent_encode(expr, percent_encoding::NON_ALPHANUMERIC);
        let reply = http_get(&format!("http://{}/api/v1/query?query={encoded}", self.address));
        let body: serde_json::Value =
            serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", reply.body));
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"].as_str().unwrap_or("?"), body["error"]));
        }
        let data = &body["data"];
        if data["resultType"] != "vector" {
            return Ok(Vec::new());
        }
        Ok(data["result"]
            .as_array()
            .expect("result")
            .iter()
            .map(|sample| {
                let labels = serde_json::from_value(sample["metric"].clone()).expect("labels");
                let value = sample["value"][1].as_str().expect("value").parse().expect("a number");
                (labels, value)
            })
            .collect())
    }

    /// The query's result keyed by the value of `label`; panics on a query error.
    fn by(&self, expr: &str, label: &str) -> BTreeMap<String, f64> {
        self.query(expr)
            .unwrap_or_else(|e| panic!("{expr}: {e}\n{}", self.process.log_text()))
            .into_iter()
            .map(|(labels, value)| (labels.get(label).cloned().unwrap_or_default(), value))
            .collect()
    }
}

fn route(name: &str, path: &str, backend: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  parentRefs: [{{name: web}}]\n  rules:\n    - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]\n      backendRefs: [{{name: {backend}, port: 80}}]\n---\n"
    )
}

const REQUESTS_BY_ROUTE: &str = "sum by (route) (gantry_requests_total)";
const P99_BY_ROUTE: &str =
    "histogram_quantile(0.99, sum by (le, route) (rate(gantry_request_duration_seconds_bucket[1m])))";
const UPSTREAM_BY_BACKEND: &str = "sum by (backend) (gantry_upstream_requests_total)";
const ERROR_RATIO_BY_ROUTE: &str = "sum by (route) (rate(gantry_requests_total{code_class=\"5xx\"}[1m])) / sum by (route) (rate(gantry_requests_total[1m]))";

#[test]
fn prometheus_scrapes_requests_latency_and_upstreams_by_route_and_backend() {
    let dir = tempfile::tempdir().unwrap();
    // `a` answers after 20 ms, so the api route's p99 has a floor the test can check.
    let a = echo_with(dir.path(), "a", &["--delay-ms", "20"]);
    let b = echo(dir.path(), "b");
    let port = free_port();
    let config = format!(
        "{}{}{}{}{}",
        gateway_yaml(&[port]),
        service_yaml("default", "a", &[a.address]),
        service_yaml("default", "b", &[b.address]),
        route("api", "/api", "a"),
        route("web", "/web", "b"),
    );
    let gateway = Gateway::start(&config);
    let prometheus = Prometheus::start(&[gateway.admin]);
    wait_for("Prometheus's first scrape of the gateway", Duration::from_secs(30), || {
        (prometheus.by("up{job=\"gantry\"}", "job").get("gantry") == Some(&1.0)).then_some(())
    });

    // rate() needs two scrapes that saw a counter rise, so traffic goes on in rounds until the
    // latency quantiles exist for both routes; one in six requests on `web` is a 503.
    let (mut api, mut web) = (0u64, 0u64);
    let mut round = 0u64;
    wait_for("p99 latency of both routes in Prometheus", Duration::from_secs(60), || {
        for _ in 0..5 {
            assert_eq!(http_get(&gateway.url(port, "/api/x")).backend(), "a");
            assert_eq!(http_get(&gateway.url(port, "/web/x")).backend(), "b");
        }
        assert_eq!(http_get(&gateway.url(port, "/web/x?status=503")).status, 503);
        (api, web) = (api + 5, web + 6);
        round += 1;
        let p99 = prometheus.by(P99_BY_ROUTE, "route");
        (round >= 3 && ["default/api", "default/web"].iter().all(|r| p99.get(*r).is_some_and(|v| *v > 0.0)))
            .then_some(())
    });

    // Traffic has stopped: the next scrapes carry the final counts, exactly.
    let by_route = BTreeMap::from([("default/api".to_string(), api as f64), ("default/web".to_string(), web as f64)]);
    let by_backend =
        BTreeMap::from([("default/a:80".to_string(), api as f64), ("default/b:80".to_string(), web as f64)]);
    for (query, label, want) in [(REQUESTS_BY_ROUTE, "route", by_route), (UPSTREAM_BY_BACKEND, "backend", by_backend)] {
        let got = wait_for(&format!("Prometheus to have every request by {label}"), Duration::from_secs(30), || {
            let got = prometheus.by(query, label);
            (got == want).then_some(got)
        });
        println!("{query}: {got:?}");
    }

    let p99 = prometheus.by(P99_BY_ROUTE, "route");
    println!("{P99_BY_ROUTE}: {p99:?}");
    assert_eq!(p99.keys().collect::<Vec<_>>(), ["default/api", "default/web"], "{p99:?}");
    assert!(p99["default/api"] >= 0.01 && p99["default/api"] < 5.0, "api answers after 20 ms: {p99:?}");
    assert!(p99["default/web"] > 0.0 && p99["default/web"] < 5.0, "{p99:?}");

    let ratio = prometheus.by(ERROR_RATIO_BY_ROUTE, "route");
    println!("{ERROR_RATIO_BY_ROUTE}: {ratio:?}");
    assert_eq!(ratio.keys().collect::<Vec<_>>(), ["default/web"], "only web had 5xx: {ratio:?}");
    assert!(ratio["default/web"] > 0.0 && ratio["default/web"] < 1.0, "{ratio:?}");
}

/// Every `gantry_*` metric family an expression names (without `_bucket`, `_sum`, `_count`).
fn families(expr: &str) -> BTreeSet<String> {
    let name = regex::Regex::new(r"\bgantry_[a-z0-9_]+").unwrap();
    name.find_iter(expr)
        .map(|m| {
            let n = m.as_str();
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s).filter(|base| base.ends_with("_seconds")))
                .unwrap_or(n)
                .to_string()
        })
        .collect()
}

/// Panics unless every metric `expr` uses is one the README documents (its metric list is
/// complete, Kubernetes-mode metrics included): a misspelt metric name parses fine and
/// silently matches nothing, so the parser alone would not catch it.
fn assert_documented(expr: &str, what: &str) {
    let readme = std::fs::read_to_string(repo_file("README.md")).expect("README.md");
    let documented = families(&readme);
    let used = families(expr);
    assert!(!used.is_empty(), "{what} uses no gantry metric: {expr}");
    for name in used {
        assert!(documented.contains(&name), "{what} uses {name}, which README.md does not list: {expr}");
    }
}

/// Grafana's variables, as the dashboard uses them, replaced by what an "All" selection means.
fn expand_grafana_variables(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m").replace("${job}", ".*").replace("$job", ".*").replace("$route", ".*")
}

fn all_panels(panels: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    let mut out = Vec::new();
    for panel in panels {
        out.push(panel);
        if let Some(nested) = panel["panels"].as_array() {
            out.extend(all_panels(nested));
        }
    }
    out
}

#[test]
fn the_grafana_dashboard_parses_and_every_query_is_valid_promql_on_real_metrics() {
    let path = repo_file("charts/gantry/dashboards/gantry.json");
    let text = std::fs::read_to_string(&path).expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert!(dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36), "schemaVersion");
    assert_eq!(dashboard["uid"], "gantry");
    let variables = dashboard["templating"]["list"].as_array().expect("templating.list");
    assert!(
        variables.iter().any(|v| v["name"] == "datasource" && v["type"] == "datasource" && v["query"] == "prometheus"),
        "a Prometheus datasource variable"
    );

    let panels = all_panels(dashboard["panels"].as_array().expect("panels"));
    let mut ids = BTreeSet::new();
    let mut titles = Vec::new();
    let mut queries = Vec::new();
    for panel in panels {
        let title = panel["title"].as_str().expect("every panel has a title");
        assert!(ids.insert(panel["id"].as_u64().expect("panel id")), "duplicate panel id in {title}");
        assert!(panel["gridPos"]["w"].as_u64().is_some(), "{title} has a gridPos");
        if panel["type"] == "row" {
            continue;
        }
        titles.push(title.to_string());
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title} uses the datasource variable");
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("{title} has targets"));
        assert!(!targets.is_empty(), "{title} has targets");
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or_else(|| panic!("{title}: a target without expr"));
            queries.push((title.to_string(), expr.to_string()));
        }
    }
    for wanted in
        ["Request rate", "Error ratio", "Latency", "Upstream errors", "reloads", "Convergence", "Leader", "connections"]
    {
        assert!(titles.iter().any(|t| t.contains(wanted)), "no panel about {wanted:?} in {titles:?}");
    }

    // Prometheus's own parser, on a live server that scrapes a gateway: a syntax error is
    // `bad_data`; a metric name is checked against the README's list.
    let gateway = Gateway::start(&gateway_yaml(&[free_port()]));
    let prometheus = Prometheus::start(&[gateway.admin]);
    for (title, expr) in &queries {
        let expanded = expand_grafana_variables(expr);
        assert!(!expanded.contains('$'), "{title}: a Grafana variable the dashboard does not define: {expr}");
        if let Err(error) = prometheus.query(&expanded) {
            panic!("{title}: {expr}\n  does not evaluate: {error}");
        }
        assert_documented(expr, title);
    }
    println!("{} queries in {} panels evaluate", queries.len(), titles.len());
}

fn promtool(args: &[&str], dir: &Path) -> String {
    require("promtool");
    let out = Command::new("promtool").args(args).current_dir(dir).output().expect("run promtool");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// `promtool test rules` input: each alert fires on the data it is for, and stays quiet on
/// the look-alikes it must not page for.
const RULE_TESTS: &str = r#"
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - name: a busy route with 10% 5xx pages; an idle route and a healthy one do not
    interval: 1m
    input_series:
      - series: 'gantry_requests_total{instance="g1",route="default/shop",code_class="2xx"}'
        values: '0+540x30'
      - series: 'gantry_requests_total{instance="g1",route="default/shop",code_class="5xx"}'
        values: '0+60x30'
      - series: 'gantry_requests_total{instance="g1",route="default/idle",code_class="2xx"}'
        values: '0+6x30'
      - series: 'gantry_requests_total{instance="g1",route="default/idle",code_class="5xx"}'
        values: '0+6x30'
      - series: 'gantry_requests_total{instance="g1",route="default/ok",code_class="2xx"}'
        values: '0+600x30'
      - series: 'gantry_requests_total{instance="g1",route="default/ok",code_class="5xx"}'
        values: '0+3x30'
      - series: 'gantry_requests_total{instance="g1",route="none",code_class="4xx"}'
        values: '0+600x30'
    promql_expr_test:
      - expr: ALERTS{alertname="GantryRouteHighErrorRatio"}
        eval_time: 4m
        exp_samples:
          - labels: 'ALERTS{alertname="GantryRouteHighErrorRatio",alertstate="pending",route="default/shop",severity="critical"}'
            value: 1
      - expr: ALERTS{alertname="GantryRouteHighErrorRatio"}
        eval_time: 20m
        exp_samples:
          - labels: 'ALERTS{alertname="GantryRouteHighErrorRatio",alertstate="firing",route="default/shop",severity="critical"}'
            value: 1
    alert_rule_test:
      - alertname: GantryRouteHighErrorRatio
        eval_time: 20m
        exp_alerts:
          - exp_labels: {route: default/shop, severity: critical}
            exp_annotations:
              summary: 'Gantry route default/shop: 10% of requests fail with 5xx'
              description: >-
                More than 5% of the requests on HTTPRoute default/shop (namespace/name) have
                been answered with a 5xx for 5 minutes (10% now).
                503 and 504 from the gateway mean no healthy endpoint, connection limits or
                timeouts; other 5xx come from the backend itself.
              runbook: >-
                Check `sum by (backend, outcome) (rate(gantry_upstream_requests_total[5m]))`,
                `gantry_upstream_connect_errors_total` and `gantry_upstream_rejected_total` for the
                route's backends, the route's status (`kubectl get httproute -n <ns> <name> -o yaml`,
                or /config on the admin endpoint) and the backend Pods' readiness and logs.
  - name: a configuration rejected for long pages; one bad edit that was fixed does not
    interval: 1m
    input_series:
      - series: 'gantry_config_rejected_inputs{instance="g1"}'
        values: '1x60'
      - series: 'gantry_config_rejected_inputs{instance="g2"}'
        values: '0x5 1x5 0x50'
      - series: 'gantry_reflector_errors_total{instance="g1",kind="EndpointSlice"}'
        values: '0+2x60'
      - series: 'gantry_reflector_errors_total{instance="g2",kind="HTTPRoute"}'
        values: '0x5 1x55'
    promql_expr_test:
      - expr: ALERTS{alertstate="firing"}
        eval_time: 10m
        exp_samples: []
      - expr: ALERTS{alertstate="firing"}
        eval_time: 18m
        exp_samples:
          - labels: 'ALERTS{alertname="GantryWatchFailing",alertstate="firing",instance="g1",kind="EndpointSlice",severity="critical"}'
            value: 1
      - expr: ALERTS{alertstate="firing"}
        eval_time: 30m
        exp_samples:
          - labels: 'ALERTS{alertname="GantryConfigRejected",alertstate="firing",instance="g1",severity="warning"}'
            value: 1
          - labels: 'ALERTS{alertname="GantryWatchFailing",alertstate="firing",instance="g1",kind="EndpointSlice",severity="critical"}'
            value: 1
"#;

#[test]
fn the_prometheus_rule_passes_promtool_and_its_alerts_fire_only_when_they_should() {
    let path = repo_file("charts/gantry/examples/prometheusrule.yaml");
    let text = std::fs::read_to_string(&path).expect("the PrometheusRule example");
    let rule: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("the PrometheusRule is YAML");
    assert_eq!(rule["apiVersion"].as_str(), Some("monitoring.coreos.com/v1"));
    assert_eq!(rule["kind"].as_str(), Some("PrometheusRule"));
    let groups = rule["spec"]["groups"].as_sequence().expect("spec.groups");

    let mut alerts = Vec::new();
    for group in groups {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().expect("every rule is an alert").to_string();
            let expr = rule["expr"].as_str().expect("expr");
            assert_documented(expr, &name);
            assert!(rule["for"].as_str().is_some(), "{name} waits before firing");
            assert!(rule["labels"]["severity"].as_str().is_some(), "{name} has a severity");
            for key in ["summary", "description", "runbook"] {
                assert!(rule["annotations"][key].as_str().is_some_and(|a| !a.is_empty()), "{name} has {key}");
            }
            alerts.push(name);
        }
    }
    assert!(alerts.contains(&"GantryRouteHighErrorRatio".to_string()), "{alerts:?}");
    assert!(alerts.contains(&"GantryConfigRejected".to_string()), "{alerts:?}");

    let dir = tempfile::tempdir().unwrap();
    let mut file = serde_yaml_ng::Mapping::new();
    file.insert("groups".into(), rule["spec"]["groups"].clone());
    std::fs::write(dir.path().join("rules.yaml"), serde_yaml_ng::to_string(&file).unwrap()).unwrap();
    println!("{}", promtool(&["check", "rules", "rules.yaml"], dir.path()));
    std::fs::write(dir.path().join("tests.yaml"), RULE_TESTS).unwrap();
    println!("{}", promtool(&["test", "rules", "tests.yaml"], dir.path()));
}
