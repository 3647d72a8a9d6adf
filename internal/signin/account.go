package signin

import (
	"context"
	"strconv"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/password"
)

// noTime leaves a time unchanged in UpdateSessionAuth.
var noTime time.Time

// Devices lists the user's recognised and remembered devices.
func (s *Service) Devices(ctx context.Context, p *Principal) ([]*deadbolt.Device, error) {
	if err := requireSession(p); err != nil {
		return nil, err
	}
	return s.store.FindDevices(ctx, p.Account.ID, p.User.ID)
}

// RevokeDevice forgets one of the user's devices: it will be asked for a
// second factor (or 2-step verification) again.
func (s *Service) RevokeDevice(ctx context.Context, p *Principal, id string) error {
	if err := requireSession(p); err != nil {
		return err
	}
	if err := s.store.DeleteDevice(ctx, p.Account.ID, p.User.ID, id); err != nil {
		return err
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditDeviceRevoked, ActorID: p.User.ID,
		SubjectID: p.User.ID, Details: map[string]string{"device_id": id}})
	return nil
}

// Sessions lists the user's sessions that are still active.
func (s *Service) Sessions(ctx context.Context, p *Principal) ([]*deadbolt.Session, error) {
	if err := requireSession(p); err != nil {
		return nil, err
	}
	all, err := s.store.FindSessions(ctx, p.Account.ID, p.User.ID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var live []*deadbolt.Session
	for _, x := range all {
		if x.Active(now) {
			live = append(live, x)
		}
	}
	return live, nil
}

// RevokeSession ends one of the user's sessions.
func (s *Service) RevokeSession(ctx context.Context, p *Principal, id string) error {
	defer s.sessionsEnded()
	if err := requireSession(p); err != nil {
		return err
	}
	if err := s.store.DeleteSession(ctx, p.Account.ID, p.User.ID, id); err != nil {
		return err
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditSessionRevoked, ActorID: p.User.ID,
		SubjectID: p.User.ID, Details: map[string]string{"session_id": id}})
	return nil
}

// SignOut ends the principal's session.
func (s *Service) SignOut(ctx context.Context, p *Principal) error {
	defer s.sessionsEnded()
	if err := requireSession(p); err != nil {
		return err
	}
	if err := s.store.DeleteSession(ctx, p.Account.ID, p.User.ID, p.Session.ID); err != nil && !deadbolt.IsCode(err, deadbolt.ENotFound) {
		return err
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditSignOut, ActorID: p.User.ID, SubjectID: p.User.ID})
	return nil
}

// ChangePassword sets a new password after checking the current one. The
// user's other sessions end and their remembered devices are forgotten.
func (s *Service) ChangePassword(ctx context.Context, p *Principal, current, next string, c Client) error {
	defer s.sessionsEnded()
	if err := requireSession(p); err != nil {
		return err
	}
	now := s.now()
	if p.User.AuthSource != deadbolt.AuthPassword {
		return deadbolt.Errorf(deadbolt.EForbidden, "You sign in through single sign-on: change your password there.")
	}
	if current == "" {
		return deadbolt.Invalid("current_password", "Your current password is required.")
	}
	if len(current) > maxPasswordBytes {
		return deadbolt.Invalid("current_password", "The password is too long.")
	}
	if len(next) > maxPasswordBytes {
		return deadbolt.Invalid("new_password", "The password is too long.")
	}
	att, err := s.reserve(ctx, p.Account.ID, now, s.ipLimit(c.IP),
		s.backoffLimit(sessionPasswordKey(p.Session.ID), "Password changes are paused for a while."))
	if err != nil {
		return err
	}
	ok, err := s.verifyPassword(ctx, current, p.User.PasswordHash)
	if ctxErr := ctx.Err(); ctxErr != nil {
		att.giveBack(ctx)
		return ctxErr
	}
	if err != nil && p.User.PasswordHash != "" {
		s.log.ErrorContext(ctx, "stored password hash unreadable", "user", p.User.ID, "err", err)
	}
	if !ok {
		s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditPasswordChangeFailed, ActorID: p.User.ID,
			SubjectID: p.User.ID, IP: c.IP, Details: map[string]string{"cause": "wrong_password"}})
		return &deadbolt.Error{Code: deadbolt.EInvalidCredentials, Field: "current_password", Message: "Your current password is not right."}
	}
	// The current password was right: whatever happens to the new one,
	// this try is no failure.
	att.succeeded(ctx)
	factors, err := s.store.FindFactors(ctx, p.Account.ID, p.User.ID)
	if err != nil {
		return err
	}
	if err := password.CheckWithContext(next, minPasswordLength(p.Account, p.User, hasActive(factors)),
		p.User.Email, p.User.Name, p.Account.Name, p.Account.Slug); err != nil {
		return passwordRuleError(err)
	}
	if next == current {
		return deadbolt.Invalid("new_password", "Choose a password different from the current one.")
	}
	hash, err := s.hashPassword(ctx, next)
	if err != nil {
		return err
	}
	if _, err := s.store.UpdateUser(ctx, p.Account.ID, p.User.ID, deadbolt.UserUpdate{PasswordHash: &hash}); err != nil {
		return err
	}
	ended, err := s.store.DeleteSessions(ctx, p.Account.ID, p.User.ID, p.Session.ID)
	if err != nil {
		return err
	}
	forgotten, err := s.store.DeleteDevices(ctx, p.Account.ID, p.User.ID)
	if err != nil {
		return err
	}
	if err := s.store.UpdateSessionAuth(ctx, p.Account.ID, p.Session.ID, noTime, "", now); err != nil {
		return err
	}
	tokens, err := s.store.DeleteUserAPITokens(ctx, p.Account.ID, p.User.ID)
	if err != nil {
		return err
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditPasswordChanged, ActorID: p.User.ID, SubjectID: p.User.ID,
		IP: c.IP, Details: map[string]string{"sessions_ended": strconv.Itoa(ended), "devices_forgotten": strconv.Itoa(forgotten),
			"api_tokens_revoked": strconv.Itoa(len(tokens))}})
	s.auditTokensRevoked(ctx, p.Account, p.User, p.User, tokens, "password_changed")
	s.securityNotice(ctx, p.Account, p.User, noticePasswordChanged, "Your password was changed",
		"Your password was changed: your other sessions ended, your devices were forgotten and your API tokens were revoked", c)
	return nil
}

// passwordRuleError turns a broken password rule into an invalid_request
// naming the field, with the rule in words.
func passwordRuleError(err error) error { return passwordRuleErrorField(err, "new_password") }

func passwordRuleErrorField(err error, field string) error {
	if re, ok := err.(*password.RuleError); ok {
		msg := "The " + re.Error() + "."
		if field == "new_password" {
			msg = "The new " + re.Error() + "."
		}
		return &deadbolt.Error{Code: deadbolt.EInvalid, Field: field, Message: msg}
	}
	return err
}

// StepUp records a fresh proof on the session: a second-factor code, or,
// for a user with no second factor, the password.
func (s *Service) StepUp(ctx context.Context, p *Principal, method, code, pw string, c Client) error {
	if err := requireSession(p); err != nil {
		return err
	}
	now := s.now()
	factors, err := s.store.FindFactors(ctx, p.Account.ID, p.User.ID)
	if err != nil {
		return err
	}
	if !hasActive(factors) {
		if pw == "" {
			return deadbolt.Invalid("password", "Confirm with your password.")
		}
		if len(pw) > maxPasswordBytes {
			return deadbolt.Invalid("password", "The password is too long.")
		}
		att, err := s.reserve(ctx, p.Account.ID, now, s.ipLimit(c.IP),
			s.backoffLimit(sessionPasswordKey(p.Session.ID), "Confirming is paused for a while."))
		if err != nil {
			return err
		}
		ok, _ := s.verifyPassword(ctx, pw, p.User.PasswordHash)
		if ctxErr := ctx.Err(); ctxErr != nil {
			att.giveBack(ctx)
			return ctxErr
		}
		if !ok {
			s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditSignInFailed, SubjectID: p.User.ID, IP: c.IP,
				Details: map[string]string{"step": "step_up", "cause": "wrong_password"}})
			return errInvalidCredentials
		}
		att.succeeded(ctx)
		if err := s.store.UpdateSessionAuth(ctx, p.Account.ID, p.Session.ID, noTime, "", now); err != nil {
			return err
		}
		s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditStepUp, ActorID: p.User.ID, SubjectID: p.User.ID,
			IP: c.IP, Details: map[string]string{"method": "password"}})
		return nil
	}
	if method == "" {
		return deadbolt.Invalid("method", "Confirm with a code from your second factor.")
	}
	t, err := s.prepareCode(ctx, p.Account, p.User, method, code)
	if err != nil {
		return err
	}
	att, err := s.reserve(ctx, p.Account.ID, now, s.backoffLimit(secondFactorKey(p.User.ID), "Your second factor is protected for a while."))
	if err != nil {
		return err
	}
	pr, cause, err := s.checkCode(ctx, p.Account, p.User, stepUpScope(p), t, now, false)
	if err != nil {
		return err
	}
	if cause == causeExpired {
		att.giveBack(ctx)
		snt, err := s.sendCode(ctx, sendRequest{acc: p.Account, user: p.User, challengeID: stepUpScope(p), channel: channelOf(pr.factor.Kind),
			to: destination(p.User, pr.factor), ttl: deadbolt.PasscodeTTL, purpose: purposeStepUp}, now)
		if err != nil {
			return err
		}
		return codeExpired(snt)
	}
	if cause != "" {
		s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditSignInFailed, SubjectID: p.User.ID, IP: c.IP,
			Details: map[string]string{"step": "step_up", "method": method, "cause": cause}})
		return invalidCode(att.left())
	}
	att.succeeded(ctx)
	if pr.recovery != nil && pr.recovery.Admin() {
		// An admin's code means the user lost their factors: it has the
		// same effect wherever it is used.
		if err := s.resetTwoFactor(ctx, p.Account, p.User, nil, "admin_recovery_code"); err != nil {
			return err
		}
		return deadbolt.Errorf(deadbolt.EUnauthorized, "That was a recovery code from your admin: your two-factor authentication is reset and your sessions have ended. Sign in again and set it up.")
	}
	if err := s.store.UpdateSessionAuth(ctx, p.Account.ID, p.Session.ID, now, pr.method, noTime); err != nil {
		return err
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditStepUp, ActorID: p.User.ID, SubjectID: p.User.ID,
		IP: c.IP, Details: map[string]string{"method": pr.method}})
	return nil
}

// stepUpScope is what step-up codes sent by SMS or email are tied to: the
// session, so a code asked for on one session proves nothing on another.
func stepUpScope(p *Principal) string { return "step-up:" + p.Session.ID }

// SendStepUpCode sends a code by SMS or email to confirm a sensitive action.
func (s *Service) SendStepUpCode(ctx context.Context, p *Principal, method string) (*Sent, error) {
	if err := requireSession(p); err != nil {
		return nil, err
	}
	if method != string(deadbolt.FactorSMS) && method != string(deadbolt.FactorEmail) && method != string(deadbolt.FactorWebAuthn) {
		return nil, deadbolt.Invalid("method", "Codes can be sent by sms or email; webauthn gives passkey options.")
	}
	factors, err := s.store.FindFactors(ctx, p.Account.ID, p.User.ID)
	if err != nil {
		return nil, err
	}
	if method == string(deadbolt.FactorWebAuthn) {
		opts, err := s.assertionOptions(ctx, p.Account, p.User, available(p.Account, p.User, factors), deadbolt.WebAuthnStepUp,
			passkeyScope(stepUpScope(p)))
		if err != nil {
			return nil, err
		}
		return &Sent{WebAuthnOptions: opts}, nil
	}
	f := factorOf(available(p.Account, p.User, factors), deadbolt.FactorKind(method))
	if f == nil {
		return nil, deadbolt.Invalid("method", "You have no verification by %s set up.", method)
	}
	return s.sendCode(ctx, sendRequest{acc: p.Account, user: p.User, challengeID: stepUpScope(p), channel: channelOf(f.Kind),
		to: destination(p.User, f), ttl: deadbolt.PasscodeTTL, purpose: purposeStepUp, cooldown: true}, s.now())
}
