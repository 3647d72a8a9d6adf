package clientip

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// proxies is the trust list of most tests: a private range, one IPv4
// proxy, and an IPv6 range.
const proxies = "10.0.0.0/8, 192.168.1.1 2001:db8:ffff::/48"

func mustParse(t testing.TB, list string) *Trusted {
	t.Helper()
	tr, err := Parse(list)
	if err != nil {
		t.Fatalf("Parse(%q): %v", list, err)
	}
	return tr
}

func TestParse(t *testing.T) {
	tests := []struct {
		list    string
		in, out []string // addresses that must be, and must not be, trusted
	}{
		{list: "", out: []string{"10.0.0.1", "127.0.0.1", "::1"}},
		{list: "  ,, ", out: []string{"10.0.0.1"}},
		{list: "10.0.0.0/8, 192.168.1.1, ::1", in: []string{"10.1.2.3", "192.168.1.1", "::1"}, out: []string{"11.0.0.1", "192.168.1.2", "::2"}},
		{list: "10.0.0.0/8\t192.168.1.1\n::1", in: []string{"10.255.255.255", "192.168.1.1", "::1"}},
		// A CIDR with host bits set means its network.
		{list: "10.1.2.3/16", in: []string{"10.1.0.1", "10.1.255.255"}, out: []string{"10.2.0.1"}},
		// IPv4-mapped entries and addresses both count as IPv4.
		{list: "::ffff:10.0.0.0/104", in: []string{"10.9.9.9", "::ffff:10.9.9.9"}, out: []string{"11.0.0.1"}},
		{list: "::ffff:192.0.2.1", in: []string{"192.0.2.1", "::ffff:192.0.2.1"}},
		{list: "192.0.2.0/24", in: []string{"::ffff:192.0.2.7"}},
		// A zone on either side is ignored.
		{list: "fe80::1%eth0", in: []string{"fe80::1", "fe80::1%eth1"}},
		// IPv6 ranges do not swallow IPv4 addresses.
		{list: "::/0", in: []string{"2001:db8::1"}, out: []string{"192.0.2.1"}},
	}
	for _, tc := range tests {
		tr := mustParse(t, tc.list)
		for _, s := range tc.in {
			if got := tr.Contains(netip.MustParseAddr(s)); !got {
				t.Errorf("Parse(%q).Contains(%s) = false, want true", tc.list, s)
			}
		}
		for _, s := range tc.out {
			if got := tr.Contains(netip.MustParseAddr(s)); got {
				t.Errorf("Parse(%q).Contains(%s) = true, want false", tc.list, s)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ list, bad string }{
		{"10.0.0.0/8, 10.0.0.300", "10.0.0.300"},
		{"10.0.0.0/33", "10.0.0.0/33"},
		{"example.com", "example.com"},
		{"10.0.0.0/8;192.168.0.0/16", "10.0.0.0/8;192.168.0.0/16"},
		{"::1 fe80::/10%eth0", "fe80::/10%eth0"},
	}
	for _, tc := range tests {
		tr, err := Parse(tc.list)
		if err == nil {
			t.Errorf("Parse(%q) = %v, nil; want an error", tc.list, tr)
			continue
		}
		if !strings.Contains(err.Error(), `"`+tc.bad+`"`) {
			t.Errorf("Parse(%q) error = %q, want it to name %q", tc.list, err, tc.bad)
		}
	}
}

func TestContainsNil(t *testing.T) {
	var tr *Trusted
	if tr.Contains(netip.MustParseAddr("10.0.0.1")) {
		t.Errorf("nil Trusted: Contains(10.0.0.1) = true, want false")
	}
	if got := tr.From(request("10.0.0.1:1234", "X-Forwarded-For", "203.0.113.9")); got != "10.0.0.1" {
		t.Errorf("nil Trusted: From = %q, want %q", got, "10.0.0.1")
	}
	if mustParse(t, proxies).Contains(netip.Addr{}) {
		t.Errorf("Contains(invalid Addr) = true, want false")
	}
}

// request builds a request from its peer and header name/value pairs; a
// name given twice adds a second header line.
func request(remote string, header ...string) *http.Request {
	r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

func TestFrom(t *testing.T) {
	tests := []struct {
		name   string
		trust  string // defaults to proxies
		remote string
		header []string
		want   string
	}{
		// The peer is not a proxy: its headers are not believed.
		{name: "untrusted peer, no headers", remote: "203.0.113.5:4431", want: "203.0.113.5"},
		{name: "untrusted peer, spoofed XFF", remote: "203.0.113.5:4431", header: []string{"X-Forwarded-For", "198.51.100.1"}, want: "203.0.113.5"},
		{name: "untrusted peer, spoofed Forwarded", remote: "203.0.113.5:4431", header: []string{"Forwarded", "for=198.51.100.1"}, want: "203.0.113.5"},
		{name: "untrusted IPv6 peer", remote: "[2001:db8:1::5]:443", header: []string{"X-Forwarded-For", "198.51.100.1"}, want: "2001:db8:1::5"},
		{name: "empty list trusts nobody", trust: " ", remote: "10.0.0.1:80", header: []string{"X-Forwarded-For", "198.51.100.1"}, want: "10.0.0.1"},

		// X-Forwarded-For through trusted proxies.
		{name: "trusted peer, one hop", remote: "10.0.0.1:80", header: []string{"X-Forwarded-For", "198.51.100.1"}, want: "198.51.100.1"},
		{name: "client, trusted proxy2", remote: "10.0.0.1:80", header: []string{"X-Forwarded-For", "198.51.100.1, 192.168.1.1"}, want: "198.51.100.1"},
		{name: "spoofed left of the real client", remote: "10.0.0.1:80", header: []string{"X-Forwarded-For", "1.1.1.1, 198.51.100.1, 10.2.2.2"}, want: "198.51.100.1"},
		{name: "multiple XFF lines", remote: "10.0.0.1:80", header: []string{"X-Forwarded-For", "1.1.1.1, 198.51.100.1", "X-Forwarded-For", "10.3.3.3,10.4.4.4"}, want: "198.51.100.1"},
		{name: "XFF line per proxy", remote: "10.0.0.1:80", header: []string{"X-Forwarded-For", "1.1.1.1", "X-Forwarded-For", "198.51.100.1", "X-Forwarded-For", "10.4.4.4"}, want: "198.51.100.1"},
		{name: "XFF entry with port", remote: "10.0.0.1:80", header: []string{"X-Forwarded-For", "198.51.100.1:5555, [2001:db8:ffff::1]:443"}, want: "198.51.100.1"},
		{name: "XFF IPv6", remote: "10.0.0.1:80", header: []string{"X-Forwarded-For", "2001:DB8:0:0:0:0:0:1"}, want: "2001:db8::1"},
		{name: "XFF empty elements", remote: "10.0.0.1:80", header: []string{"X-Forwarded-For", " , 198.51.100.1,, "}, want: "198.51.100.1"},
		{name: "XFF present but empty", remote: "10.0.0.1:80", header: []string{"X-Forwarded-For", "", "Forwarded", "for=198.51.100.1"}, want: "10.0.0.1"},
		{name: "XFF wins over Forwarded", remote: "10.0.0.1:80", header: []string{"Forwarded", "for=198.51.100.2", "X-Forwarded-For", "198.51.100.1"}, want: "198.51.100.1"},
		{name: "all-trusted chain", remote: "10.0.0.1:80", header: []string{"X-Forwarded-For", "10.9.9.9, 192.168.1.1, 10.0.0.2"}, want: "10.9.9.9"},
		{name: "IPv6 proxy range", remote: "[2001:db8:ffff::10]:443", header: []string{"X-Forwarded-For", "198.51.100.1, 2001:db8:ffff:1::1"}, want: "198.51.100.1"},

		// Garbage stops the walk at the last good address.
		{name: "garbage XFF", remote: "10.0.0.1:80", header: []string{"X-Forwarded-For", "<script>"}, want: "10.0.0.1"},
		{name: "garbage left of client", remote: "10.0.0.1:80", header: []string{"X-Forwarded-For", "evil, 198.51.100.1"}, want: "198.51.100.1"},
		{name: "garbage between proxies", remote: "10.0.0.1:80", header: []string{"X-Forwarded-For", "198.51.100.1, evil, 10.0.0.2"}, want: "10.0.0.2"},
		{name: "XFF unknown", remote: "10.0.0.1:80", header: []string{"X-Forwarded-For", "unknown"}, want: "10.0.0.1"},
		{name: "XFF IPv4 with zone", remote: "10.0.0.1:80", header: []string{"X-Forwarded-For", "198.51.100.1%eth0"}, want: "10.0.0.1"},
		{name: "XFF control characters", remote: "10.0.0.1:80", header: []string{"X-Forwarded-For", "198.51.100.1\r\nX: y"}, want: "10.0.0.1"},

		// RFC 7239 Forwarded.
		{name: "Forwarded IPv4", remote: "10.0.0.1:80", header: []string{"Forwarded", "for=198.51.100.1;proto=https;by=10.0.0.1"}, want: "198.51.100.1"},
		{name: "Forwarded quoted IPv6 with port", remote: "10.0.0.1:80", header: []string{"Forwarded", `for="[2001:db8:cafe::17]:4711"`}, want: "2001:db8:cafe::17"},
		{name: "Forwarded quoted IPv6", remote: "10.0.0.1:80", header: []string{"Forwarded", `For="[2001:db8:cafe::17]"`}, want: "2001:db8:cafe::17"},
		{name: "Forwarded quoted IPv4 with port", remote: "10.0.0.1:80", header: []string{"Forwarded", `for="198.51.100.1:8080"`}, want: "198.51.100.1"},
		{name: "Forwarded chain", remote: "10.0.0.1:80", header: []string{"Forwarded", `for=1.1.1.1, for=198.51.100.1;proto=http, for="[2001:db8:ffff::2]"`}, want: "198.51.100.1"},
		{name: "Forwarded multiple lines", remote: "10.0.0.1:80", header: []string{"Forwarded", "for=198.51.100.1", "Forwarded", "for=10.5.5.5"}, want: "198.51.100.1"},
		{name: "Forwarded quoted comma", remote: "10.0.0.1:80", header: []string{"Forwarded", `for=198.51.100.1;x="a,b;c", for=10.5.5.5`}, want: "198.51.100.1"},
		{name: "Forwarded escaped quote", remote: "10.0.0.1:80", header: []string{"Forwarded", `for=198.51.100.1;x="a\"b", for=10.5.5.5`}, want: "198.51.100.1"},
		{name: "Forwarded unknown", remote: "10.0.0.1:80", header: []string{"Forwarded", "for=198.51.100.1, for=unknown, for=10.5.5.5"}, want: "10.5.5.5"},
		{name: "Forwarded obfuscated", remote: "10.0.0.1:80", header: []string{"Forwarded", `for=_hidden, for="_SEVKISEK"`}, want: "10.0.0.1"},
		{name: "Forwarded obfuscated port", remote: "10.0.0.1:80", header: []string{"Forwarded", `for="198.51.100.1:_p1"`}, want: "198.51.100.1"},
		{name: "Forwarded element without for", remote: "10.0.0.1:80", header: []string{"Forwarded", "for=1.1.1.1, proto=https"}, want: "10.0.0.1"},
		{name: "Forwarded unterminated quote", remote: "10.0.0.1:80", header: []string{"Forwarded", `for="198.51.100.1`}, want: "10.0.0.1"},
		{name: "Forwarded broken line left", remote: "10.0.0.1:80", header: []string{"Forwarded", `for="1.1.1.1`, "Forwarded", "for=198.51.100.1"}, want: "198.51.100.1"},
		{name: "Forwarded unquoted brackets", remote: "10.0.0.1:80", header: []string{"Forwarded", "for=[2001:db8::1]"}, want: "10.0.0.1"},
		{name: "Forwarded junk after IPv6", remote: "10.0.0.1:80", header: []string{"Forwarded", `for="[2001:db8::1]x"`}, want: "10.0.0.1"},
		{name: "Forwarded two for", remote: "10.0.0.1:80", header: []string{"Forwarded", "for=198.51.100.1;for=198.51.100.2"}, want: "10.0.0.1"},
		{name: "Forwarded junk after value", remote: "10.0.0.1:80", header: []string{"Forwarded", "for=198.51.100.1 x"}, want: "10.0.0.1"},
		{name: "Forwarded all trusted", remote: "10.0.0.1:80", header: []string{"Forwarded", "for=10.1.1.1, for=10.2.2.2"}, want: "10.1.1.1"},

		// Canonical output.
		{name: "IPv4-mapped peer", remote: "[::ffff:203.0.113.5]:4431", want: "203.0.113.5"},
		{name: "IPv4-mapped trusted peer", remote: "[::ffff:10.0.0.1]:80", header: []string{"X-Forwarded-For", "::ffff:198.51.100.1"}, want: "198.51.100.1"},
		{name: "zoned peer", remote: "[fe80::1%eth0]:80", want: "fe80::1"},
		{name: "peer without port", remote: "203.0.113.5", want: "203.0.113.5"},
		{name: "peer not an IP", remote: "@", want: ""},
		{name: "no peer", remote: "", header: []string{"X-Forwarded-For", "198.51.100.1"}, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list := tc.trust
			if list == "" {
				list = proxies
			}
			tr := mustParse(t, list)
			if got := tr.From(request(tc.remote, tc.header...)); got != tc.want {
				t.Errorf("From(peer %q, %q) = %q, want %q", tc.remote, tc.header, got, tc.want)
			}
		})
	}
}

func TestLimitKey(t *testing.T) {
	tests := []struct{ ip, want string }{
		{"203.0.113.5", "203.0.113.5"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::", "2001:db8:1:2::/64"},
		{"2001:DB8:1:2::ffff", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::ffff:203.0.113.5", "203.0.113.5"},
		{"::1", "::/64"},
		// Not an address: returned unchanged (see LimitKey).
		{"", ""},
		{"unknown", "unknown"},
		{"203.0.113.5:80", "203.0.113.5:80"},
	}
	for _, tc := range tests {
		if got := LimitKey(tc.ip); got != tc.want {
			t.Errorf("LimitKey(%q) = %q, want %q", tc.ip, got, tc.want)
		}
	}
}

// FuzzFrom checks that From never panics, answers "" or a canonical IP,
// and never looks past an untrusted peer.
func FuzzFrom(f *testing.F) {
	seeds := []struct{ remote, xff, fwd string }{
		{"10.0.0.1:80", "198.51.100.1, 192.168.1.1", ""},
		{"10.0.0.1:80", "", `for="[2001:db8:cafe::17]:4711";proto=https, for=10.2.2.2`},
		{"[::ffff:10.0.0.1]:80", "::ffff:198.51.100.1, evil", ""},
		{"203.0.113.5:1", "198.51.100.1", "for=198.51.100.2"},
		{"10.0.0.1:80", "", `for="a\"b,;c`},
		{"[fe80::1%eth0]:80", "fe80::2%eth1", "for=unknown"},
		{"@", "198.51.100.1", ""},
	}
	for _, s := range seeds {
		f.Add(s.remote, s.xff, s.fwd)
	}
	tr, err := Parse(proxies + " fe80::/10")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, remote, xff, fwd string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		// Header values may hold anything here, even what net/http would
		// refuse on the wire; several lines come from a newline.
		if xff != "" {
			r.Header["X-Forwarded-For"] = strings.Split(xff, "\n")
		}
		if fwd != "" {
			r.Header["Forwarded"] = strings.Split(fwd, "\n")
		}
		got := tr.From(r)
		if got == "" {
			return
		}
		a, err := netip.ParseAddr(got)
		if err != nil {
			t.Fatalf("From = %q, not an IP: %v", got, err)
		}
		if a.String() != got || a.Is4In6() || a.Zone() != "" {
			t.Fatalf("From = %q, not canonical (%s)", got, a)
		}
		if peer, ok := parseNode(remote); ok && !tr.Contains(peer) && a != peer.Unmap().WithZone("") {
			t.Fatalf("From = %q, but the untrusted peer is %s", got, peer)
		}
	})
}
