package signin

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
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
	s.notice(ctx, p.Account, p.User, "report_link", "Your two-factor authentication report",
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

// MarshalJSON is the API form of a user with their 2FA state.
func (v *UserView) MarshalJSON() ([]byte, error) {
	u := v.User
	out := map[string]any{"id": u.ID, "email": u.Email, "name": u.Name, "role": u.Role, "auth_source": u.AuthSource,
		"created_at": jsonTime(u.CreatedAt), "phone": nil}
	if u.Phone != "" {
		out["phone"] = deadbolt.MaskAddress(deadbolt.ChannelSMS, u.Phone)
	}
	methods := []string{}
	for _, m := range v.Methods {
		methods = append(methods, string(m))
	}
	tf := map[string]any{"state": v.TwoFactorState(), "enabled": len(v.Methods) > 0, "required": v.Required,
		"methods": methods, "default_method": nil, "grace_deadline": jsonTime(v.GraceDeadline),
		"recovery_codes_left": v.RecoveryCodesLeft, "remembered_devices": v.RememberedDevices,
		"last_second_factor_at": jsonTime(v.LastSecondFactorAt), "last_admin_action_at": jsonTime(v.LastAdminActionAt)}
	if v.DefaultMethod != "" {
		tf["default_method"] = v.DefaultMethod
	}
	out["two_factor"] = tf
	return json.Marshal(out)
}

func jsonTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

// ReportColumns are the CSV columns of the 2FA report.
var ReportColumns = []string{"name", "email", "role", "auth_source", "two_factor", "required", "grace_deadline", "methods",
	"default_method", "last_second_factor_at", "recovery_codes_left", "remembered_devices", "last_admin_action_at"}

// ReportRow is the user's CSV row of the 2FA report.
func (v *UserView) ReportRow() []string {
	u := v.User
	return []string{csvCell(u.Name), csvCell(u.Email), string(u.Role), string(u.AuthSource), v.TwoFactorState(),
		strconv.FormatBool(v.Required), csvTime(v.GraceDeadline), MethodsText(v.Methods), string(v.DefaultMethod),
		csvTime(v.LastSecondFactorAt), strconv.Itoa(v.RecoveryCodesLeft), strconv.Itoa(v.RememberedDevices), csvTime(v.LastAdminActionAt)}
}

// csvCell keeps a cell from being read as a formula by a spreadsheet: a
// name such as "=HYPERLINK(...)" is data, not code.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
