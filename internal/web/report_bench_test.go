package web_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/deadbolt/deadbolt"
	"github.com/deadbolt/deadbolt/internal/password"
	"github.com/deadbolt/deadbolt/internal/secret"
	"github.com/deadbolt/deadbolt/internal/signin"
	"github.com/deadbolt/deadbolt/internal/store"
	"github.com/deadbolt/deadbolt/internal/store/storetest"
)

// BenchmarkTwoFactorReport streams the 2FA report of an account of 100,000
// users (half with TOTP and ten recovery codes, a quarter with a
// remembered device) as CSV, the way the API and the CLI do:
//
//	go test -run '^$' -bench TwoFactorReport -benchtime 3x ./internal/web/
func BenchmarkTwoFactorReport(b *testing.B) {
	const users = 100_000
	for _, db := range storetest.Databases {
		b.Run(db.Name, func(b *testing.B) {
			keys, _ := secret.Generate()
			st := db.Open(b, keys)
			acc := bulkAccount(b, st, users)
			svc := signin.New(signin.Options{Store: st, Keys: keys, Hasher: password.NewHasher(password.Params{Memory: 64, Time: 1, Threads: 1}),
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			p := &signin.Principal{Account: acc, Via: "bench"}
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			peak := uint64(0)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				w := csv.NewWriter(io.Discard)
				rows := 0
				err := svc.TwoFactorReport(context.Background(), p, true, "csv", func(v *signin.UserView) error {
					rows++
					if rows%10000 == 0 {
						var m runtime.MemStats
						runtime.ReadMemStats(&m)
						peak = max(peak, m.HeapInuse)
					}
					return w.Write(v.ReportRow())
				})
				w.Flush()
				if err != nil || rows != users+1 {
					b.Fatalf("report = %d rows, %v", rows, err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(before.HeapInuse)/(1<<20), "heap-before-MiB")
		})
	}
}

// bulkAccount makes an account with n users in a few big statements: the
// store's one-user-at-a-time methods would take minutes for 100,000.
func bulkAccount(b *testing.B, st *store.DB, n int) *deadbolt.Account {
	b.Helper()
	ctx := context.Background()
	acc := &deadbolt.Account{Slug: "big", Name: "Big", Policy: deadbolt.DefaultPolicy()}
	acc.Policy.Require2FATeamMembers = true
	owner := &deadbolt.User{Email: "owner@big.example", Name: "Owner", Role: deadbolt.RoleOwner, AuthSource: deadbolt.AuthPassword}
	if err := st.CreateAccount(ctx, acc, owner); err != nil {
		b.Fatal(err)
	}
	pg := st.Dialect() == "postgres"
	ph := func(i int) string {
		if pg {
			return fmt.Sprintf("$%d", i)
		}
		return "?"
	}
	now := time.Now().UnixMicro()
	tx, err := st.SQL().BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	insert := func(table string, cols []string, rows [][]any) {
		const batch = 500
		for start := 0; start < len(rows); start += batch {
			end := min(start+batch, len(rows))
			var sb strings.Builder
			args := []any{}
			sb.WriteString("INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES ")
			for i, r := range rows[start:end] {
				if i > 0 {
					sb.WriteString(", ")
				}
				sb.WriteString("(")
				for j := range r {
					if j > 0 {
						sb.WriteString(", ")
					}
					args = append(args, r[j])
					sb.WriteString(ph(len(args)))
				}
				sb.WriteString(")")
			}
			if _, err := tx.ExecContext(ctx, sb.String(), args...); err != nil {
				b.Fatalf("bulk insert into %s: %v", table, err)
			}
		}
	}
	roles := []string{"agent", "agent", "admin", "end_user"}
	var us, fs, rcs, ds [][]any
	for i := range n {
		id := fmt.Sprintf("u%07d", i)
		source := "password"
		if i%20 == 0 {
			source = "sso"
		}
		us = append(us, []any{acc.ID, id, fmt.Sprintf("user%07d@big.example", i), fmt.Sprintf("User %d, \"the %dth\"", i, i),
			roles[i%4], source, "", now, now})
		if i%2 == 0 {
			fs = append(fs, []any{acc.ID, "f" + id, id, "totp", "active", true, []byte("sealed-secret"), now, now, now})
			for c := range 10 {
				rcs = append(rcs, []any{acc.ID, fmt.Sprintf("r%s-%d", id, c), id, []byte(fmt.Sprintf("h%s%d", id, c)), now})
			}
		}
		if i%4 == 0 {
			ds = append(ds, []any{acc.ID, "d" + id, id, []byte("dev" + id), now, now + int64(time.Hour/time.Microsecond), now, now})
		}
	}
	insert("users", []string{"account_id", "id", "email", "name", "role", "auth_source", "password_hash", "created_at", "updated_at"}, us)
	insert("factors", []string{"account_id", "id", "user_id", "kind", "status", "is_default", "secret", "created_at", "activated_at", "last_used_at"}, fs)
	insert("recovery_codes", []string{"account_id", "id", "user_id", "hash", "created_at"}, rcs)
	insert("devices", []string{"account_id", "id", "user_id", "token_hash", "remembered_at", "remember_until", "created_at", "last_seen_at"}, ds)
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if pg {
		st.SQL().ExecContext(ctx, "ANALYZE")
	}
	return acc
}
