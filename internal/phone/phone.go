// Package phone checks phone numbers for SMS: E.164 form, a number that
// can exist, and the country it belongs to (for the account's blocked
// countries). It wraps github.com/nyaruka/phonenumbers, a port of Google's
// libphonenumber, because number plans are data, not code to write by hand.
package phone

import (
	"strings"

	"github.com/deadbolt/deadbolt"
	"github.com/nyaruka/phonenumbers"
)

// Parse checks an E.164 number ("+12025550143") and returns it in
// canonical form with its ISO 3166-1 alpha-2 region ("US"). Anything that is
// not a valid number, or not in E.164 form, is an invalid_phone error.
func Parse(s string) (e164, region string, err error) {
	invalid := deadbolt.Errorf(deadbolt.EInvalidPhone, "Enter the phone number in international form, with + and the country code, such as +12025550143.")
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "+") || len(s) > 20 {
		return "", "", invalid
	}
	// People paste numbers with spaces, dots and dashes; E.164 has none.
	s = strings.NewReplacer(" ", "", "-", "", ".", "", "(", "", ")", "").Replace(s)
	if !deadbolt.ValidE164(s) {
		return "", "", invalid
	}
	n, err := phonenumbers.Parse(s, "")
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", "", invalid
	}
	return phonenumbers.Format(n, phonenumbers.E164), phonenumbers.GetRegionCodeForNumber(n), nil
}
