// Package password hashes passwords and enforces the password rules.
//
// # Hashing
//
// Passwords are hashed with Argon2id (RFC 9106), the memory-hard function
// recommended by OWASP's Password Storage Cheat Sheet. The defaults
// (m=19456 KiB, t=2, p=1, 16-byte salt, 32-byte key) are the OWASP minimum
// configuration for Argon2id; operators can raise them with the
// --password-hash flag, whose value is parsed by [ParseParams].
//
// Hashes are stored as PHC strings
// ("$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>"), so the parameters
// travel with every hash: [Hasher.Verify] reads them from the stored hash,
// not from the Hasher, and [Hasher.NeedsRehash] tells the caller to store a
// fresh hash after a successful sign-in when the parameters have changed.
// Because a stored hash decides how much work Verify does, Verify refuses
// hashes whose parameters exceed [MaxMemory] or [MaxTime]; such hashes can
// only come from a corrupted or tampered database.
//
// Passwords are normalised to Unicode NFC before hashing and verifying, so
// that the same password typed on systems that produce precomposed ("é",
// U+00E9) or decomposed ("e" + U+0301) characters gives the same hash, as
// NIST SP 800-63B-4 recommends.
//
// To avoid revealing which accounts exist through response times, a caller
// that finds no account for the submitted identifier calls
// [Hasher.VerifyDummy], which does the same work as [Hasher.Verify] against
// a dummy hash made with the current parameters when the Hasher was built.
//
// # Rules
//
// [Check] and [CheckWithContext] implement the password rules of
// NIST SP 800-63B-4: a minimum length ([MinLength], or [MinLengthWith2FA]
// when the account must use a second factor), a generous maximum
// ([MaxLength]), lengths counted in Unicode code points after NFC
// normalisation, and a blocklist of common and breached passwords,
// repetitive or sequential passwords and context-specific words such as
// the user's email address or account name. There are deliberately no
// composition rules (such as "one digit and one symbol"): NIST found they
// push users towards predictable patterns ("Password1!") without adding
// real strength, and length matters far more. Control characters (tabs,
// line breaks) and invalid UTF-8 are refused because they cannot be typed
// reliably on every device.
//
// Rule violations are reported as [*RuleError], whose Reason can be shown to
// the user. No error returned by this package contains the password.
package password
