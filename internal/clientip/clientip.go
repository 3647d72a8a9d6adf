// Package clientip finds the address of the client behind a request, for
// per-IP limits and for the sign-in history. Forwarding headers
// (X-Forwarded-For, Forwarded) are believed only as far as a chain of
// proxies the operator trusts: anyone can send those headers, so an address
// in them counts only when a trusted proxy put it there.
package clientip

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Trusted is a parsed list of CIDRs of proxies whose forwarding headers are
// believed. The zero value and a nil *Trusted trust nobody, so a missing
// configuration fails closed: the connection's peer is the client.
type Trusted struct {
	prefixes []netip.Prefix
}

// Parse reads a comma- or space-separated list of CIDRs or bare IPs
// ("10.0.0.0/8, 192.168.1.1, ::1"). An empty list trusts nobody. A bad entry
// is an error that names it, so a typo in the configuration stops the
// service at start rather than silently trusting nobody (or everybody).
func Parse(list string) (*Trusted, error) {
	t := &Trusted{}
	for _, entry := range strings.FieldsFunc(list, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	}) {
		p, err := parseEntry(entry)
		if err != nil {
			return nil, fmt.Errorf("clientip: bad trusted proxy %q: %w", entry, err)
		}
		t.prefixes = append(t.prefixes, p)
	}
	return t, nil
}

// parseEntry reads one CIDR or bare IP as a prefix in the form Contains
// compares against: masked, without a zone, and IPv4-mapped IPv6 as IPv4
// (Contains unmaps the addresses it is asked about, so a mapped prefix
// would otherwise never match).
func parseEntry(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		a = a.Unmap().WithZone("")
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// String lists the trusted prefixes, for the log ("none" when empty).
func (t *Trusted) String() string {
	if t == nil || len(t.prefixes) == 0 {
		return "none"
	}
	parts := make([]string, len(t.prefixes))
	for i, p := range t.prefixes {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

// Contains reports whether ip is one of the trusted proxies. An IPv4-mapped
// IPv6 address counts as its IPv4 address, and a zone is ignored, since
// both are artefacts of how the socket was opened, not of who connected.
func (t *Trusted) Contains(ip netip.Addr) bool {
	if t == nil || !ip.IsValid() {
		return false
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range t.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// From returns the client IP of a request. It is the connection's peer
// (r.RemoteAddr) unless that peer is trusted. Then it walks the forwarded
// hops from the right (the nearest proxy's entry is last) and returns the
// first one that is not itself trusted: X-Forwarded-For if the request has
// any such header line (all lines joined in order), else the for= values
// of RFC 7239 Forwarded. If every hop is trusted it returns the leftmost.
//
// Everything left of the last trusted hop may have been written by the
// client, so a malformed entry, or a Forwarded "unknown" or obfuscated
// identifier, stops the walk there and the last good address seen is the
// answer: the result is always an address a trusted proxy vouched for (or
// the peer), never an attacker-chosen string.
//
// The result is a canonical IP string (IPv4-mapped IPv6 as IPv4, no zone),
// or "" if the peer itself is not an IP address (a Unix socket, a test
// request without RemoteAddr): the caller then has no address to go by.
func (t *Trusted) From(r *http.Request) string {
	peer, ok := parseNode(r.RemoteAddr)
	if !ok {
		return ""
	}
	best := peer
	if t.Contains(peer) {
		var hops []hop
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			hops = forwardedFor(xff)
		} else {
			hops = forwarded(r.Header.Values("Forwarded"))
		}
		for i := len(hops) - 1; i >= 0; i-- {
			if !hops[i].ok {
				break
			}
			best = hops[i].addr
			if !t.Contains(best) {
				break
			}
		}
	}
	return best.Unmap().WithZone("").String()
}

// LimitKey is the key per-IP limits count under: an IPv4 address as is, an
// IPv6 address by its /64 prefix ("2001:db8:1:2::/64"), since one host
// usually owns a whole /64 and could otherwise step through 2^64 addresses
// to dodge a limit. An IPv4-mapped IPv6 address counts as IPv4. Input that
// is not an IP address (From's "" for an unknown peer) is returned
// unchanged: it never equals the key of a real address, and all unknown
// peers then share the one limit for "".
func LimitKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip // unreachable: a zone-less IPv6 address has a /64
	}
	return p.String()
}

// hop is one forwarded address; ok is false for an entry that is not one.
type hop struct {
	addr netip.Addr
	ok   bool
}

// forwardedFor reads X-Forwarded-For lines: comma-separated addresses,
// some proxies adding a port. Empty list elements are skipped, as HTTP's
// list syntax allows them and they carry no address.
func forwardedFor(lines []string) []hop {
	var hops []hop
	for _, line := range lines {
		for e := range strings.SplitSeq(line, ",") {
			e = strings.Trim(e, " \t")
			if e == "" {
				continue
			}
			a, ok := parseNode(e)
			hops = append(hops, hop{a, ok})
		}
	}
	return hops
}

// forwarded reads the for= values of RFC 7239 Forwarded lines, one hop per
// element. Each line is parsed on its own, so a broken quote in a line the
// client sent cannot swallow the elements a proxy added in a later line. A
// syntax error ends its line with a bad hop, which stops the walk there; an
// element without for= is a bad hop too, as it names no client.
func forwarded(lines []string) []hop {
	var hops []hop
	for _, line := range lines {
		hops = append(hops, forwardedLine(line)...)
	}
	return hops
}

func forwardedLine(s string) []hop {
	var hops []hop
	p := 0
	skipWS := func() {
		for p < len(s) && (s[p] == ' ' || s[p] == '\t') {
			p++
		}
	}
	for {
		// An element: pairs separated by ';', ended by ',' or the end.
		skipWS()
		if p == len(s) {
			return hops
		}
		if s[p] == ',' { // an empty list element
			p++
			continue
		}
		var h hop
		var seenFor bool
		for {
			skipWS()
			name := token(s, &p)
			if name == "" || p == len(s) || s[p] != '=' {
				return append(hops, hop{})
			}
			p++
			var value string
			if p < len(s) && s[p] == '"' {
				v, ok := quoted(s, &p)
				if !ok {
					return append(hops, hop{})
				}
				value = v
			} else {
				value = token(s, &p)
			}
			if strings.EqualFold(name, "for") {
				if seenFor { // two for= in one element: which one?
					return append(hops, hop{})
				}
				seenFor = true
				h.addr, h.ok = parseForwardedNode(value)
			}
			skipWS()
			if p < len(s) && s[p] == ';' {
				p++
				continue
			}
			break
		}
		if p < len(s) && s[p] != ',' {
			return append(hops, hop{})
		}
		if !seenFor {
			h = hop{}
		}
		hops = append(hops, h)
		if p == len(s) {
			return hops
		}
		p++ // the ','
	}
}

// token reads an RFC 7230 token at *p.
func token(s string, p *int) string {
	start := *p
	for *p < len(s) && isTchar(s[*p]) {
		*p++
	}
	return s[start:*p]
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// quoted reads an RFC 7230 quoted-string at *p (which is at the opening
// quote) and returns its unescaped content.
func quoted(s string, p *int) (string, bool) {
	var b strings.Builder
	for i := *p + 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			*p = i + 1
			return b.String(), true
		case '\\':
			i++
			if i == len(s) {
				return "", false
			}
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return "", false
}

// parseForwardedNode reads a Forwarded node: an IPv4 address or a
// bracketed IPv6 address, either with an optional port. "unknown" and
// obfuscated identifiers ("_hidden") are not addresses and so are not ok.
func parseForwardedNode(s string) (netip.Addr, bool) {
	host := s
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 || !validPort(s[end+1:]) {
			return netip.Addr{}, false
		}
		host = s[1:end]
	} else if i := strings.IndexByte(s, ':'); i >= 0 && strings.Count(s, ":") == 1 {
		// IPv4 with a port. Bare IPv6 without brackets is against the RFC
		// but unambiguous, so it is read as it stands below.
		if !validPort(s[i:]) {
			return netip.Addr{}, false
		}
		host = s[:i]
	}
	a, err := netip.ParseAddr(host)
	return a, err == nil
}

// validPort reports whether s is empty or ":" and an RFC 7239 node-port:
// digits or an obfuscated port ("_abc"). The port is dropped, but a node
// with junk after its address is malformed.
func validPort(s string) bool {
	if s == "" {
		return true
	}
	if len(s) < 2 || s[0] != ':' {
		return false
	}
	for _, c := range []byte(s[1:]) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// parseNode reads an address as RemoteAddr and X-Forwarded-For carry it:
// "ip", "ip:port", "[ipv6]" or "[ipv6]:port".
func parseNode(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	return a, err == nil
}
