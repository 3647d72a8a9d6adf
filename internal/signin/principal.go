package signin

import (
	"context"
	"strings"
	"time"

	"github.com/deadbolt/deadbolt"
)

// Principal is who a request acts for: a signed-in user (Session set) or a
// user part way through a sign-in that requires them to enrol a first
// factor (Challenge set, and only the enrolment operations accept it).
type Principal struct {
	Account   *deadbolt.Account
	User      *deadbolt.User
	Session   *deadbolt.Session
	Challenge *deadbolt.Challenge
	// Via is how an admin request without a session authenticated:
	// ViaAPIToken or ViaPassword ("cli" for the command line); empty with a
	// session or challenge.
	Via string
}

// touchEvery is how stale last-seen may get before a request writes it:
// the idle timeout is counted in minutes, so a write per request would be
// waste.
const touchEvery = time.Minute

// Authenticate returns the principal of a bearer token: a session token,
// or the challenge token of a sign-in waiting for enrolment. Anything else,
// expired or unknown, is unauthorized.
func (s *Service) Authenticate(ctx context.Context, token string) (*Principal, error) {
	now := s.now()
	if len(token) > 128 {
		return nil, errUnauthorized
	}
	switch {
	case strings.HasPrefix(token, PrefixSession):
		sess, err := s.store.FindSessionByTokenHash(ctx, s.keys.Hash(token))
		if deadbolt.IsCode(err, deadbolt.ENotFound) {
			return nil, errUnauthorized
		} else if err != nil {
			return nil, err
		}
		if !sess.Active(now) {
			// Housekeeping: an ended session is gone for good.
			if err := s.store.DeleteSession(ctx, sess.AccountID, sess.UserID, sess.ID); err != nil && !deadbolt.IsCode(err, deadbolt.ENotFound) {
				s.log.WarnContext(ctx, "expired session not removed", "err", err)
			}
			s.sessionsEnded()
			return nil, &deadbolt.Error{Code: deadbolt.EUnauthorized, Message: "Your session has ended. Sign in again."}
		}
		if now.Sub(sess.LastSeenAt) >= touchEvery {
			if err := s.store.TouchSession(ctx, sess.AccountID, sess.ID, now); err != nil {
				return nil, err
			}
			sess.LastSeenAt = now
		}
		return s.principal(ctx, sess.AccountID, sess.UserID, &Principal{Session: sess})
	case strings.HasPrefix(token, PrefixChallenge):
		ch, err := s.liveChallenge(ctx, token, now)
		if err != nil || ch.Purpose != deadbolt.ChallengeEnrollment {
			return nil, errUnauthorized
		}
		return s.principal(ctx, ch.AccountID, ch.UserID, &Principal{Challenge: ch})
	}
	return nil, errUnauthorized
}

func (s *Service) principal(ctx context.Context, accountID, userID string, p *Principal) (*Principal, error) {
	var err error
	if p.Account, err = s.store.FindAccountByID(ctx, accountID); err != nil {
		return nil, err
	}
	p.User, err = s.store.FindUserByID(ctx, accountID, userID)
	if deadbolt.IsCode(err, deadbolt.ENotFound) {
		return nil, errUnauthorized
	}
	return p, err
}

// requireSession refuses an enrolment challenge where a session is needed.
func requireSession(p *Principal) error {
	if p == nil || p.Session == nil {
		return deadbolt.Errorf(deadbolt.EUnauthorized, "Finish setting up two-factor authentication first.")
	}
	return nil
}

// requireStepUp checks for a recent proof on the session: a second factor
// in the last 15 minutes, or for a user without one, a password. A
// remembered device or a 2-step verification code is no such proof.
func (s *Service) requireStepUp(ctx context.Context, p *Principal) error {
	if err := requireSession(p); err != nil {
		return err
	}
	factors, err := s.store.FindFactors(ctx, p.Account.ID, p.User.ID)
	if err != nil {
		return err
	}
	proven := p.Session.PasswordAt
	what := "your password"
	if p.Session.SSOProviderID != "" {
		// Signed in by an identity provider: a fresh sign-in there.
		proven, what = p.Session.FederatedAt, "who you are by signing in with SSO"
	}
	if hasActive(factors) {
		proven, what = p.Session.SecondFactorAt, "a second factor"
	}
	if proven.IsZero() || s.now().Sub(proven) > StepUpWindow {
		return deadbolt.Errorf(deadbolt.EReauthenticationNeeded, "Confirm it is you: prove %s again, then retry.", what)
	}
	return nil
}
