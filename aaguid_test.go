package deadbolt

import "testing"

func TestAAGUIDPolicy(t *testing.T) {
	p := DefaultPolicy()
	p.WebAuthnAAGUIDDeny = []string{" CB69481E-8FF7-4039-93EC-0A2729A154A8 ", "cb69481e-8ff7-4039-93ec-0a2729a154a8"}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(p.WebAuthnAAGUIDDeny) != 1 || p.WebAuthnAAGUIDDeny[0] != "cb69481e-8ff7-4039-93ec-0a2729a154a8" {
		t.Errorf("normalised deny-list = %v", p.WebAuthnAAGUIDDeny)
	}
	yubi := AAGUIDString([]byte{0xcb, 0x69, 0x48, 0x1e, 0x8f, 0xf7, 0x40, 0x39, 0x93, 0xec, 0x0a, 0x27, 0x29, 0xa1, 0x54, 0xa8})
	tests := []struct {
		allow, deny []string
		aaguid      string
		want        bool
	}{
		{nil, nil, yubi, true},
		{nil, []string{yubi}, yubi, false},
		{[]string{yubi}, nil, yubi, true},
		{[]string{yubi}, nil, AAGUIDString(make([]byte, 16)), false},
		{[]string{yubi}, []string{yubi}, yubi, false},
	}
	for _, tt := range tests {
		q := Policy{WebAuthnAAGUIDAllow: tt.allow, WebAuthnAAGUIDDeny: tt.deny}
		if got := q.AllowsAuthenticator(tt.aaguid); got != tt.want {
			t.Errorf("allow %v deny %v: AllowsAuthenticator(%s) = %v, want %v", tt.allow, tt.deny, tt.aaguid, got, tt.want)
		}
	}
	for _, bad := range []string{"yubikey", "cb69481e8ff7403993ec0a2729a154a8", "zb69481e-8ff7-4039-93ec-0a2729a154a8"} {
		q := DefaultPolicy()
		q.WebAuthnAAGUIDAllow = []string{bad}
		if err := q.Validate(); !IsCode(err, EInvalid) {
			t.Errorf("allow-list %q = %v, want invalid", bad, err)
		}
	}
}
