package web

import (
	"encoding/json"
	"net/http"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/signin"
)

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	tf, err := s.signin.Summary(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"user": map[string]any{"id": p.User.ID, "email": p.User.Email, "name": p.User.Name, "role": p.User.Role,
			"auth_source": p.User.AuthSource,
			"account":     map[string]any{"id": p.Account.ID, "slug": p.Account.Slug, "name": p.Account.Name}},
		"two_factor": twoFactorJSON(tf),
	})
	return nil
}

func twoFactorJSON(tf *signin.TwoFactor) map[string]any {
	out := map[string]any{"enabled": tf.Enabled, "required": tf.Required, "methods": nonNil(tf.Methods),
		"default_method": nil, "recovery_codes_left": tf.RecoveryCodesLeft}
	if tf.DefaultMethod != "" {
		out["default_method"] = tf.DefaultMethod
	}
	return out
}

func factorJSON(f *deadbolt.Factor) map[string]any {
	out := map[string]any{"id": f.ID, "kind": f.Kind, "status": f.Status, "default": f.Default, "strength": f.Kind.Strength(),
		"created_at": ts(f.CreatedAt), "activated_at": ts(f.ActivatedAt), "last_used_at": ts(f.LastUsedAt)}
	if f.Phone != "" {
		out["phone"] = deadbolt.MaskAddress(deadbolt.ChannelSMS, f.Phone)
	}
	if f.Kind == deadbolt.FactorWebAuthn {
		out["name"] = f.Name
	}
	return out
}

func (s *Server) handleFactors(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	factors, err := s.signin.Factors(r.Context(), p)
	if err != nil {
		return err
	}
	list := []map[string]any{}
	for _, f := range factors {
		list = append(list, factorJSON(f))
	}
	writeJSON(w, http.StatusOK, map[string]any{"factors": list})
	return nil
}

type enrollRequest struct {
	Kind  string `json:"kind"`
	Phone string `json:"phone"`
	Name  string `json:"name"`
}

func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	var req enrollRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	switch deadbolt.FactorKind(req.Kind) {
	case deadbolt.FactorTOTP:
		e, err := s.signin.EnrollTOTP(r.Context(), p)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, map[string]any{"factor": factorJSON(e.Factor), "secret": e.Secret,
			"otpauth_uri": e.URI, "qr_png": e.QRValue})
		return nil
	case deadbolt.FactorSMS, deadbolt.FactorEmail:
		e, err := s.signin.EnrollPasscode(r.Context(), p, deadbolt.FactorKind(req.Kind), req.Phone)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, map[string]any{"factor": factorJSON(e.Factor), "sent_to": e.SentTo,
			"expires_at": ts(e.ExpiresAt), "advice": e.Advice})
		return nil
	case deadbolt.FactorWebAuthn:
		e, err := s.signin.EnrollWebAuthn(r.Context(), p, req.Name)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, map[string]any{"factor": factorJSON(e.Factor), "options": e.WebAuthnOptions})
		return nil
	case "":
		return deadbolt.Invalid("kind", "kind is required: totp, webauthn, sms or email.")
	}
	return deadbolt.Invalid("kind", "kind must be totp, webauthn, sms or email.")
}

// codeRequest answers a factor: a code, or a passkey's credential (the
// browser's WebAuthn response, as JSON).
type codeRequest struct {
	Code       string          `json:"code"`
	Credential json.RawMessage `json:"credential"`
}

// answer is the code, or the credential as text.
func (q codeRequest) answer() string {
	if len(q.Credential) > 0 && string(q.Credential) != "null" {
		return string(q.Credential)
	}
	return q.Code
}

func (s *Server) handleConfirm(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	var req codeRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.answer() == "" {
		return deadbolt.Invalid("code", "code is required (credential for a passkey).")
	}
	conf, err := s.signin.ConfirmFactor(r.Context(), p, r.PathValue("id"), req.answer(), client(r))
	if err != nil {
		return err
	}
	out := map[string]any{"factor": factorJSON(conf.Factor)}
	if conf.RecoveryCodes != nil {
		out["recovery_codes"] = conf.RecoveryCodes
	}
	if conf.Result != nil {
		out["status"] = string(conf.Result.Status)
		out["session_token"] = conf.Result.SessionToken
		out["expires_at"] = ts(conf.Result.Session.ExpiresAt)
		if conf.Result.DeviceToken != "" {
			out["device_token"] = conf.Result.DeviceToken
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleFactorSend(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	snt, err := s.signin.ResendFactorCode(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"sent_to": snt.To, "expires_at": ts(snt.ExpiresAt)})
	return nil
}

type methodRequest struct {
	Method string `json:"method"`
}

func (s *Server) handleStepUpSend(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	var req methodRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	snt, err := s.signin.SendStepUpCode(r.Context(), p, req.Method)
	if err != nil {
		return err
	}
	if snt.WebAuthnOptions != nil {
		writeJSON(w, http.StatusOK, map[string]any{"options": snt.WebAuthnOptions})
		return nil
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"sent_to": snt.To, "expires_at": ts(snt.ExpiresAt)})
	return nil
}

func (s *Server) handleDefaultFactor(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	f, err := s.signin.SetDefaultFactor(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"factor": factorJSON(f)})
	return nil
}

func (s *Server) handleRemoveFactor(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	if err := s.signin.RemoveFactor(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleRecoveryCodes(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	codes, err := s.signin.RegenerateRecoveryCodes(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"recovery_codes": codes})
	return nil
}

func (s *Server) handleDevices(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	devices, err := s.signin.Devices(r.Context(), p)
	if err != nil {
		return err
	}
	now := s.now()
	list := []map[string]any{}
	for _, d := range devices {
		list = append(list, map[string]any{"id": d.ID, "name": d.Name, "ip": d.IP, "created_at": ts(d.CreatedAt),
			"last_seen_at": ts(d.LastSeenAt), "remembered": d.Remembered(now, p.Account.Policy.RememberDevice(p.User.Role)),
			"remember_until": ts(d.RememberUntil), "current": p.Session.DeviceID == d.ID})
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": list})
	return nil
}

func (s *Server) handleRevokeDevice(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	if err := s.signin.RevokeDevice(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleSessions(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	sessions, err := s.signin.Sessions(r.Context(), p)
	if err != nil {
		return err
	}
	list := []map[string]any{}
	for _, x := range sessions {
		list = append(list, map[string]any{"id": x.ID, "created_at": ts(x.CreatedAt), "last_seen_at": ts(x.LastSeenAt),
			"expires_at": ts(x.ExpiresAt), "ip": x.IP, "user_agent": x.UserAgent, "current": x.ID == p.Session.ID})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": list})
	return nil
}

func (s *Server) handleRevokeSession(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	if err := s.signin.RevokeSession(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type passwordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

func (s *Server) handlePassword(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	var req passwordRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := s.signin.ChangePassword(r.Context(), p, req.CurrentPassword, req.NewPassword, client(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type stepUpRequest struct {
	Method     string          `json:"method"`
	Code       string          `json:"code"`
	Credential json.RawMessage `json:"credential"`
	Password   string          `json:"password"`
}

func (s *Server) handleStepUp(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	var req stepUpRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	code := codeRequest{Code: req.Code, Credential: req.Credential}.answer()
	if err := s.signin.StepUp(r.Context(), p, req.Method, code, req.Password, client(r)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"step_up_until": ts(s.now().Add(signin.StepUpWindow))})
	return nil
}

func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	if err := s.signin.SignOut(r.Context(), p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
