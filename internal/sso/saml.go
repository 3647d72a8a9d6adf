package sso

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"

	"github.com/deadbolt/deadbolt"
)

// SAML 2.0 identity providers, through crewjam/saml: Deadbolt is the
// service provider (SP). AuthnRequests go by the HTTP-Redirect binding,
// unsigned (as Okta and Entra ID take them: an IdP that re-posts the
// request from its login form loses a redirect signature, and the IdP
// sends its answer only to the ACS URL registered with the SP metadata);
// responses come back to the
// assertion consumer service by HTTP-POST and must be signed by a key of
// the IdP's metadata, be in response to the request sent (InResponseTo:
// no IdP-initiated sign-in), for this SP (audience, destination), within
// their validity, and used once (a replay cache in the database, shared by
// every process).
//
// Signature and time checks use the real clock (crewjam's), not the
// service's Now: a SAML answer is only ever as old as the real time says.

type samlProvider struct {
	idp *saml.EntityDescriptor
}

const maxMetadata = 256 << 10

// fetchMetadata returns the IdP metadata of p (fetched from its URL when it
// has one), checked to parse and to name an IdP with a signing key.
func (s *Service) fetchMetadata(ctx context.Context, p *deadbolt.SSOProvider) (string, error) {
	raw := []byte(p.MetadataXML)
	if p.MetadataURL != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.MetadataURL, nil)
		if err != nil {
			return "", deadbolt.Invalid("metadata_url", "metadata_url is not a URL Deadbolt can fetch.")
		}
		resp, err := s.http.Do(req)
		if err != nil {
			s.log.WarnContext(ctx, "sso: metadata fetch failed", "provider", p.ID, "url", p.MetadataURL, "err", err)
			return "", deadbolt.Invalid("metadata_url", "The metadata at %s could not be fetched.", p.MetadataURL)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return "", deadbolt.Invalid("metadata_url", "The metadata URL answered %d.", resp.StatusCode)
		}
		raw, err = io.ReadAll(io.LimitReader(resp.Body, maxMetadata+1))
		if err != nil || len(raw) > maxMetadata {
			return "", deadbolt.Invalid("metadata_url", "The metadata could not be read, or is over 256 KiB.")
		}
	}
	md, err := samlsp.ParseMetadata(raw)
	if err != nil {
		return "", deadbolt.Invalid("metadata_xml", "This is not SAML IdP metadata Deadbolt can read.")
	}
	if len(md.IDPSSODescriptors) == 0 || !hasSigningKey(md) {
		return "", deadbolt.Invalid("metadata_xml", "The metadata names no identity provider with a signing certificate.")
	}
	sp := &saml.ServiceProvider{IDPMetadata: md}
	if sp.GetSSOBindingLocation(saml.HTTPRedirectBinding) == "" {
		return "", deadbolt.Invalid("metadata_xml", "The identity provider has no single sign-on service with the HTTP-Redirect binding.")
	}
	return string(raw), nil
}

func hasSigningKey(md *saml.EntityDescriptor) bool {
	for _, d := range md.IDPSSODescriptors {
		for _, k := range d.KeyDescriptors {
			if (k.Use == "" || k.Use == "signing") && len(k.KeyInfo.X509Data.X509Certificates) > 0 {
				return true
			}
		}
	}
	return false
}

// newSPKey gives the provider its own SP key and a self-signed certificate
// for it (IdPs take the certificate from the SP metadata).
func newSPKey(p *deadbolt.SSOProvider, now time.Time) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("sso: SP key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("sso: SP key: %w", err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "Deadbolt SP " + p.ID},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("sso: SP certificate: %w", err)
	}
	p.SPKeyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(key)}))
	p.SPCertPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return nil
}

func mustPKCS8(k *rsa.PrivateKey) []byte {
	b, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err) // an RSA key always marshals
	}
	return b
}

// serviceProvider is crewjam's SP for the provider.
func (s *Service) serviceProvider(ctx context.Context, acc *deadbolt.Account, p *deadbolt.SSOProvider) (*saml.ServiceProvider, error) {
	var md *saml.EntityDescriptor
	if c := s.cached(p); c != nil && c.saml != nil {
		md = c.saml.idp
	} else {
		raw := p.MetadataXML
		if p.MetadataURL != "" {
			// Fetched again (hourly, in the cache): an IdP rotates its
			// signing certificate at its metadata URL. The stored copy
			// serves while the URL does not answer.
			if fresh, err := s.fetchMetadata(ctx, p); err == nil {
				raw = fresh
			} else {
				s.log.WarnContext(ctx, "sso: metadata refresh failed; using the stored copy", "provider", p.ID, "err", err)
			}
		}
		var err error
		if md, err = samlsp.ParseMetadata([]byte(raw)); err != nil {
			return nil, fmt.Errorf("sso: stored metadata of %s: %w", p.ID, err)
		}
		s.remember(p, &cached{saml: &samlProvider{idp: md}})
	}
	kb, _ := pem.Decode([]byte(p.SPKeyPEM))
	cb, _ := pem.Decode([]byte(p.SPCertPEM))
	if kb == nil || cb == nil {
		return nil, fmt.Errorf("sso: SP key of %s unreadable", p.ID)
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("sso: SP key of %s: %w", p.ID, err)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("sso: SP certificate of %s: %w", p.ID, err)
	}
	mdURL, _ := url.Parse(s.MetadataURL(acc, p))
	acsURL, _ := url.Parse(s.ACSURL(acc, p))
	return &saml.ServiceProvider{EntityID: mdURL.String(), Key: key.(*rsa.PrivateKey), Certificate: cert, MetadataURL: *mdURL,
		AcsURL: *acsURL, IDPMetadata: md, HTTPClient: s.http, AuthnNameIDFormat: saml.EmailAddressNameIDFormat,
		RejectSHA1Signatures: true,
		ReplayCache:          replayCache{ctx: ctx, s: s, acc: acc, p: p}}, nil
}

// replayCache records used assertions in the database.
type replayCache struct {
	ctx context.Context
	s   *Service
	acc *deadbolt.Account
	p   *deadbolt.SSOProvider
}

func (c replayCache) Consume(id string, expiresAt time.Time) error {
	err := c.s.store.UseSSOAssertion(c.ctx, c.acc.ID, c.p.ID, id, expiresAt, c.s.now())
	if deadbolt.IsCode(err, deadbolt.EConflict) {
		return saml.ErrAssertionReplayed
	}
	return err
}

// SPMetadata is the SP metadata XML to give the IdP.
func (s *Service) SPMetadata(ctx context.Context, acc *deadbolt.Account, p *deadbolt.SSOProvider) ([]byte, error) {
	if p.Kind != deadbolt.SSOSAML {
		return nil, deadbolt.Errorf(deadbolt.ENotFound, "Identity provider not found.")
	}
	sp, err := s.serviceProvider(ctx, acc, p)
	if err != nil {
		return nil, err
	}
	b, err := xml.MarshalIndent(sp.Metadata(), "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), b...), nil
}

func (s *Service) beginSAML(ctx context.Context, acc *deadbolt.Account, p *deadbolt.SSOProvider, st *deadbolt.SSOState, _ string) (string, error) {
	sp, err := s.serviceProvider(ctx, acc, p)
	if err != nil {
		return "", err
	}
	req, err := sp.MakeAuthenticationRequest(sp.GetSSOBindingLocation(saml.HTTPRedirectBinding), saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		return "", fmt.Errorf("sso: AuthnRequest: %w", err)
	}
	// The request's ID is the state: the response must say it is in
	// response to it, and RelayState names it.
	st.ID = req.ID
	if err := s.store.CreateSSOState(ctx, st); err != nil {
		return "", err
	}
	u, err := req.Redirect(st.ID, sp)
	if err != nil {
		return "", fmt.Errorf("sso: AuthnRequest redirect: %w", err)
	}
	return u.String(), nil
}

// FinishSAML checks a SAML response posted to the assertion consumer
// service and returns the person it vouches for.
func (s *Service) FinishSAML(ctx context.Context, acc *deadbolt.Account, p *deadbolt.SSOProvider, r *http.Request, browser string) (deadbolt.Identity, error) {
	var none deadbolt.Identity
	if p.Kind != deadbolt.SSOSAML {
		return none, deadbolt.Errorf(deadbolt.ENotFound, "Identity provider not found.")
	}
	st, err := s.state(ctx, acc, p, r.PostFormValue("RelayState"), browser)
	if err != nil {
		return none, err
	}
	sp, err := s.serviceProvider(ctx, acc, p)
	if err != nil {
		return none, err
	}
	a, err := sp.ParseResponse(r, []string{st.ID})
	if err != nil {
		cause := "bad_assertion"
		if errors.Is(err, saml.ErrAssertionReplayed) {
			cause = "replayed_assertion"
		}
		var ire *saml.InvalidResponseError
		if errors.As(err, &ire) {
			if errors.Is(ire.PrivateErr, saml.ErrAssertionReplayed) {
				cause = "replayed_assertion"
			}
			err = ire.PrivateErr
		}
		s.log.WarnContext(ctx, "sso: SAML response refused", "provider", p.ID, "cause", cause, "err", err)
		if cause == "replayed_assertion" {
			return none, s.refuse(ctx, acc, p, cause, "This answer from %s was used already. Start again.", p.Name)
		}
		return none, s.refuse(ctx, acc, p, cause, "%s's answer did not verify. Start again, or ask your admin to check the identity provider's settings.", p.Name)
	}
	if a.Signature == nil {
		// A signed response around an unsigned assertion is not enough:
		// the assertion itself must be signed.
		return none, s.refuse(ctx, acc, p, "unsigned_assertion", "%s's answer was not signed as Deadbolt requires. Ask your admin.", p.Name)
	}
	id := samlIdentity(a)
	if id.Email == "" {
		return none, s.refuse(ctx, acc, p, "no_email", "%s did not say your email address, which is how %s knows you. Ask your admin.", p.Name, acc.Name)
	}
	return id, nil
}

// Attribute names that carry an email or a name, by IdP.
var (
	emailAttrs = []string{"email", "mail", "emailaddress", "urn:oid:0.9.2342.19200300.100.1.3",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"}
	nameAttrs = []string{"displayname", "name", "cn", "urn:oid:2.16.840.1.113730.3.1.241",
		"http://schemas.microsoft.com/identity/claims/displayname", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"}
	// mfaContexts are AuthnContextClassRefs that mean a second factor.
	mfaContexts = []string{"http://schemas.microsoft.com/claims/multipleauthn", "https://refeds.org/profile/mfa",
		"urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract", "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorUnregistered",
		"urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken", "urn:oasis:names:tc:SAML:2.0:ac:classes:X509"}
)

func samlIdentity(a *saml.Assertion) deadbolt.Identity {
	var id deadbolt.Identity
	attr := func(names []string) string {
		for _, st := range a.AttributeStatements {
			for _, at := range st.Attributes {
				for _, n := range names {
					if strings.EqualFold(at.Name, n) || strings.EqualFold(at.FriendlyName, n) {
						for _, v := range at.Values {
							if v.Value != "" {
								return v.Value
							}
						}
					}
				}
			}
		}
		return ""
	}
	if a.Subject != nil && a.Subject.NameID != nil {
		id.Subject = a.Subject.NameID.Value
		if a.Subject.NameID.Format == string(saml.EmailAddressNameIDFormat) {
			id.Email = a.Subject.NameID.Value
		}
	}
	if e := attr(emailAttrs); e != "" {
		id.Email = e
	}
	id.Name = attr(nameAttrs)
	for _, st := range a.AuthnStatements {
		if ref := st.AuthnContext.AuthnContextClassRef; ref != nil {
			for _, m := range mfaContexts {
				if ref.Value == m {
					id.MFA = true
				}
			}
		}
	}
	return id
}
