package main

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var hostDNS = parseResolvConf([]byte("# host\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch corp.example\noptions edns0\n"))

func podWithDNS(policy corev1.DNSPolicy, cfg *corev1.PodDNSConfig) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop"},
		Spec:       corev1.PodSpec{DNSPolicy: policy, DNSConfig: cfg},
	}
}

func TestClusterFirstPodsAskTheClusterDNS(t *testing.T) {
	for _, policy := range []corev1.DNSPolicy{"", corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet} {
		rc, ok := podDNS(podWithDNS(policy, nil), []string{"10.96.0.10"}, "cluster.local", hostDNS)
		want := "nameserver 10.96.0.10\n" +
			"search shop.svc.cluster.local svc.cluster.local cluster.local corp.example\n" +
			"options ndots:5\n"
		if !ok || rc.String() != want {
			t.Errorf("policy %q: %v %q, want %q", policy, ok, rc.String(), want)
		}
	}
}

func TestWithoutClusterDNSPodsSeeTheHostsResolvConf(t *testing.T) {
	for _, policy := range []corev1.DNSPolicy{corev1.DNSClusterFirst, corev1.DNSDefault} {
		if rc, ok := podDNS(podWithDNS(policy, nil), nil, "cluster.local", hostDNS); ok {
			t.Errorf("policy %q: own resolv.conf %q, want the host's", policy, rc.String())
		}
	}
	if _, ok := podDNS(podWithDNS(corev1.DNSDefault, nil), []string{"10.96.0.10"}, "cluster.local", hostDNS); ok {
		t.Error("dnsPolicy Default: the host's resolv.conf, whatever the cluster DNS")
	}
}

func TestDNSConfigAddsToThePolicy(t *testing.T) {
	ndots := "2"
	cfg := &corev1.PodDNSConfig{
		Nameservers: []string{"192.0.2.54", "192.0.2.99"},
		Searches:    []string{"corp.example", "extra.example"},
		Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: &ndots}, {Name: "rotate"}},
	}
	rc, ok := podDNS(podWithDNS(corev1.DNSDefault, cfg), nil, "cluster.local", hostDNS)
	want := "nameserver 192.0.2.53\nnameserver 192.0.2.54\nnameserver 192.0.2.99\n" +
		"search corp.example extra.example\noptions edns0 ndots:2 rotate\n"
	if !ok || rc.String() != want {
		t.Errorf("Default + dnsConfig: %v %q, want %q", ok, rc.String(), want)
	}
	rc, _ = podDNS(podWithDNS(corev1.DNSClusterFirst, cfg), []string{"10.96.0.10"}, "cluster.local", hostDNS)
	want = "nameserver 10.96.0.10\nnameserver 192.0.2.54\nnameserver 192.0.2.99\n" +
		"search shop.svc.cluster.local svc.cluster.local cluster.local corp.example extra.example\noptions ndots:2 rotate\n"
	if rc.String() != want {
		t.Errorf("ClusterFirst + dnsConfig: %q, want %q", rc.String(), want)
	}
}

func TestDNSPolicyNoneTakesOnlyDNSConfig(t *testing.T) {
	cfg := &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "1.0.0.1", "9.9.9.9", "8.8.8.8"}, Searches: []string{"a.example"}}
	rc, ok := podDNS(podWithDNS(corev1.DNSNone, cfg), []string{"10.96.0.10"}, "cluster.local", hostDNS)
	want := "nameserver 1.1.1.1\nnameserver 1.0.0.1\nnameserver 9.9.9.9\nsearch a.example\n"
	if !ok || rc.String() != want {
		t.Errorf("None: %v %q, want %q (at most 3 nameservers)", ok, rc.String(), want)
	}
}
