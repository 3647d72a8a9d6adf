package signin

import (
	"context"
	"fmt"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/password"
	"github.com/deadbolt/deadbolt/internal/secret"
)

// InvitationTTL is how long an emailed invitation works.
const InvitationTTL = 7 * 24 * time.Hour

func invitationScope(userID string) string { return "invite:" + userID }
func invitationKey(email string) string    { return "invite:" + email }

// Invite emails a new user a one-time invitation code to choose their
// password with. The code is a recovery-style code (about 50 bits), not 6
// digits: it lives for days, so it must not be guessable in that time.
func (s *Service) Invite(ctx context.Context, p *Principal, u *deadbolt.User, publicURL string) (string, error) {
	if u.AuthSource != deadbolt.AuthPassword || u.PasswordHash != "" {
		return "", deadbolt.Errorf(deadbolt.EConflict, "Only a user without a password can be invited to choose one.")
	}
	now := s.now()
	code := newRecoveryCode()
	n, _ := normalizeRecoveryCode(code)
	link := publicURL + "/accounts/" + p.Account.Slug + "/invitation"
	body := fmt.Sprintf("%s invited you to %s. To choose your password, go to %s and enter your email address and this invitation code:\n\n    %s\n\nThe invitation works once, for 7 days.",
		p.User.Name, p.Account.Name, link, code)
	m := composeNotice(p.Account, u.Email, "You are invited", body, "If you do not expect this invitation, ignore it.")
	m.ExpiresAt = now.Add(InvitationTTL)
	pc := &deadbolt.Passcode{AccountID: p.Account.ID, UserID: u.ID, ChallengeID: invitationScope(u.ID), Channel: deadbolt.ChannelEmail,
		CodeHash: s.keys.Hash(n), CreatedAt: now, ExpiresAt: now.Add(InvitationTTL)}
	if err := s.store.CreatePasscode(ctx, pc, m); err != nil {
		return "", err
	}
	s.notify()
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditUserInvited, ActorID: p.User.ID, SubjectID: u.ID,
		Details: map[string]string{"message_id": m.ID, "to": m.MaskedTo()}})
	return m.MaskedTo(), nil
}

// AcceptInvitation sets the invited user's first password with the code
// from their invitation. Wrong codes are limited like second-factor codes;
// every failure gives the same answer.
func (s *Service) AcceptInvitation(ctx context.Context, slug, email, code, pw string, c Client) error {
	now := s.now()
	acc, err := s.store.FindAccountBySlug(ctx, slug)
	if err != nil {
		return err
	}
	emailN, err := deadbolt.NormalizeEmail(email)
	if err != nil {
		return err
	}
	if len(pw) > maxPasswordBytes {
		return deadbolt.Invalid("password", "The password is too long.")
	}
	// Counted before the code is compared, per email and per client IP,
	// like wrong passwords.
	att, err := s.reserve(ctx, acc.ID, now, s.ipLimit(c.IP), s.backoffLimit(invitationKey(emailN), "Invitations are paused for a while."))
	if err != nil {
		return err
	}
	wrong := deadbolt.Errorf(deadbolt.EInvalidCode, "That email and invitation code do not match a live invitation.")
	u, err := s.store.FindUserByEmail(ctx, acc.ID, emailN)
	if err != nil && !deadbolt.IsCode(err, deadbolt.ENotFound) {
		return err
	}
	n, ok := normalizeRecoveryCode(code)
	res := passcodeWrong
	if u != nil && ok && u.PasswordHash == "" && u.AuthSource == deadbolt.AuthPassword {
		p, err := s.store.LatestPasscode(ctx, acc.ID, invitationScope(u.ID), "", deadbolt.ChannelEmail)
		if err != nil && !deadbolt.IsCode(err, deadbolt.ENotFound) {
			return err
		}
		if p != nil && p.UsedAt.IsZero() && now.Before(p.ExpiresAt) && secret.Equal(p.CodeHash, s.keys.Hash(n)) {
			// The right code: the password rules are told only to its holder,
			// and a password they break does not use the code up.
			if err := password.CheckWithContext(pw, minPasswordLength(acc, u, false), u.Email, u.Name, acc.Name, acc.Slug); err != nil {
				att.giveBack(ctx)
				return passwordRuleErrorField(err, "password")
			}
			if err := s.store.UsePasscode(ctx, acc.ID, p.ID, now); err == nil {
				res = passcodeOK
			} else if !deadbolt.IsCode(err, deadbolt.ENotFound) {
				return err
			}
		}
	}
	if res != passcodeOK {
		s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSignInFailed, IP: c.IP,
			Details: map[string]string{"step": "invitation", "email": emailN, "cause": "wrong_invitation"}})
		return wrong
	}
	h, err := s.hashPassword(ctx, pw)
	if err != nil {
		return err
	}
	if _, err := s.store.UpdateUser(ctx, acc.ID, u.ID, deadbolt.UserUpdate{PasswordHash: &h}); err != nil {
		return err
	}
	att.succeeded(ctx)
	s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditInvitationAccepted, ActorID: u.ID, SubjectID: u.ID, IP: c.IP})
	return nil
}
