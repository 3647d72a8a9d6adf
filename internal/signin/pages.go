package signin

import (
	"context"
	"encoding/base64"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/qr"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/totp"
)

// ChallengeView is what a page needs to show a challenge.
type ChallengeView struct {
	Purpose deadbolt.ChallengePurpose
	Account *deadbolt.Account
	User    *deadbolt.User
	// Methods and DefaultMethod as at sign-in; for enrolment, the kinds
	// the user may set up.
	Methods       []string
	DefaultMethod string
	// RememberDays is how long "don't ask again" lasts; 0: not offered.
	RememberDays int
}

// Challenge describes a live challenge for the pages.
func (s *Service) Challenge(ctx context.Context, token string) (*ChallengeView, error) {
	ch, err := s.liveChallenge(ctx, token, s.now())
	if err != nil {
		return nil, err
	}
	acc, err := s.store.FindAccountByID(ctx, ch.AccountID)
	if err != nil {
		return nil, err
	}
	u, err := s.store.FindUserByID(ctx, acc.ID, ch.UserID)
	if err != nil {
		return nil, errChallengeExpired
	}
	v := &ChallengeView{Purpose: ch.Purpose, Account: acc, User: u, RememberDays: acc.Policy.RememberDeviceDays[u.Role]}
	switch ch.Purpose {
	case deadbolt.ChallengeSecondFactor:
		factors, err := s.store.FindFactors(ctx, acc.ID, u.ID)
		if err != nil {
			return nil, err
		}
		v.Methods, v.DefaultMethod = methodsOf(available(acc, u, factors))
	case deadbolt.ChallengeDeviceVerification:
		v.Methods, v.DefaultMethod, v.RememberDays = []string{string(deadbolt.FactorEmail)}, string(deadbolt.FactorEmail), 0
	case deadbolt.ChallengeEnrollment:
		v.Methods, v.RememberDays = s.enrollableKinds(acc, u), 0
	}
	return v, nil
}

// RotateSession replaces the principal's session with a new one that has
// the same proofs, and returns its token. The pages call it whenever the
// session gains privilege (a step-up, a new factor), so that a session id
// seen before the change is worth nothing after it.
func (s *Service) RotateSession(ctx context.Context, p *Principal) (string, error) {
	if err := requireSession(p); err != nil {
		return "", err
	}
	fresh, err := s.store.FindSessionByTokenHash(ctx, p.Session.TokenHash)
	if err != nil {
		return "", err
	}
	token := secret.NewToken(PrefixSession)
	n := *fresh
	n.TokenHash = s.keys.Hash(token)
	n.LastSeenAt = s.now()
	if err := s.store.CreateSession(ctx, &n); err != nil {
		return "", err
	}
	// The applications signed in through the old session stay signed in
	// through the new one.
	if err := s.store.MoveOIDCSession(ctx, p.Account.ID, p.Session.ID, n.ID); err != nil {
		return "", err
	}
	if err := s.store.DeleteSession(ctx, p.Account.ID, p.User.ID, p.Session.ID); err != nil && !deadbolt.IsCode(err, deadbolt.ENotFound) {
		return "", err
	}
	p.Session = &n
	return token, nil
}

// Account returns the account with the slug, for the pages.
func (s *Service) Account(ctx context.Context, slug string) (*deadbolt.Account, error) {
	return s.store.FindAccountBySlug(ctx, slug)
}

// PendingFactor shows a pending factor again (after a wrong code, say):
// for an authenticator app, its QR code and key.
func (s *Service) PendingFactor(ctx context.Context, p *Principal, id string) (*Enrollment, error) {
	f, err := s.ownFactor(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if f.Status != deadbolt.FactorPending {
		return nil, deadbolt.Errorf(deadbolt.EConflict, "This factor is already active.")
	}
	e := &Enrollment{Factor: f}
	if f.Kind == deadbolt.FactorTOTP {
		e.URI = totp.URI(p.Account.Name, p.User.Email, f.Secret)
		e.Secret = totp.Base32(f.Secret)
		png, err := qr.PNG(e.URI, qrSize)
		if err != nil {
			return nil, err
		}
		e.QRPNG, e.QRValue = png, base64.StdEncoding.EncodeToString(png)
	} else {
		e.SentTo = deadbolt.MaskAddress(channelOf(f.Kind), destination(p.User, f))
	}
	return e, nil
}
