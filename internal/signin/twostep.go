package signin

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/deadbolt/deadbolt"
)

// needsDeviceVerification reports whether a sign-in needs 2-step
// verification: a team member with no second factor, signing in with a
// password, from a device Deadbolt does not recognise. Users with 2FA or
// SSO never see it, and end users do not get it.
func needsDeviceVerification(u *deadbolt.User, device *deadbolt.Device) bool {
	return u.Role.TeamMember() && u.AuthSource == deadbolt.AuthPassword && device == nil
}

// startDeviceVerification emails a code for the new device.
func (s *Service) startDeviceVerification(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, c Client, now time.Time) (*Result, error) {
	res, err := s.challenge(ctx, acc, u, deadbolt.ChallengeDeviceVerification, nil, "", c, now)
	if err != nil {
		return nil, err
	}
	res.Status, res.Methods = StatusDeviceVerification, []string{string(deadbolt.FactorEmail)}
	snt, err := s.sendDeviceCode(ctx, acc, u, res.Challenge.ID, now)
	if err == nil {
		res.SentTo = snt.To
	} else if !deadbolt.IsCode(err, deadbolt.ERateLimited) {
		return nil, err
	}
	// Refused by the send limits, the challenge still stands, without
	// sent_to: the user can ask again (POST /signin/send) once allowed.
	return res, nil
}

func (s *Service) sendDeviceCode(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, challengeID string, now time.Time) (*Sent, error) {
	return s.sendCode(ctx, sendRequest{acc: acc, user: u, challengeID: challengeID, channel: deadbolt.ChannelEmail, to: u.Email,
		ttl: deadbolt.DeviceVerificationTTL, purpose: purposeDevice}, now)
}

// verifyDevice answers a 2-step verification challenge with a code whose
// try (the n-th of the challenge) is reserved. A wrong or expired code
// sends a new one; the right one recognises the device.
func (s *Service) verifyDevice(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, ch *deadbolt.Challenge, typed string,
	att *attempt, n int, c Client, now time.Time) (*Result, error) {
	method := string(deadbolt.FactorEmail)
	res, err := s.checkPasscode(ctx, acc.ID, ch.ID, "", deadbolt.ChannelEmail, typed, now)
	if err != nil {
		return nil, err
	}
	if res == passcodeExpired {
		s.giveBackCode(ctx, att, ch)
		snt, err := s.sendDeviceCode(ctx, acc, u, ch.ID, now)
		if err != nil {
			return nil, err
		}
		return nil, codeExpired(snt)
	}
	if res != passcodeOK {
		err := s.wrongCode(ctx, acc, u, method, "wrong_device_code", n, c)
		// A new code goes out only while the challenge lives: after the
		// fifth wrong code it would be wasted, and count against limits.
		var e *deadbolt.Error
		if errors.As(err, &e) && n < deadbolt.ChallengeMaxAttempts {
			if snt, sendErr := s.sendDeviceCode(ctx, acc, u, ch.ID, now); sendErr == nil {
				e.Message = "That code is not right. We sent you a new one to " + snt.To + "."
				e.Details["new_code_sent"], e.Details["sent_to"] = true, snt.To
			}
		}
		return nil, err
	}
	if err := s.store.ConsumeChallenge(ctx, acc.ID, ch.ID, reservedAttempts, now); deadbolt.IsCode(err, deadbolt.ENotFound) {
		return nil, errChallengeExpired
	} else if err != nil {
		return nil, err
	}
	att.succeeded(ctx)
	// The device is recognised from now on (no 2-step verification), but
	// not remembered: that is for second factors.
	d, token, err := s.recognise(ctx, acc, u, c, now)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditDeviceVerified, ActorID: u.ID, SubjectID: u.ID, IP: c.IP,
		Details: map[string]string{"device_id": d.ID, "device": d.Name}})
	factors, err := s.store.FindFactors(ctx, acc.ID, u.ID)
	if err != nil {
		return nil, err
	}
	if mustEnroll(acc, u, factors, now) {
		// The device is verified; now the first factor the account requires,
		// before any session.
		out, err := s.startEnrollment(ctx, acc, u, d, "", c, now)
		if err != nil {
			return nil, err
		}
		out.DeviceToken = token
		return out, nil
	}
	// A 2-step verification code is no second factor: the session has
	// only the password as proof.
	out, err := s.signedIn(ctx, acc, u, c, now, sessionProof{password: ch.CreatedAt, deviceID: d.ID})
	if err != nil {
		return nil, err
	}
	out.DeviceToken = token
	if due := acc.Policy.GraceDeadline(u.Role, u.CreatedAt); now.Before(due) {
		out.TwoFactorDue = due
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSignInSucceeded, ActorID: u.ID, SubjectID: u.ID, IP: c.IP,
		Details: map[string]string{"method": "password", "device_verification": "true"}})
	s.newDeviceNotice(ctx, acc, u, c)
	return out, nil
}

// SendChallengeCode sends (again) a code for a sign-in challenge by SMS or
// email, after the cool-down; a new code kills the previous one.
func (s *Service) SendChallengeCode(ctx context.Context, challengeToken, method string) (*Sent, error) {
	now := s.now()
	ch, err := s.liveChallenge(ctx, challengeToken, now)
	if err != nil {
		return nil, err
	}
	acc, err := s.store.FindAccountByID(ctx, ch.AccountID)
	if err != nil {
		return nil, err
	}
	u, err := s.store.FindUserByID(ctx, acc.ID, ch.UserID)
	if deadbolt.IsCode(err, deadbolt.ENotFound) {
		return nil, errChallengeExpired
	} else if err != nil {
		return nil, err
	}
	switch ch.Purpose {
	case deadbolt.ChallengeDeviceVerification:
		if method != string(deadbolt.FactorEmail) {
			return nil, deadbolt.Invalid("method", "2-step verification codes come by email: method email.")
		}
		return s.sendCode(ctx, sendRequest{acc: acc, user: u, challengeID: ch.ID, channel: deadbolt.ChannelEmail, to: u.Email,
			ttl: deadbolt.DeviceVerificationTTL, purpose: purposeDevice, cooldown: true}, now)
	case deadbolt.ChallengeSecondFactor:
		if method != string(deadbolt.FactorSMS) && method != string(deadbolt.FactorEmail) && method != string(deadbolt.FactorWebAuthn) {
			return nil, deadbolt.Invalid("method", "Codes can be sent by sms or email; webauthn gives new passkey options.")
		}
		factors, err := s.store.FindFactors(ctx, acc.ID, u.ID)
		if err != nil {
			return nil, err
		}
		if method == string(deadbolt.FactorWebAuthn) {
			// A new ceremony for the challenge (the last one was answered,
			// or the browser lost it).
			opts, err := s.assertionOptions(ctx, acc, u, available(acc, u, factors), deadbolt.WebAuthnSecondFactor, passkeyScope(ch.ID))
			if err != nil {
				return nil, err
			}
			return &Sent{WebAuthnOptions: opts}, nil
		}
		f := factorOf(available(acc, u, factors), deadbolt.FactorKind(method))
		if f == nil {
			return nil, deadbolt.Invalid("method", "You have no %s verification set up.", strings.ToUpper(method))
		}
		return s.sendCode(ctx, sendRequest{acc: acc, user: u, challengeID: ch.ID, channel: channelOf(f.Kind), to: destination(u, f),
			ttl: deadbolt.PasscodeTTL, purpose: purposeSignIn, cooldown: true}, now)
	}
	return nil, deadbolt.Invalid("challenge_token", "This sign-in does not wait for a code: set up a second factor first.")
}
