package query

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ShadowTypes are the values of shadow.type, in the order of the Enum8 and
// of the rows Shadow returns within a bucket.
var ShadowTypes = []string{"Incompatible", "Sha", "Dow", "ShaDow"}

// DefaultShadowGrouping is what ShadowQuery.By "" means: by type.
const DefaultShadowGrouping = "type"

// ShadowGroupings are the values ShadowQuery.By accepts; the first is the
// default.
var ShadowGroupings = []string{DefaultShadowGrouping, "minute", "hour", "day"}

// bucketSQL is the whole whitelist of SQL text that By may choose.
// Each is taken of t, the start of a minute.
var bucketSQL = map[string]string{
	"minute": "t",
	"hour":   "toStartOfHour(t)",
	"day":    "toStartOfDay(t)",
}

// ShadowQuery counts the classified ratings in the shadow table.
type ShadowQuery struct {
	// Since and Until bound emit_timestamp to [Since, Until). A zero Since is
	// no lower bound, a zero Until no upper bound.
	Since, Until time.Time
	// Types keeps only these types, named exactly as in ShadowTypes. Empty:
	// all types.
	Types []string
	// By chooses the grouping, one of ShadowGroupings:
	//   - "type" (DefaultShadowGrouping, also ""): columns type, count; one row per type, the
	//     largest count first, ties in type order. The original README's
	//     ad hoc query, made exact.
	//   - "minute", "hour", "day": columns <By>, type, count; one row per
	//     UTC time bucket and type that has rows, oldest bucket first, then
	//     in type order.
	By string
	// Limit is the most rows returned; 0 means no limit.
	Limit int
}

// Validate reports the first problem that would make q an invalid query:
// an unknown type or grouping, a time outside ClickHouse's range, Until not
// after Since, or a negative Limit.
func (q ShadowQuery) Validate() error {
	for _, t := range q.Types {
		if !slices.Contains(ShadowTypes, t) {
			return fmt.Errorf("unknown shadow type %q: want one of %s", t, strings.Join(ShadowTypes, ", "))
		}
	}
	if q.By != "" && !slices.Contains(ShadowGroupings, q.By) {
		return fmt.Errorf("unknown grouping %q: want one of %s", q.By, strings.Join(ShadowGroupings, ", "))
	}
	if err := checkRange(q.Since, q.Until); err != nil {
		return err
	}
	return checkLimit(q.Limit)
}

// Shadow runs q against the shadow table of conn's database. Whole minutes
// with a clean seal are answered from shadow_minutes, everything else from
// shadow read with FINAL, so that re-delivered ratings count once (see the
// package doc). It validates q first and sends nothing if q is invalid.
func Shadow(ctx context.Context, conn driver.Conn, q ShadowQuery) (*Result, error) {
	rows, err := queryStore(ctx, conn, q, q.Since, q.Until, shadowStore, func(clean []time.Time) (string, []any) { return shadowSQL(q, clean) })
	if err != nil {
		return nil, err
	}
	bucketed := q.By != "" && q.By != "type"
	columns := []string{"type", "count"}
	if bucketed {
		columns = []string{q.By, "type", "count"}
	}
	return readResult(rows, shadowStore.table, columns, func(rows driver.Rows) ([]any, error) {
		var (
			bucket time.Time
			typ    string
			n      uint64
		)
		if !bucketed {
			err := rows.Scan(&typ, &n)
			return []any{typ, n}, err
		}
		err := rows.Scan(&bucket, &typ, &n)
		return []any{bucket.UTC(), typ, n}, err
	})
}

// shadowSQL builds the statement for a valid q, given the clean minutes
// of its range: fixed text with `?` placeholders, and the values for them.
// Both branches count per minute (t), and the buckets are taken of t.
func shadowSQL(q ShadowQuery, clean []time.Time) (string, []any) {
	lo, hi, store := plan(q.Since, q.Until, clean)
	typeFilter := func(w *where) {
		if len(q.Types) > 0 {
			w.add("type IN ("+placeholders(len(q.Types))+")", anys(q.Types)...)
		}
	}
	var (
		branches []string
		args     []any
	)
	if lo.Before(hi) {
		var w where
		c, a := sealedCond("minute", lo, hi, store)
		w.add(c, a...)
		typeFilter(&w)
		branches = append(branches, "SELECT minute AS t, type, events AS n FROM shadow_minutes FINAL"+w.String())
		args = append(args, w.args...)
	}
	if len(store) > 0 {
		var w where
		c, a := spansCond("emit_timestamp", store)
		w.add(c, a...)
		typeFilter(&w)
		branches = append(branches, "SELECT toStartOfMinute(emit_timestamp) AS t, type, count() AS n FROM shadow FINAL"+w.String()+" GROUP BY t, type")
		args = append(args, w.args...)
	}
	from := " FROM (" + strings.Join(branches, " UNION ALL ") + ")"

	var b strings.Builder
	if bucket, ok := bucketSQL[q.By]; ok {
		b.WriteString("SELECT " + bucket + " AS bucket, type, sum(n) AS total" + from)
		b.WriteString(" GROUP BY bucket, type HAVING total > 0 ORDER BY bucket, type")
	} else {
		b.WriteString("SELECT type, sum(n) AS total" + from)
		b.WriteString(" GROUP BY type HAVING total > 0 ORDER BY total DESC, type")
	}
	limit, args := limitClause(q.Limit, args)
	b.WriteString(limit)
	return b.String(), args
}
