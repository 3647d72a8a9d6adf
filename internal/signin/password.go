package signin

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/password"
	"github.com/deadbolt/deadbolt/internal/secret"
)

// Status is where a sign-in stands after a step.
type Status string

// Sign-in statuses, as the API names them.
const (
	StatusSignedIn           Status = "signed_in"
	StatusSecondFactor       Status = "second_factor_required"
	StatusDeviceVerification Status = "device_verification_required"
	StatusEnrollment         Status = "enrollment_required"
)

// Method names a way to prove the second step.
const MethodRecoveryCode = "recovery_code"

// enrollable are the factor kinds users can set up, the recommended first.
var enrollable = []deadbolt.FactorKind{deadbolt.FactorTOTP, deadbolt.FactorWebAuthn, deadbolt.FactorSMS, deadbolt.FactorEmail}

// Result is the outcome of a sign-in step.
type Result struct {
	Status  Status
	Account *deadbolt.Account
	User    *deadbolt.User

	// With StatusSignedIn.
	SessionToken string
	Session      *deadbolt.Session
	// DeviceToken is set when the device is now recognised or remembered.
	DeviceToken string
	// RecoveryCodesLeft is set (≥ 0) after signing in with a recovery code.
	RecoveryCodesLeft int
	// AdminRecovery is true after signing in with an admin-generated code.
	AdminRecovery bool
	// TwoFactorDue is set when the user must set up 2FA by then (grace).
	TwoFactorDue time.Time

	// With the other statuses.
	ChallengeToken string
	Challenge      *deadbolt.Challenge
	Methods        []string
	DefaultMethod  string
	SentTo         string
	// WebAuthnOptions are the passkey ceremony's options when webauthn is
	// among the methods (navigator.credentials.get's, as JSON).
	WebAuthnOptions json.RawMessage
}

// maxPasswordBytes bounds what is hashed for a sign-in attempt.
const maxPasswordBytes = 4096

// SignIn checks an email and password for the account with the slug and
// says what comes next. An unknown email, an SSO user, a user without a
// password and a wrong password all get the same error after the same work.
func (s *Service) SignIn(ctx context.Context, slug, email, pw string, c Client) (*Result, error) {
	now := s.now()
	acc, err := s.store.FindAccountBySlug(ctx, slug)
	if err != nil {
		return nil, err
	}
	emailN, err := deadbolt.NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if pw == "" {
		return nil, deadbolt.Invalid("password", "The password is required.")
	}
	if len(pw) > maxPasswordBytes {
		return nil, deadbolt.Invalid("password", "The password is too long.")
	}
	u, err := s.store.FindUserByEmail(ctx, acc.ID, emailN)
	if err != nil && !deadbolt.IsCode(err, deadbolt.ENotFound) {
		return nil, err
	}
	// Wrong passwords pause the email for everyone (unknown emails alike),
	// except on a device the user verified before: there they count apart.
	// So someone who knows only an email cannot lock its owner out of the
	// devices they use every day, and a stolen device is still throttled.
	var device *deadbolt.Device
	key := passwordKey(emailN)
	if u != nil {
		if device = s.findDevice(ctx, acc, u, c.DeviceToken); device != nil {
			key = devicePasswordKey(device.ID)
		}
	}
	// The try is counted before the hash is computed, so parallel guesses
	// cannot all be checked before the first failure is counted.
	att, err := s.reserve(ctx, acc.ID, now, s.ipLimit(c.IP), s.backoffLimit(key, "Your account is protected for a while."))
	if err != nil {
		if deadbolt.IsCode(err, deadbolt.ERateLimited) {
			s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSignInFailed, IP: c.IP,
				Details: map[string]string{"email": emailN, "cause": "rate_limited"}})
		}
		return nil, err
	}
	var encoded, cause string
	switch {
	case u == nil:
		cause = "unknown_email"
	case u.AuthSource != deadbolt.AuthPassword:
		cause = "sso_user"
	case u.PasswordHash == "":
		cause = "no_password"
	default:
		encoded = u.PasswordHash
	}
	ok, err := s.verifyPassword(ctx, pw, encoded)
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The caller went away while waiting for a hash: no answer, and the
		// try is given back.
		att.giveBack(ctx)
		return nil, ctxErr
	}
	if err != nil && encoded != "" {
		// A stored hash that cannot be read is a bug or corruption, not the
		// caller's fault; it still fails closed.
		s.log.ErrorContext(ctx, "stored password hash unreadable", "account", acc.ID, "user", u.ID, "err", err)
	}
	if !ok {
		if cause == "" {
			cause = "wrong_password"
		}
		ev := deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSignInFailed, IP: c.IP,
			Details: map[string]string{"email": emailN, "cause": cause, "step": "password"}}
		if u != nil {
			ev.SubjectID = u.ID
		}
		s.audit(ctx, ev)
		return nil, errInvalidCredentials
	}
	att.succeeded(ctx)
	if SSORequiredFor(acc, u) {
		// Told only after the right password: no one learns from this who
		// is a team member.
		s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSignInFailed, SubjectID: u.ID, IP: c.IP,
			Details: map[string]string{"email": emailN, "cause": "sso_required", "step": "password"}})
		return nil, s.ssoRequired(ctx, acc, emailN)
	}
	if s.hasher.NeedsRehash(u.PasswordHash) {
		// The parameters were raised: store a new hash while the password is
		// at hand. Failing to is no reason to refuse the sign-in.
		if h, err := s.hashPassword(ctx, pw); err == nil {
			if _, err := s.store.UpdateUser(ctx, acc.ID, u.ID, deadbolt.UserUpdate{PasswordHash: &h}); err != nil {
				s.log.WarnContext(ctx, "rehash not stored", "user", u.ID, "err", err)
			}
		}
	}
	return s.afterPassword(ctx, acc, u, device, c, now)
}

// available returns the user's active factors that the policy lets them
// use now. If the policy allows none of the user's factors (it was
// tightened after they enrolled), all of them are: asking for a method the
// account no longer likes is weaker than it wants, but skipping the second
// factor, or letting a password alone enrol a new one, would be weaker
// still.
func available(acc *deadbolt.Account, u *deadbolt.User, factors []*deadbolt.Factor) []*deadbolt.Factor {
	var allowed, active []*deadbolt.Factor
	for _, f := range factors {
		if f.Status != deadbolt.FactorActive {
			continue
		}
		active = append(active, f)
		if acc.Policy.Allows(f.Kind, u.Role) {
			allowed = append(allowed, f)
		}
	}
	if len(allowed) == 0 {
		return active
	}
	return allowed
}

// hasActive reports whether the user has 2FA on at all.
func hasActive(factors []*deadbolt.Factor) bool {
	return slices.ContainsFunc(factors, func(f *deadbolt.Factor) bool { return f.Status == deadbolt.FactorActive })
}

// methodsOf lists the methods of the factors, the default first, then
// recovery codes (which every user with 2FA may have been handed).
func methodsOf(factors []*deadbolt.Factor) (methods []string, def string) {
	for _, f := range factors {
		if f.Default {
			def = string(f.Kind)
		}
	}
	if def == "" && len(factors) > 0 {
		def = string(factors[0].Kind)
	}
	if def != "" {
		methods = append(methods, def)
	}
	for _, f := range factors {
		if !slices.Contains(methods, string(f.Kind)) {
			methods = append(methods, string(f.Kind))
		}
	}
	return append(methods, MethodRecoveryCode), def
}

// enrollableKinds lists the kinds the user may set up under the policy,
// and that work here (passkeys need a host name in the public URL).
func (s *Service) enrollableKinds(acc *deadbolt.Account, u *deadbolt.User) []string {
	var kinds []string
	for _, k := range enrollable {
		if acc.Policy.Allows(k, u.Role) && (k != deadbolt.FactorWebAuthn || s.PasskeysAvailable()) {
			kinds = append(kinds, string(k))
		}
	}
	return kinds
}

// afterPassword decides the next step once the password is proven.
func (s *Service) afterPassword(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, device *deadbolt.Device, c Client, now time.Time) (*Result, error) {
	factors, err := s.store.FindFactors(ctx, acc.ID, u.ID)
	if err != nil {
		return nil, err
	}
	usable := available(acc, u, factors)
	switch {
	case len(usable) > 0:
		if device != nil && device.Remembered(now, acc.Policy.RememberDevice(u.Role)) {
			res, err := s.signedIn(ctx, acc, u, c, now, sessionProof{password: now, deviceID: device.ID})
			if err != nil {
				return nil, err
			}
			s.seeDevice(ctx, device, c, now)
			s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSignInSucceeded, ActorID: u.ID, SubjectID: u.ID,
				IP: c.IP, Details: map[string]string{"method": "remembered_device", "device_id": device.ID}})
			return res, nil
		}
		return s.secondFactorChallenge(ctx, acc, u, device, usable, "", c, now)
	case acc.Policy.Requires2FA(u.Role):
		if due := acc.Policy.GraceDeadline(u.Role, u.CreatedAt); now.Before(due) {
			// In the grace period: in, with a reminder of the deadline, but
			// no weaker than without the requirement: a new device is
			// verified first.
			if needsDeviceVerification(u, device) {
				return s.startDeviceVerification(ctx, acc, u, c, now)
			}
			proof, token, err := s.deviceProof(ctx, acc, u, device, c, now)
			if err != nil {
				return nil, err
			}
			res, err := s.signedIn(ctx, acc, u, c, now, proof)
			if err != nil {
				return nil, err
			}
			res.TwoFactorDue, res.DeviceToken = due, token
			s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSignInSucceeded, ActorID: u.ID, SubjectID: u.ID,
				IP: c.IP, Details: map[string]string{"method": "password", "grace_until": due.UTC().Format(time.RFC3339)}})
			if device == nil {
				s.newDeviceNotice(ctx, acc, u, c)
			}
			return res, nil
		}
		// Required and none usable: set one up before any session exists.
		// On a device Deadbolt does not recognise, 2-step verification comes
		// first: requiring 2FA must never make a password alone enough to
		// bind an authenticator to the account (after an admin's reset too,
		// which forgets the user's devices).
		if needsDeviceVerification(u, device) {
			return s.startDeviceVerification(ctx, acc, u, c, now)
		}
		return s.startEnrollment(ctx, acc, u, device, "", c, now)
	}
	if needsDeviceVerification(u, device) {
		return s.startDeviceVerification(ctx, acc, u, c, now)
	}
	proof, token, err := s.deviceProof(ctx, acc, u, device, c, now)
	if err != nil {
		return nil, err
	}
	res, err := s.signedIn(ctx, acc, u, c, now, proof)
	if err != nil {
		return nil, err
	}
	res.DeviceToken = token
	s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSignInSucceeded, ActorID: u.ID, SubjectID: u.ID,
		IP: c.IP, Details: map[string]string{"method": "password"}})
	if device == nil {
		s.newDeviceNotice(ctx, acc, u, c)
	}
	return res, nil
}

// secondFactorChallenge asks for one of the usable factors, and sends the
// default method's code at once. ssoProviderID names the identity
// provider when the sign-in came from one.
func (s *Service) secondFactorChallenge(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, device *deadbolt.Device,
	usable []*deadbolt.Factor, ssoProviderID string, c Client, now time.Time) (*Result, error) {
	methods, def := methodsOf(usable)
	res, err := s.challenge(ctx, acc, u, deadbolt.ChallengeSecondFactor, device, ssoProviderID, c, now)
	if err != nil {
		return nil, err
	}
	res.Status, res.Methods, res.DefaultMethod = StatusSecondFactor, methods, def
	if slices.Contains(methods, string(deadbolt.FactorWebAuthn)) {
		// The passkey ceremony starts with the challenge: its options go
		// with the answer, so the browser can ask at once. Passkeys that
		// cannot be used here (the public URL lost its host name) are no
		// reason to refuse the user's other methods.
		res.WebAuthnOptions, err = s.assertionOptions(ctx, acc, u, usable, deadbolt.WebAuthnSecondFactor, passkeyScope(res.Challenge.ID))
		if err != nil {
			s.log.WarnContext(ctx, "passkey options at sign-in", "user", u.ID, "err", err)
			res.Methods = slices.DeleteFunc(res.Methods, func(m string) bool { return m == string(deadbolt.FactorWebAuthn) })
			if res.DefaultMethod == string(deadbolt.FactorWebAuthn) && len(res.Methods) > 0 {
				res.DefaultMethod = res.Methods[0]
			}
		}
	}
	if k := deadbolt.FactorKind(def); k == deadbolt.FactorSMS || k == deadbolt.FactorEmail {
		// The default method's code goes at once. If the send limits
		// refuse it, the challenge still stands: the user can pick
		// another method, or ask again later.
		f := factorOf(usable, k)
		snt, err := s.sendCode(ctx, sendRequest{acc: acc, user: u, challengeID: res.Challenge.ID, channel: channelOf(k),
			to: destination(u, f), ttl: deadbolt.PasscodeTTL, purpose: purposeSignIn}, now)
		if err == nil {
			res.SentTo = snt.To
		} else if !deadbolt.IsCode(err, deadbolt.ERateLimited) {
			return nil, err
		}
	}
	return res, nil
}

// mustEnroll reports whether the user must set up a factor before they get
// a session: 2FA is required of them, they have none they can use, and
// their grace period (if any) is over.
func mustEnroll(acc *deadbolt.Account, u *deadbolt.User, factors []*deadbolt.Factor, now time.Time) bool {
	return len(available(acc, u, factors)) == 0 && acc.Policy.Requires2FA(u.Role) &&
		!now.Before(acc.Policy.GraceDeadline(u.Role, u.CreatedAt))
}

// startEnrollment holds the sign-in until the user sets up a first factor.
func (s *Service) startEnrollment(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, device *deadbolt.Device, ssoProviderID string,
	c Client, now time.Time) (*Result, error) {
	res, err := s.challenge(ctx, acc, u, deadbolt.ChallengeEnrollment, device, ssoProviderID, c, now)
	if err != nil {
		return nil, err
	}
	res.Status, res.Methods = StatusEnrollment, s.enrollableKinds(acc, u)
	s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditEnrollmentRequired, ActorID: u.ID, SubjectID: u.ID, IP: c.IP})
	return res, nil
}

// deviceProof is the proof of a sign-in by password alone, on the device
// it came from: a recognised one is seen again; an unknown one becomes
// recognised, and its token is returned for the caller.
func (s *Service) deviceProof(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, device *deadbolt.Device, c Client,
	now time.Time) (sessionProof, string, error) {
	if device != nil {
		s.seeDevice(ctx, device, c, now)
		return sessionProof{password: now, deviceID: device.ID}, "", nil
	}
	d, token, err := s.recognise(ctx, acc, u, c, now)
	if err != nil {
		return sessionProof{}, "", err
	}
	return sessionProof{password: now, deviceID: d.ID}, token, nil
}

// findDevice returns the user's device named by the token, or nil. A token
// of another user, or of another account, is ignored like an unknown one.
func (s *Service) findDevice(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, token string) *deadbolt.Device {
	if !strings.HasPrefix(token, PrefixDevice) || len(token) > 128 {
		return nil
	}
	d, err := s.store.FindDeviceByTokenHash(ctx, acc.ID, s.keys.Hash(token))
	if err != nil || d.UserID != u.ID {
		return nil
	}
	return d
}

// seeDevice records that the device was used; a failure only loses the
// "last seen" time.
func (s *Service) seeDevice(ctx context.Context, d *deadbolt.Device, c Client, now time.Time) {
	d.LastSeenAt, d.IP = now, c.IP
	if err := s.store.UpdateDevice(ctx, d); err != nil {
		s.log.WarnContext(ctx, "device last-seen not stored", "device", d.ID, "err", err)
	}
}

// challenge starts the second step; ssoProviderID names the identity
// provider the first step came from, if any.
func (s *Service) challenge(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, purpose deadbolt.ChallengePurpose,
	device *deadbolt.Device, ssoProviderID string, c Client, now time.Time) (*Result, error) {
	token := secret.NewToken(PrefixChallenge)
	ch := &deadbolt.Challenge{AccountID: acc.ID, UserID: u.ID, TokenHash: s.keys.Hash(token), Purpose: purpose, IP: c.IP,
		SSOProviderID: ssoProviderID, CreatedAt: now, ExpiresAt: now.Add(deadbolt.ChallengeTTL)}
	if device != nil {
		ch.DeviceID = device.ID
	}
	if err := s.store.CreateChallenge(ctx, ch); err != nil {
		return nil, err
	}
	return &Result{Account: acc, User: u, ChallengeToken: token, Challenge: ch}, nil
}

// sessionProof is what was proven before a session is made.
type sessionProof struct {
	password, secondFactor time.Time
	// method is how the second factor was proven (Session.SecondFactorMethod).
	method   string
	deviceID string
	// sso names the identity provider that vouched at federated (instead
	// of a password); upstreamMFA, whether its MFA is trusted and done.
	sso         string
	federated   time.Time
	upstreamMFA bool
}

// afterChallenge is the proof of a sign-in that went through the
// challenge and then a second factor (method) at now: the first step was
// a password, or an identity provider, when the challenge was made.
func afterChallenge(ch *deadbolt.Challenge, now time.Time, method string) sessionProof {
	p := sessionProof{secondFactor: now, method: method, deviceID: ch.DeviceID}
	if ch.SSOProviderID != "" {
		p.sso, p.federated = ch.SSOProviderID, ch.CreatedAt
	} else {
		p.password = ch.CreatedAt
	}
	return p
}

// newSession prepares a session under the account's policy; the caller
// stores it.
func (s *Service) newSession(acc *deadbolt.Account, u *deadbolt.User, c Client, now time.Time, p sessionProof) (string, *deadbolt.Session) {
	token := secret.NewToken(PrefixSession)
	return token, &deadbolt.Session{AccountID: acc.ID, UserID: u.ID, TokenHash: s.keys.Hash(token),
		IdleTimeout: acc.Policy.SessionIdle(), ExpiresAt: now.Add(acc.Policy.SessionMax()),
		PasswordAt: p.password, SecondFactorAt: p.secondFactor, SecondFactorMethod: p.method, DeviceID: p.deviceID,
		SSOProviderID: p.sso, FederatedAt: p.federated, UpstreamMFA: p.upstreamMFA,
		IP: c.IP, UserAgent: truncate(c.UserAgent, 256), CreatedAt: now, LastSeenAt: now}
}

// signedIn makes and stores a session.
func (s *Service) signedIn(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, c Client, now time.Time, p sessionProof) (*Result, error) {
	token, sess := s.newSession(acc, u, c, now, p)
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return nil, err
	}
	return &Result{Status: StatusSignedIn, Account: acc, User: u, SessionToken: token, Session: sess, RecoveryCodesLeft: -1}, nil
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// minPasswordLength is the shortest password the user may choose: 8 when
// they use or must use a second factor (NIST SP 800-63B-4), else 15.
func minPasswordLength(acc *deadbolt.Account, u *deadbolt.User, has2FA bool) int {
	if has2FA || acc.Policy.Requires2FA(u.Role) {
		return password.MinLengthWith2FA
	}
	return password.MinLength
}
