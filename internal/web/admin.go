package web

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/signin"
)

type adminHandler func(w http.ResponseWriter, r *http.Request, p *signin.Principal) error

// admin wraps an admin route: the caller, by session, API token or HTTP
// Basic, must be an owner or admin of the account in the path.
func (s *Server) admin(h adminHandler) http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.adminPrincipal(r)
		if err != nil {
			return err
		}
		if err := signin.RequireAdmin(p, r.PathValue("account")); err != nil {
			return err
		}
		return h(w, r, p)
	})
}

// adminPrincipal authenticates an admin request: Bearer with a session
// (dbs_) or API token (dbt_), or HTTP Basic with "{email}/token" and an
// API token, or an email and password (refused when 2FA applies).
func (s *Server) adminPrincipal(r *http.Request) (*signin.Principal, error) {
	if user, pass, ok := r.BasicAuth(); ok {
		if email, isToken := strings.CutSuffix(user, "/token"); isToken {
			return s.signin.AuthenticateAPIToken(r.Context(), pass, email)
		}
		return s.signin.AuthenticatePassword(r.Context(), r.PathValue("account"), user, pass, client(r))
	}
	token, ok := bearer(r)
	if !ok {
		return nil, deadbolt.Errorf(deadbolt.EUnauthorized, "Send a session or API token as Authorization: Bearer <token>.")
	}
	if strings.HasPrefix(token, signin.PrefixAPIToken) {
		return s.signin.AuthenticateAPIToken(r.Context(), token, "")
	}
	p, err := s.signin.Authenticate(r.Context(), token)
	if err != nil {
		return nil, err
	}
	if p.Session == nil {
		return nil, deadbolt.Errorf(deadbolt.EUnauthorized, "Finish setting up two-factor authentication first.")
	}
	return p, nil
}

// streamList writes {"<key>": [...]} one element at a time, so a list of
// 100,000 users is never held in memory.
func streamList(w http.ResponseWriter, key string, each func(emit func(any) error) error) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	started := false
	emit := func(v any) error {
		if !started {
			w.Write([]byte(`{"` + key + `":[`))
			started = true
		} else {
			w.Write([]byte(","))
		}
		return enc.Encode(v)
	}
	if err := each(emit); err != nil {
		if !started {
			return err // nothing written: a proper error answer
		}
		panic(http.ErrAbortHandler) // half a list must not look whole
	}
	if !started {
		w.Write([]byte(`{"` + key + `":[`))
	}
	_, err := w.Write([]byte("]}\n"))
	return err
}

func roleList(q string) ([]deadbolt.Role, error) {
	if q == "" {
		return nil, nil
	}
	var roles []deadbolt.Role
	for _, r := range strings.Split(q, ",") {
		role := deadbolt.Role(strings.TrimSpace(r))
		if !role.Valid() {
			return nil, deadbolt.Invalid("role", "role must be owner, admin, agent or end_user.")
		}
		roles = append(roles, role)
	}
	return roles, nil
}

func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	q := r.URL.Query()
	roles, err := roleList(q.Get("role"))
	if err != nil {
		return err
	}
	tf := q.Get("two_factor")
	switch tf {
	case "", "enabled", "disabled", "sso":
	default:
		return deadbolt.Invalid("two_factor", "two_factor must be enabled, disabled or sso.")
	}
	return streamList(w, "users", func(emit func(any) error) error {
		return s.signin.Users(r.Context(), p.Account, signin.UserFilter{Roles: roles, TwoFactor: tf}, func(v *signin.UserView) error {
			return emit(v)
		})
	})
}

type createUserRequest struct {
	Email      string `json:"email"`
	Name       string `json:"name"`
	Role       string `json:"role"`
	Password   string `json:"password"`
	AuthSource string `json:"auth_source"`
	// Invite emails the user an invitation to choose their password.
	Invite bool `json:"invite"`
}

func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	var req createUserRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Invite && (req.Password != "" || req.AuthSource == string(deadbolt.AuthSSO)) {
		return deadbolt.Invalid("invite", "An invitation is for a user who will choose their own password: leave out password and auth_source sso.")
	}
	u, err := s.signin.CreateUser(r.Context(), p, signin.NewUser{Email: req.Email, Name: req.Name, Role: deadbolt.Role(req.Role),
		Password: req.Password, AuthSource: deadbolt.AuthSource(req.AuthSource)})
	if err != nil {
		return err
	}
	out := map[string]any{}
	if req.Invite {
		to, err := s.signin.Invite(r.Context(), p, u, s.publicURL)
		if err != nil {
			return err
		}
		out["invitation_sent_to"] = to
	}
	v, err := s.signin.User(r.Context(), p, u.ID)
	if err != nil {
		return err
	}
	out["user"] = v
	writeJSON(w, http.StatusCreated, out)
	return nil
}

type invitationRequest struct {
	Email    string `json:"email"`
	Code     string `json:"code"`
	Password string `json:"password"`
}

func (s *Server) handleAcceptInvitation(w http.ResponseWriter, r *http.Request) error {
	var req invitationRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Code == "" {
		return deadbolt.Invalid("code", "code is required.")
	}
	if err := s.signin.AcceptInvitation(r.Context(), r.PathValue("account"), req.Email, req.Code, req.Password, client(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleUser(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	v, err := s.signin.User(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": v})
	return nil
}

type updateUserRequest struct {
	Name  *string `json:"name"`
	Role  *string `json:"role"`
	Phone *string `json:"phone"`
}

func (s *Server) handleUpdateUser(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	var req updateUserRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	upd := signin.AdminUpdate{Name: req.Name, Phone: req.Phone}
	if req.Role != nil {
		role := deadbolt.Role(*req.Role)
		upd.Role = &role
	}
	if _, err := s.signin.UpdateUser(r.Context(), p, r.PathValue("id"), upd); err != nil {
		return err
	}
	return s.handleUser(w, r, p)
}

func (s *Server) handleDeleteUser(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	if err := s.signin.DeleteUser(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleAdminRecoveryCode(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	code, expires, err := s.signin.AdminRecoveryCode(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"recovery_code": code, "expires_at": ts(expires)})
	return nil
}

func (s *Server) handleResetFactors(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	if err := s.signin.ResetTwoFactor(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handlePolicy(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	writeJSON(w, http.StatusOK, p.Account.Policy)
	return nil
}

func (s *Server) handlePutPolicy(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	// Fields left out take their defaults: the body is decoded onto them.
	next := deadbolt.DefaultPolicy()
	if err := decode(w, r, &next); err != nil {
		return err
	}
	stored, err := s.signin.SetPolicy(r.Context(), p, next)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, stored)
	return nil
}

// wantsCSV reports whether the client asked for CSV.
func wantsCSV(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/csv") || r.URL.Query().Get("format") == "csv"
}

// writeReport streams the 2FA report as CSV or JSON.
func (s *Server) writeReport(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	all := r.URL.Query().Get("users") == "all"
	if u := r.URL.Query().Get("users"); u != "" && u != "all" && u != "team" {
		return deadbolt.Invalid("users", "users must be team (admins and agents, the default) or all.")
	}
	if !wantsCSV(r) {
		return streamList(w, "users", func(emit func(any) error) error {
			return s.signin.TwoFactorReport(r.Context(), p, all, "json", func(v *signin.UserView) error { return emit(v) })
		})
	}
	return s.writeReportCSV(w, r, p, all)
}

// writeReportCSV streams the 2FA report as a CSV download, for the API
// and the pages. An error before the first row is returned for a proper
// answer; after it, the response is cut short so half a file never looks
// whole.
func (s *Server) writeReportCSV(w http.ResponseWriter, r *http.Request, p *signin.Principal, all bool) error {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="two-factor-report-`+p.Account.Slug+`.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	cw := csv.NewWriter(w)
	header := false
	err := s.signin.TwoFactorReport(r.Context(), p, all, "csv", func(v *signin.UserView) error {
		if !header {
			cw.Write(signin.ReportColumns)
			header = true
		}
		return cw.Write(v.ReportRow())
	})
	if err != nil {
		if !header {
			w.Header().Del("Content-Disposition")
			w.Header().Del("Content-Type")
			return err
		}
		panic(http.ErrAbortHandler)
	}
	if !header {
		cw.Write(signin.ReportColumns)
	}
	cw.Flush()
	return cw.Error()
}

func (s *Server) handleReport(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	return s.writeReport(w, r, p)
}

func (s *Server) handleEmailReport(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	if p.User == nil {
		return deadbolt.Errorf(deadbolt.EForbidden, "Only a person can be emailed a report.")
	}
	rep, err := s.signin.EmailReport(r.Context(), p, s.publicURL)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"report_id": rep.ID, "expires_at": ts(rep.ExpiresAt)})
	return nil
}

func (s *Server) handleSavedReport(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	if _, err := s.signin.OpenReport(r.Context(), p, r.PathValue("report_id")); err != nil {
		return err
	}
	return s.writeReport(w, r, p)
}

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	q := r.URL.Query()
	f := deadbolt.AuditFilter{Type: q.Get("type"), UserID: q.Get("user_id")}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return deadbolt.Invalid("since", "since must be an RFC 3339 time, such as 2026-01-02T15:04:05Z.")
		}
		f.Since = t
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > deadbolt.MaxAuditLimit {
			return deadbolt.Invalid("limit", "limit must be a number from 1 to %d.", deadbolt.MaxAuditLimit)
		}
		f.Limit = n
	}
	events, err := s.signin.Events(r.Context(), p.Account, f)
	if err != nil {
		return err
	}
	list := []map[string]any{}
	for _, e := range events {
		d := e.Details
		if d == nil {
			d = map[string]string{}
		}
		list = append(list, map[string]any{"id": e.ID, "time": ts(e.Time), "type": e.Type, "actor_id": nullable(e.ActorID),
			"subject_id": nullable(e.SubjectID), "ip": nullable(e.IP), "user_agent": nullable(e.UserAgent), "details": d})
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": list})
	return nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

type tokenRequest struct {
	Description   string `json:"description"`
	ExpiresInDays int    `json:"expires_in_days"`
}

func apiTokenJSON(t *deadbolt.APIToken) map[string]any {
	return map[string]any{"id": t.ID, "description": t.Description, "user_id": t.UserID, "created_at": ts(t.CreatedAt),
		"last_used_at": ts(t.LastUsedAt), "expires_at": ts(t.ExpiresAt)}
}

func (s *Server) handleCreateAPIToken(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	var req tokenRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	token, t, err := s.signin.CreateAPIToken(r.Context(), p, req.Description, req.ExpiresInDays)
	if err != nil {
		return err
	}
	out := apiTokenJSON(t)
	out["token"] = token
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) handleAPITokens(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	tokens, err := s.signin.APITokens(r.Context(), p)
	if err != nil {
		return err
	}
	list := []map[string]any{}
	for _, t := range tokens {
		list = append(list, apiTokenJSON(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"api_tokens": list})
	return nil
}

func (s *Server) handleAPIToken(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	tokens, err := s.signin.APITokens(r.Context(), p)
	if err != nil {
		return err
	}
	for _, t := range tokens {
		if t.ID == r.PathValue("id") {
			writeJSON(w, http.StatusOK, map[string]any{"api_token": apiTokenJSON(t)})
			return nil
		}
	}
	return deadbolt.Errorf(deadbolt.ENotFound, "API token not found.")
}

func (s *Server) handleRevokeAPIToken(w http.ResponseWriter, r *http.Request, p *signin.Principal) error {
	if err := s.signin.RevokeAPIToken(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
