package signin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/totp"
)

// SendLimits bound the messages anyone can make Deadbolt send: SMS costs
// money per message, and SMS pumping fraud sends them by the thousand.
type SendLimits struct {
	// Cooldown between two codes for the same challenge (or factor) and
	// channel.
	Cooldown time.Duration
	// Per hour, per user and channel.
	SMSPerUser, EmailPerUser int
	// Per hour, per destination (phone number or address). Sends to a
	// destination its owner proved (an active factor's) count across all
	// accounts; sends to one nobody proved yet (confirming a new factor,
	// 2-step verification to an address an admin typed) count per account,
	// so that another tenant cannot use up a victim's limit.
	SMSPerDestination, EmailPerDestination int
	// Per hour, per unproven destination, all accounts together: enough
	// that no single account can reach it (three accounts' worth), so that
	// many tenants together still cannot pump one number.
	SMSPerUnprovenDestination, EmailPerUnprovenDestination int
	// Per hour, per account and channel.
	SMSPerAccount, EmailPerAccount int
}

func (l SendLimits) withDefaults() SendLimits {
	if l.Cooldown == 0 {
		l.Cooldown = 30 * time.Second
	}
	if l.SMSPerUser == 0 {
		l.SMSPerUser = 10
	}
	if l.EmailPerUser == 0 {
		l.EmailPerUser = 20
	}
	if l.SMSPerDestination == 0 {
		l.SMSPerDestination = 10
	}
	if l.EmailPerDestination == 0 {
		l.EmailPerDestination = 10
	}
	if l.SMSPerUnprovenDestination == 0 {
		l.SMSPerUnprovenDestination = 3 * l.SMSPerDestination
	}
	if l.EmailPerUnprovenDestination == 0 {
		l.EmailPerUnprovenDestination = 3 * l.EmailPerDestination
	}
	if l.SMSPerAccount == 0 {
		l.SMSPerAccount = 500
	}
	if l.EmailPerAccount == 0 {
		l.EmailPerAccount = 5000
	}
	return l
}

// newPasscode returns 6 uniformly random digits.
func newPasscode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// sendRequest is a code to send.
type sendRequest struct {
	acc         *deadbolt.Account
	user        *deadbolt.User
	challengeID string // the challenge (or step-up scope) it answers
	factorID    string // the factor it confirms
	channel     deadbolt.Channel
	to          string
	ttl         time.Duration
	purpose     purpose
	cooldown    bool // refuse within the cool-down of the previous code
}

// Sent is where a code went.
type Sent struct {
	To        string // masked
	ExpiresAt time.Time
	// WebAuthnOptions are a passkey ceremony's options (method webauthn):
	// nothing is sent, the browser asks the authenticator.
	WebAuthnOptions json.RawMessage
}

// sendCode makes a passcode and queues its message, in one transaction,
// after the cool-down and the hourly caps. The worker is kicked so that
// the message goes at once when the provider answers.
func (s *Service) sendCode(ctx context.Context, r sendRequest, now time.Time) (*Sent, error) {
	if r.cooldown {
		prev, err := s.store.LatestPasscode(ctx, r.acc.ID, r.challengeID, r.factorID, r.channel)
		if err != nil && !deadbolt.IsCode(err, deadbolt.ENotFound) {
			return nil, err
		}
		if prev != nil {
			if wait := prev.CreatedAt.Add(s.sends.Cooldown).Sub(now); wait > 0 {
				return nil, &deadbolt.Error{Code: deadbolt.ERateLimited, RetryAfter: wait,
					Message: "A code was sent a moment ago. Wait " + humanDuration(wait) + " before asking for another."}
			}
		}
	}
	perUser, perDest, perUnproven, perAccount := s.sends.SMSPerUser, s.sends.SMSPerDestination, s.sends.SMSPerUnprovenDestination, s.sends.SMSPerAccount
	if r.channel == deadbolt.ChannelEmail {
		perUser, perDest, perUnproven, perAccount = s.sends.EmailPerUser, s.sends.EmailPerDestination, s.sends.EmailPerUnprovenDestination, s.sends.EmailPerAccount
	}
	ch := string(r.channel)
	// The destination is counted by a keyed hash: a counter key must not
	// hold a phone number in the clear.
	dest := hex.EncodeToString(s.keys.Hash(ch + ":" + r.to)[:12])
	type capped struct {
		account, key, name string
		cap                int
		what               string
	}
	caps := []capped{{r.acc.ID, "send:" + ch + ":user:" + r.user.ID, "user", perUser, "You have asked for many codes."}}
	if r.purpose == purposeSignIn || r.purpose == purposeStepUp {
		// To an active factor: a destination its owner proved.
		caps = append(caps, capped{"", "send:" + ch + ":to:" + dest, "destination", perDest, "Many codes went to this destination."})
	} else {
		caps = append(caps,
			capped{r.acc.ID, "send:" + ch + ":to:" + dest, "destination", perDest, "Many codes went to this destination."},
			capped{"", "send:" + ch + ":unproven-to:" + dest, "unproven_destination", perUnproven, "Many codes went to this destination."})
	}
	caps = append(caps, capped{r.acc.ID, "send:" + ch + ":account", "account", perAccount, "Your account has sent many codes."})
	for _, c := range caps {
		cnt, err := s.store.HitCounter(ctx, c.account, c.key, time.Hour, now)
		if err != nil {
			return nil, err
		}
		if cnt.Count > c.cap {
			s.audit(ctx, deadbolt.AuditEvent{AccountID: r.acc.ID, Type: deadbolt.AuditMessageRefused, SubjectID: r.user.ID,
				Details: map[string]string{"channel": ch, "limit": c.name}})
			return nil, &deadbolt.Error{Code: deadbolt.ERateLimited, RetryAfter: cnt.ResetAt.Sub(now),
				Message: c.what + " Try again in " + humanDuration(cnt.ResetAt.Sub(now)) + ", or use another method."}
		}
	}
	code := newPasscode()
	m, err := composeMessage(r.acc, r.channel, r.to, code, r.ttl, r.purpose)
	if err != nil {
		return nil, err
	}
	m.ExpiresAt = now.Add(r.ttl)
	p := &deadbolt.Passcode{AccountID: r.acc.ID, UserID: r.user.ID, ChallengeID: r.challengeID, FactorID: r.factorID,
		Channel: r.channel, CodeHash: s.keys.Hash(code), CreatedAt: now, ExpiresAt: now.Add(r.ttl)}
	if err := s.store.CreatePasscode(ctx, p, m); err != nil {
		return nil, err
	}
	s.notify()
	s.audit(ctx, deadbolt.AuditEvent{AccountID: r.acc.ID, Type: deadbolt.AuditMessageQueued, SubjectID: r.user.ID, Time: now,
		Details: map[string]string{"channel": ch, "message_id": m.ID, "passcode_id": p.ID, "to": m.MaskedTo(),
			"purpose": purposeNames[r.purpose]}})
	return &Sent{To: m.MaskedTo(), ExpiresAt: p.ExpiresAt}, nil
}

// passcodeCheck is the outcome of checking a code against the latest
// passcode of a challenge or factor.
type passcodeCheck int

const (
	passcodeOK      passcodeCheck = iota
	passcodeWrong                 // wrong, used, or none: a guess that failed
	passcodeExpired               // the right code, too late
)

// checkPasscode compares a typed code with the latest passcode and, if it
// is right and live, uses it (once, whatever races).
func (s *Service) checkPasscode(ctx context.Context, accountID, challengeID, factorID string, ch deadbolt.Channel, code string, now time.Time) (passcodeCheck, error) {
	p, err := s.store.LatestPasscode(ctx, accountID, challengeID, factorID, ch)
	if deadbolt.IsCode(err, deadbolt.ENotFound) {
		return passcodeWrong, nil
	} else if err != nil {
		return passcodeWrong, err
	}
	if !p.UsedAt.IsZero() || !secret.Equal(p.CodeHash, s.keys.Hash(code)) {
		return passcodeWrong, nil
	}
	if !now.Before(p.ExpiresAt) {
		return passcodeExpired, nil
	}
	if err := s.store.UsePasscode(ctx, accountID, p.ID, now); deadbolt.IsCode(err, deadbolt.ENotFound) {
		return passcodeWrong, nil
	} else if err != nil {
		return passcodeWrong, err
	}
	return passcodeOK, nil
}

// normalizePasscode accepts 6 ASCII digits, ignoring spaces and hyphens,
// like a TOTP code.
func normalizePasscode(code string) (string, error) {
	c, ok := totp.Normalize(code)
	if !ok {
		return "", deadbolt.Invalid("code", "The code is the 6 digits we sent you.")
	}
	return c, nil
}

// codeExpired is the answer to the right code typed too late: a new one is
// on its way.
func codeExpired(snt *Sent) error {
	return &deadbolt.Error{Code: deadbolt.ECodeExpired, Message: "That code has expired. We sent you a new one to " + snt.To + ".",
		Details: map[string]any{"new_code_sent": true, "sent_to": snt.To, "expires_at": snt.ExpiresAt.UTC().Format(time.RFC3339)}}
}

// destination is where a factor's codes go.
func destination(u *deadbolt.User, f *deadbolt.Factor) string {
	if f.Kind == deadbolt.FactorSMS {
		return f.Phone
	}
	return u.Email
}

// channelOf is the channel of a passcode factor kind.
func channelOf(k deadbolt.FactorKind) deadbolt.Channel {
	if k == deadbolt.FactorSMS {
		return deadbolt.ChannelSMS
	}
	return deadbolt.ChannelEmail
}

// factorOf returns the user's usable factor of the kind (the default one
// first), or nil.
func factorOf(factors []*deadbolt.Factor, k deadbolt.FactorKind) *deadbolt.Factor {
	var found *deadbolt.Factor
	for _, f := range factors {
		if f.Kind == k && (found == nil || f.Default) {
			found = f
		}
	}
	return found
}
