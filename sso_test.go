package deadbolt

import (
	"slices"
	"testing"
)

func TestSSOProviderValidate(t *testing.T) {
	oidc := func(edit func(p *SSOProvider)) *SSOProvider {
		p := &SSOProvider{Kind: SSOOIDC, Name: " Okta ", Issuer: "https://corp.okta.com", ClientID: "abc"}
		edit(p)
		return p
	}
	tests := []struct {
		name  string
		p     *SSOProvider
		field string // "" when valid
	}{
		{"valid", oidc(func(p *SSOProvider) {}), ""},
		{"loopback http", oidc(func(p *SSOProvider) { p.Issuer = "http://127.0.0.1:5556/dex" }), ""},
		{"plain http", oidc(func(p *SSOProvider) { p.Issuer = "http://corp.example" }), "issuer"},
		{"no issuer", oidc(func(p *SSOProvider) { p.Issuer = "" }), "issuer"},
		{"issuer with a fragment", oidc(func(p *SSOProvider) { p.Issuer = "https://corp.example/#x" }), "issuer"},
		{"no client id", oidc(func(p *SSOProvider) { p.ClientID = " " }), "client_id"},
		{"secret on two lines", oidc(func(p *SSOProvider) { p.ClientSecret = "a\nb" }), "client_secret"},
		{"no name", oidc(func(p *SSOProvider) { p.Name = "  " }), "name"},
		{"owner by JIT", oidc(func(p *SSOProvider) { p.DefaultRole = RoleOwner }), "default_role"},
		{"unknown role", oidc(func(p *SSOProvider) { p.DefaultRole = "boss" }), "default_role"},
		{"domain with a space", oidc(func(p *SSOProvider) { p.Domains = []string{"corp example"} }), "domains"},
		{"one-label domain", oidc(func(p *SSOProvider) { p.Domains = []string{"localhost"} }), "domains"},
		{"unknown kind", &SSOProvider{Kind: "ldap", Name: "X"}, "kind"},
		{"SAML without metadata", &SSOProvider{Kind: SSOSAML, Name: "X"}, "metadata_url"},
		{"SAML metadata URL over http", &SSOProvider{Kind: SSOSAML, Name: "X", MetadataURL: "http://idp.example/md"}, "metadata_url"},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		var got string
		if e, ok := err.(*Error); ok {
			got = e.Field
		} else if err != nil {
			got = "?" + err.Error()
		}
		if got != tt.field {
			t.Errorf("%s: Validate() field = %q (%v), want %q", tt.name, got, err, tt.field)
		}
	}
	p := oidc(func(p *SSOProvider) { p.Domains = []string{" @Corp.Example ", "corp.example", "sub.corp.example"} })
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.Name != "Okta" || p.DefaultRole != RoleEndUser || !slices.Equal(p.Domains, []string{"corp.example", "sub.corp.example"}) {
		t.Errorf("normalised = name %q role %q domains %v", p.Name, p.DefaultRole, p.Domains)
	}
	if !p.HasDomain("ann@CORP.example") || p.HasDomain("ann@other.example") || !p.Accepts("x@sub.corp.example") || p.Accepts("x@evilcorp.example") {
		t.Error("HasDomain/Accepts disagree with the domains")
	}
}
