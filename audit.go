package deadbolt

import "time"

// AuditEvent records who did what to whom. Details never hold a secret: no
// code, token or password, only what a reviewer needs (method, cause, ...).
type AuditEvent struct {
	ID        string
	AccountID string
	Time      time.Time
	Type      string
	ActorID   string // empty for the system or an unknown caller
	SubjectID string
	IP        string
	UserAgent string // of the request that caused the event, if any
	Details   map[string]string
}

// Audit event types.
const (
	AuditAccountCreated = "account.created"
	AuditUserCreated    = "user.created"
	AuditUserUpdated    = "user.updated"
	AuditUserDeleted    = "user.deleted"

	AuditSignInSucceeded    = "signin.succeeded"
	AuditSignInFailed       = "signin.failed"
	AuditEnrollmentRequired = "signin.enrollment_required"
	AuditSignOut            = "signout"
	AuditStepUp             = "step_up"

	AuditFactorEnrolled       = "factor.enrolled" // pending
	AuditFactorActivated      = "factor.activated"
	AuditFactorRemoved        = "factor.removed"
	AuditFactorDefault        = "factor.default_changed"
	AuditRecoveryGenerated    = "recovery_codes.generated"
	AuditRecoveryUsed         = "recovery_code.used"
	AuditDeviceRevoked        = "device.revoked"
	AuditSessionRevoked       = "session.revoked"
	AuditPasswordChanged      = "password.changed"
	AuditPasswordChangeFailed = "password.change_failed"

	AuditMessageQueued        = "message.queued"
	AuditMessageRefused       = "message.refused"
	AuditMessageSent          = "message.sent"
	AuditMessageAttemptFailed = "message.attempt_failed"
	AuditMessageFailed        = "message.failed"
	AuditDeviceVerified       = "signin.device_verified"

	AuditPolicyChanged        = "policy.changed"
	AuditTwoFactorReset       = "two_factor.reset"
	AuditAdminRecoveryCreated = "recovery_code.admin_generated"
	AuditReportExported       = "report.exported"
	AuditReportEmailed        = "report.emailed"
	AuditAPITokenCreated      = "api_token.created"
	AuditAPITokenRevoked      = "api_token.revoked"
	AuditAPIAuthRefused       = "api_auth.refused"
	AuditUserInvited          = "user.invited"
	AuditInvitationAccepted   = "user.invitation_accepted"

	AuditOIDCClientCreated = "oidc.client_created"
	AuditOIDCClientUpdated = "oidc.client_updated"
	AuditOIDCClientDeleted = "oidc.client_deleted"
	AuditOIDCSecretRotated = "oidc.client_secret_rotated"
	AuditOIDCTokenIssued   = "oidc.token_issued"
	AuditOIDCRefreshUsed   = "oidc.refresh_used"
	AuditOIDCTokenRefused  = "oidc.token_refused"
	AuditOIDCCodeReplayed  = "oidc.code_replayed"
	AuditOIDCTokenRevoked  = "oidc.token_revoked"
	AuditOIDCLogoutSent    = "oidc.logout_sent"
	AuditOIDCLogoutFailed  = "oidc.logout_failed"
	AuditOIDCKeysRotated   = "oidc.keys_rotated"

	AuditWebAuthnCloned = "webauthn.clone_suspected"

	AuditSSOProviderCreated = "sso.provider_created"
	AuditSSOProviderUpdated = "sso.provider_updated"
	AuditSSOProviderDeleted = "sso.provider_deleted"
)

// AuditFilter selects audit events. Zero fields select everything.
type AuditFilter struct {
	Type   string
	UserID string // actor or subject
	Since  time.Time
	Limit  int // at most MaxAuditLimit; 0 means DefaultAuditLimit
}

// Limits of an audit query.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)
