//! Leader election on a `coordination.k8s.io/v1` Lease, with kube-leader-election.

use std::time::{Duration, Instant};

use kube_leader_election::{LeaseLock, LeaseLockParams, LeaseLockResult};
use tokio::sync::watch;

use crate::metrics::METRICS;

pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    /// This replica's identity in the Lease (the Pod name in a cluster).
    pub holder: String,
    /// How long a Lease holds without renewal: the longest failover takes.
    pub duration: Duration,
}

/// Campaigns for the Lease for as long as the process runs; the receiver says whether this
/// replica leads now. Leadership is given up when a renewal has not succeeded for a whole
/// Lease duration, so that two replicas never both believe they lead for long.
pub fn campaign(client: kube::Client, settings: LeaseSettings) -> (watch::Receiver<bool>, LeaseLock) {
    let params = || LeaseLockParams {
        holder_id: settings.holder.clone(),
        lease_name: settings.name.clone(),
        lease_ttl: settings.duration,
    };
    let lock = LeaseLock::new(client.clone(), &settings.namespace, params());
    // A second handle on the same Lease, for stepping down at shutdown.
    let handle = LeaseLock::new(client, &settings.namespace, params());
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut last_renewal: Option<Instant> = None;
        loop {
            let leading = match lock.try_acquire_or_renew().await {
                Ok(LeaseLockResult::Acquired(_)) => {
                    last_renewal = Some(Instant::now());
                    true
                }
                Ok(LeaseLockResult::NotAcquired(_)) => false,
                Err(error) => {
                    tracing::warn!(%error, "cannot renew the leader Lease");
                    last_renewal.is_some_and(|t| t.elapsed() < settings.duration)
                }
            };
            if *tx.borrow() != leading {
                tracing::info!(leading, holder = %settings.holder, lease = %settings.name, "leadership changed");
            }
            METRICS.leader.set(i64::from(leading));
            if tx.send(leading).is_err() {
                return;
            }
            tokio::time::sleep(settings.duration / 3).await;
        }
    });
    (rx, handle)
}
