//! Assembles the sockets of the table from the served listeners and the attached routes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use super::gateways::GatewayModel;
use super::hostnames;
use super::precedence::Precedence;
use super::routes::Attachment;
use crate::table::{HostKey, HostRouter, RouteEntry, RouteList, RouteTable, Socket, TlsSocket};

/// A served listener on a socket: (gateway index, listener index).
type ListenerRef = (usize, usize);

pub(super) fn table(gateways: &[GatewayModel<'_>], attachments: &[Attachment]) -> RouteTable {
    // Listeners on one socket share their port: a socket is bound for one listener port.
    let mut sockets: BTreeMap<SocketAddr, (u16, Vec<ListenerRef>)> = BTreeMap::new();
    for (gi, gw) in gateways.iter().enumerate() {
        for (li, l) in gw.listeners.iter().enumerate().filter(|(_, l)| gw.serves(l)) {
            for socket in gw.sockets(l) {
                sockets.entry(socket).or_insert_with(|| (l.port, Vec::new())).1.push((gi, li));
            }
        }
    }
    let sockets = sockets
        .into_iter()
        .filter_map(|(address, (listener_port, listeners))| {
            Some(Socket {
                address,
                listener_port,
                tls: tls_socket(gateways, &listeners).ok()?,
                listeners: listeners.iter().map(|&(g, l)| gateways[g].listener_id(&gateways[g].listeners[l])).collect(),
                hosts: host_router(gateways, &listeners, attachments),
            })
        })
        .collect();
    RouteTable { sockets }
}

/// The TLS of a socket whose listeners are HTTPS (listeners on one socket share a protocol);
/// an error drops the socket rather than serve its HTTPS listeners in plain text.
fn tls_socket(gateways: &[GatewayModel<'_>], listeners: &[ListenerRef]) -> Result<Option<Arc<TlsSocket>>, ()> {
    let certified: Vec<_> = listeners
        .iter()
        .filter_map(|&(g, l)| {
            let listener = &gateways[g].listeners[l];
            let certificates = listener.certificates.as_ref()?.as_ref().ok()?;
            Some((listener.hostname.clone(), certificates.clone()))
        })
        .collect();
    if certified.is_empty() {
        return Ok(None);
    }
    match TlsSocket::new(certified) {
        Ok(tls) => Ok(Some(Arc::new(tls))),
        Err(error) => {
            // Only a provider without TLS 1.2/1.3 fails here: a build problem, not input.
            tracing::error!(%error, "cannot build a TLS configuration; the socket is not served");
            Err(())
        }
    }
}

/// One route list per host key. A key's list holds every rule-match whose hostname covers the
/// key, taken only from the most specific listener that matches the key: requests are matched to
/// listeners first, then to routes.
fn host_router(gateways: &[GatewayModel<'_>], listeners: &[ListenerRef], attachments: &[Attachment]) -> HostRouter {
    let on_socket: Vec<&Attachment> =
        attachments.iter().filter(|a| listeners.contains(&(a.gateway, a.listener))).collect();
    let hostname = |(g, l): ListenerRef| &gateways[g].listeners[l].hostname;
    // Listener hostnames are keys too, so that a host falls to its own listener even when that
    // listener has no route (and answers 404) rather than to a broader one.
    let mut keys: BTreeSet<HostKey> = listeners.iter().map(|&l| hostname(l).clone()).collect();
    keys.extend(on_socket.iter().flat_map(|a| a.hostnames.iter().cloned()));

    let entries = keys.into_iter().map(|key| {
        let listener = listeners
            .iter()
            .copied()
            .filter(|&l| hostnames::covers(hostname(l), &key))
            .min_by_key(|&l| hostnames::specificity(hostname(l)));
        let mut ranked: Vec<(Precedence<'_>, RouteEntry)> = Vec::new();
        for a in on_socket.iter().filter(|a| Some((a.gateway, a.listener)) == listener) {
            if hostnames::best_cover(&a.hostnames, &key).is_none() {
                continue;
            }
            let route = &a.route;
            // Ranked by the route's own hostname that covers the key, not by its intersection
            // with the listener's: an exact `abc.example.com` route goes before a
            // `*.example.com` route on an `abc.example.com` listener; no hostname ranks last.
            let host = hostnames::best_cover(&route.hostnames, &key).cloned().unwrap_or(HostKey::Any);
            for rule in &route.rules {
                for (mi, m) in rule.matches.iter().enumerate() {
                    let precedence = Precedence::new(host.clone(), m, route.created, &route.key, rule.index, mi);
                    ranked.push((precedence, RouteEntry { matches: m.clone(), rule: Arc::clone(&rule.rule) }));
                }
            }
        }
        ranked.sort_by(|a, b| a.0.cmp(&b.0));
        (key, RouteList { entries: ranked.into_iter().map(|(_, e)| e).collect() })
    });
    HostRouter::new(entries.collect::<Vec<_>>())
}
