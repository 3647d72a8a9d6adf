package sso

import (
	"net/http"
	"testing"

	"github.com/crewjam/saml"

	"github.com/deadbolt/deadbolt"
)

func TestUpstreamMFA(t *testing.T) {
	tests := []struct {
		amr  []string
		acr  string
		want bool
	}{
		{[]string{"pwd", "mfa"}, "", true},                                          // Entra ID, Okta
		{[]string{"pwd", "otp"}, "", false},                                         // one factor named, no mfa
		{nil, "http://schemas.openid.net/pape/policies/2007/06/multi-factor", true}, // PAPE
		{nil, "mfa", true},
		{nil, "phrh", true},
		{nil, "urn:mace:incommon:iap:silver", false},
		{nil, "", false}, // Google says nothing
	}
	for _, tt := range tests {
		if got := upstreamMFA(tt.amr, tt.acr); got != tt.want {
			t.Errorf("upstreamMFA(%v, %q) = %v, want %v", tt.amr, tt.acr, got, tt.want)
		}
	}
}

func TestOAuthCode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"access_denied", "access_denied"},
		{"temporarily_unavailable", "temporarily_unavailable"},
		{"<script>", "an unknown error"},
		{"Access Denied", "an unknown error"},
		{string(make([]byte, 100)), "an unknown error"},
	}
	for _, tt := range tests {
		if got := oauthCode(tt.in); got != tt.want {
			t.Errorf("oauthCode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSAMLIdentity(t *testing.T) {
	attr := func(name, value string) saml.Attribute {
		return saml.Attribute{Name: name, Values: []saml.AttributeValue{{Value: value}}}
	}
	nameID := func(format, value string) *saml.Subject {
		return &saml.Subject{NameID: &saml.NameID{Format: format, Value: value}}
	}
	mfa := func(ref string) []saml.AuthnStatement {
		return []saml.AuthnStatement{{AuthnContext: saml.AuthnContext{AuthnContextClassRef: &saml.AuthnContextClassRef{Value: ref}}}}
	}
	tests := []struct {
		name string
		a    saml.Assertion
		want deadbolt.Identity
	}{
		{"email NameID", saml.Assertion{Subject: nameID(string(saml.EmailAddressNameIDFormat), "ann@corp.example")},
			deadbolt.Identity{Subject: "ann@corp.example", Email: "ann@corp.example"}},
		{"persistent NameID, no email", saml.Assertion{Subject: nameID(string(saml.PersistentNameIDFormat), "opaque-1")},
			deadbolt.Identity{Subject: "opaque-1"}},
		{"Entra ID claims", saml.Assertion{Subject: nameID(string(saml.PersistentNameIDFormat), "opaque-2"),
			AttributeStatements: []saml.AttributeStatement{{Attributes: []saml.Attribute{
				attr("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", "bo@corp.example"),
				attr("http://schemas.microsoft.com/identity/claims/displayname", "Bo Corp")}}},
			AuthnStatements: mfa("http://schemas.microsoft.com/claims/multipleauthn")},
			deadbolt.Identity{Subject: "opaque-2", Email: "bo@corp.example", Name: "Bo Corp", MFA: true}},
		{"Okta attributes by friendly name", saml.Assertion{AttributeStatements: []saml.AttributeStatement{{Attributes: []saml.Attribute{
			{FriendlyName: "mail", Name: "urn:oid:0.9.2342.19200300.100.1.3", Values: []saml.AttributeValue{{Value: "cy@corp.example"}}}}}},
			AuthnStatements: mfa("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport")},
			deadbolt.Identity{Email: "cy@corp.example"}},
	}
	for _, tt := range tests {
		if got := samlIdentity(&tt.a); got != tt.want {
			t.Errorf("%s: samlIdentity = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestCheckRedirect(t *testing.T) {
	tests := []struct {
		to   string
		want bool
	}{
		{"https://login.example/.well-known/openid-configuration", true},
		{"http://127.0.0.1:8080/md", true},
		{"http://localhost/md", true},
		{"http://169.254.169.254/latest/meta-data/", false},
		{"http://idp.example/md", false},
		{"file:///etc/passwd", false},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("GET", tt.to, nil)
		if got := checkRedirect(req, nil) == nil; got != tt.want {
			t.Errorf("redirect to %s allowed = %v, want %v", tt.to, got, tt.want)
		}
	}
	req, _ := http.NewRequest("GET", "https://a.example/", nil)
	if checkRedirect(req, make([]*http.Request, 5)) == nil {
		t.Error("a sixth redirect is followed")
	}
}
