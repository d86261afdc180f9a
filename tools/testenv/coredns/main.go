// Command coredns is CoreDNS v1.x with only the plugins the test cluster's DNS uses.
//
// Upstream's main package (github.com/coredns/coredns) compiles in every plugin, with the
// cloud SDKs of route53, azure and clouddns; importing just the ones that the Corefile
// written by scripts/testenv names keeps the build short. Plugins register themselves in
// their package's init; coremain orders them by upstream's own directive list. No cache
// plugin: answers come from the kubernetes plugin's watch, and tests that delete and
// recreate Services must not see cached denials.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
