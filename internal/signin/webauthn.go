package signin

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/secret"
)

// Passkeys and security keys, through go-webauthn. The relying party is
// Deadbolt's public URL: its host is the RP id (browsers refuse an IP
// address there), its origin the only one accepted. Ceremonies live in the
// store until their one answer; a credential's signature counter must move
// forward (a copied authenticator shows an old count).

// maxCredentialJSON bounds a client's WebAuthn response.
const maxCredentialJSON = 32 << 10

// relyingParty returns the WebAuthn configuration of the service.
func (s *Service) relyingParty() (*webauthn.WebAuthn, error) {
	s.waOnce.Do(func() {
		u, err := url.Parse(s.publicURL)
		if err != nil || u.Hostname() == "" {
			s.waErr = deadbolt.Errorf(deadbolt.EForbidden, "Passkeys need Deadbolt's public URL to be set.")
			return
		}
		if net.ParseIP(u.Hostname()) != nil {
			s.waErr = deadbolt.Errorf(deadbolt.EForbidden, "Passkeys need Deadbolt to be reached by a host name, not an IP address (its public URL).")
			return
		}
		s.wa, err = webauthn.New(&webauthn.Config{RPID: u.Hostname(), RPDisplayName: "Deadbolt", RPOrigins: []string{u.Scheme + "://" + u.Host},
			Timeouts: webauthn.TimeoutsConfig{
				Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: deadbolt.WebAuthnCeremonyTTL},
				Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: deadbolt.WebAuthnCeremonyTTL},
			}})
		if err != nil {
			s.waErr = deadbolt.Errorf(deadbolt.EForbidden, "Passkeys cannot be used with this public URL.")
			s.log.Error("webauthn configuration", "err", err)
		}
	})
	return s.wa, s.waErr
}

// PasskeysAvailable reports whether passkeys can be used here: the public
// URL has a host name.
func (s *Service) PasskeysAvailable() bool {
	_, err := s.relyingParty()
	return err == nil
}

// OwnFactor returns the principal's factor with the id.
func (s *Service) OwnFactor(ctx context.Context, p *Principal, id string) (*deadbolt.Factor, error) {
	return s.ownFactor(ctx, p, id)
}

// waUser is a user as the library sees them, with their passkeys.
type waUser struct {
	u     *deadbolt.User
	creds []webauthn.Credential
}

func (w waUser) WebAuthnID() []byte                         { return []byte(w.u.ID) }
func (w waUser) WebAuthnName() string                       { return w.u.Email }
func (w waUser) WebAuthnDisplayName() string                { return w.u.Name }
func (w waUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }

// libraryUser reads the user's active passkeys.
func libraryUser(u *deadbolt.User, factors []*deadbolt.Factor) (waUser, error) {
	w := waUser{u: u}
	for _, f := range factors {
		if f.Kind != deadbolt.FactorWebAuthn || f.Status != deadbolt.FactorActive || len(f.Credential) == 0 {
			continue
		}
		var c webauthn.Credential
		if err := json.Unmarshal(f.Credential, &c); err != nil {
			return w, err
		}
		w.creds = append(w.creds, c)
	}
	return w, nil
}

func (s *Service) ceremonyHash(scope string) []byte { return s.keys.Hash("webauthn:" + scope) }

// saveCeremony keeps the library's session data for the ceremony's scope:
// a pending factor's id (registration) or a challenge's (sign-in).
func (s *Service) saveCeremony(ctx context.Context, acc *deadbolt.Account, userID string, purpose deadbolt.WebAuthnPurpose, scope string,
	session *webauthn.SessionData, c deadbolt.WebAuthnCeremony) error {
	b, err := json.Marshal(session)
	if err != nil {
		return err
	}
	// New options for the scope replace the last ones (the browser lost
	// them, or they were answered wrongly): the store keeps only the
	// newest, which alone can answer.
	now := s.now()
	c.AccountID, c.TokenHash, c.Purpose, c.UserID, c.Session = acc.ID, s.ceremonyHash(scope), purpose, userID, b
	c.CreatedAt, c.ExpiresAt = now, now.Add(deadbolt.WebAuthnCeremonyTTL)
	return s.store.CreateWebAuthnCeremony(ctx, &c)
}

// takeCeremony consumes the ceremony of the scope: a ceremony answers once.
func (s *Service) takeCeremony(ctx context.Context, acc *deadbolt.Account, scope string) (*deadbolt.WebAuthnCeremony, *webauthn.SessionData, error) {
	c, session, err := s.takeCeremonyByHash(ctx, s.ceremonyHash(scope))
	if err != nil {
		return nil, nil, err
	}
	if c.AccountID != acc.ID {
		return nil, nil, deadbolt.Errorf(deadbolt.ENotFound, "Passkey request not found.")
	}
	return c, session, nil
}

func (s *Service) takeCeremonyByHash(ctx context.Context, hash []byte) (*deadbolt.WebAuthnCeremony, *webauthn.SessionData, error) {
	c, err := s.store.ConsumeWebAuthnCeremony(ctx, hash, s.now())
	if err != nil {
		return nil, nil, err
	}
	var session webauthn.SessionData
	if err := json.Unmarshal(c.Session, &session); err != nil {
		return nil, nil, err
	}
	return c, &session, nil
}

// EnrollWebAuthn starts registering a passkey or security key: a pending
// factor, and the options for the browser's navigator.credentials.create.
// Credentials are made discoverable, so that the same passkey signs in
// without a password later; the user's other passkeys are excluded.
func (s *Service) EnrollWebAuthn(ctx context.Context, p *Principal, name string) (*Enrollment, error) {
	if err := s.canEnroll(ctx, p, deadbolt.FactorWebAuthn); err != nil {
		return nil, err
	}
	wa, err := s.relyingParty()
	if err != nil {
		return nil, err
	}
	name = strings.TrimSpace(name)
	if name == "" {
		name = "Passkey"
	}
	if err := deadbolt.CheckText("name", name, 60); err != nil {
		return nil, deadbolt.Invalid("name", "A passkey's name is at most 60 characters of text.")
	}
	if err := s.dropPending(ctx, p, deadbolt.FactorWebAuthn); err != nil {
		return nil, err
	}
	factors, err := s.store.FindFactors(ctx, p.Account.ID, p.User.ID)
	if err != nil {
		return nil, err
	}
	user, err := libraryUser(p.User, factors)
	if err != nil {
		return nil, err
	}
	f := &deadbolt.Factor{AccountID: p.Account.ID, UserID: p.User.ID, Kind: deadbolt.FactorWebAuthn, Name: name}
	if err := s.store.CreateFactor(ctx, f); err != nil {
		return nil, err
	}
	var exclude []protocol.CredentialDescriptor
	for _, c := range user.creds {
		exclude = append(exclude, c.Descriptor())
	}
	creation, session, err := wa.BeginRegistration(user,
		webauthn.WithExclusions(exclude),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{ResidentKey: protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(), UserVerification: protocol.VerificationPreferred}),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation))
	if err != nil {
		return nil, err
	}
	if err := s.saveCeremony(ctx, p.Account, p.User.ID, deadbolt.WebAuthnRegister, "register:"+f.ID, session,
		deadbolt.WebAuthnCeremony{FactorID: f.ID}); err != nil {
		return nil, err
	}
	opts, err := json.Marshal(creation)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditFactorEnrolled, ActorID: p.User.ID,
		SubjectID: p.User.ID, Details: map[string]string{"kind": string(f.Kind), "factor_id": f.ID}})
	return &Enrollment{Factor: f, WebAuthnOptions: opts}, nil
}

// parseCreation reads a registration response.
func parseCreation(raw string) (*protocol.ParsedCredentialCreationData, error) {
	if raw == "" || len(raw) > maxCredentialJSON {
		return nil, deadbolt.Invalid("credential", "credential is the browser's answer to navigator.credentials.create, as JSON.")
	}
	parsed, err := protocol.ParseCredentialCreationResponseBody(strings.NewReader(raw))
	if err != nil {
		return nil, deadbolt.Invalid("credential", "credential is not a WebAuthn registration response.")
	}
	return parsed, nil
}

// verifyRegistration checks a registration response against its ceremony
// and returns the credential to store. A false ok is a response that does
// not verify (the audit's wrong_credential).
func (s *Service) verifyRegistration(ctx context.Context, p *Principal, f *deadbolt.Factor, parsed *protocol.ParsedCredentialCreationData) (
	cred *webauthn.Credential, ok bool, err error) {
	wa, err := s.relyingParty()
	if err != nil {
		return nil, false, err
	}
	c, session, err := s.takeCeremony(ctx, p.Account, "register:"+f.ID)
	if deadbolt.IsCode(err, deadbolt.ENotFound) {
		return nil, false, deadbolt.Errorf(deadbolt.EChallengeExpired, "This passkey request has expired or was answered. Start again.")
	} else if err != nil {
		return nil, false, err
	}
	if c.UserID != p.User.ID || c.FactorID != f.ID {
		return nil, false, deadbolt.Errorf(deadbolt.EChallengeExpired, "This passkey request has expired or was answered. Start again.")
	}
	factors, err := s.store.FindFactors(ctx, p.Account.ID, p.User.ID)
	if err != nil {
		return nil, false, err
	}
	user, err := libraryUser(p.User, factors)
	if err != nil {
		return nil, false, err
	}
	cred, err = wa.CreateCredential(user, *session, parsed)
	if err != nil {
		s.log.InfoContext(ctx, "webauthn registration refused", "factor", f.ID, "err", err)
		return nil, false, nil
	}
	if aaguid := deadbolt.AAGUIDString(cred.Authenticator.AAGUID); !p.Account.Policy.AllowsAuthenticator(aaguid) {
		s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditSignInFailed, SubjectID: p.User.ID,
			Details: map[string]string{"step": "confirm_factor", "factor_id": f.ID, "cause": "authenticator_not_allowed", "aaguid": aaguid}})
		return nil, false, errAuthenticatorNotAllowed
	}
	return cred, true, nil
}

// assertionOptions starts a sign-in ceremony with the user's passkeys for
// the scope (a challenge's id) and returns the browser's options.
func (s *Service) assertionOptions(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, factors []*deadbolt.Factor,
	purpose deadbolt.WebAuthnPurpose, scope string) (json.RawMessage, error) {
	wa, err := s.relyingParty()
	if err != nil {
		return nil, err
	}
	user, err := libraryUser(u, factors)
	if err != nil {
		return nil, err
	}
	if len(user.creds) == 0 {
		return nil, deadbolt.Invalid("method", "You have no passkey.")
	}
	assertion, session, err := wa.BeginLogin(user, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, err
	}
	if err := s.saveCeremony(ctx, acc, u.ID, purpose, scope, session, deadbolt.WebAuthnCeremony{}); err != nil {
		return nil, err
	}
	return json.Marshal(assertion)
}

// parseAssertion reads a sign-in response.
func parseAssertion(raw string) (*protocol.ParsedCredentialAssertionData, error) {
	if raw == "" || len(raw) > maxCredentialJSON {
		return nil, deadbolt.Invalid("credential", "credential is the browser's answer to navigator.credentials.get, as JSON.")
	}
	parsed, err := protocol.ParseCredentialRequestResponseBody(strings.NewReader(raw))
	if err != nil {
		return nil, deadbolt.Invalid("credential", "credential is not a WebAuthn assertion.")
	}
	return parsed, nil
}

// checkAssertion verifies a sign-in response against the ceremony of the
// scope and records its signature. It returns the factor used, whether
// the user was verified (PIN, biometrics) and, for a refusal, the cause.
func (s *Service) checkAssertion(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, factors []*deadbolt.Factor, scope string,
	parsed *protocol.ParsedCredentialAssertionData, now time.Time) (f *deadbolt.Factor, verified bool, cause string, err error) {
	wa, err := s.relyingParty()
	if err != nil {
		return nil, false, "", err
	}
	c, session, err := s.takeCeremony(ctx, acc, scope)
	if deadbolt.IsCode(err, deadbolt.ENotFound) {
		return nil, false, "no_passkey_request", nil
	} else if err != nil {
		return nil, false, "", err
	}
	if c.UserID != "" && c.UserID != u.ID {
		return nil, false, "other_user", nil
	}
	for _, x := range factors {
		if x.Kind == deadbolt.FactorWebAuthn && x.Status == deadbolt.FactorActive && bytes.Equal(x.CredentialID, parsed.RawID) {
			f = x
		}
	}
	if f == nil {
		return nil, false, "unknown_credential", nil
	}
	user, err := libraryUser(u, factors)
	if err != nil {
		return nil, false, "", err
	}
	cred, err := wa.ValidateLogin(user, *session, parsed)
	if err != nil {
		s.log.InfoContext(ctx, "webauthn assertion refused", "factor", f.ID, "err", err)
		return f, false, "wrong_assertion", nil
	}
	if cause, err := s.useSignature(ctx, acc, u, f, cred, now); cause != "" || err != nil {
		return f, false, cause, err
	}
	return f, parsed.Response.AuthenticatorData.Flags.HasUserVerified(), "", nil
}

// useSignature accepts a verified assertion of the factor: its
// authenticator model must be allowed, and its signature counter is
// recorded (a counter that did not move on is a clone, audited). A
// non-empty cause is a refusal.
func (s *Service) useSignature(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, f *deadbolt.Factor,
	cred *webauthn.Credential, now time.Time) (cause string, err error) {
	if !acc.Policy.AllowsAuthenticator(deadbolt.AAGUIDString(cred.Authenticator.AAGUID)) {
		return "authenticator_not_allowed", nil
	}
	b, err := json.Marshal(cred)
	if err != nil {
		return "", err
	}
	if err := s.store.UseWebAuthnSignature(ctx, acc.ID, f.ID, cred.Authenticator.SignCount, b, now); deadbolt.IsCode(err, deadbolt.EConflict) {
		s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditWebAuthnCloned, SubjectID: u.ID,
			Details: map[string]string{"factor_id": f.ID, "sign_count": strconv.FormatUint(uint64(cred.Authenticator.SignCount), 10),
				"stored_sign_count": strconv.FormatUint(uint64(f.SignCount), 10)}})
		return "cloned_authenticator", nil
	} else if err != nil {
		return "", err
	}
	return "", nil
}

// passkeyScope is the ceremony scope of a sign-in challenge or step-up.
func passkeyScope(scope string) string { return "passkey:" + scope }

// PasskeyChallenge is the start of a passwordless sign-in.
type PasskeyChallenge struct {
	Token   string // the challenge_token to verify with
	Options json.RawMessage
}

// passwordlessScope is the ceremony scope of a passwordless sign-in's
// token.
func passwordlessScope(token string) string { return "passwordless:" + token }

// BeginPasskeySignIn starts a passwordless sign-in at the account: options
// for a discoverable credential, any of the account's; the credential the
// browser picks names its user.
func (s *Service) BeginPasskeySignIn(ctx context.Context, slug string) (*PasskeyChallenge, error) {
	acc, err := s.store.FindAccountBySlug(ctx, slug)
	if err != nil {
		return nil, err
	}
	wa, err := s.relyingParty()
	if err != nil {
		return nil, err
	}
	assertion, session, err := wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, err
	}
	token := secret.NewToken(PrefixChallenge)
	if err := s.saveCeremony(ctx, acc, "", deadbolt.WebAuthnPasswordless, passwordlessScope(token), session, deadbolt.WebAuthnCeremony{}); err != nil {
		return nil, err
	}
	opts, err := json.Marshal(assertion)
	if err != nil {
		return nil, err
	}
	return &PasskeyChallenge{Token: token, Options: opts}, nil
}

// verifyPasswordless answers a passwordless sign-in. A passkey that
// verified its user (PIN, biometrics) is two factors in one: the user is
// signed in. One that did not is one factor: the password is still asked.
// Every failure is the one invalid_credentials answer, as for passwords.
func (s *Service) verifyPasswordless(ctx context.Context, cer *deadbolt.WebAuthnCeremony, session *webauthn.SessionData, raw string,
	remember bool, c Client, now time.Time) (*Result, error) {
	acc, err := s.store.FindAccountByID(ctx, cer.AccountID)
	if err != nil {
		return nil, err
	}
	parsed, err := parseAssertion(raw)
	if err != nil {
		return nil, err
	}
	fail := func(cause, userID string) error {
		s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSignInFailed, SubjectID: userID, IP: c.IP,
			Details: map[string]string{"step": "passkey", "cause": cause}})
		return errPasskeyRefused
	}
	att, err := s.reserve(ctx, acc.ID, now, s.ipLimit(c.IP))
	if err != nil {
		return nil, err
	}
	f, err := s.store.FindFactorByCredentialID(ctx, acc.ID, parsed.RawID)
	if deadbolt.IsCode(err, deadbolt.ENotFound) {
		return nil, fail("unknown_credential", "")
	} else if err != nil {
		return nil, err
	}
	if string(parsed.Response.UserHandle) != f.UserID {
		return nil, fail("wrong_user_handle", f.UserID)
	}
	u, err := s.store.FindUserByID(ctx, acc.ID, f.UserID)
	if err != nil {
		return nil, fail("unknown_user", f.UserID)
	}
	// A passkey is no way around single sign-on: an SSO user's first step
	// is their identity provider (which may have ended their access), and
	// a team member the policy sends to SSO is sent there.
	if u.AuthSource == deadbolt.AuthSSO || SSORequiredFor(acc, u) {
		att.succeeded(ctx)
		s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSignInFailed, SubjectID: u.ID, IP: c.IP,
			Details: map[string]string{"step": "passkey", "cause": "sso_required", "factor_id": f.ID}})
		return nil, s.ssoRequired(ctx, acc, u.Email)
	}
	factors, err := s.store.FindFactors(ctx, acc.ID, u.ID)
	if err != nil {
		return nil, err
	}
	if !acc.Policy.Allows(deadbolt.FactorWebAuthn, u.Role) {
		return nil, fail("method_not_allowed", u.ID)
	}
	user, err := libraryUser(u, factors)
	if err != nil {
		return nil, err
	}
	wa, err := s.relyingParty()
	if err != nil {
		return nil, err
	}
	cred, err := wa.ValidateDiscoverableLogin(func(_, _ []byte) (webauthn.User, error) { return user, nil }, *session, parsed)
	if err != nil {
		s.log.InfoContext(ctx, "passkey sign-in refused", "factor", f.ID, "err", err)
		return nil, fail("wrong_assertion", u.ID)
	}
	if cause, err := s.useSignature(ctx, acc, u, f, cred, now); err != nil {
		return nil, err
	} else if cause != "" {
		return nil, fail(cause, u.ID)
	}
	if !parsed.Response.AuthenticatorData.Flags.HasUserVerified() {
		// Something the user has, not yet something they know or are.
		att.succeeded(ctx)
		s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSignInFailed, SubjectID: u.ID, IP: c.IP,
			Details: map[string]string{"step": "passkey", "cause": "no_user_verification", "factor_id": f.ID}})
		return nil, deadbolt.Errorf(deadbolt.EInvalidCredentials,
			"Your passkey did not check that it is you (no PIN or fingerprint): sign in with your password; the passkey then serves as the second step.")
	}
	att.succeeded(ctx)
	proof := sessionProof{secondFactor: now, method: MethodPasskey}
	var deviceToken string
	device := s.findDevice(ctx, acc, u, c.DeviceToken)
	if days := acc.Policy.RememberDevice(u.Role); remember && days > 0 {
		d, token := s.newDevice(acc, u, c, now, now.Add(days))
		if err := s.store.CreateDevice(ctx, d); err != nil {
			return nil, err
		}
		proof.deviceID, deviceToken = d.ID, token
	} else if device != nil {
		proof.deviceID = device.ID
		s.seeDevice(ctx, device, c, now)
	}
	res, err := s.signedIn(ctx, acc, u, c, now, proof)
	if err != nil {
		return nil, err
	}
	res.DeviceToken = deviceToken
	s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSignInSucceeded, ActorID: u.ID, SubjectID: u.ID, IP: c.IP,
		Details: map[string]string{"method": MethodPasskey, "factor_id": f.ID}})
	if device == nil {
		s.newDeviceNotice(ctx, acc, u, c)
	}
	return res, nil
}

// MethodPasskey names a passwordless sign-in with a passkey that verified
// its user: two factors in one (Session.SecondFactorMethod).
const MethodPasskey = "passkey"

var errAuthenticatorNotAllowed = deadbolt.Errorf(deadbolt.EMethodNotAllowed,
	"Your account does not allow this kind of passkey or security key. Ask an admin which ones it accepts.")

var errPasskeyRefused = deadbolt.Errorf(deadbolt.EInvalidCredentials, "This passkey could not sign you in.")
