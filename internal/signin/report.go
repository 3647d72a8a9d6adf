package signin

import (
	"context"
	"time"

	"github.com/deadbolt/deadbolt"
)

// ReportTTL is how long an emailed report link works.
const ReportTTL = 24 * time.Hour

// ReportKindTwoFactor names the 2FA status report.
const ReportKindTwoFactor = "two_factor"

// TwoFactorReport streams the 2FA report: admins and agents, or everyone
// with all. Exporting it is audited.
func (s *Service) TwoFactorReport(ctx context.Context, p *Principal, all bool, format string, fn func(*UserView) error) error {
	f := UserFilter{Roles: TeamRoles}
	if all {
		f.Roles = nil
	}
	if err := s.Users(ctx, p.Account, f, fn); err != nil {
		return err
	}
	details := map[string]string{"format": format, "users": "team"}
	if all {
		details["users"] = "all"
	}
	ev := deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditReportExported, Details: details}
	if p.User != nil {
		ev.ActorID = p.User.ID
	}
	s.audit(ctx, ev)
	return nil
}

// EmailReport sends the requesting admin a link to the report, valid 24
// hours. The link carries no secret: opening it needs a signed-in admin of
// the account.
func (s *Service) EmailReport(ctx context.Context, p *Principal, publicURL string) (*deadbolt.Report, error) {
	now := s.now()
	r := &deadbolt.Report{AccountID: p.Account.ID, RequestedBy: p.User.ID, Kind: ReportKindTwoFactor, CreatedAt: now, ExpiresAt: now.Add(ReportTTL)}
	if err := s.store.CreateReport(ctx, r); err != nil {
		return nil, err
	}
	link := publicURL + "/accounts/" + p.Account.Slug + "/reports/two-factor/" + r.ID
	s.notice(ctx, p.Account, p.User, "Your two-factor authentication report",
		"The report you asked for, of who in "+p.Account.Name+" uses two-factor authentication, is ready: "+link+
			" . Open it while signed in as an admin of the account; the link works for 24 hours.",
		"If you did not ask for this report, tell your account owner.")
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditReportEmailed, ActorID: p.User.ID,
		Details: map[string]string{"report_id": r.ID}})
	return r, nil
}

// OpenReport checks that an emailed report link is the account's and still
// valid.
func (s *Service) OpenReport(ctx context.Context, p *Principal, id string) (*deadbolt.Report, error) {
	r, err := s.store.FindReport(ctx, p.Account.ID, id)
	if err != nil {
		return nil, err
	}
	if !s.now().Before(r.ExpiresAt) {
		return nil, deadbolt.Errorf(deadbolt.ENotFound, "This report link has expired: ask for a new one.")
	}
	return r, nil
}
