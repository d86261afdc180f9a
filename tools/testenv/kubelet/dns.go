package main

import (
	"bufio"
	"bytes"
	"os"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// A Pod's /etc/resolv.conf, as a real kubelet writes it from the Pod's dnsPolicy and
// dnsConfig (pkg/kubelet/network/dns in Kubernetes): the launcher bind-mounts it in the
// Pod's own mount namespace, so the host's file stays as it is.
//
//   - ClusterFirst (the default) and ClusterFirstWithHostNet, with --cluster-dns set:
//     nameserver <cluster DNS>, search <ns>.svc.<domain> svc.<domain> <domain> and the
//     host's search domains, options ndots:5.
//   - Default, or ClusterFirst without --cluster-dns: the host's resolv.conf.
//   - None: only what dnsConfig says.
//
// dnsConfig's nameservers and searches are appended (without repeats), its options
// override options of the same name.

const (
	maxNameservers = 3  // what the resolver reads
	maxSearches    = 32 // what the API allows in a Pod's dnsConfig
)

// resolvConf is the content of a resolv.conf.
type resolvConf struct {
	nameservers, searches, options []string
}

// parseResolvConf reads nameserver, search (or domain) and options lines.
func parseResolvConf(data []byte) resolvConf {
	var rc resolvConf
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			rc.nameservers = append(rc.nameservers, f[1])
		case "search", "domain": // the last of them wins, as in the resolver
			rc.searches = slices.Clone(f[1:])
		case "options":
			rc.options = append(rc.options, f[1:]...)
		}
	}
	return rc
}

func (rc resolvConf) String() string {
	var b strings.Builder
	for _, ns := range rc.nameservers {
		b.WriteString("nameserver " + ns + "\n")
	}
	if len(rc.searches) > 0 {
		b.WriteString("search " + strings.Join(rc.searches, " ") + "\n")
	}
	if len(rc.options) > 0 {
		b.WriteString("options " + strings.Join(rc.options, " ") + "\n")
	}
	return b.String()
}

// podDNS is the resolv.conf a Pod gets, or false when it simply sees the host's.
// clusterDNS may be empty (no --cluster-dns).
func podDNS(pod *corev1.Pod, clusterDNS []string, clusterDomain string, host resolvConf) (resolvConf, bool) {
	var rc resolvConf
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	switch {
	case policy == corev1.DNSNone:
	case (policy == corev1.DNSClusterFirst || policy == corev1.DNSClusterFirstWithHostNet) && len(clusterDNS) > 0:
		rc.nameservers = slices.Clone(clusterDNS)
		rc.searches = []string{pod.Namespace + ".svc." + clusterDomain, "svc." + clusterDomain, clusterDomain}
		rc.searches = append(rc.searches, host.searches...)
		rc.options = []string{"ndots:5"}
	default: // Default, or a cluster policy without a cluster DNS
		if pod.Spec.DNSConfig == nil {
			return resolvConf{}, false
		}
		rc = resolvConf{slices.Clone(host.nameservers), slices.Clone(host.searches), slices.Clone(host.options)}
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		rc.nameservers = appendNew(rc.nameservers, dc.Nameservers...)
		rc.searches = appendNew(rc.searches, dc.Searches...)
		for _, o := range dc.Options {
			opt := o.Name
			if o.Value != nil && *o.Value != "" {
				opt += ":" + *o.Value
			}
			rc.options = setOption(rc.options, opt)
		}
	}
	rc.searches = appendNew(nil, rc.searches...)
	if len(rc.nameservers) > maxNameservers {
		rc.nameservers = rc.nameservers[:maxNameservers]
	}
	if len(rc.searches) > maxSearches {
		rc.searches = rc.searches[:maxSearches]
	}
	return rc, true
}

// appendNew appends the values not already in list.
func appendNew(list []string, values ...string) []string {
	for _, v := range values {
		if v != "" && !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

// setOption sets a resolver option ("name" or "name:value"), replacing one of that name.
func setOption(options []string, opt string) []string {
	name, _, _ := strings.Cut(opt, ":")
	for i, o := range options {
		if n, _, _ := strings.Cut(o, ":"); n == name {
			options[i] = opt
			return options
		}
	}
	return append(options, opt)
}

// writeResolvConf writes the Pod's resolv.conf into its folder; "" when the Pod sees the
// host's file.
func (r *podRun) writeResolvConf(pod *corev1.Pod) (string, error) {
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !os.IsNotExist(err) {
		return "", err
	}
	rc, ok := podDNS(pod, r.k.clusterDNS, r.k.clusterDomain, parseResolvConf(host))
	if !ok {
		return "", nil
	}
	path := r.dir + "/resolv.conf"
	return path, writeFile(path, []byte(rc.String()), 0o644)
}
