package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/password"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/signin"
	"github.com/deadbolt/deadbolt/internal/store/storetest"
	"github.com/deadbolt/deadbolt/internal/totp"
	"github.com/deadbolt/deadbolt/internal/web"
)

// BenchmarkVerifyTOTP measures second-factor verifications through the
// whole service: HTTP, JSON, challenge lookup, back-off check, TOTP check,
// the replay-proof step update, challenge consumption, session creation and
// audit. Each verification is a different user's, so none is a replay.
// Run with a fixed count, since every iteration needs its own user:
//
//	go test -run '^$' -bench VerifyTOTP -benchtime 4000x ./internal/web/
func BenchmarkVerifyTOTP(b *testing.B) {
	for _, db := range storetest.Databases {
		b.Run(db.Name, func(b *testing.B) {
			keys, _ := secret.Generate()
			st := db.Open(b, keys)
			now := time.Date(2026, 3, 2, 9, 0, 10, 0, time.UTC)
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			svc := signin.New(signin.Options{Store: st, Keys: keys, Hasher: password.NewHasher(password.Params{Memory: 64, Time: 1, Threads: 1}),
				Now: func() time.Time { return now }, Logger: quiet})
			srv := httptest.NewServer(web.NewServer(web.Options{DB: st, SignIn: svc, Now: func() time.Time { return now }, Logger: quiet}))
			defer srv.Close()
			ctx := context.Background()
			acc := &deadbolt.Account{Slug: "bench", Name: "Bench", Policy: deadbolt.DefaultPolicy()}
			owner := &deadbolt.User{Email: "owner@bench.example", Name: "O", Role: deadbolt.RoleOwner, AuthSource: deadbolt.AuthPassword}
			if err := st.CreateAccount(ctx, acc, owner); err != nil {
				b.Fatal(err)
			}
			type job struct{ body []byte }
			jobs := make([]job, b.N)
			sec := totp.NewSecret()
			code := totp.Code(sec, totp.Step(now))
			for i := range b.N {
				u := &deadbolt.User{AccountID: acc.ID, Email: fmt.Sprintf("u%d@bench.example", i), Name: "U", Role: deadbolt.RoleAgent, AuthSource: deadbolt.AuthPassword}
				if err := st.CreateUser(ctx, u); err != nil {
					b.Fatal(err)
				}
				f := &deadbolt.Factor{AccountID: acc.ID, UserID: u.ID, Kind: deadbolt.FactorTOTP, Secret: sec}
				if err := st.CreateFactor(ctx, f); err != nil {
					b.Fatal(err)
				}
				if _, err := st.ActivateFactor(ctx, acc.ID, f.ID, now); err != nil {
					b.Fatal(err)
				}
				token := secret.NewToken(signin.PrefixChallenge)
				if err := st.CreateChallenge(ctx, &deadbolt.Challenge{AccountID: acc.ID, UserID: u.ID, TokenHash: keys.Hash(token),
					Purpose: deadbolt.ChallengeSecondFactor, CreatedAt: now, ExpiresAt: now.Add(deadbolt.ChallengeTTL)}); err != nil {
					b.Fatal(err)
				}
				jobs[i].body, _ = json.Marshal(map[string]any{"challenge_token": token, "method": "totp", "code": code})
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var next atomic.Int64
			var mu sync.Mutex
			var lat []time.Duration
			b.SetParallelism(8) // 16 clients on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					i := next.Add(1) - 1
					start := time.Now()
					res, err := client.Post(srv.URL+"/api/v1/signin/verify", "application/json", bytes.NewReader(jobs[i].body))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					mine = append(mine, time.Since(start))
					if res.StatusCode != 200 {
						b.Errorf("verify %d = %d", i, res.StatusCode)
						return
					}
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)*50/100].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}

// BenchmarkPasswordVerify measures Argon2id verifications at the default
// parameters (m=19456 KiB, t=2, p=1) with both cores busy: the ceiling of
// password sign-ins on this machine.
func BenchmarkPasswordVerify(b *testing.B) {
	h := password.NewHasher(password.DefaultParams())
	enc, err := h.Hash("benchmark passphrase")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ok, err := h.Verify("benchmark passphrase", enc); !ok || err != nil {
				b.Errorf("Verify = %v, %v", ok, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
}
