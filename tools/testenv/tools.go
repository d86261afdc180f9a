//go:build tools

// Package tools is never built: it names the commands that scripts/testenv builds from
// k8s.io/kubernetes, so that `go mod tidy` keeps what they need in this module's go.mod
// (without it, tidy drops kube-proxy's netlink, knftables and ipvs requirements).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
