package signin

import (
	"context"
	"strings"

	"github.com/deadbolt/deadbolt"
)

// SSO sign-in: the identity provider has vouched for a person (the
// protocol is internal/sso's); this decides who they are here and what
// they still owe. SSO users skip Deadbolt's 2FA and 2-step verification
// (the seed's rule) unless the policy asks SSO users for a second factor
// too, in which case the provider's MFA counts only if the admin trusts
// the provider for it.

// SSOSignIn signs in the person the provider vouched for: an SSO user of
// the account with that email, one created now (JIT), or a password
// team member moved to SSO when the policy requires SSO of them.
func (s *Service) SSOSignIn(ctx context.Context, acc *deadbolt.Account, prov *deadbolt.SSOProvider, id deadbolt.Identity,
	c Client) (*Result, error) {
	now := s.now()
	refuse := func(cause, email, userID, format string, args ...any) error {
		s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSignInFailed, SubjectID: userID, IP: c.IP,
			Details: map[string]string{"email": email, "cause": cause, "step": "sso", "provider_id": prov.ID}})
		return deadbolt.Errorf(deadbolt.ESSORefused, format, args...)
	}
	email, err := deadbolt.NormalizeEmail(id.Email)
	if err != nil {
		return nil, refuse("no_email", "", "", "%s did not give a verified email address, which is how %s knows you. Ask your admin.",
			prov.Name, acc.Name)
	}
	if !prov.Accepts(email) {
		return nil, refuse("domain_not_accepted", email, "", "%s cannot sign in %s here: it is for %s.", prov.Name, email,
			strings.Join(prov.Domains, ", "))
	}
	// The per-network limit of password sign-ins holds here too: an
	// identity provider that lets anyone in (a consumer one, say) must not
	// make JIT a way to fill the account.
	att, err := s.reserve(ctx, acc.ID, now, s.ipLimit(c.IP))
	if err != nil {
		return nil, err
	}
	u, err := s.store.FindUserByEmail(ctx, acc.ID, email)
	switch {
	case deadbolt.IsCode(err, deadbolt.ENotFound):
		if !prov.JIT {
			return nil, refuse("unknown_user", email, "", "No one at %s has the email %s. Ask an admin to invite you.", acc.Name, email)
		}
		if u, err = s.createSSOUser(ctx, acc, prov, email, id, c); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case u.AuthSource == deadbolt.AuthPassword:
		if !SSORequiredFor(acc, u) {
			return nil, refuse("password_user", email, u.ID, "%s signs in with a password here, not with %s.", email, prov.Name)
		}
		// SSO is required of team members: this one moves to it now, and
		// their password stops working.
		sso := deadbolt.AuthSSO
		if u, err = s.store.UpdateUser(ctx, acc.ID, u.ID, deadbolt.UserUpdate{AuthSource: &sso}); err != nil {
			return nil, err
		}
		s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditUserUpdated, ActorID: u.ID, SubjectID: u.ID, IP: c.IP,
			Details: map[string]string{"auth_source": "password -> sso", "provider_id": prov.ID, "cause": "require_sso_team_members"}})
	}
	att.succeeded(ctx)

	upstreamMFA := prov.TrustMFA && id.MFA
	details := map[string]string{"method": "sso", "provider_id": prov.ID}
	if upstreamMFA {
		details["upstream_mfa"] = "true"
	}
	if acc.Policy.Require2FASSOUsers && !upstreamMFA {
		factors, err := s.store.FindFactors(ctx, acc.ID, u.ID)
		if err != nil {
			return nil, err
		}
		device := s.findDevice(ctx, acc, u, c.DeviceToken)
		usable := available(acc, u, factors)
		switch {
		case len(usable) == 0:
			return s.startEnrollment(ctx, acc, u, device, prov.ID, c, now)
		case device == nil || !device.Remembered(now, acc.Policy.RememberDevice(u.Role)):
			return s.secondFactorChallenge(ctx, acc, u, device, usable, prov.ID, c, now)
		}
		// A remembered device: the second factor was proven on it.
		res, err := s.signedIn(ctx, acc, u, c, now, sessionProof{sso: prov.ID, federated: now, deviceID: device.ID})
		if err != nil {
			return nil, err
		}
		s.seeDevice(ctx, device, c, now)
		details["device_id"] = device.ID
		details["remembered_device"] = "true"
		s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSignInSucceeded, ActorID: u.ID, SubjectID: u.ID,
			IP: c.IP, Details: details})
		return res, nil
	}
	res, err := s.signedIn(ctx, acc, u, c, now, sessionProof{sso: prov.ID, federated: now, upstreamMFA: upstreamMFA})
	if err != nil {
		return nil, err
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditSignInSucceeded, ActorID: u.ID, SubjectID: u.ID,
		IP: c.IP, Details: details})
	return res, nil
}

// createSSOUser makes the user of a first SSO sign-in (JIT).
func (s *Service) createSSOUser(ctx context.Context, acc *deadbolt.Account, prov *deadbolt.SSOProvider, email string,
	id deadbolt.Identity, c Client) (*deadbolt.User, error) {
	name := strings.TrimSpace(id.Name)
	if name == "" || deadbolt.CheckText("name", name, 200) != nil {
		name = email[:strings.IndexByte(email, '@')]
	}
	u := &deadbolt.User{AccountID: acc.ID, Email: email, Name: name, Role: prov.DefaultRole, AuthSource: deadbolt.AuthSSO}
	if err := s.store.CreateUser(ctx, u); deadbolt.IsCode(err, deadbolt.EConflict) {
		// A parallel first sign-in made them: use that one.
		return s.store.FindUserByEmail(ctx, acc.ID, email)
	} else if err != nil {
		return nil, err
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditUserCreated, ActorID: u.ID, SubjectID: u.ID, IP: c.IP,
		Details: map[string]string{"via": "sso_jit", "provider_id": prov.ID, "role": string(u.Role), "auth_source": "sso"}})
	return u, nil
}

// ssoRequired is the refusal of a password sign-in to someone who must
// use SSO, naming the provider of their email's domain, or all of them.
func (s *Service) ssoRequired(ctx context.Context, acc *deadbolt.Account, email string) error {
	provs, err := s.store.FindSSOProviders(ctx, acc.ID)
	if err != nil {
		return err
	}
	var names []string
	for _, p := range provs {
		if p.HasDomain(email) {
			names = []string{p.Name}
			break
		}
		names = append(names, p.Name)
	}
	if len(names) == 0 {
		return deadbolt.Errorf(deadbolt.ESSORequired, "%s requires team members to sign in with SSO, and no identity provider is set up yet. Ask an owner.", acc.Name)
	}
	return deadbolt.Errorf(deadbolt.ESSORequired, "%s requires team members to sign in with SSO: use Sign in with %s.", acc.Name,
		strings.Join(names, " or "))
}

// SSORequiredFor reports whether the policy refuses the user a password
// sign-in: a team member other than an owner, when SSO is required.
func SSORequiredFor(acc *deadbolt.Account, u *deadbolt.User) bool {
	return acc.Policy.RequireSSOTeamMembers && u.Role.TeamMember() && u.Role != deadbolt.RoleOwner
}
