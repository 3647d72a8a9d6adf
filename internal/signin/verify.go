package signin

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/totp"
	"github.com/deadbolt/deadbolt/internal/useragent"
)

// proof is what a verified second-factor code was.
type proof struct {
	method   string
	factor   *deadbolt.Factor       // for a factor's code
	recovery *deadbolt.RecoveryCode // for a recovery code
	// step is the TOTP time step matched; with deferStep it is not yet
	// recorded, and the caller records it (atomically, with the rest).
	step int64
}

// codeTry is a second-factor code ready to be checked: a method the user
// can use now, and a code in its form.
type codeTry struct {
	method string
	code   string // normalised
	usable []*deadbolt.Factor
	// assertion is a passkey's answer (method webauthn).
	assertion *protocol.ParsedCredentialAssertionData
}

// prepareCode checks that the method is one of the user's and the code is
// well formed. A malformed code is an invalid_request: it is no guess, so
// it is refused before any attempt is reserved.
func (s *Service) prepareCode(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, method, code string) (*codeTry, error) {
	factors, err := s.store.FindFactors(ctx, acc.ID, u.ID)
	if err != nil {
		return nil, err
	}
	usable := available(acc, u, factors)
	methods, _ := methodsOf(usable)
	if len(usable) == 0 || !slices.Contains(methods, method) {
		return nil, deadbolt.Invalid("method", "Use one of: %s.", strings.Join(methods, ", "))
	}
	t := &codeTry{method: method, usable: usable}
	var ok bool
	switch method {
	case MethodRecoveryCode:
		if t.code, ok = normalizeRecoveryCode(code); !ok {
			return nil, deadbolt.Invalid("code", "A recovery code is 10 letters and digits, such as abcde-fghjk.")
		}
	case string(deadbolt.FactorSMS), string(deadbolt.FactorEmail):
		if t.code, err = normalizePasscode(code); err != nil {
			return nil, err
		}
	case string(deadbolt.FactorTOTP):
		if t.code, ok = totp.Normalize(code); !ok {
			return nil, deadbolt.Invalid("code", "The code is the 6 digits your authenticator app shows.")
		}
	case string(deadbolt.FactorWebAuthn):
		// code is the browser's answer to navigator.credentials.get.
		if t.assertion, err = parseAssertion(code); err != nil {
			return nil, err
		}
	default:
		return nil, deadbolt.Invalid("method", "This method cannot be used here yet.")
	}
	return t, nil
}

// checkCode checks a prepared second-factor code of the user. A wrong,
// replayed or expired one returns the cause for the audit log. The caller
// has reserved the attempt.
//
// scope is the challenge (or step-up scope) that SMS and email codes were
// sent for; a right code that came too late returns the cause
// causeExpired, and the caller sends a new one.
func (s *Service) checkCode(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, scope string, t *codeTry, now time.Time, deferStep bool) (p proof, cause string, err error) {
	p.method = t.method
	switch t.method {
	case MethodRecoveryCode:
		rc, err := s.store.ConsumeRecoveryCode(ctx, acc.ID, u.ID, s.keys.Hash(t.code), now)
		if deadbolt.IsCode(err, deadbolt.ENotFound) {
			return p, "wrong_recovery_code", nil
		} else if err != nil {
			return p, "", err
		}
		p.recovery = rc
		return p, "", nil
	case string(deadbolt.FactorWebAuthn):
		// The passkey ceremony of the scope, answered once; its signature
		// is recorded (the counter must move on) before the proof counts.
		f, _, cause, err := s.checkAssertion(ctx, acc, u, t.usable, passkeyScope(scope), t.assertion, now)
		if err != nil || cause != "" {
			return p, cause, err
		}
		p.factor = f
		return p, "", nil
	case string(deadbolt.FactorSMS), string(deadbolt.FactorEmail):
		kind := deadbolt.FactorKind(t.method)
		p.factor = factorOf(t.usable, kind)
		res, err := s.checkPasscode(ctx, acc.ID, scope, "", channelOf(kind), t.code, now)
		switch {
		case err != nil:
			return p, "", err
		case res == passcodeExpired:
			return p, causeExpired, nil
		case res == passcodeWrong:
			return p, "wrong_code", nil
		}
		if p.factor != nil {
			if err := s.store.MarkFactorUsed(ctx, acc.ID, p.factor.ID, now); err != nil && !deadbolt.IsCode(err, deadbolt.ENotFound) {
				return p, "", err
			}
		}
		return p, "", nil
	}
	// An authenticator app's code.
	cause = "wrong_code"
	for _, f := range t.usable {
		if f.Kind != deadbolt.FactorTOTP {
			continue
		}
		step, ok := totp.Validate(f.Secret, t.code, now)
		if !ok {
			continue
		}
		if deferStep {
			p.factor, p.step = f, step
			return p, "", nil
		}
		// The step is recorded in one conditional statement: a code that
		// was already used, here or in another process, is refused.
		err := s.store.UseTOTPStep(ctx, acc.ID, f.ID, step, now)
		if deadbolt.IsCode(err, deadbolt.EConflict) {
			cause = "replayed_code"
			continue
		} else if err != nil {
			return p, "", err
		}
		p.factor = f
		return p, "", nil
	}
	return p, cause, nil
}

// causeExpired is the cause of the right passcode typed too late.
const causeExpired = "expired_code"

// liveChallenge returns the challenge of the token if it can still be
// answered; any other case is the one challenge_expired error.
func (s *Service) liveChallenge(ctx context.Context, token string, now time.Time) (*deadbolt.Challenge, error) {
	if !strings.HasPrefix(token, PrefixChallenge) || len(token) > 128 {
		return nil, errChallengeExpired
	}
	ch, err := s.store.FindChallengeByTokenHash(ctx, s.keys.Hash(token))
	if deadbolt.IsCode(err, deadbolt.ENotFound) {
		return nil, errChallengeExpired
	} else if err != nil {
		return nil, err
	}
	if !ch.UsedAt.IsZero() || !now.Before(ch.ExpiresAt) || ch.Attempts >= deadbolt.ChallengeMaxAttempts {
		return nil, errChallengeExpired
	}
	return ch, nil
}

// reservedAttempts is what a challenge's completion checks once the
// attempt being answered was reserved with FailChallenge: it is consumed
// while its attempts, this one included, are at most the limit.
const reservedAttempts = deadbolt.ChallengeMaxAttempts + 1

// Verify answers a second-factor challenge with a code.
func (s *Service) Verify(ctx context.Context, challengeToken, method, code string, remember bool, c Client) (*Result, error) {
	now := s.now()
	if method == string(deadbolt.FactorWebAuthn) && strings.HasPrefix(challengeToken, PrefixChallenge) && len(challengeToken) <= 64 {
		// A passwordless sign-in's token names a ceremony, not a challenge.
		cer, session, err := s.takeCeremonyByHash(ctx, s.ceremonyHash(passwordlessScope(challengeToken)))
		if err == nil {
			return s.verifyPasswordless(ctx, cer, session, code, remember, c, now)
		} else if !deadbolt.IsCode(err, deadbolt.ENotFound) {
			return nil, err
		}
	}
	ch, err := s.liveChallenge(ctx, challengeToken, now)
	if err != nil {
		return nil, err
	}
	if ch.Purpose == deadbolt.ChallengeEnrollment {
		return nil, deadbolt.Invalid("challenge_token", "This sign-in does not wait for a code: set up a second factor first.")
	}
	acc, err := s.store.FindAccountByID(ctx, ch.AccountID)
	if err != nil {
		return nil, err
	}
	u, err := s.store.FindUserByID(ctx, acc.ID, ch.UserID)
	if deadbolt.IsCode(err, deadbolt.ENotFound) {
		return nil, errChallengeExpired // the user was removed meanwhile
	} else if err != nil {
		return nil, err
	}
	var t *codeTry
	if ch.Purpose == deadbolt.ChallengeDeviceVerification {
		if method != string(deadbolt.FactorEmail) {
			return nil, deadbolt.Invalid("method", "Use the code we emailed you: method email.")
		}
		typed, err := normalizePasscode(code)
		if err != nil {
			return nil, err
		}
		t = &codeTry{method: method, code: typed}
	} else if t, err = s.prepareCode(ctx, acc, u, method, code); err != nil {
		return nil, err
	}
	att, n, err := s.reserveCode(ctx, acc, u, ch, method, c, now)
	if err != nil {
		return nil, err
	}
	if ch.Purpose == deadbolt.ChallengeDeviceVerification {
		return s.verifyDevice(ctx, acc, u, ch, t.code, att, n, c, now)
	}
	p, cause, err := s.checkCode(ctx, acc, u, ch.ID, t, now, true)
	if err != nil {
		return nil, err
	}
	if cause == causeExpired {
		// The right code, too late: a new one goes out, and the caller is
		// told so. The attempt is given back: it was no guess.
		s.giveBackCode(ctx, att, ch)
		snt, err := s.sendCode(ctx, sendRequest{acc: acc, user: u, challengeID: ch.ID, channel: channelOf(p.factor.Kind),
			to: destination(u, p.factor), ttl: deadbolt.PasscodeTTL, purpose: purposeSignIn}, now)
		if err != nil {
			return nil, err
		}
		return nil, codeExpired(snt)
	}
	if cause != "" {
		return nil, s.wrongCode(ctx, acc, u, method, cause, n, c)
	}
	res, err := s.completeSecondFactor(ctx, acc, u, ch, p, remember, att, c, now)
	if deadbolt.IsCode(err, deadbolt.EConflict) {
		// The TOTP step was used meanwhile (a replay, here or in another
		// process): a wrong code like any other.
		return nil, s.wrongCode(ctx, acc, u, method, "replayed_code", n, c)
	}
	return res, err
}

// reserveCode reserves the try of a code before it is checked, in one
// transaction: one of the challenge's five attempts, and one of the user's
// consecutive second-factor failures (across challenges). Racing codes
// cannot get more checks than the limits allow. A dead challenge answers
// challenge_expired before any back-off. It returns the challenge's
// attempts with this one.
func (s *Service) reserveCode(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, ch *deadbolt.Challenge, method string,
	c Client, now time.Time) (*attempt, int, error) {
	l := s.backoffLimit(secondFactorKey(u.ID), "Your second factor is protected for a while.")
	n, cnt, ok, err := s.store.ReserveCodeAttempt(ctx, acc.ID, ch.ID, deadbolt.ChallengeMaxAttempts, l.key, l.rule, now)
	switch {
	case deadbolt.IsCode(err, deadbolt.ENotFound):
		return nil, 0, errChallengeExpired // racing codes took the last attempt
	case err != nil:
		return nil, 0, err
	case !ok:
		s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSignInFailed, SubjectID: u.ID, IP: c.IP,
			Details: map[string]string{"step": "second_factor", "method": method, "cause": "rate_limited"}})
		return nil, 0, l.refusal(cnt, now)
	}
	l.count = cnt.Count
	return &attempt{s: s, accountID: acc.ID, limits: []limit{l}}, n, nil
}

// giveBackCode returns a reserved try that proved nothing.
func (s *Service) giveBackCode(ctx context.Context, att *attempt, ch *deadbolt.Challenge) {
	att.giveBack(ctx)
	s.returnChallengeAttempt(ctx, ch)
}

func (s *Service) returnChallengeAttempt(ctx context.Context, ch *deadbolt.Challenge) {
	if err := s.store.ReturnChallengeAttempt(context.WithoutCancel(ctx), ch.AccountID, ch.ID); err != nil && !deadbolt.IsCode(err, deadbolt.ENotFound) {
		s.log.WarnContext(ctx, "challenge attempt not given back", "err", err)
	}
}

// wrongCode audits a wrong code, whose attempt (the n-th of the
// challenge) is already counted against the challenge and the user.
func (s *Service) wrongCode(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, method, cause string, n int, c Client) error {
	s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSignInFailed, SubjectID: u.ID, IP: c.IP,
		Details: map[string]string{"step": "second_factor", "method": method, "cause": cause}})
	return invalidCode(deadbolt.ChallengeMaxAttempts - n)
}

// completeSecondFactor makes the session after a proven second factor, and
// remembers the device if asked and allowed.
func (s *Service) completeSecondFactor(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, ch *deadbolt.Challenge,
	p proof, remember bool, att *attempt, c Client, now time.Time) (*Result, error) {
	var deviceToken string
	var device *deadbolt.Device
	if days := acc.Policy.RememberDevice(u.Role); remember && days > 0 {
		var err error
		if device, deviceToken, err = s.deviceToRemember(ctx, acc, u, ch.DeviceID, c, now, now.Add(days)); err != nil {
			return nil, err
		}
	} else if ch.DeviceID == "" && c.KeepsDevice {
		// Recognised from now on, not remembered: the second factor is
		// still asked, but the next sign-in from here is no new device.
		device, deviceToken = s.newDevice(acc, u, c, now, time.Time{})
	}
	details := map[string]string{"method": p.method}
	if ch.SSOProviderID != "" {
		details["provider_id"] = ch.SSOProviderID
	}
	if p.factor != nil {
		details["factor_id"] = p.factor.ID
	}
	if p.recovery != nil && p.recovery.Admin() {
		details["admin_recovery"] = "true"
	}
	// Consuming the challenge, making the session, ending the consecutive
	// failures and auditing the sign-in are one transaction. Of racing
	// right answers, one consumes the challenge; the others find it gone
	// (a TOTP step or recovery code they used stays used).
	token, sess := s.newSession(acc, u, c, now, afterChallenge(ch, now, p.method))
	ev := &deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSignInSucceeded, ActorID: u.ID, SubjectID: u.ID, IP: c.IP,
		UserAgent: truncate(c.UserAgent, 256), Time: now, Details: details}
	comp := &deadbolt.Completion{AccountID: acc.ID, ChallengeID: ch.ID, MaxAttempts: reservedAttempts, Now: now,
		Device: device, Session: sess, Events: []*deadbolt.AuditEvent{ev}, ResetCounters: att.consecutiveKeys()}
	if p.step != 0 && p.factor != nil && p.factor.Kind == deadbolt.FactorTOTP {
		comp.TOTPFactorID, comp.TOTPStep = p.factor.ID, p.step
	}
	if err := s.store.CompleteChallenge(ctx, comp); deadbolt.IsCode(err, deadbolt.ENotFound) {
		return nil, errChallengeExpired
	} else if err != nil {
		return nil, err
	}
	res := &Result{Status: StatusSignedIn, Account: acc, User: u, SessionToken: token, Session: sess, RecoveryCodesLeft: -1, DeviceToken: deviceToken}
	if ch.DeviceID == "" {
		s.newDeviceNotice(ctx, acc, u, c)
	}
	if p.recovery != nil {
		left, err := s.store.CountRecoveryCodes(ctx, acc.ID, u.ID)
		if err != nil {
			return nil, err
		}
		if p.recovery.Admin() {
			left = 0 // the reset below removes the rest
		}
		res.RecoveryCodesLeft = left
		rev := deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditRecoveryUsed, ActorID: u.ID, SubjectID: u.ID, IP: c.IP,
			Details: map[string]string{"codes_left": strconv.Itoa(left)}}
		if p.recovery.Admin() {
			// An admin handed this code to a locked-out user: whoever else is
			// signed in as them is no longer welcome, and their lost factors
			// go, so they set up 2FA again.
			res.AdminRecovery = true
			if err := s.store.DeleteFactors(ctx, acc.ID, u.ID); err != nil {
				return nil, err
			}
			rev.Details["generated_by"] = p.recovery.CreatedBy
			n, err := s.store.DeleteSessions(ctx, acc.ID, u.ID, res.Session.ID)
			if err != nil {
				return nil, err
			}
			s.sessionsEnded()
			d, err := s.store.DeleteDevices(ctx, acc.ID, u.ID)
			if err != nil {
				return nil, err
			}
			res.DeviceToken = ""
			rev.Details["sessions_ended"], rev.Details["devices_forgotten"] = strconv.Itoa(n), strconv.Itoa(d)
		}
		s.audit(ctx, rev)
	}
	return res, nil
}

// deviceToRemember prepares a new device token, stored with the sign-in's
// completion: for the device the sign-in came from if it was recognised
// (its old token stops working), else for a new device.
func (s *Service) deviceToRemember(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, deviceID string, c Client,
	now, until time.Time) (*deadbolt.Device, string, error) {
	if deviceID != "" {
		token := secret.NewToken(PrefixDevice)
		devices, err := s.store.FindDevices(ctx, acc.ID, u.ID)
		if err != nil {
			return nil, "", err
		}
		for _, d := range devices {
			if d.ID == deviceID {
				d.TokenHash, d.RememberedAt, d.RememberUntil, d.LastSeenAt, d.IP = s.keys.Hash(token), now, until, now, c.IP
				return d, token, nil
			}
		}
	}
	d, token := s.newDevice(acc, u, c, now, until)
	return d, token, nil
}

// newDevice prepares a device the request comes from, and its token:
// remembered until rememberUntil, or, when that is zero, only recognised.
// The caller stores it.
func (s *Service) newDevice(acc *deadbolt.Account, u *deadbolt.User, c Client, now, rememberUntil time.Time) (*deadbolt.Device, string) {
	token := secret.NewToken(PrefixDevice)
	d := &deadbolt.Device{AccountID: acc.ID, UserID: u.ID, TokenHash: s.keys.Hash(token), Name: deviceName(c.UserAgent), IP: c.IP,
		CreatedAt: now, LastSeenAt: now}
	if !rememberUntil.IsZero() {
		d.RememberedAt, d.RememberUntil = now, rememberUntil
	}
	return d, token
}

// recognise stores a new recognised (not remembered) device for a sign-in
// that came from an unknown one, so that its next sign-in is no new device.
func (s *Service) recognise(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, c Client, now time.Time) (*deadbolt.Device, string, error) {
	d, token := s.newDevice(acc, u, c, now, time.Time{})
	if err := s.store.CreateDevice(ctx, d); err != nil {
		return nil, "", err
	}
	return d, token, nil
}

// deviceName makes a short label from a user agent for the device list
// and the notices: "Firefox on Linux".
func deviceName(ua string) string { return useragent.Describe(ua) }
