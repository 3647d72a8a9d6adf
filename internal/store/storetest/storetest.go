// Package storetest is the contract suite of deadbolt.Store: the behaviour
// every database must have, run against SQLite and PostgreSQL alike.
package storetest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
)

// Store is what the suite needs: the storage interfaces plus migrations.
type Store interface {
	deadbolt.Store
	Migrate(ctx context.Context) error
}

// Opener returns a fresh, migrated, empty store for one test; it registers
// its own cleanup.
type Opener func(t *testing.T) Store

// Run runs the contract suite. Each subtest gets its own store.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"Accounts", testAccounts},
		{"Users", testUsers},
		{"TenantIsolation", testTenantIsolation},
		{"Factors", testFactors},
		{"TOTPStepReplay", testTOTPStep},
		{"TOTPStepRace", testTOTPStepRace},
		{"RecoveryCodes", testRecoveryCodes},
		{"RecoveryCodeRace", testRecoveryCodeRace},
		{"Counters", testCounters},
		{"CountersConcurrent", testCountersConcurrent},
		{"ReserveAttempt", testReserveAttempt},
		{"ReserveAttemptRace", testReserveAttemptRace},
		{"ReserveAttempts", testReserveAttempts},
		{"ReturnChallengeAttempt", testReturnChallengeAttempt},
		{"ReserveCodeAttempt", testReserveCodeAttempt},
		{"CompletionReplayRace", testCompletionReplayRace},
		{"ReservationsRace", testReservationsRace},
		{"RecognisedDeviceCap", testRecognisedDeviceCap},
		{"Sessions", testSessions},
		{"Challenges", testChallenges},
		{"ChallengeRace", testChallengeRace},
		{"CompleteChallenge", testCompleteChallenge},
		{"Devices", testDevices},
		{"Passcodes", testPasscodes},
		{"Messages", testMessages},
		{"APITokens", testAPITokens},
		{"FindSession", testFindSession},
		{"OIDCClients", testOIDCClients},
		{"OIDCAuthCodes", testOIDCAuthCodes},
		{"OIDCCodeRace", testOIDCCodeRace},
		{"OIDCTokens", testOIDCTokens},
		{"OIDCTokensOf", testOIDCTokensOf},
		{"OIDCRefreshRace", testOIDCRefreshRace},
		{"OIDCLogins", testOIDCLogins},
		{"OIDCKeys", testOIDCKeys},
		{"OIDCTenantIsolation", testOIDCTenantIsolation},
		{"SSOProviders", testSSOProviders},
		{"SSOStates", testSSOStates},
		{"SSOAssertions", testSSOAssertions},
		{"SSOSessions", testSSOSessions},
		{"WebAuthnFactors", testWebAuthnFactors},
		{"WebAuthnCeremonies", testWebAuthnCeremonies},
		{"UserSummaries", testUserSummaries},
		{"ReportsAndNotices", testReportsAndNotices},
		{"Audit", testAudit},
		{"TimesRoundTripInUTC", testTimes},
		{"MigrateTwice", testMigrateTwice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

var ctx = context.Background()

// base is a fixed instant for tests that pass the time explicitly.
var base = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// mustAccount creates an account with an owner.
func mustAccount(t *testing.T, s Store, slug string) (*deadbolt.Account, *deadbolt.User) {
	t.Helper()
	a := &deadbolt.Account{Slug: slug, Name: "Account " + slug, Policy: deadbolt.DefaultPolicy()}
	owner := &deadbolt.User{Email: "owner@" + slug + ".example", Name: "Owner", Role: deadbolt.RoleOwner,
		AuthSource: deadbolt.AuthPassword, PasswordHash: "$argon2id$fake"}
	if err := s.CreateAccount(ctx, a, owner); err != nil {
		t.Fatalf("CreateAccount(%q) = %v", slug, err)
	}
	return a, owner
}

func mustUser(t *testing.T, s Store, accountID, email string, role deadbolt.Role) *deadbolt.User {
	t.Helper()
	u := &deadbolt.User{AccountID: accountID, Email: email, Name: "User " + email, Role: role, AuthSource: deadbolt.AuthPassword}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser(%q) = %v", email, err)
	}
	return u
}

func mustFactor(t *testing.T, s Store, u *deadbolt.User, kind deadbolt.FactorKind, active bool) *deadbolt.Factor {
	t.Helper()
	f := &deadbolt.Factor{AccountID: u.AccountID, UserID: u.ID, Kind: kind}
	switch kind {
	case deadbolt.FactorTOTP:
		f.Secret = []byte("12345678901234567890")
	case deadbolt.FactorSMS:
		f.Phone = "+12025550143"
	}
	if err := s.CreateFactor(ctx, f); err != nil {
		t.Fatalf("CreateFactor(%s) = %v", kind, err)
	}
	if active {
		if _, err := s.ActivateFactor(ctx, u.AccountID, f.ID, base); err != nil {
			t.Fatalf("ActivateFactor(%s) = %v", f.ID, err)
		}
		f.Status = deadbolt.FactorActive
	}
	return f
}

// wantCode fails the test unless err carries the code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := deadbolt.ErrorCode(err); got != code {
		t.Errorf("%s: error code = %q (%v), want %q", what, got, err, code)
	}
}

// race runs fn n times at once and returns how many calls succeeded, and
// the distinct error codes of the others.
func race(n int, fn func(i int) error) (ok int, codes map[string]int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	codes = map[string]int{}
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := fn(i)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				ok++
			} else {
				codes[deadbolt.ErrorCode(err)]++
				if deadbolt.ErrorCode(err) == deadbolt.EInternal {
					codes[fmt.Sprint("internal: ", err)]++
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	return ok, codes
}

// PostgresURL returns the PostgreSQL URL tests should use, from
// DEADBOLT_TEST_POSTGRES. Without it the test is skipped, unless
// DEADBOLT_REQUIRE_POSTGRES is set (as CI does): then a skip would hide that
// half the contract went unchecked, so the test fails instead.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv("DEADBOLT_TEST_POSTGRES")
	if url == "" {
		if os.Getenv("DEADBOLT_REQUIRE_POSTGRES") != "" {
			tb.Fatal("DEADBOLT_REQUIRE_POSTGRES is set but DEADBOLT_TEST_POSTGRES is empty: the PostgreSQL tests cannot run")
		}
		tb.Skip("DEADBOLT_TEST_POSTGRES is not set: skipping the PostgreSQL half")
	}
	return url
}
