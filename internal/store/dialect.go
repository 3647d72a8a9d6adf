package store

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/deadbolt/deadbolt"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect holds what differs between the databases: placeholders and how a
// uniqueness violation is reported. The SQL itself is shared.
type dialect struct {
	name     string
	dollar   bool     // rebind ? to $1, $2, ...
	concat   string   // the string aggregate: group_concat or string_agg
	rebinds  sync.Map // query -> rebound query
	isUnique func(error) bool
}

var sqliteDialect = &dialect{
	name:   "sqlite",
	concat: "group_concat",
	isUnique: func(err error) bool {
		var e *sqlite.Error
		if errors.As(err, &e) {
			return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
		}
		return false
	},
}

var postgresDialect = &dialect{
	name:   "postgres",
	dollar: true,
	concat: "string_agg",
	isUnique: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "23505"
	},
}

// rebind rewrites ? placeholders as $n for PostgreSQL. The statements hold
// no ? inside string literals, so a plain scan is enough. Results are cached:
// the set of statements is fixed.
func (d *dialect) rebind(q string) string {
	if !d.dollar {
		return q
	}
	if r, ok := d.rebinds.Load(q); ok {
		return r.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	r := b.String()
	d.rebinds.Store(q, r)
	return r
}

// groupConcat aggregates a text column into one comma-separated value.
func (d *dialect) groupConcat(col string) string { return d.concat + "(" + col + ", ',')" }

// formatError turns a uniqueness violation into EConflict.
func (d *dialect) formatError(err error) error {
	if err != nil && d.isUnique(err) {
		return &deadbolt.Error{Code: deadbolt.EConflict, Message: "It already exists.", Err: err}
	}
	return err
}

// conflict is formatError with a message naming what already exists.
func (d *dialect) conflict(err error, format string, args ...any) error {
	if err != nil && d.isUnique(err) {
		return &deadbolt.Error{Code: deadbolt.EConflict, Message: fmt.Sprintf(format, args...), Err: err}
	}
	return err
}
