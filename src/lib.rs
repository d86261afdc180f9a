//! Gantry: a Gateway API ingress controller with its own hyper data plane.
//!
//! ```text
//! sources ──> index ──> compile ──> RouteTable ──> data plane
//! (k8s|file)  (store)   (pure fn)   (Arc, swapped)  (hyper)
//!                  └──────> status/diagnostics <──┘
//! ```
//!
//! - [`source`]: YAML files (and, later, the Kubernetes API) turned into [`index::Object`]s.
//! - [`index`]: the current set of objects.
//! - [`compile`]: the Gateway API rules, from an index to a [`table::RouteTable`] plus status.
//! - [`table`]: the immutable routing model the data plane reads; no Kubernetes types.
//! - [`balance`]: endpoint selection and the state that survives table swaps.
//! - [`proxy`]: the hyper servers, route filters and upstream client.
//! - [`policy`]: the `BackendPolicy` CRD.
//! - [`runtime`]: the loop from a new index to a served table; [`cli`]: the `gantry` command.
//! - [`bookinfo`], [`echo`]: the sample application and a debugging backend.
//! - [`metrics`], [`admin`]: Prometheus metrics and the admin endpoint.
#![forbid(unsafe_code)]

pub mod admin;
pub mod balance;
pub mod bookinfo;
pub mod cli;
pub mod compile;
pub mod duration;
pub mod echo;
pub mod index;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod runtime;
pub mod signals;
pub mod source;
pub mod status;
pub mod table;
