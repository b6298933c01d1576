package query

import (
	"strings"
	"time"
)

// where collects the conditions of a WHERE clause and their arguments.
// Conditions are fixed text with `?` placeholders; values go to args only.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// timeRange adds the half-open range [since, until) on column col, skipping
// a zero end.
func (w *where) timeRange(col string, since, until time.Time) {
	if !since.IsZero() {
		w.add(col+" >= ?", ceilSecond(since))
	}
	if !until.IsZero() {
		w.add(col+" < ?", ceilSecond(until))
	}
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// placeholders returns n comma-separated `?`, one per element of a list.
// ClickHouse 18.16 rejects a whole slice bound to one `?` in IN (it arrives
// as an array literal).
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func anys[T any](vs []T) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

// limitClause returns " LIMIT ?" and the limit as an argument, or nothing for
// no limit.
func limitClause(limit int, args []any) (string, []any) {
	if limit == 0 {
		return "", args
	}
	return " LIMIT ?", append(args, limit)
}
