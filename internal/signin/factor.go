package signin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/phone"
	"github.com/deadbolt/deadbolt/internal/qr"
	"github.com/deadbolt/deadbolt/internal/totp"
)

// Factors lists the principal's factors.
func (s *Service) Factors(ctx context.Context, p *Principal) ([]*deadbolt.Factor, error) {
	return s.store.FindFactors(ctx, p.Account.ID, p.User.ID)
}

// TwoFactor summarises the principal's 2FA state.
type TwoFactor struct {
	Enabled           bool
	Required          bool
	Methods           []string
	DefaultMethod     string
	RecoveryCodesLeft int
}

// Summary returns the user's 2FA state.
func (s *Service) Summary(ctx context.Context, p *Principal) (*TwoFactor, error) {
	factors, err := s.store.FindFactors(ctx, p.Account.ID, p.User.ID)
	if err != nil {
		return nil, err
	}
	t := &TwoFactor{Required: p.Account.Policy.Requires2FA(p.User.Role) && p.User.AuthSource == deadbolt.AuthPassword,
		Methods: []string{}}
	var active []*deadbolt.Factor
	for _, f := range factors {
		if f.Status == deadbolt.FactorActive {
			active = append(active, f)
		}
	}
	if len(active) > 0 {
		t.Enabled = true
		t.Methods, t.DefaultMethod = methodsOf(active)
		if t.RecoveryCodesLeft, err = s.store.CountRecoveryCodes(ctx, p.Account.ID, p.User.ID); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Enrollment is a new pending TOTP factor and what the user needs to add
// it to their app. The secret is shown this once.
type Enrollment struct {
	Factor *deadbolt.Factor
	// For an authenticator app.
	Secret  string // base32, for manual entry
	URI     string // otpauth://
	QRPNG   []byte
	QRValue string // base64 of QRPNG
	// For SMS and email: where the code went, until when, and a word on
	// the method's strength.
	SentTo    string
	ExpiresAt time.Time
	Advice    string
	// For a passkey: the options of navigator.credentials.create, as JSON.
	WebAuthnOptions json.RawMessage
}

// qrSize is the QR code's size in pixels: large enough for a phone camera
// at arm's length, small enough for the page.
const qrSize = 256

// EnrollTOTP starts setting up an authenticator app. Earlier pending TOTP
// factors of the user are dropped, so abandoned attempts do not pile up.
func (s *Service) EnrollTOTP(ctx context.Context, p *Principal) (*Enrollment, error) {
	if err := s.canEnroll(ctx, p, deadbolt.FactorTOTP); err != nil {
		return nil, err
	}
	if err := s.dropPending(ctx, p, deadbolt.FactorTOTP); err != nil {
		return nil, err
	}
	secretBytes := totp.NewSecret()
	f := &deadbolt.Factor{AccountID: p.Account.ID, UserID: p.User.ID, Kind: deadbolt.FactorTOTP, Secret: secretBytes}
	if err := s.store.CreateFactor(ctx, f); err != nil {
		return nil, err
	}
	uri := totp.URI(p.Account.Name, p.User.Email, secretBytes)
	png, err := qr.PNG(uri, qrSize)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditFactorEnrolled, ActorID: p.User.ID,
		SubjectID: p.User.ID, Details: map[string]string{"kind": string(f.Kind), "factor_id": f.ID}})
	return &Enrollment{Factor: f, Secret: totp.Base32(secretBytes), URI: uri, QRPNG: png,
		QRValue: base64.StdEncoding.EncodeToString(png)}, nil
}

// EnrollPasscode starts setting up SMS (to phone) or email (to the user's
// address) codes: a pending factor and a code to confirm it with.
// Changing the phone number is enrolling a new SMS factor.
func (s *Service) EnrollPasscode(ctx context.Context, p *Principal, kind deadbolt.FactorKind, phoneNumber string) (*Enrollment, error) {
	now := s.now()
	if err := s.canEnroll(ctx, p, kind); err != nil {
		return nil, err
	}
	f := &deadbolt.Factor{AccountID: p.Account.ID, UserID: p.User.ID, Kind: kind}
	if kind == deadbolt.FactorSMS {
		e164, region, err := phone.Parse(phoneNumber)
		if err != nil {
			return nil, err
		}
		if p.Account.Policy.SMSCountryBlocked(region) {
			return nil, deadbolt.Errorf(deadbolt.EPhoneCountryBlocked, "Your account does not send text messages to numbers in %s. Use an authenticator app.", region)
		}
		f.Phone = e164
	} else if phoneNumber != "" {
		return nil, deadbolt.Invalid("phone", "Email codes go to your email address: leave out phone.")
	}
	if err := s.dropPending(ctx, p, kind); err != nil {
		return nil, err
	}
	if err := s.store.CreateFactor(ctx, f); err != nil {
		return nil, err
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditFactorEnrolled, ActorID: p.User.ID,
		SubjectID: p.User.ID, Details: map[string]string{"kind": string(f.Kind), "factor_id": f.ID}})
	snt, err := s.sendCode(ctx, sendRequest{acc: p.Account, user: p.User, factorID: f.ID, channel: channelOf(kind),
		to: destination(p.User, f), ttl: deadbolt.PasscodeTTL, purpose: purposeConfirm}, now)
	if err != nil {
		return nil, err
	}
	e := &Enrollment{Factor: f, SentTo: snt.To, ExpiresAt: snt.ExpiresAt}
	if kind == deadbolt.FactorSMS {
		e.Advice = "Text messages can be intercepted or redirected to another SIM: an authenticator app is safer."
	} else {
		e.Advice = "Anyone who can read your email can use these codes: an authenticator app is safer."
	}
	return e, nil
}

// ResendFactorCode sends a new code to confirm a pending SMS or email
// factor, after the cool-down.
func (s *Service) ResendFactorCode(ctx context.Context, p *Principal, id string) (*Sent, error) {
	f, err := s.ownFactor(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if f.Status != deadbolt.FactorPending {
		return nil, deadbolt.Errorf(deadbolt.EConflict, "This factor is already active.")
	}
	if f.Kind == deadbolt.FactorTOTP {
		return nil, deadbolt.Invalid("id", "An authenticator app makes its own codes: nothing to send.")
	}
	if f.Kind == deadbolt.FactorWebAuthn {
		return nil, deadbolt.Invalid("id", "A passkey sends no code: start adding it again for new options.")
	}
	return s.sendCode(ctx, sendRequest{acc: p.Account, user: p.User, factorID: f.ID, channel: channelOf(f.Kind),
		to: destination(p.User, f), ttl: deadbolt.PasscodeTTL, purpose: purposeConfirm, cooldown: true}, s.now())
}

// canEnroll checks that the user may set up a factor of the kind now. SSO
// users may too: the policy (require_2fa_sso_users) or an application may
// ask them for Deadbolt's second factor on top of their provider's.
func (s *Service) canEnroll(ctx context.Context, p *Principal, k deadbolt.FactorKind) error {
	if !p.Account.Policy.Allows(k, p.User.Role) {
		return deadbolt.Errorf(deadbolt.EMethodNotAllowed, "Your account does not allow this method. Use an authenticator app.")
	}
	return s.requireEnrolProof(ctx, p)
}

// RequireEnrolProof says whether the principal may add a factor now
// (reauthentication_required if not), so a page can ask for the proof
// before the form.
func (s *Service) RequireEnrolProof(ctx context.Context, p *Principal) error {
	return s.requireEnrolProof(ctx, p)
}

// requireEnrolProof guards adding a factor, which is as sensitive as
// removing one: a user who has a factor proves one of them recently
// (step-up), a user who has none proves their password recently. A
// sign-in held for enrolment has just proven the password (and, on a
// new device, 2-step verification), and lives only minutes.
func (s *Service) requireEnrolProof(ctx context.Context, p *Principal) error {
	if p.Challenge != nil {
		return nil
	}
	return s.requireStepUp(ctx, p)
}

func (s *Service) dropPending(ctx context.Context, p *Principal, k deadbolt.FactorKind) error {
	factors, err := s.store.FindFactors(ctx, p.Account.ID, p.User.ID)
	if err != nil {
		return err
	}
	for _, f := range factors {
		if f.Kind == k && f.Status == deadbolt.FactorPending {
			if err := s.store.DeleteFactor(ctx, p.Account.ID, p.User.ID, f.ID); err != nil && !deadbolt.IsCode(err, deadbolt.ENotFound) {
				return err
			}
		}
	}
	return nil
}

// ownFactor returns the principal's factor with the id; another user's
// factor is not found, as if it did not exist.
func (s *Service) ownFactor(ctx context.Context, p *Principal, id string) (*deadbolt.Factor, error) {
	f, err := s.store.FindFactor(ctx, p.Account.ID, id)
	if err != nil {
		return nil, err
	}
	if f.UserID != p.User.ID {
		return nil, deadbolt.Errorf(deadbolt.ENotFound, "Factor not found.")
	}
	return f, nil
}

// Confirmation is the outcome of proving a pending factor.
type Confirmation struct {
	Factor *deadbolt.Factor
	// RecoveryCodes are set when this was the user's first active factor.
	RecoveryCodes []string
	// Result is the completed sign-in when the caller was an enrolment
	// challenge.
	Result *Result
}

// ConfirmFactor activates a pending factor with a code from it. Like
// starting the enrolment, it needs a recent proof (see requireEnrolProof),
// and proving the new factor is no step-up: otherwise a stale or stolen
// session could add its own authenticator and then pass every step-up
// check with it.
func (s *Service) ConfirmFactor(ctx context.Context, p *Principal, id, code string, c Client) (*Confirmation, error) {
	now := s.now()
	f, err := s.ownFactor(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if f.Status != deadbolt.FactorPending {
		return nil, deadbolt.Errorf(deadbolt.EConflict, "This factor is already active.")
	}
	if err := s.requireEnrolProof(ctx, p); err != nil {
		return nil, err
	}
	var typed string
	var creation *protocol.ParsedCredentialCreationData
	switch f.Kind {
	case deadbolt.FactorWebAuthn:
		// code is the browser's registration response (JSON).
		if creation, err = parseCreation(code); err != nil {
			return nil, err
		}
	case deadbolt.FactorSMS, deadbolt.FactorEmail:
		if typed, err = normalizePasscode(code); err != nil {
			return nil, err
		}
	case deadbolt.FactorTOTP:
		var valid bool
		if typed, valid = totp.Normalize(code); !valid {
			return nil, deadbolt.Invalid("code", "The code is the 6 digits your authenticator app shows.")
		}
	default:
		return nil, deadbolt.Invalid("kind", "This kind of factor cannot be confirmed yet.")
	}
	// The try is reserved before the code is compared: against the user's
	// consecutive failures and, during a sign-in, the challenge's attempts
	// (it dies after five wrong codes like any other).
	att, err := s.reserve(ctx, p.Account.ID, now, s.backoffLimit(secondFactorKey(p.User.ID), "Setting up is paused for a while."))
	if err != nil {
		return nil, err
	}
	n := 0
	if p.Challenge != nil {
		if n, err = s.store.FailChallenge(ctx, p.Account.ID, p.Challenge.ID, deadbolt.ChallengeMaxAttempts); err != nil {
			att.giveBack(ctx)
			if deadbolt.IsCode(err, deadbolt.ENotFound) {
				return nil, errChallengeExpired
			}
			return nil, err
		}
	}
	ok := false
	var cred *webauthn.Credential
	switch f.Kind {
	case deadbolt.FactorWebAuthn:
		if cred, ok, err = s.verifyRegistration(ctx, p, f, creation); err != nil {
			att.giveBack(ctx)
			return nil, err
		}
	case deadbolt.FactorSMS, deadbolt.FactorEmail:
		res, err := s.checkPasscode(ctx, p.Account.ID, "", f.ID, channelOf(f.Kind), typed, now)
		if err != nil {
			return nil, err
		}
		if res == passcodeExpired {
			att.giveBack(ctx)
			if p.Challenge != nil {
				s.returnChallengeAttempt(ctx, p.Challenge)
			}
			snt, err := s.sendCode(ctx, sendRequest{acc: p.Account, user: p.User, factorID: f.ID, channel: channelOf(f.Kind),
				to: destination(p.User, f), ttl: deadbolt.PasscodeTTL, purpose: purposeConfirm}, now)
			if err != nil {
				return nil, err
			}
			return nil, codeExpired(snt)
		}
		ok = res == passcodeOK
	case deadbolt.FactorTOTP:
		var step int64
		if step, ok = totp.Validate(f.Secret, typed, now); ok {
			// Record the step, so the code that proved the factor cannot
			// then sign anyone in.
			if err := s.store.UseTOTPStep(ctx, p.Account.ID, f.ID, step, now); deadbolt.IsCode(err, deadbolt.EConflict) {
				ok = false
			} else if err != nil {
				return nil, err
			}
		}
	}
	if !ok {
		s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditSignInFailed, SubjectID: p.User.ID, IP: c.IP,
			Details: map[string]string{"step": "confirm_factor", "factor_id": f.ID, "cause": "wrong_code"}})
		if p.Challenge != nil {
			return nil, invalidCode(deadbolt.ChallengeMaxAttempts - n)
		}
		return nil, invalidCode(att.left())
	}
	var first bool
	if cred != nil {
		var b []byte
		if b, err = json.Marshal(cred); err != nil {
			return nil, err
		}
		first, err = s.store.ActivateWebAuthnFactor(ctx, p.Account.ID, f.ID, cred.ID, b, cred.Authenticator.SignCount, now)
		if deadbolt.IsCode(err, deadbolt.EConflict) {
			return nil, deadbolt.Errorf(deadbolt.EConflict, "This passkey is registered already.")
		}
	} else {
		first, err = s.store.ActivateFactor(ctx, p.Account.ID, f.ID, now)
	}
	if deadbolt.IsCode(err, deadbolt.ENotFound) {
		return nil, deadbolt.Errorf(deadbolt.EConflict, "This factor is already active.")
	} else if err != nil {
		return nil, err
	}
	att.succeeded(ctx)
	conf := &Confirmation{}
	if first {
		codes, hashes := s.newRecoveryCodes()
		if err := s.store.ReplaceRecoveryCodes(ctx, p.Account.ID, p.User.ID, hashes, now); err != nil {
			return nil, err
		}
		conf.RecoveryCodes = codes
		s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditRecoveryGenerated, ActorID: p.User.ID,
			SubjectID: p.User.ID, IP: c.IP, Details: map[string]string{"reason": "first_factor"}})
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditFactorActivated, ActorID: p.User.ID,
		SubjectID: p.User.ID, IP: c.IP, Details: map[string]string{"kind": string(f.Kind), "factor_id": f.ID}})
	s.securityNotice(ctx, p.Account, p.User, noticeFactorAdded, "A sign-in method was added to your account",
		factorWords(f)+" was added as a way to confirm it is you", c)
	if conf.Factor, err = s.store.FindFactor(ctx, p.Account.ID, f.ID); err != nil {
		return nil, err
	}
	if p.Challenge != nil {
		// The enrolment the policy demanded is done: finish the sign-in.
		if err := s.store.ConsumeChallenge(ctx, p.Account.ID, p.Challenge.ID, reservedAttempts, now); deadbolt.IsCode(err, deadbolt.ENotFound) {
			return nil, errChallengeExpired
		} else if err != nil {
			return nil, err
		}
		proof := afterChallenge(p.Challenge, now, string(f.Kind))
		var deviceToken string
		if proof.deviceID == "" && c.KeepsDevice {
			d, token, err := s.recognise(ctx, p.Account, p.User, c, now)
			if err != nil {
				return nil, err
			}
			proof.deviceID, deviceToken = d.ID, token
		}
		res, err := s.signedIn(ctx, p.Account, p.User, c, now, proof)
		if err != nil {
			return nil, err
		}
		res.DeviceToken = deviceToken
		conf.Result = res
		details := map[string]string{"method": string(f.Kind), "enrolled": "true"}
		if p.Challenge.SSOProviderID != "" {
			details["provider_id"] = p.Challenge.SSOProviderID
		}
		s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditSignInSucceeded, ActorID: p.User.ID,
			SubjectID: p.User.ID, IP: c.IP, Details: details})
		if p.Challenge.DeviceID == "" {
			s.newDeviceNotice(ctx, p.Account, p.User, c)
		}
		return conf, nil
	}
	// A factor just proven is no step-up on this session: the session's
	// proofs stay what they were.
	return conf, nil
}

// SetDefaultFactor makes one of the user's active factors the default: the
// next sign-in asks for it first.
func (s *Service) SetDefaultFactor(ctx context.Context, p *Principal, id string) (*deadbolt.Factor, error) {
	if err := requireSession(p); err != nil {
		return nil, err
	}
	f, err := s.ownFactor(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if f.Status != deadbolt.FactorActive {
		return nil, deadbolt.Errorf(deadbolt.EConflict, "Confirm this factor before making it the default.")
	}
	if err := s.store.SetDefaultFactor(ctx, p.Account.ID, p.User.ID, f.ID); err != nil {
		return nil, err
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditFactorDefault, ActorID: p.User.ID,
		SubjectID: p.User.ID, Details: map[string]string{"kind": string(f.Kind), "factor_id": f.ID}})
	return s.store.FindFactor(ctx, p.Account.ID, f.ID)
}

// RemoveFactor removes one of the user's factors (step-up for an active
// one). The last one cannot go while the policy requires 2FA; with it go
// the recovery codes. Remembered devices are forgotten: a change of 2FA
// must be proven afresh everywhere.
func (s *Service) RemoveFactor(ctx context.Context, p *Principal, id string) error {
	if err := requireSession(p); err != nil {
		return err
	}
	f, err := s.ownFactor(ctx, p, id)
	if err != nil {
		return err
	}
	if f.Status == deadbolt.FactorPending {
		return s.store.DeleteFactor(ctx, p.Account.ID, p.User.ID, f.ID)
	}
	if err := s.requireStepUp(ctx, p); err != nil {
		return err
	}
	factors, err := s.store.FindFactors(ctx, p.Account.ID, p.User.ID)
	if err != nil {
		return err
	}
	active := 0
	for _, x := range factors {
		if x.Status == deadbolt.FactorActive {
			active++
		}
	}
	if active == 1 {
		if p.Account.Policy.Requires2FA(p.User.Role) {
			return deadbolt.Errorf(deadbolt.EConflict, "Your account requires two-factor authentication: add another method before removing this one.")
		}
		err = s.store.DeleteFactors(ctx, p.Account.ID, p.User.ID)
	} else {
		err = s.store.DeleteFactor(ctx, p.Account.ID, p.User.ID, f.ID)
	}
	if err != nil {
		return err
	}
	if _, err := s.store.DeleteDevices(ctx, p.Account.ID, p.User.ID); err != nil {
		return err
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditFactorRemoved, ActorID: p.User.ID,
		SubjectID: p.User.ID, Details: map[string]string{"kind": string(f.Kind), "factor_id": f.ID, "last": boolString(active == 1)}})
	what := factorWords(f) + " was removed from the ways to confirm it is you"
	if active == 1 {
		what += ", and with it two-factor authentication and your recovery codes"
	}
	s.securityNotice(ctx, p.Account, p.User, noticeFactorRemoved, "A sign-in method was removed from your account", what, Client{})
	return nil
}

// RegenerateRecoveryCodes replaces the user's recovery codes (step-up).
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, p *Principal) ([]string, error) {
	if err := s.requireStepUp(ctx, p); err != nil {
		return nil, err
	}
	factors, err := s.store.FindFactors(ctx, p.Account.ID, p.User.ID)
	if err != nil {
		return nil, err
	}
	if !hasActive(factors) {
		return nil, deadbolt.Errorf(deadbolt.EConflict, "Set up two-factor authentication first: recovery codes stand in for a factor.")
	}
	codes, hashes := s.newRecoveryCodes()
	if err := s.store.ReplaceRecoveryCodes(ctx, p.Account.ID, p.User.ID, hashes, s.now()); err != nil {
		return nil, err
	}
	s.audit(ctx, deadbolt.AuditEvent{AccountID: p.Account.ID, Type: deadbolt.AuditRecoveryGenerated, ActorID: p.User.ID,
		SubjectID: p.User.ID, Details: map[string]string{"reason": "regenerated"}})
	s.securityNotice(ctx, p.Account, p.User, noticeRecoveryCodes, "New recovery codes were made for your account",
		"New recovery codes were made, and the old ones stopped working", Client{})
	return codes, nil
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
