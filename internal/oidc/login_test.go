package oidc

import (
	"testing"

	"github.com/deadbolt/deadbolt"
)

func TestFormActionSource(t *testing.T) {
	tests := []struct {
		uri, want string
	}{
		{"https://wiki.example.com/oauth/callback?x=1", "https://wiki.example.com"},
		{"http://127.0.0.1:51234/cb", "http://127.0.0.1:51234"},
		{"http://[::1]:8080/cb", "http://[::1]:8080"},
		{"com.example.app:/oauth2redirect", "com.example.app:"},
		{"https://wiki.example.com;script-src */cb", ""},
		{"https://wiki.example.com'/cb", ""},
		{"https://", ""},
		{"/relative", ""},
		{"", ""},
		{"java script:alert(1)", ""},
	}
	for _, tt := range tests {
		pd := &Pending{Request: &deadbolt.OIDCAuthRequest{RedirectURI: tt.uri}}
		if got := pd.FormActionSource(); got != tt.want {
			t.Errorf("FormActionSource(%q) = %q, want %q", tt.uri, got, tt.want)
		}
	}
}
