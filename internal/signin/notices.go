package signin

import (
	"context"
	"fmt"
	"time"

	"github.com/deadbolt/deadbolt"
)

// Security notices: the user hears, by email, of every change to how their
// account is protected, whoever made it. If it was not them, this email is
// how they find out, so it says when, from where, and where to go.

// Kinds of security notice, as the audit log names them.
const (
	noticeFactorAdded     = "factor_added"
	noticeFactorRemoved   = "factor_removed"
	noticeRecoveryCodes   = "recovery_codes_regenerated"
	noticeAPIToken        = "api_token_created"
	noticePasswordChanged = "password_changed"
	noticeNewDevice       = "new_device_signin"
)

// securityURL is the user's security settings page.
func (s *Service) securityURL(acc *deadbolt.Account) string {
	return s.publicURL + "/accounts/" + acc.Slug + "/security"
}

// where says when and from where a request came, in words for an email.
func (s *Service) where(ctx context.Context, c Client, at time.Time) string {
	if c == (Client{}) {
		c = clientOf(ctx)
	}
	w := "When: " + at.UTC().Format("Monday 2 January 2006, 15:04") + " UTC."
	if c.UserAgent != "" || c.IP != "" {
		w += " From: " + deviceName(c.UserAgent)
		if c.IP != "" {
			w += ", IP address " + c.IP
		}
		w += "."
	}
	return w
}

// securityNotice tells the user that something happened to their
// account's protection; what is a sentence without its full stop.
func (s *Service) securityNotice(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, kind, subject, what string, c Client) {
	body := fmt.Sprintf("%s. Account: %s (%s). %s", what, acc.Name, u.Email, s.where(ctx, c, s.now()))
	unasked := "If this was you, there is nothing to do. If it was not, sign in now, change your password and remove what you do not recognise: " +
		s.securityURL(acc)
	s.notice(ctx, acc, u, kind, subject, body, unasked)
}

// factorWords names a factor for people: "An authenticator app", "Text
// messages to +1••••••••43".
func factorWords(f *deadbolt.Factor) string {
	switch f.Kind {
	case deadbolt.FactorTOTP:
		return "An authenticator app"
	case deadbolt.FactorSMS:
		return "Text messages to " + deadbolt.MaskAddress(deadbolt.ChannelSMS, f.Phone)
	case deadbolt.FactorEmail:
		return "Email codes"
	}
	return "A sign-in method"
}

// newDeviceNotice tells the user that their account was signed in on a
// device Deadbolt did not recognise, unless the account turned such
// notices off, or this is the user's very first sign-in (every device is
// new then, and the user knows it was them). Call it after the sign-in's
// own audit event is stored: that event is how the first is told apart.
func (s *Service) newDeviceNotice(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, c Client) {
	if !acc.Policy.NewDeviceNotices {
		return
	}
	evs, err := s.store.FindEvents(ctx, acc.ID, deadbolt.AuditFilter{Type: deadbolt.AuditSignInSucceeded, UserID: u.ID, Limit: 2})
	if err != nil {
		s.log.WarnContext(ctx, "new-device notice: sign-in history not read", "user", u.ID, "err", err)
		return
	}
	if len(evs) < 2 {
		return // the first sign-in
	}
	if c == (Client{}) {
		c = clientOf(ctx)
	}
	device := deviceName(c.UserAgent)
	body := fmt.Sprintf("Your %s account (%s) was signed in on a device we had not seen before. %s", acc.Name, u.Email, s.where(ctx, c, s.now()))
	unasked := "If this was you, there is nothing to do. If it was not, end that session in your security settings now, then change your password: " +
		s.securityURL(acc)
	s.notice(ctx, acc, u, noticeNewDevice, "New sign-in from "+device, body, unasked)
}
