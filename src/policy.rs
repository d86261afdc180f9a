//! Gantry's own CRD: `BackendPolicy` (group `gantry.dev`), which picks how a Service's
//! endpoints are balanced, when they are ejected, and how many connections they may take.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    pub consecutive_failures: Option<u32>,
    /// How long an ejected endpoint stays out (default "30s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ejection_time: Option<String>,
    /// At most this percentage of endpoints is ejected at once (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejected_percent: Option<u32>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSpec {
    /// Upstream connections open at once to the whole backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Requests waiting for a connection; over the limit Gantry answers 503 at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pending_requests: Option<u32>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct BackendPolicyStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
}

/// Translates a policy into the balancer settings of the Services it targets. An error is a
/// message for the policy's status and the logs; the Services then keep the defaults.
pub fn balancer_config(spec: &BackendPolicySpec) -> Result<crate::balance::BalancerConfig, String> {
    let mut config = crate::balance::BalancerConfig::default();
    if let Some(lb) = &spec.load_balancer {
        match lb.kind {
            LoadBalancerType::RoundRobin => config.algorithm = crate::balance::Algorithm::RoundRobin,
            other => return Err(format!("loadBalancer.type {other:?} is not supported yet")),
        }
    }
    if let Some(passive) = spec.health_check.as_ref().and_then(|h| h.passive.as_ref()) {
        if let Some(n) = passive.consecutive_failures {
            if n == 0 {
                return Err("healthCheck.passive.consecutiveFailures must be at least 1".into());
            }
            config.health.consecutive_failures = n;
        }
        if let Some(time) = &passive.ejection_time {
            config.health.ejection_time =
                crate::duration::parse(time).map_err(|e| format!("healthCheck.passive.ejectionTime: {e}"))?;
        }
        if let Some(p) = passive.max_ejected_percent {
            if p > 100 {
                return Err("healthCheck.passive.maxEjectedPercent must be at most 100".into());
            }
            config.health.max_ejected_percent = p;
        }
    }
    Ok(config)
}
