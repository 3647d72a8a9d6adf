package phone

import (
	"testing"

	"github.com/deadbolt/deadbolt"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in, e164, region string
	}{
		{"+12025550143", "+12025550143", "US"},
		{" +1 202-555-0143 ", "+12025550143", "US"},
		{"+44 20 7946 0000", "+442079460000", "GB"},
		{"+919876543210", "+919876543210", "IN"},
		{"+33612345678", "+33612345678", "FR"},
		{"+4915123456789", "+4915123456789", "DE"},
	}
	for _, tt := range tests {
		e164, region, err := Parse(tt.in)
		if err != nil || e164 != tt.e164 || region != tt.region {
			t.Errorf("Parse(%q) = %q, %q, %v; want %q, %q", tt.in, e164, region, err, tt.e164, tt.region)
		}
	}
	for _, in := range []string{"", "2025550143", "+1", "+1202555014", "+12025550143999", "+999123456789", "+0123456789",
		"+1202555014a", "+１２０２５５５０１４３", "+1 (202) 555-0143 ext 5", "tel:+12025550143"} {
		if _, _, err := Parse(in); deadbolt.ErrorCode(err) != deadbolt.EInvalidPhone {
			t.Errorf("Parse(%q) = %v, want invalid_phone", in, err)
		}
	}
}
