package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml/samlidp"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/sso"
)

// SSO through a SAML 2.0 identity provider of crewjam/saml's ecosystem: its
// samlidp server on loopback, with its own users, login form and signed
// assertions.

type samlIdP struct {
	t   *testing.T
	url string
}

func newSAMLIdP(t *testing.T) *samlIdP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test IdP"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	idp, err := samlidp.New(samlidp.Options{URL: *u, Key: key, Certificate: cert, Store: &samlidp.MemoryStore{},
		Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	h = idp
	return &samlIdP{t: t, url: srv.URL}
}

// put stores a user or a service through the IdP's admin API.
func (i *samlIdP) put(path, contentType string, body []byte) {
	i.t.Helper()
	req, _ := http.NewRequest(http.MethodPut, i.url+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		i.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		i.t.Fatalf("PUT %s at the IdP = %d %s", path, resp.StatusCode, b)
	}
}

func (i *samlIdP) user(name, email, password string) {
	b, _ := json.Marshal(map[string]any{"name": name, "email": email, "password": password, "common_name": "Saml " + name})
	i.put("/users/"+name, "application/json", b)
}

var formField = regexp.MustCompile(`<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"`)
var formAction = regexp.MustCompile(`<form[^>]*action="([^"]+)"`)

// postForm submits the first form of the page as a browser without
// JavaScript would (the IdP's auto-posting form has hidden fields), with
// extra fields set.
func (b *oBrowser) postForm(page string, extra url.Values) (*http.Response, string) {
	b.t.Helper()
	m := formAction.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no form in %.400s", page)
	}
	form := url.Values{}
	for _, f := range formField.FindAllStringSubmatch(page, -1) {
		form.Set(html.UnescapeString(f[1]), html.UnescapeString(f[2]))
	}
	for k, v := range extra {
		form[k] = v
	}
	return b.visit(html.UnescapeString(m[1]), form)
}

func TestSSOSAML(t *testing.T) {
	eachDBNow(t, func(t *testing.T, db dbOpener) {
		o, _, _ := ssoEnv(t, db)
		e := o.env
		ctx := context.Background()
		idp := newSAMLIdP(t)
		idp.user("ann", "ann@saml.example", "ann's IdP password")
		idp.user("bob", "bob@other.example", "bob's IdP password")
		p, err := o.sso.Create(ctx, e.acc, e.owner.ID, sso.Input{Kind: deadbolt.SSOSAML, Name: "Corp SAML", Domains: []string{"saml.example"},
			JIT: true, MetadataURL: idp.url + "/metadata"})
		if err != nil {
			t.Fatalf("create the SAML provider: %v", err)
		}
		// The IdP is given Deadbolt's SP metadata, as an admin would.
		resp, md := o.browser().visit(o.url+"/accounts/acme/sso/"+p.ID+"/metadata", nil)
		if resp.StatusCode != 200 || !strings.Contains(md, "AssertionConsumerService") || !strings.Contains(md, o.sso.ACSURL(e.acc, p)) {
			t.Fatalf("SP metadata = %d %.300s", resp.StatusCode, md)
		}
		idp.put("/services/deadbolt", "application/samlmetadata+xml", []byte(md))
		start := o.url + "/accounts/acme/sso/" + p.ID

		// toACS signs in at the IdP and returns the page that posts the
		// assertion to Deadbolt, not yet posted.
		toACS := func(b *oBrowser, user, password string) string {
			t.Helper()
			resp, body := b.visit(start, nil)
			if !strings.HasPrefix(resp.Request.URL.String(), idp.url+"/sso") || !strings.Contains(body, `name="password"`) {
				t.Fatalf("%s led to %d %s, want the IdP's login form: %.300s", start, resp.StatusCode, resp.Request.URL, body)
			}
			resp, body = b.postForm(body, url.Values{"user": {user}, "password": {password}})
			if !strings.Contains(body, "SAMLResponse") {
				t.Fatalf("the IdP after login = %d: %.400s, want the form posting the response", resp.StatusCode, body)
			}
			return body
		}

		t.Run("JIT sign-in", func(t *testing.T) {
			b := o.browser()
			resp, body := b.postForm(toACS(b, "ann", "ann's IdP password"), nil)
			if resp.Request.URL.Path != "/accounts/acme/security" {
				t.Fatalf("after the assertion: %d %s: %.300s, want signed in", resp.StatusCode, resp.Request.URL, body)
			}
			u, err := e.db.FindUserByEmail(ctx, e.acc.ID, "ann@saml.example")
			if err != nil || u.AuthSource != deadbolt.AuthSSO || u.Role != deadbolt.RoleEndUser {
				t.Errorf("SAML JIT user = %+v, %v; want an SSO end user", u, err)
			}
		})

		t.Run("a replayed response is refused", func(t *testing.T) {
			b := o.browser()
			page := toACS(b, "ann", "ann's IdP password")
			if resp, _ := b.postForm(page, nil); resp.Request.URL.Path != "/accounts/acme/security" {
				t.Fatalf("first post at %s", resp.Request.URL)
			}
			// The same response again, in the same browser, and with a new
			// sign-in's RelayState and cookie.
			if resp, body := b.postForm(page, nil); resp.StatusCode != http.StatusForbidden {
				t.Errorf("the same response again = %d: %.200s, want 403", resp.StatusCode, body)
			}
			b2 := o.browser()
			resp, body := b2.visit(start, nil)
			relay := resp.Request.URL.Query().Get("RelayState")
			if relay == "" {
				t.Fatalf("no RelayState at the IdP: %s %.200s", resp.Request.URL, body)
			}
			if resp, body := b2.postForm(page, url.Values{"RelayState": {relay}}); resp.StatusCode != http.StatusForbidden ||
				!strings.Contains(body, "did not verify") {
				t.Errorf("the response replayed into a new sign-in = %d: %.300s, want refused", resp.StatusCode, body)
			}
		})

		t.Run("a tampered assertion is refused", func(t *testing.T) {
			b := o.browser()
			page := toACS(b, "ann", "ann's IdP password")
			m := regexp.MustCompile(`name="SAMLResponse" value="([^"]+)"`).FindStringSubmatch(page)
			raw, err := base64.StdEncoding.DecodeString(html.UnescapeString(m[1]))
			if err != nil {
				t.Fatal(err)
			}
			// The response is signed and its assertion encrypted to
			// Deadbolt's SP key (and signed inside): change what the
			// signature covers, and what the encryption covers.
			issued := regexp.MustCompile(`IssueInstant="[^"]+"`)
			cipher := regexp.MustCompile(`<xenc:CipherValue>([A-Za-z0-9+/]{40})`)
			for name, forged := range map[string][]byte{
				"the response's IssueInstant": issued.ReplaceAll(raw, []byte(`IssueInstant="2020-01-01T00:00:00Z"`)),
				"the encrypted assertion": cipher.ReplaceAllFunc(raw, func(m []byte) []byte {
					m = bytes.Clone(m)
					if m[len(m)-1] == 'A' {
						m[len(m)-1] = 'B'
					} else {
						m[len(m)-1] = 'A'
					}
					return m
				}),
			} {
				if bytes.Equal(forged, raw) {
					t.Fatalf("%s is not in the response", name)
				}
				b := o.browser()
				page := toACS(b, "ann", "ann's IdP password")
				resp, body := b.postForm(page, url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(forged)}})
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "did not verify") {
					t.Errorf("%s tampered = %d: %.300s, want refused", name, resp.StatusCode, body)
				}
			}
			if n := e.auditCount(deadbolt.AuditSignInFailed, map[string]string{"cause": "bad_assertion"}); n < 1 {
				t.Errorf("no signin.failed bad_assertion event")
			}
		})

		t.Run("an email of another domain is refused", func(t *testing.T) {
			b := o.browser()
			resp, body := b.postForm(toACS(b, "bob", "bob's IdP password"), nil)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "it is for saml.example") {
				t.Errorf("bob@other.example through the provider of saml.example = %d: %.300s", resp.StatusCode, body)
			}
		})
	})
}
