package signin

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/password"
	"github.com/deadbolt/deadbolt/internal/secret"
)

// How an admin request authenticated.
const (
	ViaSession  = "session"
	ViaAPIToken = "api_token"
	ViaPassword = "password"
)

// AuthenticateAPIToken returns the principal of an API token: the admin
// who made it. email, when not empty, must be that admin's (HTTP Basic
// "{email}/token:{token}").
func (s *Service) AuthenticateAPIToken(ctx context.Context, token, email string) (*Principal, error) {
	if !strings.HasPrefix(token, PrefixAPIToken) || len(token) > 128 {
		return nil, errUnauthorized
	}
	t, err := s.store.FindAPITokenByHash(ctx, s.keys.Hash(token))
	if deadbolt.IsCode(err, deadbolt.ENotFound) {
		return nil, errUnauthorized
	} else if err != nil {
		return nil, err
	}
	if !t.Active(s.now()) {
		return nil, &deadbolt.Error{Code: deadbolt.EUnauthorized, Message: "This API token has expired. Make a new one."}
	}
	p, err := s.principal(ctx, t.AccountID, t.UserID, &Principal{Via: ViaAPIToken})
	if err != nil {
		return nil, err
	}
	if email != "" {
		if e, err := deadbolt.NormalizeEmail(email); err != nil || e != p.User.Email {
			return nil, errUnauthorized
		}
	}
	if err := s.store.TouchAPIToken(ctx, t.AccountID, t.ID, s.now()); err != nil {
		s.log.WarnContext(ctx, "API token use not recorded", "err", err)
	}
	return p, nil
}

// AuthenticatePassword is password API access (HTTP Basic with an email
// and a password) to the account with the slug. It is off unless the
// account's policy turns it on, and even then refused, with a message that
// says to use an API token, whenever the user has 2FA or the account
// requires it for them: a password alone must not do what a sign-in would
// need a second factor for.
func (s *Service) AuthenticatePassword(ctx context.Context, slug, email, pw string, c Client) (*Principal, error) {
	now := s.now()
	acc, err := s.store.FindAccountBySlug(ctx, slug)
	if err != nil {
		return nil, err
	}
	emailN, err := deadbolt.NormalizeEmail(email)
	if err != nil || pw == "" || len(pw) > maxPasswordBytes {
		return nil, errUnauthorized
	}
	if !acc.Policy.PasswordAPIAccess {
		// Refused before the password is looked at: the answer tells
		// nothing of it, and costs no hash.
		s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditAPIAuthRefused, IP: c.IP,
			Details: map[string]string{"email": emailN, "cause": "password_api_access_off"}})
		return nil, deadbolt.Errorf(deadbolt.EPasswordAPIAuthDisabled,
			"Password access to the API is off for this account. Use an API token: Authorization: Bearer dbt_..., or HTTP Basic with {email}/token:{token}.")
	}
	u, err := s.store.FindUserByEmail(ctx, acc.ID, emailN)
	if err != nil && !deadbolt.IsCode(err, deadbolt.ENotFound) {
		return nil, err
	}
	att, err := s.reserve(ctx, acc.ID, now, s.ipLimit(c.IP), s.backoffLimit(passwordKey(emailN), "Your account is protected for a while."))
	if err != nil {
		return nil, err
	}
	encoded := ""
	if u != nil && u.AuthSource == deadbolt.AuthPassword {
		encoded = u.PasswordHash
	}
	ok, _ := s.verifyPassword(ctx, pw, encoded)
	if ctxErr := ctx.Err(); ctxErr != nil {
		att.giveBack(ctx)
		return nil, ctxErr
	}
	if !ok {
		s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSignInFailed, IP: c.IP,
			Details: map[string]string{"email": emailN, "cause": "wrong_password", "step": "api_password"}})
		return nil, errUnauthorized
	}
	att.succeeded(ctx)
	if SSORequiredFor(acc, u) {
		s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditAPIAuthRefused, ActorID: u.ID, SubjectID: u.ID, IP: c.IP,
			Details: map[string]string{"cause": "sso_required"}})
		return nil, s.ssoRequired(ctx, acc, emailN)
	}
	factors, err := s.store.FindFactors(ctx, acc.ID, u.ID)
	if err != nil {
		return nil, err
	}
	if hasActive(factors) || acc.Policy.Requires2FA(u.Role) {
		s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditAPIAuthRefused, ActorID: u.ID, SubjectID: u.ID, IP: c.IP,
			Details: map[string]string{"cause": "two_factor"}})
		return nil, deadbolt.Errorf(deadbolt.EPasswordAPIAuthDisabled,
			"Password access to the API is off for you because your account uses two-factor authentication. Use an API token: Authorization: Bearer dbt_..., or HTTP Basic with {email}/token:{token}.")
	}
	return &Principal{Account: acc, User: u, Via: ViaPassword}, nil
}

// RequireAdmin checks that the principal administers the account with the
// slug. Another account answers account_not_found, as if it did not
// exist; a user who is not an owner or admin is forbidden.
func RequireAdmin(p *Principal, slug string) error {
	if p.Account.Slug != slug {
		return deadbolt.Errorf(deadbolt.EAccountNotFound, "Account not found.")
	}
	if p.Session == nil && p.Via == "" {
		return errUnauthorized // an enrolment challenge is no admin
	}
	if !p.User.Role.Admin() {
		return deadbolt.Errorf(deadbolt.EForbidden, "Only the account's owner and admins can do this.")
	}
	return nil
}

// adminStepUp is the step-up check of sensitive admin actions: a session
// needs a recent second factor (or password); an API token or a password
// given with the request is itself the fresh credential.
// AdminStepUp is adminStepUp, for the admin actions outside this package.
func (s *Service) AdminStepUp(ctx context.Context, p *Principal) error { return s.adminStepUp(ctx, p) }

func (s *Service) adminStepUp(ctx context.Context, p *Principal) error {
	if p.Session == nil {
		return nil
	}
	return s.requireStepUp(ctx, p)
}

// UserView is a user as admins see them.
type UserView struct {
	deadbolt.UserSummary
	Required      bool
	GraceDeadline time.Time
}

// twoFactorState says how a user stands: enabled, disabled, or sso.
func (v *UserView) TwoFactorState() string {
	switch {
	case v.User.AuthSource == deadbolt.AuthSSO:
		return "sso"
	case len(v.Methods) > 0:
		return "enabled"
	}
	return "disabled"
}

func (s *Service) view(acc *deadbolt.Account, sum *deadbolt.UserSummary) *UserView {
	v := &UserView{UserSummary: *sum}
	v.Required = acc.Policy.Requires2FA(sum.User.Role) && sum.User.AuthSource == deadbolt.AuthPassword
	if v.Required && len(sum.Methods) == 0 {
		v.GraceDeadline = acc.Policy.GraceDeadline(sum.User.Role, sum.User.CreatedAt)
	}
	return v
}

// UserFilter selects users in the admin's list.
type UserFilter struct {
	Roles     []deadbolt.Role
	TwoFactor string // "", "enabled", "disabled", "sso"
}

// Users streams the account's users with their 2FA state.
func (s *Service) Users(ctx context.Context, acc *deadbolt.Account, f UserFilter, fn func(*UserView) error) error {
	return s.store.StreamUserSummaries(ctx, acc.ID, deadbolt.SummaryFilter{Roles: f.Roles}, s.now(), func(sum *deadbolt.UserSummary) error {
		v := s.view(acc, sum)
		if f.TwoFactor != "" && v.TwoFactorState() != f.TwoFactor {
			return nil
		}
		return fn(v)
	})
}

// User returns one user of the account as admins see them.
func (s *Service) User(ctx context.Context, p *Principal, id string) (*UserView, error) {
	u, err := s.store.FindUserByID(ctx, p.Account.ID, id)
	if err != nil {
		return nil, err
	}
	var found *UserView
	err = s.Users(ctx, p.Account, UserFilter{Roles: []deadbolt.Role{u.Role}}, func(v *UserView) error {
		if v.User.ID == id {
			found = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, deadbolt.Errorf(deadbolt.ENotFound, "User not found.")
	}
	return found, nil
}

// NewUser is what an admin gives to create a user.
type NewUser struct {
	Email, Name, Password string
	Role                  deadbolt.Role
	AuthSource            deadbolt.AuthSource
}

// CreateUser adds a user to the account. Only the owner can add owners.
func (s *Service) CreateUser(ctx context.Context, p *Principal, n NewUser) (*deadbolt.User, error) {
	u := &deadbolt.User{AccountID: p.Account.ID, Email: n.Email, Name: n.Name, Role: n.Role, AuthSource: n.AuthSource}
	if err := u.Validate(); err != nil {
		return nil, err
	}
	if u.Role == deadbolt.RoleOwner && p.User.Role != deadbolt.RoleOwner {
		return nil, deadbolt.Errorf(deadbolt.EForbidden, "Only the owner can make another owner.")
	}
	if n.Password != "" {
		if u.AuthSource == deadbolt.AuthSSO {
			return nil, deadbolt.Invalid("password", "An SSO user has no password here.")
		}
		if err := password.CheckWithContext(n.Password, minPasswordLength(p.Account, u, false), u.Email, u.Name, p.Account.Name, p.Account.Slug); err != nil {
			return nil, passwordRuleErrorField(err, "password")
		}
		h, err := s.hashPassword(ctx, n.Password)
		if err != nil {
			return nil, err
		}
		u.PasswordHash = h
	}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditUserCreated, ActorID: p.User.ID, SubjectID: u.ID,
		Details: map[string]string{"role": string(u.Role), "auth_source": string(u.AuthSource), "via": p.via()}})
	return u, nil
}

func (p *Principal) via() string {
	if p.Via != "" {
		return p.Via
	}
	return ViaSession
}

// AdminUpdate is what an admin may change of a user; nil fields stay.
type AdminUpdate struct {
	Name, Phone *string
	Role        *deadbolt.Role
}

// guardOwner refuses what an admin may not do to the owner: the owner
// cannot be removed or demoted by an admin, and nobody can demote or
// remove the owner through this API (ownership moves only by making
// another owner first).
func guardOwner(p *Principal, target *deadbolt.User) error {
	if target.Role == deadbolt.RoleOwner && p.User.Role != deadbolt.RoleOwner {
		return deadbolt.Errorf(deadbolt.EForbidden, "Only the owner can change the owner.")
	}
	return nil
}

// UpdateUser changes a user's name, role or phone.
func (s *Service) UpdateUser(ctx context.Context, p *Principal, id string, upd AdminUpdate) (*deadbolt.User, error) {
	target, err := s.store.FindUserByID(ctx, p.Account.ID, id)
	if err != nil {
		return nil, err
	}
	if err := guardOwner(p, target); err != nil {
		return nil, err
	}
	if upd.Role != nil {
		if !upd.Role.Valid() {
			return nil, deadbolt.Invalid("role", "The role must be one of owner, admin, agent or end_user.")
		}
		if *upd.Role == deadbolt.RoleOwner && p.User.Role != deadbolt.RoleOwner {
			return nil, deadbolt.Errorf(deadbolt.EForbidden, "Only the owner can make another owner.")
		}
		if target.Role == deadbolt.RoleOwner && *upd.Role != deadbolt.RoleOwner {
			if err := s.keepAnOwner(ctx, p.Account.ID, target.ID); err != nil {
				return nil, err
			}
		}
	}
	if upd.Name != nil {
		name := strings.TrimSpace(*upd.Name)
		if name == "" {
			return nil, deadbolt.Invalid("name", "The name must be 1 to 200 characters.")
		}
		if err := deadbolt.CheckText("name", name, 200); err != nil {
			return nil, err
		}
		upd.Name = &name
	}
	storeUpd := deadbolt.UserUpdate{Name: upd.Name, Role: upd.Role}
	if upd.Phone != nil && *upd.Phone != "" {
		if !deadbolt.ValidE164(*upd.Phone) {
			return nil, deadbolt.Errorf(deadbolt.EInvalidPhone, "The phone number must be in E.164 form, such as +12025550143.")
		}
	}
	storeUpd.Phone = upd.Phone
	u, err := s.store.UpdateUser(ctx, p.Account.ID, id, storeUpd)
	if err != nil {
		return nil, err
	}
	details := map[string]string{"via": p.via()}
	if upd.Role != nil && *upd.Role != target.Role {
		details["role"] = string(target.Role) + " -> " + string(*upd.Role)
	}
	if upd.Name != nil {
		details["name"] = "changed"
	}
	if upd.Phone != nil {
		details["phone"] = "changed"
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditUserUpdated, ActorID: p.User.ID, SubjectID: u.ID, Details: details})
	return u, nil
}

// keepAnOwner refuses to leave the account without an owner.
func (s *Service) keepAnOwner(ctx context.Context, accountID, leaving string) error {
	owners, err := s.store.FindUsers(ctx, accountID, deadbolt.UserFilter{Role: deadbolt.RoleOwner})
	if err != nil {
		return err
	}
	if len(owners) == 1 && owners[0].ID == leaving {
		return deadbolt.Errorf(deadbolt.EConflict, "The account needs an owner: make someone else owner first.")
	}
	return nil
}

// DeleteUser removes a user. The owner and the caller themselves cannot be
// removed this way.
func (s *Service) DeleteUser(ctx context.Context, p *Principal, id string) error {
	target, err := s.store.FindUserByID(ctx, p.Account.ID, id)
	if err != nil {
		return err
	}
	if err := guardOwner(p, target); err != nil {
		return err
	}
	if target.ID == p.User.ID {
		return deadbolt.Errorf(deadbolt.EConflict, "You cannot remove yourself.")
	}
	if target.Role == deadbolt.RoleOwner {
		if err := s.keepAnOwner(ctx, p.Account.ID, target.ID); err != nil {
			return err
		}
	}
	if err := s.store.DeleteUser(ctx, p.Account.ID, id); err != nil {
		return err
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditUserDeleted, ActorID: p.User.ID, SubjectID: id,
		Details: map[string]string{"email": target.Email, "role": string(target.Role), "via": p.via()}})
	return nil
}

// AdminRecoveryCode makes a one-time code, valid 24 hours, for a user who
// is locked out, to be handed over out of band (step-up). The user is told
// by email. Using it signs them in, ends their other sessions and resets
// their 2FA so they set it up again.
func (s *Service) AdminRecoveryCode(ctx context.Context, p *Principal, id string) (code string, expires time.Time, err error) {
	if err := s.adminStepUp(ctx, p); err != nil {
		return "", time.Time{}, err
	}
	target, err := s.store.FindUserByID(ctx, p.Account.ID, id)
	if err != nil {
		return "", time.Time{}, err
	}
	if err := guardOwner(p, target); err != nil {
		return "", time.Time{}, err
	}
	if target.AuthSource != deadbolt.AuthPassword {
		return "", time.Time{}, deadbolt.Errorf(deadbolt.EConflict, "This user signs in through SSO: recovery codes do not apply.")
	}
	now := s.now()
	code = newRecoveryCode()
	n, _ := normalizeRecoveryCode(code)
	rc := &deadbolt.RecoveryCode{AccountID: p.Account.ID, UserID: target.ID, Hash: s.keys.Hash(n), CreatedBy: p.User.ID,
		CreatedAt: now, ExpiresAt: now.Add(deadbolt.AdminRecoveryCodeTTL)}
	if err := s.store.CreateAdminRecoveryCode(ctx, rc); err != nil {
		return "", time.Time{}, err
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditAdminRecoveryCreated, ActorID: p.User.ID, SubjectID: target.ID,
		Details: map[string]string{"expires_at": rc.ExpiresAt.UTC().Format(time.RFC3339), "via": p.via()}})
	s.notice(ctx, p.Account, target, "admin_recovery_code", "An admin made a recovery code for you",
		fmt.Sprintf("%s, an admin of %s, made a one-time recovery code for your account. They will give it to you in person or by phone; it works once, until %s UTC. When you sign in with it, your other sessions end and you set up two-factor authentication again.",
			p.User.Name, p.Account.Name, rc.ExpiresAt.UTC().Format("2006-01-02 15:04")),
		"If you did not ask for this, tell your admin at once.")
	return code, rc.ExpiresAt, nil
}

// ResetTwoFactor removes a user's factors and recovery codes, ends their
// sessions and forgets their devices (step-up), and tells them. With 2FA
// required they set it up at their next sign-in.
func (s *Service) ResetTwoFactor(ctx context.Context, p *Principal, id string) error {
	if err := s.adminStepUp(ctx, p); err != nil {
		return err
	}
	target, err := s.store.FindUserByID(ctx, p.Account.ID, id)
	if err != nil {
		return err
	}
	if err := guardOwner(p, target); err != nil {
		return err
	}
	return s.resetTwoFactor(ctx, p.Account, target, p.User, p.via())
}

// ResetTwoFactorCLI is ResetTwoFactor for the operator's command line.
func (s *Service) ResetTwoFactorCLI(ctx context.Context, acc *deadbolt.Account, target *deadbolt.User) error {
	return s.resetTwoFactor(ctx, acc, target, nil, "cli")
}

func (s *Service) resetTwoFactor(ctx context.Context, acc *deadbolt.Account, target, actor *deadbolt.User, via string) error {
	defer s.sessionsEnded()
	if err := s.store.DeleteFactors(ctx, acc.ID, target.ID); err != nil {
		return err
	}
	sessions, err := s.store.DeleteSessions(ctx, acc.ID, target.ID, "")
	if err != nil {
		return err
	}
	devices, err := s.store.DeleteDevices(ctx, acc.ID, target.ID)
	if err != nil {
		return err
	}
	// Tokens too: whoever was in the account before the reset may have made
	// one, and a token would outlive everything else the reset ends.
	tokens, err := s.store.DeleteUserAPITokens(ctx, acc.ID, target.ID)
	if err != nil {
		return err
	}
	ev := deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditTwoFactorReset, SubjectID: target.ID,
		Details: map[string]string{"sessions_ended": strconv.Itoa(sessions), "devices_forgotten": strconv.Itoa(devices),
			"api_tokens_revoked": strconv.Itoa(len(tokens)), "via": via}}
	who := "The operator of " + acc.Name
	if actor != nil {
		ev.ActorID = actor.ID
		who = actor.Name + ", an admin of " + acc.Name + ","
	}
	s.audit(ctx, ev)
	s.auditTokensRevoked(ctx, acc, actor, target, tokens, "two_factor_reset")
	s.notice(ctx, acc, target, "two_factor_reset", "Your two-factor authentication was reset",
		who+" reset your two-factor authentication. Your sessions have ended, your devices are forgotten and your API tokens are revoked. Set up two-factor authentication again when you next sign in.",
		"If you did not ask for this, tell your admin at once.")
	return nil
}

// notice queues an email to a user and audits it under kind. A notice
// that cannot be queued is logged: the action it tells of has happened
// anyway.
func (s *Service) notice(ctx context.Context, acc *deadbolt.Account, u *deadbolt.User, kind, subject, body, unasked string) {
	m := composeNotice(acc, u.Email, subject, body, unasked)
	m.AccountID, m.UserID = acc.ID, u.ID
	// Queued even when the request that caused it is gone: the change it
	// tells of has happened.
	if err := s.store.QueueMessage(context.WithoutCancel(ctx), m); err != nil {
		s.log.ErrorContext(ctx, "notice not queued", "user", u.ID, "kind", kind, "err", err)
		return
	}
	s.notify()
	s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditMessageQueued, SubjectID: u.ID,
		Details: map[string]string{"channel": string(m.Channel), "message_id": m.ID, "to": m.MaskedTo(), "purpose": "notice", "notice": kind}})
}

// SetPolicy replaces the account's policy (step-up). Requiring 2FA for
// team members needs the caller to have 2FA already, so that an admin does
// not lock themselves out. It returns the stored policy.
func (s *Service) SetPolicy(ctx context.Context, p *Principal, next deadbolt.Policy) (*deadbolt.Policy, error) {
	if err := s.adminStepUp(ctx, p); err != nil {
		return nil, err
	}
	if err := next.Validate(); err != nil {
		return nil, err
	}
	prev := p.Account.Policy
	now := s.now()
	if next.RequireSSOTeamMembers && !prev.RequireSSOTeamMembers {
		// Without a provider, every admin and agent would be locked out.
		provs, err := s.store.FindSSOProviders(ctx, p.Account.ID)
		if err != nil {
			return nil, err
		}
		if len(provs) == 0 {
			return nil, deadbolt.Invalid("require_sso_team_members", "Add an identity provider first: with none, no admin or agent could sign in.")
		}
	}
	// The requirement dates are the service's to keep.
	next.TeamMembersRequiredSince, next.EndUsersRequiredSince = time.Time{}, time.Time{}
	if next.Require2FATeamMembers {
		next.TeamMembersRequiredSince = prev.TeamMembersRequiredSince
		if !prev.Require2FATeamMembers || next.TeamMembersRequiredSince.IsZero() {
			next.TeamMembersRequiredSince = now.UTC().Truncate(time.Second)
		}
	}
	if next.Require2FAEndUsers {
		next.EndUsersRequiredSince = prev.EndUsersRequiredSince
		if !prev.Require2FAEndUsers || next.EndUsersRequiredSince.IsZero() {
			next.EndUsersRequiredSince = now.UTC().Truncate(time.Second)
		}
	}
	if next.Require2FATeamMembers && !prev.Require2FATeamMembers {
		factors, err := s.store.FindFactors(ctx, p.Account.ID, p.User.ID)
		if err != nil {
			return nil, err
		}
		if !hasActive(factors) {
			return nil, deadbolt.Errorf(deadbolt.EConflict, "Set up two-factor authentication for yourself before requiring it for the team.")
		}
	}
	if err := s.store.UpdatePolicy(ctx, p.Account.ID, next); err != nil {
		return nil, err
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditPolicyChanged, ActorID: p.User.ID,
		Details: policyDiff(prev, next)})
	p.Account.Policy = next
	return &next, nil
}

// policyDiff says in words what changed, for the audit log.
func policyDiff(a, b deadbolt.Policy) map[string]string {
	d := map[string]string{}
	add := func(k string, x, y any) {
		if fmt.Sprint(x) != fmt.Sprint(y) {
			d[k] = fmt.Sprint(x) + " -> " + fmt.Sprint(y)
		}
	}
	add("require_2fa_team_members", a.Require2FATeamMembers, b.Require2FATeamMembers)
	add("require_2fa_end_users", a.Require2FAEndUsers, b.Require2FAEndUsers)
	add("grace_period_days", a.GracePeriodDays, b.GracePeriodDays)
	add("allowed_methods", a.AllowedMethods, b.AllowedMethods)
	add("strong_methods_only", a.StrongMethodsOnly, b.StrongMethodsOnly)
	for _, r := range deadbolt.Roles {
		add("remember_device_days."+string(r), a.RememberDeviceDays[r], b.RememberDeviceDays[r])
	}
	add("session_idle_minutes", a.SessionIdleMinutes, b.SessionIdleMinutes)
	add("session_max_hours", a.SessionMaxHours, b.SessionMaxHours)
	add("sms_blocked_countries", a.SMSBlockedCountries, b.SMSBlockedCountries)
	add("password_api_access", a.PasswordAPIAccess, b.PasswordAPIAccess)
	add("new_device_notices", a.NewDeviceNotices, b.NewDeviceNotices)
	add("require_2fa_sso_users", a.Require2FASSOUsers, b.Require2FASSOUsers)
	add("require_sso_team_members", a.RequireSSOTeamMembers, b.RequireSSOTeamMembers)
	return d
}

// Events returns the account's audit events.
func (s *Service) Events(ctx context.Context, acc *deadbolt.Account, f deadbolt.AuditFilter) ([]*deadbolt.AuditEvent, error) {
	return s.store.FindEvents(ctx, acc.ID, f)
}

// MaxAPITokenDays bounds the expiry an API token can be given.
const MaxAPITokenDays = 3650

// CreateAPIToken makes a token that acts as the admin; it is shown once.
// expiresInDays, when not zero, makes it stop working after that many days.
//
// It is a step-up action on a session, and only a session can make one: a
// token acts without step-up, so minting one on a stale session, with a
// phished password over HTTP Basic, or with another token (a leaked token
// making itself a spare) must not be a way around the second factor.
func (s *Service) CreateAPIToken(ctx context.Context, p *Principal, description string, expiresInDays int) (string, *deadbolt.APIToken, error) {
	if p.Session == nil {
		return "", nil, deadbolt.Errorf(deadbolt.EForbidden, "API tokens are made from a signed-in session, with a second factor: not with a password or another token.")
	}
	if err := s.adminStepUp(ctx, p); err != nil {
		return "", nil, err
	}
	description = strings.TrimSpace(description)
	if err := deadbolt.CheckText("description", description, 200); err != nil {
		return "", nil, err
	}
	if expiresInDays < 0 || expiresInDays > MaxAPITokenDays {
		return "", nil, deadbolt.Invalid("expires_in_days", "expires_in_days must be between 1 and %d, or left out for a token that does not expire.", MaxAPITokenDays)
	}
	now := s.now()
	token := secret.NewToken(PrefixAPIToken)
	t := &deadbolt.APIToken{AccountID: p.Account.ID, UserID: p.User.ID, Description: description, TokenHash: s.keys.Hash(token), CreatedAt: now}
	if expiresInDays > 0 {
		t.ExpiresAt = now.Add(time.Duration(expiresInDays) * 24 * time.Hour)
	}
	if err := s.store.CreateAPIToken(ctx, t); err != nil {
		return "", nil, err
	}
	details := map[string]string{"token_id": t.ID, "description": description, "via": p.via()}
	what := "An API token was created. It acts as you in the admin API"
	if !t.ExpiresAt.IsZero() {
		details["expires_at"] = t.ExpiresAt.UTC().Format(time.RFC3339)
		what += ", until " + t.ExpiresAt.UTC().Format("2 January 2006")
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditAPITokenCreated, ActorID: p.User.ID, Details: details})
	s.securityNotice(ctx, p.Account, p.User, noticeAPIToken, "An API token was created for your account", what, Client{})
	return token, t, nil
}

// auditTokensRevoked records each of a user's tokens revoked together.
func (s *Service) auditTokensRevoked(ctx context.Context, acc *deadbolt.Account, actor, owner *deadbolt.User, ids []string, reason string) {
	for _, id := range ids {
		ev := deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditAPITokenRevoked, SubjectID: owner.ID,
			Details: map[string]string{"token_id": id, "reason": reason}}
		if actor != nil {
			ev.ActorID = actor.ID
		}
		s.audit(ctx, ev)
	}
}

// RevokeAPIToken revokes one of the account's tokens.
func (s *Service) RevokeAPIToken(ctx context.Context, p *Principal, id string) error {
	if err := s.store.DeleteAPIToken(ctx, p.Account.ID, id); err != nil {
		return err
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditAPITokenRevoked, ActorID: p.User.ID,
		Details: map[string]string{"token_id": id, "via": p.via()}})
	return nil
}

// APITokens lists the account's tokens.
func (s *Service) APITokens(ctx context.Context, p *Principal) ([]*deadbolt.APIToken, error) {
	return s.store.FindAPITokens(ctx, p.Account.ID)
}

// TeamRoles are the roles of Zendesk's 2FA report: admins and agents.
var TeamRoles = []deadbolt.Role{deadbolt.RoleOwner, deadbolt.RoleAdmin, deadbolt.RoleAgent}

// methodsText describes methods with their strength for the report:
// "totp (strong); sms (restricted)".
func MethodsText(methods []deadbolt.FactorKind) string {
	var parts []string
	for _, m := range methods {
		parts = append(parts, string(m)+" ("+m.Strength()+")")
	}
	return strings.Join(parts, "; ")
}
