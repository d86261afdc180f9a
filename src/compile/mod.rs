//! Compile: from the index to a `RouteTable` plus the status of every object.
//!
//! A pure function of its inputs: no I/O, no clocks. The balancer `Registry` is a cache that
//! hands back the state of backends whose endpoints did not change; it makes no decision.

use std::collections::BTreeMap;
use std::net::IpAddr;

use gateway_api::gatewayclasses::GatewayClassStatus;
use gateway_api::gateways::GatewayStatus;
use gateway_api::httproutes::HttpRouteStatus;
use serde::Serialize;

use crate::balance::Registry;
use crate::index::{Index, ObjectKey};
use crate::policy::BackendPolicyStatus;
use crate::table::RouteTable;

/// The controller's own settings that shape the table.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// Gateways whose GatewayClass names this controller are served.
    pub controller_name: String,
    /// Where listeners of Gateways without `spec.addresses` bind.
    pub bind_address: IpAddr,
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
    pub problems: Vec<Problem>,
}

/// One thing wrong with one object, said in words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: &'static str,
    pub object: ObjectKey,
    pub message: String,
}

pub fn compile(index: &Index, options: &CompileOptions, backends: &Registry) -> Compiled {
    let _ = (index, options, backends);
    todo!("the compile step is being written")
}
