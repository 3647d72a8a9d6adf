// Package deadbolt is the domain language of Deadbolt, the sign-in and
// two-factor-authentication service of a multi-tenant help desk.
//
// It holds types, their validation and the storage interfaces, and imports
// nothing but the standard library. The words used across the code base:
//
//   - Account: a tenant (one help desk). Nothing ever crosses accounts.
//   - User: a person of an account: a team member (owner, admin, agent) or an
//     end user. A user signs in with a password or through SSO.
//   - Factor: a second factor of a user: an authenticator app (TOTP), SMS or
//     email passcodes. A factor is pending until the user proves one code.
//   - RecoveryCode: a single-use code that stands in for a lost factor.
//   - Challenge: the server-side state between the password step and the
//     second factor (or 2-step verification, or forced enrolment).
//   - Passcode: a short code sent by SMS or email, stored only as a hash.
//   - Session: a signed-in browser or API client, found by a hashed token.
//   - Device: a browser that proved itself once and is recognised (and, for
//     a while, remembered so the second factor is skipped).
//   - Policy: an account's rules: who must use 2FA, which methods, limits.
//   - AuditEvent: who did what, when, from where.
//   - APIToken: a credential for integrations, acting as the admin who made it.
//   - Counter: an attempt or send counter that holds across processes.
//
// Secrets never appear here in stored form: tokens and codes are kept as
// keyed hashes, TOTP secrets and phone numbers are encrypted by the store.
package deadbolt
