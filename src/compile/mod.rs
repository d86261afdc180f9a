//! Compile: from the index to a `RouteTable` plus the status of every object.
//!
//! A pure function of its inputs: no I/O, no clocks. The balancer `Registry` is a cache that
//! hands back the state of backends whose endpoints did not change; it makes no decision.

mod attach;
mod backends;
mod build;
pub mod conditions;
pub(crate) mod features;
mod filters;
mod gateways;
mod hostnames;
pub mod placement;
mod precedence;
mod routes;
mod rules;
#[cfg(test)]
mod tests;
mod tls;

use std::collections::BTreeMap;
use std::net::IpAddr;

use gateway_api::gatewayclasses::GatewayClassStatus;
use gateway_api::gateways::GatewayStatus;
use gateway_api::httproutes::HttpRouteStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde::Serialize;

use crate::balance::Registry;
use crate::index::{Index, ObjectKey};
use crate::policy::BackendPolicyStatus;
use crate::table::RouteTable;
pub use placement::{GatewayService, Placement};

/// The controller's own settings that shape the table.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// Gateways whose GatewayClass names this controller are served.
    pub controller_name: String,
    /// Where listeners of Gateways without `spec.addresses` bind (in the `Services`
    /// placement: where every data-plane port binds).
    pub bind_address: IpAddr,
    /// How Gateways get addresses.
    pub placement: Placement,
}

/// The result of one compile.
#[derive(Debug)]
pub struct Compiled {
    pub table: RouteTable,
    pub status: Status,
}

/// What compile concluded about each object: the status subresources as the Gateway API
/// defines them, and the same problems in words for logs and `/config`.
/// Conditions carry `lastTransitionTime` of the Unix epoch (compile has no clock); the status
/// writer stamps real times.
#[derive(Debug, Default, Serialize)]
pub struct Status {
    pub gateway_classes: BTreeMap<ObjectKey, GatewayClassStatus>,
    pub gateways: BTreeMap<ObjectKey, GatewayStatus>,
    pub http_routes: BTreeMap<ObjectKey, HttpRouteStatus>,
    pub backend_policies: BTreeMap<ObjectKey, BackendPolicyStatus>,
    /// In the `Services` placement: the Service (and its endpoints) each Gateway needs.
    pub gateway_services: BTreeMap<ObjectKey, GatewayService>,
    pub problems: Vec<Problem>,
}

/// One thing wrong with one object, said in words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: &'static str,
    pub object: ObjectKey,
    pub message: String,
}

/// The API group of Gateway API objects.
const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

pub fn compile(index: &Index, options: &CompileOptions, backends: &Registry) -> Compiled {
    let mut status = Status::default();
    let classes = gateways::classes(index, options, &mut status);
    let gateways = gateways::collect(index, options, &classes);
    let mut resolver = backends::Resolver::new(index, backends, &mut status);
    let (attachments, counts) = routes::attach_all(index, options, &gateways, &mut resolver, &mut status);
    for (gw, attached) in gateways.iter().zip(&counts) {
        gateways::write_status(gw, attached, &mut status);
    }
    let table = build::table(&gateways, &attachments);
    Compiled { table, status }
}

/// Adds a problem for every condition that says something is wrong: a False condition, or a
/// True `Conflicted`. `context` names the part of the object (a listener, a parentRef).
fn report(
    problems: &mut Vec<Problem>,
    kind: &'static str,
    object: &ObjectKey,
    context: &str,
    conditions: &[Condition],
) {
    for c in conditions {
        let wrong = if c.type_ == conditions::types::CONFLICTED { c.status == "True" } else { c.status == "False" };
        if wrong {
            let context = if context.is_empty() { String::new() } else { format!("{context}: ") };
            problems.push(Problem {
                kind,
                object: object.clone(),
                message: format!("{context}{} is {} ({}): {}", c.type_, c.status, c.reason, c.message),
            });
        }
    }
}
