//! `gantry check`: what `run` would serve, and every problem, without serving.

use std::process::ExitCode;

use super::CheckArgs;
use crate::balance::Registry;
use crate::source::file::FileSource;

pub fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let load = FileSource::new(args.config).load();
    let compiled = crate::compile::compile(&load.index, &args.controller.compile_options(), &Registry::default());
    for warning in &load.warnings {
        println!("warning: {warning}");
    }
    for error in &load.errors {
        println!("error: {error}");
    }
    for problem in &compiled.status.problems {
        println!("error: {} {}: {}", problem.kind, problem.object, problem.message);
    }
    let sockets: usize = compiled.table.sockets.len();
    let routes = compiled.status.http_routes.len();
    let ok = load.errors.is_empty() && compiled.status.problems.is_empty();
    println!(
        "{}: {} objects read, {routes} HTTPRoutes, {sockets} sockets",
        if ok { "ok" } else { "problems found" },
        object_count(&load.index)
    );
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn object_count(index: &crate::index::Index) -> usize {
    index.gateway_classes.len()
        + index.gateways.len()
        + index.http_routes.len()
        + index.reference_grants.len()
        + index.namespaces.len()
        + index.services.len()
        + index.endpoint_slices.len()
        + index.backend_policies.len()
}
