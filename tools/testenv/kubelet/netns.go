package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
)

// Pod networking as a CNI bridge plugin would do it: one network namespace per Pod,
// a veth pair whose host end joins the bridge, the next free address of the pod range,
// and a default route via the bridge address. The bridge itself (and the rule that
// nothing arriving on it is forwarded elsewhere) is set up by scripts/testenv.

// netnsPrefix names every namespace this kubelet makes; scripts/testenv down removes them.
const netnsPrefix = "gantry-pod-"

type ipam struct {
	mu     sync.Mutex
	base   uint32
	size   uint32
	prefix int
	used   map[uint32]bool
	// last is the offset handed out last: allocation goes on from there, as the CNI
	// host-local plugin does, so that a just-freed address is not given to the next Pod while
	// the host may still remember the old Pod's MAC for it.
	last uint32
}

func newIPAM(cidr, gateway string) (*ipam, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, err
	}
	ones, bits := n.Mask.Size()
	a := &ipam{base: binary.BigEndian.Uint32(n.IP.To4()), size: 1 << uint(bits-ones), prefix: ones, used: map[uint32]bool{}}
	gw := net.ParseIP(gateway).To4()
	if gw == nil || !n.Contains(gw) {
		return nil, fmt.Errorf("node ip %s is not in pod range %s", gateway, cidr)
	}
	a.used[binary.BigEndian.Uint32(gw)-a.base] = true
	return a, nil
}

func (a *ipam) allocate() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := uint32(1); i < a.size-1; i++ {
		off := (a.last+i-1)%(a.size-2) + 1 // 1 .. size-2: neither network nor broadcast
		if !a.used[off] {
			a.used[off] = true
			a.last = off
			ip := make(net.IP, 4)
			binary.BigEndian.PutUint32(ip, a.base+off)
			return ip.String(), nil
		}
	}
	return "", fmt.Errorf("pod range is full")
}

func (a *ipam) release(ip string) {
	p := net.ParseIP(ip).To4()
	if p == nil {
		return
	}
	a.mu.Lock()
	delete(a.used, binary.BigEndian.Uint32(p)-a.base)
	a.mu.Unlock()
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// podNetwork names of one Pod: namespace, host veth, and the temporary peer name.
func podNetwork(uid string) (netns, hostVeth, peer string) {
	id := strings.ReplaceAll(uid, "-", "")
	if len(id) > 12 {
		id = id[:12]
	}
	return netnsPrefix + id, "gv" + id, "gp" + id
}

// setupNetns creates the namespace with eth0 at ip/prefix.
func (k *kubelet) setupNetns(uid, ip string) (string, error) {
	ns, hostVeth, peer := podNetwork(uid)
	deleteNetns(k.ipBin, ns)
	steps := [][]string{
		{"netns", "add", ns},
		{"link", "add", hostVeth, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", ns},
		{"-n", ns, "link", "set", peer, "name", "eth0"},
		{"-n", ns, "addr", "add", fmt.Sprintf("%s/%d", ip, k.ipam.prefix), "dev", "eth0"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "route", "add", "default", "via", k.nodeIP},
		{"link", "set", hostVeth, "master", k.bridge},
		{"link", "set", hostVeth, "up"},
	}
	for _, s := range steps {
		if err := run(k.ipBin, s...); err != nil {
			deleteNetns(k.ipBin, ns)
			_ = run(k.ipBin, "link", "del", hostVeth)
			return "", err
		}
	}
	// The host may still hold a neighbour entry for this address from an earlier Pod, with a
	// MAC that no longer exists: forget it so the first packets find the new Pod.
	_ = run(k.ipBin, "neigh", "flush", "to", ip, "dev", k.bridge)
	return ns, nil
}

// deleteNetns removes a pod namespace; its veth pair goes with it.
func deleteNetns(ipBin, ns string) {
	ns = strings.TrimSpace(ns)
	if !strings.HasPrefix(ns, netnsPrefix) {
		return
	}
	_ = run(ipBin, "netns", "delete", ns)
	id := strings.TrimPrefix(ns, netnsPrefix)
	_ = exec.Command(ipBin, "link", "del", "gv"+id).Run()
}
