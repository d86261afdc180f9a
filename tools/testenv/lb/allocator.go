package main

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// Event reasons, as `kubectl describe service` shows them.
const (
	reasonAllocated = "IPAllocated"
	reasonFailed    = "AllocationFailed"
)

// allocator gives each Service of type LoadBalancer (without a loadBalancerClass) an address
// of the pool and writes it to status.loadBalancer, as a cloud's load-balancer controller
// does; kube-proxy then programs that address as the Service's VIP.
type allocator struct {
	cs       kubernetes.Interface
	services corelisters.ServiceLister
	recorder record.EventRecorder
	pool     *pool
	// requeue asks for a Service to be reconciled again (by namespace/name).
	requeue func(key string)
}

// wantsAddress says whether the Service is ours to serve.
func wantsAddress(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.LoadBalancerClass == nil
}

// poolAddresses are the status addresses of svc that lie in the pool.
func (a *allocator) poolAddresses(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if ip, err := netip.ParseAddr(in.IP); err == nil && a.pool.contains(ip) {
			out = append(out, ip)
		}
	}
	return out
}

// restore takes back the addresses that Services already show in their status (after a
// restart of this program), oldest Service first, so that addresses stay stable.
func (a *allocator) restore() error {
	all, err := a.services.List(labels.Everything())
	if err != nil {
		return err
	}
	sort.Slice(all, func(i, j int) bool {
		return all[i].CreationTimestamp.Before(&all[j].CreationTimestamp)
	})
	for _, svc := range all {
		if !wantsAddress(svc) {
			continue
		}
		key, _ := cache.MetaNamespaceKeyFunc(svc)
		for _, ip := range a.poolAddresses(svc) {
			if a.pool.take(key, ip) {
				break
			}
		}
	}
	return nil
}

// reconcile brings one Service's status in line with the pool.
func (a *allocator) reconcile(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // not a key this program made; nothing to retry
	}
	svc, err := a.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		a.release(key)
		return nil
	}
	if err != nil {
		return err
	}
	if !wantsAddress(svc) {
		a.release(key)
		if svc.Spec.LoadBalancerClass == nil && len(a.poolAddresses(svc)) > 0 {
			// No longer of type LoadBalancer: take back what this program wrote.
			return a.writeStatus(ctx, svc, nil)
		}
		return nil
	}

	ip, problem := a.choose(key, svc)
	if problem != "" {
		a.release(key)
		a.recorder.Event(svc, corev1.EventTypeWarning, reasonFailed, problem)
		return a.writeStatus(ctx, svc, nil)
	}
	if slices.Equal(a.poolAddresses(svc), []netip.Addr{ip}) && len(svc.Status.LoadBalancer.Ingress) == 1 {
		return nil
	}
	if err := a.writeStatus(ctx, svc, []netip.Addr{ip}); err != nil {
		return err
	}
	log.Printf("%s: %s", key, ip)
	a.recorder.Eventf(svc, corev1.EventTypeNormal, reasonAllocated, "Assigned IP %s from pool %s", ip, a.pool)
	return nil
}

// choose picks the Service's address, or says why it gets none.
func (a *allocator) choose(key string, svc *corev1.Service) (netip.Addr, string) {
	if requested := svc.Spec.LoadBalancerIP; requested != "" {
		ip, err := netip.ParseAddr(requested)
		if held, ok := a.pool.addressOf(key); ok && held != ip {
			a.release(key) // the Service asks for another address now: free the old one for others
		}
		switch {
		case err != nil || !a.pool.contains(ip):
			return netip.Addr{}, fmt.Sprintf("spec.loadBalancerIP %s is not an address of pool %s", requested, a.pool)
		case !a.pool.take(key, ip):
			owner, _ := a.pool.ownerOf(ip)
			return netip.Addr{}, fmt.Sprintf("spec.loadBalancerIP %s is in use by Service %s", requested, owner)
		}
		return ip, ""
	}
	if ip, ok := a.pool.addressOf(key); ok {
		return ip, ""
	}
	// An address written before this program last started, not yet taken back by restore.
	for _, ip := range a.poolAddresses(svc) {
		if a.pool.take(key, ip) {
			return ip, ""
		}
	}
	if ip, ok := a.pool.allocate(key); ok {
		return ip, ""
	}
	return netip.Addr{}, fmt.Sprintf("no free address in pool %s", a.pool)
}

// release frees key's address and gives Services still waiting for one another chance.
func (a *allocator) release(key string) {
	ip, ok := a.pool.release(key)
	if !ok {
		return
	}
	log.Printf("%s: released %s", key, ip)
	waiting, err := a.services.List(labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range waiting {
		k, _ := cache.MetaNamespaceKeyFunc(svc)
		if _, held := a.pool.addressOf(k); wantsAddress(svc) && !held {
			a.requeue(k)
		}
	}
}

// writeStatus sets status.loadBalancer.ingress to ips (VIPs, as kube-proxy expects for
// addresses it must program itself), or clears it.
func (a *allocator) writeStatus(ctx context.Context, svc *corev1.Service, ips []netip.Addr) error {
	var ingress []corev1.LoadBalancerIngress
	for _, ip := range ips {
		vip := corev1.LoadBalancerIPModeVIP
		ingress = append(ingress, corev1.LoadBalancerIngress{IP: ip.String(), IPMode: &vip})
	}
	if len(ingress) == 0 && len(svc.Status.LoadBalancer.Ingress) == 0 {
		return nil
	}
	updated := svc.DeepCopy()
	updated.Status.LoadBalancer.Ingress = ingress
	_, err := a.cs.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	return err
}
