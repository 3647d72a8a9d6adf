package web

import (
	"encoding/json"
	"net/http"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/signin"
)

type signInRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) error {
	var req signInRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	res, err := s.signin.SignIn(r.Context(), r.PathValue("account"), req.Email, req.Password, client(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resultJSON(res))
	return nil
}

type verifyRequest struct {
	ChallengeToken string          `json:"challenge_token"`
	Method         string          `json:"method"`
	Code           string          `json:"code"`
	Credential     json.RawMessage `json:"credential"`
	RememberDevice bool            `json:"remember_device"`
}

func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request) error {
	var req verifyRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.ChallengeToken == "" {
		return deadbolt.Invalid("challenge_token", "challenge_token is required.")
	}
	if req.Method == "" {
		return deadbolt.Invalid("method", "method is required.")
	}
	answer := codeRequest{Code: req.Code, Credential: req.Credential}.answer()
	if answer == "" {
		return deadbolt.Invalid("code", "code is required (credential for a passkey).")
	}
	res, err := s.signin.Verify(r.Context(), req.ChallengeToken, req.Method, answer, req.RememberDevice, client(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resultJSON(res))
	return nil
}

// handlePasskeySignIn starts a passwordless sign-in: the options for a
// discoverable credential, and the token to verify with.
func (s *Server) handlePasskeySignIn(w http.ResponseWriter, r *http.Request) error {
	pc, err := s.signin.BeginPasskeySignIn(r.Context(), r.PathValue("account"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"challenge_token": pc.Token, "options": pc.Options})
	return nil
}

type sendRequest struct {
	ChallengeToken string `json:"challenge_token"`
	Method         string `json:"method"`
}

func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) error {
	var req sendRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.ChallengeToken == "" {
		return deadbolt.Invalid("challenge_token", "challenge_token is required.")
	}
	snt, err := s.signin.SendChallengeCode(r.Context(), req.ChallengeToken, req.Method)
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

// resultJSON is the API form of a sign-in step.
func resultJSON(res *signin.Result) map[string]any {
	out := map[string]any{"status": string(res.Status)}
	if res.Status == signin.StatusSignedIn {
		out["session_token"] = res.SessionToken
		out["expires_at"] = ts(res.Session.ExpiresAt)
		out["idle_timeout_minutes"] = int(res.Session.IdleTimeout.Minutes())
		out["user"] = map[string]any{"id": res.User.ID, "email": res.User.Email, "role": res.User.Role}
		if res.DeviceToken != "" {
			out["device_token"] = res.DeviceToken
		}
		if res.RecoveryCodesLeft >= 0 {
			out["recovery_codes_left"] = res.RecoveryCodesLeft
			if res.RecoveryCodesLeft <= lowRecoveryCodes {
				out["warning"] = "You have few recovery codes left: make a new set in your security settings."
			}
		}
		if res.AdminRecovery {
			out["admin_recovery"] = true
			out["warning"] = "You signed in with a recovery code from your admin: your other sessions have ended and your two-factor authentication was reset. Set it up again now."
		}
		if !res.TwoFactorDue.IsZero() {
			out["two_factor_setup_due"] = ts(res.TwoFactorDue)
			out["warning"] = "Your account requires two-factor authentication: set it up before " + res.TwoFactorDue.UTC().Format("2 January 2006") + " to keep signing in."
		}
		return out
	}
	out["challenge_token"] = res.ChallengeToken
	out["expires_at"] = ts(res.Challenge.ExpiresAt)
	if res.DeviceToken != "" {
		// 2-step verification recognised the device before enrolment.
		out["device_token"] = res.DeviceToken
	}
	out["methods"] = nonNil(res.Methods)
	if res.DefaultMethod != "" {
		out["default_method"] = res.DefaultMethod
	}
	if res.SentTo != "" {
		out["sent_to"] = res.SentTo
	}
	if res.WebAuthnOptions != nil {
		out["webauthn"] = res.WebAuthnOptions
	}
	return out
}

// lowRecoveryCodes is the count at or under which users are warned.
const lowRecoveryCodes = 3

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
