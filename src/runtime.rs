//! The control loop shared by every mode: take a new index, compile it off the request path,
//! swap the table in, and keep what `/config` and the logs report.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use serde::Serialize;

use crate::balance::Registry;
use crate::compile::{self, CompileOptions, Status};
use crate::index::Index;
use crate::metrics::METRICS;
use crate::proxy::DataPlane;
use crate::source::SourceError;

/// What `/config` shows besides the table: the status of every object and every problem.
#[derive(Default, Serialize)]
pub struct Report {
    pub generation: u64,
    pub status: Status,
    /// Inputs that could not be read; their last good version is still in force.
    pub source_errors: Vec<SourceError>,
    pub source_warnings: Vec<SourceError>,
    /// Sockets the table lists that could not be bound.
    pub bind_errors: std::collections::BTreeMap<std::net::SocketAddr, String>,
}

pub struct Runtime {
    pub data_plane: DataPlane,
    options: CompileOptions,
    registry: Arc<Registry>,
    report: ArcSwap<Report>,
    ready: AtomicBool,
}

impl Runtime {
    pub fn new(data_plane: DataPlane, options: CompileOptions) -> Self {
        Self {
            data_plane,
            options,
            registry: Arc::default(),
            report: ArcSwap::from_pointee(Report::default()),
            ready: AtomicBool::new(false),
        }
    }

    /// True once a table has been published: what `/readyz` answers.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn report(&self) -> Arc<Report> {
        self.report.load_full()
    }

    /// Compiles `index` and serves the result. Problems that are new since the last apply
    /// are logged once.
    pub async fn apply(&self, index: Index, source_errors: Vec<SourceError>, source_warnings: Vec<SourceError>) {
        let started = Instant::now();
        let options = self.options.clone();
        let registry = Arc::clone(&self.registry);
        let compiled = tokio::task::spawn_blocking(move || compile::compile(&index, &options, &registry)).await;
        let compiled = match compiled {
            Ok(compiled) => compiled,
            Err(error) => {
                // A bug in compile must not take the gateway down: the last table keeps serving.
                tracing::error!(%error, "compile failed; the previous route table keeps serving");
                METRICS.config_reload_errors.inc();
                return;
            }
        };
        METRICS.compile_duration.observe(started.elapsed().as_secs_f64());
        if !source_errors.is_empty() {
            METRICS.config_reload_errors.inc();
        }
        METRICS.rejected_inputs.set(source_errors.len() as i64);
        self.data_plane.publish(compiled.table).await;
        self.registry.prune();
        METRICS.config_reloads.inc();
        let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        METRICS.last_apply.set(unix.as_secs() as i64);

        let previous = self.report.load();
        log_new(
            &previous.status.problems,
            &compiled.status.problems,
            |p| tracing::warn!(kind = p.kind, object = %p.object, problem = %p.message, "configuration problem"),
        );
        log_new(
            &previous.source_errors,
            &source_errors,
            |e| tracing::error!(error = %e, "configuration file rejected; its last good version stays in force"),
        );
        log_new(&previous.source_warnings, &source_warnings, |w| tracing::warn!(warning = %w, "configuration file"));
        let report = Report {
            generation: previous.generation + 1,
            status: compiled.status,
            source_errors,
            source_warnings,
            bind_errors: self.data_plane.bind_errors(),
        };
        tracing::info!(
            generation = report.generation,
            problems = report.status.problems.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "route table applied"
        );
        self.report.store(Arc::new(report));
        self.ready.store(true, Ordering::Release);
    }
}

fn log_new<T: PartialEq + Serialize>(before: &[T], now: &[T], log: impl Fn(&T)) {
    let seen: BTreeSet<String> = before.iter().filter_map(|t| serde_json::to_string(t).ok()).collect();
    for item in now {
        if serde_json::to_string(item).is_ok_and(|key| !seen.contains(&key)) {
            log(item);
        }
    }
}
