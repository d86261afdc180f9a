//! Keeps each backend's state alive across table swaps while its endpoints and policy stay the
//! same. Used at compile time only, never on the request path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use super::state::active_endpoints;
use super::{BackendState, BalancerConfig, Endpoint};

#[derive(Debug, Default)]
pub struct Registry {
    states: Mutex<HashMap<Arc<str>, Weak<BackendState>>>,
}

impl Registry {
    /// The state for backend `id`: the one the current table uses when its endpoint set and
    /// config are unchanged, a fresh one otherwise. Compares before building, so that an
    /// unchanged consistent-hash backend does not rebuild its Maglev table on every compile.
    pub fn backend(&self, id: &Arc<str>, endpoints: &[Endpoint], config: &BalancerConfig) -> Arc<BackendState> {
        let active = active_endpoints(endpoints);
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = states.get(id).and_then(Weak::upgrade)
            && existing.endpoints() == active.as_slice()
            && existing.config() == config
        {
            return existing;
        }
        let state = Arc::new(BackendState::from_active(active, config.clone()));
        states.insert(Arc::clone(id), Arc::downgrade(&state));
        state
    }

    /// Forgets backends that no table uses any more.
    pub fn prune(&self) {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        states.retain(|_, state| state.strong_count() > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::state::tests::endpoints;

    #[test]
    fn unchanged_backend_keeps_its_state() {
        let registry = Registry::default();
        let id: Arc<str> = Arc::from("default/svc:80");
        let a = registry.backend(&id, &endpoints(3), &BalancerConfig::default());
        let b = registry.backend(&id, &endpoints(3), &BalancerConfig::default());
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn endpoint_order_and_terminating_extras_do_not_matter() {
        let registry = Registry::default();
        let id: Arc<str> = Arc::from("default/svc:80");
        let mut eps = endpoints(3);
        let a = registry.backend(&id, &eps, &BalancerConfig::default());
        eps.reverse();
        eps.push(crate::balance::Endpoint { ready: false, ..endpoints(4)[3] });
        let b = registry.backend(&id, &eps, &BalancerConfig::default());
        assert!(Arc::ptr_eq(&a, &b));
        let random = BalancerConfig { algorithm: crate::balance::Algorithm::Random, ..BalancerConfig::default() };
        assert!(!Arc::ptr_eq(&a, &registry.backend(&id, &eps, &random)), "a new policy gets fresh state");
    }

    #[test]
    fn changed_endpoints_get_fresh_state() {
        let registry = Registry::default();
        let id: Arc<str> = Arc::from("default/svc:80");
        let a = registry.backend(&id, &endpoints(3), &BalancerConfig::default());
        let b = registry.backend(&id, &endpoints(2), &BalancerConfig::default());
        assert!(!Arc::ptr_eq(&a, &b));
        drop((a, b));
        registry.prune();
        assert!(registry.states.lock().unwrap().is_empty());
    }
}
