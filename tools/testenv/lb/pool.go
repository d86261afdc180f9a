package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// pool hands out the addresses of one IPv4 range, each to at most one Service (keyed by
// namespace/name). It is not safe for concurrent use: the allocator's single worker owns it.
type pool struct {
	prefix netip.Prefix
	owner  map[netip.Addr]string
	held   map[string]netip.Addr
	// last is the address handed out last: the search for a free one goes on after it, so
	// that an address just released is not given straight to the next Service while clients
	// may still have connections to (or cached answers for) the old one.
	last netip.Addr
}

func newPool(cidr string) (*pool, error) {
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, err
	}
	if !prefix.Addr().Is4() || prefix.Bits() > 30 {
		return nil, fmt.Errorf("pool %s: an IPv4 range of at least 4 addresses is needed", cidr)
	}
	prefix = prefix.Masked()
	return &pool{prefix: prefix, owner: map[netip.Addr]string{}, held: map[string]netip.Addr{}, last: prefix.Addr()}, nil
}

func (p *pool) String() string { return p.prefix.String() }

// contains says whether a is an address this pool hands out: in the range, and neither
// its network nor its broadcast address.
func (p *pool) contains(a netip.Addr) bool {
	return p.prefix.Contains(a) && a != p.prefix.Addr() && a != p.broadcast()
}

// size is the number of addresses handed out: the range less network and broadcast.
func (p *pool) size() int { return 1<<(32-p.prefix.Bits()) - 2 }

func (p *pool) broadcast() netip.Addr {
	network := p.prefix.Addr().As4()
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(network[:])|uint32(p.size()+1))
	return netip.AddrFrom4(b)
}

// addressOf is the address key holds, if any.
func (p *pool) addressOf(key string) (netip.Addr, bool) {
	a, ok := p.held[key]
	return a, ok
}

// ownerOf is the key holding a, if any.
func (p *pool) ownerOf(a netip.Addr) (string, bool) {
	k, ok := p.owner[a]
	return k, ok
}

// take gives a to key when it is in the pool and free (or already key's). A key holds one
// address: any other it held is released.
func (p *pool) take(key string, a netip.Addr) bool {
	if !p.contains(a) {
		return false
	}
	if k, taken := p.owner[a]; taken && k != key {
		return false
	}
	p.release(key)
	p.owner[a] = key
	p.held[key] = a
	return true
}

// allocate gives key the address it holds, or else the next free one.
func (p *pool) allocate(key string) (netip.Addr, bool) {
	if a, ok := p.held[key]; ok {
		return a, true
	}
	a := p.last
	for range p.size() {
		a = a.Next()
		if !p.contains(a) {
			a = p.prefix.Addr().Next() // past the end: wrap around to the first address
		}
		if _, taken := p.owner[a]; !taken {
			p.owner[a] = key
			p.held[key] = a
			p.last = a
			return a, true
		}
	}
	return netip.Addr{}, false
}

// release frees key's address; it says which one, if key held any.
func (p *pool) release(key string) (netip.Addr, bool) {
	a, ok := p.held[key]
	if ok {
		delete(p.held, key)
		delete(p.owner, a)
	}
	return a, ok
}
