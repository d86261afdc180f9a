//! Gantry's own CRD: `BackendPolicy` (group `gantry.dev`), which picks how a Service's
//! endpoints are balanced, when they are ejected, and how many connections they may take.

use std::time::Duration;

use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::balance::{Algorithm, BalancerConfig, ConnectionLimits, ConsistentHashConfig, HashKey, PassiveHealth};

/// How traffic to the targeted Services is balanced and protected.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "gantry.dev",
    version = "v1alpha1",
    kind = "BackendPolicy",
    plural = "backendpolicies",
    namespaced,
    status = "BackendPolicyStatus",
    shortname = "gbp",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
pub struct BackendPolicySpec {
    /// The Services this policy applies to (group "", kind Service, in the policy's namespace).
    pub target_refs: Vec<PolicyTargetRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionSpec>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PolicyTargetRef {
    #[serde(default)]
    pub group: String,
    pub kind: String,
    pub name: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerSpec {
    #[serde(rename = "type", default)]
    pub kind: LoadBalancerType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent_hash: Option<ConsistentHashSpec>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum LoadBalancerType {
    #[default]
    RoundRobin,
    Random,
    LeastRequest,
    ConsistentHash,
}

/// Where the hash key comes from: exactly one of header, cookie, sourceIP, queryParam.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConsistentHashSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<CookieHashSpec>,
    #[serde(default, rename = "sourceIP", skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<SourceIpHashSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_param: Option<String>,
    /// No endpoint takes more than this factor times the mean of in-flight requests
    /// (consistent hashing with bounded loads), for example 1.25.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounded_load: Option<f64>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct CookieHashSpec {
    pub name: String,
    /// Lifetime of the cookie Gantry sets when the request has none (for example "1h").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct SourceIpHashSpec {}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive: Option<PassiveHealthSpec>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PassiveHealthSpec {
    /// Failures in a row that eject an endpoint (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int32"))]
    pub consecutive_failures: Option<u32>,
    /// How long an ejected endpoint stays out (default "30s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ejection_time: Option<String>,
    /// At most this percentage of endpoints is ejected at once (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int32"))]
    pub max_ejected_percent: Option<u32>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSpec {
    /// Requests in flight to the whole Service at once (Gantry counts requests, not TCP
    /// connections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int32"))]
    pub max_connections: Option<u32>,
    /// Requests allowed beyond `maxConnections`; over both, Gantry answers 503 at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int32"))]
    pub max_pending_requests: Option<u32>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct BackendPolicyStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
}

/// Translates a policy into the balancer settings of the Services it targets. An error is a
/// message for the policy's status and the logs, naming the field and its value; the Services
/// then keep the defaults.
pub fn balancer_config(spec: &BackendPolicySpec) -> Result<BalancerConfig, String> {
    Ok(BalancerConfig {
        algorithm: algorithm(spec.load_balancer.as_ref())?,
        health: passive_health(spec.health_check.as_ref().and_then(|h| h.passive.as_ref()))?,
        limits: connection_limits(spec.connection.as_ref())?,
    })
}

fn algorithm(spec: Option<&LoadBalancerSpec>) -> Result<Algorithm, String> {
    let Some(spec) = spec else { return Ok(Algorithm::default()) };
    match (spec.kind, &spec.consistent_hash) {
        (LoadBalancerType::ConsistentHash, Some(hash)) => Ok(Algorithm::ConsistentHash(consistent_hash(hash)?)),
        (LoadBalancerType::ConsistentHash, None) => {
            Err("loadBalancer.type ConsistentHash needs a loadBalancer.consistentHash block".into())
        }
        (other, Some(_)) => {
            Err(format!("loadBalancer.consistentHash is only for type ConsistentHash, not loadBalancer.type {other:?}"))
        }
        (LoadBalancerType::RoundRobin, None) => Ok(Algorithm::RoundRobin),
        (LoadBalancerType::Random, None) => Ok(Algorithm::Random),
        (LoadBalancerType::LeastRequest, None) => Ok(Algorithm::LeastRequest),
    }
}

fn consistent_hash(spec: &ConsistentHashSpec) -> Result<ConsistentHashConfig, String> {
    let set: Vec<&str> = [
        spec.header.as_ref().map(|_| "header"),
        spec.cookie.as_ref().map(|_| "cookie"),
        spec.source_ip.as_ref().map(|_| "sourceIP"),
        spec.query_param.as_ref().map(|_| "queryParam"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if set.len() != 1 {
        let found = if set.is_empty() { "none".to_string() } else { set.join(" and ") };
        return Err(format!(
            "loadBalancer.consistentHash needs exactly one of header, cookie, sourceIP, queryParam; it has {found}"
        ));
    }
    let key = if let Some(name) = &spec.header {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("loadBalancer.consistentHash.header {name:?} is not a valid header name"))?;
        HashKey::Header(name.as_str().to_string())
    } else if let Some(cookie) = &spec.cookie {
        HashKey::Cookie { name: cookie_name(&cookie.name)?, ttl: cookie_ttl(cookie.ttl.as_deref())? }
    } else if let Some(name) = &spec.query_param {
        if name.is_empty() {
            return Err("loadBalancer.consistentHash.queryParam \"\" must not be empty".into());
        }
        HashKey::QueryParam(name.clone())
    } else {
        HashKey::SourceIp
    };
    let bounded_load_permille = spec.bounded_load.map(bounded_load).transpose()?;
    Ok(ConsistentHashConfig { key, bounded_load_permille })
}

/// A cookie name is an RFC 6265 token: visible ASCII without separators.
fn cookie_name(name: &str) -> Result<String, String> {
    let separator = |c: char| "()<>@,;:\\\"/[]?={} \t".contains(c);
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_graphic() && !separator(c)) {
        return Err(format!("loadBalancer.consistentHash.cookie.name {name:?} is not a valid cookie name"));
    }
    Ok(name.to_string())
}

fn cookie_ttl(ttl: Option<&str>) -> Result<Option<Duration>, String> {
    let Some(text) = ttl else { return Ok(None) };
    let ttl = crate::duration::parse(text).map_err(|e| format!("loadBalancer.consistentHash.cookie.ttl: {e}"))?;
    if ttl < Duration::from_secs(1) {
        return Err(format!("loadBalancer.consistentHash.cookie.ttl {text:?} must be at least 1s"));
    }
    Ok(Some(ttl))
}

/// The factor in thousandths. At least 1.0 (below it no endpoint could ever take its mean
/// share); at most 100, past which the bound never binds anyway.
fn bounded_load(factor: f64) -> Result<u32, String> {
    if !(1.0..=100.0).contains(&factor) {
        return Err(format!("loadBalancer.consistentHash.boundedLoad {factor} must be between 1.0 and 100"));
    }
    Ok((factor * 1000.0).round() as u32)
}

fn passive_health(spec: Option<&PassiveHealthSpec>) -> Result<PassiveHealth, String> {
    let mut health = PassiveHealth::default();
    let Some(spec) = spec else { return Ok(health) };
    if let Some(n) = spec.consecutive_failures {
        if n == 0 {
            return Err("healthCheck.passive.consecutiveFailures 0 must be at least 1".into());
        }
        health.consecutive_failures = n;
    }
    if let Some(time) = &spec.ejection_time {
        health.ejection_time =
            crate::duration::parse(time).map_err(|e| format!("healthCheck.passive.ejectionTime: {e}"))?;
    }
    if let Some(p) = spec.max_ejected_percent {
        if p > 100 {
            return Err(format!("healthCheck.passive.maxEjectedPercent {p} must be at most 100"));
        }
        health.max_ejected_percent = p;
    }
    Ok(health)
}

fn connection_limits(spec: Option<&ConnectionSpec>) -> Result<ConnectionLimits, String> {
    let Some(spec) = spec else { return Ok(ConnectionLimits::default()) };
    match (spec.max_connections, spec.max_pending_requests) {
        (Some(0), _) => Err("connection.maxConnections 0 must be at least 1".into()),
        (None, Some(pending)) => Err(format!(
            "connection.maxPendingRequests {pending} needs connection.maxConnections: pending requests are the ones \
             waiting for a connection"
        )),
        (max_connections, max_pending_requests) => Ok(ConnectionLimits { max_connections, max_pending_requests }),
    }
}

/// The CustomResourceDefinition of `BackendPolicy` as YAML, for `gantry crds`.
pub fn crd_yaml() -> String {
    // Serializing plain data (strings, maps, the derived schema) into a String cannot fail.
    serde_yaml_ng::to_string(&BackendPolicy::crd()).expect("a CustomResourceDefinition serializes to YAML")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> BackendPolicySpec {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn error(yaml: &str) -> String {
        balancer_config(&parse(yaml)).unwrap_err()
    }

    const TARGET: &str = "targetRefs: [{kind: Service, name: web}]\n";

    #[test]
    fn a_full_policy_translates_every_field() {
        let spec = parse(
            r#"
targetRefs: [{group: "", kind: Service, name: web}]
loadBalancer:
  type: ConsistentHash
  consistentHash:
    cookie: {name: sticky, ttl: 1h}
    boundedLoad: 1.25
healthCheck:
  passive: {consecutiveFailures: 3, ejectionTime: 10s, maxEjectedPercent: 20}
connection: {maxConnections: 100, maxPendingRequests: 10}
"#,
        );
        let config = balancer_config(&spec).unwrap();
        let expected = BalancerConfig {
            algorithm: Algorithm::ConsistentHash(ConsistentHashConfig {
                key: HashKey::Cookie { name: "sticky".into(), ttl: Some(Duration::from_secs(3600)) },
                bounded_load_permille: Some(1250),
            }),
            health: PassiveHealth {
                consecutive_failures: 3,
                ejection_time: Duration::from_secs(10),
                max_ejected_percent: 20,
            },
            limits: ConnectionLimits { max_connections: Some(100), max_pending_requests: Some(10) },
        };
        assert_eq!(config, expected);
        assert_eq!(config.limits.max_in_flight(), Some(110));
    }

    #[test]
    fn a_policy_without_settings_keeps_the_defaults() {
        assert_eq!(balancer_config(&parse(TARGET)).unwrap(), BalancerConfig::default());
    }

    #[test]
    fn each_type_and_key_source_translates() {
        let cases = [
            ("{type: RoundRobin}", Algorithm::RoundRobin),
            ("{type: Random}", Algorithm::Random),
            ("{type: LeastRequest}", Algorithm::LeastRequest),
            ("{}", Algorithm::RoundRobin),
        ];
        for (lb, expected) in cases {
            let config = balancer_config(&parse(&format!("{TARGET}loadBalancer: {lb}"))).unwrap();
            assert_eq!(config.algorithm, expected, "{lb}");
        }
        let keys = [
            ("header: X-User", HashKey::Header("x-user".into())),
            ("sourceIP: {}", HashKey::SourceIp),
            ("queryParam: tenant", HashKey::QueryParam("tenant".into())),
            ("cookie: {name: s}", HashKey::Cookie { name: "s".into(), ttl: None }),
        ];
        for (key, expected) in keys {
            let yaml = format!("{TARGET}loadBalancer: {{type: ConsistentHash, consistentHash: {{{key}}}}}");
            let config = balancer_config(&parse(&yaml)).unwrap();
            let wanted = ConsistentHashConfig { key: expected, bounded_load_permille: None };
            assert_eq!(config.algorithm, Algorithm::ConsistentHash(wanted), "{key}");
        }
    }

    #[test]
    fn consistent_hash_needs_its_block() {
        let e = error(&format!("{TARGET}loadBalancer: {{type: ConsistentHash}}"));
        assert_eq!(e, "loadBalancer.type ConsistentHash needs a loadBalancer.consistentHash block");
    }

    #[test]
    fn a_consistent_hash_block_with_another_type_is_an_error() {
        let e = error(&format!("{TARGET}loadBalancer: {{type: Random, consistentHash: {{sourceIP: {{}}}}}}"));
        assert!(e.contains("loadBalancer.consistentHash") && e.contains("loadBalancer.type Random"), "{e}");
    }

    #[test]
    fn consistent_hash_needs_exactly_one_key_source() {
        let none = error(&format!("{TARGET}loadBalancer: {{type: ConsistentHash, consistentHash: {{}}}}"));
        assert!(none.ends_with("it has none"), "{none}");
        let two = error(&format!(
            "{TARGET}loadBalancer: {{type: ConsistentHash, consistentHash: {{header: a, queryParam: b}}}}"
        ));
        assert!(two.ends_with("it has header and queryParam"), "{two}");
    }

    #[test]
    fn bad_key_sources_are_named_with_their_values() {
        let hash =
            |block: &str| error(&format!("{TARGET}loadBalancer: {{type: ConsistentHash, consistentHash: {block}}}"));
        assert_eq!(
            hash("{header: \"bad header\"}"),
            "loadBalancer.consistentHash.header \"bad header\" is not a valid header name"
        );
        assert_eq!(
            hash("{cookie: {name: \"a;b\"}}"),
            "loadBalancer.consistentHash.cookie.name \"a;b\" is not a valid cookie name"
        );
        assert!(hash("{cookie: {name: s, ttl: soon}}").starts_with("loadBalancer.consistentHash.cookie.ttl: "));
        assert_eq!(
            hash("{cookie: {name: s, ttl: 500ms}}"),
            "loadBalancer.consistentHash.cookie.ttl \"500ms\" must be at least 1s"
        );
        assert_eq!(hash("{queryParam: \"\"}"), "loadBalancer.consistentHash.queryParam \"\" must not be empty");
    }

    #[test]
    fn bounded_load_must_be_at_least_one() {
        let hash = |factor: &str| {
            let yaml = format!(
                "{TARGET}loadBalancer: {{type: ConsistentHash, consistentHash: {{sourceIP: {{}}, boundedLoad: {factor}}}}}"
            );
            balancer_config(&parse(&yaml))
        };
        assert_eq!(hash("0.9").unwrap_err(), "loadBalancer.consistentHash.boundedLoad 0.9 must be between 1.0 and 100");
        assert!(hash(".nan").unwrap_err().contains("boundedLoad NaN"));
        assert!(hash("1.0").is_ok());
    }

    #[test]
    fn passive_health_errors_name_field_and_value() {
        let passive = |block: &str| error(&format!("{TARGET}healthCheck: {{passive: {block}}}"));
        assert_eq!(passive("{consecutiveFailures: 0}"), "healthCheck.passive.consecutiveFailures 0 must be at least 1");
        assert_eq!(
            passive("{maxEjectedPercent: 150}"),
            "healthCheck.passive.maxEjectedPercent 150 must be at most 100"
        );
        let time = passive("{ejectionTime: forever}");
        assert!(time.starts_with("healthCheck.passive.ejectionTime: ") && time.contains("forever"), "{time}");
    }

    #[test]
    fn connection_limit_errors_name_field_and_value() {
        let connection = |block: &str| error(&format!("{TARGET}connection: {block}"));
        assert_eq!(connection("{maxConnections: 0}"), "connection.maxConnections 0 must be at least 1");
        assert!(connection("{maxPendingRequests: 5}").starts_with("connection.maxPendingRequests 5 needs"));
    }

    #[test]
    fn the_crd_yaml_is_generated() {
        let yaml = crd_yaml();
        assert!(yaml.starts_with("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"), "{yaml}");
        assert!(yaml.contains("name: backendpolicies.gantry.dev"));
        for field in ["sourceIP", "boundedLoad", "maxPendingRequests", "ejectionTime", "targetRefs"] {
            assert!(yaml.contains(field), "{field} missing from the CRD");
        }
        let back: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
            serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(back, BackendPolicy::crd());
    }
}
