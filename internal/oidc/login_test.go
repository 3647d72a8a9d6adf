package oidc

import (
	"slices"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/signin"
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

func TestAMR(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		s    deadbolt.Session
		amr  []string
		acr  string
	}{
		{"password", deadbolt.Session{PasswordAt: at}, []string{"pwd"}, ACRPwdOnly},
		{"password and TOTP", deadbolt.Session{PasswordAt: at, SecondFactorAt: at, SecondFactorMethod: "totp"}, []string{"pwd", "otp", "mfa"}, ACRMFA},
		{"password and SMS", deadbolt.Session{PasswordAt: at, SecondFactorAt: at, SecondFactorMethod: "sms"}, []string{"pwd", "sms", "mfa"}, ACRMFA},
		{"password and a security key", deadbolt.Session{PasswordAt: at, SecondFactorAt: at, SecondFactorMethod: "webauthn"}, []string{"pwd", "hwk", "mfa"}, ACRMFA},
		{"passwordless passkey", deadbolt.Session{SecondFactorAt: at, SecondFactorMethod: signin.MethodPasskey}, []string{"hwk", "mfa"}, ACRMFA},
		{"SSO", deadbolt.Session{SSOProviderID: "idp", FederatedAt: at}, []string{"fed"}, ACRPwdOnly},
		{"SSO with trusted MFA", deadbolt.Session{SSOProviderID: "idp", FederatedAt: at, UpstreamMFA: true}, []string{"fed", "mfa"}, ACRMFA},
		{"SSO and TOTP", deadbolt.Session{SSOProviderID: "idp", FederatedAt: at, SecondFactorAt: at, SecondFactorMethod: "totp"}, []string{"fed", "otp", "mfa"}, ACRMFA},
	}
	for _, tt := range tests {
		amr, acr := amrOf(&tt.s)
		if !slices.Equal(amr, tt.amr) || acr != tt.acr {
			t.Errorf("%s: amr %v acr %q, want %v %q", tt.name, amr, acr, tt.amr, tt.acr)
		}
	}
}
